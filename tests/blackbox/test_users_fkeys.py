"""pbx_settings/users: the function keys (contract §5.3 phonefunckey) and the callerid of a user's lines.

Function keys: fknum 1-999 unique per user, type one of the eight, supervision a flag, label, and a typeval of
the form of its type; a key on a group or a queue names an existing one; keys naming a user, a group or a
queue are kept in funckey:target so that the delete of that object removes them in the same atomic call.
Each refused key is a 400 naming the cell and changes nothing. Callerid: the lines whose callerid is still
the one the user's names give follow a rename (seen through pbx_settings/lines), others keep theirs. Races
with several workers: an edit never resurrects a key that a delete removed; a rename and an explicit callerid
set through the lines resource end the same way in every order."""

import threading

import pytest

from conftest import ADMIN, ENTITY, System, redis_cli

USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
GROUPS = "/service/ipbx/json.php/private/pbx_settings/groups/"
QUEUES = "/callcenter/json.php/private/settings/queues/"
PREFIX = "xws:"


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        s.start_services({"xws-ipbx-lines": 1, "xws-ipbx-users": 2}, ready=(USERS, LINES))
        assert s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        r = s.post(CONTEXT, {"act": "add"}, body={
            "context": {"name": "default", "entity": "default"},
            "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"}],
                               "group": [{"numberbeg": "500", "numberend": "599"}],
                               "queue": [{"numberbeg": "600", "numberend": "699"}]}}, auth=ADMIN)
        assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def hgetall(system, key):
    out = redis_cli(system, "HGETALL", PREFIX + key).splitlines()
    return dict(zip(out[0::2], out[1::2]))


def call(system, act, body=None, path=USERS, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(path, q, auth=ADMIN)
    return system.post(path, q, body=body, auth=ADMIN)


def add_ok(system, body):
    r = call(system, "add", body)
    assert r.status == 200, r
    return int(r.json())


def view(system, uid):
    r = call(system, "view", id=uid)
    assert r.status == 200, r
    return r.json()


def object_id(system, path, name):
    r = call(system, "list", path=path)
    assert r.status == 200, r
    [oid] = [e["id"] for e in r.json() if e["name"] == name]
    return oid


def make(system, path, name):
    r = call(system, "add", {"name": name, "context": "default"}, path=path)
    assert r.status == 200, r
    return object_id(system, path, name)


def remove(system, path, oid):
    r = call(system, "delete", path=path, id=oid)
    assert r.status == 200, r


def clear(system):
    for path in (USERS, LINES):
        r = call(system, "deleteall", path=path)
        assert r.status in (200, 204), r
    for path in (GROUPS, QUEUES):
        r = call(system, "list", path=path)
        assert r.status in (200, 204), r
        for e in (r.json() if r.status == 200 else []):
            remove(system, path, e["id"])
    assert hgetall(system, "funckey:target") == {}


def keys(*rows):
    """phonefunckey columns from rows (fknum, type, typeval)"""
    return {"fknum": [str(r[0]) for r in rows], "type": [r[1] for r in rows], "typeval": [r[2] for r in rows]}


def fk_of(system, uid):
    return [(k["fknum"], k["type"], k["typeval"]) for k in (view(system, uid)["phonefunckey"] or [])]


def snapshot(system):
    r = call(system, "list")
    out = [r.status, r.body]
    for u in (r.json() if r.status == 200 else []):
        out.append(view(system, u["id"]))
    for key in ("user:extra", "funckey:target", "user:data", "line:data"):
        out.append(hgetall(system, key))
    out.append(redis_cli(system, "GET", PREFIX + "user:seq"))
    return out


def assert_error(r, code, field):
    assert r.status == 400, r
    e = r.json()
    assert (e["error"], e["field"]) == (code, field), e
    assert isinstance(e["message"], str) and e["message"]


def line_view(system, lid):
    r = call(system, "view", path=LINES, id=lid)
    assert r.status == 200, r
    return r.json()


def callerid(system, lid):
    return line_view(system, lid)["protocol"]["callerid"]


def user_lines(system, uid):
    return [l["id"] for l in (view(system, uid)["linefeatures"] or [])]


# ---- function keys: every rule -----------------------------------------------------------------------

# (phonefunckey, error code, field); "G" stands for an existing group id, "Q" for an existing queue id
BAD = [
    (keys((1, "user", "")), "missing_field", "phonefunckey.typeval[0]"),
    ({"fknum": ["1"], "type": ["group"]}, "missing_field", "phonefunckey.typeval[0]"),
    (keys((1, "user", "abc")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "user", "0")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "user", "012")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "user", "1234567890")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "group", "x")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "group", "99999")), "unknown_reference", "phonefunckey.typeval[0]"),
    (keys((1, "queue", "99999")), "unknown_reference", "phonefunckey.typeval[0]"),
    (keys((1, "group", "G"), (2, "queue", "Q"), (3, "group", "Q99")), "unknown_reference", "phonefunckey.typeval[2]"),
    (keys((1, "queue", "G99")), "unknown_reference", "phonefunckey.typeval[0]"),
    (keys((1, "meetme", "3a")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "extension", "extenfeatures-")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "extension", "extenfeatures-VMUSERMSG")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "extension", "12a")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "extension", "1" * 41)), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "custom", "*1 0")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "custom", "")), "missing_field", "phonefunckey.typeval[0]"),
    (keys((1, "custom", "x" * 256)), "too_long", "phonefunckey.typeval[0]"),
    (keys((1, "bsfilter", "boss")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((1, "agent", "-1")), "invalid_value", "phonefunckey.typeval[0]"),
    (keys((0, "user", "1")), "out_of_range", "phonefunckey.fknum[0]"),
    (keys((1000, "user", "1")), "out_of_range", "phonefunckey.fknum[0]"),
    (keys((7, "user", "1"), (7, "custom", "*10")), "already_exists", "phonefunckey.fknum[1]"),
    (keys((1, "phone", "1")), "invalid_value", "phonefunckey.type[0]"),
    ({"fknum": ["1"], "typeval": ["1"]}, "missing_field", "phonefunckey.type[0]"),
    ({"type": ["user"], "typeval": ["1"]}, "missing_field", "phonefunckey.fknum[0]"),
    (dict(keys((1, "user", "1")), supervision=["maybe"]), "invalid_value", "phonefunckey.supervision[0]"),
    (dict(keys((1, "user", "1")), label=["x" * 33]), "too_long", "phonefunckey.label[0]"),
    ("13", "invalid_value", "phonefunckey"),
]


def resolve(fk, g, q):
    if not isinstance(fk, dict) or "typeval" not in fk:
        return fk
    vals = []
    for v in fk["typeval"]:
        v = {"G": str(g), "Q": str(q), "G99": str(g + 99), "Q99": str(q + 99)}.get(v, v)
        vals.append(v)
    return dict(fk, typeval=vals)


@pytest.mark.parametrize("fk,code,field", BAD, ids=["%s:%s:%d" % (b[2], b[1], i) for i, b in enumerate(BAD)])
def test_bad_function_key_refused_on_add_and_edit_changing_nothing(system, fk, code, field):
    clear(system)
    g, q = make(system, GROUPS, "fkg"), make(system, QUEUES, "fkq")
    fk = resolve(fk, g, q)
    uid = add_ok(system, {"userfeatures": {"firstname": "Keep"},
                          "phonefunckey": keys((5, "group", str(g)), (6, "queue", str(q)), (8, "custom", "*10"))})
    before = snapshot(system)
    assert_error(call(system, "add", {"userfeatures": {"firstname": "New"}, "phonefunckey": fk}), code, field)
    assert snapshot(system) == before
    assert_error(call(system, "edit", {"userfeatures": {"lastname": "Changed"}, "phonefunckey": fk}, id=uid), code,
                 field)
    assert snapshot(system) == before


def test_every_type_with_a_good_typeval_is_kept(system):
    clear(system)
    g, q = make(system, GROUPS, "fkg"), make(system, QUEUES, "fkq")
    other = add_ok(system, {"userfeatures": {"firstname": "Other"}})
    fk = {"fknum": ["1", "2", "3", "4", "5", "6", "7", "8", "9", 10],
          "type": ["user", "group", "queue", "meetme", "extension", "extension", "custom", "bsfilter", "agent",
                   "user"],
          "typeval": [str(other), str(g), q, "3", "extenfeatures-vmusermsg", "*98", " *10 ", "12", "4", "41"],
          "supervision": ["1", "0", True, "no", "0", False, "yes", "0", "0", "1"],
          "label": ["a", "", "", "", "", "", "", "", "", "b"]}
    uid = add_ok(system, {"userfeatures": {"firstname": "Keys"}, "phonefunckey": fk})
    got = view(system, uid)["phonefunckey"]
    assert [(k["fknum"], k["type"], k["typeval"], k["supervision"]) for k in got] == [
        (1, "user", str(other), True), (2, "group", str(g), False), (3, "queue", str(q), True),
        (4, "meetme", "3", False), (5, "extension", "extenfeatures-vmusermsg", False), (6, "extension", "*98", False),
        (7, "custom", "*10", True), (8, "bsfilter", "12", False), (9, "agent", "4", False), (10, "user", "41", True)]
    # the references are indexed, the other types are not
    assert hgetall(system, "funckey:target") == {
        "user:%d" % other: str(uid), "group:%d" % g: str(uid), "queue:%d" % q: str(uid), "user:41": str(uid)}
    # an edit without phonefunckey keeps them, the same keys again change nothing
    assert call(system, "edit", {"userfeatures": {"lastname": "Still"}}, id=uid).status == 200
    assert view(system, uid)["phonefunckey"] == got
    assert call(system, "edit", {"phonefunckey": fk}, id=uid).status == 200
    assert view(system, uid)["phonefunckey"] == got


def test_edit_moves_the_references_and_false_drops_them(system):
    clear(system)
    g1, g2 = make(system, GROUPS, "fkg1"), make(system, GROUPS, "fkg2")
    a = add_ok(system, {"userfeatures": {"firstname": "A"}, "phonefunckey": keys((1, "group", str(g1)))})
    b = add_ok(system, {"userfeatures": {"firstname": "B"}, "phonefunckey": keys((1, "group", str(g1)))})
    assert hgetall(system, "funckey:target") == {"group:%d" % g1: "%d,%d" % (a, b)}
    assert call(system, "edit", {"phonefunckey": keys((2, "group", str(g2)), (3, "user", str(b)))}, id=a).status == 200
    assert hgetall(system, "funckey:target") == {"group:%d" % g1: str(b), "group:%d" % g2: str(a), "user:%d" % b: str(a)}
    assert call(system, "edit", {"phonefunckey": False}, id=a).status == 200
    assert view(system, a)["phonefunckey"] is False
    assert hgetall(system, "funckey:target") == {"group:%d" % g1: str(b)}
    # an entry missing (a store written before the index existed) comes back with the next write of the user
    redis_cli(system, "HDEL", PREFIX + "funckey:target", "group:%d" % g1)
    assert call(system, "edit", {"userfeatures": {"lastname": "B2"}}, id=b).status == 200
    assert hgetall(system, "funckey:target") == {"group:%d" % g1: str(b)}


def test_delete_of_a_group_a_queue_or_a_user_removes_the_keys_naming_it(system):
    clear(system)
    g, q = make(system, GROUPS, "fkg"), make(system, QUEUES, "fkq")
    b = add_ok(system, {"userfeatures": {"firstname": "Bee"}, "phonefunckey": keys((4, "group", str(g)))})
    a = add_ok(system, {"userfeatures": {"firstname": "Ay"},
                        "phonefunckey": keys((1, "group", str(g)), (2, "queue", str(q)), (3, "user", str(b)),
                                             (4, "custom", "*10"))})
    before = call(system, "view", id=a).header("ETag")
    remove(system, GROUPS, g)
    assert fk_of(system, a) == [(2, "queue", str(q)), (3, "user", str(b)), (4, "custom", "*10")]
    assert view(system, b)["phonefunckey"] is False
    assert call(system, "view", id=a).header("ETag") != before
    remove(system, QUEUES, q)
    assert fk_of(system, a) == [(3, "user", str(b)), (4, "custom", "*10")]
    assert call(system, "delete", id=b).status == 200
    assert fk_of(system, a) == [(4, "custom", "*10")]
    assert hgetall(system, "funckey:target") == {}
    # a user's own keys go with it, and their index entries too
    c = add_ok(system, {"userfeatures": {"firstname": "Cee"}, "phonefunckey": keys((1, "user", str(a)))})
    assert hgetall(system, "funckey:target") == {"user:%d" % a: str(c)}
    assert call(system, "delete", id=c).status == 200
    assert hgetall(system, "funckey:target") == {} and str(c) not in hgetall(system, "user:extra")
    # a key on a user that does not exist yet (the document's example names user 41) goes when it is deleted
    d = add_ok(system, {"userfeatures": {"firstname": "Dee"}, "phonefunckey": keys((1, "user", str(c + 2)))})
    e = add_ok(system, {"userfeatures": {"firstname": "Eee"}})
    assert e == c + 2 and fk_of(system, d) == [(1, "user", str(e))]
    assert call(system, "delete", id=e).status == 200
    assert view(system, d)["phonefunckey"] is False
    # deleteall leaves no index entry
    add_ok(system, {"userfeatures": {"firstname": "F"}, "phonefunckey": keys((1, "user", str(d)))})
    assert call(system, "deleteall").status == 200
    assert hgetall(system, "funckey:target") == {} and hgetall(system, "user:extra") == {}


def test_racing_edits_never_keep_a_key_on_a_deleted_group(system):
    """An edit that read the user before a group delete removed one of its keys must not write it back: the
    write compares user:extra with what it read and reads again. Each round: one thread deletes the group,
    two others edit the user (one without phonefunckey, one adding a key on the group)."""
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Race"}})
    for i in range(12):
        g = make(system, GROUPS, "race%d" % i)
        assert call(system, "edit", {"phonefunckey": keys((1, "group", str(g)), (2, "custom", "*1"))},
                    id=uid).status == 200
        out = {}

        def run(name, f):
            out[name] = f()

        threads = [
            threading.Thread(target=run, args=("del", lambda: call(system, "delete", path=GROUPS, id=g))),
            threading.Thread(target=run, args=("rename", lambda: call(
                system, "edit", {"userfeatures": {"lastname": "R%d" % i}}, id=uid))),
            threading.Thread(target=run, args=("add", lambda: call(
                system, "edit", {"phonefunckey": keys((1, "group", str(g)), (2, "custom", "*1"), (3, "group", str(g)))},
                id=uid))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out["del"].status == 200, out["del"]
        assert out["rename"].status == 200, out["rename"]
        # the key adder either came first (its keys then went with the group) or found the group gone
        if out["add"].status == 400:
            assert_error(out["add"], "unknown_reference", "phonefunckey.typeval[0]")
        else:
            assert out["add"].status == 200, out["add"]
        assert fk_of(system, uid) == [(2, "custom", "*1")], i
        assert hgetall(system, "funckey:target") == {}


# ---- the callerid of the user's lines follows its names ----------------------------------------------


def test_rename_rewrites_the_callerid_of_the_lines_that_follow_the_names(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "John", "lastname": "Doe"},
                          "linefeatures": {"protocol": ["sip", "iax", "sip", "custom"],
                                           "context": ["default"] * 4, "number": ["150", "", "151", ""],
                                           "name": ["", "", "", "Local/9@x"]}})
    sip, iax, explicit, custom = user_lines(system, uid)
    assert (callerid(system, sip), callerid(system, iax)) == ('"John Doe" <150>', '"John Doe"')
    # a callerid set on purpose through the lines resource is kept by a rename
    r = call(system, "edit", {"protocol": {"callerid": "Reception <151>"}}, path=LINES, id=explicit)
    assert r.status == 200, r
    # a free line with an empty callerid, attached by the rename's edit, keeps it empty
    r = call(system, "add", {"protocol": {"protocol": "sip", "context": "default", "name": "freeline"}}, path=LINES)
    assert r.status == 200, r
    free = max(l["id"] for l in call(system, "list", path=LINES).json())
    etag = call(system, "view", path=LINES, id=sip).header("ETag")
    custom_protocol = line_view(system, custom)["protocol"]
    r = call(system, "edit", {"userfeatures": {"firstname": "Jane"}}, id=uid)
    assert r.status == 200, r
    assert (callerid(system, sip), callerid(system, iax)) == ('"Jane Doe" <150>', '"Jane Doe"')
    assert callerid(system, explicit) == '"Reception" <151>'
    assert line_view(system, custom)["protocol"] == custom_protocol
    assert call(system, "view", path=LINES, id=sip).header("ETag") != etag
    listed = {l["id"]: l for l in call(system, "list", path=LINES).json()}
    assert (listed[sip]["callerid"], listed[sip]["useridentity"]) == ('"Jane Doe" <150>', "Jane Doe")
    # with a new line set in the same edit: kept lines follow, new lines take the new names, a renumbered line
    # takes its new number, the attached free line keeps its empty callerid
    r = call(system, "edit", {"userfeatures": {"lastname": "Roe"},
                              "linefeatures": {"id": [sip, iax, explicit, "", free], "number": ["152", "", "", "153", ""],
                                               "protocol": ["", "", "", "sip", ""],
                                               "context": ["", "", "", "default", ""]}}, id=uid)
    assert r.status == 200, r
    ids = user_lines(system, uid)
    assert custom not in ids and len(ids) == 5
    new = [i for i in ids if i not in (sip, iax, explicit, free)][0]
    assert callerid(system, sip) == '"Jane Roe" <152>'
    assert callerid(system, iax) == '"Jane Roe"'
    assert callerid(system, explicit) == '"Reception" <151>'
    assert callerid(system, new) == '"Jane Roe" <153>'
    assert callerid(system, free) == ""
    # the names unchanged: nothing is rewritten, even a callerid that no longer follows
    r = call(system, "edit", {"protocol": {"callerid": "\"Jane Roe\" <999>"}}, path=LINES, id=iax)
    assert r.status == 200, r
    assert call(system, "edit", {"userfeatures": {"mobilephonenumber": "123"}}, id=uid).status == 200
    assert callerid(system, iax) == '"Jane Roe" <999>'
    # a refused rename changes no callerid
    before = [callerid(system, i) for i in ids]
    assert_error(call(system, "edit", {"userfeatures": {"firstname": "Zed", "ringseconds": "7"}}, id=uid),
                 "out_of_range", "userfeatures.ringseconds")
    assert [callerid(system, i) for i in ids] == before


def test_rename_racing_an_explicit_callerid_ends_with_the_explicit_one(system):
    """A rename and a callerid set through the lines resource, concurrently, through several workers: whatever
    the order, the line ends with the explicit callerid (set after the rename, it replaces the followed one;
    set before, the rename leaves it), and the user with the new names."""
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Ann", "lastname": "Lee"},
                          "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["160"]}})
    [lid] = user_lines(system, uid)
    for i in range(10):
        first = "Ann%d" % i
        assert call(system, "edit", {"protocol": {"callerid": '"%s Lee" <160>' % ("Ann%d" % (i - 1) if i else "Ann")}},
                    path=LINES, id=lid).status == 200
        out = {}

        def run(name, f):
            out[name] = f()

        threads = [
            threading.Thread(target=run, args=("rename", lambda: call(
                system, "edit", {"userfeatures": {"firstname": first}}, id=uid))),
            threading.Thread(target=run, args=("line", lambda: call(
                system, "edit", {"protocol": {"callerid": "Desk %d <160>" % i}}, path=LINES, id=lid))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out["rename"].status == 200 and out["line"].status == 200, out
        assert callerid(system, lid) == '"Desk %d" <160>' % i
        assert view(system, uid)["userfeatures"]["firstname"] == first
