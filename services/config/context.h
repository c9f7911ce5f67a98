/*
 * context - the `context` resource of the config service (spec §4.3, path
 * system_management/context): dialplan contexts with their entity, included contexts and number
 * ranges per object type (user, group, queue, meetme, incall).
 *
 * A table instance of the record layer (context_table in context.c: the body, the stored record
 * and the view are one declaration); the included contexts are a reference index, the numbers
 * in use are checked with the shared number helpers (services/common/README.md).
 *
 * Redis keys (under the prefix; the shared ones are documented in services/common/README.md):
 *   context:data            hash name -> record (positional msgpack array, see lua/context.lua)
 *   context:inclrefs        hash name -> number of contexts that include it
 *   context:refs            hash name -> number of objects of other services using it
 *   context:numbers:<name>  hash number -> "<type>:<owner>" (numbers in use, written by the
 *                           services that own the numbered objects)
 *   entity:refs             hash entity id -> references (each context counts one)
 *   ver:context             version counter
 * Writes go through config_context_put / _delete (lua/context.lua); reads through config_context_read.
 */
#ifndef CONTEXT_H
#define CONTEXT_H

#include <stddef.h>
#include "svc_ctx.h"
#include "svc_worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The resource as registered in the service's resource table (default act: list). */
extern const svc_resource_t cfg_context_resource;

/* act=list (the default act): the `context` parts of every context, by name; 204 if none. */
int context_list(svc_ctx_t *ctx);
/* act=search&search=T: contexts whose name or displayname contains T (case-insensitive); 204
 * when T is empty or nothing matches. */
int context_search(svc_ctx_t *ctx);
/* act=view&id=NAME: the whole object ({"context", "contextinclude", "contextnumbers"}); 404. */
int context_view(svc_ctx_t *ctx);
/* act=add: creates a context from the body; 200 with an empty body, or 400. */
int context_add(svc_ctx_t *ctx);
/* act=edit&id=NAME: replaces the parts the body gives; 200, 400 or 404. */
int context_edit(svc_ctx_t *ctx);
/* act=delete&id=NAME: 200, 404, or 405 in_use while anything uses the context. */
int context_delete(svc_ctx_t *ctx);

/*
 * 1 when s/len is an acceptable context name: 1-39 of [A-Za-z0-9_-], not starting with macro-,
 * voicemenu- or xivo-, and none of general, global, globals, parkedcalls, authentication,
 * zonemessages (all compared case-insensitively). Else 0.
 */
int context_name_ok(const char *s, size_t len);

/* Self-test of the pure parts (names, body validation, stored form and rendering); needs no Redis. */
void context_test(void);

#ifdef __cplusplus
}
#endif
#endif
