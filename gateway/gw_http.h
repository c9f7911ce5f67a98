/*
 * gw_http - the HTTPS side: the h2o handler that turns a json.php request into an envelope
 * (routing, limits, query, then gw_authn for restricted requests, body), hands it to the broker
 * and turns the reply into the HTTP answer (status, JSON body, ETag, 304) with its access-log line.
 *
 * Owns the per-request state (gw_req_t of gw_req.h, in the request's pool, with its deadline
 * timer and its job at the broker; gw_authn_abort withdraws the rest when the deadline passes or
 * h2o frees the request). Every request is answered exactly once, through one exit (gw_req_send).
 * Calls gw_route, gw_msg, gw_net, gw_authn, gw_broker and gw_log; called by h2o and gw_authn.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "xws/proto.h"
#include "gw_app.h"

/* Registers the json.php handler on every path of host (and the filter of h2o's own answers). */
void gw_http_register(gw_app_t *app, h2o_hostconf_t *host);

/* Self-test: silent on success, aborts on failure. */
void gw_http_test(void);

#endif
