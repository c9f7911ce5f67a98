"""CURVE on the gateway's ZeroMQ endpoints, over real tcp://127.0.0.1 and real HTTPS: key pairs
made by xws-keys; a worker with an allowed key serves, a worker with an unknown key or with no key
is refused (never registered, never served a request) and the refusal is logged, once for a peer
that keeps trying; internal consumers likewise, with the caller account taken from the consumer's
key whatever the request says; allow-lists read again at each connection (rotation without a
restart); the settings the gateway refuses at start."""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import ADMIN, BIN_DIR, CHECK, ENTITY, System, free_port, wait_until

NEEDED = ["xws-keys", "xws-call", "xws-gateway", "xws-config"]


@pytest.fixture(scope="module", autouse=True)
def need_binaries():
    for b in NEEDED:
        if not (BIN_DIR / b).is_file():
            pytest.fail("binary %s missing in %s" % (b, BIN_DIR))


def make_key(directory, name):
    """Runs xws-keys; returns the public key (Z85)."""
    r = subprocess.run([str(BIN_DIR / "xws-keys"), "-d", str(directory), name], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    m = re.match(r"public key (\S{40})\n", r.stdout)
    assert m, r.stdout
    return m.group(1)


class Keys:
    """Key pairs in a directory of their own: the gateway's, an allowed worker's and consumer's, a
    stranger's; the allow-list directories hold the public files of the allowed ones."""

    def __init__(self, root):
        self.root = root
        self.public = {n: make_key(root, n) for n in ("gateway", "gateway2", "worker", "consumer", "stranger")}
        self.workers_dir = root / "workers"
        self.clients_dir = root / "clients"
        for d, name in ((self.workers_dir, "worker"), (self.clients_dir, "consumer")):
            d.mkdir()
            shutil.copy(root / ("%s.key" % name), d / ("%s.key" % name))

    def secret(self, name):
        return str(self.root / ("%s.key_secret" % name))

    def pub(self, name):
        return str(self.root / ("%s.key" % name))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return Keys(tmp_path_factory.mktemp("curve"))


def curve_env(keys, worker_ep, internal_ep):
    """Settings of a system whose two endpoints are CURVE servers on loopback tcp; the workers and
    xws-call get the allowed keys (a test starts others with other settings)."""
    return {
        "XWS_WORKER_ENDPOINTS": worker_ep,
        "XWS_INTERNAL_ENDPOINT": internal_ep,
        "XWS_CURVE_SECRET_KEY": keys.secret("gateway"),
        "XWS_CURVE_WORKERS_DIR": str(keys.workers_dir),
        "XWS_CURVE_CLIENTS_DIR": str(keys.clients_dir),
        "XWS_CURVE_WORKER_KEY": keys.secret("worker"),
        "XWS_CURVE_CLIENT_KEY": keys.secret("consumer"),
        "XWS_CURVE_GATEWAY_KEY": keys.pub("gateway"),
    }


@pytest.fixture(scope="module")
def curve(keys):
    """A system without workers yet: the tests start them."""
    s = System(workers=0, extra_env=curve_env(keys, "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()))
    yield s
    s.stop()


def spawn(system, name, argv, drop=(), **env):
    """Starts a process of the system with some settings changed (env) or removed (drop)."""
    saved = system.env
    system.env = {k: v for k, v in saved.items() if k not in drop}
    system.env.update(env)
    try:
        return system._spawn(name, argv)
    finally:
        system.env = saved


def call(system, *args, drop=(), timeout_ms=None, **env):
    """xws-call on the system's internal endpoint, with some settings changed or removed."""
    saved = system.env
    system.env = {k: v for k, v in saved.items() if k not in drop}
    system.env.update(env)
    try:
        extra = ["-t", str(timeout_ms)] if timeout_ms else []
        return system.call(*(extra + list(args)))
    finally:
        system.env = saved


def stop(proc):
    """Stops a process a test started; it must stop cleanly."""
    status = proc.stop()
    proc.expected_dead = True
    assert status == 0, (proc.name, status, proc.text()[-2000:])


def refusals(system, domain, key):
    return system.gateway.text().count("CURVE: refused a peer on the %s endpoint: key %s," % (domain, key))


def status_line(r):
    lines = [l for l in r.stderr.decode("utf-8", "replace").splitlines() if l.startswith("status ")]
    assert lines, r.stderr
    return int(lines[-1].split()[1])


NO_KEY = ("XWS_CURVE_WORKER_KEY", "XWS_CURVE_GATEWAY_KEY", "XWS_CURVE_CLIENT_KEY")


def test_workers_without_an_allowed_key_are_refused_and_logged(curve, keys):
    t0 = time.monotonic()
    stranger = spawn(curve, "worker-stranger", [BIN_DIR / "xws-config"], XWS_CURVE_WORKER_KEY=keys.secret("stranger"))
    keyless = spawn(curve, "worker-keyless", [BIN_DIR / "xws-config"], drop=NO_KEY)
    wait_until(lambda: refusals(curve, "workers", keys.public["stranger"]) >= 1, timeout=30,
               what="the gateway to log the refused key")
    # (whichever side notices the missing key first: "does not speak CURVE" or "broke off the handshake")
    wait_until(lambda: "CURVE: refused a peer on the workers endpoint: key (none)" in curve.gateway.text(), timeout=30,
               what="the gateway to log the keyless worker")
    # neither registered: no worker serves the config service
    assert curve.get(ENTITY, {"act": "list"}, auth=ADMIN).status == 503
    # the allowed worker serves
    good = spawn(curve, "worker-good", [BIN_DIR / "xws-config"])
    wait_until(lambda: curve.get(CHECK, auth=ADMIN).status == 200, timeout=30, what="the allowed worker to serve")
    assert curve.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)
    log = curve.gateway.text()
    assert "CURVE: accepted worker (key %s)" % keys.public["worker"] in log, log[-3000:]
    assert "worker config-%d ready for config (credit 64, 1 worker(s), CURVE key worker)" % good.pid in log
    for p in (stranger, keyless):
        assert p.alive(), p.text()[-2000:]
        assert "worker config-%d ready" % p.pid not in log
        assert "is talking to this worker" not in p.text()
    # a peer that keeps reconnecting is logged once a minute, not at each attempt
    assert refusals(curve, "workers", keys.public["stranger"]) <= 1 + int((time.monotonic() - t0) / 60)
    stop(stranger)
    stop(keyless)


def test_consumers_are_refused_without_an_allowed_key(curve, keys):
    r = call(curve, "config", "entity", "list", timeout_ms=1500, XWS_CURVE_CLIENT_KEY=keys.secret("stranger"))
    assert r.returncode == 3, r  # no reply
    wait_until(lambda: refusals(curve, "internal", keys.public["stranger"]) >= 1, timeout=10,
               what="the refused consumer key in the log")
    r = call(curve, "config", "entity", "list", timeout_ms=1500, drop=NO_KEY)
    assert r.returncode == 3, r
    wait_until(lambda: "CURVE: refused a peer on the internal endpoint: key (none)" in curve.gateway.text(), timeout=10,
               what="the keyless consumer in the log")
    # the worker key is for the worker plane only: separate allow-lists
    r = call(curve, "config", "entity", "list", timeout_ms=1500, XWS_CURVE_CLIENT_KEY=keys.secret("worker"))
    assert r.returncode == 3, r
    wait_until(lambda: refusals(curve, "internal", keys.public["worker"]) >= 1, timeout=10,
               what="the worker key refused on the internal endpoint")
    # nothing of theirs reached a service
    assert " internal ZMQ /config/entity act=list " not in curve.gateway.text()


def test_consumer_caller_is_its_key_not_what_it_claims(curve, keys):
    wait_until(lambda: curve.get(CHECK, auth=ADMIN).status == 200, timeout=30, what="a worker")
    r = call(curve, "-a", "admin", "-p", "id=424242", "config", "entity", "view")
    assert status_line(r) == 404, r
    r = call(curve, "config", "entity", "add", '{"name": "bycurve", "displayname": "By CURVE"}')
    assert r.returncode == 0 and status_line(r) == 200, r
    wait_until(lambda: " internal ZMQ /config/entity act=view 404 " in curve.gateway.text(), timeout=10,
               what="the access-log line")
    line = [l for l in curve.gateway.text().splitlines() if " internal ZMQ /config/entity act=view 404 " in l][-1]
    assert line.endswith(" account=consumer"), line
    assert [e["name"] for e in curve.get(ENTITY, {"act": "list"}, auth=ADMIN).json()] == ["bycurve"]


def test_bootstrap_over_curve(curve, keys, tmp_path):
    """xws-bootstrap speaks CURVE with the consumer's settings; a refused key applies nothing."""
    data = tmp_path / "boot.json"
    data.write_text(json.dumps({"version": 1, "items": [{"key": "entity/curved", "service": "config", "resource": "entity",
                                                          "act": "add", "body": {"name": "curved", "displayname": "Curved"}}]}))
    r = curve.cli("-w", "2", str(data), binary="xws-bootstrap")  # the consumer's key from the system's settings
    assert r.returncode == 0, r
    assert "curved" in [e["name"] for e in curve.get(ENTITY, {"act": "list"}, auth=ADMIN).json()]
    saved = curve.env
    curve.env = dict(saved, XWS_CURVE_CLIENT_KEY=keys.pub("consumer"))  # no secret key in it
    try:
        r = curve.cli("-w", "2", str(data), binary="xws-bootstrap")
    finally:
        curve.env = saved
    assert r.returncode == 2 and b"holds no secret key" in r.stderr, r


def test_allow_list_changes_take_effect_without_a_restart(curve, keys):
    """Rotation: a public key added to the allow-list directory is accepted at the next
    connection, and refused again once its file is removed; the gateway keeps running."""
    wait_until(lambda: curve.get(CHECK, auth=ADMIN).status == 200, timeout=30, what="a worker")
    added = keys.clients_dir / "newcomer.key"
    shutil.copy(keys.pub("stranger"), added)
    r = call(curve, "config", "entity", "list", XWS_CURVE_CLIENT_KEY=keys.secret("stranger"))
    assert r.returncode == 0 and status_line(r) == 200, r
    assert "CURVE: accepted stranger (key %s)" % keys.public["stranger"] in curve.gateway.text()
    added.unlink()
    r = call(curve, "config", "entity", "list", timeout_ms=1500, XWS_CURVE_CLIENT_KEY=keys.secret("stranger"))
    assert r.returncode == 3, r
    # a new worker key: allowed by adding its file, no gateway restart
    make_key(keys.root, "worker2")
    shutil.copy(keys.pub("worker2"), keys.workers_dir / "worker2.key")
    w2 = spawn(curve, "worker-2", [BIN_DIR / "xws-config"], XWS_CURVE_WORKER_KEY=keys.secret("worker2"))
    wait_until(lambda: "worker config-%d ready" % w2.pid in curve.gateway.text(), timeout=30, what="the new worker")
    assert "CURVE: accepted worker2 " in curve.gateway.text()


def test_worker_with_a_wrong_gateway_key_is_refused(curve, keys):
    p = spawn(curve, "worker-wrong-server", [BIN_DIR / "xws-config"], XWS_CURVE_GATEWAY_KEY=keys.pub("gateway2"))
    wait_until(lambda: "does not decrypt" in curve.gateway.text(), timeout=30, what="the failed handshake in the log")
    assert "worker config-%d ready" % p.pid not in curve.gateway.text()
    stop(p)


def test_gateway_key_rotation_needs_no_worker_restart(curve, keys):
    """A gateway's new key pair: its workers get the new public key first (the file replaced
    atomically), then the gateway restarts with the new secret; a worker reads the certificate
    again when it reconnects after the gateway's silence, and serves again without a restart."""
    current = keys.root / "current-gateway.key"
    shutil.copy(keys.pub("gateway"), current)
    w = spawn(curve, "worker-rotating", [BIN_DIR / "xws-config"], XWS_CURVE_GATEWAY_KEY=str(current))
    ready = "worker config-%d ready" % w.pid
    wait_until(lambda: ready in curve.gateway.text(), timeout=30, what="the worker to register")
    make_key(keys.root, "gateway-new")
    shutil.copy(keys.pub("gateway-new"), keys.root / "current-gateway.key.new")
    os.replace(keys.root / "current-gateway.key.new", current)
    before = curve.gateway.text().count(ready)  # the restarted gateway appends to the same log
    stop(curve.gateway)
    saved = curve.env
    curve.env = dict(saved, XWS_CURVE_SECRET_KEY=keys.secret("gateway-new"))
    try:
        curve.start_gateway()
    finally:
        curve.env = saved
    wait_until(lambda: curve.gateway.text().count(ready) > before, timeout=60,
               what="the worker to come back with the gateway's new public key")
    assert w.alive()
    wait_until(lambda: curve.get(CHECK, auth=ADMIN).status == 200, timeout=30, what="the restarted gateway to serve")
    assert curve.get(ENTITY, {"act": "list"}, auth=ADMIN).status == 200


def test_curve_workers_with_a_local_internal_endpoint(keys):
    """CURVE on the worker plane only: the internal endpoint on ipc keeps working without keys
    (the gateway's ZAP handler lets sockets it does not guard through), and there the caller
    account is the one the request names."""
    env = curve_env(keys, "tcp://127.0.0.1:%d" % free_port(), "")
    del env["XWS_CURVE_CLIENTS_DIR"], env["XWS_CURVE_CLIENT_KEY"], env["XWS_INTERNAL_ENDPOINT"]
    s = System(workers=1, extra_env=env, accounts=False)
    try:
        def view():
            r = s.call("-a", "script-7", "-t", "3000", "-p", "id=515151", "config", "entity", "view")
            return r.returncode == 1 and status_line(r) == 404
        wait_until(view, timeout=30, what="the worker to serve the internal endpoint")
        wait_until(lambda: " internal ZMQ /config/entity act=view 404 " in s.gateway.text(), timeout=10,
                   what="the access-log line")
        line = [l for l in s.gateway.text().splitlines() if " internal ZMQ /config/entity act=view 404 " in l][-1]
        assert line.endswith(" account=script-7"), line
        assert "CURVE: accepted worker " in s.gateway.text()
    finally:
        s.stop()


def check_config(env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    base.update(env)
    r = subprocess.run([str(BIN_DIR / "xws-gateway"), "--check-config"], env=base, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_gateway_settings(keys, tmp_path):
    wide = "tcp://0.0.0.0:%d" % free_port()
    # a worker endpoint beyond loopback: accepted with CURVE, refused without
    rc, out = check_config({"XWS_WORKER_ENDPOINTS": wide, "XWS_CURVE_SECRET_KEY": keys.secret("gateway"),
                            "XWS_CURVE_WORKERS_DIR": str(keys.workers_dir)})
    assert rc == 0, out
    rc, out = check_config({"XWS_WORKER_ENDPOINTS": wide, "XWS_CURVE_SECRET_KEY": keys.secret("gateway"),
                            "XWS_CURVE_CLIENTS_DIR": str(keys.clients_dir)})
    assert rc == 2 and "reachable beyond this host" in out and "curve_workers_dir" in out, out
    # the pieces go together
    rc, out = check_config({"XWS_CURVE_SECRET_KEY": keys.secret("gateway")})
    assert rc == 2 and "guards nothing" in out, out
    rc, out = check_config({"XWS_CURVE_WORKERS_DIR": str(keys.workers_dir)})
    assert rc == 2 and "need curve_secret_key" in out, out
    rc, out = check_config({"XWS_CURVE_SECRET_KEY": keys.pub("gateway"), "XWS_CURVE_WORKERS_DIR": str(keys.workers_dir)})
    assert rc == 2 and "holds no secret key" in out, out
    rc, out = check_config({"XWS_CURVE_SECRET_KEY": keys.secret("gateway"), "XWS_CURVE_WORKERS_DIR": str(tmp_path / "none")})
    assert rc == 2 and "curve_workers_dir" in out and "not a readable directory" in out, out


def test_worker_settings(keys, tmp_path):
    """A worker's CURVE settings are checked at start: its key needs the gateway's, readable files,
    one gateway key for all endpoints or one per endpoint."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    base.update({"XWS_RUN_DIR": str(tmp_path), "XWS_WORKER_ENDPOINTS": "tcp://127.0.0.1:1,tcp://127.0.0.1:2,tcp://127.0.0.1:3"})
    cases = [
        ({"XWS_CURVE_WORKER_KEY": keys.secret("worker")}, "needs curve_gateway_key"),
        ({"XWS_CURVE_WORKER_KEY": keys.pub("worker"), "XWS_CURVE_GATEWAY_KEY": keys.pub("gateway")}, "holds no secret key"),
        ({"XWS_CURVE_WORKER_KEY": keys.secret("worker"), "XWS_CURVE_GATEWAY_KEY": str(tmp_path / "x.key")}, "cannot read"),
        ({"XWS_CURVE_WORKER_KEY": keys.secret("worker"),
          "XWS_CURVE_GATEWAY_KEY": "%s,%s" % (keys.pub("gateway"), keys.pub("gateway2"))}, "2 certificates for 3 worker endpoints"),
    ]
    for env, want in cases:
        e = dict(base)
        e.update(env)
        r = subprocess.run([str(BIN_DIR / "xws-config")], env=e, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and want in r.stderr, (env, r)


def test_xws_keys(tmp_path):
    r = subprocess.run([str(BIN_DIR / "xws-keys"), "-d", str(tmp_path), "gw-1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert oct(os.stat(tmp_path / "gw-1.key_secret").st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "gw-1.key").st_mode & 0o777) == "0o644"
    pub = (tmp_path / "gw-1.key").read_text()
    assert 'name = "gw-1"' in pub and "public-key" in pub and "secret-key" not in pub
    assert "secret-key" in (tmp_path / "gw-1.key_secret").read_text()
    # no replacement by accident; --force replaces
    r2 = subprocess.run([str(BIN_DIR / "xws-keys"), "-d", str(tmp_path), "gw-1"], capture_output=True, text=True, timeout=30)
    assert r2.returncode == 1 and "exists" in r2.stderr, r2
    r3 = subprocess.run([str(BIN_DIR / "xws-keys"), "-f", "-d", str(tmp_path), "gw-1"], capture_output=True, text=True,
                        timeout=30)
    assert r3.returncode == 0 and r3.stdout.split()[2] != r.stdout.split()[2], r3
    r4 = subprocess.run([str(BIN_DIR / "xws-keys"), "../escape"], capture_output=True, text=True, timeout=30)
    assert r4.returncode == 2 and "must be 1-64 characters" in r4.stderr, r4
