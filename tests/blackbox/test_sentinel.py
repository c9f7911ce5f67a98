"""Redis replicated with Sentinel, on loopback: a primary, two replicas and three Sentinels. The
workers find the primary through the Sentinels (redis = sentinel://.../xws), follow a failover,
and fail fast while it runs (503, no hang). The primary is killed with kill -9 under write load;
the test prints the timeline (how long writes failed, how many) and checks which acknowledged
writes survived: with asynchronous replication a few may be lost; with redis_wait_replicas = 1
(every write acknowledged only once a replica has it) none is."""

import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN, ENTITY, System, free_port, wait_until

MASTER = "xws"
DEADLINE_MS = 3000


def redis_cmd(port, *args, timeout=2.0):
    """One command over RESP to 127.0.0.1:port; returns the decoded reply (str, int, list, None)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        return _read(f)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError("bad reply %r" % line)


class Replicated:
    """A primary, two replicas and three Sentinels on loopback ports."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="xwss-", dir="/tmp"))
        self.ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs = {}
        for i, port in enumerate(self.ports):
            d = self.dir / ("r%d" % i)
            d.mkdir()
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(d), "--daemonize", "no"]
            if i > 0:
                argv += ["--replicaof", "127.0.0.1", str(self.ports[0])]
            self.procs["redis%d" % i] = self._spawn("redis%d" % i, argv)
        for i in range(3):
            wait_until(lambda: self._ping(self.ports[i]), timeout=10, what="redis %d" % i)
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / ("sentinel%d.conf" % i)
            conf.write_text(
                "port %d\nbind 127.0.0.1\ndir %s\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 10000\n"
                "sentinel parallel-syncs %s 2\n" % (port, self.dir, MASTER, self.ports[0], MASTER, MASTER, MASTER))
            self.procs["sentinel%d" % i] = self._spawn("sentinel%d" % i, ["redis-server", str(conf), "--sentinel"])
        # ready when every Sentinel knows both replicas and the two other Sentinels (quorum)
        def known():
            try:
                for p in self.sentinel_ports:
                    if len(redis_cmd(p, "SENTINEL", "replicas", MASTER) or []) < 2:
                        return False
                    if len(redis_cmd(p, "SENTINEL", "sentinels", MASTER) or []) < 2:
                        return False
                return True
            except OSError:
                return False
        wait_until(known, timeout=60, interval=0.5, what="the Sentinels to know each other and the replicas")
        # and both replicas in sync (they acknowledge the primary's offset)
        wait_until(lambda: redis_cmd(self.ports[0], "WAIT", 2, 500) == 2, timeout=60, interval=0.5,
                   what="the replicas to be in sync")

    def _spawn(self, name, argv):
        log = open(self.dir / (name + ".log"), "ab")
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    @staticmethod
    def _ping(port):
        try:
            return redis_cmd(port, "PING") == "PONG"
        except OSError:
            return False

    def spec(self):
        return "sentinel://" + ",".join("127.0.0.1:%d" % p for p in self.sentinel_ports) + "/" + MASTER

    def primary_port(self):
        host, port = redis_cmd(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name", MASTER)
        return int(port)

    def kill(self, port):
        name = "redis%d" % self.ports.index(port)
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def failover_under_load(extra_env=None):
    """Runs the scenario; returns (timeline dict, lost acknowledged names)."""
    rep = Replicated()
    system = None
    try:
        env = {"XWS_REDIS": rep.spec(), "XWS_REDIS_TIMEOUT_MS": "2000"}
        env.update(extra_env or {})
        system = System(workers=2, deadline_ms=DEADLINE_MS, extra_env=env)
        assert system.post(ENTITY, {"act": "add"}, body={"name": "before", "displayname": "Before"}, auth=ADMIN).status == 200
        old_primary = rep.primary_port()

        results = []  # (start, end, status, name)
        lock = threading.Lock()
        stop = threading.Event()

        def client(k):
            i = 0
            while not stop.is_set():
                name = "c%d_%d" % (k, i)
                i += 1
                t0 = time.monotonic()
                try:
                    status = system.post(ENTITY, {"act": "add"}, body={"name": name, "displayname": "Load %s" % name},
                                         auth=ADMIN, timeout=30).status
                except OSError:
                    status = -1
                with lock:
                    results.append((t0, time.monotonic(), status, name))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        killed_at = time.monotonic()
        rep.kill(old_primary)
        # run until writes have succeeded again for 2 s, 60 s at most
        def recovered():
            with lock:
                ok_after = [r for r in results if r[0] > killed_at and r[2] == 200]
            return ok_after and time.monotonic() - min(r[1] for r in ok_after) > 2
        wait_until(recovered, timeout=60, interval=0.2, what="writes to succeed after the failover")
        stop.set()
        for t in threads:
            t.join()

        failed = [r for r in results if r[2] != 200]
        after = [r for r in results if r[0] >= killed_at]
        first_ok = min((r[1] for r in after if r[2] == 200), default=None)
        timeline = {
            "requests": len(results),
            "failed": len(failed),
            "failed_statuses": sorted(set(r[2] for r in failed)),
            "first_failure_s": round(min((r[1] for r in failed), default=killed_at) - killed_at, 2),
            "writes_back_s": round(first_ok - killed_at, 2) if first_ok else None,
            "longest_request_s": round(max(r[1] - r[0] for r in results), 2),
            "new_primary_differs": rep.primary_port() != old_primary,
        }
        acked = {r[3] for r in results if r[2] == 200} | {"before"}
        listed = system.get(ENTITY, {"act": "list"}, auth=ADMIN).json()
        names = {e["name"] for e in listed}
        lost = sorted(acked - names)
        timeline["acknowledged"] = len(acked)
        timeline["lost"] = len(lost)
        print("failover timeline:", timeline)
        return timeline, lost
    finally:
        if system is not None:
            system.stop()
        rep.stop()


def check_common(timeline):
    assert timeline["new_primary_differs"], timeline
    assert timeline["writes_back_s"] is not None and timeline["writes_back_s"] < 60, timeline
    # fail fast: no request waits much beyond the gateway's deadline, and a failure is a 503 or 504
    assert timeline["longest_request_s"] < DEADLINE_MS / 1000 + 5, timeline
    assert set(timeline["failed_statuses"]) <= {503, 504}, timeline


def test_failover_asynchronous_replication():
    timeline, lost = failover_under_load()
    check_common(timeline)
    # asynchronous replication may lose the last writes before the kill; they are reported above
    assert timeline["lost"] <= timeline["acknowledged"], timeline


def test_failover_with_acknowledged_replication_loses_nothing():
    timeline, lost = failover_under_load({"XWS_REDIS_WAIT_REPLICAS": "1", "XWS_REDIS_WAIT_TIMEOUT_MS": "1000"})
    check_common(timeline)
    assert lost == [], (lost, timeline)
