"""network/mail (contract §4.2): view (the default act) and edit, fresh-install values, ETag and
sum 304s, every validation rule (each failing case changes nothing), the JSON bad-input corpus."""

import copy
import json

import pytest

from conftest import ADMIN, JSON_SUITE, md5_hex

MAIL = "/xivo/configuration/json.php/restricted/network/mail/"
MAIL_PRIVATE = "/xivo/configuration/json.php/private/network/mail/"

FRESH = {
    "id": 1,
    "mydomain": "",
    "origin": "xivo-clients.proformatique.com",
    "relayhost": "",
    "fallback_relayhost": "",
    "canonical": [],
}
KEY_ORDER = ["id", "mydomain", "origin", "relayhost", "fallback_relayhost", "canonical"]

# The edit example of the WebServices document.
EXAMPLE = {
    "mydomain": "proformatique.com",
    "origin": "devel.proformatique.com",
    "relayhost": "smtp.free.fr",
    "fallback_relayhost": "smtp.orange.fr",
    "canonical": [{"pattern": "@proformatique.com", "result": "support@proformatique.com"}],
}

N_FILES = sorted(JSON_SUITE.glob("n_*.json")) if JSON_SUITE.is_dir() else []


def view(system, **kw):
    return system.get(MAIL, {"act": "view"}, auth=ADMIN, **kw)


def edit(system, body):
    return system.post(MAIL, {"act": "edit"}, body=body, auth=ADMIN)


def view_json(system):
    r = view(system)
    assert r.status == 200, r
    return r.json()


def ordered_keys(r):
    return [k for k, _ in json.loads(r.body, object_pairs_hook=lambda pairs: pairs)]


def check_shape(obj):
    assert list(obj.keys()) == KEY_ORDER
    assert type(obj["id"]) is int and obj["id"] == 1
    for k in ("mydomain", "origin", "relayhost", "fallback_relayhost"):
        assert type(obj[k]) is str, k
    assert type(obj["canonical"]) is list
    for rule in obj["canonical"]:
        assert list(rule.keys()) == ["pattern", "result"]
        assert type(rule["pattern"]) is str and type(rule["result"]) is str


def assert_refused(system, body, code, field):
    before = view(system)
    assert before.status == 200
    r = edit(system, body)
    assert r.status == 400, (body, r)
    err = r.json()
    assert set(err) == {"error", "field", "message"}, err
    assert (err["error"], err["field"]) == (code, field), (body, err)
    assert type(err["message"]) is str and err["message"]
    after = view(system)
    assert after.body == before.body
    assert after.header("etag") == before.header("etag")


# ---- view on a fresh store ------------------------------------------------------------------------


def test_fresh_install_view(system):
    r = view(system)
    assert r.status == 200, r
    assert r.header("content-type").startswith("application/json")
    assert r.header("x-xivo-ws-version") == "1.0"
    assert r.header("etag")
    obj = r.json()
    assert obj == FRESH
    check_shape(obj)
    assert ordered_keys(r) == KEY_ORDER


@pytest.mark.parametrize("act", [None, "", "list", "search", "frobnicate", "add", "delete", "deleteall"])
def test_every_other_act_is_view(system, act):
    ref = view(system)
    q = None if act is None else {"act": act}
    r = system.get(MAIL, q, auth=ADMIN)
    assert r.status == 200, (act, r)
    assert r.body == ref.body
    assert r.header("etag")


def test_etag_and_sum_304(system):
    r = view(system)
    etag = r.header("etag")
    assert etag.startswith('"') and etag.endswith('"')
    r2 = view(system, headers={"If-None-Match": etag})
    assert r2.status == 304
    assert r2.body == b""
    r3 = system.get(MAIL, {"act": "view", "sum": md5_hex(r.body)}, auth=ADMIN)
    assert r3.status == 304
    r4 = system.get(MAIL, {"act": "view", "sum": "0" * 32}, auth=ADMIN)
    assert r4.status == 200 and r4.body == r.body


def test_private_path_is_404(system):
    r = system.get(MAIL_PRIVATE, {"act": "view"})
    assert r.status == 404
    assert r.body == b""


# ---- edit -------------------------------------------------------------------------------------------


def test_document_example_round_trips(system):
    before = view(system)
    r = edit(system, EXAMPLE)
    assert r.status == 200, r
    assert r.body == b""
    after = view(system)
    obj = after.json()
    check_shape(obj)
    expected = dict(EXAMPLE)
    expected["id"] = 1
    assert obj == expected
    assert ordered_keys(after) == KEY_ORDER
    assert after.header("etag") != before.header("etag")
    # the old tag no longer matches
    assert view(system, headers={"If-None-Match": before.header("etag")}).status == 200


def test_edit_replaces_the_whole_object(system):
    body = {"mydomain": "", "origin": "", "relayhost": "", "fallback_relayhost": ""}
    assert edit(system, body).status == 200
    assert view_json(system) == dict(body, id=1, canonical=[])
    # canonical null counts as absent
    assert edit(system, dict(body, canonical=None)).status == 200
    assert view_json(system)["canonical"] == []


def test_edit_same_data_twice(system):
    assert edit(system, EXAMPLE).status == 200
    first = view(system)
    assert edit(system, EXAMPLE).status == 200
    second = view(system)
    assert second.body == first.body


def test_unknown_keys_and_id_ignored(system):
    body = dict(EXAMPLE, id=7, other="x", canonical=[{"pattern": "a@b", "result": "c@d", "extra": 1}])
    assert edit(system, body).status == 200
    obj = view_json(system)
    assert obj["id"] == 1
    assert "other" not in obj
    assert obj["canonical"] == [{"pattern": "a@b", "result": "c@d"}]


@pytest.mark.parametrize(
    "key,value",
    [
        ("mydomain", "example.com"),
        ("mydomain", "mail.example.co.uk"),
        ("mydomain", "10.0.0.1"),
        ("mydomain", "2001:db8::1"),
        ("mydomain", "localhost"),
        ("origin", "xivo-clients.proformatique.com"),
        ("origin", "example.org"),
        ("relayhost", "smtp.free.fr"),
        ("relayhost", "smtp.free.fr:25"),
        ("relayhost", "[smtp.free.fr]"),
        ("relayhost", "[smtp.free.fr]:587"),
        ("relayhost", "192.168.1.20"),
        ("relayhost", "192.168.1.20:2525"),
        ("relayhost", "[192.168.1.20]:25"),
        ("relayhost", "[2001:db8::25]"),
        ("relayhost", "[2001:db8::25]:65535"),
        ("fallback_relayhost", "[relay.example.net]:1"),
        ("fallback_relayhost", ""),
    ],
)
def test_accepted_values(system, key, value):
    body = dict(EXAMPLE)
    body[key] = value
    r = edit(system, body)
    assert r.status == 200, (key, value, r)
    assert view_json(system)[key] == value


def test_length_boundaries(system):
    # 255 characters are accepted ("[" + 253-character host name + "]")
    labels = ["a" * 63, "b" * 63, "c" * 63, "d" * 61]
    host253 = ".".join(labels)
    assert len(host253) == 253
    relay255 = "[" + host253 + "]"
    body = dict(EXAMPLE, relayhost=relay255, origin=host253)
    assert edit(system, body).status == 200, body
    assert view_json(system)["relayhost"] == relay255
    rule = {"pattern": "p" * 255, "result": "r" * 255}
    assert edit(system, dict(EXAMPLE, canonical=[rule])).status == 200
    assert view_json(system)["canonical"] == [rule]
    rules = [{"pattern": "@d%d.example.com" % i, "result": "u%d@example.com" % i} for i in range(255)]
    assert edit(system, dict(EXAMPLE, canonical=rules)).status == 200
    assert view_json(system)["canonical"] == rules
    assert edit(system, EXAMPLE).status == 200


SCALARS = ["mydomain", "origin", "relayhost", "fallback_relayhost"]


def _without(key):
    b = copy.deepcopy(EXAMPLE)
    del b[key]
    return b


def _with(key, value):
    b = copy.deepcopy(EXAMPLE)
    b[key] = value
    return b


def _rule(i, pattern="@a.example", result="b@example.com", drop=None):
    b = copy.deepcopy(EXAMPLE)
    rules = [{"pattern": "@x.example", "result": "x@example.com"} for _ in range(i + 1)]
    rules[i] = {"pattern": pattern, "result": result}
    if drop:
        del rules[i][drop]
    b["canonical"] = rules
    return b


REFUSED = (
    # required scalar keys: absent or null
    [(_without(k), "missing_field", k) for k in SCALARS]
    + [(_with(k, None), "missing_field", k) for k in SCALARS]
    # strings only
    + [(_with(k, v), "invalid_value", k) for k in SCALARS for v in (1, True, ["a"], {"a": "b"})]
    # at most 255 characters
    + [(_with(k, "a" * 256), "too_long", k) for k in SCALARS]
    + [(_with("relayhost", "[" + "a." * 127 + "ab]"), "too_long", "relayhost")]
    # host syntax
    + [
        (_with("mydomain", "bad domain"), "invalid_value", "mydomain"),
        (_with("mydomain", "a..example.com"), "invalid_value", "mydomain"),
        (_with("mydomain", "-a.example.com"), "invalid_value", "mydomain"),
        (_with("mydomain", "example.com."), "invalid_value", "mydomain"),
        (_with("mydomain", "[10.0.0.1]"), "invalid_value", "mydomain"),
        (_with("mydomain", "10.0.0.300"), "invalid_value", "mydomain"),
        (_with("mydomain", "under_score.com"), "invalid_value", "mydomain"),
        (_with("mydomain", "tab\there"), "invalid_value", "mydomain"),
        (_with("origin", "user@example.com"), "invalid_value", "origin"),
        (_with("origin", "10.0.0.1:25"), "invalid_value", "origin"),
        (_with("origin", "a" * 64 + ".com"), "invalid_value", "origin"),
        (_with("relayhost", "2001:db8::1"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp.free.fr:0"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp.free.fr:65536"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp.free.fr:"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp.free.fr:25:25"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp.free.fr:smtp"), "invalid_value", "relayhost"),
        (_with("relayhost", "[smtp.free.fr"), "invalid_value", "relayhost"),
        (_with("relayhost", "[]"), "invalid_value", "relayhost"),
        (_with("relayhost", "[smtp.free.fr]x"), "invalid_value", "relayhost"),
        (_with("relayhost", "smtp free.fr"), "invalid_value", "relayhost"),
        (_with("fallback_relayhost", "smtp.orange.fr:99999"), "invalid_value", "fallback_relayhost"),
        (_with("fallback_relayhost", "[::1"), "invalid_value", "fallback_relayhost"),
    ]
    # canonical: an array of at most 255 objects
    + [(_with("canonical", v), "invalid_value", "canonical") for v in ("x", {"pattern": "a", "result": "b"}, 1, True)]
    + [(_with("canonical", [{"pattern": "p%d" % i, "result": "r"} for i in range(256)]), "too_long", "canonical")]
    + [
        (_with("canonical", ["x"]), "invalid_value", "canonical[0]"),
        (_with("canonical", [{"pattern": "a", "result": "b"}, None]), "invalid_value", "canonical[1]"),
        (_with("canonical", [{"pattern": "a", "result": "b"}, [1]]), "invalid_value", "canonical[1]"),
        (_rule(0, drop="pattern"), "missing_field", "canonical[0].pattern"),
        (_rule(1, drop="result"), "missing_field", "canonical[1].result"),
        (_rule(0, pattern=None), "missing_field", "canonical[0].pattern"),
        (_rule(0, pattern=""), "invalid_value", "canonical[0].pattern"),
        (_rule(2, result=""), "invalid_value", "canonical[2].result"),
        (_rule(0, pattern="a b"), "invalid_value", "canonical[0].pattern"),
        (_rule(0, pattern="a\tb"), "invalid_value", "canonical[0].pattern"),
        (_rule(0, result="x@y\n"), "invalid_value", "canonical[0].result"),
        (_rule(0, pattern=5), "invalid_value", "canonical[0].pattern"),
        (_rule(0, result=False), "invalid_value", "canonical[0].result"),
        (_rule(0, pattern="p" * 256), "too_long", "canonical[0].pattern"),
        (_rule(0, result="r" * 256), "too_long", "canonical[0].result"),
        (_rule(0, pattern="a\u0001"), "invalid_value", "canonical[0].pattern"),
    ]
)


@pytest.mark.parametrize("body,code,field", REFUSED, ids=["%s-%d" % (c[2], i) for i, c in enumerate(REFUSED)])
def test_refused_edits_change_nothing(system, body, code, field):
    assert edit(system, EXAMPLE).status == 200
    assert_refused(system, body, code, field)


@pytest.mark.parametrize(
    "raw,code",
    [(b"", "empty_body"), (b"[]", "not_an_object"), (b'"x"', "not_an_object"), (b"null", "not_an_object"),
     (b"{", "invalid_json")],
)
def test_bad_bodies(system, raw, code):
    before = view(system)
    r = system.post(MAIL, {"act": "edit"}, body=raw, auth=ADMIN, headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.json()["error"] == code, r.json()
    assert r.json()["field"] == ""
    assert view(system).body == before.body


@pytest.mark.skipif(not N_FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)
def test_json_corpus_n_files_refused(system):
    before = view(system)
    for path in N_FILES:
        r = system.post(MAIL, {"act": "edit"}, body=path.read_bytes(), auth=ADMIN,
                        headers={"Content-Type": "application/json"})
        assert r.status == 400, (path.name, r)
        assert r.json()["error"] in ("invalid_json", "empty_body"), (path.name, r.json())
    after = view(system)
    assert after.body == before.body
    assert after.header("etag") == before.header("etag")


def test_acl_forbids_other_paths(system):
    system.cli_ok("account", "add", "ipbxonly", "--login", "ipbxonly", "--password", "ipbx-secret-1", "--acl",
                  "service/ipbx")
    system.cli_ok("account", "add", "mailonly", "--login", "mailonly", "--password", "mail-secret-1", "--acl",
                  "xivo/configuration/network/mail")

    def status(auth):
        return system.get(MAIL, {"act": "view"}, auth=auth).status

    from conftest import wait_until

    wait_until(lambda: status(("mailonly", "mail-secret-1")) == 200, timeout=10, what="the new account")
    assert status(("ipbxonly", "ipbx-secret-1")) == 403


def test_canonical_false_means_no_rules(system):
    assert edit(system, EXAMPLE).status == 200
    body = dict(EXAMPLE, canonical=False)
    r = edit(system, body)
    assert r.status == 200, r
    assert view_json(system)["canonical"] == []
