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
