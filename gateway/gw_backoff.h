/*
 * gw_backoff - the throttle of password guessing: failure counts with an exponential back-off,
 * and a bound on the password checks one source runs at once.
 *
 * A source is a client address, an IPv6 one taken per /64 (one host usually holds a whole /64);
 * IPv4 and IPv4-mapped addresses count per address. Failures (wrong credentials) are counted under
 * three keys: (source, login), source (every login together: cycling logins does not help) and
 * login (every source together: a botnet spread over many addresses is slowed per account). Each
 * key has its free failures (GW_BACKOFF_*_FREE); from the last free one on, each failure locks the
 * key for GW_BACKOFF_BASE_MS, doubled by each further failure, at most GW_BACKOFF_CAP_MS. An
 * attempt that needs a password check while one of its keys is locked is refused (the caller
 * answers 429 with Retry-After) without any check: it costs the gateway a hash lookup. A key is
 * forgotten GW_BACKOFF_FORGET_MS after its last failure. A source may have at most
 * GW_BACKOFF_INFLIGHT_MAX password checks of its own started and not yet answered; a request that
 * joins an identical check in progress takes no slot.
 *
 * Known-good credentials (verification cache hits) are never throttled: the caller does not ask.
 * login is the login of the attempt ("" when the credentials were unreadable); it is kept only as
 * a truncated HMAC under a random per-process key.
 *
 * Owns its table and key; no I/O, no clock of its own (the caller passes the loop's ms). Called by
 * gw_authn; gw_backoff_stats is for the metrics.
 */
#ifndef GW_BACKOFF_H
#define GW_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define GW_BACKOFF_PAIR_FREE 5        /* failures of one login from one source before the back-off */
#define GW_BACKOFF_SOURCE_FREE 20     /* failures of all logins from one source */
#define GW_BACKOFF_LOGIN_FREE 50      /* failures of one login from all sources */
#define GW_BACKOFF_BASE_MS 1000       /* the lock after the last free failure; doubled by each further one */
#define GW_BACKOFF_CAP_MS 60000       /* the longest lock */
#define GW_BACKOFF_FORGET_MS 600000   /* a key is forgotten this long after its last failure */
#define GW_BACKOFF_INFLIGHT_MAX 4     /* password checks one source has started and not yet seen answered */
#define GW_BACKOFF_MAX_ENTRIES 131072 /* keys in the table; beyond, new failures are not counted */

typedef struct gw_backoff gw_backoff_t;

/* What the throttle did since the start, and holds now (for the metrics). */
typedef struct {
    uint64_t checks;      /* password checks let through (gw_backoff_enter that took a slot) */
    uint64_t failures;    /* failed attempts counted */
    uint64_t locked;      /* attempts refused because a key was locked (429) */
    uint64_t busy;        /* attempts refused because their source had GW_BACKOFF_INFLIGHT_MAX checks running (429) */
    uint64_t not_counted; /* failures not counted: the table was full of live keys */
    size_t entries;       /* keys in the table */
    size_t inflight;      /* password checks running, all sources */
} gw_backoff_stats_t;

/* An empty table with a fresh random key. Aborts on OOM or without randomness. */
gw_backoff_t *gw_backoff_new(void);
/* NULL-safe; sets *self_p to NULL. */
void gw_backoff_destroy(gw_backoff_t **self_p);

/*
 * Whether an attempt of login from addr may have its password checked now: 0, or the ms left
 * until its most locked key opens (the attempt is refused; counted in stats.locked). On 0, each
 * of its keys past its free failures is locked again at once for the lock its next failure would
 * bring: one attempt per lock period, however many arrive together.
 */
uint64_t gw_backoff_wait(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);

/*
 * Takes one of the GW_BACKOFF_INFLIGHT_MAX check slots of addr's source: 0, or -1 when they are
 * all taken (the attempt is refused; counted in stats.busy). Every 0 is paired with one
 * gw_backoff_leave of the same addr when the check's answer came or the request went away.
 */
int gw_backoff_enter(gw_backoff_t *self, const uint8_t addr[16], uint64_t now_ms);
void gw_backoff_leave(gw_backoff_t *self, const uint8_t addr[16], uint64_t now_ms);

/* Counts a failed attempt of login from addr under its three keys (a full table: not counted). */
void gw_backoff_fail(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);

/* The lock a key gets at its n-th failure when free failures are free: 0 below, then
 * GW_BACKOFF_BASE_MS doubled per failure beyond, at most GW_BACKOFF_CAP_MS. */
uint64_t gw_backoff_lock_ms(unsigned n, unsigned free);

/* Forgets expired keys now. */
void gw_backoff_sweep(gw_backoff_t *self, uint64_t now_ms);

/* Periodic work: sweeps once a minute. Call it from the tick. */
void gw_backoff_tick(gw_backoff_t *self, uint64_t now_ms);

/* Counters and sizes into *out. */
void gw_backoff_stats(const gw_backoff_t *self, gw_backoff_stats_t *out);

/* Self-test: silent on success, aborts on failure. */
void gw_backoff_test(void);

#endif
