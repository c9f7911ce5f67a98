/*
 * svc_wiretest.c - the worker loop on real sockets: a test plays the gateway (a ROUTER) and
 * drives worker processes built on svc_worker: READY, REQUEST/REPLY, heartbeats, DISCONNECT →
 * READY, thousands of malformed messages (the worker survives and answers bad_envelope when it
 * can read a key), SIGTERM (DISCONNECT, exit status 0), and expiry of a silent gateway (reconnect
 * + READY). The worker's Redis points nowhere: handlers that need it answer 503 store_unavailable.
 *
 * No check depends on how fast the machine is: every wait is "until it happens, or WAIT_MS", and
 * the first worker's expiry_ms is far longer than any silence of the test, so that a loaded
 * machine (sanitizers, busy cores) makes the test slower, never wrong. Only the second worker has
 * a short expiry_ms, because its expiry is what is tested, and there the test asserts that it
 * happens, then retries a request across further expiries instead of racing them.
 * Last line: "N passed, M failed".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "xws/frames.h"
#include "svc.h"

static int s_ping(svc_ctx_t *ctx)
{
    svc_mp_cstr(svc_reply_begin(ctx, 200), "pong");
    return 0;
}

static int s_store(svc_ctx_t *ctx)
{
    const char *res[] = {"thing", NULL};
    if (svc_etag_or_reply(ctx, res) != 0) /* Redis is unreachable: 503 */
        return -1;
    return svc_reply_empty(ctx, 204);
}

static const svc_act_t s_acts[] = {{"ping", s_ping}, {"store", s_store}, {NULL, NULL}};
static const svc_resource_t s_resources[] = {{"thing", "ping", s_acts}, {NULL, NULL, NULL}};
static const svc_service_t s_service = {"wiretest", NULL, s_resources, NULL};

/* the bound of every wait: generous, reached only when something is broken */
#define WAIT_MS 30000

/* ms between heartbeats of both workers; expiry of the first one (never reached) and of the second one (tested) */
#define HEARTBEAT_MS "100"
#define LONG_EXPIRY_MS "600000"
#define SHORT_EXPIRY_MS "400"

static char s_ep[128], s_ep2[128];

/* receives one protocol message on the ROUTER within ms; 0 or -1 */
static int s_recv(zsock_t *router, zpoller_t *poller, xws_frames_t *f, int ms)
{
    long long until = svc_now_mono_ms() + ms;
    for (;;) {
        memset(f, 0, sizeof(*f));
        const char *err;
        if (xws_frames_recv(f, router, 1, &err) == 0)
            return 0;
        xws_frames_dispose(f);
        long long left = until - svc_now_mono_ms();
        if (left <= 0)
            return -1;
        zpoller_wait(poller, (int)left);
    }
}

/* waits (WAIT_MS at most) for a message of command cmd, skipping others; 0 or -1 */
static int s_expect(zsock_t *router, zpoller_t *poller, xws_cmd_t cmd, xws_frames_t *f)
{
    long long until = svc_now_mono_ms() + WAIT_MS;
    while (svc_now_mono_ms() < until) {
        if (s_recv(router, poller, f, (int)(until - svc_now_mono_ms())) != 0)
            return -1;
        if (f->cmd == cmd)
            return 0;
        xws_frames_dispose(f);
    }
    return -1;
}

/* sends REQUEST key for act to peer; 0 or -1 (the peer is not connected) */
static int s_send_request(zsock_t *router, zframe_t *peer, const char *act, const char *key)
{
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    xws_request_spec_t spec = {
        .rid = xws_slice(key), .service = xws_slice("wiretest"), .resource = xws_slice("thing"), .act = xws_slice(act)};
    XWS_CHECK(xws_request_encode(&spec, &env) == 0);
    int rc = xws_send_request(router, peer, xws_slice(key), (xws_slice_t){env.data, env.size});
    msgpack_sbuffer_destroy(&env);
    return rc;
}

static unsigned s_status(const xws_frames_t *f)
{
    xws_reply_t rep;
    const char *err;
    XWS_CHECK(xws_reply_decode(&rep, f->payload.ptr, f->payload.len, &err) == 0);
    unsigned st = rep.status;
    xws_reply_dispose(&rep);
    return st;
}

/* one request to a worker that cannot expire the test: the status of its reply */
static unsigned s_request(zsock_t *router, zpoller_t *poller, zframe_t *peer, const char *act, const char *key)
{
    XWS_CHECK(s_send_request(router, peer, act, key) == 0);
    xws_frames_t f;
    for (;;) {
        XWS_CHECK(s_expect(router, poller, XWS_CMD_REPLY, &f) == 0);
        if (xws_slice_eq(f.key, key))
            break;
        xws_frames_dispose(&f); /* a late reply to an earlier message */
    }
    unsigned st = s_status(&f);
    xws_frames_dispose(&f);
    return st;
}

/* waits (WAIT_MS at most) for the exit of pid, then kills it: its wait status, or -1 when it had to be killed */
static int s_reap(pid_t pid)
{
    long long until = svc_now_mono_ms() + WAIT_MS;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        if (svc_now_mono_ms() >= until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10 * 1000);
    }
}

/* a worker process on endpoint ep with that expiry (the parent's czmq state must not exist yet) */
static pid_t s_spawn(const char *ep, const char *expiry_ms)
{
    pid_t pid = fork();
    XWS_CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        setenv("XWS_WORKER_ENDPOINTS", ep, 1);
        setenv("XWS_REDIS", "unix:/nonexistent/redis.sock", 1);
        setenv("XWS_HEARTBEAT_MS", HEARTBEAT_MS, 1);
        setenv("XWS_EXPIRY_MS", expiry_ms, 1);
        setenv("XWS_WORKER_CREDIT", "3", 1);
        char *argv[] = {"svc-wiretest-worker", NULL};
        exit(svc_main(&s_service, 1, argv));
    }
    return pid;
}

/* READY from worker pid: "READY wiretest 3 wiretest-<pid>"; returns its identity */
static zframe_t *s_ready(zsock_t *router, zpoller_t *poller, pid_t pid)
{
    xws_frames_t f;
    XWS_CHECK(s_expect(router, poller, XWS_CMD_READY, &f) == 0);
    XWS_CHECK(xws_slice_eq(f.service, "wiretest") && f.credit == 3);
    char name[64];
    snprintf(name, sizeof(name), "wiretest-%d", (int)pid);
    XWS_CHECK(xws_slice_eq(f.name, name));
    zframe_t *peer = zframe_dup(f.identity);
    xws_frames_dispose(&f);
    return peer;
}

/* everything but expiry, with a worker that cannot expire the test */
static void s_session_test(zsock_t *router, zpoller_t *poller, pid_t pid)
{
    zframe_t *peer = s_ready(router, poller, pid);
    XWS_CHECK(s_request(router, poller, peer, "ping", "k1") == 200);
    XWS_CHECK(s_request(router, poller, peer, "store", "k2") == 503);
    XWS_CHECK(s_request(router, poller, peer, "", "k3") == 200);

    /* heartbeats while idle: two of them come, however long that takes; each carries the worker's
     * report, which soon says that Redis (nowhere) does not answer, and counts the requests */
    xws_frames_t f;
    int down = 0;
    for (int beats = 0; beats < 2 || (!down && beats < 100); beats++) {
        XWS_CHECK(s_expect(router, poller, XWS_CMD_HEARTBEAT, &f) == 0);
        XWS_CHECK(zframe_eq(f.identity, peer) && f.payload.len > 0);
        msgpack_unpacked u;
        XWS_CHECK(svc_mp_unpack(&u, f.payload.ptr, f.payload.len) == 0 && u.data.type == MSGPACK_OBJECT_MAP);
        const msgpack_object *store = svc_mp_get(&u.data, "store"), *handled = svc_mp_get(&u.data, "handled");
        const msgpack_object *errors = svc_mp_get(&u.data, "store_errors");
        XWS_CHECK(store != NULL && handled != NULL && errors != NULL && handled->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
        XWS_CHECK(handled->via.u64 == 3 && errors->via.u64 == 1); /* k1, k2 (503), k3 */
        down = xws_slice_eq(svc_mp_slice(store), "down");
        XWS_CHECK(down || xws_slice_eq(svc_mp_slice(store), "unknown")); /* before the first probe */
        msgpack_unpacked_destroy(&u);
        xws_frames_dispose(&f);
    }
    XWS_CHECK(down);

    /* malformed messages: the worker survives them all */
    unsigned seed = 12345;
    int replies = 0;
    for (int i = 0; i < 3000; i++) {
        zmsg_t *m = zmsg_new();
        zmsg_append(m, &(zframe_t *){zframe_dup(peer)});
        int nframes = rand_r(&seed) % 6;
        for (int k = 0; k < nframes; k++) {
            unsigned char buf[64];
            size_t len = (size_t)(rand_r(&seed) % 40);
            for (size_t b = 0; b < len; b++)
                buf[b] = (unsigned char)rand_r(&seed);
            if (k == 0 && rand_r(&seed) % 2)
                memcpy(buf, "XWS1", 4), len = 4;
            if (k == 1 && rand_r(&seed) % 2)
                buf[0] = (unsigned char)(1 + rand_r(&seed) % 6), len = 1;
            if (k == 2 && rand_r(&seed) % 4 == 0)
                len = 0; /* empty key */
            zmsg_addmem(m, buf, len);
        }
        if (zmsg_send(&m, router) != 0)
            zmsg_destroy(&m); /* the pipe is full (ROUTER_MANDATORY): that one is not sent */
        while (s_recv(router, poller, &f, 0) == 0) {
            replies += f.cmd == XWS_CMD_REPLY;
            xws_frames_dispose(&f);
        }
    }
    /* a REQUEST with a readable key and a garbage envelope is answered 400 bad_envelope */
    XWS_CHECK(xws_send_request(router, peer, xws_slice("bad"), xws_slice("\xc1\xc1")) == 0);
    for (;;) { /* the replies to the garbage above come first (one worker, one pipe: in order) */
        XWS_CHECK(s_expect(router, poller, XWS_CMD_REPLY, &f) == 0);
        if (xws_slice_eq(f.key, "bad"))
            break;
        replies++;
        xws_frames_dispose(&f);
    }
    xws_reply_t rep;
    const char *err;
    XWS_CHECK(xws_reply_decode(&rep, f.payload.ptr, f.payload.len, &err) == 0 && rep.status == 400);
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(rep.body, "error"), "bad_envelope"));
    xws_reply_dispose(&rep);
    xws_frames_dispose(&f);
    XWS_CHECK(replies > 0);                                          /* some garbage had a readable key */
    XWS_CHECK(s_request(router, poller, peer, "ping", "k4") == 200); /* still alive */

    /* DISCONNECT from the gateway: the worker announces itself again, and serves */
    XWS_CHECK(xws_send_disconnect(router, peer) == 0);
    zframe_destroy(&peer);
    peer = s_ready(router, poller, pid);
    XWS_CHECK(s_request(router, poller, peer, "ping", "k5") == 200);

    /* SIGTERM: DISCONNECT, exit status 0 */
    kill(pid, SIGTERM);
    XWS_CHECK(s_expect(router, poller, XWS_CMD_DISCONNECT, &f) == 0);
    xws_frames_dispose(&f);
    int st = s_reap(pid);
    XWS_CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    zframe_destroy(&peer);
}

/*
 * A silent gateway expires: the worker reconnects (new identity) and says READY again, then serves.
 * Its expiry_ms is short, so it may expire the test again at any moment on a loaded machine: a
 * request whose peer is gone, or overtaken by a new READY, is sent again to the new identity.
 */
static void s_expiry_test(zsock_t *router, zpoller_t *poller, pid_t pid)
{
    zframe_t *peer = s_ready(router, poller, pid);
    xws_frames_t f;
    long long until = svc_now_mono_ms() + WAIT_MS;
    for (;;) { /* say nothing: READY comes back from a new socket */
        XWS_CHECK(s_recv(router, poller, &f, (int)(until - svc_now_mono_ms())) == 0);
        if (f.cmd == XWS_CMD_READY && !zframe_eq(f.identity, peer))
            break;
        xws_frames_dispose(&f);
    }
    zframe_destroy(&peer);
    peer = zframe_dup(f.identity);
    xws_frames_dispose(&f);

    int answered = 0, sent = s_send_request(router, peer, "ping", "k6") == 0;
    until = svc_now_mono_ms() + WAIT_MS;
    while (!answered && s_recv(router, poller, &f, (int)(until - svc_now_mono_ms())) == 0) {
        if (f.cmd == XWS_CMD_REPLY && xws_slice_eq(f.key, "k6")) {
            XWS_CHECK(s_status(&f) == 200);
            answered = 1;
        } else if (f.cmd == XWS_CMD_READY && (!sent || !zframe_eq(f.identity, peer))) { /* expired again: once more */
            zframe_destroy(&peer);
            peer = zframe_dup(f.identity);
            sent = s_send_request(router, peer, "ping", "k6") == 0;
        }
        xws_frames_dispose(&f);
    }
    XWS_CHECK(answered);
    zframe_destroy(&peer);

    kill(pid, SIGTERM);
    int st = s_reap(pid);
    XWS_CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void s_wire_test(void)
{
    /* both workers first: czmq state must not cross a fork, the gateway side is set up after them */
    pid_t expiring = s_spawn(s_ep2, SHORT_EXPIRY_MS), steady = s_spawn(s_ep, LONG_EXPIRY_MS);
    zsys_handler_set(NULL);
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    XWS_CHECK(router != NULL);
    zsock_set_router_mandatory(router, 1);
    XWS_CHECK(zsock_bind(router, "%s", s_ep2) == 0);
    zpoller_t *poller = zpoller_new(router, NULL);
    s_expiry_test(router, poller, expiring);
    zpoller_destroy(&poller);
    zsock_destroy(&router);

    /* the steady worker waited meanwhile (connecting until the endpoint is bound) */
    router = zsock_new(ZMQ_ROUTER);
    XWS_CHECK(router != NULL);
    zsock_set_router_mandatory(router, 1);
    XWS_CHECK(zsock_bind(router, "%s", s_ep) == 0);
    poller = zpoller_new(router, NULL);
    s_session_test(router, poller, steady);
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    snprintf(s_ep, sizeof(s_ep), "ipc:///tmp/xws-svc-wiretest-%d.ipc", (int)getpid());
    snprintf(s_ep2, sizeof(s_ep2), "ipc:///tmp/xws-svc-wiretest-%d-expiry.ipc", (int)getpid());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        s_wire_test();
        exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    unlink(s_ep + 6);
    unlink(s_ep2 + 6);
    printf("%-20s %s\n", "svc_worker (wire)", ok ? "ok" : "FAILED");
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
