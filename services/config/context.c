/* context.c - see context.h */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "context.h"
#include "svc_field.h"
#include "svc_log.h"
#include "svc_mp.h"
#include "svc_util.h"

#define CTX_NTYPES 5
#define CTX_INCALL 4          /* index of incall in ctx_types */
#define CTX_MAX_DIGITS 16     /* of a range bound */
#define CTX_MAX_RANGES 1000   /* per type */
#define CTX_MAX_INCLUDES 1000 /* included contexts */
#define CTX_DEFAULT_DIDLENGTH 4
#define CTX_REC_SIZE 11 /* elements of a stored record (lua/context.lua) */

static const char *const ctx_types[CTX_NTYPES] = {"user", "group", "queue", "meetme", "incall"};
static const char *const ctx_read_deps[] = {"context", "entity", NULL};

/* ---- names and the table of the `context` part ------------------------------------------------ */

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

static int s_check_type(const char *s, size_t len)
{
    static const char *const types[] = {"internal", "incall", "outcall", "services", "others"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == len && memcmp(types[i], s, len) == 0)
            return 0;
    return -1;
}

static const svc_field_t context_fields[] = {
    {.name = "name",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED,
     .min_len = 1,
     .max_len = 39,
     .charset = "A-Za-z0-9_-",
     .check = s_check_name,
     .check_what = "a name that is not reserved (general, global, globals, parkedcalls, authentication, zonemessages, "
                   "macro-*, voicemenu-*, xivo-*)"},
    {.name = "displayname", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 128},
    {.name = "entity", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_LOWER | SVC_F_TRIM},
    {.name = "contexttype",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_LOWER,
     .check = s_check_type,
     .check_what = "one of internal, incall, outcall, services, others"},
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
};
static const svc_table_t context_table = SVC_TABLE(context_fields);

/* ---- the patch: a validated request body ------------------------------------------------------ */

typedef struct {
    char beg[CTX_MAX_DIGITS + 1], end[CTX_MAX_DIGITS + 1];
    long long did; /* incall: didlength */
} ctx_range_t;

typedef struct {
    svc_record_t *rec; /* the `context` part */
    int incl_given;
    uint32_t nincl;
    xws_slice_t *incl;  /* without duplicates */
    uint32_t *incl_idx; /* index of each in the request */
    int nums_given[CTX_NTYPES];
    uint32_t nranges[CTX_NTYPES];
    ctx_range_t *ranges[CTX_NTYPES];
} ctx_patch_t;

static void s_patch_init(ctx_patch_t *p)
{
    memset(p, 0, sizeof(*p));
    p->rec = svc_record_new(&context_table);
    svc_record_set_path(p->rec, "context.");
}

static void s_patch_dispose(ctx_patch_t *p)
{
    svc_record_destroy(&p->rec);
    free(p->incl);
    free(p->incl_idx);
    for (int t = 0; t < CTX_NTYPES; t++)
        free(p->ranges[t]);
    memset(p, 0, sizeof(*p));
}

static int s_absent(const msgpack_object *o)
{
    return o == NULL || o->type == MSGPACK_OBJECT_NIL;
}

static int s_is_false(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean;
}

/* the `context` part. name: the context being edited, NULL for an add */
static int s_part_or_reply(svc_ctx_t *ctx, ctx_patch_t *p, const msgpack_object *body, const char *name)
{
    const msgpack_object *part = svc_mp_get(body, "context");
    if (name != NULL)
        svc_record_set_str(p->rec, "name", name, strlen(name));
    if (s_absent(part)) {
        if (name == NULL)
            return svc_reply_error(ctx, 400, "missing_field", "context", "the context object (name, displayname, ...) is required");
        return 0;
    }
    if (part->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", "context", "context must be an object");
    if (svc_record_load_body_or_reply(ctx, p->rec, part) != 0)
        return -1;
    if (name != NULL && strcmp(svc_record_str(p->rec, "name", NULL), name) != 0)
        return svc_reply_error(ctx, 400, "invalid_value", "context.name", "a context cannot be renamed (id is %s)", name);
    return svc_record_check_or_reply(ctx, p->rec);
}

static int s_includes_or_reply(svc_ctx_t *ctx, ctx_patch_t *p, const msgpack_object *body, const char *self)
{
    const msgpack_object *v = svc_mp_get(body, "contextinclude");
    if (s_absent(v))
        return 0;
    p->incl_given = 1;
    if (s_is_false(v))
        return 0;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return svc_reply_error(ctx, 400, "invalid_value", "contextinclude", "contextinclude must be an array of context names");
    uint32_t n = v->via.array.size;
    if (n > CTX_MAX_INCLUDES)
        return svc_reply_error(ctx, 400, "too_long", "contextinclude", "at most %d included contexts", CTX_MAX_INCLUDES);
    p->incl = svc_calloc(n + 1, sizeof(*p->incl));
    p->incl_idx = svc_calloc(n + 1, sizeof(*p->incl_idx));
    size_t selflen = strlen(self);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        const char *field = svc_ctx_printf(ctx, "contextinclude[%u]", i);
        if (e->type != MSGPACK_OBJECT_STR)
            return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be a context name", field);
        xws_slice_t s = {e->via.str.ptr, e->via.str.size};
        if (!context_name_ok(s.ptr, s.len))
            return svc_reply_error(ctx, 400, "unknown_reference", field, "%s names no context", field);
        if (s.len == selflen && memcmp(s.ptr, self, selflen) == 0)
            return svc_reply_error(ctx, 400, "invalid_value", field, "a context cannot include itself");
        int dup = 0;
        for (uint32_t k = 0; k < p->nincl && !dup; k++)
            dup = p->incl[k].len == s.len && memcmp(p->incl[k].ptr, s.ptr, s.len) == 0;
        if (!dup) {
            p->incl[p->nincl] = s;
            p->incl_idx[p->nincl] = i;
            p->nincl++;
        }
    }
    return 0;
}

/*
 * A range bound: a digit string or a non-negative integer, written into out as text.
 * 0 ok (out may be ""), -1 wrong type or a non-digit, -2 more than CTX_MAX_DIGITS digits.
 */
static int s_bound(const msgpack_object *o, char out[CTX_MAX_DIGITS + 1])
{
    char tmp[32];
    const char *p;
    size_t n;
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr, n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)o->via.u64);
        p = tmp, n = strlen(tmp);
    } else {
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    if (n > CTX_MAX_DIGITS)
        return -2;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* didlength: an integer 1-20 or a digit string; absent or "" is the default */
static int s_didlength_or_reply(svc_ctx_t *ctx, const msgpack_object *o, const char *field, long long *out)
{
    *out = CTX_DEFAULT_DIDLENGTH;
    if (s_absent(o))
        return 0;
    long long v = -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = o->via.u64 > 1000 ? 1000 : (long long)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = -1;
    } else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        double d = o->via.f64;
        if (!(d == (double)(long long)d) || d < -1e6 || d > 1e6)
            return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be an integer", field);
        v = (long long)d;
    } else if (o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size;
        if (n == 0)
            return 0;
        v = 0;
        for (size_t i = 0; i < n; i++) {
            char c = o->via.str.ptr[i];
            if (c < '0' || c > '9')
                return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be an integer", field);
            if (v < 1000)
                v = v * 10 + (c - '0');
        }
    } else {
        return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be an integer", field);
    }
    if (v < 1 || v > 20)
        return svc_reply_error(ctx, 400, "out_of_range", field, "%s must be between 1 and 20", field);
    *out = v;
    return 0;
}

static int s_range_or_reply(svc_ctx_t *ctx, int t, uint32_t i, const msgpack_object *o, ctx_range_t *r)
{
    const char *path = svc_ctx_printf(ctx, "contextnumbers.%s[%u]", ctx_types[t], i);
    if (o->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", path, "%s must be an object with numberbeg and numberend", path);
    const char *fbeg = svc_ctx_printf(ctx, "%s.numberbeg", path);
    const char *fend = svc_ctx_printf(ctx, "%s.numberend", path);
    const msgpack_object *beg = svc_mp_get(o, "numberbeg"), *end = svc_mp_get(o, "numberend");
    if (s_absent(beg))
        return svc_reply_error(ctx, 400, "missing_field", fbeg, "%s is required", fbeg);
    int rc = s_bound(beg, r->beg);
    if (rc == -2)
        return svc_reply_error(ctx, 400, "too_long", fbeg, "%s has more than %d digits", fbeg, CTX_MAX_DIGITS);
    if (rc != 0)
        return svc_reply_error(ctx, 400, "invalid_value", fbeg, "%s must be a string of digits", fbeg);
    r->end[0] = '\0';
    if (!s_absent(end) && s_bound(end, r->end) != 0)
        return svc_reply_error(ctx, 400, "invalid_value", fend, "%s must be empty or as many digits as numberbeg", fend);
    size_t lb = strlen(r->beg), le = strlen(r->end);
    if (lb == 0 && !(t == CTX_INCALL && le == 0))
        return svc_reply_error(ctx, 400, "invalid_value", fbeg, "%s must be 1 to %d digits", fbeg, CTX_MAX_DIGITS);
    if (le > 0 && le != lb)
        return svc_reply_error(ctx, 400, "invalid_value", fend, "%s must have as many digits as numberbeg", fend);
    if (le > 0 && strcmp(r->end, r->beg) < 0)
        return svc_reply_error(ctx, 400, "invalid_value", fend, "%s must not be lower than numberbeg", fend);
    r->did = 0;
    if (t == CTX_INCALL) {
        const char *fdid = svc_ctx_printf(ctx, "%s.didlength", path);
        if (s_didlength_or_reply(ctx, svc_mp_get(o, "didlength"), fdid, &r->did) != 0)
            return -1;
    }
    return 0;
}

static int s_numbers_or_reply(svc_ctx_t *ctx, ctx_patch_t *p, const msgpack_object *body)
{
    const msgpack_object *v = svc_mp_get(body, "contextnumbers");
    if (s_absent(v))
        return 0;
    if (s_is_false(v)) {
        for (int t = 0; t < CTX_NTYPES; t++)
            p->nums_given[t] = 1;
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", "contextnumbers",
                               "contextnumbers must be an object with keys among user, group, queue, meetme, incall");
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key;
        int known = 0;
        for (int t = 0; t < CTX_NTYPES && !known; t++)
            known = svc_mp_str_eq(k, ctx_types[t]);
        if (known)
            continue;
        const char *field = "contextnumbers";
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size <= 64 && svc_printable(k->via.str.ptr, k->via.str.size, 0))
            field = svc_ctx_printf(ctx, "contextnumbers.%.*s", (int)k->via.str.size, k->via.str.ptr);
        return svc_reply_error(ctx, 400, "invalid_value", field, "the types of numbers are user, group, queue, meetme and incall");
    }
    for (int t = 0; t < CTX_NTYPES; t++) {
        const msgpack_object *a = svc_mp_get(v, ctx_types[t]);
        if (s_absent(a))
            continue;
        p->nums_given[t] = 1;
        if (s_is_false(a))
            continue;
        const char *field = svc_ctx_printf(ctx, "contextnumbers.%s", ctx_types[t]);
        if (a->type != MSGPACK_OBJECT_ARRAY)
            return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be an array of ranges", field);
        uint32_t n = a->via.array.size;
        if (n > CTX_MAX_RANGES)
            return svc_reply_error(ctx, 400, "too_long", field, "%s holds more than %d ranges", field, CTX_MAX_RANGES);
        p->ranges[t] = svc_calloc(n + 1, sizeof(ctx_range_t));
        p->nranges[t] = n;
        for (uint32_t i = 0; i < n; i++)
            if (s_range_or_reply(ctx, t, i, &a->via.array.ptr[i], &p->ranges[t][i]) != 0)
                return -1;
    }
    return 0;
}

/*
 * Validates body into p. name: the context being edited (NULL for an add). 0, or -1 with the
 * 400 answer set.
 */
static int s_patch_or_reply(svc_ctx_t *ctx, ctx_patch_t *p, const msgpack_object *body, const char *name)
{
    if (s_part_or_reply(ctx, p, body, name) != 0)
        return -1;
    const char *self = svc_record_str(p->rec, "name", NULL);
    if (s_includes_or_reply(ctx, p, body, self) != 0)
        return -1;
    return s_numbers_or_reply(ctx, p, body);
}

static void s_pack_opt(msgpack_packer *pk, const svc_record_t *rec, const char *field, int empty_is_absent)
{
    size_t len;
    const char *s = svc_record_str(rec, field, &len);
    if (!svc_record_has(rec, field) || (empty_is_absent && len == 0))
        msgpack_pack_nil(pk);
    else
        svc_mp_strn(pk, s, len);
}

/* The patch array of lua/context.lua. add: 1 for an add (every part but the entity is given). */
static void s_patch_pack(const ctx_patch_t *p, int add, msgpack_packer *pk)
{
    size_t nlen;
    const char *name = svc_record_str(p->rec, "name", &nlen);
    msgpack_pack_array(pk, 12);
    svc_mp_strn(pk, name, nlen);
    /* displayname: "" or absent means "the name" */
    size_t dlen;
    const char *dn = svc_record_str(p->rec, "displayname", &dlen);
    if (svc_record_has(p->rec, "displayname") && dlen > 0)
        svc_mp_strn(pk, dn, dlen);
    else if (add || svc_record_has(p->rec, "displayname"))
        svc_mp_strn(pk, name, nlen);
    else
        msgpack_pack_nil(pk);
    s_pack_opt(pk, p->rec, "entity", 1);
    s_pack_opt(pk, p->rec, "contexttype", 1);
    s_pack_opt(pk, p->rec, "description", 0);
    if (p->incl_given) {
        msgpack_pack_array(pk, p->nincl);
        for (uint32_t i = 0; i < p->nincl; i++)
            svc_mp_strn(pk, p->incl[i].ptr, p->incl[i].len);
    } else {
        msgpack_pack_nil(pk);
    }
    for (int t = 0; t < CTX_NTYPES; t++) {
        if (!p->nums_given[t]) {
            msgpack_pack_nil(pk);
            continue;
        }
        msgpack_pack_array(pk, p->nranges[t]);
        for (uint32_t i = 0; i < p->nranges[t]; i++) {
            const ctx_range_t *r = &p->ranges[t][i];
            msgpack_pack_array(pk, t == CTX_INCALL ? 3 : 2);
            svc_mp_cstr(pk, r->beg);
            svc_mp_cstr(pk, r->end);
            if (t == CTX_INCALL)
                msgpack_pack_int64(pk, r->did);
        }
    }
    if (p->incl_given) {
        msgpack_pack_array(pk, p->nincl);
        for (uint32_t i = 0; i < p->nincl; i++)
            msgpack_pack_uint32(pk, p->incl_idx[i]);
    } else {
        msgpack_pack_nil(pk);
    }
}

/* ---- writes ------------------------------------------------------------------------------------ */

/* runs write function fn on context name with the patch (NULL for a delete) */
static int s_write(svc_ctx_t *ctx, const char *fn, const char *name, const msgpack_sbuffer *patch)
{
    const char *keys[] = {
        svc_key(ctx, "context:data"),     svc_key(ctx, "entity:name"),
        svc_key(ctx, "entity:data"),      svc_key(ctx, "entity:refs"),
        svc_key(ctx, "context:inclrefs"), svc_key(ctx, "context:refs"),
        svc_key(ctx, "ver:context"),      svc_ctx_printf(ctx, "%scontext:numbers:%s", ctx->prefix, name),
    };
    const char *args[] = {name, patch != NULL && patch->data != NULL ? patch->data : ""};
    size_t lens[] = {strlen(name), patch != NULL ? patch->size : 0};
    int st = svc_write(ctx, fn, 8, keys, patch != NULL ? 2 : 1, args, lens);
    if (st == 0)
        return svc_reply_internal(ctx, "%s: unexpected conflict outcome", fn);
    return st < 0 || st >= 400 ? -1 : 0;
}

static int s_add_or_edit(svc_ctx_t *ctx, const char *name)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    ctx_patch_t p;
    s_patch_init(&p);
    int rc = s_patch_or_reply(ctx, &p, body, name);
    if (rc == 0) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        s_patch_pack(&p, name == NULL, &pk);
        rc = s_write(ctx, name == NULL ? "config_context_add" : "config_context_edit", svc_record_str(p.rec, "name", NULL), &sb);
        msgpack_sbuffer_destroy(&sb);
    }
    s_patch_dispose(&p);
    return rc;
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
    return s_add_or_edit(ctx, NULL);
}

int context_edit(svc_ctx_t *ctx)
{
    const char *id = s_id_or_reply(ctx);
    if (id == NULL)
        return -1;
    /* an unknown id is a 404 whatever the body holds (the write function checks again, atomically) */
    const char *argv[] = {"HEXISTS", svc_key(ctx, "context:data"), id};
    redisReply *r = svc_redis_command(ctx->redis, 3, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        svc_reply_redis_failure(ctx, r, "looking the context up");
        freeReplyObject(r);
        return -1;
    }
    long long exists = r->integer;
    freeReplyObject(r);
    if (!exists)
        return svc_reply_error(ctx, 404, "not_found", "id", "no context has this name");
    return s_add_or_edit(ctx, id);
}

int context_delete(svc_ctx_t *ctx)
{
    const char *id = s_id_or_reply(ctx);
    if (id == NULL)
        return -1;
    return s_write(ctx, "config_context_delete", id, NULL);
}

/* ---- reads ------------------------------------------------------------------------------------- */

typedef struct {
    xws_slice_t name, displayname, ctype, description, entity;
    const msgpack_object *incl;
    const msgpack_object *ranges[CTX_NTYPES];
    msgpack_unpacked u;
} ctx_rec_t;

static int s_is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR;
}

/* parses a stored record and its entity's name (r->u must be destroyed by the caller whatever the
 * result); 0 or -1 */
static int s_rec_parse(const redisReply *rec, const redisReply *ename, ctx_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    if (svc_mp_unpack(&r->u, rec->str, rec->len) != 0)
        return -1;
    const msgpack_object *o = &r->u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < CTX_REC_SIZE)
        return -1;
    const msgpack_object *a = o->via.array.ptr;
    if (!s_is_str(&a[0]) || !s_is_str(&a[1]) || a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || !s_is_str(&a[3]) ||
        !s_is_str(&a[4]) || a[5].type != MSGPACK_OBJECT_ARRAY)
        return -1;
    r->name = svc_mp_slice(&a[0]);
    r->displayname = svc_mp_slice(&a[1]);
    r->entity = (xws_slice_t){ename->str, ename->len};
    r->ctype = svc_mp_slice(&a[3]);
    r->description = svc_mp_slice(&a[4]);
    r->incl = &a[5];
    for (uint32_t i = 0; i < r->incl->via.array.size; i++)
        if (!s_is_str(&r->incl->via.array.ptr[i]))
            return -1;
    for (int t = 0; t < CTX_NTYPES; t++) {
        const msgpack_object *rs = &a[6 + t];
        if (rs->type != MSGPACK_OBJECT_ARRAY)
            return -1;
        for (uint32_t i = 0; i < rs->via.array.size; i++) {
            const msgpack_object *e = &rs->via.array.ptr[i];
            uint32_t want = t == CTX_INCALL ? 3 : 2;
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < want || !s_is_str(&e->via.array.ptr[0]) ||
                !s_is_str(&e->via.array.ptr[1]) || (want == 3 && e->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER))
                return -1;
        }
        r->ranges[t] = rs;
    }
    return 0;
}

static void s_pack_part(msgpack_packer *pk, const ctx_rec_t *r)
{
    msgpack_pack_map(pk, 5);
    svc_mp_key(pk, "name");
    svc_mp_strn(pk, r->name.ptr, r->name.len);
    svc_mp_key(pk, "displayname");
    svc_mp_strn(pk, r->displayname.ptr, r->displayname.len);
    svc_mp_key(pk, "entity");
    svc_mp_strn(pk, r->entity.ptr, r->entity.len);
    svc_mp_key(pk, "contexttype");
    svc_mp_strn(pk, r->ctype.ptr, r->ctype.len);
    svc_mp_key(pk, "description");
    svc_mp_strn(pk, r->description.ptr, r->description.len);
}

static void s_pack_whole(msgpack_packer *pk, const ctx_rec_t *r)
{
    msgpack_pack_map(pk, 3);
    svc_mp_key(pk, "context");
    s_pack_part(pk, r);
    svc_mp_key(pk, "contextinclude");
    if (r->incl->via.array.size == 0) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_array(pk, r->incl->via.array.size);
        for (uint32_t i = 0; i < r->incl->via.array.size; i++) {
            xws_slice_t s = svc_mp_slice(&r->incl->via.array.ptr[i]);
            svc_mp_strn(pk, s.ptr, s.len);
        }
    }
    svc_mp_key(pk, "contextnumbers");
    int any = 0;
    for (int t = 0; t < CTX_NTYPES; t++)
        any |= r->ranges[t]->via.array.size > 0;
    if (!any) {
        msgpack_pack_false(pk);
        return;
    }
    msgpack_pack_map(pk, CTX_NTYPES);
    for (int t = 0; t < CTX_NTYPES; t++) {
        svc_mp_key(pk, ctx_types[t]);
        const msgpack_object *rs = r->ranges[t];
        if (rs->via.array.size == 0) {
            msgpack_pack_false(pk);
            continue;
        }
        msgpack_pack_array(pk, rs->via.array.size);
        for (uint32_t i = 0; i < rs->via.array.size; i++) {
            const msgpack_object *e = rs->via.array.ptr[i].via.array.ptr;
            msgpack_pack_map(pk, t == CTX_INCALL ? 3 : 2);
            svc_mp_key(pk, "numberbeg");
            xws_slice_t b = svc_mp_slice(&e[0]), n = svc_mp_slice(&e[1]);
            svc_mp_strn(pk, b.ptr, b.len);
            svc_mp_key(pk, "numberend");
            svc_mp_strn(pk, n.ptr, n.len);
            if (t == CTX_INCALL) {
                svc_mp_key(pk, "didlength");
                msgpack_pack_uint64(pk, e[2].via.u64);
            }
        }
    }
}

/*
 * FCALL_RO config_context_read: name NULL for every context. Returns the reply (an array of
 * record, entity name pairs), or NULL with the error answer set.
 */
static redisReply *s_read_or_reply(svc_ctx_t *ctx, const char *name)
{
    const char *keys[] = {svc_key(ctx, "context:data"), svc_key(ctx, "entity:data")};
    const char *args[] = {name != NULL ? name : ""};
    redisReply *r = svc_redis_fcall(ctx->redis, 1, "config_context_read", 2, keys, 1, args, NULL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        svc_reply_redis_failure(ctx, r, "reading contexts");
        freeReplyObject(r);
        return NULL;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            svc_reply_internal(ctx, "reading contexts: unexpected reply");
            freeReplyObject(r);
            return NULL;
        }
    }
    return r;
}

static int s_cmp_rec(const void *a, const void *b)
{
    const ctx_rec_t *x = *(const ctx_rec_t *const *)a, *y = *(const ctx_rec_t *const *)b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    if (c != 0)
        return c;
    return x->name.len < y->name.len ? -1 : x->name.len > y->name.len;
}

/* list and search: needle NULL for every context */
static int s_list(svc_ctx_t *ctx, const char *needle)
{
    int e = svc_etag_or_reply(ctx, ctx_read_deps);
    if (e != 0)
        return e < 0 ? -1 : 0;
    redisReply *r = s_read_or_reply(ctx, NULL);
    if (r == NULL)
        return -1;
    size_t n = r->elements / 2;
    ctx_rec_t *recs = svc_calloc(n + 1, sizeof(*recs));
    ctx_rec_t **sel = svc_calloc(n + 1, sizeof(*sel));
    size_t nsel = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        ctx_rec_t *c = &recs[i];
        if (s_rec_parse(r->element[2 * i], r->element[2 * i + 1], c) != 0) {
            rc = svc_reply_internal(ctx, "a stored context record is malformed");
            n = i + 1;
            break;
        }
        if (needle == NULL || svc_icontains(c->name.ptr, c->name.len, needle, strlen(needle)) ||
            svc_icontains(c->displayname.ptr, c->displayname.len, needle, strlen(needle)))
            sel[nsel++] = c;
    }
    if (rc == 0 && nsel == 0) {
        svc_reply_empty(ctx, 204);
    } else if (rc == 0) {
        qsort(sel, nsel, sizeof(*sel), s_cmp_rec);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_array(pk, nsel);
        for (size_t i = 0; i < nsel; i++)
            s_pack_part(pk, sel[i]);
    }
    for (size_t i = 0; i < n; i++)
        msgpack_unpacked_destroy(&recs[i].u);
    free(recs);
    free(sel);
    freeReplyObject(r);
    return rc;
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
    if (id == NULL)
        return -1;
    int e = svc_etag_or_reply(ctx, ctx_read_deps);
    if (e != 0)
        return e < 0 ? -1 : 0;
    redisReply *r = s_read_or_reply(ctx, id);
    if (r == NULL)
        return -1;
    int rc;
    if (r->elements < 2) {
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no context is named %s", id);
    } else {
        ctx_rec_t c;
        if (s_rec_parse(r->element[0], r->element[1], &c) != 0) {
            rc = svc_reply_internal(ctx, "the stored record of context %s is malformed", id);
        } else {
            s_pack_whole(svc_reply_begin(ctx, 200), &c);
            rc = 0;
        }
        msgpack_unpacked_destroy(&c.u);
    }
    freeReplyObject(r);
    return rc;
}

static const svc_act_t context_acts[] = {
    {"list", context_list}, {"search", context_search}, {"view", context_view}, {"add", context_add},
    {"edit", context_edit}, {"delete", context_delete}, {NULL, NULL},
};
const svc_resource_t cfg_context_resource = {"context", "list", context_acts};

/* ---- self-test ------------------------------------------------------------------------------- */

/* validates json as an add (name NULL) or edit body; checks the error code/field (want NULL: ok) */
static void s_case(const char *json, const char *name, const char *want_code, const char *want_field)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    SVC_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    SVC_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0 && u.data.type == MSGPACK_OBJECT_MAP);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    ctx_patch_t p;
    s_patch_init(&p);
    int rc = s_patch_or_reply(&ctx, &p, &u.data, name);
    if (want_code == NULL) {
        if (rc != 0)
            fprintf(stderr, "context_test: unexpected rejection of %s: %.*s\n", json, (int)ctx.body.size, ctx.body.data);
        SVC_CHECK(rc == 0);
        /* the patch packs into a 12-element array */
        msgpack_sbuffer pb;
        msgpack_sbuffer_init(&pb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &pb, msgpack_sbuffer_write);
        s_patch_pack(&p, name == NULL, &pk);
        msgpack_unpacked pu;
        SVC_CHECK(svc_mp_unpack(&pu, pb.data, pb.size) == 0);
        SVC_CHECK(pu.data.type == MSGPACK_OBJECT_ARRAY && pu.data.via.array.size == 12);
        msgpack_unpacked_destroy(&pu);
        msgpack_sbuffer_destroy(&pb);
    } else {
        SVC_CHECK(rc == -1 && ctx.status == 400);
        msgpack_unpacked e;
        SVC_CHECK(svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0);
        int ok = svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) && svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field);
        if (!ok)
            fprintf(stderr, "context_test: %s: expected %s/%s, got %.*s\n", json, want_code, want_field, (int)ctx.body.size,
                    ctx.body.data);
        SVC_CHECK(ok);
        msgpack_unpacked_destroy(&e);
    }
    s_patch_dispose(&p);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

void context_test(void)
{
#define N(s) s, strlen(s)
    SVC_CHECK(context_name_ok(N("default")));
    SVC_CHECK(context_name_ok(N("from-extern")));
    SVC_CHECK(context_name_ok(N("A_b-9")));
    SVC_CHECK(context_name_ok(N("macro")));
    SVC_CHECK(context_name_ok(N("globalx")));
    SVC_CHECK(!context_name_ok(N("")));
    SVC_CHECK(!context_name_ok(N("a b")));
    SVC_CHECK(!context_name_ok(N("a.b")));
    SVC_CHECK(!context_name_ok(N("Macro-x")));
    SVC_CHECK(!context_name_ok(N("VOICEMENU-1")));
    SVC_CHECK(!context_name_ok(N("xivo-")));
    SVC_CHECK(!context_name_ok(N("Globals")));
    SVC_CHECK(!context_name_ok(N("ZoneMessages")));
    SVC_CHECK(context_name_ok(N("123456789012345678901234567890123456789")));
    SVC_CHECK(!context_name_ok(N("1234567890123456789012345678901234567890")));
#undef N

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
