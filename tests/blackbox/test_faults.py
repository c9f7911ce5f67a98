"""Faults behind the gateway (contract §1.3, PROTOCOL.md §2 and §5): a killed worker is replaced
and requests keep working; no worker gives 503 with Retry-After at once; a worker that never
answers gives 504 at the deadline; workers re-register after a gateway restart."""

import signal
import threading
import time

import pytest

from conftest import ADMIN, ENTITY, ENTITY_PRIVATE, System, entity_body, wait_until


def private_list(s, **kw):
    return s.get(ENTITY_PRIVATE, {"act": "list"}, **kw)


def test_killed_idle_worker_is_replaced(system):
    assert len(system.workers) == 2
    victim = system.workers[0]
    victim.kill(signal.SIGKILL)
    system.start_worker()
    # requests keep working, including the ones the gateway may still route to the dead worker
    # until it expires (they are re-dispatched)
    for i in range(12):
        r = system.get(ENTITY, {"act": "list"}, auth=ADMIN)
        assert r.status in (200, 204), (i, r)
        assert r.elapsed < 5.5, (i, r.elapsed)
    r = system.post(ENTITY, {"act": "add"}, body=entity_body("afterkill"), auth=ADMIN)
    assert r.status == 200, r
    r = system.get(ENTITY, {"act": "search", "search": "afterkill"}, auth=ADMIN)
    assert r.status == 200 and len(r.json()) == 1


def test_killed_worker_under_load(system):
    results = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            r = system.get(ENTITY, {"act": "list"}, auth=ADMIN, timeout=20)
            results.append(r.status)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        live = [w for w in system.workers if w.alive()]
        live[0].kill(signal.SIGKILL)
        system.start_worker()
        time.sleep(4.5)  # past the expiry of the killed worker
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results
    bad = [s for s in results if s not in (200, 204)]
    assert not bad, "statuses during the kill: %r" % sorted(set(results))


def test_no_worker_503_at_once():
    s = System(workers=0, accounts=False)
    try:
        r = private_list(s)
        assert r.status == 503, r
        assert r.header("retry-after") == "1"
        assert r.header("x-xivo-ws-version") == "1.0"
        assert r.elapsed < 1.0, r.elapsed
        if r.body:
            assert r.json()["error"] == "no_worker"
        # a worker that arrives is used
        s.start_worker()
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="the new worker")
    finally:
        s.stop()


def test_all_workers_gone_503_then_recovery():
    s = System(workers=1, accounts=False)
    try:
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="the worker")
        s.workers[0].kill(signal.SIGKILL)
        # after the expiry (3 heartbeats), the gateway knows there is no worker
        wait_until(lambda: private_list(s, timeout=10).status == 503, timeout=10, what="503 after the worker died")
        r = private_list(s)
        assert r.status == 503 and r.elapsed < 1.0, r
        assert r.header("retry-after") == "1"
        s.start_worker()
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="recovery")
    finally:
        s.stop()


def test_worker_clean_stop_is_forgotten_at_once():
    s = System(workers=1, accounts=False)
    try:
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="the worker")
        w = s.workers[0]
        status = w.stop()
        w.expected_dead = True
        assert status == 0, "worker exit status on SIGTERM: %s" % status
        # DISCONNECT: no waiting for the expiry
        t0 = time.monotonic()
        r = private_list(s)
        assert r.status == 503, r
        assert time.monotonic() - t0 < 1.0
    finally:
        s.stop()


def test_blackhole_worker_504_at_deadline():
    s = System(workers=0, blackhole=True, deadline_ms=1000, accounts=False)
    try:
        time.sleep(0.5)  # let the blackhole register
        r = private_list(s)
        assert r.status == 504, r
        assert 0.9 <= r.elapsed < 2.0, r.elapsed
        assert r.header("x-xivo-ws-version") == "1.0"
        if r.body:
            assert r.json()["error"] == "timeout"
        # many at once: all 504 near the deadline, and the gateway keeps serving meanwhile
        out = []

        def one():
            out.append(private_list(s))

        threads = [threading.Thread(target=one) for _ in range(10)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        nf = s.get("/no/such/path")
        assert nf.status == 404 and time.monotonic() - t0 < 0.5
        for t in threads:
            t.join()
        assert [x.status for x in out] == [504] * 10
        assert all(x.elapsed < 2.5 for x in out), [x.elapsed for x in out]
        # a write too
        r = s.post(ENTITY_PRIVATE, {"act": "add"}, body=entity_body("lost"))
        assert r.status == 504, r
        s.check_alive()
    finally:
        s.stop()


def test_gateway_restart_workers_reregister():
    s = System(workers=1, accounts=False)
    try:
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="the worker")
        old = s.gateway
        status = old.stop()
        old.expected_dead = True
        assert status == 0, "gateway exit status on SIGTERM: %s" % status
        s.start_gateway()
        wait_until(lambda: private_list(s).status in (200, 204), timeout=10, what="the worker after the restart")
        assert s.workers[0].alive()
    finally:
        s.stop()


@pytest.mark.parametrize("n", [20])
def test_parallel_adds_same_name_exactly_one_wins(system, n):
    statuses, errors = [], []
    barrier = threading.Barrier(n)

    def one():
        barrier.wait()
        r = system.post(ENTITY, {"act": "add"}, body=entity_body("samename"), auth=ADMIN)
        statuses.append(r.status)
        if r.status == 400:
            errors.append(r.json()["error"])

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * (n - 1), statuses
    assert set(errors) == {"already_exists"}, errors
    r = system.get(ENTITY, {"act": "search", "search": "samename"}, auth=ADMIN)
    assert r.status == 200
    assert [e["name"] for e in r.json()] == ["samename"]


def test_parallel_adds_distinct_names(system):
    n = 20
    statuses = []

    def one(i):
        statuses.append(system.post(ENTITY, {"act": "add"}, body=entity_body("par%02d" % i), auth=ADMIN).status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * n, statuses
    r = system.get(ENTITY, {"act": "search", "search": "par"}, auth=ADMIN)
    ents = [e for e in r.json() if e["name"].startswith("par")]
    assert len(ents) == n
    ids = [e["id"] for e in ents]
    assert len(set(ids)) == n and ids == sorted(ids)
