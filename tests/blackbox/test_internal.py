"""The internal ZeroMQ endpoint through xws-call: what it adds is visible over HTTPS and the other
way round; exit codes 0 (2xx/304), 1 (other status), 3 (no reply)."""

import json

import pytest

from conftest import ADMIN, BIN_DIR, ENTITY, entity_body


@pytest.fixture(scope="module", autouse=True)
def need_xws_call():
    if not (BIN_DIR / "xws-call").is_file():
        pytest.fail("binary xws-call missing in %s" % BIN_DIR)


def status_line(r):
    lines = [l for l in r.stderr.decode("utf-8", "replace").splitlines() if l.startswith("status ")]
    assert lines, r.stderr
    return int(lines[-1].split()[1])


def test_add_and_list_over_internal_endpoint(system):
    r = system.call("config", "entity", "add", json.dumps(entity_body("internal1", displayname="Internal One")))
    assert r.returncode == 0, r
    assert status_line(r) == 200
    r = system.call("config", "entity", "list")
    assert r.returncode == 0, r
    assert status_line(r) == 200
    ents = json.loads(r.stdout)
    assert [e["name"] for e in ents] == ["internal1"]
    # visible over HTTPS, same bytes
    h = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert h.status == 200
    assert json.loads(h.body) == ents


def test_https_write_visible_internally(system):
    assert system.post(ENTITY, {"act": "add"}, body=entity_body("fromhttps"), auth=ADMIN).status == 200
    r = system.call("-p", "search=FROMHTTPS", "config", "entity", "search")
    assert r.returncode == 0, r
    assert [e["name"] for e in json.loads(r.stdout)] == ["fromhttps"]


def test_view_with_params_and_stdin_body(system):
    body = json.dumps(entity_body("viastdin", city="Rennes")).encode()
    r = system.call("config", "entity", "add", "-", input=body)
    assert r.returncode == 0, r
    lst = json.loads(system.call("config", "entity", "list").stdout)
    eid = [e["id"] for e in lst if e["name"] == "viastdin"][0]
    r = system.call("-p", "id=%d" % eid, "config", "entity", "view")
    assert r.returncode == 0, r
    v = json.loads(r.stdout)
    assert v["id"] == eid and v["city"] == "Rennes"


def test_error_statuses_exit_1(system):
    r = system.call("-p", "id=999999", "config", "entity", "view")
    assert r.returncode == 1, r
    assert status_line(r) == 404
    r = system.call("config", "entity", "add", json.dumps({"displayname": "No Name"}))
    assert r.returncode == 1, r
    assert status_line(r) == 400
    err = json.loads(r.stdout)
    assert err["error"] == "missing_field" and err["field"] == "name"


def test_account_acts_refused_internally(system):
    r = system.call("config", "account", "snapshot")
    assert r.returncode == 1, r
    assert status_line(r) == 403
    r = system.call("config", "account", "verify", json.dumps({"login": ADMIN[0], "password": ADMIN[1]}))
    assert r.returncode == 1, r
    assert status_line(r) == 403
    # the password checks' own service: not for internal consumers either (a password oracle)
    r = system.call("verify", "account", "verify", json.dumps({"login": ADMIN[0], "password": ADMIN[1]}))
    assert r.returncode == 1, r
    assert status_line(r) == 403


def test_unknown_service_answered(system):
    # no worker serves it: 503 (PROTOCOL.md §5) or 404, at once
    r = system.call("-t", "3000", "no-such-service", "entity", "list")
    assert r.returncode == 1, r
    assert status_line(r) in (404, 503)


def test_no_reply_exit_3(system):
    r = system.cli("-e", "ipc://%s/nobody-listens.ipc" % system.dir, "-t", "500", "config", "entity", "list",
                   binary="xws-call")
    assert r.returncode == 3, r


def test_invalid_json_argument(system):
    before = system.call("config", "entity", "list").stdout
    r = system.call("config", "entity", "add", "{not json")
    assert r.returncode != 0, r
    assert system.call("config", "entity", "list").stdout == before


def test_internal_requests_are_in_the_access_log(system):
    """A consumer's request gets an access-log line like an HTTPS request's: client "internal",
    method ZMQ, path /<service>/<resource>, its act and status."""
    from conftest import wait_until

    r = system.call("-p", "id=987654", "config", "entity", "view")
    assert status_line(r) == 404
    r = system.call("nosuchservice", "things", "list")
    assert status_line(r) == 404
    wait_until(lambda: " internal ZMQ /config/entity act=view 404 " in system.gateway.text()
               and " internal ZMQ /nosuchservice/things act=list 404 " in system.gateway.text(),
               timeout=10, what="the access-log lines of the internal requests")
