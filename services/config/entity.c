/*
 * entity.c - the entity resource (spec §4.1, manage/entity).
 *
 * A table instance of the record layer (svc_index.h): the field table, the unique name index and
 * the reference count are declarations; the writes are the common record functions
 * (config_records_put / _del / _delall, registered by lua/config.lua).
 *
 * Redis: <p>entity:seq (INCR: ids, never reused), <p>entity:data (hash id → msgpack record),
 * <p>entity:name (hash name → id, the unique index), <p>entity:refs (hash id → number of
 * contexts and users that belong to the entity; maintained by their write functions, checked by
 * delete), <p>ver:entity (version counter for ETags).
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
static const svc_index_t s_indexes[] = {
    {SVC_IX_UNIQUE, "name", "entity:name", NULL, 0, "an entity named %s already exists"},
};
/* entity:refs counts the contexts and users of each entity (written by their functions): a delete waits for 0 */
static const svc_records_t s_records = {.service = "config",
                                        .crud = {"entity", &s_table, "entity:data", NULL},
                                        .seq = "entity:seq",
                                        .inrefs = "entity:refs",
                                        .indexes = s_indexes,
                                        .nindexes = 1};

static int s_list(svc_ctx_t *ctx)
{
    return svc_crud_list(ctx, &s_records.crud);
}

static int s_search(svc_ctx_t *ctx)
{
    return svc_crud_search(ctx, &s_records.crud);
}

static int s_view(svc_ctx_t *ctx)
{
    return svc_crud_view(ctx, &s_records.crud);
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
    if (rc == 0)
        rc = svc_records_add_or_reply(ctx, &s_records, rec);
    svc_record_destroy(&rec);
    return rc;
}

static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    return svc_records_edit_or_reply(ctx, &s_records, id, body, NULL);
}

static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    return svc_records_delete_or_reply(ctx, &s_records, id);
}

static int s_deleteall(svc_ctx_t *ctx)
{
    return svc_records_deleteall_or_reply(ctx, &s_records);
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"search", s_search}, {"view", s_view},           {"add", s_add},
    {"edit", s_edit}, {"delete", s_delete}, {"deleteall", s_deleteall}, {NULL, NULL},
};

const svc_resource_t cfg_entity_resource = {"entity", "list", s_acts};
