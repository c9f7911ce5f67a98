/*
 * refs.h - the C side of lua/refs.lua: the cascade keys that every delete of a user, a group or a
 * queue passes to its Redis function, which runs ipbx_refs_forget over them in the same atomic
 * call. One list, in the order lua/refs.lua reads it (ipbx_refs_keys): keep the two in step.
 */
#ifndef IPBX_REFS_H
#define IPBX_REFS_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IPBX_REFS_NKEYS 14

/*
 * Writes the cascade keys (prefixed, pooled in ctx) into keys[0 .. IPBX_REFS_NKEYS - 1]:
 * pickup:rows, pickup:target, ver:pickup, user:dialaction, dialaction:target, user:groups,
 * group:members, ver:groups, user:queues, queue:members, ver:queues, ver:users, user:extra,
 * funckey:target.
 */
void ipbx_refs_keys(svc_ctx_t *ctx, const char **keys);

#ifdef __cplusplus
}
#endif
#endif
