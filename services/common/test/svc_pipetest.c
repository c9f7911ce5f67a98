/*
 * svc_pipetest.c - the pipelined worker on real sockets, with a Redis the test scripts: the test
 * plays the gateway (a ROUTER) and Redis (a Unix socket that reads the worker's commands and
 * answers them only when the test says so). It proves, without depending on how fast the machine
 * is:
 *   - requests overlap: many requests' commands reach Redis before any is answered, and each
 *     reply goes to the request that sent the command;
 *   - the credit bounds what a worker takes: with credit C and Redis silent, C commands arrive
 *     and no more, and each answer lets exactly one more request in;
 *   - a request that waits for Redis does not hold back one that Redis answered;
 *   - REQUEST batches are read, and replies come back (batched) to a gateway that sends batches;
 *   - SIGTERM: the requests in flight are finished, then DISCONNECT, exit status 0.
 * Every wait is "until it happens, or WAIT_MS"; the one check of an absence ("no further command
 * arrives") can only pass more easily on a slow machine. Last line: "N passed, M failed".
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "xws/frames.h"
#include "svc.h"

#define WAIT_MS 30000
#define CREDIT 4

/* ---- the service: GET the key named by param k (act "get"), or GET k then k2 (act "two") ------- */

static int s_get(svc_ctx_t *ctx, const char *key, char *out, size_t size)
{
    const char *argv[] = {"GET", key};
    redisReply *r = svc_redis_command(ctx->redis, 2, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        svc_reply_redis_failure(ctx, r, "GET");
        freeReplyObject(r);
        return -1;
    }
    snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

static int s_act_get(svc_ctx_t *ctx)
{
    char v[128];
    if (s_get(ctx, svc_param(ctx, "k"), v, sizeof(v)) != 0)
        return -1;
    svc_mp_cstr(svc_reply_begin(ctx, 200), v);
    return 0;
}

static int s_act_two(svc_ctx_t *ctx)
{
    char a[128], b[128], both[300];
    if (s_get(ctx, svc_param(ctx, "k"), a, sizeof(a)) != 0 || s_get(ctx, svc_param(ctx, "k2"), b, sizeof(b)) != 0)
        return -1;
    snprintf(both, sizeof(both), "%s+%s", a, b);
    svc_mp_cstr(svc_reply_begin(ctx, 200), both);
    return 0;
}

static const svc_act_t s_acts[] = {{"get", s_act_get}, {"two", s_act_two}, {NULL, NULL}};
static const svc_resource_t s_resources[] = {{"thing", "get", s_acts}, {NULL, NULL, NULL}};
static const svc_service_t s_service = {"pipetest", NULL, s_resources, NULL};

/* ---- the scripted Redis ------------------------------------------------------------------------- */

typedef struct {
    int lfd, fd; /* listening socket, the worker's connection */
    char buf[65536];
    size_t len;         /* bytes in buf */
    char keys[256][64]; /* the key of each GET received, in order */
    int ncmds;          /* GETs received */
    int answered;       /* GETs answered */
} fake_redis_t;

/* parses complete "*2 $3 GET $n key" commands out of r->buf */
static void s_parse(fake_redis_t *r)
{
    for (;;) {
        char *p = r->buf, *end = r->buf + r->len;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return;
        XWS_CHECK(p[0] == '*' && atoi(p + 1) == 2);
        char *args[2];
        size_t lens[2];
        p = nl + 1;
        for (int i = 0; i < 2; i++) {
            nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
            if (nl == NULL)
                return;
            XWS_CHECK(p[0] == '$');
            lens[i] = (size_t)atoi(p + 1);
            args[i] = nl + 1;
            if (args[i] + lens[i] + 2 > end)
                return;
            p = args[i] + lens[i] + 2;
        }
        if (lens[0] == 4 && memcmp(args[0], "INFO", 4) == 0) { /* at connect (the run_id of entity tags): answered at once */
            static const char info[] = "$59\r\n# Server\r\nrun_id:0123456789abcdef0123456789abcdef01234567\r\n\r\n";
            XWS_CHECK(write(r->fd, info, sizeof(info) - 1) == (ssize_t)(sizeof(info) - 1));
        } else {
            XWS_CHECK(lens[0] == 3 && memcmp(args[0], "GET", 3) == 0 && lens[1] < 64 && r->ncmds < 256);
            memcpy(r->keys[r->ncmds], args[1], lens[1]);
            r->keys[r->ncmds++][lens[1]] = '\0';
        }
        memmove(r->buf, p, (size_t)(end - p));
        r->len = (size_t)(end - p);
    }
}

/* reads until at least n GETs have been received in all (WAIT_MS at most); 0 or -1 */
static int s_redis_wait(fake_redis_t *r, int n, int ms)
{
    long long until = svc_now_mono_ms() + ms;
    while (r->ncmds < n) {
        long long left = until - svc_now_mono_ms();
        if (left <= 0)
            return -1;
        if (r->fd < 0) {
            struct pollfd pl = {.fd = r->lfd, .events = POLLIN};
            if (poll(&pl, 1, (int)left) == 1)
                r->fd = accept(r->lfd, NULL, NULL);
            continue;
        }
        struct pollfd pf = {.fd = r->fd, .events = POLLIN};
        if (poll(&pf, 1, (int)left) != 1)
            continue;
        ssize_t got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        XWS_CHECK(got > 0);
        r->len += (size_t)got;
        s_parse(r);
    }
    return 0;
}

/* answers the next GET with "v:<key>" */
static void s_redis_answer(fake_redis_t *r)
{
    XWS_CHECK(r->answered < r->ncmds);
    char out[128];
    const char *k = r->keys[r->answered++];
    int n = snprintf(out, sizeof(out), "$%zu\r\nv:%s\r\n", strlen(k) + 2, k);
    XWS_CHECK(write(r->fd, out, (size_t)n) == n);
}

/* ---- the gateway side ------------------------------------------------------------------------ */

static zsock_t *s_router;
static zpoller_t *s_poller;
static zframe_t *s_peer;

static void s_request_env(msgpack_sbuffer *env, const char *act, const char *k, const char *k2)
{
    xws_kv_t params[2] = {{xws_slice("k"), xws_slice(k)}, {xws_slice("k2"), xws_slice(k2)}};
    xws_request_spec_t spec = {.rid = xws_slice(k),
                               .service = xws_slice("pipetest"),
                               .resource = xws_slice("thing"),
                               .act = xws_slice(act),
                               .params = params,
                               .nparams = k2 != NULL ? 2 : 1};
    XWS_CHECK(xws_request_encode(&spec, env) == 0);
}

/* sends one request (the key is k) */
static void s_send(const char *act, const char *k, const char *k2)
{
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    s_request_env(&env, act, k, k2);
    XWS_CHECK(xws_send_request(s_router, s_peer, xws_slice(k), (xws_slice_t){env.data, env.size}) == 0);
    msgpack_sbuffer_destroy(&env);
}

/* a received reply: key and the string it carries */
typedef struct {
    char key[64];
    char value[300];
} reply_t;

/* receives replies until n have come (WAIT_MS at most); returns how many messages carried them */
static int s_replies(reply_t *out, int n)
{
    long long until = svc_now_mono_ms() + WAIT_MS;
    int got = 0, messages = 0;
    while (got < n) {
        long long left = until - svc_now_mono_ms();
        XWS_CHECK(left > 0);
        xws_frames_t f;
        const char *err;
        if (xws_frames_recv(&f, s_router, 1, &err) != 0) {
            xws_frames_dispose(&f);
            zpoller_wait(s_poller, (int)left);
            continue;
        }
        if (f.cmd == XWS_CMD_REPLY) {
            messages++;
            for (size_t i = 0; i < f.count; i++) {
                xws_slice_t key, payload;
                xws_frames_pair(&f, i, &key, &payload);
                xws_reply_t rep;
                XWS_CHECK(xws_reply_decode(&rep, payload.ptr, payload.len, &err) == 0 && rep.status == 200);
                XWS_CHECK(rep.body != NULL && rep.body->type == MSGPACK_OBJECT_STR &&
                          rep.body->via.str.size < sizeof(out[got].value));
                XWS_CHECK(got < n && key.len < sizeof(out[got].key));
                snprintf(out[got].key, sizeof(out[got].key), "%.*s", (int)key.len, key.ptr);
                snprintf(out[got].value, sizeof(out[got].value), "%.*s", (int)rep.body->via.str.size, rep.body->via.str.ptr);
                xws_reply_dispose(&rep);
                got++;
            }
        }
        xws_frames_dispose(&f);
    }
    return messages;
}

/* 1 when the reply carries "v:<its own key>" (the answer to its own command) */
static int s_answers_own_key(const reply_t *r)
{
    return strncmp(r->value, "v:", 2) == 0 && strcmp(r->value + 2, r->key) == 0;
}

static pid_t s_spawn(const char *ep, const char *redis)
{
    pid_t pid = fork();
    XWS_CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("XWS_WORKER_ENDPOINTS", ep, 1);
        setenv("XWS_REDIS", redis, 1);
        setenv("XWS_REDIS_TIMEOUT_MS", "600000", 1); /* the test decides when Redis answers */
        setenv("XWS_HEARTBEAT_MS", "1000", 1);
        setenv("XWS_STORE_PROBE_MS", "0", 1); /* the scripted Redis knows GET only */
        setenv("XWS_EXPIRY_MS", "600000", 1);
        char credit[8];
        snprintf(credit, sizeof(credit), "%d", CREDIT);
        setenv("XWS_WORKER_CREDIT", credit, 1);
        char *argv[] = {"svc-pipetest-worker", NULL};
        exit(svc_main(&s_service, 1, argv));
    }
    return pid;
}

static void s_test(const char *dir)
{
    char ep[160], sock[160], redis[170];
    snprintf(ep, sizeof(ep), "ipc://%s/w.ipc", dir);
    snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
    snprintf(redis, sizeof(redis), "unix:%s", sock);
    fake_redis_t *r = svc_calloc(1, sizeof(*r));
    r->fd = -1;
    r->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    XWS_CHECK(strlen(sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    XWS_CHECK(r->lfd >= 0 && bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(r->lfd, 8) == 0);

    pid_t pid = s_spawn(ep, redis); /* before any czmq state in this process */
    s_router = zsock_new(ZMQ_ROUTER);
    zsock_set_router_mandatory(s_router, 1);
    XWS_CHECK(zsock_bind(s_router, "%s", ep) == 0);
    s_poller = zpoller_new(s_router, NULL);
    xws_frames_t f;
    const char *err;
    for (long long until = svc_now_mono_ms() + WAIT_MS;;) {
        XWS_CHECK(svc_now_mono_ms() < until);
        if (xws_frames_recv(&f, s_router, 1, &err) == 0 && f.cmd == XWS_CMD_READY)
            break;
        xws_frames_dispose(&f);
        zpoller_wait(s_poller, 100);
    }
    XWS_CHECK(f.credit == CREDIT && xws_features_has(f.features, "batch"));
    s_peer = zframe_dup(f.identity);
    xws_frames_dispose(&f);

    /* 1. overlap and credit: 10 requests, Redis silent: CREDIT commands arrive, no more */
    char keys[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key%d", i);
        s_send("get", keys[i], NULL);
    }
    XWS_CHECK(s_redis_wait(r, CREDIT, WAIT_MS) == 0);
    XWS_CHECK(s_redis_wait(r, CREDIT + 1, 300) == -1); /* an absence: a slow machine only makes it easier */
    XWS_CHECK(r->ncmds == CREDIT);
    /* each answer lets one more request in, and its reply names its own key */
    reply_t rep[16];
    for (int i = 0; i < 10; i++) {
        s_redis_answer(r);
        s_replies(&rep[i], 1);
        XWS_CHECK(s_answers_own_key(&rep[i]));
        if (i + CREDIT < 10)
            XWS_CHECK(s_redis_wait(r, i + 1 + CREDIT, WAIT_MS) == 0);
    }
    XWS_CHECK(r->ncmds == 10 && r->answered == 10);

    /* 2. a request waiting for Redis does not hold back one that Redis answered */
    s_send("two", "a1", "a2"); /* GET a1, then GET a2 */
    s_send("get", "b1", NULL);
    XWS_CHECK(s_redis_wait(r, 12, WAIT_MS) == 0);
    XWS_CHECK(strcmp(r->keys[10], "a1") == 0 && strcmp(r->keys[11], "b1") == 0);
    s_redis_answer(r); /* a1: the first request now sends GET a2 */
    XWS_CHECK(s_redis_wait(r, 13, WAIT_MS) == 0 && strcmp(r->keys[12], "a2") == 0);
    s_redis_answer(r); /* b1 */
    s_replies(&rep[0], 1);
    XWS_CHECK(strcmp(rep[0].key, "b1") == 0 && strcmp(rep[0].value, "v:b1") == 0); /* b is done, a still waits */
    s_redis_answer(r);                                                             /* a2 */
    s_replies(&rep[0], 1);
    XWS_CHECK(strcmp(rep[0].key, "a1") == 0 && strcmp(rep[0].value, "v:a1+v:a2") == 0);

    /* 3. a REQUEST batch: every pair handled; the replies of one Redis answer come in one message */
    msgpack_sbuffer envs[3];
    xws_slice_t pairs[6];
    const char *bkeys[3] = {"c1", "c2", "c3"};
    for (int i = 0; i < 3; i++) {
        msgpack_sbuffer_init(&envs[i]);
        s_request_env(&envs[i], "get", bkeys[i], NULL);
        pairs[2 * i] = xws_slice(bkeys[i]);
        pairs[2 * i + 1] = (xws_slice_t){envs[i].data, envs[i].size};
    }
    XWS_CHECK(xws_send_batch(s_router, s_peer, XWS_CMD_REQUEST, pairs, 3) == 0);
    XWS_CHECK(s_redis_wait(r, 16, WAIT_MS) == 0);
    /* the three answers in one write: the worker reads them in one go and replies in one message */
    char out[256];
    int n = 0;
    for (int i = 13; i < 16; i++)
        n += snprintf(out + n, sizeof(out) - (size_t)n, "$%zu\r\nv:%s\r\n", strlen(r->keys[i]) + 2, r->keys[i]);
    XWS_CHECK(write(r->fd, out, (size_t)n) == n);
    r->answered = 16;
    int messages = s_replies(rep, 3);
    XWS_CHECK(messages >= 1 && messages <= 3);
    for (int i = 0; i < 3; i++) {
        XWS_CHECK(s_answers_own_key(&rep[i]));
        msgpack_sbuffer_destroy(&envs[i]);
    }

    /* 4. SIGTERM with requests in flight: they are finished, then DISCONNECT, exit status 0 */
    s_send("get", "d1", NULL);
    s_send("get", "d2", NULL);
    XWS_CHECK(s_redis_wait(r, 18, WAIT_MS) == 0);
    XWS_CHECK(kill(pid, SIGTERM) == 0);
    s_redis_answer(r);
    s_redis_answer(r);
    s_replies(rep, 2);
    XWS_CHECK(strcmp(rep[0].value, "v:d1") == 0 || strcmp(rep[1].value, "v:d1") == 0);
    int disconnected = 0;
    for (long long until = svc_now_mono_ms() + WAIT_MS; !disconnected && svc_now_mono_ms() < until;) {
        if (xws_frames_recv(&f, s_router, 1, &err) == 0)
            disconnected = f.cmd == XWS_CMD_DISCONNECT;
        else
            zpoller_wait(s_poller, 100);
        xws_frames_dispose(&f);
    }
    XWS_CHECK(disconnected);
    int st = 0;
    XWS_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    zframe_destroy(&s_peer);
    zpoller_destroy(&s_poller);
    zsock_destroy(&s_router);
    if (r->fd >= 0)
        close(r->fd);
    close(r->lfd);
    unlink(sock);
    free(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    char dir[] = "/tmp/xws-pipetest-XXXXXX";
    XWS_CHECK(mkdtemp(dir) != NULL);
    fflush(NULL);
    pid_t pid = fork(); /* the test itself in a child: a failed check is counted, not a crash */
    if (pid == 0) {
        s_test(dir);
        zsys_shutdown();
        exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%-20s %s\n", "svc_worker (pipelined)", ok ? "ok" : "FAILED");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
