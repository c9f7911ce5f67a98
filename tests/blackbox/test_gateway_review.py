"""Gateway conformance fixes: 304 only for answers with an entity tag, 413 (not a stream reset) for
bodies above max_body on HTTP/1.1 and HTTP/2, password checks that do not slow legitimate clients
(merged identical checks, cache entries kept across unrelated account changes, a bounded number of
checks in flight, back-off per address and login), long passwords, Allow on every 405, standard
reason phrases on h2o's own answers, Cache-Control, and request targets with a fragment or in
absolute form."""

import json
import signal
import socket
import ssl
import threading
import time

import pytest

from conftest import _SSL, ADMIN, CHECK, CONTEXT_PRIVATE, ENTITY, System, basic, entity_body, md5_hex, wait_until

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
MAX_BODY = 1024 * 1024  # the default max_body
ENTITY_LIMIT = 4 * MAX_BODY  # max(4 x max_body, max_body + 1 MiB): h2o's own limit


def raw_request(system, data, timeout=15):
    """Sends raw bytes over TLS (HTTP/1.1, no ALPN) and reads until the server closes or the
    answer is complete. Returns (status line, headers dict with lower-case names, body bytes)."""
    with socket.create_connection(("127.0.0.1", system.port), timeout=timeout) as sock:
        with _SSL.wrap_socket(sock) as s:
            try:
                s.sendall(data)
            except OSError:
                pass  # the server may answer and close before the whole request was sent
            buf = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    break
                if not chunk:
                    break
                buf += chunk
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    lines = head.decode("latin-1").split("\r\n")
                    hs = {}
                    for line in lines[1:]:
                        k, _, v = line.partition(":")
                        hs[k.strip().lower()] = v.strip()
                    n = hs.get("content-length")
                    if n is not None and len(body) >= int(n):
                        return lines[0], hs, body[: int(n)]
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hs[k.strip().lower()] = v.strip()
    return lines[0], hs, body


def get_line(target, auth=ADMIN, extra=b""):
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + basic(*auth).encode() + b"\r\n"
        b"Connection: close\r\n" + extra + b"\r\n"
    )


# ---- 1. sum / If-None-Match only where there is an entity tag ------------------------------------


def test_sum_of_empty_body_on_add_is_not_304(system):
    r = system.post(ENTITY, {"act": "add", "sum": EMPTY_MD5}, body=entity_body("sumadd"), auth=ADMIN)
    assert r.status == 200, r
    assert r.header("etag") is None
    r = system.get(ENTITY, {"act": "search", "search": "sumadd"}, auth=ADMIN)
    assert r.status == 200 and [e["name"] for e in r.json()] == ["sumadd"], r


def test_if_none_match_star_on_add_is_not_304(system):
    r = system.post(ENTITY, {"act": "add"}, body=entity_body("inmadd"), auth=ADMIN, headers={"If-None-Match": "*"})
    assert r.status == 200, r
    r = system.get(ENTITY, {"act": "search", "search": "inmadd"}, auth=ADMIN)
    assert r.status == 200 and len(r.json()) == 1


def test_list_sum_and_etag_still_304(system):
    system.post(ENTITY, {"act": "add"}, body=entity_body("sumlist"), auth=ADMIN)
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 200 and r.header("etag")
    r2 = system.get(ENTITY, {"act": "list", "sum": md5_hex(r.body)}, auth=ADMIN)
    assert r2.status == 304 and r2.body == b"", r2
    r3 = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": r.header("etag")})
    assert r3.status == 304 and r3.header("etag") == r.header("etag"), r3


# ---- 2. bodies above max_body: 413 from the handler on both protocols -----------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
@pytest.mark.parametrize("size", [MAX_BODY + 1, 3 * MAX_BODY, ENTITY_LIMIT], ids=["max+1", "3max", "limit"])
def test_413_json_on_both_protocols(system, http2, size):
    big = system.dir / ("big-%d.json" % size)
    big.write_bytes(b"{" + b" " * (size - 2) + b"}")
    status, headers, body, version = system.curl(
        "-u", "%s:%s" % ADMIN, "-H", "Content-Type: application/json", "--data-binary", "@%s" % big,
        system.url(ENTITY, "act=add"), http2=http2,
    )
    assert version == ("HTTP/2" if http2 else "HTTP/1.1"), version
    assert status == 413, (status, body[:200])
    assert headers.get("x-xivo-ws-version") == "1.0"
    assert headers.get("content-type", "").startswith("application/json")
    assert json.loads(body)["error"] == "too_long"
    assert headers.get("cache-control") == "no-store"


def test_above_the_limit_h2o_413_has_reason_and_headers(system):
    # above h2o's own limit, over HTTP/1.1: h2o's 413, with our headers and a standard reason phrase
    req = (
        b"POST " + ENTITY.encode() + b"?act=add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(ENTITY_LIMIT + 1).encode() + b"\r\nConnection: close\r\n\r\n{"
    )
    line, headers, _ = raw_request(system, req)
    assert line == "HTTP/1.1 413 Payload Too Large", line
    assert headers.get("x-xivo-ws-version") == "1.0"
    assert headers.get("cache-control") == "no-store"
    assert system.gateway.alive()


# ---- 6. reason phrases on h2o's own answers ---------------------------------------------------------


def test_h2o_400_has_standard_reason(system):
    line, headers, _ = raw_request(system, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n")
    assert line.startswith("HTTP/1.1 400 "), line
    assert line == "HTTP/1.1 400 Bad Request", line
    assert headers.get("x-xivo-ws-version") == "1.0"
    assert headers.get("cache-control") == "no-store"


def test_own_answers_have_standard_reasons(system):
    cases = [
        (get_line(ENTITY.encode() + b"?act=list"), ("HTTP/1.1 200 OK", "HTTP/1.1 204 No Content")),
        (get_line(b"/nothing"), ("HTTP/1.1 404 Not Found",)),
        (get_line(ENTITY.encode() + b"?act=list", auth=("admin", "wrong-one")), ("HTTP/1.1 401 Unauthorized",)),
    ]
    for req, want in cases:
        line, _, _ = raw_request(system, req)
        assert line in want, (req, line)


# ---- 7. Cache-Control ---------------------------------------------------------------------------------


def test_cache_control(system):
    system.post(ENTITY, {"act": "add"}, body=entity_body("cachectl"), auth=ADMIN)
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 200 and r.header("etag") and r.header("cache-control") == "no-cache", r
    r304 = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": r.header("etag")})
    assert r304.status == 304 and r304.header("cache-control") == "no-cache", r304
    # revalidation still works after the entity set changes
    system.post(ENTITY, {"act": "add"}, body=entity_body("cachectl2"), auth=ADMIN)
    r2 = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": r.header("etag")})
    assert r2.status == 200 and r2.header("etag") != r.header("etag")
    others = [
        system.post(ENTITY, {"act": "add"}, body=entity_body("cachectl3"), auth=ADMIN),  # 200 without ETag
        system.get(ENTITY, {"act": "list"}),  # 401
        system.get(ENTITY, {"act": "list"}, auth=ADMIN),  # 200 with ETag
        system.get("/nothing", auth=ADMIN),  # 404
        system.post(ENTITY, {"act": "add"}, body=b"{bad", auth=ADMIN),  # 400
        system.request("PUT", ENTITY, auth=ADMIN, body=b"{}"),  # 405
        system.get(ENTITY, {"act": "view", "id": "987654"}, auth=ADMIN),  # 404 from the worker
        system.get(CHECK, auth=ADMIN),  # 200 without ETag
    ]
    for x in others:
        want = "no-cache" if x.status in (200, 304) and x.header("etag") else "no-store"
        assert x.header("cache-control") == want, x
    assert {401, 404, 400, 405} <= {x.status for x in others}


# ---- 5. Allow on every 405 --------------------------------------------------------------------------------


def test_405_in_use_has_allow(system):
    probe = system.get(CONTEXT_PRIVATE, {"act": "list"})
    if probe.status not in (200, 204):
        pytest.skip("the context resource does not answer (status %d)" % probe.status)
    assert system.post(ENTITY, {"act": "add"}, body=entity_body("inuse405"), auth=ADMIN).status == 200
    ctx = {"context": {"name": "ctx405", "displayname": "Ctx 405", "entity": "inuse405", "contexttype": "internal"},
           "contextinclude": [], "contextnumbers": {}}
    assert system.post(CONTEXT_PRIVATE, {"act": "add"}, body=ctx).status == 200
    ents = system.get(ENTITY, {"act": "search", "search": "inuse405"}, auth=ADMIN).json()
    eid = [e for e in ents if e["name"] == "inuse405"][0]["id"]
    r = system.get(ENTITY, {"act": "delete", "id": str(eid)}, auth=ADMIN)
    assert r.status == 405, r
    assert r.json()["error"] == "in_use"
    assert sorted(m.strip() for m in r.header("allow").split(",")) == ["GET", "HEAD", "POST"], r
    assert system.get(CONTEXT_PRIVATE, {"act": "delete", "id": "ctx405"}).status == 200


# ---- 8. request targets -------------------------------------------------------------------------------------


def test_fragment_is_cut(system):
    ref = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    line, _, body = raw_request(system, get_line(ENTITY.encode() + b"?act=list#frag"))
    assert line.split()[1] == str(ref.status) and body == ref.body, line
    line, _, _ = raw_request(system, get_line(ENTITY.encode() + b"#frag/../x?act=list"))
    assert line.split()[1] in ("200", "204"), line  # the path is cut at '#', the query goes with it


def test_absolute_form_target(system):
    ref = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    for prefix in (b"https://127.0.0.1:%d" % system.port, b"https://example.invalid", b"HTTP://[::1]:1"):
        line, headers, body = raw_request(system, get_line(prefix + ENTITY.encode() + b"?act=list"))
        assert line.split()[1] == str(ref.status), (prefix, line)
        assert body == ref.body and headers.get("x-xivo-ws-version") == "1.0"
    line, _, _ = raw_request(system, get_line(b"https://127.0.0.1/nothing?act=list"))
    assert line.split()[1] == "404", line


# ---- 4. long passwords --------------------------------------------------------------------------------------


def test_password_of_1024_bytes(system):
    pw = "p" * 1024
    system.cli_ok("account", "add", "longpw", "--login", "longpw", "--password", pw, "--acl", "*")
    wait_until(lambda: system.get(CHECK, auth=("longpw", pw)).status == 200, what="a 1024-byte password")
    assert system.get(ENTITY, {"act": "list"}, auth=("longpw", pw)).status in (200, 204)
    assert system.get(CHECK, auth=("longpw", pw[:-1] + "q"), source="127.0.0.11").status == 401
    pw2 = "\u00e9" * 512  # 1024 bytes of UTF-8
    system.cli_ok("account", "add", "longpw2", "--login", "longpw2", "--password", pw2, "--acl", "*")
    wait_until(lambda: system.get(CHECK, auth=("longpw2", pw2)).status == 200, what="a 1024-byte UTF-8 password")
    assert system.cli("account", "add", "longpw3", "--login", "longpw3", "--password", "p" * 1025).returncode != 0


# ---- 3. password checks ----------------------------------------------------------------------------------------


def parallel(n, fn):
    out = [None] * n

    def run(i):
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, time.monotonic() - t0


@pytest.fixture(scope="module")
def one_worker():
    """A system of its own with one config worker: password checks are serialised there."""
    s = System(workers=1)
    yield s
    s.stop()


def test_identical_checks_are_merged(one_worker):
    s = one_worker
    for name in ("solo", "crowd"):  # crowd is never used before the 20 requests
        s.cli_ok("account", "add", name, "--login", name, "--password", name + "-pass-1", "--acl", "*")
    wait_until(lambda: s.get(CHECK, auth=("solo", "solo-pass-1")).status == 200, what="solo account")
    # the time of one password check: wrong passwords are never cached, each one is checked
    one = min(s.get(CHECK, auth=("solo", "wrong-%d" % i), source="127.0.0.%d" % (60 + i)).elapsed for i in range(3))
    # 20 requests at once with the same credentials that nobody verified yet: one check for all
    codes, took = parallel(20, lambda i: s.get(CHECK, auth=("crowd", "crowd-pass-1")).status)
    assert codes == [200] * 20, codes
    # 20 checks one after the other on the only worker would take about 20 x one
    assert took < 8 * one + 0.1, ("identical password checks were not merged", took, one)


def test_many_different_checks_all_answered(one_worker):
    s = one_worker
    names = ["many%d" % i for i in range(10)]
    for n in names:
        s.cli_ok("account", "add", n, "--login", n, "--password", n + "-pw", "--acl", "*")
    wait_until(lambda: s.get(CHECK, auth=(names[-1], names[-1] + "-pw")).status == 200, what="the accounts")
    s.cli_ok("account", "add", "manyx", "--host", "10.9.9.9")  # a new version
    time.sleep(0.5)
    # more distinct checks than may run at once: the others wait their turn, none is refused
    codes, _ = parallel(len(names), lambda i: s.get(CHECK, auth=(names[i], names[i] + "-pw")).status)
    assert codes == [200] * len(names), codes
    codes, _ = parallel(len(names), lambda i: s.get(CHECK, auth=(names[i], "wrong"), source="127.0.0.%d" % (40 + i)).status)
    assert codes == [401] * len(names), codes


def test_unrelated_change_keeps_verified_credentials(one_worker):
    s = one_worker
    s.cli_ok("account", "add", "keep", "--login", "keep", "--password", "keep-pass-1", "--acl", "*")
    s.cli_ok("account", "add", "chg", "--login", "chg", "--password", "chg-pass-1", "--acl", "*")
    wait_until(lambda: s.get(CHECK, auth=("chg", "chg-pass-1")).status == 200, what="chg account")
    assert s.get(CHECK, auth=("keep", "keep-pass-1")).status == 200
    assert s.get(CHECK, auth=ADMIN).status == 200
    s.cli_ok("account", "passwd", "chg", "--password", "chg-pass-2")
    wait_until(lambda: s.get(CHECK, auth=("chg", "chg-pass-2")).status == 200, what="the new password")
    # a check that succeeds before the gateway has the snapshot with the new password is not kept
    # (the entry would carry the old fingerprint); once the snapshot is there, it is
    time.sleep(0.8)
    assert s.get(CHECK, auth=("chg", "chg-pass-2")).status == 200
    s.cli_ok("account", "set", "keep", "--acl", "xivo/configuration")  # the ACL is not part of the fingerprint
    wait_until(lambda: s.get(ENTITY, {"act": "list"}, auth=("keep", "keep-pass-1")).status in (200, 204),
               what="keep's new ACL")
    # no config worker any more: only credentials that need no new check get in
    for w in s.workers:
        w.kill(signal.SIGTERM)
    wait_until(lambda: s.get(CHECK, auth=("nobody", "x"), source="127.0.0.21").status == 503, what="no worker")
    assert s.get(CHECK, auth=ADMIN).status == 200
    assert s.get(CHECK, auth=("keep", "keep-pass-1")).status == 200
    assert s.get(CHECK, auth=("chg", "chg-pass-2")).status == 200
    # the old password of the changed account was forgotten: it needs a check again
    assert s.get(CHECK, auth=("chg", "chg-pass-1"), source="127.0.0.22").status == 503
    s.start_worker()
    wait_until(lambda: s.get(CHECK, auth=("chg", "chg-pass-1"), source="127.0.0.22").status == 401, what="a worker")
    # disabling an account drops its entries
    s.cli_ok("account", "disable", "keep")
    wait_until(lambda: s.get(CHECK, auth=("keep", "keep-pass-1")).status == 401, what="keep disabled")
    s.cli_ok("account", "enable", "keep")
    wait_until(lambda: s.get(CHECK, auth=("keep", "keep-pass-1")).status == 200, what="keep enabled")


def test_backoff_is_per_address_and_login(system):
    system.cli_ok("account", "add", "neighbour", "--login", "neighbour", "--password", "neighbour-pass-1", "--acl", "*")
    wait_until(lambda: system.get(CHECK, auth=("neighbour", "neighbour-pass-1"), source="127.0.0.30").status == 200,
               what="neighbour account")
    system.cli_ok("account", "passwd", "neighbour", "--password", "neighbour-pass-2")  # not verified yet from anywhere
    attacker = "127.0.0.31"
    wait_until(lambda: system.get(CHECK, auth=("neighbour", "neighbour-pass-1"), source="127.0.0.32").status == 401,
               what="the new password")
    t0 = time.monotonic()
    for _ in range(7):
        assert system.get(CHECK, auth=("admin", "guess"), source=attacker).status == 401
    assert time.monotonic() - t0 >= 1.0, "repeated wrong passwords were answered at full speed"
    # another login from the same address, whose password still needs a check: not delayed
    r = system.get(CHECK, auth=("neighbour", "neighbour-pass-2"), source=attacker)
    assert r.status == 200, r
    assert r.elapsed < 0.9, ("another login of the attacker's address was delayed", r.elapsed)
    # the attacked login is still delayed from that address
    r = system.get(CHECK, auth=("admin", "another-guess"), source=attacker)
    assert r.status == 401 and r.elapsed >= 0.9, r.elapsed
