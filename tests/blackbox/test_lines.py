"""pbx_settings/lines (contract §5.1, §6): every act and filter combination on a data set mixing the
four protocols with free and owned lines, element shapes and JSON types, every validation rule
with a failing case that changes nothing, 404s, numbers reserved in their context (taken, out of
range, moved, released), the context reference, user and device attachments through their shared
keys, ETags, the JSON bad-input corpus, and concurrent adds through two ipbx-lines workers."""

import itertools
import threading

import pytest

from conftest import ADMIN, ENTITY, JSON_SUITE, System, md5_hex, redis_cli, wait_until

LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
LINES_PRIVATE = "/service/ipbx/json.php/private/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
PREFIX = "xws:"  # the default redis_prefix
N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []

FEATURE_KEYS = ["id", "protocol", "protocolid", "name", "number", "context", "iduserfeatures", "useridentity", "device",
                "num", "rules_type", "rules_time", "rules_order", "rules_group", "config", "configregistrar",
                "provisioningid", "internal", "commented", "description", "identity", "initialized"]
INT_KEYS = {"id", "protocolid", "iduserfeatures", "num", "rules_order", "provisioningid"}
BOOL_KEYS = {"internal", "commented", "initialized"}

# the document's sip example, as written (the "protocol" block)
DOC_SIP = {
    "name": "reh58f", "secret": "FV4S9W", "protocol": "sip", "context": "default", "language": "fr_FR", "nat": "",
    "subscribemwi": "1", "buggymwi": "0", "progressinband": "", "dtmfmode": "", "rfc2833compensate": "", "qualify": "",
    "rtptimeout": "", "rtpholdtimeout": "", "rtpkeepalive": "", "allowtransfer": "", "autoframing": "",
    "videosupport": "", "maxcallbitrate": "", "g726nonstandard": "", "disallow": "all", "allow": ["alaw", "ulaw"],
    "t38pt_udptl": "", "t38pt_rtp": "", "t38pt_tcp": "", "t38pt_usertpsource": "", "callerid": "\"John Doe\" <666>",
    "insecure": "", "host-type": "dynamic", "permit": "", "deny": "", "trustrpid": "", "sendrpid": "",
    "allowsubscribe": "", "allowoverlap": "", "promiscredir": "", "usereqphone": "", "canreinvite": "", "fromuser": "",
    "fromdomain": "", "amaflags": "default", "accountcode": "", "useclientcode": "",
}


# ---- the system: one config worker (entities, contexts) and two ipbx-lines workers ----------------------


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        s.start_worker("xws-ipbx-lines", ["-v"])  # -v: one log line per request
        s.start_worker("xws-ipbx-lines", ["-v"])
        wait_until(lambda: s.get(LINES, {"act": "list"}, auth=ADMIN).status == 204, timeout=20,
                   what="the ipbx-lines workers")
        assert s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        for body in (
            {"context": {"name": "default", "entity": "default"},
             "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"},
                                         {"numberbeg": "4000", "numberend": "4999"}],
                                "group": [{"numberbeg": "500", "numberend": "599"}]}},
            {"context": {"name": "other", "entity": "default"}},
            {"context": {"name": "spare", "entity": "default"}},
        ):
            r = s.post(CONTEXT, {"act": "add"}, body=body, auth=ADMIN)
            assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    # the identities of the users attach_user simulated (no users service here) go before the
    # consistency check of s.stop()
    if redis_cli(s, "HLEN", PREFIX + "user:data").strip() == "0":
        redis_cli(s, "DEL", PREFIX + "user:identity")
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def call(system, act, body=None, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(LINES, q, auth=ADMIN)
    return system.post(LINES, q, body=body, auth=ADMIN)


def add(system, protocol, linefeatures=None):
    body = {"protocol": protocol}
    if linefeatures is not None:
        body["linefeatures"] = linefeatures
    return call(system, "add", body)


def add_ok(system, protocol, linefeatures=None):
    r = add(system, protocol, linefeatures)
    assert r.status == 200, r
    assert r.body == b""
    return last_id(system)


def lines(system, **params):
    r = call(system, "list", **params)
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return r.json()


def last_id(system):
    return max(l["id"] for l in lines(system))


def view(system, lid):
    r = call(system, "view", id=lid)
    assert r.status == 200, r
    return r.json()


def numbers(system, context):
    out = redis_cli(system, "HGETALL", PREFIX + "context:numbers:" + context).split()
    return dict(zip(out[0::2], out[1::2]))


def context_refs(system, context):
    v = redis_cli(system, "HGET", PREFIX + "context:refs", context).strip()
    return int(v) if v else 0


def snapshot(system):
    """Everything the resource shows, and the numbers and references it keeps."""
    lst = call(system, "list")
    out = [lst.status, lst.body]
    for l in (lst.json() if lst.status == 200 else []):
        out.append(call(system, "view", id=l["id"]).body)
    for c in ("default", "other", "spare"):
        out.append(sorted(numbers(system, c).items()))
        out.append(context_refs(system, c))
    out.append(redis_cli(system, "HGETALL", PREFIX + "line:name"))
    out.append(redis_cli(system, "GET", PREFIX + "line:seq"))
    return out


def assert_error(r, status, code, field):
    assert r.status == status, r
    err = r.json()
    assert set(err) == {"error", "field", "message"}, err
    assert (err["error"], err["field"]) == (code, field), err
    assert type(err["message"]) is str and err["message"]


def sip(context="default", **kw):
    p = {"protocol": "sip", "context": context}
    p.update(kw)
    return p


def clear(system):
    r = call(system, "deleteall")
    assert r.status in (200, 204), r
    assert lines(system) == []


def attach_user(system, lid, uid, identity):
    """What the users service does when a user takes a line (README: shared keys)."""
    redis_cli(system, "HSET", PREFIX + "line:owner", lid, uid)
    cur = redis_cli(system, "HGET", PREFIX + "line:byuser", uid).strip()
    redis_cli(system, "HSET", PREFIX + "line:byuser", uid, ",".join(filter(None, [cur, str(lid)])))
    redis_cli(system, "HSET", PREFIX + "user:identity", uid, identity)
    redis_cli(system, "INCR", PREFIX + "ver:lines")


def check_element(e):
    assert list(e.keys())[:len(FEATURE_KEYS)] == FEATURE_KEYS, list(e.keys())
    for k, v in e.items():
        if k in INT_KEYS:
            assert type(v) is int, (k, v)
        elif k in BOOL_KEYS:
            assert type(v) is bool, (k, v)
        else:
            assert type(v) is str, (k, v)
    assert (e["iduserfeatures"] == 0) == (e["useridentity"] == "-")


# ---- empty store, shapes -------------------------------------------------------------------------------


def test_empty_store(system):
    clear(system)
    for act in ("list", "", "bogus"):
        r = call(system, act)
        assert (r.status, r.body) == (204, b""), (act, r)
    assert call(system, "search", search="1").status == 204
    assert call(system, "deleteall").status == 204
    assert system.get(LINES_PRIVATE, {"act": "list"}).status == 204


def test_add_sip_and_view_shape(system):
    clear(system)
    lid = add_ok(system, sip(name="Alice", secret="pw1", allow="ulaw, alaw", callerid="Alice Doe <101>",
                             **{"call-limit": "10"}), {"number": "101", "description": "desk\nphone"})
    v = view(system, lid)
    assert list(v.keys()) == ["linefeatures", "protocol"]
    lf, p = v["linefeatures"], v["protocol"]
    assert lf["id"] == lid and lf["protocolid"] == lid
    assert (lf["name"], lf["number"], lf["context"], lf["protocol"]) == ("alice", "101", "default", "sip")
    assert lf["iduserfeatures"] == 0 and lf["useridentity"] == "-" and lf["device"] == ""
    assert lf["identity"] == "SIP/alice" and lf["description"] == "desk\nphone"
    assert p["protocol"] == "sip" and p["name"] == "alice" and p["secret"] == "pw1"
    assert p["allow"] == ["ulaw", "alaw"] and p["callerid"] == '"Alice Doe" <101>'
    assert p["call-limit"] == "10" and p["type"] == "friend" and p["host"] == "dynamic"
    assert p["username"] == "" and p["port"] == ""
    for hidden in ("fullcontact", "ipaddr", "regseconds"):
        assert hidden not in p
    [e] = lines(system)
    check_element(e)
    assert e["allow"] == "ulaw,alaw" and e["secret"] == "pw1" and e["initialized"] is False
    for k in ("type", "username", "host", "port"):
        assert type(e[k]) is str
    assert numbers(system, "default") == {"101": "user:line/%d" % lid}
    assert context_refs(system, "default") == 1


def test_add_generates_name_and_secret(system):
    clear(system)
    lid = add_ok(system, sip())
    p = view(system, lid)["protocol"]
    assert len(p["name"]) == 8 and p["name"].isalnum() and p["name"] == p["name"].lower()
    assert len(p["secret"]) == 8 and p["secret"].isalnum() and p["secret"] == p["secret"].upper()
    lid2 = add_ok(system, {"protocol": "iax", "context": "default"})
    assert view(system, lid2)["protocol"]["name"] != p["name"]


def test_document_sip_example_verbatim(system):
    clear(system)
    r = call(system, "add", {"protocol": DOC_SIP})
    assert r.status == 200, r
    [e] = lines(system)
    check_element(e)
    assert e["name"] == "reh58f" and e["secret"] == "FV4S9W" and e["callerid"] == '"John Doe" <666>'
    assert e["allow"] == "alaw,ulaw" and e["disallow"] == "all" and e["language"] == "fr_FR"
    assert e["number"] == "" and numbers(system, "default") == {}


def test_other_protocols(system):
    clear(system)
    a = add_ok(system, {"protocol": "iax", "context": "other", "name": "trunkless", "qualify": "1500"}, {"number": "7"})
    b = add_ok(system, {"protocol": "sccp", "context": "default", "cid_name": "Bob", "cid_num": "102"},
               {"number": "102"})
    c = add_ok(system, {"protocol": "custom", "context": "other", "interface": "DAHDI/g1/0123"}, {"number": "8"})
    els = {e["id"]: e for e in lines(system)}
    for e in els.values():
        check_element(e)
    assert els[a]["identity"] == "IAX/trunkless" and els[a]["qualify"] == "1500" and els[a]["initialized"] is True
    assert (els[b]["name"], els[b]["identity"], els[b]["cid_name"]) == ("102", "SCCP/102", "Bob")
    assert (els[c]["name"], els[c]["identity"], els[c]["interface"]) == ("DAHDI/g1/0123",) * 2 + ("DAHDI/g1/0123",)
    assert "secret" not in els[b] and "secret" not in els[c]
    assert els[a]["allow"] == "" and view(system, a)["protocol"]["allow"] is False
    assert set(numbers(system, "other")) == {"7", "8"}
    assert view(system, b)["protocol"] == {"protocol": "sccp", "context": "default", "name": "102", "cid_name": "Bob",
                                           "cid_num": "102"}


# ---- list and search filters on a mixed data set ----------------------------------------------------------


def mixed(system):
    """Eight lines: every protocol, two contexts, owned and free ones. Returns {id: (proto, context, owned, name, number)}."""
    clear(system)
    spec = [
        ("sip", "default", True, "s1", "110"),
        ("sip", "other", False, "s2", "210"),
        ("iax", "default", False, "i1", "111"),
        ("iax", "other", True, "i2", "211"),
        ("sccp", "default", True, None, "112"),
        ("sccp", "other", False, None, "212"),
        ("custom", "default", False, "zap/110x", "113"),
        ("custom", "other", True, "zap/2", "213"),
    ]
    out = {}
    for i, (proto, ctxname, owned, name, num) in enumerate(spec):
        p = {"protocol": proto, "context": ctxname}
        if proto in ("sip", "iax"):
            p["name"] = name
        if proto == "custom":
            p["interface"] = name
        lid = add_ok(system, p, {"number": num})
        if owned:
            attach_user(system, lid, 40 + i, "User %d" % i)
        out[lid] = (proto, ctxname, owned, (name or num).lower(), num)
    return out


def test_list_filters_every_combination(system):
    data = mixed(system)
    everything = lines(system)
    assert [e["id"] for e in everything] == sorted(data)
    for e in everything:
        check_element(e)
        assert (e["iduserfeatures"] != 0) == data[e["id"]][2]
        if data[e["id"]][2]:
            assert e["useridentity"].startswith("User ")
    for free, proto in itertools.product([None, "0", "1"], [None, "sip", "iax", "sccp", "custom", "h323"]):
        params = {}
        if free is not None:
            params["free"] = free
        if proto is not None:
            params["protocol"] = proto
        want = [i for i, d in sorted(data.items())
                if (proto is None or d[0] == proto) and (free is None or d[2] == (free == "0"))]
        got = lines(system, **params)
        assert [e["id"] for e in got] == want, params
        if not want:
            assert call(system, "list", **params).status == 204
    assert [e["id"] for e in lines(system, protocol="SCCP")] == [i for i, d in sorted(data.items()) if d[0] == "sccp"]


def test_search_filters_every_combination(system):
    data = mixed(system)
    for needle, ctxname, free, proto in itertools.product(
            ["11", "2", "S1", "zap", "othe", "nothing"], [None, "default", "other", "nowhere"], [None, "0", "1"],
            [None, "sip", "iax", "sccp", "custom", "bogus"]):
        params = {"search": needle}
        for k, v in (("context", ctxname), ("free", free), ("protocol", proto)):
            if v is not None:
                params[k] = v
        n = needle.lower()
        want = [i for i, d in sorted(data.items())
                if (n in d[4] or n in d[3] or (ctxname is None and n in d[1]))
                and (ctxname is None or d[1] == ctxname) and (proto is None or d[0] == proto)
                and (free is None or d[2] == (free == "0"))]
        r = call(system, "search", **params)
        if want:
            assert r.status == 200, (params, r)
            assert [e["id"] for e in r.json()] == want, params
        else:
            assert (r.status, r.body) == (204, b""), (params, r)
    assert call(system, "search").status == 204
    assert call(system, "search", search="").status == 204


def test_etag_and_sum(system):
    mixed(system)
    r = call(system, "list")
    tag = r.header("etag")
    assert tag and r.status == 200
    assert system.get(LINES, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": tag}).status == 304
    assert call(system, "list", sum=md5_hex(r.body)).status == 304
    v = call(system, "view", id=r.json()[0]["id"])
    assert system.get(LINES, {"act": "view", "id": r.json()[0]["id"]}, auth=ADMIN,
                      headers={"If-None-Match": v.header("etag")}).status == 304
    # a write by either worker changes the tags; so does a new owner (users) or a user's new name
    lid = r.json()[0]["id"]
    assert call(system, "edit", {"linefeatures": {"description": "x"}}, id=lid).status == 200
    r2 = call(system, "list")
    assert r2.header("etag") != tag
    redis_cli(system, "INCR", PREFIX + "ver:users")
    assert call(system, "list").header("etag") != r2.header("etag")


# ---- 404s ----------------------------------------------------------------------------------------------


def test_unknown_ids_404(system):
    mixed(system)
    before = snapshot(system)
    for act in ("view", "delete"):
        for lid in ("999", "0", "-1", "abc", ""):
            r = call(system, act, id=lid)
            assert r.status == 404, (act, lid, r)
        assert call(system, act).status == 404
    r = call(system, "edit", {"linefeatures": {"number": "150"}}, id="999")
    assert r.status == 404, r
    assert call(system, "edit", {"protocol": {"protocol": "bogus"}}, id="999").status == 404
    assert snapshot(system) == before


# ---- validation: each rule fails and changes nothing -----------------------------------------------------

BAD_ADDS = [
    ({}, "missing_field", "protocol"),
    ({"protocol": "sip"}, "invalid_value", "protocol"),
    ({"protocol": {"context": "default"}}, "missing_field", "protocol.protocol"),
    ({"protocol": {"protocol": "h323", "context": "default"}}, "invalid_value", "protocol.protocol"),
    ({"protocol": {"protocol": "sip"}}, "missing_field", "protocol.context"),
    ({"protocol": sip(context="nowhere")}, "unknown_reference", "protocol.context"),
    ({"protocol": sip(context="bad context")}, "invalid_value", "protocol.context"),
    ({"protocol": sip(name="a b")}, "invalid_value", "protocol.name"),
    ({"protocol": sip(name="x" * 41)}, "too_long", "protocol.name"),
    ({"protocol": sip(secret="x" * 81)}, "too_long", "protocol.secret"),
    ({"protocol": sip(secret="a\u0001b")}, "invalid_value", "protocol.secret"),
    ({"protocol": sip(language="xx_XX")}, "invalid_value", "protocol.language"),
    ({"protocol": sip(nat="always")}, "invalid_value", "protocol.nat"),
    ({"protocol": sip(dtmfmode="loud")}, "invalid_value", "protocol.dtmfmode"),
    ({"protocol": sip(qualify="100")}, "invalid_value", "protocol.qualify"),
    ({"protocol": sip(qualify="sure")}, "invalid_value", "protocol.qualify"),
    ({"protocol": sip(**{"host-type": "roaming"})}, "invalid_value", "protocol.host-type"),
    ({"protocol": sip(**{"host-type": "static"})}, "missing_field", "protocol.host"),
    ({"protocol": sip(**{"host-type": "static", "host": "bad host!"})}, "invalid_value", "protocol.host"),
    ({"protocol": sip(allow=["ulaw", "a-law"])}, "invalid_value", "protocol.allow[1]"),
    ({"protocol": sip(allow={"a": 1})}, "invalid_value", "protocol.allow"),
    ({"protocol": sip(allow="ulaw,,alaw")}, "too_short", "protocol.allow[1]"),
    ({"protocol": sip(disallow="some")}, "invalid_value", "protocol.disallow"),
    ({"protocol": sip(subscribemwi="perhaps")}, "invalid_value", "protocol.subscribemwi"),
    ({"protocol": sip(rtptimeout="1x")}, "invalid_value", "protocol.rtptimeout"),
    ({"protocol": sip(**{"call-limit": "41"})}, "invalid_value", "protocol.call-limit"),
    ({"protocol": sip(maxcallbitrate="fast")}, "invalid_value", "protocol.maxcallbitrate"),
    ({"protocol": sip(amaflags="sometimes")}, "invalid_value", "protocol.amaflags"),
    ({"protocol": sip(username="me")}, "invalid_value", "protocol.username"),
    ({"protocol": sip(fullcontact="sip:x@y")}, "invalid_value", "protocol.fullcontact"),
    ({"protocol": sip(ipaddr="10.0.0.1")}, "invalid_value", "protocol.ipaddr"),
    ({"protocol": sip(regseconds="5")}, "invalid_value", "protocol.regseconds"),
    ({"protocol": sip(port="5060")}, "invalid_value", "protocol.port"),
    ({"protocol": sip(callerid=["x"])}, "invalid_value", "protocol.callerid"),
    ({"protocol": {"protocol": "iax", "context": "default", "qualify": "5000"}}, "invalid_value", "protocol.qualify"),
    ({"protocol": {"protocol": "custom", "context": "default"}}, "missing_field", "protocol.interface"),
    ({"protocol": {"protocol": "sccp", "context": "default"}}, "missing_field", "linefeatures.number"),
    ({"protocol": {"protocol": "sccp", "context": "default", "cid_num": "abc"}, "linefeatures": {"number": "150"}},
     "invalid_value", "protocol.cid_num"),
    ({"protocol": sip(), "linefeatures": {"number": "10a"}}, "invalid_value", "linefeatures.number"),
    ({"protocol": sip(), "linefeatures": {"number": "1" * 41}}, "too_long", "linefeatures.number"),
    ({"protocol": sip(), "linefeatures": {"number": "150", "num": 13}}, "out_of_range", "linefeatures.num"),
    ({"protocol": sip(), "linefeatures": {"num": "x"}}, "invalid_value", "linefeatures.num"),
    ({"protocol": sip(), "linefeatures": {"device": "77"}}, "unknown_reference", "linefeatures.device"),
    ({"protocol": sip(), "linefeatures": {"device": "abc"}}, "invalid_value", "linefeatures.device"),
    ({"protocol": sip(), "linefeatures": {"description": "x" * 1001}}, "too_long", "linefeatures.description"),
    ({"protocol": sip(), "linefeatures": "101"}, "invalid_value", "linefeatures"),
    # numbers (section 6): taken in the context, outside the context's user ranges
    ({"protocol": sip(), "linefeatures": {"number": "120"}}, "number_taken", "linefeatures.number"),
    ({"protocol": sip(), "linefeatures": {"number": "550"}}, "number_taken", "linefeatures.number"),
    ({"protocol": sip(), "linefeatures": {"number": "300"}}, "out_of_range", "linefeatures.number"),
    ({"protocol": sip(), "linefeatures": {"number": "0150"}}, "out_of_range", "linefeatures.number"),
    ({"protocol": sip(name="taken")}, "already_exists", "protocol.name"),
    ({"protocol": sip(name="TAKEN")}, "already_exists", "protocol.name"),
    ({"protocol": {"protocol": "sccp", "context": "other"}, "linefeatures": {"number": "taken"}}, "invalid_value",
     "linefeatures.number"),
]


@pytest.fixture
def refusal_data(system):
    clear(system)
    add_ok(system, sip(name="taken"), {"number": "120"})
    # a group holds 550 in default (as the users service would record it)
    redis_cli(system, "HSET", PREFIX + "context:numbers:default", "550", "group:3")
    yield
    redis_cli(system, "HDEL", PREFIX + "context:numbers:default", "550")


@pytest.mark.parametrize("body,code,field", BAD_ADDS, ids=["%d-%s" % (i, b[2]) for i, b in enumerate(BAD_ADDS)])
def test_add_refused_changes_nothing(system, refusal_data, body, code, field):
    before = snapshot(system)
    assert_error(call(system, "add", body), 400, code, field)
    assert snapshot(system) == before


@pytest.mark.parametrize("raw,code", [(b"", "empty_body"), (b"[]", "not_an_object"), (b"\"x\"", "not_an_object"),
                                      (b"{\"protocol\":", "invalid_json"), (b"\xff", "invalid_json")])
def test_bad_bodies(system, refusal_data, raw, code):
    lid = last_id(system)
    before = snapshot(system)
    for q in ({"act": "add"}, {"act": "edit", "id": lid}):
        r = system.post(LINES, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
        assert r.status == 400, (q, r)
        assert r.json()["error"] == code, r.json()
    assert snapshot(system) == before


BAD_EDITS = [
    ({"protocol": {"protocol": "h323"}}, "invalid_value", "protocol.protocol"),
    ({"protocol": {"context": "nowhere"}}, "unknown_reference", "protocol.context"),
    ({"protocol": {"name": "other-one"}}, "already_exists", "protocol.name"),
    ({"protocol": {"nat": "sometimes"}}, "invalid_value", "protocol.nat"),
    ({"protocol": {"host-type": "static"}}, "missing_field", "protocol.host"),
    ({"linefeatures": {"number": "121"}}, "number_taken", "linefeatures.number"),
    ({"linefeatures": {"number": "999"}}, "out_of_range", "linefeatures.number"),
    ({"linefeatures": {"number": "x"}}, "invalid_value", "linefeatures.number"),
    ({"protocol": {"protocol": "custom"}}, "missing_field", "protocol.interface"),
    ({"protocol": {"username": "u"}}, "invalid_value", "protocol.username"),
]


@pytest.mark.parametrize("body,code,field", BAD_EDITS, ids=[b[2] for b in BAD_EDITS])
def test_edit_refused_changes_nothing(system, body, code, field):
    clear(system)
    lid = add_ok(system, sip(name="editme"), {"number": "120"})
    add_ok(system, sip(name="other-one"), {"number": "121"})
    before = snapshot(system)
    assert_error(call(system, "edit", body, id=lid), 400, code, field)
    assert snapshot(system) == before


# ---- edit -----------------------------------------------------------------------------------------------


def test_edit_merges_and_moves_the_number(system):
    clear(system)
    lid = add_ok(system, sip(name="mover", secret="keep", nat="yes", allow="ulaw"), {"number": "130", "num": 2})
    attach_user(system, lid, 7, "Jane Roe")
    r = call(system, "edit", {"protocol": {"dtmfmode": "info"}, "linefeatures": {"number": "131", "iduserfeatures": 99}},
             id=lid)
    assert r.status == 200, r
    v = view(system, lid)
    assert v["protocol"]["secret"] == "keep" and v["protocol"]["nat"] == "yes" and v["protocol"]["dtmfmode"] == "info"
    assert v["protocol"]["allow"] == ["ulaw"]
    assert v["linefeatures"]["number"] == "131" and v["linefeatures"]["num"] == 2
    assert v["linefeatures"]["iduserfeatures"] == 7 and v["linefeatures"]["useridentity"] == "Jane Roe"
    assert numbers(system, "default") == {"131": "user:line/%d" % lid}
    # the old number is free again
    other = add_ok(system, sip(), {"number": "130"})
    assert numbers(system, "default")["130"] == "user:line/%d" % other
    # moving to another context moves the number and the context reference
    assert call(system, "edit", {"protocol": {"context": "other"}}, id=lid).status == 200
    assert "131" not in numbers(system, "default") and numbers(system, "other") == {"131": "user:line/%d" % lid}
    assert (context_refs(system, "default"), context_refs(system, "other")) == (1, 1)
    # removing the number releases it
    assert call(system, "edit", {"linefeatures": {"number": ""}}, id=lid).status == 200
    assert numbers(system, "other") == {}
    # a view round-trips through edit
    v = view(system, lid)
    assert call(system, "edit", v, id=lid).status == 200
    assert view(system, lid) == v


def test_edit_changes_protocol_and_renames(system):
    clear(system)
    lid = add_ok(system, sip(name="before"), {"number": "140"})
    assert call(system, "edit", {"protocol": {"name": "after"}}, id=lid).status == 200
    assert view(system, lid)["protocol"]["name"] == "after"
    add_ok(system, sip(name="before"))  # the old name is free again
    r = call(system, "edit", {"protocol": {"protocol": "custom", "interface": "Local/140@default"}}, id=lid)
    assert r.status == 200, r
    e = [x for x in lines(system) if x["id"] == lid][0]
    assert (e["protocol"], e["name"], e["identity"], e["number"]) == ("custom", "Local/140@default",
                                                                      "Local/140@default", "140")
    assert "secret" not in e
    assert call(system, "edit", {"protocol": {"protocol": "sccp"}}, id=lid).status == 200
    assert view(system, lid)["protocol"]["name"] == "140"


# ---- delete, references, attachments ---------------------------------------------------------------------


def test_delete_releases_number_and_detaches(system):
    clear(system)
    redis_cli(system, "HSET", PREFIX + "device:data", "5", "x")
    lid = add_ok(system, sip(name="gone"), {"number": "150", "device": "5", "num": 1})
    keep = add_ok(system, sip(name="stays"), {"number": "151", "device": "5", "num": 2})
    attach_user(system, lid, 3, "Ann Lee")
    attach_user(system, keep, 3, "Ann Lee")
    e = {x["id"]: x for x in lines(system)}
    assert e[lid]["device"] == "5" and e[keep]["device"] == "5"
    assert redis_cli(system, "HGET", PREFIX + "line:bydevice", "5").strip() == "%d,%d" % (lid, keep)
    r = call(system, "delete", id=lid)
    assert (r.status, r.body) == (200, b"")
    assert call(system, "view", id=lid).status == 404
    assert numbers(system, "default") == {"151": "user:line/%d" % keep}
    assert redis_cli(system, "HGET", PREFIX + "line:owner", lid).strip() == ""
    assert redis_cli(system, "HGET", PREFIX + "line:byuser", "3").strip() == str(keep)
    assert redis_cli(system, "HGET", PREFIX + "line:bydevice", "5").strip() == str(keep)
    assert call(system, "delete", id=lid).status == 404
    # the name and number can be taken again; ids are never reused
    lid2 = add_ok(system, sip(name="gone"), {"number": "150"})
    assert lid2 > keep
    # detaching the device through edit
    assert call(system, "edit", {"linefeatures": {"device": ""}}, id=keep).status == 200
    assert view(system, keep)["linefeatures"]["device"] == ""
    assert redis_cli(system, "HGET", PREFIX + "line:bydevice", "5").strip() == ""
    redis_cli(system, "HDEL", PREFIX + "device:data", "5")


def test_context_in_use_by_a_line_cannot_be_deleted(system):
    clear(system)
    lid = add_ok(system, sip(context="spare"), {"number": "1"})
    r = system.get(CONTEXT, {"act": "delete", "id": "spare"}, auth=ADMIN)
    assert r.status == 405, r
    assert call(system, "delete", id=lid).status == 200
    assert context_refs(system, "spare") == 0 and numbers(system, "spare") == {}
    r = system.get(CONTEXT, {"act": "delete", "id": "spare"}, auth=ADMIN)
    assert r.status == 200, r
    assert system.post(CONTEXT, {"act": "add"}, body={"context": {"name": "spare", "entity": "default"}},
                       auth=ADMIN).status == 200


def test_context_ranges_may_not_orphan_a_line_number(system):
    clear(system)
    lid = add_ok(system, sip(), {"number": "250"})
    shrink = {"contextnumbers": {"user": [{"numberbeg": "100", "numberend": "199"}]}}
    r = system.post(CONTEXT, {"act": "edit", "id": "default"}, body=shrink, auth=ADMIN)
    assert r.status == 400 and r.json()["error"] == "in_use", r
    # an edit of the line that keeps its number is not checked against the ranges again
    assert call(system, "edit", {"linefeatures": {"description": "kept"}}, id=lid).status == 200
    assert call(system, "edit", {"linefeatures": {"number": "150"}}, id=lid).status == 200
    r = system.post(CONTEXT, {"act": "edit", "id": "default"}, body=shrink, auth=ADMIN)
    assert r.status == 200, r
    assert_error(call(system, "add", {"protocol": sip(), "linefeatures": {"number": "250"}}), 400, "out_of_range",
                 "linefeatures.number")
    restore = {"contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"},
                                           {"numberbeg": "4000", "numberend": "4999"}]}}
    assert system.post(CONTEXT, {"act": "edit", "id": "default"}, body=restore, auth=ADMIN).status == 200


def test_deleteall(system):
    data = mixed(system)
    r = call(system, "deleteall")
    assert (r.status, r.body) == (200, b"")
    assert lines(system) == []
    for c in ("default", "other"):
        assert numbers(system, c) == {} and context_refs(system, c) == 0
    assert redis_cli(system, "HLEN", PREFIX + "line:owner").strip() == "0"
    assert redis_cli(system, "HLEN", PREFIX + "line:name").strip() == "0"
    assert call(system, "deleteall").status == 204
    assert len(data) == 8


# ---- bad input corpus, concurrency -----------------------------------------------------------------------


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
def test_json_corpus_n_files_refused(system):
    clear(system)
    lid = add_ok(system, sip(name="corpus"), {"number": "160"})
    before = snapshot(system)
    for path in N_FILES:
        raw = path.read_bytes()
        for q in ({"act": "add"}, {"act": "edit", "id": lid}):
            r = system.post(LINES, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path.name, q, r)
            assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    assert snapshot(system) == before


def lines_workers(system):
    return [p for p in system.workers if "ipbx-lines" in p.name]


def adds_served(system):
    """The number of lines/add requests each ipbx-lines worker has answered (from its -v log)."""
    return [p.text().count(" lines/add ") for p in lines_workers(system)]


def race(system, bodies):
    """Sends the adds at once; checks that both ipbx-lines workers answered some of them."""
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


def test_concurrent_adds_of_one_number(system):
    clear(system)
    protos = ["sip", "iax", "sccp", "custom"]
    bodies = []
    for i in range(32):
        p = {"protocol": protos[i % 4], "context": "default"}
        if p["protocol"] == "custom":
            p["interface"] = "Local/racer%d" % i
        bodies.append({"protocol": p, "linefeatures": {"number": "170"}})
    results = race(system, bodies)
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "number_taken", "linefeatures.number")
    held = [e for e in lines(system) if e["number"] == "170"]
    assert len(held) == 1 and len(lines(system)) == 1
    assert numbers(system, "default") == {"170": "user:line/%d" % held[0]["id"]}
    assert [p.alive() for p in lines_workers(system)] == [True, True]


def test_concurrent_adds_of_one_number_sip_only(system):
    clear(system)
    results = race(system, [{"protocol": sip(), "linefeatures": {"number": "171"}} for _ in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "number_taken", "linefeatures.number")
    assert [e["number"] for e in lines(system)] == ["171"]


def test_concurrent_adds_of_one_name(system):
    clear(system)
    results = race(system, [{"protocol": sip(name="samename"), "linefeatures": {"number": str(180 + i)}}
                            for i in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "already_exists", "protocol.name")
    [e] = lines(system)
    assert e["name"] == "samename"
    assert list(numbers(system, "default")) == [e["number"]]
