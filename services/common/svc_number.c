/* svc_number.c - see svc_number.h */
#include <stdlib.h>
#include <string.h>
#include "svc_number.h"
#include "svc_mp.h"
#include "svc_util.h"

static const char *const s_types[] = {"user", "group", "queue", "meetme", "incall"};
#define S_TYPE_POS 6 /* 0-based position of the user ranges in a context record */

const char *svc_number_key(svc_ctx_t *ctx, const char *context)
{
    return svc_ctx_printf(ctx, "%scontext:numbers:%s", ctx->prefix, context);
}

const char *svc_number_idx_key(svc_ctx_t *ctx, const char *context)
{
    return svc_ctx_printf(ctx, "%scontext:numidx:%s", ctx->prefix, context);
}

int svc_number_in_range(const char *num, const svc_range_t *r)
{
    size_t n = strlen(num), b = strlen(r->beg);
    if (b == 0)
        return 1;
    if (r->end[0] == '\0')
        return strcmp(num, r->beg) == 0;
    return n == b && strcmp(num, r->beg) >= 0 && strcmp(num, r->end) <= 0;
}

static int s_bound(const msgpack_object *o, char out[SVC_NUMBER_MAX_DIGITS + 1])
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > SVC_NUMBER_MAX_DIGITS)
        return -1;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return 0;
}

int svc_context_ranges_or_reply(svc_ctx_t *ctx, const char *context, const char *type, svc_range_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int t = -1;
    for (int i = 0; i < 5 && type != NULL; i++)
        if (strcmp(type, s_types[i]) == 0)
            t = i;
    if (t < 0)
        return svc_reply_error(ctx, 400, "invalid_value", "obj", "the types of numbers are user, group, queue, meetme and incall");
    const char *argv[] = {"HGET", svc_key(ctx, "context:data"), context};
    redisReply *r = svc_redis_command(ctx->redis, 3, argv, NULL);
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        svc_reply_redis_failure(ctx, r, "reading a context");
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return svc_reply_error(ctx, 404, "not_found", "context", "no context is named %s", context);
    }
    msgpack_unpacked u;
    int rc = 0;
    const msgpack_object *rs = NULL;
    if (svc_mp_unpack(&u, r->str, r->len) != 0 || u.data.type != MSGPACK_OBJECT_ARRAY ||
        u.data.via.array.size <= (uint32_t)(S_TYPE_POS + t) || u.data.via.array.ptr[S_TYPE_POS + t].type != MSGPACK_OBJECT_ARRAY)
        rc = svc_reply_internal(ctx, "context %s: corrupt record", context);
    else
        rs = &u.data.via.array.ptr[S_TYPE_POS + t];
    if (rc == 0 && rs->via.array.size > 0) {
        *out = svc_calloc(rs->via.array.size, sizeof(**out));
        for (uint32_t i = 0; i < rs->via.array.size && rc == 0; i++) {
            const msgpack_object *e = &rs->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 || s_bound(&e->via.array.ptr[0], (*out)[i].beg) != 0 ||
                s_bound(&e->via.array.ptr[1], (*out)[i].end) != 0)
                rc = svc_reply_internal(ctx, "context %s: corrupt range", context);
            else
                (*n)++;
        }
        if (rc != 0) {
            free(*out);
            *out = NULL;
            *n = 0;
        }
    }
    msgpack_unpacked_destroy(&u);
    freeReplyObject(r);
    return rc;
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* appends to *out the free numbers of range r (at most limit of them; 0: no limit), walking the used ones */
static int s_walk(svc_ctx_t *ctx, const char *idxkey, const svc_range_t *r, const char *contains, size_t limit, long long **out,
                  size_t *n, size_t *cap)
{
    size_t digits = strlen(r->beg);
    if (digits == 0)
        return 0; /* an incall "any DID" entry names no number */
    const char *end = r->end[0] != '\0' ? r->end : r->beg;
    long long lo = strtoll(r->beg, NULL, 10), hi = strtoll(end, NULL, 10);
    /* the used numbers of the range (same length only: "0150" is not in 100-299), in order */
    const char *argv[] = {"ZRANGEBYSCORE", idxkey, r->beg, end};
    redisReply *u = svc_redis_command(ctx->redis, 4, argv, NULL);
    if (u == NULL || u->type != REDIS_REPLY_ARRAY) {
        svc_reply_redis_failure(ctx, u, "reading used numbers");
        freeReplyObject(u);
        return -1;
    }
    size_t ui = 0, found = 0;
    char text[32];
    for (long long x = lo; x <= hi && (limit == 0 || found < limit); x++) {
        snprintf(text, sizeof(text), "%0*lld", (int)digits, x);
        int used = 0;
        while (ui < u->elements) {
            const redisReply *e = u->element[ui];
            if (e->type != REDIS_REPLY_STRING || e->len != digits) {
                ui++;
                continue;
            }
            int c = memcmp(e->str, text, digits);
            if (c < 0) {
                ui++;
                continue;
            }
            used = c == 0;
            break;
        }
        if (used || (contains != NULL && strstr(text, contains) == NULL))
            continue;
        if (*n == *cap) {
            *cap = *cap * 2 + 16;
            *out = svc_realloc(*out, *cap * sizeof(**out));
        }
        (*out)[(*n)++] = x;
        found++;
    }
    freeReplyObject(u);
    return 0;
}

int svc_numbers_free_or_reply(svc_ctx_t *ctx, const char *context, const char *type, const char *contains, size_t limit,
                              long long **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    svc_range_t *ranges;
    size_t nr, cap = 0;
    if (svc_context_ranges_or_reply(ctx, context, type, &ranges, &nr) != 0)
        return -1;
    const char *idxkey = svc_number_idx_key(ctx, context);
    int rc = 0;
    for (size_t i = 0; i < nr && rc == 0; i++)
        rc = s_walk(ctx, idxkey, &ranges[i], contains, limit, out, n, &cap);
    free(ranges);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    /* ranges may overlap: sort, drop duplicates, keep the first `limit` */
    qsort(*out, *n, sizeof(**out), s_cmp_ll);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (k == 0 || (*out)[k - 1] != (*out)[i])
            (*out)[k++] = (*out)[i];
    *n = limit > 0 && k > limit ? limit : k;
    return 0;
}

void svc_number_test(void)
{
    svc_range_t r = {"100", "299"};
    XWS_CHECK(svc_number_in_range("100", &r) && svc_number_in_range("299", &r) && svc_number_in_range("150", &r));
    XWS_CHECK(!svc_number_in_range("0150", &r) && !svc_number_in_range("99", &r) && !svc_number_in_range("300", &r));
    svc_range_t one = {"4000", ""}, any = {"", ""};
    XWS_CHECK(svc_number_in_range("4000", &one) && !svc_number_in_range("4001", &one));
    XWS_CHECK(svc_number_in_range("123456", &any));
}
