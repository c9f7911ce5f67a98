"""The JSONTestSuite parsing corpus posted as entity add bodies: every n_ file is refused with 400
and changes nothing; y_ and i_ files never crash anything and answer 200 or 400."""

import pytest

from conftest import ADMIN, CHECK, ENTITY, JSON_SUITE, list_entities

FILES = sorted(JSON_SUITE.glob("*.json")) if JSON_SUITE.is_dir() else []
REJECT = [f for f in FILES if f.name.startswith("n_")]
OTHERS = [f for f in FILES if f.name.startswith(("y_", "i_"))]

# PROTOCOL.md §7 refuses NUL in object keys on purpose.
Y_REFUSED_BY_PROTOCOL = {"y_object_escaped_null_in_key.json"}

pytestmark = pytest.mark.skipif(not FILES, reason="JSONTestSuite corpus not found at %s" % JSON_SUITE)


@pytest.mark.parametrize("path", REJECT, ids=[f.name for f in REJECT])
def test_n_files_rejected(system, path):
    before = list_entities(system)
    r = system.post(ENTITY, {"act": "add"}, body=path.read_bytes(), auth=ADMIN,
                    headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    err = r.json()
    assert err["error"] in ("invalid_json", "empty_body"), err
    assert err["field"] == ""
    assert list_entities(system) == before


@pytest.mark.parametrize("path", OTHERS, ids=[f.name for f in OTHERS])
def test_y_and_i_files_do_not_crash(system, path):
    r = system.post(ENTITY, {"act": "add"}, body=path.read_bytes(), auth=ADMIN,
                    headers={"Content-Type": "application/json"})
    assert r.status in (200, 400), r
    if r.status == 400:
        assert set(r.json()) == {"error", "field", "message"}
    if path.name.startswith("y_") and path.name not in Y_REFUSED_BY_PROTOCOL:
        # y_ files are valid JSON: never refused as JSON
        if r.status == 400:
            assert r.json()["error"] != "invalid_json", r
    assert system.get(CHECK, auth=ADMIN).status == 200


def test_all_still_alive_after_corpus(system):
    system.check_alive()
    status, _ = list_entities(system)
    assert status in (200, 204)
