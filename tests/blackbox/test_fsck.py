"""xws-fsck, the consistency checker: a system built through the API (entities, contexts, lines of
the four protocols, devices with lines, users with lines and a voicemail) is clean (exit 0); each
kind of corruption written straight into Redis is named (area, key[field]) with exit 1, and the
store is clean again once it is undone; --area narrows the check, --json gives one object, usage
and connection errors exit 2; checks running while lines and contexts are written never report a
false problem (the check is one atomic read-only call)."""

import json
import socket
import subprocess
import threading

import pytest

from conftest import ADMIN, BIN_DIR, ENTITY, System, sanitizer_reports, wait_until

LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
DEVICES = "/service/ipbx/json.php/restricted/pbx_settings/devices/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
P = "xws:"
FSCK = BIN_DIR / "xws-fsck"
DEVICEID = "0123456789abcdef0123456789abcdef"


# ---- a small binary-safe Redis client (DUMP / RESTORE need raw bytes) ---------------------------------


class Redis:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("unexpected reply %r" % line)


def fsck(system, *args, env=None):
    r = subprocess.run([str(FSCK)] + [str(a) for a in args], env=env or system.env, capture_output=True, timeout=120)
    assert not sanitizer_reports(r.stderr.decode("utf-8", "replace")), r.stderr
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def assert_clean(system):
    rc, out, err = fsck(system)
    assert (rc, out) == (0, ""), (rc, out, err)
    assert "clean" in err


# ---- the system, built through the API ---------------------------------------------------------------


def ok(r, status=200):
    assert r.status == status, r
    return r.json() if r.body else None


@pytest.fixture(scope="module")
def system():
    if not FSCK.is_file():
        pytest.skip("xws-fsck is not built")
    s = System(workers=1)
    try:
        s.start_worker("xws-ipbx-lines")
        s.start_worker("xws-ipbx-users")
        s.start_worker("xws-devices")
        for path in (LINES, USERS, DEVICES):
            wait_until(lambda: s.get(path, {"act": "list"}, auth=ADMIN).status == 204, timeout=20, what=path)
        post = lambda path, act, body, **q: s.post(path, dict(q, act=act), body=body, auth=ADMIN)  # noqa: E731
        ok(post(ENTITY, "add", {"name": "default", "displayname": "Default"}))
        ok(post(ENTITY, "add", {"name": "second", "displayname": "Second"}))
        ok(post(CONTEXT, "add", {"context": {"name": "default", "entity": "default"},
                                 "contextnumbers": {"user": [{"numberbeg": "100", "numberend": "299"}]}}))
        ok(post(CONTEXT, "add", {"context": {"name": "other", "entity": "second"}, "contextinclude": ["default"]}))
        d1 = ok(post(DEVICES, "add", {"mac": "00:08:5d:2a:4f:b1", "ip": "10.0.0.5", "deviceid": DEVICEID}))
        d2 = ok(post(DEVICES, "add", {"mac": "00:08:5d:2a:4f:b2", "ip": "10.0.0.5"}))
        s.ids = {"dev1": str(d1["id"]), "dev2": str(d2["id"])}
        ok(post(LINES, "add", {"protocol": {"protocol": "sip", "context": "default", "name": "sipone"},
                               "linefeatures": {"number": "100", "device": s.ids["dev1"], "num": 1}}))
        ok(post(LINES, "add", {"protocol": {"protocol": "iax", "context": "default", "name": "iaxone"},
                               "linefeatures": {"number": "101", "device": s.ids["dev1"], "num": 2}}))
        ok(post(LINES, "add", {"protocol": {"protocol": "sccp", "context": "default"},
                               "linefeatures": {"number": "102", "device": s.ids["dev2"]}}))
        ok(post(LINES, "add", {"protocol": {"protocol": "custom", "context": "other", "interface": "DAHDI/g1/5551234"},
                               "linefeatures": {"number": "5551234"}}))
        ok(post(LINES, "add", {"protocol": {"protocol": "sip", "context": "other", "name": "freeone"}}))
        u1 = ok(post(USERS, "add", {"userfeatures": {"firstname": "Alice", "lastname": "Smith", "loginclient": "alice",
                                                     "passwdclient": "secret1", "enableclient": True},
                                    "linefeatures": {"protocol": ["sip", "sccp"], "context": ["default", "default"],
                                                     "number": ["110", "111"]},
                                    "voicemail": {"mailbox": "110", "fullname": "Alice Smith"}}))
        u2 = ok(post(USERS, "add", {"userfeatures": {"firstname": "Bob", "entityid": 2},
                                    "linefeatures": {"id": ["5"]},
                                    "voicemail": {"mailbox": "200", "fullname": "Bob", "context": "other"}}))
        s.ids.update({"alice": u1, "bob": u2})
    except BaseException:
        s.stop(check=False)
        raise
    s.rd = Redis(str(s.dir / "redis.sock"))
    yield s
    s.rd.close()
    s.stop()


def test_a_clean_system_passes(system):
    rc, out, err = fsck(system)
    assert (rc, out) == (0, ""), (rc, out, err)
    rc, out, err = fsck(system, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["clean"] is True and doc["problems"] == [], doc
    # every object and index entry was read: 2 entities, 2 contexts, 7 lines, 2 devices, 2 users ...
    assert doc["checked"] > 40, doc
    assert set(doc) == {"clean", "checked", "ms", "problems"}


# ---- corruptions ---------------------------------------------------------------------------------------


def line_id(system, name):
    return system.rd("HGET", P + "line:name", name).decode()


def lua_hset(key, field, table):
    """An EVAL that stores cmsgpack.pack(<table>) in key[field] (a record of another shape)."""
    return ("EVAL", "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(%s))" % table, 1, P + key, field)


# (what, keys touched, commands (a callable of the system -> list of commands),
#  expected (area, key substring[, problem substring]))
CORRUPTIONS = [
    ("entity name index entry missing", ["entity:name"], lambda s: [("HDEL", P + "entity:name", "second")],
     ("entities", "entity:name[second]")),
    ("entity reference count off", ["entity:refs"], lambda s: [("HINCRBY", P + "entity:refs", "1", 1)],
     ("entities", "entity:refs[1]")),
    ("entity counter below the ids", ["entity:seq"], lambda s: [("SET", P + "entity:seq", 1)],
     ("entities", "entity:seq")),
    ("context reference count off", ["context:refs"], lambda s: [("HINCRBY", P + "context:refs", "other", -1)],
     ("contexts", "context:refs[other]")),
    ("context include count missing", ["context:inclrefs"], lambda s: [("HDEL", P + "context:inclrefs", "default")],
     ("contexts", "context:inclrefs[default]")),
    ("context record that does not decode", ["context:data"], lambda s: [("HSET", P + "context:data", "bad", "\xc1")],
     ("contexts", "context:data[bad]")),
    ("line name index naming no line", ["line:name"], lambda s: [("HSET", P + "line:name", "ghost", 999)],
     ("lines", "line:name[ghost]")),
    ("line name index entry missing", ["line:name"], lambda s: [("HDEL", P + "line:name", "iaxone")],
     ("lines", "line:name[iaxone]")),
    ("line counter below the ids", ["line:seq"], lambda s: [("SET", P + "line:seq", 2)], ("lines", "line:seq")),
    ("line record that does not decode", ["line:data", "line:seq"],
     lambda s: [("HSET", P + "line:data", 50, "garbage"), ("SET", P + "line:seq", 50)], ("lines", "line:data[50]")),
    ("line refs counted", ["line:refs"], lambda s: [("HSET", P + "line:refs", 1, 1)], ("lines", "line:refs[1]")),
    ("line owner missing", ["line:owner"], lambda s: [("HDEL", P + "line:owner", 5)], ("lines", "line:byuser[{bob}]")),
    ("line owner naming another user", ["line:owner"], lambda s: [("HSET", P + "line:owner", 5, s.ids["alice"])],
     ("lines", "line:owner[5]")),
    ("user's line list naming a free line", ["line:byuser"],
     lambda s: [("HSET", P + "line:byuser", s.ids["bob"], "5,4")], ("lines", "line:byuser[{bob}]")),
    ("line device missing", ["line:device"], lambda s: [("HDEL", P + "line:device", line_id(s, "iaxone"))],
     ("lines", "line:bydevice[{dev1}]")),
    ("device line list naming no device", ["line:bydevice"], lambda s: [("HSET", P + "line:bydevice", 99, "1")],
     ("lines", "line:bydevice[99]")),
    ("two lines in one slot of a device", ["line:device", "line:bydevice"],
     lambda s: [("HSET", P + "line:device", line_id(s, "102"), s.ids["dev1"]),
                ("HSET", P + "line:bydevice", s.ids["dev1"], "1,2,%s" % line_id(s, "102")),
                ("HDEL", P + "line:bydevice", s.ids["dev2"])],
     ("lines", "line:device[", "takes slot 1 of device")),
    ("number missing from its context", ["context:numbers:default"], lambda s: [("HDEL", P + "context:numbers:default", 101)],
     ("numbers", "context:numbers:default[101]")),
    ("number held by a line that does not exist", ["context:numbers:default", "context:numidx:default"],
     lambda s: [("HSET", P + "context:numbers:default", 150, "user:line/999"), ("ZADD", P + "context:numidx:default", 150, 150)],
     ("numbers", "context:numbers:default[150]")),
    ("number outside the user ranges", ["context:numbers:default", "context:numidx:default"],
     lambda s: [("HSET", P + "context:numbers:default", 900, "user:line/77"), ("ZADD", P + "context:numidx:default", 900, 900)],
     ("numbers", "context:numbers:default[900]", "outside the user ranges")),
    ("sorted index score wrong", ["context:numidx:default"], lambda s: [("ZADD", P + "context:numidx:default", 7, 100)],
     ("numbers", "context:numidx:default[100]")),
    ("sorted index entry missing", ["context:numidx:other"], lambda s: [("ZREM", P + "context:numidx:other", 5551234)],
     ("numbers", "context:numidx:other[5551234]")),
    ("numbers of a context that does not exist", ["context:numbers:ghost"],
     lambda s: [("HSET", P + "context:numbers:ghost", 1, "user:line/1")], ("numbers", "context:numbers:ghost")),
    ("device mac index entry missing", ["device:mac"], lambda s: [("HDEL", P + "device:mac", "00:08:5d:2a:4f:b2")],
     ("devices", "device:mac[00:08:5d:2a:4f:b2]")),
    ("device ip lookup naming no device", ["device:ip"], lambda s: [("HSET", P + "device:ip", "10.9.9.9", "42")],
     ("devices", "device:ip[10.9.9.9]")),
    ("device deviceid index naming another device", ["device:deviceid"],
     lambda s: [("HSET", P + "device:deviceid", DEVICEID, s.ids["dev2"])],
     ("devices", "device:deviceid[%s]" % DEVICEID)),
    ("user login index missing", ["user:login"], lambda s: [("HDEL", P + "user:login", "alice")],
     ("users", "user:login[alice]")),
    ("user identity wrong", ["user:identity"], lambda s: [("HSET", P + "user:identity", s.ids["bob"], "Robert")],
     ("users", "user:identity[{bob}]")),
    ("user of an entity that does not exist", ["user:data", "entity:refs"],
     lambda s: [("EVAL", "local u = cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])); u.entityid = 9; "
                 "redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(u))", 1, P + "user:data", s.ids["bob"])],
     ("users", "user:data[{bob}]")),
    ("voicemail mailbox index missing", ["voicemail:mailbox"], lambda s: [("HDEL", P + "voicemail:mailbox", "200@other")],
     ("voicemail", "voicemail:mailbox[200@other]")),
    ("voicemail counter below the ids", ["voicemail:seq"], lambda s: [("SET", P + "voicemail:seq", 1)],
     ("voicemail", "voicemail:seq")),
    ("group without its name, number and context reference", ["group:data", "group:seq"],
     lambda s: [lua_hset("group:data", 1, "{name='sales', context='default', number='150'}"), ("SET", P + "group:seq", 1)],
     ("groups", "group:name[sales]")),
    ("group number missing from its context", ["group:data", "group:seq", "group:name", "context:refs"],
     lambda s: [lua_hset("group:data", 1, "{name='sales', context='default', number='150'}"), ("SET", P + "group:seq", 1),
                ("HSET", P + "group:name", "sales", 1), ("HINCRBY", P + "context:refs", "default", 1)],
     ("numbers", "context:numbers:default[150]")),
    ("group member list without the user's membership", ["group:data", "group:name", "group:seq", "group:members"],
     lambda s: [lua_hset("group:data", 1, "{name='sales'}"), ("HSET", P + "group:name", "sales", 1), ("SET", P + "group:seq", 1),
                ("HSET", P + "group:members", 1, s.ids["alice"])],
     ("groups", "group:members[1]")),
    ("queue membership of a queue that does not exist", ["user:queues"],
     lambda s: [lua_hset("user:queues", s.ids["alice"], "{['3'] = {chantype='default'}}")],
     ("queues", "user:queues[{alice}]")),
    ("pickup row naming a user that does not exist", ["pickup:data", "pickup:name", "pickup:rows", "pickup:target"],
     lambda s: [lua_hset("pickup:data", 0, "{name='p0', description='', commented=false}"), ("HSET", P + "pickup:name", "p0", 0),
                lua_hset("pickup:rows", 0, "{{category='member', membertype='user', memberid=999}}"),
                ("HSET", P + "pickup:target", "user:999", 0)],
     ("pickups", "pickup:rows[0]")),
    ("pickup target missing", ["pickup:data", "pickup:name", "pickup:rows"],
     lambda s: [lua_hset("pickup:data", 0, "{name='p0'}"), ("HSET", P + "pickup:name", "p0", 0),
                lua_hset("pickup:rows", 0, "{{category='member', membertype='user', memberid=%s}}" % s.ids["alice"])],
     ("pickups", "pickup:target[user:{alice}]")),
    ("dialaction target missing", ["user:dialaction"],
     lambda s: [lua_hset("user:dialaction", s.ids["bob"], "{noanswer={actiontype='user', action='', actionarg1='%s', "
                         "actionarg2=''}}" % s.ids["alice"])],
     ("dialactions", "dialaction:target[user:{alice}]")),
    ("dialaction target listing a user without such a dialaction", ["dialaction:target"],
     lambda s: [("HSET", P + "dialaction:target", "user:%s" % s.ids["alice"], s.ids["bob"])],
     ("dialactions", "dialaction:target[user:{alice}]")),
    ("function key on a group that does not exist", ["user:extra", "funckey:target"],
     lambda s: [lua_hset("user:extra", s.ids["bob"], "{phonefunckey={{fknum=1, type='group', typeval='77', supervision=false, "
                         "label=''}}, queueskills={}}"), ("HSET", P + "funckey:target", "group:77", s.ids["bob"])],
     ("funckeys", "user:extra[{bob}]", "group:77")),
    ("function key target missing", ["user:extra"],
     lambda s: [lua_hset("user:extra", s.ids["bob"], "{phonefunckey={{fknum=1, type='user', typeval='%s', supervision=false, "
                         "label=''}}, queueskills={}}" % s.ids["alice"])],
     ("funckeys", "funckey:target[user:{alice}]")),
    ("function key target listing a user without such a key", ["funckey:target"],
     lambda s: [("HSET", P + "funckey:target", "user:%s" % s.ids["alice"], s.ids["bob"])],
     ("funckeys", "funckey:target[user:{alice}]")),
    ("a hash key of the wrong type", ["entity:name"], lambda s: [("DEL", P + "entity:name"), ("SET", P + "entity:name", "x")],
     ("entities", "entity:name")),
]


@pytest.mark.parametrize("what,keys,commands,expected", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_each_corruption_is_named(system, what, keys, commands, expected):
    rd = system.rd
    saved = {k: rd("DUMP", P + k) for k in keys}
    try:
        for c in commands(system):
            rd(*c)
        rc, out, err = fsck(system)
        assert rc == 1, (rc, out, err)
        lines = out.splitlines()
        assert lines and all(": " in ln and "; expected: " in ln for ln in lines), out
        area, key, problem = (expected + ("",))[:3]
        key = key.format(**system.ids)
        hits = [ln for ln in lines if ln.startswith(area + " " + P) and key in ln and problem in ln]
        assert hits, "no '%s %s' line (%s) in:\n%s" % (area, key, problem, out)
        assert "problem(s)" in err
        # the JSON form says the same
        rc, out, err = fsck(system, "--json")
        doc = json.loads(out)
        assert rc == 1 and doc["clean"] is False
        assert any(p["area"] == area and key in p["key"] and p["problem"] and p["expected"] for p in doc["problems"]), doc
    finally:
        for k, dump in saved.items():
            rd("DEL", P + k)
            if dump is not None:
                rd("RESTORE", P + k, 0, dump, "REPLACE")
    assert_clean(system)


def test_area_narrows_the_check(system):
    rd = system.rd
    saved = rd("DUMP", P + "line:name")
    try:
        rd("HSET", P + "line:name", "ghost", 999)
        assert fsck(system, "--area", "devices")[0] == 0
        assert fsck(system, "-a", "entities", "-a", "numbers")[0] == 0
        rc, out, _ = fsck(system, "-a", "lines")
        assert rc == 1 and "line:name[ghost]" in out, out
        rc, out, _ = fsck(system, "-a", "ipbx-lines")
        assert rc == 1 and "line:name[ghost]" in out, out
    finally:
        rd("RESTORE", P + "line:name", 0, saved, "REPLACE")
    assert_clean(system)


def test_usage_and_connection_errors(system):
    assert fsck(system, "--area", "nothing")[0] == 2
    assert fsck(system, "extra")[0] == 2
    assert fsck(system, "-t", "0")[0] == 2
    env = dict(system.env, XWS_REDIS="unix:%s/nothing.sock" % system.dir)
    rc, out, err = fsck(system, env=env)
    assert (rc, out) == (2, "") and "unavailable" in err, err
    rc, out, _ = fsck(system, "--help")
    assert rc == 0 and "--area" in out and "Exit status" in out
    assert fsck(system, "--version")[0] == 0


def test_prefix_setting(system):
    """Another prefix is another (here empty) store: clean, and nothing of xws: is read."""
    env = dict(system.env, XWS_REDIS_PREFIX="other:")
    rc, out, err = fsck(system, "--json", env=env)
    assert rc == 0 and json.loads(out)["checked"] == 0, (out, err)


def test_no_false_alarm_while_writes_race_the_check(system):
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            name = "race%d" % i
            r = system.post(CONTEXT, {"act": "add"}, body={"context": {"name": name, "entity": "default"}}, auth=ADMIN)
            if r.status != 200:
                errors.append(r)
                return
            r = system.post(LINES, {"act": "add"}, body={"protocol": {"protocol": "sip", "context": name, "name": name},
                                                         "linefeatures": {"number": "4%03d" % i}}, auth=ADMIN)
            if r.status != 200:
                errors.append(r)
                return
            lid = system.rd("HGET", P + "line:name", name).decode()
            for path, q in ((LINES, {"act": "delete", "id": lid}), (CONTEXT, {"act": "delete", "id": name})):
                r = system.get(path, q, auth=ADMIN)
                if r.status != 200:
                    errors.append(r)
                    return

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(15):
            rc, out, err = fsck(system)
            assert (rc, out) == (0, ""), (rc, out, err)
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert_clean(system)
