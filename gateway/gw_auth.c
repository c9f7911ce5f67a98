/* gw_auth.c - addresses, ACL, Basic credentials, account cache and back-off (see gw_auth.h). */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "gw_auth.h"
#include "gw_check.h"

static void *s_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL)
        abort();
    return p;
}

static char *s_xstrndup(const char *s, size_t n)
{
    char *p = s_xcalloc(1, n + 1);
    memcpy(p, s, n);
    return p;
}

/* ---- addresses -------------------------------------------------------------------------------- */

int gw_net_parse(const char *s, size_t len, gw_net_t *net)
{
    assert(net != NULL);
    char text[64];
    if (s == NULL || len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL)
        return -1;
    char *slash = strchr(text, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        prefix = 0;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
    }
    memset(net, 0, sizeof(*net));
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        if (prefix > 32)
            return -1;
        net->addr[10] = net->addr[11] = 0xff;
        memcpy(net->addr + 12, &a4, 4);
        net->prefix = prefix < 0 ? 128 : (unsigned)(96 + prefix);
    } else if (inet_pton(AF_INET6, text, &a6) == 1) {
        if (prefix > 128)
            return -1;
        memcpy(net->addr, &a6, 16);
        net->prefix = prefix < 0 ? 128 : (unsigned)prefix;
    } else {
        return -1;
    }
    for (unsigned bit = net->prefix; bit < 128; bit++)
        net->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

int gw_net_contains(const gw_net_t *net, const uint8_t addr[16])
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (net->addr[full] & mask) == (addr[full] & mask);
}

static const uint8_t s_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int gw_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint8_t addr[16], char *text, size_t textlen)
{
    assert(textlen >= 48);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(addr, s_v4mapped, 12);
        memcpy(addr + 12, &s4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &s6->sin6_addr, 16);
    } else {
        snprintf(text, textlen, "unknown");
        memset(addr, 0, 16);
        return -1;
    }
    if (memcmp(addr, s_v4mapped, 12) == 0) { /* by hand: inet_ntop formats with sprintf, once per request */
        char *o = text;
        for (int i = 12; i < 16; i++) {
            unsigned v = addr[i];
            if (v >= 100)
                *o++ = (char)('0' + v / 100);
            if (v >= 10)
                *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 15 ? '.' : '\0';
        }
    } else
        inet_ntop(AF_INET6, addr, text, (socklen_t)textlen);
    return 0;
}

int gw_addr_is_private_ok(const uint8_t addr[16])
{
    static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t v4lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    return memcmp(addr, v6lo, 16) == 0 || memcmp(addr, v4lo, 16) == 0;
}

/* ---- ACL -------------------------------------------------------------------------------------- */

int gw_acl_allows(char *const *acl, size_t n, const char *path)
{
    size_t plen = strlen(path);
    for (size_t i = 0; i < n; i++) {
        const char *e = acl[i];
        size_t elen = strlen(e);
        if (strcmp(e, "*") == 0)
            return 1;
        if (elen == 0 || elen > plen || memcmp(e, path, elen) != 0)
            continue;
        if (elen == plen || e[elen - 1] == '/' || path[elen] == '/')
            return 1;
    }
    return 0;
}

/* ---- Basic credentials ------------------------------------------------------------------------ */

static int s_b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 with optional padding; returns the decoded length or -1. */
static long s_b64decode(const char *s, size_t n, unsigned char *out, size_t outsize)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = s_b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outsize)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

int gw_basic_parse(const char *hdr, size_t len, char *login, size_t lsize, char *password, size_t psize)
{
    if (hdr == NULL || len == 0)
        return 0;
    while (len > 0 && (*hdr == ' ' || *hdr == '\t'))
        hdr++, len--;
    while (len > 0 && (hdr[len - 1] == ' ' || hdr[len - 1] == '\t'))
        len--;
    if (len < 6 || strncasecmp(hdr, "basic", 5) != 0 || (hdr[5] != ' ' && hdr[5] != '\t'))
        return -1;
    hdr += 6, len -= 6;
    while (len > 0 && (*hdr == ' ' || *hdr == '\t'))
        hdr++, len--;
    unsigned char dec[2560]; /* a login (up to 1024 bytes), ':', a password (up to 1024 bytes) */
    long n = s_b64decode(hdr, len, dec, sizeof(dec));
    if (n < 0 || memchr(dec, '\0', (size_t)n) != NULL)
        return -1;
    unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return -1;
    size_t ll = (size_t)(colon - dec), pl = (size_t)n - ll - 1;
    if (ll >= lsize || pl >= psize)
        return -1;
    memcpy(login, dec, ll);
    login[ll] = '\0';
    memcpy(password, colon + 1, pl);
    password[pl] = '\0';
    OPENSSL_cleanse(dec, sizeof(dec));
    return 1;
}

/* ---- accounts --------------------------------------------------------------------------------- */

#define CACHE_BUCKETS 1024
#define CACHE_MAX 4096
#define BACKOFF_BUCKETS 4096
#define BACKOFF_MAX 131072 /* (address, login) and address entries together */

typedef struct centry {
    uint8_t key[32];
    char *name, *cred; /* the account and its credential fingerprint when the entry was made */
    struct centry *next;
} centry_t;

typedef struct bentry {
    uint8_t addr[16];
    uint8_t lkey[16];  /* truncated HMAC of the login, or all zero: every login of the address */
    uint64_t since;    /* first failure of the window */
    unsigned failures; /* in the window */
    struct bentry *next;
} bentry_t;

struct gw_accounts {
    int ready;
    uint64_t version;
    gw_account_t *accounts;
    size_t naccounts;
    uint8_t hmac_key[32];
    centry_t *cache[CACHE_BUCKETS];
    size_t ncache;
    bentry_t *backoff[BACKOFF_BUCKETS];
    size_t nbackoff;
};

gw_accounts_t *gw_accounts_new(void)
{
    gw_accounts_t *self = s_xcalloc(1, sizeof(*self));
    if (RAND_bytes(self->hmac_key, sizeof(self->hmac_key)) != 1)
        abort(); /* no randomness: nothing sensible can follow */
    return self;
}

static void s_free_accounts(gw_account_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].login);
        free(a[i].cred);
        free(a[i].hosts);
        for (size_t k = 0; k < a[i].nacl; k++)
            free(a[i].acl[k]);
        free(a[i].acl);
    }
    free(a);
}

static void s_cache_clear(gw_accounts_t *self)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        while (self->cache[b] != NULL) {
            centry_t *e = self->cache[b];
            self->cache[b] = e->next;
            free(e->name);
            free(e->cred);
            free(e);
        }
    }
    self->ncache = 0;
}

/* forgets every cache entry for which keep(self, e, arg) is 0 */
static void s_cache_filter(gw_accounts_t *self, int (*keep)(gw_accounts_t *, const centry_t *, const void *), const void *arg)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        centry_t **pp = &self->cache[b];
        while (*pp != NULL) {
            centry_t *e = *pp;
            if (keep(self, e, arg)) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free(e->name);
            free(e->cred);
            free(e);
            self->ncache--;
        }
    }
}

static int s_keep_unchanged(gw_accounts_t *self, const centry_t *e, const void *arg)
{
    const gw_account_t *a = gw_accounts_find(self, e->name, strlen(e->name));
    return a != NULL && a->cred[0] != '\0' && strcmp(a->cred, e->cred) == 0;
}

/* After a new snapshot: keeps the entries whose account is still there with the same non-empty cred. */
static void s_cache_prune(gw_accounts_t *self)
{
    s_cache_filter(self, s_keep_unchanged, NULL);
}

void gw_accounts_destroy(gw_accounts_t **self_p)
{
    assert(self_p != NULL);
    gw_accounts_t *self = *self_p;
    if (self == NULL)
        return;
    s_free_accounts(self->accounts, self->naccounts);
    s_cache_clear(self);
    for (size_t b = 0; b < BACKOFF_BUCKETS; b++)
        while (self->backoff[b] != NULL) {
            bentry_t *e = self->backoff[b];
            self->backoff[b] = e->next;
            free(e);
        }
    OPENSSL_cleanse(self->hmac_key, sizeof(self->hmac_key));
    free(self);
    *self_p = NULL;
}

int gw_accounts_ready(const gw_accounts_t *self)
{
    return self->ready;
}

uint64_t gw_accounts_version(const gw_accounts_t *self)
{
    return self->version;
}

size_t gw_accounts_count(const gw_accounts_t *self)
{
    return self->naccounts;
}

static const msgpack_object *s_get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int s_get_str(const msgpack_object *map, const char *key, char **out)
{
    const msgpack_object *v = s_get(map, key);
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        *out = s_xstrndup("", 0);
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_STR || memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL)
        return -1;
    *out = s_xstrndup(v->via.str.ptr, v->via.str.size);
    return 0;
}

static int s_get_bool(const msgpack_object *map, const char *key, int *out)
{
    const msgpack_object *v = s_get(map, key);
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
        *out = 0;
    else if (v->type == MSGPACK_OBJECT_BOOLEAN)
        *out = v->via.boolean;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = v->via.u64 != 0;
    else
        return -1;
    return 0;
}

static int s_load_one(const msgpack_object *o, gw_account_t *a, const char **err)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        *err = "an account is not a map";
        return -1;
    }
    if (s_get_str(o, "name", &a->name) != 0 || s_get_str(o, "login", &a->login) != 0 || s_get_str(o, "cred", &a->cred) != 0) {
        *err = "an account name, login or cred is not a string";
        return -1;
    }
    if (a->name[0] == '\0') {
        *err = "an account has no name";
        return -1;
    }
    if (s_get_bool(o, "hostonly", &a->hostonly) != 0 || s_get_bool(o, "disabled", &a->disabled) != 0) {
        *err = "hostonly/disabled is not a boolean";
        return -1;
    }
    const msgpack_object *hosts = s_get(o, "hosts"), *acl = s_get(o, "acl");
    if (hosts != NULL && hosts->type != MSGPACK_OBJECT_NIL) {
        if (hosts->type != MSGPACK_OBJECT_ARRAY) {
            *err = "hosts is not an array";
            return -1;
        }
        a->hosts = s_xcalloc(hosts->via.array.size, sizeof(gw_net_t));
        for (uint32_t i = 0; i < hosts->via.array.size; i++) {
            const msgpack_object *h = &hosts->via.array.ptr[i];
            if (h->type == MSGPACK_OBJECT_STR && gw_net_parse(h->via.str.ptr, h->via.str.size, &a->hosts[a->nhosts]) == 0)
                a->nhosts++;
            else
                fprintf(stderr, "xws-gateway: account %s: host entry %u is not an address or network; ignored\n", a->name, i);
        }
        if (hosts->via.array.size > 0 && a->nhosts == 0) {
            /* every entry was unreadable: the account must not turn into "any host" */
            a->nhosts = 1;
            memset(&a->hosts[0], 0xff, sizeof(a->hosts[0].addr));
            a->hosts[0].prefix = 128; /* ffff:…:ffff never matches a real client */
        }
    }
    if (acl != NULL && acl->type != MSGPACK_OBJECT_NIL) {
        if (acl->type != MSGPACK_OBJECT_ARRAY) {
            *err = "acl is not an array";
            return -1;
        }
        a->acl = s_xcalloc(acl->via.array.size, sizeof(char *));
        for (uint32_t i = 0; i < acl->via.array.size; i++) {
            const msgpack_object *e = &acl->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_STR || memchr(e->via.str.ptr, '\0', e->via.str.size) != NULL) {
                *err = "an acl entry is not a string";
                return -1;
            }
            size_t n = e->via.str.size;
            const char *p = e->via.str.ptr;
            while (n > 0 && *p == '/') /* "/service/ipbx" means "service/ipbx" */
                p++, n--;
            a->acl[a->nacl++] = s_xstrndup(p, n);
        }
    }
    return 0;
}

int gw_accounts_load(gw_accounts_t *self, const msgpack_object *body, const char **err)
{
    assert(self != NULL && err != NULL);
    const msgpack_object *ver = s_get(body, "version"), *list = s_get(body, "accounts");
    if (ver == NULL || ver->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *err = "snapshot has no numeric version";
        return -1;
    }
    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
        *err = "snapshot has no accounts array";
        return -1;
    }
    size_t n = list->via.array.size;
    gw_account_t *accts = s_xcalloc(n, sizeof(gw_account_t));
    for (size_t i = 0; i < n; i++) {
        if (s_load_one(&list->via.array.ptr[i], &accts[i], err) != 0) {
            s_free_accounts(accts, n);
            return -1;
        }
    }
    int changed = !self->ready || self->version != ver->via.u64;
    s_free_accounts(self->accounts, self->naccounts);
    self->accounts = accts;
    self->naccounts = n;
    self->version = ver->via.u64;
    if (!self->ready)
        s_cache_clear(self);
    else if (changed)
        s_cache_prune(self);
    self->ready = 1;
    return 0;
}

const gw_account_t *gw_accounts_find(const gw_accounts_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->naccounts; i++)
        if (strlen(self->accounts[i].name) == len && memcmp(self->accounts[i].name, name, len) == 0)
            return &self->accounts[i];
    return NULL;
}

int gw_account_host_ok(const gw_account_t *acct, const uint8_t addr[16])
{
    if (acct->nhosts == 0)
        return 1;
    for (size_t i = 0; i < acct->nhosts; i++)
        if (gw_net_contains(&acct->hosts[i], addr))
            return 1;
    return 0;
}

const gw_account_t *gw_accounts_hostonly(const gw_accounts_t *self, const uint8_t addr[16])
{
    for (size_t i = 0; i < self->naccounts; i++) {
        const gw_account_t *a = &self->accounts[i];
        /* a host-only account must name its hosts: an empty list would open it to everyone */
        if (a->hostonly && !a->disabled && a->nhosts > 0 && gw_account_host_ok(a, addr))
            return a;
    }
    return NULL;
}

/* ---- verification cache ----------------------------------------------------------------------- */

void gw_accounts_cache_key(const gw_accounts_t *self, const char *login, const char *password, uint8_t key[32])
{
    size_t ll = strlen(login), pl = strlen(password);
    unsigned char *msg = s_xcalloc(1, ll + pl + 1);
    memcpy(msg, login, ll);
    memcpy(msg + ll + 1, password, pl);
    unsigned int outlen = 32;
    if (HMAC(EVP_sha256(), self->hmac_key, sizeof(self->hmac_key), msg, ll + pl + 1, key, &outlen) == NULL)
        abort();
    OPENSSL_cleanse(msg, ll + pl + 1);
    free(msg);
}

static size_t s_cache_bucket(const uint8_t key[32])
{
    size_t h;
    memcpy(&h, key, sizeof(h));
    return h % CACHE_BUCKETS;
}

const gw_account_t *gw_accounts_cache_get(gw_accounts_t *self, const uint8_t key[32])
{
    for (centry_t *e = self->cache[s_cache_bucket(key)]; e != NULL; e = e->next) {
        if (CRYPTO_memcmp(e->key, key, 32) != 0)
            continue;
        const gw_account_t *a = gw_accounts_find(self, e->name, strlen(e->name));
        if (a != NULL && strcmp(a->cred, e->cred) == 0)
            return a;
        gw_accounts_cache_drop(self, key); /* the account changed since: check again */
        return NULL;
    }
    return NULL;
}

size_t gw_accounts_cache_count(const gw_accounts_t *self)
{
    return self->ncache;
}

void gw_accounts_cache_drop(gw_accounts_t *self, const uint8_t key[32])
{
    for (centry_t **pp = &self->cache[s_cache_bucket(key)]; *pp != NULL; pp = &(*pp)->next) {
        centry_t *e = *pp;
        if (CRYPTO_memcmp(e->key, key, 32) == 0) {
            *pp = e->next;
            free(e->name);
            free(e->cred);
            free(e);
            self->ncache--;
            return;
        }
    }
}

static int s_keep_others(gw_accounts_t *self, const centry_t *e, const void *name)
{
    return strcmp(e->name, name) != 0;
}

void gw_accounts_cache_forget(gw_accounts_t *self, const char *name)
{
    s_cache_filter(self, s_keep_others, name);
}

void gw_accounts_cache_put(gw_accounts_t *self, const uint8_t key[32], const gw_account_t *acct)
{
    assert(acct != NULL);
    gw_accounts_cache_drop(self, key);
    if (self->ncache >= CACHE_MAX)
        s_cache_clear(self);
    centry_t *e = s_xcalloc(1, sizeof(*e));
    memcpy(e->key, key, 32);
    e->name = s_xstrndup(acct->name, strlen(acct->name));
    e->cred = s_xstrndup(acct->cred, strlen(acct->cred));
    size_t b = s_cache_bucket(key);
    e->next = self->cache[b];
    self->cache[b] = e;
    self->ncache++;
}

/* ---- back-off --------------------------------------------------------------------------------- */

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
static void s_login_key(const gw_accounts_t *self, const char *login, uint8_t lkey[16])
{
    uint8_t full[32];
    unsigned int outlen = 32;
    const unsigned char *l = (const unsigned char *)(login != NULL ? login : "");
    if (HMAC(EVP_sha256(), self->hmac_key, sizeof(self->hmac_key), l, strlen((const char *)l), full, &outlen) == NULL)
        abort();
    memcpy(lkey, full, 16);
    lkey[0] |= 1; /* never all zero: that is the per-address key */
}

static bentry_t *s_backoff_find(gw_accounts_t *self, const uint8_t addr[16], const uint8_t lkey[16], uint64_t now_ms)
{
    for (bentry_t **pp = &self->backoff[s_addr_bucket(addr, lkey)]; *pp != NULL; pp = &(*pp)->next) {
        bentry_t *e = *pp;
        if (memcmp(e->addr, addr, 16) != 0 || memcmp(e->lkey, lkey, 16) != 0)
            continue;
        if (now_ms - e->since >= GW_BACKOFF_WINDOW_MS) { /* the window is over: start afresh */
            *pp = e->next;
            free(e);
            self->nbackoff--;
            return NULL;
        }
        return e;
    }
    return NULL;
}

static const uint8_t s_peraddr_key[16];

gw_backoff_t gw_accounts_backoff(gw_accounts_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
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

static void s_count(gw_accounts_t *self, const uint8_t addr[16], const uint8_t lkey[16], uint64_t now_ms)
{
    bentry_t *e = s_backoff_find(self, addr, lkey, now_ms);
    if (e == NULL) {
        if (self->nbackoff >= BACKOFF_MAX)
            gw_accounts_backoff_sweep(self, now_ms);
        if (self->nbackoff >= BACKOFF_MAX)
            return; /* table full of live entries: those clients are already being slowed down */
        e = s_xcalloc(1, sizeof(*e));
        memcpy(e->addr, addr, 16);
        memcpy(e->lkey, lkey, 16);
        e->since = now_ms;
        size_t b = s_addr_bucket(addr, lkey);
        e->next = self->backoff[b];
        self->backoff[b] = e;
        self->nbackoff++;
    }
    if (e->failures < UINT32_MAX)
        e->failures++;
}

void gw_accounts_fail(gw_accounts_t *self, const uint8_t addr[16], const char *login, uint64_t now_ms)
{
    uint8_t lkey[16];
    s_login_key(self, login, lkey);
    s_count(self, addr, lkey, now_ms);
    s_count(self, addr, s_peraddr_key, now_ms);
}

void gw_accounts_backoff_sweep(gw_accounts_t *self, uint64_t now_ms)
{
    for (size_t b = 0; b < BACKOFF_BUCKETS; b++) {
        bentry_t **pp = &self->backoff[b];
        while (*pp != NULL) {
            bentry_t *e = *pp;
            if (now_ms - e->since >= GW_BACKOFF_WINDOW_MS) {
                *pp = e->next;
                free(e);
                self->nbackoff--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* ---- self-test -------------------------------------------------------------------------------- */

static void s_addr(const char *text, uint8_t out[16])
{
    gw_net_t n;
    GW_CHECK(gw_net_parse(text, strlen(text), &n) == 0 && n.prefix == 128);
    memcpy(out, n.addr, 16);
}

static int s_in(const char *net, const char *addr)
{
    gw_net_t n;
    uint8_t a[16];
    GW_CHECK(gw_net_parse(net, strlen(net), &n) == 0);
    s_addr(addr, a);
    return gw_net_contains(&n, a);
}

/* packs a snapshot for the test */
static void s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void s_pack_account(msgpack_packer *pk, const char *name, const char *login, int hostonly, int disabled,
                           const char *const *hosts, const char *const *acl, const char *cred)
{
    msgpack_pack_map(pk, cred != NULL ? 7 : 6);
    if (cred != NULL)
        s_pack_str(pk, "cred"), s_pack_str(pk, cred);
    s_pack_str(pk, "name"), s_pack_str(pk, name);
    s_pack_str(pk, "login"), s_pack_str(pk, login);
    s_pack_str(pk, "hostonly"), hostonly ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    s_pack_str(pk, "disabled"), disabled ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    size_t n = 0;
    while (hosts[n] != NULL)
        n++;
    s_pack_str(pk, "hosts"), msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        s_pack_str(pk, hosts[i]);
    for (n = 0; acl[n] != NULL;)
        n++;
    s_pack_str(pk, "acl"), msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        s_pack_str(pk, acl[i]);
}

void gw_auth_test(void)
{
    /* networks */
    GW_CHECK(s_in("10.0.0.0/8", "10.1.2.3") && !s_in("10.0.0.0/8", "11.0.0.1"));
    GW_CHECK(s_in("10.0.0.0/8", "::ffff:10.9.9.9"));
    GW_CHECK(s_in("192.168.1.77", "192.168.1.77") && !s_in("192.168.1.77", "192.168.1.78"));
    GW_CHECK(s_in("192.168.1.77/32", "192.168.1.77"));
    GW_CHECK(s_in("0.0.0.0/0", "1.2.3.4") && !s_in("0.0.0.0/0", "2001:db8::1"));
    GW_CHECK(s_in("2001:db8::/32", "2001:db8:1::5") && !s_in("2001:db8::/32", "2001:db9::5"));
    GW_CHECK(s_in("::1", "::1") && !s_in("::1", "127.0.0.1"));
    GW_CHECK(s_in("10.1.2.3/25", "10.1.2.127") && !s_in("10.1.2.3/25", "10.1.2.128"));
    gw_net_t n;
    GW_CHECK(gw_net_parse("10.0.0.0/33", 11, &n) == -1 && gw_net_parse("::/129", 6, &n) == -1);
    GW_CHECK(gw_net_parse("host.example", 12, &n) == -1 && gw_net_parse("1.2.3.4/", 8, &n) == -1);
    GW_CHECK(gw_net_parse("1.2.3.4/x", 9, &n) == -1 && gw_net_parse("", 0, &n) == -1);
    GW_CHECK(gw_net_parse("1.2.3.4/1234", 12, &n) == -1);

    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr);
    uint8_t a[16];
    char text[64];
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s4, sizeof(s4), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "127.0.0.1") == 0 && gw_addr_is_private_ok(a));
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "127.0.0.1") == 0 && gw_addr_is_private_ok(a));
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "::1") == 0 && gw_addr_is_private_ok(a));
    inet_pton(AF_INET, "127.0.0.2", &s4.sin_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s4, sizeof(s4), a, text, sizeof(text)) == 0);
    GW_CHECK(!gw_addr_is_private_ok(a));

    /* ACL */
    char *acl1[] = {"service/ipbx"}, *acl2[] = {"service/ipbx/"}, *acl3[] = {"*"};
    char *acl4[] = {"xivo/configuration/manage/entity", "callcenter"};
    GW_CHECK(gw_acl_allows(acl1, 1, "service/ipbx/pbx_settings/users"));
    GW_CHECK(gw_acl_allows(acl1, 1, "service/ipbx"));
    GW_CHECK(!gw_acl_allows(acl1, 1, "service/ipbxx/pbx_settings/users"));
    GW_CHECK(!gw_acl_allows(acl1, 1, "xivo/configuration/manage/entity"));
    GW_CHECK(gw_acl_allows(acl2, 1, "service/ipbx/pbx_settings/lines"));
    GW_CHECK(gw_acl_allows(acl3, 1, "callcenter/settings/queues"));
    GW_CHECK(!gw_acl_allows(acl3, 0, "callcenter/settings/queues"));
    GW_CHECK(gw_acl_allows(acl4, 2, "xivo/configuration/manage/entity"));
    GW_CHECK(!gw_acl_allows(acl4, 2, "xivo/configuration/manage/entityx"));
    GW_CHECK(gw_acl_allows(acl4, 2, "callcenter/settings/queues"));
    GW_CHECK(!gw_acl_allows(acl4, 2, "xivo/configuration/network/mail"));

    /* Basic */
    char login[64], pw[64];
    GW_CHECK(gw_basic_parse(NULL, 0, login, sizeof(login), pw, sizeof(pw)) == 0);
    GW_CHECK(gw_basic_parse("Basic YWRtaW46c2VjcmV0", 22, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(strcmp(login, "admin") == 0 && strcmp(pw, "secret") == 0);
    GW_CHECK(gw_basic_parse("basic  YTpiOmM=", 15, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(strcmp(login, "a") == 0 && strcmp(pw, "b:c") == 0);
    GW_CHECK(gw_basic_parse("Basic Og==", 10, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(login[0] == '\0' && pw[0] == '\0');
    GW_CHECK(gw_basic_parse("Bearer abc", 10, login, sizeof(login), pw, sizeof(pw)) == -1);
    GW_CHECK(gw_basic_parse("Basic YWRtaW4=", 14, login, sizeof(login), pw, sizeof(pw)) == -1); /* no ':' */
    GW_CHECK(gw_basic_parse("Basic !!!", 9, login, sizeof(login), pw, sizeof(pw)) == -1);
    GW_CHECK(gw_basic_parse("Basic YQBiOmM=", 14, login, sizeof(login), pw, sizeof(pw)) == -1); /* NUL */
    GW_CHECK(gw_basic_parse("Basic", 5, login, sizeof(login), pw, sizeof(pw)) == -1);

    /* accounts */
    gw_accounts_t *acc = gw_accounts_new();
    GW_CHECK(!gw_accounts_ready(acc));
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    s_pack_str(&pk, "version"), msgpack_pack_uint64(&pk, 7);
    s_pack_str(&pk, "accounts"), msgpack_pack_array(&pk, 4);
    const char *none[] = {NULL}, *lan[] = {"10.0.0.0/8", "::1", NULL}, *bad[] = {"nonsense", NULL};
    const char *all[] = {"*", NULL}, *ipbx[] = {"/service/ipbx", NULL};
    s_pack_account(&pk, "admin", "admin", 0, 0, none, all, NULL);
    s_pack_account(&pk, "lan", "", 1, 0, lan, ipbx, NULL);
    s_pack_account(&pk, "off", "", 1, 1, lan, all, NULL);
    s_pack_account(&pk, "broken", "", 1, 0, bad, all, NULL);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    const char *err = NULL;
    GW_CHECK(gw_accounts_load(acc, &u.data, &err) == 0 && gw_accounts_ready(acc) && gw_accounts_version(acc) == 7);
    GW_CHECK(gw_accounts_count(acc) == 4);
    const gw_account_t *lanacct = gw_accounts_find(acc, "lan", 3);
    GW_CHECK(lanacct != NULL && lanacct->nacl == 1 && strcmp(lanacct->acl[0], "service/ipbx") == 0);
    s_addr("10.2.3.4", a);
    GW_CHECK(gw_accounts_hostonly(acc, a) == lanacct);
    s_addr("11.2.3.4", a);
    GW_CHECK(gw_accounts_hostonly(acc, a) == NULL); /* "broken" must not match anyone */
    GW_CHECK(gw_account_host_ok(gw_accounts_find(acc, "admin", 5), a));
    GW_CHECK(gw_accounts_find(acc, "nobody", 6) == NULL);

    uint8_t k1[32], k2[32], k3[32];
    gw_accounts_cache_key(acc, "admin", "secret", k1);
    gw_accounts_cache_key(acc, "admin", "secreT", k2);
    gw_accounts_cache_key(acc, "admins", "ecret", k3); /* the NUL separator keeps these apart */
    GW_CHECK(memcmp(k1, k2, 32) != 0 && memcmp(k1, k3, 32) != 0);
    GW_CHECK(gw_accounts_cache_get(acc, k1) == NULL);
    gw_accounts_cache_put(acc, k1, gw_accounts_find(acc, "admin", 5));
    GW_CHECK(gw_accounts_cache_get(acc, k1) != NULL && strcmp(gw_accounts_cache_get(acc, k1)->name, "admin") == 0);
    GW_CHECK(gw_accounts_cache_get(acc, k2) == NULL);
    GW_CHECK(gw_accounts_load(acc, &u.data, &err) == 0 && gw_accounts_cache_get(acc, k1) != NULL); /* same version */
    gw_accounts_cache_drop(acc, k1);
    GW_CHECK(gw_accounts_cache_get(acc, k1) == NULL && gw_accounts_cache_count(acc) == 0);
    gw_accounts_cache_put(acc, k1, gw_accounts_find(acc, "admin", 5));
    gw_accounts_cache_forget(acc, "nobody"); /* another account: nothing goes */
    GW_CHECK(gw_accounts_cache_count(acc) == 1);
    gw_accounts_cache_forget(acc, "admin");
    GW_CHECK(gw_accounts_cache_count(acc) == 0 && gw_accounts_cache_get(acc, k1) == NULL);
    gw_accounts_cache_put(acc, k1, gw_accounts_find(acc, "admin", 5));

    /* a new version without fingerprints (an older config service): every entry goes */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    s_pack_str(&pk, "version"), msgpack_pack_uint64(&pk, 70);
    s_pack_str(&pk, "accounts"), msgpack_pack_array(&pk, 1);
    s_pack_account(&pk, "admin", "admin", 0, 0, none, all, NULL);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    GW_CHECK(gw_accounts_load(acc, &u.data, &err) == 0 && gw_accounts_cache_count(acc) == 0);

    /* with fingerprints: a new version keeps the entries of the accounts whose cred did not change */
    for (int round = 0; round < 3; round++) {
        static const char *const creds[3][2] = {{"c-admin-1", "c-ops-1"}, {"c-admin-1", "c-ops-2"}, {"c-admin-2", "c-ops-2"}};
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 2);
        s_pack_str(&pk, "version"), msgpack_pack_uint64(&pk, 71 + (uint64_t)round);
        s_pack_str(&pk, "accounts"), msgpack_pack_array(&pk, 2);
        s_pack_account(&pk, "admin", "admin", 0, 0, none, all, creds[round][0]);
        s_pack_account(&pk, "ops", "ops", 0, 0, none, all, creds[round][1]);
        msgpack_unpacked_destroy(&u);
        msgpack_unpacked_init(&u);
        GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
        GW_CHECK(gw_accounts_load(acc, &u.data, &err) == 0);
        if (round == 0) {
            gw_accounts_cache_put(acc, k1, gw_accounts_find(acc, "admin", 5));
            gw_accounts_cache_put(acc, k2, gw_accounts_find(acc, "ops", 3));
            GW_CHECK(gw_accounts_cache_count(acc) == 2);
        } else if (round == 1) { /* ops changed: only its entry goes */
            GW_CHECK(gw_accounts_cache_count(acc) == 1 && gw_accounts_cache_get(acc, k2) == NULL);
            GW_CHECK(gw_accounts_cache_get(acc, k1) == gw_accounts_find(acc, "admin", 5));
        } else { /* admin changed */
            GW_CHECK(gw_accounts_cache_count(acc) == 0 && gw_accounts_cache_get(acc, k1) == NULL);
        }
    }
    /* an entry made with a fingerprint that is no longer the account's is not used */
    GW_CHECK(gw_accounts_cache_get(acc, k1) == NULL);
    gw_accounts_cache_put(acc, k1, gw_accounts_find(acc, "admin", 5));
    {
        gw_account_t stale = *gw_accounts_find(acc, "admin", 5);
        stale.cred = "c-admin-1";
        gw_accounts_cache_put(acc, k2, &stale);
    }
    GW_CHECK(gw_accounts_cache_get(acc, k1) != NULL && gw_accounts_cache_get(acc, k2) == NULL);
    GW_CHECK(gw_accounts_cache_count(acc) == 1);

    /* a new version clears the cache; a malformed snapshot keeps the old one */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    s_pack_str(&pk, "version"), msgpack_pack_uint64(&pk, 8);
    s_pack_str(&pk, "accounts"), msgpack_pack_array(&pk, 0);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    GW_CHECK(gw_accounts_load(acc, &u.data, &err) == 0 && gw_accounts_version(acc) == 8 && gw_accounts_count(acc) == 0);
    GW_CHECK(gw_accounts_cache_get(acc, k1) == NULL);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    s_pack_str(&pk, "version"), msgpack_pack_uint64(&pk, 9);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    GW_CHECK(gw_accounts_load(acc, &u.data, &err) == -1 && err != NULL && gw_accounts_version(acc) == 8);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);

    /* back-off: per (address, login) */
    s_addr("192.0.2.1", a);
    uint64_t t = 1000000;
    for (int i = 0; i < GW_BACKOFF_DELAY_AFTER - 1; i++)
        gw_accounts_fail(acc, a, "admin", t);
    GW_CHECK(gw_accounts_backoff(acc, a, "admin", t) == GW_BACKOFF_NONE);
    gw_accounts_fail(acc, a, "admin", t);
    GW_CHECK(gw_accounts_backoff(acc, a, "admin", t + 1) == GW_BACKOFF_DELAY);
    GW_CHECK(gw_accounts_backoff(acc, a, "other", t + 1) == GW_BACKOFF_NONE); /* another login of that address */
    GW_CHECK(gw_accounts_backoff(acc, a, "admin2", t + 1) == GW_BACKOFF_NONE);
    for (int i = 0; i < 1000; i++) /* however many failures: delayed, never refused unchecked */
        gw_accounts_fail(acc, a, "admin", t + 2);
    GW_CHECK(gw_accounts_backoff(acc, a, "admin", t + 3) == GW_BACKOFF_DELAY);
    /* ... but that many failures of one address slow every login of it */
    GW_CHECK(gw_accounts_backoff(acc, a, "other", t + 3) == GW_BACKOFF_DELAY);
    GW_CHECK(gw_accounts_backoff(acc, a, "admin", t + GW_BACKOFF_WINDOW_MS) == GW_BACKOFF_NONE);
    GW_CHECK(gw_accounts_backoff(acc, a, "other", t + GW_BACKOFF_WINDOW_MS) == GW_BACKOFF_NONE);
    /* cycling logins from one address: the per-address count catches up */
    s_addr("192.0.2.9", a);
    char lg[32];
    for (int i = 0; i < GW_BACKOFF_ADDR_DELAY_AFTER - 1; i++) {
        snprintf(lg, sizeof(lg), "user%d", i);
        gw_accounts_fail(acc, a, lg, t);
    }
    GW_CHECK(gw_accounts_backoff(acc, a, "fresh", t) == GW_BACKOFF_NONE);
    gw_accounts_fail(acc, a, "another", t);
    GW_CHECK(gw_accounts_backoff(acc, a, "fresh", t) == GW_BACKOFF_DELAY);
    s_addr("192.0.2.2", k3);
    for (int i = 0; i < GW_BACKOFF_DELAY_AFTER; i++)
        gw_accounts_fail(acc, k3, "", t);
    GW_CHECK(gw_accounts_backoff(acc, k3, "", t) == GW_BACKOFF_DELAY);
    gw_accounts_backoff_sweep(acc, t + GW_BACKOFF_WINDOW_MS);
    GW_CHECK(gw_accounts_backoff(acc, k3, "", t) == GW_BACKOFF_NONE);

    gw_accounts_destroy(&acc);
    GW_CHECK(acc == NULL);
    gw_accounts_destroy(&acc);
}
