/*
 * gw_refresh - the gateway's account snapshot kept fresh: asks the config service for
 * `account/snapshot` (with `since` once one is loaded) every accounts_refresh_ms, or every 100 ms
 * while none is loaded, and on demand; loads each answer into app->accounts; logs only changes of
 * its outcome. It also parks requests whose password was verified for an account the snapshot does
 * not hold yet (or holds with an older credential) until a snapshot request sent after they were
 * parked has ended, then calls each back once (ok: a snapshot is loaded).
 *
 * Owns its job at the broker, its counters and the list of parked waiters (embedded in their
 * owners, h2o-style). Calls gw_broker, gw_accounts and gw_app_rid; called by gw_main (tick, stop)
 * and gw_http (waiters, on-demand refresh).
 */
#ifndef GW_REFRESH_H
#define GW_REFRESH_H

#include "gw_app.h"

typedef struct gw_refresh_wait gw_refresh_wait_t;

/* A parked request, embedded in its owner. ok: 1 when a fresh snapshot is loaded, 0 when none could be had. */
struct gw_refresh_wait {
    void (*on_done)(gw_refresh_wait_t *w, int ok); /* set by the owner */
    /* private */
    h2o_linklist_t _link;
    uint64_t _need; /* the snapshot request whose end it waits for */
};

/* A refresher of app->accounts through app->broker; nothing is sent until gw_refresh_now or a tick. */
gw_refresh_t *gw_refresh_new(gw_app_t *app);

/* Cancels the request in flight and forgets the parked waiters (no callback). NULL-safe; sets *self_p to NULL. */
void gw_refresh_destroy(gw_refresh_t **self_p);

/* Asks for a snapshot now unless one is in flight or the gateway is stopping. */
void gw_refresh_now(gw_refresh_t *self);

/* Periodic work: asks when the period passed (or 100 ms while no snapshot is loaded). Call it from the tick. */
void gw_refresh_tick(gw_refresh_t *self);

/* Loop time (ms) of the last snapshot answer from the config service that loaded or confirmed
 * (304) the accounts: the config worker read them from Redis then. 0 before the first. */
uint64_t gw_refresh_last_ok(const gw_refresh_t *self);

/* Withdraws the request in flight, if any (the gateway is stopping). */
void gw_refresh_stop(gw_refresh_t *self);

/*
 * Parks w until a snapshot request sent after this call has ended; w->on_done is then called
 * once, unless gw_refresh_unwait comes first. w must not be parked already.
 */
void gw_refresh_wait(gw_refresh_t *self, gw_refresh_wait_t *w);

/* Unparks w (no callback). Idempotent; w must have been zeroed or parked before. */
void gw_refresh_unwait(gw_refresh_wait_t *w);

/* Self-test: a fake config worker over inproc:// in a loop of its own; aborts on failure. */
void gw_refresh_test(void);

#endif
