"""The Compose deployment an operator can trust, checked without a Docker engine: the file
validates (docker-compose config), images are tagged with the project version, every container
has log rotation, the workers and the gateway have health checks and resource limits, every file
the Dockerfile copies exists, and the worker health check (health_file, `xws-entrypoint
health-worker`) tells a serving worker from a stuck one."""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ADMIN, ENTITY, PROJECT, System, wait_until

yaml = pytest.importorskip("yaml")

COMPOSE = PROJECT / "docker-compose.yml"
WORKERS = ["config", "ipbx-lines", "ipbx-users", "devices", "extensions"]


def version():
    return re.search(r"^project\(xws VERSION ([0-9.]+)", (PROJECT / "CMakeLists.txt").read_text(), re.M).group(1)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing (deploy/install-deps.sh)")
def test_compose_file_validates():
    r = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                       timeout=60, cwd=PROJECT, env={k: v for k, v in os.environ.items() if not k.startswith("XWS_")})
    assert r.returncode == 0, r.stderr


def test_images_logging_health_and_limits(compose):
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("logging", {}).get("options", {}).get("max-size"), "%s has no log rotation" % name
        image = svc["image"]
        assert image.endswith(":${XWS_VERSION:-%s}" % version()), (name, image)
    for name in WORKERS + ["gateway"]:
        svc = services[name]
        assert svc["healthcheck"]["test"][:2] == ["CMD", "xws-entrypoint"], name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
    for name in WORKERS:
        assert services[name]["healthcheck"]["test"][2] == "health-worker"
        assert services[name]["environment"]["XWS_HEALTH_FILE"]
    assert services["gateway"]["healthcheck"]["test"][2] == "health"


def test_every_file_the_dockerfile_copies_exists():
    text = (PROJECT / "deploy" / "docker" / "Dockerfile").read_text()
    sources = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert sources
    for src in sources:
        assert (PROJECT / src).exists(), src


def test_worker_health_file_and_check():
    d = Path(tempfile.mkdtemp(prefix="xwsc-", dir="/tmp"))
    health = d / "health"
    entry = PROJECT / "deploy" / "docker" / "xws-entrypoint.sh"

    def check():
        env = dict(os.environ, XWS_HEALTH_FILE=str(health))
        return subprocess.run(["bash", str(entry), "health-worker"], capture_output=True, text=True, env=env, timeout=30)

    try:
        r = check()
        assert r.returncode == 1 and "no health file" in r.stdout
        s = System(workers=0)
        try:
            s.env["XWS_HEALTH_FILE"] = str(health)
            s.start_worker("xws-config")
            wait_until(health.exists, timeout=30, what="the worker's health file")
            assert check().returncode == 0
            assert s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204)
        finally:
            s.stop()
        old = time.time() - 60
        os.utime(health, (old, old))  # a worker that stopped touching it
        r = check()
        assert r.returncode == 1 and "old" in r.stdout, r
    finally:
        shutil.rmtree(d, ignore_errors=True)
