/* svc_index.c - see svc_index.h */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "svc_index.h"
#include "svc_mp.h"
#include "svc_util.h"

/* the record holding field path ("a.b": field b of object a), and the last segment; NULL when an object is unset */
static const svc_record_t *s_holder(const svc_record_t *rec, const char *path, const char **last)
{
    const char *dot;
    char seg[64];
    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        assert(n < sizeof(seg));
        memcpy(seg, path, n);
        seg[n] = '\0';
        if (!svc_record_has(rec, seg))
            return NULL;
        rec = svc_record_obj((svc_record_t *)rec, seg);
        path = dot + 1;
    }
    *last = path;
    return rec;
}

static void s_pack_value(msgpack_packer *pk, const char *s, size_t len, int fold, const char *path)
{
    msgpack_pack_array(pk, 2);
    if (fold) {
        char *c = svc_strndup(s, len);
        for (size_t i = 0; i < len; i++)
            if (c[i] >= 'A' && c[i] <= 'Z')
                c[i] = (char)(c[i] + 32);
        svc_mp_strn(pk, c, len);
        free(c);
    } else {
        svc_mp_strn(pk, s, len);
    }
    svc_mp_cstr(pk, path);
}

void svc_index_pack_entries(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec, msgpack_packer *pk)
{
    msgpack_pack_array(pk, d->nindexes);
    for (size_t i = 0; i < d->nindexes; i++) {
        const svc_index_t *ix = &d->indexes[i];
        const char *name;
        const svc_record_t *h = rec != NULL ? s_holder(rec, ix->field, &name) : NULL;
        if (h == NULL || !svc_record_has(h, name)) {
            msgpack_pack_array(pk, 0);
            continue;
        }
        const char *path = svc_record_path(ctx, h, name);
        const svc_field_t *f = svc_record_field(h, name);
        char num[32];
        size_t len;
        if (f->kind == SVC_LIST) {
            /* a list of scalars: one entry per item */
            size_t n = svc_record_count(h, name);
            msgpack_pack_array(pk, n);
            for (size_t k = 0; k < n; k++) {
                const char *s = svc_record_item_str(h, name, k, &len);
                if (f->item->kind == SVC_INT)
                    snprintf(num, sizeof(num), "%lld", svc_record_item_int(h, name, k)), s = num, len = strlen(num);
                s_pack_value(pk, s, len, ix->fold, svc_ctx_printf(ctx, "%s[%zu]", path, svc_record_item_index(h, name, k)));
            }
            continue;
        }
        const char *s = svc_record_str(h, name, &len);
        if (f->kind == SVC_INT)
            snprintf(num, sizeof(num), "%lld", svc_record_int(h, name)), s = num, len = strlen(num);
        if (len > 0) {
            msgpack_pack_array(pk, 1);
            s_pack_value(pk, s, len, ix->fold, path);
        } else {
            msgpack_pack_array(pk, 0);
        }
    }
}

const char *svc_index_entries(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec, size_t *len)
{
    if (rec == NULL) {
        *len = 0;
        return "";
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    svc_index_pack_entries(ctx, d, rec, &pk);
    const char *s = svc_ctx_strndup(ctx, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return s;
}

/* KEYS after the write id (see the prelude): seq, data, ver, inrefs, then (key, refs) per index */
static const char **s_keys(svc_ctx_t *ctx, const svc_records_t *d, int *n)
{
    const char **k = svc_calloc(4 + 2 * d->nindexes + 1, sizeof(*k));
    k[0] = svc_key(ctx, d->seq != NULL ? d->seq : "seq");
    k[1] = svc_key(ctx, d->crud.data_key);
    k[2] = svc_key2(ctx, "ver:", d->crud.resource);
    k[3] = svc_ctx_printf(ctx, "%s%s", ctx->prefix, d->inrefs != NULL ? d->inrefs : d->crud.data_key);
    for (size_t i = 0; i < d->nindexes; i++) {
        k[4 + 2 * i] = svc_key(ctx, d->indexes[i].key);
        k[5 + 2 * i] = svc_key(ctx, d->indexes[i].refs != NULL ? d->indexes[i].refs : d->indexes[i].key);
    }
    *n = 4 + 2 * (int)d->nindexes;
    return k;
}

void svc_index_kinds(svc_ctx_t *ctx, const svc_records_t *d, const char **kinds, const char **msgs, size_t *msgslen)
{
    char *k = svc_ctx_strndup(ctx, "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu", d->nindexes < 32 ? d->nindexes : 32);
    assert(d->nindexes <= 32);
    for (size_t i = 0; i < d->nindexes; i++)
        k[i] = d->indexes[i].kind == SVC_IX_UNIQUE ? 'u' : d->indexes[i].kind == SVC_IX_LOOKUP ? 'l' : 'r';
    *kinds = k;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, d->nindexes);
    for (size_t i = 0; i < d->nindexes; i++)
        svc_mp_cstr(&pk, d->indexes[i].message != NULL ? d->indexes[i].message : "%s is not valid here");
    *msgs = svc_ctx_strndup(ctx, sb.data, sb.size);
    *msgslen = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

/* runs a records function (svc_write_cas): 0, or -1 with the reply set; *conflict when the record changed */
static int s_call(svc_ctx_t *ctx, const svc_records_t *d, const char *what, int nargs, const char **args, const size_t *lens,
                  int *conflict)
{
    int nkeys;
    const char **keys = s_keys(ctx, d, &nkeys);
    const char *fn = svc_ctx_printf(ctx, "%s_records_%s", d->service, what);
    int rc = svc_write_cas(ctx, conflict, fn, nkeys, keys, nargs, args, lens);
    free(keys);
    return rc;
}

/* put: id NULL to add, old/oldrec the record read for an edit */
static int s_put(svc_ctx_t *ctx, const svc_records_t *d, const char *id, const char *old, size_t oldlen, const svc_record_t *oldrec,
                 const svc_record_t *rec, int *conflict)
{
    const char *args[9];
    size_t lens[9];
    args[0] = id != NULL ? id : "", lens[0] = strlen(args[0]);
    args[1] = old != NULL ? old : "", lens[1] = old != NULL ? oldlen : 0;
    args[2] = svc_record_blob(ctx, rec, &lens[2]);
    if (oldrec != NULL)
        args[3] = svc_index_entries(ctx, d, oldrec, &lens[3]);
    else
        args[3] = "", lens[3] = 0;
    args[4] = svc_index_entries(ctx, d, rec, &lens[4]);
    svc_index_kinds(ctx, d, &args[5], &args[6], &lens[6]);
    lens[5] = strlen(args[5]);
    args[7] = d->crud.resource, lens[7] = strlen(args[7]);
    args[8] = d->add_answers_id ? "id" : "", lens[8] = strlen(args[8]);
    return s_call(ctx, d, "put", 9, args, lens, conflict);
}

int svc_records_add_or_reply(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec)
{
    return s_put(ctx, d, NULL, NULL, 0, NULL, rec, NULL); /* an add never conflicts */
}

int svc_records_edit_or_reply(svc_ctx_t *ctx, const svc_records_t *d, long long id, const msgpack_object *body,
                              int (*fix)(svc_ctx_t *ctx, svc_record_t *rec))
{
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(d->crud.table), *rec = svc_record_new(d->crud.table);
        const char *blob;
        size_t bloblen;
        int rc = svc_crud_load_or_reply(ctx, &d->crud, id, old, &blob, &bloblen);
        if (rc == 0 && svc_record_load_stored(rec, blob, bloblen) != 0)
            rc = svc_reply_internal(ctx, "%s %lld: corrupt record", d->crud.resource, id);
        if (rc == 0) {
            svc_record_set_id(rec, id);
            rc = svc_record_load_body_or_reply(ctx, rec, body);
        }
        if (rc == 0) {
            svc_record_defaults(rec);
            rc = fix != NULL ? fix(ctx, rec) : 0;
        }
        if (rc == 0)
            rc = svc_record_check_or_reply(ctx, rec);
        int conflict = 0;
        if (rc == 0)
            rc = s_put(ctx, d, ids, blob, bloblen, old, rec, &conflict);
        svc_record_destroy(&old);
        svc_record_destroy(&rec);
        if (rc != 0 || !conflict)
            return rc;
        /* another writer changed the record between the read and the write: read it again */
    }
    return svc_reply_internal(ctx, "%s %lld: edit kept conflicting with other writers", d->crud.resource, id);
}

int svc_records_delete_or_reply(svc_ctx_t *ctx, const svc_records_t *d, long long id)
{
    const char *ids = svc_ctx_ll(ctx, id);
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        svc_record_t *old = svc_record_new(d->crud.table);
        const char *args[5];
        size_t lens[5];
        int conflict = 0;
        int rc = svc_crud_load_or_reply(ctx, &d->crud, id, old, &args[1], &lens[1]);
        if (rc == 0) {
            args[0] = ids, lens[0] = strlen(ids);
            args[2] = svc_index_entries(ctx, d, old, &lens[2]);
            const char *msgs;
            size_t msgslen;
            svc_index_kinds(ctx, d, &args[3], &msgs, &msgslen);
            lens[3] = strlen(args[3]);
            args[4] = d->crud.resource, lens[4] = strlen(args[4]);
            rc = s_call(ctx, d, "del", 5, args, lens, &conflict);
        }
        svc_record_destroy(&old);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "%s %lld: delete kept conflicting with other writers", d->crud.resource, id);
}

int svc_records_deleteall_or_reply(svc_ctx_t *ctx, const svc_records_t *d)
{
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        const char *argv[] = {"HGETALL", svc_key(ctx, d->crud.data_key)};
        redisReply *r = svc_redis_command(ctx->redis, 2, argv, NULL);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
            svc_reply_redis_failure(ctx, r, "reading records");
            freeReplyObject(r);
            return -1;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, svc_mp_write);
        msgpack_pack_array(&pk, r->elements / 2);
        int rc = 0;
        for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
            const redisReply *k = r->element[i], *v = r->element[i + 1];
            svc_record_t *rec = svc_record_new(d->crud.table);
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
                svc_record_load_stored(rec, v->str, v->len) != 0) {
                rc = svc_reply_internal(ctx, "%s: corrupt record in %s", d->crud.resource, d->crud.data_key);
            } else {
                msgpack_pack_array(&pk, 3);
                svc_mp_strn(&pk, k->str, k->len);
                svc_mp_strn(&pk, v->str, v->len);
                svc_index_pack_entries(ctx, d, rec, &pk);
            }
            svc_record_destroy(&rec);
        }
        freeReplyObject(r);
        int conflict = 0;
        if (rc == 0) {
            const char *args[2];
            size_t lens[2];
            args[0] = sb.data != NULL ? sb.data : "", lens[0] = sb.size;
            const char *msgs;
            size_t msgslen;
            svc_index_kinds(ctx, d, &args[1], &msgs, &msgslen);
            lens[1] = strlen(args[1]);
            rc = s_call(ctx, d, "delall", 2, args, lens, &conflict);
        }
        msgpack_sbuffer_destroy(&sb);
        if (rc != 0 || !conflict)
            return rc;
    }
    return svc_reply_internal(ctx, "%s: deleteall kept conflicting with other writers", d->crud.resource);
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int svc_index_lookup_or_reply(svc_ctx_t *ctx, const svc_records_t *d, size_t ix, const char *value, long long **ids, size_t *n)
{
    assert(ix < d->nindexes && d->indexes[ix].kind != SVC_IX_REF);
    *ids = NULL;
    *n = 0;
    char *v = svc_ctx_strndup(ctx, value, strlen(value));
    for (char *p = v; d->indexes[ix].fold && *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    const char *argv[] = {"HGET", svc_key(ctx, d->indexes[ix].key), v};
    redisReply *r = svc_redis_command(ctx->redis, 3, argv, NULL);
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        svc_reply_redis_failure(ctx, r, "reading an index");
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING) {
        *ids = svc_calloc(r->len / 2 + 2, sizeof(**ids));
        const char *p = r->str, *end = r->str + r->len;
        while (p < end) {
            long long x = 0;
            while (p < end && *p >= '0' && *p <= '9')
                x = x * 10 + (*p++ - '0');
            if (x > 0)
                (*ids)[(*n)++] = x;
            while (p < end && (*p < '0' || *p > '9'))
                p++;
        }
        qsort(*ids, *n, sizeof(**ids), s_cmp_ll);
    }
    freeReplyObject(r);
    return 0;
}
