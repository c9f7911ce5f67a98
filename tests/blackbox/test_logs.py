"""One log format: every message line of the gateway and the workers carries the time, the
process, its pid and a level, as text or (log_format = json) as one JSON object per line; a clean
start and stop print no error or warning; a bad log_format is refused at once."""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ADMIN, BIN_DIR, ENTITY, System

TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (xws-[a-z-]+)\[\d+\] (error|warning|info|debug): .+$")
ACCESS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ [A-Z]+ /")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_message_line_has_the_format(fmt, monkeypatch):
    monkeypatch.setenv("XWS_KEEP_LOGS", "1")  # read the logs after the clean stop
    s = System(workers=1, extra_env={"XWS_LOG_FORMAT": fmt})
    try:
        s.start_worker("xws-ipbx-lines")
        assert s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)
        assert s.get(ENTITY, {"act": "view", "id": "99"}, auth=ADMIN).status == 404
        procs = [s.gateway] + s.workers
    finally:
        s.stop()
    try:
        seen = 0
        for p in procs:
            for line in p.text().splitlines():
                if not line or ACCESS.match(line):
                    continue
                seen += 1
                if fmt == "text":
                    m = TEXT.match(line)
                    assert m, (p.name, line)
                    level = m.group(2)
                else:
                    obj = json.loads(line)
                    assert set(obj) == {"time", "level", "process", "pid", "msg"}, line
                    assert obj["process"].startswith("xws-") and isinstance(obj["pid"], int)
                    level = obj["level"]
                # a clean start, a few requests and a clean stop: nothing alarming
                assert level in ("info", "debug"), (p.name, line)
        assert seen >= 6
    finally:
        shutil.rmtree(s.dir, ignore_errors=True)


def test_a_bad_log_format_is_refused():
    env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    for prog in ("xws-gateway", "xws-config"):
        r = subprocess.run([str(BIN_DIR / prog), "--check-config"], capture_output=True, text=True, timeout=30,
                           env=dict(env, XWS_LOG_FORMAT="yaml"))
        assert r.returncode == 2 and "log_format must be text or json" in r.stderr, r
