/*
 * pickup.c - the handlers of the `pickup` resource (spec §5.4, call_management/pickup): list,
 * view, add, edit, delete. Validation and rendering come from the tables of pickup_table.c; every
 * write is one call of a function of lua/pickup.lua, which checks the name, the members and the
 * free id and writes the pickup, its name, its rows and their reverse index in one atomic step.
 */
#include <stdlib.h>
#include <string.h>
#include "pickup.h"

#define PICKUP_NKEYS 8 /* KEYS of ipbx_pickup_put after the write id (lua/pickup.lua) */

static const char *const s_deps[] = {"pickup", NULL};
static const svc_crud_t s_crud = {"pickup", &pickup_table, "pickup:data", NULL};

/* Reads parameter "id" as a pickup id (0 .. PICKUP_MAX_ID). 0, or -1 with a 404 set: any other value names nothing. */
static int s_pid_or_reply(svc_ctx_t *ctx, long long *id)
{
    const char *v = svc_param(ctx, "id");
    size_t len = v != NULL ? strlen(v) : 0;
    long long n = 0;
    for (size_t i = 0; i < len && i < 4; i++) {
        if (v[i] < '0' || v[i] > '9')
            break;
        n = n * 10 + (v[i] - '0');
        if (i + 1 == len && n <= PICKUP_MAX_ID) {
            *id = n;
            return 0;
        }
    }
    return svc_reply_error(ctx, 404, "not_found", "id", "no pickup has this id (pickup ids are 0-%d)", PICKUP_MAX_ID);
}

static int s_list(svc_ctx_t *ctx)
{
    return svc_crud_list(ctx, &s_crud);
}

/* ---- view -------------------------------------------------------------------------------------------- */

/*
 * Loads the stored rows blob (a msgpack array of row maps; empty: none) of pickup id into *rows
 * (an array of *n records of pickup_row_table, each with id = the pickup id; the caller frees
 * them with s_rows_free). 0, or -1 when the blob is malformed.
 */
static int s_rows_load(const char *blob, size_t len, long long id, svc_record_t ***rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    if (len == 0)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = -1;
    /* lua's cmsgpack packs an empty table as a map: that is no rows too */
    if (msgpack_unpack_next(&u, blob, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        (u.data.type == MSGPACK_OBJECT_ARRAY || (u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 0))) {
        size_t count = u.data.type == MSGPACK_OBJECT_ARRAY ? u.data.via.array.size : 0;
        *rows = svc_calloc(count + 1, sizeof(**rows));
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, svc_mp_write);
        rc = 0;
        for (size_t i = 0; i < count && rc == 0; i++) {
            msgpack_sbuffer_clear(&sb);
            msgpack_pack_object(&pk, u.data.via.array.ptr[i]);
            svc_record_t *row = svc_record_new(&pickup_row_table);
            rc = svc_record_load_stored(row, sb.data, sb.size);
            svc_record_set_id(row, id);
            (*rows)[(*n)++] = row;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

static void s_rows_free(svc_record_t **rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        svc_record_destroy(&rows[i]);
    free(rows);
}

/* packs the rows of one category as an array, or false when there is none (spec §3) */
static void s_render_category(msgpack_packer *pk, svc_record_t **rows, size_t n, const char *category)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += strcmp(svc_record_str(rows[i], "category", NULL), category) == 0;
    if (count == 0) {
        msgpack_pack_false(pk);
        return;
    }
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < n; i++)
        if (strcmp(svc_record_str(rows[i], "category", NULL), category) == 0)
            svc_record_render(rows[i], pk);
}

static int s_view(svc_ctx_t *ctx)
{
    long long id;
    if (s_pid_or_reply(ctx, &id) != 0)
        return -1;
    const char *argv[] = {
        "FCALL_RO",         svc_fn(ctx, "ipbx_pickup_read"), "2", svc_key(ctx, "pickup:data"), svc_key(ctx, "pickup:rows"),
        svc_ctx_ll(ctx, id)};
    redisReply *r = NULL;
    if (svc_etag_prefetch_or_reply(ctx, s_deps, 6, argv, &r) != 0)
        return -1;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        svc_reply_redis_failure(ctx, r, "reading a pickup");
        freeReplyObject(r);
        return -1;
    }
    if (r->element[0]->len == 0) {
        freeReplyObject(r);
        return svc_reply_error(ctx, 404, "not_found", "id", "no pickup has id %lld", id);
    }
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    svc_record_t *rec = svc_record_new(&pickup_table), **rows = NULL;
    size_t n = 0;
    int rc = 0;
    if (svc_record_load_stored(rec, r->element[0]->str, r->element[0]->len) != 0 ||
        s_rows_load(r->element[1]->str, r->element[1]->len, id, &rows, &n) != 0) {
        rc = svc_reply_internal(ctx, "pickup %lld: corrupt stored record", id);
    } else {
        svc_record_set_id(rec, id);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_map(pk, 3);
        svc_mp_key(pk, "members");
        s_render_category(pk, rows, n, "member");
        svc_mp_key(pk, "pickup");
        svc_record_render(rec, pk);
        svc_mp_key(pk, "pickups");
        s_render_category(pk, rows, n, "pickup");
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    s_rows_free(rows, n);
    svc_record_destroy(&rec);
    freeReplyObject(r);
    return rc;
}

/* ---- add, edit ------------------------------------------------------------------------------------------ */

/*
 * Reads body on top of rec (the pickup: empty on add, the stored one on edit) and, into mem, its
 * members; checks both. 0, or -1 with the 400 answer set.
 */
static int s_load_or_reply(svc_ctx_t *ctx, const msgpack_object *body, svc_record_t *rec, svc_record_t *mem)
{
    if (svc_record_load_body_or_reply(ctx, rec, body) != 0 || svc_record_load_body_or_reply(ctx, mem, body) != 0)
        return -1;
    svc_record_defaults(rec);
    svc_record_defaults(mem);
    return svc_record_check_or_reply(ctx, rec) != 0 || svc_record_check_or_reply(ctx, mem) != 0 ? -1 : 0;
}

static int s_same_row(const svc_record_t *a, const svc_record_t *b)
{
    return svc_record_int(a, "memberid") == svc_record_int(b, "memberid") &&
           strcmp(svc_record_str(a, "category", NULL), svc_record_str(b, "category", NULL)) == 0 &&
           strcmp(svc_record_str(a, "membertype", NULL), svc_record_str(b, "membertype", NULL)) == 0;
}

/* packs the member rows of mem, duplicates merged (the first one kept, in request order), into rows, and the error
 * path of each kept row's memberid into paths */
static void s_pack_members(svc_ctx_t *ctx, const svc_record_t *mem, msgpack_packer *rows, msgpack_packer *paths)
{
    size_t n = svc_record_count(mem, "members"), kept = 0;
    char *dup = svc_calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i && !dup[i]; j++)
            dup[i] = !dup[j] && s_same_row(svc_record_at(mem, "members", i), svc_record_at(mem, "members", j));
        kept += !dup[i];
    }
    msgpack_pack_array(rows, kept);
    msgpack_pack_array(paths, kept);
    for (size_t i = 0; i < n; i++) {
        if (dup[i])
            continue;
        const svc_record_t *row = svc_record_at(mem, "members", i);
        svc_record_pack_stored(row, rows);
        svc_mp_cstr(paths, svc_record_path(ctx, row, "memberid"));
    }
    free(dup);
}

/*
 * Calls ipbx_pickup_put: an add (id < 0, old NULL) or an edit of pickup id whose stored record
 * read was old/oldlen (compare-and-set), storing rec and, when mem != NULL, its member rows as the
 * pickup's complete set (NULL: the stored rows stay). 0 or -1 with the reply set, as
 * svc_write_cas (*conflict: read again).
 */
static int s_put(svc_ctx_t *ctx, long long id, const char *old, size_t oldlen, const svc_record_t *rec, const svc_record_t *mem,
                 int *conflict)
{
    msgpack_sbuffer rows, paths;
    msgpack_sbuffer_init(&rows);
    msgpack_sbuffer_init(&paths);
    if (mem != NULL) {
        msgpack_packer rpk, ppk;
        msgpack_packer_init(&rpk, &rows, svc_mp_write);
        msgpack_packer_init(&ppk, &paths, svc_mp_write);
        s_pack_members(ctx, mem, &rpk, &ppk);
    }
    const char *keys[PICKUP_NKEYS] = {svc_key(ctx, "pickup:data"),   svc_key(ctx, "pickup:name"), svc_key(ctx, "pickup:rows"),
                                      svc_key(ctx, "pickup:target"), svc_key(ctx, "ver:pickup"),  svc_key(ctx, "user:data"),
                                      svc_key(ctx, "group:data"),    svc_key(ctx, "queue:data")};
    const char *args[6];
    size_t lens[6];
    args[0] = id >= 0 ? svc_ctx_ll(ctx, id) : "", lens[0] = strlen(args[0]);
    args[1] = old != NULL ? old : "", lens[1] = old != NULL ? oldlen : 0;
    args[2] = svc_record_blob(ctx, rec, &lens[2]);
    args[3] = svc_record_str(rec, "name", &lens[3]);
    args[4] = rows.data != NULL ? rows.data : "", lens[4] = rows.size;
    args[5] = paths.data != NULL ? paths.data : "", lens[5] = paths.size;
    int rc = svc_write_cas(ctx, conflict, "ipbx_pickup_put", PICKUP_NKEYS, keys, 6, args, lens);
    msgpack_sbuffer_destroy(&rows);
    msgpack_sbuffer_destroy(&paths);
    return rc;
}

static int s_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&pickup_table), *mem = svc_record_new(&pickup_members_table);
    int conflict = 0;
    int rc = s_load_or_reply(ctx, body, rec, mem);
    if (rc == 0)
        rc = s_put(ctx, -1, NULL, 0, rec, mem, &conflict);
    if (rc == 0 && conflict)
        rc = svc_reply_internal(ctx, "pickup add: unexpected conflict outcome");
    svc_record_destroy(&mem);
    svc_record_destroy(&rec);
    return rc;
}

static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (s_pid_or_reply(ctx, &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    const msgpack_object *m = svc_mp_get(body, "members");
    int members_given = m != NULL && m->type != MSGPACK_OBJECT_NIL;
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *rec = svc_record_new(&pickup_table), *mem = svc_record_new(&pickup_members_table);
        const char *old = NULL;
        size_t oldlen = 0;
        int conflict = 0;
        int rc = svc_crud_load_or_reply(ctx, &s_crud, id, rec, &old, &oldlen);
        if (rc == 0)
            rc = s_load_or_reply(ctx, body, rec, mem);
        if (rc == 0)
            rc = s_put(ctx, id, old, oldlen, rec, members_given ? mem : NULL, &conflict);
        svc_record_destroy(&mem);
        svc_record_destroy(&rec);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "pickup %lld: edit kept conflicting with other writers", id);
}

static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (s_pid_or_reply(ctx, &id) != 0)
        return -1;
    const char *keys[] = {svc_key(ctx, "pickup:data"), svc_key(ctx, "pickup:name"), svc_key(ctx, "pickup:rows"),
                          svc_key(ctx, "pickup:target"), svc_key(ctx, "ver:pickup")};
    const char *ids = svc_ctx_ll(ctx, id);
    size_t len = strlen(ids);
    return svc_write(ctx, "ipbx_pickup_del", 5, keys, 1, &ids, &len);
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"view", s_view}, {"add", s_add}, {"edit", s_edit}, {"delete", s_delete}, {NULL, NULL},
};

const svc_resource_t pickup_resource = {"pickup", "list", s_acts};
