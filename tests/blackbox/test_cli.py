"""The command-line programs explain themselves: --help and --version everywhere (long options),
usage errors with exit status 2, account commands that say what they did, `account set --acl`
replacing the ACL (--add-acl / --remove-acl to change it), and the manual pages generated from
the --help texts."""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN_DIR, PROJECT, System

PROGRAMS = ["xws-gateway", "xws-config", "xws-ipbx-lines", "xws-ipbx-users", "xws-devices", "xws-extensions",
            "xws-bootstrap", "xws-call", "xws-fsck", "xws-devices-provision", "xws-keys"]
MAN_PAGES = [p for p in PROGRAMS if p != "xws-devices-provision"]


def version():
    m = re.search(r"^project\(xws VERSION ([0-9.]+)", (PROJECT / "CMakeLists.txt").read_text(), re.M)
    assert m
    return m.group(1)


def run(*argv):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("prog", PROGRAMS)
def test_help_version_and_usage_errors(prog):
    exe = BIN_DIR / prog
    assert exe.is_file(), exe
    for flag in ("--help", "-h"):
        r = run(exe, flag)
        assert r.returncode == 0, r
        assert r.stdout.startswith("Usage: %s " % prog), r.stdout
        assert "  -h, --help" in r.stdout and "  -V, --version" in r.stdout
        assert "-c, --config FILE" in r.stdout or prog == "xws-gateway" and "--config" in r.stdout or prog == "xws-keys"
    for flag in ("--version", "-V"):
        r = run(exe, flag)
        assert r.returncode == 0 and r.stdout == "%s (XWS) %s\n" % (prog, version()), r
    r = run(exe, "--no-such-option")
    assert r.returncode == 2, r
    assert "unknown option --no-such-option" in r.stderr and "Try '%s --help'" % prog in r.stderr, r.stderr
    r = run(exe, "--dir" if prog == "xws-keys" else "--config")  # xws-keys reads no settings
    assert r.returncode == 2 and "needs a value" in r.stderr, r


def test_config_help_lists_account_and_account_help():
    r = run(BIN_DIR / "xws-config", "--help")
    assert "account COMMAND" in r.stdout
    r = run(BIN_DIR / "xws-config", "account", "--help")
    assert r.returncode == 0 and "ensure-initial" in r.stdout and "--add-acl" in r.stdout, r


def test_launcher_help_and_version():
    launch = PROJECT / "deploy" / "xws-launch"
    r = run(launch, "--help")
    assert r.returncode == 0 and "--password-file" in r.stdout, r
    r = run(launch, "--version")
    assert r.returncode == 0 and r.stdout == "xws-launch (XWS) %s\n" % version(), r
    r = run(launch, "--bogus")
    assert r.returncode == 2


@pytest.mark.skipif(shutil.which("help2man") is None, reason="help2man is not installed (deploy/install-deps.sh)")
@pytest.mark.parametrize("prog", MAN_PAGES)
def test_manual_pages(prog):
    page = BIN_DIR.parent / "man" / ("%s.1" % prog)
    assert page.is_file(), "no manual page %s (the build makes them with help2man)" % page
    text = page.read_text()
    assert text.count(".TH %s" % prog.upper()) == 1
    assert "\\-\\-version" in text and "\\-\\-help" in text
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", str(page)], capture_output=True, text=True, timeout=30)
        plain = re.sub(".\b", "", r.stdout)  # groff's bold is overstriking
        assert r.returncode == 0 and "SYNOPSIS" in plain and "OPTIONS" in plain and "--version" in plain, plain


@pytest.fixture(scope="module")
def system():
    s = System(workers=1)
    yield s
    s.stop()


def acl_of(system, name):
    r = system.cli_ok("account", "list", "--json")
    accounts = json.loads(r.stdout)
    if isinstance(accounts, dict):
        accounts = accounts.get("accounts", [])
    for a in accounts:
        if a["name"] == name:
            return a["acl"], a["hosts"]
    pytest.fail("no account %s in %s" % (name, r.stdout))


def test_account_commands_say_what_they_did(system):
    r = system.cli_ok("account", "add", "prov", "--login", "prov", "--password", "prov-pass-1",
                      "--acl", "service/ipbx", "--host", "10.0.0.0/8")
    assert r.stdout.decode().startswith("account prov added: login prov, enabled, hosts 10.0.0.0/8, acl service/ipbx")
    r = system.cli_ok("account", "set", "prov", "--acl", "callcenter")
    assert "account prov updated" in r.stdout.decode() and "acl callcenter\n" in r.stdout.decode(), r.stdout
    assert acl_of(system, "prov")[0] == ["callcenter"]  # --acl replaces
    r = system.cli_ok("account", "set", "prov", "--add-acl", "service/ipbx", "--add-acl", "xivo/configuration",
                      "--remove-acl", "callcenter")
    assert acl_of(system, "prov")[0] == ["service/ipbx", "xivo/configuration"]
    system.cli_ok("account", "set", "prov", "--add-host", "192.0.2.1", "--remove-host", "10.0.0.0/8")
    assert acl_of(system, "prov")[1] == ["192.0.2.1"]
    system.cli_ok("account", "set", "prov", "--host", "198.51.100.0/24")  # --host replaces too
    assert acl_of(system, "prov")[1] == ["198.51.100.0/24"]
    r = system.cli_ok("account", "disable", "prov")
    assert "account prov disabled" in r.stdout.decode()
    r = system.cli_ok("account", "enable", "prov")
    assert "account prov enabled" in r.stdout.decode()
    r = system.cli_ok("account", "passwd", "prov", "--password-stdin", input=b"prov-pass-2\n")
    assert "account prov has a new password" in r.stdout.decode() and "prov-pass-2" not in r.stdout.decode()
    r = system.cli_ok("account", "remove", "prov")
    assert r.stdout.decode() == "account prov removed\n"
    r = system.cli("account", "remove", "prov")
    assert r.returncode == 1
    r = system.cli_ok("account", "ensure-initial", "--login", "admin2")
    assert "exist already" in r.stdout.decode()
    r = system.cli("account", "set", "nobody", "--bogus")
    assert r.returncode == 2


def test_strict_configuration_names_the_culprit_and_its_source(tmp_path):
    conf = tmp_path / "xws.conf"
    conf.write_text("# a typo\nredis_timout_ms = 100\n")
    r = run(BIN_DIR / "xws-gateway", "--check-config", "-c", conf)
    assert r.returncode == 2, r
    assert "%s:2: unknown setting 'redis_timout_ms' (did you mean 'redis_timeout_ms'?)" % conf in r.stderr, r.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    r = subprocess.run([str(BIN_DIR / "xws-config"), "--check-config"], capture_output=True, text=True, timeout=30,
                       env=dict(env, XWS_DEADLINE_MSS="5"))
    assert r.returncode == 2 and "unknown variable XWS_DEADLINE_MSS (did you mean XWS_DEADLINE_MS?)" in r.stderr, r
    r = subprocess.run([str(BIN_DIR / "xws-gateway"), "--check-config"], capture_output=True, text=True, timeout=30,
                       env=dict(env, XWS_DEADLINE_MS="soon"))
    assert r.returncode == 2 and "(from the environment, XWS_DEADLINE_MS)" in r.stderr, r
    conf.write_text("deadline_ms = 3000\nlisten = 127.0.0.1:1\n")
    r = subprocess.run([str(BIN_DIR / "xws-gateway"), "--check-config", "-c", str(conf)], capture_output=True,
                       text=True, timeout=30, env=env)
    assert r.returncode == 0, r


def test_every_setting_is_documented_and_known():
    """The settings the programs accept (proto/src/config.c) are exactly those deploy/xws.conf documents."""
    src = (PROJECT / "proto" / "src" / "config.c").read_text()
    table = src[src.index("s_known[] = {"):src.index("};", src.index("s_known[] = {"))]
    known = set(re.findall(r'"([a-z_]+)"', table))
    documented = set(re.findall(r"^# ([a-z_]+) =", (PROJECT / "deploy" / "xws.conf").read_text(), re.M))
    assert known == documented, (sorted(known - documented), sorted(documented - known))


def test_launcher_stops_at_once_on_a_configuration_error(tmp_path):
    conf = tmp_path / "xws.conf"
    conf.write_text("deadline_ms = 3000\nmax_bodyy = 5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XWS_")}
    r = subprocess.run([str(PROJECT / "deploy" / "xws-launch"), "--bin-dir", str(BIN_DIR), "--run-dir",
                        str(tmp_path / "run"), "--port", "1", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2, r
    assert "unknown setting 'max_bodyy' (did you mean 'max_body'?)" in r.stderr and "nothing was started" in r.stderr
