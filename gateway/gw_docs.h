/*
 * gw_docs - the published API description and its reference page, served by the gateway itself.
 *
 *   GET /api/openapi.json  the OpenAPI 3 description of every path (docs/openapi.json), application/json
 *   GET /api/              the reference page (docs/api/index.html), which renders the description
 *   GET /api/api.js        the page's script
 *   GET /api/api.css       the page's style sheet
 *
 * Public documentation: no credentials, any client address, any mode (it describes the contract
 * and holds no configuration data). The files are embedded at build time (no data directory).
 * Every answer carries a strong ETag (a hash of the file) and Cache-Control: no-cache (from
 * gw_req_send): an If-None-Match that matches answers 304. The query string is ignored; HEAD
 * answers the headers only; other methods than GET, POST, HEAD are 405 as everywhere.
 *
 * No state of its own but the entity tags, computed once. Called by gw_http (routing, handling).
 */
#ifndef GW_DOCS_H
#define GW_DOCS_H

#include <stddef.h>
#include "gw_req.h"
#include "gw_route.h"

/* The documentation route of a raw path (query excluded; one trailing slash allowed), or NULL. */
const gw_route_t *gw_docs_match(const char *path, size_t len);

/* 1 when route is one of gw_docs_match's routes, else 0 (route may be NULL). */
int gw_docs_owns(const gw_route_t *route);

/* Answers r (routed by gw_docs_match; method and query checked): 200 with the file, or 304. */
void gw_docs_handle(gw_req_t *r);

/* Self-test: path matching and entity tags. */
void gw_docs_test(void);

#endif
