"""The published API description (docs/openapi.json) and its reference page: the document is
valid OpenAPI 3 (the swagger-parser validator of tests/openapi, installed by deploy/install-deps.sh,
plus the JSON-schema check of every schema and $ref here); it describes every route of the gateway's
routing tables (gw_route.c, gw_status.c, gw_docs.c) in both modes and nothing else, and the acts that
read a body have a request schema; real answers of a system running every worker service validate
against the schemas of their path, method, status and act; the gateway serves the repo file as is
(ETag, 304, headers, no credentials); the page renders every resource in headless Chromium and a
screenshot of it is a PNG."""

import copy
import json
import re
import shutil
import struct
import subprocess
import urllib.parse

import jsonschema
import pytest

from conftest import ADMIN, BIN_DIR, PROJECT, Response, System, wait_until

DOC_FILE = PROJECT / "docs" / "openapi.json"
DOC = json.loads(DOC_FILE.read_text())
VALIDATOR_DIR = PROJECT / "tests" / "openapi"
METHODS = ("get", "post", "head")

IPBX = "/service/ipbx/json.php/restricted/"
CONF = "/xivo/configuration/json.php/restricted/"
ENTITY = CONF + "manage/entity"
MAIL = CONF + "network/mail"
CHECK = CONF + "check"
CONTEXT = IPBX + "system_management/context"
LINES = IPBX + "pbx_settings/lines"
USERS = IPBX + "pbx_settings/users"
GROUPS = IPBX + "pbx_settings/groups"
PICKUP = IPBX + "call_management/pickup"
DEVICES = IPBX + "pbx_settings/devices"
EXT = IPBX + "system_management/extensions"
QUEUES = "/callcenter/json.php/restricted/settings/queues"


def private(path):
    return path.replace("/restricted/", "/private/")


# ---- the document --------------------------------------------------------------------------------


def _json_schema_of(doc):
    """The document with OpenAPI 3.0's `nullable` turned into JSON Schema (type [T, "null"])."""
    out = copy.deepcopy(doc)

    def walk(node):
        if isinstance(node, dict):
            if node.get("nullable") is True and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


SCHEMA_DOC = _json_schema_of(DOC)
RESOLVER = jsonschema.RefResolver.from_schema(SCHEMA_DOC)


def _refs(node, found):
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(node["$ref"])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)
    return found


def test_document_is_valid_openapi():
    """The swagger-parser validator (the OpenAPI 3 schema and its further rules) accepts the
    document, and refuses a broken copy (so the check is real)."""
    if not (VALIDATOR_DIR / "node_modules" / "@apidevtools" / "swagger-parser").is_dir() or not shutil.which("node"):
        pytest.fail("the OpenAPI validator is not installed: run deploy/install-deps.sh (npm ci in tests/openapi)")
    r = subprocess.run(["node", "validate.js", str(DOC_FILE)], cwd=VALIDATOR_DIR, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("valid 3.0.3 ")
    broken = copy.deepcopy(DOC)
    del broken["paths"][CHECK]["get"]["responses"]
    broken["paths"][ENTITY]["get"]["parameters"][0]["in"] = "body"
    bad_file = VALIDATOR_DIR / "node_modules" / ".broken-openapi.json"
    bad_file.write_text(json.dumps(broken))
    try:
        r = subprocess.run(["node", "validate.js", str(bad_file)], cwd=VALIDATOR_DIR, capture_output=True, text=True, timeout=120)
    finally:
        bad_file.unlink()
    assert r.returncode == 1 and "responses" in r.stderr, r


def test_document_schemas_and_refs():
    """Every $ref resolves, every schema is a valid JSON schema, operationIds are unique."""
    for ref in sorted(_refs(DOC, set())):
        assert ref.startswith("#/"), ref
        node = DOC
        for part in ref[2:].split("/"):
            assert part in node, "unresolved %s" % ref
            node = node[part]
    for name, schema in SCHEMA_DOC["components"]["schemas"].items():
        jsonschema.Draft4Validator.check_schema(schema)
    ids = [op["operationId"] for item in DOC["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            assert method in METHODS, (path, method)
            assert op["responses"], (path, method)


# ---- the routing tables --------------------------------------------------------------------------


def _gateway_routes():
    """{path: body acts} of every route the gateway serves, read from its routing tables."""
    src = (PROJECT / "gateway" / "gw_route.c").read_text()
    fronts = dict(re.findall(r'#define (FRONT_\w+) "([^"]+)"', src))
    acts = {m[0]: re.findall(r'"(\w+)"', m[1]) for m in re.findall(r"static const char \*const (s_\w+)\[\] = \{([^}]*)\}", src)}
    table = re.search(r"s_routes\[\] = \{(.*?)\n\};", src, re.S).group(1)
    rows = re.findall(r'\{(FRONT_\w+), "([^"]+)", [^,]+, "[^"]+", ([01]), (s_\w+)\}', table)
    assert len(rows) == table.count("{FRONT_") and rows
    front_path = {"xivo/configuration": "/xivo/configuration/json.php", "service/ipbx": "/service/ipbx/json.php",
                  "callcenter": "/callcenter/json.php"}
    out = {}
    for front, path, ronly, body_acts in rows:
        for mode in ("restricted",) if ronly == "1" else ("restricted", "private"):
            out["%s/%s/%s" % (front_path[fronts[front]], mode, path)] = set(acts[body_acts])
    for f in ("gw_status.c", "gw_docs.c"):
        own = (PROJECT / "gateway" / f).read_text()
        for path in re.findall(r'\] = \{"", "([^"]+)", NULL, NULL, 1, NULL\}', own):
            out["/" + path + ("/" if path == "api" else "")] = None
    return out


ROUTES = _gateway_routes()


def test_every_route_is_described_and_nothing_else():
    assert len(ROUTES) == 11 + 8 + 4 + 4  # 11 rows, 8 of them in both modes; 4 status paths; 4 docs paths
    described = set(DOC["paths"])
    # the page's script and style sheet are served but are not part of the API
    served = {p for p in ROUTES if p not in ("/api/api.js", "/api/api.css")}
    assert described == served, (sorted(described - served), sorted(served - described))
    for path, body_acts in ROUTES.items():
        if body_acts is None:
            continue
        item = DOC["paths"][path]
        assert set(item) == set(METHODS), path
        xacts = item["get"]["x-xws-acts"]
        reads_body = {a for a, d in xacts.items() if "requestBody" in d}
        assert reads_body == body_acts, (path, reads_body, body_acts)
        act = next((p for p in item["get"]["parameters"] if p.get("name") == "act"), None)
        if path.endswith("/check"):
            assert act is None
        else:
            assert act["schema"]["enum"] == list(xacts), path
        if body_acts:
            assert "requestBody" in item["post"], path
        sec = item["get"]["security"]
        assert sec == ([{"basicAuth": []}, {}] if "/restricted/" in path else []), path


# ---- a system with every service -----------------------------------------------------------------


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        for b in ("xws-ipbx-lines", "xws-ipbx-users", "xws-devices", "xws-extensions"):
            s.start_worker(b)
        r = subprocess.run([str(BIN_DIR / "xws-bootstrap"), "-e", s.internal_endpoint, str(PROJECT / "deploy" / "bootstrap.json")],
                           capture_output=True, text=True, timeout=60, env=s.env)
        assert r.returncode == 0, r.stderr
        for path in (LINES, DEVICES, USERS, QUEUES):
            wait_until(lambda: s.get(path, {"act": "list"}, auth=ADMIN).status in (200, 204), timeout=20, what=path)
        wait_until(lambda: s.get("/status/ready").status == 200, timeout=30, what="readiness")
        yield s
    finally:
        s.stop()


def _template(path):
    p = path.split("?")[0]
    if p != "/api/" and p.endswith("/"):
        p = p[:-1]
    return p


def check(resp, method, path, act=None):
    """Validates a real answer against the document: the status is documented for the path and
    method, the version header is there, a body validates against the status's schema and, for a
    200 of a json.php act, against that act's own schema. Returns resp."""
    op = DOC["paths"][_template(path)][method.lower()]
    assert str(resp.status) in op["responses"], (method, path, act, resp)
    assert resp.header("x-xivo-ws-version") == "1.0"
    spec = op["responses"][str(resp.status)]
    if "$ref" in spec:
        spec = DOC["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    for h in spec.get("headers", {}):
        if h == "ETag":  # only reads carry an entity tag
            assert resp.header("etag") or resp.status != 200 or act not in ("list", "search", "view"), (path, act)
        elif h in ("Retry-After", "WWW-Authenticate", "Allow"):
            assert resp.header(h.lower()), (path, h)
    if not resp.body:
        return resp
    ctype = resp.header("content-type").split(";")[0]
    assert "content" in spec and ctype in spec["content"], (method, path, act, resp.status, ctype)
    if ctype != "application/json":
        return resp
    value = json.loads(resp.body)
    schema = _json_schema_of(spec["content"][ctype]["schema"])
    jsonschema.Draft4Validator(schema, resolver=RESOLVER).validate(value)
    if resp.status == 200 and act is not None and "x-xws-acts" in op:
        act_schema = op["x-xws-acts"][act].get("response")
        assert act_schema is not None, (path, act, "a body where the act documents none")
        jsonschema.Draft4Validator(_json_schema_of(act_schema), resolver=RESOLVER).validate(value)
    return resp


def call(system, method, path, act=None, query=None, body=None, auth=ADMIN, **kw):
    q = dict(query or {})
    if act is not None:
        q = dict({"act": act}, **q)
    return check(system.request(method, path, query=q or None, body=body, auth=auth, **kw), method, path, act)


def test_the_answer_check_refuses_what_the_document_does_not_say():
    """check() is not vacuous: an undocumented status, a wrong type, a missing key, a body where the
    act documents none, and a missing version header are refused."""
    hdr = {"x-xivo-ws-version": "1.0", "content-type": "application/json", "etag": '"1"'}
    entity = {"id": 1, "name": "a", "displayname": "Aaa", "phonenumber": "", "faxnumber": "", "email": "", "url": "",
              "address1": "", "address2": "", "city": "", "state": "", "zipcode": "", "country": "", "description": "",
              "disable": False, "dcreate": 1, "identity": "Aaa (a)"}
    good = Response(200, hdr, json.dumps(entity).encode(), 0)
    check(good, "GET", ENTITY, "view")
    bad = [
        (Response(200, hdr, json.dumps(dict(entity, id="1")).encode(), 0), "view"),
        (Response(200, hdr, json.dumps({k: v for k, v in entity.items() if k != "city"}).encode(), 0), "view"),
        (Response(200, hdr, json.dumps(entity).encode(), 0), "list"),
        (Response(200, hdr, b'"3"', 0), "add"),
        (Response(418, hdr, b"", 0), "view"),
        (Response(400, hdr, b'{"error": "invalid_value"}', 0), "add"),
        (Response(200, {"content-type": "application/json"}, json.dumps(entity).encode(), 0), "view"),
    ]
    for resp, act in bad:
        with pytest.raises((AssertionError, jsonschema.ValidationError)):
            check(resp, "GET", ENTITY, act)


def test_answers_validate_against_the_schemas(system):
    seen = {}

    def ok(status, method, path, act=None, **kw):
        r = call(system, method, path, act, **kw)
        body = kw.get("body")
        if r.status == 200 and isinstance(body, dict):  # an accepted body matches its act's request schema
            op = DOC["paths"][_template(path)][method.lower()]
            schema = op["x-xws-acts"][act]["requestBody"]
            jsonschema.Draft4Validator(_json_schema_of(schema), resolver=RESOLVER).validate(body)
        assert r.status in (status if isinstance(status, tuple) else (status,)), (method, path, act, kw, r)
        seen.setdefault(_template(path), set()).add((method, act, r.status))
        return r

    # configuration: entities, mail, contexts, check
    ok(200, "GET", CHECK)
    ok(200, "GET", ENTITY, "list")
    ok(200, "POST", ENTITY, "add", body={"name": "oaent", "displayname": "OpenAPI entity", "zipcode": 75001})
    ent = ok(200, "GET", ENTITY, "search", query={"search": "openapi"}).json()[0]
    ok(200, "GET", ENTITY, "view", query={"id": ent["id"]})
    ok(200, "POST", ENTITY, "edit", query={"id": ent["id"]}, body={"city": "Paris"})
    ok(204, "GET", ENTITY, "search", query={"search": "nothing-like-this"})
    ok(400, "POST", ENTITY, "add", body={"displayname": "No name"})
    ok(404, "GET", ENTITY, "view", query={"id": "999999"})
    ok(405, "GET", ENTITY, "delete", query={"id": "1"})  # the default entity is in use
    ok(200, "GET", MAIL, "view")
    ok(200, "POST", MAIL, "edit", body={"mydomain": "example.org", "origin": "", "relayhost": "", "fallback_relayhost": "",
                                       "canonical": [{"pattern": "a@x.org", "result": "b@x.org"}]})
    ok(400, "POST", MAIL, "edit", body={"mydomain": "example.org"})
    ok(200, "GET", CONTEXT, "list")
    ok(200, "POST", CONTEXT, "add", body={"context": {"name": "oactx", "displayname": "OpenAPI", "entity": "oaent", "contexttype": "internal"},
                                          "contextnumbers": {"user": [{"numberbeg": "300", "numberend": "399"}], "group": [{"numberbeg": "350"}]}})
    ok(200, "GET", CONTEXT, "view", query={"id": "oactx"})
    ok(200, "GET", CONTEXT, "view", query={"id": "default"})
    ok(200, "GET", CONTEXT, "search", query={"search": "oact"})
    ok(400, "POST", CONTEXT, "add", body={"context": {"name": "general", "displayname": "x", "entity": "default", "contexttype": "internal"}})
    ok(404, "GET", CONTEXT, "view", query={"id": "nosuchctx"})

    # lines, devices, users, groups, queues, pickups, extensions
    ok(200, "POST", DEVICES, "add", body={"mac": "00:11:22:aa:bb:cc", "ip": "10.0.0.7"})
    dev = ok(200, "GET", DEVICES, "search", query={"search": "00-11-22-AA-BB-CC"}).json()[0]
    ok(200, "POST", LINES, "add", body={"protocol": {"protocol": "sip", "context": "oactx"},
                                        "linefeatures": {"number": "301", "device": str(dev["id"]), "num": 1}})
    ok(200, "POST", LINES, "add", body={"protocol": {"protocol": "sccp", "context": "oactx"}, "linefeatures": {"number": "302"}})
    ok(200, "POST", LINES, "add", body={"protocol": {"protocol": "custom", "interface": "dahdi/g1/301", "context": "oactx"}})
    lines = ok(200, "GET", LINES, "list").json()
    ok(200, "GET", LINES, "list", query={"free": "1", "protocol": "sip"})
    ok(200, "GET", LINES, "search", query={"search": "30", "context": "oactx"})
    for line in lines:
        ok(200, "GET", LINES, "view", query={"id": line["id"]})
    ok(200, "POST", LINES, "edit", query={"id": lines[0]["id"]}, body={"linefeatures": {"description": "edited"}})
    ok(400, "POST", LINES, "add", body={"protocol": {"protocol": "h323"}})
    ok(404, "GET", LINES, "view", query={"id": "999999"})
    ok(200, "GET", DEVICES, "list")
    ok(200, "GET", DEVICES, "view", query={"id": dev["id"]})
    ok(200, "GET", DEVICES, "view", query={"id": dev["deviceid"]})
    ok(200, "POST", DEVICES, "edit", query={"id": dev["id"]}, body={"description": "desk"})
    ok(400, "POST", DEVICES, "add", body={"mac": "not-a-mac"})
    ok(404, "GET", DEVICES, "view", query={"id": "999999"})

    ok(200, "GET", GROUPS, "list")
    ok(200, "POST", GROUPS, "add", body={"name": "oagroup", "number": "350", "context": "oactx"})
    ok(200, "POST", QUEUES, "add", body={"name": "oaqueue", "context": "oactx"})
    groups = ok(200, "GET", GROUPS, "search", query={"search": "oag"}).json()
    free_line = next(line for line in lines if line["protocol"] == "sccp")
    uid = ok(200, "POST", USERS, "add", body={
        "userfeatures": {"firstname": "Ada", "lastname": "Lovelace", "entityid": str(ent["id"]), "enableclient": True,
                         "loginclient": "ada", "passwdclient": "secret"},
        "linefeatures": {"id": [str(free_line["id"]), ""], "protocol": ["sccp", "sip"], "context": ["oactx", "oactx"], "number": ["302", "303"]},
        "voicemail": {"mailbox": "302", "fullname": "Ada Lovelace"},
        "dialaction": {"noanswer": {"actiontype": "group", "actionarg1": str(groups[0]["id"])}, "busy": {"actiontype": "endcall", "action": "busy"}},
        "group-select": ["oagroup"], "queue-select": ["oaqueue"], "queue": {"oaqueue": {"penalty": "1"}},
        "phonefunckey": {"fknum": ["1"], "type": ["user"], "typeval": ["1"], "supervision": ["1"]},
        "queueskills": [{"id": "1", "weight": "50"}]}).json()
    ok(200, "POST", USERS, "add", body={"userfeatures": {"firstname": "Bob"}})
    ok(200, "GET", USERS, "list")
    ok(200, "GET", USERS, "search", query={"search": "ada"})
    ok(200, "GET", USERS, "view", query={"id": uid})
    ok(200, "POST", USERS, "edit", query={"id": uid}, body={"userfeatures": {"lastname": "King"}})
    ok(400, "POST", USERS, "add", body={"userfeatures": {"firstname": ""}})
    ok(400, "POST", USERS, "add", body="[1, 2]")
    ok(404, "GET", USERS, "view", query={"id": "999999"})
    ok(200, "GET", GROUPS, "view", query={"id": groups[0]["id"]})
    ok(400, "POST", GROUPS, "add", body={"name": "Bad Name!"})
    ok(404, "GET", GROUPS, "view", query={"id": "999999"})
    queues = ok(200, "GET", QUEUES, "list").json()
    ok(200, "GET", QUEUES, "search", query={"search": "oaq"})
    for q in queues:
        ok(200, "GET", QUEUES, "view", query={"id": q["id"]})
    ok(404, "GET", QUEUES, "view", query={"id": "999999"})
    ok(204, "GET", PICKUP, "list")
    ok(200, "POST", PICKUP, "add", body={"name": "oapick", "description": "desk",
                                         "members": [{"category": "member", "membertype": "user", "memberid": uid},
                                                     {"category": "pickup", "membertype": "group", "memberid": str(groups[0]["id"])}]})
    pick = ok(200, "GET", PICKUP, "list").json()[0]
    ok(200, "GET", PICKUP, "view", query={"id": pick["id"]})
    ok(400, "POST", PICKUP, "add", body={"name": "x", "members": [{"category": "member", "membertype": "user", "memberid": "999999"}]})
    ok(404, "GET", PICKUP, "view", query={"id": "63"})
    ok(200, "GET", EXT, "search", query={"context": "oactx", "obj": "user", "limit": "5"})
    ok(200, "GET", EXT, "search", query={"context": "default", "obj": "queue", "number": "6"})
    ok(400, "GET", EXT, "search", query={"context": "oactx", "obj": "spaceship"})
    ok(404, "GET", EXT, "search", query={"context": "nosuchctx", "obj": "user"})

    # edits and deletes
    ok(200, "POST", PICKUP, "edit", query={"id": pick["id"]}, body={"name": "oapick2", "description": "edited"})
    ok(404, "POST", PICKUP, "edit", query={"id": "63"}, body={"name": "x"})
    ok(200, "POST", CONTEXT, "edit", query={"id": "oactx"}, body={"context": {"name": "oactx", "displayname": "OpenAPI edited"}})
    ok(405, "GET", CONTEXT, "delete", query={"id": "oactx"})  # lines use it
    ok(404, "GET", CONTEXT, "delete", query={"id": "nosuchctx"})
    ok(200, "POST", GROUPS, "edit", query={"id": groups[0]["id"]}, body={"description": "edited"})
    qid = next(q["id"] for q in queues if q["name"] == "oaqueue")
    ok(200, "POST", QUEUES, "edit", query={"id": qid}, body={"displayname": "OpenAPI queue"})
    ok(200, "GET", QUEUES, "delete", query={"id": qid})
    ok(404, "GET", QUEUES, "delete", query={"id": qid})
    ok(200, "GET", PICKUP, "delete", query={"id": pick["id"]})
    ok(200, "GET", GROUPS, "delete", query={"id": groups[0]["id"]})
    ok(200, "GET", USERS, "delete", query={"id": uid})
    ok(404, "GET", USERS, "delete", query={"id": uid})
    ok(200, "GET", DEVICES, "delete", query={"id": dev["id"]})
    for path in (ENTITY, CONTEXT, LINES, USERS, GROUPS, QUEUES):
        ok(200, "GET", private(path), "list", auth=None)
    for path in (PICKUP, DEVICES):  # their only objects were deleted above
        ok(204, "GET", private(path), "list", auth=None)
    ok(200, "POST", private(GROUPS), "add", auth=None, body={"name": "oaprivate"})
    ok(401, "GET", USERS, "list", auth=None)
    ok(401, "GET", CHECK, auth=("admin", "wrong"))
    r = check(system.request("PUT", ENTITY, query={"act": "list"}, auth=ADMIN), "GET", ENTITY)
    assert r.status == 405 and r.header("allow") == "GET, POST, HEAD"
    r = check(system.request("GET", USERS, query={"act": "list", "x": "y" * 9000}, auth=ADMIN), "GET", USERS)
    assert r.status == 414
    r = check(system.request("POST", LINES, query={"act": "add"}, auth=ADMIN, body=b"{" + b" " * (1024 * 1024 + 10) + b"}"), "POST", LINES)
    assert r.status == 413
    etag = system.get(USERS, {"act": "list"}, auth=ADMIN).header("etag")
    r = check(system.get(USERS, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": etag}), "GET", USERS, "list")
    assert r.status == 304 and r.body == b""
    r = check(system.request("HEAD", USERS, query={"act": "list"}, auth=ADMIN), "HEAD", USERS)
    assert r.status == 200 and r.body == b""

    # the gateway's own paths
    assert check(system.get("/status/live"), "GET", "/status/live").status == 200
    assert check(system.get("/status/ready"), "GET", "/status/ready").status == 200
    assert check(system.get("/status", auth=ADMIN), "GET", "/status").status == 200
    assert check(system.get("/status"), "GET", "/status").status == 200
    assert check(system.get("/metrics", auth=ADMIN), "GET", "/metrics").status == 200
    assert check(system.get("/metrics"), "GET", "/metrics").status == 401

    # the deletealls, last: they empty the store
    ok(200, "GET", LINES, "delete", query={"id": lines[0]["id"]})
    for path in (USERS, LINES):
        ok(200, "GET", path, "deleteall")
        ok(204, "GET", path, "deleteall")
    ok(200, "GET", ENTITY, "deleteall")  # entities existed (the ones in use stay)

    # every act of every json.php resource was exercised, and each resource answered a 200
    for path, body_acts in ROUTES.items():
        if body_acts is None or "/restricted/" not in path:
            continue
        assert any(s == 200 for _, _, s in seen.get(path, ())), path
        if not path.endswith("/check"):
            acts = set(DOC["paths"][path]["get"]["x-xws-acts"])
            assert acts == {a for _, a, _ in seen[path]}, (path, acts)


def test_unavailable_and_timeout_answers():
    """503 (no worker: Retry-After) and 504 (a worker that never answers) validate too."""
    s = System(workers=1, deadline_ms=1000)
    try:
        s.start_worker("xws-test-blackhole", ["-s", "devices"])
        wait_until(lambda: s.get(DEVICES, {"act": "list"}, auth=ADMIN).status == 504, timeout=20, what="the blackhole worker")
        r = call(s, "GET", DEVICES, "list")
        assert r.status == 504 and r.json()["error"] == "timeout"
        r = call(s, "GET", LINES, "list")  # no ipbx-lines worker
        assert r.status == 503 and r.header("retry-after") == "1"
        r = call(s, "GET", private(USERS), "view", query={"id": "1"}, auth=None)
        assert r.status == 503
    finally:
        s.stop()


def test_routes_of_the_document_answer(system):
    """Every documented path is a route of the running gateway (no 404), and the private path of a
    restricted-only resource is not (404)."""
    for path in DOC["paths"]:
        r = system.get(path, auth=ADMIN)
        assert not (r.status == 404 and r.body == b""), (path, r)  # an unknown path: 404, empty body
    for path in (MAIL, EXT, CHECK):
        assert private(path) not in DOC["paths"]
        assert system.get(private(path)).status == 404


# ---- the served files ----------------------------------------------------------------------------


def test_served_description_is_the_repo_file(system):
    r = system.get("/api/openapi.json")  # no credentials
    assert r.status == 200 and r.body == DOC_FILE.read_bytes()
    assert r.header("content-type") == "application/json"
    assert r.header("x-xivo-ws-version") == "1.0"
    assert r.header("cache-control") == "no-cache" and r.header("x-content-type-options") == "nosniff"
    etag = r.header("etag")
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    for value in (etag, '"other", ' + etag, "*"):
        r2 = system.get("/api/openapi.json", headers={"If-None-Match": value})
        assert r2.status == 304 and r2.body == b"" and r2.header("etag") == etag
    assert system.get("/api/openapi.json", headers={"If-None-Match": '"other"'}).status == 200
    assert system.get("/api/openapi.json/", query={"x": "1"}).body == r.body
    head = system.request("HEAD", "/api/openapi.json")
    assert head.status == 200 and head.body == b"" and head.header("etag") == etag
    assert check(system.request("PUT", "/api/openapi.json"), "GET", "/api/openapi.json").status == 405
    assert check(system.request("DELETE", "/status/ready"), "GET", "/status/ready").status == 405


@pytest.mark.parametrize("path,ctype,name", [("/api/", "text/html; charset=utf-8", "index.html"),
                                             ("/api", "text/html; charset=utf-8", "index.html"),
                                             ("/api/api.js", "text/javascript; charset=utf-8", "api.js"),
                                             ("/api/api.css", "text/css; charset=utf-8", "api.css")])
def test_served_page_files(system, path, ctype, name):
    r = system.get(path)
    assert r.status == 200 and r.header("content-type") == ctype
    assert r.body == (PROJECT / "docs" / "api" / name).read_bytes()
    assert r.header("etag") and r.header("x-xivo-ws-version") == "1.0"
    if name == "index.html":
        assert r.header("content-security-policy").startswith("default-src 'self'")
    for bad in ("/api/index.html", "/api/../api/", "/api/openapi.yaml", "/API/"):
        assert system.get(bad).status == 404


# ---- the page in headless Chromium ---------------------------------------------------------------


def _chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium is not installed: run deploy/install-deps.sh")


def _run_chromium(system, tmp_path, *args):
    argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-default-apps",
            "--user-data-dir=%s" % (tmp_path / "profile"), "--virtual-time-budget=5000"] + list(args) + [system.url("/api/")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_page_renders_every_resource_in_chromium(system, tmp_path):
    r = _run_chromium(system, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    m = re.search(r'<main id="content" data-rendered="(\d+)"', dom)
    assert m, dom[:3000]
    assert int(m.group(1)) == len(DOC["paths"])
    assert "Loading the description" not in dom and "could not be loaded" not in dom
    for path in DOC["paths"]:
        assert urllib.parse.unquote(path) in dom, path  # every path, both modes
    for tag in DOC["tags"]:
        assert ">%s</h2>" % tag["name"] in dom, tag["name"]
    for resource in ("manage/entity", "network/mail", "system_management/context", "pbx_settings/lines", "pbx_settings/users",
                     "pbx_settings/groups", "call_management/pickup", "pbx_settings/devices", "system_management/extensions",
                     "settings/queues", "check"):
        assert resource in dom, resource
    for name in DOC["components"]["schemas"]:
        assert 'id="schema-%s"' % name in dom, name
    for act in ("deleteall", "search", "view", "add", "edit"):
        assert "<code>%s</code>" % act in dom


def test_page_screenshot_in_chromium(system, tmp_path):
    png = tmp_path / "api-page.png"
    r = _run_chromium(system, tmp_path, "--screenshot=%s" % png, "--window-size=1280,2000", "--hide-scrollbars")
    assert r.returncode == 0, r.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
