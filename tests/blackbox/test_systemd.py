"""systemd integration: the gateway and the workers speak the notify protocol (READY=1 once
serving, WATCHDOG=1 from their loops while they turn, STOPPING=1), SIGHUP reopens the gateway's
access log file (log rotation) and stops nobody, and the units that deploy/systemd/install.sh
renders pass `systemd-analyze verify` without a single warning."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ADMIN, BIN_DIR, ENTITY, PROJECT, System, wait_until


def notifications(sock, until):
    """(pid, message) pairs received before the monotonic time until."""
    out = []
    while time.monotonic() < until:
        sock.settimeout(max(0.05, until - time.monotonic()))
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        out.append((pid, data.decode()))
    return out


def test_notify_ready_watchdog_and_stopping():
    d = Path(tempfile.mkdtemp(prefix="xwsn-", dir="/tmp"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(str(d / "notify"))
    try:
        s = System(workers=1, extra_env={"NOTIFY_SOCKET": str(d / "notify"), "WATCHDOG_USEC": "400000"})
        try:
            gw, worker = s.gateway.pid, s.workers[0].pid
            got = notifications(sock, time.monotonic() + 3)
            by = {}
            for pid, msg in got:
                by.setdefault(pid, []).append(msg)
            for pid, who in ((gw, "gateway"), (worker, "worker")):
                msgs = by.get(pid, [])
                assert "READY=1" in msgs, (who, got)
                # WATCHDOG_USEC 0.4 s: one every 0.2 s; a busy machine may delay some, not all
                assert msgs.count("WATCHDOG=1") >= 3, (who, msgs)
        finally:
            s.stop()
        rest = notifications(sock, time.monotonic() + 0.5)
        assert (gw, "STOPPING=1") in rest and (worker, "STOPPING=1") in rest, rest
    finally:
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_sighup_reopens_the_access_log_and_stops_nobody():
    d = Path(tempfile.mkdtemp(prefix="xwsh-", dir="/tmp"))
    log = d / "access.log"
    try:
        s = System(workers=1, extra_env={"XWS_ACCESS_LOG": str(log)})
        try:
            assert s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)
            wait_until(lambda: log.exists() and "act=list" in log.read_text(), timeout=10, what="the first access line")
            log.rename(d / "access.log.1")  # a rotation
            os.kill(s.gateway.pid, signal.SIGHUP)
            os.kill(s.workers[0].pid, signal.SIGHUP)
            wait_until(lambda: log.exists(), timeout=10, what="the access log reopened")
            assert s.get(ENTITY, {"act": "search", "search": "after"}, auth=ADMIN).status == 204
            wait_until(lambda: "act=search" in log.read_text(), timeout=10, what="a line in the new file")
            assert "act=search" not in (d / "access.log.1").read_text()
            s.check_alive()
            assert "log files reopened" in s.gateway.text()
        finally:
            s.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (deploy/install-deps.sh)")
def test_rendered_units_verify_cleanly():
    root = Path(tempfile.mkdtemp(prefix="xwsu-", dir="/tmp"))
    prefix = Path(tempfile.mkdtemp(prefix="xwsp-", dir="/tmp"))
    try:
        # the units name PREFIX/bin/...: install under root, and let PREFIX point at what was installed
        r = subprocess.run([str(PROJECT / "deploy" / "systemd" / "install.sh"), "--build-dir", str(BIN_DIR.parent),
                            "--prefix", str(prefix), "--destdir", str(root)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        prefix.rmdir()
        prefix.symlink_to(root / str(prefix).lstrip("/"))
        units = sorted(p.name for p in (root / "etc/systemd/system").iterdir())
        assert "xws-gateway.service" in units and "xws-config@.service" in units, units
        r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units, cwd=root / "etc/systemd/system",
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr
        text = (root / "etc/systemd/system/xws-gateway.service").read_text()
        assert "Type=notify" in text and "WatchdogSec=" in text
    finally:
        if prefix.is_symlink():
            prefix.unlink()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
