/*
 * entity.c - the entity resource (spec §4.1, manage/entity).
 *
 * Redis: <p>entity:seq (INCR: ids, never reused), <p>entity:data (hash id → msgpack record),
 * <p>entity:name (hash name → id, the unique index), <p>entity:refs (hash id → number of
 * contexts and users that belong to the entity; maintained by their write functions, checked by
 * delete), <p>ver:entity (version counter for ETags). Writes are the config_entity_* functions
 * of lua/config.lua.
 */
#include <string.h>
#include "config_int.h"

static void s_identity(const svc_record_t *rec, msgpack_packer *pk)
{
    size_t dl, nl;
    const char *d = svc_record_str(rec, "displayname", &dl), *n = svc_record_str(rec, "name", &nl);
    msgpack_pack_str(pk, dl + nl + 3);
    msgpack_pack_str_body(pk, d, dl);
    msgpack_pack_str_body(pk, " (", 2);
    msgpack_pack_str_body(pk, n, nl);
    msgpack_pack_str_body(pk, ")", 1);
}

#define TEXT(n, fl, mx)                                                                                                            \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_SEARCH | (fl), .max_len = (mx)                                    \
    }
#define TEXTC(n, fl, mx, cs)                                                                                                       \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_SEARCH | (fl), .max_len = (mx), .charset = cs                     \
    }

static const svc_field_t s_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "name",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_SEARCH | SVC_F_REQUIRED | SVC_F_LOWER | SVC_F_TRIM,
     .min_len = 1,
     .max_len = 64,
     .charset = "a-z0-9_.-"},
    {.name = "displayname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_SEARCH | SVC_F_REQUIRED, .min_len = 3, .max_len = 128},
    TEXTC("phonenumber", 0, 40, "0-9*#+"),
    TEXTC("faxnumber", 0, 40, "0-9*#+"),
    {.name = "email",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_SEARCH | SVC_F_TRIM,
     .max_len = 255,
     .check = svc_check_email,
     .check_what = "an e-mail address"},
    TEXT("url", 0, 255),
    TEXT("address1", 0, 30),
    TEXT("address2", 0, 30),
    TEXT("city", 0, 128),
    TEXT("state", 0, 128),
    TEXTC("zipcode", 0, 16, "A-Za-z0-9_ -"),
    {.name = "country",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_SEARCH | SVC_F_UPPER | SVC_F_TRIM,
     .min_len = 2,
     .max_len = 2,
     .charset = "A-Z"},
    TEXT("description", SVC_F_MULTILINE, 1000),
    {.name = "disable", .kind = SVC_BOOL, .flags = SVC_F_STORED, .def = "false"},
    {.name = "dcreate", .kind = SVC_INT, .flags = SVC_F_STORED},
    {.name = "identity", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_identity},
};
static const svc_table_t s_table = SVC_TABLE(s_fields);
static const svc_crud_t s_crud = {"entity", &s_table, "entity:data", NULL};

/* KEYS after the write id, in the order of lua/config.lua */
static void s_keys(svc_ctx_t *ctx, const char *keys[5])
{
    keys[0] = svc_key(ctx, "entity:seq");
    keys[1] = svc_key(ctx, "entity:data");
    keys[2] = svc_key(ctx, "entity:name");
    keys[3] = svc_key(ctx, "entity:refs");
    keys[4] = svc_key(ctx, "ver:entity");
}

static int s_list(svc_ctx_t *ctx)
{
    return svc_crud_list(ctx, &s_crud);
}

static int s_search(svc_ctx_t *ctx)
{
    return svc_crud_search(ctx, &s_crud);
}

static int s_view(svc_ctx_t *ctx)
{
    return svc_crud_view(ctx, &s_crud);
}

/* packs the stored form of rec into a pooled string */
static const char *s_blob(svc_ctx_t *ctx, const svc_record_t *rec, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    svc_record_pack_stored(rec, &pk);
    const char *b = svc_ctx_strndup(ctx, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return b;
}

static int s_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&s_table);
    int rc = svc_record_load_body_or_reply(ctx, rec, body);
    if (rc == 0) {
        svc_record_defaults(rec);
        svc_record_set_int(rec, "disable", 0);
        svc_record_set_int(rec, "dcreate", svc_now_ms() / 1000);
        rc = svc_record_check_or_reply(ctx, rec);
    }
    if (rc == 0) {
        const char *keys[5], *args[2];
        size_t lens[2];
        s_keys(ctx, keys);
        args[0] = svc_record_str(rec, "name", &lens[0]);
        args[1] = s_blob(ctx, rec, &lens[1]);
        rc = svc_write(ctx, "config_entity_add", 5, keys, 2, args, lens) == 200 ? 0 : -1;
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
    for (int attempt = 0; attempt < 10; attempt++) {
        svc_record_t *rec = svc_record_new(&s_table);
        const char *old;
        size_t oldlen;
        if (svc_crud_load_or_reply(ctx, &s_crud, id, rec, &old, &oldlen) != 0) {
            svc_record_destroy(&rec);
            return -1;
        }
        const char *oldname = svc_ctx_strndup(ctx, svc_record_str(rec, "name", NULL), strlen(svc_record_str(rec, "name", NULL)));
        int rc = svc_record_load_body_or_reply(ctx, rec, body);
        if (rc == 0) {
            svc_record_defaults(rec);
            rc = svc_record_check_or_reply(ctx, rec);
        }
        if (rc != 0) {
            svc_record_destroy(&rec);
            return -1;
        }
        const char *keys[5], *args[5];
        size_t lens[5];
        s_keys(ctx, keys);
        args[0] = svc_ctx_printf(ctx, "%lld", id);
        lens[0] = strlen(args[0]);
        args[1] = old, lens[1] = oldlen;
        args[2] = s_blob(ctx, rec, &lens[2]);
        args[3] = oldname, lens[3] = strlen(oldname);
        args[4] = svc_record_str(rec, "name", &lens[4]);
        int status = svc_write(ctx, "config_entity_edit", 5, keys, 5, args, lens);
        svc_record_destroy(&rec);
        if (status != 0)
            return status == 200 ? 0 : -1;
        /* another writer changed the entity between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "entity %lld: edit kept conflicting with other writers", id);
}

static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    const char *keys[5], *args[1];
    s_keys(ctx, keys);
    args[0] = svc_ctx_printf(ctx, "%lld", id);
    return svc_write(ctx, "config_entity_delete", 5, keys, 1, args, NULL) == 200 ? 0 : -1;
}

static int s_deleteall(svc_ctx_t *ctx)
{
    const char *keys[5];
    s_keys(ctx, keys);
    int status = svc_write(ctx, "config_entity_deleteall", 5, keys, 0, NULL, NULL);
    return status == 200 || status == 204 ? 0 : -1;
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"search", s_search}, {"view", s_view},           {"add", s_add},
    {"edit", s_edit}, {"delete", s_delete}, {"deleteall", s_deleteall}, {NULL, NULL},
};

const svc_resource_t cfg_entity_resource = {"entity", "list", s_acts};
