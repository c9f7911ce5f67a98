/*
 * devices.c - the handlers of the `devices` resource (spec §5.2): list, search, view, add, edit,
 * delete. Validation and rendering come from the declarations of device_table.c; the writes are
 * one call each of a function of lua/devices.lua (the device, its indexes and, for a delete, the
 * detachment of its lines, in one atomic step).
 */
#include <stdlib.h>
#include <string.h>
#include "devices.h"

static const char *const s_deps[] = {"devices", NULL};
static const char *const s_view_deps[] = {"devices", "lines", NULL}; /* a view lists the attached lines */

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

/* ---- reading ------------------------------------------------------------------------------------- */

static int s_list(svc_ctx_t *ctx)
{
    return svc_crud_list(ctx, &devices_records.crud);
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/*
 * search=V: the devices whose ip is V (case-insensitive: IPv6), and the device whose mac is V once
 * both are normalised (00:08:5D:2A:4F:B1, 00-08-5d-2a-4f-b1, 00085d2a4fb1); exact matches only,
 * through the indexes. 204 when V is empty or nothing matches.
 */
static int s_search(svc_ctx_t *ctx)
{
    const char *v = svc_param(ctx, "search");
    if (v == NULL || v[0] == '\0')
        return svc_reply_empty(ctx, 204);
    if (svc_etag_or_reply(ctx, s_deps) != 0)
        return -1;
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    long long *byip = NULL, *bymac = NULL;
    size_t nip = 0, nmac = 0;
    if (svc_index_lookup_or_reply(ctx, &devices_records, DEVICES_IX_IP, v, &byip, &nip) != 0)
        return -1;
    size_t vl = strlen(v);
    char mac[17 + 64];
    if (vl <= 17 && (memcpy(mac, v, vl), svc_norm_mac(mac, vl)) == 17) {
        mac[17] = '\0';
        if (svc_index_lookup_or_reply(ctx, &devices_records, DEVICES_IX_MAC, mac, &bymac, &nmac) != 0) {
            free(byip);
            return -1;
        }
    }
    /* the union of both, ascending, without repeats */
    size_t n = 0;
    long long *ids = svc_calloc(nip + nmac + 1, sizeof(*ids));
    for (size_t i = 0; i < nip; i++)
        ids[n++] = byip[i];
    for (size_t i = 0; i < nmac; i++)
        ids[n++] = bymac[i];
    free(byip);
    free(bymac);
    qsort(ids, n, sizeof(*ids), s_cmp_ll);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || ids[m - 1] != ids[i])
            ids[m++] = ids[i];
    if (m == 0) {
        free(ids);
        return svc_reply_empty(ctx, 204);
    }
    const char **argv = svc_calloc(m + 2, sizeof(*argv));
    argv[0] = "HMGET";
    argv[1] = svc_key(ctx, devices_records.crud.data_key);
    for (size_t i = 0; i < m; i++)
        argv[2 + i] = svc_ctx_ll(ctx, ids[i]);
    redisReply *r = svc_redis_command(ctx->redis, (int)m + 2, argv, NULL);
    free(argv);
    int rc = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != m) {
        rc = svc_reply_redis_failure(ctx, r, "reading devices");
    } else {
        /* an id whose record went away between the look-up and the read is left out */
        size_t found = 0;
        for (size_t i = 0; i < m; i++)
            found += r->element[i]->type == REDIS_REPLY_STRING;
        if (found == 0) {
            svc_reply_empty(ctx, 204);
        } else {
            msgpack_packer *pk = svc_reply_begin(ctx, 200); /* an error below replaces it */
            msgpack_pack_array(pk, found);
            for (size_t i = 0; i < m && rc == 0; i++) {
                const redisReply *e = r->element[i];
                if (e->type != REDIS_REPLY_STRING)
                    continue;
                svc_record_t *rec = svc_record_new(&devices_table);
                if (svc_record_load_stored(rec, e->str, e->len) != 0) {
                    rc = svc_reply_internal(ctx, "device %lld: corrupt record", ids[i]);
                } else {
                    svc_record_set_id(rec, ids[i]);
                    svc_record_render(rec, pk);
                }
                svc_record_destroy(&rec);
            }
            if (rc == 0)
                memcpy(ctx->etag, etag, sizeof(etag));
        }
    }
    freeReplyObject(r);
    free(ids);
    return rc;
}

/*
 * The argv of devices_read for parameter "id": a numeric id, or a 32-hex deviceid (any case).
 * 0, or -1 with the 404 set (absent, or neither form).
 */
static int s_read_argv_or_reply(svc_ctx_t *ctx, const char *argv[10])
{
    const char *p = svc_param(ctx, "id");
    argv[0] = "FCALL_RO";
    argv[1] = svc_fn(ctx, "devices_read");
    argv[2] = "4";
    argv[3] = svc_key(ctx, "device:data");
    argv[4] = svc_key(ctx, "device:deviceid");
    argv[5] = svc_key(ctx, "line:bydevice");
    argv[6] = svc_key(ctx, "line:data");
    if (p != NULL && devices_is_deviceid(p)) {
        char *d = svc_ctx_strndup(ctx, p, 32);
        for (char *c = d; *c != '\0'; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c + 32);
        argv[7] = "";
        argv[8] = d;
        return 0;
    }
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    argv[7] = svc_ctx_ll(ctx, id);
    argv[8] = "";
    return 0;
}

/* checks a devices_read reply: 0 (found), or -1 with the reply set (404 when empty, 500) */
static int s_read_reply_ok_or_reply(svc_ctx_t *ctx, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return svc_reply_redis_failure(ctx, r, "reading a device");
    if (r->elements == 0)
        return svc_reply_error(ctx, 404, "not_found", "id", "no device has this id");
    if (r->elements < 2 || (r->elements - 2) % 5 != 0)
        return svc_reply_internal(ctx, "reading a device: unexpected reply");
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return svc_reply_internal(ctx, "reading a device: unexpected reply");
    return 0;
}

typedef struct {
    long long id, num;
    const redisReply *const *e; /* id, num, number, context, protocol */
} s_line_t;

static int s_cmp_line(const void *a, const void *b)
{
    const s_line_t *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* view&id=X (numeric id or deviceid): the device object plus `lines` (by slot; false when none) */
static int s_view(svc_ctx_t *ctx)
{
    const char *argv[10];
    if (s_read_argv_or_reply(ctx, argv) != 0)
        return -1;
    redisReply *r = NULL;
    if (svc_etag_prefetch_or_reply(ctx, s_view_deps, 9, argv, &r) != 0)
        return -1;
    if (s_read_reply_ok_or_reply(ctx, r) != 0) {
        freeReplyObject(r);
        return -1;
    }
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    long long id = s_parse_ll(r->element[0]->str, r->element[0]->len);
    svc_record_t *rec = svc_record_new(&devices_table);
    int rc = 0;
    if (id <= 0 || svc_record_load_stored(rec, r->element[1]->str, r->element[1]->len) != 0) {
        rc = svc_reply_internal(ctx, "device %.*s: corrupt record", (int)r->element[0]->len, r->element[0]->str);
    } else {
        svc_record_set_id(rec, id);
        size_t n = (r->elements - 2) / 5;
        s_line_t *lines = svc_calloc(n + 1, sizeof(*lines));
        for (size_t i = 0; i < n; i++) {
            lines[i].e = (const redisReply *const *)&r->element[2 + 5 * i];
            lines[i].id = s_parse_ll(lines[i].e[0]->str, lines[i].e[0]->len);
            lines[i].num = s_parse_ll(lines[i].e[1]->str, lines[i].e[1]->len);
        }
        qsort(lines, n, sizeof(*lines), s_cmp_line);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_map(pk, svc_record_render_count(rec) + 1);
        svc_record_render_fields(rec, pk);
        svc_mp_key(pk, "lines");
        if (n == 0)
            msgpack_pack_false(pk);
        else
            msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            msgpack_pack_map(pk, 5);
            svc_mp_key(pk, "id");
            msgpack_pack_long_long(pk, lines[i].id);
            svc_mp_key(pk, "num");
            msgpack_pack_long_long(pk, lines[i].num);
            static const char *const names[] = {"number", "context", "protocol"};
            for (size_t k = 0; k < 3; k++) {
                svc_mp_key(pk, names[k]);
                svc_mp_strn(pk, lines[i].e[2 + k]->str, lines[i].e[2 + k]->len);
            }
        }
        free(lines);
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    svc_record_destroy(&rec);
    freeReplyObject(r);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------------------- */

/* the numeric id named by parameter "id" (numeric id or deviceid). 0, or -1 with the 404 set */
static int s_resolve_id_or_reply(svc_ctx_t *ctx, long long *id)
{
    const char *p = svc_param(ctx, "id");
    if (p == NULL || !devices_is_deviceid(p))
        return svc_param_id_or_reply(ctx, "id", id);
    long long *ids = NULL;
    size_t n = 0;
    if (svc_index_lookup_or_reply(ctx, &devices_records, DEVICES_IX_DEVICEID, p, &ids, &n) != 0)
        return -1;
    int rc = n == 1 ? 0 : svc_reply_error(ctx, 404, "not_found", "id", "no device has deviceid %s", p);
    if (n == 1)
        *id = ids[0];
    free(ids);
    return rc;
}

/* add: 200 with the new device as its body (its id, its generated deviceid) */
static int s_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&devices_table);
    int rc = svc_record_load_body_or_reply(ctx, rec, body);
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = svc_record_check_or_reply(ctx, rec);
    }
    if (rc == 0)
        rc = svc_records_add_or_reply(ctx, &devices_records, rec);
    if (rc == 0) {
        /* the function answered the new id as a string: answer the object instead */
        msgpack_unpacked u;
        long long id = -1;
        if (svc_mp_unpack(&u, ctx->body.data, ctx->body.size) == 0 && u.data.type == MSGPACK_OBJECT_STR)
            id = s_parse_ll(u.data.via.str.ptr, u.data.via.str.size);
        msgpack_unpacked_destroy(&u);
        if (id <= 0) {
            rc = svc_reply_internal(ctx, "device add: unexpected answer");
        } else {
            svc_record_set_id(rec, id);
            svc_record_render(rec, svc_reply_begin(ctx, 200));
        }
    }
    svc_record_destroy(&rec);
    return rc;
}

/* edit&id=X: the stored device merged with the body, checked as an add; 200, empty body */
static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (s_resolve_id_or_reply(ctx, &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    if (svc_records_edit_or_reply(ctx, &devices_records, id, body, NULL) != 0)
        return -1;
    return svc_reply_empty(ctx, 200); /* drop the id the put function answers */
}

/* KEYS of devices_del after the write id (lua/devices.lua) */
#define DEVICES_DEL_NKEYS 13

/* delete&id=X: the device, its index entries, and its lines detached, in one call; 200 */
static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (s_resolve_id_or_reply(ctx, &id) != 0)
        return -1;
    const svc_records_t *d = &devices_records;
    const char *keys[DEVICES_DEL_NKEYS] = {
        svc_key(ctx, "device:seq"),      svc_key(ctx, "device:data"), svc_key(ctx, "ver:devices"),
        svc_key(ctx, "device:refs"),     svc_key(ctx, "device:mac"),  svc_key(ctx, "device:mac"),
        svc_key(ctx, "device:ip"),       svc_key(ctx, "device:ip"),   svc_key(ctx, "device:deviceid"),
        svc_key(ctx, "device:deviceid"), svc_key(ctx, "line:device"), svc_key(ctx, "line:bydevice"),
        svc_key(ctx, "ver:lines"),
    };
    const char *ids = svc_ctx_ll(ctx, id);
    const char *kinds, *msgs;
    size_t msgslen;
    svc_index_kinds(ctx, d, &kinds, &msgs, &msgslen);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(d->crud.table);
        const char *args[5];
        size_t lens[5];
        int conflict = 0;
        int rc = svc_crud_load_or_reply(ctx, &d->crud, id, old, &args[1], &lens[1]);
        if (rc == 0) {
            args[0] = ids, lens[0] = strlen(ids);
            args[2] = svc_index_entries(ctx, d, old, &lens[2]);
            args[3] = kinds, lens[3] = strlen(kinds);
            args[4] = "devices", lens[4] = 7;
            rc = svc_write_cas(ctx, &conflict, "devices_del", DEVICES_DEL_NKEYS, keys, 5, args, lens);
        }
        svc_record_destroy(&old);
        if (rc != 0 || !conflict)
            return rc;
        /* the device changed between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "device %lld: delete kept conflicting with other writers", id);
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"search", s_search}, {"view", s_view}, {"add", s_add}, {"edit", s_edit}, {"delete", s_delete}, {NULL, NULL},
};

const svc_resource_t devices_resource = {"devices", "list", s_acts};
