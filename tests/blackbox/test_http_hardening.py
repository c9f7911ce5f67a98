"""Gateway hardening over real HTTPS: HTTP/1.1 request framing (RFC 9112 §6.1: Content-Length with
Transfer-Encoding, duplicate Content-Length, Host and Authorization answer 400 and close the
connection, so a request hidden in a body never runs), the version header on h2o's own 400s and
414 at every query size, the private mode refusing browser pages (Origin, Sec-Fetch-Site), TLS
defaults (AEAD suites with forward secrecy only, HSTS, certificate lifetime), and HTTP/2 abuse
(rapid reset, PING floods, slow requests)."""

import datetime
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import _SSL, ADMIN, BIN_DIR, ENTITY, ENTITY_PRIVATE, System, basic, entity_body, free_port, list_entities

PRIVATE = ENTITY_PRIVATE.encode()


def exchange(system, data, timeout=15):
    """Sends raw bytes over TLS (HTTP/1.1) and returns everything the server sends until it
    closes the connection (the timeout only bounds a failure)."""
    with socket.create_connection(("127.0.0.1", system.port), timeout=timeout) as sock:
        with _SSL.wrap_socket(sock) as s:
            try:
                s.sendall(data)
            except OSError:
                pass
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    break
                except socket.timeout:
                    pytest.fail("the server kept the connection open after %r" % out[:300])
                if not chunk:
                    break
                out += chunk
            return out


def answers(raw):
    """The answers in raw bytes of HTTP/1.1 (each with a Content-Length): [(status, headers, body)]."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw[:300]
        lines = head.decode("latin-1").split("\r\n")
        hs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hs[k.strip().lower()] = v.strip()
        n = int(hs.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), hs, rest[:n]))
        raw = rest[n:]
    return out


def entity_names(system):
    status, body = list_entities(system, private=True)
    return [] if status == 204 else [e["name"] for e in json.loads(body)]


def add_request(name, extra=b"connection: close\r\n"):
    body = json.dumps(entity_body(name)).encode()
    return (
        b"POST " + PRIVATE + b"?act=add HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


def assert_refused(raw, field):
    got = answers(raw)
    assert len(got) == 1, got  # one answer, then the connection is closed
    status, hs, body = got[0]
    assert status == 400, got
    assert hs.get("connection") == "close"
    assert hs.get("x-xivo-ws-version") == "1.0"
    assert json.loads(body)["field"] == field, body


# ---- HTTP/1.1 framing -----------------------------------------------------------------------------


def test_content_length_with_chunked_is_refused_and_the_hidden_request_never_runs(system):
    hidden = add_request("smuggledclte")
    req = (
        b"POST " + PRIVATE + b"?act=list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + str(len(hidden) + 5).encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden
    )
    assert_refused(exchange(system, req), "Transfer-Encoding")
    assert "smuggledclte" not in entity_names(system)


def test_two_content_lengths_are_refused(system):
    hidden = add_request("smuggledcl")
    req = (
        b"POST " + PRIVATE + b"?act=list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: "
        + str(2 + len(hidden)).encode() + b"\r\n\r\n{}" + hidden
    )
    assert_refused(exchange(system, req), "Content-Length")
    assert "smuggledcl" not in entity_names(system)


@pytest.mark.parametrize(
    "head,field",
    [
        (b"GET %s?act=list HTTP/1.1\r\n\r\n", "Host"),
        (b"GET %s?act=list HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 10.0.0.1\r\n\r\n", "Host"),
        (b"GET %s?act=list HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", "Host"),
        (b"GET %s?act=list HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "Transfer-Encoding"),
    ],
    ids=["no-host", "two-hosts", "two-hosts-1.0", "two-te"],
)
def test_host_and_transfer_encoding_rules(system, head, field):
    assert_refused(exchange(system, head % PRIVATE + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), field)


def test_two_authorizations_are_refused(system):
    a = b"Authorization: " + basic(*ADMIN).encode() + b"\r\n"
    req = b"GET " + ENTITY.encode() + b"?act=list HTTP/1.1\r\nHost: 127.0.0.1\r\n" + a + a + b"\r\n"
    assert_refused(exchange(system, req), "Authorization")


def test_two_authorizations_over_http2(system):
    status, headers, body, version = system.curl(
        "-H", "Authorization: " + basic(*ADMIN), "-H", "Authorization: " + basic("x", "y"),
        system.url(ENTITY, "act=list"), http2=True,
    )
    assert version == "HTTP/2" and status == 400, (status, body)
    assert json.loads(body)["field"] == "Authorization"


def test_sound_requests_keep_the_connection(system):
    # HTTP/1.0 without Host, a chunked body alone, then a request with one Content-Length: all served
    body = json.dumps(entity_body("framedok")).encode()
    req = (
        b"GET " + PRIVATE + b"?act=list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        b"POST " + PRIVATE + b"?act=add HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        b"GET " + PRIVATE + b"?act=search&search=framedok HTTP/1.0\r\n\r\n"
    )
    got = answers(exchange(system, req))
    assert [g[0] for g in got] == [got[0][0], 200, 200], got
    assert got[0][0] in (200, 204)
    assert [e["name"] for e in json.loads(got[2][2])] == ["framedok"]


# ---- the version header on h2o's own answers; 414 at every size ---------------------------------------


@pytest.mark.parametrize(
    "req",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["too-many-headers", "control-byte-in-value", "control-byte-in-target"],
)
def test_h2o_own_400_is_json_with_version(system, req):
    got = answers(exchange(system, req))
    assert len(got) == 1
    status, hs, body = got[0]
    assert status == 400
    assert hs.get("x-xivo-ws-version") == "1.0"
    assert hs.get("strict-transport-security", "").startswith("max-age=")
    assert hs.get("content-type") == "application/json"
    assert json.loads(body)["error"] == "invalid_value"
    assert system.gateway.alive()


@pytest.mark.parametrize("size", [8193, 60000, 400000, 500000, 1 << 20, 3 << 20])
def test_414_at_every_size(system, size):
    req = b"GET " + PRIVATE + b"?act=list&x=" + b"a" * size + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    got = answers(exchange(system, req))
    assert len(got) == 1
    status, hs, body = got[0]
    assert status == 414, (size, got)
    assert hs.get("x-xivo-ws-version") == "1.0"
    assert json.loads(body)["error"] == "too_long"


# ---- the private mode and browsers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers,field",
    [
        ({"Origin": "https://evil.example"}, "Origin"),
        ({"Origin": "null"}, "Origin"),
        ({"Origin": "http://127.0.0.1:8080"}, "Origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
        ({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site"),
    ],
)
def test_private_mode_refuses_browser_pages(system, headers, field):
    r = system.post(ENTITY_PRIVATE, {"act": "add"}, body=entity_body("frompage"), headers=headers)
    assert r.status == 403, r
    err = r.json()
    assert err["error"] == "forbidden" and err["field"] == field and "web pages" in err["message"], err
    r = system.get(ENTITY_PRIVATE, {"act": "delete", "id": "1"}, headers=headers)
    assert r.status == 403, r
    assert "frompage" not in entity_names(system)


def test_private_mode_serves_scripts_and_its_own_origin(system):
    own = "https://127.0.0.1:%d" % system.port
    for headers in ({}, {"Origin": own}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
        r = system.get(ENTITY_PRIVATE, {"act": "list"}, headers=headers)
        assert r.status in (200, 204), (headers, r)


def test_restricted_mode_is_not_concerned(system):
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"Origin": "https://evil.example"})
    assert r.status in (200, 204), r


def test_hsts_on_every_answer(system):
    for r in (
        system.get(ENTITY, {"act": "list"}, auth=ADMIN),
        system.get("/nothing"),
        system.get(ENTITY, {"act": "list"}),
    ):
        assert r.header("strict-transport-security") == "max-age=31536000", r
    status, headers, _, _ = system.curl(system.url(ENTITY_PRIVATE, "act=list"), http2=True)
    assert headers.get("strict-transport-security") == "max-age=31536000"


# ---- deadlines travel as budgets ------------------------------------------------------------------


def test_internal_consumers_send_a_budget(system):
    from test_gateway_review import Zmtp, mp_pack, mp_unpack

    def ask(extra):
        env = {"v": 1, "rid": "budget-%d" % time.monotonic_ns(), "service": "config", "resource": "entity", "act": "list"}
        env.update(extra)
        z = Zmtp(system.internal_endpoint, timeout=15)
        try:
            z.send([b"XWS1", b"\x02", b"k", mp_pack(env)])
            r = z.recv()
            return mp_unpack(r[3])[0]
        finally:
            z.close()

    # a budget is counted on the gateway's clock: whatever the sender's clock says
    assert ask({"budget": 0})["status"] == 504
    assert ask({"budget": 10000})["status"] in (200, 204)
    rep = ask({"budget": "soon"})
    assert rep["status"] == 400 and rep["body"]["error"] == "bad_envelope", rep


# ---- TLS defaults ------------------------------------------------------------------------------------


def tls12_handshake(system, ciphers):
    """The suite a TLS 1.2 client offering only ciphers gets, or None when the server refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", system.port), timeout=15) as sock:
        try:
            with ctx.wrap_socket(sock) as s:
                return s.cipher()[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


WEAK = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "AES128-GCM-SHA256", "AES128-SHA",
        "DHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-SHA384"]


def test_only_aead_suites_with_forward_secrecy(system):
    for c in WEAK:
        assert tls12_handshake(system, c) is None, c
    for c in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        assert tls12_handshake(system, c) == c
    # and openssl's own view of what a default client gets
    out = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % system.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
        input=b"", capture_output=True, timeout=30,
    )
    assert out.returncode != 0 and b"Cipher is ECDHE-ECDSA-AES128-SHA" not in out.stdout


def test_tls_ciphers_setting_widens():
    s = System(workers=0, accounts=False, extra_env={"XWS_TLS_CIPHERS": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA"})
    try:
        assert tls12_handshake(s, "ECDHE-ECDSA-AES128-SHA") == "ECDHE-ECDSA-AES128-SHA"
        assert tls12_handshake(s, "ECDHE-ECDSA-AES256-GCM-SHA384") is None
    finally:
        s.stop()
    # a list that names no suite: the gateway does not start, and says why
    env = dict(os.environ, XWS_TLS_CIPHERS="NO-SUCH-SUITE", XWS_RUN_DIR=tempfile.mkdtemp(prefix="xwst-", dir="/tmp"),
               XWS_LISTEN="127.0.0.1:%d" % free_port())
    try:
        r = subprocess.run([str(BIN_DIR / "xws-gateway")], env=env, capture_output=True, timeout=30)
    finally:
        shutil.rmtree(env["XWS_RUN_DIR"], ignore_errors=True)
    assert r.returncode != 0 and b"tls_ciphers" in r.stderr, r.stderr


def test_generated_certificate_valid_397_days(system):
    cert = system.dir / "data" / "tls" / "cert.pem"
    out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate", "-in", str(cert)], capture_output=True, text=True)
    dates = dict(line.split("=", 1) for line in out.stdout.strip().splitlines())
    fmt = "%b %d %H:%M:%S %Y %Z"
    begin = datetime.datetime.strptime(" ".join(dates["notBefore"].split()), fmt)
    end = datetime.datetime.strptime(" ".join(dates["notAfter"].split()), fmt)
    assert (end - begin) <= datetime.timedelta(days=397, hours=1), (begin, end)


# ---- HTTP/2 abuse -------------------------------------------------------------------------------------

READ_TIMEOUT_MS = 1000  # request_read_timeout_ms of the system below (default 10000)


@pytest.fixture(scope="module")
def h2sys():
    s = System(workers=1, extra_env={"XWS_REQUEST_READ_TIMEOUT_MS": str(READ_TIMEOUT_MS)})
    yield s
    s.stop()


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def h2_headers(method, path, authority):
    """An HPACK block: :method (static), :scheme https, :path and :authority as literals without indexing."""
    block = {"GET": b"\x82", "POST": b"\x83"}[method] + b"\x87"
    for index, value in ((4, path.encode()), (1, authority.encode())):
        block += hpack_int(index, 4) + hpack_int(len(value), 7) + value
    return block


def h2_connect(system):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", system.port), timeout=15))
    assert s.selected_alpn_protocol() == "h2"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
    return s


def closed_by_server(s, keep_sending, limit=60.0):
    """Calls keep_sending() every 0.2 s until the server closes the connection; returns the seconds
    it took (fails past limit, a bound for a hang, not a timing assumption)."""
    s.settimeout(0.2)
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            keep_sending()
        except OSError:
            return time.monotonic() - t0
        try:
            while True:
                if not s.recv(65536):
                    return time.monotonic() - t0
        except socket.timeout:
            pass
        except (OSError, ssl.SSLError):
            return time.monotonic() - t0
    pytest.fail("the server kept the connection open for %.0f s" % limit)


def test_h2_pinging_idle_connection_is_closed(h2sys):
    s = h2_connect(h2sys)
    with s:
        closed_by_server(s, lambda: s.sendall(h2_frame(6, 0, 0, b"12345678")))
    assert "no complete request" in h2sys.gateway.text()


def test_h2_body_one_byte_at_a_time_is_closed(h2sys):
    s = h2_connect(h2sys)
    auth = "127.0.0.1:%d" % h2sys.port
    with s:
        s.sendall(h2_frame(1, 0x4, 1, h2_headers("POST", ENTITY_PRIVATE + "?act=add", auth)))
        closed_by_server(s, lambda: s.sendall(h2_frame(0, 0, 1, b" ")))
    assert h2sys.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204)


def h2_answer_status(s, stream, pending):
    """Reads frames until the HEADERS of stream; returns (its first HPACK byte, the bytes left)."""
    buf = pending
    while True:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, sid, payload = buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]
            buf = buf[9 + n:]
            if ftype == 1 and sid == stream:
                return payload[:1], buf
            assert ftype != 7, "GOAWAY while requests are served"
        chunk = s.recv(65536)
        assert chunk, "closed while requests are served"
        buf += chunk


def test_h2_active_connection_is_kept(h2sys):
    # ten requests 0.2 s apart: the connection lives well past the bound while it is used
    s = h2_connect(h2sys)
    auth = "127.0.0.1:%d" % h2sys.port
    block = h2_headers("GET", ENTITY_PRIVATE + "?act=list", auth)
    pending = b""
    t0 = time.monotonic()
    with s:
        for i in range(10):
            sid = 1 + 2 * i
            s.sendall(h2_frame(1, 0x5, sid, block))
            first, pending = h2_answer_status(s, sid, pending)
            assert first in (b"\x88", b"\x89"), first  # :status 200 or 204 (static table)
            time.sleep(0.2)
    assert time.monotonic() - t0 > 2 * READ_TIMEOUT_MS / 1000


def h2_frames_until_closed(s, limit=60.0):
    """Every frame the server sends until it closes the connection, as (type, stream, payload)."""
    s.settimeout(limit)
    buf, frames = b"", []
    while True:
        try:
            chunk = s.recv(65536)
        except (OSError, ssl.SSLError):
            chunk = b""
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            frames.append((buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
            buf = buf[9 + n:]
        if not chunk:
            return frames


def test_h2_rapid_reset_answers_goaway_enhance_your_calm(h2sys):
    # 150 requests cancelled at once (bound: 100 within 10 s): a GOAWAY with ENHANCE_YOUR_CALM
    # (0xb) naming the last stream h2o took, then the end of the connection
    s = h2_connect(h2sys)
    auth = "127.0.0.1:%d" % h2sys.port
    block = h2_headers("GET", ENTITY_PRIVATE + "?act=list", auth)
    with s:
        s.sendall(b"".join(h2_frame(1, 0x5, sid, block) + h2_frame(3, 0, sid, struct.pack(">I", 8)) for sid in range(1, 301, 2)))
        frames = h2_frames_until_closed(s)
    goaways = [payload for ftype, stream, payload in frames if ftype == 7 and stream == 0]
    assert goaways, "no GOAWAY before the end: %r" % sorted(set(f[0] for f in frames))
    last_stream = int.from_bytes(goaways[0][:4], "big") & 0x7FFFFFFF
    error = int.from_bytes(goaways[0][4:8], "big")
    assert error == 0xB and b"rapid reset" in goaways[0][8:], goaways[0]
    assert 201 <= last_stream <= 299 and last_stream % 2 == 1, last_stream
    assert "rapid reset" in h2sys.gateway.text()


def test_h2_rapid_reset_closes_the_connection(h2sys):
    s = h2_connect(h2sys)
    auth = "127.0.0.1:%d" % h2sys.port
    block = h2_headers("GET", ENTITY_PRIVATE + "?act=list", auth)
    burst = b"".join(
        h2_frame(1, 0x5, sid, block) + h2_frame(3, 0, sid, struct.pack(">I", 8)) for sid in range(1, 4001, 2)
    )
    with s:
        try:
            s.sendall(burst)
        except OSError:
            pass
        closed_by_server(s, lambda: None)
    assert "rapid reset" in h2sys.gateway.text()
    # other clients are served
    assert h2sys.get(ENTITY_PRIVATE, {"act": "list"}).status in (200, 204)
    status, _, _, version = h2sys.curl(h2sys.url(ENTITY_PRIVATE, "act=list"), http2=True)
    assert version == "HTTP/2" and status in (200, 204)
