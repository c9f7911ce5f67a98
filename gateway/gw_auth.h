/*
 * gw_auth - what the gateway knows about web-service accounts and how it decides who may call:
 *   - gw_net: IPv4/IPv6 addresses and CIDR networks (IPv4 is held as IPv4-mapped IPv6, so a client
 *     at ::ffff:a.b.c.d matches IPv4 entries);
 *   - gw_acl_allows: the ACL rule of spec §2.1;
 *   - gw_basic_parse: the HTTP Basic credentials of an Authorization header;
 *   - gw_accounts: the in-memory copy of the accounts (the `snapshot` of the config service), a
 *     cache of positive password verifications keyed by HMAC-SHA256(login \0 password) under a
 *     random per-process key (each entry remembers the account's credential fingerprint `cred`,
 *     so that an account change drops only the entries of that account), and the back-off of
 *     failed attempts per (address, login) and per address.
 * No I/O here: the HTTP layer asks the config service and feeds the answers in.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <msgpack.h>

/* ---- addresses and networks ----------------------------------------------------------------- */

typedef struct {
    uint8_t addr[16]; /* IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d) */
    unsigned prefix;  /* 0-128 bits */
} gw_net_t;

/*
 * Parses "a.b.c.d", "a.b.c.d/n" (0-32), an IPv6 address or "v6/n" (0-128) into *net; bits beyond
 * the prefix are cleared. Returns 0, or -1 for anything else (host names are not resolved).
 */
int gw_net_parse(const char *s, size_t len, gw_net_t *net);

/* 1 when the 16-byte address lies inside net, else 0. */
int gw_net_contains(const gw_net_t *net, const uint8_t addr[16]);

/*
 * Turns a peer address into the 16-byte form (IPv4 → IPv4-mapped) and its text (IPv4-mapped IPv6
 * is written as plain IPv4), text of at least 48 bytes. Returns 0, or -1 for another family.
 */
int gw_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint8_t addr[16], char *text, size_t textlen);

/* 1 for 127.0.0.1, ::1 and ::ffff:127.0.0.1, else 0 (private mode). */
int gw_addr_is_private_ok(const uint8_t addr[16]);

/* ---- ACL and credentials --------------------------------------------------------------------- */

/*
 * 1 when one entry of acl (n NUL-terminated strings) grants path: the entry is "*", equals path,
 * or is a prefix of path that ends at a '/' boundary (the entry ends with '/', or path continues
 * with '/'). An empty list grants nothing.
 */
int gw_acl_allows(char *const *acl, size_t n, const char *path);

/*
 * Parses the value of an Authorization header. Returns 1 with login/password (NUL-terminated,
 * in the caller's buffers of size lsize/psize) for a well-formed "Basic <base64(login:password)>"
 * whose decoded text holds no NUL byte, 0 when the header is absent (hdr NULL or empty),
 * -1 when it is present but not usable (another scheme, bad base64, no ':', too long): the
 * caller treats -1 as wrong credentials.
 */
int gw_basic_parse(const char *hdr, size_t len, char *login, size_t lsize, char *password, size_t psize);

/* ---- the account cache ------------------------------------------------------------------------ */

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

/* The first enabled host-only account whose hosts contain addr, or NULL. */
const gw_account_t *gw_accounts_hostonly(const gw_accounts_t *self, const uint8_t addr[16]);

/* 1 when the account may call from addr: its host list is empty or contains addr. */
int gw_account_host_ok(const gw_account_t *acct, const uint8_t addr[16]);

/*
 * The verification cache. gw_accounts_cache_key computes the 32-byte HMAC-SHA256 of
 * login \0 password under the per-process key. cache_get returns the account remembered for that
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

/*
 * Back-off of failed authentications, counted per (client address, login) and per client address,
 * each in a window of GW_BACKOFF_WINDOW_MS from its first failure. A request that needs a password
 * check is delayed by GW_BACKOFF_DELAY_MS when its (address, login) has GW_BACKOFF_DELAY_AFTER
 * failures in the window, or when its address has GW_BACKOFF_ADDR_DELAY_AFTER failures (all
 * logins together: one address cannot guess at full speed by cycling logins). After the delay it
 * is checked as usual: a right password still succeeds, so an attacker cannot lock a legitimate
 * client out. Known-good credentials (cache hits) are never delayed. login is the login of the
 * attempt ("" when the credentials were unreadable).
 */
#define GW_BACKOFF_WINDOW_MS 60000
#define GW_BACKOFF_DELAY_AFTER 5
#define GW_BACKOFF_ADDR_DELAY_AFTER 50
#define GW_BACKOFF_DELAY_MS 1000

typedef enum {
    GW_BACKOFF_NONE = 0,  /* go ahead */
    GW_BACKOFF_DELAY = 1, /* wait GW_BACKOFF_DELAY_MS, then check */
} gw_backoff_t;

gw_backoff_t gw_accounts_backoff(gw_accounts_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);
void gw_accounts_fail(gw_accounts_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms);
/* Forgets expired back-off entries (call it now and then). */
void gw_accounts_backoff_sweep(gw_accounts_t *self, uint64_t now_ms);

/* Self-test: silent on success, aborts on failure. */
void gw_auth_test(void);

#endif
