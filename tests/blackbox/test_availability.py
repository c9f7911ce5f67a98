"""Availability under killed processes (the embedded launcher's supervision, the broker's
re-dispatch, the rid outcome records), measured the way an operator would see it.

- Two config workers under the launcher, one of them (a ready one, the longest up: they take turns)
  killed with SIGKILL every KILL_EVERY seconds for SECONDS seconds, while CLIENTS threads add
  entities (unique names) and search them over HTTPS: fewer than 1 % of the requests fail (any
  status but 200/204, a connection error or no answer within 10 s counts), every add answered 200
  is there exactly once afterwards, no name is there twice, and xws-fsck finds the store
  consistent.
- Redis killed with SIGKILL (the launcher held back meanwhile, so that the outage lasts): every
  request answers 503 at once (under 1 s) with Retry-After and an error naming Redis; once the
  launcher restarts Redis, requests succeed again and every acknowledged write is there.

Settings (environment): XWS_AVAIL_SECONDS (default 20), XWS_AVAIL_KILL_EVERY (2),
XWS_AVAIL_CLIENTS (6). The issue's run is XWS_AVAIL_SECONDS=40.
"""

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import BIN_DIR, ENTITY, ENTITY_PRIVATE, _SSL, basic, free_port, sanitizer_reports, wait_until
from test_launcher import Launcher, children_of

SECONDS = float(os.environ.get("XWS_AVAIL_SECONDS", "20"))
KILL_EVERY = float(os.environ.get("XWS_AVAIL_KILL_EVERY", "2"))
CLIENTS = int(os.environ.get("XWS_AVAIL_CLIENTS", "6"))
CLIENT_TIMEOUT = 10.0
AUTH = ("avail", "avail-pass-1")


class Client:
    """One persistent HTTPS/1.1 connection, opened again after an error."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, query, body=None):
        """(status, body bytes, headers with lower-case names, seconds); status 0 for a connection error
        or no answer within CLIENT_TIMEOUT."""
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=_SSL, timeout=CLIENT_TIMEOUT)
            headers = {"Authorization": basic(*AUTH)}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            self.conn.request(method, path + "?" + urllib.parse.urlencode(query), body=data, headers=headers)
            r = self.conn.getresponse()
            payload = r.read()
            return r.status, payload, {k.lower(): v for k, v in r.getheaders()}, time.monotonic() - t0
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return 0, repr(e).encode(), {}, time.monotonic() - t0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def config_workers(la, ready_only=False):
    """pid -> start time (clock ticks) of the launcher's xws-config children; with ready_only, only
    those that are ready (their health file, named by the launcher in their environment, exists)."""
    out = {}
    for pid in children_of(la.popen.pid):
        try:
            cmd = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[0]
            if not cmd.endswith(b"/xws-config"):
                continue
            if ready_only:
                env = dict(v.split(b"=", 1) for v in Path("/proc/%d/environ" % pid).read_bytes().split(b"\0") if b"=" in v)
                if not Path(env.get(b"XWS_HEALTH_FILE", b"/nonexistent").decode()).exists():
                    continue
            stat = Path("/proc/%d/stat" % pid).read_text()
            out[pid] = int(stat.rsplit(")", 1)[1].split()[19])
        except (OSError, ValueError, IndexError):
            continue
    return out


def child_named(la, comm):
    for pid in children_of(la.popen.pid):
        try:
            if Path("/proc/%d/comm" % pid).read_text().strip() == comm:
                return pid
        except OSError:
            continue
    return None


def entity_names(la):
    c = Client(la.port)
    try:
        status, body, _, _ = c.request("GET", ENTITY_PRIVATE, {"act": "list"})
    finally:
        c.close()
    assert status == 200, (status, body)
    return [e["name"] for e in json.loads(body)]


def fsck(run_dir):
    r = subprocess.run([str(BIN_DIR / "xws-fsck"), "-t", "60000"], capture_output=True, text=True, timeout=120,
                       env={"PATH": os.environ["PATH"], "XWS_REDIS": "unix:%s/redis.sock" % run_dir})
    assert not sanitizer_reports(r.stderr), r.stderr
    assert r.returncode == 0, "xws-fsck (%d): %s %s" % (r.returncode, r.stdout, r.stderr)


def all_served(la, workers=2):
    """Both config workers run and requests are answered."""
    if len(config_workers(la)) < workers:
        return False
    c = Client(la.port)
    try:
        return all(c.request("GET", ENTITY, {"act": "list"})[0] == 200 for _ in range(4))
    finally:
        c.close()


@pytest.fixture(scope="module")
def launched():
    """The launcher with two workers of each service (config included) and the account AUTH."""
    for b in ("xws-gateway", "xws-config", "xws-fsck"):
        if not (BIN_DIR / b).is_file():
            pytest.fail("binary %s missing in %s" % (b, BIN_DIR))
    run_dir = Path(tempfile.mkdtemp(prefix="xwsa-", dir="/tmp"))  # short: the ipc paths stay inside
    la = Launcher(run_dir, free_port(), "--login", AUTH[0], "--password", AUTH[1], "--workers", "2",
                  env_extra={"XWS_VERIFY_NICE": "0"})
    la.run_dir = run_dir
    try:
        la.wait_for_line(r"XWS is running at", timeout=120)
        wait_until(lambda: all_served(la), timeout=60, what="both config workers serving")
        yield la
    finally:
        rc = la.stop()
        assert rc == 0, "\n".join([line for line in la.lines if " act=" not in line][-60:])
        assert not sanitizer_reports(la.text()), sanitizer_reports(la.text())
        shutil.rmtree(run_dir, ignore_errors=True)


class Load:
    """CLIENTS threads, each adding entities with names of its own ("<prefix><thread>x<n>") and searching
    each one right after its add, until stop(). results: (kind, name, status, seconds, headers, body);
    a search that does not find the entity its add just acknowledged counts with status -1."""

    def __init__(self, la, prefix):
        self.la = la
        self.prefix = prefix
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.results = []
        self.acked = set()
        self.threads = [threading.Thread(target=self._client, args=(t,)) for t in range(CLIENTS)]
        self.t0 = time.monotonic()
        for th in self.threads:
            th.start()

    def _client(self, t):
        c = Client(self.la.port)
        n = 0
        try:
            while not self.halt.is_set():
                n += 1
                name = "%s%dx%d" % (self.prefix, t, n)
                st, body, hdrs, secs = c.request("POST", ENTITY, {"act": "add"}, {"name": name, "displayname": "Avail " + name})
                with self.lock:
                    self.results.append(("add", name, st, secs, hdrs, body[:200]))
                    if st == 200:
                        self.acked.add(name)
                added = st == 200
                st, body, hdrs, secs = c.request("GET", ENTITY, {"act": "search", "search": name})
                # a search right after an acknowledged add finds it (read your writes)
                if added and (st == 204 or (st == 200 and name not in [e["name"] for e in json.loads(body)])):
                    st = -1
                with self.lock:
                    self.results.append(("search", name, st, secs, hdrs, body[:200]))
        finally:
            c.close()

    def stop(self):
        self.halt.set()
        for th in self.threads:
            th.join(timeout=CLIENT_TIMEOUT * 3)
        assert not any(th.is_alive() for th in self.threads), "a client hangs"
        self.elapsed = time.monotonic() - self.t0
        self.failed = [r for r in self.results if r[2] not in (200, 204)]

    def summary(self, what):
        by_status = {}
        for r in self.failed:
            by_status[r[2]] = by_status.get(r[2], 0) + 1
        secs = sorted(r[3] for r in self.results) or [0.0]
        return ("%d requests (%d adds) in %.1fs, %s, %d failed (%.2f %%) by status %r, latency p50 %.3fs p99 %.3fs "
                "max %.3fs; first failures: %r") % (
            len(self.results), len([r for r in self.results if r[0] == "add"]), self.elapsed, what, len(self.failed),
            100.0 * len(self.failed) / max(1, len(self.results)), by_status, secs[len(secs) // 2],
            secs[len(secs) * 99 // 100], secs[-1], [(r[0], r[1], r[2], r[5]) for r in self.failed[:3]])

    def check_store(self):
        """Every acknowledged add is there once; no name is there twice; xws-fsck is satisfied."""
        names = entity_names(self.la)
        counts = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        twice = sorted(n for n, k in counts.items() if k > 1)
        assert not twice, "present more than once: %r" % twice[:20]
        lost = sorted(self.acked - set(names))
        assert not lost, "acknowledged and missing: %r" % lost[:20]
        fsck(self.la.run_dir)


def test_killed_config_workers_under_load(launched):
    la = launched
    kills = []
    halt = threading.Event()

    def killer():
        rng = random.Random(12)
        while not halt.wait(KILL_EVERY * (0.9 + 0.2 * rng.random())):
            # a worker that started well (the case of the launcher's rule), the longest up: they take turns
            workers = config_workers(la, ready_only=True)
            if not workers:
                continue
            victim = min(workers, key=lambda p: (workers[p], p))
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append((time.monotonic(), victim))
            except ProcessLookupError:
                pass

    load = Load(la, "av")
    k = threading.Thread(target=killer)
    k.start()
    time.sleep(SECONDS)
    halt.set()
    k.join()
    load.stop()
    summary = load.summary("%d kills" % len(kills))
    print("\nkilled workers: " + summary)
    assert len(kills) >= int(0.8 * SECONDS / KILL_EVERY), summary
    assert len(load.results) >= 100, summary
    assert len(load.failed) * 100 < len(load.results), summary
    assert max(r[3] for r in load.results) < CLIENT_TIMEOUT, summary

    wait_until(lambda: all_served(la), timeout=60, what="both config workers serving after the kills")
    load.check_store()
    # the launcher restarted every killed worker at once (it had become ready): no back-off
    text = la.text()
    assert text.count("had started well: restarting it at once") >= len(kills), text[-3000:]
    assert "before it was ready" not in text, text[-3000:]


def test_killed_redis_503_at_once_then_every_acknowledged_write_back(launched):
    la = launched
    load = Load(la, "rd")
    try:
        wait_until(lambda: len(load.acked) >= 20, timeout=30, what="writes before the outage")
        redis = child_named(la, "redis-server")
        assert redis is not None, la.text()[-3000:]
        # the launcher is held back so that the outage lasts while it is observed
        os.kill(la.popen.pid, signal.SIGSTOP)
        try:
            os.kill(redis, signal.SIGKILL)
            n0 = len(load.results)
            wait_until(lambda: len([r for r in load.results[n0:] if r[2] == 503]) >= 20, timeout=30,
                       what="requests answered during the outage")
            t_back = time.monotonic()
        finally:
            os.kill(la.popen.pid, signal.SIGCONT)
        la.wait_for_line(r"redis \(pid %d\) was killed by signal 9" % redis, timeout=10)
        wait_until(lambda: all_served(la), timeout=60, what="requests answered after Redis came back")
        back_after = time.monotonic() - t_back
        n1 = len(load.results)
        wait_until(lambda: len(load.results) >= n1 + 50, timeout=30, what="requests after the outage")
    finally:
        load.stop()
    outage = [r for r in load.failed]
    summary = load.summary("Redis killed once, served again %.1fs after the launcher resumed" % back_after)
    print("\nkilled Redis: " + summary)
    assert outage, summary
    for kind, name, st, secs, hdrs, body in outage:
        assert st == 503, (kind, name, st, body)
        assert secs < 1.0, (kind, name, secs, body)
        assert hdrs.get("retry-after") == "1", hdrs
        err = json.loads(body)
        assert err["error"] == "store_unavailable" and "Redis" in err["message"], err
    # after the restart every request succeeds again
    assert not [r for r in load.results[n1:] if r[2] not in (200, 204)], summary
    load.check_store()
