/* gw_accounts.c - the account snapshot and the verification cache (see gw_accounts.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "xws/log.h"
#include "gw_accounts.h"
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

#define CACHE_BUCKETS 1024
#define CACHE_MAX 4096

typedef struct centry {
    uint8_t key[32];
    char *name, *cred; /* the account and its credential fingerprint when the entry was made */
    struct centry *next;
} centry_t;

struct gw_accounts {
    int ready;
    uint64_t version;
    gw_account_t *accounts;
    size_t naccounts;
    uint8_t hmac_key[32];
    EVP_MAC_CTX *mac; /* HMAC-SHA256 keyed with hmac_key, initialised again per use (no fetch per key) */
    centry_t *cache[CACHE_BUCKETS];
    size_t ncache;
};

gw_accounts_t *gw_accounts_new(void)
{
    gw_accounts_t *self = s_xcalloc(1, sizeof(*self));
    if (RAND_bytes(self->hmac_key, sizeof(self->hmac_key)) != 1)
        abort(); /* no randomness: nothing sensible can follow */
    /* HMAC() fetches the algorithm from the provider at every call (most of its cost in OpenSSL 3):
     * the context is made once, and EVP_MAC_init with no key starts it again with the same key */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    if (mac == NULL || (self->mac = EVP_MAC_CTX_new(mac)) == NULL ||
        EVP_MAC_init(self->mac, self->hmac_key, sizeof(self->hmac_key), params) != 1)
        abort();
    EVP_MAC_free(mac); /* the context holds its own reference */
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
    OPENSSL_cleanse(self->hmac_key, sizeof(self->hmac_key));
    EVP_MAC_CTX_free(self->mac);
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
                xws_log(XWS_LOG_WARN, "account %s: host entry %u is not an address or network; ignored", a->name, i);
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

const gw_account_t *gw_accounts_by_login(const gw_accounts_t *self, const char *login)
{
    if (login == NULL || login[0] == '\0')
        return NULL; /* host-only accounts have no login */
    for (size_t i = 0; i < self->naccounts; i++)
        if (strcmp(self->accounts[i].login, login) == 0)
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
    /* login NUL password: the NUL keeps ("ab", "c") and ("a", "bc") apart */
    size_t outlen = 0;
    if (EVP_MAC_init(self->mac, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(self->mac, (const unsigned char *)login, strlen(login) + 1) != 1 ||
        EVP_MAC_update(self->mac, (const unsigned char *)password, strlen(password)) != 1 ||
        EVP_MAC_final(self->mac, key, &outlen, 32) != 1 || outlen != 32)
        abort();
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

/* ---- self-test -------------------------------------------------------------------------------- */

static void s_addr(const char *text, uint8_t out[16])
{
    gw_net_t n;
    GW_CHECK(gw_net_parse(text, strlen(text), &n) == 0 && n.prefix == 128);
    memcpy(out, n.addr, 16);
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

void gw_accounts_test(void)
{
    uint8_t a[16];
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
    GW_CHECK(gw_accounts_by_login(acc, "") == NULL && gw_accounts_by_login(acc, "no such login") == NULL);
    GW_CHECK(gw_accounts_by_login(acc, "admin") == gw_accounts_find(acc, "admin", 5) && gw_accounts_by_login(acc, "Admin") == NULL);
    s_addr("11.2.3.4", a);
    GW_CHECK(gw_accounts_hostonly(acc, a) == NULL); /* "broken" must not match anyone */
    GW_CHECK(gw_account_host_ok(gw_accounts_find(acc, "admin", 5), a));
    GW_CHECK(gw_accounts_find(acc, "nobody", 6) == NULL);

    uint8_t k1[32], k2[32], k3[32];
    gw_accounts_cache_key(acc, "admin", "secret", k1);
    gw_accounts_cache_key(acc, "admin", "secreT", k2);
    gw_accounts_cache_key(acc, "admins", "ecret", k3); /* the NUL separator keeps these apart */
    GW_CHECK(memcmp(k1, k2, 32) != 0 && memcmp(k1, k3, 32) != 0);
    { /* the same as the one-shot HMAC, again and again from the one prepared context */
        uint8_t ref[32], again[32];
        unsigned int rl = 32;
        GW_CHECK(HMAC(EVP_sha256(), acc->hmac_key, sizeof(acc->hmac_key), (const unsigned char *)"admin\0secret", 12, ref, &rl) !=
                 NULL);
        gw_accounts_cache_key(acc, "admin", "secret", again);
        GW_CHECK(memcmp(ref, k1, 32) == 0 && memcmp(ref, again, 32) == 0);
    }
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

    gw_accounts_destroy(&acc);
    GW_CHECK(acc == NULL);
    gw_accounts_destroy(&acc);
}
