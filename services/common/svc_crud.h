/*
 * svc_crud - the read side of a table-driven resource stored as one Redis hash
 * (<prefix><data>: id → msgpack record written by svc_record_pack_stored): list, search and
 * view with ETags (spec §1.3-§1.5: lists ordered by id, 204 when empty, 404 for an unknown id),
 * and loading one record for an edit. The write side lives in the service's Redis functions.
 *
 *     static const svc_crud_t entity_crud = {"entity", &entity_table, "entity:data", NULL};
 *     static int entity_list(svc_ctx_t *ctx) { return svc_crud_list(ctx, &entity_crud); }
 */
#ifndef SVC_CRUD_H
#define SVC_CRUD_H

#include "svc_ctx.h"
#include "svc_field.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *resource;       /* its version counter is <prefix>ver:<resource> */
    const svc_table_t *table;   /* fields of a record */
    const char *data_key;       /* key suffix of the id → record hash */
    const char *const *depends; /* other resources the output depends on (NULL-terminated), or NULL */
} svc_crud_t;

/* All records, by id ascending: 200 with an array, 204 when there is none. */
int svc_crud_list(svc_ctx_t *ctx, const svc_crud_t *c);
/* Records whose SVC_F_SEARCH fields contain parameter "search" (case-insensitive); 204 when
 * the parameter is empty or nothing matches. */
int svc_crud_search(svc_ctx_t *ctx, const svc_crud_t *c);
/* The record named by parameter "id": 200 with the object, 404 when unknown. */
int svc_crud_view(svc_ctx_t *ctx, const svc_crud_t *c);

/*
 * Loads record id into rec (which gets its id) and, when blob != NULL, a pooled copy of the
 * stored bytes (for compare-and-set writes). 0, or -1 with the reply set (404 not_found, 500,
 * 500 for a corrupt record).
 */
int svc_crud_load_or_reply(svc_ctx_t *ctx, const svc_crud_t *c, long long id, svc_record_t *rec, const char **blob,
                           size_t *bloblen);

#ifdef __cplusplus
}
#endif
#endif
