"""Gateway conformance fixes: 304 only for answers with an entity tag, 413 (not a stream reset) for
bodies above max_body on HTTP/1.1 and HTTP/2, password checks that do not slow legitimate clients
(merged identical checks, cache entries kept across unrelated account changes, a bounded number of
checks in flight, throttling per address and login), long passwords, Allow on every 405, standard
reason phrases on h2o's own answers, Cache-Control, and request targets with a fragment or in
absolute form. Robustness: ZeroMQ frame size bound, worker statuses that are not final answers,
READY for services not routed, the query parameter count, internal and queued deadlines, the
expiry/heartbeat and worker endpoint checks at start, max_connections, and accept() out of file
descriptors."""

import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import (
    _SSL,
    ADMIN,
    BIN_DIR,
    CHECK,
    CONTEXT_PRIVATE,
    ENTITY,
    ENTITY_PRIVATE,
    System,
    basic,
    entity_body,
    free_port,
    md5_hex,
    wait_until,
)

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
    # (from addresses of their own: one address may have only 4 checks running at once)
    codes, _ = parallel(len(names), lambda i: s.get(CHECK, auth=(names[i], names[i] + "-pw"), source="127.0.0.%d" % (70 + i)).status)
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
    codes = [system.get(CHECK, auth=("admin", "guess-%d" % i), source=attacker).status for i in range(5)]
    assert codes == [401] * 5, codes
    # the attacked login is now locked from that address (no check), and says for how long
    r = system.get(CHECK, auth=("admin", "another-guess"), source=attacker)
    assert r.status == 429 and int(r.header("retry-after")) >= 1, r
    # another login from the same address, whose password still needs a check: not throttled
    r = system.get(CHECK, auth=("neighbour", "neighbour-pass-2"), source=attacker)
    assert r.status == 200, r


# ---- robustness: frame sizes, worker statuses, connections, endpoints, registry, query, deadlines --
#
# The ZeroMQ peers below speak ZMTP 3.0 (NULL mechanism) over the gateway's ipc sockets by hand, and
# encode the envelopes with a small msgpack subset, so that a test can send what no real peer would.

DEVICES = "/service/ipbx/json.php/restricted/pbx_settings/devices/"
MAX_FRAME = 2 * 1024 * 1024 + 1024  # XWS_MAX_ENVELOPE + 1024
MAX_REPLY_FRAME = 64 * 1024 * 1024 + 1024  # XWS_MAX_REPLY + 1024: what a worker may send


def mp_pack(v):
    """msgpack of None, bool, int >= 0, str, bytes, dict (the subset the envelopes use)."""
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        assert v >= 0
        if v < 128:
            return bytes([v])
        return b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xda" + struct.pack(">H", len(b))) + b
    if isinstance(v, dict):
        assert len(v) < 16
        return bytes([0x80 | len(v)]) + b"".join(mp_pack(k) + mp_pack(x) for k, x in v.items())
    raise TypeError(v)


def mp_unpack(b, i=0):
    """Decodes one msgpack value at b[i:]; returns (value, next index)."""
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if t >= 0xE0:
        return t - 256, i + 1
    if 0x80 <= t <= 0x8F or t in (0xDE, 0xDF):
        n, i = (t & 0x0F, i + 1) if t <= 0x8F else ((struct.unpack(">H", b[i + 1:i + 3])[0], i + 3) if t == 0xDE else (struct.unpack(">I", b[i + 1:i + 5])[0], i + 5))
        d = {}
        for _ in range(n):
            k, i = mp_unpack(b, i)
            d[k], i = mp_unpack(b, i)
        return d, i
    if 0x90 <= t <= 0x9F or t in (0xDC, 0xDD):
        n, i = (t & 0x0F, i + 1) if t <= 0x9F else ((struct.unpack(">H", b[i + 1:i + 3])[0], i + 3) if t == 0xDC else (struct.unpack(">I", b[i + 1:i + 5])[0], i + 5))
        out = []
        for _ in range(n):
            x, i = mp_unpack(b, i)
            out.append(x)
        return out, i
    if 0xA0 <= t <= 0xBF or t in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        if 0xA0 <= t <= 0xBF:
            n, i = t & 0x1F, i + 1
        else:
            w = {0xD9: 1, 0xC4: 1, 0xDA: 2, 0xC5: 2, 0xDB: 4, 0xC6: 4}[t]
            n, i = int.from_bytes(b[i + 1:i + 1 + w], "big"), i + 1 + w
        raw = b[i:i + n]
        return (raw if t in (0xC4, 0xC5, 0xC6) else raw.decode("utf-8")), i + n
    simple = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in simple:
        return simple[t], i + 1
    widths = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False), 0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}
    w, signed = widths[t]
    return int.from_bytes(b[i + 1:i + 1 + w], "big", signed=signed), i + 1 + w


class Zmtp:
    """A ZeroMQ DEALER peer spoken by hand (ZMTP 3.0, NULL mechanism) over an ipc:// socket."""

    def __init__(self, endpoint, timeout=5):
        assert endpoint.startswith("ipc://")
        self.lock = threading.Lock()  # send() may be called from a heartbeat thread
        self.stopped = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(endpoint[len("ipc://"):])
        self.sock.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31)
        peer = self._recvn(64)
        assert peer[0] == 0xFF and peer[9] == 0x7F and peer[10] == 3, peer
        body = b"\x05READY" + bytes([11]) + b"Socket-Type" + struct.pack(">I", 6) + b"DEALER"
        self.sock.sendall(bytes([0x04, len(body)]) + body)
        flags, frame = self._frame()
        assert flags & 0x04 and frame.startswith(b"\x05READY"), frame

    def _recvn(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the gateway")
            buf += chunk
        return buf

    def _frame(self):
        flags = self._recvn(1)[0]
        size = struct.unpack(">Q", self._recvn(8))[0] if flags & 0x02 else self._recvn(1)[0]
        return flags, self._recvn(size)

    def send(self, frames):
        out = b""
        for i, f in enumerate(frames):
            more = 0x01 if i + 1 < len(frames) else 0
            out += (bytes([more | 0x02]) + struct.pack(">Q", len(f)) if len(f) > 255 else bytes([more, len(f)])) + f
        with self.lock:
            self.sock.sendall(out)

    def heartbeat(self, every=0.3):
        """Sends HEARTBEAT every few tenths of a second until close(), as a live worker does."""

        def run():
            while not self.stopped.wait(every):
                try:
                    self.send([b"XWS1", b"\x04"])
                except OSError:
                    return

        threading.Thread(target=run, daemon=True).start()

    def recv(self):
        """The next message (list of frames); commands (PING...) are skipped."""
        frames = []
        while True:
            flags, f = self._frame()
            if flags & 0x04:
                continue
            frames.append(f)
            if not flags & 0x01:
                return frames

    def closed_by_peer(self, within=5.0):
        """True when the gateway closes the connection within the delay (whatever it sent first)."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def close(self):
        self.stopped.set()
        with self.lock:
            self.sock.close()


def worker_endpoint(system):
    return system.env["XWS_WORKER_ENDPOINTS"]


def fake_worker(system, service="devices", name="fake"):
    w = Zmtp(worker_endpoint(system))
    w.send([b"XWS1", b"\x01", service.encode(), b"1", name.encode()])
    w.heartbeat()  # a slow machine must not make it expire in the middle of a test
    wait_until(lambda: ("worker %s ready for %s" % (name, service)) in system.gateway.text(), what="the fake worker")
    return w


def next_request(w):
    """The next REQUEST the fake worker w receives (heartbeats skipped)."""
    while True:
        m = w.recv()
        if len(m) >= 4 and m[0] == b"XWS1" and m[1] == b"\x02":
            return m


def serve_one(w, reply):
    """Waits for one REQUEST on the fake worker w and answers it with the reply envelope (a dict)."""
    m = next_request(w)
    w.send([b"XWS1", b"\x03", m[2], mp_pack(reply)])
    return mp_unpack(m[3])[0]


def get_in_thread(system, path, query, auth=ADMIN):
    out = {}

    def run():
        out["r"] = system.get(path, query, auth=auth, timeout=20)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_oversized_frames_drop_the_peer_before_buffering(system):
    # workers may send replies up to 64 MiB (long lists); consumers requests up to 2 MiB
    for endpoint, bound in ((worker_endpoint(system), MAX_REPLY_FRAME), (system.internal_endpoint, MAX_FRAME)):
        # the frame header alone announces too much: the gateway hangs up without waiting for the bytes
        z = Zmtp(endpoint)
        z.sock.sendall(b"\x02" + struct.pack(">Q", 300 * 1024 * 1024) + b"x" * 1000)
        assert z.closed_by_peer(), endpoint
        z.close()
        z = Zmtp(endpoint)
        z.sock.sendall(b"\x02" + struct.pack(">Q", bound + 1) + b"x" * 1000)
        assert z.closed_by_peer(), endpoint
        z.close()
    # a frame at the bound is read (and answered as the malformed message it is)
    z = Zmtp(system.internal_endpoint)
    z.send([b"XWS1", b"\x02", b"k1", b"\xc0" * MAX_FRAME])
    r = z.recv()
    assert r[:3] == [b"XWS1", b"\x03", b"k1"], r[:3]
    assert mp_unpack(r[3])[0]["status"] == 400
    z.close()
    assert system.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)


def test_worker_status_that_is_not_final_is_500(system):
    w = fake_worker(system)
    try:
        for status in (101, 100, 199):
            t, out = get_in_thread(system, DEVICES, {"act": "list"})
            serve_one(w, {"v": 1, "status": status, "etag": '"e1"'})
            t.join(30)
            r = out["r"]
            assert r.status == 500, (status, r)
            assert r.json()["error"] == "internal_error"
            assert r.header("etag") is None
        assert "answered status 101, which is not a final answer" in system.gateway.text()
        # an entity tag is kept on a 200 only, ignored on an error
        t, out = get_in_thread(system, DEVICES, {"act": "list"})
        serve_one(w, {"v": 1, "status": 404, "etag": '"e2"', "body": {"error": "not_found", "field": "id", "message": "no"}})
        t.join(30)
        assert out["r"].status == 404 and out["r"].header("etag") is None, out["r"]
        t, out = get_in_thread(system, DEVICES, {"act": "list"})
        serve_one(w, {"v": 1, "status": 200, "etag": '"e3"', "body": {"a": 1}})
        t.join(30)
        assert out["r"].status == 200 and out["r"].header("etag") == '"e3"', out["r"]
    finally:
        w.send([b"XWS1", b"\x05"])
        w.close()


def test_ready_for_a_service_not_routed_is_refused(system):
    z = Zmtp(worker_endpoint(system))
    try:
        z.send([b"XWS1", b"\x01", b"bogus-service", b"5", b"intruder"])
        assert z.recv() == [b"XWS1", b"\x05"]
        for i in range(50):  # many names: none is registered, the log stays short
            z.send([b"XWS1", b"\x01", b"bogus-%d" % i, b"5"])
        for _ in range(50):
            assert z.recv() == [b"XWS1", b"\x05"]
        log = system.gateway.text()
        assert 'announced service "bogus-service", which this gateway does not route' in log
        assert log.count("which this gateway does not route") <= 3
        assert "ready for bogus" not in log
        # a routed service is accepted from the same peer
        z.send([b"XWS1", b"\x01", b"devices", b"1", b"late-fake"])
        wait_until(lambda: "worker late-fake ready for devices" in system.gateway.text(), what="the registration")
        z.send([b"XWS1", b"\x05"])
    finally:
        z.close()


def test_more_than_100_query_parameters_is_400(system):
    q = "&".join("p%d=%d" % (i, i) for i in range(99))
    r = system.get(ENTITY, "act=list&" + q, auth=ADMIN)
    assert r.status in (200, 204), r
    r = system.get(ENTITY, "act=list&" + q + "&p99=x", auth=ADMIN)
    assert r.status == 400, r
    assert r.json() == {"error": "invalid_value", "field": "", "message": r.json()["message"]}
    # duplicates and empty names count, empty pairs do not; checked before authentication
    r = system.get(ENTITY, "&&&".join(["a=1"] * 101), auth=("nobody", "wrong"))
    assert r.status == 400 and r.json()["error"] == "invalid_value", r
    r = system.get(ENTITY, "act=list" + "&" * 500, auth=ADMIN)
    assert r.status in (200, 204), r


def internal_request(system, deadline, key=b"k"):
    env = {"v": 1, "rid": "review-%d" % time.monotonic_ns(), "service": "config", "resource": "entity", "act": "list"}
    if deadline is not None:
        env["deadline"] = deadline
    z = Zmtp(system.internal_endpoint, timeout=15)
    try:
        t0 = time.monotonic()
        z.send([b"XWS1", b"\x02", key, mp_pack(env)])
        r = z.recv()
        assert r[:3] == [b"XWS1", b"\x03", key], r
        return mp_unpack(r[3])[0], time.monotonic() - t0
    finally:
        z.close()


def test_internal_request_past_its_deadline_is_504_at_once(system):
    now = int(time.time() * 1000)
    for deadline in (now - 60000, now - 1, 1):
        rep, elapsed = internal_request(system, deadline)
        assert rep["status"] == 504 and rep["body"]["error"] == "timeout", rep
        assert elapsed < 1.0, elapsed
    rep, _ = internal_request(system, now + 10000)
    assert rep["status"] in (200, 204), rep
    rep, _ = internal_request(system, None)
    assert rep["status"] in (200, 204), rep


def send_internal(system, deadline, service="devices", resource="devices", key=b"k"):
    """Sends one REQUEST on a new consumer connection; returns the connection (read the REPLY with recv)."""
    env = {"v": 1, "rid": "review-%d" % time.monotonic_ns(), "service": service, "resource": resource, "act": "list"}
    env["deadline"] = deadline
    z = Zmtp(system.internal_endpoint, timeout=15)
    z.send([b"XWS1", b"\x02", key, mp_pack(env)])
    return z


def test_internal_deadline_is_kept_while_queued_or_in_flight():
    s = System(workers=0, accounts=False)  # deadline_ms 5000: the consumers' deadlines are earlier
    w = None
    try:
        w = fake_worker(s)
        now = lambda: int(time.time() * 1000)  # noqa: E731
        # in flight: the worker keeps it; the consumer hears 504 at its own deadline, not 5 s later
        t0 = time.monotonic()
        c1 = send_internal(s, now() + 300, key=b"c1")
        held = next_request(w)
        sent = mp_unpack(held[3])[0]
        assert "deadline" not in sent and 0 < sent["budget"] <= 300, sent  # the time left, not a clock reading
        r = c1.recv()
        assert mp_unpack(r[3])[0]["status"] == 504 and time.monotonic() - t0 < 2.0, time.monotonic() - t0
        c1.close()
        # queued behind it (the worker's only credit is still taken): 504 at its deadline, never dispatched
        t0 = time.monotonic()
        c2 = send_internal(s, now() + 300, key=b"c2")
        r = c2.recv()
        assert mp_unpack(r[3])[0]["status"] == 504 and time.monotonic() - t0 < 2.0, time.monotonic() - t0
        c2.close()
        w.send([b"XWS1", b"\x03", held[2], mp_pack({"v": 1, "status": 200, "body": {}})])  # late: the credit comes back
        w.sock.settimeout(1.0)
        try:
            while True:
                m = w.recv()
                assert m[1] != b"\x02", "a request past its deadline was dispatched: %r" % (m,)
        except socket.timeout:
            pass
        # the credit is back: a fresh request is served
        w.sock.settimeout(10.0)
        c3 = send_internal(s, now() + 5000, key=b"c3")
        assert serve_one(w, {"v": 1, "status": 200, "body": {"ok": 1}})["service"] == "devices", s.gateway.text()[-2000:]
        assert mp_unpack(c3.recv()[3])[0]["status"] == 200
        c3.close()
    finally:
        if w is not None:
            w.close()
        s.stop()


def gateway_env(**extra):
    d = tempfile.mkdtemp(prefix="xwsg-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    env.update(
        {
            "XWS_RUN_DIR": d,
            "XWS_LISTEN": "127.0.0.1:%d" % free_port(),
            "XWS_WORKER_ENDPOINTS": "ipc://%s/w.ipc" % d,
            "XWS_INTERNAL_ENDPOINT": "ipc://%s/i.ipc" % d,
            "XWS_ACCESS_LOG": "off",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_gateway_briefly(env, expect_start):
    """Starts xws-gateway; when it must start, waits for 'listening on' and stops it with SIGTERM.
    Returns (exit status, output). The run directory is removed afterwards."""
    try:
        return _run_gateway_briefly(env, expect_start)
    finally:
        shutil.rmtree(env["XWS_RUN_DIR"], ignore_errors=True)


def _run_gateway_briefly(env, expect_start):
    p = subprocess.Popen([str(BIN_DIR / "xws-gateway")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not expect_start:
        out, _ = p.communicate(timeout=30)
        return p.returncode, out.decode("utf-8", "replace")
    out = b""
    while b"listening on" not in out:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=30)
    return p.returncode, (out + rest).decode("utf-8", "replace")


def test_expiry_must_exceed_heartbeat():
    rc, out = run_gateway_briefly(gateway_env(XWS_HEARTBEAT_MS=1000, XWS_EXPIRY_MS=1000), False)
    assert rc == 2 and "expiry_ms (1000) must be greater than heartbeat_ms (1000)" in out, out
    rc, out = run_gateway_briefly(gateway_env(XWS_HEARTBEAT_MS=100, XWS_EXPIRY_MS=101), True)
    assert rc == 0 and "listening on" in out, out


def test_worker_endpoint_beyond_loopback_needs_insecure_yes():
    ep = "tcp://0.0.0.0:%d" % free_port()
    rc, out = run_gateway_briefly(gateway_env(XWS_WORKER_ENDPOINTS=ep), False)
    assert rc == 2 and "is reachable beyond this host" in out and "worker_endpoint_insecure = yes" in out, out
    rc, out = run_gateway_briefly(gateway_env(XWS_WORKER_ENDPOINTS=ep, XWS_WORKER_ENDPOINT_INSECURE="maybe"), False)
    assert rc == 2 and "worker_endpoint_insecure must be yes or no" in out, out
    rc, out = run_gateway_briefly(gateway_env(XWS_WORKER_ENDPOINTS=ep, XWS_WORKER_ENDPOINT_INSECURE="yes"), True)
    assert rc == 0 and "listening on" in out, out
    # loopback needs nothing
    rc, out = run_gateway_briefly(gateway_env(XWS_WORKER_ENDPOINTS="tcp://127.0.0.1:%d" % free_port()), True)
    assert rc == 0, out


def tls_connect(system):
    raw = socket.create_connection(("127.0.0.1", system.port), timeout=10)
    return _SSL.wrap_socket(raw)


def test_max_connections_holds_new_clients_until_one_closes():
    s = System(workers=1, accounts=False, extra_env={"XWS_MAX_CONNECTIONS": "2"})
    try:
        a, b = tls_connect(s), tls_connect(s)
        t, out = get_in_thread(s, ENTITY_PRIVATE, {"act": "list"}, auth=None)
        time.sleep(1.0)
        assert "r" not in out, "a third connection was served while two were open"
        a.close()
        t.join(15)
        assert out["r"].status in (200, 204), out
        b.close()
        # and the gateway goes on accepting afterwards
        for _ in range(5):
            assert s.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204)
    finally:
        s.stop()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_does_not_spin():
    s = System(workers=1, accounts=False)
    socks = []
    try:
        wait_until(lambda: s.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204), what="the worker")
        old = s.gateway
        assert old.stop() == 0
        old.expected_dead = True
        s.gateway = s._spawn("xws-gateway-lowfd", ["prlimit", "--nofile=64:64", BIN_DIR / "xws-gateway"])
        wait_until(lambda: "instance " in s.gateway.text(), timeout=20, what="the new gateway")
        wait_until(lambda: s.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204), timeout=20, what="the worker")
        for _ in range(100):  # more than the gateway has descriptors for: the rest wait in the backlog
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        wait_until(lambda: "cannot accept connections: Too many open files" in s.gateway.text(), what="EMFILE")
        c0 = cpu_seconds(s.gateway.pid)
        time.sleep(2.0)
        used = cpu_seconds(s.gateway.pid) - c0
        assert used < 0.5, "the gateway used %.2fs of CPU in 2s while out of descriptors" % used
        for c in socks:
            c.close()
        socks = []
        wait_until(lambda: s.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204), timeout=30, what="service again")
    finally:
        for c in socks:
            c.close()
        s.stop()
