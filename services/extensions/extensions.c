/* extensions.c - the `extensions` resource (spec §5.7); see extensions.h and README.md */
#include <string.h>
#include "extensions.h"

/*
 * Every resource whose writes take or release numbers: the answer's ETag is computed from their
 * version counters and the context's (ranges), read before the walk.
 */
static const char *const s_depends[] = {"context", "lines", "users", "groups", "queues", "meetme", "incall", NULL};

/* an optional parameter of digits: NULL when absent or empty; 400 invalid_value when not all digits */
static int s_digits_or_reply(svc_ctx_t *ctx, const char *name, const char **out)
{
    const char *v = svc_param(ctx, name);
    *out = v != NULL && v[0] != '\0' ? v : NULL;
    if (*out != NULL && strspn(*out, "0123456789") != strlen(*out))
        return svc_reply_error(ctx, 400, "invalid_value", name, "%s is made of digits only", name);
    return 0;
}

typedef struct {
    msgpack_sbuffer *body;
    msgpack_packer *pk;
    size_t count;
} s_out_t;

static void s_emit(void *arg, long long number)
{
    s_out_t *o = arg;
    msgpack_pack_long_long(o->pk, number);
    o->count++;
}

/*
 * search (every act): context, obj, number, limit. The answer is packed as the walk finds it,
 * behind an array32 header whose count is filled in at the end (a valid msgpack array header
 * for any count), so that neither the numbers nor the ranges are held apart from the reply.
 */
static int s_search(svc_ctx_t *ctx)
{
    const char *context = svc_param(ctx, "context");
    if (context == NULL || context[0] == '\0')
        return svc_reply_error(ctx, 404, "not_found", "context", "a context is required");
    const char *obj = svc_param(ctx, "obj"), *number, *limit_text;
    static const char *const types[] = {"user", "group", "queue", "meetme", "incall"};
    int known = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && obj != NULL; i++)
        known |= strcmp(obj, types[i]) == 0;
    if (!known)
        return svc_reply_error(ctx, 400, "invalid_value", "obj", "obj is one of user, group, queue, meetme and incall");
    if (s_digits_or_reply(ctx, "number", &number) != 0 || s_digits_or_reply(ctx, "limit", &limit_text) != 0)
        return -1;
    size_t limit = 0;
    if (limit_text != NULL) {
        size_t len = strlen(limit_text);
        while (len > 1 && limit_text[0] == '0') /* leading zeros: the value counts, not the text */
            limit_text++, len--;
        if (len > 9 || (limit = (size_t)strtoul(limit_text, NULL, 10)) == 0)
            return svc_reply_error(ctx, 400, "out_of_range", "limit", "limit is between 1 and 999999999");
    }
    if (svc_etag_or_reply(ctx, s_depends) != 0)
        return -1;
    msgpack_packer *pk = svc_reply_begin(ctx, 200);
    static const char header[5] = {(char)0xdd, 0, 0, 0, 0};
    svc_mp_write(&ctx->body, header, sizeof(header));
    s_out_t out = {&ctx->body, pk, 0};
    if (ext_walk_or_reply(ctx, context, obj, number, limit, s_emit, &out, NULL) != 0)
        return -1;
    if (out.count == 0)
        return svc_reply_empty(ctx, 204);
    unsigned char *h = (unsigned char *)ctx->body.data;
    h[1] = (unsigned char)(out.count >> 24);
    h[2] = (unsigned char)(out.count >> 16);
    h[3] = (unsigned char)(out.count >> 8);
    h[4] = (unsigned char)out.count;
    return 0;
}

static const svc_act_t s_acts[] = {{"search", s_search}, {NULL, NULL}};

const svc_resource_t extensions_resource = {"extensions", "search", s_acts};
