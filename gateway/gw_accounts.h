/*
 * gw_accounts - the gateway's copy of the web-service accounts: the `snapshot` of the config
 * service, and a cache of positive password verifications keyed by HMAC-SHA256(login \0 password)
 * under a random per-process key (each entry remembers the account's credential fingerprint
 * `cred`, so that an account change drops only the entries of that account).
 *
 * Owns the accounts, the cache and the key. No I/O: gw_refresh asks the config service for
 * snapshots and feeds them in; the authentication flow (gw_http) reads it. Calls gw_net only.
 */
#ifndef GW_ACCOUNTS_H
#define GW_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include "gw_net.h"

typedef struct gw_account {
    char *name, *login;
    char *cred; /* credential fingerprint of the snapshot ("" when the config service sends none) */
    int hostonly, disabled;
    gw_net_t *hosts; /* parsed host entries; unparsable ones are skipped with a warning */
    size_t nhosts;
    char **acl;
    size_t nacl;
} gw_account_t;

typedef struct gw_accounts gw_accounts_t;

/* A new, empty cache (no snapshot yet) with a fresh random HMAC key. Aborts on OOM. */
gw_accounts_t *gw_accounts_new(void);
/* NULL-safe; sets *self_p to NULL. */
void gw_accounts_destroy(gw_accounts_t **self_p);

/* 1 once a snapshot has been loaded, else 0. */
int gw_accounts_ready(const gw_accounts_t *self);
/* The version of the loaded snapshot (0 before the first). */
uint64_t gw_accounts_version(const gw_accounts_t *self);
/* Number of accounts in the snapshot. */
size_t gw_accounts_count(const gw_accounts_t *self);

/*
 * Replaces the accounts with the body of a `snapshot` 200 reply:
 * {"version": N, "accounts": [{"name", "login", "hostonly", "disabled", "hosts": [...], "acl": [...],
 * "cred"}]}. When the version differs from the loaded one, the verification cache keeps only the
 * entries whose account is still there with the same non-empty `cred`. Returns 0, or -1 (the old
 * snapshot is kept; *err says why) when the body does not have that shape.
 */
int gw_accounts_load(gw_accounts_t *self, const msgpack_object *body, const char **err);

/* The account called name, or NULL. Borrowed until the next load. */
const gw_account_t *gw_accounts_find(const gw_accounts_t *self, const char *name, size_t len);

/* The account whose login is login (exact; "" names none), or NULL. Borrowed until the next load. */
const gw_account_t *gw_accounts_by_login(const gw_accounts_t *self, const char *login);

/* The first enabled host-only account whose hosts contain addr, or NULL. */
const gw_account_t *gw_accounts_hostonly(const gw_accounts_t *self, const uint8_t addr[16]);

/* 1 when the account may call from addr: its host list is empty or contains addr. */
int gw_account_host_ok(const gw_account_t *acct, const uint8_t addr[16]);

/*
 * The verification cache. gw_accounts_cache_key computes the 32-byte HMAC-SHA256 of
 * login \0 password under the per-process key (one prepared context: call it from one thread, the
 * event loop's). cache_get returns the account remembered for that
 * key when it is still in the snapshot with the fingerprint (`cred`) it had when it was remembered,
 * else NULL (and forgets a stale entry); cache_put remembers acct (its name and cred) for the key
 * (bounded: the cache is emptied when full); cache_drop forgets one key; cache_count says how many
 * keys are remembered.
 */
void gw_accounts_cache_key(const gw_accounts_t *self, const char *login, const char *password, uint8_t key[32]);
const gw_account_t *gw_accounts_cache_get(gw_accounts_t *self, const uint8_t key[32]);
void gw_accounts_cache_put(gw_accounts_t *self, const uint8_t key[32], const gw_account_t *acct);
void gw_accounts_cache_drop(gw_accounts_t *self, const uint8_t key[32]);
/* Forgets every verified password of account name (its credentials changed after the snapshot). */
void gw_accounts_cache_forget(gw_accounts_t *self, const char *name);
size_t gw_accounts_cache_count(const gw_accounts_t *self);

/* Self-test: silent on success, aborts on failure. */
void gw_accounts_test(void);

#endif
