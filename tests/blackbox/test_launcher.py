"""deploy/xws-launch: starts Redis, the workers and the gateway, prints how to log in, restarts
a crashed worker, stops everything on SIGTERM, and keeps the data from one start to the next."""

import http.client
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import BIN_DIR, ENTITY, PROJECT, Response, System, _SSL, basic, free_port, sanitizer_reports, wait_until

LAUNCH = PROJECT / "deploy" / "xws-launch"


class Launcher:
    def __init__(self, run_dir, port, *extra, env_extra=None, bin_dir=BIN_DIR, umask=None):
        self.port = port
        env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
        env["XWS_ACCOUNTS_REFRESH_MS"] = "200"
        env.update(env_extra or {})
        self.popen = subprocess.Popen(
            [str(LAUNCH), "--bin-dir", str(bin_dir), "--run-dir", str(run_dir), "--port", str(port)] + list(extra),
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
        )
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.popen.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self):
        return "\n".join(self.lines)

    def wait_for_line(self, pattern, timeout=60):
        """Waits until a line of the launcher's output matches pattern; returns the match."""
        rx = re.compile(pattern)

        def found():
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.popen.poll() is not None:
                pytest.fail("the launcher exited:\n" + self.text())
            return None

        return wait_until(found, timeout=timeout, what="launcher output %r" % pattern)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        rc = self.popen.wait(timeout=60)
        self.reader.join(timeout=5)
        return rc

    def get(self, path, query, auth):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=_SSL, timeout=10)
        try:
            conn.request("GET", path + "?" + query, headers={"Authorization": basic(*auth)})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), 0)
        finally:
            conn.close()

    def post(self, path, query, body, auth):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=_SSL, timeout=10)
        try:
            conn.request("POST", path + "?" + query, body=body, headers={"Authorization": basic(*auth)})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), 0)
        finally:
            conn.close()


@pytest.fixture
def run_dir():
    d = Path(tempfile.mkdtemp(prefix="xwsl-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def cmdline(pid):
    """The command line of pid, "" when it is gone (the launcher's short-lived children, such as
    its readiness probes, may end between the listing and the reading)."""
    try:
        return Path("/proc/%d/cmdline" % pid).read_text(errors="replace")
    except OSError:
        return ""


def test_launch_first_start_restart_and_data_kept(run_dir):
    if not (BIN_DIR / "xws-config").is_file() or not (BIN_DIR / "xws-gateway").is_file():
        pytest.fail("xws-config or xws-gateway missing in %s" % BIN_DIR)
    port = free_port()
    la = Launcher(run_dir, port, "--login", "chief", "--password", "chief-pass-1")
    try:
        la.wait_for_line(r"XWS is running at https://127\.0\.0\.1:%d" % port)
        la.wait_for_line(r"try:  curl")  # the last line of the block
        out = la.text()
        assert "login:    chief" in out, out
        assert "password: chief-pass-1" in out, out
        assert "curl -k -u 'chief:chief-pass-1'" in out
        # it waited for the gateway's readiness (every service reaches Redis)
        assert "not ready" not in out and "does not answer" not in out, out
        auth = ("chief", "chief-pass-1")
        wait_until(lambda: la.get(ENTITY, "act=list", auth).status in (200, 204), timeout=20, what="first request")
        r = la.post(ENTITY, "act=add", b'{"name":"kept","displayname":"Kept Across Restarts"}', auth)
        assert r.status == 200, r
        # a crashed worker is restarted by the launcher
        lpid = la.popen.pid
        workers = [p for p in children_of(lpid) if "xws-config" in cmdline(p)]
        assert workers, la.text()
        os.kill(workers[0], signal.SIGKILL)
        la.wait_for_line(r"config(\.\d+)? .* was killed by signal 9", timeout=10)
        la.wait_for_line(r"config(\.\d+)? restarted", timeout=15)
        wait_until(lambda: la.get(ENTITY, "act=list", auth).status == 200, timeout=20, what="requests after restart")
    finally:
        rc = la.stop()
    text = la.text()
    assert rc == 0, text
    assert "stopped" in text
    assert not sanitizer_reports(text), sanitizer_reports(text)
    assert "Redis is now ready to exit" in text
    # the readiness wait left 200 lines in the access log, no 401
    assert re.search(r"GET /status/ready act=- 200 ", text), text
    assert not re.search(r" act=\S* 401 ", text), text
    assert not children_of(la.popen.pid)
    assert (run_dir / "redis" / "appendonlydir").is_dir()
    # a clean stop leaves no socket file behind
    assert not [p for p in run_dir.rglob("*") if p.is_socket()], list(run_dir.rglob("*"))

    # second start: the account exists, the data are still there
    la2 = Launcher(run_dir, port, "--login", "chief", "--password", "other-pass")
    try:
        la2.wait_for_line(r"XWS is running")
        la2.wait_for_line(r"already exist")
        assert "other-pass" not in la2.text()
        wait_until(lambda: la2.get(ENTITY, "act=list", ("chief", "chief-pass-1")).status == 200, timeout=20,
                   what="the old account after a restart")
        r = la2.get(ENTITY, "act=search&search=kept", ("chief", "chief-pass-1"))
        assert r.status == 200 and [e["name"] for e in r.json()] == ["kept"], r
    finally:
        rc2 = la2.stop()
    assert rc2 == 0
    assert not sanitizer_reports(la2.text())


def test_launch_refuses_a_busy_port(run_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([str(LAUNCH), "--bin-dir", str(BIN_DIR), "--run-dir", str(run_dir), "--port", str(port)],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "in use" in r.stderr


def test_launch_long_run_dir_uses_short_socket_dir(run_dir):
    long_dir = run_dir / ("x" * 60) / ("y" * 60)
    port = free_port()
    la = Launcher(long_dir, port, "--login", "l", "--password", "long-pass-1")
    try:
        la.wait_for_line(r"XWS is running", timeout=60)
        assert "sockets are in /tmp/xws-" in la.text()
        wait_until(lambda: la.get(ENTITY, "act=list", ("l", "long-pass-1")).status in (200, 204), timeout=20,
                   what="requests with a long run directory")
    finally:
        rc = la.stop()
    assert rc == 0, la.text()
    assert not sanitizer_reports(la.text())
    m = re.search(r"sockets are in (/tmp/xws-[0-9a-f]+)", la.text())
    if m:
        shutil.rmtree(m.group(1), ignore_errors=True)


def test_launch_keeps_secrets_local(run_dir):
    """Under a permissive umask (022) nothing of the instance is readable by other local users
    (Redis's append-only files hold the password hashes; the ipc sockets accept any local peer),
    and the first password, from a file (a container secret), never appears on a command line
    nor in the output."""
    shim = run_dir / "bin"
    shim.mkdir()
    argv_log = run_dir / "xws-config.argv"
    for f in BIN_DIR.iterdir():
        if f.name != "xws-config":
            (shim / f.name).symlink_to(f)
    (shim / "xws-config").write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\nexec "%s" "$@"\n'
                                     % (argv_log, BIN_DIR / "xws-config"))
    (shim / "xws-config").chmod(0o755)
    secret = run_dir / "admin-password"
    secret.write_text("file-secret-pass-7\n")
    data = run_dir / "data"
    port = free_port()
    la = Launcher(data, port, "--login", "boss", env_extra={"XWS_ADMIN_PASSWORD_FILE": str(secret)},
                  bin_dir=shim, umask=0o022)
    try:
        la.wait_for_line(r"XWS is running", timeout=60)
        wait_until(lambda: la.get(ENTITY, "act=list", ("boss", "file-secret-pass-7")).status in (200, 204),
                   timeout=20, what="login with the password of the file")
        assert la.get(ENTITY, "act=list", ("boss", "wrong-pass-7")).status == 401
        open_to_others = []
        for root, dirs, files in os.walk(data):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                    open_to_others.append((os.path.join(root, name), oct(st.st_mode)))
        assert os.stat(data).st_mode & 0o077 == 0
        assert not open_to_others, open_to_others
        sockets = [p for p in data.rglob("*") if p.is_socket()]
        m = re.search(r"sockets are in (/tmp/xws-[0-9a-f]+)", la.text())
        if m:
            sockets += [p for p in Path(m.group(1)).iterdir() if p.is_socket()]
        assert sockets, "no ipc socket found"
        assert all(os.stat(p).st_mode & 0o077 == 0 for p in sockets), [(p, oct(os.stat(p).st_mode)) for p in sockets]
    finally:
        rc = la.stop()
    out = la.text()
    assert rc == 0, out
    assert "file-secret-pass-7" not in out
    assert "the first line of %s" % secret in out
    calls = argv_log.read_text()
    assert "ensure-initial" in calls and "--password-stdin" in calls, calls
    assert "file-secret-pass-7" not in calls, calls


def test_launch_restarts_at_once_what_had_started_well_and_backs_off_what_fails_before_ready(run_dir):
    """A worker that became ready (it wrote its health file) and is killed is started again at once;
    one that fails before it is ready waits 1 s, then 2 s, ...; once ready again, its next crash
    is restarted at once."""
    shim = run_dir / "bin"
    shim.mkdir()
    broken = run_dir / "broken"
    for f in BIN_DIR.iterdir():
        if f.name != "xws-extensions":
            (shim / f.name).symlink_to(f)
    # while the file "broken" exists, the extensions worker fails at once (as with a bad setting)
    (shim / "xws-extensions").write_text('#!/bin/sh\ncase "$1" in --check-config) ;; *) [ -e "%s" ] && exit 3 ;; esac\n'
                                         'exec "%s" "$@"\n' % (broken, BIN_DIR / "xws-extensions"))
    (shim / "xws-extensions").chmod(0o755)
    port = free_port()
    la = Launcher(run_dir / "data", port, "--login", "l", "--password", "back-off-pass-1", "--workers", "1", bin_dir=shim)

    def extensions_pid():
        for pid in children_of(la.popen.pid):
            try:
                if Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[0].endswith(b"/xws-extensions"):
                    return pid
            except OSError:
                pass
        return None

    try:
        la.wait_for_line(r"XWS is running", timeout=60)
        # ready: its health file, which the launcher names for it
        wait_until(lambda: (run_dir / "data" / "health" / "extensions").exists(), timeout=30, what="the health file")
        broken.touch()
        first = extensions_pid()
        assert first is not None, la.text()
        os.kill(first, signal.SIGKILL)
        la.wait_for_line(r"extensions \(pid %d\) was killed by signal 9 after \d+s; it had started well: restarting it at once"
                         % first, timeout=10)
        la.wait_for_line(r"extensions \(pid \d+\) exited with status 3 after \d+s, before it was ready; restarting it in 1s")
        la.wait_for_line(r"extensions \(pid \d+\) exited with status 3 after \d+s, before it was ready; restarting it in 2s")
        broken.unlink()
        # it starts for real, becomes ready, and its next crash is restarted at once again
        wait_until(lambda: (run_dir / "data" / "health" / "extensions").exists() and extensions_pid(), timeout=30,
                   what="the extensions worker ready again")
        again = extensions_pid()
        os.kill(again, signal.SIGKILL)
        la.wait_for_line(r"extensions \(pid %d\) was killed by signal 9 after \d+s; it had started well: restarting it at once"
                         % again, timeout=10)
    finally:
        rc = la.stop()
        print("\n".join(line for line in la.lines if " act=" not in line))  # shown when the test fails
    assert rc == 0, la.text()
    assert not sanitizer_reports(la.text())
    # the launcher's own lines only, no job notice of the shell ("line 227: 4242 Killed ...")
    assert not re.search(r"line \d+: +\d+ Killed", la.text()), la.text()


@pytest.mark.parametrize("access,mode", [(None, 0o700), ("yes", 0o770)])
def test_ipc_sockets_are_the_owners_unless_shared_with_the_group(access, mode):
    """The gateway's ipc sockets are 0700 whatever the umask, 0770 with ipc_group_access = yes."""
    old = os.umask(0o002)
    try:
        s = System(workers=1, extra_env={"XWS_IPC_GROUP_ACCESS": access} if access else None)
    finally:
        os.umask(old)
    try:
        for name in ("workers.ipc", "internal.ipc"):
            assert stat.S_IMODE(os.stat(s.dir / name).st_mode) == mode, (name, oct(os.stat(s.dir / name).st_mode))
    finally:
        s.stop()
