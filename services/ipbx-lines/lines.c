/*
 * lines.c - the handlers of the `lines` resource (spec §5.1): list, search, view, add, edit,
 * delete, deleteall. Validation and rendering come from the tables of line_table.c; every write
 * is one call of a function of lua/lines.lua (the line, its indexes, its number and its
 * attachments in one atomic step).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lines.h"

#define LINES_NKEYS 19 /* KEYS of a write after the write id (lua/lines.lua) */
#define LINES_PROVISIONING_BASE 100000

static const char *const s_read_deps[] = {"lines", "users", NULL};

/* one line as read: the record, its id, owner, owner identity and device */
typedef struct {
    long long id;
    svc_record_t *rec;
    const char *blob;
    size_t bloblen;
    long long uid;
    const char *dev;
} s_line_t;

/* ---- reading --------------------------------------------------------------------------------------- */

static void s_read_keys(svc_ctx_t *ctx, const char *keys[4])
{
    keys[0] = svc_key(ctx, "line:data");
    keys[1] = svc_key(ctx, "line:owner");
    keys[2] = svc_key(ctx, "line:device");
    keys[3] = svc_key(ctx, "user:identity");
}

/* the lines read: 5 replies per line (id, record, owner id or "", owner identity or "", device id or "") */
typedef struct {
    redisReply *reply;    /* what Redis answered; the rows point into it (s_rows_dispose) */
    const redisReply **e; /* 5 × n */
    size_t n;
} s_rows_t;

static void s_rows_dispose(s_rows_t *rows)
{
    freeReplyObject(rows->reply);
    free(rows->e);
    memset(rows, 0, sizeof(*rows));
}

/* the value of a field of an HGETALL reply (pairs sorted by s_cmp_field), or NULL */
static const redisReply *s_field(const redisReply *const *pairs, size_t n, const redisReply *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const redisReply *k = pairs[2 * mid];
        int c = k->len != key->len ? (k->len < key->len ? -1 : 1) : memcmp(k->str, key->str, key->len);
        if (c == 0)
            return pairs[2 * mid + 1];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* orders the (field, value) pairs of an HGETALL reply by field: length, then bytes */
static int s_cmp_field(const void *a, const void *b)
{
    const redisReply *x = *(const redisReply *const *)a, *y = *(const redisReply *const *)b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->str, y->str, x->len);
}

/* the pairs of an HGETALL reply, sorted by field (a copy of the pointers, freed by the caller) */
static const redisReply **s_sorted_pairs(const redisReply *h)
{
    const redisReply **p = svc_calloc(h->elements + 1, sizeof(*p));
    if (h->elements == 0)
        return p;
    memcpy(p, h->element, h->elements * sizeof(*p));
    qsort(p, h->elements / 2, 2 * sizeof(*p), s_cmp_field);
    return p;
}

static int s_strings(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static redisReply s_none = {.type = REDIS_REPLY_STRING, .str = "", .len = 0};

/*
 * Every line, read by the worker itself in one transaction (HGETALL of line:data, line:owner,
 * line:device and user:identity between MULTI and EXEC: one consistent state, and no Lua function
 * copying every record), joined here by id. With etag, the versions come first in the same round
 * trip (svc_etag_prefetch_tx_or_reply). 0 with rows, or -1 with the reply set.
 */
static int s_read_all_or_reply(svc_ctx_t *ctx, int etag, s_rows_t *rows)
{
    const char *keys[4];
    s_read_keys(ctx, keys);
    const char *c0[] = {"HGETALL", keys[0]}, *c1[] = {"HGETALL", keys[1]}, *c2[] = {"HGETALL", keys[2]},
               *c3[] = {"HGETALL", keys[3]};
    const int argcs[6] = {1, 2, 2, 2, 2, 1};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *const *argvs[6] = {multi, c0, c1, c2, c3, exec};
    redisReply *r = NULL;
    if (etag) {
        if (svc_etag_prefetch_tx_or_reply(ctx, s_read_deps, 4, argcs + 1, argvs + 1, &r) != 0)
            return -1;
    } else {
        redisReply *out[6];
        if (svc_redis_pipeline(ctx->redis, 6, argcs, argvs, out) == 0) {
            for (int i = 0; i < 5; i++)
                freeReplyObject(out[i]);
            r = out[5];
        }
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        svc_reply_redis_failure(ctx, r, "reading lines");
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!s_strings(r->element[i]) || r->element[i]->elements % 2 != 0) {
            freeReplyObject(r);
            return svc_reply_internal(ctx, "reading lines: unexpected reply");
        }
    }
    const redisReply *data = r->element[0];
    const redisReply **owners = s_sorted_pairs(r->element[1]), **devices = s_sorted_pairs(r->element[2]),
                     **names = s_sorted_pairs(r->element[3]);
    size_t no = r->element[1]->elements / 2, nd = r->element[2]->elements / 2, nn = r->element[3]->elements / 2;
    rows->reply = r;
    rows->n = data->elements / 2;
    rows->e = svc_calloc(5 * rows->n + 1, sizeof(*rows->e));
    for (size_t i = 0; i < rows->n; i++) {
        const redisReply **e = &rows->e[5 * i], *uid = s_field(owners, no, data->element[2 * i]), *name = NULL;
        const redisReply *dev = s_field(devices, nd, data->element[2 * i]);
        if (uid != NULL && uid->len > 0)
            name = s_field(names, nn, uid);
        e[0] = data->element[2 * i];
        e[1] = data->element[2 * i + 1];
        e[2] = uid != NULL ? uid : &s_none;
        e[3] = name != NULL ? name : &s_none;
        e[4] = dev != NULL ? dev : &s_none;
    }
    free(owners);
    free(devices);
    free(names);
    return 0;
}

/*
 * Reads line id (0: every line, s_read_all_or_reply) into rows; line id through ipbx_lines_read.
 * With etag, computes the ETag first (a matching If-None-Match: -1 with the 304 set). 0 with rows
 * (disposed by the caller), or -1 with the reply set.
 */
static int s_read_or_reply(svc_ctx_t *ctx, long long id, int etag, s_rows_t *rows)
{
    memset(rows, 0, sizeof(*rows));
    if (id <= 0)
        return s_read_all_or_reply(ctx, etag, rows);
    const char *keys[4];
    s_read_keys(ctx, keys);
    const char *ids = svc_ctx_ll(ctx, id);
    redisReply *r = NULL;
    if (etag) {
        const char *argv[] = {"FCALL_RO", svc_fn(ctx, "ipbx_lines_read"), "4", keys[0], keys[1], keys[2], keys[3], ids};
        int e = svc_etag_prefetch_or_reply(ctx, s_read_deps, 8, argv, &r);
        if (e != 0)
            return e;
    } else {
        r = svc_redis_fcall(ctx->redis, 1, "ipbx_lines_read", 4, keys, 1, &ids, NULL);
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 5 != 0) {
        svc_reply_redis_failure(ctx, r, "reading lines");
        freeReplyObject(r);
        return -1;
    }
    if (!s_strings(r)) {
        freeReplyObject(r);
        return svc_reply_internal(ctx, "reading lines: unexpected reply");
    }
    rows->reply = r;
    rows->n = r->elements / 5;
    rows->e = svc_calloc(r->elements + 1, sizeof(*rows->e));
    if (r->elements > 0)
        memcpy(rows->e, r->element, r->elements * sizeof(*rows->e));
    return 0;
}

static long long s_parse_ll(const char *s, size_t len)
{
    long long v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* loads element i of a read reply into l (the record gets its id and its shown fields). 0, or -1 with the reply set */
static int s_line_load_or_reply(svc_ctx_t *ctx, const s_rows_t *rows, size_t i, s_line_t *l)
{
    const redisReply *const *e = &rows->e[5 * i];
    memset(l, 0, sizeof(*l));
    l->id = s_parse_ll(e[0]->str, e[0]->len);
    l->uid = e[2]->len > 0 ? s_parse_ll(e[2]->str, e[2]->len) : 0;
    l->rec = svc_record_new(&lines_table);
    if (l->id <= 0 || l->uid < 0 || svc_record_load_stored(l->rec, e[1]->str, e[1]->len) != 0)
        return svc_reply_internal(ctx, "line %.*s: corrupt record", (int)e[0]->len, e[0]->str);
    l->blob = e[1]->str;
    l->bloblen = e[1]->len;
    l->dev = e[4]->str;
    svc_record_t *lf = svc_record_obj(l->rec, "linefeatures");
    svc_record_set_id(l->rec, l->id);
    svc_record_set_id(lf, l->id);
    svc_record_set_int(lf, "protocolid", l->id);
    svc_record_set_int(lf, "provisioningid", LINES_PROVISIONING_BASE + l->id);
    svc_record_set_int(lf, "iduserfeatures", l->uid);
    if (l->uid > 0 && e[3]->len > 0)
        svc_record_set_str(lf, "useridentity", e[3]->str, e[3]->len);
    else
        svc_record_set_str(lf, "useridentity", "-", 1);
    svc_record_set_str(lf, "device", e[4]->str, e[4]->len);
    return 0;
}

static int s_is(const msgpack_object *o, const char *s)
{
    return svc_mp_str_eq(o, s);
}

/*
 * The flat list element: the features part (with identity and initialized), then the fields of
 * the protocol part that the features do not already show, every one as a string (allow is
 * joined with commas, "" when empty).
 */
static void s_render_flat(s_line_t *l, msgpack_packer *pk, msgpack_sbuffer *scratch)
{
    svc_record_t *lf = svc_record_obj(l->rec, "linefeatures"), *proto = svc_record_obj(l->rec, "protocol");
    msgpack_sbuffer_clear(scratch);
    msgpack_packer spk;
    msgpack_packer_init(&spk, scratch, svc_mp_write);
    svc_record_render(proto, &spk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0, extra = 0;
    int ok =
        msgpack_unpack_next(&u, scratch->data, scratch->size, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP;
    if (ok)
        for (uint32_t k = 0; k < u.data.via.map.size; k++) {
            const msgpack_object *key = &u.data.via.map.ptr[k].key;
            extra += !(s_is(key, "protocol") || s_is(key, "name") || s_is(key, "context"));
        }
    msgpack_pack_map(pk, svc_record_render_count(lf) + extra);
    svc_record_render_fields(lf, pk);
    for (uint32_t k = 0; ok && k < u.data.via.map.size; k++) {
        const msgpack_object *key = &u.data.via.map.ptr[k].key, *val = &u.data.via.map.ptr[k].val;
        if (s_is(key, "protocol") || s_is(key, "name") || s_is(key, "context"))
            continue;
        msgpack_pack_object(pk, *key);
        if (val->type == MSGPACK_OBJECT_ARRAY) {
            size_t len = 0;
            for (uint32_t j = 0; j < val->via.array.size; j++)
                len += (j > 0) + svc_mp_slice(&val->via.array.ptr[j]).len;
            msgpack_pack_str(pk, len);
            for (uint32_t j = 0; j < val->via.array.size; j++) {
                xws_slice_t s = svc_mp_slice(&val->via.array.ptr[j]);
                if (j > 0)
                    msgpack_pack_str_body(pk, ",", 1);
                msgpack_pack_str_body(pk, s.ptr, s.len);
            }
        } else if (val->type == MSGPACK_OBJECT_BOOLEAN && !val->via.boolean) {
            msgpack_pack_str(pk, 0); /* an empty collection (false in views) */
        } else {
            msgpack_pack_object(pk, *val);
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* the filters of list and search */
typedef struct {
    const char *needle;   /* search: NULL for list */
    const char *context;  /* exact context (search), or NULL */
    const char *protocol; /* protocol (case-insensitive), or NULL */
    int free;             /* -1 any, 1 free lines only, 0 owned lines only */
} s_filter_t;

static int s_keep(const s_line_t *l, const s_filter_t *f)
{
    svc_record_t *lf = svc_record_obj(l->rec, "linefeatures");
    size_t nl, numl, cl;
    const char *name = svc_record_str(lf, "name", &nl), *num = svc_record_str(lf, "number", &numl);
    const char *c = svc_record_str(lf, "context", &cl);
    if (f->free == 1 && l->uid != 0)
        return 0;
    if (f->free == 0 && l->uid == 0)
        return 0;
    if (f->protocol != NULL && strcasecmp(svc_record_str(lf, "protocol", NULL), f->protocol) != 0)
        return 0;
    if (f->context != NULL && strcmp(c, f->context) != 0)
        return 0;
    if (f->needle == NULL)
        return 1;
    size_t k = strlen(f->needle);
    return svc_icontains(num, numl, f->needle, k) || svc_icontains(name, nl, f->needle, k) ||
           (f->context == NULL && svc_icontains(c, cl, f->needle, k));
}

/* a line's place in the read reply and its id, to order a list before loading the records */
typedef struct {
    long long id;
    size_t i;
} s_slot_t;

static int s_cmp_slot(const void *a, const void *b)
{
    const s_slot_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * list and search: the lines in id order, one record alive at a time (loaded, filtered, rendered,
 * dropped), so that a long list costs the same per line as a short one; the selected elements
 * are packed aside and follow the array header, whose count is known only at the end.
 */
static int s_list_or_search(svc_ctx_t *ctx, const s_filter_t *f)
{
    s_rows_t r;
    int rc = s_read_or_reply(ctx, 0, 1, &r);
    if (rc != 0)
        return -1;
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    size_t n = r.n, nsel = 0;
    s_slot_t *order = svc_calloc(n + 1, sizeof(*order));
    for (size_t i = 0; i < n; i++)
        order[i] = (s_slot_t){s_parse_ll(r.e[5 * i]->str, r.e[5 * i]->len), i};
    qsort(order, n, sizeof(*order), s_cmp_slot);
    msgpack_sbuffer elements, scratch;
    msgpack_sbuffer_init(&elements);
    msgpack_sbuffer_init(&scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &elements, svc_mp_write);
    for (size_t k = 0; k < n && rc == 0; k++) {
        s_line_t l;
        rc = s_line_load_or_reply(ctx, &r, order[k].i, &l);
        if (rc == 0 && s_keep(&l, f)) {
            s_render_flat(&l, &pk, &scratch);
            nsel++;
        }
        svc_record_destroy(&l.rec);
    }
    if (rc == 0 && nsel == 0) {
        svc_reply_empty(ctx, 204);
    } else if (rc == 0) {
        msgpack_packer *out = svc_reply_begin(ctx, 200);
        msgpack_pack_array(out, nsel);
        svc_mp_write(out->data, elements.data, elements.size);
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    msgpack_sbuffer_destroy(&scratch);
    msgpack_sbuffer_destroy(&elements);
    free(order);
    s_rows_dispose(&r);
    return rc;
}

/* free: absent → any; "" or "0" → lines with a user; any other value → free lines (the original's reading) */
static void s_common_filters(svc_ctx_t *ctx, s_filter_t *f)
{
    const char *fr = svc_param(ctx, "free");
    f->free = fr == NULL ? -1 : (fr[0] == '\0' || strcmp(fr, "0") == 0) ? 0 : 1;
    f->protocol = svc_param(ctx, "protocol");
}

static int s_list(svc_ctx_t *ctx)
{
    s_filter_t f = {0};
    s_common_filters(ctx, &f);
    return s_list_or_search(ctx, &f);
}

static int s_search(svc_ctx_t *ctx)
{
    s_filter_t f = {0};
    f.needle = svc_param(ctx, "search");
    if (f.needle == NULL || f.needle[0] == '\0')
        return svc_reply_empty(ctx, 204);
    s_common_filters(ctx, &f);
    f.context = svc_param(ctx, "context");
    return s_list_or_search(ctx, &f);
}

/* reads line id into l (not found: 404). 0, or -1 with the reply set; r disposed by the caller (s_rows_dispose) */
static int s_read_one_or_reply(svc_ctx_t *ctx, long long id, int etag, s_rows_t *r, s_line_t *l)
{
    memset(l, 0, sizeof(*l));
    int rc = s_read_or_reply(ctx, id, etag, r);
    if (rc != 0)
        return rc;
    if (r->n < 1)
        return svc_reply_error(ctx, 404, "not_found", "id", "no line has id %lld", id);
    return s_line_load_or_reply(ctx, r, 0, l);
}

static int s_view(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    s_rows_t r;
    s_line_t l;
    int rc = s_read_one_or_reply(ctx, id, 1, &r, &l);
    if (rc == 0) {
        char etag[sizeof(ctx->etag)];
        memcpy(etag, ctx->etag, sizeof(etag));
        svc_record_render(l.rec, svc_reply_begin(ctx, 200));
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    svc_record_destroy(&l.rec);
    s_rows_dispose(&r);
    return rc < 0 ? -1 : 0;
}

/* ---- writing --------------------------------------------------------------------------------------- */

/* KEYS after the write id (lua/lines.lua); the number keys of the old and new context at 15..18 */
static void s_write_keys(svc_ctx_t *ctx, const char *keys[LINES_NKEYS], const char *oldctx, const char *newctx)
{
    keys[0] = svc_key(ctx, "line:seq");
    keys[1] = svc_key(ctx, "line:data");
    keys[2] = svc_key(ctx, "ver:lines");
    keys[3] = svc_key(ctx, "line:refs");
    keys[4] = keys[5] = svc_key(ctx, "line:name");
    keys[6] = svc_key(ctx, "context:data");
    keys[7] = svc_key(ctx, "context:refs");
    keys[8] = svc_key(ctx, "line:owner");
    keys[9] = svc_key(ctx, "line:byuser");
    keys[10] = svc_key(ctx, "line:device");
    keys[11] = svc_key(ctx, "line:bydevice");
    keys[12] = svc_key(ctx, "device:data");
    keys[13] = svc_key(ctx, "ver:users");
    keys[14] = svc_key(ctx, "ver:devices");
    keys[15] = svc_number_key(ctx, oldctx);
    keys[16] = svc_number_idx_key(ctx, oldctx);
    keys[17] = svc_number_key(ctx, newctx);
    keys[18] = svc_number_idx_key(ctx, newctx);
}

static const char *s_str(const svc_record_t *rec, const char *part, const char *name)
{
    return svc_record_str(svc_record_obj((svc_record_t *)rec, part), name, NULL);
}

/*
 * ipbx_lines_put: rec the validated new line; for an edit, id, the blob and record read and the
 * device it had. Returns 0 or -1 with the reply set, as svc_write_cas (*conflict: read again).
 */
static int s_put(svc_ctx_t *ctx, const char *id, const char *blob, size_t bloblen, const svc_record_t *old, const char *olddev,
                 const svc_record_t *rec, int *conflict)
{
    const char *newctx = s_str(rec, "protocol", "context");
    const char *oldctx = old != NULL ? s_str(old, "protocol", "context") : newctx;
    const char *keys[LINES_NKEYS], *args[13];
    size_t lens[13];
    s_write_keys(ctx, keys, oldctx, newctx);
    args[0] = id != NULL ? id : "";
    args[1] = blob != NULL ? blob : "", lens[1] = blob != NULL ? bloblen : 0;
    args[2] = svc_record_blob(ctx, rec, &lens[2]);
    args[3] = svc_index_entries(ctx, &lines_records, old, &lens[3]);
    args[4] = svc_index_entries(ctx, &lines_records, rec, &lens[4]);
    svc_index_kinds(ctx, &lines_records, &args[5], &args[6], &lens[6]);
    args[7] = oldctx;
    args[8] = old != NULL ? s_str(old, "linefeatures", "number") : "";
    args[9] = newctx;
    args[10] = s_str(rec, "linefeatures", "number");
    args[11] = olddev != NULL ? olddev : "";
    args[12] = s_str(rec, "linefeatures", "device");
    for (int i = 0; i < 13; i++)
        if (i != 1 && i != 2 && i != 3 && i != 4 && i != 6)
            lens[i] = strlen(args[i]);
    return svc_write_cas(ctx, conflict, "ipbx_lines_put", LINES_NKEYS, keys, 13, args, lens);
}

/* defaults, server-set fields, checks */
static int s_complete_or_reply(svc_ctx_t *ctx, svc_record_t *rec)
{
    svc_record_defaults(rec);
    svc_record_set_int(svc_record_obj(rec, "linefeatures"), "internal", 0);
    if (lines_fix_or_reply(ctx, rec) != 0)
        return -1;
    return svc_record_check_or_reply(ctx, rec);
}

static int s_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&lines_table);
    int rc = svc_record_load_body_or_reply(ctx, rec, body);
    if (rc == 0)
        rc = s_complete_or_reply(ctx, rec);
    if (rc == 0) {
        int conflict = 0;
        rc = s_put(ctx, NULL, NULL, 0, NULL, NULL, rec, &conflict);
        if (rc == 0 && conflict)
            rc = svc_reply_internal(ctx, "lines add: unexpected conflict outcome");
    }
    svc_record_destroy(&rec);
    return rc;
}

static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        s_rows_t r;
        s_line_t l;
        svc_record_t *rec = NULL;
        int rc = -1, conflict = 0;
        if (s_read_one_or_reply(ctx, id, 0, &r, &l) == 0) {
            rec = svc_record_new(&lines_table);
            if (svc_record_load_stored(rec, l.blob, l.bloblen) != 0) {
                svc_reply_internal(ctx, "line %lld: corrupt record", id);
            } else {
                svc_record_set_str(svc_record_obj(rec, "linefeatures"), "device", l.dev, strlen(l.dev));
                if (svc_record_load_body_or_reply(ctx, rec, body) == 0 && s_complete_or_reply(ctx, rec) == 0)
                    rc = s_put(ctx, ids, l.blob, l.bloblen, l.rec, l.dev, rec, &conflict);
            }
        }
        svc_record_destroy(&rec);
        svc_record_destroy(&l.rec);
        s_rows_dispose(&r);
        if (rc != 0 || !conflict)
            return rc;
        /* changed by another writer between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "line %lld: edit kept conflicting with other writers", id);
}

static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        s_rows_t r;
        s_line_t l;
        int rc = -1, conflict = 0;
        if (s_read_one_or_reply(ctx, id, 0, &r, &l) == 0) {
            const char *c = s_str(l.rec, "protocol", "context");
            const char *keys[LINES_NKEYS], *args[6];
            size_t lens[6];
            s_write_keys(ctx, keys, c, c);
            args[0] = ids, lens[0] = strlen(ids);
            args[1] = l.blob, lens[1] = l.bloblen;
            args[2] = svc_index_entries(ctx, &lines_records, l.rec, &lens[2]);
            const char *msgs;
            size_t msgslen;
            svc_index_kinds(ctx, &lines_records, &args[3], &msgs, &msgslen), lens[3] = strlen(args[3]);
            args[4] = s_str(l.rec, "linefeatures", "number"), lens[4] = strlen(args[4]);
            rc = svc_write_cas(ctx, &conflict, "ipbx_lines_del", LINES_NKEYS, keys, 5, args, lens);
        }
        svc_record_destroy(&l.rec);
        s_rows_dispose(&r);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "line %lld: delete kept conflicting with other writers", id);
}

static int s_deleteall(svc_ctx_t *ctx)
{
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        s_rows_t r;
        if (s_read_or_reply(ctx, 0, 0, &r) != 0)
            return -1;
        size_t n = r.n, nctx = 0;
        const char **ctxs = svc_calloc(n + 1, sizeof(*ctxs));
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, svc_mp_write);
        msgpack_pack_array(&pk, n);
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            s_line_t l;
            rc = s_line_load_or_reply(ctx, &r, i, &l);
            if (rc == 0) {
                const char *c = s_str(l.rec, "protocol", "context"), *num = s_str(l.rec, "linefeatures", "number");
                size_t ci = 0;
                while (ci < nctx && strcmp(ctxs[ci], c) != 0)
                    ci++;
                if (ci == nctx)
                    ctxs[nctx++] = svc_ctx_strndup(ctx, c, strlen(c));
                msgpack_pack_array(&pk, 5);
                svc_mp_cstr(&pk, svc_ctx_ll(ctx, l.id));
                svc_mp_strn(&pk, l.blob, l.bloblen);
                svc_index_pack_entries(ctx, &lines_records, l.rec, &pk);
                msgpack_pack_uint64(&pk, ci);
                svc_mp_cstr(&pk, num);
            }
            svc_record_destroy(&l.rec);
        }
        int conflict = 0;
        if (rc == 0) {
            size_t nkeys = LINES_NKEYS - 4 + 2 * nctx;
            const char **keys = svc_calloc(nkeys + 4, sizeof(*keys));
            s_write_keys(ctx, keys, "", "");
            for (size_t i = 0; i < nctx; i++) {
                keys[15 + 2 * i] = svc_number_key(ctx, ctxs[i]);
                keys[16 + 2 * i] = svc_number_idx_key(ctx, ctxs[i]);
            }
            const char *args[2], *msgs;
            size_t lens[2], msgslen;
            args[0] = sb.data != NULL ? sb.data : "", lens[0] = sb.size;
            svc_index_kinds(ctx, &lines_records, &args[1], &msgs, &msgslen), lens[1] = strlen(args[1]);
            rc = svc_write_cas(ctx, &conflict, "ipbx_lines_delall", (int)nkeys, keys, 2, args, lens);
            free(keys);
        }
        msgpack_sbuffer_destroy(&sb);
        free(ctxs);
        s_rows_dispose(&r);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "lines: deleteall kept conflicting with other writers");
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"search", s_search}, {"view", s_view},           {"add", s_add},
    {"edit", s_edit}, {"delete", s_delete}, {"deleteall", s_deleteall}, {NULL, NULL},
};

const svc_resource_t lines_resource = {"lines", "list", s_acts};
