/*
 * gw_backoff - the back-off of failed authentications: a table of failure counts per (client
 * address, login) and per client address, each in a window of GW_BACKOFF_WINDOW_MS from its first
 * failure. A request that needs a password check is delayed by GW_BACKOFF_DELAY_MS when its
 * (address, login) has GW_BACKOFF_DELAY_AFTER failures in the window, or when its address has
 * GW_BACKOFF_ADDR_DELAY_AFTER failures (all logins together: one address cannot guess at full speed
 * by cycling logins). After the delay it is checked as usual: a right password still succeeds, so
 * an attacker cannot lock a legitimate client out. Known-good credentials (cache hits) are never
 * delayed: the caller does not ask. login is the login of the attempt ("" when the credentials
 * were unreadable); it is kept only as a truncated HMAC under a random per-process key.
 *
 * Owns its table and key; no I/O, no clock of its own (the caller passes the loop's ms).
 */
#ifndef GW_BACKOFF_H
#define GW_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define GW_BACKOFF_WINDOW_MS 60000
#define GW_BACKOFF_DELAY_AFTER 5
#define GW_BACKOFF_ADDR_DELAY_AFTER 50
#define GW_BACKOFF_DELAY_MS 1000

typedef enum {
    GW_BACKOFF_NONE = 0,  /* go ahead */
    GW_BACKOFF_DELAY = 1, /* wait GW_BACKOFF_DELAY_MS, then check */
} gw_backoff_verdict_t;

typedef struct gw_backoff gw_backoff_t;

/* An empty table with a fresh random key. Aborts on OOM or without randomness. */
gw_backoff_t *gw_backoff_new(void);
/* NULL-safe; sets *self_p to NULL. */
void gw_backoff_destroy(gw_backoff_t **self_p);

/* Whether an attempt of login from addr goes ahead or waits first. */
gw_backoff_verdict_t gw_backoff_check(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);

/* Counts a failed attempt of login from addr (bounded table: when it is full of live entries, not counted). */
void gw_backoff_fail(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);

/* Forgets expired entries now. */
void gw_backoff_sweep(gw_backoff_t *self, uint64_t now_ms);

/* Periodic work: sweeps when GW_BACKOFF_WINDOW_MS passed since the last sweep. Call it from the tick. */
void gw_backoff_tick(gw_backoff_t *self, uint64_t now_ms);

/* Self-test: silent on success, aborts on failure. */
void gw_backoff_test(void);

#endif
