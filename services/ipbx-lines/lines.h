/*
 * lines.h - the ipbx-lines service (xws-ipbx-lines): the `lines` resource (spec §5.1, path
 * pbx_settings/lines). See README.md beside this file for the acts, the Redis keys and the
 * number-reservation rules.
 *
 * line_table.c declares the records (a line = its `linefeatures` part + its `protocol` part,
 * whose fields are a variant chosen by protocol.protocol: sip, iax, sccp, custom) and their
 * indexes; lines.c holds the handlers; lua/lines.lua the Redis functions.
 */
#ifndef LINES_H
#define LINES_H

#include "svc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A stored line: {"linefeatures": {...}, "protocol": {...}} (a msgpack map, svc_record_pack_stored). */
extern const svc_table_t lines_table;
/* The records with their indexes: protocol.name unique (case-folded), protocol.context a reference to a context. */
extern const svc_records_t lines_records;

/*
 * Completes a validated-for-types line before the checks: copies protocol, name and context of the
 * protocol part into linefeatures, derives the name of sccp lines (= number) and custom lines
 * (= interface). 0, or -1 with the 400 answer set (an sccp line without a number).
 */
int lines_fix_or_reply(svc_ctx_t *ctx, svc_record_t *rec);

/* The resource as registered in the service's resource table (default act: list). */
extern const svc_resource_t lines_resource;
/* The function library (prelude + lua/lines.lua), embedded at build time. */
extern const char lines_lua[];

#ifdef __cplusplus
}
#endif
#endif
