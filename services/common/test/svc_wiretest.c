/*
 * svc_wiretest.c - the worker loop on real sockets: a test plays the gateway (a ROUTER) and
 * drives a worker process built on svc_worker: READY, REQUEST/REPLY, heartbeats, DISCONNECT →
 * READY, expiry of a silent gateway (reconnect + READY), thousands of malformed messages (the
 * worker survives and answers bad_envelope when it can read a key), and SIGTERM (DISCONNECT,
 * exit status 0). The worker's Redis points nowhere: handlers that need it answer 500.
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
    if (svc_etag_or_reply(ctx, res) != 0) /* Redis is unreachable: 500 */
        return -1;
    return svc_reply_empty(ctx, 204);
}

static const svc_act_t s_acts[] = {{"ping", s_ping}, {"store", s_store}, {NULL, NULL}};
static const svc_resource_t s_resources[] = {{"thing", "ping", s_acts}, {NULL, NULL, NULL}};
static const svc_service_t s_service = {"wiretest", NULL, s_resources, NULL};

static char s_ep[128];

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

/* waits for a message of command cmd (skipping heartbeats); 0 or -1 */
static int s_expect(zsock_t *router, zpoller_t *poller, xws_cmd_t cmd, xws_frames_t *f, int ms)
{
    long long until = svc_now_mono_ms() + ms;
    while (svc_now_mono_ms() < until) {
        if (s_recv(router, poller, f, (int)(until - svc_now_mono_ms())) != 0)
            return -1;
        if (f->cmd == cmd)
            return 0;
        xws_frames_dispose(f);
    }
    return -1;
}

static unsigned s_request(zsock_t *router, zpoller_t *poller, zframe_t *peer, const char *act, const char *key)
{
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    xws_request_spec_t spec = {
        .rid = xws_slice(key), .service = xws_slice("wiretest"), .resource = xws_slice("thing"), .act = xws_slice(act)};
    SVC_CHECK(xws_request_encode(&spec, &env) == 0);
    SVC_CHECK(xws_send_request(router, peer, xws_slice(key), (xws_slice_t){env.data, env.size}) == 0);
    msgpack_sbuffer_destroy(&env);
    xws_frames_t f;
    do {
        SVC_CHECK(s_expect(router, poller, XWS_CMD_REPLY, &f, 3000) == 0);
        if (xws_slice_eq(f.key, key))
            break;
        xws_frames_dispose(&f); /* a late reply to an earlier message */
    } while (1);
    xws_reply_t rep;
    const char *err;
    SVC_CHECK(xws_reply_decode(&rep, f.payload.ptr, f.payload.len, &err) == 0);
    unsigned st = rep.status;
    xws_reply_dispose(&rep);
    xws_frames_dispose(&f);
    return st;
}

static void s_wire_test(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        setenv("XWS_WORKER_ENDPOINTS", s_ep, 1);
        setenv("XWS_REDIS", "unix:/nonexistent/redis.sock", 1);
        setenv("XWS_HEARTBEAT_MS", "100", 1);
        setenv("XWS_EXPIRY_MS", "400", 1);
        setenv("XWS_WORKER_CREDIT", "3", 1);
        char *argv[] = {"svc-wiretest-worker", NULL};
        exit(svc_main(&s_service, 1, argv));
    }
    /* czmq state must not cross a fork: the gateway side is set up after it */
    zsys_handler_set(NULL);
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    SVC_CHECK(router != NULL);
    zsock_set_router_mandatory(router, 1);
    SVC_CHECK(zsock_bind(router, "%s", s_ep) == 0);
    zpoller_t *poller = zpoller_new(router, NULL);
    /* READY wiretest 3 wiretest-<pid> */
    xws_frames_t f;
    SVC_CHECK(s_expect(router, poller, XWS_CMD_READY, &f, 5000) == 0);
    SVC_CHECK(xws_slice_eq(f.service, "wiretest") && f.credit == 3);
    char name[64];
    snprintf(name, sizeof(name), "wiretest-%d", (int)pid);
    SVC_CHECK(xws_slice_eq(f.name, name));
    zframe_t *peer = zframe_dup(f.identity);
    xws_frames_dispose(&f);

    SVC_CHECK(s_request(router, poller, peer, "ping", "k1") == 200);
    SVC_CHECK(s_request(router, poller, peer, "store", "k2") == 500);
    SVC_CHECK(s_request(router, poller, peer, "", "k3") == 200);

    /* heartbeats while idle (the test keeps talking so the worker does not expire us) */
    int beats = 0;
    long long until = svc_now_mono_ms() + 350;
    while (svc_now_mono_ms() < until) {
        xws_send_heartbeat(router, peer);
        if (s_recv(router, poller, &f, 100) == 0) {
            beats += f.cmd == XWS_CMD_HEARTBEAT;
            xws_frames_dispose(&f);
        }
    }
    SVC_CHECK(beats >= 2);

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
            zmsg_destroy(&m);
        while (s_recv(router, poller, &f, 0) == 0) {
            replies += f.cmd == XWS_CMD_REPLY;
            xws_frames_dispose(&f);
        }
    }
    /* a REQUEST with a readable key and a garbage envelope is answered 400 bad_envelope */
    SVC_CHECK(xws_send_request(router, peer, xws_slice("bad"), xws_slice("\xc1\xc1")) == 0);
    for (;;) { /* replies to the garbage above may still be queued in front of it */
        SVC_CHECK(s_expect(router, poller, XWS_CMD_REPLY, &f, 3000) == 0);
        if (xws_slice_eq(f.key, "bad"))
            break;
        xws_frames_dispose(&f);
    }
    xws_reply_t rep;
    const char *err;
    SVC_CHECK(xws_reply_decode(&rep, f.payload.ptr, f.payload.len, &err) == 0 && rep.status == 400);
    SVC_CHECK(svc_mp_str_eq(svc_mp_get(rep.body, "error"), "bad_envelope"));
    xws_reply_dispose(&rep);
    xws_frames_dispose(&f);
    SVC_CHECK(s_request(router, poller, peer, "ping", "k4") == 200); /* still alive */
    SVC_CHECK(replies > 0);

    /* DISCONNECT from the gateway: the worker announces itself again */
    SVC_CHECK(xws_send_disconnect(router, peer) == 0);
    SVC_CHECK(s_expect(router, poller, XWS_CMD_READY, &f, 3000) == 0);
    xws_frames_dispose(&f);

    /* a silent gateway expires: the worker reconnects (new identity) and sends READY */
    usleep(600 * 1000); /* say nothing for longer than expiry_ms */
    SVC_CHECK(s_expect(router, poller, XWS_CMD_READY, &f, 2000) == 0);
    SVC_CHECK(!zframe_eq(f.identity, peer)); /* a new socket */
    zframe_destroy(&peer);
    peer = zframe_dup(f.identity);
    xws_frames_dispose(&f);
    SVC_CHECK(s_request(router, poller, peer, "ping", "k5") == 200);

    /* SIGTERM: DISCONNECT, exit status 0 */
    kill(pid, SIGTERM);
    SVC_CHECK(s_expect(router, poller, XWS_CMD_DISCONNECT, &f, 3000) == 0);
    xws_frames_dispose(&f);
    int st = 0;
    SVC_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    zframe_destroy(&peer);
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    snprintf(s_ep, sizeof(s_ep), "ipc:///tmp/xws-svc-wiretest-%d.ipc", (int)getpid());
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
    printf("%-20s %s\n", "svc_worker (wire)", ok ? "ok" : "FAILED");
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
