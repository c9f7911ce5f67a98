"""The gateway's reply cache (gateway/gw_cache.h): a read answer with an ETag is kept and served
again only after its service confirmed, during the request, that the tag is current (the service
answers 304 to the kept tag). These tests check that no answer is ever stale: after a write to
the resource itself and to the resources it shows (a line shows its user, a user its entity and
lines, a device its lines), with the client's own If-None-Match, `sum`, HEAD, a bound too small to
keep an answer, and with the cache off (reply_cache_bytes = 0)."""

import re
import signal

import pytest

from conftest import ADMIN, ENTITY, System, md5_hex, redis_cli, wait_until

USERS = "/service/ipbx/json.php/restricted/pbx_settings/users/"
USERS_PRIVATE = "/service/ipbx/json.php/private/pbx_settings/users/"
LINES = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
DEVICES = "/service/ipbx/json.php/restricted/pbx_settings/devices/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"


def start(extra_env=None):
    s = System(workers=1, extra_env=extra_env)
    try:
        s.start_services({"xws-ipbx-lines": 1, "xws-ipbx-users": 1, "xws-devices": 1}, ready=(USERS, LINES, DEVICES))
        r = s.post(ENTITY, {"act": "add"}, body={"name": "default", "displayname": "Default"}, auth=ADMIN)
        assert r.status == 200, r
        r = s.post(CONTEXT, {"act": "add"}, auth=ADMIN, body={
            "context": {"name": "default", "entity": "default"},
            "contextnumbers": {"user": [{"numberbeg": "1000", "numberend": "1999"}]}})
        assert r.status == 200, r
    except BaseException:
        s.stop(check=False)
        raise
    return s


@pytest.fixture(scope="module")
def system():
    s = start()
    yield s
    s.stop()


def metric(system, name):
    r = system.get("/metrics", auth=ADMIN)
    assert r.status == 200, r
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
    assert m, "%s missing from /metrics" % name
    return int(m.group(1))


def add_user(system, first, last="Cache", number=None):
    body = {"userfeatures": {"firstname": first, "lastname": last}}
    if number is not None:
        body["linefeatures"] = {"protocol": ["sip"], "context": ["default"], "number": [number]}
    r = system.post(USERS, {"act": "add"}, body=body, auth=ADMIN)
    assert r.status == 200, r
    return int(r.json())


def view(system, path, id_, headers=None):
    r = system.get(path, {"act": "view", "id": str(id_)}, auth=ADMIN, headers=headers)
    assert r.status in (200, 304), r
    return r


def test_second_view_is_served_from_the_cache_and_equal(system):
    uid = add_user(system, "Alice", number="1001")
    first = view(system, USERS, uid)
    hits = metric(system, "xws_reply_cache_hits_total")
    second = view(system, USERS, uid)
    assert second.status == 200 and second.body == first.body
    assert second.headers["etag"] == first.headers["etag"]
    assert metric(system, "xws_reply_cache_hits_total") == hits + 1
    assert metric(system, "xws_reply_cache_entries") >= 1 and metric(system, "xws_reply_cache_bytes") > len(first.body)


def test_edit_is_seen_at_once(system):
    uid = add_user(system, "Bob")
    before = view(system, USERS, uid)
    view(system, USERS, uid)  # kept and confirmed
    r = system.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Robert"}}, auth=ADMIN)
    assert r.status == 200, r
    after = view(system, USERS, uid)
    assert after.json()["userfeatures"]["firstname"] == "Robert"
    assert after.headers["etag"] != before.headers["etag"]
    assert view(system, USERS, uid).body == after.body  # the new answer is the one kept now


def test_a_write_to_what_an_answer_shows_is_seen(system):
    """A line view shows its user's name, a user view its entity and lines, a device view its lines:
    writes through the other resources change the kept answers' tags."""
    uid = add_user(system, "Carol", number="1003")
    u = view(system, USERS, uid).json()
    lid = u["linefeatures"][0]["id"]
    assert view(system, LINES, lid).json()["linefeatures"]["useridentity"] == "Carol Cache"
    view(system, LINES, lid)
    r = system.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"lastname": "Kept"}}, auth=ADMIN)
    assert r.status == 200, r
    assert view(system, LINES, lid).json()["linefeatures"]["useridentity"] == "Carol Kept"

    view(system, USERS, uid)
    r = system.post(ENTITY, {"act": "edit", "id": str(u["entity"]["id"])},
                    body={"name": "default", "displayname": "Renamed"}, auth=ADMIN)
    assert r.status == 200, r
    assert view(system, USERS, uid).json()["entity"]["displayname"] == "Renamed"

    r = system.post(LINES, {"act": "edit", "id": str(lid)}, body={"linefeatures": {"description": "desk"}}, auth=ADMIN)
    assert r.status == 200, r
    assert view(system, USERS, uid).json()["linefeatures"][0]["description"] == "desk"

    r = system.post(DEVICES, {"act": "add"}, body={"mac": "00:11:22:33:44:55"}, auth=ADMIN)
    assert r.status == 200, r
    did = r.json()["id"]
    dv = system.get(DEVICES, {"act": "view", "id": str(did)}, auth=ADMIN)
    assert dv.status == 200, dv
    system.get(DEVICES, {"act": "view", "id": str(did)}, auth=ADMIN)
    r = system.post(LINES, {"act": "edit", "id": str(lid)}, body={"linefeatures": {"device": str(did)}}, auth=ADMIN)
    assert r.status == 200, r
    assert view(system, USERS, uid).json()["linefeatures"][0]["device"] == str(did)
    dv2 = system.get(DEVICES, {"act": "view", "id": str(did)}, auth=ADMIN)
    assert dv2.status == 200 and dv2.body != dv.body and dv2.headers["etag"] != dv.headers["etag"]


def test_lists_and_searches_follow_adds_and_deletes(system):
    first = system.get(USERS, {"act": "list"}, auth=ADMIN)
    assert first.status == 200
    assert system.get(USERS, {"act": "list"}, auth=ADMIN).body == first.body
    uid = add_user(system, "Dave")
    listed = system.get(USERS, {"act": "list"}, auth=ADMIN).json()
    assert uid in [u["id"] for u in listed] and len(listed) == len(first.json()) + 1
    assert [u["id"] for u in system.get(USERS, {"act": "search", "search": "dave"}, auth=ADMIN).json()] == [uid]
    assert system.get(USERS, {"act": "delete", "id": str(uid)}, auth=ADMIN).status == 200
    assert uid not in [u["id"] for u in system.get(USERS, {"act": "list"}, auth=ADMIN).json()]
    assert system.get(USERS, {"act": "search", "search": "dave"}, auth=ADMIN).status == 204
    assert system.get(USERS, {"act": "view", "id": str(uid)}, auth=ADMIN).status == 404


def test_client_if_none_match_with_a_kept_answer(system):
    uid = add_user(system, "Erin")
    r = view(system, USERS, uid)
    etag = r.headers["etag"]
    view(system, USERS, uid)  # kept
    hit = view(system, USERS, uid, headers={"If-None-Match": etag})
    assert hit.status == 304 and hit.body == b"" and hit.headers["etag"] == etag
    assert view(system, USERS, uid, headers={"If-None-Match": "*"}).status == 304
    assert view(system, USERS, uid, headers={"If-None-Match": '"other", ' + etag}).status == 304
    miss = view(system, USERS, uid, headers={"If-None-Match": '"stale"'})
    assert miss.status == 200 and miss.body == r.body
    # the client's tag of an older state: the new answer, complete
    assert system.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Erina"}},
                       auth=ADMIN).status == 200
    new = view(system, USERS, uid, headers={"If-None-Match": etag})
    assert new.status == 200 and new.json()["userfeatures"]["firstname"] == "Erina"


def test_sum_and_head_with_a_kept_answer(system):
    uid = add_user(system, "Frank")
    r = view(system, USERS, uid)
    view(system, USERS, uid)
    same = system.get(USERS, {"act": "view", "id": str(uid), "sum": md5_hex(r.body)}, auth=ADMIN)
    assert same.status == 304 and same.body == b""
    other = system.get(USERS, {"act": "view", "id": str(uid), "sum": "0" * 32}, auth=ADMIN)
    assert other.status == 200 and other.body == r.body
    h = system.request("HEAD", USERS, {"act": "view", "id": str(uid)}, auth=ADMIN)
    assert h.status == 200 and h.body == b"" and int(h.headers["content-length"]) == len(r.body)
    assert h.headers["etag"] == r.headers["etag"]


def test_modes_are_kept_apart(system):
    uid = add_user(system, "Gina")
    a = view(system, USERS, uid)
    b = view(system, USERS_PRIVATE, uid)
    assert a.body == b.body
    assert system.post(USERS_PRIVATE, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Gin"}},
                       auth=ADMIN).status == 200
    assert view(system, USERS, uid).json()["userfeatures"]["firstname"] == "Gin"
    assert view(system, USERS_PRIVATE, uid).json()["userfeatures"]["firstname"] == "Gin"


def test_errors_are_never_kept(system):
    r = system.get(USERS, {"act": "view", "id": "999999"}, auth=ADMIN)
    assert r.status == 404 and "etag" not in r.headers
    misses = metric(system, "xws_reply_cache_misses_total")
    assert system.get(USERS, {"act": "view", "id": "999999"}, auth=ADMIN).status == 404
    assert metric(system, "xws_reply_cache_misses_total") == misses


def test_small_bound_and_no_cache():
    """reply_cache_bytes of 4096 keeps nothing above 1024 bytes; 0 turns the cache off: the answers are the same."""
    for size in ("4096", "0"):
        s = start({"XWS_REPLY_CACHE_BYTES": size})
        try:
            uid = add_user(s, "Hana", number="1100")
            a = view(s, USERS, uid)
            assert len(a.body) > 1024
            b = view(s, USERS, uid)
            assert b.body == a.body
            assert metric(s, "xws_reply_cache_hits_total") == 0
            assert s.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Hanna"}},
                          auth=ADMIN).status == 200
            assert view(s, USERS, uid).json()["userfeatures"]["firstname"] == "Hanna"
            if size == "4096":
                # a short answer is kept: an entity view
                e = s.get(ENTITY, {"act": "list"}, auth=ADMIN)
                assert e.status == 200 and len(e.body) < 512
                assert s.get(ENTITY, {"act": "list"}, auth=ADMIN).body == e.body
                assert metric(s, "xws_reply_cache_hits_total") == 1
            else:
                assert metric(s, "xws_reply_cache_entries") == 0
        finally:
            s.stop()


def test_a_restarted_redis_that_lost_writes_is_told_apart():
    """Redis killed and started again from a snapshot older than its last write (what appendfsync
    everysec can lose): the version counters count up again to numbers already tagged, with other
    data. The tags mix in the Redis process's run_id, so neither the kept answer nor a client's
    tag of the lost state is taken for the new one."""
    s = start()
    try:
        uid = add_user(s, "Ivy")
        redis_cli(s, "SAVE")  # the state before the next edit, on disk
        assert s.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Ivo"}},
                      auth=ADMIN).status == 200
        lost = view(s, USERS, uid)
        assert view(s, USERS, uid).json()["userfeatures"]["firstname"] == "Ivo"  # kept
        s.redis.kill(signal.SIGKILL)
        s._start_redis()  # loads the snapshot: the edit to Ivo is gone
        # the same number of writes again, to other data (no read of the user in between), once the
        # workers are connected again
        wait_until(lambda: s.post(USERS, {"act": "edit", "id": str(uid)}, body={"userfeatures": {"firstname": "Iva"}},
                                  auth=ADMIN).status == 200, timeout=60, what="the edit after the restart")
        now = view(s, USERS, uid)
        assert now.json()["userfeatures"]["firstname"] == "Iva"
        assert now.headers["etag"] != lost.headers["etag"]
        again = view(s, USERS, uid, headers={"If-None-Match": lost.headers["etag"]})
        assert again.status == 200 and again.json()["userfeatures"]["firstname"] == "Iva"
    finally:
        s.stop()


def test_bad_setting_is_refused():
    with pytest.raises(BaseException):
        System(workers=1, extra_env={"XWS_REPLY_CACHE_BYTES": "-1"})
