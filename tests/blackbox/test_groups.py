"""pbx_settings/groups and callcenter settings/queues (contract §5.5, §5.6, §6): every act of both
resources, the element shape and JSON types, every validation rule with a failing case that
changes nothing, 404s, numbers reserved in their context (out of range, taken by a line or another
group, moved and released by edit, released by delete, seen by the extensions service), the context
reference, ETags and sum, the JSON bad-input corpus, concurrent adds through two ipbx-users workers,
and the cascade of a delete over memberships, dialactions and pickup rows (seeded through the
shared keys of services/ipbx-users/README.md)."""

import threading

import pytest

from conftest import ADMIN, ENTITY, JSON_SUITE, System, md5_hex, redis_cli

GROUPS = "/service/ipbx/json.php/restricted/pbx_settings/groups/"
GROUPS_PRIVATE = "/service/ipbx/json.php/private/pbx_settings/groups/"
QUEUES = "/callcenter/json.php/restricted/settings/queues/"
QUEUES_PRIVATE = "/callcenter/json.php/private/settings/queues/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
EXT = "/service/ipbx/json.php/restricted/system_management/extensions/"
PREFIX = "xws:"  # the default redis_prefix
N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []


class Kind:
    """What tells the two resources apart in the tests."""

    def __init__(self, kind, path, private, keys, base, other_base):
        self.kind = kind  # group / queue: number kind, owner prefix, key names
        self.path = path
        self.private = private
        self.keys = keys  # element keys, in order
        self.base = base  # first number of its range in context default (3 digits)
        self.other_base = other_base  # first number of its range in context other (4 digits)

    def num(self, i):
        return str(self.base + i)

    def __repr__(self):
        return self.kind


GROUP = Kind("group", GROUPS, GROUPS_PRIVATE, ["id", "name", "number", "context", "description"], 500, 5000)
QUEUE = Kind("queue", QUEUES, QUEUES_PRIVATE, ["id", "name", "displayname", "number", "context", "description"], 600,
             6000)
KINDS = [GROUP, QUEUE]


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        s.start_services({"xws-ipbx-lines": 1, "xws-ipbx-users": 2, "xws-extensions": 1}, ready=(GROUPS, QUEUES, LINES))
        assert s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        for body in (
            {"context": {"name": "default", "entity": "default"},
             "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"}],
                                "group": [{"numberbeg": "500", "numberend": "599"}],
                                "queue": [{"numberbeg": "600", "numberend": "699"}]}},
            # no user ranges: a line may take any number, among them the groups' and queues'
            {"context": {"name": "other", "entity": "default"},
             "contextnumbers": {"group": [{"numberbeg": "5000", "numberend": "5099"}],
                                "queue": [{"numberbeg": "6000", "numberend": "6099"}]}},
            {"context": {"name": "spare", "entity": "default"}},
        ):
            r = s.post(CONTEXT, {"act": "add"}, body=body, auth=ADMIN)
            assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def call(system, k, act, body=None, headers=None, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(k.path, q, auth=ADMIN, headers=headers)
    return system.post(k.path, q, body=body, auth=ADMIN, headers=headers)


def items(system, k):
    r = call(system, k, "list")
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return r.json()


def add_ok(system, k, **body):
    r = call(system, k, "add", body)
    assert (r.status, r.body) == (200, b""), r
    return max(e["id"] for e in items(system, k))


def view(system, k, gid):
    r = call(system, k, "view", id=gid)
    assert r.status == 200, r
    return r.json()


def numbers(system, context):
    out = redis_cli(system, "HGETALL", PREFIX + "context:numbers:" + context).split()
    return dict(zip(out[0::2], out[1::2]))


def numidx(system, context):
    return redis_cli(system, "ZRANGE", PREFIX + "context:numidx:" + context, 0, -1).split()


def context_refs(system, context):
    v = redis_cli(system, "HGET", PREFIX + "context:refs", context).strip()
    return int(v) if v else 0


def version(system, name):
    v = redis_cli(system, "GET", PREFIX + "ver:" + name).strip()
    return int(v) if v else 0


def clear(system):
    """Deletes every group and queue (and every line) through the API."""
    for k in KINDS:
        for e in items(system, k):
            assert call(system, k, "delete", id=e["id"]).status == 200
        assert items(system, k) == []
    r = system.get(LINES, {"act": "deleteall"}, auth=ADMIN)
    assert r.status in (200, 204), r


def snapshot(system):
    """Everything both resources show, and the numbers, references and indexes they keep."""
    out = []
    for k in KINDS:
        lst = call(system, k, "list")
        out += [lst.status, lst.body]
        for e in (lst.json() if lst.status == 200 else []):
            out.append(call(system, k, "view", id=e["id"]).body)
        out.append(redis_cli(system, "HGETALL", PREFIX + k.kind + ":name"))
        out.append(redis_cli(system, "GET", PREFIX + k.kind + ":seq"))
        out.append(version(system, k.kind + "s"))
    for c in ("default", "other", "spare"):
        out.append(sorted(numbers(system, c).items()))
        out.append(numidx(system, c))
        out.append(context_refs(system, c))
    return out


def assert_error(r, status, code, field):
    assert r.status == status, r
    err = r.json()
    assert set(err) == {"error", "field", "message"}, err
    assert (err["error"], err["field"]) == (code, field), err
    assert type(err["message"]) is str and err["message"]


def check_element(k, e):
    assert list(e) == k.keys, list(e)
    for key, v in e.items():
        assert type(v) is (int if key == "id" else str), (key, v)


def add_line(system, context, number):
    body = {"protocol": {"protocol": "sip", "context": context}, "linefeatures": {"number": number}}
    r = system.post(LINES, {"act": "add"}, body=body, auth=ADMIN)
    assert r.status == 200, r
    return max(e["id"] for e in system.get(LINES, {"act": "list"}, auth=ADMIN).json())


def free_numbers(system, k, context="default", number=None):
    q = {"act": "search", "context": context, "obj": k.kind}
    if number is not None:
        q["number"] = number
    r = system.get(EXT, q, auth=ADMIN)
    assert r.status in (200, 204), r
    return r.json() if r.status == 200 else []


# ---- empty store, shapes, defaults -------------------------------------------------------------------


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_empty_store(system, k):
    clear(system)
    for act in ("list", "", "bogus", "deleteall"):
        r = call(system, k, act)
        assert (r.status, r.body) == (204, b""), (act, r)
    assert call(system, k, "search", search="a").status == 204
    assert call(system, k, "search").status == 204
    assert system.get(k.private, {"act": "list"}).status == 204


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_add_list_view_shape(system, k):
    clear(system)
    refs = context_refs(system, "default")
    body = {"name": "sales", "number": k.num(10), "context": "default", "description": "first floor\nleft"}
    if k is QUEUE:
        body["displayname"] = "Sales team"
    gid = add_ok(system, k, **body)
    [e] = items(system, k)
    check_element(k, e)
    expected = dict(body, id=gid)
    assert e == expected
    v = view(system, k, gid)
    assert list(v) == k.keys + ["user"]
    assert v == dict(expected, user=False)
    assert numbers(system, "default") == {k.num(10): "%s:%s/%d" % (k.kind, k.kind, gid)}
    assert numidx(system, "default") == [k.num(10)]
    assert context_refs(system, "default") == refs + 1
    assert redis_cli(system, "HGET", PREFIX + k.kind + ":name", "sales").strip() == str(gid)
    # the same through the private path
    assert system.get(k.private, {"act": "view", "id": gid}).json() == v
    # no deleteall: like any unknown act it lists, and deletes nothing
    before = snapshot(system)
    for act in ("deleteall", "bogus", ""):
        r = call(system, k, act)
        assert (r.status, r.json()) == (200, [e]), act
    assert snapshot(system) == before


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_add_defaults(system, k):
    clear(system)
    gid = add_ok(system, k, name="plain", number=None, unknown="ignored")
    e = view(system, k, gid)
    expected = {"id": gid, "name": "plain", "number": "", "context": "default", "description": "", "user": False}
    if k is QUEUE:
        expected["displayname"] = "plain"  # default: the name
    assert e == expected
    assert numbers(system, "default") == {}
    # a number given as a JSON number is its decimal text; white space around values is trimmed
    gid2 = add_ok(system, k, name=" spaced ", number=int(k.num(1)), context=" default ")
    e2 = view(system, k, gid2)
    assert (e2["name"], e2["number"], e2["context"]) == ("spaced", k.num(1), "default")


def test_add_defaults_number_in_other_context(system):
    """A number is checked against the ranges of the group's own context."""
    clear(system)
    gid = add_ok(system, GROUP, name="far", number="5001", context="other")
    assert numbers(system, "other") == {"5001": "group:group/%d" % gid}
    assert_error(call(system, GROUP, "add", {"name": "far2", "number": "501", "context": "other"}), 400,
                 "out_of_range", "number")


def test_queue_displayname(system):
    clear(system)
    qid = add_ok(system, QUEUE, name="support", displayname="")
    assert view(system, QUEUE, qid)["displayname"] == "support"
    r = call(system, QUEUE, "edit", {"displayname": "Support desk"}, id=qid)
    assert r.status == 200, r
    assert view(system, QUEUE, qid)["displayname"] == "Support desk"
    assert call(system, QUEUE, "edit", {"displayname": "x" * 128}, id=qid).status == 200
    before = snapshot(system)
    assert_error(call(system, QUEUE, "edit", {"displayname": "x" * 129}, id=qid), 400, "too_long", "displayname")
    assert_error(call(system, QUEUE, "edit", {"displayname": "a\x01b"}, id=qid), 400, "invalid_value", "displayname")
    assert snapshot(system) == before
    # groups have no displayname: the key is ignored like any unknown key
    gid = add_ok(system, GROUP, name="nodisplay", displayname="Ignored")
    assert "displayname" not in view(system, GROUP, gid)


# ---- search, ETags, 404 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_search(system, k):
    clear(system)
    a = add_ok(system, k, name="alpha-team", number=k.num(21))
    b = add_ok(system, k, name="beta", number=k.num(32), description="alpha in description only")
    c = add_ok(system, k, name="gamma_alpha")

    def found(t):
        r = call(system, k, "search", search=t)
        if r.status == 204:
            assert r.body == b""
            return []
        assert r.status == 200, r
        for e in r.json():
            check_element(k, e)
        return [e["id"] for e in r.json()]

    assert found("alpha") == [a, c]
    assert found("ALPHA") == [a, c]
    assert found(k.num(21)) == [a]
    assert found(k.num(32)[1:]) == [b]
    assert found(str(k.base)[0]) == [a, b]  # every number starts with the range's first digit
    assert found("nothing") == []
    assert found("") == []


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_etag_and_sum(system, k):
    clear(system)
    gid = add_ok(system, k, name="tagged", number=k.num(40))
    for q in ({"act": "list"}, {"act": "view", "id": gid}, {"act": "search", "search": "tag"}):
        r = call(system, k, **q)
        assert r.status == 200, (q, r)
        tag = r.header("etag")
        assert tag and tag.startswith('"'), (q, r)
        r304 = call(system, k, headers={"If-None-Match": tag}, **q)
        assert (r304.status, r304.body) == (304, b""), q
        assert call(system, k, sum=md5_hex(r.body), **q).status == 304, q
        assert call(system, k, sum="0" * 32, **q).status == 200, q
    list_tag = call(system, k, "list").header("etag")
    view_tag = call(system, k, "view", id=gid).header("etag")
    # a write changes the tags
    assert call(system, k, "edit", {"description": "changed"}, id=gid).status == 200
    assert call(system, k, "list").header("etag") != list_tag
    assert call(system, k, "view", id=gid).header("etag") != view_tag
    # a membership written by the users side bumps ver:users: the view's tag changes
    view_tag = call(system, k, "view", id=gid).header("etag")
    redis_cli(system, "INCR", PREFIX + "ver:users")
    assert call(system, k, "view", id=gid).header("etag") != view_tag


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_unknown_ids_404(system, k):
    clear(system)
    gid = add_ok(system, k, name="exists")
    before = snapshot(system)
    for bad in (gid + 1, 0, "abc", "", "-1", "1.5"):
        for act, body in (("view", None), ("edit", {"description": "x"}), ("delete", None)):
            r = call(system, k, act, body, id=bad)
            assert r.status == 404, (act, bad, r)
    r = call(system, k, "view")
    assert r.status == 404
    assert snapshot(system) == before


# ---- refused adds and edits change nothing ---------------------------------------------------------------


def bad_adds(k):
    n = k.num
    rows = [
        ({}, "missing_field", "name"),
        ({"name": ""}, "too_short", "name"),
        ({"name": "Upper"}, "invalid_value", "name"),
        ({"name": "has space"}, "invalid_value", "name"),
        ({"name": "dot.name"}, "invalid_value", "name"),
        ({"name": "x" * 129}, "too_long", "name"),
        ({"name": ["a"]}, "invalid_value", "name"),
        ({"name": "taken"}, "already_exists", "name"),
        ({"name": "n1", "context": "nowhere"}, "unknown_reference", "context"),
        ({"name": "n1", "context": "bad context"}, "invalid_value", "context"),
        ({"name": "n1", "context": ""}, "too_short", "context"),
        ({"name": "n1", "number": "5x1"}, "invalid_value", "number"),
        ({"name": "n1", "number": "*51"}, "invalid_value", "number"),
        ({"name": "n1", "number": "1" * 41}, "too_long", "number"),
        ({"name": "n1", "number": True}, "invalid_value", "number"),
        ({"name": "n1", "number": "150"}, "out_of_range", "number"),  # a user number
        ({"name": "n1", "number": "0" + n(1)}, "out_of_range", "number"),  # 4 digits: not in a 3-digit range
        ({"name": "n1", "number": n(5)}, "number_taken", "number"),  # the other group/queue
        ({"name": "n1", "number": "5001" if k is GROUP else "6001", "context": "other"}, "number_taken", "number"),
        ({"name": "n1", "number": n(1), "context": "spare"}, "out_of_range", "number"),  # no range of the kind
        ({"name": "n1", "description": "d" * 1001}, "too_long", "description"),
        ({"name": "n1", "description": "bell\x07"}, "invalid_value", "description"),
        ({"name": "n1", "description": {"a": 1}}, "invalid_value", "description"),
    ]
    if k is QUEUE:
        rows.append(({"name": "n1", "displayname": "d" * 129}, "too_long", "displayname"))
    return [(k, b, c, f) for b, c, f in rows]


BAD_ADDS = bad_adds(GROUP) + bad_adds(QUEUE)


@pytest.fixture
def refusal_data(system):
    """One object of each kind: "taken" holds number base+5; a line holds 5001 and 6001 in context other."""
    clear(system)
    for k in KINDS:
        add_ok(system, k, name="taken", number=k.num(5))
    add_line(system, "other", "5001")
    add_line(system, "other", "6001")
    yield


@pytest.mark.parametrize("k,body,code,field", BAD_ADDS, ids=["%s-%d-%s" % (b[0], i, b[2]) for i, b in enumerate(BAD_ADDS)])
def test_add_refused_changes_nothing(system, refusal_data, k, body, code, field):
    before = snapshot(system)
    assert_error(call(system, k, "add", body), 400, code, field)
    assert snapshot(system) == before


@pytest.mark.parametrize("k", KINDS, ids=repr)
@pytest.mark.parametrize("raw,code", [(b"", "empty_body"), (b"[]", "not_an_object"), (b"\"x\"", "not_an_object"),
                                      (b"{\"name\":", "invalid_json"), (b"\xff", "invalid_json"),
                                      (b"{\"name\": \"a\xffb\"}", "invalid_json")])
def test_bad_bodies(system, refusal_data, k, raw, code):
    gid = items(system, k)[0]["id"]
    before = snapshot(system)
    for q in ({"act": "add"}, {"act": "edit", "id": gid}):
        r = system.post(k.path, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
        assert r.status == 400, (q, r)
        assert r.json()["error"] == code, r.json()
    assert snapshot(system) == before


def bad_edits(k):
    rows = [
        ({"name": ""}, "too_short", "name"),
        ({"name": "Caps"}, "invalid_value", "name"),
        ({"name": "taken"}, "already_exists", "name"),
        ({"context": "nowhere"}, "unknown_reference", "context"),
        ({"number": "150"}, "out_of_range", "number"),
        ({"number": k.num(5)}, "number_taken", "number"),
        ({"number": "abc"}, "invalid_value", "number"),
        ({"context": "spare"}, "out_of_range", "number"),  # its number has no range there
        ({"context": "other"}, "out_of_range", "number"),  # 3 digits, the ranges of other have 4
        ({"context": "other", "number": "5001" if k is GROUP else "6001"}, "number_taken", "number"),
        ({"description": "x" * 1001}, "too_long", "description"),
    ]
    return [(k, b, c, f) for b, c, f in rows]


BAD_EDITS = bad_edits(GROUP) + bad_edits(QUEUE)


@pytest.mark.parametrize("k,body,code,field", BAD_EDITS, ids=["%s-%d-%s" % (b[0], i, b[2]) for i, b in enumerate(BAD_EDITS)])
def test_edit_refused_changes_nothing(system, refusal_data, k, body, code, field):
    gid = add_ok(system, k, name="editme", number=k.num(6))
    before = snapshot(system)
    assert_error(call(system, k, "edit", body, id=gid), 400, code, field)
    assert snapshot(system) == before


# ---- edit ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_edit_merges_moves_and_releases_the_number(system, k):
    clear(system)
    gid = add_ok(system, k, name="mover", number=k.num(50), description="keep me")
    owner = "%s:%s/%d" % (k.kind, k.kind, gid)
    # partial: only the description changes
    assert call(system, k, "edit", {"description": "changed"}, id=gid).status == 200
    v = view(system, k, gid)
    assert (v["name"], v["number"], v["context"], v["description"]) == ("mover", k.num(50), "default", "changed")
    # the same number again is no conflict with itself
    assert call(system, k, "edit", {"number": k.num(50)}, id=gid).status == 200
    # a new number: the old one is released, the new one taken, in one step
    assert call(system, k, "edit", {"number": k.num(51)}, id=gid).status == 200
    assert numbers(system, "default") == {k.num(51): owner}
    assert numidx(system, "default") == [k.num(51)]
    assert view(system, k, gid)["description"] == "changed"
    # the released number is free for another object at once
    other = add_ok(system, k, name="taker", number=k.num(50))
    assert numbers(system, "default")[k.num(50)] == "%s:%s/%d" % (k.kind, k.kind, other)
    # rename: the name index moves
    assert call(system, k, "edit", {"name": "renamed"}, id=gid).status == 200
    names = redis_cli(system, "HGETALL", PREFIX + k.kind + ":name").split()
    assert dict(zip(names[0::2], names[1::2])) == {"renamed": str(gid), "taker": str(other)}
    assert add_ok(system, k, name="mover") > other  # the old name is free
    # another context: the number and the reference move
    refs_default, refs_other = context_refs(system, "default"), context_refs(system, "other")
    assert call(system, k, "edit", {"context": "other", "number": str(k.other_base + 7)}, id=gid).status == 200
    assert k.num(51) not in numbers(system, "default")
    assert numbers(system, "other") == {str(k.other_base + 7): owner}
    assert (context_refs(system, "default"), context_refs(system, "other")) == (refs_default - 1, refs_other + 1)
    # no number at all
    assert call(system, k, "edit", {"number": ""}, id=gid).status == 200
    assert numbers(system, "other") == {} and numidx(system, "other") == []
    assert view(system, k, gid)["number"] == ""
    # null counts as absent: nothing changes
    before = view(system, k, gid)
    assert call(system, k, "edit", {"number": None, "name": None}, id=gid).status == 200
    assert view(system, k, gid) == before


# ---- delete, context reference, extensions -----------------------------------------------------------


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_delete_releases_everything(system, k):
    clear(system)
    refs = context_refs(system, "default")
    gid = add_ok(system, k, name="doomed", number=k.num(60))
    assert context_refs(system, "default") == refs + 1
    ver = version(system, k.kind + "s")
    r = call(system, k, "delete", id=gid)
    assert (r.status, r.body) == (200, b"")
    assert version(system, k.kind + "s") > ver
    assert call(system, k, "view", id=gid).status == 404
    assert numbers(system, "default") == {} and numidx(system, "default") == []
    assert context_refs(system, "default") == refs
    assert redis_cli(system, "HLEN", PREFIX + k.kind + ":name").strip() == "0"
    assert call(system, k, "delete", id=gid).status == 404
    # ids are never reused; the name and the number are free again
    assert add_ok(system, k, name="doomed", number=k.num(60)) == gid + 1


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_context_in_use_cannot_be_deleted(system, k):
    clear(system)
    assert context_refs(system, "spare") == 0
    gid = add_ok(system, k, name="inspare", context="spare")
    assert_error(system.get(CONTEXT, {"act": "delete", "id": "spare"}, auth=ADMIN), 405, "in_use", "id")
    assert system.get(CONTEXT, {"act": "view", "id": "spare"}, auth=ADMIN).status == 200
    # moving it away frees the context
    assert call(system, k, "edit", {"context": "default"}, id=gid).status == 200
    assert context_refs(system, "spare") == 0
    assert call(system, k, "edit", {"context": "spare"}, id=gid).status == 200
    assert call(system, k, "delete", id=gid).status == 200
    assert context_refs(system, "spare") == 0
    # the context can go now; it is added back for the other tests
    assert system.get(CONTEXT, {"act": "delete", "id": "spare"}, auth=ADMIN).status == 200
    r = system.post(CONTEXT, {"act": "add"}, body={"context": {"name": "spare", "entity": "default"}}, auth=ADMIN)
    assert r.status == 200


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_context_ranges_may_not_orphan_a_number(system, k):
    clear(system)
    add_ok(system, k, name="ranged", number=k.num(90))
    narrow = {"context": {"name": "default"},
              "contextnumbers": {k.kind: [{"numberbeg": k.num(0), "numberend": k.num(50)}]}}
    r = system.post(CONTEXT, {"act": "edit", "id": "default"}, body=narrow, auth=ADMIN)
    assert r.status == 400, r
    assert system.get(CONTEXT, {"act": "view", "id": "default"}, auth=ADMIN).json()["contextnumbers"][k.kind] == [
        {"numberbeg": k.num(0), "numberend": k.num(99)}]


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_numbers_seen_by_extensions(system, k):
    clear(system)
    prefix = k.num(7)[:2]  # e.g. "50": 500-509
    all_free = free_numbers(system, k, number=prefix)
    assert int(k.num(7)) in all_free
    gid = add_ok(system, k, name="ext", number=k.num(7))
    assert int(k.num(7)) not in free_numbers(system, k, number=prefix)
    assert call(system, k, "edit", {"number": k.num(8)}, id=gid).status == 200
    now = free_numbers(system, k, number=prefix)
    assert int(k.num(7)) in now and int(k.num(8)) not in now
    assert call(system, k, "delete", id=gid).status == 200
    assert free_numbers(system, k, number=prefix) == all_free


# ---- the cascade of a delete ---------------------------------------------------------------------------------


def seed_membership(system, k, uid, gid, opts):
    """What the users side records for a membership (README: the shared layout)."""
    members = redis_cli(system, "HGET", PREFIX + k.kind + ":members", gid).strip()
    redis_cli(system, "HSET", PREFIX + k.kind + ":members", gid, ",".join(filter(None, [members, str(uid)])))
    # user:<kind>s: uid -> msgpack map {gid: opts}, built with cmsgpack inside redis
    redis_cli(system, "EVAL",
              "local m = {} local cur = redis.call('HGET', KEYS[1], ARGV[1]) "
              "if cur then m = cmsgpack.unpack(cur) end "
              "m[ARGV[2]] = cjson.decode(ARGV[3]) "
              "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(m)) return 1",
              1, PREFIX + "user:" + k.kind + "s", uid, gid, opts)


def hget_json(system, key, field):
    """A msgpack hash field decoded to JSON by redis itself ("" when absent)."""
    return redis_cli(system, "EVAL",
                     "local v = redis.call('HGET', KEYS[1], ARGV[1]) if not v then return '' end "
                     "return cjson.encode(cmsgpack.unpack(v))", 1, key, field).strip()


def hset_msgpack(system, key, field, json_text):
    redis_cli(system, "EVAL", "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(cjson.decode(ARGV[2]))) return 1",
              1, key, field, json_text)


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_view_shows_members(system, k):
    clear(system)
    gid = add_ok(system, k, name="withmembers")
    seed_membership(system, k, 7, gid, '{"chantype": "default", "call-limit": 0}')
    seed_membership(system, k, 3, gid, '{"chantype": "local", "call-limit": 2}')
    assert view(system, k, gid)["user"] == [7, 3]


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_delete_cascades(system, k):
    import json

    clear(system)
    gid = add_ok(system, k, name="target", number=k.num(70))
    keep = add_ok(system, k, name="bystander")
    # memberships: user 7 in both, user 8 in the target only
    seed_membership(system, k, 7, gid, '{"chantype": "default", "call-limit": 0}')
    seed_membership(system, k, 7, keep, '{"chantype": "local", "call-limit": 1}')
    seed_membership(system, k, 8, gid, '{"chantype": "default", "call-limit": 3}')
    # dialactions: user 7's noanswer and busy point at the target, chanunavail at the bystander
    target = {"actiontype": k.kind, "action": "", "actionarg1": str(gid), "actionarg2": ""}
    other = {"actiontype": k.kind, "action": "", "actionarg1": str(keep), "actionarg2": ""}
    hset_msgpack(system, PREFIX + "user:dialaction", 7,
                 json.dumps({"noanswer": target, "busy": target, "chanunavail": other}))
    redis_cli(system, "HSET", PREFIX + "dialaction:target", "%s:%d" % (k.kind, gid), "7")
    redis_cli(system, "HSET", PREFIX + "dialaction:target", "%s:%d" % (k.kind, keep), "7")
    # pickup 0 names the target and user 7; pickup 1 only the target
    rows0 = [{"category": "member", "membertype": k.kind, "memberid": gid},
             {"category": "pickup", "membertype": "user", "memberid": 7}]
    rows1 = [{"category": "pickup", "membertype": k.kind, "memberid": gid}]
    hset_msgpack(system, PREFIX + "pickup:rows", 0, json.dumps(rows0))
    hset_msgpack(system, PREFIX + "pickup:rows", 1, json.dumps(rows1))
    redis_cli(system, "HSET", PREFIX + "pickup:target", "%s:%d" % (k.kind, gid), "0,1")
    redis_cli(system, "HSET", PREFIX + "pickup:target", "user:7", "0")
    assert view(system, k, gid)["user"] == [7, 8]

    vers = {n: version(system, n) for n in ("pickup", "users", k.kind + "s")}
    assert call(system, k, "delete", id=gid).status == 200
    for n, v in vers.items():
        assert version(system, n) > v, n
    # memberships: the target's are gone, the bystander's stay
    assert redis_cli(system, "HEXISTS", PREFIX + k.kind + ":members", gid).strip() == "0"
    assert redis_cli(system, "HGET", PREFIX + k.kind + ":members", keep).strip() == "7"
    assert json.loads(hget_json(system, PREFIX + "user:" + k.kind + "s", 7)) == {
        str(keep): {"chantype": "local", "call-limit": 1}}
    assert hget_json(system, PREFIX + "user:" + k.kind + "s", 8) == ""
    assert view(system, k, keep)["user"] == [7]
    # dialactions pointing at the target are none now; the other one is kept
    none = {"actiontype": "none", "action": "", "actionarg1": "", "actionarg2": ""}
    assert json.loads(hget_json(system, PREFIX + "user:dialaction", 7)) == {
        "noanswer": none, "busy": none, "chanunavail": other}
    assert redis_cli(system, "HEXISTS", PREFIX + "dialaction:target", "%s:%d" % (k.kind, gid)).strip() == "0"
    assert redis_cli(system, "HGET", PREFIX + "dialaction:target", "%s:%d" % (k.kind, keep)).strip() == "7"
    # pickup rows naming the target are gone, the others kept
    assert json.loads(hget_json(system, PREFIX + "pickup:rows", 0)) == [rows0[1]]
    assert hget_json(system, PREFIX + "pickup:rows", 1) in ("{}", "[]")  # an empty table
    assert redis_cli(system, "HEXISTS", PREFIX + "pickup:target", "%s:%d" % (k.kind, gid)).strip() == "0"
    assert redis_cli(system, "HGET", PREFIX + "pickup:target", "user:7").strip() == "0"
    # and the object itself: record, number
    assert call(system, k, "view", id=gid).status == 404
    assert k.num(70) not in numbers(system, "default")
    for key in ("user:dialaction", "dialaction:target", "pickup:rows", "pickup:target", "user:groups", "user:queues",
                "group:members", "queue:members"):
        redis_cli(system, "DEL", PREFIX + key)


def test_group_and_queue_ids_are_separate(system):
    """Groups and queues count their ids each from 1; the cascade of one kind leaves the other alone."""
    clear(system)
    g = add_ok(system, GROUP, name="same")
    q = add_ok(system, QUEUE, name="same")  # names are unique per kind
    seed_membership(system, GROUP, 5, g, '{"chantype": "default", "call-limit": 0}')
    seed_membership(system, QUEUE, 5, q, '{"chantype": "default", "call-limit": 0, "penalty": 0}')
    assert call(system, GROUP, "delete", id=g).status == 200
    assert view(system, QUEUE, q)["user"] == [5]
    assert call(system, QUEUE, "delete", id=q).status == 200
    for key in ("user:groups", "user:queues", "group:members", "queue:members"):
        assert redis_cli(system, "HLEN", PREFIX + key).strip() == "0", key


# ---- bad input corpus, concurrency -----------------------------------------------------------------------


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_json_corpus_n_files_refused(system, k):
    clear(system)
    gid = add_ok(system, k, name="corpus", number=k.num(80))
    before = snapshot(system)
    for path in N_FILES:
        raw = path.read_bytes()
        for q in ({"act": "add"}, {"act": "edit", "id": gid}):
            r = system.post(k.path, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path.name, q, r)
            assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    assert snapshot(system) == before


def users_workers(system):
    return [p for p in system.workers if "ipbx-users" in p.name]


def adds_served(system, k):
    """The number of add requests of kind k each ipbx-users worker has answered (from its -v log)."""
    return [p.text().count(" %ss/add " % k.kind) for p in users_workers(system)]


def race(system, k, bodies):
    """Sends the adds at once; checks that both ipbx-users workers answered some of them."""
    served = adds_served(system, k)
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(bodies))

    def one(body):
        barrier.wait()
        r = call(system, k, "add", body)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    now = adds_served(system, k)
    assert len(now) == 2 and all(n > s for n, s in zip(now, served)), (served, now)
    return results


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_concurrent_adds_of_one_number(system, k):
    clear(system)
    results = race(system, k, [{"name": "racer%d" % i, "number": k.num(85)} for i in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "number_taken", "number")
    [e] = items(system, k)
    assert e["number"] == k.num(85)
    assert numbers(system, "default") == {k.num(85): "%s:%s/%d" % (k.kind, k.kind, e["id"])}
    assert [p.alive() for p in users_workers(system)] == [True, True]


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_concurrent_adds_of_one_name(system, k):
    clear(system)
    refs = context_refs(system, "default")
    results = race(system, k, [{"name": "samename", "number": k.num(i)} for i in range(32)])
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "already_exists", "name")
    [e] = items(system, k)
    assert e["name"] == "samename"
    assert list(numbers(system, "default")) == [e["number"]]
    assert context_refs(system, "default") == refs + 1


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_concurrent_edits_to_one_number(system, k):
    """32 objects without a number, each edited at once to take the same one: exactly one wins."""
    clear(system)
    ids = [add_ok(system, k, name="editor%d" % i) for i in range(32)]
    served = [p.text().count(" %ss/edit " % k.kind) for p in users_workers(system)]
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(ids))

    def one(gid):
        barrier.wait()
        r = call(system, k, "edit", {"number": k.num(95)}, id=gid)
        with lock:
            results.append((gid, r))

    threads = [threading.Thread(target=one, args=(gid,)) for gid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    now = [p.text().count(" %ss/edit " % k.kind) for p in users_workers(system)]
    assert all(n > s for n, s in zip(now, served)), (served, now)
    assert sorted(r.status for _, r in results) == [200] + [400] * 31
    [winner] = [gid for gid, r in results if r.status == 200]
    for _, r in results:
        if r.status == 400:
            assert_error(r, 400, "number_taken", "number")
    assert [e["id"] for e in items(system, k) if e["number"]] == [winner]
    assert numbers(system, "default") == {k.num(95): "%s:%s/%d" % (k.kind, k.kind, winner)}


@pytest.mark.parametrize("k", KINDS, ids=repr)
def test_add_ignores_server_fields(system, k):
    clear(system)
    gid = add_ok(system, k, name="plainid", id=999, user=[1, 2])
    assert gid != 999
    assert view(system, k, gid)["user"] is False
    assert call(system, k, "edit", {"id": 998}, id=gid).status == 200
    assert call(system, k, "view", id=998).status == 404
    assert view(system, k, gid)["id"] == gid
