/*
 * gw_req - the state of one HTTP request, shared by gw_http (answering, dispatch, the handler) and
 * gw_authn (the authentication flow), and the calls gw_authn makes back into gw_http. Private to
 * those two files and gw_status (the gateway's own routes). The state lives in the request's pool; h2o frees it with the request.
 */
#ifndef GW_REQ_H
#define GW_REQ_H

#include "xws/proto.h"
#include "gw_app.h"
#include "gw_conns.h"
#include "gw_refresh.h"
#include "gw_route.h"
#include "gw_verify.h"

#define MAX_CRED 1025 /* bytes of a login or a password, with the NUL (the account tool accepts passwords of 1-1024 bytes) */

typedef enum {
    PH_START = 0,   /* checks, authentication */
    PH_VERIFY = 2,  /* password check at the config service */
    PH_WORKER = 3,  /* the request at its service */
    PH_DONE = 4,    /* answered */
    PH_REFRESH = 5, /* password verified; waiting for a snapshot that holds the account as verified */
} phase_t;

/* Per-request state, in the request's pool; h2o calls s_on_freed when the request goes away. */
typedef struct {
    gw_app_t *app;
    h2o_req_t *req;
    gw_conn_t *conn; /* its tracked connection (gw_conns), NULL when none */
    phase_t phase;
    const gw_route_t *route;
    gw_mode_t mode;
    uint64_t t0_us;
    uint8_t addr[16];
    char addr_text[48];
    xws_slice_t path; /* raw path, without the query and the fragment */
    xws_kv_t *params;
    size_t nparams;
    xws_slice_t act;
    const char *account; /* pool copy of the account name, "" until known */
    char login[MAX_CRED], password[MAX_CRED];
    uint8_t ckey[32];             /* verification cache key */
    int slot;                     /* 1 while it holds a password-check slot of its source (gw_backoff_enter) */
    gw_verify_wait_t vwait;       /* the password check it waits for (PH_VERIFY) */
    gw_job_t job;                 /* the request at its service (PH_WORKER) */
    h2o_timeout_entry_t deadline; /* arrival + deadline_ms, whatever phase the request is in */
    uint64_t deadline_unix_ms;    /* the same instant as Unix time, for the envelope */
    gw_refresh_wait_t rwait;      /* parked until a fresh snapshot (PH_REFRESH) */
    xws_slice_t vname, vcred;     /* PH_REFRESH: the account and credential fingerprint the check answered (pool) */
    h2o_iovec_t cache_key;        /* its identity in the answer cache (gw_cache.h; pool), empty when it has none */
    h2o_iovec_t cache_etag;       /* the answer kept for it when dispatched, and its tag (pool; */
    h2o_iovec_t cache_body;       /* cache_body.base NULL when none) */
} gw_req_t;

/*
 * The one exit of every request: status, optional JSON body (copied), the version header, the
 * access-log line. r must not be touched afterwards (h2o may free the request at any time).
 */
void gw_req_send(gw_req_t *r, int status, const char *body, size_t len);

/* An answer without a body (401 with its WWW-Authenticate, 403, 404, the 200 of check...). */
void gw_req_send_empty(gw_req_t *r, int status);

/* An error answer with the JSON body of PROTOCOL.md §9. */
void gw_req_send_error(gw_req_t *r, int status, const char *code, const char *field, const char *message);

/* The 503 of a refused gw_broker_submit (result rc) for service. */
void gw_req_send_submit_error(gw_req_t *r, int rc, const char *service);

/* Sends r (authorized, or private) to its service: body checks, envelope, broker; answers on failure. */
void gw_req_dispatch(gw_req_t *r);

#endif
