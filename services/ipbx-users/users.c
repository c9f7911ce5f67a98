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
#define USERS_NDEPS 6 /* resources of s_read_deps */

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

/* one group or queue membership of a user as read */
typedef struct {
    long long id;
    const char *name;           /* the group's (queue's) name, "" when it has no record; pooled */
    const msgpack_object *opts; /* the membership's options (a map), or NULL */
} s_member_t;

/* one user as read */
typedef struct {
    long long id;
    svc_record_t *uf;
    const char *blob;
    size_t bloblen;
    s_line_t *lines;
    size_t nlines;
    /* stored records, the empty string when none (never NULL): */
    const redisReply *vm;    /* the voicemail record */
    const redisReply *extra; /* phonefunckey and queueskills */
    /* view only (empty otherwise): */
    const redisReply *entity;    /* the entity record */
    const redisReply *da;        /* the dialaction record (msgpack map event -> action) */
    const redisReply *pickups;   /* "pid,pid,..." the pickups naming the user */
    s_member_t *groups, *queues; /* by id */
    size_t ngroups, nqueues;
    msgpack_unpacked _gm, _qm; /* the membership maps the members' options point into */
} s_user_t;

static redisReply s_none = {.type = REDIS_REPLY_STRING, .str = "", .len = 0};

/* the users of one read and the Redis replies they point into (s_read_dispose) */
typedef struct {
    redisReply *_tx[2]; /* EXEC replies */
    s_user_t *users;
    size_t n;
} s_read_t;

static void s_user_free(s_user_t *u)
{
    for (size_t i = 0; i < u->nlines; i++)
        svc_record_destroy(&u->lines[i].rec);
    free(u->lines);
    free(u->groups);
    free(u->queues);
    msgpack_unpacked_destroy(&u->_gm);
    msgpack_unpacked_destroy(&u->_qm);
    svc_record_destroy(&u->uf);
    memset(u, 0, sizeof(*u));
}

static void s_read_dispose(s_read_t *rd)
{
    for (size_t i = 0; i < rd->n; i++)
        s_user_free(&rd->users[i]);
    free(rd->users);
    freeReplyObject(rd->_tx[0]);
    freeReplyObject(rd->_tx[1]);
    memset(rd, 0, sizeof(*rd));
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

/*
 * The read path. No Redis function copies records: the worker reads the hashes itself inside
 * MULTI/EXEC and joins them here.
 *
 * - Every user (search, deleteall): one transaction, HGETALL of user:data, line:byuser and
 *   line:data (one state; with an ETag, the versions come first in the same round trip).
 * - One user (view, edit, delete): its hash fields are known only once the user is read (its
 *   lines, entity, groups, queues), so two transactions: (1) the version counters of
 *   s_read_deps and the user's own fields (record, line ids, voicemail, extra, dialactions,
 *   memberships, pickups); (2) the version counters again and what (1) names (HMGET of the lines
 *   and their devices, the entity, the groups and queues). Every write to any of these keys bumps
 *   one of those counters in the same atomic call, so equal counters in (1) and (2) mean that no
 *   write came between them: the two reads are one snapshot. Otherwise both are read again
 *   (SVC_CAS_ATTEMPTS times at most). WATCH would do the same but holds per-connection state,
 *   which the worker's one pipelined connection shared by every request cannot give.
 */

/* loads the user record blob of user uid into u (the reply strings must outlive u). 0, or -1 with the reply set */
static int s_user_init_or_reply(svc_ctx_t *ctx, s_user_t *u, const redisReply *uid, const redisReply *blob)
{
    memset(u, 0, sizeof(*u));
    u->vm = u->extra = u->entity = u->da = u->pickups = &s_none;
    u->id = s_parse_ll(uid->str, uid->len);
    u->uf = svc_record_new(&users_uf_table);
    if (u->id <= 0 || svc_record_load_stored(u->uf, blob->str, blob->len) != 0)
        return svc_reply_internal(ctx, "user %.*s: corrupt record", (int)uid->len, uid->str);
    svc_record_set_id(u->uf, u->id);
    u->blob = blob->str;
    u->bloblen = blob->len;
    return 0;
}

/* the number of ids of a "id,id,..." list */
static size_t s_count_ids(const redisReply *list)
{
    size_t n = 0;
    for (size_t i = 0; i < list->len; i++)
        n += list->str[i] != ',' && (i == 0 || list->str[i - 1] == ',');
    return n;
}

/* the ids of a "id,id,..." list, pooled (n: s_count_ids) */
static void s_split_ids(svc_ctx_t *ctx, const redisReply *list, const char **ids)
{
    size_t n = 0;
    for (const char *p = list->str, *end = p + list->len; p < end;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (c == NULL)
            c = end;
        if (c > p)
            ids[n++] = svc_ctx_strndup(ctx, p, (size_t)(c - p));
        p = c + 1;
    }
}

/* the parts of a line that a search (its numbers) or a view reads; edits and deletes read all */
static const char *const s_lf_only[] = {"linefeatures", NULL}, *const s_lf_proto[] = {"linefeatures", "protocol", NULL};

/* adds line id (blob, device: NULL for none) to u; only: the parts of the line to load (NULL: the
 * whole record). 0, or -1 with the reply set */
static int s_add_line_or_reply(svc_ctx_t *ctx, s_user_t *u, const char *id, const redisReply *blob, const redisReply *dev,
                               const char *const *only)
{
    s_line_t *line = &u->lines[u->nlines++];
    line->id = s_parse_ll(id, strlen(id));
    line->rec = svc_record_new(&lines_table);
    line->blob = blob->str;
    line->bloblen = blob->len;
    line->dev = dev != NULL && dev->type == REDIS_REPLY_STRING ? dev->str : "";
    int rc = only != NULL ? svc_record_load_stored_only(line->rec, blob->str, blob->len, only)
                          : svc_record_load_stored(line->rec, blob->str, blob->len);
    if (line->id <= 0 || rc != 0)
        return svc_reply_internal(ctx, "line %s: corrupt record", id);
    return 0;
}

static int s_string_or_nil(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL;
}

/* 1 when reply r of a transaction is an array of n strings or nils */
static int s_strings(const redisReply *r, size_t n)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!s_string_or_nil(r->element[i]))
            return 0;
    return 1;
}

/* a string reply, or the empty string for nil */
static const redisReply *s_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? r : &s_none;
}

/* every user (search, deleteall), with its lines (records; only: the parts loaded, NULL for all), in
 * one transaction. 0 with rd, or -1 with the reply set */
static int s_read_all_or_reply(svc_ctx_t *ctx, int etag, const char *const *only, s_read_t *rd)
{
    const char *c0[] = {"HGETALL", svc_key(ctx, "user:data")}, *c1[] = {"HGETALL", svc_key(ctx, "line:byuser")},
               *c2[] = {"HGETALL", svc_key(ctx, "line:data")};
    const int argcs[3] = {2, 2, 2};
    const char *const *argvs[3] = {c0, c1, c2};
    redisReply *r = NULL;
    if (etag && svc_etag_prefetch_tx_or_reply(ctx, s_read_deps, 3, argcs, argvs, &r) != 0)
        return -1;
    if (!etag)
        r = svc_redis_tx(ctx->redis, 3, argcs, argvs);
    rd->_tx[0] = r;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return svc_reply_redis_failure(ctx, r, "reading users");
    svc_hash_t data, byuser, lines;
    int rc = 0;
    if (svc_hash_init(&data, r->element[0]) != 0 || svc_hash_init(&byuser, r->element[1]) != 0 ||
        svc_hash_init(&lines, r->element[2]) != 0)
        rc = svc_reply_internal(ctx, "reading users: unexpected reply");
    svc_hash_dispose(&data); /* only its check: the users come in the reply's order */
    const redisReply *all = r->element[0];
    size_t n = rc == 0 ? all->elements / 2 : 0;
    rd->users = svc_calloc(n + 1, sizeof(*rd->users));
    for (size_t i = 0; i < n && rc == 0; i++) {
        s_user_t *u = &rd->users[rd->n++];
        const redisReply *uid = all->element[2 * i];
        rc = s_user_init_or_reply(ctx, u, uid, all->element[2 * i + 1]);
        const redisReply *list = svc_hash_get(&byuser, uid->str, uid->len);
        size_t nids = list != NULL ? s_count_ids(list) : 0;
        const char **ids = svc_calloc(nids + 1, sizeof(*ids));
        if (nids > 0)
            s_split_ids(ctx, list, ids);
        u->lines = svc_calloc(nids + 1, sizeof(*u->lines));
        for (size_t j = 0; j < nids && rc == 0; j++) {
            const redisReply *blob = svc_hash_get(&lines, ids[j], strlen(ids[j]));
            if (blob != NULL) /* a line gone from line:data is not the user's any more */
                rc = s_add_line_or_reply(ctx, u, ids[j], blob, NULL, only);
        }
        free(ids);
    }
    svc_hash_dispose(&byuser);
    svc_hash_dispose(&lines);
    return rc;
}

/* 1 when two MGET replies of the version counters are equal */
static int s_same_versions(const redisReply *a, const redisReply *b)
{
    if (a->type != REDIS_REPLY_ARRAY || b->type != REDIS_REPLY_ARRAY || a->elements != b->elements)
        return 0;
    for (size_t i = 0; i < a->elements; i++) {
        const redisReply *x = a->element[i], *y = b->element[i];
        if (x->type != y->type || (x->type == REDIS_REPLY_STRING && (x->len != y->len || memcmp(x->str, y->str, x->len) != 0)))
            return 0;
    }
    return 1;
}

/* argv: MGET of the version counters of s_read_deps (pooled strings) */
static void s_versions_argv(svc_ctx_t *ctx, const char *argv[1 + USERS_NDEPS])
{
    argv[0] = "MGET";
    for (size_t i = 0; i < USERS_NDEPS; i++)
        argv[1 + i] = svc_key2(ctx, "ver:", s_read_deps[i]);
}

static int s_cmp_member(const void *a, const void *b)
{
    const s_member_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* the memberships of a user:groups (user:queues) record, unpacked into m, by id; a malformed record has none. Returns the count */
static size_t s_members_parse(const redisReply *blob, msgpack_unpacked *m, s_member_t **out)
{
    *out = NULL;
    if (svc_mp_unpack(m, blob->str, blob->len) != 0 || m->data.type != MSGPACK_OBJECT_MAP || m->data.via.map.size == 0)
        return 0;
    const msgpack_object_map *map = &m->data.via.map;
    s_member_t *v = svc_calloc(map->size + 1, sizeof(*v));
    size_t n = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key, *o = &map->ptr[i].val;
        long long id = -1;
        if (k->type == MSGPACK_OBJECT_STR)
            id = s_parse_ll(k->via.str.ptr, k->via.str.size);
        else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER && k->via.u64 < (1ULL << 53))
            id = (long long)k->via.u64;
        if (id <= 0)
            continue;
        v[n].id = id;
        v[n].name = "";
        v[n++].opts = o->type == MSGPACK_OBJECT_MAP ? o : NULL;
    }
    qsort(v, n, sizeof(*v), s_cmp_member);
    *out = v;
    return n;
}

/* HMGET key of the ids of the members (pooled); argc 2 + n */
static const char **s_members_hmget(svc_ctx_t *ctx, const char *key, const s_member_t *m, size_t n)
{
    const char **argv = svc_calloc(n + 3, sizeof(*argv));
    argv[0] = "HMGET";
    argv[1] = svc_key(ctx, key);
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = svc_ctx_ll(ctx, m[i].id);
    return argv;
}

/* the members' names from the HMGET reply of their records (pooled; "" for a member without record) */
static void s_members_names(svc_ctx_t *ctx, s_member_t *m, size_t n, const redisReply *recs)
{
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = recs->element[i];
        msgpack_unpacked u;
        if (r->type == REDIS_REPLY_STRING && svc_mp_unpack(&u, r->str, r->len) == 0 && u.data.type == MSGPACK_OBJECT_MAP) {
            xws_slice_t name = svc_mp_slice(svc_mp_get(&u.data, "name"));
            m[i].name = svc_ctx_strndup(ctx, name.ptr, name.len);
        }
        if (r->type == REDIS_REPLY_STRING)
            msgpack_unpacked_destroy(&u);
    }
}

/*
 * Reads user id (see "The read path" above) into rd: rd->n is 0 when there is no such user. With
 * etag, computes the ETag first (a matching If-None-Match: -1 with the 304 set); view: also the
 * entity, dialactions, memberships and pickups. 0 with rd (disposed by the caller), or -1 with
 * the reply set.
 */
static int s_read_one_or_reply(svc_ctx_t *ctx, long long id, int etag, int view, s_read_t *rd)
{
    const char *ids = svc_ctx_ll(ctx, id), *pick = svc_ctx_cat(ctx, "user:", ids);
    const char *vers[1 + USERS_NDEPS];
    s_versions_argv(ctx, vers);
    const char *c1[] = {"HGET", svc_key(ctx, "user:data"), ids}, *c2[] = {"HGET", svc_key(ctx, "line:byuser"), ids},
               *c3[] = {"HGET", svc_key(ctx, "user:voicemail"), ids}, *c4[] = {"HGET", svc_key(ctx, "user:extra"), ids},
               *c5[] = {"HGET", svc_key(ctx, "user:dialaction"), ids}, *c6[] = {"HGET", svc_key(ctx, "user:groups"), ids},
               *c7[] = {"HGET", svc_key(ctx, "user:queues"), ids}, *c8[] = {"HGET", svc_key(ctx, "pickup:target"), pick};
    const int argcs1[9] = {1 + USERS_NDEPS, 3, 3, 3, 3, 3, 3, 3, 3};
    const char *const *argvs1[9] = {vers, c1, c2, c3, c4, c5, c6, c7, c8};
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        s_read_dispose(rd);
        rd->users = svc_calloc(1, sizeof(*rd->users));
        /* (1) the versions and the user's own fields */
        redisReply *r = NULL;
        if (etag && attempt == 0 && svc_etag_prefetch_tx_or_reply(ctx, s_read_deps, 9, argcs1, argvs1, &r) != 0)
            return -1;
        if (!etag || attempt > 0)
            r = svc_redis_tx(ctx->redis, 9, argcs1, argvs1);
        rd->_tx[0] = r;
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 9)
            return svc_reply_redis_failure(ctx, r, "reading a user");
        if (!s_strings(r->element[0], USERS_NDEPS))
            return svc_reply_internal(ctx, "reading a user: unexpected reply");
        for (size_t i = 1; i < 9; i++)
            if (!s_string_or_nil(r->element[i]))
                return svc_reply_internal(ctx, "reading a user: unexpected reply");
        if (r->element[1]->type == REDIS_REPLY_NIL)
            return 0; /* no such user */
        s_user_t *u = &rd->users[rd->n++];
        redisReply uid = {.type = REDIS_REPLY_STRING, .str = (char *)ids, .len = strlen(ids)};
        if (s_user_init_or_reply(ctx, u, &uid, r->element[1]) != 0)
            return -1;
        u->vm = s_str(r->element[3]);
        u->extra = s_str(r->element[4]);
        const redisReply *list = s_str(r->element[2]);
        size_t nlines = s_count_ids(list);
        const char **lids = svc_calloc(nlines + 3, sizeof(*lids));
        s_split_ids(ctx, list, lids + 2);
        if (view) {
            u->da = s_str(r->element[5]);
            u->pickups = s_str(r->element[8]);
            u->ngroups = s_members_parse(s_str(r->element[6]), &u->_gm, &u->groups);
            u->nqueues = s_members_parse(s_str(r->element[7]), &u->_qm, &u->queues);
        }
        u->lines = svc_calloc(nlines + 1, sizeof(*u->lines));
        if (nlines == 0 && !view) {
            free(lids);
            return 0; /* (1) was all there is to read */
        }
        /* (2) the versions again and what (1) names */
        const char *c20[] = {"HGET", svc_key(ctx, "entity:data"), svc_ctx_ll(ctx, svc_record_int(u->uf, "entityid"))};
        const char **ldev = svc_calloc(nlines + 3, sizeof(*ldev));
        lids[0] = "HMGET", lids[1] = svc_key(ctx, "line:data");
        ldev[0] = "HMGET", ldev[1] = svc_key(ctx, "line:device");
        memcpy(ldev + 2, lids + 2, nlines * sizeof(*ldev));
        const char **gids = s_members_hmget(ctx, "group:data", u->groups, u->ngroups);
        const char **qids = s_members_hmget(ctx, "queue:data", u->queues, u->nqueues);
        int argcs2[6], n2 = 0, il = -1, ie = -1, ig = -1, iq = -1;
        const char *const *argvs2[6];
        argcs2[n2] = 1 + USERS_NDEPS, argvs2[n2++] = vers;
        if (nlines > 0) {
            il = n2;
            argcs2[n2] = 2 + (int)nlines, argvs2[n2++] = lids;
            argcs2[n2] = 2 + (int)nlines, argvs2[n2++] = ldev;
        }
        if (view)
            ie = n2, argcs2[n2] = 3, argvs2[n2++] = c20;
        if (u->ngroups > 0)
            ig = n2, argcs2[n2] = 2 + (int)u->ngroups, argvs2[n2++] = gids;
        if (u->nqueues > 0)
            iq = n2, argcs2[n2] = 2 + (int)u->nqueues, argvs2[n2++] = qids;
        redisReply *r2 = svc_redis_tx(ctx->redis, n2, argcs2, argvs2);
        rd->_tx[1] = r2;
        free(ldev);
        free(gids);
        free(qids);
        int ok = r2 != NULL && r2->type == REDIS_REPLY_ARRAY && r2->elements == (size_t)n2;
        if (!ok) {
            free(lids);
            return svc_reply_redis_failure(ctx, r2, "reading a user");
        }
        ok = s_strings(r2->element[0], USERS_NDEPS) &&
             (il < 0 || (s_strings(r2->element[il], nlines) && s_strings(r2->element[il + 1], nlines)));
        ok = ok && (ie < 0 || s_string_or_nil(r2->element[ie])) && (ig < 0 || s_strings(r2->element[ig], u->ngroups)) &&
             (iq < 0 || s_strings(r2->element[iq], u->nqueues));
        if (!ok) {
            free(lids);
            return svc_reply_internal(ctx, "reading a user: unexpected reply");
        }
        if (!s_same_versions(r->element[0], r2->element[0])) {
            free(lids);
            continue; /* a write came between (1) and (2) */
        }
        /* a view shows the lines' linefeatures, and the protocol part of the first line only in the
         * group and queue memberships (their interface): the rest of a line is not loaded */
        int rc = 0;
        for (size_t j = 0; j < nlines && rc == 0; j++) {
            const redisReply *blob = r2->element[il]->element[j];
            const char *const *only = !view ? NULL : u->nlines == 0 && u->ngroups + u->nqueues > 0 ? s_lf_proto : s_lf_only;
            if (blob->type == REDIS_REPLY_STRING) /* a line gone from line:data is not the user's any more */
                rc = s_add_line_or_reply(ctx, u, lids[2 + j], blob, r2->element[il + 1]->element[j], only);
        }
        free(lids);
        if (ie >= 0)
            u->entity = s_str(r2->element[ie]);
        if (ig >= 0)
            s_members_names(ctx, u->groups, u->ngroups, r2->element[ig]);
        if (iq >= 0)
            s_members_names(ctx, u->queues, u->nqueues, r2->element[iq]);
        return rc;
    }
    svc_log(SVC_LOG_WARN, "user %lld: the data kept changing while being read (%d attempts)", id, SVC_CAS_ATTEMPTS);
    return svc_reply_unavailable(ctx);
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
    s_read_t rd = {0};
    int rc = s_read_all_or_reply(ctx, 1, s_lf_only, &rd); /* the lines' numbers only */
    if (rc == 0) {
        char etag[sizeof(ctx->etag)];
        memcpy(etag, ctx->etag, sizeof(etag));
        size_t tl = strlen(t), nsel = 0;
        const s_user_t **sel = svc_calloc(rd.n + 1, sizeof(*sel));
        qsort(rd.users, rd.n, sizeof(*rd.users), s_cmp_user);
        for (size_t i = 0; i < rd.n; i++)
            if (s_matches(&rd.users[i], t, tl))
                sel[nsel++] = &rd.users[i];
        if (nsel == 0) {
            svc_reply_empty(ctx, 204);
        } else {
            msgpack_packer *pk = svc_reply_begin(ctx, 200);
            msgpack_pack_array(pk, nsel);
            for (size_t i = 0; i < nsel; i++)
                svc_record_render(sel[i]->uf, pk);
            memcpy(ctx->etag, etag, sizeof(etag));
        }
        free(sel);
    }
    s_read_dispose(&rd);
    return rc;
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
static void s_render_members(svc_ctx_t *ctx, const s_user_t *u, const s_member_t *m, size_t n, const char *category,
                             msgpack_packer *pk)
{
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
        const msgpack_object *map = m[i].opts;
        int local = map != NULL && svc_mp_str_eq(s_get(map, "chantype"), "local");
        const char *iface = "", *chan = "";
        if (local && u->nlines > 0)
            iface = svc_ctx_printf(ctx, "Local/%s@%s", lnum, lctx), chan = "Local";
        else if (u->nlines > 0 && tech[0] != '\0')
            iface = svc_ctx_printf(ctx, "%s/%s", tech, lname), chan = tech;
        else if (u->nlines > 0)
            iface = lname;
        msgpack_pack_map(pk, 12);
        s_kv(pk, "queue_name", m[i].name);
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
        msgpack_pack_int64(pk, m[i].id);
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
    s_read_t rd = {0};
    int rc = s_read_one_or_reply(ctx, id, 1, 1, &rd);
    if (rc == 0 && rd.n == 0)
        rc = svc_reply_error(ctx, 404, "not_found", "id", "no user has id %lld", id);
    if (rc == 0) {
        s_user_t *u = &rd.users[0];
        char etag[sizeof(ctx->etag)];
        memcpy(etag, ctx->etag, sizeof(etag));
        const char *ident = s_identity(ctx, u->uf);
        msgpack_packer *pk = svc_reply_begin(ctx, 200);
        msgpack_pack_map(pk, 10);
        svc_mp_cstr(pk, "userfeatures");
        svc_record_render(u->uf, pk);
        svc_mp_cstr(pk, "entity");
        s_render_entity(ctx, u, pk);
        svc_mp_cstr(pk, "linefeatures");
        if (u->nlines == 0)
            msgpack_pack_false(pk);
        else
            msgpack_pack_array(pk, u->nlines);
        for (size_t i = 0; i < u->nlines; i++) {
            svc_record_t *lf = svc_record_obj(u->lines[i].rec, "linefeatures");
            long long lid = u->lines[i].id;
            svc_record_set_id(u->lines[i].rec, lid);
            svc_record_set_id(lf, lid);
            svc_record_set_int(lf, "protocolid", lid);
            svc_record_set_int(lf, "provisioningid", LINES_PROVISIONING_BASE + lid);
            svc_record_set_int(lf, "iduserfeatures", u->id);
            svc_record_set_str(lf, "useridentity", ident[0] ? ident : "-", ident[0] ? strlen(ident) : 1);
            svc_record_set_str(lf, "device", u->lines[i].dev, strlen(u->lines[i].dev));
            svc_record_render(lf, pk);
        }
        svc_mp_cstr(pk, "voicemail");
        svc_record_t *vm = svc_record_new(&users_vm_table);
        if (u->vm->len > 0 && svc_record_load_stored(vm, u->vm->str, u->vm->len) == 0)
            svc_record_render(vm, pk);
        else
            msgpack_pack_false(pk);
        svc_record_destroy(&vm);
        svc_mp_cstr(pk, "dialaction");
        s_render_dialaction(u, pk);
        svc_mp_cstr(pk, "groupmember");
        s_render_members(ctx, u, u->groups, u->ngroups, "group", pk);
        svc_mp_cstr(pk, "queuemember");
        s_render_members(ctx, u, u->queues, u->nqueues, "queue", pk);
        s_render_extra(u, pk); /* phonefunckey, queueskills */
        svc_mp_cstr(pk, "pickup");
        s_render_pickups(u, pk);
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    s_read_dispose(&rd);
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
        svc_mp_cstr(pk, svc_ctx_ll(ctx, l->id));
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
    const char *sid = svc_ctx_ll(ctx, id);
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
        args[0] = old != NULL ? svc_ctx_ll(ctx, old->id) : "";
        args[1] = old != NULL ? old->blob : "";
        lens[1] = old != NULL ? old->bloblen : 0;
        args[2] = svc_record_blob(ctx, uf, &lens[2]);
        args[3] = "";
        if (old != NULL)
            args[3] = s_login_folded(ctx, old->uf);
        args[4] = s_login_folded(ctx, uf);
        args[5] = old != NULL ? svc_ctx_ll(ctx, svc_record_int(old->uf, "entityid")) : "";
        args[6] = svc_ctx_ll(ctx, ent);
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
        s_read_t rd = {0};
        int rc = s_read_one_or_reply(ctx, id, 0, 0, &rd), conflict = 0;
        if (rc == 0 && rd.n == 0)
            rc = svc_reply_error(ctx, 404, "not_found", "id", "no user has id %lld", id);
        if (rc == 0)
            rc = s_put(ctx, body, &rd.users[0], &conflict);
        s_read_dispose(&rd);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "user %lld: edit kept conflicting with other writers", id);
}

/* ipbx_users_del over the users read (all: deleteall). 0 or -1 with the reply set, *conflict */
static int s_del(svc_ctx_t *ctx, const s_read_t *rd, int all, int *conflict)
{
    size_t n = rd->n;
    s_ctxs_t c = {NULL, 0, 0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        const s_user_t *u = &rd->users[i];
        msgpack_pack_array(&pk, 5);
        svc_mp_cstr(&pk, svc_ctx_ll(ctx, u->id));
        svc_mp_strn(&pk, u->blob, u->bloblen);
        svc_mp_cstr(&pk, s_login_folded(ctx, u->uf));
        svc_mp_cstr(&pk, svc_ctx_ll(ctx, svc_record_int(u->uf, "entityid")));
        s_pack_old_lines(ctx, u, NULL, &c, &pk);
    }
    size_t nkeys;
    const char **keys = s_write_keys(ctx, &c, &nkeys);
    const char *args[3], *msgs;
    size_t lens[3], msgslen;
    args[0] = sb.data != NULL ? sb.data : "", lens[0] = sb.size;
    args[1] = s_kinds(ctx, &msgs, &msgslen), lens[1] = strlen(args[1]);
    args[2] = all ? "1" : "", lens[2] = strlen(args[2]);
    int rc = svc_write_cas(ctx, conflict, "ipbx_users_del", (int)nkeys, keys, 3, args, lens);
    free(keys);
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
        s_read_t rd = {0};
        int rc = s_read_one_or_reply(ctx, id, 0, 0, &rd), conflict = 0;
        if (rc == 0 && rd.n == 0)
            rc = svc_reply_error(ctx, 404, "not_found", "id", "no user has id %lld", id);
        if (rc == 0)
            rc = s_del(ctx, &rd, 0, &conflict);
        s_read_dispose(&rd);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "user %lld: delete kept conflicting with other writers", id);
}

static int s_deleteall(svc_ctx_t *ctx)
{
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        s_read_t rd = {0};
        int rc = s_read_all_or_reply(ctx, 0, NULL, &rd), conflict = 0;
        if (rc == 0)
            rc = s_del(ctx, &rd, 1, &conflict);
        s_read_dispose(&rd);
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
