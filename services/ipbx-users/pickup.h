/*
 * pickup.h - the `pickup` resource of the ipbx-users service (spec §5.4, path
 * call_management/pickup): call pickup groups, ids 0-63, whose rows name users, groups and queues.
 * See README.md beside this file for the acts, the Redis keys and the rules.
 *
 * pickup_table.c declares the records (the pickup object, one member row, the members of a request
 * body); pickup.c holds the handlers; lua/pickup.lua the Redis functions (library xws_ipbx_users).
 */
#ifndef PICKUP_H
#define PICKUP_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pickup ids are 0 .. PICKUP_MAX_ID (the lowest free one is taken). */
#define PICKUP_MAX_ID 63

/* The stored pickup and the list element: {"commented", "description", "id", "name"}. */
extern const svc_table_t pickup_table;
/* One row: {"category", "memberid", "membertype"} stored, plus "pickupid" (the record id) on output. */
extern const svc_table_t pickup_row_table;
/* The members part of a request body: {"members": [rows]} (`false` = none). */
extern const svc_table_t pickup_members_table;

extern const svc_resource_t pickup_resource;

#ifdef __cplusplus
}
#endif
#endif
