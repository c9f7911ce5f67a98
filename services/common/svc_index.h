/*
 * svc_index - a resource's records and their indexes, declared as data: the record table, the
 * Redis keys, the unique indexes (name, mac, login; case-folded where the contract says so), the
 * exact-match lookups (ip) and the references to other resources (entity, context). The common
 * Redis functions (prelude: xws_records_put / _del / _delall, registered by a service library
 * with xws_register_records('<service>')) maintain every index and reference count in the same
 * atomic call as the record, check a new unique value and a new reference before the first
 * write, and refuse the delete of a record that something still refers to (405 in_use).
 *
 *     static const svc_index_t device_ix[] = {
 *         {SVC_IX_UNIQUE, "mac", "device:mac", NULL, 1, "a device with mac %s already exists"},
 *         {SVC_IX_LOOKUP, "ip", "device:ip", NULL, 0, NULL},
 *     };
 *     static const svc_records_t devices = {
 *         .service = "devices", .crud = {"device", &device_table, "device:data", NULL},
 *         .seq = "device:seq", .indexes = device_ix, .nindexes = 2};
 *     svc_records_add_or_reply(ctx, &devices, rec);     // 200; 400 already_exists "mac"
 *
 * Key layout (under the prefix): <data> hash id -> record; <seq> last id (INCR); ver:<resource>;
 * <inrefs> hash id -> number of objects referring to the record; a unique index: hash value ->
 * id; a lookup: hash value -> "id,id,..."; a reference: the target's data hash (existence) and
 * the target's inrefs hash (counts).
 */
#ifndef SVC_INDEX_H
#define SVC_INDEX_H

#include "svc_crud.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SVC_IX_UNIQUE, /* key: hash value -> id; a value taken by another record is 400 already_exists */
    SVC_IX_LOOKUP, /* key: hash value -> "id,id,..." (exact-match search) */
    SVC_IX_REF,    /* key: the target's data hash (400 unknown_reference when the id is not in it); refs: its counts */
} svc_ix_kind_t;

typedef struct {
    svc_ix_kind_t kind;
    const char *field;   /* a text, int or list-of-scalars field; "a.b" names field b of object a */
    const char *key;     /* key suffix (see svc_ix_kind_t) */
    const char *refs;    /* SVC_IX_REF: key suffix of the target's hash id -> reference count */
    int fold;            /* 1: values are lowercased (ASCII) */
    const char *message; /* the error sentence; %s is replaced by the value */
} svc_index_t;

typedef struct {
    const char *service;        /* the Redis functions are <service>_records_put, _del, _delall */
    svc_crud_t crud;            /* resource, table, data key, read dependencies */
    const char *seq;            /* key suffix of the id counter */
    const char *inrefs;         /* key suffix of hash id -> references to a record, or NULL */
    const svc_index_t *indexes; /* or NULL */
    size_t nindexes;
    int add_answers_id; /* 1: add answers 200 with the new id as a JSON string ("42") */
} svc_records_t;

/* Packs the index entries of rec: an array per index of {value, path} (for the functions; exposed for tests). */
void svc_index_pack_entries(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec, msgpack_packer *pk);
/*
 * The index entries of rec (NULL: none, "") as a pooled msgpack string, with its length in *len:
 * the argument the prelude's xws_records_check / xws_records_apply read, for services that write
 * their own record functions.
 */
const char *svc_index_entries(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec, size_t *len);
/*
 * The kinds of d's indexes as the prelude reads them (one letter per index: u unique, l lookup,
 * r reference; pooled, NUL-terminated) and their messages (a pooled msgpack array, *msgslen bytes).
 */
void svc_index_kinds(svc_ctx_t *ctx, const svc_records_t *d, const char **kinds, const char **msgs, size_t *msgslen);

/* Stores the validated new record rec (a new id from seq). 0 with the reply set (200), or -1 (400 …). */
int svc_records_add_or_reply(svc_ctx_t *ctx, const svc_records_t *d, const svc_record_t *rec);

/*
 * Replaces record id with the stored one merged with body, checked (fix, when not NULL, runs
 * after the defaults and may set server-managed fields or refuse: 0 or -1 with the reply set).
 * Compare-and-set: a record changed between the read and the write is read again (10 times at
 * most, then 500). 0 with the 200 reply set, or -1 (404, 400 …).
 */
int svc_records_edit_or_reply(svc_ctx_t *ctx, const svc_records_t *d, long long id, const msgpack_object *body,
                              int (*fix)(svc_ctx_t *ctx, svc_record_t *rec));
/* Deletes record id: 0 (200), or -1 (404, 405 in_use …). */
int svc_records_delete_or_reply(svc_ctx_t *ctx, const svc_records_t *d, long long id);
/* Deletes every record nothing refers to: 0 (200; 204 when there was none), or -1. */
int svc_records_deleteall_or_reply(svc_ctx_t *ctx, const svc_records_t *d);

/*
 * Exact-match lookup through index number ix (unique or lookup) of value: the ids (ascending,
 * *ids freed by the caller, NULL when none). 0, or -1 with the reply set.
 */
int svc_index_lookup_or_reply(svc_ctx_t *ctx, const svc_records_t *d, size_t ix, const char *value, long long **ids, size_t *n);

void svc_index_test(void);

#ifdef __cplusplus
}
#endif
#endif
