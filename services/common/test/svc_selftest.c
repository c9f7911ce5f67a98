/*
 * svc_selftest.c - runs the self-tests of the worker library, each in a child process so that a
 * failing check is counted and the others still run. Tests that need Redis start a private
 * redis-server on a temporary Unix socket and stop it. The last line reads "N passed, M failed".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>
#include "svc.h"
#include "svc_testredis.h"

extern const char svc_test_lua[];

static char s_dir[64];

static int s_redis_start(void)
{
    return svc_testredis_start(s_dir);
}

static int s_redis_pid(void)
{
    return svc_testredis_pid(s_dir);
}

static void s_redis_stop(void)
{
    svc_testredis_stop(s_dir);
}

static long long s_reply_int(msgpack_sbuffer *body)
{
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, body->data, body->size) == 0);
    XWS_CHECK(u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    long long v = (long long)u.data.via.u64;
    msgpack_unpacked_destroy(&u);
    return v;
}

/*
 * Timeouts of the Redis tests. A command that meets a slow Redis (a loaded machine) must not time
 * out by surprise, so the handles use WAIT_MS; only the handle that meets a stopped Redis on
 * purpose uses HANG_TIMEOUT_MS, and its checks hold however slow the machine is: that a call waited
 * at least the timeout (load only adds to it), Redis's own count of connections, and "at least one
 * of several calls" rather than the duration of one.
 */
#define WAIT_MS 30000
#define HANG_TIMEOUT_MS 500

/* Redis's count of connections accepted so far (INFO stats), asked on a new connection: the
 * count includes every connection made before it, even those made while Redis was stopped. */
static long long s_connections(const char *spec)
{
    svc_redis_t *q = svc_redis_new(spec, WAIT_MS, "xws_svctest", NULL);
    XWS_CHECK(q != NULL);
    const char *info[] = {"INFO", "stats"};
    redisReply *x = svc_redis_command(q, 2, info, NULL);
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_STRING);
    const char *p = strstr(x->str, "total_connections_received:");
    XWS_CHECK(p != NULL);
    long long n = atoll(p + strlen("total_connections_received:"));
    freeReplyObject(x);
    svc_redis_destroy(&q);
    return n;
}

/* writes with de-duplication, function reload, ETags and an outage of Redis */
static void s_store_test(void)
{
    char spec[128];
    snprintf(spec, sizeof(spec), "unix:%s/redis.sock", s_dir);
    svc_redis_t *r = svc_redis_new(spec, WAIT_MS, "xws_svctest", svc_test_lua);
    XWS_CHECK(r != NULL);
    const char *keys[] = {"t:counter", "t:ver:thing"};
    const char *ok[] = {"0"}, *fail[] = {"1"}, *conflicting[] = {"2"};

    svc_ctx_t a, b;
    svc_ctx_init(&a, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write(&a, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && a.status == 200 && s_reply_int(&a.body) == 1);
    XWS_CHECK(svc_write(&a, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && a.status == 200 &&
              s_reply_int(&a.body) == 1); /* same rid */
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && b.status == 200 && s_reply_int(&b.body) == 2);
    svc_ctx_dispose(&b);
    /* an error outcome is recorded too */
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, fail, NULL) == -1 && b.status == 400);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == -1 && b.status == 400);
    svc_ctx_dispose(&b);
    /* a conflict is not recorded and sets no reply: svc_write_cas reports it apart; svc_write calls it a 500 */
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    int conflict = 0;
    XWS_CHECK(svc_write_cas(&b, &conflict, "svctest_bump", 2, keys, 1, conflicting, NULL) == 0 && conflict == 1 && b.status == 0);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, conflicting, NULL) == -1 && b.status == 500);
    svc_ctx_dispose(&b);
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write_cas(&b, &conflict, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && conflict == 0 && b.status == 200 &&
              s_reply_int(&b.body) == 3);
    svc_ctx_dispose(&b);
    const char *ttl[] = {"TTL", svc_ctx_printf(&a, "t:wid:%s", a.rid)};
    redisReply *x = svc_redis_command(r, 2, ttl, NULL);
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_INTEGER && x->integer > 0 && x->integer <= 60);
    freeReplyObject(x);

    /* the library disappears: FCALL reloads it */
    const char *flush[] = {"FUNCTION", "FLUSH"};
    freeReplyObject(svc_redis_command(r, 2, flush, NULL));
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && b.status == 200 && s_reply_int(&b.body) == 4);
    svc_ctx_dispose(&b);

    /* ETags: stable while nothing changes, new after a write, 304 on If-None-Match */
    const char *res[] = {"thing", NULL};
    char first[SVC_ETAG_SIZE];
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_etag_or_reply(&b, res) == 0 && b.etag[0] == '"');
    strcpy(first, b.etag);
    XWS_CHECK(svc_etag_or_reply(&b, res) == 0 && strcmp(first, b.etag) == 0);
    svc_ctx_dispose(&b);
    /* the same tag with a transaction read in the same round trip: EXEC's reply, one per command */
    {
        const char *hset[] = {"HSET", "t:txhash", "f1", "a", "f2", "bb"}, *get[] = {"HGETALL", "t:txhash"},
                   *len[] = {"HLEN", "t:txhash"};
        freeReplyObject(svc_redis_command(r, 6, hset, NULL));
        const int argcs[2] = {2, 2};
        const char *const *argvs[2] = {get, len};
        redisReply *d = NULL;
        svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
        XWS_CHECK(svc_etag_prefetch_tx_or_reply(&b, res, 2, argcs, argvs, &d) == 0 && strcmp(first, b.etag) == 0);
        XWS_CHECK(d != NULL && d->type == REDIS_REPLY_ARRAY && d->elements == 2);
        XWS_CHECK(d->element[0]->type == REDIS_REPLY_ARRAY && d->element[0]->elements == 4);
        XWS_CHECK(d->element[1]->type == REDIS_REPLY_INTEGER && d->element[1]->integer == 2);
        freeReplyObject(d);
        svc_ctx_dispose(&b);
    }
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    xws_request_spec_t spec_req = {.rid = xws_slice("r-1"),
                                   .service = xws_slice("svctest"),
                                   .resource = xws_slice("thing"),
                                   .act = xws_slice("list"),
                                   .inm = xws_slice(first)};
    XWS_CHECK(xws_request_encode(&spec_req, &env) == 0);
    xws_request_t req;
    const char *err;
    XWS_CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    svc_ctx_init(&b, &req, r, "t:", 60, NULL);
    XWS_CHECK(strcmp(b.rid, "r-1") == 0);
    char viareq[SVC_ETAG_SIZE];
    int rc = svc_etag_or_reply(&b, res);
    strcpy(viareq, b.etag);
    svc_ctx_dispose(&b);
    /* the request carries service/resource/act, so its tag differs from the bare one: ask again with it */
    xws_request_dispose(&req);
    msgpack_sbuffer_clear(&env);
    spec_req.inm = xws_slice(viareq);
    XWS_CHECK(xws_request_encode(&spec_req, &env) == 0);
    XWS_CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    svc_ctx_init(&b, &req, r, "t:", 60, NULL);
    XWS_CHECK(rc == 0 || rc == 1);
    XWS_CHECK(svc_etag_or_reply(&b, res) == -1 && b.status == 304 && b.body.size == 0);
    svc_ctx_dispose(&b);
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == 0 && b.status == 200);
    svc_ctx_dispose(&b);
    svc_ctx_init(&b, &req, r, "t:", 60, NULL);
    XWS_CHECK(svc_etag_or_reply(&b, res) == 0 && strcmp(b.etag, viareq) != 0);
    svc_ctx_dispose(&b);
    xws_request_dispose(&req);
    msgpack_sbuffer_destroy(&env);

    /* Redis hangs (SIGSTOP): one request waits for the timeout, once: no reconnect to wait again */
    svc_redis_t *h = svc_redis_new(spec, HANG_TIMEOUT_MS, "xws_svctest", svc_test_lua);
    XWS_CHECK(h != NULL && svc_redis_connect(h) == 0);
    long long conns = s_connections(spec);
    int rpid = s_redis_pid();
    XWS_CHECK(rpid > 0 && kill(rpid, SIGSTOP) == 0);
    svc_ctx_init(&b, NULL, h, "t:", 60, NULL);
    long long h0 = svc_now_mono_ms();
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == -1 && b.status == 503);
    XWS_CHECK(svc_now_mono_ms() - h0 >= HANG_TIMEOUT_MS - 50); /* it waited for the timeout */
    XWS_CHECK(kill(rpid, SIGCONT) == 0);
    XWS_CHECK(s_connections(spec) == conns + 1); /* the asking one only: h did not connect again */
    /* the next ones fail at once (the back-off applies after a timeout) instead of each waiting for
     * it: of a few calls in a row, one at least is quick (a stalled machine may let one back-off
     * pass, whereas a handle without it waits every time) */
    XWS_CHECK(kill(rpid, SIGSTOP) == 0);
    int quick = 0;
    for (int i = 0; i < 10 && !quick; i++) {
        long long t = svc_now_mono_ms();
        XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == -1 && b.status == 503);
        quick = svc_now_mono_ms() - t < HANG_TIMEOUT_MS - 50;
    }
    XWS_CHECK(quick);
    XWS_CHECK(kill(rpid, SIGCONT) == 0);
    int back = 0;
    for (long long until = svc_now_mono_ms() + WAIT_MS; !back && svc_now_mono_ms() < until;) {
        back = svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == 0;
        if (!back)
            usleep(20000);
    }
    XWS_CHECK(back); /* the write that timed out may have been applied: the rid made the retry safe */
    svc_ctx_dispose(&b);
    svc_redis_destroy(&h);

    /* Redis goes away: 503s without waiting for it (a refused connection); it comes back: served again after the back-off */
    s_redis_stop();
    svc_ctx_init(&b, NULL, r, "t:", 60, NULL);
    long long t0 = svc_now_mono_ms();
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == -1 && b.status == 503);
    XWS_CHECK(svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == -1 && b.status == 503);
    XWS_CHECK(svc_now_mono_ms() - t0 < WAIT_MS / 2); /* far from r's timeout */
    XWS_CHECK(s_redis_start() == 0);
    int served = 0;
    for (long long until = svc_now_mono_ms() + WAIT_MS; !served && svc_now_mono_ms() < until;) {
        served = svc_write(&b, "svctest_bump", 2, keys, 1, ok, NULL) == 0;
        if (!served)
            usleep(20000);
    }
    XWS_CHECK(served && s_reply_int(&b.body) == 1); /* a fresh Redis: the library was loaded again */
    svc_ctx_dispose(&b);
    svc_ctx_dispose(&a);
    svc_redis_destroy(&r);
}

/* ---- the request path of the worker, without sockets ------------------------------------------- */

static int s_thing_list(svc_ctx_t *ctx)
{
    msgpack_packer *pk = svc_reply_begin(ctx, 200);
    svc_mp_cstr(pk, "list");
    return 0;
}

static int s_thing_view(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    msgpack_pack_int64(svc_reply_begin(ctx, 200), id);
    return 0;
}

static int s_thing_silent(svc_ctx_t *ctx)
{
    return 0; /* forgets to answer: the worker answers 500 */
}

static const svc_act_t s_thing_acts[] = {{"list", s_thing_list}, {"view", s_thing_view}, {"silent", s_thing_silent}, {NULL, NULL}};
static const svc_resource_t s_resources[] = {{"thing", "list", s_thing_acts}, {NULL, NULL, NULL}};
static const svc_service_t s_service = {"svctest", NULL, s_resources, NULL};

static unsigned s_call(svc_worker_t *w, const char *resource, const char *act, const char *id, uint64_t deadline,
                       msgpack_sbuffer *reply_body, const char **code)
{
    msgpack_sbuffer env, out;
    msgpack_sbuffer_init(&env), msgpack_sbuffer_init(&out);
    xws_kv_t p = {xws_slice("id"), xws_slice(id)};
    xws_request_spec_t spec = {.rid = xws_slice("r"),
                               .service = xws_slice("svctest"),
                               .resource = xws_slice(resource),
                               .act = xws_slice(act),
                               .params = &p,
                               .nparams = id ? 1 : 0,
                               .deadline_ms = deadline};
    XWS_CHECK(xws_request_encode(&spec, &env) == 0);
    unsigned status = 0;
    if (svc_worker_handle(w, env.data, env.size, &out) == 1) {
        xws_reply_t rep;
        const char *err;
        XWS_CHECK(xws_reply_decode(&rep, out.data, out.size, &err) == 0);
        status = rep.status;
        if (code != NULL)
            *code = rep.body && svc_mp_get(rep.body, "error")
                        ? (svc_mp_str_eq(svc_mp_get(rep.body, "error"), "not_found") ? "not_found" : "other")
                        : NULL;
        if (reply_body != NULL && rep.body != NULL) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, reply_body, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, *rep.body);
        }
        xws_reply_dispose(&rep);
    }
    msgpack_sbuffer_destroy(&env), msgpack_sbuffer_destroy(&out);
    return status;
}

static void s_worker_test(void)
{
    setenv("XWS_REDIS", "unix:/nonexistent/redis.sock", 1);
    setenv("XWS_WORKER_ENDPOINTS", "ipc:///tmp/none-a.ipc, ipc:///tmp/none-b.ipc", 1);
    xws_config_t *cfg = xws_config_load(NULL);
    XWS_CHECK(cfg != NULL);
    svc_worker_t *w = svc_worker_new(&s_service, cfg);
    XWS_CHECK(w != NULL && strcmp(svc_worker_prefix(w), "xws:") == 0 && svc_worker_write_id_ttl(w) == 600);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    const char *code = NULL;
    XWS_CHECK(s_call(w, "thing", "list", NULL, 0, &body, NULL) == 200);
    XWS_CHECK(body.size == 5 && memcmp(body.data, "\xa4list", 5) == 0);
    msgpack_sbuffer_clear(&body);
    XWS_CHECK(s_call(w, "thing", "", NULL, 0, &body, NULL) == 200 && body.size == 5); /* default act */
    msgpack_sbuffer_clear(&body);
    XWS_CHECK(s_call(w, "thing", "nosuch", NULL, 0, &body, NULL) == 200 && body.size == 5); /* unknown act */
    XWS_CHECK(s_call(w, "thing", "view", "42", 0, NULL, NULL) == 200);
    XWS_CHECK(s_call(w, "thing", "view", "x", 0, NULL, &code) == 404 && strcmp(code, "not_found") == 0);
    XWS_CHECK(s_call(w, "nothing", "list", NULL, 0, NULL, &code) == 404);
    XWS_CHECK(s_call(w, "thing", "silent", NULL, 0, NULL, NULL) == 500);
    /* a deadline that no stall of a loaded machine reaches, then one in the past */
    XWS_CHECK(s_call(w, "thing", "list", NULL, (uint64_t)svc_now_ms() + WAIT_MS, NULL, NULL) == 200);
    XWS_CHECK(s_call(w, "thing", "list", NULL, (uint64_t)svc_now_ms() - 1, NULL, NULL) == 504); /* not handled */

    /* malformed envelopes: bad_envelope / unsupported_version, never a crash */
    const char *junk[] = {"", "\xc1", "\x80", "\x81\xa1v\x01", "\x91\x01", "\x81\xa1v\x02"};
    size_t junklen[] = {0, 1, 1, 4, 2, 4};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        XWS_CHECK(svc_worker_handle(w, junk[i], junklen[i], &out) == 1);
        xws_reply_t rep;
        const char *err;
        XWS_CHECK(xws_reply_decode(&rep, out.data, out.size, &err) == 0 && rep.status == 400);
        XWS_CHECK(svc_mp_str_eq(svc_mp_get(rep.body, "error"), "bad_envelope") ||
                  svc_mp_str_eq(svc_mp_get(rep.body, "error"), "unsupported_version"));
        xws_reply_dispose(&rep);
        msgpack_sbuffer_destroy(&out);
    }
    /* every prefix of a valid envelope */
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    xws_request_spec_t spec = {
        .rid = xws_slice("r"), .service = xws_slice("svctest"), .resource = xws_slice("thing"), .act = xws_slice("list")};
    XWS_CHECK(xws_request_encode(&spec, &env) == 0);
    for (size_t n = 0; n < env.size; n++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        XWS_CHECK(svc_worker_handle(w, env.data, n, &out) == 1);
        msgpack_sbuffer_destroy(&out);
    }
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&body);
    svc_worker_destroy(&w);
    XWS_CHECK(w == NULL);
    svc_worker_destroy(&w);
    setenv("XWS_WORKER_CREDIT", "0", 1);
    XWS_CHECK(svc_worker_new(&s_service, cfg) == NULL);
    unsetenv("XWS_WORKER_CREDIT");
    setenv("XWS_WORKER_ENDPOINTS", " , ", 1);
    XWS_CHECK(svc_worker_new(&s_service, cfg) == NULL);
    xws_config_destroy(&cfg);
}

/* ---- commands of coroutines: many requests in one pipeline ---------------------------------------- */

typedef struct {
    svc_redis_t *r;
    int i;
    int ok;     /* 1 when every call of the body got the expected reply */
    int failed; /* 1 when a call answered "unavailable" */
} s_async_job_t;

static void s_async_body(void *arg)
{
    s_async_job_t *j = arg;
    char key[32], val[32];
    snprintf(key, sizeof(key), "t:async:%d", j->i);
    snprintf(val, sizeof(val), "v%d", j->i * 7);
    const char *set[] = {"SET", key, val};
    redisReply *x = svc_redis_command(j->r, 3, set, NULL);
    if (x == NULL) {
        j->failed = 1;
        return;
    }
    int ok = x->type == REDIS_REPLY_STATUS;
    freeReplyObject(x);
    /* a pipeline of two commands: both replies come back to this coroutine, in order */
    const char *get[] = {"GET", key}, *len[] = {"STRLEN", key};
    const int argcs[] = {2, 2};
    const char *const *argvs[] = {get, len};
    redisReply *out[2];
    if (svc_redis_pipeline(j->r, 2, argcs, argvs, out) != 0) {
        j->failed = 1;
        return;
    }
    ok = ok && out[0]->type == REDIS_REPLY_STRING && strcmp(out[0]->str, val) == 0;
    ok = ok && out[1]->type == REDIS_REPLY_INTEGER && out[1]->integer == (long long)strlen(val);
    freeReplyObject(out[0]);
    freeReplyObject(out[1]);
    j->ok = ok;
}

/* the owner's loop of svc_redis.h, until every coroutine returned */
static void s_async_run(svc_redis_t *r, svc_coro_t **cos, int n)
{
    for (;;) {
        int busy = 0;
        for (int i = 0; i < n; i++)
            busy += svc_coro_busy(cos[i]);
        if (busy == 0)
            return;
        int rd, wr;
        int fd = svc_redis_io_wanted(r, &rd, &wr);
        int wait = svc_redis_wait_ms(r, svc_now_mono_ms());
        if (fd >= 0 && (rd || wr)) {
            zmq_pollitem_t item = {.fd = fd, .events = (short)((rd ? ZMQ_POLLIN : 0) | (wr ? ZMQ_POLLOUT : 0))};
            zmq_poll(&item, 1, wait < 0 ? 100 : wait);
        }
        svc_redis_io(r);
        svc_redis_expire(r, svc_now_mono_ms());
        svc_coro_t *co;
        int large;
        while ((co = svc_redis_next_ready(r, &large)) != NULL)
            svc_coro_resume(co);
    }
}

/* a server that refuses every command for a while (here BUSY: a script beyond busy-reply-threshold;
 * LOADING after a restart is the same kind of refusal) answers NULL, like an unreachable one, and
 * keeps the connection; once the script is killed, commands are answered again */
static void s_refusal_test(void)
{
    char spec[128], path[128];
    snprintf(spec, sizeof(spec), "unix:%s/redis.sock", s_dir);
    snprintf(path, sizeof(path), "%s/redis.sock", s_dir);
    svc_redis_t *r = svc_redis_new(spec, WAIT_MS, "xws_svctest", NULL);
    XWS_CHECK(r != NULL);
    const char *get[] = {"GET", "t:refusal"};
    redisReply *x = svc_redis_command(r, 2, get, NULL);
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_NIL);
    freeReplyObject(x);
    redisContext *busy = redisConnectUnix(path), *admin = redisConnectUnix(path);
    XWS_CHECK(busy != NULL && busy->err == 0 && admin != NULL && admin->err == 0);
    x = redisCommand(admin, "CONFIG SET busy-reply-threshold 50");
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_STATUS);
    freeReplyObject(x);
    /* a script that never ends: sent, its reply read only after SCRIPT KILL */
    XWS_CHECK(redisAppendCommand(busy, "EVAL %s 0", "while true do end") == REDIS_OK);
    int done = 0;
    while (!done)
        XWS_CHECK(redisBufferWrite(busy, &done) == REDIS_OK);
    /* until the script runs, the GET is answered (nil); then it is refused: NULL */
    int refused = 0;
    for (int i = 0; i < 1000 && !refused; i++) {
        x = svc_redis_command(r, 2, get, NULL);
        refused = x == NULL;
        XWS_CHECK(x == NULL || x->type == REDIS_REPLY_NIL);
        freeReplyObject(x);
    }
    int rd, wr;
    XWS_CHECK(refused && svc_redis_io_wanted(r, &rd, &wr) >= 0); /* still connected */
    const int argcs[] = {2, 2};
    const char *const *argvs[] = {get, get};
    redisReply *out[2];
    XWS_CHECK(svc_redis_pipeline(r, 2, argcs, argvs, out) == -1 && out[0] == NULL && out[1] == NULL);
    x = redisCommand(admin, "SCRIPT KILL");
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_STATUS);
    freeReplyObject(x);
    XWS_CHECK(redisGetReply(busy, (void **)&x) == REDIS_OK && x != NULL && x->type == REDIS_REPLY_ERROR);
    freeReplyObject(x);
    x = svc_redis_command(r, 2, get, NULL);
    XWS_CHECK(x != NULL && x->type == REDIS_REPLY_NIL);
    freeReplyObject(x);
    redisFree(busy);
    redisFree(admin);
    svc_redis_destroy(&r);
}

static void s_async_test(void)
{
    enum { N = 50 };
    char spec[128];
    snprintf(spec, sizeof(spec), "unix:%s/redis.sock", s_dir);
    /* r and admin never time out by surprise (a slow Redis on a loaded machine); h meets a stopped one on purpose */
    svc_redis_t *r = svc_redis_new(spec, WAIT_MS, "xws_svctest", svc_test_lua);
    svc_redis_t *admin = svc_redis_new(spec, WAIT_MS, "xws_svctest", NULL);
    svc_redis_t *h = svc_redis_new(spec, HANG_TIMEOUT_MS, "xws_svctest", svc_test_lua);
    XWS_CHECK(r != NULL && admin != NULL && h != NULL && svc_redis_connect(r) == 0);
    svc_coro_t *cos[N];
    s_async_job_t jobs[N];
    for (int i = 0; i < N; i++)
        cos[i] = svc_coro_new(0);

    /* 50 requests queued before anything is written: all wait at once, all get their own replies */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            jobs[i] = (s_async_job_t){.r = r, .i = i + round * N};
            svc_coro_start(cos[i], s_async_body, &jobs[i]);
        }
        XWS_CHECK(svc_redis_waiting(r) == N);
        s_async_run(r, cos, N);
        for (int i = 0; i < N; i++)
            XWS_CHECK(jobs[i].ok && !jobs[i].failed);
    }

    /* the connection is killed with commands queued: each coroutine reconnects and sends again */
    for (int i = 0; i < N; i++) {
        jobs[i] = (s_async_job_t){.r = r, .i = i};
        svc_coro_start(cos[i], s_async_body, &jobs[i]);
    }
    const char *kill_argv[] = {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"};
    redisReply *k = svc_redis_command(admin, 6, kill_argv, NULL);
    XWS_CHECK(k != NULL && k->type == REDIS_REPLY_INTEGER && k->integer >= 1);
    freeReplyObject(k);
    s_async_run(r, cos, N);
    for (int i = 0; i < N; i++)
        XWS_CHECK(jobs[i].ok && !jobs[i].failed);

    /* Redis hangs (SIGSTOP): every waiting coroutine hears "unavailable" once the timeout passed */
    int rpid = s_redis_pid();
    XWS_CHECK(svc_redis_connect(h) == 0 && rpid > 0 && kill(rpid, SIGSTOP) == 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (s_async_job_t){.r = h, .i = i};
        svc_coro_start(cos[i], s_async_body, &jobs[i]);
    }
    s_async_run(h, cos, N);
    kill(rpid, SIGCONT);
    for (int i = 0; i < N; i++)
        XWS_CHECK(jobs[i].failed && !jobs[i].ok);
    /* and once it is back (after the back-off), requests are served again */
    int served = 0;
    for (long long until = svc_now_mono_ms() + WAIT_MS; !served && svc_now_mono_ms() < until;) {
        jobs[0] = (s_async_job_t){.r = h, .i = 0};
        svc_coro_start(cos[0], s_async_body, &jobs[0]);
        s_async_run(h, cos, 1);
        served = jobs[0].ok;
        if (!served)
            usleep(50 * 1000);
    }
    XWS_CHECK(served);

    for (int i = 0; i < N; i++)
        svc_coro_destroy(&cos[i]);
    svc_redis_destroy(&h);
    svc_redis_destroy(&admin);
    svc_redis_destroy(&r);
}

void svc_examples_test(void);

/* ---- records, indexes and numbers against Redis ---------------------------------------------------- */

static const svc_field_t s_dev_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "mac", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .norm = svc_norm_mac, .check = svc_check_mac},
    {.name = "ip", .kind = SVC_TEXT, .flags = SVC_F_DATA, .check = svc_check_ip},
};
static const svc_table_t s_dev_table = SVC_TABLE(s_dev_fields);
static const svc_index_t s_dev_ix[] = {
    {SVC_IX_UNIQUE, "mac", "dev:mac", NULL, 1, "a device with mac %s already exists"},
    {SVC_IX_LOOKUP, "ip", "dev:ip", NULL, 0, NULL},
};
static const svc_records_t s_devs = {.service = "svctest",
                                     .crud = {"dev", &s_dev_table, "dev:data", NULL},
                                     .seq = "dev:seq",
                                     .inrefs = "dev:refs",
                                     .indexes = s_dev_ix,
                                     .nindexes = 2,
                                     .add_answers_id = 1};

/* one request's context on Redis r: body as JSON (or NULL) */
static void s_req(svc_ctx_t *c, svc_redis_t *r, msgpack_sbuffer *sb, msgpack_unpacked *u, const char *json)
{
    svc_ctx_init(c, NULL, r, "t:", 60, NULL);
    msgpack_sbuffer_init(sb);
    if (json != NULL) {
        XWS_CHECK(xws_json_to_msgpack(json, strlen(json), sb, NULL, 0) == 0);
        XWS_CHECK(svc_mp_unpack(u, sb->data, sb->size) == 0);
    } else {
        msgpack_unpacked_init(u);
    }
}

static void s_req_end(svc_ctx_t *c, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
    svc_ctx_dispose(c);
    msgpack_sbuffer_destroy(sb);
    msgpack_unpacked_destroy(u);
}

/* adds a device from json; returns the status */
static unsigned s_dev_add(svc_redis_t *r, const char *json)
{
    svc_ctx_t c;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    s_req(&c, r, &sb, &u, json);
    svc_record_t *rec = svc_record_new(&s_dev_table);
    if (svc_record_load_body_or_reply(&c, rec, &u.data) == 0 && (svc_record_defaults(rec), svc_record_check_or_reply(&c, rec)) == 0)
        svc_records_add_or_reply(&c, &s_devs, rec);
    unsigned st = c.status;
    svc_record_destroy(&rec);
    s_req_end(&c, &sb, &u);
    return st;
}

static size_t s_lookup(svc_redis_t *r, size_t ix, const char *value, long long *first)
{
    svc_ctx_t c;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    s_req(&c, r, &sb, &u, NULL);
    long long *ids;
    size_t n;
    XWS_CHECK(svc_index_lookup_or_reply(&c, &s_devs, ix, value, &ids, &n) == 0);
    if (n > 0)
        *first = ids[0];
    free(ids);
    s_req_end(&c, &sb, &u);
    return n;
}

static unsigned s_number(svc_redis_t *r, const char *op, const char *num, const char *owner)
{
    svc_ctx_t c;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    s_req(&c, r, &sb, &u, NULL);
    const char *keys[] = {svc_number_key(&c, "default"), svc_number_idx_key(&c, "default"), svc_key(&c, "context:data")};
    const char *args[] = {op, "default", num, "user", owner};
    svc_write(&c, "svctest_number", 3, keys, 5, args, NULL);
    unsigned st = c.status;
    s_req_end(&c, &sb, &u);
    return st;
}

static void s_records_test(void)
{
    char spec[128];
    snprintf(spec, sizeof(spec), "unix:%s/redis.sock", s_dir);
    svc_redis_t *r = svc_redis_new(spec, 2000, "xws_svctest", svc_test_lua);
    /* unique (case-folded) and lookup indexes, maintained with the record */
    XWS_CHECK(s_dev_add(r, "{\"mac\":\"00-11-22-AA-BB-CC\",\"ip\":\"10.0.0.5\"}") == 200);
    XWS_CHECK(s_dev_add(r, "{\"mac\":\"001122aabbcd\",\"ip\":\"10.0.0.5\"}") == 200);
    XWS_CHECK(s_dev_add(r, "{\"mac\":\"00:11:22:aa:bb:cc\"}") == 400);
    long long id = 0;
    XWS_CHECK(s_lookup(r, 0, "00:11:22:AA:BB:CD", &id) == 1 && id == 2);
    XWS_CHECK(s_lookup(r, 1, "10.0.0.5", &id) == 2 && id == 1);
    /* an edit moves the entries; a referenced record cannot be deleted; a delete removes them */
    svc_ctx_t c;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    s_req(&c, r, &sb, &u, "{\"ip\":\"10.0.0.6\",\"mac\":\"00:11:22:aa:bb:ce\"}");
    XWS_CHECK(svc_records_edit_or_reply(&c, &s_devs, 1, &u.data, NULL) == 0 && c.status == 200);
    s_req_end(&c, &sb, &u);
    XWS_CHECK(s_lookup(r, 1, "10.0.0.5", &id) == 1 && id == 2 && s_lookup(r, 1, "10.0.0.6", &id) == 1 && id == 1);
    XWS_CHECK(s_lookup(r, 0, "00:11:22:aa:bb:cc", &id) == 0 && s_lookup(r, 0, "00:11:22:aa:bb:ce", &id) == 1);
    XWS_CHECK(s_dev_add(r, "{\"mac\":\"00:11:22:aa:bb:cc\"}") == 200); /* free again */
    const char *hset[] = {"HSET", "t:dev:refs", "2", "1"};
    freeReplyObject(svc_redis_command(r, 4, hset, NULL));
    /* one context per request: a context's request id is its write id */
    s_req(&c, r, &sb, &u, NULL);
    XWS_CHECK(svc_records_delete_or_reply(&c, &s_devs, 2) == -1 && c.status == 405);
    s_req_end(&c, &sb, &u);
    s_req(&c, r, &sb, &u, NULL);
    XWS_CHECK(svc_records_delete_or_reply(&c, &s_devs, 1) == 0 && c.status == 200);
    s_req_end(&c, &sb, &u);
    s_req(&c, r, &sb, &u, NULL);
    XWS_CHECK(svc_records_delete_or_reply(&c, &s_devs, 1) == -1 && c.status == 404);
    s_req_end(&c, &sb, &u);
    s_req(&c, r, &sb, &u, NULL);
    XWS_CHECK(svc_records_deleteall_or_reply(&c, &s_devs) == 0 && c.status == 200); /* keeps 2 */
    s_req_end(&c, &sb, &u);
    XWS_CHECK(s_lookup(r, 1, "10.0.0.6", &id) == 0 && s_lookup(r, 1, "10.0.0.5", &id) == 1 && id == 2);
    XWS_CHECK(s_lookup(r, 0, "00:11:22:aa:bb:cc", &id) == 0);

    /* numbers: a context record (positional: user ranges at 7) with user 100-299 and 100000-999999 */
    static const char ctxrec[] = "\x9b\xa7"
                                 "default"
                                 "\xa7"
                                 "Default"
                                 "\x01\xa8"
                                 "internal"
                                 "\xa0\x90"
                                 "\x92\x92\xa3"
                                 "100"
                                 "\xa3"
                                 "299"
                                 "\x92\xa6"
                                 "100000"
                                 "\xa6"
                                 "999999"
                                 "\x90\x90\x90\x90";
    const char *hctx[] = {"HSET", "t:context:data", "default", ctxrec};
    size_t lens[] = {4, 14, 7, sizeof(ctxrec) - 1};
    freeReplyObject(svc_redis_command(r, 4, hctx, lens));
    XWS_CHECK(s_number(r, "take", "100", "line/1") == 200);
    XWS_CHECK(s_number(r, "take", "101", "line/2") == 200);
    XWS_CHECK(s_number(r, "take", "150", "line/3") == 200);
    XWS_CHECK(s_number(r, "take", "100", "line/4") == 400);  /* number_taken */
    XWS_CHECK(s_number(r, "take", "100", "line/1") == 200);  /* its own */
    XWS_CHECK(s_number(r, "take", "0150", "line/4") == 400); /* out_of_range */
    XWS_CHECK(s_number(r, "take", "500000", "line/5") == 200);
    /* the sorted index of used numbers follows the takes and releases (what a free-number walk reads) */
    const char *zr[] = {"ZRANGE", "t:context:numidx:default", "0", "-1"};
    redisReply *z = svc_redis_command(r, 4, zr, NULL);
    XWS_CHECK(z != NULL && z->type == REDIS_REPLY_ARRAY && z->elements == 4);
    XWS_CHECK(strcmp(z->element[0]->str, "100") == 0 && strcmp(z->element[1]->str, "101") == 0);
    XWS_CHECK(strcmp(z->element[2]->str, "150") == 0 && strcmp(z->element[3]->str, "500000") == 0);
    freeReplyObject(z);
    XWS_CHECK(s_number(r, "release", "101", "line/2") == 200);
    z = svc_redis_command(r, 4, zr, NULL);
    XWS_CHECK(z != NULL && z->type == REDIS_REPLY_ARRAY && z->elements == 3 && strcmp(z->element[1]->str, "150") == 0);
    freeReplyObject(z);
    svc_redis_destroy(&r);
}

typedef struct {
    const char *name;
    void (*fn)(void);
    int redis;
} test_t;

int main(void)
{
    static const test_t tests[] = {
        {"svc_util", svc_util_test, 0},
        {"svc_mp", svc_mp_test, 0},
        {"svc_etag", svc_etag_test, 0},
        {"svc_field", svc_field_test, 0},
        {"svc_ctx", svc_ctx_test, 0},
        {"svc_redis", svc_redis_test, 0},
        {"svc_worker", s_worker_test, 0},
        {"svc_coro", svc_coro_test, 0},
        {"svc_store (redis)", s_store_test, 1},
        {"svc_redis pipelined (redis)", s_async_test, 1},
        {"svc_redis refusals (redis)", s_refusal_test, 1},
        {"svc_number", svc_number_test, 0},
        {"record examples", svc_examples_test, 0},
        {"svc_index, svc_number (redis)", s_records_test, 1},
    };
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (tests[i].redis) {
            strcpy(s_dir, "/tmp/xws-svc-test-XXXXXX");
            if (mkdtemp(s_dir) == NULL || s_redis_start() != 0) {
                fprintf(stderr, "%s: cannot start redis-server\n", tests[i].name);
                failed++;
                continue;
            }
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            tests[i].fn();
            exit(0); /* exit, not _exit: LeakSanitizer checks at exit */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("%-20s %s\n", tests[i].name, ok ? "ok" : "FAILED");
        ok ? passed++ : failed++;
        if (tests[i].redis) {
            s_redis_stop();
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
            if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", s_dir);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
