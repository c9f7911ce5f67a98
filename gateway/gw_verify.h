/*
 * gw_verify - the password checks (`account/verify`) at the verify service: threads of the config
 * process with a broker queue and credit of their own (PROTOCOL.md §8), so that a flood of checks
 * never waits in front of the data requests nor takes their workers. One check per
 * verification cache key at a time, shared by every request that presents the same credentials
 * while it runs; at most GW_VERIFY_MAX in flight, the others waiting in a FIFO (at most
 * GW_VERIFY_WAITING_MAX; more: refused). A check outlives the requests that leave (its answer still
 * fills the verification cache); one that nobody waits for any more is dropped before it is sent.
 * The password is wiped and freed once the check is sent, and wiped from the envelope buffers.
 *
 * The answer of a check: the account it names is looked up in app->accounts; when the snapshot
 * holds it with the credential the check answered and did not change while the check ran, the key
 * is remembered in the cache; a credential newer than the snapshot drops that account's cache
 * entries and asks gw_refresh for a snapshot. Each waiter is then called back once with its
 * result (gw_verify_result_t), taken off the check before the call.
 *
 * Owns the checks (heap) and their jobs at the broker; waiters are embedded in their owners.
 * Calls gw_broker, gw_accounts, gw_refresh and gw_app_rid; called by gw_http.
 */
#ifndef GW_VERIFY_H
#define GW_VERIFY_H

#include "gw_app.h"

#define GW_VERIFY_MAX 4            /* password checks in flight at the verify service at once */
#define GW_VERIFY_WAITING_MAX 4096 /* password checks waiting for a free slot; more: refused */

typedef struct gw_verify gw_verify_t;
typedef struct gw_verify_wait gw_verify_wait_t;

typedef enum {
    GW_VERIFY_OK = 0,      /* the password is right: acct (borrowed until the next snapshot load) */
    GW_VERIFY_REFUSED = 1, /* wrong login or password (401, 403, 404 from the config service): count a failure */
    GW_VERIFY_LATER = 2,   /* right for name/cred, which the snapshot does not hold yet: wait for a fresh one */
    GW_VERIFY_ERROR = 3,   /* no answer: status, code and message for the client */
} gw_verify_kind_t;

typedef struct {
    gw_verify_kind_t kind;
    const gw_account_t *acct;          /* GW_VERIFY_OK */
    const msgpack_object *name, *cred; /* GW_VERIFY_LATER: strings of the reply (cred may be NULL) */
    int status;                        /* GW_VERIFY_ERROR */
    const char *code, *message;        /* GW_VERIFY_ERROR */
} gw_verify_result_t;

/* A request waiting for a check, embedded in its owner. */
struct gw_verify_wait {
    void (*on_done)(gw_verify_wait_t *w, const gw_verify_result_t *res); /* set by the owner */
    uint64_t deadline_unix_ms; /* set by the owner: the check's envelope gets the latest */
    /* private */
    gw_verify_t *_verify; /* the check it waits for, or NULL */
    h2o_linklist_t _link; /* in the check's waiters */
};

/* The checks of app (app->broker, app->accounts, app->refresh); none yet. */
gw_verifier_t *gw_verifier_new(gw_app_t *app);

/* Forgets the checks still queued or in flight; their waiters, if any, are left alone (no callback). NULL-safe. */
void gw_verifier_destroy(gw_verifier_t **self_p);

/*
 * Makes w wait for the check of key (login/password, NUL-terminated; the password is copied only
 * when a check starts): joins the one in progress, or starts one, or queues it. Returns 0: w is
 * called back later, or from inside this call when a new check cannot be sent (GW_VERIFY_ERROR);
 * or -1 when too many checks wait already (w is untouched: answer 503). addr_text: the client,
 * for the envelope of a new check.
 */
int gw_verifier_check(gw_verifier_t *self, gw_verify_wait_t *w, const uint8_t key[32], const char *login, const char *password,
                      const char *addr_text);

/* 1 when a check of key is queued or in flight (a gw_verifier_check of key would join it), else 0. */
int gw_verifier_pending(gw_verifier_t *self, const uint8_t key[32]);

/* w stops waiting (answered elsewhere, timed out, or gone); no callback follows. Idempotent. */
void gw_verify_leave(gw_verify_wait_t *w);

/* Self-test: a fake config worker over inproc:// in a loop of its own; aborts on failure. */
void gw_verify_test(void);

#endif
