"""Acknowledged writes survive kill -9 of any process, Redis included (spec section 6).

The embedded launcher runs Redis with the append-only file on; every 200 to a write is sent only
after Redis accepted the write, and Redis hands the AOF to the kernel before it answers, so a
killed process (not a crashed machine) loses nothing that was acknowledged.
"""

import os
import signal
from pathlib import Path

from conftest import ENTITY, sanitizer_reports, wait_until, free_port
from test_launcher import Launcher, children_of, run_dir  # noqa: F401 (run_dir is a fixture)

AUTH = ("dura", "dura-pass-1")


def child_named(la, needle):
    for pid in children_of(la.popen.pid):
        try:
            cmd = Path("/proc/%d/cmdline" % pid).read_text(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            return pid
    return None


def names(la):
    r = la.get(ENTITY, "act=list", AUTH)
    assert r.status == 200, r
    return [e["name"] for e in r.json()]


def test_acknowledged_writes_survive_kill_9_of_every_process(run_dir):  # noqa: F811
    port = free_port()
    la = Launcher(run_dir, port, "--login", AUTH[0], "--password", AUTH[1])
    try:
        la.wait_for_line(r"XWS is running at")
        wait_until(lambda: la.get(ENTITY, "act=list", AUTH).status in (200, 204), timeout=30, what="first request")
        expected = []
        for victim in ("redis-server", "xws-config", "xws-gateway"):
            name = "dura-" + victim.replace("-", "")
            r = la.post(ENTITY, "act=add", ('{"name":"%s","displayname":"Durable %s"}' % (name, victim)).encode(), AUTH)
            assert r.status == 200, r
            expected.append(name)
            pid = child_named(la, victim)
            assert pid is not None, la.text()
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: child_named(la, victim) not in (None, pid), timeout=30, what="%s restarted" % victim)

            def back():
                # every worker serves again (each reconnects to Redis on its own)
                try:
                    return all(la.get(ENTITY, "act=list", AUTH).status == 200 for _ in range(6))
                except OSError:
                    return False

            wait_until(back, timeout=40, what="requests answered after killing %s" % victim)
            missing = set(expected) - set(names(la))
            assert not missing, (victim, missing, la.text())
    finally:
        rc = la.stop()
    assert rc == 0, la.text()
    assert not sanitizer_reports(la.text()), sanitizer_reports(la.text())
