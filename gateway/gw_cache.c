/* gw_cache.c - rendered read answers kept by entity tag (see gw_cache.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "gw_cache.h"
#include "gw_check.h"

typedef struct entry {
    struct entry *next; /* in its bucket */
    h2o_linklist_t lru; /* most recently used first */
    uint64_t hash;
    char *key, *etag; /* owned */
    size_t keylen, etaglen;
    char *body; /* h2o shared memory: a served request holds a reference of its own */
    size_t len;
} entry_t;

struct gw_cache {
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t entries, bytes, max_bytes;
    h2o_linklist_t lru;
    uint64_t hits, misses, evictions;
};

static void *s_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static uint64_t s_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* the bytes an entry counts against the bound */
static size_t s_cost(const entry_t *e)
{
    return e->len + e->keylen + e->etaglen + sizeof(*e);
}

gw_cache_t *gw_cache_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    gw_cache_t *self = s_xcalloc(1, sizeof(*self));
    self->nbuckets = 256;
    self->buckets = s_xcalloc(self->nbuckets, sizeof(*self->buckets));
    self->max_bytes = max_bytes;
    h2o_linklist_init_anchor(&self->lru);
    return self;
}

static entry_t **s_slot(gw_cache_t *self, uint64_t hash, const char *key, size_t keylen)
{
    entry_t **pp = &self->buckets[hash & (self->nbuckets - 1)];
    while (*pp != NULL && !((*pp)->hash == hash && (*pp)->keylen == keylen && memcmp((*pp)->key, key, keylen) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* unlinks e (found at *pp) and drops the cache's reference to its body */
static void s_remove(gw_cache_t *self, entry_t **pp)
{
    entry_t *e = *pp;
    *pp = e->next;
    h2o_linklist_unlink(&e->lru);
    self->entries--;
    self->bytes -= s_cost(e);
    h2o_mem_release_shared(e->body);
    free(e->key);
    free(e->etag);
    free(e);
}

void gw_cache_destroy(gw_cache_t **self_p)
{
    assert(self_p != NULL);
    gw_cache_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t i = 0; i < self->nbuckets; i++)
        while (self->buckets[i] != NULL)
            s_remove(self, &self->buckets[i]);
    free(self->buckets);
    free(self);
    *self_p = NULL;
}

h2o_iovec_t gw_cache_key(h2o_mem_pool_t *pool, const char *mode, const char *service, const char *resource, xws_slice_t act,
                         const xws_kv_t *params, size_t nparams)
{
    size_t n = strlen(mode) + strlen(service) + strlen(resource) + act.len + 4;
    for (size_t i = 0; i < nparams; i++)
        n += params[i].key.len + params[i].val.len + 2;
    char *k = h2o_mem_alloc_pool(pool, n), *p = k;
    const char *fixed[] = {mode, service, resource};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(fixed[i]) + 1;
        memcpy(p, fixed[i], l);
        p += l;
    }
    if (act.len > 0)
        memcpy(p, act.ptr, act.len);
    p += act.len;
    *p++ = '\0';
    for (size_t i = 0; i < nparams; i++) {
        if (params[i].key.len == 3 && memcmp(params[i].key.ptr, "sum", 3) == 0)
            continue;
        const xws_slice_t parts[] = {params[i].key, params[i].val};
        for (size_t j = 0; j < 2; j++) {
            if (parts[j].len > 0)
                memcpy(p, parts[j].ptr, parts[j].len);
            p += parts[j].len;
            *p++ = '\0';
        }
    }
    return h2o_iovec_init(k, (size_t)(p - k));
}

int gw_cache_get(gw_cache_t *self, h2o_mem_pool_t *pool, h2o_iovec_t key, h2o_iovec_t *etag, h2o_iovec_t *body)
{
    if (self == NULL)
        return 0;
    entry_t *e = *s_slot(self, s_hash(key.base, key.len), key.base, key.len);
    if (e == NULL)
        return 0;
    h2o_linklist_unlink(&e->lru);
    h2o_linklist_insert(self->lru.next, &e->lru); /* most recently used */
    *etag = h2o_strdup(pool, e->etag, e->etaglen);
    h2o_mem_link_shared(pool, e->body); /* the request's reference: the bytes outlive an eviction */
    *body = h2o_iovec_init(e->body, e->len);
    return 1;
}

static void s_grow(gw_cache_t *self)
{
    size_t n = self->nbuckets * 2;
    entry_t **b = s_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < self->nbuckets; i++) {
        for (entry_t *e = self->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(self->buckets);
    self->buckets = b;
    self->nbuckets = n;
}

void gw_cache_put(gw_cache_t *self, h2o_iovec_t key, xws_slice_t etag, const char *body, size_t len)
{
    if (self == NULL || etag.len == 0)
        return;
    uint64_t hash = s_hash(key.base, key.len);
    entry_t **pp = s_slot(self, hash, key.base, key.len);
    if (*pp != NULL)
        s_remove(self, pp); /* replaced: the new answer, or none when it is too large */
    entry_t *e = s_xcalloc(1, sizeof(*e));
    e->hash = hash;
    e->keylen = key.len;
    e->etaglen = etag.len;
    e->len = len;
    if (s_cost(e) > self->max_bytes / 4) {
        free(e);
        return;
    }
    e->key = malloc(key.len);
    e->etag = malloc(etag.len);
    e->body = h2o_mem_alloc_shared(NULL, len > 0 ? len : 1, NULL);
    if (e->key == NULL || e->etag == NULL)
        abort();
    memcpy(e->key, key.base, key.len);
    memcpy(e->etag, etag.ptr, etag.len);
    if (len > 0)
        memcpy(e->body, body, len);
    while (self->bytes + s_cost(e) > self->max_bytes && !h2o_linklist_is_empty(&self->lru)) {
        entry_t *old = H2O_STRUCT_FROM_MEMBER(entry_t, lru, self->lru.prev);
        s_remove(self, s_slot(self, old->hash, old->key, old->keylen));
        self->evictions++;
    }
    if (self->entries + 1 > 2 * self->nbuckets)
        s_grow(self);
    pp = &self->buckets[hash & (self->nbuckets - 1)];
    e->next = *pp;
    *pp = e;
    h2o_linklist_insert(self->lru.next, &e->lru);
    self->entries++;
    self->bytes += s_cost(e);
}

void gw_cache_count(gw_cache_t *self, int hit)
{
    if (self != NULL)
        hit ? self->hits++ : self->misses++;
}

gw_cache_stats_t gw_cache_stats(const gw_cache_t *self)
{
    gw_cache_stats_t s = {0, 0, 0, 0, 0, 0};
    if (self != NULL)
        s = (gw_cache_stats_t){self->entries, self->bytes, self->max_bytes, self->hits, self->misses, self->evictions};
    return s;
}

/* ---- self-test ------------------------------------------------------------------------------- */

void gw_cache_test(void)
{
    GW_CHECK(gw_cache_new(0) == NULL);
    h2o_iovec_t etag, body;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    GW_CHECK(gw_cache_get(NULL, &pool, h2o_iovec_init("k", 1), &etag, &body) == 0); /* no cache: nothing kept */
    gw_cache_put(NULL, h2o_iovec_init("k", 1), xws_slice("\"e\""), "x", 1);

    /* keys: the parts are kept apart, sum does not count, the order of the others does */
    xws_kv_t p1[] = {{xws_slice("id"), xws_slice("1")}, {xws_slice("sum"), xws_slice("abc")}};
    xws_kv_t p2[] = {{xws_slice("id"), xws_slice("1")}};
    xws_kv_t p3[] = {{xws_slice("id"), xws_slice("12")}};
    h2o_iovec_t k1 = gw_cache_key(&pool, "restricted", "ipbx", "users", xws_slice("view"), p1, 2);
    h2o_iovec_t k2 = gw_cache_key(&pool, "restricted", "ipbx", "users", xws_slice("view"), p2, 1);
    h2o_iovec_t k3 = gw_cache_key(&pool, "restricted", "ipbx", "users", xws_slice("view"), p3, 1);
    h2o_iovec_t k4 = gw_cache_key(&pool, "private", "ipbx", "users", xws_slice("view"), p2, 1);
    h2o_iovec_t k5 = gw_cache_key(&pool, "restricted", "ipbx", "users", xws_slice("vie"), p2, 1);
    GW_CHECK(k1.len == k2.len && memcmp(k1.base, k2.base, k1.len) == 0);
    GW_CHECK(!h2o_memis(k2.base, k2.len, k3.base, k3.len) && !h2o_memis(k2.base, k2.len, k4.base, k4.len));
    GW_CHECK(!h2o_memis(k2.base, k2.len, k5.base, k5.len));

    gw_cache_t *c = gw_cache_new(8 * 1024);
    GW_CHECK(gw_cache_get(c, &pool, k2, &etag, &body) == 0);
    gw_cache_put(c, k2, xws_slice("\"v1\""), "{\"a\":1}", 7);
    GW_CHECK(gw_cache_get(c, &pool, k1, &etag, &body) == 1 && h2o_memis(etag.base, etag.len, H2O_STRLIT("\"v1\"")) &&
             h2o_memis(body.base, body.len, H2O_STRLIT("{\"a\":1}")));
    GW_CHECK(gw_cache_get(c, &pool, k3, &etag, &body) == 0);
    /* replaced: the request that holds the old bytes still reads them */
    h2o_iovec_t old = body;
    gw_cache_put(c, k2, xws_slice("\"v2\""), "[2]", 3);
    GW_CHECK(h2o_memis(old.base, old.len, H2O_STRLIT("{\"a\":1}")));
    GW_CHECK(gw_cache_get(c, &pool, k2, &etag, &body) == 1 && h2o_memis(etag.base, etag.len, H2O_STRLIT("\"v2\"")) &&
             h2o_memis(body.base, body.len, H2O_STRLIT("[2]")));
    gw_cache_stats_t s = gw_cache_stats(c);
    GW_CHECK(s.entries == 1 && s.bytes > 3 && s.bytes < 300 && s.max_bytes == 8 * 1024);
    /* too large to keep (a quarter of the bound): not kept, and what was there goes */
    char big[2100];
    memset(big, 'x', sizeof(big));
    gw_cache_put(c, k2, xws_slice("\"v3\""), big, sizeof(big));
    GW_CHECK(gw_cache_get(c, &pool, k2, &etag, &body) == 0 && gw_cache_stats(c).entries == 0);
    /* the bound: the least recently used go first; many keys grow the table */
    h2o_iovec_t keys[400];
    for (int i = 0; i < 400; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        xws_kv_t p[] = {{xws_slice("id"), xws_slice(id)}};
        keys[i] = gw_cache_key(&pool, "restricted", "ipbx", "users", xws_slice("view"), p, 1);
        gw_cache_put(c, keys[i], xws_slice("\"t\""), "0123456789", 10);
        if (i >= 1)
            GW_CHECK(gw_cache_get(c, &pool, keys[0], &etag, &body) == 1); /* kept in use: never the oldest */
    }
    s = gw_cache_stats(c);
    GW_CHECK(s.bytes <= s.max_bytes && s.evictions > 0 && s.entries + s.evictions == 400);
    GW_CHECK(gw_cache_get(c, &pool, keys[0], &etag, &body) == 1 && gw_cache_get(c, &pool, keys[399], &etag, &body) == 1);
    GW_CHECK(gw_cache_get(c, &pool, keys[1], &etag, &body) == 0); /* the least recently used went first */
    gw_cache_count(c, 1);
    gw_cache_count(c, 0);
    gw_cache_count(c, 0);
    s = gw_cache_stats(c);
    GW_CHECK(s.hits == 1 && s.misses == 2);
    gw_cache_destroy(&c);
    GW_CHECK(c == NULL);
    h2o_mem_clear_pool(&pool); /* the bytes linked to the pool go last */
}
