/*
 * gw_http - the HTTPS side: the h2o handler that turns a json.php request into an envelope
 * (routing, limits, query, authentication, ACL, body), hands it to the broker and turns the reply
 * into the HTTP answer (status, JSON body, ETag, 304), and the periodic account refresh.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "gw_app.h"

/* Registers the json.php handler on every path of host. */
void gw_http_register(gw_app_t *app, h2o_hostconf_t *host);

/*
 * Periodic work of the HTTP side: asks the config service for a new account snapshot every
 * accounts_refresh_ms (with `since`), forgets stale back-off entries. Call it from the tick.
 */
void gw_http_tick(gw_app_t *app);

/* Asks for an account snapshot now unless one is in flight. */
void gw_http_refresh_accounts(gw_app_t *app);

/*
 * The reason phrase of an HTTP status (a literal, never NULL), and whether an If-None-Match value
 * matches an entity tag (weak comparison, lists and "*" understood).
 */
const char *gw_http_reason(int status);
int gw_http_inm_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len);

void gw_http_test(void);

#endif
