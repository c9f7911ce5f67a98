"""Black-box test fixtures: a real XWS system (redis-server, xws-config workers, xws-gateway)
started from the binaries of $XWS_BIN_DIR (default: build-asan/bin of the project), spoken to over
real HTTPS on loopback.

Each test module gets its own system (module scope), so that modules do not see each other's data.
When a system stops, its processes must still be alive, must stop cleanly on SIGTERM (exit status
0), and their logs must hold no AddressSanitizer/LeakSanitizer/UBSan report; otherwise the
module's teardown fails.

For test modules:
  system                      fixture: System(workers=2) with the admin account ADMIN (acl *)
  System(workers, deadline_ms, blackhole, extra_env, accounts)   a system of one's own; stop() it
  system.get/post/request     HTTPS/1.1 on a fresh connection -> Response(status, headers, body)
  system.curl(..., http2=)    curl with raw control -> (status, headers, body, http version)
  system.cli / cli_ok         xws-config (or binary=...) with the system's settings
  system.call                 xws-call on the system's internal endpoint
  system.start_worker(binary, args), Proc.kill(sig), system.check_alive()
  wait_until(predicate)       poll with a timeout; md5_hex, free_port, sanitizer_reports
Settings reach the processes as XWS_<KEY> environment variables (system.env).
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("XWS_BIN_DIR", PROJECT / "build-asan" / "bin"))
if not BIN_DIR.is_absolute():
    BIN_DIR = (PROJECT / BIN_DIR).resolve()
JSON_SUITE = PROJECT.parent / "shared" / "testdata" / "json-test-suite" / "test_parsing"

ADMIN = ("admin", "admin-secret-1")

ENTITY = "/xivo/configuration/json.php/restricted/manage/entity/"
ENTITY_PRIVATE = "/xivo/configuration/json.php/private/manage/entity/"
CHECK = "/xivo/configuration/json.php/restricted/check/"
CONTEXT_PRIVATE = "/service/ipbx/json.php/private/system_management/context/"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# Sanitizer defaults when the suite is run by hand (tests/run-all.sh sets the same).
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

_SSL = ssl.create_default_context()
_SSL.check_hostname = False
_SSL.verify_mode = ssl.CERT_NONE


class Response:
    """A complete HTTP answer: status, headers (lower-case names), body bytes."""

    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:300])


def basic(login, password):
    raw = ("%s:%s" % (login, password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def redis_cli(system, *args):
    """redis-cli with args against system's Redis (its unix socket): the output as text (bytes
    that are not UTF-8, such as msgpack records, escaped); fails the test when the command fails."""
    r = subprocess.run(["redis-cli", "-s", str(system.dir / "redis.sock")] + [str(a) for a in args],
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r
    return r.stdout.decode(errors="backslashreplace")


def wait_until(predicate, timeout=10.0, interval=0.1, what="condition"):
    """Polls predicate() until it returns a true value; returns it, or fails the test."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


class Proc:
    """One child process with its output in a log file."""

    def __init__(self, name, argv, env, cwd, log_dir):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / (name + ".log")
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.expected_dead = False

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Sends sig; a process killed on purpose is not reported as a crash."""
        self.expected_dead = True
        if self.alive():
            os.kill(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status (negative: killed by that signal)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                self.log.close()
                return "did not stop within %ds of SIGTERM" % timeout
        self.log.close()
        return self.popen.returncode

    def text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def sanitizer_reports(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


class System:
    """A running XWS instance: redis-server, workers, gateway, all in one short temp directory."""

    def __init__(self, workers=1, deadline_ms=None, blackhole=False, extra_env=None, accounts=True):
        need = ["xws-gateway"] + (["xws-config"] if workers or accounts else [])
        for b in need:
            if not (BIN_DIR / b).is_file():
                pytest.fail("binary %s missing in %s (XWS_BIN_DIR)" % (b, BIN_DIR))
        # ipc paths are limited to 107 bytes: keep the directory short.
        self.dir = Path(tempfile.mkdtemp(prefix="xwst-", dir="/tmp"))
        self.port = free_port()
        self.procs = []
        self.workers = []
        self.gateway = None
        self.redis = None
        self.problems = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
        env.update(
            {
                "XWS_RUN_DIR": str(self.dir),
                "XWS_REDIS": "unix:%s/redis.sock" % self.dir,
                "XWS_LISTEN": "127.0.0.1:%d" % self.port,
                "XWS_DATA_DIR": str(self.dir / "data"),
                "XWS_WORKER_ENDPOINTS": "ipc://%s/workers.ipc" % self.dir,
                "XWS_INTERNAL_ENDPOINT": "ipc://%s/internal.ipc" % self.dir,
                "XWS_ACCOUNTS_REFRESH_MS": "200",
                # under AddressSanitizer a password check takes seconds of CPU: at a lower priority
                # on a loaded machine it would outlast the request deadlines (test_throttle
                # measures the default)
                "XWS_VERIFY_NICE": "0",
            }
        )
        if deadline_ms is not None:
            env["XWS_DEADLINE_MS"] = str(deadline_ms)
        env.update(extra_env or {})
        self.env = env
        self.internal_endpoint = env["XWS_INTERNAL_ENDPOINT"]
        try:
            self._start_redis()
            if accounts:
                self.cli_ok("account", "add", "admin", "--login", ADMIN[0], "--password", ADMIN[1], "--acl", "*")
            for _ in range(workers):
                self.start_worker()
            if blackhole:
                self.start_blackhole()
            self.start_gateway()
            if workers and accounts:
                wait_until(
                    lambda: self.get(CHECK, auth=ADMIN).status == 200,
                    timeout=20,
                    what="the gateway to accept the admin account",
                )
        except BaseException:
            self.stop(check=False)
            raise

    # ---- processes ---------------------------------------------------------------------------

    def _spawn(self, name, argv):
        p = Proc(name, argv, self.env, self.dir, self.dir)
        self.procs.append(p)
        return p

    def _start_redis(self):
        sock = self.dir / "redis.sock"
        self.redis = self._spawn(
            "redis",
            [
                "redis-server",
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--daemonize", "no",
            ],
        )

        def ping():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect(str(sock))
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(ping, timeout=10, what="redis-server")

    def start_worker(self, binary="xws-config", args=()):
        p = self._spawn("%s-%d" % (binary, len(self.procs)), [BIN_DIR / binary] + list(args))
        self.workers.append(p)
        return p

    def start_services(self, workers, ready, args=("-v",)):
        """Starts workers[binary] instances of each service binary (args on each command line: -v
        logs one line per request) and waits until every path in ready answers its list with 204
        (an empty store) through the gateway: their workers are registered."""
        for binary, count in workers.items():
            for _ in range(count):
                self.start_worker(binary, args)
        for path in ready:
            wait_until(lambda: self.get(path, {"act": "list"}, auth=ADMIN).status == 204, timeout=20,
                       what="the workers of " + path)

    def start_blackhole(self):
        b = BIN_DIR / "xws-test-blackhole"
        if not b.is_file():
            pytest.fail("binary %s missing" % b)
        p = self._spawn("blackhole-%d" % len(self.procs), [b])
        self.workers.append(p)
        return p

    def start_gateway(self):
        self.gateway = self._spawn("xws-gateway", [BIN_DIR / "xws-gateway"])

        def up():
            if not self.gateway.alive():
                pytest.fail("the gateway exited at start:\n" + self.gateway.text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(up, timeout=20, what="the gateway to listen")
        return self.gateway

    def check_alive(self):
        """Fails when a process that should run has died."""
        dead = [p for p in self.procs if not p.expected_dead and not p.alive()]
        if dead:
            msg = []
            for p in dead:
                msg.append("%s (pid %d) died with status %s; log tail:\n%s" % (p.name, p.pid, p.popen.returncode, p.text()[-3000:]))
            pytest.fail("\n".join(msg))

    def sanitizer_problems(self):
        out = []
        for p in self.procs:
            reports = sanitizer_reports(p.text())
            if reports:
                out.append("%s: %s (see %s)" % (p.name, reports[0], p.log_path))
        return out

    def stop(self, check=True):
        """Stops the gateway, then the workers, then Redis; with check, fails on any crash,
        unclean exit or sanitizer report."""
        problems = list(self.problems)
        if check:
            problems += self.fsck_problems()
        order = [p for p in self.procs if p is self.gateway]
        order += [p for p in self.procs if p is not self.gateway and p is not self.redis]
        order += [self.redis] if self.redis else []
        for p in order:
            was_alive = p.alive()
            status = p.stop()
            if p.expected_dead:
                continue
            if not was_alive:
                problems.append("%s (pid %d) had died with status %s before the end" % (p.name, p.pid, status))
            elif status != 0:
                problems.append("%s (pid %d) did not stop cleanly on SIGTERM: status %s" % (p.name, p.pid, status))
        problems += self.sanitizer_problems()
        keep = os.environ.get("XWS_KEEP_LOGS")
        if check and problems:
            pytest.fail("system in %s:\n  " % self.dir + "\n  ".join(problems) + "\n" + self._log_tails(), pytrace=False)
        if not keep and not problems:
            shutil.rmtree(self.dir, ignore_errors=True)

    def fsck_problems(self):
        """Runs xws-fsck (when built) against this system's Redis while it still runs: the
        inconsistencies it finds in the store, as problems (none when Redis is not running)."""
        fsck = BIN_DIR / "xws-fsck"
        if not fsck.is_file() or self.redis is None or not self.redis.alive() or self.redis.expected_dead:
            return []
        try:
            r = subprocess.run([str(fsck), "-t", "60000"], env=self.env, cwd=str(self.dir), capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            return ["xws-fsck did not finish within 120 s"]
        out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
        reports = sanitizer_reports(err)
        if reports:
            return ["xws-fsck: %s" % reports[0]]
        if r.returncode == 0:
            return []
        if r.returncode == 1:
            return ["xws-fsck found inconsistencies in the store:\n    " + "\n    ".join(out.splitlines())]
        return ["xws-fsck could not check the store (status %d): %s" % (r.returncode, err.strip()[-500:])]

    def _log_tails(self):
        out = []
        for p in self.procs:
            out.append("---- %s (%s), last lines:\n%s" % (p.name, p.log_path, "\n".join(p.text().splitlines()[-25:])))
        return "\n".join(out)

    # ---- command-line tools ------------------------------------------------------------------

    def cli(self, *args, binary="xws-config", input=None, timeout=30):
        """Runs a project CLI with this system's settings; returns the CompletedProcess."""
        r = subprocess.run(
            [str(BIN_DIR / binary)] + [str(a) for a in args],
            env=self.env,
            cwd=str(self.dir),
            input=input,
            capture_output=True,
            timeout=timeout,
        )
        for stream in (r.stdout, r.stderr):
            reports = sanitizer_reports(stream.decode("utf-8", "replace"))
            if reports:
                self.problems.append("%s %s: %s" % (binary, " ".join(map(str, args)), reports[0]))
        return r

    def cli_ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        if r.returncode != 0:
            pytest.fail("%s failed (%d): %s %s" % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r

    def call(self, *args, input=None, timeout=30):
        """Runs xws-call against this system's internal endpoint."""
        return self.cli("-e", self.internal_endpoint, *args, binary="xws-call", input=input, timeout=timeout)

    # ---- HTTPS ---------------------------------------------------------------------------------

    def request(self, method, path, query=None, body=None, auth=None, headers=None, timeout=30, source=None):
        """One HTTPS/1.1 request on a fresh connection; returns a Response.
        query: dict/list of pairs (urlencoded) or a raw string; body: bytes, str, or a JSON value;
        auth: (login, password) or a raw Authorization header value; source: the client address
        to connect from (any 127.x.y.z works on loopback)."""
        target = path
        if query is not None:
            q = query if isinstance(query, str) else urllib.parse.urlencode(query)
            target += "?" + q
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = basic(*auth) if isinstance(auth, tuple) else auth
        data = None
        if body is not None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data = body.encode("utf-8")
            else:
                data = json.dumps(body).encode("utf-8")
                hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=_SSL, timeout=timeout, source_address=(source, 0) if source else None
        )
        t0 = time.monotonic()
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if data is not None or method in ("POST", "PUT"):
                conn.putheader("Content-Length", str(len(data or b"")))
            conn.endheaders(data)
            r = conn.getresponse()
            payload = r.read()
            hs = {k.lower(): v for k, v in r.getheaders()}
            return Response(r.status, hs, payload, time.monotonic() - t0)
        finally:
            conn.close()

    def get(self, path, query=None, **kw):
        return self.request("GET", path, query=query, **kw)

    def post(self, path, query=None, body=None, **kw):
        return self.request("POST", path, query=query, body=body, **kw)

    def curl(self, *args, http2=False, timeout=30):
        """Runs curl against this system; returns (status, headers dict, body bytes, http_version)."""
        hdr_file = self.dir / ("curl-h-%d" % time.monotonic_ns())
        argv = ["curl", "-sk", "-o", "-", "-D", str(hdr_file), "-w", "", "--max-time", str(timeout)]
        argv.append("--http2" if http2 else "--http1.1")
        argv += [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, timeout=timeout + 5)
        try:
            raw = hdr_file.read_text(errors="replace")
        finally:
            hdr_file.unlink(missing_ok=True)
        status, version, headers = None, None, {}
        for line in raw.splitlines():
            if line.startswith("HTTP/"):
                parts = line.split()
                version, status, headers = parts[0], int(parts[1]), {}
            elif ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, r.stdout, version

    def url(self, path, query=None):
        u = "https://127.0.0.1:%d%s" % (self.port, path)
        if query:
            u += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
        return u


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system():
    """A system with two xws-config workers and the admin account (acl *)."""
    s = System(workers=2)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _processes_still_alive(request):
    """After every test that used a system, its processes must still be running."""
    yield
    for name in ("system",):
        if name in request.fixturenames:
            request.getfixturevalue(name).check_alive()


# ---- helpers for entity bodies -------------------------------------------------------------------


def entity_body(name, displayname=None, **fields):
    body = {"name": name, "displayname": displayname or ("Entity " + name)}
    body.update(fields)
    return body


def list_entities(system, private=False):
    """The entity list as (status, body bytes)."""
    r = system.get(ENTITY_PRIVATE if private else ENTITY, {"act": "list"}, auth=None if private else ADMIN)
    assert r.status in (200, 204), r
    return r.status, r.body
