"""Rolling upgrade: workers of two versions run side by side on one gateway and one Redis. Each
loads its own function library ("xws_config_v<version>", functions suffixed alike), so neither
replaces the other's code, both serve, and the data stay one. (The envelope's protocol version is checked by the protocol
library's decoder: proto/tests.)"""

import socket

from conftest import ADMIN, ENTITY, System, wait_until


def redis_unix(path, *args):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args))
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if len(chunk) < 65536:
                return data


def test_old_and_new_workers_side_by_side():
    s = System(workers=0)
    try:
        s.env["XWS_FUNCTION_LIBRARY_VERSION"] = "0.8.7"
        old = s.start_worker("xws-config")
        del s.env["XWS_FUNCTION_LIBRARY_VERSION"]
        new = s.start_worker("xws-config")
        wait_until(lambda: s.get(ENTITY, {"act": "list"}, auth=ADMIN).status in (200, 204), timeout=30, what="workers")
        wait_until(lambda: b"xws_config_v0_8_7" in redis_unix(s.dir / "redis.sock", "FUNCTION", "LIST")
                   and b"config_account_put_v0_8_7" in redis_unix(s.dir / "redis.sock", "FUNCTION", "LIST"),
                   timeout=30, what="the old library")
        libs = redis_unix(s.dir / "redis.sock", "FUNCTION", "LIST")
        new_libs = [w for w in libs.split(b"\r\n") if w.startswith(b"xws_config_v") and not w.endswith(b"0_8_7")]
        assert new_libs, libs[:500]
        # each version serves alone in turn, on the same data
        new.kill()
        assert s.post(ENTITY, {"act": "add"}, body={"name": "by_old", "displayname": "By old"}, auth=ADMIN).status == 200
        new2 = s.start_worker("xws-config")
        old.kill()
        wait_until(lambda: s.get(ENTITY, {"act": "search", "search": "by_old"}, auth=ADMIN).status == 200, timeout=30,
                   what="the new worker serving")
        assert s.post(ENTITY, {"act": "add"}, body={"name": "by_new", "displayname": "By new"}, auth=ADMIN).status == 200
        # the old library is still there (the new worker did not replace it): an old worker that
        # restarts during the upgrade still finds its own functions
        assert b"xws_config_v0_8_7" in redis_unix(s.dir / "redis.sock", "FUNCTION", "LIST")
        names = sorted(e["name"] for e in s.get(ENTITY, {"act": "list"}, auth=ADMIN).json())
        assert names == ["by_new", "by_old"], names
    finally:
        s.stop()

