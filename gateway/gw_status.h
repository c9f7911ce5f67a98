/*
 * gw_status - the gateway's own routes outside json.php: health and metrics.
 *
 *   GET /status/live   200 {"live": true} while the event loop runs; no credentials.
 *   GET /status/ready  200 {"ready": true} or 503 {"ready": false, "reasons": [...]}; no credentials.
 *   GET /status        without an Authorization header: the same as /status/ready; with one, the
 *                      request is authenticated as any restricted request (Basic; wrong
 *                      credentials 401) and answers 200 with the details (workers, credit, queues
 *                      and store probes per service, accounts, counts).
 *   GET /metrics       authenticated (Basic, or a host-only account of the client address): 200
 *                      with the Prometheus text of gw_metrics; 401 otherwise.
 *
 * Any account may read the details and the metrics, whatever its ACL (as `check`): they carry no
 * configuration data. Ready means: the gateway is not stopping; every routed service has a live
 * worker whose last report says the store (Redis) answered its probe; the account snapshot was
 * loaded or confirmed by the config service (which read it from Redis) within
 * 2 x accounts_refresh_ms + deadline_ms.
 *
 * No state of its own. Called by gw_http (routing, handling) and gw_authn (once authorized);
 * reads gw_broker, gw_accounts, gw_refresh and gw_metrics.
 */
#ifndef GW_STATUS_H
#define GW_STATUS_H

#include "xws/proto.h"
#include "gw_req.h"
#include "gw_route.h"

/* The gateway's own route of a raw path (query excluded; one trailing slash allowed), or NULL. */
const gw_route_t *gw_status_match(const char *path, size_t len);

/* 1 when route is one of the gateway's own routes (gw_status_match's). */
int gw_status_owns(const gw_route_t *route);

/* Answers r (routed by gw_status_match, method and query checked): liveness and readiness at
 * once; details and metrics through the authentication flow (gw_authn_start). */
void gw_status_handle(gw_req_t *r);

/* r, on one of these routes, is authenticated (gw_authn): answers the details or the metrics. */
void gw_status_authorized(gw_req_t *r);

/*
 * 1 when the gateway is ready, else 0; when reasons is not NULL, the reasons it is not are
 * appended to it as JSON strings separated by commas (nothing when ready).
 */
int gw_status_ready(gw_app_t *app, xws_buf_t *reasons);

/* Self-test: path matching. */
void gw_status_test(void);

#endif
