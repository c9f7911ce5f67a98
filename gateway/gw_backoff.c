/* gw_backoff.c - the back-off table of failed authentications (see gw_backoff.h). */
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
#define BACKOFF_MAX 131072 /* (address, login) and address entries together */

typedef struct bentry {
    uint8_t addr[16];
    uint8_t lkey[16];  /* truncated HMAC of the login, or all zero: every login of the address */
    uint64_t since;    /* first failure of the window */
    unsigned failures; /* in the window */
    struct bentry *next;
} bentry_t;

struct gw_backoff {
    uint8_t hmac_key[32];
    bentry_t *table[BACKOFF_BUCKETS];
    size_t count;
    uint64_t last_sweep; /* loop ms of the last sweep (gw_backoff_tick) */
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

static size_t s_addr_bucket(const uint8_t addr[16], const uint8_t lkey[16])
{
    size_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 1099511628211ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ lkey[i]) * 1099511628211ull;
    return h % BACKOFF_BUCKETS;
}

/* The login's part of a back-off key: a truncated HMAC under the per-process key (no collisions to aim at). */
static void s_login_key(const gw_backoff_t *self, const char *login, uint8_t lkey[16])
{
    uint8_t full[32];
    unsigned int outlen = 32;
    const unsigned char *l = (const unsigned char *)(login != NULL ? login : "");
    if (HMAC(EVP_sha256(), self->hmac_key, sizeof(self->hmac_key), l, strlen((const char *)l), full, &outlen) == NULL)
        abort();
    memcpy(lkey, full, 16);
    lkey[0] |= 1; /* never all zero: that is the per-address key */
}

static bentry_t *s_backoff_find(gw_backoff_t *self, const uint8_t addr[16], const uint8_t lkey[16], uint64_t now_ms)
{
    for (bentry_t **pp = &self->table[s_addr_bucket(addr, lkey)]; *pp != NULL; pp = &(*pp)->next) {
        bentry_t *e = *pp;
        if (memcmp(e->addr, addr, 16) != 0 || memcmp(e->lkey, lkey, 16) != 0)
            continue;
        if (now_ms - e->since >= GW_BACKOFF_WINDOW_MS) { /* the window is over: start afresh */
            *pp = e->next;
            free(e);
            self->count--;
            return NULL;
        }
        return e;
    }
    return NULL;
}

static const uint8_t s_peraddr_key[16];

gw_backoff_verdict_t gw_backoff_check(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
{
    uint8_t lkey[16];
    s_login_key(self, login, lkey);
    bentry_t *e = s_backoff_find(self, addr, lkey, now_ms);
    if (e != NULL && e->failures >= GW_BACKOFF_DELAY_AFTER)
        return GW_BACKOFF_DELAY;
    e = s_backoff_find(self, addr, s_peraddr_key, now_ms);
    if (e != NULL && e->failures >= GW_BACKOFF_ADDR_DELAY_AFTER)
        return GW_BACKOFF_DELAY;
    return GW_BACKOFF_NONE;
}

static void s_count(gw_backoff_t *self, const uint8_t addr[16], const uint8_t lkey[16], uint64_t now_ms)
{
    bentry_t *e = s_backoff_find(self, addr, lkey, now_ms);
    if (e == NULL) {
        if (self->count >= BACKOFF_MAX)
            gw_backoff_sweep(self, now_ms);
        if (self->count >= BACKOFF_MAX)
            return; /* table full of live entries: those clients are already being slowed down */
        e = s_xcalloc(1, sizeof(*e));
        memcpy(e->addr, addr, 16);
        memcpy(e->lkey, lkey, 16);
        e->since = now_ms;
        size_t b = s_addr_bucket(addr, lkey);
        e->next = self->table[b];
        self->table[b] = e;
        self->count++;
    }
    if (e->failures < UINT32_MAX)
        e->failures++;
}

void gw_backoff_fail(gw_backoff_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
{
    uint8_t lkey[16];
    s_login_key(self, login, lkey);
    s_count(self, addr, lkey, now_ms);
    s_count(self, addr, s_peraddr_key, now_ms);
}

void gw_backoff_sweep(gw_backoff_t *self, uint64_t now_ms)
{
    for (size_t b = 0; b < BACKOFF_BUCKETS; b++) {
        bentry_t **pp = &self->table[b];
        while (*pp != NULL) {
            bentry_t *e = *pp;
            if (now_ms - e->since >= GW_BACKOFF_WINDOW_MS) {
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
    if (now_ms - self->last_sweep >= GW_BACKOFF_WINDOW_MS) {
        gw_backoff_sweep(self, now_ms);
        self->last_sweep = now_ms;
    }
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
    gw_backoff_t *bo = gw_backoff_new();
    uint8_t a[16], k3[16];
    /* back-off: per (address, login) */
    s_addr("192.0.2.1", a);
    uint64_t t = 1000000;
    for (int i = 0; i < GW_BACKOFF_DELAY_AFTER - 1; i++)
        gw_backoff_fail(bo, a, "admin", t);
    GW_CHECK(gw_backoff_check(bo, a, "admin", t) == GW_BACKOFF_NONE);
    gw_backoff_fail(bo, a, "admin", t);
    GW_CHECK(gw_backoff_check(bo, a, "admin", t + 1) == GW_BACKOFF_DELAY);
    GW_CHECK(gw_backoff_check(bo, a, "other", t + 1) == GW_BACKOFF_NONE); /* another login of that address */
    GW_CHECK(gw_backoff_check(bo, a, "admin2", t + 1) == GW_BACKOFF_NONE);
    for (int i = 0; i < 1000; i++) /* however many failures: delayed, never refused unchecked */
        gw_backoff_fail(bo, a, "admin", t + 2);
    GW_CHECK(gw_backoff_check(bo, a, "admin", t + 3) == GW_BACKOFF_DELAY);
    /* ... but that many failures of one address slow every login of it */
    GW_CHECK(gw_backoff_check(bo, a, "other", t + 3) == GW_BACKOFF_DELAY);
    GW_CHECK(gw_backoff_check(bo, a, "admin", t + GW_BACKOFF_WINDOW_MS) == GW_BACKOFF_NONE);
    GW_CHECK(gw_backoff_check(bo, a, "other", t + GW_BACKOFF_WINDOW_MS) == GW_BACKOFF_NONE);
    /* cycling logins from one address: the per-address count catches up */
    s_addr("192.0.2.9", a);
    char lg[32];
    for (int i = 0; i < GW_BACKOFF_ADDR_DELAY_AFTER - 1; i++) {
        snprintf(lg, sizeof(lg), "user%d", i);
        gw_backoff_fail(bo, a, lg, t);
    }
    GW_CHECK(gw_backoff_check(bo, a, "fresh", t) == GW_BACKOFF_NONE);
    gw_backoff_fail(bo, a, "another", t);
    GW_CHECK(gw_backoff_check(bo, a, "fresh", t) == GW_BACKOFF_DELAY);
    s_addr("192.0.2.2", k3);
    for (int i = 0; i < GW_BACKOFF_DELAY_AFTER; i++)
        gw_backoff_fail(bo, k3, "", t);
    GW_CHECK(gw_backoff_check(bo, k3, "", t) == GW_BACKOFF_DELAY);
    gw_backoff_sweep(bo, t + GW_BACKOFF_WINDOW_MS);
    GW_CHECK(gw_backoff_check(bo, k3, "", t) == GW_BACKOFF_NONE);

    gw_backoff_destroy(&bo);
    GW_CHECK(bo == NULL);
    gw_backoff_destroy(&bo);
}
