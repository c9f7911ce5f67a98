/* gw_status.c - /status and /metrics: health, readiness, details and metrics (see gw_status.h). */
#include <inttypes.h>
#include <string.h>
#include "gw_authn.h"
#include "gw_check.h"
#include "gw_internal.h"
#include "gw_metrics.h"
#include "gw_refresh.h"
#include "gw_status.h"

/* the gateway's own routes: no service; `path` is also their label in the metrics */
enum { R_STATUS = 0, R_LIVE, R_READY, R_METRICS, NROUTES };
static const gw_route_t s_routes[NROUTES] = {
    [R_STATUS] = {"", "status", NULL, NULL, 1, NULL},
    [R_LIVE] = {"", "status/live", NULL, NULL, 1, NULL},
    [R_READY] = {"", "status/ready", NULL, NULL, 1, NULL},
    [R_METRICS] = {"", "metrics", NULL, NULL, 1, NULL},
};

const gw_route_t *gw_status_match(const char *path, size_t len)
{
    if (len > 1 && path[len - 1] == '/')
        len--;
    for (size_t i = 0; i < NROUTES; i++) {
        size_t n = strlen(s_routes[i].path);
        if (len == n + 1 && path[0] == '/' && memcmp(path + 1, s_routes[i].path, n) == 0)
            return &s_routes[i];
    }
    return NULL;
}

int gw_status_owns(const gw_route_t *route)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (route == &s_routes[i])
            return 1;
    return 0;
}

/* ---- readiness -------------------------------------------------------------------------------- */

static void s_reason(xws_buf_t *reasons, const char *text)
{
    if (reasons == NULL)
        return;
    if (reasons->len > 0)
        xws_buf_adds(reasons, ",");
    xws_json_string(reasons, text, strlen(text));
}

int gw_status_ready(gw_app_t *app, xws_buf_t *reasons)
{
    int ready = 1;
    char text[256];
    if (app->stopping) {
        s_reason(reasons, "the gateway is stopping");
        ready = 0;
    }
    gw_broker_service_t svcs[16];
    size_t n = gw_broker_services(app->broker, svcs, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (svcs[i].workers == 0)
            snprintf(text, sizeof(text), "service %s has no worker", svcs[i].name);
        else if (svcs[i].store_ok == 0)
            snprintf(text, sizeof(text), "no worker of service %s reports the data store answering (%zu report it down)",
                     svcs[i].name, svcs[i].store_down);
        else
            continue;
        s_reason(reasons, text);
        ready = 0;
    }
    uint64_t ok_at = gw_refresh_last_ok(app->refresh), now = h2o_now(app->loop);
    uint64_t limit = 2 * app->accounts_refresh_ms + app->deadline_ms;
    if (!gw_accounts_ready(app->accounts)) {
        s_reason(reasons, "the accounts are not loaded yet");
        ready = 0;
    } else if (ok_at == 0 || now - ok_at > limit) {
        snprintf(text, sizeof(text), "the accounts were last refreshed %" PRIu64 " ms ago (limit %" PRIu64 " ms)",
                 ok_at == 0 ? 0 : now - ok_at, limit);
        s_reason(reasons, text);
        ready = 0;
    }
    return ready;
}

/* ---- answers ---------------------------------------------------------------------------------- */

static void s_send_buf(gw_req_t *r, int status, xws_buf_t *b)
{
    h2o_iovec_t body = h2o_strdup(&r->req->pool, b->data != NULL ? b->data : "", b->len);
    gw_req_send(r, status, body.base, body.len);
}

/* 200 {"ready": true} or 503 {"ready": false, "reasons": [...]} (503 gets Retry-After from gw_req_send) */
static void s_send_ready(gw_req_t *r)
{
    xws_buf_t reasons, out;
    xws_buf_init(&reasons);
    xws_buf_init(&out);
    int ready = gw_status_ready(r->app, &reasons);
    xws_buf_addf(&out, "{\"live\":true,\"ready\":%s,\"reasons\":[", ready ? "true" : "false");
    xws_buf_add(&out, reasons.data != NULL ? reasons.data : "", reasons.len);
    xws_buf_adds(&out, "]}");
    s_send_buf(r, ready ? 200 : 503, &out);
    xws_buf_dispose(&reasons);
    xws_buf_dispose(&out);
}

/* 200 with the details: readiness, accounts, and each service's workers, queues, store probes and counts */
static void s_send_details(gw_req_t *r)
{
    gw_app_t *app = r->app;
    xws_buf_t reasons, out;
    xws_buf_init(&reasons);
    xws_buf_init(&out);
    int ready = gw_status_ready(app, &reasons);
    uint64_t ok_at = gw_refresh_last_ok(app->refresh), now = h2o_now(app->loop);
    xws_buf_addf(&out, "{\"live\":true,\"ready\":%s,\"reasons\":[", ready ? "true" : "false");
    xws_buf_add(&out, reasons.data != NULL ? reasons.data : "", reasons.len);
    xws_buf_addf(&out, "],\"instance\":\"%s\",\"http_in_flight\":%zu,\"internal_in_flight\":%zu,", app->instance, app->nrequests,
                 gw_internal_pending(app->internal));
    xws_buf_addf(&out, "\"accounts\":{\"loaded\":%s,\"version\":%" PRIu64 ",\"count\":%zu,\"refreshed_ms_ago\":",
                 gw_accounts_ready(app->accounts) ? "true" : "false", gw_accounts_version(app->accounts),
                 gw_accounts_count(app->accounts));
    if (ok_at == 0)
        xws_buf_adds(&out, "null},\"services\":[");
    else
        xws_buf_addf(&out, "%" PRIu64 "},\"services\":[", now - ok_at);
    gw_broker_service_t svcs[16];
    size_t n = gw_broker_services(app->broker, svcs, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        const gw_broker_service_t *s = &svcs[i];
        const gw_broker_counts_t *c = &s->counts;
        xws_buf_addf(&out,
                     "%s{\"name\":\"%s\",\"workers\":%zu,\"credit\":%zu,\"in_flight\":%zu,\"queued\":%zu,\"store_ok\":%zu,"
                     "\"store_down\":%zu,\"store_probe_us\":%" PRIu64 ",\"handled\":%" PRIu64 ",\"replayed\":%" PRIu64
                     ",\"store_errors\":%" PRIu64 ",\"registered\":%" PRIu64 ",\"disconnected\":%" PRIu64 ",\"expired\":%" PRIu64
                     ",\"unreachable\":%" PRIu64 ",\"other_departures\":%" PRIu64 ",\"redispatched\":%" PRIu64
                     ",\"no_worker\":%" PRIu64 ",\"queue_full\":%" PRIu64 ",\"timeouts\":%" PRIu64 "}",
                     i > 0 ? "," : "", s->name, s->workers, s->credit, s->inflight, s->queued, s->store_ok, s->store_down,
                     s->store_us, s->handled, s->replayed, s->store_errors, c->registered, c->disconnected, c->expired,
                     c->unreachable, c->other, c->redispatched, c->no_worker, c->queue_full, c->timeouts);
    }
    xws_buf_adds(&out, "]}");
    s_send_buf(r, 200, &out);
    xws_buf_dispose(&reasons);
    xws_buf_dispose(&out);
}

static void s_send_metrics(gw_req_t *r)
{
    xws_buf_t out;
    xws_buf_init(&out);
    gw_metrics_render(r->app->metrics, r->app, &out);
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    s_send_buf(r, 200, &out);
    xws_buf_dispose(&out);
}

void gw_status_handle(gw_req_t *r)
{
    if (r->route == &s_routes[R_LIVE]) {
        gw_req_send(r, 200, H2O_STRLIT("{\"live\":true}"));
        return;
    }
    int has_creds = h2o_find_header(&r->req->headers, H2O_TOKEN_AUTHORIZATION, -1) >= 0;
    if (r->route == &s_routes[R_READY] || (r->route == &s_routes[R_STATUS] && !has_creds)) {
        s_send_ready(r);
        return;
    }
    gw_authn_start(r); /* details, metrics: any account (gw_status_authorized) */
}

void gw_status_authorized(gw_req_t *r)
{
    if (r->route == &s_routes[R_METRICS])
        s_send_metrics(r);
    else
        s_send_details(r);
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_status_test(void)
{
    static const struct {
        const char *path;
        int route; /* -1: none */
    } cases[] = {
        {"/status", R_STATUS},
        {"/status/", R_STATUS},
        {"/status/live", R_LIVE},
        {"/status/ready/", R_READY},
        {"/metrics", R_METRICS},
        {"/metrics/", R_METRICS},
        {"/", -1},
        {"", -1},
        {"/status//", -1},
        {"/statusx", -1},
        {"/Status", -1},
        {"/status/live/x", -1},
        {"/metricsx", -1},
        {"//status", -1},
        {"/xivo/status", -1},
        {"/status/%6cive", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const gw_route_t *rt = gw_status_match(cases[i].path, strlen(cases[i].path));
        GW_CHECK(cases[i].route < 0 ? rt == NULL : rt == &s_routes[cases[i].route]);
        GW_CHECK(rt == NULL || gw_status_owns(rt));
    }
    GW_CHECK(!gw_status_owns(gw_route_at(0)) && !gw_status_owns(NULL));
}
