/*
 * gw_metrics - the gateway's request counters and their rendering in the Prometheus text format
 * (version 0.0.4) for GET /metrics.
 *
 * Owns the HTTP counters only: requests by resource, act and status, a latency histogram per
 * resource, and the authentication events. Everything else it renders is read at scrape time
 * from the modules that own it: the broker's per-service state and counts (workers, queues,
 * registrations, departures, re-dispatches, refusals, timeouts, and the figures the workers send
 * in their reports), the account snapshot, the readiness of gw_status. Labels come from fixed
 * tables (route paths, a list of acts, a list of statuses), so their number is bounded whatever
 * clients send. Called by gw_http (gw_req_send: one call per answered request), gw_authn (events)
 * and gw_status (rendering). No I/O.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>
#include "xws/proto.h"
#include "gw_route.h"

typedef struct gw_metrics gw_metrics_t;
struct gw_app; /* gw_app.h includes this header */

/* Authentication events (gw_authn). */
typedef enum {
    GW_AUTH_PASSWORD_CHECK = 0, /* a request needed a password check (not in the verification cache) */
    GW_AUTH_FAILURE = 1,        /* wrong or unusable credentials: a 401 that counts for the back-off */
    GW_AUTH_THROTTLED = 2,      /* a request answered 429 by the throttle, without a password check */
    GW_AUTH_NEVENTS = 3,
} gw_auth_event_t;

/* Empty counters; start_unix_ms is the process start (Unix ms). Aborts on OOM. */
gw_metrics_t *gw_metrics_new(uint64_t start_unix_ms);
/* NULL-safe; sets *self_p to NULL. */
void gw_metrics_destroy(gw_metrics_t **self_p);

/*
 * Counts one answered HTTP request: route (NULL: no route, a 404), its act (any bytes: an act
 * outside the known list counts as "other", "" as "default"), status and duration. NULL-safe on
 * self (module self-tests run without metrics).
 */
void gw_metrics_request(gw_metrics_t *self, const gw_route_t *route, xws_slice_t act, int status, uint64_t duration_us);

/* Counts one authentication event. NULL-safe on self. */
void gw_metrics_auth(gw_metrics_t *self, gw_auth_event_t ev);

/* Appends every metric of the gateway to out, in the Prometheus text format. */
void gw_metrics_render(gw_metrics_t *self, struct gw_app *app, xws_buf_t *out);

/* Self-test: counting and rendering (labels, bucket counts, cumulative histograms); aborts on failure. */
void gw_metrics_test(void);

#endif
