/* svc_ctx.c - see svc_ctx.h */
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <openssl/sha.h>
#include "svc_ctx.h"
#include "svc_etag.h"
#include "svc_log.h"
#include "svc_mp.h"
#include "svc_util.h"

/* the pool: blocks of POOL_BLOCK bytes (a longer text gets a block of its own), filled from the start */
#define POOL_BLOCK 4096
struct svc_pool_item {
    svc_pool_item_t *next;
    size_t used, cap; /* bytes of text taken, and room */
    char text[];
};

/* n bytes of the pool */
static char *s_pool_take(svc_ctx_t *ctx, size_t n)
{
    svc_pool_item_t *it = ctx->_pool;
    if (it == NULL || it->cap - it->used < n) {
        size_t cap = n > POOL_BLOCK ? n : POOL_BLOCK;
        it = svc_malloc(sizeof(*it) + cap);
        it->used = 0;
        it->cap = cap;
        if (n > POOL_BLOCK / 2 && ctx->_pool != NULL) { /* a long text: keep filling the current block after it */
            it->next = ctx->_pool->next;
            ctx->_pool->next = it;
        } else {
            it->next = ctx->_pool;
            ctx->_pool = it;
        }
    }
    char *p = it->text + it->used;
    it->used += n;
    return p;
}

void svc_ctx_init(svc_ctx_t *ctx, const xws_request_t *req, svc_redis_t *redis, const char *prefix, long long write_id_ttl,
                  void *data)
{
    assert(ctx != NULL && prefix != NULL);
    memset(ctx, 0, sizeof(*ctx));
    ctx->req = req;
    ctx->redis = redis;
    ctx->prefix = prefix;
    ctx->write_id_ttl = write_id_ttl > 0 ? write_id_ttl : 600;
    ctx->data = data;
    msgpack_sbuffer_init(&ctx->body);
    msgpack_packer_init(&ctx->pk, &ctx->body, svc_mp_write);
    if (req != NULL && req->rid.len > 0) {
        ctx->rid = svc_ctx_strndup(ctx, req->rid.ptr, req->rid.len);
    } else {
        char r[33];
        svc_random_chars(r, 32, "0123456789abcdef");
        ctx->rid = svc_ctx_printf(ctx, "local-%s", r);
    }
}

void svc_ctx_dispose(svc_ctx_t *ctx)
{
    msgpack_sbuffer_destroy(&ctx->body);
    msgpack_sbuffer_init(&ctx->body);
    while (ctx->_pool != NULL) {
        svc_pool_item_t *next = ctx->_pool->next;
        free(ctx->_pool);
        ctx->_pool = next;
    }
}

const char *svc_fn(svc_ctx_t *ctx, const char *name)
{
    return svc_ctx_printf(ctx, "%s%s", name, svc_redis_fn_suffix(ctx->redis));
}

char *svc_ctx_strndup(svc_ctx_t *ctx, const char *p, size_t len)
{
    char *d = s_pool_take(ctx, len + 1);
    if (len > 0)
        memcpy(d, p, len);
    d[len] = '\0';
    return d;
}

static char *s_vprintf(svc_ctx_t *ctx, const char *fmt, va_list ap)
{
    va_list ap2;
    svc_pool_item_t *it = ctx->_pool;
    if (it != NULL && it->cap > it->used) { /* straight into the current block when it fits */
        size_t room = it->cap - it->used;
        va_copy(ap2, ap);
        int k = vsnprintf(it->text + it->used, room, fmt, ap2);
        va_end(ap2);
        if (k >= 0 && (size_t)k < room) {
            char *d = it->text + it->used;
            it->used += (size_t)k + 1;
            return d;
        }
    }
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *d = s_pool_take(ctx, (size_t)n + 1);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    return d;
}

char *svc_ctx_printf(svc_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = s_vprintf(ctx, fmt, ap);
    va_end(ap);
    return s;
}

const char *svc_key(svc_ctx_t *ctx, const char *suffix)
{
    size_t pl = strlen(ctx->prefix), sl = strlen(suffix);
    char *k = s_pool_take(ctx, pl + sl + 1);
    memcpy(k, ctx->prefix, pl);
    memcpy(k + pl, suffix, sl + 1);
    return k;
}

static const char *s_cat3(svc_ctx_t *ctx, const char *a, const char *b, const char *c)
{
    size_t al = strlen(a), bl = strlen(b), cl = strlen(c);
    char *k = s_pool_take(ctx, al + bl + cl + 1);
    memcpy(k, a, al);
    memcpy(k + al, b, bl);
    memcpy(k + al + bl, c, cl + 1);
    return k;
}

const char *svc_key2(svc_ctx_t *ctx, const char *a, const char *b)
{
    return s_cat3(ctx, ctx->prefix, a, b);
}

const char *svc_ctx_cat(svc_ctx_t *ctx, const char *a, const char *b)
{
    return s_cat3(ctx, a, b, "");
}

const char *svc_ctx_ll(svc_ctx_t *ctx, long long v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    *--p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return svc_ctx_strndup(ctx, p, (size_t)(tmp + sizeof(tmp) - 1 - p));
}

/* ---- reply ---------------------------------------------------------------------------------- */

static void s_reset_body(svc_ctx_t *ctx)
{
    msgpack_sbuffer_clear(&ctx->body);
}

int svc_reply_error(svc_ctx_t *ctx, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s_reset_body(ctx);
    ctx->status = status;
    ctx->etag[0] = '\0';
    msgpack_pack_map(&ctx->pk, 3);
    svc_mp_key(&ctx->pk, "error");
    svc_mp_cstr(&ctx->pk, code);
    svc_mp_key(&ctx->pk, "field");
    svc_mp_cstr(&ctx->pk, field != NULL ? field : "");
    svc_mp_key(&ctx->pk, "message");
    svc_mp_cstr(&ctx->pk, msg);
    return -1;
}

int svc_reply_empty(svc_ctx_t *ctx, unsigned status)
{
    s_reset_body(ctx);
    ctx->status = status;
    return 0;
}

msgpack_packer *svc_reply_begin(svc_ctx_t *ctx, unsigned status)
{
    s_reset_body(ctx);
    ctx->status = status;
    return &ctx->pk;
}

int svc_reply_unavailable(svc_ctx_t *ctx)
{
    return svc_reply_error(ctx, 503, "store_unavailable", "", "the data store (Redis) is unavailable, try again");
}

int svc_reply_internal(svc_ctx_t *ctx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    svc_log(SVC_LOG_ERROR, "request %s: %s", ctx->rid, msg);
    return svc_reply_error(ctx, 500, "internal_error", "", "internal error");
}

int svc_reply_redis_failure(svc_ctx_t *ctx, const redisReply *r, const char *what)
{
    if (r == NULL)
        return svc_reply_unavailable(ctx);
    if (r->type == REDIS_REPLY_ERROR)
        return svc_reply_internal(ctx, "%s: redis error: %s", what, r->str);
    return svc_reply_internal(ctx, "%s: unexpected redis reply type %d", what, r->type);
}

/* ---- parameters and body -------------------------------------------------------------------- */

const char *svc_param(svc_ctx_t *ctx, const char *name)
{
    xws_slice_t v;
    if (ctx->req == NULL || xws_request_param(ctx->req, name, &v) != 0)
        return NULL;
    return svc_ctx_strndup(ctx, v.ptr, v.len);
}

int svc_param_id_or_reply(svc_ctx_t *ctx, const char *name, long long *id)
{
    const char *v = svc_param(ctx, name);
    if (v == NULL || *v == '\0')
        return svc_reply_error(ctx, 404, "not_found", name, "no %s given", name);
    long long n = 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > (1LL << 53) / 10)
            return svc_reply_error(ctx, 404, "not_found", name, "no object has this %s", name);
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > (1LL << 53))
        return svc_reply_error(ctx, 404, "not_found", name, "no object has this %s", name);
    *id = n;
    return 0;
}

int svc_body_map_or_reply(svc_ctx_t *ctx, const msgpack_object **map)
{
    const msgpack_object *b = ctx->req != NULL ? ctx->req->body : NULL;
    if (b == NULL || b->type == MSGPACK_OBJECT_NIL)
        return svc_reply_error(ctx, 400, "empty_body", "", "a JSON object body is required");
    if (b->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "not_an_object", "", "the body must be a JSON object");
    *map = b;
    return 0;
}

int svc_caller_is(svc_ctx_t *ctx, const char *mode)
{
    return ctx->req != NULL && xws_slice_eq(ctx->req->caller_mode, mode);
}

/* ---- writes ----------------------------------------------------------------------------------- */

static int s_rstr(const redisReply *r, const char **p, size_t *len)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        *p = r->str, *len = r->len;
        return 0;
    }
    return -1;
}

int svc_outcome_reply(svc_ctx_t *ctx, const redisReply *r, int *conflict)
{
    if (conflict != NULL)
        *conflict = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
        return svc_reply_redis_failure(ctx, r, "write outcome");
    long long status = r->element[0]->integer;
    if (status == 0 && conflict != NULL) {
        *conflict = 1; /* the caller re-reads and retries */
        return 0;
    }
    if (status == 0)
        return svc_reply_internal(ctx, "write outcome: a conflict where none is expected");
    if (status >= 1100 && status <= 1599) {
        status -= 1000; /* a recorded outcome (see the prelude) */
        ctx->replayed = 1;
    }
    if (status < 100 || status > 599)
        return svc_reply_internal(ctx, "write outcome: bad status %lld", status);
    if (status < 400) {
        const char *p = NULL;
        size_t len = 0;
        if (r->elements >= 2 && s_rstr(r->element[1], &p, &len) == 0 && len > 0) {
            msgpack_unpacked u;
            int ok = svc_mp_unpack(&u, p, len) == 0;
            msgpack_unpacked_destroy(&u);
            if (!ok)
                return svc_reply_internal(ctx, "write outcome: malformed body");
            svc_reply_begin(ctx, (unsigned)status);
            msgpack_sbuffer_write(&ctx->body, p, len);
        } else {
            svc_reply_empty(ctx, (unsigned)status);
        }
        return 0;
    }
    const char *code = "internal_error", *field = "", *message = "";
    char *s[3] = {NULL, NULL, NULL};
    for (size_t i = 1; i < r->elements && i < 4; i++) {
        const char *p;
        size_t len;
        if (s_rstr(r->element[i], &p, &len) == 0)
            s[i - 1] = svc_ctx_strndup(ctx, p, len);
    }
    if (s[0] != NULL)
        code = s[0];
    if (s[1] != NULL)
        field = s[1];
    if (s[2] != NULL)
        message = s[2];
    return svc_reply_error(ctx, (unsigned)status, code, field, "%s", message);
}

/*
 * The fingerprint of the request behind a write (hex SHA-256 of service, resource, act, params and
 * body; "" without a request): a write id reused for another request is refused, not replayed.
 */
static void s_request_fingerprint(const svc_ctx_t *ctx, char out[65])
{
    out[0] = '\0';
    const xws_request_t *q = ctx->req;
    if (q == NULL)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, 5);
    svc_mp_strn(&pk, q->service.ptr, q->service.len);
    svc_mp_strn(&pk, q->resource.ptr, q->resource.len);
    svc_mp_strn(&pk, q->act.ptr, q->act.len);
    if (q->params != NULL)
        msgpack_pack_object(&pk, (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = *q->params});
    else
        msgpack_pack_nil(&pk);
    if (q->body != NULL)
        msgpack_pack_object(&pk, *q->body);
    else
        msgpack_pack_nil(&pk);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)sb.data, sb.size, md);
    msgpack_sbuffer_destroy(&sb);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int svc_write(svc_ctx_t *ctx, const char *fn, int nkeys, const char *const *keys, int nargs, const char *const *args,
              const size_t *arglens)
{
    return svc_write_cas(ctx, NULL, fn, nkeys, keys, nargs, args, arglens);
}

int svc_write_cas(svc_ctx_t *ctx, int *conflict, const char *fn, int nkeys, const char *const *keys, int nargs,
                  const char *const *args, const size_t *arglens)
{
    if (conflict != NULL)
        *conflict = 0;
    const char **k = svc_calloc((size_t)nkeys + 1, sizeof(*k));
    const char **a = svc_calloc((size_t)nargs + 1, sizeof(*a));
    size_t *l = svc_calloc((size_t)nargs + 1, sizeof(*l));
    k[0] = svc_ctx_printf(ctx, "%swid:%s", ctx->prefix, ctx->rid);
    for (int i = 0; i < nkeys; i++)
        k[i + 1] = keys[i];
    /* bootstrap writes are recorded for good: a later start must not apply them again */
    char fp[65];
    s_request_fingerprint(ctx, fp);
    a[0] = svc_ctx_printf(ctx, "%lld:%s", strncmp(ctx->rid, "bootstrap:", 10) == 0 ? 0LL : ctx->write_id_ttl, fp);
    l[0] = strlen(a[0]);
    for (int i = 0; i < nargs; i++) {
        a[i + 1] = args[i];
        l[i + 1] = arglens != NULL ? arglens[i] : strlen(args[i]);
    }
    redisReply *r = svc_redis_fcall(ctx->redis, 0, fn, nkeys + 1, k, nargs + 1, a, l);
    free(k);
    free(a);
    free(l);
    int rc = r == NULL ? svc_reply_unavailable(ctx) : svc_outcome_reply(ctx, r, conflict);
    freeReplyObject(r);
    int acked;
    if (svc_redis_wait_wanted(ctx->redis) > 0 && (conflict == NULL || !*conflict) && ctx->status < 300 &&
        svc_redis_wait(ctx->redis, &acked) != 0)
        /* applied on the primary, not known to be on enough replicas: a failover now could lose it */
        rc = svc_reply_error(ctx, 503, "store_unavailable", "",
                             "the write reached the primary data store but only %d of %d replicas confirmed it; it may "
                             "be lost if the primary fails now: check, then retry",
                             acked, svc_redis_wait_wanted(ctx->redis));
    return rc;
}

/* ---- conditional reads ---------------------------------------------------------------------- */

static int s_parse_ll(const redisReply *r, long long *out)
{
    if (r->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 19)
        return -1;
    long long n = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return -1;
        int d = r->str[i] - '0';
        if (n > (LLONG_MAX - d) / 10) /* 19 digits may pass LLONG_MAX (a corrupt counter) */
            return -1;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

static int s_etag_prefetch_or_reply(svc_ctx_t *ctx, const char *const *resources, int ndata, const int *argcs,
                                    const char *const *const *argvs, redisReply **data);

int svc_etag_or_reply(svc_ctx_t *ctx, const char *const *resources)
{
    return svc_etag_prefetch_or_reply(ctx, resources, 0, NULL, NULL);
}

int svc_etag_prefetch_or_reply(svc_ctx_t *ctx, const char *const *resources, int argc, const char **argv_data, redisReply **data)
{
    const char *const *argvs[1] = {(const char *const *)argv_data};
    return s_etag_prefetch_or_reply(ctx, resources, argc > 0 ? 1 : 0, &argc, argvs, data);
}

int svc_etag_prefetch_tx_or_reply(svc_ctx_t *ctx, const char *const *resources, int ncmd, const int *argcs,
                                  const char *const *const *argvs, redisReply **data)
{
    assert(ncmd >= 1);
    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
    int *c = svc_calloc((size_t)ncmd + 2, sizeof(*c));
    const char *const **v = svc_calloc((size_t)ncmd + 2, sizeof(*v));
    c[0] = c[ncmd + 1] = 1;
    v[0] = multi;
    v[ncmd + 1] = exec;
    for (int i = 0; i < ncmd; i++)
        c[i + 1] = argcs[i], v[i + 1] = argvs[i];
    int rc = s_etag_prefetch_or_reply(ctx, resources, ncmd + 2, c, v, data);
    free(c);
    free(v);
    return rc;
}

/* the versions, then ndata commands (argcs/argvs) in the same round trip; *data: the last one's reply */
static int s_etag_prefetch_or_reply(svc_ctx_t *ctx, const char *const *resources, int ndata, const int *argcs,
                                    const char *const *const *argvs, redisReply **data)
{
    if (data != NULL)
        *data = NULL;
    size_t n = 0;
    while (resources[n] != NULL)
        n++;
    const char **argv = svc_calloc(n + 2, sizeof(*argv));
    argv[0] = "MGET";
    argv[1] = svc_key(ctx, "epoch");
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = svc_key2(ctx, "ver:", resources[i]);
    redisReply *r = NULL, *d = NULL;
    /* a conditional request (a client's If-None-Match, or the gateway confirming the answer it
     * keeps) is most often answered 304: the versions alone first, and the data only when the tag
     * differs, in a second round trip (read after the versions: never older than the tag) */
    int conditional = ctx->req != NULL && ctx->req->inm.len > 0;
    if (ndata > 0 && !conditional) {
        /* versions first, then the data, in one round trip; the replies before the last are dropped
         * (MULTI's OK and the QUEUED of a transaction: EXEC, the last, says how it went) */
        int *c = svc_calloc((size_t)ndata + 1, sizeof(*c));
        const char *const **v = svc_calloc((size_t)ndata + 1, sizeof(*v));
        redisReply **out = svc_calloc((size_t)ndata + 1, sizeof(*out));
        c[0] = (int)n + 2;
        v[0] = argv;
        for (int i = 0; i < ndata; i++)
            c[i + 1] = argcs[i], v[i + 1] = argvs[i];
        if (svc_redis_pipeline(ctx->redis, ndata + 1, c, v, out) == 0) {
            r = out[0], d = out[ndata];
            for (int i = 1; i < ndata; i++)
                freeReplyObject(out[i]);
        }
        free(c);
        free(v);
        free(out);
    } else {
        r = svc_redis_command(ctx->redis, (int)n + 2, argv, NULL);
    }
    free(argv);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != n + 1) {
        svc_reply_redis_failure(ctx, r, "reading versions");
        freeReplyObject(r);
        freeReplyObject(d);
        return -1;
    }
    long long *vers = svc_calloc(n + 1, sizeof(*vers));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (s_parse_ll(r->element[i + 1], &vers[i]) != 0)
            rc = svc_reply_internal(ctx, "version counter of %s is not a number", resources[i]);
    char *epoch = NULL;
    if (rc == 0 && r->element[0]->type == REDIS_REPLY_STRING) {
        epoch = svc_ctx_strndup(ctx, r->element[0]->str, r->element[0]->len);
    } else if (rc == 0) {
        /* a fresh (or wiped) store: create its epoch once, whoever comes first */
        char token[33];
        svc_random_chars(token, 32, "0123456789abcdef");
        const char *set[] = {"SET", svc_key(ctx, "epoch"), token, "NX", "GET"};
        redisReply *s = svc_redis_command(ctx->redis, 5, set, NULL);
        if (s != NULL && s->type == REDIS_REPLY_STRING)
            epoch = svc_ctx_strndup(ctx, s->str, s->len); /* another worker won the race */
        else if (s != NULL && s->type == REDIS_REPLY_NIL)
            epoch = svc_ctx_strndup(ctx, token, 32);
        else
            rc = svc_reply_redis_failure(ctx, s, "creating the store epoch");
        freeReplyObject(s);
    }
    freeReplyObject(r);
    if (rc != 0) {
        free(vers);
        freeReplyObject(d);
        return -1;
    }
    const xws_request_t *q = ctx->req;
    char *service = q ? svc_ctx_strndup(ctx, q->service.ptr, q->service.len) : "";
    char *resource = q ? svc_ctx_strndup(ctx, q->resource.ptr, q->resource.len) : "";
    char *act = q ? svc_ctx_strndup(ctx, q->act.ptr, q->act.len) : "";
    /* the Redis process too: one restarted from a file that lost its last writes (appendfsync
     * everysec) may count the versions up again to numbers already tagged, with other data */
    const char *instance = svc_ctx_cat(ctx, epoch, svc_ctx_cat(ctx, "/", svc_redis_run_id(ctx->redis)));
    svc_etag_compute(ctx->prefix, service, resource, act, q ? q->params : NULL, instance, vers, n, ctx->etag);
    free(vers);
    if (q != NULL && q->inm.len > 0 && xws_slice_eq(q->inm, ctx->etag)) {
        freeReplyObject(d);
        svc_reply_empty(ctx, 304);
        return -1; /* the reply is set: 304, and nothing to read */
    }
    if (ndata > 0 && conditional) { /* the tag differs: now the data */
        redisReply **out = svc_calloc((size_t)ndata + 1, sizeof(*out));
        if (svc_redis_pipeline(ctx->redis, ndata, argcs, argvs, out) == 0) {
            d = out[ndata - 1];
            for (int i = 0; i < ndata - 1; i++)
                freeReplyObject(out[i]);
        }
        free(out);
        if (d == NULL)
            return svc_reply_redis_failure(ctx, NULL, "reading data");
    }
    if (data != NULL)
        *data = d;
    else
        freeReplyObject(d);
    return 0;
}

void svc_ctx_test(void)
{
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "p:", 0, NULL);
    XWS_CHECK(strncmp(ctx.rid, "local-", 6) == 0 && strlen(ctx.rid) == 38);
    XWS_CHECK(ctx.write_id_ttl == 600);
    XWS_CHECK(strcmp(svc_key(&ctx, "entity:data"), "p:entity:data") == 0);
    XWS_CHECK(strcmp(svc_ctx_printf(&ctx, "%d-%s", 4, "x"), "4-x") == 0);
    XWS_CHECK(strcmp(svc_key2(&ctx, "ver:", "users"), "p:ver:users") == 0);
    XWS_CHECK(strcmp(svc_ctx_cat(&ctx, "user:", "42"), "user:42") == 0 && strcmp(svc_ctx_cat(&ctx, "", ""), "") == 0);
    {
        static const long long vals[] = {0, 7, -7, 10, 123456789, -1000000000000LL, LLONG_MAX, LLONG_MIN};
        char want[32];
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            snprintf(want, sizeof(want), "%lld", vals[i]);
            XWS_CHECK(strcmp(svc_ctx_ll(&ctx, vals[i]), want) == 0);
        }
    }
    /* the pool: texts of every size stay intact while blocks fill and long texts get their own */
    {
        const char *kept[600];
        char want[32];
        for (int i = 0; i < 600; i++)
            kept[i] = i % 3 == 0 ? svc_ctx_printf(&ctx, "text-%d", i)
                                 : svc_ctx_strndup(&ctx, "abcdefghijklmnopqrstuvwxyz", (size_t)i % 27);
        char *big = svc_calloc(3 * POOL_BLOCK, 1);
        memset(big, 'b', 3 * POOL_BLOCK - 1);
        const char *b1 = svc_ctx_strndup(&ctx, big, 3 * POOL_BLOCK - 1), *b2 = svc_ctx_printf(&ctx, "%s!", big);
        const char *after = svc_ctx_printf(&ctx, "after-%d", 7);
        for (int i = 0; i < 600; i++) {
            if (i % 3 == 0)
                snprintf(want, sizeof(want), "text-%d", i);
            else
                snprintf(want, sizeof(want), "%.*s", i % 27, "abcdefghijklmnopqrstuvwxyz");
            XWS_CHECK(strcmp(kept[i], want) == 0);
        }
        XWS_CHECK(strcmp(b1, big) == 0 && strlen(b2) == 3 * POOL_BLOCK && b2[3 * POOL_BLOCK - 1] == '!');
        XWS_CHECK(strcmp(after, "after-7") == 0 && strcmp(svc_key(&ctx, "x:y"), "p:x:y") == 0);
        free(big);
    }
    XWS_CHECK(svc_param(&ctx, "id") == NULL);
    long long id = 0;
    XWS_CHECK(svc_param_id_or_reply(&ctx, "id", &id) == -1 && ctx.status == 404);
    const msgpack_object *m;
    XWS_CHECK(svc_body_map_or_reply(&ctx, &m) == -1 && ctx.status == 400);
    static const struct {
        const char *text;
        int rc;
        long long value;
    } counters[] = {
        {"0", 0, 0},
        {"9223372036854775807", 0, LLONG_MAX},
        {"9223372036854775808", -1, 0},
        {"9999999999999999999", -1, 0},
        {"", -1, 0},
        {"12a", -1, 0},
        {"-1", -1, 0},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        redisReply rep = {.type = REDIS_REPLY_STRING, .str = (char *)counters[i].text, .len = strlen(counters[i].text)};
        long long v = -7;
        XWS_CHECK(s_parse_ll(&rep, &v) == counters[i].rc && (counters[i].rc != 0 || v == counters[i].value));
    }
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, ctx.body.data, ctx.body.size) == 0);
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "error"), "empty_body"));
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "field"), ""));
    msgpack_unpacked_destroy(&u);
    XWS_CHECK(svc_reply_empty(&ctx, 204) == 0 && ctx.status == 204 && ctx.body.size == 0);

    /* outcome arrays */
    redisReply st = {.type = REDIS_REPLY_INTEGER, .integer = 400};
    redisReply code = {.type = REDIS_REPLY_STRING, .str = "already_exists", .len = 14};
    redisReply field = {.type = REDIS_REPLY_STRING, .str = "name", .len = 4};
    redisReply msg = {.type = REDIS_REPLY_STRING, .str = "taken", .len = 5};
    redisReply *els[] = {&st, &code, &field, &msg};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = els};
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == -1 && ctx.status == 400);
    XWS_CHECK(svc_mp_unpack(&u, ctx.body.data, ctx.body.size) == 0);
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "error"), "already_exists"));
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "field"), "name"));
    XWS_CHECK(svc_mp_str_eq(svc_mp_get(&u.data, "message"), "taken"));
    msgpack_unpacked_destroy(&u);
    st.integer = 200;
    code.str = "\x92\x01\x02", code.len = 3; /* [1, 2] */
    arr.elements = 2;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == 0 && ctx.status == 200 && ctx.body.size == 3);
    code.str = "\x92\x01", code.len = 2; /* truncated */
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == -1 && ctx.status == 500);
    arr.elements = 1;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == 0 && ctx.body.size == 0);
    /* a conflict: reported through the out-parameter, no reply; without one it is a 500 */
    int conflict = 0;
    st.integer = 0;
    ctx.status = 0;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, &conflict) == 0 && conflict == 1 && ctx.status == 0);
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == -1 && ctx.status == 500);
    XWS_CHECK(ctx.replayed == 0);
    st.integer = 400;
    arr.elements = 4;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, &conflict) == -1 && conflict == 0 && ctx.status == 400);
    arr.elements = 1;
    st.integer = 1200; /* a recorded outcome */
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == 0 && ctx.status == 200 && ctx.replayed == 1);
    ctx.replayed = 0;
    st.integer = 7;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == -1 && ctx.status == 500);
    st.type = REDIS_REPLY_STRING;
    XWS_CHECK(svc_outcome_reply(&ctx, &arr, NULL) == -1 && ctx.status == 500);
    XWS_CHECK(svc_outcome_reply(&ctx, NULL, NULL) == -1 && ctx.status == 503); /* Redis unavailable */
    svc_ctx_dispose(&ctx);
}
