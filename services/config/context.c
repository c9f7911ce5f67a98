/*
 * context.c - see context.h. A table instance of the record layer: the body, the stored record
 * and the view are one declaration (context_table); what is left by hand is the entity (a name
 * on input, an id in the record) and the rules that need the store: config_context_put checks
 * the references and the numbers in use with the prelude's helpers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "context.h"
#include "svc.h"

#define CTX_MAX_RANGES 1000   /* per type */
#define CTX_MAX_INCLUDES 1000 /* included contexts */

static const char *const ctx_read_deps[] = {"context", "entity", NULL};

/* ---- names ------------------------------------------------------------------------------------- */

int context_name_ok(const char *s, size_t len)
{
    static const char *const reserved[] = {"general", "global", "globals", "parkedcalls", "authentication", "zonemessages"};
    static const char *const prefixes[] = {"macro-", "voicemenu-", "xivo-"};
    if (len < 1 || len > 39)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == len && strncasecmp(s, reserved[i], len) == 0)
            return 0;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (len >= strlen(prefixes[i]) && strncasecmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return 0;
    return 1;
}

static int s_check_name(const char *s, size_t len)
{
    return context_name_ok(s, len) ? 0 : -1;
}

/* ---- the record -------------------------------------------------------------------------------- */

/* "" or absent: the name */
static void s_default_displayname(svc_record_t *part)
{
    size_t len;
    const char *name = svc_record_str(part, "name", &len);
    svc_record_set_str(part, "displayname", name, len);
}

static void s_default_type(svc_record_t *part)
{
    svc_record_set_str(part, "contexttype", "internal", 8);
}

static const char *const ctx_kinds[] = {"internal", "incall", "outcall", "services", "others", NULL};
static const svc_rule_t part_rules[] = {
    {.kind = SVC_RULE_DEFAULT, .field = "displayname", .fill = s_default_displayname},
    {.kind = SVC_RULE_DEFAULT, .field = "contexttype", .fill = s_default_type},
};
/* the `context` part; "entity" is the entity's name (input and output), "entityid" its id (stored) */
static const svc_field_t part_fields[] = {
    {.name = "name",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_SEARCH,
     .min_len = 1,
     .max_len = 39,
     .charset = "A-Za-z0-9_-",
     .check = s_check_name,
     .check_what = "a name that is not reserved (general, global, globals, parkedcalls, authentication, zonemessages, "
                   "macro-*, voicemenu-*, xivo-*)"},
    {.name = "displayname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_SEARCH, .max_len = 128},
    {.name = "entity", .kind = SVC_TEXT, .flags = SVC_F_INPUT | SVC_F_LOWER | SVC_F_TRIM},
    {.name = "entityid", .kind = SVC_INT, .flags = SVC_F_STORED | SVC_F_HIDDEN},
    {.name = "contexttype", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_LOWER, .choices = ctx_kinds},
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
};
static const svc_table_t part_table = SVC_TABLE(part_fields, SVC_RULES(part_rules));

/* a range: equal-length digit strings, numberend "" for a single number; incall "" - "" = any DID */
static int s_range_rule(svc_ctx_t *ctx, svc_record_t *r)
{
    size_t lb, le;
    const char *beg = svc_record_str(r, "numberbeg", &lb), *end = svc_record_str(r, "numberend", &le);
    int incall = svc_record_declares(r, "didlength");
    if (lb == 0 && !(incall && le == 0))
        return svc_record_error_or_reply(ctx, r, "numberbeg", "invalid_value", "must be 1 to %d digits", SVC_NUMBER_MAX_DIGITS);
    if (le > 0 && le != lb)
        return svc_record_error_or_reply(ctx, r, "numberend", "invalid_value", "must be empty or as many digits as numberbeg");
    if (le > 0 && strcmp(end, beg) < 0)
        return svc_record_error_or_reply(ctx, r, "numberend", "invalid_value", "must not be lower than numberbeg");
    return 0;
}

static const svc_rule_t range_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_range_rule}};
#define CTX_BEG                                                                                                                    \
    {                                                                                                                              \
        .name = "numberbeg", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .max_len = SVC_NUMBER_MAX_DIGITS,             \
        .charset = "0-9"                                                                                                           \
    }
#define CTX_END                                                                                                                    \
    {                                                                                                                              \
        .name = "numberend", .kind = SVC_TEXT, .flags = SVC_F_DATA, .charset = "0-9"                                               \
    }
static const svc_field_t range_fields[] = {CTX_BEG, CTX_END};
static const svc_field_t incall_fields[] = {
    CTX_BEG, CTX_END, {.name = "didlength", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 1, .max = 20, .def = "4"}};
static const svc_table_t range_table = SVC_TABLE(range_fields, .stored_array = 1, SVC_RULES(range_rules));
static const svc_table_t incall_table = SVC_TABLE(incall_fields, .stored_array = 1, SVC_RULES(range_rules));

#define CTX_RANGES(n, t)                                                                                                           \
    {                                                                                                                              \
        .name = n, .kind = SVC_LIST, .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT, .max_len = CTX_MAX_RANGES,            \
        .sub = &(t)                                                                                                                \
    }
/* positions 7-11 of the stored record: read by the number helpers (svc_number.h) */
static const svc_field_t numbers_fields[] = {
    CTX_RANGES("user", range_table),   CTX_RANGES("group", range_table),   CTX_RANGES("queue", range_table),
    CTX_RANGES("meetme", range_table), CTX_RANGES("incall", incall_table),
};
static const svc_table_t numbers_table = SVC_TABLE(numbers_fields);

static const svc_field_t include_item = {.kind = SVC_TEXT,
                                         .flags = SVC_F_REQUIRED | SVC_F_STRICT,
                                         .check = s_check_name,
                                         .check_what = "the name of a context",
                                         .check_code = "unknown_reference"};

static int s_no_self_include(svc_ctx_t *ctx, svc_record_t *rec)
{
    const char *self = svc_record_str(svc_record_obj(rec, "context"), "name", NULL);
    for (size_t i = 0; i < svc_record_count(rec, "contextinclude"); i++) {
        if (strcmp(svc_record_item_str(rec, "contextinclude", i, NULL), self) == 0) {
            const char *path = svc_ctx_printf(ctx, "contextinclude[%zu]", svc_record_item_index(rec, "contextinclude", i));
            return svc_reply_error(ctx, 400, "invalid_value", path, "%s: a context cannot include itself", path);
        }
    }
    return 0;
}

static const svc_rule_t context_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_no_self_include}};
/*
 * The whole object, stored as the positional array {name, displayname, entity id, contexttype,
 * description, {included names}, {user ranges}, {group}, {queue}, {meetme}, {incall ranges}}, a
 * range being {numberbeg, numberend} ({numberbeg, numberend, didlength} for incall).
 */
static const svc_field_t context_fields[] = {
    {.name = "context", .kind = SVC_OBJECT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_INLINE, .sub = &part_table},
    {.name = "contextinclude",
     .kind = SVC_LIST,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT | SVC_F_DEDUP,
     .max_len = CTX_MAX_INCLUDES,
     .item = &include_item},
    {.name = "contextnumbers",
     .kind = SVC_OBJECT,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT | SVC_F_CLOSED | SVC_F_INLINE,
     .sub = &numbers_table},
};
static const svc_table_t context_table = SVC_TABLE(context_fields, .stored_array = 1, SVC_RULES(context_rules));

/* the included contexts are references: each must exist, and context:inclrefs counts them */
static const svc_index_t context_ix[] = {
    {SVC_IX_REF, "contextinclude", "context:data", "context:inclrefs", 0, "no context is named %s"},
};
/* the messages of the indexes as the record functions take them: msgpack {"no context is named %s"} */
#define CTX_INCLUDE_MSGS "\x91\xb6no context is named %s"
static const svc_records_t context_records = {
    .service = "config", .crud = {"context", &context_table, "context:data", ctx_read_deps}, .indexes = context_ix, .nindexes = 1};

/* ---- validation -------------------------------------------------------------------------------- */

/*
 * Reads body into rec: a new record (name NULL), or the stored record of context name merged with
 * body. Then defaults and every rule. 0, or -1 with the 400 answer set.
 */
static int s_validate_or_reply(svc_ctx_t *ctx, svc_record_t *rec, const msgpack_object *body, const char *name)
{
    if (svc_record_load_body_or_reply(ctx, rec, body) != 0)
        return -1;
    if (name != NULL) {
        svc_record_t *part = svc_record_obj(rec, "context");
        if (strcmp(svc_record_str(part, "name", NULL), name) != 0)
            return svc_record_error_or_reply(ctx, part, "name", "invalid_value", "a context cannot be renamed (id is %s)", name);
    }
    svc_record_defaults(rec);
    return svc_record_check_or_reply(ctx, rec);
}

/* ---- writes ------------------------------------------------------------------------------------ */

/* KEYS after the write id, in the order of lua/context.lua (6 and 7: the include index) */
static void s_keys(svc_ctx_t *ctx, const char *name, const char *keys[9])
{
    keys[0] = svc_key(ctx, "context:data");
    keys[1] = svc_key(ctx, "ver:context");
    keys[2] = svc_key(ctx, "entity:name");
    keys[3] = svc_key(ctx, "entity:data");
    keys[4] = svc_key(ctx, "context:data");
    keys[5] = svc_key(ctx, "context:inclrefs");
    keys[6] = svc_key(ctx, "entity:refs");
    keys[7] = svc_number_key(ctx, name);
    keys[8] = svc_key(ctx, "context:refs");
}

/* config_context_put of rec (old/oldrec: the record read for an edit, NULL for an add), svc_write_cas */
static int s_put(svc_ctx_t *ctx, const svc_record_t *rec, const char *old, size_t oldlen, const svc_record_t *oldrec, int *conflict)
{
    const svc_record_t *part = svc_record_obj((svc_record_t *)rec, "context");
    const char *name = svc_record_str(part, "name", NULL);
    const char *keys[9], *args[8];
    size_t lens[8];
    s_keys(ctx, name, keys);
    args[0] = name, lens[0] = strlen(name);
    args[1] = old != NULL ? old : "", lens[1] = old != NULL ? oldlen : 0;
    args[2] = svc_record_blob(ctx, rec, &lens[2]);
    args[3] = svc_index_entries(ctx, &context_records, oldrec, &lens[3]);
    args[4] = svc_index_entries(ctx, &context_records, rec, &lens[4]);
    args[5] = "r", lens[5] = 1;
    args[6] = CTX_INCLUDE_MSGS, lens[6] = sizeof(CTX_INCLUDE_MSGS) - 1;
    args[7] = svc_record_str(part, "entity", &lens[7]); /* "": unchanged (add: the lowest id) */
    return svc_write_cas(ctx, conflict, "config_context_put", 9, keys, 8, args, lens);
}

/* the id parameter as a context name; NULL (with a 404 answer) when it cannot name a context */
static const char *s_id_or_reply(svc_ctx_t *ctx)
{
    const char *id = svc_param(ctx, "id");
    if (id == NULL || *id == '\0') {
        svc_reply_error(ctx, 404, "not_found", "id", "no context name given (id)");
        return NULL;
    }
    if (!context_name_ok(id, strlen(id))) {
        svc_reply_error(ctx, 404, "not_found", "id", "no context has this name");
        return NULL;
    }
    return id;
}

int context_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&context_table);
    int rc = s_validate_or_reply(ctx, rec, body, NULL);
    if (rc == 0)
        rc = s_put(ctx, rec, NULL, 0, NULL, NULL); /* an add never conflicts */
    svc_record_destroy(&rec);
    return rc;
}

/* reads the stored record of context name into rec (and its bytes); 0, or -1 with the reply set (404, 500) */
static int s_load_or_reply(svc_ctx_t *ctx, const char *name, svc_record_t *rec, const char **blob, size_t *len)
{
    const char *argv[] = {"HGET", svc_key(ctx, "context:data"), name};
    redisReply *r = svc_redis_command(ctx->redis, 3, argv, NULL);
    int rc = 0;
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no context has this name");
    else if (r == NULL || r->type != REDIS_REPLY_STRING)
        rc = svc_reply_redis_failure(ctx, r, "reading a context");
    else if (svc_record_load_stored(rec, r->str, r->len) != 0)
        rc = svc_reply_internal(ctx, "the stored record of context %s is malformed", name);
    else
        *blob = svc_ctx_strndup(ctx, r->str, r->len), *len = r->len;
    freeReplyObject(r);
    return rc;
}

int context_edit(svc_ctx_t *ctx)
{
    const char *id = s_id_or_reply(ctx);
    const msgpack_object *body;
    if (id == NULL)
        return -1;
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(&context_table), *rec = svc_record_new(&context_table);
        const char *blob = NULL;
        size_t len = 0;
        /* an unknown id is a 404 whatever the body holds (the write function checks again, atomically) */
        int rc = s_load_or_reply(ctx, id, old, &blob, &len);
        if (rc == 0)
            rc = svc_body_map_or_reply(ctx, &body);
        if (rc == 0 && svc_record_load_stored(rec, blob, len) != 0)
            rc = svc_reply_internal(ctx, "the stored record of context %s is malformed", id);
        if (rc == 0) {
            /* "" for the type keeps it */
            svc_record_t *part = svc_record_obj(rec, "context");
            rc = s_validate_or_reply(ctx, rec, body, id);
            if (rc == 0 && svc_record_str(part, "contexttype", NULL)[0] == '\0') {
                const char *t = svc_record_str(svc_record_obj(old, "context"), "contexttype", NULL);
                svc_record_set_str(part, "contexttype", t, strlen(t));
            }
        }
        int conflict = 0;
        if (rc == 0)
            rc = s_put(ctx, rec, blob, len, old, &conflict);
        svc_record_destroy(&old);
        svc_record_destroy(&rec);
        if (rc != 0 || !conflict)
            return rc;
        /* another writer changed the context between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "context %s: edit kept conflicting with other writers", id);
}

int context_delete(svc_ctx_t *ctx)
{
    const char *id = s_id_or_reply(ctx);
    if (id == NULL)
        return -1;
    const char *keys[9], *args[1] = {id};
    s_keys(ctx, id, keys);
    return svc_write(ctx, "config_context_delete", 9, keys, 1, args, NULL);
}

/* ---- reads ------------------------------------------------------------------------------------- */

/*
 * FCALL_RO config_context_read: name NULL for every context. The records, each with its
 * entity's current name as "entity": *recs (n, freed with s_free), or -1 with the reply set.
 */
static int s_read_or_reply(svc_ctx_t *ctx, const char *name, svc_record_t ***recs, size_t *n)
{
    const char *keys[] = {svc_key(ctx, "context:data"), svc_key(ctx, "entity:data")};
    const char *args[] = {name != NULL ? name : ""};
    redisReply *r = svc_redis_fcall(ctx->redis, 1, "config_context_read", 2, keys, 1, args, NULL);
    *recs = NULL;
    *n = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        svc_reply_redis_failure(ctx, r, "reading contexts");
        freeReplyObject(r);
        return -1;
    }
    *recs = svc_calloc(r->elements / 2 + 1, sizeof(**recs));
    int rc = 0;
    for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
        const redisReply *data = r->element[i], *ename = r->element[i + 1];
        svc_record_t *rec = svc_record_new(&context_table);
        (*recs)[(*n)++] = rec;
        if (data->type != REDIS_REPLY_STRING || ename->type != REDIS_REPLY_STRING ||
            svc_record_load_stored(rec, data->str, data->len) != 0)
            rc = svc_reply_internal(ctx, "a stored context record is malformed");
        else
            svc_record_set_str(svc_record_obj(rec, "context"), "entity", ename->str, ename->len);
    }
    freeReplyObject(r);
    return rc;
}

static void s_free(svc_record_t **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        svc_record_destroy(&recs[i]);
    free(recs);
}

static int s_cmp_name(const void *a, const void *b)
{
    svc_record_t *x = *(svc_record_t *const *)a, *y = *(svc_record_t *const *)b;
    return strcmp(svc_record_str(svc_record_obj(x, "context"), "name", NULL),
                  svc_record_str(svc_record_obj(y, "context"), "name", NULL));
}

/* list and search: the `context` parts by name; needle NULL for every context */
static int s_list(svc_ctx_t *ctx, const char *needle)
{
    if (svc_etag_or_reply(ctx, ctx_read_deps) != 0)
        return -1;
    svc_record_t **recs;
    size_t n;
    if (s_read_or_reply(ctx, NULL, &recs, &n) != 0) {
        s_free(recs, n);
        return -1;
    }
    svc_record_t **sel = svc_calloc(n + 1, sizeof(*sel)); /* borrowed from recs */
    size_t nsel = 0;
    for (size_t i = 0; i < n; i++)
        if (needle == NULL || svc_record_match(svc_record_obj(recs[i], "context"), needle, strlen(needle)))
            sel[nsel++] = recs[i];
    if (nsel == 0) {
        svc_reply_empty(ctx, 204);
    } else {
        qsort(sel, nsel, sizeof(*sel), s_cmp_name);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_array(pk, nsel);
        for (size_t i = 0; i < nsel; i++)
            svc_record_render(svc_record_obj(sel[i], "context"), pk);
    }
    free(sel);
    s_free(recs, n);
    return 0;
}

int context_list(svc_ctx_t *ctx)
{
    return s_list(ctx, NULL);
}

int context_search(svc_ctx_t *ctx)
{
    const char *needle = svc_param(ctx, "search");
    if (needle == NULL || *needle == '\0')
        return svc_reply_empty(ctx, 204);
    return s_list(ctx, needle);
}

int context_view(svc_ctx_t *ctx)
{
    const char *id = s_id_or_reply(ctx);
    if (id == NULL || svc_etag_or_reply(ctx, ctx_read_deps) != 0)
        return -1;
    svc_record_t **recs;
    size_t n;
    int rc = s_read_or_reply(ctx, id, &recs, &n);
    if (rc == 0 && n == 0)
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no context is named %s", id);
    else if (rc == 0)
        svc_record_render(recs[0], svc_reply_begin(ctx, 200));
    s_free(recs, n);
    return rc;
}

static const svc_act_t context_acts[] = {
    {"list", context_list}, {"search", context_search}, {"view", context_view}, {"add", context_add},
    {"edit", context_edit}, {"delete", context_delete}, {NULL, NULL},
};
const svc_resource_t cfg_context_resource = {"context", "list", context_acts};

/* ---- self-test ------------------------------------------------------------------------------- */

/*
 * Validates json as an add (name NULL) or as an edit of a stored context name that has only its
 * defaults; checks the error code/field (want NULL: accepted, and stored as the 11 positions).
 */
static void s_case(const char *json, const char *name, const char *want_code, const char *want_field)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    XWS_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0 && u.data.type == MSGPACK_OBJECT_MAP);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(&context_table);
    if (name != NULL) {
        svc_record_set_str(svc_record_obj(rec, "context"), "name", name, strlen(name));
        svc_record_defaults(rec);
    }
    int rc = s_validate_or_reply(&ctx, rec, &u.data, name);
    if (want_code == NULL) {
        if (rc != 0)
            fprintf(stderr, "context_test: unexpected rejection of %s: %.*s\n", json, (int)ctx.body.size, ctx.body.data);
        XWS_CHECK(rc == 0);
        size_t len;
        const char *blob = svc_record_blob(&ctx, rec, &len);
        msgpack_unpacked pu;
        XWS_CHECK(svc_mp_unpack(&pu, blob, len) == 0);
        XWS_CHECK(pu.data.type == MSGPACK_OBJECT_ARRAY && pu.data.via.array.size == 11);
        XWS_CHECK(pu.data.via.array.ptr[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER); /* the entity id */
        for (int i = 5; i < 11; i++)
            XWS_CHECK(pu.data.via.array.ptr[i].type == MSGPACK_OBJECT_ARRAY);
        msgpack_unpacked_destroy(&pu);
    } else {
        XWS_CHECK(rc == -1 && ctx.status == 400);
        msgpack_unpacked e;
        XWS_CHECK(svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0);
        int ok = svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) && svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field);
        if (!ok)
            fprintf(stderr, "context_test: %s: expected %s/%s, got %.*s\n", json, want_code, want_field, (int)ctx.body.size,
                    ctx.body.data);
        XWS_CHECK(ok);
        msgpack_unpacked_destroy(&e);
    }
    svc_record_destroy(&rec);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* the stored form round-trips and renders as the view */
static void s_render_case(void)
{
    static const char json[] = "{\"context\":{\"name\":\"c\",\"entity\":\"E\"},\"contextinclude\":[\"b\"],"
                               "\"contextnumbers\":{\"user\":[{\"numberbeg\":\"100\",\"numberend\":\"199\"}],"
                               "\"incall\":[{\"numberbeg\":\"\"}]}}";
    static const char want[] = "{\"context\":{\"name\":\"c\",\"displayname\":\"c\",\"entity\":\"e\",\"contexttype\":"
                               "\"internal\",\"description\":\"\"},\"contextinclude\":[\"b\"],\"contextnumbers\":{\"user\":[{"
                               "\"numberbeg\":\"100\",\"numberend\":\"199\"}],\"group\":false,\"queue\":false,\"meetme\":"
                               "false,\"incall\":[{\"numberbeg\":\"\",\"numberend\":\"\",\"didlength\":4}]}}";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    XWS_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(&context_table), *back = svc_record_new(&context_table);
    XWS_CHECK(s_validate_or_reply(&ctx, rec, &u.data, NULL) == 0);
    size_t len;
    const char *blob = svc_record_blob(&ctx, rec, &len);
    XWS_CHECK(svc_record_load_stored(back, blob, len) == 0);
    svc_record_set_str(svc_record_obj(back, "context"), "entity", "e", 1); /* a read sets the entity's name */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    svc_record_render(back, &pk);
    msgpack_unpacked o;
    XWS_CHECK(svc_mp_unpack(&o, out.data, out.size) == 0);
    xws_buf_t j;
    xws_buf_init(&j);
    XWS_CHECK(xws_msgpack_to_json(&o.data, &j) == 0);
    if (j.len != strlen(want) || memcmp(j.data, want, j.len) != 0)
        fprintf(stderr, "context_test: rendered %.*s\n", (int)j.len, j.data);
    XWS_CHECK(j.len == strlen(want) && memcmp(j.data, want, j.len) == 0);
    xws_buf_dispose(&j);
    msgpack_unpacked_destroy(&o);
    msgpack_sbuffer_destroy(&out);
    svc_record_destroy(&rec);
    svc_record_destroy(&back);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

void context_test(void)
{
#define N(s) s, strlen(s)
    XWS_CHECK(context_name_ok(N("default")));
    XWS_CHECK(context_name_ok(N("from-extern")));
    XWS_CHECK(context_name_ok(N("A_b-9")));
    XWS_CHECK(context_name_ok(N("macro")));
    XWS_CHECK(context_name_ok(N("globalx")));
    XWS_CHECK(!context_name_ok(N("")));
    XWS_CHECK(!context_name_ok(N("a b")));
    XWS_CHECK(!context_name_ok(N("a.b")));
    XWS_CHECK(!context_name_ok(N("Macro-x")));
    XWS_CHECK(!context_name_ok(N("VOICEMENU-1")));
    XWS_CHECK(!context_name_ok(N("xivo-")));
    XWS_CHECK(!context_name_ok(N("Globals")));
    XWS_CHECK(!context_name_ok(N("ZoneMessages")));
    XWS_CHECK(context_name_ok(N("123456789012345678901234567890123456789")));
    XWS_CHECK(!context_name_ok(N("1234567890123456789012345678901234567890")));
#undef N
    s_render_case();

    /* adds */
    s_case("{\"context\":{\"name\":\"a\"}}", NULL, NULL, NULL);
    s_case("{\"context\":{\"name\":\"a\",\"displayname\":\"A\",\"entity\":\"Default\",\"contexttype\":\"Incall\","
           "\"description\":\"x\\ny\"},\"contextinclude\":[\"b\",\"c\",\"b\"],\"contextnumbers\":{\"user\":[{\"numberbeg\":"
           "\"100\",\"numberend\":\"199\"},{\"numberbeg\":100}],\"incall\":[{\"numberbeg\":\"\",\"didlength\":\"4\"}],"
           "\"group\":false,\"queue\":null}}",
           NULL, NULL, NULL);
    s_case("{}", NULL, "missing_field", "context");
    s_case("{\"context\":[]}", NULL, "invalid_value", "context");
    s_case("{\"context\":{}}", NULL, "missing_field", "context.name");
    s_case("{\"context\":{\"name\":\"\"}}", NULL, "too_short", "context.name");
    s_case("{\"context\":{\"name\":\"a b\"}}", NULL, "invalid_value", "context.name");
    s_case("{\"context\":{\"name\":\"xivo-a\"}}", NULL, "invalid_value", "context.name");
    s_case("{\"context\":{\"name\":\"GENERAL\"}}", NULL, "invalid_value", "context.name");
    s_case("{\"context\":{\"name\":\"1234567890123456789012345678901234567890\"}}", NULL, "too_long", "context.name");
    s_case("{\"context\":{\"name\":true}}", NULL, "invalid_value", "context.name");
    s_case("{\"context\":{\"name\":\"a\",\"displayname\":\"a\\u0001\"}}", NULL, "invalid_value", "context.displayname");
    s_case("{\"context\":{\"name\":\"a\",\"displayname\":\"a\\nb\"}}", NULL, "invalid_value", "context.displayname");
    s_case("{\"context\":{\"name\":\"a\",\"contexttype\":\"bogus\"}}", NULL, "invalid_value", "context.contexttype");
    s_case("{\"context\":{\"name\":\"a\",\"entity\":[1]}}", NULL, "invalid_value", "context.entity");
    s_case("{\"context\":{\"name\":\"a\"},\"contextinclude\":\"b\"}", NULL, "invalid_value", "contextinclude");
    s_case("{\"context\":{\"name\":\"a\"},\"contextinclude\":true}", NULL, "invalid_value", "contextinclude");
    s_case("{\"context\":{\"name\":\"a\"},\"contextinclude\":[\"b\",1]}", NULL, "invalid_value", "contextinclude[1]");
    s_case("{\"context\":{\"name\":\"a\"},\"contextinclude\":[\"b\",\"a\"]}", NULL, "invalid_value", "contextinclude[1]");
    s_case("{\"context\":{\"name\":\"a\"},\"contextinclude\":[\"b c\"]}", NULL, "unknown_reference", "contextinclude[0]");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":[]}", NULL, "invalid_value", "contextnumbers");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"users\":[]}}", NULL, "invalid_value", "contextnumbers.users");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":{}}}", NULL, "invalid_value", "contextnumbers.user");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[1]}}", NULL, "invalid_value", "contextnumbers.user[0]");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[{\"numberbeg\":\"1\"},{}]}}", NULL, "missing_field",
           "contextnumbers.user[1].numberbeg");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[{\"numberbeg\":\"\"}]}}", NULL, "invalid_value",
           "contextnumbers.user[0].numberbeg");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[{\"numberbeg\":\"1a\"}]}}", NULL, "invalid_value",
           "contextnumbers.user[0].numberbeg");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[{\"numberbeg\":\"12345678901234567\"}]}}", NULL, "too_long",
           "contextnumbers.user[0].numberbeg");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"meetme\":[{\"numberbeg\":\"100\",\"numberend\":\"1000\"}]}}", NULL,
           "invalid_value", "contextnumbers.meetme[0].numberend");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"queue\":[{\"numberbeg\":\"200\",\"numberend\":\"199\"}]}}", NULL,
           "invalid_value", "contextnumbers.queue[0].numberend");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"group\":[{\"numberbeg\":\"200\",\"numberend\":\"2x9\"}]}}", NULL,
           "invalid_value", "contextnumbers.group[0].numberend");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"incall\":[{\"numberbeg\":\"\",\"numberend\":\"12\"}]}}", NULL,
           "invalid_value", "contextnumbers.incall[0].numberbeg");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"incall\":[{\"numberbeg\":\"1\",\"didlength\":21}]}}", NULL,
           "out_of_range", "contextnumbers.incall[0].didlength");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"incall\":[{\"numberbeg\":\"1\",\"didlength\":0}]}}", NULL,
           "out_of_range", "contextnumbers.incall[0].didlength");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"incall\":[{\"numberbeg\":\"1\",\"didlength\":\"x\"}]}}", NULL,
           "invalid_value", "contextnumbers.incall[0].didlength");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"incall\":[{\"numberbeg\":\"1\",\"didlength\":2.5}]}}", NULL,
           "invalid_value", "contextnumbers.incall[0].didlength");
    s_case("{\"context\":{\"name\":\"a\"},\"contextnumbers\":{\"user\":[{\"numberbeg\":\"1\",\"didlength\":\"x\"}]}}", NULL, NULL,
           NULL);

    /* edits */
    s_case("{}", "a", NULL, NULL);
    s_case("{\"context\":{\"description\":\"d\"}}", "a", NULL, NULL);
    s_case("{\"context\":{\"name\":\"a\"}}", "a", NULL, NULL);
    s_case("{\"context\":{\"name\":\"b\"}}", "a", "invalid_value", "context.name");
    s_case("{\"contextinclude\":[\"a\"]}", "a", "invalid_value", "contextinclude[0]");
    s_case("{\"contextnumbers\":false,\"contextinclude\":false}", "a", NULL, NULL);
}
