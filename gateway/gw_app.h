/*
 * gw_app - what one gateway process shares between its modules: settings, the h2o context and
 * its timeouts, the handles of the modules (each owns its own state), request ids, and the life
 * of the process. One instance, owned by gw_main; no module keeps another module's state here.
 */
#ifndef GW_APP_H
#define GW_APP_H

#include <stddef.h>
#include <stdint.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include "gw_accounts.h"
#include "gw_backoff.h"
#include "gw_broker.h"
#include "gw_cache.h"
#include "gw_log.h"
#include "gw_metrics.h"

typedef struct gw_conns gw_conns_t;
typedef struct gw_internal gw_internal_t;
typedef struct gw_refresh gw_refresh_t;
typedef struct gw_verifier gw_verifier_t;
typedef struct gw_zap gw_zap_t;

typedef struct gw_app {
    /* settings */
    uint64_t deadline_ms;         /* per request */
    uint64_t accounts_refresh_ms; /* snapshot period */
    size_t max_body;              /* bytes; 413 above */
    size_t max_query;             /* bytes; 414 above */
    char instance[17];            /* 16 hex digits: the rid prefix of this process */
    uint64_t rid_counter;         /* the rid suffix */

    /* h2o */
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_loop_t *loop;
    h2o_timeout_t request_timeout; /* deadline_ms from the arrival of an HTTP request: 504 */

    /* modules */
    gw_broker_t *broker;
    gw_accounts_t *accounts;
    gw_backoff_t *backoff;
    gw_log_t *log;
    gw_internal_t *internal;
    gw_refresh_t *refresh;   /* the account snapshot kept fresh (gw_refresh.h) */
    gw_verifier_t *verifier; /* password checks at the config service (gw_verify.h) */
    gw_metrics_t *metrics;   /* request counters for /metrics (gw_metrics.h) */
    gw_conns_t *conns;       /* the accepted connections and the HTTP/2 bounds (gw_conns.h) */
    gw_zap_t *zap;           /* the CURVE guard of the ZeroMQ endpoints, NULL without CURVE (gw_zap.h) */
    gw_cache_t *cache;       /* read answers kept by entity tag, NULL when reply_cache_bytes is 0 (gw_cache.h) */

    /* life */
    size_t nrequests; /* HTTP requests alive */
    int stopping;     /* 1 once SIGTERM/SIGINT arrived */
} gw_app_t;

/* Writes a fresh request id "<instance>-<counter>" into buf (≥ XWS_MAX_RID + 1 bytes). */
void gw_app_rid(gw_app_t *app, char *buf, size_t size);

/* The message of a 503 for a gw_broker_submit result rc (GW_SUBMIT_FULL or another failure) for service, into buf. */
void gw_app_submit_error(int rc, const char *service, char *buf, size_t size);

/* Wall-clock Unix time in milliseconds (for envelope deadlines). */
uint64_t gw_app_unix_ms(void);

#endif
