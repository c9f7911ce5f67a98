"""Transport (contract §1): paths and 404s, repeated and trailing slashes, methods and 405,
size limits (413, 414), the version header on every answer, keep-alive and HTTP/2 (curl)."""

import http.client
import json
import subprocess

import pytest

from conftest import _SSL, ADMIN, ENTITY, basic, entity_body, md5_hex

E = "/xivo/configuration/json.php/restricted/manage/entity"

NOT_FOUND = [
    "/",
    "/xivo/configuration/json.php",
    "/xivo/configuration/json.php/restricted",
    "/xivo/configuration/json.php/restricted/manage",
    "/xivo/configuration/json.php/restricted/manage/nothing",
    "/xivo/configuration/json.php/restricted/nothing/entity",
    "/xivo/configuration/json.php/restricted/manage/entity/extra",
    "/xivo/configuration/json.php/restricted/manage/../manage/entity",
    "/xivo/configuration/json.php/restricted/manage/entity/..",
    "/xivo/configuration/json.php/restricted/./manage/entity",
    "/xivo/configuration/json.php/restricted/manage/entity/.",
    "/xivo/configuration/json.php/restricted/_x/entity",
    "/xivo/configuration/json.php/restricted/manage/_entity",
    "/xivo/configuration/json.php/restricted/manage/.entity",
    "/xivo/configuration/json.php/restricted/manage/%2e%2e/manage/entity",
    "/xivo/configuration/json.php/other/manage/entity",
    "/xivo/configuration/json.php/restricted/manage/entity.php",
    "/xivo/configuration/index.php/restricted/manage/entity",
    "/service/ipbx/json.php/restricted/manage/entity",  # right resource, wrong front
    "/callcenter/json.php/restricted/manage/entity",
    "/json.php/restricted/manage/entity",
    "/xivo/configuration/json.php/private/network/mail",  # restricted-only resources
    "/xivo/configuration/json.php/private/network/mail/",
    "/service/ipbx/json.php/private/system_management/extensions",
    "/xivo/configuration/json.php/private/check",
    "/xivo/configuration/json.php/private/check/",
    "/xivo/configuration/json.php/restricted/check/extra",
    # a missing component does not come back when the slashes are collapsed
    "/xivo/configuration/json.php/restricted//entity",
    "/xivo/configuration/json.php//manage/entity",
    "/xivo//json.php/restricted/manage/entity",
]


@pytest.mark.parametrize("path", NOT_FOUND)
def test_404(system, path):
    r = system.get(path, {"act": "list"}, auth=ADMIN)
    assert r.status == 404, r
    assert r.body == b""
    assert r.header("x-xivo-ws-version") == "1.0"


def test_404_without_credentials(system):
    r = system.get("/no/such/path")
    assert r.status == 404, r
    assert r.header("x-xivo-ws-version") == "1.0"


@pytest.mark.parametrize(
    "path",
    [
        E,
        E + "/",
        "/" + E,
        "//xivo///configuration//json.php/restricted//manage///entity//",
        "/xivo/configuration/json.php//restricted/manage/entity///",
    ],
)
def test_slashes_accepted(system, path):
    ref = system.get(E + "/", {"act": "list"}, auth=ADMIN)
    r = system.get(path, {"act": "list"}, auth=ADMIN)
    assert r.status == ref.status, r
    assert r.status in (200, 204)
    assert r.body == ref.body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_405(system, method):
    r = system.request(method, E + "/", {"act": "list"}, auth=ADMIN, body=b"{}" if method in ("PUT", "PATCH") else None)
    assert r.status == 405, r
    allow = [m.strip() for m in (r.header("allow") or "").split(",")]
    assert sorted(allow) == ["GET", "HEAD", "POST"], r.header("allow")
    assert r.header("x-xivo-ws-version") == "1.0"


def test_413_body_too_large(system):
    big = system.dir / "big.json"
    big.write_bytes(b"{" + b" " * (1024 * 1024 - 2) + b"}" + b" ")  # 1 MiB + 1 byte
    assert big.stat().st_size == 1024 * 1024 + 1
    status, headers, body, _ = system.curl(
        "-u", "%s:%s" % ADMIN, "-H", "Content-Type: application/json", "--data-binary", "@%s" % big,
        system.url(E + "/", "act=add"),
    )
    assert status == 413, (status, body[:200])
    assert headers.get("x-xivo-ws-version") == "1.0"
    assert system.gateway.alive()


def test_body_of_exactly_max_is_read(system):
    # exactly 1 MiB: read and validated (too long description), not refused for its size
    desc_len = 1024 * 1024 - len(json.dumps(entity_body("maxbody", description="")).encode())
    body = json.dumps(entity_body("maxbody", description="d" * desc_len)).encode()
    assert len(body) == 1024 * 1024
    r = system.post(E + "/", {"act": "add"}, body=body, auth=ADMIN)
    assert r.status == 400, r
    assert r.json()["field"] == "description"


def test_414_query_too_long(system):
    base = "act=list&pad="
    q = base + "a" * (8192 + 1 - len(base))
    assert len(q) == 8193
    r = system.get(E + "/", q, auth=ADMIN)
    assert r.status == 414, r
    assert r.header("x-xivo-ws-version") == "1.0"
    q = base + "a" * (8192 - len(base))
    r = system.get(E + "/", q, auth=ADMIN)
    assert r.status in (200, 204), r


def test_version_header_everywhere(system):
    seen = set()
    cases = [
        ("GET", E + "/", {"act": "list"}, ADMIN, None),
        ("GET", E + "/", {"act": "view", "id": "424242"}, ADMIN, None),
        ("POST", E + "/", {"act": "add"}, ADMIN, b"not json"),
        ("GET", E + "/", {"act": "list"}, None, None),
        ("GET", E + "/", {"act": "list"}, ("admin", "bad"), None),
        ("GET", "/nothing", None, ADMIN, None),
        ("PUT", E + "/", None, ADMIN, b""),
    ]
    for method, path, q, auth, body in cases:
        r = system.request(method, path, q, auth=auth, body=body)
        assert r.header("x-xivo-ws-version") == "1.0", (method, path, q, r)
        seen.add(r.status)
    assert {401, 404, 400, 405} <= seen, seen


def test_keep_alive_many_requests(system):
    conn = http.client.HTTPSConnection("127.0.0.1", system.port, context=_SSL, timeout=10)
    try:
        for i in range(50):
            conn.request("GET", E + "/?act=list", headers={"Authorization": basic(*ADMIN)})
            r = conn.getresponse()
            r.read()
            assert r.status in (200, 204)
            assert not r.will_close, i
    finally:
        conn.close()


def test_chunked_request_body(system):
    status, _, body, _ = system.curl(
        "-u", "%s:%s" % ADMIN, "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/json",
        "--data-binary", json.dumps(entity_body("chunked")), system.url(E + "/", "act=add"),
    )
    assert status == 200, (status, body)
    r = system.get(E + "/", {"act": "search", "search": "chunked"}, auth=ADMIN)
    assert r.status == 200 and [e["name"] for e in r.json()] == ["chunked"]


# ---- HTTP/2 ----------------------------------------------------------------------------------------


def test_http2_list_and_304(system):
    assert system.post(E + "/", {"act": "add"}, body=entity_body("h2entity"), auth=ADMIN).status == 200
    status, headers, body, version = system.curl("-u", "%s:%s" % ADMIN, system.url(E + "/", "act=list"), http2=True)
    assert version == "HTTP/2", version
    assert status == 200
    assert headers.get("x-xivo-ws-version") == "1.0"
    assert headers.get("content-type", "").startswith("application/json")
    h1 = system.get(E + "/", {"act": "list"}, auth=ADMIN)
    assert body == h1.body  # same bytes whatever the protocol
    etag = headers.get("etag")
    assert etag
    status, _, body, _ = system.curl("-u", "%s:%s" % ADMIN, "-H", "If-None-Match: " + etag,
                                     system.url(E + "/", "act=list"), http2=True)
    assert status == 304 and body == b""
    status, _, _, _ = system.curl("-u", "%s:%s" % ADMIN, system.url(E + "/", "act=list&sum=" + md5_hex(h1.body)),
                                  http2=True)
    assert status == 304


def test_http2_add_and_errors(system):
    status, _, body, version = system.curl(
        "-u", "%s:%s" % ADMIN, "-H", "Content-Type: application/json", "--data-binary",
        json.dumps(entity_body("h2added")), system.url(E + "/", "act=add"), http2=True,
    )
    assert version == "HTTP/2" and status == 200, (status, body)
    status, _, body, _ = system.curl("-u", "%s:%s" % ADMIN, "--data-binary", "{bad", system.url(E + "/", "act=add"),
                                     http2=True)
    assert status == 400
    assert json.loads(body)["error"] == "invalid_json"
    status, headers, body, _ = system.curl(system.url(E + "/", "act=list"), http2=True)
    assert status == 401
    assert headers.get("www-authenticate") == 'Basic realm="Access Restricted"'
    assert headers.get("x-xivo-ws-version") == "1.0"
    status, headers, _, _ = system.curl("-u", "%s:%s" % ADMIN, system.url("/nothing/here"), http2=True)
    assert status == 404 and headers.get("x-xivo-ws-version") == "1.0"
    status, headers, _, _ = system.curl("-u", "%s:%s" % ADMIN, "-X", "DELETE", system.url(E + "/"), http2=True)
    assert status == 405


def test_http2_many_streams(system):
    urls = [system.url(E + "/", "act=list&n=%d" % i) for i in range(40)]
    args = ["-u", "%s:%s" % ADMIN, "--parallel", "--parallel-max", "40"]
    for u in urls:
        args += [u, "-o", "/dev/null", "-w", "%{http_code}\n"]
    r = subprocess.run(["curl", "-sk", "--http2"] + args, capture_output=True, timeout=60)
    codes = r.stdout.decode().split()
    assert len(codes) == 40, r
    assert set(codes) <= {"200", "204"}, codes


def test_405_error_code(system):
    r = system.request("DELETE", E + "/", {"act": "list"}, auth=ADMIN)
    assert r.status == 405, r
    assert r.json()["error"] == "method_not_allowed", r
