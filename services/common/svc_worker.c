/* svc_worker.c - see svc_worker.h */
#define _GNU_SOURCE 1 /* SCHED_BATCH */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "xws/cli.h"
#include "xws/curve.h"
#include "xws/frames.h"
#include "xws/log.h"
#include "xws/notify.h"
#include "svc_coro.h"
#include "svc_log.h"
#include "svc_mp.h"
#include "svc_util.h"
#include "svc_worker.h"

typedef struct {
    char *endpoint;                        /* a gateway's worker endpoint */
    const char *curve_server;              /* with CURVE: the gateway's public certificate file (in curve_keys) */
    zsock_t *sock;                         /* DEALER connected to it */
    long long last_recv;                   /* monotonic ms of the last message from the gateway */
    long long last_send;                   /* monotonic ms of the last message to it */
    long long last_report;                 /* monotonic ms of the last HEARTBEAT with the worker's report */
    int heard;                             /* 1 once the gateway answered since the socket was opened */
    long long last_ready;                  /* monotonic ms of the last READY to it */
    int ready_due;                         /* a DISCONNECT asked for READY again, held back by READY_MIN_MS */
    unsigned gen;                          /* bumped each time the socket is re-created: replies to an older one are dropped */
    int batch;                             /* 1 once the gateway sent a batch since the socket was opened: it reads batches */
    struct svc_job *done_head, *done_tail; /* finished jobs whose replies leave at the end of the turn */
} svc_link_t;

/* one request in flight: its envelope, its coroutine, its reply */
typedef struct svc_job {
    struct svc_worker *worker;
    svc_link_t *link;      /* where the request came from */
    unsigned link_gen;     /* link->gen when it came */
    char key[XWS_MAX_KEY]; /* the request's key, echoed in the reply */
    size_t keylen;         /* its length */
    xws_buf_t env;         /* the request envelope */
    msgpack_sbuffer reply; /* the reply envelope */
    svc_coro_t *co;        /* runs the handler */
    struct svc_job *next;  /* in the free list, or in its link's done list */
} svc_job_t;

/* the most gateway certificates curve_gateway_key lists */
#define CURVE_MAX_KEYS 64

/* how often the health file is touched (its readers allow a few times this) */
#define HEALTH_TOUCH_MS 2000

/* what the last store probe found */
enum { STORE_UNKNOWN = 0, STORE_OK = 1, STORE_DOWN = 2 };
static const char *const s_store_names[] = {"unknown", "ok", "down"};

/* READY is repeated at most this often, so that a gateway refusing this worker (a DISCONNECT
 * answer to every READY, e.g. an unknown service) does not turn into a busy loop */
#define READY_MIN_MS 1000

struct svc_worker {
    const svc_service_t *service; /* borrowed */
    svc_redis_t *redis;
    char *prefix;  /* redis_prefix */
    char *libname; /* "xws_<service>" */
    char *name;    /* worker name for READY: <service>-<pid> */
    long long write_id_ttl;
    int heartbeat_ms, expiry_ms;
    unsigned credit;
    svc_link_t *links;
    size_t nlinks;
    char *curve_own;      /* curve_worker_key: this worker's secret certificate file, or NULL (no CURVE) */
    char *curve_keys;     /* curve_gateway_key, split in place: the gateways' public certificate files */
    size_t active;        /* jobs in flight */
    svc_job_t *free_jobs; /* finished jobs, kept with their coroutine stack for the next request */
    /* the store probe (a PING every store_probe_ms, in a coroutine of its own) and the report's figures */
    svc_coro_t *probe;
    int probe_ms;         /* store_probe_ms: 0, no probe (the report says "unknown") */
    long long last_probe; /* monotonic ms of the last probe's start */
    int store;            /* STORE_*: what the last probe found */
    long long store_us;   /* round trip of the last successful probe */
    char *health_file;    /* health_file: touched while the loop turns and Redis answers, or NULL */
    long long health_at;  /* monotonic ms of the last touch */
    unsigned long long handled, replayed, store_errors;
};

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_int_setting(xws_config_t *cfg, const char *key, long long def, long long min, long long max, long long *out)
{
    long long v = xws_config_int(cfg, key, def);
    if (v < min || v > max) {
        svc_log(SVC_LOG_ERROR, "setting %s: expected a number from %lld to %lld", key, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* A worker of service; lib: the service whose function library it uses (service itself, or the
 * main service of a pool); fixed_credit: 0 (the worker_credit setting) or a pool thread's credit;
 * index: 0, or the number of a pool thread (in its name). */
/*
 * Reads curve_worker_key (this worker's secret certificate) and curve_gateway_key (one gateway
 * public certificate for every endpoint, or a comma-separated list with one per worker_endpoints
 * entry, in order) and checks that the files are usable now. No curve_worker_key: no CURVE.
 * Returns 0, or -1 with the reason logged.
 */
static int s_curve_settings(svc_worker_t *self, xws_config_t *cfg)
{
    const char *own = xws_config_get(cfg, "curve_worker_key", "");
    const char *keys = xws_config_get(cfg, "curve_gateway_key", "");
    if (own[0] == '\0') /* (curve_gateway_key alone may be there for the host's consumers) */
        return 0;
    if (keys[0] == '\0') {
        svc_log(SVC_LOG_ERROR, "setting curve_worker_key needs curve_gateway_key (the gateway's public certificate)");
        return -1;
    }
    self->curve_own = svc_strdup(own);
    self->curve_keys = svc_strdup(keys);
    const char *list[CURVE_MAX_KEYS];
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(self->curve_keys, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (len == 0 || n == CURVE_MAX_KEYS) {
            svc_log(SVC_LOG_ERROR, "setting curve_gateway_key: an empty entry, or more than %d", CURVE_MAX_KEYS);
            return -1;
        }
        list[n++] = tok;
    }
    if (n != 1 && n != self->nlinks) {
        svc_log(SVC_LOG_ERROR,
                "setting curve_gateway_key: %zu certificates for %zu worker endpoints (give one for all, or one per "
                "endpoint in the same order)",
                n, self->nlinks);
        return -1;
    }
    char why[512];
    for (size_t i = 0; i < self->nlinks; i++) {
        self->links[i].curve_server = list[n == 1 ? 0 : i];
        zsock_t *probe = zsock_new(ZMQ_DEALER);
        if (probe == NULL)
            abort();
        int rc = xws_curve_client(probe, self->curve_own, self->links[i].curve_server, why, sizeof(why));
        zsock_destroy(&probe);
        if (rc != 0) {
            svc_log(SVC_LOG_ERROR, "CURVE for %s: %s", self->links[i].endpoint, why);
            return -1;
        }
    }
    return 0;
}

static svc_worker_t *s_worker_new(const svc_service_t *service, xws_config_t *cfg, const svc_service_t *lib, unsigned fixed_credit,
                                  int index)
{
    assert(service != NULL && service->service != NULL && cfg != NULL && lib != NULL);
    svc_worker_t *self = svc_calloc(1, sizeof(*self));
    self->service = service;
    long long tmo, hb, exp, credit, ttl, probe;
    if (s_int_setting(cfg, "redis_timeout_ms", 2000, 1, 600000, &tmo) != 0 ||
        s_int_setting(cfg, "heartbeat_ms", 1000, 10, 600000, &hb) != 0 ||
        s_int_setting(cfg, "expiry_ms", 3000, 30, 3600000, &exp) != 0 ||
        s_int_setting(cfg, "worker_credit", SVC_DEFAULT_CREDIT, 1, 1000, &credit) != 0 ||
        s_int_setting(cfg, "write_id_ttl", 600, 1, 86400 * 30, &ttl) != 0 ||
        s_int_setting(cfg, "store_probe_ms", 1000, 0, 3600000, &probe) != 0)
        goto fail;
    if (exp <= hb) {
        svc_log(SVC_LOG_ERROR, "setting expiry_ms (%lld) must be larger than heartbeat_ms (%lld)", exp, hb);
        goto fail;
    }
    self->heartbeat_ms = (int)hb, self->expiry_ms = (int)exp, self->credit = (unsigned)credit, self->write_id_ttl = ttl;
    self->probe_ms = (int)probe;
    const char *health = xws_config_get(cfg, "health_file", "");
    self->health_file = health[0] != '\0' ? svc_strdup(health) : NULL;
    self->prefix = svc_strdup(xws_config_get(cfg, "redis_prefix", "xws:"));
    if (fixed_credit > 0)
        self->credit = fixed_credit;
    size_t slen = strlen(lib->service);
    self->libname = svc_malloc(slen + 5);
    memcpy(self->libname, "xws_", 4);
    for (size_t i = 0; i <= slen; i++) /* the library name of a service: '-' is not allowed in it */
        self->libname[4 + i] = lib->service[i] == '-' ? '_' : lib->service[i];
    size_t nlen = strlen(service->service) + 36;
    self->name = svc_malloc(nlen);
    if (index > 0)
        snprintf(self->name, nlen, "%s-%d.%d", service->service, (int)getpid(), index);
    else
        snprintf(self->name, nlen, "%s-%d", service->service, (int)getpid());
    self->redis = svc_redis_new(xws_config_get(cfg, "redis", "unix:${run_dir}/redis.sock"), (int)tmo, self->libname, lib->lua);
    if (self->redis == NULL)
        goto fail;
    long long wait_replicas = xws_config_int(cfg, "redis_wait_replicas", 0);
    long long wait_ms = xws_config_int(cfg, "redis_wait_timeout_ms", 1000);
    if (wait_replicas < 0 || wait_replicas > 64 || wait_ms < 0) {
        svc_log(SVC_LOG_ERROR, "setting redis_wait_replicas (0-64) or redis_wait_timeout_ms is malformed");
        goto fail;
    }
    svc_redis_set_wait(self->redis, (int)wait_replicas, (int)wait_ms);
    const char *libversion = xws_config_get(cfg, "function_library_version", "");
    if (libversion[0] != '\0')
        svc_redis_set_library_version(self->redis, libversion);
    if (svc_redis_password_file(self->redis, xws_config_get(cfg, "redis_password_file", "")) != 0)
        goto fail;
    /* endpoints: comma-separated, blanks around them ignored */
    const char *eps = xws_config_get(cfg, "worker_endpoints", "ipc://${run_dir}/workers.ipc");
    char *copy = svc_strdup(eps), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        if (n == 0)
            continue;
        self->links = svc_realloc(self->links, (self->nlinks + 1) * sizeof(*self->links));
        memset(&self->links[self->nlinks], 0, sizeof(svc_link_t));
        self->links[self->nlinks++].endpoint = svc_strdup(tok);
    }
    free(copy);
    if (self->nlinks == 0) {
        svc_log(SVC_LOG_ERROR, "setting worker_endpoints: no endpoint given");
        goto fail;
    }
    if (s_curve_settings(self, cfg) != 0)
        goto fail;
    return self;
fail:
    svc_worker_destroy(&self);
    return NULL;
}

svc_worker_t *svc_worker_new(const svc_service_t *service, xws_config_t *cfg)
{
    return s_worker_new(service, cfg, service, 0, 0);
}

void svc_worker_destroy(svc_worker_t **self_p)
{
    assert(self_p != NULL);
    svc_worker_t *self = *self_p;
    if (self == NULL)
        return;
    for (svc_job_t *j = self->free_jobs, *next; j != NULL; j = next) {
        next = j->next;
        svc_coro_destroy(&j->co);
        msgpack_sbuffer_destroy(&j->reply);
        xws_buf_dispose(&j->env);
        free(j);
    }
    for (size_t i = 0; i < self->nlinks; i++) {
        zsock_destroy(&self->links[i].sock);
        free(self->links[i].endpoint);
    }
    free(self->links);
    free(self->curve_own);
    free(self->curve_keys);
    svc_coro_destroy(&self->probe);
    free(self->health_file);
    svc_redis_destroy(&self->redis);
    free(self->prefix);
    free(self->libname);
    free(self->name);
    free(self);
    *self_p = NULL;
}

svc_redis_t *svc_worker_redis(svc_worker_t *self)
{
    return self->redis;
}

const char *svc_worker_prefix(svc_worker_t *self)
{
    return self->prefix;
}

long long svc_worker_write_id_ttl(svc_worker_t *self)
{
    return self->write_id_ttl;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static void s_dispatch(svc_worker_t *self, const xws_request_t *req, svc_ctx_t *ctx)
{
    const svc_resource_t *res = NULL;
    if (xws_slice_eq(req->service, self->service->service))
        for (const svc_resource_t *r = self->service->resources; r->name != NULL && res == NULL; r++)
            if (xws_slice_eq(req->resource, r->name))
                res = r;
    if (res == NULL) {
        svc_reply_error(ctx, 404, "not_found", "", "service %s has no resource %.*s", self->service->service,
                        (int)(req->resource.len > 32 ? 32 : req->resource.len), req->resource.ptr);
        return;
    }
    const svc_act_t *act = NULL, *def = NULL;
    for (const svc_act_t *a = res->acts; a->name != NULL; a++) {
        if (xws_slice_eq(req->act, a->name))
            act = a;
        if (strcmp(a->name, res->default_act) == 0)
            def = a;
    }
    if (act == NULL)
        act = def;
    assert(act != NULL); /* a resource's default act must be in its table */
    act->fn(ctx);
    if (ctx->status == 0)
        svc_reply_internal(ctx, "handler of %s/%s set no reply", res->name, act->name);
}

static void s_encode_error(unsigned status, const char *code, const char *msg, msgpack_sbuffer *out)
{
    if (xws_reply_encode_error(status, code, "", msg, out) != 0)
        abort(); /* only fails on a bad status: a bug here */
}

int svc_worker_handle(svc_worker_t *self, const void *envelope, size_t len, msgpack_sbuffer *out)
{
    long long t0 = svc_now_mono_us();
    xws_request_t req;
    const char *err = NULL;
    if (xws_request_decode(&req, envelope, len, &err) != 0) {
        int unsupported = err != NULL && strcmp(err, "unsupported_version") == 0;
        svc_log(SVC_LOG_WARN, "malformed request envelope (%zu bytes): %s", len, err ? err : "?");
        xws_request_dispose(&req);
        s_encode_error(400, unsupported ? "unsupported_version" : "bad_envelope",
                       unsupported ? "this worker speaks envelope version 1" : "malformed request envelope", out);
        return 1;
    }
    if (req.deadline_ms != 0 && (long long)req.deadline_ms <= svc_now_ms()) { /* a budget of 0 is due at once */
        svc_log(SVC_LOG_WARN, "request %.*s (%.*s/%.*s) skipped: its deadline passed %lld ms ago", (int)req.rid.len, req.rid.ptr,
                (int)req.resource.len, req.resource.ptr, (int)req.act.len, req.act.ptr, svc_now_ms() - (long long)req.deadline_ms);
        xws_request_dispose(&req);
        /* answered all the same, so that the gateway gets this worker's credit back at once */
        s_encode_error(504, "timeout", "the deadline passed before the request could be handled", out);
        return 1;
    }
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, &req, self->redis, self->prefix, self->write_id_ttl, self->service->data);
    s_dispatch(self, &req, &ctx);
    xws_slice_t body = {ctx.body.data, ctx.body.size};
    xws_slice_t etag = ctx.status == 200 || ctx.status == 304 ? xws_slice(ctx.etag) : XWS_SLICE_NULL;
    self->handled++;
    self->replayed += ctx.replayed ? 1 : 0;
    self->store_errors += ctx.status == 503 ? 1 : 0; /* a worker's only 503: svc_reply_unavailable */
    size_t mark = out->size;
    /* the body is the handler's own packing (the gateway checks it again as it decodes it) */
    if (xws_reply_encode_flags(ctx.status, etag, body, XWS_REPLY_PACKED_BODY | (ctx.replayed ? XWS_REPLY_REPLAYED : 0), out) != 0) {
        svc_log(SVC_LOG_ERROR, "request %s: reply could not be encoded (status %u)", ctx.rid, ctx.status);
        out->size = mark;
        s_encode_error(500, "internal_error", "internal error", out);
    }
    if (svc_log_enabled(SVC_LOG_DEBUG))
        svc_log(SVC_LOG_DEBUG, "%s %.*s/%.*s %u %lld us rid=%s", self->service->service, (int)req.resource.len, req.resource.ptr,
                (int)req.act.len, req.act.ptr, ctx.status, svc_now_mono_us() - t0, ctx.rid);
    svc_ctx_dispose(&ctx);
    xws_request_dispose(&req);
    return 1;
}

/* ---- sockets ------------------------------------------------------------------------------------ */

static int s_send_ready(svc_worker_t *self, svc_link_t *l)
{
    l->last_send = l->last_ready = svc_now_mono_ms();
    l->ready_due = 0;
    if (xws_send_ready(l->sock, self->service->service, self->credit, self->name, "batch") != 0) {
        svc_log(SVC_LOG_WARN, "READY to %s could not be queued", l->endpoint);
        return -1;
    }
    return 0;
}

static int s_link_open(svc_worker_t *self, svc_link_t *l)
{
    l->sock = zsock_new(ZMQ_DEALER);
    if (l->sock == NULL)
        return -1;
    zsock_set_heartbeat_ivl(l->sock, self->heartbeat_ms);
    zsock_set_heartbeat_timeout(l->sock, self->expiry_ms);
    zsock_set_reconnect_ivl(l->sock, 100);
    zsock_set_reconnect_ivl_max(l->sock, 2000);
    zsock_set_sndtimeo(l->sock, 0);
    zsock_set_linger(l->sock, 0);
    zsock_set_maxmsgsize(l->sock, XWS_MAX_ENVELOPE + 1024); /* a larger frame drops the peer, unread */
    char why[512];
    /* the certificates are read at each (re)connection: a gateway's new public key is taken up
     * when its old one stops answering (PRODUCTION.md, key rotation) */
    if (self->curve_own != NULL && xws_curve_client(l->sock, self->curve_own, l->curve_server, why, sizeof(why)) != 0) {
        svc_log(SVC_LOG_ERROR, "CURVE for %s: %s", l->endpoint, why);
        zsock_destroy(&l->sock);
        return -1;
    }
    if (zsock_connect(l->sock, "%s", l->endpoint) != 0) {
        svc_log(SVC_LOG_ERROR, "cannot connect to %s: %s", l->endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&l->sock);
        return -1;
    }
    l->last_recv = svc_now_mono_ms();
    l->heard = 0;
    s_send_ready(self, l);
    return 0;
}

static void s_reply(svc_worker_t *self, svc_link_t *l, xws_slice_t key, msgpack_sbuffer *env)
{
    xws_slice_t e = {env->data, env->size};
    l->last_send = svc_now_mono_ms();
    if (xws_send_reply(l->sock, NULL, key, e) != 0)
        svc_log(SVC_LOG_ERROR, "reply to %s could not be sent (gateway gone or its queue full)", l->endpoint);
}

/* ---- jobs: one coroutine per request in flight ------------------------------------------------- */

static void s_job_main(void *arg)
{
    svc_job_t *job = arg;
    svc_worker_handle(job->worker, job->env.data, job->env.len, &job->reply);
}

/* after a start or a resume: a job whose handler returned queues its reply on its link */
static void s_job_settle(svc_worker_t *self, svc_job_t *job)
{
    if (svc_coro_busy(job->co))
        return; /* waits for Redis */
    svc_link_t *l = job->link;
    job->next = NULL;
    if (l->done_tail != NULL)
        l->done_tail->next = job;
    else
        l->done_head = job;
    l->done_tail = job;
}

/* a job goes back to the pool, its coroutine stack kept for the next request */
static void s_job_recycle(svc_worker_t *self, svc_job_t *job)
{
    xws_buf_reset(&job->env);
    msgpack_sbuffer_clear(&job->reply);
    job->next = self->free_jobs;
    self->free_jobs = job;
    self->active--;
}

/* sends the replies of every finished job, several per message to a gateway that reads batches */
static void s_send_replies(svc_worker_t *self)
{
    for (size_t i = 0; i < self->nlinks; i++) {
        svc_link_t *l = &self->links[i];
        while (l->done_head != NULL) {
            xws_slice_t pairs[2 * 32];
            svc_job_t *batch[32];
            size_t n = 0, max = l->batch ? 32 : 1;
            while (l->done_head != NULL && n < max) {
                svc_job_t *job = l->done_head;
                l->done_head = job->next;
                if (job->link_gen != l->gen) { /* the gateway that sent it is gone with the old socket */
                    svc_log(SVC_LOG_DEBUG, "reply dropped: the link to %s was re-opened meanwhile", l->endpoint);
                    s_job_recycle(self, job);
                    continue;
                }
                pairs[2 * n] = (xws_slice_t){job->key, job->keylen};
                pairs[2 * n + 1] = (xws_slice_t){job->reply.data, job->reply.size};
                batch[n++] = job;
            }
            if (l->done_head == NULL)
                l->done_tail = NULL;
            if (n > 0) {
                l->last_send = svc_now_mono_ms();
                if (xws_send_batch(l->sock, NULL, XWS_CMD_REPLY, pairs, n) != 0)
                    svc_log(SVC_LOG_ERROR, "%zu repl%s to %s could not be sent (gateway gone or its queue full)", n,
                            n == 1 ? "y" : "ies", l->endpoint);
            }
            for (size_t j = 0; j < n; j++)
                s_job_recycle(self, batch[j]);
        }
    }
}

/* starts the request key/env received on l: runs it until it waits for Redis or is done */
static void s_job_start(svc_worker_t *self, svc_link_t *l, xws_slice_t key, xws_slice_t env)
{
    svc_job_t *job = self->free_jobs;
    if (job != NULL) {
        self->free_jobs = job->next;
    } else {
        job = svc_calloc(1, sizeof(*job));
        job->worker = self;
        job->co = svc_coro_new(0);
        svc_coro_set_data(job->co, job);
        xws_buf_init(&job->env);
        msgpack_sbuffer_init(&job->reply);
    }
    job->link = l;
    job->link_gen = l->gen;
    memcpy(job->key, key.ptr, key.len);
    job->keylen = key.len;
    xws_buf_add(&job->env, env.ptr, env.len);
    self->active++;
    svc_coro_start(job->co, s_job_main, job);
    s_job_settle(self, job);
}

/* resumes every job whose Redis replies are in (or whose connection failed) */
static void s_resume_ready(svc_worker_t *self)
{
    svc_coro_t *co;
    int large;
    while ((co = svc_redis_next_ready(self->redis, &large)) != NULL) {
        if (co == self->probe) {
            svc_coro_resume(co);
            continue;
        }
        if (large) /* a long list to render: what is finished does not wait for it */
            s_send_replies(self);
        svc_coro_resume(co);
        s_job_settle(self, svc_coro_data(co));
    }
}

/* the most jobs in flight: each gateway link may hand this worker up to credit requests */
static size_t s_max_active(const svc_worker_t *self)
{
    return (size_t)self->credit * self->nlinks;
}

/* receives and starts what is waiting on l; returns when it is drained, full, or a stop was asked */
static void s_drain(svc_worker_t *self, svc_link_t *l)
{
    while (!s_stop && self->active < s_max_active(self)) {
        xws_frames_t f;
        memset(&f, 0, sizeof(f));
        const char *err = NULL;
        if (xws_frames_recv(&f, l->sock, 0, &err) != 0) {
            int none = err != NULL && strcmp(err, "no message") == 0;
            if (!none) {
                l->last_recv = svc_now_mono_ms();
                svc_log(SVC_LOG_WARN, "malformed message from %s dropped: %s", l->endpoint, err ? err : "?");
                if (f.key.ptr != NULL && f.key.len > 0) {
                    msgpack_sbuffer sb;
                    msgpack_sbuffer_init(&sb);
                    s_encode_error(400, "bad_envelope", "malformed message", &sb);
                    s_reply(self, l, f.key, &sb);
                    msgpack_sbuffer_destroy(&sb);
                }
            }
            xws_frames_dispose(&f);
            if (none)
                return;
            continue;
        }
        l->last_recv = svc_now_mono_ms();
        if (!l->heard)
            svc_log(SVC_LOG_INFO, "gateway at %s is talking to this worker", l->endpoint);
        l->heard = 1;
        switch (f.cmd) {
        case XWS_CMD_REQUEST:
            if (f.count > 1)
                l->batch = 1;
            for (size_t i = 0; i < f.count; i++) {
                xws_slice_t key, env;
                xws_frames_pair(&f, i, &key, &env);
                s_job_start(self, l, key, env);
            }
            break;
        case XWS_CMD_HEARTBEAT:
            break;
        case XWS_CMD_DISCONNECT:
            if (svc_now_mono_ms() - l->last_ready >= READY_MIN_MS) {
                svc_log(SVC_LOG_INFO, "gateway at %s does not know this worker: announcing it again", l->endpoint);
                s_send_ready(self, l);
            } else {
                l->ready_due = 1; /* the loop's tick sends it when READY_MIN_MS has passed */
            }
            break;
        default:
            svc_log(SVC_LOG_WARN, "unexpected command 0x%02x from %s ignored", (unsigned)f.cmd, l->endpoint);
            break;
        }
        xws_frames_dispose(&f);
    }
}

/* The store probe, every store_probe_ms: one PING through the worker's own connection (pipelined with the requests' commands). */
static void s_probe_main(void *arg)
{
    svc_worker_t *self = arg;
    const char *argv[] = {"PING"};
    long long t0 = svc_now_mono_us();
    redisReply *r = svc_redis_command(self->redis, 1, argv, NULL);
    int store = r != NULL && r->type == REDIS_REPLY_STATUS ? STORE_OK : STORE_DOWN;
    if (store == STORE_OK)
        self->store_us = svc_now_mono_us() - t0;
    if (store != self->store)
        svc_log(store == STORE_OK ? SVC_LOG_INFO : SVC_LOG_WARN, "store probe: Redis at %s %s", svc_redis_spec(self->redis),
                store == STORE_OK ? "answers" : "does not answer");
    self->store = store;
    if (r != NULL)
        freeReplyObject(r);
}

/*
 * The worker's report (PROTOCOL.md §2), in a HEARTBEAT every heartbeat_ms whatever else was sent:
 * a msgpack map {store, store_us, handled, replayed, store_errors, inflight}.
 */
static void s_send_report(svc_worker_t *self, svc_link_t *l)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    svc_mp_key(&pk, "store");
    svc_mp_cstr(&pk, s_store_names[self->store]);
    svc_mp_key(&pk, "store_us");
    msgpack_pack_uint64(&pk, (uint64_t)self->store_us);
    svc_mp_key(&pk, "handled");
    msgpack_pack_uint64(&pk, self->handled);
    svc_mp_key(&pk, "replayed");
    msgpack_pack_uint64(&pk, self->replayed);
    svc_mp_key(&pk, "store_errors");
    msgpack_pack_uint64(&pk, self->store_errors);
    svc_mp_key(&pk, "inflight");
    msgpack_pack_uint64(&pk, self->active);
    assert(sb.size <= XWS_MAX_REPORT); /* six small figures */
    xws_send_heartbeat_report(l->sock, NULL, (xws_slice_t){sb.data, sb.size});
    msgpack_sbuffer_destroy(&sb);
}

/* heartbeats, expiry of silent gateways, READY held back; -1 when a socket cannot be re-created */
static int s_timers(svc_worker_t *self)
{
    long long now = svc_now_mono_ms();
    for (size_t i = 0; i < self->nlinks; i++) {
        svc_link_t *l = &self->links[i];
        if (now - l->last_recv > self->expiry_ms) {
            /* a gateway that never answered (not started yet) is retried quietly */
            svc_log(l->heard ? SVC_LOG_WARN : SVC_LOG_DEBUG, "gateway at %s silent for %lld ms: reconnecting", l->endpoint,
                    now - l->last_recv);
            zsock_destroy(&l->sock);
            l->gen++;
            l->batch = 0;
            if (s_link_open(self, l) != 0)
                return -1;
        } else if (l->ready_due && now - l->last_ready >= READY_MIN_MS) {
            svc_log(SVC_LOG_INFO, "gateway at %s does not know this worker: announcing it again", l->endpoint);
            s_send_ready(self, l);
        } else if (now - l->last_report >= self->heartbeat_ms) {
            l->last_send = l->last_report = now;
            s_send_report(self, l);
        }
    }
    if (self->probe_ms > 0 && !s_stop && !svc_coro_busy(self->probe) && now - self->last_probe >= self->probe_ms) {
        self->last_probe = now;
        svc_coro_start(self->probe, s_probe_main, self);
    }
    /* the container health check looks at the file's age: fresh while this loop turns and the
     * last store probe found Redis answering */
    if (self->health_file != NULL && self->store == STORE_OK && now - self->health_at >= HEALTH_TOUCH_MS) {
        self->health_at = now;
        int fd = open(self->health_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || futimens(fd, NULL) != 0)
            svc_log(SVC_LOG_WARN, "health_file %s: %s", self->health_file, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    svc_redis_expire(self->redis, now);
    return 0;
}

int svc_worker_run(svc_worker_t *self)
{
    assert(self != NULL);
    signal(SIGPIPE, SIG_IGN);
    zsys_handler_set(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* SIGHUP (a log rotation): a worker logs to standard error only, so there is nothing to reopen;
     * it must not stop the worker */
    signal(SIGHUP, SIG_IGN);

    for (size_t i = 0; i < self->nlinks; i++)
        if (s_link_open(self, &self->links[i]) != 0)
            return -1;
    if (self->probe == NULL)
        self->probe = svc_coro_new(0);
    svc_redis_connect(self->redis); /* early, so that a wrong address shows in the log at once */
    svc_log(SVC_LOG_INFO, "worker %s serving %s, %zu gateway endpoint(s), credit %u, redis %s", self->name, self->service->service,
            self->nlinks, self->credit, svc_redis_spec(self->redis));
    /* systemd Type=notify: ready once its gateway links are open (Redis may come later: requests
     * then answer store_unavailable); WATCHDOG=1 from the loop while it turns */
    xws_notify("READY=1");
    uint64_t watchdog_ms = xws_watchdog_interval_ms();
    long long watchdog_at = svc_now_mono_ms();
    int tick = self->heartbeat_ms / 4;
    if (tick < 10)
        tick = 10;
    if (tick > 250)
        tick = 250;
    zmq_pollitem_t *items = svc_calloc(self->nlinks + 1, sizeof(*items));
    int rc = 0;
    /* after a stop is asked, no new request is taken, and the jobs in flight are finished (each
     * is bounded by the Redis timeout) before the gateways hear DISCONNECT */
    while (!s_stop || self->active > 0 || svc_coro_busy(self->probe)) {
        /* one turn: wait for gateways and Redis; resume the jobs whose replies came; start the new
         * requests; send every Redis command queued by all of them in one write */
        int n = 0, rd, wr;
        int take = !s_stop && self->active < s_max_active(self);
        for (size_t i = 0; i < self->nlinks && take; i++)
            items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->links[i].sock), .events = ZMQ_POLLIN};
        int fd = svc_redis_io_wanted(self->redis, &rd, &wr);
        if (fd >= 0 && (rd || wr))
            items[n++] = (zmq_pollitem_t){.fd = fd, .events = (short)((rd ? ZMQ_POLLIN : 0) | (wr ? ZMQ_POLLOUT : 0))};
        long long now = svc_now_mono_ms();
        if (watchdog_ms > 0 && now - watchdog_at >= (long long)watchdog_ms) {
            xws_notify("WATCHDOG=1");
            watchdog_at = now;
        }
        int wait = tick, rw = svc_redis_wait_ms(self->redis, now);
        if (rw >= 0 && rw < wait)
            wait = rw;
        if (zmq_poll(items, n, wait) < 0 && zmq_errno() != EINTR) {
            svc_log(SVC_LOG_ERROR, "zmq_poll: %s", zmq_strerror(zmq_errno()));
            rc = -1;
            break;
        }
        svc_redis_io(self->redis);
        s_resume_ready(self);
        for (size_t i = 0; i < self->nlinks; i++)
            s_drain(self, &self->links[i]);
        svc_redis_flush(self->redis);
        s_resume_ready(self); /* calls that failed at once (Redis down) */
        if (s_timers(self) != 0) {
            rc = -1;
            break;
        }
        s_resume_ready(self); /* calls that timed out */
        s_send_replies(self);
    }
    free(items);
    if (rc != 0)
        return -1; /* (jobs still in flight are abandoned with the process) */
    svc_log(SVC_LOG_INFO, "worker %s stopping: disconnecting from the gateways", self->name);
    xws_notify("STOPPING=1");
    for (size_t i = 0; i < self->nlinks; i++) {
        zsock_set_linger(self->links[i].sock, 500);
        xws_send_disconnect(self->links[i].sock, NULL);
    }
    for (size_t i = 0; i < self->nlinks; i++)
        zsock_destroy(&self->links[i].sock);
    return 0;
}

/* ---- pool threads -------------------------------------------------------------------------------- */

typedef struct {
    svc_worker_t *worker;
    pthread_t thread;
    int nice; /* added to the thread's nice value */
    int rc;   /* of svc_worker_run */
} svc_pool_thread_t;

static void *s_pool_main(void *arg)
{
    svc_pool_thread_t *t = arg;
    /* behind the main worker for the CPU: SCHED_BATCH (a waking main worker preempts this thread
     * rather than wait behind its long computation) and a higher nice value (a smaller share when
     * the CPU is short). A failure only costs that preference. */
    struct sched_param sp = {.sched_priority = 0};
    int err = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    if (err != 0)
        svc_log(SVC_LOG_DEBUG, "SCHED_BATCH: %s", strerror(err));
    if (t->nice > 0) {
        errno = 0;
        int prio = getpriority(PRIO_PROCESS, 0);
        if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), prio + t->nice) != 0)
            svc_log(SVC_LOG_DEBUG, "setpriority: %s", strerror(errno));
    }
    t->rc = svc_worker_run(t->worker);
    if (t->rc != 0)
        s_stop = 1; /* a pool that cannot run stops the process: the supervisor restarts it whole */
    return NULL;
}

/* Creates n workers of pool (here, in the main thread: the settings are not thread-safe) and starts
 * a thread for each, with SIGTERM/SIGINT blocked (the main thread takes them). Returns 0, or -1
 * (logged; the threads started are stopped and joined). */
static int s_pool_start(const svc_service_t *service, const svc_pool_t *pool, xws_config_t *cfg, svc_pool_thread_t *threads, int n)
{
    memset(threads, 0, (size_t)n * sizeof(*threads));
    long long nice = 0;
    if (pool->nice_key != NULL && s_int_setting(cfg, pool->nice_key, pool->default_nice, 0, 19, &nice) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        threads[i].nice = (int)nice;
        if ((threads[i].worker = s_worker_new(pool->service, cfg, service, pool->credit, i + 1)) == NULL)
            goto fail;
    }
    zsys_init();
    zsys_handler_set(NULL); /* once here, before the threads, which call it again */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int started = 0;
    for (; started < n; started++)
        if (pthread_create(&threads[started].thread, NULL, s_pool_main, &threads[started]) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started == n) {
        svc_log(SVC_LOG_INFO, "%d thread(s) serving %s", n, pool->service->service);
        return 0;
    }
    svc_log(SVC_LOG_ERROR, "cannot start the threads of %s", pool->service->service);
    s_stop = 1;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i].thread, NULL);
fail:
    for (int i = 0; i < n; i++)
        svc_worker_destroy(&threads[i].worker);
    return -1;
}

int svc_main(const svc_service_t *service, int argc, char **argv)
{
    return svc_main_with(service, NULL, NULL, argc, argv);
}

int svc_main_with(const svc_service_t *service, const svc_command_t *cmd, const svc_pool_t *pool, int argc, char **argv)
{
    static const xws_cli_opt_t opts[] = {
        {'c', "config", "FILE",
         "settings file (default: $XWS_CONFIG, else built-in defaults); every key can be overridden by the environment variable "
         "XWS_<KEY>"},
        {'v', "verbose", NULL, "debug log: one line per request"},
        {0, "check-config", NULL, "check the settings (file and environment) and exit: 0 when valid, 2 otherwise"},
        {0},
    };
    char program[64], summary[512], synopsis[160], epilog[256];
    const char *base = argv[0] != NULL && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    snprintf(program, sizeof(program), "%s", base != NULL ? base : "xws-worker");
    size_t n = (size_t)snprintf(summary, sizeof(summary),
                                "The %s worker service of XWS: connects to the gateway's worker endpoints "
                                "(worker_endpoints) and to Redis (redis), and serves the resources",
                                service->service);
    for (const svc_resource_t *r = service->resources; r->name != NULL && n < sizeof(summary); r++)
        n += (size_t)snprintf(summary + n, sizeof(summary) - n, "%s %s", r == service->resources ? "" : ",", r->name);
    if (n < sizeof(summary) - 1)
        summary[n++] = '.', summary[n] = '\0';
    snprintf(synopsis, sizeof(synopsis), "[OPTION]...%s%s", cmd != NULL ? " [" : "", cmd != NULL ? cmd->name : "");
    if (cmd != NULL)
        snprintf(synopsis + strlen(synopsis), sizeof(synopsis) - strlen(synopsis), " ...]");
    snprintf(epilog, sizeof(epilog), "%s%s%sExit status: 0 after a clean stop (SIGTERM), 1 on an error, 2 on a usage error.\n",
             cmd != NULL ? "Commands:\n  " : "", cmd != NULL ? cmd->usage : "", cmd != NULL ? "\n\n" : "");
    const xws_cli_t cli = {program, synopsis, summary, opts, epilog};
    const char *path = NULL, *arg;
    int opt, state = 0, check_only = 0;
    /* nothing a worker creates is for other local users (spec: local secrets), whatever the
     * caller's umask */
    umask(077);
    svc_log_set_program(argv[0] != NULL && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);
    /* long answers are built in buffers of megabytes: keep them in the heap for reuse rather than
     * a fresh zeroed mapping for each one */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    while ((opt = xws_cli_next(&cli, argc, argv, &state, &arg)) != -1) {
        if (opt == 'c')
            path = arg;
        else if (opt == 'v')
            svc_log_set_level(SVC_LOG_DEBUG);
        else if (opt == 0x102)
            check_only = 1;
    }
    if (state < argc && cmd != NULL && strcmp(argv[state], cmd->name) == 0)
        return cmd->run(path, argc - state, argv + state);
    if (state != argc)
        return xws_cli_usage_error(&cli, "unexpected argument '%s'", argv[state]);
    xws_config_t *cfg = xws_config_load(path);
    if (cfg == NULL)
        return 2; /* a configuration error: starting again will not help */
    if (xws_log_set_format(xws_config_get(cfg, "log_format", "text")) != 0) {
        svc_log(SVC_LOG_ERROR, "log_format must be text or json");
        xws_config_destroy(&cfg);
        return 2;
    }
    svc_worker_t *w = svc_worker_new(service, cfg);
    if (check_only) {
        int valid = w != NULL;
        svc_worker_destroy(&w);
        xws_config_destroy(&cfg);
        if (valid)
            printf("%s: the settings are valid\n", program);
        return valid ? 0 : 2;
    }
    svc_pool_thread_t threads[SVC_POOL_MAX_THREADS];
    long long npool = 0;
    int rc = 1;
    if (w != NULL && pool != NULL &&
        (s_int_setting(cfg, pool->threads_key, pool->default_threads, 0, SVC_POOL_MAX_THREADS, &npool) != 0 ||
         s_pool_start(service, pool, cfg, threads, (int)npool) != 0))
        npool = -1;
    if (w != NULL && npool >= 0)
        rc = svc_worker_run(w) == 0 ? 0 : 1;
    s_stop = 1; /* the pool stops with the main worker */
    for (int i = 0; i < (int)npool; i++) {
        pthread_join(threads[i].thread, NULL);
        if (threads[i].rc != 0)
            rc = 1;
        svc_worker_destroy(&threads[i].worker);
    }
    svc_worker_destroy(&w);
    xws_config_destroy(&cfg);
    return rc;
}
