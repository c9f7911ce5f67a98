/*
 * users.h - the ipbx-users service (xws-ipbx-users): the `users` resource (spec §5.3, path
 * pbx_settings/users). See README.md beside this file for the acts, the Redis keys and what is
 * not done yet.
 *
 * user_table.c declares the records (userfeatures, the column-oriented linefeatures rows and the
 * request body); users.c holds the handlers; lua/users.lua the Redis functions.
 */
#ifndef USERS_H
#define USERS_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The stored user: the userfeatures object (a msgpack map, svc_record_pack_stored). */
extern const svc_table_t users_uf_table;
/* One row of linefeatures. */
extern const svc_table_t users_lf_table;
/* The voicemail of a user (stored in user:voicemail, with its context and vmfeatures.skipcheckpass). */
extern const svc_table_t users_vm_table;
/* vmfeatures of a request body ({"skipcheckpass"}). */
extern const svc_table_t users_vmf_table;
/* phonefunckey (rows) and queueskills of a user (stored in user:extra). */
extern const svc_table_t users_extra_table;
/*
 * The kind of object a function key of this type names by id, "user", "group" or "queue" (a
 * static string: a reference kept in funckey:target), or NULL for the other types.
 */
const char *users_fk_target(const char *type);
/* The events of a dialaction object (NULL-terminated) and one event's action (spec §5.3). */
extern const char *const users_da_events[];
extern const svc_table_t users_da_table;
/* The options of a group membership ({"chantype", "call-limit"}) and of a queue membership (+ "penalty"). */
extern const svc_table_t users_group_opt_table;
extern const svc_table_t users_queue_opt_table;
/* "group-select" and "queue-select": the names of the groups and queues of the user (false: none). */
extern const svc_table_t users_select_table;
/* A request body: {"userfeatures": {...}, "linefeatures": {column: [...]}}. */
extern const svc_table_t users_body_table;

extern const svc_resource_t users_resource;
extern const char users_lua[];

#ifdef __cplusplus
}
#endif
#endif
