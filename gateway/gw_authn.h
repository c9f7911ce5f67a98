/*
 * gw_authn - the authentication flow of a restricted request: Basic credentials or a host-only
 * account, the verification cache, the back-off delay, the password check (gw_verify), the wait
 * for a fresh snapshot (gw_refresh), the account's own checks (enabled, login, hosts) and the ACL
 * of the route; then the request is dispatched (gw_req_dispatch), or answered 200 (check), 401,
 * 403 or 503.
 *
 * Owns no state of its own: it works on the request's (gw_req.h) and counts failures in
 * app->backoff. Calls gw_basic, gw_accounts, gw_backoff, gw_acl, gw_verify, gw_refresh and the
 * gw_req_* calls of gw_http; called by gw_http.
 */
#ifndef GW_AUTHN_H
#define GW_AUTHN_H

#include "gw_req.h"

/* Authenticates r (a restricted request that passed the checks of the handler) and carries it on. */
void gw_authn_start(gw_req_t *r);

/* Withdraws r from the flow (password check, snapshot wait, back-off delay): its deadline passed or it went away. */
void gw_authn_abort(gw_req_t *r);

#endif
