"""manage/entity (contract §4.1): every act, status codes, JSON shapes and types, validation
(each failing case changes nothing), search, ETag/If-None-Match and sum 304s."""

import time

import pytest

from conftest import ADMIN, CONTEXT_PRIVATE, ENTITY, entity_body, list_entities, md5_hex

ENTITY_FIELDS = {
    "id": int,
    "name": str,
    "displayname": str,
    "phonenumber": str,
    "faxnumber": str,
    "email": str,
    "url": str,
    "address1": str,
    "address2": str,
    "city": str,
    "state": str,
    "zipcode": str,
    "country": str,
    "description": str,
    "disable": bool,
    "dcreate": int,
    "identity": str,
}


def add(system, body, **kw):
    return system.post(ENTITY, {"act": "add"}, body=body, auth=ADMIN, **kw)


def view(system, eid):
    return system.get(ENTITY, {"act": "view", "id": str(eid)}, auth=ADMIN)


def all_entities(system):
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    if r.status == 204:
        assert r.body == b""
        return []
    assert r.status == 200, r
    return r.json()


def by_name(system, name):
    for e in all_entities(system):
        if e["name"] == name:
            return e
    return None


def check_entity_shape(e):
    assert set(e.keys()) == set(ENTITY_FIELDS), sorted(e.keys())
    for k, t in ENTITY_FIELDS.items():
        # bool is a subclass of int in Python: check exactly
        assert type(e[k]) is t, "%s: %r is %s, expected %s" % (k, e[k], type(e[k]).__name__, t.__name__)


def test_empty_list_is_204(system):
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 204
    assert r.body == b""
    assert r.header("x-xivo-ws-version") == "1.0"


def test_deleteall_when_empty_is_204(system):
    r = system.get(ENTITY, {"act": "deleteall"}, auth=ADMIN)
    assert r.status == 204
    assert r.body == b""


def test_add_minimal_and_view(system):
    before = time.time()
    r = add(system, {"name": "Alpha", "displayname": "Alpha Corp"})
    assert r.status == 200, r
    assert r.body == b""
    e = by_name(system, "alpha")  # lowercased
    assert e is not None
    check_entity_shape(e)
    v = view(system, e["id"])
    assert v.status == 200, v
    assert v.header("content-type", ).startswith("application/json")
    obj = v.json()
    assert isinstance(obj, dict)
    check_entity_shape(obj)
    assert obj == e
    assert obj["displayname"] == "Alpha Corp"
    assert obj["identity"] == "Alpha Corp (alpha)"
    assert obj["disable"] is False
    assert before - 5 <= obj["dcreate"] <= time.time() + 5
    for k in ("phonenumber", "faxnumber", "email", "url", "address1", "address2", "city", "state", "zipcode",
              "country", "description"):
        assert obj[k] == "", k


def test_add_full_document_example(system):
    # The flat body of the WebServices document, with numbers as strings and unknown keys ignored.
    body = {
        "name": "xivo_entity",
        "displayname": "XiVO Entity",
        "phonenumber": "+33123456789",
        "faxnumber": "0123456789*#",
        "email": "contact@example.com",
        "url": "http://www.example.com/",
        "address1": "10 rue de la Paix",
        "address2": "Batiment B",
        "city": "Paris",
        "state": "Ile-de-France",
        "zipcode": "75002",
        "country": "fr",
        "description": "line one\nline two\twith tab",
        "unknown_key": "ignored",
        "email_null": None,
    }
    r = add(system, body)
    assert r.status == 200, r
    e = by_name(system, "xivo_entity")
    check_entity_shape(e)
    assert e["country"] == "FR"  # uppercased
    for k in ("displayname", "phonenumber", "faxnumber", "email", "url", "address1", "address2", "city", "state",
              "zipcode", "description"):
        assert e[k] == body[k], k
    assert "unknown_key" not in e


def test_list_order_and_ids(system):
    add(system, entity_body("order_a"))
    add(system, entity_body("order_b"))
    ents = all_entities(system)
    ids = [e["id"] for e in ents]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i >= 1 for i in ids)
    for e in ents:
        check_entity_shape(e)


def test_default_and_unknown_act_list(system):
    ref = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert ref.status == 200
    for q in (None, {"act": ""}, {"act": "frobnicate"}):
        r = system.get(ENTITY, q, auth=ADMIN)
        assert r.status == 200, (q, r)
        assert r.body == ref.body, q


def test_post_list_equals_get_list(system):
    g = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    p = system.post(ENTITY, {"act": "list"}, body=b"", auth=ADMIN)
    assert p.status == 200
    assert p.body == g.body


def test_view_unknown_and_bad_ids(system):
    for eid in ("999999", "0", "-1"):
        r = view(system, eid)
        assert r.status == 404, (eid, r)
        assert r.header("x-xivo-ws-version") == "1.0"
    for eid in ("abc", "1x", ""):
        r = view(system, eid)
        assert r.status in (400, 404), (eid, r)
    r = system.get(ENTITY, {"act": "view"}, auth=ADMIN)
    assert r.status in (400, 404), r


def test_view_id_is_trimmed(system):
    e = by_name(system, "alpha")
    r = system.get(ENTITY, "act=view&id=+%d+" % e["id"], auth=ADMIN)  # '+' is a space, trimmed
    assert r.status == 200, r
    assert r.json()["id"] == e["id"]


def test_first_parameter_wins(system):
    e = by_name(system, "alpha")
    r = system.get(ENTITY, "act=view&id=%d&id=999999" % e["id"], auth=ADMIN)
    assert r.status == 200, r
    assert r.json()["name"] == "alpha"


# ---- validation --------------------------------------------------------------------------------

LONG_DOMAIN = ".".join(["d" * 49] * 5)  # "a@" + this + ".com" is 255 bytes, the longest allowed
INVALID_CASES = [
    # (description, body, accepted error codes, field)
    ("name missing", {"displayname": "Some Name"}, {"missing_field"}, "name"),
    ("name null", {"name": None, "displayname": "Some Name"}, {"missing_field"}, "name"),
    ("name empty", {"name": "", "displayname": "Some Name"}, {"missing_field", "too_short", "invalid_value"}, "name"),
    ("name too long", {"name": "a" * 65, "displayname": "Some Name"}, {"too_long"}, "name"),
    ("name bad character", {"name": "bad name", "displayname": "Some Name"}, {"invalid_value"}, "name"),
    ("name non-ascii", {"name": "caf\u00e9", "displayname": "Some Name"}, {"invalid_value"}, "name"),
    ("name not a string", {"name": ["a"], "displayname": "Some Name"}, {"invalid_value"}, "name"),
    ("name taken", {"name": "alpha", "displayname": "Other"}, {"already_exists"}, "name"),
    ("name taken other case", {"name": "ALPHA", "displayname": "Other"}, {"already_exists"}, "name"),
    ("displayname missing", {"name": "vname1"}, {"missing_field"}, "displayname"),
    ("displayname too short", {"name": "vname2", "displayname": "ab"}, {"too_short"}, "displayname"),
    ("displayname too long", {"name": "vname3", "displayname": "d" * 129}, {"too_long"}, "displayname"),
    ("displayname control", {"name": "vname4", "displayname": "ab\u0001cd"}, {"invalid_value"}, "displayname"),
    ("displayname newline", {"name": "vname4b", "displayname": "ab\ncd"}, {"invalid_value"}, "displayname"),
    ("phonenumber bad char", entity_body("vname5", phonenumber="12a3"), {"invalid_value"}, "phonenumber"),
    ("phonenumber too long", entity_body("vname6", phonenumber="1" * 41), {"too_long"}, "phonenumber"),
    ("faxnumber bad char", entity_body("vname7", faxnumber="01-23"), {"invalid_value"}, "faxnumber"),
    ("faxnumber too long", entity_body("vname8", faxnumber="2" * 41), {"too_long"}, "faxnumber"),
    ("email implausible", entity_body("vname9", email="not-an-address"), {"invalid_value"}, "email"),
    ("email too long", entity_body("vname10", email="ab@" + LONG_DOMAIN + ".com"), {"too_long"}, "email"),
    ("url too long", entity_body("vname11", url="http://" + "u" * 249), {"too_long"}, "url"),
    ("url control", entity_body("vname12", url="http://a\u0007b"), {"invalid_value"}, "url"),
    ("address1 too long", entity_body("vname13", address1="a" * 31), {"too_long"}, "address1"),
    ("address1 control", entity_body("vname14", address1="a\u001fb"), {"invalid_value"}, "address1"),
    ("address2 too long", entity_body("vname15", address2="a" * 31), {"too_long"}, "address2"),
    ("city too long", entity_body("vname16", city="c" * 129), {"too_long"}, "city"),
    ("state too long", entity_body("vname17", state="s" * 129), {"too_long"}, "state"),
    ("state control", entity_body("vname17b", state="s\u001bs"), {"invalid_value"}, "state"),
    ("zipcode too long", entity_body("vname18", zipcode="1" * 17), {"too_long"}, "zipcode"),
    ("zipcode bad char", entity_body("vname19", zipcode="75/002"), {"invalid_value"}, "zipcode"),
    ("country three letters", entity_body("vname20", country="FRA"), {"invalid_value", "too_long"}, "country"),
    ("country digits", entity_body("vname21", country="F1"), {"invalid_value"}, "country"),
    ("description too long", entity_body("vname22", description="d" * 1001), {"too_long"}, "description"),
    ("city not a string", entity_body("vname23", city={"a": 1}), {"invalid_value"}, "city"),
]


@pytest.mark.parametrize("desc,body,codes,field", INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_add_invalid_changes_nothing(system, desc, body, codes, field):
    before = list_entities(system)
    r = add(system, body)
    assert r.status == 400, r
    assert r.header("x-xivo-ws-version") == "1.0"
    err = r.json()
    assert set(err.keys()) == {"error", "field", "message"}, err
    assert err["error"] in codes, err
    assert err["field"] == field, err
    assert isinstance(err["message"], str) and err["message"], err
    assert list_entities(system) == before


BAD_BODIES = [
    ("empty body", b"", {"empty_body"}),
    ("invalid json", b"{\"name\": ", {"invalid_json"}),
    ("invalid utf-8", b"{\"name\": \"a\xff\", \"displayname\": \"abc\"}", {"invalid_json"}),
    ("array", b"[]", {"not_an_object"}),
    ("string", b"\"alpha\"", {"not_an_object"}),
    ("number", b"42", {"not_an_object"}),
    ("null", b"null", {"not_an_object", "empty_body"}),
    ("trailing garbage", b"{\"name\": \"zz1\", \"displayname\": \"abc\"} x", {"invalid_json"}),
]


@pytest.mark.parametrize("desc,body,codes", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_add_bad_body_changes_nothing(system, desc, body, codes):
    before = list_entities(system)
    r = add(system, body)
    assert r.status == 400, r
    err = r.json()
    assert err["error"] in codes, err
    assert err["field"] == "", err
    assert list_entities(system) == before


def test_add_without_content_type(system):
    r = system.post(ENTITY, {"act": "add"}, body=b'{"name":"noctype","displayname":"No Content Type"}', auth=ADMIN)
    assert r.status == 200, r
    assert by_name(system, "noctype") is not None


def test_add_with_get_reads_body(system):
    r = system.request("GET", ENTITY, {"act": "add"}, body=b'{"name":"viaget","displayname":"Via GET"}',
                       auth=ADMIN, headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    assert by_name(system, "viaget") is not None


def test_add_boundaries_accepted(system):
    body = entity_body(
        "b" * 64,
        displayname="d" * 128,
        phonenumber="1" * 40,
        faxnumber="*#+" + "9" * 37,
        address1="a" * 30,
        address2="b" * 30,
        city="c" * 128,
        state="s" * 128,
        zipcode="A1_ -" + "z" * 11,
        description="e" * 1000,
        email="a@" + LONG_DOMAIN + ".com",
        url="https://" + "u" * 247,
    )
    r = add(system, body)
    assert r.status == 200, r
    e = by_name(system, "b" * 64)
    assert e["displayname"] == "d" * 128
    r = add(system, entity_body("n.a-m_e3", displayname="\u00c9tienne \u00e9t\u00e9"))
    assert r.status == 200, r
    assert by_name(system, "n.a-m_e3")["displayname"] == "\u00c9tienne \u00e9t\u00e9"


def test_unicode_escapes_understood(system):
    r = add(system, b'{"name":"esc\\u0061pe","displayname":"Caf\\u00e9 \\ud83d\\ude00"}')
    assert r.status == 200, r
    e = by_name(system, "escape")
    assert e is not None
    assert e["displayname"] == "Caf\u00e9 \U0001F600"


# ---- edit ----------------------------------------------------------------------------------------


def test_edit_partial_update(system):
    e = by_name(system, "alpha")
    r = system.post(ENTITY, {"act": "edit", "id": str(e["id"])}, body={"city": "Lyon", "country": "de"}, auth=ADMIN)
    assert r.status == 200, r
    assert r.body == b""
    v = view(system, e["id"]).json()
    assert v["city"] == "Lyon"
    assert v["country"] == "DE"
    for k in ENTITY_FIELDS:
        if k not in ("city", "country"):
            assert v[k] == e[k], k


def test_edit_rename(system):
    add(system, entity_body("torename"))
    e = by_name(system, "torename")
    r = system.post(ENTITY, {"act": "edit", "id": str(e["id"])}, body={"name": "Renamed"}, auth=ADMIN)
    assert r.status == 200, r
    v = view(system, e["id"]).json()
    assert v["name"] == "renamed"
    assert v["identity"] == "%s (renamed)" % e["displayname"]
    assert by_name(system, "torename") is None
    # the old name is free again
    assert add(system, entity_body("torename")).status == 200


def test_edit_invalid_changes_nothing(system):
    e = by_name(system, "alpha")
    for body, code, field in (
        ({"name": "renamed"}, {"already_exists"}, "name"),
        ({"displayname": "ab"}, {"too_short"}, "displayname"),
        ({"country": "XYZ"}, {"invalid_value", "too_long"}, "country"),
        ({"name": None, "city": "Nice"}, None, None),  # null counts as absent: accepted? see below
    ):
        before = list_entities(system)
        r = system.post(ENTITY, {"act": "edit", "id": str(e["id"])}, body=body, auth=ADMIN)
        if code is None:
            # a null key is absent: the edit only changes the city
            assert r.status == 200, r
            assert view(system, e["id"]).json()["name"] == "alpha"
            continue
        assert r.status == 400, (body, r)
        assert r.json()["error"] in code
        assert r.json()["field"] == field
        assert list_entities(system) == before
    for body in (b"", b"[1]", b"{"):
        before = list_entities(system)
        r = system.post(ENTITY, {"act": "edit", "id": str(e["id"])}, body=body, auth=ADMIN)
        assert r.status == 400, (body, r)
        assert list_entities(system) == before


def test_edit_unknown_id_404(system):
    before = list_entities(system)
    r = system.post(ENTITY, {"act": "edit", "id": "999999"}, body={"city": "X"}, auth=ADMIN)
    assert r.status == 404, r
    assert list_entities(system) == before


# ---- search --------------------------------------------------------------------------------------


def test_search(system):
    assert add(system, entity_body("searchme", displayname="Zebra Holdings", city="Grenoble",
                                   email="Boss@Zebra.example", zipcode="38000", description="Rare Bird")).status == 200
    for term in ("ZEBRA", "zebra", "ebra hol", "GRENOBLE", "boss@zebra", "38000", "rare bird", "SEARCHME"):
        r = system.get(ENTITY, {"act": "search", "search": term}, auth=ADMIN)
        assert r.status == 200, (term, r)
        names = [e["name"] for e in r.json()]
        assert "searchme" in names, term
        for e in r.json():
            hay = " ".join(str(e[k]) for k in ("name", "displayname", "phonenumber", "faxnumber", "email", "url",
                                               "address1", "address2", "city", "state", "zipcode", "country",
                                               "description")).lower()
            assert term.lower() in hay, (term, e)
    r = system.get(ENTITY, {"act": "search", "search": "  zebra  "}, auth=ADMIN)  # trimmed
    assert r.status == 200 and "searchme" in [e["name"] for e in r.json()]


def test_search_nothing_is_204(system):
    for q in ({"act": "search", "search": "no-such-thing-anywhere"}, {"act": "search", "search": ""},
              {"act": "search"}, {"act": "search", "search": "   "}):
        r = system.get(ENTITY, q, auth=ADMIN)
        assert r.status == 204, (q, r)
        assert r.body == b""


# ---- conditional requests ------------------------------------------------------------------------


def test_etag_and_if_none_match(system):
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 200
    etag = r.header("etag")
    assert etag and etag.startswith('"') and etag.endswith('"'), etag
    again = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert again.header("etag") == etag
    assert again.body == r.body  # deterministic output
    r304 = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": etag})
    assert r304.status == 304, r304
    assert r304.body == b""
    assert r304.header("x-xivo-ws-version") == "1.0"
    other = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": '"not-the-tag"'})
    assert other.status == 200
    # a write changes the tag
    assert add(system, entity_body("etagchange")).status == 200
    after = system.get(ENTITY, {"act": "list"}, auth=ADMIN, headers={"If-None-Match": etag})
    assert after.status == 200
    assert after.header("etag") != etag


def test_etag_view_changes_after_edit(system):
    e = by_name(system, "etagchange")
    v = view(system, e["id"])
    etag = v.header("etag")
    assert etag
    assert system.get(ENTITY, {"act": "view", "id": str(e["id"])}, auth=ADMIN,
                      headers={"If-None-Match": etag}).status == 304
    assert system.post(ENTITY, {"act": "edit", "id": str(e["id"])}, body={"city": "Brest"}, auth=ADMIN).status == 200
    v2 = system.get(ENTITY, {"act": "view", "id": str(e["id"])}, auth=ADMIN, headers={"If-None-Match": etag})
    assert v2.status == 200
    assert v2.header("etag") != etag
    assert v2.json()["city"] == "Brest"


def test_etag_on_search(system):
    r = system.get(ENTITY, {"act": "search", "search": "zebra"}, auth=ADMIN)
    etag = r.header("etag")
    assert etag
    r2 = system.get(ENTITY, {"act": "search", "search": "zebra"}, auth=ADMIN, headers={"If-None-Match": etag})
    assert r2.status == 304


def test_sum_304(system):
    for q in ({"act": "list"}, {"act": "search", "search": "zebra"}):
        r = system.get(ENTITY, q, auth=ADMIN)
        assert r.status == 200
        s = md5_hex(r.body)
        r304 = system.get(ENTITY, dict(q, sum=s), auth=ADMIN)
        assert r304.status == 304, (q, r304)
        assert r304.body == b""
        wrong = system.get(ENTITY, dict(q, sum="0" * 32), auth=ADMIN)
        assert wrong.status == 200
        assert wrong.body == r.body
    e = by_name(system, "alpha")
    v = view(system, e["id"])
    assert system.get(ENTITY, {"act": "view", "id": str(e["id"]), "sum": md5_hex(v.body)}, auth=ADMIN).status == 304
    # after a write the old sum no longer matches
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    s = md5_hex(r.body)
    assert add(system, entity_body("sumchange")).status == 200
    r2 = system.get(ENTITY, {"act": "list", "sum": s}, auth=ADMIN)
    assert r2.status == 200
    assert md5_hex(r2.body) != s


# ---- delete --------------------------------------------------------------------------------------


def test_delete(system):
    assert add(system, entity_body("todelete")).status == 200
    e = by_name(system, "todelete")
    r = system.get(ENTITY, {"act": "delete", "id": str(e["id"])}, auth=ADMIN)
    assert r.status == 200, r
    assert r.body == b""
    assert view(system, e["id"]).status == 404
    assert by_name(system, "todelete") is None
    r = system.get(ENTITY, {"act": "delete", "id": str(e["id"])}, auth=ADMIN)
    assert r.status == 404
    # ids are never reused
    assert add(system, entity_body("todelete")).status == 200
    assert by_name(system, "todelete")["id"] > e["id"]


def test_delete_unknown_404(system):
    before = list_entities(system)
    for eid in ("999999", "0"):
        r = system.get(ENTITY, {"act": "delete", "id": eid}, auth=ADMIN)
        assert r.status == 404, r
    assert list_entities(system) == before


def test_delete_referenced_is_405(system):
    probe = system.get(CONTEXT_PRIVATE, {"act": "list"})
    if probe.status not in (200, 204):
        pytest.skip("the context resource does not answer yet (status %d)" % probe.status)
    assert add(system, entity_body("withctx")).status == 200
    ctx = {"context": {"name": "ctxref", "displayname": "Ctx Ref", "entity": "withctx", "contexttype": "internal"},
           "contextinclude": [], "contextnumbers": {}}
    r = system.post(CONTEXT_PRIVATE, {"act": "add"}, body=ctx)
    assert r.status == 200, r
    e = by_name(system, "withctx")
    before = list_entities(system)
    r = system.get(ENTITY, {"act": "delete", "id": str(e["id"])}, auth=ADMIN)
    assert r.status == 405, r
    assert list_entities(system) == before
    # deleteall keeps the referenced entity
    r = system.get(ENTITY, {"act": "deleteall"}, auth=ADMIN)
    assert r.status == 200
    assert [x["name"] for x in all_entities(system)] == ["withctx"]
    assert system.get(CONTEXT_PRIVATE, {"act": "delete", "id": "ctxref"}).status == 200
    assert system.get(ENTITY, {"act": "delete", "id": str(e["id"])}, auth=ADMIN).status == 200


def test_deleteall(system):
    # the tests before may have deleted everything (the referenced-entity test cleans up after itself)
    if not all_entities(system):
        assert add(system, entity_body("for_deleteall")).status == 200
    assert all_entities(system)
    r = system.get(ENTITY, {"act": "deleteall"}, auth=ADMIN)
    assert r.status == 200, r
    assert r.body == b""
    r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    assert r.status == 204
    r = system.get(ENTITY, {"act": "deleteall"}, auth=ADMIN)
    assert r.status == 204


def test_head_list(system):
    assert add(system, entity_body("headcheck")).status == 200
    g = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
    h = system.request("HEAD", ENTITY, {"act": "list"}, auth=ADMIN)
    assert h.status == 200
    assert h.body == b""
    assert h.header("etag") == g.header("etag")
    assert h.header("x-xivo-ws-version") == "1.0"
