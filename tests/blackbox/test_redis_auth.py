"""Redis with a password (requirepass, e.g. from a container secret): a worker given the password
file (redis_password_file) authenticates at every connect and serves; one without it answers 503
store_unavailable and says why in its log; the account tool reads the same setting."""

import socket
from pathlib import Path

from conftest import ADMIN, ENTITY, System, wait_until


def redis_unix(path, *args):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        s.sendall(out)
        return s.recv(256)


def test_workers_authenticate_with_the_password_file():
    s = System(workers=0)
    try:
        secret = Path(s.dir) / "redis-password"
        secret.write_text("s3cret-redis-pass\n")
        assert redis_unix(Path(s.dir) / "redis.sock", "CONFIG", "SET", "requirepass", "s3cret-redis-pass").startswith(b"+OK")
        s.env["XWS_REDIS_PASSWORD_FILE"] = str(secret)
        with_password = s.start_worker("xws-config")
        wait_until(lambda: s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204), timeout=30,
                   what="a worker that has the password")
        assert s.post(ENTITY, {"act": "add"}, body={"name": "authed", "displayname": "Authenticated"}, auth=ADMIN).status == 200
        r = s.cli("account", "list")
        assert r.returncode == 0 and b"admin" in r.stdout, r
        with_password.stop()
        with_password.expected_dead = True
        del s.env["XWS_REDIS_PASSWORD_FILE"]
        without = s.start_worker("xws-config")
        # (no_worker until it has registered; then store_unavailable from the worker)
        wait_until(lambda: s.get(ENTITY, {"act": "list"}, auth=ADMIN).body.find(b"store_unavailable") >= 0, timeout=30,
                   what="503 store_unavailable from a worker without the password")
        r = s.get(ENTITY, {"act": "list"}, auth=ADMIN)
        assert r.status == 503 and r.json()["error"] == "store_unavailable" and r.header("retry-after"), r
        wait_until(lambda: "requires a password: set redis_password_file" in without.text(), timeout=10,
                   what="the reason in the worker's log")
    finally:
        s.env["XWS_REDIS_PASSWORD_FILE"] = str(Path(s.dir) / "redis-password")  # for the consistency check at stop
        s.stop()
