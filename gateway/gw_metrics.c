/* gw_metrics.c - request counters and the Prometheus text rendering (see gw_metrics.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "gw_app.h"
#include "gw_check.h"
#include "gw_internal.h"
#include "gw_metrics.h"
#include "gw_refresh.h"
#include "gw_status.h"

/* ---- the label tables ------------------------------------------------------------------------- */

/* acts counted by name; index NACTS is "default" (""), NACTS + 1 is "other" */
static const char *const s_acts[] = {"list", "search", "view", "add", "edit", "delete", "deleteall"};
#define NACTS (sizeof(s_acts) / sizeof(s_acts[0]))
#define ACT_SLOTS (NACTS + 2)

/* statuses counted by code; the last slot is "other" */
static const int s_statuses[] = {200, 204, 304, 400, 401, 403, 404, 405, 413, 414, 499, 500, 503, 504};
#define NSTATUSES (sizeof(s_statuses) / sizeof(s_statuses[0]))
#define STATUS_SLOTS (NSTATUSES + 1)

/* upper bounds of the latency buckets, in microseconds (rendered in seconds); +Inf is the count */
static const uint64_t s_bounds_us[] = {1000,   2500,   5000,    10000,   25000,   50000,   100000,
                                       250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define NBUCKETS (sizeof(s_bounds_us) / sizeof(s_bounds_us[0]))

/* resources: the rows of the json.php table, the gateway's own routes, and "none" (no route) */
#define MAX_RESOURCES 32

typedef struct {
    const gw_route_t *route; /* NULL: the "none" slot */
    uint64_t count[ACT_SLOTS][STATUS_SLOTS];
    uint64_t bucket[NBUCKETS]; /* not cumulative: requests in (bound[i-1], bound[i]] */
    uint64_t nobs, sum_us;
} res_t;

struct gw_metrics {
    uint64_t start_unix_ms;
    res_t res[MAX_RESOURCES];
    size_t nres;
    uint64_t auth[GW_AUTH_NEVENTS];
};

gw_metrics_t *gw_metrics_new(uint64_t start_unix_ms)
{
    gw_metrics_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->start_unix_ms = start_unix_ms;
    /* slot 0 is "none"; the json.php rows come first so that their order is the table's */
    self->nres = 1;
    for (size_t i = 0; i < gw_route_count() && self->nres < MAX_RESOURCES; i++)
        self->res[self->nres++].route = gw_route_at(i);
    return self;
}

void gw_metrics_destroy(gw_metrics_t **self_p)
{
    assert(self_p != NULL);
    free(*self_p);
    *self_p = NULL;
}

static res_t *s_res(gw_metrics_t *self, const gw_route_t *route)
{
    if (route == NULL)
        return &self->res[0];
    for (size_t i = 1; i < self->nres; i++)
        if (self->res[i].route == route)
            return &self->res[i];
    if (self->nres == MAX_RESOURCES) /* more routes than the table holds: a build mistake, counted as none */
        return &self->res[0];
    self->res[self->nres].route = route; /* a route of the gateway's own (status, metrics) */
    return &self->res[self->nres++];
}

static size_t s_act_slot(xws_slice_t act)
{
    if (act.len == 0)
        return NACTS;
    for (size_t i = 0; i < NACTS; i++)
        if (xws_slice_eq(act, s_acts[i]))
            return i;
    return NACTS + 1;
}

static size_t s_status_slot(int status)
{
    for (size_t i = 0; i < NSTATUSES; i++)
        if (s_statuses[i] == status)
            return i;
    return NSTATUSES;
}

void gw_metrics_request(gw_metrics_t *self, const gw_route_t *route, xws_slice_t act, int status, uint64_t duration_us)
{
    if (self == NULL)
        return;
    res_t *r = s_res(self, route);
    r->count[s_act_slot(act)][s_status_slot(status)]++;
    size_t b = 0;
    while (b < NBUCKETS && duration_us > s_bounds_us[b])
        b++;
    if (b < NBUCKETS)
        r->bucket[b]++;
    r->nobs++;
    r->sum_us += duration_us;
}

void gw_metrics_auth(gw_metrics_t *self, gw_auth_event_t ev)
{
    if (self != NULL && ev < GW_AUTH_NEVENTS)
        self->auth[ev]++;
}

/* ---- rendering -------------------------------------------------------------------------------- */

static void s_head(xws_buf_t *out, const char *name, const char *type, const char *help)
{
    xws_buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *s_res_label(const res_t *r)
{
    return r->route == NULL ? "none" : r->route->path;
}

/* seconds from microseconds, with the precision Prometheus keeps */
static void s_seconds(xws_buf_t *out, uint64_t us)
{
    xws_buf_addf(out, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void s_render_http(gw_metrics_t *self, xws_buf_t *out)
{
    s_head(out, "xws_http_requests_total", "counter",
           "HTTP requests answered, by resource (route path; none: no route), act and status (499: the client left)");
    for (size_t i = 0; i < self->nres; i++)
        for (size_t a = 0; a < ACT_SLOTS; a++)
            for (size_t st = 0; st < STATUS_SLOTS; st++) {
                uint64_t n = self->res[i].count[a][st];
                if (n == 0)
                    continue;
                xws_buf_addf(out, "xws_http_requests_total{resource=\"%s\",act=\"%s\",status=\"", s_res_label(&self->res[i]),
                             a < NACTS    ? s_acts[a]
                             : a == NACTS ? "default"
                                          : "other");
                if (st < NSTATUSES)
                    xws_buf_addf(out, "%d", s_statuses[st]);
                else
                    xws_buf_adds(out, "other");
                xws_buf_addf(out, "\"} %" PRIu64 "\n", n);
            }
    s_head(out, "xws_http_request_duration_seconds", "histogram",
           "time from the arrival of an HTTP request to its answer, by resource");
    for (size_t i = 0; i < self->nres; i++) {
        const res_t *r = &self->res[i];
        if (r->nobs == 0)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += r->bucket[b];
            xws_buf_addf(out, "xws_http_request_duration_seconds_bucket{resource=\"%s\",le=\"", s_res_label(r));
            s_seconds(out, s_bounds_us[b]);
            xws_buf_addf(out, "\"} %" PRIu64 "\n", cum);
        }
        xws_buf_addf(out, "xws_http_request_duration_seconds_bucket{resource=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", s_res_label(r),
                     r->nobs);
        xws_buf_addf(out, "xws_http_request_duration_seconds_sum{resource=\"%s\"} ", s_res_label(r));
        s_seconds(out, r->sum_us);
        xws_buf_addf(out, "\nxws_http_request_duration_seconds_count{resource=\"%s\"} %" PRIu64 "\n", s_res_label(r), r->nobs);
    }
    static const struct {
        const char *name, *help;
    } auth[GW_AUTH_NEVENTS] = {
        {"xws_auth_password_checks_total",
         "requests whose password had to be checked by the config service (verification cache miss)"},
        {"xws_auth_failures_total", "requests refused 401 for wrong or unusable credentials (counted by the back-off)"},
        {"xws_auth_throttled_total", "requests answered 429 by the password-guessing throttle (no check ran)"},
    };
    for (size_t i = 0; i < GW_AUTH_NEVENTS; i++) {
        s_head(out, auth[i].name, "counter", auth[i].help);
        xws_buf_addf(out, "%s %" PRIu64 "\n", auth[i].name, self->auth[i]);
    }
}

/* one line per service of a figure taken from gw_broker_service_t */
typedef struct {
    const char *name, *type, *help;
    size_t off; /* offset of the figure in gw_broker_service_t */
    int size;   /* sizeof the figure: size_t or uint64_t */
    int micro;  /* 1: microseconds, rendered in seconds */
} figure_t;

#define FIG(n, t, h, field)                                                                                                        \
    {                                                                                                                              \
        n, t, h, offsetof(gw_broker_service_t, field), (int)sizeof(((gw_broker_service_t *)0)->field), 0                           \
    }

static const figure_t s_figures[] = {
    FIG("xws_workers", "gauge", "live workers of the service", workers),
    FIG("xws_worker_credit", "gauge", "requests the live workers accept at once, in all", credit),
    FIG("xws_jobs_in_flight", "gauge", "requests held by the service's workers", inflight),
    FIG("xws_jobs_queued", "gauge", "requests waiting in the gateway for a worker of the service", queued),
    FIG("xws_workers_store_ok", "gauge", "workers whose last store probe found Redis answering", store_ok),
    FIG("xws_workers_store_down", "gauge", "workers whose last store probe failed or timed out", store_down),
    {"xws_store_probe_seconds", "gauge", "slowest last successful store probe (PING round trip) among the service's workers",
     offsetof(gw_broker_service_t, store_us), (int)sizeof(uint64_t), 1},
    FIG("xws_worker_registrations_total", "counter", "workers that announced READY", counts.registered),
    FIG("xws_worker_disconnects_total", "counter", "workers that left with DISCONNECT (a clean stop)", counts.disconnected),
    FIG("xws_worker_expiries_total", "counter", "workers forgotten after expiry_ms of silence (a hang, a crash, a lost link)",
        counts.expired),
    FIG("xws_worker_unreachable_total", "counter", "workers forgotten because their connection was gone (a crash on this host)",
        counts.unreachable),
    FIG("xws_worker_other_departures_total", "counter", "workers forgotten for another reason (re-registered for another service)",
        counts.other),
    FIG("xws_jobs_redispatched_total", "counter", "requests a departed worker held, queued again for another worker",
        counts.redispatched),
    FIG("xws_jobs_no_worker_total", "counter", "requests refused 503 because the service had no live worker", counts.no_worker),
    FIG("xws_jobs_queue_full_total", "counter", "requests refused 503 because the service's queue was full", counts.queue_full),
    FIG("xws_jobs_timeouts_total", "counter", "requests whose deadline passed before a worker answered (504)", counts.timeouts),
    FIG("xws_worker_bad_reports_total", "counter", "worker reports that could not be read", counts.bad_reports),
    FIG("xws_worker_requests_total", "counter", "requests answered by the service's workers (their reports)", handled),
    FIG("xws_worker_replayed_writes_total", "counter",
        "writes answered from their recorded outcome, a retried request id (the workers' reports)", replayed),
    FIG("xws_worker_store_errors_total", "counter", "requests the workers answered 503 store_unavailable (their reports)",
        store_errors),
};

static void s_render_services(gw_app_t *app, xws_buf_t *out)
{
    gw_broker_service_t svcs[16];
    size_t n = gw_broker_services(app->broker, svcs, 16);
    if (n > 16)
        n = 16;
    for (size_t f = 0; f < sizeof(s_figures) / sizeof(s_figures[0]); f++) {
        const figure_t *fig = &s_figures[f];
        s_head(out, fig->name, fig->type, fig->help);
        for (size_t i = 0; i < n; i++) {
            const char *p = (const char *)&svcs[i] + fig->off;
            uint64_t v = fig->size == (int)sizeof(uint64_t) ? *(const uint64_t *)p : (uint64_t) * (const size_t *)p;
            xws_buf_addf(out, "%s{service=\"%s\"} ", fig->name, svcs[i].name);
            if (fig->micro)
                s_seconds(out, v);
            else
                xws_buf_addf(out, "%" PRIu64, v);
            xws_buf_adds(out, "\n");
        }
    }
}

void gw_metrics_render(gw_metrics_t *self, gw_app_t *app, xws_buf_t *out)
{
    s_render_http(self, out);
    s_render_services(app, out);
    uint64_t now = h2o_now(app->loop), ok_at = gw_refresh_last_ok(app->refresh);
    s_head(out, "xws_http_requests_in_flight", "gauge", "HTTP requests received and not answered yet");
    xws_buf_addf(out, "xws_http_requests_in_flight %zu\n", app->nrequests);
    s_head(out, "xws_internal_requests_in_flight", "gauge", "requests of internal consumers not answered yet");
    xws_buf_addf(out, "xws_internal_requests_in_flight %zu\n", app->internal != NULL ? gw_internal_pending(app->internal) : 0);
    s_head(out, "xws_accounts_loaded", "gauge", "1 once the gateway holds an account snapshot");
    xws_buf_addf(out, "xws_accounts_loaded %d\n", gw_accounts_ready(app->accounts));
    s_head(out, "xws_accounts", "gauge", "accounts in the snapshot");
    xws_buf_addf(out, "xws_accounts %zu\n", gw_accounts_count(app->accounts));
    s_head(out, "xws_accounts_snapshot_age_seconds", "gauge",
           "time since the config service last loaded or confirmed the account snapshot (-1: never)");
    if (ok_at == 0)
        xws_buf_adds(out, "xws_accounts_snapshot_age_seconds -1\n");
    else {
        xws_buf_adds(out, "xws_accounts_snapshot_age_seconds ");
        s_seconds(out, (now - ok_at) * 1000);
        xws_buf_adds(out, "\n");
    }
    gw_cache_stats_t cs = gw_cache_stats(app->cache);
    s_head(out, "xws_reply_cache_hits_total", "counter",
           "read answers served from the reply cache once their service confirmed them");
    xws_buf_addf(out, "xws_reply_cache_hits_total %" PRIu64 "\n", cs.hits);
    s_head(out, "xws_reply_cache_misses_total", "counter", "read answers with an entity tag rendered from their service's reply");
    xws_buf_addf(out, "xws_reply_cache_misses_total %" PRIu64 "\n", cs.misses);
    s_head(out, "xws_reply_cache_evictions_total", "counter", "answers dropped from the reply cache to stay within its bound");
    xws_buf_addf(out, "xws_reply_cache_evictions_total %" PRIu64 "\n", cs.evictions);
    s_head(out, "xws_reply_cache_entries", "gauge", "answers kept in the reply cache");
    xws_buf_addf(out, "xws_reply_cache_entries %zu\n", cs.entries);
    s_head(out, "xws_reply_cache_bytes", "gauge", "bytes the reply cache holds (bound: reply_cache_bytes)");
    xws_buf_addf(out, "xws_reply_cache_bytes %zu\n", cs.bytes);
    s_head(out, "xws_ready", "gauge", "1 when GET /status/ready answers 200");
    xws_buf_addf(out, "xws_ready %d\n", gw_status_ready(app, NULL));
    s_head(out, "xws_start_time_seconds", "gauge", "start of the gateway process, Unix time");
    xws_buf_addf(out, "xws_start_time_seconds %" PRIu64 "\n", self->start_unix_ms / 1000);
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_metrics_test(void)
{
    gw_metrics_t *m = gw_metrics_new(1700000000000);
    const gw_route_t *entity = NULL;
    for (size_t i = 0; i < gw_route_count(); i++)
        if (strcmp(gw_route_at(i)->path, "manage/entity") == 0)
            entity = gw_route_at(i);
    GW_CHECK(entity != NULL);
    static const gw_route_t own = {"", "status", NULL, NULL, 1, NULL};
    gw_metrics_request(m, entity, xws_slice("list"), 200, 800);                /* bucket 0.001 */
    gw_metrics_request(m, entity, xws_slice("list"), 200, 1000);               /* bucket 0.001 (le is inclusive) */
    gw_metrics_request(m, entity, xws_slice("list"), 200, 30000);              /* bucket 0.05 */
    gw_metrics_request(m, entity, xws_slice("\"x\n"), 777, (uint64_t)2 << 30); /* other act, other status, beyond the last bound */
    gw_metrics_request(m, entity, xws_slice(""), 204, 10);
    gw_metrics_request(m, NULL, xws_slice("view"), 404, 10);
    gw_metrics_request(m, &own, xws_slice(""), 200, 10);
    gw_metrics_request(NULL, entity, xws_slice("list"), 200, 10); /* no metrics: nothing */
    gw_metrics_auth(m, GW_AUTH_FAILURE);
    gw_metrics_auth(m, GW_AUTH_FAILURE);
    gw_metrics_auth(NULL, GW_AUTH_FAILURE);
    xws_buf_t out;
    xws_buf_init(&out);
    s_render_http(m, &out);
    xws_buf_add(&out, "", 1);
    const char *t = out.data;
    static const char *const want[] = {
        "xws_http_requests_total{resource=\"manage/entity\",act=\"list\",status=\"200\"} 3\n",
        "xws_http_requests_total{resource=\"manage/entity\",act=\"other\",status=\"other\"} 1\n",
        "xws_http_requests_total{resource=\"manage/entity\",act=\"default\",status=\"204\"} 1\n",
        "xws_http_requests_total{resource=\"none\",act=\"view\",status=\"404\"} 1\n",
        "xws_http_requests_total{resource=\"status\",act=\"default\",status=\"200\"} 1\n",
        "xws_http_request_duration_seconds_bucket{resource=\"manage/entity\",le=\"0.001000\"} 3\n",
        "xws_http_request_duration_seconds_bucket{resource=\"manage/entity\",le=\"0.025000\"} 3\n",
        "xws_http_request_duration_seconds_bucket{resource=\"manage/entity\",le=\"0.050000\"} 4\n",
        "xws_http_request_duration_seconds_bucket{resource=\"manage/entity\",le=\"10.000000\"} 4\n",
        "xws_http_request_duration_seconds_bucket{resource=\"manage/entity\",le=\"+Inf\"} 5\n",
        "xws_http_request_duration_seconds_count{resource=\"manage/entity\"} 5\n",
        "xws_auth_failures_total 2\n",
        "xws_auth_throttled_total 0\n",
        "# TYPE xws_http_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(t, want[i]) == NULL)
            fprintf(stderr, "gw_metrics: missing line: %s", want[i]);
        GW_CHECK(strstr(t, want[i]) != NULL);
    }
    GW_CHECK(strstr(t, "\"x") == NULL); /* a client's act never becomes a label */
    xws_buf_dispose(&out);
    gw_metrics_destroy(&m);
    gw_metrics_destroy(&m); /* NULL-safe */
    GW_CHECK(m == NULL);
}
