"""The bootstrap data set (contract §7): xws-bootstrap loads deploy/bootstrap.json through the
services; a fresh store then holds exactly the spec's data, a second run changes nothing, an object
an operator deleted does not come back, the tool waits for workers, and the launcher runs it."""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ADMIN, BIN_DIR, ENTITY, PROJECT, System, free_port, sanitizer_reports, wait_until

MAIL = "/xivo/configuration/json.php/restricted/network/mail/"
CONTEXT = "/service/ipbx/json.php/restricted/system_management/context/"
BOOTSTRAP = PROJECT / "deploy" / "bootstrap.json"
GROUPS = "/service/ipbx/json.php/restricted/pbx_settings/groups/"
QUEUES = "/callcenter/json.php/restricted/settings/queues/"
KEYS = ["mail", "entity/default", "context/to-extern", "context/from-extern", "context/default", "group/accueil",
        "group/tous", "queue/commerciale", "queue/technique"]

FRESH_MAIL = {"id": 1, "mydomain": "", "origin": "xivo-clients.proformatique.com", "relayhost": "",
              "fallback_relayhost": "", "canonical": []}
CONTEXTS = {
    "default": {
        "context": {"name": "default", "displayname": "Default", "entity": "default", "contexttype": "internal",
                    "description": ""},
        "contextinclude": False,
        "contextnumbers": {
            "user": [{"numberbeg": "100", "numberend": "299"}, {"numberbeg": "4000", "numberend": "4999"}],
            "group": [{"numberbeg": "500", "numberend": "599"}],
            "queue": [{"numberbeg": "600", "numberend": "699"}],
            "meetme": [{"numberbeg": "700", "numberend": "799"}],
            "incall": False,
        },
    },
    "from-extern": {
        "context": {"name": "from-extern", "displayname": "Calls from outside", "entity": "default",
                    "contexttype": "incall", "description": ""},
        "contextinclude": False,
        "contextnumbers": {"user": False, "group": False, "queue": False, "meetme": False,
                           "incall": [{"numberbeg": "", "numberend": "", "didlength": 4}]},
    },
    "to-extern": {
        "context": {"name": "to-extern", "displayname": "Calls to outside", "entity": "default",
                    "contexttype": "outcall", "description": ""},
        "contextinclude": False,
        "contextnumbers": False,
    },
}


# ids 1, 2 of each kind on a fresh store (spec section 7: the document's user example names them)
FRESH_GROUPS = [
    {"id": 1, "name": "accueil", "number": "500", "context": "default", "description": ""},
    {"id": 2, "name": "tous", "number": "501", "context": "default", "description": ""},
]
FRESH_QUEUES = [
    {"id": 1, "name": "commerciale", "displayname": "Commerciale", "number": "600", "context": "default",
     "description": ""},
    {"id": 2, "name": "technique", "displayname": "Technique", "number": "601", "context": "default",
     "description": ""},
]


def start_workers(system):
    """The services the bootstrap items go to, beyond the config worker System starts."""
    system.start_worker("xws-ipbx-users")


def need_tool():
    if not (BIN_DIR / "xws-bootstrap").is_file():
        pytest.fail("binary xws-bootstrap missing in %s" % BIN_DIR)


def bootstrap(system, *args, cwd=None):
    """Runs xws-bootstrap against the system; returns (exit status, stdout lines, stderr)."""
    need_tool()
    argv = [str(BIN_DIR / "xws-bootstrap"), "-e", system.internal_endpoint] + [str(a) for a in args]
    r = subprocess.run(argv, env=system.env, cwd=str(cwd or system.dir), capture_output=True, timeout=120)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert not sanitizer_reports(out + err), out + err
    return r.returncode, out.splitlines(), err


def lines_for(outcome):
    return ["bootstrap: %s: %s" % (k, outcome) for k in KEYS]


def state(system):
    """(status, etag, body) of every read the bootstrap data show."""
    reads = [(MAIL, {"act": "view"}), (ENTITY, {"act": "list"}), (CONTEXT, {"act": "list"}), (GROUPS, {"act": "list"}),
             (QUEUES, {"act": "list"})]
    reads += [(CONTEXT, {"act": "view", "id": n}) for n in sorted(CONTEXTS)]
    out = []
    for path, q in reads:
        r = system.get(path, q, auth=ADMIN)
        out.append((r.status, r.header("etag"), r.body))
    return out


def redis_cli(system, *args):
    r = subprocess.run(["redis-cli", "-s", str(system.dir / "redis.sock")] + [str(a) for a in args],
                       capture_output=True, timeout=10)
    assert r.returncode == 0, r
    return r.stdout.decode().strip()


@pytest.fixture(scope="module")
def fresh():
    s = System(workers=1)
    start_workers(s)
    yield s
    s.stop()


def test_first_run_applies_every_item(fresh):
    rc, lines, err = bootstrap(fresh, BOOTSTRAP)
    assert rc == 0, (lines, err)
    assert lines == lines_for("applied"), lines


def test_data_are_exactly_section_7(fresh):
    r = fresh.get(MAIL, {"act": "view"}, auth=ADMIN)
    assert r.status == 200 and r.json() == FRESH_MAIL
    ents = fresh.get(ENTITY, {"act": "list"}, auth=ADMIN).json()
    assert len(ents) == 1
    assert (ents[0]["id"], ents[0]["name"], ents[0]["displayname"]) == (1, "default", "Default")
    r = fresh.get(CONTEXT, {"act": "list"}, auth=ADMIN)
    assert r.status == 200
    assert r.json() == [CONTEXTS[n]["context"] for n in ("default", "from-extern", "to-extern")]
    for name, expected in CONTEXTS.items():
        v = fresh.get(CONTEXT, {"act": "view", "id": name}, auth=ADMIN)
        assert v.status == 200, v
        assert v.json() == expected, name
    assert fresh.get(GROUPS, {"act": "list"}, auth=ADMIN).json() == FRESH_GROUPS
    assert fresh.get(QUEUES, {"act": "list"}, auth=ADMIN).json() == FRESH_QUEUES
    for path, items in ((GROUPS, FRESH_GROUPS), (QUEUES, FRESH_QUEUES)):
        for item in items:
            assert fresh.get(path, {"act": "view", "id": item["id"]}, auth=ADMIN).json() == dict(item, user=False)
    # their numbers are held in context default; they count as references of the context
    held = redis_cli(fresh, "HGETALL", "xws:context:numbers:default").split()
    assert dict(zip(held[0::2], held[1::2])) == {"500": "group:group/1", "501": "group:group/2", "600": "queue:queue/1",
                                                 "601": "queue:queue/2"}
    assert redis_cli(fresh, "HGET", "xws:context:refs", "default") == "4"


def test_second_run_changes_nothing(fresh):
    before = state(fresh)
    rc, lines, err = bootstrap(fresh, BOOTSTRAP)
    assert rc == 0, (lines, err)
    assert lines == lines_for("already applied"), lines
    assert state(fresh) == before


def test_outcomes_are_kept_without_expiry(fresh):
    for k in KEYS:
        assert redis_cli(fresh, "TTL", "xws:wid:bootstrap:" + k) == "-1", k
    # an ordinary write's outcome still expires
    assert fresh.post(MAIL, {"act": "edit"}, body=dict(FRESH_MAIL), auth=ADMIN).status == 200
    assert fresh.post(MAIL, {"act": "edit"}, body={k: v for k, v in FRESH_MAIL.items() if k != "id"},
                      auth=ADMIN).status == 200
    wids = [w for w in redis_cli(fresh, "KEYS", "xws:wid:*").split() if not w.startswith("xws:wid:bootstrap:")]
    assert wids
    for w in wids:
        assert int(redis_cli(fresh, "TTL", w)) > 0, w


def test_deleted_objects_do_not_come_back(fresh):
    assert fresh.get(CONTEXT, {"act": "delete", "id": "to-extern"}, auth=ADMIN).status == 200
    assert fresh.get(GROUPS, {"act": "delete", "id": 2}, auth=ADMIN).status == 200
    edited = {"mydomain": "example.com", "origin": "example.com", "relayhost": "", "fallback_relayhost": "",
              "canonical": []}
    assert fresh.post(MAIL, {"act": "edit"}, body=edited, auth=ADMIN).status == 200
    before = state(fresh)
    rc, lines, err = bootstrap(fresh, BOOTSTRAP)
    assert rc == 0, (lines, err)
    assert lines == lines_for("already applied"), lines
    assert state(fresh) == before
    assert fresh.get(CONTEXT, {"act": "view", "id": "to-extern"}, auth=ADMIN).status == 404
    assert fresh.get(MAIL, {"act": "view"}, auth=ADMIN).json()["mydomain"] == "example.com"
    assert [g["name"] for g in fresh.get(GROUPS, {"act": "list"}, auth=ADMIN).json()] == ["accueil"]


def test_default_file_and_setting(fresh, tmp_path):
    # without a file argument: the bootstrap_file setting, by default deploy/bootstrap.json
    rc, lines, err = bootstrap(fresh, cwd=PROJECT)
    assert rc == 0, (lines, err)
    assert lines == lines_for("already applied")
    other = {"version": 1, "items": [{"key": "test/extra-entity", "service": "config", "resource": "entity",
                                      "act": "add", "body": {"name": "extra", "displayname": "Extra"}}]}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    env_before = dict(fresh.env)
    fresh.env["XWS_BOOTSTRAP_FILE"] = str(path)
    try:
        rc, lines, err = bootstrap(fresh)
    finally:
        fresh.env.clear()
        fresh.env.update(env_before)
    assert rc == 0, (lines, err)
    assert lines == ["bootstrap: test/extra-entity: applied"]
    names = [e["name"] for e in fresh.get(ENTITY, {"act": "list"}, auth=ADMIN).json()]
    assert names == ["default", "extra"]


def test_refused_items_and_bad_files(fresh, tmp_path):
    items = [
        {"key": "test/ok", "service": "config", "resource": "entity", "act": "add",
         "body": {"name": "fromfile", "displayname": "From file"}},
        {"key": "test/bad", "service": "config", "resource": "context", "act": "add",
         "body": {"context": {"name": "xivo-forbidden"}}},
        {"key": "test/badref", "service": "config", "resource": "context", "act": "add",
         "body": {"context": {"name": "badref", "entity": "nosuchentity"}}},
    ]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"version": 1, "items": items}))
    rc, lines, err = bootstrap(fresh, path)
    assert rc == 1, (lines, err)
    assert len(lines) == 3, lines
    assert lines[0] == "bootstrap: test/ok: applied"
    assert lines[1].startswith("bootstrap: test/bad: refused: 400 invalid_value (context.name): "), lines
    assert lines[2].startswith("bootstrap: test/badref: refused: 400 unknown_reference (context.entity): "), lines
    assert not lines[2].endswith("(recorded at an earlier run)")
    # again: refusals are not recorded, so an item refused because of the store's state is applied
    # once that state allows it
    add_entity = fresh.post(ENTITY, {"act": "add"}, body={"name": "nosuchentity", "displayname": "Now exists"},
                            auth=ADMIN)
    assert add_entity.status == 200
    rc, lines, err = bootstrap(fresh, path)
    assert rc == 1, (lines, err)
    assert lines[0] == "bootstrap: test/ok: already applied"
    assert lines[1].startswith("bootstrap: test/bad: refused: 400 invalid_value (context.name): "), lines
    assert lines[2] == "bootstrap: test/badref: applied", lines
    assert fresh.get(CONTEXT, {"act": "view", "id": "badref"}, auth=ADMIN).status == 200
    # the tool exits 2, sending nothing, for files it cannot use
    bad = {
        "missing.json": None,
        "syntax.json": '{"version": 1, "items": [',
        "version.json": json.dumps({"version": 2, "items": []}),
        "noitems.json": json.dumps({"version": 1}),
        "nokey.json": json.dumps({"version": 1, "items": [{"service": "config", "resource": "mail", "act": "view"}]}),
        "dupkey.json": json.dumps({"version": 1, "items": [items[0], items[0]]}),
        "badkey.json": json.dumps({"version": 1, "items": [dict(items[0], key="has space")]}),
        "longkey.json": json.dumps({"version": 1, "items": [dict(items[0], key="k" * 55)]}),
        "noservice.json": json.dumps({"version": 1, "items": [{"key": "x", "resource": "mail", "act": "view"}]}),
        "params.json": json.dumps({"version": 1, "items": [dict(items[0], key="p", params={"id": 1})]}),
    }
    before = state(fresh)
    for name, text in bad.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        rc, lines, err = bootstrap(fresh, p)
        assert rc == 2, (name, lines, err)
        assert lines == [], name
        assert err.strip(), name
    assert state(fresh) == before
    rc, lines, err = bootstrap(fresh, "-w", "x")
    assert rc == 2


def test_waits_for_a_worker():
    need_tool()
    s = System(workers=0)
    try:
        argv = [str(BIN_DIR / "xws-bootstrap"), "-e", s.internal_endpoint, "-w", "60", str(BOOTSTRAP)]
        p = subprocess.Popen(argv, env=s.env, cwd=str(s.dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        assert p.poll() is None, "xws-bootstrap gave up without a worker"
        s.start_worker()
        start_workers(s)
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, (out, err)
        assert out.decode().splitlines() == lines_for("applied")
        wait_until(lambda: s.get(MAIL, {"act": "view"}, auth=ADMIN).status == 200, timeout=20, what="the gateway")
        assert s.get(CONTEXT, {"act": "view", "id": "default"}, auth=ADMIN).json() == CONTEXTS["default"]
    finally:
        s.stop()


def test_gives_up_after_the_window():
    need_tool()
    d = Path(tempfile.mkdtemp(prefix="xwsb-", dir="/tmp"))
    try:
        t0 = time.monotonic()
        r = subprocess.run([str(BIN_DIR / "xws-bootstrap"), "-e", "ipc://%s/nobody.ipc" % d, "-w", "2", str(BOOTSTRAP)],
                           capture_output=True, timeout=60)
        took = time.monotonic() - t0
        assert r.returncode == 1, r
        lines = r.stdout.decode().splitlines()
        assert len(lines) == len(KEYS)
        assert all(": not applied: " in line for line in lines), lines
        assert took < 15, took
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_launcher_bootstraps_on_every_start():
    from test_launcher import Launcher

    need_tool()
    run_dir = Path(tempfile.mkdtemp(prefix="xwsb-", dir="/tmp"))
    port = free_port()
    auth = ("boot", "boot-pass-1")
    try:
        la = Launcher(run_dir, port, "--login", auth[0], "--password", auth[1])
        try:
            la.wait_for_line(r"XWS is running", timeout=90)
            for line in lines_for("applied"):
                assert line in la.text(), la.text()
            wait_until(lambda: la.get(MAIL, "act=view", auth).status == 200, timeout=20, what="mail view")
            assert la.get(MAIL, "act=view", auth).json() == FRESH_MAIL
            r = la.get(CONTEXT, "act=list", auth)
            assert [c["name"] for c in r.json()] == ["default", "from-extern", "to-extern"]
            assert la.get(GROUPS, "act=list", auth).json() == FRESH_GROUPS
            assert la.get(QUEUES, "act=list", auth).json() == FRESH_QUEUES
            assert la.get(CONTEXT, "act=delete&id=to-extern", auth).status == 200
        finally:
            assert la.stop() == 0, la.text()
        assert not sanitizer_reports(la.text())
        la2 = Launcher(run_dir, port, "--login", auth[0], "--password", auth[1])
        try:
            la2.wait_for_line(r"XWS is running", timeout=90)
            for line in lines_for("already applied"):
                assert line in la2.text(), la2.text()
            wait_until(lambda: la2.get(CONTEXT, "act=list", auth).status == 200, timeout=20, what="context list")
            assert [c["name"] for c in la2.get(CONTEXT, "act=list", auth).json()] == ["default", "from-extern"]
        finally:
            assert la2.stop() == 0, la2.text()
        assert not sanitizer_reports(la2.text())
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
