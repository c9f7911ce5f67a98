"""pbx_settings/devices (contract §5.2, §6): every act over HTTPS with two devices workers: the flat
element with its JSON types, add answering the new object, the three MAC forms normalised to one,
exact-match search by ip and by mac (a prefix or a partial address finds nothing), view by id and by
32-hex deviceid with the attached lines, partial edits, deletes, every validation rule with a failing
case that changes nothing, lines attached through the lines service (a known device, a free slot)
and the cleanup both ways, ETags, the JSON bad-input corpus, concurrent adds of one MAC and of one
deviceid, and the example provisioning client on the internal ZeroMQ endpoint."""

import json
import re
import threading

import pytest

from conftest import ADMIN, ENTITY, JSON_SUITE, System, md5_hex, redis_cli

DEVICES = "/service/ipbx/json.php/restricted/pbx_settings/devices/"
DEVICES_PRIVATE = "/service/ipbx/json.php/private/pbx_settings/devices/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
PREFIX = "xws:"  # the default redis_prefix
N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []

ELEMENT_KEYS = ["id", "deviceid", "config", "plugin", "ip", "mac", "sn", "vendor", "model", "version", "proto",
                "internal", "configured", "commented", "description", "provdexist", "capabilities"]
TEXT_KEYS = {"deviceid", "config", "plugin", "ip", "mac", "sn", "vendor", "model", "version", "proto", "internal",
             "description"}
BOOL_KEYS = {"configured", "commented", "provdexist"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


# ---- the system: one config worker (entity, context), two devices workers, one ipbx-lines worker ---------


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        s.start_services({"xws-devices": 2, "xws-ipbx-lines": 1}, ready=(DEVICES, LINES))
        assert s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        r = s.post(CONTEXT, {"act": "add"}, body={"context": {"name": "default", "entity": "default"}}, auth=ADMIN)
        assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def call(system, act, body=None, path=DEVICES, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(path, q, auth=ADMIN)
    return system.post(path, q, body=body, auth=ADMIN)


def add_ok(system, **fields):
    r = call(system, "add", fields)
    assert r.status == 200, r
    return r.json()


def devices(system):
    r = call(system, "list")
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return r.json()


def view(system, x):
    r = call(system, "view", id=x)
    assert r.status == 200, r
    return r.json()


def search(system, v):
    r = call(system, "search", search=v)
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return [d["id"] for d in r.json()]


def assert_error(r, status, code, field):
    assert r.status == status, r
    err = r.json()
    assert set(err) == {"error", "field", "message"}, err
    assert (err["error"], err["field"]) == (code, field), err
    assert type(err["message"]) is str and err["message"]


def line_call(system, act, body=None, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(LINES, q, auth=ADMIN)
    return system.post(LINES, q, body=body, auth=ADMIN)


def add_line(system, number, device="", num=None):
    lf = {"number": number, "device": str(device)}
    if num is not None:
        lf["num"] = num
    return line_call(system, "add", {"protocol": {"protocol": "sip", "context": "default"}, "linefeatures": lf})


def lines(system):
    r = line_call(system, "list")
    if r.status == 204:
        return []
    assert r.status == 200, r
    return r.json()


def clear(system):
    r = line_call(system, "deleteall")
    assert r.status in (200, 204), r
    for d in devices(system):
        assert call(system, "delete", id=d["id"]).status == 200
    assert devices(system) == []
    for key in ("device:mac", "device:ip", "device:deviceid", "line:bydevice", "line:device"):
        assert redis_cli(system, "HLEN", PREFIX + key).strip() == "0", key


def snapshot(system):
    """Everything the resource shows, and the indexes it keeps."""
    lst = call(system, "list")
    out = [lst.status, lst.body]
    for d in (lst.json() if lst.status == 200 else []):
        out.append(call(system, "view", id=d["id"]).body)
    for key in ("device:mac", "device:ip", "device:deviceid", "line:bydevice", "line:device"):
        out.append(sorted(redis_cli(system, "HGETALL", PREFIX + key).split()))
    out.append(redis_cli(system, "GET", PREFIX + "device:seq"))
    return out


def check_element(d):
    assert list(d) == ELEMENT_KEYS, list(d)
    assert type(d["id"]) is int and d["id"] > 0
    for k in TEXT_KEYS:
        assert type(d[k]) is str, (k, d)
    for k in BOOL_KEYS:
        assert type(d[k]) is bool, (k, d)
    assert d["internal"] in ("0", "1")
    assert d["capabilities"] is False or type(d["capabilities"]) is dict
    assert HEX32.match(d["deviceid"]), d
    assert re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", d["mac"]), d


# ---- list, add, element shape -------------------------------------------------------------------------


def test_list_empty_is_204_and_add_answers_the_object(system):
    clear(system)
    assert call(system, "list").status == 204
    d = add_ok(system, mac="00:08:5D:2A:4F:B1", ip="10.0.0.5", vendor="Aastra", model="6731i", version="3.2.2",
               plugin="xivo-aastra-3.2.2", config="abc", sn="SN1", proto="SIP", description="desk\nphone")
    check_element(d)
    assert d["mac"] == "00:08:5d:2a:4f:b1" and d["ip"] == "10.0.0.5" and d["vendor"] == "Aastra"
    assert (d["internal"], d["configured"], d["commented"], d["provdexist"], d["capabilities"]) == \
        ("0", False, False, True, False)
    assert d["description"] == "desk\nphone"
    [e] = devices(system)
    assert e == d
    view_d = view(system, d["id"])
    assert view_d == dict(d, lines=False)
    # an unknown act falls back to list; the private path serves the same
    assert call(system, "nosuchact").json() == [d]
    assert call(system, "list", path=DEVICES_PRIVATE).json() == [d]


def test_add_fields_and_types(system):
    clear(system)
    d = add_ok(system, mac="00085d2a4fb2", internal=1, configured="yes", commented="true", provdexist="0",
               capabilities={"sip.lines": "3", "function_keys": 10, "unknown": "x"},
               deviceid="0123456789ABCDEF0123456789ABCDEF", ip="FE80::1")
    check_element(d)
    assert (d["internal"], d["configured"], d["commented"], d["provdexist"]) == ("1", True, True, False)
    # every declared capability is shown once one is given (0: not known), in the declared order
    assert list(d["capabilities"].items()) == [("sip.lines", 3), ("sccp.lines", 0), ("function_keys", 10),
                                               ("expansion_modules", 0)]
    assert d["deviceid"] == "0123456789abcdef0123456789abcdef"
    assert d["ip"] == "fe80::1"
    # null counts as absent; a number is accepted as text
    d2 = add_ok(system, mac="00-08-5d-2a-4f-b3", ip=None, sn=12345, capabilities=False)
    assert d2["ip"] == "" and d2["sn"] == "12345" and d2["capabilities"] is False
    assert d2["id"] == d["id"] + 1 and d2["deviceid"] != d["deviceid"]
    assert [e["id"] for e in devices(system)] == [d["id"], d2["id"]]
    for e in devices(system):
        check_element(e)


def test_ids_are_never_reused(system):
    clear(system)
    a = add_ok(system, mac="02:00:00:00:00:01")
    assert call(system, "delete", id=a["id"]).status == 200
    b = add_ok(system, mac="02:00:00:00:00:01")
    assert b["id"] == a["id"] + 1


# ---- the three MAC forms, uniqueness --------------------------------------------------------------------


@pytest.mark.parametrize("form", ["00:08:5D:2A:4F:B1", "00-08-5d-2a-4f-b1", "00085d2a4fb1", " 00085D2A4FB1 "])
def test_mac_forms_are_one_mac(system, form):
    clear(system)
    d = add_ok(system, mac=form)
    assert d["mac"] == "00:08:5d:2a:4f:b1"
    before = snapshot(system)
    for other in ("00:08:5d:2a:4f:b1", "00-08-5D-2A-4F-B1", "00085D2A4FB1"):
        assert_error(call(system, "add", {"mac": other}), 400, "already_exists", "mac")
    assert snapshot(system) == before


# ---- search -------------------------------------------------------------------------------------------


def test_search_exact_ip_and_mac(system):
    clear(system)
    a = add_ok(system, mac="00:08:5d:2a:4f:b1", ip="10.0.0.5")
    b = add_ok(system, mac="00:08:5d:2a:4f:b2", ip="10.0.0.5")
    c = add_ok(system, mac="00:08:5d:2a:4f:b3", ip="10.0.0.50")
    v6 = add_ok(system, mac="00:08:5d:2a:4f:b4", ip="2001:db8::1")
    assert search(system, "10.0.0.5") == [a["id"], b["id"]]
    assert search(system, "10.0.0.50") == [c["id"]]
    assert search(system, "2001:DB8::1") == [v6["id"]]
    for form in ("00:08:5D:2A:4F:B3", "00-08-5d-2a-4f-b3", "00085d2a4fb3", "00085D2A4FB3"):
        assert search(system, form) == [c["id"]]
    r = call(system, "search", search="00085d2a4fb3")
    check_element(r.json()[0])
    assert r.json() == [c]
    # exact only: a partial address, a MAC prefix, a vendor, nothing at all
    for v in ("10.0.0", "10.0.0.", "0.0.5", "00:08:5d", "00085d2a4f", "00:08:5d:2a:4f:b", "4f:b3", "2001:db8"):
        assert search(system, v) == [], v
    assert call(system, "search", search="").status == 204
    assert call(system, "search").status == 204
    # an edit moves the ip entry
    assert call(system, "edit", {"ip": "10.0.0.6"}, id=b["id"]).status == 200
    assert search(system, "10.0.0.5") == [a["id"]]
    assert search(system, "10.0.0.6") == [b["id"]]


# ---- view -------------------------------------------------------------------------------------------


def test_view_by_id_and_deviceid(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:4f:c1")
    by_id = view(system, d["id"])
    assert list(by_id) == ELEMENT_KEYS + ["lines"]
    assert by_id == dict(d, lines=False)
    assert view(system, d["deviceid"]) == by_id
    assert view(system, d["deviceid"].upper()) == by_id
    for bad in ("999", "0", "-1", "abc", "0123456789abcdef0123456789abcdef", d["deviceid"][:31], d["deviceid"] + "0", ""):
        r = call(system, "view", id=bad)
        assert r.status == 404, (bad, r)
    assert call(system, "view").status == 404


def test_etags(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:4f:d1", ip="10.1.0.1")
    for q in ({"act": "list"}, {"act": "view", "id": d["id"]}, {"act": "search", "search": "10.1.0.1"}):
        r = system.get(DEVICES, q, auth=ADMIN)
        assert r.status == 200, r
        tag = r.header("ETag")
        assert tag
        assert system.get(DEVICES, q, auth=ADMIN, headers={"If-None-Match": tag}).status == 304
        assert system.get(DEVICES, dict(q, sum=md5_hex(r.body)), auth=ADMIN).status == 304
    tags = [system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN).header("ETag"),
            system.get(DEVICES, {"act": "list"}, auth=ADMIN).header("ETag")]
    assert call(system, "edit", {"model": "x"}, id=d["id"]).status == 200
    assert system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN).header("ETag") != tags[0]
    assert system.get(DEVICES, {"act": "list"}, auth=ADMIN).header("ETag") != tags[1]
    # a line attached changes the view
    tag = system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN).header("ETag")
    assert add_line(system, "1001", d["id"], 1).status == 200
    r = system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN, headers={"If-None-Match": tag})
    assert r.status == 200 and r.json()["lines"] != False  # noqa: E712


# ---- edit -------------------------------------------------------------------------------------------


def test_edit_partial_by_id_and_deviceid(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:4f:e1", ip="10.2.0.1", vendor="Snom", capabilities={"sip.lines": 4})
    r = call(system, "edit", {"model": "320", "configured": True}, id=d["id"])
    assert r.status == 200 and r.body == b""
    assert view(system, d["id"]) == dict(d, model="320", configured=True, lines=False)
    r = call(system, "edit", {"mac": "00-08-5D-2A-4F-E2", "ip": ""}, id=d["deviceid"].upper())
    assert r.status == 200, r
    now = view(system, d["id"])
    assert (now["mac"], now["ip"], now["vendor"], now["model"]) == ("00:08:5d:2a:4f:e2", "", "Snom", "320")
    assert now["capabilities"] == {"sip.lines": 4, "sccp.lines": 0, "function_keys": 0, "expansion_modules": 0}
    # the old mac is free again, the new one found
    assert search(system, "00:08:5d:2a:4f:e1") == [] and search(system, "00085d2a4fe2") == [d["id"]]
    assert search(system, "10.2.0.1") == []
    other = add_ok(system, mac="00:08:5d:2a:4f:e1")
    # a view sent back as an edit changes nothing
    cur = view(system, d["id"])
    body = {k: v for k, v in cur.items() if k not in ("id", "lines")}
    before = snapshot(system)
    assert call(system, "edit", body, id=d["id"]).status == 200
    assert snapshot(system)[:3] == before[:3]
    # deviceid: changed, then unique
    new_id = "fedcba9876543210fedcba9876543210"
    assert call(system, "edit", {"deviceid": new_id}, id=d["id"]).status == 200
    assert view(system, new_id)["id"] == d["id"]
    assert call(system, "view", id=d["deviceid"]).status == 404
    before = snapshot(system)
    assert_error(call(system, "edit", {"deviceid": new_id.upper()}, id=other["id"]), 400, "already_exists", "deviceid")
    assert_error(call(system, "add", {"mac": "00:08:5d:2a:4f:e9", "deviceid": new_id}), 400, "already_exists",
                 "deviceid")
    assert_error(call(system, "edit", {"mac": "00085d2a4fe2"}, id=other["id"]), 400, "already_exists", "mac")
    assert snapshot(system) == before
    # unknown ids
    for bad in ("999", "abc", "0123456789abcdef0123456789abcdef"):
        assert_error(call(system, "edit", {"model": "y"}, id=bad), 404, "not_found", "id")
    assert snapshot(system) == before


# ---- validation: every rule fails cleanly and changes nothing ---------------------------------------------

LONG = "x" * 129
INVALID = [
    ({}, "missing_field", "mac"),
    ({"mac": None}, "missing_field", "mac"),
    ({"mac": ""}, "invalid_value", "mac"),
    ({"mac": "00:08:5d:2a:4f"}, "invalid_value", "mac"),
    ({"mac": "00:08:5d:2a:4f:g1"}, "invalid_value", "mac"),
    ({"mac": "00085d2a4fb1ff"}, "invalid_value", "mac"),
    ({"mac": "00:08:5d:2a:4f:b1:00"}, "too_long", "mac"),
    ({"mac": ["00085d2a4fb1"]}, "invalid_value", "mac"),
    ({"mac": "00085d2a4f99", "ip": "10.0.0.256"}, "invalid_value", "ip"),
    ({"mac": "00085d2a4f99", "ip": "10.0.0"}, "invalid_value", "ip"),
    ({"mac": "00085d2a4f99", "ip": "2001:db8:::1"}, "invalid_value", "ip"),
    ({"mac": "00085d2a4f99", "ip": "phone.example.com"}, "invalid_value", "ip"),
    ({"mac": "00085d2a4f99", "deviceid": "abc"}, "too_short", "deviceid"),
    ({"mac": "00085d2a4f99", "deviceid": "g" * 32}, "invalid_value", "deviceid"),
    ({"mac": "00085d2a4f99", "deviceid": "a" * 33}, "too_long", "deviceid"),
    ({"mac": "00085d2a4f99", "config": LONG}, "too_long", "config"),
    ({"mac": "00085d2a4f99", "plugin": LONG}, "too_long", "plugin"),
    ({"mac": "00085d2a4f99", "sn": LONG}, "too_long", "sn"),
    ({"mac": "00085d2a4f99", "vendor": LONG}, "too_long", "vendor"),
    ({"mac": "00085d2a4f99", "model": LONG}, "too_long", "model"),
    ({"mac": "00085d2a4f99", "version": "v" * 65}, "too_long", "version"),
    ({"mac": "00085d2a4f99", "proto": "P" * 17}, "too_long", "proto"),
    ({"mac": "00085d2a4f99", "proto": "SIP 2"}, "invalid_value", "proto"),
    ({"mac": "00085d2a4f99", "description": "d" * 1001}, "too_long", "description"),
    ({"mac": "00085d2a4f99", "vendor": "a\u0007b"}, "invalid_value", "vendor"),
    ({"mac": "00085d2a4f99", "model": "a\nb"}, "invalid_value", "model"),
    ({"mac": "00085d2a4f99", "internal": "maybe"}, "invalid_value", "internal"),
    ({"mac": "00085d2a4f99", "configured": 2}, "invalid_value", "configured"),
    ({"mac": "00085d2a4f99", "commented": {}}, "invalid_value", "commented"),
    ({"mac": "00085d2a4f99", "provdexist": "perhaps"}, "invalid_value", "provdexist"),
    ({"mac": "00085d2a4f99", "capabilities": "all"}, "invalid_value", "capabilities"),
    ({"mac": "00085d2a4f99", "capabilities": {"sip.lines": 13}}, "out_of_range", "capabilities.sip.lines"),
    ({"mac": "00085d2a4f99", "capabilities": {"function_keys": "many"}}, "invalid_value",
     "capabilities.function_keys"),
]


def test_every_rule_refused_on_add_and_edit_changing_nothing(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:4f:f1", ip="10.3.0.1")
    before = snapshot(system)
    for body, code, field in INVALID:
        assert_error(call(system, "add", body), 400, code, field)
        edit_body = dict(body)
        if "mac" in edit_body and field != "mac":
            del edit_body["mac"]  # the edit keeps the stored mac
        if field == "mac" and edit_body.get("mac", 1) is None:
            continue  # null is absent: an edit keeps the stored mac
        if not edit_body:
            continue
        assert_error(call(system, "edit", edit_body, id=d["id"]), 400, code, field)
    for raw in (b"", b"[]", b"\"x\"", b"42", b"{", b"{\"mac\": \"\xff\"}"):
        for q in ({"act": "add"}, {"act": "edit", "id": d["id"]}):
            r = system.post(DEVICES, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (raw, q, r)
            assert r.json()["field"] == ""
    assert snapshot(system) == before


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
def test_json_corpus_n_files_refused(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:4f:f2")
    before = snapshot(system)
    for path in N_FILES:
        raw = path.read_bytes()
        for q in ({"act": "add"}, {"act": "edit", "id": d["id"]}):
            r = system.post(DEVICES, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path.name, q, r)
            assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    assert snapshot(system) == before


# ---- delete -------------------------------------------------------------------------------------------


def test_delete_by_id_and_deviceid(system):
    clear(system)
    a = add_ok(system, mac="00:08:5d:2a:40:01", ip="10.4.0.1")
    b = add_ok(system, mac="00:08:5d:2a:40:02", ip="10.4.0.1")
    assert call(system, "delete", id=a["id"]).status == 200
    assert call(system, "view", id=a["id"]).status == 404
    assert_error(call(system, "delete", id=a["id"]), 404, "not_found", "id")
    assert search(system, "10.4.0.1") == [b["id"]] and search(system, "00:08:5d:2a:40:01") == []
    r = call(system, "delete", id=b["deviceid"].upper())
    assert r.status == 200 and r.body == b""
    assert call(system, "list").status == 204
    for bad in ("999", "x", "", "0123456789abcdef0123456789abcdef"):
        assert call(system, "delete", id=bad).status == 404
    for key in ("device:mac", "device:ip", "device:deviceid"):
        assert redis_cli(system, "HLEN", PREFIX + key).strip() == "0", key
    # the mac and the deviceid can be used again
    c = add_ok(system, mac="00:08:5d:2a:40:01", deviceid=b["deviceid"])
    assert view(system, b["deviceid"])["id"] == c["id"]


# ---- lines on devices ---------------------------------------------------------------------------------


def test_lines_attached_to_a_device(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:50:01")
    e = add_ok(system, mac="00:08:5d:2a:50:02")
    assert add_line(system, "1101", d["id"], 2).status == 200
    assert add_line(system, "1102", d["id"], 1).status == 200
    ls = {l["number"]: l for l in lines(system)}
    l1, l2 = ls["1101"], ls["1102"]
    assert l1["device"] == str(d["id"]) and l1["num"] == 2
    v = view(system, d["deviceid"])
    assert v["lines"] == [
        {"id": l2["id"], "num": 1, "number": "1102", "context": "default", "protocol": "sip"},
        {"id": l1["id"], "num": 2, "number": "1101", "context": "default", "protocol": "sip"},
    ]
    assert view(system, e["id"])["lines"] is False
    # the list element shows no lines
    assert all("lines" not in x for x in devices(system))
    # a slot is taken once per device; an unknown device is refused; both change nothing
    before = snapshot(system) + [lines(system)]
    assert_error(add_line(system, "1103", d["id"], 1), 400, "already_exists", "linefeatures.num")
    assert_error(line_call(system, "edit", {"linefeatures": {"num": 2}}, id=l2["id"]), 400, "already_exists",
                 "linefeatures.num")
    assert_error(add_line(system, "1104", 999, 1), 400, "unknown_reference", "linefeatures.device")
    assert_error(add_line(system, "1105", d["id"], 13), 400, "out_of_range", "linefeatures.num")
    assert snapshot(system) + [lines(system)] == before
    # the same slot on another device is free; an unchanged slot is not checked again
    assert add_line(system, "1106", e["id"], 1).status == 200
    assert line_call(system, "edit", {"linefeatures": {"number": "1107"}}, id=l2["id"]).status == 200
    assert [x["number"] for x in view(system, d["id"])["lines"]] == ["1107", "1101"]
    # moving a line to another device and slot
    assert line_call(system, "edit", {"linefeatures": {"device": str(e["id"]), "num": 3}}, id=l1["id"]).status == 200
    assert [(x["id"], x["num"]) for x in view(system, d["id"])["lines"]] == [(l2["id"], 1)]
    assert [x["num"] for x in view(system, e["id"])["lines"]] == [1, 3]


def test_deleting_a_line_detaches_it(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:60:01")
    assert add_line(system, "1201", d["id"], 1).status == 200
    [l] = lines(system)
    tag = system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN).header("ETag")
    assert line_call(system, "delete", id=l["id"]).status == 200
    r = system.get(DEVICES, {"act": "view", "id": d["id"]}, auth=ADMIN, headers={"If-None-Match": tag})
    assert r.status == 200 and r.json()["lines"] is False
    assert redis_cli(system, "HLEN", PREFIX + "line:bydevice").strip() == "0"
    # the slot is free again
    assert add_line(system, "1202", d["id"], 1).status == 200


def test_deleting_a_device_detaches_its_lines(system):
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:70:01")
    keep = add_ok(system, mac="00:08:5d:2a:70:02")
    for n, (dev, num) in enumerate([(d, 1), (d, 2), (keep, 1)]):
        assert add_line(system, "13%02d" % n, dev["id"], num).status == 200
    tag = system.get(LINES, {"act": "list"}, auth=ADMIN).header("ETag")
    assert call(system, "delete", id=d["deviceid"]).status == 200
    # the lines stay, without a device; the list of lines changed (its ETag too)
    assert system.get(LINES, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": tag}).status == 200
    by_number = {l["number"]: l for l in lines(system)}
    assert by_number["1300"]["device"] == "" and by_number["1301"]["device"] == ""
    assert by_number["1302"]["device"] == str(keep["id"])
    assert line_call(system, "view", id=by_number["1300"]["id"]).json()["linefeatures"]["device"] == ""
    assert redis_cli(system, "HKEYS", PREFIX + "line:bydevice").split() == [str(keep["id"])]
    assert redis_cli(system, "HLEN", PREFIX + "line:device").strip() == "1"
    assert [x["number"] for x in view(system, keep["id"])["lines"]] == ["1302"]
    # the deleted device cannot take lines any more; an edit of a detached line works
    assert_error(add_line(system, "1310", d["id"], 1), 400, "unknown_reference", "linefeatures.device")
    assert line_call(system, "edit", {"linefeatures": {"description": "x"}}, id=by_number["1300"]["id"]).status == 200


def test_concurrent_device_delete_and_line_adds(system):
    """Whatever the interleaving, no line keeps a device that does not exist."""
    clear(system)
    d = add_ok(system, mac="00:08:5d:2a:80:01")
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(9)

    def adder(i):
        barrier.wait()
        r = add_line(system, "14%02d" % i, d["id"], i + 1)
        with lock:
            results.append(r.status)

    def deleter():
        barrier.wait()
        r = call(system, "delete", id=d["id"])
        with lock:
            results.append(("delete", r.status))

    threads = [threading.Thread(target=adder, args=(i,)) for i in range(8)] + [threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ("delete", 200) in results
    assert all(s in (200, 400) for s in results if not isinstance(s, tuple))
    assert all(l["device"] == "" for l in lines(system))
    assert redis_cli(system, "HLEN", PREFIX + "line:device").strip() == "0"
    assert redis_cli(system, "HLEN", PREFIX + "line:bydevice").strip() == "0"


# ---- races between two devices workers ------------------------------------------------------------------


def devices_workers(system):
    return [p for p in system.workers if "xws-devices" in p.name]


def adds_served(system):
    """The number of devices/add requests each devices worker has answered (from its -v log)."""
    return [p.text().count(" devices/add ") for p in devices_workers(system)]


def race(system, bodies):
    served = adds_served(system)
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(bodies))

    def one(body):
        barrier.wait()
        r = call(system, "add", body)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    now = adds_served(system)
    assert len(now) == 2 and all(n > s for n, s in zip(now, served)), (served, now)
    return results


def test_concurrent_adds_of_one_mac(system):
    clear(system)
    forms = ["00:08:5D:2A:4F:A1", "00-08-5d-2a-4f-a1", "00085d2a4fa1", "00085D2A4FA1"]
    results = race(system, [{"mac": forms[i % 4], "ip": "10.9.0.%d" % i} for i in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "already_exists", "mac")
    [d] = devices(system)
    assert d["mac"] == "00:08:5d:2a:4f:a1"
    assert [r.json() for r in results if r.status == 200] == [d]
    assert redis_cli(system, "HGETALL", PREFIX + "device:mac").split() == ["00:08:5d:2a:4f:a1", str(d["id"])]
    assert redis_cli(system, "HGETALL", PREFIX + "device:ip").split() == [d["ip"], str(d["id"])]
    assert [p.alive() for p in devices_workers(system)] == [True, True]


def test_concurrent_adds_of_one_deviceid(system):
    clear(system)
    did = "00112233445566778899aabbccddeeff"
    results = race(system, [{"mac": "02:00:00:00:01:%02x" % i, "deviceid": did} for i in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "already_exists", "deviceid")
    [d] = devices(system)
    assert d["deviceid"] == did
    assert redis_cli(system, "HLEN", PREFIX + "device:mac").strip() == "1"


# ---- an internal consumer: the example provisioning client over the internal ZeroMQ endpoint -------------


def provision(system, *args):
    return system.cli("-e", system.internal_endpoint, *args, binary="xws-devices-provision")


def test_internal_provisioning_client(system):
    clear(system)
    # a new phone: added, then every device listed on standard output
    r = provision(system, "00-08-5D-2A-4F-B1", "ip=10.5.0.1", "vendor=Aastra", "model=6731i")
    assert r.returncode == 0, r
    assert r.stderr.decode().startswith("added {")
    [d] = json.loads(r.stdout)
    check_element(d)
    assert (d["mac"], d["ip"], d["vendor"], d["model"], d["configured"]) == \
        ("00:08:5d:2a:4f:b1", "10.5.0.1", "Aastra", "6731i", False)
    # seen over HTTPS
    assert devices(system) == [d]
    # the same phone again, in another MAC form: updated, not added
    r = provision(system, "00085d2a4fb1", "ip=10.5.0.2", "configured=1", "version=3.3.1")
    assert r.returncode == 0, r
    assert r.stderr.decode().strip() == "updated %d" % d["id"]
    [now] = json.loads(r.stdout)
    assert now == dict(d, ip="10.5.0.2", configured=True, version="3.3.1")
    assert view(system, d["deviceid"]) == dict(now, lines=False)
    # a second phone
    r = provision(system, "00:08:5d:2a:4f:b2")
    assert r.returncode == 0, r
    assert [x["mac"] for x in json.loads(r.stdout)] == ["00:08:5d:2a:4f:b1", "00:08:5d:2a:4f:b2"]
    # a refusal is reported and changes nothing
    before = snapshot(system)
    r = provision(system, "00:08:5d:2a:4f:b3", "ip=10.5.0.300")
    assert r.returncode == 1, r
    assert "add: status 400" in r.stderr.decode() and '"field":"ip"' in r.stderr.decode()
    r = provision(system, "not-a-mac")
    assert r.returncode == 1 and "status 400" in r.stderr.decode(), r
    assert snapshot(system) == before
    # usage
    assert provision(system).returncode == 2
    assert provision(system, "00:08:5d:2a:4f:b4", "novalue").returncode == 2
