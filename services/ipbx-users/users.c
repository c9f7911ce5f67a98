/*
 * users.c - the handlers of the `users` resource (spec §5.3): list, search, view, add, edit,
 * delete, deleteall. Validation and rendering come from the tables of user_table.c (and, for the
 * lines a user creates, from the line declarations of the ipbx-lines service); every write is one
 * call of a function of lua/users.lua (the user, its lines, their numbers and attachments in one
 * atomic step).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lines.h"
#include "users.h"

#define USERS_NKEYS 23 /* KEYS of a write after the write id, before the number keys (lua/users.lua) */
#define LINES_PROVISIONING_BASE 100000

static const char *const s_list_deps[] = {"users", NULL};
static const char *const s_read_deps[] = {"users", "lines", "entity", NULL};
static const svc_crud_t s_crud = {"users", &users_uf_table, "user:data", NULL};

/* one line of a user as read */
typedef struct {
    long long id;
    svc_record_t *rec; /* lines_table */
    const char *blob;
    size_t bloblen;
    const char *dev;
} s_line_t;

/* one user as read */
typedef struct {
    long long id;
    svc_record_t *uf;
    const char *blob;
    size_t bloblen;
    s_line_t *lines;
    size_t nlines;
    const redisReply *entity; /* the entity record (view only), "" when none */
    const redisReply *vm;     /* the voicemail record, "" when none */
    const redisReply *extra;  /* phonefunckey and queueskills, "" when none */
} s_user_t;

static void s_user_free(s_user_t *u)
{
    for (size_t i = 0; i < u->nlines; i++)
        svc_record_destroy(&u->lines[i].rec);
    free(u->lines);
    svc_record_destroy(&u->uf);
    memset(u, 0, sizeof(*u));
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

/* ---- reading --------------------------------------------------------------------------------------- */

/* reads user id (0: all) through ipbx_users_read (with etag: the ETag first, 304 → -1). 0 with *out, or -1 with the reply set */
static int s_read_or_reply(svc_ctx_t *ctx, long long id, int etag, redisReply **out)
{
    const char *keys[7] = {svc_key(ctx, "user:data"),   svc_key(ctx, "line:byuser"), svc_key(ctx, "line:data"),
                           svc_key(ctx, "line:device"), svc_key(ctx, "entity:data"), svc_key(ctx, "user:voicemail"),
                           svc_key(ctx, "user:extra")};
    const char *ids = id > 0 ? svc_ctx_printf(ctx, "%lld", id) : "";
    redisReply *r = NULL;
    *out = NULL;
    if (etag) {
        const char *argv[] = {"FCALL_RO", "ipbx_users_read", "7",     keys[0], keys[1], keys[2],
                              keys[3],    keys[4],           keys[5], keys[6], ids};
        int e = svc_etag_prefetch_or_reply(ctx, s_read_deps, 11, argv, &r);
        if (e != 0)
            return e;
    } else {
        r = svc_redis_fcall(ctx->redis, 1, "ipbx_users_read", 7, keys, 1, &ids, NULL);
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 6 != 0) {
        svc_reply_redis_failure(ctx, r, "reading users");
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        int ok = i % 6 == 2 ? e->type == REDIS_REPLY_ARRAY && e->elements % 3 == 0 : e->type == REDIS_REPLY_STRING;
        for (size_t j = 0; ok && i % 6 == 2 && j < e->elements; j++)
            ok = e->element[j]->type == REDIS_REPLY_STRING;
        if (!ok) {
            freeReplyObject(r);
            return svc_reply_internal(ctx, "reading users: unexpected reply");
        }
    }
    *out = r;
    return 0;
}

/* loads user i of a read reply. 0, or -1 with the reply set */
static int s_user_load_or_reply(svc_ctx_t *ctx, const redisReply *r, size_t i, s_user_t *u)
{
    const redisReply *const *e = (const redisReply *const *)&r->element[6 * i];
    memset(u, 0, sizeof(*u));
    u->id = s_parse_ll(e[0]->str, e[0]->len);
    u->uf = svc_record_new(&users_uf_table);
    if (u->id <= 0 || svc_record_load_stored(u->uf, e[1]->str, e[1]->len) != 0)
        return svc_reply_internal(ctx, "user %.*s: corrupt record", (int)e[0]->len, e[0]->str);
    svc_record_set_id(u->uf, u->id);
    u->blob = e[1]->str;
    u->bloblen = e[1]->len;
    u->entity = e[3];
    u->vm = e[4];
    u->extra = e[5];
    u->nlines = e[2]->elements / 3;
    u->lines = svc_calloc(u->nlines + 1, sizeof(*u->lines));
    for (size_t j = 0; j < u->nlines; j++) {
        const redisReply *const *l = (const redisReply *const *)&e[2]->element[3 * j];
        s_line_t *line = &u->lines[j];
        line->id = s_parse_ll(l[0]->str, l[0]->len);
        line->rec = svc_record_new(&lines_table);
        line->blob = l[1]->str;
        line->bloblen = l[1]->len;
        line->dev = l[2]->str;
        if (line->id <= 0 || svc_record_load_stored(line->rec, l[1]->str, l[1]->len) != 0)
            return svc_reply_internal(ctx, "line %.*s: corrupt record", (int)l[0]->len, l[0]->str);
    }
    return 0;
}

static int s_cmp_user(const void *a, const void *b)
{
    const s_user_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int s_list(svc_ctx_t *ctx)
{
    (void)s_list_deps;
    return svc_crud_list(ctx, &s_crud);
}

/* search: firstname, lastname, "firstname lastname", a line number (substrings), or userfield (equal), case-insensitive */
static int s_matches(const s_user_t *u, const char *t, size_t tl)
{
    size_t fl, ll, ul;
    const char *f = svc_record_str(u->uf, "firstname", &fl), *l = svc_record_str(u->uf, "lastname", &ll);
    const char *uf = svc_record_str(u->uf, "userfield", &ul);
    if (svc_icontains(f, fl, t, tl) || svc_icontains(l, ll, t, tl))
        return 1;
    char *full = svc_malloc(fl + ll + 2);
    memcpy(full, f, fl);
    full[fl] = ' ';
    memcpy(full + fl + 1, l, ll);
    int m = svc_icontains(full, fl + 1 + ll, t, tl);
    free(full);
    if (m)
        return 1;
    if (ul == tl && strncasecmp(uf, t, tl) == 0)
        return 1;
    for (size_t i = 0; i < u->nlines; i++) {
        size_t nl;
        const char *num = svc_record_str(svc_record_obj(u->lines[i].rec, "linefeatures"), "number", &nl);
        if (svc_icontains(num, nl, t, tl))
            return 1;
    }
    return 0;
}

static int s_search(svc_ctx_t *ctx)
{
    const char *t = svc_param(ctx, "search");
    if (t == NULL || t[0] == '\0')
        return svc_reply_empty(ctx, 204);
    redisReply *r;
    if (s_read_or_reply(ctx, 0, 1, &r) != 0)
        return -1;
    char etag[sizeof(ctx->etag)];
    memcpy(etag, ctx->etag, sizeof(etag));
    size_t n = r->elements / 6, nsel = 0, tl = strlen(t);
    s_user_t *users = svc_calloc(n + 1, sizeof(*users));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = s_user_load_or_reply(ctx, r, i, &users[nsel]);
        if (rc == 0 && s_matches(&users[nsel], t, tl))
            nsel++;
        else
            s_user_free(&users[nsel]);
    }
    if (rc == 0 && nsel == 0) {
        svc_reply_empty(ctx, 204);
    } else if (rc == 0) {
        qsort(users, nsel, sizeof(*users), s_cmp_user);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_array(pk, nsel);
        for (size_t i = 0; i < nsel; i++)
            svc_record_render(users[i].uf, pk);
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    for (size_t i = 0; i <= nsel && i < n; i++)
        s_user_free(&users[i]);
    free(users);
    freeReplyObject(r);
    return rc;
}

/* reads user id into u (404 when unknown). 0, or -1 with the reply set; *r freed by the caller */
static int s_read_one_or_reply(svc_ctx_t *ctx, long long id, int etag, redisReply **r, s_user_t *u)
{
    memset(u, 0, sizeof(*u));
    int rc = s_read_or_reply(ctx, id, etag, r);
    if (rc != 0)
        return rc;
    if ((*r)->elements < 6)
        return svc_reply_error(ctx, 404, "not_found", "id", "no user has id %lld", id);
    return s_user_load_or_reply(ctx, *r, 0, u);
}

/* "First Last" as the lines show it (useridentity), pooled */
static const char *s_identity(svc_ctx_t *ctx, const svc_record_t *uf)
{
    size_t fl, ll;
    const char *f = svc_record_str(uf, "firstname", &fl), *l = svc_record_str(uf, "lastname", &ll);
    return svc_ctx_printf(ctx, "%s%s%s", f, fl > 0 && ll > 0 ? " " : "", l);
}

/* the entity object: its stored fields, with id and identity */
static void s_render_entity(svc_ctx_t *ctx, const s_user_t *u, msgpack_packer *pk)
{
    msgpack_unpacked e;
    if (u->entity->len == 0 || svc_mp_unpack(&e, u->entity->str, u->entity->len) != 0) {
        msgpack_pack_false(pk);
        return;
    }
    if (e.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_pack_false(pk);
        msgpack_unpacked_destroy(&e);
        return;
    }
    xws_slice_t name = svc_mp_slice(svc_mp_get(&e.data, "name")), disp = svc_mp_slice(svc_mp_get(&e.data, "displayname"));
    msgpack_pack_map(pk, e.data.via.map.size + 2);
    msgpack_pack_str_with_body(pk, "id", 2);
    msgpack_pack_int64(pk, svc_record_int(u->uf, "entityid"));
    for (uint32_t i = 0; i < e.data.via.map.size; i++) {
        msgpack_pack_object(pk, e.data.via.map.ptr[i].key);
        msgpack_pack_object(pk, e.data.via.map.ptr[i].val);
    }
    msgpack_pack_str_with_body(pk, "identity", 8);
    svc_mp_cstr(pk, svc_ctx_printf(ctx, "%.*s (%.*s)", (int)disp.len, disp.ptr, (int)name.len, name.ptr));
    msgpack_unpacked_destroy(&e);
}

static int s_view(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    redisReply *r = NULL;
    s_user_t u;
    int rc = s_read_one_or_reply(ctx, id, 1, &r, &u);
    if (rc == 0) {
        char etag[sizeof(ctx->etag)];
        memcpy(etag, ctx->etag, sizeof(etag));
        const char *ident = s_identity(ctx, u.uf);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_map(pk, 10);
        svc_mp_cstr(pk, "userfeatures");
        svc_record_render(u.uf, pk);
        svc_mp_cstr(pk, "entity");
        s_render_entity(ctx, &u, pk);
        svc_mp_cstr(pk, "linefeatures");
        if (u.nlines == 0)
            msgpack_pack_false(pk);
        else
            msgpack_pack_array(pk, u.nlines);
        for (size_t i = 0; i < u.nlines; i++) {
            svc_record_t *lf = svc_record_obj(u.lines[i].rec, "linefeatures");
            long long lid = u.lines[i].id;
            svc_record_set_id(u.lines[i].rec, lid);
            svc_record_set_id(lf, lid);
            svc_record_set_int(lf, "protocolid", lid);
            svc_record_set_int(lf, "provisioningid", LINES_PROVISIONING_BASE + lid);
            svc_record_set_int(lf, "iduserfeatures", u.id);
            svc_record_set_str(lf, "useridentity", ident[0] ? ident : "-", ident[0] ? strlen(ident) : 1);
            svc_record_set_str(lf, "device", u.lines[i].dev, strlen(u.lines[i].dev));
            svc_record_render(lf, pk);
        }
        svc_mp_cstr(pk, "voicemail");
        svc_record_t *vm = svc_record_new(&users_vm_table);
        if (u.vm->len > 0 && svc_record_load_stored(vm, u.vm->str, u.vm->len) == 0)
            svc_record_render(vm, pk);
        else
            msgpack_pack_false(pk);
        svc_record_destroy(&vm);
        static const char *const empty[] = {"dialaction", "groupmember", "queuemember"};
        for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
            svc_mp_cstr(pk, empty[i]);
            msgpack_pack_false(pk);
        }
        svc_record_t *extra = svc_record_new(&users_extra_table);
        if (u.extra->len == 0 || svc_record_load_stored(extra, u.extra->str, u.extra->len) != 0)
            svc_record_defaults(extra);
        svc_record_render_fields(extra, pk); /* phonefunckey, queueskills */
        svc_record_destroy(&extra);
        svc_mp_cstr(pk, "pickup");
        msgpack_pack_false(pk);
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    s_user_free(&u);
    freeReplyObject(r);
    return rc < 0 ? -1 : 0;
}

/* ---- writing --------------------------------------------------------------------------------------- */

/* the contexts whose number keys a write passes (KEYS 21, 22 + 2i) */
typedef struct {
    const char **names; /* pooled strings */
    size_t n, cap;
} s_ctxs_t;

static size_t s_ctx_index(svc_ctx_t *ctx, s_ctxs_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->names = svc_realloc(c->names, c->cap * sizeof(*c->names));
    }
    c->names[c->n] = svc_ctx_strndup(ctx, name, strlen(name));
    return c->n++;
}

static const char **s_write_keys(svc_ctx_t *ctx, const s_ctxs_t *c, size_t *nkeys)
{
    *nkeys = USERS_NKEYS + 2 * c->n;
    const char **keys = svc_calloc(*nkeys + 1, sizeof(*keys));
    static const char *const names[USERS_NKEYS] = {
        "user:seq",      "user:data",      "ver:users",         "user:login",    "entity:data", "entity:refs",
        "user:identity", "line:seq",       "line:data",         "ver:lines",     "line:refs",   "line:name",
        "context:data",  "context:refs",   "line:owner",        "line:byuser",   "line:device", "line:bydevice",
        "ver:devices",   "user:voicemail", "voicemail:mailbox", "voicemail:seq", "user:extra"};
    for (size_t i = 0; i < USERS_NKEYS; i++)
        keys[i] = svc_key(ctx, names[i]);
    for (size_t i = 0; i < c->n; i++) {
        keys[USERS_NKEYS + 2 * i] = svc_number_key(ctx, c->names[i]);
        keys[USERS_NKEYS + 2 * i + 1] = svc_number_idx_key(ctx, c->names[i]);
    }
    return keys;
}

/* the kinds of the line indexes and their messages (msgpack array), pooled */
static const char *s_kinds(svc_ctx_t *ctx, const char **msgs, size_t *msgslen)
{
    const svc_records_t *d = &lines_records;
    char *k = svc_ctx_strndup(ctx, "", 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, d->nindexes);
    for (size_t i = 0; i < d->nindexes; i++) {
        k = svc_ctx_printf(ctx, "%s%c", k,
                           d->indexes[i].kind == SVC_IX_UNIQUE   ? 'u'
                           : d->indexes[i].kind == SVC_IX_LOOKUP ? 'l'
                                                                 : 'r');
        svc_mp_cstr(&pk, d->indexes[i].message);
    }
    *msgs = svc_ctx_strndup(ctx, sb.data, sb.size);
    *msgslen = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return k;
}

static const char *s_lstr(const svc_record_t *line, const char *part, const char *name)
{
    return svc_record_str(svc_record_obj((svc_record_t *)line, part), name, NULL);
}

/* packs the user's current lines: {id, record read, entries, context index, number} each */
static void s_pack_old_lines(svc_ctx_t *ctx, const s_user_t *u, s_ctxs_t *c, msgpack_packer *pk)
{
    msgpack_pack_array(pk, u ? u->nlines : 0);
    for (size_t i = 0; u && i < u->nlines; i++) {
        const s_line_t *l = &u->lines[i];
        msgpack_pack_array(pk, 5);
        svc_mp_cstr(pk, svc_ctx_printf(ctx, "%lld", l->id));
        svc_mp_strn(pk, l->blob, l->bloblen);
        svc_index_pack_entries(ctx, &lines_records, l->rec, pk);
        msgpack_pack_uint64(pk, s_ctx_index(ctx, c, s_lstr(l->rec, "protocol", "context")));
        svc_mp_cstr(pk, s_lstr(l->rec, "linefeatures", "number"));
    }
}

/* rewrites a 400 of the line declarations as one of row idx: linefeatures.<last part of the field>[idx] */
static int s_row_error(svc_ctx_t *ctx, size_t idx)
{
    msgpack_unpacked e;
    if (ctx->status != 400 || svc_mp_unpack(&e, ctx->body.data, ctx->body.size) != 0)
        return -1;
    xws_slice_t code = svc_mp_slice(svc_mp_get(&e.data, "error")), field = svc_mp_slice(svc_mp_get(&e.data, "field"));
    xws_slice_t msg = svc_mp_slice(svc_mp_get(&e.data, "message"));
    const char *c = svc_ctx_strndup(ctx, code.ptr, code.len), *m = svc_ctx_strndup(ctx, msg.ptr, msg.len);
    const char *f = svc_ctx_strndup(ctx, field.ptr, field.len), *dot = strrchr(f, '.');
    const char *name = dot != NULL ? dot + 1 : f;
    if (strcmp(name, "interface") == 0)
        name = "name";
    msgpack_unpacked_destroy(&e);
    return svc_reply_error(ctx, 400, c, svc_ctx_printf(ctx, "linefeatures.%s[%zu]", name, idx), "%s", m);
}

static void s_kv(msgpack_packer *pk, const char *k, const char *v)
{
    svc_mp_cstr(pk, k);
    svc_mp_cstr(pk, v);
}

/* the line record of a row that creates a line, validated with the ipbx-lines declarations. 0, or -1 with the reply set */
static int s_new_line_or_reply(svc_ctx_t *ctx, const svc_record_t *row, svc_record_t **out)
{
    size_t idx = svc_record_row_index(row);
    const char *proto = svc_record_str(row, "protocol", NULL), *name = svc_record_str(row, "name", NULL);
    const char *secret = svc_record_str(row, "secret", NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_map(&pk, 2);
    svc_mp_cstr(&pk, "protocol");
    msgpack_pack_map(&pk, 2 + (name[0] != '\0') + (secret[0] != '\0' && strcmp(proto, "custom") != 0));
    s_kv(&pk, "protocol", proto);
    s_kv(&pk, "context", svc_record_str(row, "context", NULL));
    if (name[0] != '\0')
        s_kv(&pk, strcmp(proto, "custom") == 0 ? "interface" : "name", name);
    if (secret[0] != '\0' && strcmp(proto, "custom") != 0)
        s_kv(&pk, "secret", secret);
    svc_mp_cstr(&pk, "linefeatures");
    msgpack_pack_map(&pk, 5);
    s_kv(&pk, "number", svc_record_str(row, "number", NULL));
    s_kv(&pk, "rules_type", svc_record_str(row, "rules_type", NULL));
    s_kv(&pk, "rules_time", svc_record_str(row, "rules_time", NULL));
    s_kv(&pk, "rules_group", svc_record_str(row, "rules_group", NULL));
    svc_mp_cstr(&pk, "rules_order");
    if (svc_record_has(row, "rules_order"))
        msgpack_pack_int64(&pk, svc_record_int(row, "rules_order"));
    else
        msgpack_pack_nil(&pk);
    msgpack_unpacked u;
    int rc = svc_mp_unpack(&u, sb.data, sb.size) == 0 ? 0 : svc_reply_internal(ctx, "users: packing a line");
    svc_record_t *rec = svc_record_new(&lines_table);
    if (rc == 0) {
        rc = svc_record_load_body_or_reply(ctx, rec, &u.data);
        if (rc == 0) {
            svc_record_defaults(rec);
            svc_record_set_int(svc_record_obj(rec, "linefeatures"), "internal", 0);
            rc = lines_fix_or_reply(ctx, rec);
        }
        if (rc == 0)
            rc = svc_record_check_or_reply(ctx, rec);
        if (rc != 0)
            s_row_error(ctx, idx);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0)
        svc_record_destroy(&rec);
    *out = rec;
    return rc;
}

/* packs the rows of the new line set (validating the new lines). 0, or -1 with the reply set */
static int s_pack_rows_or_reply(svc_ctx_t *ctx, svc_record_t *body, s_ctxs_t *c, msgpack_packer *pk)
{
    size_t n = svc_record_count(body, "linefeatures");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        svc_record_t *row = svc_record_at(body, "linefeatures", i);
        size_t idx = svc_record_row_index(row);
        long long id = svc_record_int(row, "id");
        if (id != 0) {
            msgpack_pack_array(pk, 4);
            svc_mp_cstr(pk, "attach");
            svc_mp_cstr(pk, svc_ctx_printf(ctx, "%lld", id));
            svc_mp_cstr(pk, svc_record_str(row, "number", NULL));
            msgpack_pack_uint64(pk, idx);
            continue;
        }
        svc_record_t *line;
        if (s_new_line_or_reply(ctx, row, &line) != 0)
            return -1;
        size_t bl;
        const char *blob = svc_record_blob(ctx, line, &bl);
        msgpack_pack_array(pk, 6);
        svc_mp_cstr(pk, "new");
        svc_mp_strn(pk, blob, bl);
        svc_index_pack_entries(ctx, &lines_records, line, pk);
        const char *lctx = s_lstr(line, "protocol", "context");
        msgpack_pack_uint64(pk, s_ctx_index(ctx, c, lctx));
        svc_mp_cstr(pk,
                    svc_ctx_strndup(ctx, s_lstr(line, "linefeatures", "number"), strlen(s_lstr(line, "linefeatures", "number"))));
        msgpack_pack_uint64(pk, idx);
        svc_record_destroy(&line);
    }
    return 0;
}

/* the lowest entity id (the default entity of a new user), "" when there is none. 0, or -1 with the reply set */
static int s_first_entity_or_reply(svc_ctx_t *ctx, long long *out)
{
    const char *argv[] = {"HKEYS", svc_key(ctx, "entity:data")};
    redisReply *r = svc_redis_command(ctx->redis, 2, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        svc_reply_redis_failure(ctx, r, "reading entities");
        freeReplyObject(r);
        return -1;
    }
    *out = 0;
    for (size_t i = 0; i < r->elements; i++) {
        long long v = r->element[i]->type == REDIS_REPLY_STRING ? s_parse_ll(r->element[i]->str, r->element[i]->len) : -1;
        if (v > 0 && (*out == 0 || v < *out))
            *out = v;
    }
    freeReplyObject(r);
    if (*out == 0)
        return svc_reply_error(ctx, 400, "unknown_reference", "userfeatures.entityid", "there is no entity");
    return 0;
}

static const char *s_login_folded(svc_ctx_t *ctx, const svc_record_t *uf)
{
    size_t len;
    const char *s = svc_record_str(uf, "loginclient", &len);
    char *f = svc_ctx_strndup(ctx, s, len);
    for (size_t i = 0; i < len; i++)
        if (f[i] >= 'A' && f[i] <= 'Z')
            f[i] = (char)(f[i] - 'A' + 'a');
    return f;
}

/* the voicemail of the body (merged with the stored one), validated, as a pooled blob. 0, or -1 with the reply set */
static int s_voicemail_or_reply(svc_ctx_t *ctx, const msgpack_object *vmo, const msgpack_object *vmf, const s_user_t *old,
                                const char **blob, size_t *len)
{
    if (vmo->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", "voicemail", "voicemail must be an object");
    if (vmf != NULL && vmf->type != MSGPACK_OBJECT_NIL && vmf->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", "vmfeatures", "vmfeatures must be an object");
    svc_record_t *vm = svc_record_new(&users_vm_table), *f = svc_record_new(&users_vmf_table);
    svc_record_set_path(vm, "voicemail.");
    svc_record_set_path(f, "vmfeatures.");
    int rc = 0;
    if (old != NULL && old->vm->len > 0 && svc_record_load_stored(vm, old->vm->str, old->vm->len) != 0)
        rc = svc_reply_internal(ctx, "user %lld: corrupt voicemail", old->id);
    if (rc == 0)
        rc = svc_record_load_body_or_reply(ctx, vm, vmo);
    if (rc == 0 && vmf != NULL && vmf->type == MSGPACK_OBJECT_MAP) {
        rc = svc_record_load_body_or_reply(ctx, f, vmf);
        if (rc == 0 && svc_record_has(f, "skipcheckpass"))
            svc_record_set_int(vm, "skipcheckpass", svc_record_int(f, "skipcheckpass"));
    }
    if (rc == 0) {
        svc_record_defaults(vm);
        rc = svc_record_check_or_reply(ctx, vm);
    }
    if (rc == 0)
        *blob = svc_record_blob(ctx, vm, len);
    svc_record_destroy(&vm);
    svc_record_destroy(&f);
    return rc;
}

/*
 * One add (old == NULL) or edit: body read on top of the stored user, validated, then
 * ipbx_users_put. 0 or -1 with the reply set, as svc_write_cas (*conflict: read again).
 */
static int s_put(svc_ctx_t *ctx, const msgpack_object *body, const s_user_t *old, int *conflict)
{
    svc_record_t *rec = svc_record_new(&users_body_table);
    svc_record_set_path(rec, "");
    svc_record_t *uf = svc_record_obj(rec, "userfeatures");
    svc_record_set_path(uf, "userfeatures.");
    int rc = 0;
    if (old != NULL && svc_record_load_stored(uf, old->blob, old->bloblen) != 0)
        rc = svc_reply_internal(ctx, "user %lld: corrupt record", old->id);
    if (rc == 0)
        rc = svc_record_load_body_or_reply(ctx, rec, body);
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = svc_record_check_or_reply(ctx, rec);
    }
    long long ent = svc_record_int(uf, "entityid");
    if (rc == 0 && ent == 0) {
        rc = s_first_entity_or_reply(ctx, &ent);
        if (rc == 0)
            svc_record_set_int(uf, "entityid", ent);
    }
    const char *vmblob = "";
    size_t vmlen = 0;
    const msgpack_object *vmo = svc_mp_get(body, "voicemail"), *vmf = svc_mp_get(body, "vmfeatures");
    if (rc == 0 && vmo != NULL && vmo->type != MSGPACK_OBJECT_NIL)
        rc = s_voicemail_or_reply(ctx, vmo, vmf, old, &vmblob, &vmlen);
    svc_record_t *extra = svc_record_new(&users_extra_table);
    if (rc == 0 && old != NULL && old->extra->len > 0 && svc_record_load_stored(extra, old->extra->str, old->extra->len) != 0)
        rc = svc_reply_internal(ctx, "user %lld: corrupt record", old->id);
    if (rc == 0)
        rc = svc_record_load_body_or_reply(ctx, extra, body);
    if (rc == 0) {
        svc_record_defaults(extra);
        rc = svc_record_check_or_reply(ctx, extra);
    }
    size_t extralen = 0;
    const char *extrablob = rc == 0 ? svc_record_blob(ctx, extra, &extralen) : "";
    svc_record_destroy(&extra);
    const msgpack_object *lfo = svc_mp_get(body, "linefeatures");
    int setlines = old == NULL || (lfo != NULL && lfo->type != MSGPACK_OBJECT_NIL);
    s_ctxs_t c = {NULL, 0, 0};
    msgpack_sbuffer oldsb, rowsb;
    msgpack_sbuffer_init(&oldsb);
    msgpack_sbuffer_init(&rowsb);
    msgpack_packer pk;
    if (rc == 0) {
        msgpack_packer_init(&pk, &oldsb, svc_mp_write);
        s_pack_old_lines(ctx, old, &c, &pk);
        msgpack_packer_init(&pk, &rowsb, svc_mp_write);
        if (setlines)
            rc = s_pack_rows_or_reply(ctx, rec, &c, &pk);
        else
            msgpack_pack_array(&pk, 0);
    }
    if (rc == 0) {
        size_t nkeys;
        const char **keys = s_write_keys(ctx, &c, &nkeys);
        const char *args[15];
        size_t lens[15];
        args[0] = old != NULL ? svc_ctx_printf(ctx, "%lld", old->id) : "";
        args[1] = old != NULL ? old->blob : "";
        lens[1] = old != NULL ? old->bloblen : 0;
        args[2] = svc_record_blob(ctx, uf, &lens[2]);
        args[3] = "";
        if (old != NULL)
            args[3] = s_login_folded(ctx, old->uf);
        args[4] = s_login_folded(ctx, uf);
        args[5] = old != NULL ? svc_ctx_printf(ctx, "%lld", svc_record_int(old->uf, "entityid")) : "";
        args[6] = svc_ctx_printf(ctx, "%lld", ent);
        args[7] = s_identity(ctx, uf);
        args[8] = setlines ? "set" : "";
        args[9] = oldsb.data != NULL ? oldsb.data : "";
        lens[9] = oldsb.size;
        args[10] = rowsb.data != NULL ? rowsb.data : "";
        lens[10] = rowsb.size;
        args[11] = s_kinds(ctx, &args[12], &lens[12]);
        for (int i = 0; i < 13; i++)
            if (i != 1 && i != 2 && i != 9 && i != 10 && i != 12)
                lens[i] = strlen(args[i]);
        args[13] = vmblob;
        lens[13] = vmlen;
        args[14] = extrablob;
        lens[14] = extralen;
        rc = svc_write_cas(ctx, conflict, "ipbx_users_put", (int)nkeys, keys, 15, args, lens);
        free(keys);
    }
    msgpack_sbuffer_destroy(&oldsb);
    msgpack_sbuffer_destroy(&rowsb);
    free(c.names);
    svc_record_destroy(&rec);
    return rc;
}

static int s_add(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    const msgpack_object *uf = svc_mp_get(body, "userfeatures");
    if (uf == NULL || uf->type == MSGPACK_OBJECT_NIL)
        return svc_reply_error(ctx, 400, "missing_field", "userfeatures", "userfeatures is required");
    int conflict = 0;
    int rc = s_put(ctx, body, NULL, &conflict);
    if (rc == 0 && conflict)
        rc = svc_reply_internal(ctx, "users add: unexpected conflict outcome");
    return rc;
}

static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    for (int attempt = 0; attempt < 10; attempt++) {
        redisReply *r = NULL;
        s_user_t u;
        int rc = -1, conflict = 0;
        if (s_read_one_or_reply(ctx, id, 0, &r, &u) == 0)
            rc = s_put(ctx, body, &u, &conflict);
        s_user_free(&u);
        freeReplyObject(r);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "user %lld: edit kept conflicting with other writers", id);
}

/* ipbx_users_del over the users of reply r (all: deleteall). 0 or -1 with the reply set, *conflict */
static int s_del(svc_ctx_t *ctx, const redisReply *r, int all, int *conflict)
{
    size_t n = r->elements / 6;
    s_ctxs_t c = {NULL, 0, 0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        s_user_t u;
        rc = s_user_load_or_reply(ctx, r, i, &u);
        if (rc == 0) {
            msgpack_pack_array(&pk, 5);
            svc_mp_cstr(&pk, svc_ctx_printf(ctx, "%lld", u.id));
            svc_mp_strn(&pk, u.blob, u.bloblen);
            svc_mp_cstr(&pk, s_login_folded(ctx, u.uf));
            svc_mp_cstr(&pk, svc_ctx_printf(ctx, "%lld", svc_record_int(u.uf, "entityid")));
            s_pack_old_lines(ctx, &u, &c, &pk);
        }
        s_user_free(&u);
    }
    if (rc == 0) {
        size_t nkeys;
        const char **keys = s_write_keys(ctx, &c, &nkeys);
        const char *args[3], *msgs;
        size_t lens[3], msgslen;
        args[0] = sb.data != NULL ? sb.data : "", lens[0] = sb.size;
        args[1] = s_kinds(ctx, &msgs, &msgslen), lens[1] = strlen(args[1]);
        args[2] = all ? "1" : "", lens[2] = strlen(args[2]);
        rc = svc_write_cas(ctx, conflict, "ipbx_users_del", (int)nkeys, keys, 3, args, lens);
        free(keys);
    }
    msgpack_sbuffer_destroy(&sb);
    free(c.names);
    return rc;
}

static int s_delete(svc_ctx_t *ctx)
{
    long long id;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0)
        return -1;
    for (int attempt = 0; attempt < 10; attempt++) {
        redisReply *r = NULL;
        int rc = s_read_or_reply(ctx, id, 0, &r), conflict = 0;
        if (rc == 0 && r->elements < 6)
            rc = svc_reply_error(ctx, 404, "not_found", "id", "no user has id %lld", id);
        if (rc == 0)
            rc = s_del(ctx, r, 0, &conflict);
        freeReplyObject(r);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "user %lld: delete kept conflicting with other writers", id);
}

static int s_deleteall(svc_ctx_t *ctx)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        redisReply *r = NULL;
        int rc = s_read_or_reply(ctx, 0, 0, &r), conflict = 0;
        if (rc == 0)
            rc = s_del(ctx, r, 1, &conflict);
        freeReplyObject(r);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "users: deleteall kept conflicting with other writers");
}

static const svc_act_t s_acts[] = {
    {"list", s_list}, {"search", s_search}, {"view", s_view},           {"add", s_add},
    {"edit", s_edit}, {"delete", s_delete}, {"deleteall", s_deleteall}, {NULL, NULL},
};

const svc_resource_t users_resource = {"users", "list", s_acts};
