"""Beyond one machine, on loopback: two gateways on two ports, three instances of every worker
kind connected to both over tcp://127.0.0.1, one Redis. Clients spread over both gateways run the
race tests and a mixed load for a bounded time; the invariants hold, an ETag from one gateway is
valid on the other, a worker serves both gateways (a flood on the first does not starve the
second), and killing one gateway leaves the other serving everything.

Every test runs twice: on plain tcp, and with CURVE on the worker plane (each gateway its own key
pair, the workers keyed, one gateway public key per endpoint)."""

import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ADMIN, CHECK, ENTITY, BIN_DIR, System, free_port, wait_until

LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
EXTENSIONS = "/service/ipbx/json.php/restricted/system_management/extensions/"
KINDS = ["xws-config", "xws-ipbx-lines", "xws-ipbx-users", "xws-devices", "xws-extensions"]
INSTANCES = 3


class Gateway:
    """A second gateway of the same system: its own HTTPS port, worker endpoint and internal
    endpoint; requests through it use the system's helpers with its port."""

    def __init__(self, system, port, proc):
        self.system, self.port, self.proc = system, port, proc

    def request(self, method, path, query=None, body=None, **kw):
        saved = self.system.port
        self.system.port = self.port
        try:
            return self.system.request(method, path, query, body, **kw)
        finally:
            self.system.port = saved

    def get(self, path, query=None, **kw):
        return self.request("GET", path, query, **kw)

    def post(self, path, query=None, body=None, **kw):
        return self.request("POST", path, query, body, **kw)


def curve_keys(d):
    """Key pairs (xws-keys) of two gateways and the workers in d, the workers' public key in
    d/workers; returns (settings of gateway 1 and the workers, settings gateway 2 changes)."""
    for name in ("gateway1", "gateway2", "worker"):
        r = subprocess.run([str(BIN_DIR / "xws-keys"), "-d", str(d), name], capture_output=True, timeout=30)
        assert r.returncode == 0, r
    (d / "workers").mkdir()
    shutil.copy(d / "worker.key", d / "workers" / "worker.key")
    common = {"XWS_CURVE_SECRET_KEY": str(d / "gateway1.key_secret"), "XWS_CURVE_WORKERS_DIR": str(d / "workers"),
              "XWS_CURVE_WORKER_KEY": str(d / "worker.key_secret"),
              # one public key per worker endpoint, in the order of worker_endpoints
              "XWS_CURVE_GATEWAY_KEY": "%s,%s" % (d / "gateway1.key", d / "gateway2.key")}
    return common, {"XWS_CURVE_SECRET_KEY": str(d / "gateway2.key_secret")}


@pytest.fixture(scope="module", params=["plain", "curve"])
def cluster(request):
    ep1, ep2 = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    keydir = Path(tempfile.mkdtemp(prefix="xwsk-", dir="/tmp"))
    common, only2 = curve_keys(keydir) if request.param == "curve" else ({}, {})
    # every worker connects to both endpoints; gateway 1 binds the first of its list
    extra = {"XWS_WORKER_ENDPOINTS": "%s,%s" % (ep1, ep2)}
    extra.update(common)
    s = System(workers=0, extra_env=extra)
    try:
        for kind in KINDS:
            if not (BIN_DIR / kind).is_file():
                pytest.fail("binary %s missing" % kind)
            for _ in range(INSTANCES):
                s.start_worker(kind)
        # gateway 2: binds the second endpoint (the first of its own list), its own port
        port2 = free_port()
        env2 = dict(s.env)
        env2.update({"XWS_WORKER_ENDPOINTS": "%s,%s" % (ep2, ep1), "XWS_LISTEN": "127.0.0.1:%d" % port2,
                     "XWS_INTERNAL_ENDPOINT": "ipc://%s/internal2.ipc" % s.dir, "XWS_DATA_DIR": str(s.dir / "data2")})
        env2.update(only2)
        saved = s.env
        s.env = env2
        try:
            proc2 = s._spawn("xws-gateway-2", [BIN_DIR / "xws-gateway"])
        finally:
            s.env = saved
        g1 = Gateway(s, s.port, s.gateway)
        g2 = Gateway(s, port2, proc2)
        for g in (g1, g2):
            wait_until(lambda: g.get(CHECK, auth=ADMIN).status == 200, timeout=60, what="a gateway to serve")
            wait_until(lambda: g.get(LINES, {"act": "list"}, auth=ADMIN).status in (200, 204), timeout=60,
                       what="the ipbx-lines workers on both gateways")
        assert g1.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        r = g2.post(CONTEXT, {"act": "add"}, auth=ADMIN, body={
            "context": {"name": "default", "entity": "default"},
            "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "999"}]}})
        assert r.status == 200, r
        if request.param == "curve":
            for g in (g1, g2):
                assert "CURVE: accepted worker " in g.proc.text(), g.proc.text()[-3000:]
        yield s, g1, g2
    finally:
        s.stop()
        shutil.rmtree(keydir, ignore_errors=True)


def both(cluster):
    return [cluster[1], cluster[2]]


def race(gateways, n, send):
    """n concurrent requests spread over the gateways; returns their answers."""
    out = [None] * n
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        out[i] = send(gateways[i % len(gateways)], i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_both_gateways_serve_every_service(cluster):
    for g in both(cluster):
        assert g.get(ENTITY, {"act": "list"}, auth=ADMIN).status == 200
        assert g.get(LINES, {"act": "list"}, auth=ADMIN).status in (200, 204)
        assert g.get(USERS, {"act": "list"}, auth=ADMIN).status in (200, 204)
        assert g.get(EXTENSIONS, {"act": "search", "context": "default", "obj": "user", "limit": "3"},
                     auth=ADMIN).status == 200


def test_races_across_gateways(cluster):
    gws = both(cluster)
    answers = race(gws, 32, lambda g, i: g.post(ENTITY, {"act": "add"}, auth=ADMIN,
                                                  body={"name": "raced", "displayname": "Raced %d" % i}))
    assert sorted(r.status for r in answers) == [200] + [400] * 31, [r.status for r in answers]
    found = [e for e in gws[0].get(ENTITY, {"act": "list"}, auth=ADMIN).json() if e["name"] == "raced"]
    assert len(found) == 1

    answers = race(gws, 32, lambda g, i: g.post(LINES, {"act": "add"}, auth=ADMIN, body={
        "protocol": {"protocol": "sip", "context": "default"}, "linefeatures": {"number": "777"}}))
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] + [400] * 31, statuses
    assert all(r.json()["error"] == "number_taken" for r in answers if r.status == 400)
    listed = gws[1].get(LINES, {"act": "search", "search": "777"}, auth=ADMIN).json()
    assert [l["number"] for l in listed if l["number"] == "777"] == ["777"]


def test_etag_of_one_gateway_is_valid_on_the_other(cluster):
    g1, g2 = both(cluster)
    r = g1.get(ENTITY, {"act": "list"}, auth=ADMIN)
    etag = r.header("etag")
    assert r.status == 200 and etag
    assert g2.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": etag}).status == 304
    assert g2.post(ENTITY, {"act": "add"}, auth=ADMIN, body={"name": "etagged", "displayname": "Etagged"}).status == 200
    r = g1.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": etag})
    assert r.status == 200 and r.header("etag") != etag


def test_mixed_load_keeps_the_invariants(cluster):
    """Adds, edits, deletes and reads of entities and lines from 8 clients over both gateways for
    a bounded time; afterwards every acknowledged object is there exactly once and every number is
    held by exactly one line."""
    gws = both(cluster)
    stop = time.monotonic() + 8
    lock = threading.Lock()
    acked_lines = {}  # number -> answers 200
    errors = []

    def client(k):
        rnd = random.Random(k)
        while time.monotonic() < stop:
            g = gws[rnd.randrange(2)]
            op = rnd.randrange(5)
            try:
                if op == 0:
                    num = str(rnd.randrange(300, 340))
                    r = g.post(LINES, {"act": "add"}, auth=ADMIN, body={
                        "protocol": {"protocol": "sip", "context": "default"}, "linefeatures": {"number": num}})
                    if r.status == 200:
                        with lock:
                            acked_lines[num] = acked_lines.get(num, 0) + 1
                    elif r.status != 400:
                        errors.append(("line add", r.status, r.body[:200]))
                elif op == 1:
                    r = g.post(ENTITY, {"act": "add"}, auth=ADMIN, body={"name": "e%d_%d" % (k, rnd.randrange(10**6)),
                                                                         "displayname": "Load"})
                    if r.status != 200:
                        errors.append(("entity add", r.status, r.body[:200]))
                elif op == 2:
                    r = g.get(LINES, {"act": "list"}, auth=ADMIN)
                    if r.status not in (200, 204):
                        errors.append(("line list", r.status, r.body[:200]))
                elif op == 3:
                    r = g.get(EXTENSIONS, {"act": "search", "context": "default", "obj": "user", "limit": "5"}, auth=ADMIN)
                    if r.status != 200:
                        errors.append(("extensions", r.status, r.body[:200]))
                else:
                    r = g.get(ENTITY, {"act": "search", "search": "e%d_" % k}, auth=ADMIN)
                    if r.status not in (200, 204):
                        errors.append(("entity search", r.status, r.body[:200]))
            except OSError as e:
                errors.append(("connection", str(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert all(n == 1 for n in acked_lines.values()), acked_lines
    listed = gws[0].get(LINES, {"act": "list"}, auth=ADMIN).json()
    numbers = [l["number"] for l in listed if l["number"] in acked_lines]
    assert sorted(numbers) == sorted(acked_lines), (sorted(numbers), sorted(acked_lines))


def test_a_worker_serves_both_gateways_fairly(cluster):
    """A flood of list requests on gateway 1 does not starve gateway 2: while 120 requests are in
    flight on the first, every request on the second is answered (no 503/504)."""
    g1, g2 = both(cluster)
    flood_done = threading.Event()
    flood_status = []

    def flood():
        answers = race([g1], 120, lambda g, i: g.get(ENTITY, {"act": "list"}, auth=ADMIN))
        flood_status.extend(r.status for r in answers)
        flood_done.set()

    t = threading.Thread(target=flood)
    t.start()
    statuses = [g2.get(ENTITY, {"act": "search", "search": "default"}, auth=ADMIN).status for _ in range(20)]
    t.join()
    assert statuses == [200] * 20, statuses
    assert set(flood_status) == {200}, set(flood_status)


def test_killing_one_gateway_leaves_the_other_serving(cluster):
    s, g1, g2 = cluster
    g1.proc.kill(signal.SIGKILL)
    g1.proc.expected_dead = True
    for _ in range(3):
        assert g2.get(ENTITY, {"act": "list"}, auth=ADMIN).status == 200
    r = g2.post(LINES, {"act": "add"}, auth=ADMIN, body={
        "protocol": {"protocol": "sip", "context": "default"}, "linefeatures": {"number": "888"}})
    assert r.status == 200, r
    assert g2.post(USERS, {"act": "add"}, auth=ADMIN, body={"userfeatures": {"firstname": "After"}}).status == 200
    assert g2.get(EXTENSIONS, {"act": "search", "context": "default", "obj": "user", "number": "888"},
                  auth=ADMIN).status == 204
