/*
 * svc_ctx - the context of one request inside a worker: the decoded request, the Redis handle,
 * the reply being built, and a per-request string pool. Handlers receive a svc_ctx_t and end by
 * calling exactly one svc_reply_* function.
 *
 * The "...OrReply" idiom: every helper named *_or_reply either succeeds (returns 0) or writes the
 * error answer into the context itself and returns -1, so a handler reads top to bottom:
 *
 *     long long id;
 *     if (svc_param_id_or_reply(ctx, "id", &id) != 0)
 *         return -1;
 */
#ifndef SVC_CTX_H
#define SVC_CTX_H

#include <stddef.h>
#include <msgpack.h>
#include <hiredis.h>
#include "xws/proto.h"
#include "svc_redis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_pool_item svc_pool_item_t;

typedef struct svc_ctx {
    const xws_request_t *req; /* the request (NULL for command-line tools) */
    svc_redis_t *redis;       /* the worker's Redis (borrowed) */
    const char *prefix;       /* key prefix, e.g. "xws:" (borrowed) */
    long long write_id_ttl;   /* seconds a write outcome is kept */
    const char *rid;          /* NUL-terminated request id (pooled) */
    void *data;               /* the service's own state (borrowed) */
    /* the reply */
    unsigned status;        /* 0 until a svc_reply_* call */
    msgpack_sbuffer body;   /* encoded body: empty or exactly one msgpack object */
    msgpack_packer pk;      /* packs into body */
    char etag[72];          /* "" or a quoted strong entity tag */
    int replayed;           /* 1: the reply is the recorded outcome of an earlier request with this rid */
    svc_pool_item_t *_pool; /* strings freed with the context */
} svc_ctx_t;

/*
 * Initialises ctx for one request (req may be NULL: then rid is a fresh random id). All pointers
 * are borrowed. Dispose with svc_ctx_dispose.
 */
void svc_ctx_init(svc_ctx_t *ctx, const xws_request_t *req, svc_redis_t *redis, const char *prefix, long long write_id_ttl,
                  void *data);
/* Frees the reply body and the pool. */
void svc_ctx_dispose(svc_ctx_t *ctx);

/* The name of function name of the library as loaded (its version suffix added: svc_redis.h),
 * for FCALLs built by hand (a pipeline); pooled in ctx. */
const char *svc_fn(svc_ctx_t *ctx, const char *name);

/* A NUL-terminated copy of p/len that lives until svc_ctx_dispose. */
char *svc_ctx_strndup(svc_ctx_t *ctx, const char *p, size_t len);
/* A pooled printf. */
char *svc_ctx_printf(svc_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The Redis key prefix + suffix (pooled), e.g. svc_key(ctx, "entity:data"). */
const char *svc_key(svc_ctx_t *ctx, const char *suffix);
/* The Redis key prefix + a + b (pooled), e.g. svc_key2(ctx, "ver:", "users"). */
const char *svc_key2(svc_ctx_t *ctx, const char *a, const char *b);
/* a + b (pooled), e.g. svc_ctx_cat(ctx, "user:", id). */
const char *svc_ctx_cat(svc_ctx_t *ctx, const char *a, const char *b);
/* v in decimal (pooled): svc_ctx_printf(ctx, "%lld", v) without the printf machinery, for the
 * keys and hash fields built per request. */
const char *svc_ctx_ll(svc_ctx_t *ctx, long long v);

/* ---- reply ------------------------------------------------------------------------------------ */

/*
 * Sets an error reply {"error": code, "field": field, "message": ...}. Always returns -1 so that
 * handlers can `return svc_reply_error(...)`.
 */
int svc_reply_error(svc_ctx_t *ctx, unsigned status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Sets a reply with no body (200, 204, 304, ...). Returns 0. */
int svc_reply_empty(svc_ctx_t *ctx, unsigned status);
/* Starts a reply with a body: returns the packer; the caller packs exactly one object. */
msgpack_packer *svc_reply_begin(svc_ctx_t *ctx, unsigned status);
/* 503 store_unavailable "the data store is unavailable" (Redis down or not answering; the gateway adds Retry-After). Returns -1. */
int svc_reply_unavailable(svc_ctx_t *ctx);
/* 500 internal_error; what is logged (never sent) says why. Returns -1. */
int svc_reply_internal(svc_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Answers a failed Redis call: NULL → 503 store_unavailable, an error reply → 500 (logged). Returns -1. */
int svc_reply_redis_failure(svc_ctx_t *ctx, const redisReply *r, const char *what);

/* ---- parameters and body ---------------------------------------------------------------------- */

/* The parameter name as a pooled NUL-terminated string, or NULL when absent. */
const char *svc_param(svc_ctx_t *ctx, const char *name);
/*
 * Reads parameter name as an id (1 to 2^53, decimal digits). Absent or malformed → 404
 * not_found (an id that cannot exist names nothing).
 */
int svc_param_id_or_reply(svc_ctx_t *ctx, const char *name, long long *id);
/* The body as a map: absent → 400 empty_body, another type → 400 not_an_object. */
int svc_body_map_or_reply(svc_ctx_t *ctx, const msgpack_object **map);
/* 1 when the caller mode of the request is mode. */
int svc_caller_is(svc_ctx_t *ctx, const char *mode);

/* ---- writes -------------------------------------------------------------------------------------- */

/*
 * Runs a write function with de-duplication: FCALL fn with KEYS = [<prefix>wid:<rid>, keys...] and
 * ARGV = [write_id_ttl, args...]. The Lua side wraps its body with xws_write() (see the common
 * prelude), which returns the stored outcome of an earlier call with the same rid, or runs the
 * write and stores its outcome, in the same atomic call. A request id starting with "bootstrap:"
 * (xws-bootstrap) has its outcome kept without expiry, so that a bootstrap item is applied once
 * per store. A recorded outcome sets ctx->replayed (the reply envelope then says "replayed").
 *
 * The outcome is an array {status, ...}: {200|204} or {200, <msgpack body>} for success,
 * {status, code, field, message} for an error, {0, reason} for "conflict, try again" (not
 * stored). Returns 0 when the outcome is a success, -1 otherwise; the reply is set in both cases
 * (ctx->status tells 200 from 204). A conflict outcome here is unexpected: 500, -1.
 */
int svc_write(svc_ctx_t *ctx, const char *fn, int nkeys, const char *const *keys, int nargs, const char *const *args,
              const size_t *arglens);
/* How many times a compare-and-set write reads again and retries after a conflict before it gives
 * up (500). Above the number of writers that can race on one record in practice (a worker's credit
 * per gateway), so that a burst of concurrent edits of one object all succeed. */
#define SVC_CAS_ATTEMPTS 64

/*
 * svc_write for a compare-and-set write: a conflict outcome sets *conflict to 1 and returns 0
 * with no reply (re-read and try again); otherwise *conflict is 0 and the result is svc_write's.
 */
int svc_write_cas(svc_ctx_t *ctx, int *conflict, const char *fn, int nkeys, const char *const *keys, int nargs,
                  const char *const *args, const size_t *arglens);
/*
 * Converts an outcome array (see svc_write) into the reply: 0 for a success, -1 for an error
 * outcome or a malformed one (500). conflict: as in svc_write_cas, or NULL (a conflict is a 500).
 */
int svc_outcome_reply(svc_ctx_t *ctx, const redisReply *r, int *conflict);

/* ---- conditional reads ---------------------------------------------------------------------------- */

/*
 * Computes the ETag of this read from the version counters (<prefix>ver:<resource>) of the
 * NULL-terminated resources list, read now (before the data), and stores it in ctx->etag.
 * Returns 0 to go on (read the data, reply 200: the etag is sent along), or -1 with the reply
 * set: 304 when the request's If-None-Match equals the tag (ctx->status == 304; the handler just
 * returns), 500 when Redis failed.
 */
int svc_etag_or_reply(svc_ctx_t *ctx, const char *const *resources);

/*
 * svc_etag_or_reply(), plus one read command (argc/argv) sent in the same round trip right after
 * the versions (so the data are never older than the ETag). A conditional request (with an
 * If-None-Match: a client's, or the gateway's for the answer it keeps) reads the versions alone
 * first, and the data in a second round trip only when the tag differs, so that its 304 reads no
 * data. On 0, *data holds the command's reply (the caller frees it; it may be an error reply);
 * on -1 (304 or failure), *data is NULL.
 */
int svc_etag_prefetch_or_reply(svc_ctx_t *ctx, const char *const *resources, int argc, const char **argv, redisReply **data);

/*
 * svc_etag_prefetch_or_reply() with a transaction as the read: MULTI, the ncmd commands
 * (argcs/argvs), EXEC, in the same round trip right after the versions, so that several reads
 * (for example whole hashes read with HGETALL, which no Lua function then copies) see one state.
 * On 0, *data holds EXEC's reply (an array of the ncmd replies; or an error or nil reply, which
 * the caller checks); on -1, *data is NULL.
 */
int svc_etag_prefetch_tx_or_reply(svc_ctx_t *ctx, const char *const *resources, int ncmd, const int *argcs,
                                  const char *const *const *argvs, redisReply **data);

void svc_ctx_test(void);

#ifdef __cplusplus
}
#endif
#endif
