/* refs.c - see refs.h */
#include "refs.h"

void ipbx_refs_keys(svc_ctx_t *ctx, const char **keys)
{
    static const char *const names[IPBX_REFS_NKEYS] = {
        "pickup:rows", "pickup:target", "ver:pickup",    "user:dialaction", "dialaction:target", "user:groups", "group:members",
        "ver:groups",  "user:queues",   "queue:members", "ver:queues",      "ver:users",         "user:extra",  "funckey:target",
    };
    for (size_t i = 0; i < IPBX_REFS_NKEYS; i++)
        keys[i] = svc_key(ctx, names[i]);
}
