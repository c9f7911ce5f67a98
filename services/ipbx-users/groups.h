/*
 * groups.h - the `groups` and `queues` resources of the ipbx-users service (spec §5.5, §5.6;
 * paths pbx_settings/groups and callcenter settings/queues). A queue is a group plus a
 * `displayname`, numbered from the context's `queue` ranges instead of its `group` ranges: both
 * resources are one code path, parameterised by a groups_kind_t.
 *
 * group_table.c declares the records and their indexes; groups.c holds the handlers;
 * lua/groups.lua the Redis functions (library xws_ipbx_users). See README.md beside this file
 * for the acts, the keys and the rules.
 */
#ifndef GROUPS_H
#define GROUPS_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What tells a group from a queue. */
typedef struct {
    const char *kind;             /* "group" / "queue": the number kind, the owner "<kind>/<id>", the cascade's kind */
    const char *members;          /* key suffix of id -> "uid,uid,..." (group:members / queue:members) */
    const svc_records_t *records; /* the table, the data hash, the id counter, the name and context indexes */
    const char *const *view_deps; /* the resources a view depends on (its version counters) */
} groups_kind_t;

/*
 * The records: {id, name, number, context, description} for a group; a queue adds displayname
 * after name. Indexes: name unique (group:name / queue:name), context a reference to a context
 * (counted in context:refs). Ids from group:seq / queue:seq, records in group:data / queue:data.
 */
extern const groups_kind_t groups_group;
extern const groups_kind_t groups_queue;

/* The resources as registered in the service's resource table (default act: list). */
extern const svc_resource_t groups_resource;
extern const svc_resource_t queues_resource;

#ifdef __cplusplus
}
#endif
#endif
