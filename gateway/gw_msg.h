/*
 * gw_msg - the pure pieces of the gateway's HTTP messages: reason phrases, If-None-Match, the
 * request target as routed, the entity limit given to h2o, the JSON error body of PROTOCOL.md §9,
 * the hex MD5 of the `sum` parameter. No state, no h2o, no I/O; gw_http and gw_main call it.
 */
#ifndef GW_MSG_H
#define GW_MSG_H

#include <stddef.h>
#include "xws/proto.h"

/*
 * The reason phrase of an HTTP status (a literal, never NULL), and whether an If-None-Match value
 * matches an entity tag (weak comparison, lists and "*" understood).
 */
const char *gw_msg_reason(int status);
int gw_msg_inm_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len);

/*
 * The body size h2o itself accepts (max_request_entity_size) for a max_body setting:
 * max(4 × max_body, max_body + 1 MiB). Bodies above max_body up to this bound get the handler's
 * 413; above it h2o refuses them itself (HTTP/1.1: its own 413; HTTP/2: a stream reset).
 */
size_t gw_msg_entity_limit(size_t max_body);

/*
 * The request target of an HTTP request as routed: path without the query and the fragment, and
 * the query (without '?', up to a '#'). An absolute-form target (`https://host/path?q`, any
 * scheme://authority) loses its scheme and authority first (an authority alone leaves an empty path).
 */
void gw_msg_split_target(const char *target, size_t len, xws_slice_t *path, xws_slice_t *query);

/*
 * Appends the JSON error body {"error":code,"field":field,"message":message} to out, each text
 * escaped as xws_msgpack_to_json escapes strings; when one of them is not UTF-8 (no JSON form), out
 * holds {"error":code,"field":"","message":"request rejected"} instead. code must be plain ASCII.
 */
void gw_msg_error_json(xws_buf_t *out, const char *code, const char *field, const char *message);

/* The MD5 of data as 32 lowercase hex digits and a NUL. */
void gw_msg_hex_md5(const char *data, size_t len, char out[33]);

/* Self-test: silent on success, aborts on failure. */
void gw_msg_test(void);

#endif
