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

void svc_number_test(void)
{
    svc_range_t r = {"100", "299"};
    XWS_CHECK(svc_number_in_range("100", &r) && svc_number_in_range("299", &r) && svc_number_in_range("150", &r));
    XWS_CHECK(!svc_number_in_range("0150", &r) && !svc_number_in_range("99", &r) && !svc_number_in_range("300", &r));
    svc_range_t one = {"4000", ""}, any = {"", ""};
    XWS_CHECK(svc_number_in_range("4000", &one) && !svc_number_in_range("4001", &one));
    XWS_CHECK(svc_number_in_range("123456", &any));
}
