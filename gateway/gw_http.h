/*
 * gw_http - the HTTPS side: the h2o handler that turns a json.php request into an envelope
 * (routing, limits, query, authentication, ACL, body), hands it to the broker and turns the reply
 * into the HTTP answer (status, JSON body, ETag, 304) with its access-log line.
 *
 * Owns the per-request state (gw_req_t, in the request's pool, with its deadline and back-off
 * timers, its job at the broker and its waiters at gw_verify and gw_refresh, all withdrawn when
 * h2o frees the request). Every request is answered exactly once, through one exit (s_send).
 * Calls gw_route, gw_msg, gw_net, gw_acl, gw_basic, gw_accounts, gw_backoff, gw_verify,
 * gw_refresh, gw_broker and gw_log; called by h2o.
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
