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

/* Self-test: silent on success, aborts on failure. */
void gw_http_test(void);

#endif
