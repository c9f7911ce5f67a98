"""system_management/context (contract §4.3, §6): every act with status codes and JSON types, every
validation rule (each failing case changes nothing), entity references, includes, numbers in use
(seeded in Redis under the documented key), the JSON bad-input corpus, and concurrent adds."""

import copy
import json
import threading

import pytest

from conftest import ADMIN, CONTEXT_PRIVATE, ENTITY, JSON_SUITE, md5_hex, redis_cli

CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
PREFIX = "xws:"  # the default redis_prefix
PART_KEYS = ["name", "displayname", "entity", "contexttype", "description"]
TYPES = ["user", "group", "queue", "meetme", "incall"]
N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []


# ---- helpers ----------------------------------------------------------------------------------------


def call(system, act, body=None, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(CONTEXT, q, auth=ADMIN)
    return system.post(CONTEXT, q, body=body, auth=ADMIN)


def add(system, body):
    return call(system, "add", body)


def edit(system, name, body):
    return call(system, "edit", body, id=name)


def view(system, name):
    return call(system, "view", id=name)


def view_json(system, name):
    r = view(system, name)
    assert r.status == 200, (name, r)
    return r.json()


def names(system):
    r = call(system, "list")
    if r.status == 204:
        return []
    assert r.status == 200, r
    return [c["name"] for c in r.json()]


def snapshot(system):
    """Everything the resource shows: the list and every view (plus the entity list)."""
    lst = call(system, "list")
    out = [lst.status, lst.body]
    for n in names(system):
        out.append(view(system, n).body)
    out.append(system.get(ENTITY, {"act": "list"}, auth=ADMIN).body)
    return out


def ctx(name, **part):
    p = {"name": name}
    p.update(part)
    return {"context": p}


def entity_id(system, name):
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 200, r
    for e in r.json():
        if e["name"] == name:
            return e["id"]
    return None


def add_entity(system, name, displayname=None):
    r = system.post(ENTITY, {"act": "add"}, body={"name": name, "displayname": displayname or ("Entity " + name)},
                    auth=ADMIN)
    assert r.status == 200, r
    return entity_id(system, name)


def assert_error(r, status, code, field):
    assert r.status == status, r
    err = r.json()
    assert set(err) == {"error", "field", "message"}, err
    assert (err["error"], err["field"]) == (code, field), err
    assert type(err["message"]) is str and err["message"]


def assert_refused(system, act, body, code, field, name=None):
    before = snapshot(system)
    r = call(system, act, body, **({"id": name} if name else {}))
    assert_error(r, 400, code, field)
    assert snapshot(system) == before


def check_part(p):
    assert list(p.keys()) == PART_KEYS, list(p.keys())
    for k in PART_KEYS:
        assert type(p[k]) is str, k


def check_whole(obj):
    assert list(obj.keys()) == ["context", "contextinclude", "contextnumbers"]
    check_part(obj["context"])
    inc = obj["contextinclude"]
    assert inc is False or (type(inc) is list and inc and all(type(x) is str for x in inc))
    nums = obj["contextnumbers"]
    if nums is False:
        return
    assert list(nums.keys()) == TYPES
    for t in TYPES:
        rs = nums[t]
        if rs is False:
            continue
        assert type(rs) is list and rs
        for r in rs:
            if t == "incall":
                assert list(r.keys()) == ["numberbeg", "numberend", "didlength"]
                assert type(r["didlength"]) is int
            else:
                assert list(r.keys()) == ["numberbeg", "numberend"]
            assert type(r["numberbeg"]) is str and type(r["numberend"]) is str


# ---- before any entity exists --------------------------------------------------------------------------


def test_list_and_search_empty_204(system):
    for q in ({"act": "list"}, {"act": "search", "search": "a"}, None, {"act": "bogus"}):
        r = system.get(CONTEXT, q, auth=ADMIN)
        assert r.status == 204, (q, r)
        assert r.body == b""
        assert r.header("x-xivo-ws-version") == "1.0"


def test_add_without_any_entity_is_missing_field(system):
    assert_refused(system, "add", ctx("noent"), "missing_field", "context.entity")


# ---- add / view / list ------------------------------------------------------------------------------------


def test_add_minimal_defaults(system):
    add_entity(system, "first", "First")
    add_entity(system, "second", "Second")
    r = add(system, ctx("minimal"))
    assert r.status == 200, r
    assert r.body == b""
    v = view(system, "minimal")
    assert v.status == 200
    assert v.header("content-type").startswith("application/json")
    assert v.header("etag")
    obj = v.json()
    check_whole(obj)
    # the entity with the lowest id, the name as display name, internal, no includes, no numbers
    assert obj == {
        "context": {"name": "minimal", "displayname": "minimal", "entity": "first", "contexttype": "internal",
                    "description": ""},
        "contextinclude": False,
        "contextnumbers": False,
    }


def test_add_full_and_view(system):
    body = {
        "context": {"name": "Full_ctx-1", "displayname": "Full context", "entity": "Second", "contexttype": "Incall",
                    "description": "line 1\nline 2\twith tab"},
        "contextinclude": ["minimal", "minimal"],
        "contextnumbers": {
            "user": [{"numberbeg": "100", "numberend": "199"}, {"numberbeg": "4000", "numberend": ""},
                     {"numberbeg": 300}],
            "group": [],
            "queue": False,
            "meetme": [{"numberbeg": "0700", "numberend": "0799"}],
            "incall": [{"numberbeg": "1000", "numberend": "1999", "didlength": "4"},
                       {"numberbeg": "", "numberend": "", "didlength": 10}, {"numberbeg": "5"}],
        },
        "ignored_key": 1,
    }
    r = add(system, body)
    assert r.status == 200, r
    obj = view_json(system, "Full_ctx-1")
    check_whole(obj)
    assert obj["context"] == {"name": "Full_ctx-1", "displayname": "Full context", "entity": "second",
                              "contexttype": "incall", "description": "line 1\nline 2\twith tab"}
    assert obj["contextinclude"] == ["minimal"]  # duplicates dropped
    assert obj["contextnumbers"] == {
        "user": [{"numberbeg": "100", "numberend": "199"}, {"numberbeg": "4000", "numberend": ""},
                 {"numberbeg": "300", "numberend": ""}],
        "group": False,
        "queue": False,
        "meetme": [{"numberbeg": "0700", "numberend": "0799"}],
        "incall": [{"numberbeg": "1000", "numberend": "1999", "didlength": 4},
                   {"numberbeg": "", "numberend": "", "didlength": 10},
                   {"numberbeg": "5", "numberend": "", "didlength": 4}],
    }


def test_view_round_trips_through_edit(system):
    before = view_json(system, "Full_ctx-1")
    r = edit(system, "Full_ctx-1", before)
    assert r.status == 200, r
    assert view_json(system, "Full_ctx-1") == before


def test_list_shape_and_order(system):
    add(system, ctx("zeta", displayname="Last one"))
    add(system, ctx("Alpha"))
    add(system, ctx("beta-2"))
    r = call(system, "list")
    assert r.status == 200
    lst = r.json()
    for p in lst:
        check_part(p)
    ns = [p["name"] for p in lst]
    assert ns == sorted(ns, key=lambda s: s.encode())
    assert set(ns) >= {"zeta", "Alpha", "beta-2", "minimal", "Full_ctx-1"}
    assert [p for p in lst if p["name"] == "zeta"][0]["displayname"] == "Last one"
    # the default act and unknown acts are list
    for q in (None, {"act": ""}, {"act": "frobnicate"}):
        assert system.get(CONTEXT, q, auth=ADMIN).body == r.body
    # the private path answers the same
    assert system.get(CONTEXT_PRIVATE, {"act": "list"}).body == r.body


def test_search(system):
    def found(term):
        r = call(system, "search", search=term)
        if r.status == 204:
            assert r.body == b""
            return []
        assert r.status == 200, r
        for p in r.json():
            check_part(p)
        return [p["name"] for p in r.json()]

    assert found("ZET") == ["zeta"]
    assert found("last ONE") == ["zeta"]  # display name
    assert found("full") == ["Full_ctx-1"]
    assert found("nothing-like-this") == []
    assert found("") == []
    r = call(system, "search")
    assert r.status == 204
    assert found("a") == sorted(found("a"), key=lambda s: s.encode())


def test_view_unknown_and_missing_id_404(system):
    for q in ({"act": "view", "id": "nosuch"}, {"act": "view"}, {"act": "view", "id": "bad name!"},
              {"act": "view", "id": ""}):
        r = system.get(CONTEXT, q, auth=ADMIN)
        assert r.status == 404, (q, r)


def test_etag_sum_and_entity_rename(system):
    r = view(system, "minimal")
    etag = r.header("etag")
    assert view(system, "minimal").header("etag") == etag
    r2 = system.get(CONTEXT, {"act": "view", "id": "minimal"}, auth=ADMIN, headers={"If-None-Match": etag})
    assert r2.status == 304 and r2.body == b""
    r3 = system.get(CONTEXT, {"act": "view", "id": "minimal", "sum": md5_hex(r.body)}, auth=ADMIN)
    assert r3.status == 304
    lst = call(system, "list")
    assert system.get(CONTEXT, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": lst.header("etag")}).status == 304
    # renaming the entity: the context shows the new name, and the tags change
    eid = entity_id(system, "first")
    r4 = system.post(ENTITY, {"act": "edit", "id": str(eid)}, body={"name": "first-renamed"}, auth=ADMIN)
    assert r4.status == 200, r4
    v = view(system, "minimal")
    assert v.json()["context"]["entity"] == "first-renamed"
    assert v.header("etag") != etag
    assert call(system, "list").header("etag") != lst.header("etag")
    r5 = system.post(ENTITY, {"act": "edit", "id": str(eid)}, body={"name": "first"}, auth=ADMIN)
    assert r5.status == 200, r5
    assert view_json(system, "minimal")["context"]["entity"] == "first"


# ---- add validation -------------------------------------------------------------------------------------


def numbers(**types):
    return {"context": {"name": "numtest"}, "contextnumbers": types}


ADD_REFUSED = [
    ({}, "missing_field", "context"),
    ({"context": None}, "missing_field", "context"),
    ({"context": "x"}, "invalid_value", "context"),
    ({"context": []}, "invalid_value", "context"),
    (ctx(None), "missing_field", "context.name"),
    ({"context": {"displayname": "x"}}, "missing_field", "context.name"),
    (ctx(""), "too_short", "context.name"),
    (ctx("a" * 40), "too_long", "context.name"),
    (ctx("bad name"), "invalid_value", "context.name"),
    (ctx("bad.name"), "invalid_value", "context.name"),
    (ctx("caf\u00e9"), "invalid_value", "context.name"),
    (ctx(["a"]), "invalid_value", "context.name"),
    (ctx("macro-x"), "invalid_value", "context.name"),
    (ctx("MACRO-x"), "invalid_value", "context.name"),
    (ctx("voicemenu-1"), "invalid_value", "context.name"),
    (ctx("Xivo-foo"), "invalid_value", "context.name"),
    (ctx("general"), "invalid_value", "context.name"),
    (ctx("Global"), "invalid_value", "context.name"),
    (ctx("globals"), "invalid_value", "context.name"),
    (ctx("parkedcalls"), "invalid_value", "context.name"),
    (ctx("AUTHENTICATION"), "invalid_value", "context.name"),
    (ctx("zonemessages"), "invalid_value", "context.name"),
    (ctx("minimal"), "already_exists", "context.name"),
    (ctx("okname", displayname="x" * 129), "too_long", "context.displayname"),
    (ctx("okname", displayname="a\nb"), "invalid_value", "context.displayname"),
    (ctx("okname", displayname="a\u0007"), "invalid_value", "context.displayname"),
    (ctx("okname", displayname={"a": 1}), "invalid_value", "context.displayname"),
    (ctx("okname", entity="nosuchentity"), "unknown_reference", "context.entity"),
    (ctx("okname", entity=True), "invalid_value", "context.entity"),
    (ctx("okname", contexttype="bogus"), "invalid_value", "context.contexttype"),
    (ctx("okname", contexttype="internal "), "invalid_value", "context.contexttype"),
    (ctx("okname", contexttype=1), "invalid_value", "context.contexttype"),
    (ctx("okname", description="d" * 1001), "too_long", "context.description"),
    (ctx("okname", description="a\u0001b"), "invalid_value", "context.description"),
    (dict(ctx("okname"), contextinclude="minimal"), "invalid_value", "contextinclude"),
    (dict(ctx("okname"), contextinclude=True), "invalid_value", "contextinclude"),
    (dict(ctx("okname"), contextinclude={"a": "minimal"}), "invalid_value", "contextinclude"),
    (dict(ctx("okname"), contextinclude=["minimal", 3]), "invalid_value", "contextinclude[1]"),
    (dict(ctx("okname"), contextinclude=["minimal", "nosuch"]), "unknown_reference", "contextinclude[1]"),
    (dict(ctx("okname"), contextinclude=["minimal", "minimal", "bad name"]), "unknown_reference",
     "contextinclude[2]"),
    (dict(ctx("okname"), contextinclude=["okname"]), "invalid_value", "contextinclude[0]"),
    ({"context": {"name": "numtest"}, "contextnumbers": []}, "invalid_value", "contextnumbers"),
    ({"context": {"name": "numtest"}, "contextnumbers": "user"}, "invalid_value", "contextnumbers"),
    ({"context": {"name": "numtest"}, "contextnumbers": True}, "invalid_value", "contextnumbers"),
    (numbers(users=[]), "invalid_value", "contextnumbers.users"),
    (numbers(voicemail=[{"numberbeg": "1"}]), "invalid_value", "contextnumbers.voicemail"),
    (numbers(user={"numberbeg": "100"}), "invalid_value", "contextnumbers.user"),
    (numbers(user="100-199"), "invalid_value", "contextnumbers.user"),
    (numbers(group=True), "invalid_value", "contextnumbers.group"),
    (numbers(user=["100"]), "invalid_value", "contextnumbers.user[0]"),
    (numbers(user=[{"numberbeg": "100"}, {}]), "missing_field", "contextnumbers.user[1].numberbeg"),
    (numbers(user=[{"numberend": "199"}]), "missing_field", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": None}]), "missing_field", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": ""}]), "invalid_value", "contextnumbers.user[0].numberbeg"),
    (numbers(queue=[{"numberbeg": "", "numberend": ""}]), "invalid_value", "contextnumbers.queue[0].numberbeg"),
    (numbers(user=[{"numberbeg": "1a0"}]), "invalid_value", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": "-100"}]), "invalid_value", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": -100}]), "invalid_value", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": 1.5}]), "invalid_value", "contextnumbers.user[0].numberbeg"),
    (numbers(user=[{"numberbeg": "1" * 17}]), "too_long", "contextnumbers.user[0].numberbeg"),
    (numbers(group=[{"numberbeg": "500", "numberend": "5999"}]), "invalid_value",
     "contextnumbers.group[0].numberend"),
    (numbers(group=[{"numberbeg": "500", "numberend": "60"}]), "invalid_value", "contextnumbers.group[0].numberend"),
    (numbers(meetme=[{"numberbeg": "700", "numberend": "699"}]), "invalid_value",
     "contextnumbers.meetme[0].numberend"),
    (numbers(queue=[{"numberbeg": "600", "numberend": "6x9"}]), "invalid_value", "contextnumbers.queue[0].numberend"),
    (numbers(user=[{"numberbeg": "100", "numberend": "199"}, {"numberbeg": "300", "numberend": "2999"}]),
     "invalid_value", "contextnumbers.user[1].numberend"),
    (numbers(incall=[{"numberbeg": "", "numberend": "100"}]), "invalid_value", "contextnumbers.incall[0].numberbeg"),
    (numbers(incall=[{"numberbeg": "100", "didlength": 0}]), "out_of_range", "contextnumbers.incall[0].didlength"),
    (numbers(incall=[{"numberbeg": "100", "didlength": 21}]), "out_of_range", "contextnumbers.incall[0].didlength"),
    (numbers(incall=[{"numberbeg": "100", "didlength": -4}]), "out_of_range", "contextnumbers.incall[0].didlength"),
    (numbers(incall=[{"numberbeg": "100", "didlength": "four"}]), "invalid_value",
     "contextnumbers.incall[0].didlength"),
    (numbers(incall=[{"numberbeg": "100", "didlength": 4.5}]), "invalid_value", "contextnumbers.incall[0].didlength"),
    (numbers(incall=[{"numberbeg": "100", "didlength": [4]}]), "invalid_value", "contextnumbers.incall[0].didlength"),
    (numbers(user=[{"numberbeg": str(1000 + i)} for i in range(1001)]), "too_long", "contextnumbers.user"),
]


@pytest.mark.parametrize("body,code,field", ADD_REFUSED, ids=["%d-%s" % (i, c[2]) for i, c in enumerate(ADD_REFUSED)])
def test_add_refused_changes_nothing(system, body, code, field):
    assert_refused(system, "add", body, code, field)


@pytest.mark.parametrize(
    "raw,code",
    [(b"", "empty_body"), (b"[]", "not_an_object"), (b"12", "not_an_object"), (b'{"context": ', "invalid_json")],
)
def test_add_bad_bodies(system, raw, code):
    before = snapshot(system)
    r = system.post(CONTEXT, {"act": "add"}, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
    assert_error(r, 400, code, "")
    assert snapshot(system) == before


def test_accepted_boundaries(system):
    body = {"context": {"name": "b" * 39, "displayname": "d" * 128, "description": "x" * 1000,
                        "contexttype": "others"},
            "contextnumbers": {"user": [{"numberbeg": "1" * 16, "numberend": "9" * 16}],
                               "incall": [{"numberbeg": "1", "didlength": 1}, {"numberbeg": "2", "didlength": 20}]}}
    assert add(system, body).status == 200
    obj = view_json(system, "b" * 39)
    assert obj["context"]["displayname"] == "d" * 128
    assert obj["contextnumbers"]["user"] == [{"numberbeg": "1" * 16, "numberend": "9" * 16}]
    assert [r["didlength"] for r in obj["contextnumbers"]["incall"]] == [1, 20]
    for t in ("internal", "incall", "outcall", "services", "others"):
        assert add(system, ctx("type-" + t, contexttype=t)).status == 200
        assert view_json(system, "type-" + t)["context"]["contexttype"] == t


# ---- edit ------------------------------------------------------------------------------------------------


def test_edit_partial(system):
    body = {"context": {"name": "editme", "displayname": "Edit me", "entity": "first", "contexttype": "internal",
                        "description": "before"},
            "contextinclude": ["minimal"],
            "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "199"}],
                               "group": [{"numberbeg": "500", "numberend": "599"}]}}
    assert add(system, body).status == 200
    # only the description
    r = edit(system, "editme", {"context": {"description": "after"}})
    assert r.status == 200, r
    assert r.body == b""
    obj = view_json(system, "editme")
    assert obj["context"] == {"name": "editme", "displayname": "Edit me", "entity": "first",
                              "contexttype": "internal", "description": "after"}
    assert obj["contextinclude"] == ["minimal"]
    assert obj["contextnumbers"]["user"] == [{"numberbeg": "100", "numberend": "199"}]
    # the same name is fine; other context keys replace the stored ones
    r = edit(system, "editme", {"context": {"name": "editme", "displayname": "Edited", "entity": "second",
                                            "contexttype": "services"}})
    assert r.status == 200, r
    obj = view_json(system, "editme")
    assert obj["context"] == {"name": "editme", "displayname": "Edited", "entity": "second",
                              "contexttype": "services", "description": "after"}
    # one type of numbers replaced, the others kept
    r = edit(system, "editme", {"contextnumbers": {"user": [{"numberbeg": "200", "numberend": "299"}]}})
    assert r.status == 200, r
    obj = view_json(system, "editme")
    assert obj["contextnumbers"]["user"] == [{"numberbeg": "200", "numberend": "299"}]
    assert obj["contextnumbers"]["group"] == [{"numberbeg": "500", "numberend": "599"}]
    # includes replaced
    assert edit(system, "editme", {"contextinclude": ["zeta", "Alpha"]}).status == 200
    assert view_json(system, "editme")["contextinclude"] == ["zeta", "Alpha"]
    # false empties a collection; an empty body changes nothing
    assert edit(system, "editme", {"contextinclude": False, "contextnumbers": {"group": False}}).status == 200
    obj = view_json(system, "editme")
    assert obj["contextinclude"] is False
    assert obj["contextnumbers"]["group"] is False
    assert obj["contextnumbers"]["user"] == [{"numberbeg": "200", "numberend": "299"}]
    before = view(system, "editme")
    assert edit(system, "editme", {}).status == 200
    assert view(system, "editme").body == before.body
    assert edit(system, "editme", {"contextnumbers": False}).status == 200
    assert view_json(system, "editme")["contextnumbers"] is False


def test_edit_changes_etag(system):
    v1 = view(system, "editme")
    assert edit(system, "editme", {"context": {"description": "tag change"}}).status == 200
    v2 = view(system, "editme")
    assert v2.header("etag") != v1.header("etag")
    assert system.get(CONTEXT, {"act": "view", "id": "editme"}, auth=ADMIN,
                      headers={"If-None-Match": v1.header("etag")}).status == 200


EDIT_REFUSED = [
    ({"context": {"name": "other"}}, "invalid_value", "context.name"),
    ({"context": {"name": "EDITME"}}, "invalid_value", "context.name"),
    ({"context": "x"}, "invalid_value", "context"),
    ({"context": {"displayname": "x" * 129}}, "too_long", "context.displayname"),
    ({"context": {"entity": "nosuchentity"}}, "unknown_reference", "context.entity"),
    ({"context": {"contexttype": "bogus"}}, "invalid_value", "context.contexttype"),
    ({"context": {"description": "d" * 1001}}, "too_long", "context.description"),
    ({"contextinclude": ["editme"]}, "invalid_value", "contextinclude[0]"),
    ({"contextinclude": ["zeta", "nosuch"]}, "unknown_reference", "contextinclude[1]"),
    ({"contextinclude": "zeta"}, "invalid_value", "contextinclude"),
    ({"contextnumbers": {"bogus": []}}, "invalid_value", "contextnumbers.bogus"),
    ({"contextnumbers": {"user": [{"numberbeg": "300", "numberend": "200"}]}}, "invalid_value",
     "contextnumbers.user[0].numberend"),
    ({"contextnumbers": {"user": [{"numberbeg": "1"}, {"numberbeg": "x"}]}}, "invalid_value",
     "contextnumbers.user[1].numberbeg"),
]


@pytest.mark.parametrize("body,code,field", EDIT_REFUSED, ids=["%d-%s" % (i, c[2]) for i, c in enumerate(EDIT_REFUSED)])
def test_edit_refused_changes_nothing(system, body, code, field):
    assert_refused(system, "edit", body, code, field, name="editme")


def test_edit_unknown_404(system):
    before = snapshot(system)
    for q in ({"act": "edit", "id": "nosuch"}, {"act": "edit"}, {"act": "edit", "id": "bad name"}):
        r = system.post(CONTEXT, q, body={"context": {"description": "x"}}, auth=ADMIN)
        assert r.status == 404, (q, r)
    assert snapshot(system) == before


def test_edit_bad_bodies(system):
    before = snapshot(system)
    for raw, code in ((b"", "empty_body"), (b"[1]", "not_an_object"), (b"{,}", "invalid_json")):
        r = system.post(CONTEXT, {"act": "edit", "id": "editme"}, body=raw, auth=ADMIN)
        assert_error(r, 400, code, "")
    assert snapshot(system) == before


# ---- numbers in use ---------------------------------------------------------------------------------------


def test_shrinking_ranges_may_not_orphan_a_number(system):
    body = {"context": {"name": "numbered"},
            "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "199"}],
                               "group": [{"numberbeg": "500", "numberend": "599"}],
                               "incall": [{"numberbeg": "1000", "numberend": "1999", "didlength": 4}]}}
    assert add(system, body).status == 200
    key = PREFIX + "context:numbers:numbered"
    redis_cli(system, "HSET", key, "150", "user:line/7", "505", "group:3", "1500", "incall:2")
    try:
        # user 150 would fall outside 200-299
        assert_refused(system, "edit", {"contextnumbers": {"user": [{"numberbeg": "200", "numberend": "299"}]}},
                       "in_use", "contextnumbers.user", name="numbered")
        # a single number that is not 150
        assert_refused(system, "edit", {"contextnumbers": {"user": [{"numberbeg": "151"}]}},
                       "in_use", "contextnumbers.user", name="numbered")
        # numbers of another length are not in the range
        assert_refused(system, "edit", {"contextnumbers": {"user": [{"numberbeg": "1000", "numberend": "1999"}]}},
                       "in_use", "contextnumbers.user", name="numbered")
        assert_refused(system, "edit", {"contextnumbers": {"group": [{"numberbeg": "550", "numberend": "599"}]}},
                       "in_use", "contextnumbers.group", name="numbered")
        assert_refused(system, "edit", {"contextnumbers": {"incall": [{"numberbeg": "1600", "numberend": "1999"}]}},
                       "in_use", "contextnumbers.incall", name="numbered")
        # several types at once: nothing is changed when one of them orphans a number
        assert_refused(system, "edit",
                       {"contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"}],
                                           "group": [{"numberbeg": "506"}]}},
                       "in_use", "contextnumbers.group", name="numbered")
        # ranges that keep every number are fine, and so are other types
        ok = {"user": [{"numberbeg": "140", "numberend": "160"}, {"numberbeg": "300", "numberend": "399"}],
              "queue": [{"numberbeg": "600", "numberend": "600"}],
              "incall": [{"numberbeg": "", "numberend": "", "didlength": 4}]}
        r = edit(system, "numbered", {"contextnumbers": ok})
        assert r.status == 200, r
        assert view_json(system, "numbered")["contextnumbers"]["user"] == ok["user"]
        r = edit(system, "numbered", {"contextnumbers": {"user": [{"numberbeg": "150"}]}})
        assert r.status == 200, r
        # a type without ranges allows any number
        r = edit(system, "numbered", {"contextnumbers": {"user": False, "group": []}})
        assert r.status == 200, r
        obj = view_json(system, "numbered")
        assert obj["contextnumbers"]["user"] is False and obj["contextnumbers"]["group"] is False
        # the number in use forbids a delete
        r = call(system, "delete", id="numbered")
        assert_error(r, 405, "in_use", "id")
        assert "numbered" in names(system)
    finally:
        redis_cli(system, "DEL", key)
    assert call(system, "delete", id="numbered").status == 200
    assert "numbered" not in names(system)


# ---- delete and references ---------------------------------------------------------------------------------


def test_delete_unknown_404(system):
    before = snapshot(system)
    for q in ({"act": "delete", "id": "nosuch"}, {"act": "delete"}, {"act": "delete", "id": "a b"}):
        assert system.get(CONTEXT, q, auth=ADMIN).status == 404, q
    assert snapshot(system) == before


def test_delete_included_is_405(system):
    assert add(system, ctx("incl-target")).status == 200
    assert add(system, dict(ctx("incl-by-1"), contextinclude=["incl-target"])).status == 200
    assert add(system, dict(ctx("incl-by-2"), contextinclude=["incl-target", "zeta"])).status == 200
    before = snapshot(system)
    r = call(system, "delete", id="incl-target")
    assert_error(r, 405, "in_use", "id")
    assert snapshot(system) == before
    assert call(system, "delete", id="incl-by-1").status == 200
    assert call(system, "delete", id="incl-target").status == 405  # still included by incl-by-2
    assert edit(system, "incl-by-2", {"contextinclude": ["zeta"]}).status == 200
    r = call(system, "delete", id="incl-target")
    assert r.status == 200, r
    assert r.body == b""
    assert view(system, "incl-target").status == 404
    assert call(system, "delete", id="incl-target").status == 404
    # a deleted includer releases its includes
    assert call(system, "delete", id="incl-by-2").status == 200
    assert call(system, "delete", id="zeta").status in (200, 405)


def test_delete_used_by_other_services_is_405(system):
    assert add(system, ctx("used-ctx")).status == 200
    redis_cli(system, "HSET", PREFIX + "context:refs", "used-ctx", "2")
    try:
        r = call(system, "delete", id="used-ctx")
        assert_error(r, 405, "in_use", "id")
    finally:
        redis_cli(system, "HDEL", PREFIX + "context:refs", "used-ctx")
    assert call(system, "delete", id="used-ctx").status == 200


def test_entity_delete_405_while_a_context_names_it(system):
    eid = add_entity(system, "held")
    assert add(system, ctx("holder", entity="held")).status == 200
    before = system.get(ENTITY, {"act": "list"}, auth=ADMIN).body
    r = system.get(ENTITY, {"act": "delete", "id": str(eid)}, auth=ADMIN)
    assert r.status == 405, r
    assert system.get(ENTITY, {"act": "list"}, auth=ADMIN).body == before
    # moving the context to another entity releases it
    assert edit(system, "holder", {"context": {"entity": "second"}}).status == 200
    assert system.get(ENTITY, {"act": "delete", "id": str(eid)}, auth=ADMIN).status == 200
    assert view_json(system, "holder")["context"]["entity"] == "second"


def test_entity_deleteall_skips_entities_with_contexts(system):
    add_entity(system, "lonely")
    r = system.get(ENTITY, {"act": "deleteall"}, auth=ADMIN)
    assert r.status == 200, r
    left = {e["name"] for e in system.get(ENTITY, {"act": "list"}, auth=ADMIN).json()}
    used = set()
    for n in names(system):
        used.add(view_json(system, n)["context"]["entity"])
    assert left == used
    assert "lonely" not in left
    # every context still renders its entity
    for n in names(system):
        assert view_json(system, n)["context"]["entity"] != ""


# ---- bad input, concurrency ---------------------------------------------------------------------------------


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
def test_json_corpus_n_files_refused(system):
    before = snapshot(system)
    for path in N_FILES:
        raw = path.read_bytes()
        for q in ({"act": "add"}, {"act": "edit", "id": "editme"}):
            r = system.post(CONTEXT, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path.name, q, r)
            assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    assert snapshot(system) == before


def test_concurrent_adds_of_one_name(system):
    results = []
    lock = threading.Lock()

    def one():
        r = add(system, ctx("racer", displayname="Racer"))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == [200] + [400] * 9, statuses
    for r in results:
        if r.status == 400:
            assert r.json()["error"] == "already_exists"
    assert names(system).count("racer") == 1


def test_internal_endpoint_sees_the_same(system):
    r = system.call("-p", "id=minimal", "config", "context", "view")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == view_json(system, "minimal")


# ---- review regressions --------------------------------------------------------------------------------


def test_edit_unknown_404_whatever_the_body(system):
    before = snapshot(system)
    for body in ({"context": {"contexttype": "bad"}}, {"context": {"name": "other"}}):
        r = system.post(CONTEXT, {"act": "edit", "id": "nosuchctx"}, body=body, auth=ADMIN)
        assert_error(r, 404, "not_found", "id")
    assert snapshot(system) == before


def test_carriage_return_refused_in_description(system):
    assert_refused(system, "add", {"context": {"name": "crdesc", "description": "a\rb"}}, "invalid_value",
                   "context.description")
    r = add(system, {"context": {"name": "nldesc", "description": "a\tb\nc"}})
    assert r.status == 200, r
    assert view_json(system, "nldesc")["context"]["description"] == "a\tb\nc"
    assert call(system, "delete", id="nldesc").status == 200


def test_in_use_error_names_the_lowest_number(system):
    body = {"context": {"name": "lowest"}, "contextnumbers": {"group": [{"numberbeg": "500", "numberend": "599"},
                                                                          {"numberbeg": "1000", "numberend": "1999"}]}}
    assert add(system, body).status == 200
    key = PREFIX + "context:numbers:lowest"
    redis_cli(system, "HSET", key, "1000", "group:1", "505", "group:2")
    try:
        r = edit(system, "lowest", {"contextnumbers": {"group": [{"numberbeg": "600", "numberend": "699"}]}})
        assert_error(r, 400, "in_use", "contextnumbers.group")
        assert "number 505 " in r.json()["message"], r.json()
    finally:
        redis_cli(system, "DEL", key)
    assert call(system, "delete", id="lowest").status == 200
