/* svc_crud.c - see svc_crud.h */
#include <stdlib.h>
#include <string.h>
#include "svc_crud.h"
#include "svc_mp.h"
#include "svc_util.h"

typedef struct {
    long long id;
    svc_record_t *rec;
} s_item_t;

static int s_cmp(const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int s_parse_id(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 18)
        return -1;
    long long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    *out = n;
    return 0;
}

/* the ETag of c's reads (svc_etag_prefetch_or_reply), with the read argc/argv in the same round trip */
static int s_etag(svc_ctx_t *ctx, const svc_crud_t *c, int argc, const char **argv, redisReply **data)
{
    const char *res[16];
    size_t n = 0;
    res[n++] = c->resource;
    for (const char *const *d = c->depends; d != NULL && *d != NULL && n < 15; d++)
        res[n++] = *d;
    res[n] = NULL;
    return svc_etag_prefetch_or_reply(ctx, res, argc, argv, data);
}

/* list and search: needle NULL lists everything */
static int s_list(svc_ctx_t *ctx, const svc_crud_t *c, const char *needle)
{
    const char *argv[] = {"HGETALL", svc_key(ctx, c->data_key)};
    redisReply *r = NULL;
    if (s_etag(ctx, c, 2, argv, &r) != 0)
        return -1;
    int rc;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        svc_reply_redis_failure(ctx, r, "reading records");
        freeReplyObject(r);
        return -1;
    }
    size_t n = 0, cap = r->elements / 2;
    s_item_t *items = svc_calloc(cap + 1, sizeof(*items));
    rc = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        long long id;
        svc_record_t *rec = svc_record_new(c->table);
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || s_parse_id(k->str, k->len, &id) != 0 ||
            svc_record_load_stored(rec, v->str, v->len) != 0) {
            svc_record_destroy(&rec);
            rc = svc_reply_internal(ctx, "%s: corrupt record in %s", c->resource, c->data_key);
            break;
        }
        svc_record_set_id(rec, id);
        if (needle != NULL && !svc_record_match(rec, needle, strlen(needle))) {
            svc_record_destroy(&rec);
            continue;
        }
        items[n].id = id;
        items[n++].rec = rec;
    }
    freeReplyObject(r);
    if (rc == 0) {
        if (n == 0) {
            svc_reply_empty(ctx, 204);
        } else {
            qsort(items, n, sizeof(*items), s_cmp);
            msgpack_packer *pk = svc_reply_begin(ctx, 200);
            msgpack_pack_array(pk, n);
            for (size_t i = 0; i < n; i++)
                svc_record_render(items[i].rec, pk);
        }
    }
    for (size_t i = 0; i < n; i++)
        svc_record_destroy(&items[i].rec);
    free(items);
    return rc;
}

int svc_crud_list(svc_ctx_t *ctx, const svc_crud_t *c)
{
    return s_list(ctx, c, NULL);
}

int svc_crud_search(svc_ctx_t *ctx, const svc_crud_t *c)
{
    const char *needle = svc_param(ctx, "search");
    if (needle == NULL || *needle == '\0')
        return svc_reply_empty(ctx, 204);
    return s_list(ctx, c, needle);
}

/* loads the HGET reply r of record id into rec (and blob); frees r. 0, or -1 with the reply set */
static int s_load_reply(svc_ctx_t *ctx, const svc_crud_t *c, long long id, redisReply *r, svc_record_t *rec, const char **blob,
                        size_t *bloblen)
{
    int rc = 0;
    if (r != NULL && r->type == REDIS_REPLY_NIL) {
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no %s has id %lld", c->resource, id);
    } else if (r == NULL || r->type != REDIS_REPLY_STRING) {
        rc = svc_reply_redis_failure(ctx, r, "reading a record");
    } else if (svc_record_load_stored(rec, r->str, r->len) != 0) {
        rc = svc_reply_internal(ctx, "%s %lld: corrupt record", c->resource, id);
    } else {
        svc_record_set_id(rec, id);
        if (blob != NULL) {
            *blob = svc_ctx_strndup(ctx, r->str, r->len);
            *bloblen = r->len;
        }
    }
    freeReplyObject(r);
    return rc;
}

int svc_crud_load_or_reply(svc_ctx_t *ctx, const svc_crud_t *c, long long id, svc_record_t *rec, const char **blob, size_t *bloblen)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *argv[] = {"HGET", svc_key(ctx, c->data_key), ids};
    return s_load_reply(ctx, c, id, svc_redis_command(ctx->redis, 3, argv, NULL), rec, blob, bloblen);
}

int svc_crud_view(svc_ctx_t *ctx, const svc_crud_t *c)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *argv[] = {"HGET", svc_key(ctx, c->data_key), ids};
    redisReply *r = NULL;
    if (s_etag(ctx, c, 3, argv, &r) != 0)
        return -1;
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    svc_record_t *rec = svc_record_new(c->table);
    if (s_load_reply(ctx, c, id, r, rec, NULL, NULL) != 0) {
        svc_record_destroy(&rec);
        return -1;
    }
    svc_record_render(rec, svc_reply_begin(ctx, 200));
    memcpy(ctx->etag, etag, sizeof(etag));
    svc_record_destroy(&rec);
    return 0;
}
