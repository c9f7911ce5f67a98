/*
 * gw_cache - rendered read answers kept by their entity tag, served again only when their
 * service confirms the tag.
 *
 * A 200 answer with an ETag (list, search, view) is kept as the JSON the gateway sent, under the
 * request's identity (mode, service, resource, act and its parameters but `sum`). The next
 * request with that identity still goes to its service, with the kept tag as its If-None-Match:
 * the service reads the version counters in Redis (one round trip, as for any conditional
 * request) and answers 304 without reading or rendering the records when nothing changed; the
 * gateway then answers with the kept bytes. An answer is never served without its service
 * having confirmed, during the request, that it is current (the same rule as a client's own
 * If-None-Match). The cache is bounded by bytes (least recently used first out; an answer larger
 * than a quarter of the bound is not kept). One event loop: not thread-safe.
 */
#ifndef GW_CACHE_H
#define GW_CACHE_H

#include <stddef.h>
#include <stdint.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include "xws/proto.h"

typedef struct gw_cache gw_cache_t;

/* A cache of at most max_bytes of answers (keys and tags counted); NULL when max_bytes is 0 (no
 * cache: every call below accepts NULL and keeps nothing). */
gw_cache_t *gw_cache_new(size_t max_bytes);
void gw_cache_destroy(gw_cache_t **self_p);

/*
 * The identity of a request, allocated in pool: mode, service, resource, act, then each
 * parameter but `sum` (in the query's order), each part followed by a NUL. The `sum` parameter
 * only compares a digest of the answer (the gateway does it), so it does not change the answer.
 */
h2o_iovec_t gw_cache_key(h2o_mem_pool_t *pool, const char *mode, const char *service, const char *resource, xws_slice_t act,
                         const xws_kv_t *params, size_t nparams);

/*
 * The answer kept under key: 1 with *etag and *body, which live as long as pool (the body is
 * shared with the cache, not copied; it outlives its eviction), or 0 when none.
 */
int gw_cache_get(gw_cache_t *self, h2o_mem_pool_t *pool, h2o_iovec_t key, h2o_iovec_t *etag, h2o_iovec_t *body);

/* Keeps a copy of body under key with etag, in place of what was kept; evicts the least recently used beyond the bound. */
void gw_cache_put(gw_cache_t *self, h2o_iovec_t key, xws_slice_t etag, const char *body, size_t len);

/* Counts an answer served from the cache (hit) or rendered from its service's reply (miss). */
void gw_cache_count(gw_cache_t *self, int hit);

typedef struct {
    size_t entries, bytes, max_bytes;
    uint64_t hits, misses, evictions;
} gw_cache_stats_t;

/* The figures of the cache (all 0 without one). */
gw_cache_stats_t gw_cache_stats(const gw_cache_t *self);

void gw_cache_test(void);

#endif
