"""pbx_settings/users (contract §5.3, §6): every act, the element and view shapes with their JSON types,
the userfeatures rules (each failing case checked to change nothing), the user's lines through the
column-oriented linefeatures rows (new lines created with their numbers reserved, free lines attached,
lines owned elsewhere refused, the set replaced on edit, everything removed on delete, all in one atomic
step), search, and concurrent adds through two ipbx-users workers."""

import threading

import pytest

from conftest import ADMIN, ENTITY, JSON_SUITE, System, redis_cli

USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
USERS_PRIVATE = "/service/ipbx/json.php/private/pbx_settings/users/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
GROUPS = "/service/ipbx/json.php/private/pbx_settings/groups/"
QUEUES = "/callcenter/json.php/private/settings/queues/"
PREFIX = "xws:"
N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []

UF_KEYS = ["id", "entityid", "firstname", "lastname", "fullname", "identity", "callerid", "loginclient", "passwdclient",
           "mobilephonenumber", "ringseconds", "simultcalls", "musiconhold", "voicemailid", "profileclient",
           "cti_profile_id", "enableclient", "enablehint", "enablevoicemail", "enablexfer", "enableautomon",
           "callrecord", "callfilter", "enablednd", "enablerna", "enablebusy", "enableunc", "destrna", "destbusy",
           "destunc", "bsfilter", "agentid", "outcallerid", "preprocess_subroutine", "language", "timezone",
           "ringintern", "ringextern", "ringgroup", "ringforward", "rightcallcode", "alarmclock", "pitchdirection",
           "pitch", "userfield", "description", "commented"]
INT_KEYS = {"id", "entityid", "ringseconds", "simultcalls", "voicemailid", "cti_profile_id", "agentid"}
BOOL_KEYS = {"enableclient", "enablehint", "enablevoicemail", "enablexfer", "enableautomon", "callrecord", "callfilter",
             "enablednd", "enablerna", "enablebusy", "enableunc", "commented"}
VIEW_KEYS = ["userfeatures", "entity", "linefeatures", "voicemail", "dialaction", "groupmember", "queuemember",
             "phonefunckey", "queueskills", "pickup"]


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    try:
        s.start_services({"xws-ipbx-lines": 1, "xws-ipbx-users": 2}, ready=(USERS, LINES))
        assert s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN).status == 200
        assert s.post(ENTITY, {"act": "add"}, body={"name": "second", "displayname": "Second"}, auth=ADMIN).status == 200
        for body in (
            {"context": {"name": "default", "entity": "default"},
             "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"},
                                         {"numberbeg": "4000", "numberend": "4099"}],
                                "group": [{"numberbeg": "500", "numberend": "599"}]}},
            {"context": {"name": "other", "entity": "default"}},
        ):
            r = s.post(CONTEXT, {"act": "add"}, body=body, auth=ADMIN)
            assert r.status == 200, r
        # as bootstrapped (§7): the function keys of the document's full example name group 2 and queue 1
        for path, name in ((GROUPS, "accueil"), (GROUPS, "tous"), (QUEUES, "commerciale"), (QUEUES, "technique")):
            r = s.post(path, {"act": "add"}, body={"name": name, "context": "default"}, auth=ADMIN)
            assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    yield s
    s.stop()


# ---- helpers ----------------------------------------------------------------------------------------


def call(system, act, body=None, path=USERS, **params):
    q = dict(params)
    q["act"] = act
    if body is None:
        return system.get(path, q, auth=ADMIN)
    return system.post(path, q, body=body, auth=ADMIN)


def add_ok(system, body):
    r = call(system, "add", body)
    assert r.status == 200, r
    uid = r.json()
    assert isinstance(uid, str) and uid.isdigit(), r
    return int(uid)


def user(first="John", last="Doe", **uf):
    d = {"firstname": first, "lastname": last}
    d.update(uf)
    return {"userfeatures": d}


def users(system):
    r = call(system, "list")
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return r.json()


def view(system, uid):
    r = call(system, "view", id=uid)
    assert r.status == 200, r
    return r.json()


def lines(system, **params):
    r = call(system, "list", path=LINES, **params)
    if r.status == 204:
        return []
    assert r.status == 200, r
    return r.json()


def add_line(system, number=None, context="default", name=None):
    p = {"protocol": "sip", "context": context}
    if name:
        p["name"] = name
    body = {"protocol": p}
    if number is not None:
        body["linefeatures"] = {"number": number}
    r = call(system, "add", body, path=LINES)
    assert r.status == 200, r
    return max(l["id"] for l in lines(system))


def numbers(system, context="default"):
    out = redis_cli(system, "HGETALL", PREFIX + "context:numbers:" + context).split()
    return dict(zip(out[0::2], out[1::2]))


def clear(system):
    for path in (USERS, LINES):
        r = call(system, "deleteall", path=path)
        assert r.status in (200, 204), r
    assert users(system) == [] and lines(system) == []


def snapshot(system):
    """Everything the users and lines resources show, and the keys they keep."""
    out = [users(system), lines(system)]
    for u in out[0]:
        out.append(view(system, u["id"]))
    for c in ("default", "other"):
        out.append(sorted(numbers(system, c).items()))
    for key in ("user:login", "line:owner", "line:byuser", "user:identity", "line:name", "entity:refs", "context:refs",
                "user:dialaction", "dialaction:target", "user:groups", "user:queues", "user:voicemail",
                "voicemail:mailbox", "user:extra"):
        out.append(redis_cli(system, "HGETALL", PREFIX + key))
    for key in ("user:seq", "line:seq"):
        out.append(redis_cli(system, "GET", PREFIX + key))
    return out


def assert_error(r, status, code, field):
    assert r.status == status, r
    e = r.json()
    assert (e["error"], e["field"]) == (code, field), e
    assert isinstance(e["message"], str) and e["message"]


# ---- list, view, shapes ---------------------------------------------------------------------------------


def test_empty_list_and_search_answer_204(system):
    clear(system)
    for act, q in (("list", {}), ("search", {"search": "x"}), ("search", {}), ("unknown", {})):
        r = call(system, act, **q)
        assert r.status == 204 and r.body == b"", (act, r)


def test_minimal_add_answers_the_id_as_a_json_string(system):
    clear(system)
    r = call(system, "add", {"userfeatures": {"firstname": "Alice"}})
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json")
    uid = r.json()
    assert isinstance(uid, str) and int(uid) >= 1
    r2 = call(system, "add", {"userfeatures": {"firstname": "Bob"}})
    assert r2.json() == str(int(uid) + 1)
    assert [u["id"] for u in users(system)] == [int(uid), int(uid) + 1]


def test_element_shape_types_and_defaults(system):
    clear(system)
    uid = add_ok(system, user("John", "Doe"))
    [e] = users(system)
    assert list(e) == UF_KEYS
    for k in UF_KEYS:
        if k == "cti_profile_id":
            assert e[k] is None, k  # none
        elif k in INT_KEYS:
            assert type(e[k]) is int, k
        elif k in BOOL_KEYS:
            assert type(e[k]) is bool, k
        else:
            assert type(e[k]) is str, k
    ent = call(system, "list", path=ENTITY).json()
    assert e["id"] == uid and e["entityid"] == min(x["id"] for x in ent)
    assert (e["firstname"], e["lastname"], e["fullname"], e["identity"]) == ("John", "Doe", "John Doe", "John Doe")
    assert e["callerid"] == '"John Doe"'
    assert (e["ringseconds"], e["simultcalls"], e["profileclient"], e["bsfilter"], e["outcallerid"]) == \
        (30, 5, "client", "no", "default")
    assert (e["voicemailid"], e["agentid"], e["enableclient"], e["enablevoicemail"], e["commented"]) == \
        (0, 0, False, False, False)
    # unknown act falls back to list
    assert call(system, "whatever").json() == [e]


def test_view_shape(system):
    clear(system)
    uid = add_ok(system, user("Jane", "", userfield="ABC"))
    v = view(system, uid)
    assert list(v) == VIEW_KEYS
    assert v["userfeatures"] == users(system)[0]
    assert v["userfeatures"]["fullname"] == "Jane" and v["userfeatures"]["callerid"] == '"Jane"'
    assert v["entity"]["name"] == "default" and v["entity"]["id"] == v["userfeatures"]["entityid"]
    assert v["entity"]["identity"] == "Default (default)"
    for k in VIEW_KEYS[2:]:
        assert v[k] is False, k
    for bad in ("999", "0", "abc", ""):
        r = call(system, "view", id=bad)
        assert r.status == 404, (bad, r)
    assert system.get(USERS_PRIVATE, {"act": "view", "id": uid}).json() == v


def test_etag_and_304(system):
    clear(system)
    uid = add_ok(system, user())
    for q in ({"act": "list"}, {"act": "view", "id": uid}):
        r = system.get(USERS, q, auth=ADMIN)
        tag = r.header("ETag")
        assert tag
        assert system.get(USERS, q, auth=ADMIN, headers={"If-None-Match": tag}).status == 304
    tag = system.get(USERS, {"act": "view", "id": uid}, auth=ADMIN).header("ETag")
    assert call(system, "edit", {"userfeatures": {"lastname": "Other"}}, id=uid).status == 200
    r = system.get(USERS, {"act": "view", "id": uid}, auth=ADMIN, headers={"If-None-Match": tag})
    assert r.status == 200 and r.json()["userfeatures"]["lastname"] == "Other"


# ---- userfeatures rules -----------------------------------------------------------------------------------


BAD = [
    ({}, "missing_field", "userfeatures"),
    ({"userfeatures": {}}, "missing_field", "userfeatures.firstname"),
    ({"userfeatures": {"firstname": ""}}, "too_short", "userfeatures.firstname"),
    ({"userfeatures": {"firstname": "x" * 129}}, "too_long", "userfeatures.firstname"),
    ({"userfeatures": {"firstname": "a\u0001b"}}, "invalid_value", "userfeatures.firstname"),
    ({"userfeatures": {"firstname": "A", "lastname": "y" * 129}}, "too_long", "userfeatures.lastname"),
    ({"userfeatures": {"firstname": "A", "entityid": "999"}}, "unknown_reference", "userfeatures.entityid"),
    ({"userfeatures": {"firstname": "A", "entityid": "x"}}, "invalid_value", "userfeatures.entityid"),
    ({"userfeatures": {"firstname": "A", "ringseconds": 61}}, "out_of_range", "userfeatures.ringseconds"),
    ({"userfeatures": {"firstname": "A", "ringseconds": "7"}}, "out_of_range", "userfeatures.ringseconds"),
    ({"userfeatures": {"firstname": "A", "simultcalls": 0}}, "out_of_range", "userfeatures.simultcalls"),
    ({"userfeatures": {"firstname": "A", "simultcalls": "21"}}, "out_of_range", "userfeatures.simultcalls"),
    ({"userfeatures": {"firstname": "A", "enableclient": True}}, "missing_field", "userfeatures.loginclient"),
    ({"userfeatures": {"firstname": "A", "enableclient": "1", "loginclient": "abc"}}, "missing_field",
     "userfeatures.passwdclient"),
    ({"userfeatures": {"firstname": "A", "loginclient": "a"}}, "too_short", "userfeatures.loginclient"),
    ({"userfeatures": {"firstname": "A", "loginclient": "a b"}}, "invalid_value", "userfeatures.loginclient"),
    ({"userfeatures": {"firstname": "A", "passwdclient": "abc"}}, "too_short", "userfeatures.passwdclient"),
    ({"userfeatures": {"firstname": "A", "destrna": "12a"}}, "invalid_value", "userfeatures.destrna"),
    ({"userfeatures": {"firstname": "A", "mobilephonenumber": "+"}}, "invalid_value", "userfeatures.mobilephonenumber"),
    ({"userfeatures": {"firstname": "A", "bsfilter": "chief"}}, "invalid_value", "userfeatures.bsfilter"),
    ({"userfeatures": {"firstname": "A", "language": "xx_XX"}}, "invalid_value", "userfeatures.language"),
    ({"userfeatures": {"firstname": "A", "timezone": "Mars/Olympus"}}, "invalid_value", "userfeatures.timezone"),
    ({"userfeatures": {"firstname": "A", "timezone": "../etc/passwd"}}, "invalid_value", "userfeatures.timezone"),
    ({"userfeatures": {"firstname": "A", "alarmclock": "25:00"}}, "invalid_value", "userfeatures.alarmclock"),
    ({"userfeatures": {"firstname": "A", "rightcallcode": "12x"}}, "invalid_value", "userfeatures.rightcallcode"),
    ({"userfeatures": {"firstname": "A", "enablednd": "maybe"}}, "invalid_value", "userfeatures.enablednd"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"]}}, "missing_field",
     "linefeatures.context[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"context": ["default", "default"], "protocol": ["sip"]}},
     "missing_field", "linefeatures.protocol[1]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["h323"], "context": ["default"]}},
     "invalid_value", "linefeatures.protocol[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"], "context": ["nowhere"]}},
     "unknown_reference", "linefeatures.context[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"], "context": ["default"],
                                                           "number": ["10x"]}}, "invalid_value", "linefeatures.number[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"], "context": ["default"],
                                                           "number": ["999"]}}, "out_of_range", "linefeatures.number[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sccp"], "context": ["default"]}},
     "missing_field", "linefeatures.number[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"], "context": ["default"],
                                                           "name": ["Bad Name"]}}, "invalid_value", "linefeatures.name[0]"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"id": ["99999"]}}, "unknown_reference", "linefeatures.id[0]"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"fullname": "A"}}, "missing_field", "voicemail.mailbox"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"mailbox": "12a", "fullname": "A"}}, "invalid_value",
     "voicemail.mailbox"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"mailbox": "12"}}, "missing_field", "voicemail.fullname"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"mailbox": "12", "fullname": "A", "email": "nope"}},
     "invalid_value", "voicemail.email"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"mailbox": "12", "fullname": "A", "context": "nowhere"}},
     "unknown_reference", "voicemail.context"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": {"mailbox": "8000", "fullname": "A"}}, "already_exists",
     "voicemail.mailbox"),
    ({"userfeatures": {"firstname": "A"}, "voicemail": "x"}, "invalid_value", "voicemail"),
    ({"userfeatures": {"firstname": "A"}, "phonefunckey": {"fknum": ["1000"], "type": ["user"]}}, "out_of_range",
     "phonefunckey.fknum[0]"),
    ({"userfeatures": {"firstname": "A"}, "phonefunckey": {"fknum": ["1", "1"], "type": ["user", "custom"],
                                                            "typeval": ["1", "*10"]}},
     "already_exists", "phonefunckey.fknum[1]"),
    ({"userfeatures": {"firstname": "A"}, "phonefunckey": {"fknum": ["1"], "type": ["phone"]}}, "invalid_value",
     "phonefunckey.type[0]"),
    ({"userfeatures": {"firstname": "A"}, "phonefunckey": {"fknum": ["1"]}}, "missing_field", "phonefunckey.type[0]"),
    ({"userfeatures": {"firstname": "A"}, "queueskills": [{"id": 1, "weight": 101}]}, "out_of_range",
     "queueskills[0].weight"),
    ({"userfeatures": {"firstname": "A"}, "queueskills": [{"id": 1, "weight": 1}, {"id": 1, "weight": 2}]},
     "already_exists", "queueskills[1].id"),
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip", "sip"], "context": ["default", "default"],
                                                           "number": ["150", "150"]}}, "number_taken",
     "linefeatures.number[1]"),
    # the second of three lines fails (its number is the fixture's line's): nothing of the first is left
    ({"userfeatures": {"firstname": "A"}, "linefeatures": {"protocol": ["sip"] * 3, "context": ["default"] * 3,
                                                           "number": ["150", "140", "151"]}}, "number_taken",
     "linefeatures.number[1]"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"noanswer": {"actiontype": "none"}, "timeout": {}}},
     "invalid_value", "dialaction.timeout"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": ["none"]}, "invalid_value", "dialaction"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": "none"}}, "invalid_value", "dialaction.busy"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"action": "hangup"}}}, "missing_field",
     "dialaction.busy.actiontype"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"actiontype": "jump"}}}, "invalid_value",
     "dialaction.busy.actiontype"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"actiontype": "endcall"}}}, "missing_field",
     "dialaction.busy.action"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"congestion": {"actiontype": "endcall", "action": "faxtomail"}}},
     "invalid_value", "dialaction.congestion.action"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"chanunavail": {"actiontype": "application", "action": "hangup"}}},
     "invalid_value", "dialaction.chanunavail.action"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"noanswer": {"actiontype": "user"}}}, "missing_field",
     "dialaction.noanswer.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"noanswer": {"actiontype": "group", "actionarg1": "x1"}}},
     "invalid_value", "dialaction.noanswer.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"noanswer": {"actiontype": "user", "actionarg1": "99999"}}},
     "unknown_reference", "dialaction.noanswer.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"actiontype": "group", "actionarg1": "99999"}}},
     "unknown_reference", "dialaction.busy.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"actiontype": "queue", "actionarg1": "99999"}}},
     "unknown_reference", "dialaction.busy.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "dialaction": {"busy": {"actiontype": "sound", "actionarg1": "x" * 256}}},
     "too_long", "dialaction.busy.actionarg1"),
    ({"userfeatures": {"firstname": "A"}, "group-select": ["nosuchgroup"]}, "unknown_reference", "group-select[0]"),
    ({"userfeatures": {"firstname": "A"}, "queue-select": ["", "x"]}, "unknown_reference", "queue-select[0]"),
    ({"userfeatures": {"firstname": "A"}, "group-select": "tous"}, "invalid_value", "group-select"),
    ({"userfeatures": {"firstname": "A"}, "group-select": ["tous"], "group": ["tous"]}, "invalid_value", "group"),
    ({"userfeatures": {"firstname": "A"}, "group-select": ["tous"], "group": {"tous": "x"}}, "invalid_value",
     "group.tous"),
    ({"userfeatures": {"firstname": "A"}, "group-select": ["tous"], "group": {"tous": {"chantype": "sip"}}},
     "invalid_value", "group.tous.chantype"),
    ({"userfeatures": {"firstname": "A"}, "group-select": ["tous"], "group": {"tous": {"call-limit": "-1"}}},
     "invalid_value", "group.tous.call-limit"),
    ({"userfeatures": {"firstname": "A"}, "queue-select": ["technique"],
      "queue": {"technique": {"penalty": -2}}}, "out_of_range", "queue.technique.penalty"),
    ({"userfeatures": {"firstname": "A", "cti_profile_id": "-1"}}, "invalid_value", "userfeatures.cti_profile_id"),
]


@pytest.mark.parametrize("body,code,field", BAD, ids=[b[2] + ":" + b[1] for b in BAD])
def test_add_refused_changes_nothing(system, body, code, field):
    clear(system)
    keep = user("Keep", "Me", loginclient="keeper", passwdclient="secret")
    keep["voicemail"] = {"mailbox": "8000", "fullname": "Keep Me"}
    add_ok(system, keep)
    add_line(system, "140")
    before = snapshot(system)
    assert_error(call(system, "add", body), 400, code, field)
    assert snapshot(system) == before


def test_add_body_errors(system):
    clear(system)
    for raw in (b"", b"[]", b"{", b'"x"'):
        r = system.post(USERS, {"act": "add"}, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r)
    assert users(system) == []


def test_values_are_normalised(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {
        "firstname": " Ann ", "lastname": "Lee", "entityid": "2", "ringseconds": "15", "simultcalls": 3,
        "enableclient": "yes", "loginclient": "Ann.Lee", "passwdclient": "pass1", "enablerna": True, "destrna": "",
        "enablebusy": 1, "destbusy": "+33*12#", "bsfilter": "boss", "language": "fr_FR", "timezone": "Europe/Paris",
        "alarmclock": "07:30", "rightcallcode": "123", "userfield": "UF1", "description": "two\nlines",
        "commented": "0", "voicemailid": 7, "agentid": 9}})
    e = view(system, uid)["userfeatures"]
    assert (e["firstname"], e["fullname"], e["callerid"]) == ("Ann", "Ann Lee", '"Ann Lee"')
    assert (e["entityid"], e["ringseconds"], e["simultcalls"]) == (2, 15, 3)
    assert (e["enableclient"], e["loginclient"], e["passwdclient"]) == (True, "Ann.Lee", "pass1")
    assert (e["enablerna"], e["destrna"], e["enablebusy"], e["destbusy"]) == (False, "", True, "+33*12#")
    assert (e["bsfilter"], e["language"], e["timezone"], e["alarmclock"]) == ("boss", "fr_FR", "Europe/Paris", "07:30")
    assert (e["voicemailid"], e["agentid"], e["commented"], e["description"]) == (0, 0, False, "two\nlines")
    assert view(system, uid)["entity"]["name"] == "second"


def test_client_login_unique_case_insensitively(system):
    clear(system)
    a = add_ok(system, user("A", loginclient="Shared", passwdclient="pass"))
    before = snapshot(system)
    assert_error(call(system, "add", user("B", loginclient="sHARED", passwdclient="pass")), 400, "already_exists",
                 "userfeatures.loginclient")
    assert snapshot(system) == before
    b = add_ok(system, user("B", loginclient="other", passwdclient="pass"))
    assert_error(call(system, "edit", {"userfeatures": {"loginclient": "SHARED"}}, id=b), 400, "already_exists",
                 "userfeatures.loginclient")
    # the owner may keep it, change its case, then free it
    assert call(system, "edit", {"userfeatures": {"loginclient": "SHARed"}}, id=a).status == 200
    assert call(system, "edit", {"userfeatures": {"loginclient": "fresh"}}, id=a).status == 200
    assert call(system, "edit", {"userfeatures": {"loginclient": "shared"}}, id=b).status == 200
    assert call(system, "delete", id=b).status == 200
    assert add_ok(system, user("C", loginclient="Shared", passwdclient="pass")) > b


def test_entity_reference_is_counted(system):
    clear(system)
    ent = {e["name"]: e["id"] for e in call(system, "list", path=ENTITY).json()}
    uid = add_ok(system, user(entityid=ent["second"]))
    r = call(system, "delete", path=ENTITY, id=ent["second"])
    assert r.status == 405, r
    assert call(system, "edit", {"userfeatures": {"entityid": ent["default"]}}, id=uid).status == 200
    refs = redis_cli(system, "HGET", PREFIX + "entity:refs", ent["second"]).strip()
    assert refs in ("", "0"), refs


# ---- edit, delete ---------------------------------------------------------------------------------------


def test_edit_is_partial(system):
    clear(system)
    uid = add_ok(system, user("John", "Doe", ringseconds=20, userfield="u"))
    assert call(system, "edit", {"userfeatures": {"lastname": "Smith"}}, id=uid).status == 200
    e = view(system, uid)["userfeatures"]
    assert (e["firstname"], e["lastname"], e["ringseconds"], e["userfield"], e["callerid"]) == \
        ("John", "Smith", 20, "u", '"John Smith"')
    assert call(system, "edit", {}, id=uid).status == 200
    assert view(system, uid)["userfeatures"] == e
    before = snapshot(system)
    assert_error(call(system, "edit", {"userfeatures": {"firstname": ""}}, id=uid), 400, "too_short",
                 "userfeatures.firstname")
    assert_error(call(system, "edit", {"userfeatures": {"ringseconds": 33}}, id=uid), 400, "out_of_range",
                 "userfeatures.ringseconds")
    assert snapshot(system) == before
    assert call(system, "edit", {"userfeatures": {"firstname": "X"}}, id=999).status == 404
    assert call(system, "delete", id=999).status == 404


def test_delete_and_deleteall(system):
    clear(system)
    a = add_ok(system, user("A", loginclient="la", passwdclient="pass"))
    b = add_ok(system, user("B"))
    assert call(system, "delete", id=a).status == 200
    assert [u["id"] for u in users(system)] == [b]
    assert call(system, "view", id=a).status == 404
    assert redis_cli(system, "HGET", PREFIX + "user:login", "la").strip() == ""
    assert call(system, "deleteall").status == 200
    assert users(system) == []
    assert call(system, "deleteall").status == 204
    # ids are never reused
    assert add_ok(system, user("C")) > b


# ---- lines ------------------------------------------------------------------------------------------------


def test_add_creates_lines_with_their_numbers(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Line", "lastname": "Owner"},
                          "linefeatures": {"id": ["", "", ""], "protocol": ["sip", "", "iax"],
                                           "context": ["default", "", "other"], "number": ["101", "", "9999"],
                                           "name": ["", "", "myiax"]}})
    ls = lines(system)
    assert len(ls) == 2
    sip, iax = ls
    assert (sip["protocol"], sip["number"], sip["context"], sip["iduserfeatures"], sip["useridentity"]) == \
        ("sip", "101", "default", uid, "Line Owner")
    assert (iax["protocol"], iax["name"], iax["number"], iax["context"], iax["iduserfeatures"]) == \
        ("iax", "myiax", "9999", "other", uid)
    assert numbers(system) == {"101": "user:line/%d" % sip["id"]}
    assert numbers(system, "other") == {"9999": "user:line/%d" % iax["id"]}
    v = view(system, uid)
    assert [l["id"] for l in v["linefeatures"]] == [sip["id"], iax["id"]]
    assert v["linefeatures"][0]["number"] == "101" and v["linefeatures"][0]["iduserfeatures"] == uid
    assert type(v["linefeatures"][0]["rules_order"]) is int
    # the same line as the lines service shows it
    lv = call(system, "view", path=LINES, id=sip["id"]).json()
    assert lv["linefeatures"]["iduserfeatures"] == uid and lv["protocol"]["protocol"] == "sip"
    # renaming the user renames the lines' owner identity
    assert call(system, "edit", {"userfeatures": {"firstname": "New"}}, id=uid).status == 200
    assert {l["useridentity"] for l in lines(system)} == {"New Owner"}


def test_document_combinations(system):
    clear(system)
    # "create"
    u1 = add_ok(system, {"userfeatures": {"firstname": "Create"},
                         "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["110"]}})
    # "associate id 45" (an existing free line)
    free = add_line(system, "111")
    u2 = add_ok(system, {"userfeatures": {"firstname": "Associate"}, "linefeatures": {"id": [str(free)]}})
    # "1st & last created, 2nd associated"
    free2 = add_line(system, "113")
    u3 = add_ok(system, {"userfeatures": {"firstname": "Mixed"},
                         "linefeatures": {"id": ["", str(free2), ""], "protocol": ["sip", "", "sccp"],
                                          "context": ["default", "default", "default"],
                                          "number": ["112", "113", "114"]}})
    owners = {l["number"]: l["iduserfeatures"] for l in lines(system)}
    assert owners == {"110": u1, "111": u2, "112": u3, "113": u3, "114": u3}
    assert [l["number"] for l in view(system, u3)["linefeatures"]] == ["112", "113", "114"]
    # the document's typo: invalid JSON
    raw = b'{"userfeatures": {"firstname": "T"}, "linefeatures": {"protocol": [{"sip","","sip"]}}'
    r = system.post(USERS, {"act": "add"}, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
    assert r.status == 400, r


def test_attach_refusals_change_nothing(system):
    clear(system)
    owned = add_line(system, "120")
    owner = add_ok(system, {"userfeatures": {"firstname": "Owner"}, "linefeatures": {"id": [owned]}})
    free = add_line(system, "121")
    before = snapshot(system)
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"}, "linefeatures": {"id": [str(owned)]}}),
                 400, "in_use", "linefeatures.id[0]")
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"}, "linefeatures": {"id": [free, free]}}),
                 400, "invalid_value", "linefeatures.id[1]")
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"},
                                      "linefeatures": {"id": [free], "number": ["120"]}}),
                 400, "number_taken", "linefeatures.number[0]")
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"},
                                      "linefeatures": {"id": [free], "number": ["999"]}}),
                 400, "out_of_range", "linefeatures.number[0]")
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"},
                                      "linefeatures": {"id": [free, ""], "number": ["125", "125"],
                                                       "protocol": ["", "sip"], "context": ["", "default"]}}),
                 400, "number_taken", "linefeatures.number[1]")
    assert snapshot(system) == before
    # the owner may name its own line again
    assert call(system, "edit", {"linefeatures": {"id": [owned], "number": ["120"]}}, id=owner).status == 200
    assert snapshot(system) == before


def test_attached_line_takes_a_free_number(system):
    clear(system)
    free = add_line(system, "123")
    bare = add_line(system)
    r = call(system, "add", {"userfeatures": {"firstname": "Taker"},
                             "linefeatures": {"id": [free, bare], "number": ["124", "125"]}})
    assert r.status == 200, r
    uid = int(r.json())
    assert [(l["id"], l["number"]) for l in view(system, uid)["linefeatures"]] == [(free, "124"), (bare, "125")]
    assert numbers(system) == {"124": "user:line/%d" % free, "125": "user:line/%d" % bare}
    # an sccp line is named by its number: the name follows
    sccp = call(system, "add", {"protocol": {"protocol": "sccp", "context": "default"},
                                "linefeatures": {"number": "126"}}, path=LINES)
    assert sccp.status == 200, sccp
    sid = max(l["id"] for l in lines(system))
    assert call(system, "edit", {"linefeatures": {"id": [free, bare, sid], "number": ["124", "", "127"]}},
                id=uid).status == 200
    got = {l["id"]: l for l in lines(system)}
    assert (got[sid]["number"], got[sid]["name"]) == ("127", "127")
    assert set(numbers(system)) == {"124", "125", "127"}
    assert call(system, "delete", id=uid).status == 200
    assert numbers(system) == {}


def test_second_of_three_failing_leaves_nothing(system):
    clear(system)
    add_line(system, "131")
    before = snapshot(system)
    body = {"userfeatures": {"firstname": "Atomic", "loginclient": "atomic", "passwdclient": "pass"},
            "linefeatures": {"protocol": ["sip", "sip", "sip"], "context": ["default"] * 3,
                             "number": ["130", "131", "132"]}}
    assert_error(call(system, "add", body), 400, "number_taken", "linefeatures.number[1]")
    assert snapshot(system) == before
    body["linefeatures"]["number"][1] = "133"
    uid = add_ok(system, body)
    assert sorted(l["number"] for l in view(system, uid)["linefeatures"]) == ["130", "132", "133"]


def test_edit_replaces_the_line_set(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Set"},
                          "linefeatures": {"protocol": ["sip", "sip"], "context": ["default", "default"],
                                           "number": ["140", "141"]}})
    l140, l141 = [l["id"] for l in view(system, uid)["linefeatures"]]
    free = add_line(system, "142")
    # without linefeatures: lines untouched
    assert call(system, "edit", {"userfeatures": {"lastname": "X"}}, id=uid).status == 200
    assert [l["id"] for l in view(system, uid)["linefeatures"]] == [l140, l141]
    # keep 141, attach the free one, create one; 140 is deleted and its number released
    r = call(system, "edit", {"linefeatures": {"id": [l141, free, 0], "protocol": ["", "", "sip"],
                                               "context": ["", "", "default"], "number": ["", "", "143"]}}, id=uid)
    assert r.status == 200, r
    now = view(system, uid)["linefeatures"]
    assert [l["id"] for l in now][:2] == [l141, free] and now[2]["number"] == "143"
    assert l140 not in [l["id"] for l in lines(system)]
    assert "140" not in numbers(system)
    assert set(numbers(system)) == {"141", "142", "143"}
    # a new line may take the number of a line the same edit removes
    r = call(system, "edit", {"linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["141"]}}, id=uid)
    assert r.status == 200, r
    [l] = view(system, uid)["linefeatures"]
    assert l["number"] == "141" and l["id"] not in (l141, free)
    assert numbers(system) == {"141": "user:line/%d" % l["id"]}
    # an empty set detaches... by deleting every line (the original's behaviour)
    assert call(system, "edit", {"linefeatures": False}, id=uid).status == 200
    assert view(system, uid)["linefeatures"] is False
    assert lines(system) == [] and numbers(system) == {}


def test_delete_removes_lines_and_numbers(system):
    clear(system)
    free = add_line(system, "150")
    uid = add_ok(system, {"userfeatures": {"firstname": "Gone"},
                          "linefeatures": {"id": ["", free], "protocol": ["sip", ""], "context": ["default", ""],
                                           "number": ["151", ""]}})
    other = add_ok(system, {"userfeatures": {"firstname": "Stays"},
                            "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["152"]}})
    assert call(system, "delete", id=uid).status == 200
    assert [l["number"] for l in lines(system)] == ["152"]
    assert numbers(system) == {"152": "user:line/%d" % lines(system)[0]["id"]}
    assert redis_cli(system, "HGET", PREFIX + "line:byuser", uid).strip() == ""
    assert call(system, "deleteall").status == 200
    assert lines(system) == [] and numbers(system) == {}
    assert redis_cli(system, "HLEN", PREFIX + "line:owner").strip() == "0"
    assert call(system, "view", id=other).status == 404


def test_line_deleted_by_the_lines_service_leaves_the_user(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Left"},
                          "linefeatures": {"protocol": ["sip", "sip"], "context": ["default"] * 2,
                                           "number": ["160", "161"]}})
    l160, l161 = [l["id"] for l in view(system, uid)["linefeatures"]]
    assert call(system, "delete", path=LINES, id=l160).status == 200
    assert [l["id"] for l in view(system, uid)["linefeatures"]] == [l161]
    # the user's edit still works afterwards, and its delete removes the remaining line
    assert call(system, "edit", {"userfeatures": {"lastname": "Y"}}, id=uid).status == 200
    assert call(system, "delete", id=uid).status == 200
    assert lines(system) == []


def test_line_created_through_a_user_has_the_line_element_shape(system):
    clear(system)
    plain = add_line(system, "170", name="plainline")
    add_ok(system, {"userfeatures": {"firstname": "Shape"},
                    "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["171"],
                                     "name": ["userline"]}})
    a, b = lines(system)
    assert a["id"] == plain
    assert list(a) == list(b)
    assert b["name"] == "userline" and len(b["secret"]) == 8
    assert_error(call(system, "add", {"userfeatures": {"firstname": "T"},
                                      "linefeatures": {"protocol": ["sip"], "context": ["default"],
                                                       "name": ["PlainLine"]}}),
                 400, "already_exists", "linefeatures.name[0]")


# ---- search -----------------------------------------------------------------------------------------------


def test_search(system):
    clear(system)
    a = add_ok(system, {"userfeatures": {"firstname": "Jean", "lastname": "Dupont", "userfield": "Sales"},
                        "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["181"]}})
    b = add_ok(system, user("Marie", "Curie", userfield="Research"))

    def found(t):
        r = call(system, "search", search=t)
        if r.status == 204:
            return []
        assert r.status == 200, r
        return [u["id"] for u in r.json()]

    assert found("jean") == [a]
    assert found("CURIE") == [b]
    assert found("n dup") == [a]
    assert found("18") == [a]
    assert found("sales") == [a]
    assert found("Sale") == []
    assert found("r") == [b] or found("r") == [a, b]
    assert found("zzz") == []
    assert found("") == []


# ---- concurrency ------------------------------------------------------------------------------------------


def users_workers(system):
    return [p for p in system.workers if "ipbx-users" in p.name]


def test_concurrent_adds_of_one_client_login(system):
    clear(system)
    served = [p.text().count(" users/add ") for p in users_workers(system)]
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(32)

    def one(i):
        barrier.wait()
        r = call(system, "add", user("Racer%d" % i, loginclient="RaceLogin" if i % 2 else "racelogin",
                                     passwdclient="pass"))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] + [400] * 31
    for r in results:
        if r.status == 400:
            assert_error(r, 400, "already_exists", "userfeatures.loginclient")
    assert len(users(system)) == 1
    now = [p.text().count(" users/add ") for p in users_workers(system)]
    assert len(now) == 2 and all(n > s for n, s in zip(now, served)), (served, now)


def test_concurrent_adds_of_one_number(system):
    clear(system)
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(32)

    def one(i):
        barrier.wait()
        r = call(system, "add", {"userfeatures": {"firstname": "N%d" % i},
                                 "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["190"]}})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] + [400] * 31
    assert len(users(system)) == 1 and [l["number"] for l in lines(system)] == ["190"]
    assert [p.alive() for p in users_workers(system)] == [True, True]


# ---- the document's examples, bad input -------------------------------------------------------------------

DOC_MINIMAL = {
    "userfeatures": {"entityid": "2", "firstname": "John"},
    "dialaction": {"noanswer": {"actiontype": "none"}, "busy": {"actiontype": "none"},
                   "congestion": {"actiontype": "none"}, "chanunavail": {"actiontype": "none"}},
}

DOC_FULL_UF = {
    "entityid": "[entityid]", "firstname": "John", "lastname": "Doe", "callerid": "John Doe", "loginclient": "jdoe",
    "passwdclient": "8888", "mobilephonenumber": "", "ringseconds": "30", "simultcalls": "5",
    "musiconhold": "default", "voicemailid": "0", "enableclient": "1", "profileclient": "client", "enablehint": "1",
    "enablevoicemail": "1", "enablexfer": "1", "enableautomon": "0", "callrecord": "0", "callfilter": "0",
    "enablednd": "0", "bsfilter": "no", "agentid": "", "enablerna": "0", "destrna": "0033141389960",
    "enablebusy": "0", "destbusy": "0033141389960", "enableunc": "0", "destunc": "0033141389960",
    "outcallerid": "default", "preprocess_subroutine": "", "language": "fr_FR", "timezone": "America/Montreal",
    "ringintern": "", "ringextern": "", "ringgroup": "", "ringforward": "", "rightcallcode": "",
    "alarmclock": "00:00", "pitchdirection": "", "pitch": "", "description": "",
}
DOC_FULL_VM = {"fullname": "John Doe", "mailbox": "666", "password": "0000", "email": "jdoe@proformatique.com",
               "tz": "eu-fr", "attach": "1", "deletevoicemail": "1"}
DOC_FULL_FK = {"fknum": ["13", "14", "15", "17", "18"], "type": ["user", "extension", "meetme", "group", "queue"],
               "typeval": ["41", "extenfeatures-vmusermsg", "3", "2", "1"], "supervision": ["1", "0", "0", "0", "0"]}
DOC_FULL_LF = {k: [""] for k in ("id", "protocol", "name", "context", "number", "rules_type", "rules_time",
                                 "rules_order", "rules_group")}


def test_document_minimal_example(system):
    clear(system)
    uid = add_ok(system, DOC_MINIMAL)
    v = view(system, uid)
    assert (v["userfeatures"]["entityid"], v["userfeatures"]["firstname"]) == (2, "John")
    assert v["linefeatures"] is False
    assert v["dialaction"] == {e: da_row(uid, e, "none") for e in ("noanswer", "busy", "congestion", "chanunavail")}
    assert list(v["dialaction"]) == ["noanswer", "busy", "congestion", "chanunavail"]
    assert call(system, "edit", DOC_MINIMAL, id=uid).status == 200
    assert view(system, uid) == v


def test_document_full_example_userfeatures(system):
    clear(system)
    ent = min(e["id"] for e in call(system, "list", path=ENTITY).json())
    uf = dict(DOC_FULL_UF, entityid=str(ent))
    uid = add_ok(system, {"userfeatures": uf, "linefeatures": DOC_FULL_LF, "voicemail": DOC_FULL_VM,
                          "vmfeatures": {"skipcheckpass": "1"}, "phonefunckey": DOC_FULL_FK,
                          "queueskills": [{"id": 5, "weight": 22}, {"id": 2, "weight": 97}]})
    got = view(system, uid)
    assert got["linefeatures"] is False  # the all-empty template row is ignored
    assert got["voicemail"] == {"mailbox": "666", "fullname": "John Doe", "password": "0000",
                                "email": "jdoe@proformatique.com", "tz": "eu-fr", "attach": True,
                                "deletevoicemail": True, "context": "default", "skipcheckpass": True}
    e = got["userfeatures"]
    derived = {"callerid", "voicemailid", "agentid"}
    assert e["voicemailid"] > 0
    for k, sent in uf.items():
        if k in derived:
            continue
        if k in BOOL_KEYS:
            assert e[k] is (sent == "1"), k
        elif k in INT_KEYS:
            assert e[k] == int(sent), k
        else:
            assert e[k] == sent, k
    assert e["callerid"] == '"John Doe"'
    assert got["phonefunckey"] == [
        {"fknum": 13, "type": "user", "typeval": "41", "supervision": True, "label": ""},
        {"fknum": 14, "type": "extension", "typeval": "extenfeatures-vmusermsg", "supervision": False, "label": ""},
        {"fknum": 15, "type": "meetme", "typeval": "3", "supervision": False, "label": ""},
        {"fknum": 17, "type": "group", "typeval": "2", "supervision": False, "label": ""},
        {"fknum": 18, "type": "queue", "typeval": "1", "supervision": False, "label": ""}]
    assert got["queueskills"] == [{"id": 5, "weight": 22}, {"id": 2, "weight": 97}]
    # an edit without them keeps them; given, they replace the stored ones
    assert call(system, "edit", {"userfeatures": {"lastname": "Roe"}}, id=uid).status == 200
    assert view(system, uid)["queueskills"] == got["queueskills"]
    r = call(system, "edit", {"queueskills": [{"id": 7, "weight": "0"}], "phonefunckey": False}, id=uid)
    assert r.status == 200, r
    v = view(system, uid)
    assert (v["queueskills"], v["phonefunckey"]) == ([{"id": 7, "weight": 0}], False)


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
def test_json_corpus_n_files_refused(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Corpus"},
                          "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["199"]}})
    before = snapshot(system)
    for path in N_FILES:
        raw = path.read_bytes()
        for q in ({"act": "add"}, {"act": "edit", "id": uid}):
            r = system.post(USERS, q, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
            assert r.status == 400, (path.name, q, r)
            assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    assert snapshot(system) == before


# ---- voicemail --------------------------------------------------------------------------------------------


def test_voicemail_context_uniqueness_and_cleanup(system):
    clear(system)
    a = add_ok(system, {"userfeatures": {"firstname": "Vm"}, "voicemail": {"mailbox": "700", "fullname": "Vm A"}})
    v = view(system, a)
    assert v["voicemail"]["context"] == "default" and v["voicemail"]["mailbox"] == "700"
    assert v["userfeatures"]["enablevoicemail"] is True and v["userfeatures"]["voicemailid"] > 0
    vmid = v["userfeatures"]["voicemailid"]
    # the first line's context when none is given
    b = add_ok(system, {"userfeatures": {"firstname": "Other"}, "voicemail": {"mailbox": "700", "fullname": "B"},
                        "linefeatures": {"protocol": ["sip"], "context": ["other"], "number": ["700"]}})
    assert view(system, b)["voicemail"]["context"] == "other"
    before = snapshot(system)
    assert_error(call(system, "add", {"userfeatures": {"firstname": "C"},
                                      "voicemail": {"mailbox": "700", "fullname": "C", "context": "other"}}),
                 400, "already_exists", "voicemail.mailbox")
    assert_error(call(system, "edit", {"voicemail": {"context": "default"}}, id=b), 400, "already_exists",
                 "voicemail.mailbox")
    assert snapshot(system) == before
    # partial edit keeps the rest and the id
    assert call(system, "edit", {"voicemail": {"fullname": "Renamed"}}, id=a).status == 200
    v = view(system, a)
    assert (v["voicemail"]["fullname"], v["voicemail"]["mailbox"], v["userfeatures"]["voicemailid"]) == \
        ("Renamed", "700", vmid)
    # an edit without voicemail keeps it
    assert call(system, "edit", {"userfeatures": {"lastname": "L"}}, id=a).status == 200
    assert view(system, a)["voicemail"]["fullname"] == "Renamed"
    # the context is in use while a voicemail is in it; deleting the user frees the mailbox
    assert call(system, "delete", path=CONTEXT, id="default").status == 405
    assert call(system, "delete", id=a).status == 200
    assert redis_cli(system, "HGET", PREFIX + "voicemail:mailbox", "700@default").strip() == ""
    assert add_ok(system, {"userfeatures": {"firstname": "D"}, "voicemail": {"mailbox": "700", "fullname": "D"}})
    assert call(system, "deleteall").status == 200
    assert redis_cli(system, "HLEN", PREFIX + "user:voicemail").strip() == "0"
    assert redis_cli(system, "HLEN", PREFIX + "voicemail:mailbox").strip() == "0"


# ---- dialactions, the voicemail removed, function keys, cti profile, callerid of new lines ----------------


def hget(system, key, field):
    return redis_cli(system, "HGET", PREFIX + key, field).strip()


def da_row(uid, event, actiontype, action="", arg1="", arg2=""):
    return {"event": event, "category": "user", "categoryval": str(uid), "actiontype": actiontype, "action": action,
            "actionarg1": arg1, "actionarg2": arg2, "linked": True}


def test_dialactions_stored_merged_and_unlinked(system):
    clear(system)
    b = add_ok(system, user("Target", "B"))
    a = add_ok(system, {"userfeatures": {"firstname": "Caller"}, "dialaction": {
        "chanunavail": {"actiontype": "application", "action": "faxtomail", "actionarg1": "fax@example.com"},
        "noanswer": {"actiontype": "user", "actionarg1": str(b), "actionarg2": 20},
        "busy": {"actiontype": "endcall", "action": "busy"},
        "congestion": {"actiontype": "voicemenu", "actionarg1": "1"}}})
    da = view(system, a)["dialaction"]
    assert list(da) == ["noanswer", "busy", "congestion", "chanunavail"]
    assert da == {"noanswer": da_row(a, "noanswer", "user", "", str(b), "20"),
                  "busy": da_row(a, "busy", "endcall", "busy"),
                  "congestion": da_row(a, "congestion", "voicemenu", "", "1"),
                  "chanunavail": da_row(a, "chanunavail", "application", "faxtomail", "fax@example.com")}
    assert hget(system, "dialaction:target", "user:%d" % b) == str(a)
    assert view(system, b)["dialaction"] is False
    # an edit names the events it replaces; without dialaction they are kept
    assert call(system, "edit", {"dialaction": {"busy": {"actiontype": "none"}}}, id=a).status == 200
    assert call(system, "edit", {"userfeatures": {"lastname": "A"}}, id=a).status == 200
    got = view(system, a)["dialaction"]
    assert got == dict(da, busy=da_row(a, "busy", "none"))
    # moving the noanswer elsewhere drops the reverse index entry
    assert call(system, "edit", {"dialaction": {"noanswer": {"actiontype": "sound", "actionarg1": "beep"}}},
                id=a).status == 200
    assert hget(system, "dialaction:target", "user:%d" % b) == ""
    assert call(system, "edit", {"dialaction": {"noanswer": {"actiontype": "user", "actionarg1": str(b)}}},
                id=a).status == 200
    # a user may point at itself; a refused edit changes nothing
    before = snapshot(system)
    assert_error(call(system, "edit", {"dialaction": {"busy": {"actiontype": "user", "actionarg1": "99999"}}}, id=a),
                 400, "unknown_reference", "dialaction.busy.actionarg1")
    assert snapshot(system) == before
    assert call(system, "edit", {"dialaction": {"busy": {"actiontype": "user", "actionarg1": str(a)}}},
                id=a).status == 200
    assert hget(system, "dialaction:target", "user:%d" % a) == str(a)
    # deleting the target turns the dialaction pointing at it into none
    assert call(system, "delete", id=b).status == 200
    got = view(system, a)["dialaction"]
    assert got["noanswer"] == da_row(a, "noanswer", "none")
    assert got["busy"] == da_row(a, "busy", "user", "", str(a))
    assert hget(system, "dialaction:target", "user:%d" % b) == ""
    # false removes them all
    assert call(system, "edit", {"dialaction": False}, id=a).status == 200
    assert view(system, a)["dialaction"] is False
    assert redis_cli(system, "HLEN", PREFIX + "user:dialaction").strip() == "0"
    assert redis_cli(system, "HLEN", PREFIX + "dialaction:target").strip() == "0"


def test_deleting_a_user_forgets_its_own_dialactions(system):
    clear(system)
    b = add_ok(system, user("Target"))
    a = add_ok(system, {"userfeatures": {"firstname": "Caller"},
                        "dialaction": {"busy": {"actiontype": "user", "actionarg1": str(b)}}})
    c = add_ok(system, {"userfeatures": {"firstname": "Other"},
                        "dialaction": {"noanswer": {"actiontype": "user", "actionarg1": str(b)}}})
    assert hget(system, "dialaction:target", "user:%d" % b) == "%d,%d" % (a, c)
    assert call(system, "delete", id=a).status == 200
    assert hget(system, "dialaction:target", "user:%d" % b) == str(c)
    assert hget(system, "user:dialaction", a) == ""
    # deleteall: every reference goes with the users
    assert call(system, "deleteall").status == 200
    for key in ("user:dialaction", "dialaction:target"):
        assert redis_cli(system, "HLEN", PREFIX + key).strip() == "0", key


def test_voicemail_removed_by_false(system):
    clear(system)
    refs = hget(system, "context:refs", "default")
    uid = add_ok(system, {"userfeatures": {"firstname": "Vm"}, "voicemail": {"mailbox": "710", "fullname": "Vm"}})
    vmid = view(system, uid)["userfeatures"]["voicemailid"]
    assert hget(system, "voicemail:mailbox", "710@default") == str(uid)
    assert call(system, "edit", {"voicemail": False}, id=uid).status == 200
    v = view(system, uid)
    assert v["voicemail"] is False
    assert (v["userfeatures"]["enablevoicemail"], v["userfeatures"]["voicemailid"]) == (False, 0)
    assert hget(system, "voicemail:mailbox", "710@default") == ""
    assert hget(system, "context:refs", "default") == refs
    # false on a user without one, and on add, is accepted and changes nothing
    assert call(system, "edit", {"voicemail": False}, id=uid).status == 200
    assert view(system, add_ok(system, {"userfeatures": {"firstname": "N"}, "voicemail": False}))["voicemail"] is False
    # a new one gets a new id
    assert call(system, "edit", {"voicemail": {"mailbox": "710", "fullname": "Again"}}, id=uid).status == 200
    assert view(system, uid)["userfeatures"]["voicemailid"] > vmid


def test_function_keys_sorted_and_cti_profile(system):
    clear(system)
    uid = add_ok(system, {"userfeatures": {"firstname": "Keys", "cti_profile_id": "3"},
                          "phonefunckey": {"fknum": ["9", "2", "5"], "type": ["user", "group", "custom"],
                                           "typeval": ["1", "2", "*10"], "label": ["nine", "two", "five"]}})
    v = view(system, uid)
    assert [(k["fknum"], k["label"]) for k in v["phonefunckey"]] == [(2, "two"), (5, "five"), (9, "nine")]
    assert v["userfeatures"]["cti_profile_id"] == 3
    assert call(system, "edit", {"userfeatures": {"cti_profile_id": 0}}, id=uid).status == 200
    assert view(system, uid)["userfeatures"]["cti_profile_id"] is None
    assert users(system)[0]["cti_profile_id"] is None


def test_new_lines_take_the_callerid_of_the_user(system):
    clear(system)
    add_ok(system, {"userfeatures": {"firstname": "John", "lastname": "Doe"},
                    "linefeatures": {"protocol": ["sip", "iax", "sccp"], "context": ["default"] * 3,
                                     "number": ["120", "", "121"]}})
    got = {l["protocol"]: l for l in lines(system)}
    assert got["sip"]["callerid"] == '"John Doe" <120>'
    assert got["iax"]["callerid"] == '"John Doe"'
    long = "\u00e9" * 128
    add_ok(system, {"userfeatures": {"firstname": long, "lastname": long},
                    "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["122"]}})
    [l] = [l for l in lines(system) if l["number"] == "122"]
    assert l["callerid"].startswith('"' + "\u00e9" * 10) and l["callerid"].endswith('" <122>')
    assert len(l["callerid"]) <= 160


DOC_LINES_TYPO = b'''{"userfeatures": {"firstname": "John"}, "linefeatures": {
      "id": ["0","45","0"],
      "protocol": [{"sip","","sip"],
      "context": ["default","","default"],
      "number": ["","4000","4001"],
      "rules_type": ["simul","simul",""],
      "rules_time": ["10","10","20"],
      "rules_order": ["1","2","1"],
      "rules_group": ["1","1","2"]
   }}'''


def test_document_lines_example_first_and_last_created(system):
    clear(system)
    free = add_line(system)  # a free line without a number: the row gives it 4000
    body = DOC_LINES_TYPO.replace(b'"45"', b'"%d"' % free)
    r = system.post(USERS, {"act": "add"}, body=body, auth=ADMIN, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["error"] == "invalid_json", r
    assert users(system) == []
    fixed = body.replace(b'[{"sip"', b'["sip"')
    r = system.post(USERS, {"act": "add"}, body=fixed, auth=ADMIN, headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    got = view(system, int(r.json()))["linefeatures"]
    assert [l["id"] for l in got][1] == free
    assert [(l["number"], l["context"], l["protocol"]) for l in got] == \
        [("", "default", "sip"), ("4000", "default", "sip"), ("4001", "default", "sip")]
    assert [(l["rules_type"], l["rules_time"], l["rules_group"]) for l in (got[0], got[2])] == \
        [("simul", "10", "1"), ("", "20", "2")]
    assert set(numbers(system)) == {"4000", "4001"}


def test_concurrent_adds_of_one_number_and_one_login(system):
    clear(system)
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(24)

    def one(i):
        barrier.wait()
        r = call(system, "add", {"userfeatures": {"firstname": "R%d" % i, "loginclient": "same", "passwdclient": "pass"},
                                 "linefeatures": {"protocol": ["sip"], "context": ["default"], "number": ["191"]}})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] + [400] * 23
    for r in results:
        if r.status == 400:
            assert r.json()["error"] in ("already_exists", "number_taken"), r.json()
    assert len(users(system)) == 1 and [l["number"] for l in lines(system)] == ["191"]
    assert len(redis_cli(system, "HKEYS", PREFIX + "user:login").split()) == 1


def test_new_lines_on_a_device(system):
    clear(system)
    redis_cli(system, "HSET", PREFIX + "device:data", "7", "x")  # the devices service's record: existence only
    try:
        r = call(system, "add", {"protocol": {"protocol": "sip", "context": "default"},
                                 "linefeatures": {"number": "165", "device": "7", "num": 1}}, path=LINES)
        assert r.status == 200, r
        first = max(l["id"] for l in lines(system))
        rows = {"protocol": ["sip", "sip"], "context": ["default"] * 2, "number": ["166", "167"]}
        before = snapshot(system)
        for cells, code, field in (
            ({"device": ["7", "7"], "num": ["", "2"]}, "already_exists", "linefeatures.num[0]"),
            ({"device": ["7", "7"], "num": ["2", "2"]}, "already_exists", "linefeatures.num[1]"),
            ({"device": ["", "99"]}, "unknown_reference", "linefeatures.device[1]"),
            ({"device": ["7x"]}, "invalid_value", "linefeatures.device[0]"),
            ({"device": ["7"], "num": ["13"]}, "out_of_range", "linefeatures.num[0]"),
        ):
            assert_error(call(system, "add", {"userfeatures": {"firstname": "Dev"}, "linefeatures": dict(rows, **cells)}),
                         400, code, field)
            assert snapshot(system) == before, cells
        uid = add_ok(system, {"userfeatures": {"firstname": "Dev"},
                              "linefeatures": dict(rows, device=["7", "7"], num=["2", "3"])})
        got = view(system, uid)["linefeatures"]
        assert [(l["device"], l["num"]) for l in got] == [("7", 2), ("7", 3)]
        ids = [l["id"] for l in got]
        assert hget(system, "line:bydevice", "7") == ",".join(str(x) for x in [first] + ids)
        # an attached row names the line's own device and slot, or nothing
        assert_error(call(system, "edit", {"linefeatures": {"id": ids, "device": ["", "8"]}}, id=uid), 400,
                     "invalid_value", "linefeatures.device[1]")
        assert_error(call(system, "edit", {"linefeatures": {"id": ids, "num": ["3", ""]}}, id=uid), 400,
                     "invalid_value", "linefeatures.num[0]")
        assert call(system, "edit", {"linefeatures": {"id": ids, "device": ["7", "7"], "num": ["2", "3"]}},
                    id=uid).status == 200
        assert call(system, "delete", id=uid).status == 200
        assert hget(system, "line:bydevice", "7") == str(first)
    finally:
        redis_cli(system, "HDEL", PREFIX + "device:data", "7")


def test_dialactions_racing_the_delete_of_their_target(system):
    """Edits pointing at a user while it is deleted, through two workers: whatever the order, no dialaction
    is left pointing at the deleted user and the reverse index holds exactly the dialactions that point."""
    clear(system)
    callers = [add_ok(system, user("Caller%d" % i)) for i in range(12)]
    target = add_ok(system, user("Target"))
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(len(callers) + 1)

    def edit(uid):
        barrier.wait()
        r = call(system, "edit", {"dialaction": {"noanswer": {"actiontype": "user", "actionarg1": str(target)}}},
                 id=uid)
        with lock:
            results.append(r)

    def delete():
        barrier.wait()
        r = call(system, "delete", id=target)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=edit, args=(u,)) for u in callers] + [threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.status == 200 or (r.status == 400 and r.json()["field"] == "dialaction.noanswer.actionarg1"), r
    assert call(system, "view", id=target).status == 404
    for uid in callers:
        da = view(system, uid)["dialaction"]
        assert da is False or da["noanswer"]["actiontype"] == "none", (uid, da)
    assert redis_cli(system, "HLEN", PREFIX + "dialaction:target").strip() == "0"
