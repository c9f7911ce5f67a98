/*
 * users.c - the handlers of the `users` resource (spec §5.3): list, search, view, add, edit,
 * delete, deleteall. Validation and rendering come from the tables of user_table.c (and, for the
 * lines a user creates, from the line declarations of the ipbx-lines service); every write is one
 * call of a function of lua/users.lua (the user, its lines, their numbers and attachments in one
 * atomic step).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lines.h"
#include "users.h"

#define USERS_NKEYS 42 /* KEYS of a write after the write id, before the number keys (lua/users.lua) */
#define LINES_PROVISIONING_BASE 100000
#define USERS_READ_KEYS 15 /* KEYS of ipbx_users_read (the same number as text below) */
#define USERS_READ_KEYS_TEXT "15"
#define USERS_READ_WIDTH 10 /* elements of one user in its reply */

static const char *const s_list_deps[] = {"users", NULL};
/* view shows group and queue names and the pickups naming the user */
static const char *const s_read_deps[] = {"users", "lines", "entity", "groups", "queues", "pickup", NULL};
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
    /* view only (empty otherwise): */
    const redisReply *da;      /* the dialaction record (msgpack map event -> action), "" when none */
    const redisReply *groups;  /* {group id, name, options (msgpack map), ...} */
    const redisReply *queues;  /* the same for queues */
    const redisReply *pickups; /* "pid,pid,..." the pickups naming the user, "" when none */
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
    static const char *const names[USERS_READ_KEYS] = {"user:data",   "line:byuser",    "line:data",    "line:device",
                                                       "entity:data", "user:voicemail", "user:extra",   "user:dialaction",
                                                       "user:groups", "group:data",     "group:name",   "user:queues",
                                                       "queue:data",  "queue:name",     "pickup:target"};
    const char *argv[3 + USERS_READ_KEYS + 1] = {"FCALL_RO", svc_fn(ctx, "ipbx_users_read"), USERS_READ_KEYS_TEXT};
    for (size_t i = 0; i < USERS_READ_KEYS; i++)
        argv[3 + i] = svc_key(ctx, names[i]);
    const char *ids = id > 0 ? svc_ctx_printf(ctx, "%lld", id) : "";
    argv[3 + USERS_READ_KEYS] = ids;
    redisReply *r = NULL;
    *out = NULL;
    if (etag) {
        int e = svc_etag_prefetch_or_reply(ctx, s_read_deps, 3 + USERS_READ_KEYS + 1, argv, &r);
        if (e != 0)
            return e;
    } else {
        r = svc_redis_fcall(ctx->redis, 1, "ipbx_users_read", USERS_READ_KEYS, argv + 3, 1, &ids, NULL);
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % USERS_READ_WIDTH != 0) {
        svc_reply_redis_failure(ctx, r, "reading users");
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        size_t col = i % USERS_READ_WIDTH;
        int arr = col == 2 || col == 7 || col == 8; /* lines, groups, queues: triples of strings */
        int ok = arr ? e->type == REDIS_REPLY_ARRAY && e->elements % 3 == 0 : e->type == REDIS_REPLY_STRING;
        for (size_t j = 0; ok && arr && j < e->elements; j++)
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
    const redisReply *const *e = (const redisReply *const *)&r->element[USERS_READ_WIDTH * i];
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
    u->da = e[6];
    u->groups = e[7];
    u->queues = e[8];
    u->pickups = e[9];
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
    size_t n = r->elements / USERS_READ_WIDTH, nsel = 0, tl = strlen(t);
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
    if ((*r)->elements < USERS_READ_WIDTH)
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

static const char *s_lstr(const svc_record_t *line, const char *part, const char *name)
{
    return svc_record_str(svc_record_obj((svc_record_t *)line, part), name, NULL);
}

static void s_kv(msgpack_packer *pk, const char *k, const char *v)
{
    svc_mp_cstr(pk, k);
    svc_mp_cstr(pk, v);
}

/* the value under key k of map m (NULL-safe) */
static const msgpack_object *s_get(const msgpack_object *m, const char *k)
{
    return m != NULL ? svc_mp_get(m, k) : NULL;
}

/* the dialaction object of view: event -> the original's dialaction row plus actiontype, in event order; false when none */
static void s_render_dialaction(const s_user_t *u, msgpack_packer *pk)
{
    msgpack_unpacked d;
    int ok = u->da->len > 0 && svc_mp_unpack(&d, u->da->str, u->da->len) == 0 && d.data.type == MSGPACK_OBJECT_MAP;
    size_t n = 0;
    for (size_t i = 0; ok && users_da_events[i] != NULL; i++)
        n += svc_mp_get(&d.data, users_da_events[i]) != NULL;
    if (n == 0) {
        msgpack_pack_false(pk);
    } else {
        static const char *const parts[] = {"actiontype", "action", "actionarg1", "actionarg2"};
        msgpack_pack_map(pk, n);
        for (size_t i = 0; users_da_events[i] != NULL; i++) {
            const msgpack_object *a = svc_mp_get(&d.data, users_da_events[i]);
            if (a == NULL)
                continue;
            svc_mp_cstr(pk, users_da_events[i]);
            msgpack_pack_map(pk, 8);
            s_kv(pk, "event", users_da_events[i]);
            s_kv(pk, "category", "user");
            svc_mp_cstr(pk, "categoryval");
            char uid[24];
            snprintf(uid, sizeof(uid), "%lld", u->id);
            svc_mp_cstr(pk, uid);
            for (size_t j = 0; j < 4; j++) {
                xws_slice_t v = svc_mp_slice(svc_mp_get(a, parts[j]));
                svc_mp_cstr(pk, parts[j]);
                svc_mp_strn(pk, v.ptr, v.len);
            }
            svc_mp_cstr(pk, "linked");
            msgpack_pack_true(pk);
        }
    }
    if (u->da->len > 0)
        msgpack_unpacked_destroy(&d);
}

/* an integer of a stored options map, 0 when absent */
static long long s_mp_int(const msgpack_object *o)
{
    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (long long)o->via.u64;
    if (o != NULL && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return 0;
}

/* groupmember / queuemember of view: the original's queuemember rows (category "group" or "queue"), false when none */
static void s_render_members(svc_ctx_t *ctx, const s_user_t *u, const redisReply *m, const char *category, msgpack_packer *pk)
{
    size_t n = m->elements / 3;
    if (n == 0) {
        msgpack_pack_false(pk);
        return;
    }
    /* the interface: of the user's first line (Local/<number>@<context> for chantype local) */
    const char *proto = "", *lname = "", *lnum = "", *lctx = "";
    if (u->nlines > 0) {
        svc_record_t *l = u->lines[0].rec;
        proto = s_lstr(l, "protocol", "protocol");
        lname = strcmp(proto, "custom") == 0 ? s_lstr(l, "protocol", "interface") : s_lstr(l, "protocol", "name");
        lnum = s_lstr(l, "linefeatures", "number");
        lctx = s_lstr(l, "protocol", "context");
    }
    const char *tech = strcmp(proto, "sip") == 0    ? "SIP"
                       : strcmp(proto, "iax") == 0  ? "IAX"
                       : strcmp(proto, "sccp") == 0 ? "SCCP"
                                                    : "";
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = m->element[3 * i], *name = m->element[3 * i + 1], *opts = m->element[3 * i + 2];
        msgpack_unpacked o;
        int ok = svc_mp_unpack(&o, opts->str, opts->len) == 0 && o.data.type == MSGPACK_OBJECT_MAP;
        const msgpack_object *map = ok ? &o.data : NULL;
        int local = map != NULL && svc_mp_str_eq(s_get(map, "chantype"), "local");
        const char *iface = "", *chan = "";
        if (local && u->nlines > 0)
            iface = svc_ctx_printf(ctx, "Local/%s@%s", lnum, lctx), chan = "Local";
        else if (u->nlines > 0 && tech[0] != '\0')
            iface = svc_ctx_printf(ctx, "%s/%s", tech, lname), chan = tech;
        else if (u->nlines > 0)
            iface = lname;
        msgpack_pack_map(pk, 12);
        svc_mp_cstr(pk, "queue_name");
        svc_mp_strn(pk, name->str, name->len);
        s_kv(pk, "interface", iface);
        svc_mp_cstr(pk, "penalty");
        msgpack_pack_int64(pk, s_mp_int(s_get(map, "penalty")));
        svc_mp_cstr(pk, "call-limit");
        msgpack_pack_int64(pk, s_mp_int(s_get(map, "call-limit")));
        svc_mp_cstr(pk, "paused");
        msgpack_pack_false(pk);
        svc_mp_cstr(pk, "commented");
        msgpack_pack_false(pk);
        s_kv(pk, "usertype", "user");
        svc_mp_cstr(pk, "userid");
        msgpack_pack_int64(pk, u->id);
        s_kv(pk, "channel", chan);
        s_kv(pk, "category", category);
        s_kv(pk, "chantype", local ? "local" : "default");
        svc_mp_cstr(pk, strcmp(category, "group") == 0 ? "groupfeaturesid" : "queuefeaturesid");
        msgpack_pack_int64(pk, s_parse_ll(id->str, id->len));
        msgpack_unpacked_destroy(&o);
    }
}

/* pickup of view: the ids of the pickups naming the user, false when none */
static void s_render_pickups(const s_user_t *u, msgpack_packer *pk)
{
    const char *p = u->pickups->str, *end = p + u->pickups->len;
    size_t n = 0;
    for (const char *q = p; q < end; q++)
        n += *q == ',';
    if (u->pickups->len == 0) {
        msgpack_pack_false(pk);
        return;
    }
    msgpack_pack_array(pk, n + 1);
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (c == NULL)
            c = end;
        msgpack_pack_int64(pk, s_parse_ll(p, (size_t)(c - p)));
        p = c + 1;
    }
}

static int s_cmp_fknum(const void *a, const void *b)
{
    long long x = svc_record_int(*(svc_record_t *const *)a, "fknum"), y = svc_record_int(*(svc_record_t *const *)b, "fknum");
    return x < y ? -1 : x > y;
}

/* phonefunckey (rows sorted by fknum) and queueskills of view, each false when empty */
static void s_render_extra(const s_user_t *u, msgpack_packer *pk)
{
    svc_record_t *extra = svc_record_new(&users_extra_table);
    if (u->extra->len == 0 || svc_record_load_stored(extra, u->extra->str, u->extra->len) != 0)
        svc_record_defaults(extra);
    static const char *const groups[] = {"phonefunckey", "queueskills"};
    for (size_t g = 0; g < 2; g++) {
        size_t n = svc_record_count(extra, groups[g]);
        svc_mp_cstr(pk, groups[g]);
        if (n == 0) {
            msgpack_pack_false(pk);
            continue;
        }
        svc_record_t **rows = svc_calloc(n, sizeof(*rows));
        for (size_t i = 0; i < n; i++)
            rows[i] = svc_record_at(extra, groups[g], i);
        if (g == 0)
            qsort(rows, n, sizeof(*rows), s_cmp_fknum);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            svc_record_render(rows[i], pk);
        free(rows);
    }
    svc_record_destroy(&extra);
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
        svc_mp_cstr(pk, "dialaction");
        s_render_dialaction(&u, pk);
        svc_mp_cstr(pk, "groupmember");
        s_render_members(ctx, &u, u.groups, "group", pk);
        svc_mp_cstr(pk, "queuemember");
        s_render_members(ctx, &u, u.queues, "queue", pk);
        s_render_extra(&u, pk); /* phonefunckey, queueskills */
        svc_mp_cstr(pk, "pickup");
        s_render_pickups(&u, pk);
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
        "user:seq", "user:data", "ver:users", "user:login", "entity:data", "entity:refs", "user:identity", "line:seq", "line:data",
        "ver:lines", "line:refs", "line:name", "context:data", "context:refs", "line:owner", "line:byuser", "line:device",
        "line:bydevice", "ver:devices", "user:voicemail", "voicemail:mailbox", "voicemail:seq", "user:extra",
        /* the cascade keys of lua/refs.lua, in its order */
        "pickup:rows", "pickup:target", "ver:pickup", "user:dialaction", "dialaction:target", "user:groups", "group:members",
        "ver:groups", "user:queues", "queue:members", "ver:queues", "ver:users", "user:extra", "funckey:target",
        /* the references of dialactions and memberships */
        "group:name", "queue:name", "group:data", "queue:data", "device:data"};
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

static int s_follow_callerid(svc_ctx_t *ctx, svc_record_t *line, const char *oldnames, const char *newnames, const char *oldnum,
                             const char *newnum);

/*
 * Packs the user's current lines: {id, record read, entries, context index, number} each, and
 * with names (the user's "First Last" after the write; NULL on delete) a sixth element: the
 * record with its callerid following the names (s_follow_callerid), or "" when it does not change.
 */
static void s_pack_old_lines(svc_ctx_t *ctx, const s_user_t *u, const char *names, s_ctxs_t *c, msgpack_packer *pk)
{
    const char *oldnames = u != NULL && names != NULL ? s_identity(ctx, u->uf) : NULL;
    msgpack_pack_array(pk, u ? u->nlines : 0);
    for (size_t i = 0; u && i < u->nlines; i++) {
        const s_line_t *l = &u->lines[i];
        msgpack_pack_array(pk, names != NULL ? 6 : 5);
        svc_mp_cstr(pk, svc_ctx_printf(ctx, "%lld", l->id));
        svc_mp_strn(pk, l->blob, l->bloblen);
        svc_index_pack_entries(ctx, &lines_records, l->rec, pk);
        msgpack_pack_uint64(pk, s_ctx_index(ctx, c, s_lstr(l->rec, "protocol", "context")));
        svc_mp_cstr(pk, s_lstr(l->rec, "linefeatures", "number"));
        if (names == NULL)
            continue;
        size_t bl = 0;
        const char *blob = "";
        if (strcmp(oldnames, names) != 0) {
            svc_record_t *line = svc_record_new(&lines_table);
            if (svc_record_load_stored(line, l->blob, l->bloblen) == 0 && s_follow_callerid(ctx, line, oldnames, names, NULL, NULL))
                blob = svc_record_blob(ctx, line, &bl);
            svc_record_destroy(&line);
        }
        svc_mp_strn(pk, blob, bl);
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

/* the callerid of a new sip or iax line of the user: "First Last" <number> (the names cut to fit the line's 160), pooled */
static const char *s_line_callerid(svc_ctx_t *ctx, const char *names, const char *number)
{
    size_t nl = strlen(names), numl = strlen(number), room = 160 - 6 - (numl < 40 ? numl : 40);
    if (nl > room) {
        nl = room;
        while (nl > 0 && ((unsigned char)names[nl] & 0xC0) == 0x80) /* not inside a UTF-8 sequence */
            nl--;
    }
    if (numl == 0)
        return svc_ctx_printf(ctx, "\"%.*s\"", (int)nl, names);
    return svc_ctx_printf(ctx, "\"%.*s\" <%s>", (int)nl, names, number);
}

/*
 * Makes the callerid of a sip or iax line of the user follow the user's names. A callerid that is
 * still the one the old names give (s_line_callerid: "Old Names" or "Old Names" <n>) becomes the
 * one of the new names, with the same <n> (newnum when n was oldnum: the line is renumbered; both
 * NULL: no renumbering). Any other callerid was set on purpose and is kept, so is an empty one.
 * Returns 1 when the record changed, else 0.
 */
static int s_follow_callerid(svc_ctx_t *ctx, svc_record_t *line, const char *oldnames, const char *newnames, const char *oldnum,
                             const char *newnum)
{
    svc_record_t *proto = svc_record_obj(line, "protocol");
    if (!svc_record_declares(proto, "callerid"))
        return 0;
    size_t len;
    const char *cid = svc_record_str(proto, "callerid", &len), *num = "";
    if (len == 0)
        return 0;
    for (size_t i = len - 1; cid[len - 1] == '>' && i-- > 0;)
        if (cid[i] == '<') {
            num = svc_ctx_strndup(ctx, cid + i + 1, len - i - 2);
            break;
        }
    if (strcmp(cid, s_line_callerid(ctx, oldnames, num)) != 0)
        return 0;
    if (oldnum != NULL && newnum != NULL && strcmp(num, oldnum) == 0)
        num = newnum;
    const char *now = s_line_callerid(ctx, newnames, num);
    if (strcmp(now, cid) == 0)
        return 0;
    svc_record_set_str(proto, "callerid", now, strlen(now));
    return 1;
}

/*
 * The line record of a row that creates a line, validated with the ipbx-lines declarations;
 * names: the user's "First Last" (the callerid of a sip or iax line). 0, or -1 with the reply set.
 */
static int s_new_line_or_reply(svc_ctx_t *ctx, const svc_record_t *row, const char *names, svc_record_t **out)
{
    size_t idx = svc_record_row_index(row);
    const char *proto = svc_record_str(row, "protocol", NULL), *name = svc_record_str(row, "name", NULL);
    const char *secret = svc_record_str(row, "secret", NULL);
    int has_cid = strcmp(proto, "sip") == 0 || strcmp(proto, "iax") == 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_map(&pk, 2);
    svc_mp_cstr(&pk, "protocol");
    msgpack_pack_map(&pk, 2 + (name[0] != '\0') + (secret[0] != '\0' && strcmp(proto, "custom") != 0) + has_cid);
    s_kv(&pk, "protocol", proto);
    if (has_cid)
        s_kv(&pk, "callerid", s_line_callerid(ctx, names, svc_record_str(row, "number", NULL)));
    s_kv(&pk, "context", svc_record_str(row, "context", NULL));
    if (name[0] != '\0')
        s_kv(&pk, strcmp(proto, "custom") == 0 ? "interface" : "name", name);
    if (secret[0] != '\0' && strcmp(proto, "custom") != 0)
        s_kv(&pk, "secret", secret);
    svc_mp_cstr(&pk, "linefeatures");
    msgpack_pack_map(&pk, 5 + (svc_record_int(row, "num") > 0));
    if (svc_record_int(row, "num") > 0) {
        svc_mp_cstr(&pk, "num");
        msgpack_pack_int64(&pk, svc_record_int(row, "num"));
    }
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

/*
 * Packs a row that attaches line id: {'attach', id, number given, row index}, and when the row
 * gives the line a new number (taken if free, spec §5.3): + {line read, line renumbered, its index
 * entries before and after, context index, number before}. The line is read here (a line that does
 * not exist is refused by the Redis function). 0, or -1 with the reply set.
 */
static int s_pack_attach_or_reply(svc_ctx_t *ctx, const svc_record_t *row, long long id, const s_user_t *owner, const char *names,
                                  s_ctxs_t *c, msgpack_packer *pk)
{
    size_t idx = svc_record_row_index(row), numlen;
    const char *num = svc_record_str(row, "number", &numlen);
    const char *sid = svc_ctx_printf(ctx, "%lld", id);
    redisReply *r = NULL;
    if (numlen > 0) {
        const char *argv[] = {"HGET", svc_key(ctx, "line:data"), sid};
        r = svc_redis_command(ctx->redis, 3, argv, NULL);
        if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            svc_reply_redis_failure(ctx, r, "reading a line");
            freeReplyObject(r);
            return -1;
        }
    }
    svc_record_t *old = NULL, *line = NULL;
    int rc = 0;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        old = svc_record_new(&lines_table);
        line = svc_record_new(&lines_table);
        if (svc_record_load_stored(old, r->str, r->len) != 0 || svc_record_load_stored(line, r->str, r->len) != 0)
            rc = svc_reply_internal(ctx, "line %lld: corrupt record", id);
        else if (strcmp(s_lstr(old, "linefeatures", "number"), num) == 0)
            svc_record_destroy(&line); /* the line's own number: nothing to take */
    }
    if (rc == 0 && line != NULL) {
        svc_record_set_str(svc_record_obj(line, "linefeatures"), "number", num, numlen);
        for (size_t i = 0; owner != NULL && i < owner->nlines; i++)
            if (owner->lines[i].id == id) /* the user's own line: its callerid follows the names and the number */
                s_follow_callerid(ctx, line, s_identity(ctx, owner->uf), names, s_lstr(old, "linefeatures", "number"), num);
        rc = lines_fix_or_reply(ctx, line);
        if (rc == 0)
            rc = svc_record_check_or_reply(ctx, line);
        if (rc != 0)
            s_row_error(ctx, idx);
    }
    if (rc == 0) {
        msgpack_pack_array(pk, line != NULL ? 12 : 6);
        svc_mp_cstr(pk, "attach");
        svc_mp_cstr(pk, sid);
        svc_mp_strn(pk, num, numlen);
        msgpack_pack_uint64(pk, idx);
        svc_mp_cstr(pk, svc_record_str(row, "device", NULL));
        msgpack_pack_int64(pk, svc_record_int(row, "num"));
        if (line != NULL) {
            size_t bl;
            const char *blob = svc_record_blob(ctx, line, &bl);
            svc_mp_strn(pk, r->str, r->len);
            svc_mp_strn(pk, blob, bl);
            svc_index_pack_entries(ctx, &lines_records, old, pk);
            svc_index_pack_entries(ctx, &lines_records, line, pk);
            msgpack_pack_uint64(pk, s_ctx_index(ctx, c, s_lstr(line, "protocol", "context")));
            svc_mp_cstr(pk, s_lstr(old, "linefeatures", "number"));
        }
    }
    svc_record_destroy(&old);
    svc_record_destroy(&line);
    freeReplyObject(r);
    return rc;
}

/*
 * Packs the rows of the new line set, validating the new lines; old: the user before the edit
 * (NULL on add: its renumbered lines follow the names, s_follow_callerid). 0, or -1 with the reply set.
 */
static int s_pack_rows_or_reply(svc_ctx_t *ctx, svc_record_t *body, const s_user_t *old, s_ctxs_t *c, msgpack_packer *pk)
{
    const char *names = s_identity(ctx, svc_record_obj(body, "userfeatures"));
    size_t n = svc_record_count(body, "linefeatures");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        svc_record_t *row = svc_record_at(body, "linefeatures", i);
        size_t idx = svc_record_row_index(row);
        long long id = svc_record_int(row, "id");
        if (id != 0) {
            if (s_pack_attach_or_reply(ctx, row, id, old, names, c, pk) != 0)
                return -1;
            continue;
        }
        svc_record_t *line;
        if (s_new_line_or_reply(ctx, row, names, &line) != 0)
            return -1;
        size_t bl;
        const char *blob = svc_record_blob(ctx, line, &bl);
        msgpack_pack_array(pk, 7);
        svc_mp_cstr(pk, "new");
        svc_mp_strn(pk, blob, bl);
        svc_index_pack_entries(ctx, &lines_records, line, pk);
        const char *lctx = s_lstr(line, "protocol", "context");
        msgpack_pack_uint64(pk, s_ctx_index(ctx, c, lctx));
        svc_mp_cstr(pk,
                    svc_ctx_strndup(ctx, s_lstr(line, "linefeatures", "number"), strlen(s_lstr(line, "linefeatures", "number"))));
        msgpack_pack_uint64(pk, idx);
        svc_mp_cstr(pk, svc_record_str(row, "device", NULL));
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
 * The dialaction argument of ipbx_users_put from the body: *mode "" (absent: untouched), "set"
 * (false: none) or "merge" (the events given replace the stored ones), and the msgpack array of
 * {event, actiontype, action, actionarg1, actionarg2} in sb. 0, or -1 with the reply set (an
 * unknown event is invalid_value "dialaction.<event>").
 */
static int s_dialaction_or_reply(svc_ctx_t *ctx, const msgpack_object *body, const char **mode, msgpack_sbuffer *sb)
{
    const msgpack_object *d = svc_mp_get(body, "dialaction");
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, svc_mp_write);
    *mode = "";
    if (d == NULL || d->type == MSGPACK_OBJECT_NIL || (d->type == MSGPACK_OBJECT_BOOLEAN && !d->via.boolean)) {
        if (d != NULL && d->type == MSGPACK_OBJECT_BOOLEAN)
            *mode = "set";
        msgpack_pack_array(&pk, 0);
        return 0;
    }
    if (d->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", "dialaction", "dialaction must be an object keyed by event");
    for (uint32_t i = 0; i < d->via.map.size; i++) {
        xws_slice_t key = svc_mp_slice(&d->via.map.ptr[i].key);
        int known = 0;
        for (size_t j = 0; users_da_events[j] != NULL && !known; j++)
            known = svc_mp_str_eq(&d->via.map.ptr[i].key, users_da_events[j]);
        if (!known)
            return svc_reply_error(ctx, 400, "invalid_value", svc_ctx_printf(ctx, "dialaction.%.*s", (int)key.len, key.ptr),
                                   "unknown event %.*s (noanswer, busy, congestion or chanunavail)", (int)key.len, key.ptr);
    }
    size_t n = 0;
    for (size_t j = 0; users_da_events[j] != NULL; j++) {
        const msgpack_object *a = svc_mp_get(d, users_da_events[j]);
        n += a != NULL && a->type != MSGPACK_OBJECT_NIL;
    }
    msgpack_pack_array(&pk, n);
    int rc = 0;
    for (size_t j = 0; users_da_events[j] != NULL && rc == 0; j++) {
        const char *ev = users_da_events[j];
        const msgpack_object *a = svc_mp_get(d, ev);
        if (a == NULL || a->type == MSGPACK_OBJECT_NIL)
            continue;
        if (a->type != MSGPACK_OBJECT_MAP)
            return svc_reply_error(ctx, 400, "invalid_value", svc_ctx_printf(ctx, "dialaction.%s", ev), "expected an object");
        svc_record_t *rec = svc_record_new(&users_da_table);
        svc_record_set_path(rec, svc_ctx_printf(ctx, "dialaction.%s.", ev));
        rc = svc_record_load_body_or_reply(ctx, rec, a);
        if (rc == 0) {
            svc_record_defaults(rec);
            rc = svc_record_check_or_reply(ctx, rec);
        }
        if (rc == 0) {
            msgpack_pack_array(&pk, 5);
            svc_mp_cstr(&pk, ev);
            svc_mp_cstr(&pk, svc_record_str(rec, "actiontype", NULL));
            svc_mp_cstr(&pk, svc_record_str(rec, "action", NULL));
            svc_mp_cstr(&pk, svc_record_str(rec, "actionarg1", NULL));
            svc_mp_cstr(&pk, svc_record_str(rec, "actionarg2", NULL));
        }
        svc_record_destroy(&rec);
    }
    *mode = "merge";
    return rc;
}

/*
 * The membership argument of ipbx_users_put for kind "group" or "queue": *mode "" (no
 * "<kind>-select": untouched) or "set" (the names selected are the whole set), and in sb the
 * msgpack array of {name, field, chantype, call-limit[, penalty]} with the options of
 * body["<kind>"][name] (table opt). sel: the body's selects (users_select_table). 0, or -1 with
 * the reply set.
 */
static int s_members_or_reply(svc_ctx_t *ctx, const msgpack_object *body, const svc_record_t *sel, const char *kind,
                              const svc_table_t *opt, const char **mode, msgpack_sbuffer *sb)
{
    const char *selkey = svc_ctx_printf(ctx, "%s-select", kind);
    const msgpack_object *so = svc_mp_get(body, selkey), *opts = svc_mp_get(body, kind);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, svc_mp_write);
    *mode = "";
    if (so == NULL || so->type == MSGPACK_OBJECT_NIL) {
        msgpack_pack_array(&pk, 0);
        return 0;
    }
    if (opts != NULL && opts->type != MSGPACK_OBJECT_NIL && opts->type != MSGPACK_OBJECT_MAP)
        return svc_reply_error(ctx, 400, "invalid_value", kind, "%s must be an object keyed by %s name", kind, kind);
    size_t n = svc_record_count(sel, selkey);
    msgpack_pack_array(&pk, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len;
        const char *name = svc_record_item_str(sel, selkey, i, &len);
        const msgpack_object *o = opts != NULL && opts->type == MSGPACK_OBJECT_MAP ? svc_mp_get(opts, name) : NULL;
        svc_record_t *rec = svc_record_new(opt);
        svc_record_set_path(rec, svc_ctx_printf(ctx, "%s.%s.", kind, name));
        if (o != NULL && o->type != MSGPACK_OBJECT_NIL && o->type != MSGPACK_OBJECT_MAP)
            rc = svc_reply_error(ctx, 400, "invalid_value", svc_ctx_printf(ctx, "%s.%s", kind, name), "expected an object");
        else if (o != NULL && o->type == MSGPACK_OBJECT_MAP)
            rc = svc_record_load_body_or_reply(ctx, rec, o);
        if (rc == 0) {
            svc_record_defaults(rec);
            rc = svc_record_check_or_reply(ctx, rec);
        }
        if (rc == 0) {
            int queue = svc_record_declares(rec, "penalty");
            msgpack_pack_array(&pk, queue ? 5 : 4);
            svc_mp_strn(&pk, name, len);
            svc_mp_cstr(&pk, svc_ctx_printf(ctx, "%s[%zu]", selkey, svc_record_item_index(sel, selkey, i)));
            svc_mp_cstr(&pk, svc_record_str(rec, "chantype", NULL));
            msgpack_pack_int64(&pk, svc_record_int(rec, "call-limit"));
            if (queue)
                msgpack_pack_int64(&pk, svc_record_int(rec, "penalty"));
        }
        svc_record_destroy(&rec);
    }
    *mode = "set";
    return rc;
}

/*
 * The references of the function keys of extra (users_extra_table) for ipbx_users_put: the msgpack
 * array of {kind, id, field} of each key naming a user, a group or a queue (users_fk_target).
 */
static void s_pack_fk_targets(svc_ctx_t *ctx, const svc_record_t *extra, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, svc_mp_write);
    size_t n = svc_record_count(extra, "phonefunckey"), m = 0;
    for (size_t i = 0; i < n; i++)
        m += users_fk_target(svc_record_str(svc_record_at(extra, "phonefunckey", i), "type", NULL)) != NULL;
    msgpack_pack_array(&pk, m);
    for (size_t i = 0; i < n; i++) {
        const svc_record_t *row = svc_record_at(extra, "phonefunckey", i);
        const char *kind = users_fk_target(svc_record_str(row, "type", NULL));
        if (kind == NULL)
            continue;
        msgpack_pack_array(&pk, 3);
        svc_mp_cstr(&pk, kind);
        svc_mp_cstr(&pk, svc_record_str(row, "typeval", NULL));
        svc_mp_cstr(&pk, svc_record_path(ctx, row, "typeval"));
    }
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
    /* "voicemail": false removes the user's voicemail */
    int vmdrop = vmo != NULL && vmo->type == MSGPACK_OBJECT_BOOLEAN && !vmo->via.boolean;
    if (vmdrop) {
        svc_record_set_int(uf, "voicemailid", 0);
        svc_record_set_int(uf, "enablevoicemail", 0);
    } else if (rc == 0 && vmo != NULL && vmo->type != MSGPACK_OBJECT_NIL) {
        rc = s_voicemail_or_reply(ctx, vmo, vmf, old, &vmblob, &vmlen);
    }
    /* dialactions and memberships */
    const char *damode = "", *grmode = "", *qumode = "";
    msgpack_sbuffer dasb, grsb, qusb;
    msgpack_sbuffer_init(&dasb);
    msgpack_sbuffer_init(&grsb);
    msgpack_sbuffer_init(&qusb);
    svc_record_t *sel = svc_record_new(&users_select_table);
    if (rc == 0)
        rc = s_dialaction_or_reply(ctx, body, &damode, &dasb);
    if (rc == 0)
        rc = svc_record_load_body_or_reply(ctx, sel, body);
    if (rc == 0)
        rc = s_members_or_reply(ctx, body, sel, "group", &users_group_opt_table, &grmode, &grsb);
    if (rc == 0)
        rc = s_members_or_reply(ctx, body, sel, "queue", &users_queue_opt_table, &qumode, &qusb);
    svc_record_destroy(&sel);
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
    msgpack_sbuffer fksb;
    msgpack_sbuffer_init(&fksb);
    if (rc == 0)
        s_pack_fk_targets(ctx, extra, &fksb);
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
        s_pack_old_lines(ctx, old, s_identity(ctx, uf), &c, &pk);
        msgpack_packer_init(&pk, &rowsb, svc_mp_write);
        if (setlines)
            rc = s_pack_rows_or_reply(ctx, rec, old, &c, &pk);
        else
            msgpack_pack_array(&pk, 0);
    }
    if (rc == 0) {
        size_t nkeys;
        const char **keys = s_write_keys(ctx, &c, &nkeys);
        const char *args[24];
        size_t lens[24];
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
        args[15] = vmdrop ? "1" : "";
        args[16] = damode;
        args[17] = dasb.data != NULL ? dasb.data : "", lens[17] = dasb.size;
        args[18] = grmode;
        args[19] = grsb.data != NULL ? grsb.data : "", lens[19] = grsb.size;
        args[20] = qumode;
        args[21] = qusb.data != NULL ? qusb.data : "", lens[21] = qusb.size;
        lens[15] = strlen(args[15]), lens[16] = strlen(args[16]), lens[18] = strlen(args[18]), lens[20] = strlen(args[20]);
        args[22] = fksb.data != NULL ? fksb.data : "", lens[22] = fksb.size;
        args[23] = old != NULL ? old->extra->str : "", lens[23] = old != NULL ? old->extra->len : 0;
        rc = svc_write_cas(ctx, conflict, "ipbx_users_put", (int)nkeys, keys, 24, args, lens);
        free(keys);
    }
    msgpack_sbuffer_destroy(&oldsb);
    msgpack_sbuffer_destroy(&rowsb);
    msgpack_sbuffer_destroy(&dasb);
    msgpack_sbuffer_destroy(&grsb);
    msgpack_sbuffer_destroy(&qusb);
    msgpack_sbuffer_destroy(&fksb);
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
    /* a conflict: a line the add renumbers changed since it was read */
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        int conflict = 0;
        int rc = s_put(ctx, body, NULL, &conflict);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "users add kept conflicting with other writers");
}

static int s_edit(svc_ctx_t *ctx)
{
    long long id;
    const msgpack_object *body;
    if (svc_param_id_or_reply(ctx, "id", &id) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
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
    size_t n = r->elements / USERS_READ_WIDTH;
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
            s_pack_old_lines(ctx, &u, NULL, &c, &pk);
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
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        redisReply *r = NULL;
        int rc = s_read_or_reply(ctx, id, 0, &r), conflict = 0;
        if (rc == 0 && r->elements < USERS_READ_WIDTH)
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
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
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
