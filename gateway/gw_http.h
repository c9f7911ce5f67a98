/*
 * gw_http - the HTTPS side: the h2o handler that turns a json.php request into an envelope
 * (routing, limits, query, authentication, ACL, body), hands it to the broker and turns the reply
 * into the HTTP answer (status, JSON body, ETag, 304), and the periodic account refresh.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "xws/proto.h"
#include "gw_app.h"

/* Registers the json.php handler on every path of host (and the filter of h2o's own answers). */
void gw_http_register(gw_app_t *app, h2o_hostconf_t *host);

/*
 * The reason phrase of an HTTP status (a literal, never NULL), and whether an If-None-Match value
 * matches an entity tag (weak comparison, lists and "*" understood).
 */
const char *gw_http_reason(int status);
int gw_http_inm_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len);

/*
 * The body size h2o itself accepts (max_request_entity_size) for a max_body setting:
 * max(4 × max_body, max_body + 1 MiB). Bodies above max_body up to this bound get the handler's
 * 413; above it h2o refuses them itself (HTTP/1.1: its own 413; HTTP/2: a stream reset).
 */
size_t gw_http_entity_limit(size_t max_body);

/*
 * The request target of an HTTP request as routed: path without the query and the fragment, and
 * the query (without '?', up to a '#'). An absolute-form target (`https://host/path?q`, any
 * scheme://authority) loses its scheme and authority first (an authority alone leaves an empty path).
 */
void gw_http_split_target(const char *target, size_t len, xws_slice_t *path, xws_slice_t *query);

void gw_http_test(void);

#endif
