/* gw_http.c - json.php requests to envelopes and replies to HTTP answers (see gw_http.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "xws/log.h"
#include "xws/proto.h"
#include "gw_authn.h"
#include "gw_check.h"
#include "gw_docs.h"
#include "gw_guard.h"
#include "gw_http.h"
#include "gw_req.h"
#include "gw_msg.h"
#include "gw_route.h"
#include "gw_status.h"

static uint64_t s_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- answering -------------------------------------------------------------------------------- */

static void s_add_header(gw_req_t *r, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&r->req->pool, &r->req->res.headers, token, NULL, value, strlen(value));
}

/*
 * What every answer gets before its body goes: status, reason, the version and cache headers,
 * Content-Length, the access-log line and the metrics. Returns the length of the body to send
 * (0 for a 204 or a 304, whatever len says).
 */
static size_t s_answer(gw_req_t *r, int status, size_t len)
{
    assert(r->phase != PH_DONE);
    h2o_req_t *req = r->req;
    gw_app_t *app = r->app;
    r->phase = PH_DONE;
    OPENSSL_cleanse(r->password, sizeof(r->password));
    if (h2o_timeout_is_linked(&r->deadline))
        h2o_timeout_unlink(&r->deadline);
    if (status == 204 || status == 304)
        len = 0;
    req->res.status = status;
    req->res.reason = gw_msg_reason(status);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-xivo-ws-version"), 0, "X-XIVO-WS-VERSION",
                          H2O_STRLIT(GW_WS_VERSION));
    s_add_header(r, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, GW_HSTS);
    if (len > 0 && h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1) == -1) /* /metrics sets its own */
        s_add_header(r, H2O_TOKEN_CONTENT_TYPE, "application/json");
    if (status == 503)
        s_add_header(r, H2O_TOKEN_RETRY_AFTER, "1");
    if (status == 405 && h2o_find_header(&req->res.headers, H2O_TOKEN_ALLOW, -1) == -1)
        s_add_header(r, H2O_TOKEN_ALLOW, "GET, POST, HEAD");
    /* a 200/304 with an entity tag may be stored but must be revalidated; nothing else may be stored */
    int validated = (status == 200 || status == 304) && h2o_find_header(&req->res.headers, H2O_TOKEN_ETAG, -1) != -1;
    s_add_header(r, H2O_TOKEN_CACHE_CONTROL, validated ? "no-cache" : "no-store");
    req->res.content_length = len;

    gw_log_entry_t e = {r->addr_text, req->method.base, req->method.len, r->path.ptr, r->path.len,
                        r->act.ptr,   r->act.len,       status,          len,         s_mono_us() - r->t0_us,
                        r->account};
    gw_log_access(app->log, &e);
    gw_metrics_request(app->metrics, r->route, r->act, status, e.duration_us);
    return len;
}

/*
 * The one exit of every request: status, optional JSON body (copied), the version header, the
 * access-log line. r must not be touched afterwards (h2o may free the request at any time).
 */
void gw_req_send(gw_req_t *r, int status, const char *body, size_t len)
{
    len = s_answer(r, status, len);
    h2o_send_inline(r->req, body, len);
}

static void s_free_body(void *p)
{
    free(*(char **)p);
}

/* gw_req_send for a body that lives as long as the request's pool: sent without a copy */
static void s_send_pooled(gw_req_t *r, int status, h2o_iovec_t body)
{
    h2o_req_t *req = r->req;
    static h2o_generator_t generator = {NULL, NULL}; /* one final send: nothing to proceed or stop, as h2o_send_inline */
    body.len = s_answer(r, status, body.len);
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/*
 * gw_req_send for a body rendered into out (status 200 to 599, not 204 or 304): the bytes are not
 * copied, their memory is handed to the request's pool, which frees it with the request (h2o may
 * hold them until the client has read them: an HTTP/2 stream waits for its flow-control window).
 * out is left empty. r must not be touched afterwards.
 */
static void s_send_owned(gw_req_t *r, int status, xws_buf_t *out)
{
    char **owned = h2o_mem_alloc_shared(&r->req->pool, sizeof(char *), s_free_body);
    h2o_iovec_t body = h2o_iovec_init(out->data, out->len);
    *owned = out->data;
    xws_buf_init(out);
    s_send_pooled(r, status, body);
}

/* An answer without a body (401, 403, 404, 200 of check...). */
void gw_req_send_empty(gw_req_t *r, int status)
{
    if (status == 401)
        s_add_header(r, H2O_TOKEN_WWW_AUTHENTICATE, "Basic realm=\"Access Restricted\"");
    gw_req_send(r, status, NULL, 0);
}

/* An error answer with the JSON body of PROTOCOL.md §9. */
void gw_req_send_error(gw_req_t *r, int status, const char *code, const char *field, const char *message)
{
    xws_buf_t out;
    xws_buf_init(&out);
    gw_msg_error_json(&out, code, field, message);
    h2o_iovec_t body = h2o_strdup(&r->req->pool, out.data, out.len);
    xws_buf_dispose(&out);
    gw_req_send(r, status, body.base, body.len);
}

void gw_req_send_submit_error(gw_req_t *r, int rc, const char *service)
{
    char msg[160];
    gw_app_submit_error(rc, service, msg, sizeof(msg));
    gw_req_send_error(r, 503, "no_worker", "", msg);
}

/* ---- the end of a request --------------------------------------------------------------------- */

static void s_on_freed(void *arg)
{
    gw_req_t *r = arg;
    gw_app_t *app = r->app;
    if (gw_job_busy(&r->job))
        gw_broker_cancel(app->broker, &r->job);
    gw_authn_abort(r);
    if (h2o_timeout_is_linked(&r->deadline))
        h2o_timeout_unlink(&r->deadline);
    OPENSSL_cleanse(r->password, sizeof(r->password));
    if (r->conn != NULL) /* on HTTP/2, freed before the answer: the client reset the stream */
        gw_conn_request_end(r->conn, r->phase != PH_DONE && r->req->version >= 0x200);
    if (r->phase != PH_DONE) { /* the client went away before the answer */
        gw_log_entry_t e = {r->addr_text,
                            r->req->method.base,
                            r->req->method.len,
                            r->path.ptr,
                            r->path.len,
                            r->act.ptr,
                            r->act.len,
                            499,
                            0,
                            s_mono_us() - r->t0_us,
                            r->account};
        gw_log_access(app->log, &e);
        gw_metrics_request(app->metrics, r->route, r->act, 499, e.duration_us);
    }
    app->nrequests--;
}

/* ---- replies ---------------------------------------------------------------------------------- */

static void s_render(gw_req_t *r, const void *data, size_t len)
{
    xws_reply_t rep;
    const char *err = NULL;
    if (xws_reply_decode_raw(&rep, data, len, &err) != 0) { /* the body is rendered from its bytes: no tree */
        xws_log(XWS_LOG_ERROR, "malformed reply from service %s (%s)", r->route->service, err != NULL ? err : "?");
        xws_reply_dispose(&rep);
        gw_req_send_error(r, 500, "internal_error", "", "the service sent a malformed reply");
        return;
    }
    int status = (int)rep.status;
    if (status < 200 || status > 599) { /* a 1xx is not a final answer (a 101 would leave an HTTP/1.1 client hanging) */
        xws_log(XWS_LOG_WARN, "service %s answered status %d, which is not a final answer: 500", r->route->service, status);
        xws_reply_dispose(&rep);
        gw_req_send_error(r, 500, "internal_error", "", "the service sent an invalid status");
        return;
    }
    /* a 304 to the kept answer's tag: the service confirmed it current (gw_cache.h) */
    h2o_iovec_t kept = {NULL, 0};
    if (status == 304 && r->cache_body.base != NULL &&
        h2o_memis(rep.etag.ptr, rep.etag.len, r->cache_etag.base, r->cache_etag.len)) {
        status = 200;
        kept = r->cache_body;
        gw_cache_count(r->app->cache, 1);
    }
    xws_buf_t out;
    xws_buf_init(&out);
    if (kept.base == NULL)
        xws_buf_reserve(&out, len + len / 2 + 64); /* JSON is about 1.2-1.5 times the msgpack: one allocation */
    if (kept.base == NULL && rep.body_raw.ptr != NULL && status != 204 && status != 304 &&
        xws_msgpack_raw_to_json(rep.body_raw.ptr, rep.body_raw.len, &out, &err) != 0) {
        xws_log(XWS_LOG_WARN, "reply from service %s has no JSON form", r->route->service);
        xws_buf_dispose(&out);
        xws_reply_dispose(&rep);
        gw_req_send_error(r, 500, "internal_error", "", "the service sent a reply that cannot be rendered");
        return;
    }
    if (kept.base == NULL && status == 200 && rep.etag.len > 0 && r->cache_key.len > 0) {
        gw_cache_put(r->app->cache, r->cache_key, rep.etag, out.data, out.len);
        gw_cache_count(r->app->cache, 0);
    }
    const char *bytes = kept.base != NULL ? kept.base : out.data;
    size_t nbytes = kept.base != NULL ? kept.len : out.len;
    if (rep.etag.len > 0 && (status == 200 || status == 304)) /* an entity tag means nothing on other answers */
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_ETAG, NULL,
                       h2o_strdup(&r->req->pool, rep.etag.ptr, rep.etag.len).base, rep.etag.len);
    if (status == 200 && rep.etag.len > 0) { /* only a reply with an entity tag (list, search, view) can be "not modified" */
        ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
        xws_slice_t sum;
        char md5[33];
        if (i >= 0 && gw_msg_inm_matches(r->req->headers.entries[i].value.base, r->req->headers.entries[i].value.len, rep.etag.ptr,
                                         rep.etag.len)) {
            status = 304;
        } else if (gw_query_get(r->params, r->nparams, "sum", &sum) == 0 && sum.len == 32) {
            gw_msg_hex_md5(bytes != NULL ? bytes : "", nbytes, md5);
            if (strncasecmp(sum.ptr, md5, 32) == 0)
                status = 304;
        }
    }
    xws_reply_dispose(&rep);
    if (status == 304 || status == 204 || nbytes == 0)
        gw_req_send(r, status, NULL, 0);
    else if (kept.base != NULL)
        s_send_pooled(r, status, kept); /* the kept bytes, shared with the cache for the request's life */
    else
        s_send_owned(r, status, &out); /* the rendered bytes go out as they are: no copy */
    xws_buf_dispose(&out);
}

static void s_on_worker_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    gw_req_t *r = job->data;
    char msg[160];
    switch (outcome) {
    case GW_JOB_REPLY:
        s_render(r, reply, len);
        break;
    case GW_JOB_TIMEOUT:
        snprintf(msg, sizeof(msg), "service %s did not answer within %" PRIu64 " ms", r->route->service, r->app->deadline_ms);
        gw_req_send_error(r, 504, "timeout", "", msg);
        break;
    default:
        gw_req_send_error(r, 500, "internal_error", "", "the service sent a malformed reply");
        break;
    }
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static int s_is_msgpack_map(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = (unsigned char)p[0];
    return (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
}

void gw_req_dispatch(gw_req_t *r)
{
    gw_app_t *app = r->app;
    h2o_req_t *req = r->req;
    msgpack_sbuffer body, env;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);

    if (gw_route_reads_body(r->route, r->act.ptr, r->act.len)) {
        if (req->entity.base == NULL || req->entity.len == 0) {
            gw_req_send_error(r, 400, "empty_body", "", "this act needs a JSON object in the request body");
            goto done;
        }
        char detail[256];
        detail[0] = '\0';
        if (xws_json_to_msgpack(req->entity.base, req->entity.len, &body, detail, sizeof(detail)) != 0) {
            char msg[320];
            snprintf(msg, sizeof(msg), "the request body is not valid JSON: %s", detail[0] ? detail : "parse error");
            gw_req_send_error(r, 400, "invalid_json", "", msg);
            goto done;
        }
        if (!s_is_msgpack_map(body.data, body.size)) {
            gw_req_send_error(r, 400, "not_an_object", "", "the request body must be a JSON object");
            goto done;
        }
    }

    char rid[XWS_MAX_RID + 1];
    gw_app_rid(app, rid, sizeof(rid));
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    xws_slice_t act = r->act.len <= XWS_MAX_NAME ? r->act : xws_slice(""); /* an over-long act is unknown: default act */
    xws_slice_t inm_sent =
        inm >= 0 ? (xws_slice_t){req->headers.entries[inm].value.base, req->headers.entries[inm].value.len} : XWS_SLICE_NULL;
    if (r->app->cache != NULL && body.size == 0) {
        /* an answer kept for the same request is sent back to be confirmed: its tag is the
         * If-None-Match the service sees (the client's own is compared here, with the answer) */
        const char *mode = r->mode == GW_MODE_PRIVATE ? "private" : "restricted";
        r->cache_key = gw_cache_key(&req->pool, mode, r->route->service, r->route->resource, act, r->params, r->nparams);
        if (gw_cache_get(r->app->cache, &req->pool, r->cache_key, &r->cache_etag, &r->cache_body))
            inm_sent = (xws_slice_t){r->cache_etag.base, r->cache_etag.len};
    }
    xws_request_spec_t spec = {
        .rid = xws_slice(rid),
        .service = xws_slice(r->route->service),
        .resource = xws_slice(r->route->resource),
        .act = act,
        .params = r->params,
        .nparams = r->nparams,
        .body_msgpack = {body.data, body.size},
        .caller_mode = xws_slice(r->mode == GW_MODE_PRIVATE ? "private" : "restricted"),
        .caller_account = xws_slice(r->account),
        .caller_addr = xws_slice(r->addr_text),
        .deadline_ms = r->deadline_unix_ms,
        .inm = inm_sent,
    };
    if (xws_request_encode(&spec, &env) != 0) {
        xws_log(XWS_LOG_ERROR, "cannot encode the request envelope for %s/%s", r->route->service, r->route->resource);
        gw_req_send_error(r, 500, "internal_error", "", "the request could not be encoded");
        goto done;
    }
    r->phase = PH_WORKER;
    r->job.on_done = s_on_worker_done;
    r->job.data = r;
    int rc = gw_broker_submit_until(app->broker, &r->job, r->route->service, env.data, env.size, r->deadline_unix_ms);
    if (rc != GW_SUBMIT_OK)
        gw_req_send_submit_error(r, rc, r->route->service);
done:
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
}

/* ---- the handler ------------------------------------------------------------------------------ */

/* The request's deadline passed in any phase (back-off delay, password check, worker): 504. */
static void s_on_deadline(h2o_timeout_entry_t *entry)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, deadline, entry);
    char msg[160];
    if (gw_job_busy(&r->job))
        gw_broker_cancel(r->app->broker, &r->job);
    gw_authn_abort(r);
    snprintf(msg, sizeof(msg), "%s did not answer within %" PRIu64 " ms",
             r->phase == PH_WORKER ? "the service" : "the account service", r->app->deadline_ms);
    gw_req_send_error(r, 504, "timeout", "", msg);
}

static int s_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gw_app_t *app = *(gw_app_t **)(self + 1);
    gw_req_t *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), s_on_freed);
    memset(r, 0, sizeof(*r));
    r->app = app;
    r->req = req;
    r->t0_us = s_mono_us();
    r->account = "";
    r->act = xws_slice("");
    r->deadline_unix_ms = gw_app_unix_ms() + app->deadline_ms;
    r->deadline.cb = s_on_deadline;
    h2o_timeout_link(app->loop, &app->request_timeout, &r->deadline);
    app->nrequests++;

    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    gw_addr_from_sockaddr((struct sockaddr *)&ss, sslen, r->addr, r->addr_text, sizeof(r->addr_text));
    if ((r->conn = gw_conns_of(req)) != NULL && gw_conn_request_start(r->conn, req) != 0) {
        r->conn = NULL;
        gw_req_send_error(r, 503, "connection_closing", "",
                          "this connection is being closed (too many requests cancelled, or no request in time); open a new one");
        return 0;
    }

    gw_guard_fault_t fault;
    if (gw_guard_framing(req, &fault) != 0) {
        req->http1_is_persistent = 0; /* nothing after this head may be read as a request */
        gw_req_send_error(r, 400, "invalid_value", fault.field, fault.message);
        return 0;
    }

    xws_slice_t query;
    gw_msg_split_target(req->path.base, req->path.len, &r->path, &query);
    gw_match_t m;
    if (gw_route_match(r->path.ptr, r->path.len, &m) != 0) {
        m.route = gw_status_match(r->path.ptr, r->path.len); /* the gateway's own: /status, /metrics */
        if (m.route == NULL)
            m.route = gw_docs_match(r->path.ptr, r->path.len); /* the API description: /api/ */
        m.mode = GW_MODE_RESTRICTED;
        if (m.route == NULL) {
            gw_req_send(r, 404, NULL, 0);
            return 0;
        }
    }
    r->route = m.route;
    r->mode = m.mode;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        gw_req_send_error(r, 405, "method_not_allowed", "", "the method is not allowed; use GET, POST or HEAD");
        return 0;
    }
    const char *q = query.ptr;
    size_t qlen = query.len;
    if (qlen > app->max_query) {
        gw_req_send_error(r, 414, "too_long", "", "the query string is too long");
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > app->max_body) {
        gw_req_send_error(r, 413, "too_long", "", "the request body is too large");
        return 0;
    }
    char *buf = h2o_mem_alloc_pool(&req->pool, qlen + 1);
    r->params = h2o_mem_alloc_pool(&req->pool, sizeof(xws_kv_t) * gw_query_max_params(q, qlen));
    xws_slice_t bad;
    int qrc = gw_query_parse(q, qlen, buf, r->params, &r->nparams, &bad);
    if (qrc == GW_QUERY_TOO_MANY) {
        r->nparams = 0;
        gw_req_send_error(r, 400, "invalid_value", "", "too many query parameters (at most " H2O_TO_STR(GW_QUERY_MAX_PARAMS) ")");
        return 0;
    }
    if (qrc != GW_QUERY_OK) {
        char field[XWS_MAX_NAME * 2 + 1];
        size_t n = bad.len < sizeof(field) - 1 ? bad.len : sizeof(field) - 1;
        while (n > 0 && !gw_utf8_valid(bad.ptr, n)) /* a cut in the middle of a character */
            n--;
        memcpy(field, bad.ptr, n);
        field[n] = '\0';
        r->nparams = 0;
        gw_req_send_error(r, 400, "invalid_value", field, "bad percent-encoding or invalid UTF-8 in the query string");
        return 0;
    }
    gw_query_get(r->params, r->nparams, "act", &r->act);

    if (app->stopping) {
        gw_req_send_error(r, 503, "no_worker", "", "the gateway is stopping");
        return 0;
    }
    if (gw_docs_owns(r->route)) {
        gw_docs_handle(r);
        return 0;
    }
    if (gw_status_owns(r->route)) {
        gw_status_handle(r);
        return 0;
    }
    if (r->mode == GW_MODE_PRIVATE) {
        if (!gw_addr_is_private_ok(r->addr)) {
            gw_req_send_empty(r, 403);
            return 0;
        }
        if (gw_guard_private_origin(req, &fault) != 0) {
            gw_req_send_error(r, 403, "forbidden", fault.field, fault.message);
            return 0;
        }
        gw_req_dispatch(r);
        return 0;
    }
    gw_authn_start(r);
    return 0;
}

/*
 * Answers h2o makes by itself (its 413 for a body above the limit, 400 for a broken request...)
 * go through the host's fallback path: this filter gives them the version header, the standard
 * reason phrase, `Cache-Control: no-store` and (for a 405) `Allow`.
 */
static void s_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-xivo-ws-version"), -1) == -1)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-xivo-ws-version"), 0, "X-XIVO-WS-VERSION",
                              H2O_STRLIT(GW_WS_VERSION));
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, H2O_STRLIT(GW_HSTS));
    if (req->res.status >= 100 && req->res.status <= 999)
        req->res.reason = gw_msg_reason(req->res.status);
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (req->res.status == 405 && h2o_find_header(&req->res.headers, H2O_TOKEN_ALLOW, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, POST, HEAD"));
    h2o_setup_next_ostream(req, slot);
}

void gw_http_register(gw_app_t *app, h2o_hostconf_t *host)
{
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = s_on_setup_ostream;
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(h2o_handler_t) + sizeof(gw_app_t *));
    handler->on_req = s_on_req;
    *(gw_app_t **)(handler + 1) = app;
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_http_test(void)
{
    GW_CHECK(s_is_msgpack_map("\x80", 1) && s_is_msgpack_map("\xde\x00\x00", 3) && !s_is_msgpack_map("\x90", 1));
    GW_CHECK(!s_is_msgpack_map("", 0));
}
