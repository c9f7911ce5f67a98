"""pbx_settings/users with the objects a user refers to (contract §5.3, §5.4-5.6, §6): dialactions pointing at
groups and queues, group and queue memberships (group-select/group, queue-select/queue) and their view shape,
the pickups naming a user, the document's full example verbatim, and the cascade a user delete runs (pickup
rows naming it go, dialactions of others pointing at it become none, its memberships go) with the reverse
indexes left exact. Groups, queues and pickups are created through their own resources."""

import json
import threading

import pytest

from conftest import ADMIN, ENTITY, System, redis_cli

USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
GROUPS = "/service/ipbx/json.php/private/pbx_settings/groups/"
QUEUES = "/callcenter/json.php/private/settings/queues/"
PICKUP = "/service/ipbx/json.php/private/call_management/pickup/"
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
        # the document's examples name groups tous (2) and queue commerciale (1)
        for name in ("accueil", "tous"):
            make_group(s, name)
        for name in ("commerciale", "technique"):
            make_queue(s, name)
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def hget(system, key, field):
    return redis_cli(system, "HGET", PREFIX + key, field).strip()


def hlen(system, key):
    return int(redis_cli(system, "HLEN", PREFIX + key).strip())


def call(system, act, body=None, path=USERS, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(path, q, auth=ADMIN)
    return system.post(path, q, body=body, auth=ADMIN)


def object_id(system, path, name):
    r = call(system, "list", path=path)
    assert r.status == 200, r
    [oid] = [e["id"] for e in r.json() if e["name"] == name]
    return oid


def make_group(system, name):
    r = call(system, "add", {"name": name, "number": "", "context": "default", "description": ""}, path=GROUPS)
    assert r.status == 200, r
    return object_id(system, GROUPS, name)


def make_queue(system, name):
    r = call(system, "add", {"name": name, "number": "", "context": "default", "description": ""}, path=QUEUES)
    assert r.status == 200, r
    return object_id(system, QUEUES, name)


def make_pickup(system, name, users):
    r = call(system, "add", {"name": name, "description": "",
                             "members": [{"category": "member", "membertype": "user", "memberid": u} for u in users]},
             path=PICKUP)
    assert r.status == 200, r
    return object_id(system, PICKUP, name)


def pickup_member_ids(system, pid):
    r = call(system, "view", path=PICKUP, id=pid)
    assert r.status == 200, r
    return [m["memberid"] for m in (r.json()["members"] or [])]


def add_ok(system, body):
    r = call(system, "add", body)
    assert r.status == 200, r
    return int(r.json())


def view(system, uid):
    r = call(system, "view", id=uid)
    assert r.status == 200, r
    return r.json()


def clear(system):
    for path in (USERS, LINES):
        r = call(system, "deleteall", path=path)
        assert r.status in (200, 204), r
    r = call(system, "list", path=PICKUP)
    assert r.status in (200, 204), r
    for p in (r.json() if r.status == 200 else []):
        assert call(system, "delete", path=PICKUP, id=p["id"]).status == 200


def members_of(system, kind, oid):
    v = hget(system, kind + ":members", oid)
    return [int(x) for x in v.split(",")] if v else []


def gid(system, name):
    return object_id(system, GROUPS, name)


def qid(system, name):
    return object_id(system, QUEUES, name)


def da_row(uid, event, actiontype, action="", arg1="", arg2=""):
    return {"event": event, "category": "user", "categoryval": str(uid), "actiontype": actiontype, "action": action,
            "actionarg1": arg1, "actionarg2": arg2, "linked": True}


# ---- the document's full example --------------------------------------------------------------------------

DOC_FULL = {
    "userfeatures": {
        "entityid": "[entityid]", "firstname": "John", "lastname": "Doe", "callerid": "John Doe", "loginclient": "jdoe",
        "passwdclient": "8888", "mobilephonenumber": "", "ringseconds": "30", "simultcalls": "5",
        "musiconhold": "default", "voicemailid": "0", "enableclient": "1", "profileclient": "client",
        "enablehint": "1", "enablevoicemail": "1", "enablexfer": "1", "enableautomon": "0", "callrecord": "0",
        "callfilter": "0", "enablednd": "0", "bsfilter": "no", "agentid": "", "enablerna": "0",
        "destrna": "0033141389960", "enablebusy": "0", "destbusy": "0033141389960", "enableunc": "0",
        "destunc": "0033141389960", "outcallerid": "default", "preprocess_subroutine": "", "language": "fr_FR",
        "timezone": "America/Montreal", "ringintern": "", "ringextern": "", "ringgroup": "", "ringforward": "",
        "rightcallcode": "", "alarmclock": "00:00", "pitchdirection": "", "pitch": "", "description": ""},
    "linefeatures": {k: [""] for k in ("id", "protocol", "name", "context", "number", "rules_type", "rules_time",
                                       "rules_order", "rules_group")},
    "voicemail": {"fullname": "John Doe", "mailbox": "666", "password": "0000", "email": "jdoe@proformatique.com",
                  "tz": "eu-fr", "attach": "1", "deletevoicemail": "1"},
    "vmfeatures": {"skipcheckpass": "1"},
    "dialaction": {
        "noanswer": {"actiontype": "group", "actionarg1": "2", "actionarg2": "15"},
        "busy": {"actiontype": "queue", "actionarg1": "1", "actionarg2": ""},
        "congestion": {"actiontype": "voicemenu", "actionarg1": "1"},
        "chanunavail": {"actiontype": "application", "action": "faxtomail", "actionarg1": "fax@proformatique.com"}},
    "group-select": ["tous"],
    "group": {"accueil": {"chantype": "default", "call-limit": "0"}, "tous": {"chantype": "default", "call-limit": "3"}},
    "queue-select": ["technique"],
    "queue": {"commerciale": {"chantype": "default", "penalty": "0", "call-limit": "0"},
              "technique": {"chantype": "default", "penalty": "4", "call-limit": "10"}},
    "phonefunckey": {"fknum": ["13", "14", "15", "17", "18"], "type": ["user", "extension", "meetme", "group", "queue"],
                     "typeval": ["41", "extenfeatures-vmusermsg", "3", "2", "1"],
                     "supervision": ["1", "0", "0", "0", "0"]},
    "queueskills": [{"id": 5, "weight": 22}, {"id": 2, "weight": 97}],
}


def member_row(uid, category, oid, name, penalty, limit, chantype="default", interface="", channel=""):
    return {"queue_name": name, "interface": interface, "penalty": penalty, "call-limit": limit, "paused": False,
            "commented": False, "usertype": "user", "userid": uid, "channel": channel, "category": category,
            "chantype": chantype, category + "featuresid": oid}


def test_document_full_example_verbatim(system):
    clear(system)
    assert (gid(system, "tous"), qid(system, "commerciale")) == (2, 1)  # the ids the example names
    ent = min(e["id"] for e in call(system, "list", path=ENTITY).json())
    body = json.loads(json.dumps(DOC_FULL).replace('"[entityid]"', '"%d"' % ent))
    uid = add_ok(system, body)
    v = view(system, uid)
    assert v["linefeatures"] is False
    assert v["dialaction"] == {
        "noanswer": da_row(uid, "noanswer", "group", "", "2", "15"),
        "busy": da_row(uid, "busy", "queue", "", "1", ""),
        "congestion": da_row(uid, "congestion", "voicemenu", "", "1"),
        "chanunavail": da_row(uid, "chanunavail", "application", "faxtomail", "fax@proformatique.com")}
    assert v["groupmember"] == [member_row(uid, "group", 2, "tous", 0, 3)]
    assert v["queuemember"] == [member_row(uid, "queue", qid(system, "technique"), "technique", 4, 10)]
    assert v["pickup"] is False
    assert v["voicemail"]["mailbox"] == "666" and v["voicemail"]["skipcheckpass"] is True
    assert [k["fknum"] for k in v["phonefunckey"]] == [13, 14, 15, 17, 18]
    assert v["queueskills"] == DOC_FULL["queueskills"]
    uf = v["userfeatures"]
    for k, sent in body["userfeatures"].items():
        if k in ("callerid", "voicemailid", "agentid"):
            continue
        got = uf[k]
        if isinstance(got, bool):
            assert got is (sent == "1"), k
        elif isinstance(got, int):
            assert got == int(sent), k
        else:
            assert got == sent, k
    assert members_of(system, "group", 2) == [uid]
    assert members_of(system, "queue", qid(system, "technique")) == [uid]
    assert hget(system, "dialaction:target", "group:2") == str(uid)
    assert hget(system, "dialaction:target", "queue:1") == str(uid)
    # the same body is a valid edit, and changes nothing visible
    assert call(system, "edit", body, id=uid).status == 200
    assert view(system, uid) == v


def test_memberships_replaced_by_a_select_and_kept_without_one(system):
    clear(system)
    g1, g2, q2 = gid(system, "accueil"), gid(system, "tous"), qid(system, "technique")
    uid = add_ok(system, {"userfeatures": {"firstname": "Member"},
                          "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["150"],
                                           "name": ["memberline"]},
                          "group-select": ["accueil", "tous", "accueil"], "group": {"tous": {"chantype": "local"}},
                          "queue-select": ["technique"]})
    v = view(system, uid)
    assert v["groupmember"] == [
        member_row(uid, "group", g1, "accueil", 0, 0, interface="SIP/memberline", channel="SIP"),
        member_row(uid, "group", g2, "tous", 0, 0, "local", "Local/150@default", "Local")]
    assert v["queuemember"] == [member_row(uid, "queue", q2, "technique", 0, 0, interface="SIP/memberline",
                                           channel="SIP")]
    assert members_of(system, "group", g1) == [uid] and members_of(system, "group", g2) == [uid]
    # without a select the memberships are kept
    assert call(system, "edit", {"userfeatures": {"lastname": "X"}, "group": {"tous": {"call-limit": 9}}},
                id=uid).status == 200
    assert view(system, uid)["groupmember"] == v["groupmember"]
    # a select replaces the whole set
    assert call(system, "edit", {"group-select": ["tous"], "group": {"tous": {"call-limit": 2}}}, id=uid).status == 200
    assert [(m["queue_name"], m["call-limit"]) for m in view(system, uid)["groupmember"]] == [("tous", 2)]
    assert members_of(system, "group", g1) == [] and members_of(system, "group", g2) == [uid]
    # a refused select changes nothing
    assert call(system, "edit", {"group-select": ["tous", "nosuch"]}, id=uid).status == 400
    assert members_of(system, "group", g2) == [uid]
    # false (or []) empties it
    assert call(system, "edit", {"group-select": False, "queue-select": []}, id=uid).status == 200
    v = view(system, uid)
    assert (v["groupmember"], v["queuemember"]) == (False, False)
    assert hlen(system, "group:members") == 0 and hlen(system, "queue:members") == 0
    assert hlen(system, "user:groups") == 0 and hlen(system, "user:queues") == 0


def test_view_pickup_lists_the_pickups_naming_the_user(system):
    clear(system)
    a = add_ok(system, {"userfeatures": {"firstname": "Picked"}})
    b = add_ok(system, {"userfeatures": {"firstname": "Other"}})
    p1 = make_pickup(system, "first", [a])
    p2 = make_pickup(system, "second", [a, b])
    assert view(system, a)["pickup"] == [p1, p2]
    assert view(system, b)["pickup"] == [p2]


def test_user_delete_runs_the_cascade(system):
    clear(system)
    g2, q1 = gid(system, "tous"), qid(system, "commerciale")
    gone = add_ok(system, {"userfeatures": {"firstname": "Gone"}, "group-select": ["tous"],
                           "queue-select": ["commerciale"],
                           "dialaction": {"busy": {"actiontype": "group", "actionarg1": str(g2)}}})
    stays = add_ok(system, {"userfeatures": {"firstname": "Stays"}, "group-select": ["tous"],
                            "dialaction": {"noanswer": {"actiontype": "user", "actionarg1": str(gone)},
                                           "busy": {"actiontype": "queue", "actionarg1": str(q1)}}})
    pid = make_pickup(system, "both", [gone, stays])
    assert members_of(system, "group", g2) == [gone, stays]
    assert call(system, "delete", id=gone).status == 200
    v = view(system, stays)
    assert v["dialaction"]["noanswer"] == da_row(stays, "noanswer", "none")
    assert v["dialaction"]["busy"] == da_row(stays, "busy", "queue", "", str(q1))
    assert pickup_member_ids(system, pid) == [stays]
    assert hget(system, "pickup:target", "user:%d" % gone) == ""
    assert members_of(system, "group", g2) == [stays] and members_of(system, "queue", q1) == []
    assert hget(system, "dialaction:target", "user:%d" % gone) == ""
    assert hget(system, "dialaction:target", "group:%d" % g2) == ""
    assert hget(system, "dialaction:target", "queue:%d" % q1) == str(stays)
    for key in ("user:groups", "user:queues", "user:dialaction"):
        assert hget(system, key, gone) == "", key
    # deleteall leaves no reference to any user
    assert call(system, "deleteall").status == 200
    assert pickup_member_ids(system, pid) == []
    for key in ("user:groups", "user:queues", "user:dialaction", "dialaction:target", "group:members", "queue:members"):
        assert hlen(system, key) == 0, key


def test_concurrent_joins_keep_the_member_list_exact(system):
    """Users joining and leaving one group at once, through two workers: the group's member list is exactly the
    users whose memberships name it."""
    clear(system)
    g2 = gid(system, "tous")
    uids = [add_ok(system, {"userfeatures": {"firstname": "J%d" % i}, "group-select": ["tous"] if i % 2 else []})
            for i in range(16)]
    barrier = threading.Barrier(len(uids))
    results, lock = [], threading.Lock()

    def flip(i, uid):
        barrier.wait()
        r = call(system, "edit", {"group-select": [] if i % 2 else ["tous", "accueil"]}, id=uid)
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=flip, args=(i, u)) for i, u in enumerate(uids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * len(uids)
    joined = [u for i, u in enumerate(uids) if i % 2 == 0]
    assert sorted(members_of(system, "group", g2)) == joined
    assert sorted(members_of(system, "group", gid(system, "accueil"))) == joined
    for i, uid in enumerate(uids):
        names = [m["queue_name"] for m in (view(system, uid)["groupmember"] or [])]
        assert names == ([] if i % 2 else ["accueil", "tous"]), (uid, names)
