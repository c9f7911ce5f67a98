/* gw_internal.c - the internal consumer endpoint (see gw_internal.h). */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "xws/log.h"
#include "xws/frames.h"
#include "gw_check.h"
#include "gw_internal.h"
#include "gw_log.h"
#include "gw_route.h"
#include "gw_zap.h"

typedef struct {
    gw_job_t job;
    gw_internal_t *owner;
    zframe_t *identity; /* consumer */
    char key[XWS_MAX_KEY];
    size_t keylen;
    h2o_linklist_t link; /* in owner->pending */
    /* for its access-log line */
    char path[2 * XWS_MAX_NAME + 3]; /* "/<service>/<resource>" */
    char act[XWS_MAX_NAME + 1];
    char account[XWS_MAX_NAME + 1];
    uint64_t t0_us;
} ireq_t;

static uint64_t s_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One access-log line for a consumer's request, like an HTTPS request's: client "internal",
 * method "ZMQ", path "/<service>/<resource>", its act, status, reply bytes, duration, account. */
static void s_access(gw_log_t *log, const char *path, const char *act, unsigned status, size_t bytes, uint64_t t0_us,
                     const char *account)
{
    gw_log_entry_t e = {"internal",          "ZMQ",  3, path, strlen(path), act, strlen(act), (int)status, bytes,
                        s_mono_us() - t0_us, account};
    gw_log_access(log, &e);
}

/* copies s into a buffer of size bytes as text ("" when empty) */
static void s_text(char *buf, size_t size, xws_slice_t s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(buf, s.ptr != NULL ? s.ptr : "", n);
    buf[n] = '\0';
}

struct gw_internal {
    gw_app_t *app;
    zsock_t *sock;
    int curve; /* 1: a CURVE server guarded by app->zap; the caller is the peer's key */
    h2o_socket_t *watch;
    h2o_timeout_t zero;
    h2o_timeout_entry_t recheck;
    h2o_linklist_t pending;
    size_t npending;
    char *endpoint;
    gw_ipc_file_t file; /* of an ipc:// endpoint: removed at a clean stop */
};

/* the path of an "ipc://PATH" endpoint with a file (not abstract), or NULL */
static const char *s_ipc_path(const char *ep)
{
    if (ep == NULL || strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@' || ep[6] == '\0')
        return NULL;
    return ep + 6;
}

gw_ipc_file_t gw_endpoint_file(const char *ep)
{
    gw_ipc_file_t f = {0, 0};
    struct stat st;
    const char *path = s_ipc_path(ep);
    if (path != NULL && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        f.dev = st.st_dev, f.ino = st.st_ino;
    return f;
}

void gw_endpoint_share(const char *ep)
{
    const char *path = s_ipc_path(ep);
    if (path != NULL && chmod(path, 0770) != 0)
        xws_log(XWS_LOG_ERROR, "cannot open %s to its group: %s", path, strerror(errno));
}

void gw_endpoint_unlink(const char *ep, gw_ipc_file_t file)
{
    struct stat st;
    const char *path = s_ipc_path(ep);
    if (path != NULL && file.ino != 0 && lstat(path, &st) == 0 && st.st_dev == file.dev && st.st_ino == file.ino)
        unlink(path);
}

int gw_endpoint_is_local(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (colon == NULL)
        return 0;
    size_t n = (size_t)(colon - host);
    if (n == 5 && memcmp(host, "[::1]", 5) == 0)
        return 1;
    if (n == 9 && memcmp(host, "localhost", 9) == 0)
        return 1;
    if (n >= 4 && n < 16 && memcmp(host, "127.", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if ((host[i] < '0' || host[i] > '9') && host[i] != '.')
                return 0;
        return 1;
    }
    return 0;
}

static void s_poke(gw_internal_t *self)
{
    if (!h2o_timeout_is_linked(&self->recheck))
        h2o_timeout_link(self->app->loop, &self->zero, &self->recheck);
}

static void s_reply_raw(gw_internal_t *self, zframe_t *identity, xws_slice_t key, const void *env, size_t len)
{
    if (xws_send_reply(self->sock, identity, key, (xws_slice_t){env, len}) != 0)
        xws_log(XWS_LOG_ERROR, "internal: cannot answer a consumer (gone or slow): %s", zmq_strerror(zmq_errno()));
    s_poke(self);
}

static void s_reply_error(gw_internal_t *self, zframe_t *identity, xws_slice_t key, unsigned status, const char *code,
                          const char *message)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (xws_reply_encode_error(status, code, "", message, &sb) == 0)
        s_reply_raw(self, identity, key, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void s_ireq_free(ireq_t *ir)
{
    h2o_linklist_unlink(&ir->link);
    ir->owner->npending--;
    zframe_destroy(&ir->identity);
    free(ir);
}

static void s_on_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    ireq_t *ir = job->data;
    gw_internal_t *self = ir->owner;
    xws_slice_t key = {ir->key, ir->keylen};
    unsigned status = 500;
    size_t bytes = 0;
    if (outcome == GW_JOB_TIMEOUT) {
        status = 504;
        s_reply_error(self, ir->identity, key, 504, "timeout", "the service did not answer in time");
    } else if (outcome == GW_JOB_REPLY) {
        xws_reply_t rep;
        const char *err = NULL;
        if (xws_reply_decode(&rep, reply, len, &err) != 0) {
            s_reply_error(self, ir->identity, key, 500, "internal_error", "the service sent a malformed reply");
        } else if (rep.status < 200) { /* not a final answer */
            xws_log(XWS_LOG_WARN, "internal: the service answered status %u, which is not a final answer: 500", rep.status);
            s_reply_error(self, ir->identity, key, 500, "internal_error", "the service sent an invalid status");
        } else {
            status = rep.status % 1000;
            bytes = len;
            s_reply_raw(self, ir->identity, key, reply, len);
        }
        xws_reply_dispose(&rep);
    } else {
        s_reply_error(self, ir->identity, key, 500, "internal_error", "the service sent a malformed reply");
    }
    s_access(self->app->log, ir->path, ir->act, status, bytes, ir->t0_us, ir->account);
    s_ireq_free(ir);
}

/*
 * The caller of a consumer's request. With CURVE, the account is the name the ZAP handler gave
 * the consumer's key and the address its connection's peer address, whatever the envelope says;
 * on an ipc:// or loopback endpoint without CURVE, what the envelope says (local processes).
 */
static void s_caller(gw_internal_t *self, const xws_frames_t *f, const xws_request_t *req, xws_slice_t *account, xws_slice_t *addr)
{
    *account = req->caller_account, *addr = req->caller_addr;
    if (!self->curve)
        return;
    zframe_t *first = zmsg_first(f->msg); /* identity popped: the signature frame, with the connection's properties */
    const char *user = gw_zap_user(first);
    const char *peer = first != NULL ? zframe_meta(first, "Peer-Address") : NULL;
    *account = xws_slice(user != NULL ? user : "");
    *addr = xws_slice(peer != NULL ? peer : "");
}

static void s_on_request(gw_internal_t *self, xws_frames_t *f)
{
    gw_app_t *app = self->app;
    xws_request_t req;
    const char *err = NULL;
    if (xws_request_decode(&req, f->payload.ptr, f->payload.len, &err) != 0) {
        int unsupported = err != NULL && strcmp(err, "unsupported_version") == 0;
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed request envelope: %s", err != NULL ? err : "?");
        xws_log(XWS_LOG_INFO, "internal: %s", msg);
        s_reply_error(self, f->identity, f->key, 400, unsupported ? "unsupported_version" : "bad_envelope", msg);
        xws_request_dispose(&req);
        return;
    }
    if ((xws_slice_eq(req.service, XWS_SERVICE_CONFIG) && xws_slice_eq(req.resource, XWS_RESOURCE_ACCOUNT)) ||
        xws_slice_eq(req.service, XWS_SERVICE_VERIFY)) {
        s_reply_error(self, f->identity, f->key, 403, "forbidden", "accounts are only served to the gateway");
        xws_request_dispose(&req);
        return;
    }
    uint64_t now = gw_app_unix_ms(), deadline = now + app->deadline_ms;
    if (req.deadline_ms != 0 && req.deadline_ms < now + GW_BROKER_MIN_LEFT_MS) {
        /* already past (or too near to be worth a worker's time) */
        s_reply_error(self, f->identity, f->key, 504, "timeout", "the request's deadline has passed");
        xws_request_dispose(&req);
        return;
    }
    /* rebuild the envelope with the caller mode the consumer cannot choose */
    size_t np = req.params != NULL ? req.params->size : 0;
    xws_kv_t *kv = calloc(np > 0 ? np : 1, sizeof(*kv));
    if (kv == NULL)
        abort();
    for (size_t i = 0; i < np; i++) {
        const msgpack_object_kv *p = &req.params->ptr[i];
        kv[i].key = (xws_slice_t){p->key.via.str.ptr, p->key.via.str.size};
        kv[i].val = (xws_slice_t){p->val.via.str.ptr, p->val.via.str.size};
    }
    msgpack_sbuffer body, env;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);
    if (req.body != NULL) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *req.body);
    }
    if (req.deadline_ms != 0 && req.deadline_ms < deadline)
        deadline = req.deadline_ms;
    xws_slice_t account, addr;
    s_caller(self, f, &req, &account, &addr);
    xws_request_spec_t spec = {
        .rid = req.rid,
        .service = req.service,
        .resource = req.resource,
        .act = req.act,
        .params = kv,
        .nparams = np,
        .body_msgpack = {body.data, body.size},
        .caller_mode = xws_slice("internal"),
        .caller_account = account,
        .caller_addr = addr,
        .deadline_ms = deadline,
        .inm = req.inm,
    };
    char service[XWS_MAX_NAME + 1];
    size_t sl = req.service.len < XWS_MAX_NAME ? req.service.len : XWS_MAX_NAME;
    memcpy(service, req.service.ptr, sl);
    service[sl] = '\0';
    if (memchr(service, '\0', sl) != NULL || xws_request_encode(&spec, &env) != 0) {
        s_reply_error(self, f->identity, f->key, 400, "bad_envelope", "the request envelope breaks a protocol limit");
    } else {
        ireq_t *ir = calloc(1, sizeof(*ir));
        if (ir == NULL)
            abort();
        ir->owner = self;
        ir->identity = zframe_dup(f->identity);
        memcpy(ir->key, f->key.ptr, f->key.len);
        ir->keylen = f->key.len;
        ir->job.on_done = s_on_done;
        ir->job.data = ir;
        ir->t0_us = s_mono_us();
        char svc[XWS_MAX_NAME + 1], res[XWS_MAX_NAME + 1];
        s_text(svc, sizeof(svc), req.service);
        s_text(res, sizeof(res), req.resource);
        snprintf(ir->path, sizeof(ir->path), "/%s/%s", svc, res);
        s_text(ir->act, sizeof(ir->act), req.act);
        s_text(ir->account, sizeof(ir->account), account);
        h2o_linklist_insert(&self->pending, &ir->link);
        self->npending++;
        int rc = app->stopping ? GW_SUBMIT_NO_WORKER
                               : gw_broker_submit_until(app->broker, &ir->job, service, env.data, env.size, deadline);
        if (rc != GW_SUBMIT_OK) {
            char msg[160];
            if (rc == GW_SUBMIT_UNKNOWN) {
                snprintf(msg, sizeof(msg), "unknown service %s", service);
                s_reply_error(self, f->identity, f->key, 404, "not_found", msg);
            } else {
                snprintf(msg, sizeof(msg), "no worker of service %s is available", service);
                s_reply_error(self, f->identity, f->key, 503, "no_worker", msg);
            }
            s_access(self->app->log, ir->path, ir->act, rc == GW_SUBMIT_UNKNOWN ? 404 : 503, 0, ir->t0_us, ir->account);
            s_ireq_free(ir);
        }
    }
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
    free(kv);
    xws_request_dispose(&req);
}

static void s_drain(gw_internal_t *self)
{
    while (zsock_events(self->sock) & ZMQ_POLLIN) {
        xws_frames_t f;
        memset(&f, 0, sizeof(f));
        const char *err = NULL;
        int rc = xws_frames_recv(&f, self->sock, 1, &err);
        if (rc != 0) {
            if (f.msg == NULL && f.identity == NULL && err != NULL && strcmp(err, "no message") == 0) {
                xws_frames_dispose(&f);
                break;
            }
            xws_log(XWS_LOG_ERROR, "internal: malformed message dropped: %s", err != NULL ? err : "?");
            if (f.identity != NULL && f.key.len > 0 && f.key.len <= XWS_MAX_KEY)
                s_reply_error(self, f.identity, f.key, 400, "bad_envelope", err != NULL ? err : "malformed message");
        } else if (f.cmd == XWS_CMD_REQUEST && f.count > 1) { /* batches are for workers only */
            xws_log(XWS_LOG_ERROR, "internal: a batch of %zu requests refused", f.count);
            for (size_t i = 0; i < f.count; i++) {
                xws_slice_t key, env;
                xws_frames_pair(&f, i, &key, &env);
                s_reply_error(self, f.identity, key, 400, "bad_envelope", "one request per message on the internal endpoint");
            }
        } else if (f.cmd == XWS_CMD_REQUEST) {
            s_on_request(self, &f);
        } else if (f.cmd != XWS_CMD_HEARTBEAT && f.cmd != XWS_CMD_DISCONNECT) {
            xws_log(XWS_LOG_WARN, "internal: a consumer sent command %d; only REQUEST is served here", (int)f.cmd);
        }
        xws_frames_dispose(&f);
    }
}

static void s_on_readable(h2o_socket_t *sock, const char *err)
{
    s_drain(sock->data);
}

static void s_on_recheck(h2o_timeout_entry_t *entry)
{
    s_drain(H2O_STRUCT_FROM_MEMBER(gw_internal_t, recheck, entry));
}

gw_internal_t *gw_internal_new(gw_app_t *app, const char *endpoint, const char *curve_secret, const char *curve_clients_dir)
{
    int curve = curve_clients_dir != NULL && *curve_clients_dir != '\0';
    if (!curve && !gw_endpoint_is_local(endpoint)) {
        xws_log(XWS_LOG_ERROR,
                "internal_endpoint %s is reachable beyond this host: set curve_secret_key and curve_clients_dir, "
                "or use ipc:// or a loopback address",
                endpoint);
        return NULL;
    }
    if (curve && app->zap == NULL) {
        xws_log(XWS_LOG_ERROR, "curve_clients_dir needs curve_secret_key (the gateway's secret certificate)");
        return NULL;
    }
    gw_internal_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->app = app;
    h2o_linklist_init_anchor(&self->pending);
    self->sock = zsock_new(ZMQ_ROUTER);
    if (self->sock == NULL)
        abort();
    zsock_set_sndtimeo(self->sock, 0);
    zsock_set_router_mandatory(self->sock, 1);
    zsock_set_sndhwm(self->sock, 100000);
    zsock_set_linger(self->sock, 200);
    zsock_set_maxmsgsize(self->sock, GW_MAX_FRAME); /* a larger frame drops the connection instead of being buffered */
    if (curve && gw_zap_guard(app->zap, self->sock, GW_ZAP_INTERNAL, curve_secret, curve_clients_dir, "curve_clients_dir") != 0)
        goto fail;
    self->curve = curve;
    if (zsock_bind(self->sock, "%s", endpoint) < 0) {
        xws_log(XWS_LOG_ERROR, "cannot bind the internal endpoint %s: %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    self->endpoint = strdup(endpoint);
    if (self->endpoint == NULL)
        abort();
    self->file = gw_endpoint_file(endpoint);
    int fd = dup(zsock_fd(self->sock));
    if (fd < 0)
        abort();
    self->watch = h2o_evloop_socket_create(app->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->watch->data = self;
    h2o_socket_read_start(self->watch, s_on_readable);
    h2o_timeout_init(app->loop, &self->zero, 0);
    self->recheck.cb = s_on_recheck;
    s_poke(self);
    return self;
fail:
    zsock_destroy(&self->sock);
    free(self);
    return NULL;
}

void gw_internal_destroy(gw_internal_t **self_p)
{
    assert(self_p != NULL);
    gw_internal_t *self = *self_p;
    if (self == NULL)
        return;
    while (!h2o_linklist_is_empty(&self->pending)) {
        ireq_t *ir = H2O_STRUCT_FROM_MEMBER(ireq_t, link, self->pending.next);
        gw_broker_cancel(self->app->broker, &ir->job);
        s_ireq_free(ir);
    }
    if (h2o_timeout_is_linked(&self->recheck))
        h2o_timeout_unlink(&self->recheck);
    h2o_timeout_dispose(self->app->loop, &self->zero);
    h2o_socket_read_stop(self->watch);
    h2o_socket_close(self->watch);
    zsock_destroy(&self->sock);
    gw_endpoint_unlink(self->endpoint, self->file);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

size_t gw_internal_pending(gw_internal_t *self)
{
    return self != NULL ? self->npending : 0;
}

void gw_internal_test(void)
{
    GW_CHECK(gw_endpoint_is_local("ipc:///run/xws/internal.ipc"));
    GW_CHECK(gw_endpoint_is_local("tcp://127.0.0.1:5555") && gw_endpoint_is_local("tcp://127.1.2.3:5555"));
    GW_CHECK(gw_endpoint_is_local("tcp://[::1]:5555") && gw_endpoint_is_local("tcp://localhost:5555"));
    GW_CHECK(!gw_endpoint_is_local("tcp://0.0.0.0:5555") && !gw_endpoint_is_local("tcp://*:5555"));
    GW_CHECK(!gw_endpoint_is_local("tcp://10.0.0.1:5555") && !gw_endpoint_is_local("tcp://127.0.0.1.evil:5555"));
    GW_CHECK(!gw_endpoint_is_local("tcp://eth0:5555") && !gw_endpoint_is_local("inproc://x"));
    GW_CHECK(!gw_endpoint_is_local("tcp://127.0.0.1"));
}
