/* gw_backoff.c - the throttle of password guessing (see gw_backoff.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "gw_backoff.h"
#include "gw_check.h"
#include "gw_net.h"

#define BACKOFF_BUCKETS 4096
#define SWEEP_EVERY_MS 60000

typedef enum { K_PAIR = 1, K_SOURCE = 2, K_LOGIN = 3 } kind_t;

/* One key: (source, login), source, or login. */
typedef struct bentry {
    uint8_t kind;
    uint8_t src[16];   /* the source (K_PAIR, K_SOURCE), else zero */
    uint8_t lkey[16];  /* truncated HMAC of the login (K_PAIR, K_LOGIN), else zero */
    unsigned failures; /* since the key was created */
    uint64_t last;     /* loop ms of the last failure (of the creation while there is none) */
    uint64_t until;    /* locked until then (loop ms) */
    unsigned inflight; /* K_SOURCE: checks running */
    struct bentry *next;
} bentry_t;

struct gw_backoff {
    uint8_t hmac_key[32];
    bentry_t *table[BACKOFF_BUCKETS];
    size_t count;
    uint64_t last_sweep; /* loop ms of the last sweep (gw_backoff_tick) */
    gw_backoff_stats_t stats;
};

static void *s_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL)
        abort();
    return p;
}

gw_backoff_t *gw_backoff_new(void)
{
    gw_backoff_t *self = s_xcalloc(1, sizeof(*self));
    if (RAND_bytes(self->hmac_key, sizeof(self->hmac_key)) != 1)
        abort(); /* no randomness: nothing sensible can follow */
    return self;
}

void gw_backoff_destroy(gw_backoff_t **self_p)
{
    assert(self_p != NULL);
    gw_backoff_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t b = 0; b < BACKOFF_BUCKETS; b++)
        while (self->table[b] != NULL) {
            bentry_t *e = self->table[b];
            self->table[b] = e->next;
            free(e);
        }
    OPENSSL_cleanse(self->hmac_key, sizeof(self->hmac_key));
    free(self);
    *self_p = NULL;
}

uint64_t gw_backoff_lock_ms(unsigned n, unsigned free)
{
    if (n < free)
        return 0;
    unsigned shift = n - free;
    if (shift >= 16) /* far beyond the cap: no overflow */
        return GW_BACKOFF_CAP_MS;
    uint64_t ms = (uint64_t)GW_BACKOFF_BASE_MS << shift;
    return ms < GW_BACKOFF_CAP_MS ? ms : GW_BACKOFF_CAP_MS;
}

/* The source of a client address: IPv4 (and IPv4-mapped) as is, IPv6 cut to its /64. */
static void s_source(const uint8_t addr[16], uint8_t src[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(src, addr, 16);
    if (memcmp(addr, v4mapped, 12) != 0)
        memset(src + 8, 0, 8);
}

/* The login's part of a key: a truncated HMAC under the per-process key (no collisions to aim at). */
static void s_login_key(const gw_backoff_t *self, const char *login, uint8_t lkey[16])
{
    uint8_t full[32];
    unsigned int outlen = 32;
    const unsigned char *l = (const unsigned char *)(login != NULL ? login : "");
    if (HMAC(EVP_sha256(), self->hmac_key, sizeof(self->hmac_key), l, strlen((const char *)l), full, &outlen) == NULL)
        abort();
    memcpy(lkey, full, 16);
}

static size_t s_bucket(uint8_t kind, const uint8_t src[16], const uint8_t lkey[16])
{
    size_t h = 1469598103934665603ull ^ kind;
    for (int i = 0; i < 16; i++)
        h = (h ^ src[i]) * 1099511628211ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ lkey[i]) * 1099511628211ull;
    return h % BACKOFF_BUCKETS;
}

static int s_expired(const bentry_t *e, uint64_t now_ms)
{
    return e->inflight == 0 && (e->failures == 0 || now_ms - e->last >= GW_BACKOFF_FORGET_MS);
}

/* The key's entry (expired ones are forgotten on the way), or NULL. */
static bentry_t *s_find(gw_backoff_t *self, uint8_t kind, const uint8_t src[16], const uint8_t lkey[16], uint64_t now_ms)
{
    for (bentry_t **pp = &self->table[s_bucket(kind, src, lkey)]; *pp != NULL; pp = &(*pp)->next) {
        bentry_t *e = *pp;
        if (e->kind != kind || memcmp(e->src, src, 16) != 0 || memcmp(e->lkey, lkey, 16) != 0)
            continue;
        if (s_expired(e, now_ms)) {
            *pp = e->next;
            free(e);
            self->count--;
            return NULL;
        }
        return e;
    }
    return NULL;
}

/* The key's entry, created when missing; NULL when the table is full of live keys. */
static bentry_t *s_get(gw_backoff_t *self, uint8_t kind, const uint8_t src[16], const uint8_t lkey[16], uint64_t now_ms)
{
    bentry_t *e = s_find(self, kind, src, lkey, now_ms);
    if (e != NULL)
        return e;
    if (self->count >= GW_BACKOFF_MAX_ENTRIES)
        gw_backoff_sweep(self, now_ms);
    if (self->count >= GW_BACKOFF_MAX_ENTRIES)
        return NULL;
    e = s_xcalloc(1, sizeof(*e));
    e->kind = kind;
    memcpy(e->src, src, 16);
    memcpy(e->lkey, lkey, 16);
    e->last = now_ms;
    size_t b = s_bucket(kind, src, lkey);
    e->next = self->table[b];
    self->table[b] = e;
    self->count++;
    return e;
}

/* The three keys of an attempt. */
typedef struct {
    uint8_t src[16], lkey[16];
} keys_t;

static const uint8_t s_zero[16];

static void s_keys(const gw_backoff_t *self, const uint8_t addr[16], const char *login, keys_t *k)
{
    s_source(addr, k->src);
    s_login_key(self, login, k->lkey);
}

static uint64_t s_left(const bentry_t *e, uint64_t now_ms)
{
    return e != NULL && e->until > now_ms ? e->until - now_ms : 0;
}

uint64_t gw_backoff_wait(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
{
    keys_t k;
    s_keys(self, addr, login, &k);
    bentry_t *e[3] = {s_find(self, K_PAIR, k.src, k.lkey, now_ms), s_find(self, K_SOURCE, k.src, s_zero, now_ms),
                      s_find(self, K_LOGIN, s_zero, k.lkey, now_ms)};
    static const unsigned free[3] = {GW_BACKOFF_PAIR_FREE, GW_BACKOFF_SOURCE_FREE, GW_BACKOFF_LOGIN_FREE};
    uint64_t left = 0;
    for (int i = 0; i < 3; i++)
        if (s_left(e[i], now_ms) > left)
            left = s_left(e[i], now_ms);
    if (left > 0) {
        self->stats.locked++;
        return left;
    }
    /* the attempt goes ahead: a key past its free failures is locked again at once, for the lock
     * its next failure would bring, so that parallel attempts cannot all pass an open lock */
    for (int i = 0; i < 3; i++)
        if (e[i] != NULL && e[i]->failures >= free[i])
            e[i]->until = now_ms + gw_backoff_lock_ms(e[i]->failures + 1, free[i]);
    return 0;
}

int gw_backoff_enter(gw_backoff_t *self, const uint8_t addr[16], uint64_t now_ms)
{
    uint8_t src[16];
    s_source(addr, src);
    bentry_t *e = s_get(self, K_SOURCE, src, s_zero, now_ms);
    if (e != NULL && e->inflight >= GW_BACKOFF_INFLIGHT_MAX) {
        self->stats.busy++;
        return -1;
    }
    if (e != NULL) /* a full table: the check goes unbounded rather than refused (the locks still hold) */
        e->inflight++;
    else
        self->stats.not_counted++;
    self->stats.checks++;
    self->stats.inflight++;
    return 0;
}

void gw_backoff_leave(gw_backoff_t *self, const uint8_t addr[16], uint64_t now_ms)
{
    uint8_t src[16];
    s_source(addr, src);
    assert(self->stats.inflight > 0);
    self->stats.inflight--;
    bentry_t *e = s_find(self, K_SOURCE, src, s_zero, now_ms);
    if (e != NULL && e->inflight > 0)
        e->inflight--;
}

static void s_count(gw_backoff_t *self, uint8_t kind, const uint8_t src[16], const uint8_t lkey[16], unsigned free, uint64_t now_ms)
{
    bentry_t *e = s_get(self, kind, src, lkey, now_ms);
    if (e == NULL) {
        self->stats.not_counted++;
        return; /* table full of live keys: those clients are already being slowed down */
    }
    if (e->failures < UINT32_MAX)
        e->failures++;
    e->last = now_ms;
    uint64_t lock = gw_backoff_lock_ms(e->failures, free);
    if (lock > 0 && now_ms + lock > e->until)
        e->until = now_ms + lock;
}

void gw_backoff_fail(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
{
    keys_t k;
    s_keys(self, addr, login, &k);
    self->stats.failures++;
    s_count(self, K_PAIR, k.src, k.lkey, GW_BACKOFF_PAIR_FREE, now_ms);
    s_count(self, K_SOURCE, k.src, s_zero, GW_BACKOFF_SOURCE_FREE, now_ms);
    s_count(self, K_LOGIN, s_zero, k.lkey, GW_BACKOFF_LOGIN_FREE, now_ms);
}

void gw_backoff_sweep(gw_backoff_t *self, uint64_t now_ms)
{
    for (size_t b = 0; b < BACKOFF_BUCKETS; b++) {
        bentry_t **pp = &self->table[b];
        while (*pp != NULL) {
            bentry_t *e = *pp;
            if (s_expired(e, now_ms)) {
                *pp = e->next;
                free(e);
                self->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void gw_backoff_tick(gw_backoff_t *self, uint64_t now_ms)
{
    if (now_ms - self->last_sweep >= SWEEP_EVERY_MS) {
        gw_backoff_sweep(self, now_ms);
        self->last_sweep = now_ms;
    }
}

void gw_backoff_stats(const gw_backoff_t *self, gw_backoff_stats_t *out)
{
    *out = self->stats;
    out->entries = self->count;
}

/* ---- self-test -------------------------------------------------------------------------------- */

static void s_addr(const char *text, uint8_t out[16])
{
    gw_net_t n;
    GW_CHECK(gw_net_parse(text, strlen(text), &n) == 0 && n.prefix == 128);
    memcpy(out, n.addr, 16);
}

void gw_backoff_test(void)
{
    /* the curve: free failures, then doubling from the base up to the cap */
    GW_CHECK(gw_backoff_lock_ms(4, 5) == 0 && gw_backoff_lock_ms(5, 5) == GW_BACKOFF_BASE_MS);
    GW_CHECK(gw_backoff_lock_ms(6, 5) == 2 * GW_BACKOFF_BASE_MS && gw_backoff_lock_ms(8, 5) == 8 * GW_BACKOFF_BASE_MS);
    GW_CHECK(gw_backoff_lock_ms(40, 5) == GW_BACKOFF_CAP_MS && gw_backoff_lock_ms(UINT32_MAX, 5) == GW_BACKOFF_CAP_MS);

    gw_backoff_t *bo = gw_backoff_new();
    uint8_t a[16], b[16];
    gw_backoff_stats_t st;
    uint64_t t = 1000000;
    /* (source, login): free failures, then locked with a growing lock; another login is not */
    s_addr("192.0.2.1", a);
    for (int i = 0; i < GW_BACKOFF_PAIR_FREE - 1; i++)
        gw_backoff_fail(bo, a, "admin", t);
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t) == 0);
    gw_backoff_fail(bo, a, "admin", t);
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + 1) == GW_BACKOFF_BASE_MS - 1);
    GW_CHECK(gw_backoff_wait(bo, a, "other", t + 1) == 0);
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + GW_BACKOFF_BASE_MS) == 0); /* the lock is over: one more try */
    /* ... and one only: a parallel attempt finds the key locked again while that one runs */
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + GW_BACKOFF_BASE_MS) == 2 * GW_BACKOFF_BASE_MS);
    gw_backoff_fail(bo, a, "admin", t + GW_BACKOFF_BASE_MS);
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + GW_BACKOFF_BASE_MS) == 2 * GW_BACKOFF_BASE_MS);
    /* forgotten GW_BACKOFF_FORGET_MS after the last failure */
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + GW_BACKOFF_BASE_MS + GW_BACKOFF_FORGET_MS) == 0);
    gw_backoff_fail(bo, a, "admin", t + GW_BACKOFF_BASE_MS + GW_BACKOFF_FORGET_MS);
    GW_CHECK(gw_backoff_wait(bo, a, "admin", t + GW_BACKOFF_BASE_MS + GW_BACKOFF_FORGET_MS) == 0);

    /* an IPv6 source is its /64: another address of it shares the keys, another /64 does not */
    t += 2 * GW_BACKOFF_FORGET_MS;
    s_addr("2001:db8:1:2::1", a);
    for (int i = 0; i < GW_BACKOFF_PAIR_FREE; i++)
        gw_backoff_fail(bo, a, "admin", t);
    s_addr("2001:db8:1:2:ffff:1:2:3", b);
    GW_CHECK(gw_backoff_wait(bo, b, "admin", t) == GW_BACKOFF_BASE_MS);
    s_addr("2001:db8:1:3::1", b);
    GW_CHECK(gw_backoff_wait(bo, b, "admin", t) == 0);
    /* IPv4 counts per address */
    s_addr("192.0.2.77", a);
    for (int i = 0; i < GW_BACKOFF_PAIR_FREE; i++)
        gw_backoff_fail(bo, a, "admin", t);
    s_addr("192.0.2.78", b);
    GW_CHECK(gw_backoff_wait(bo, b, "admin", t) == 0);

    /* cycling logins from one source: the source key locks every login of it */
    s_addr("192.0.2.9", a);
    char lg[32];
    for (int i = 0; i < GW_BACKOFF_SOURCE_FREE; i++) {
        snprintf(lg, sizeof(lg), "user%d", i);
        GW_CHECK(gw_backoff_wait(bo, a, "fresh", t) == 0);
        gw_backoff_fail(bo, a, lg, t);
    }
    GW_CHECK(gw_backoff_wait(bo, a, "fresh", t) == GW_BACKOFF_BASE_MS);
    /* one login from many sources: the login key locks it everywhere */
    t += 2 * GW_BACKOFF_FORGET_MS;
    for (int i = 0; i < GW_BACKOFF_LOGIN_FREE; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        s_addr(ip, a);
        gw_backoff_fail(bo, a, "root", t);
    }
    s_addr("203.0.113.1", b);
    GW_CHECK(gw_backoff_wait(bo, b, "root", t) == GW_BACKOFF_BASE_MS && gw_backoff_wait(bo, b, "admin", t) == 0);

    /* at most GW_BACKOFF_INFLIGHT_MAX checks per source at once; another source is not bound by them */
    s_addr("192.0.2.50", a);
    for (int i = 0; i < GW_BACKOFF_INFLIGHT_MAX; i++)
        GW_CHECK(gw_backoff_enter(bo, a, t) == 0);
    GW_CHECK(gw_backoff_enter(bo, a, t) == -1);
    GW_CHECK(gw_backoff_enter(bo, b, t) == 0);
    gw_backoff_leave(bo, b, t);
    gw_backoff_sweep(bo, t + 10 * GW_BACKOFF_FORGET_MS); /* a source with checks running is kept */
    GW_CHECK(gw_backoff_enter(bo, a, t) == -1);
    gw_backoff_leave(bo, a, t);
    GW_CHECK(gw_backoff_enter(bo, a, t) == 0);
    for (int i = 0; i < GW_BACKOFF_INFLIGHT_MAX; i++)
        gw_backoff_leave(bo, a, t);
    gw_backoff_stats(bo, &st);
    GW_CHECK(st.inflight == 0 && st.busy == 2 && st.checks == GW_BACKOFF_INFLIGHT_MAX + 2);
    GW_CHECK(st.locked >= 6 && st.failures > 0 && st.entries > 0);
    gw_backoff_sweep(bo, t + 10 * GW_BACKOFF_FORGET_MS);
    gw_backoff_stats(bo, &st);
    GW_CHECK(st.entries == 0);

    gw_backoff_destroy(&bo);
    GW_CHECK(bo == NULL);
    gw_backoff_destroy(&bo);
}
