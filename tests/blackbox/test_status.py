"""Health, readiness, details and metrics of the gateway (/status, /metrics), and the 503 a frozen
or dead Redis gives. Every wait polls with a generous bound: nothing here depends on timing."""

import math
import re
import signal

from conftest import ADMIN, ENTITY, ENTITY_PRIVATE, System, wait_until
from test_gateway_review import Zmtp, mp_pack, mp_unpack

SERVICES = ("config", "ipbx-lines", "ipbx-users", "devices", "extensions")
BINARIES = ("xws-ipbx-lines", "xws-ipbx-users", "xws-devices", "xws-extensions")  # xws-config: System starts it


def full_system(**kw):
    """A system with one worker of every service."""
    s = System(workers=1, **kw)
    try:
        for b in BINARIES:
            s.start_worker(b)
    except BaseException:
        s.stop(check=False)
        raise
    return s


def ready_status(s):
    return s.get("/status/ready").status


# ---- a small parser of the Prometheus text format (version 0.0.4) ---------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_prometheus(text):
    """Parses the exposition text strictly; returns {(name, frozenset(labels)): value} and {family: type}.
    Fails on any line that is not a comment, a HELP/TYPE line or a well-formed sample, on a sample
    whose family has no TYPE before it, and on a TYPE given twice."""
    assert text.endswith("\n"), "the text must end with a newline"
    samples, types = {}, {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            assert len(parts) == 4 and re.fullmatch(_NAME, parts[2]), "line %d: %r" % (n, line)
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), "line %d: %r" % (n, line)
                assert parts[2] not in types, "line %d: TYPE of %s given twice" % (n, parts[2])
                types[parts[2]] = parts[3]
            continue
        assert line and not line.startswith("#"), "line %d: %r" % (n, line)
        m = _SAMPLE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name, labels_text, value = m.groups()
        labels = []
        rest = labels_text or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm, "line %d: bad labels %r" % (n, labels_text)
            labels.append((lm.group(1), lm.group(2)))
            rest = rest[lm.end():]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
        assert family in types, "line %d: sample of %s without a TYPE before it" % (n, name)
        v = float(value)  # raises on a malformed value
        assert not math.isnan(v)
        key = (name, frozenset(labels))
        assert key not in samples, "line %d: sample given twice" % n
        samples[key] = v
    # histograms: cumulative buckets ending with +Inf equal to _count
    for family, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append((math.inf if le == "+Inf" else float(le), v))
        for base, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), "%s %s: buckets not cumulative" % (family, dict(base))
            assert buckets[-1][0] == math.inf and buckets[-1][1] == samples[(family + "_count", base)]
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(s, auth=ADMIN):
    r = s.get("/metrics", auth=auth)
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain; version=0.0.4"), r.headers
    return parse_prometheus(r.body.decode("utf-8"))[0]


# ---- tests --------------------------------------------------------------------------------------------


def test_liveness_readiness_and_details():
    s = System(workers=1)  # config only: the other services have no worker
    try:
        r = s.get("/status/live")
        assert r.status == 200 and r.json() == {"live": True}, r
        assert r.header("x-xivo-ws-version") == "1.0" and r.header("cache-control") == "no-store"
        # not ready: no worker of the other services; the answer says why, without credentials
        # (the config worker's first Redis probe comes with its next heartbeat: wait for it)
        wait_until(lambda: not any("config" in why for why in s.get("/status/ready").json()["reasons"]), timeout=20,
                   what="the config worker's first Redis probe")
        r = s.get("/status/ready")
        assert r.status == 503 and r.header("retry-after") == "1", r
        body = r.json()
        assert body["live"] is True and body["ready"] is False
        for svc in SERVICES[1:]:
            assert "service %s has no worker" % svc in body["reasons"], body
        assert not any("config" in why for why in body["reasons"]), body
        # /status without credentials is the same summary, and shows no details
        r = s.get("/status/")
        assert r.status == 503 and set(r.json()) == {"live", "ready", "reasons"}, r
        # details need an account: wrong credentials are a 401 like anywhere else
        r = s.get("/status", auth=("admin", "wrong"))
        assert r.status == 401 and r.body == b"" and r.header("www-authenticate"), r
        r = s.get("/status", auth=ADMIN)
        assert r.status == 200, r
        d = r.json()
        assert d["ready"] is False and d["accounts"]["loaded"] is True and d["accounts"]["count"] == 1
        svcs = {x["name"]: x for x in d["services"]}
        assert set(svcs) == set(SERVICES) | {"verify"}, svcs  # verify: the password checks (config threads)
        assert svcs["config"]["workers"] == 1 and svcs["config"]["credit"] >= 1 and svcs["ipbx-lines"]["workers"] == 0
        assert svcs["config"]["registered"] == 1 and svcs["config"]["queued"] == 0
        # other methods: 405 as for json.php; unknown paths beside them: 404
        assert s.request("DELETE", "/status").status == 405
        assert s.request("HEAD", "/status/live").status == 200
        for path in ("/status/x", "/statusx", "/metrics/x", "/status//live"):
            assert s.get(path).status == 404, path
    finally:
        s.stop()


def test_readiness_follows_workers_and_redis():
    s = full_system()
    try:
        wait_until(lambda: ready_status(s) == 200, timeout=60, what="readiness with every service")
        r = s.get("/status/ready")
        assert r.json() == {"live": True, "ready": True, "reasons": []}, r
        d = wait_until(
            lambda: (lambda d: d if all(x["store_ok"] == 1 for x in d["services"]) else None)(s.get("/status", auth=ADMIN).json()),
            timeout=30,
            what="a store report from every worker",
        )
        assert all(x["store_probe_us"] > 0 for x in d["services"]), d

        # the only worker of a service goes: not ready; another one comes: ready again
        victim = next(p for p in s.workers if "xws-extensions" in p.name)
        victim.kill(signal.SIGKILL)
        r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(s.get("/status/ready")), timeout=60, what="not ready")
        assert "service extensions has no worker" in r.json()["reasons"], r.json()
        s.start_worker("xws-extensions")
        wait_until(lambda: ready_status(s) == 200, timeout=60, what="ready with a new extensions worker")

        # Redis frozen: requests answer 503 store_unavailable with Retry-After, and the gateway is not ready
        s.get(ENTITY, {"act": "list"}, auth=ADMIN)  # the admin password is verified now, before the freeze
        s.redis.popen.send_signal(signal.SIGSTOP)
        try:
            r = s.get(ENTITY_PRIVATE, {"act": "list"}, timeout=60)
            assert r.status == 503 and r.header("retry-after") == "1", r
            assert r.json()["error"] == "store_unavailable" and r.json()["field"] == "", r.json()
            r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(s.get("/status/ready")), timeout=60, what="not ready")
            reasons = r.json()["reasons"]
            assert any("reports the data store answering" in why for why in reasons), reasons
            d = s.get("/status", auth=ADMIN, timeout=60)
            assert d.status == 200, d
        finally:
            s.redis.popen.send_signal(signal.SIGCONT)
        wait_until(lambda: ready_status(s) == 200, timeout=60, what="ready after Redis resumed")
        r = s.get(ENTITY_PRIVATE, {"act": "list"})
        assert r.status in (200, 204), r

        # Redis killed: not ready, and 503 store_unavailable; a new Redis: ready again
        s.redis.kill(signal.SIGKILL)
        r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(s.get("/status/ready")), timeout=60, what="not ready")
        assert any("data store" in why for why in r.json()["reasons"]), r.json()
        r = s.get(ENTITY_PRIVATE, {"act": "list"}, timeout=60)
        assert r.status == 503 and r.json()["error"] == "store_unavailable" and r.header("retry-after") == "1", r
        s._start_redis()
        wait_until(lambda: ready_status(s) == 200, timeout=60, what="ready with a new Redis")
    finally:
        s.stop()


def test_metrics_scrape_and_counters_move():
    s = System(workers=1)
    try:
        # an account is needed; wrong credentials are refused
        assert s.get("/metrics").status == 401
        assert s.get("/metrics", auth=("admin", "nope")).status == 401
        m0 = scrape(s)
        for name in ("xws_workers", "xws_jobs_queued", "xws_jobs_in_flight", "xws_auth_failures_total", "xws_ready"):
            assert any(k[0] == name for k in m0), name
        assert value(m0, "xws_workers", service="config") == 1
        assert value(m0, "xws_workers", service="devices") == 0
        assert value(m0, "xws_worker_registrations_total", service="config") == 1
        assert value(m0, "xws_accounts_loaded") == 1 and value(m0, "xws_accounts") == 1
        assert value(m0, "xws_ready") == 0  # the other services have no worker

        lists = value(m0, "xws_http_requests_total", resource="manage/entity", act="list", status="204")
        lists += value(m0, "xws_http_requests_total", resource="manage/entity", act="list", status="200")
        hist = value(m0, "xws_http_request_duration_seconds_count", resource="manage/entity")
        failures = value(m0, "xws_auth_failures_total")
        checks = value(m0, "xws_auth_password_checks_total")
        no_worker = value(m0, "xws_jobs_no_worker_total", service="devices")
        for _ in range(3):
            assert s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)
        assert s.get(ENTITY, {"act": "list"}, auth=("admin", "wrong-password")).status == 401
        devices = "/service/ipbx/json.php/private/pbx_settings/devices/"
        assert s.get(devices, {"act": "list"}).status == 503
        assert s.get("/nowhere").status == 404

        m1 = scrape(s)
        after = value(m1, "xws_http_requests_total", resource="manage/entity", act="list", status="204")
        after += value(m1, "xws_http_requests_total", resource="manage/entity", act="list", status="200")
        assert after == lists + 3, (lists, after)
        # the 401 is counted under its resource too, the histogram saw every one of them
        assert value(m1, "xws_http_requests_total", resource="manage/entity", act="list", status="401") >= 1
        assert value(m1, "xws_http_request_duration_seconds_count", resource="manage/entity") == hist + 4
        assert value(m1, "xws_auth_failures_total") == failures + 1
        assert value(m1, "xws_auth_password_checks_total") >= checks + 1
        assert value(m1, "xws_jobs_no_worker_total", service="devices") == no_worker + 1
        assert value(m1, "xws_http_requests_total", resource="pbx_settings/devices", act="list", status="503") >= 1
        assert value(m1, "xws_http_requests_total", resource="none", act="default", status="404") >= 1
        assert value(m1, "xws_http_requests_total", resource="metrics", act="default", status="200") >= 1

        # worker-side figures arrive with the workers' reports (every heartbeat)
        base = value(m0, "xws_worker_requests_total", service="config")
        wait_until(
            lambda: value(scrape(s), "xws_worker_requests_total", service="config") >= base + 3,
            timeout=30,
            what="the worker's report to count the requests",
        )
        assert value(scrape(s), "xws_workers_store_ok", service="config") == 1

        # a write sent again with the same request id is answered from its recorded outcome: counted as replayed
        replayed = value(scrape(s), "xws_worker_replayed_writes_total", service="config")
        env = {"v": 1, "rid": "status-replay-1", "service": "config", "resource": "entity", "act": "add",
               "body": {"name": "replayed", "displayname": "Replayed"}}
        for expect_replayed in (False, True):
            z = Zmtp(s.internal_endpoint, timeout=15)
            try:
                z.send([b"XWS1", b"\x02", b"k", mp_pack(env)])
                rep = mp_unpack(z.recv()[3])[0]
            finally:
                z.close()
            assert rep["status"] == 200 and rep.get("replayed", False) is expect_replayed, rep
        wait_until(
            lambda: value(scrape(s), "xws_worker_replayed_writes_total", service="config") == replayed + 1,
            timeout=30,
            what="the replayed write in the worker's report",
        )

        # a worker that dies is counted as a departure (unreachable: its connection on this host is
        # gone; expired when it only falls silent) and its service loses it
        s.start_worker()
        wait_until(lambda: value(scrape(s), "xws_workers", service="config") == 2, timeout=30, what="a second worker")
        s.workers[0].kill(signal.SIGKILL)

        def departed(m):
            return value(m, "xws_worker_expiries_total", service="config") + value(m, "xws_worker_unreachable_total", service="config")

        m2 = wait_until(lambda: (lambda m: m if departed(m) >= 1 else None)(scrape(s)), timeout=60, what="the killed worker's departure")
        assert value(m2, "xws_workers", service="config") == 1
        assert value(m2, "xws_worker_disconnects_total", service="config") == 0
        # a worker that hangs (SIGSTOP) falls silent: an expiry; once resumed it registers again
        expiries = value(m2, "xws_worker_expiries_total", service="config")
        hung = s.workers[1]
        hung.popen.send_signal(signal.SIGSTOP)
        try:
            wait_until(
                lambda: value(scrape(s), "xws_worker_expiries_total", service="config") == expiries + 1,
                timeout=60,
                what="the expiry of the hung worker",
            )
        finally:
            hung.popen.send_signal(signal.SIGCONT)
        wait_until(lambda: value(scrape(s), "xws_workers", service="config") == 1, timeout=60, what="the worker back")
        # a worker stopped cleanly says DISCONNECT
        s.start_worker()
        wait_until(lambda: value(scrape(s), "xws_workers", service="config") == 2, timeout=30, what="another worker")
        s.workers[1].expected_dead = True
        assert s.workers[1].stop() == 0
        wait_until(
            lambda: value(scrape(s), "xws_worker_disconnects_total", service="config") >= 1,
            timeout=30,
            what="the clean departure",
        )
        # the figures of departed workers stay in the service's counts
        m3 = scrape(s)
        assert value(m3, "xws_worker_requests_total", service="config") >= base + 3
        assert value(m3, "xws_worker_registrations_total", service="config") == 4  # 3 workers, one of them twice
    finally:
        s.stop()


def test_parser_refuses_malformed_text():
    """The parser above is strict: it would catch a malformed exposition."""
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\n'
    assert parse_prometheus(good)[0] == {("a_total", frozenset({("k", "v")})): 1.0}
    for bad in (
        "a_total 1\n",  # no TYPE
        '# TYPE a_total counter\na_total{k=v} 1\n',  # unquoted label
        "# TYPE a_total counter\na_total one\n",  # not a number
        "# TYPE a_total counter\na_total 1",  # no final newline
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n',  # not cumulative
    ):
        try:
            parse_prometheus(bad)
        except (AssertionError, ValueError):
            continue
        raise AssertionError("accepted: %r" % bad)
