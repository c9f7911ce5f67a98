/*
 * groups.c - the handlers of the `groups` and `queues` resources (spec §5.5, §5.6): list, search,
 * view, add, edit, delete, one code path for both kinds (groups_kind_t). Validation and rendering
 * come from the tables of group_table.c; every write is one call of a function of lua/groups.lua
 * (the record, its name index, its context reference, its number and, on delete, the cascade of
 * lua/refs.lua in one atomic step).
 */
#include <assert.h>
#include <string.h>
#include "groups.h"
#include "refs.h"

#define GROUPS_PUT_NKEYS 12                                   /* KEYS of ipbx_groups_put after the write id (lua/groups.lua) */
#define GROUPS_DEL_NKEYS (GROUPS_PUT_NKEYS + IPBX_REFS_NKEYS) /* ipbx_groups_del: the same, then the cascade keys (refs.h) */

/* ---- reading --------------------------------------------------------------------------------------- */

static int s_list(svc_ctx_t *ctx, const groups_kind_t *k)
{
    return svc_crud_list(ctx, &k->records->crud);
}

/* the substring of `search` in the name or the number (case-insensitive); 204 when empty or nothing matches */
static int s_search(svc_ctx_t *ctx, const groups_kind_t *k)
{
    return svc_crud_search(ctx, &k->records->crud);
}

/* packs the members "uid,uid,..." as an array of numbers, or false when there is none (spec §3) */
static void s_pack_members(msgpack_packer *pk, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (i == 0 || s[i - 1] == ',') && s[i] != ',';
    if (n == 0) {
        msgpack_pack_false(pk);
        return;
    }
    msgpack_pack_array(pk, n);
    long long v = 0;
    int in = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ',') {
            if (in)
                msgpack_pack_int64(pk, v);
            v = 0, in = 0;
        } else {
            v = v * 10 + (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : 0);
            in = 1;
        }
    }
}

/* the object plus `user`: the member user ids (ETag from the kind's and the users' versions) */
static int s_view(svc_ctx_t *ctx, const groups_kind_t *k)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    const char *ids = svc_ctx_ll(ctx, id);
    const char *argv[] = {
        "FCALL_RO", svc_fn(ctx, "ipbx_groups_read"), "2", svc_key(ctx, k->records->crud.data_key), svc_key(ctx, k->members), ids};
    redisReply *r = NULL;
    if (svc_etag_prefetch_or_reply(ctx, k->view_deps, 6, argv, &r) != 0)
        return -1;
    int rc = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        rc = svc_reply_redis_failure(ctx, r, "reading a group");
    } else if (r->element[0]->len == 0) {
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no %s has id %lld", k->kind, id);
    } else {
        svc_record_t *rec = svc_record_new(k->records->crud.table);
        if (svc_record_load_stored(rec, r->element[0]->str, r->element[0]->len) != 0) {
            rc = svc_reply_internal(ctx, "%s %lld: corrupt record", k->kind, id);
        } else {
            char etag[sizeof(ctx->etag)];
            memcpy(etag, ctx->etag, sizeof(etag));
            svc_record_set_id(rec, id);
            msgpack_packer *pk = svc_reply_begin(ctx, 200);
            msgpack_pack_map(pk, svc_record_render_count(rec) + 1);
            svc_record_render_fields(rec, pk);
            svc_mp_cstr(pk, "user");
            s_pack_members(pk, r->element[1]->str, r->element[1]->len);
            memcpy(ctx->etag, etag, sizeof(etag));
        }
        svc_record_destroy(&rec);
    }
    freeReplyObject(r);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------------------- */

/* KEYS after the write id (lua/groups.lua): the record layout, the number keys of the old and new context, the cascade */
static void s_write_keys(svc_ctx_t *ctx, const groups_kind_t *k, const char *keys[GROUPS_DEL_NKEYS], const char *oldctx,
                         const char *newctx)
{
    const svc_records_t *d = k->records;
    assert(d->nindexes == 2); /* name, context: the layout of lua/groups.lua */
    keys[0] = svc_key(ctx, d->seq);
    keys[1] = svc_key(ctx, d->crud.data_key);
    keys[2] = svc_key2(ctx, "ver:", d->crud.resource);
    keys[3] = keys[1]; /* no inrefs: what points at a group is cleaned up by the cascade, never refused */
    for (size_t i = 0; i < d->nindexes; i++) {
        keys[4 + 2 * i] = svc_key(ctx, d->indexes[i].key);
        keys[5 + 2 * i] = svc_key(ctx, d->indexes[i].refs != NULL ? d->indexes[i].refs : d->indexes[i].key);
    }
    keys[8] = svc_number_key(ctx, oldctx);
    keys[9] = svc_number_idx_key(ctx, oldctx);
    keys[10] = svc_number_key(ctx, newctx);
    keys[11] = svc_number_idx_key(ctx, newctx);
    ipbx_refs_keys(ctx, &keys[GROUPS_PUT_NKEYS]);
}

/*
 * ipbx_groups_put: rec the validated new record; for an edit, its id, the blob and the record
 * read. Returns 0 or -1 with the reply set, as svc_write_cas (*conflict: read again).
 */
static int s_put(svc_ctx_t *ctx, const groups_kind_t *k, const char *id, const char *blob, size_t bloblen, const svc_record_t *old,
                 const svc_record_t *rec, int *conflict)
{
    const char *newctx = svc_record_str(rec, "context", NULL);
    const char *oldctx = old != NULL ? svc_record_str(old, "context", NULL) : newctx;
    const char *keys[GROUPS_DEL_NKEYS], *args[12];
    size_t lens[12];
    s_write_keys(ctx, k, keys, oldctx, newctx);
    args[0] = k->kind;
    args[1] = id != NULL ? id : "";
    args[2] = blob != NULL ? blob : "", lens[2] = blob != NULL ? bloblen : 0;
    args[3] = svc_record_blob(ctx, rec, &lens[3]);
    args[4] = svc_index_entries(ctx, k->records, old, &lens[4]);
    args[5] = svc_index_entries(ctx, k->records, rec, &lens[5]);
    svc_index_kinds(ctx, k->records, &args[6], &args[7], &lens[7]);
    args[8] = oldctx;
    args[9] = old != NULL ? svc_record_str(old, "number", NULL) : "";
    args[10] = newctx;
    args[11] = svc_record_str(rec, "number", NULL);
    for (int i = 0; i < 12; i++)
        if (i != 2 && i != 3 && i != 4 && i != 5 && i != 7)
            lens[i] = strlen(args[i]);
    return svc_write_cas(ctx, conflict, "ipbx_groups_put", GROUPS_PUT_NKEYS, keys, 12, args, lens);
}

/* loads the body into rec (over what it holds: the merge of an edit), fills the defaults, checks. 0, or -1 with the reply set */
static int s_load_or_reply(svc_ctx_t *ctx, svc_record_t *rec, const msgpack_object *body)
{
    if (svc_record_load_body_or_reply(ctx, rec, body) != 0)
        return -1;
    svc_record_defaults(rec);
    return svc_record_check_or_reply(ctx, rec);
}

/* 200 with an empty body; 400 for a refused record, a taken name or number, a number out of the ranges */
static int s_add(svc_ctx_t *ctx, const groups_kind_t *k)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(k->records->crud.table);
    int rc = s_load_or_reply(ctx, rec, body);
    if (rc == 0) {
        int conflict = 0;
        rc = s_put(ctx, k, NULL, NULL, 0, NULL, rec, &conflict);
        if (rc == 0 && conflict)
            rc = svc_reply_internal(ctx, "%s add: unexpected conflict outcome", k->kind);
    }
    svc_record_destroy(&rec);
    return rc;
}

/* partial: the stored record merged with the body, checked as add; the number moves atomically. 404 for an unknown id */
static int s_edit(svc_ctx_t *ctx, const groups_kind_t *k)
{
    long long id;
    const msgpack_object *body;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(k->records->crud.table), *rec = svc_record_new(k->records->crud.table);
        const char *blob;
        size_t bloblen;
        int conflict = 0;
        int rc = svc_crud_load_or_reply(ctx, &k->records->crud, id, old, &blob, &bloblen);
        if (rc == 0 && svc_record_load_stored(rec, blob, bloblen) != 0)
            rc = svc_reply_internal(ctx, "%s %lld: corrupt record", k->kind, id);
        if (rc == 0)
            rc = s_load_or_reply(ctx, rec, body);
        if (rc == 0)
            rc = s_put(ctx, k, ids, blob, bloblen, old, rec, &conflict);
        svc_record_destroy(&old);
        svc_record_destroy(&rec);
        if (rc != 0 || !conflict)
            return rc;
        /* changed by another writer between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "%s %lld: edit kept conflicting with other writers", k->kind, id);
}

/* removes the record, its number, its name, its context reference and every reference to it (lua/refs.lua). 404 */
static int s_delete(svc_ctx_t *ctx, const groups_kind_t *k)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(k->records->crud.table);
        const char *blob;
        size_t bloblen;
        int conflict = 0;
        int rc = svc_crud_load_or_reply(ctx, &k->records->crud, id, old, &blob, &bloblen);
        if (rc == 0) {
            const char *c = svc_record_str(old, "context", NULL);
            const char *keys[GROUPS_DEL_NKEYS], *args[7], *msgs;
            size_t lens[7], msgslen;
            s_write_keys(ctx, k, keys, c, c);
            args[0] = k->kind;
            args[1] = ids;
            args[2] = blob, lens[2] = bloblen;
            args[3] = svc_index_entries(ctx, k->records, old, &lens[3]);
            svc_index_kinds(ctx, k->records, &args[4], &msgs, &msgslen);
            args[5] = c;
            args[6] = svc_record_str(old, "number", NULL);
            for (int i = 0; i < 7; i++)
                if (i != 2 && i != 3)
                    lens[i] = strlen(args[i]);
            rc = svc_write_cas(ctx, &conflict, "ipbx_groups_del", GROUPS_DEL_NKEYS, keys, 7, args, lens);
        }
        svc_record_destroy(&old);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "%s %lld: delete kept conflicting with other writers", k->kind, id);
}

/* ---- the two resources ------------------------------------------------------------------------------ */

#define GROUPS_ACTS(prefix, kind)                                                                                                  \
    static int prefix##_list(svc_ctx_t *ctx)                                                                                       \
    {                                                                                                                              \
        return s_list(ctx, kind);                                                                                                  \
    }                                                                                                                              \
    static int prefix##_search(svc_ctx_t *ctx)                                                                                     \
    {                                                                                                                              \
        return s_search(ctx, kind);                                                                                                \
    }                                                                                                                              \
    static int prefix##_view(svc_ctx_t *ctx)                                                                                       \
    {                                                                                                                              \
        return s_view(ctx, kind);                                                                                                  \
    }                                                                                                                              \
    static int prefix##_add(svc_ctx_t *ctx)                                                                                        \
    {                                                                                                                              \
        return s_add(ctx, kind);                                                                                                   \
    }                                                                                                                              \
    static int prefix##_edit(svc_ctx_t *ctx)                                                                                       \
    {                                                                                                                              \
        return s_edit(ctx, kind);                                                                                                  \
    }                                                                                                                              \
    static int prefix##_delete(svc_ctx_t *ctx)                                                                                     \
    {                                                                                                                              \
        return s_delete(ctx, kind);                                                                                                \
    }                                                                                                                              \
    static const svc_act_t prefix##_acts[] = {                                                                                     \
        {"list", prefix##_list},                                                                                                   \
        {"search", prefix##_search},                                                                                               \
        {"view", prefix##_view},                                                                                                   \
        {"add", prefix##_add},                                                                                                     \
        {"edit", prefix##_edit},                                                                                                   \
        {"delete", prefix##_delete},                                                                                               \
        {NULL, NULL},                                                                                                              \
    };

GROUPS_ACTS(s_group, &groups_group)
GROUPS_ACTS(s_queue, &groups_queue)

const svc_resource_t groups_resource = {"groups", "list", s_group_acts};
const svc_resource_t queues_resource = {"queues", "list", s_queue_acts};
