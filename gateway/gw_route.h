/*
 * gw_route - the static routing table of the json.php paths, path normalisation and query-string
 * parsing. Pure functions: no h2o, no ZeroMQ, no allocation beyond what the caller hands in.
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <stddef.h>
#include "xws/proto.h" /* XWS_SERVICE_CONFIG, XWS_RESOURCE_ACCOUNT, ...: the account resource's names */

typedef enum {
    GW_MODE_RESTRICTED = 1, /* authenticated: Basic credentials or host-only account, then ACL */
    GW_MODE_PRIVATE = 2,    /* loopback clients only, no credentials */
} gw_mode_t;

/* One row of the routing table. */
typedef struct {
    const char *front;            /* ACL prefix of the front: "xivo/configuration", "service/ipbx", "callcenter" */
    const char *path;             /* "<section>/<resource>" after the mode, or "check" */
    const char *service;          /* target service; NULL: answered by the gateway itself (check) */
    const char *resource;         /* resource name inside the service */
    int restricted_only;          /* 1: the private path answers 404 */
    const char *const *body_acts; /* NULL-terminated list of acts that read the JSON body */
} gw_route_t;

/* The result of matching a path. */
typedef struct {
    const gw_route_t *route; /* row of the table */
    gw_mode_t mode;          /* mode component of the path */
} gw_match_t;

/*
 * Matches a raw request path (without the query string, still percent-encoded) against the table.
 * Rules: the path starts with '/'; repeated slashes collapse; one trailing slash is optional; each
 * component is percent-decoded before comparison (a bad escape is a miss); a component that is
 * empty after decoding, or starts with '.' or '_' (so "." and ".." too) is a miss; comparison is
 * exact and case-sensitive. Returns 0 with *m filled, or -1 (the caller answers 404, empty body).
 */
int gw_route_match(const char *path, size_t len, gw_match_t *m);

/* 1 when act (len bytes) is one of the route's body-reading acts, else 0. */
int gw_route_reads_body(const gw_route_t *route, const char *act, size_t len);

/* The ACL path of a route: "<front>/<path>" written into buf (NUL-terminated); returns buf. */
const char *gw_route_acl_path(const gw_route_t *route, char *buf, size_t size);

/* Number of rows of the table and row i (for tests and documentation). */
size_t gw_route_count(void);
const gw_route_t *gw_route_at(size_t i);

/*
 * The services the table routes to, each once, in the order of their first row: written into out
 * (room for size pointers, the last one set to NULL) for the broker, which serves only those.
 * Returns the number of services, or -1 when out is too small. The table is the one list of services.
 */
int gw_route_services(const char **out, size_t size);

/* Result codes of gw_query_parse. */
#define GW_QUERY_OK 0
#define GW_QUERY_BAD -1
#define GW_QUERY_TOO_MANY -2 /* more than GW_QUERY_MAX_PARAMS pairs */

/* The most query parameters a request may carry (non-empty pairs, duplicates and empty names included). */
#define GW_QUERY_MAX_PARAMS 100

/*
 * Parses a query string (the bytes after '?', not NUL-terminated) into parameters.
 * - Pairs are separated by '&'; a pair without '=' has the value ""; pairs with an empty name
 *   are skipped.
 * - Names and values are percent-decoded ('+' is a space), then trimmed of surrounding white space.
 * - A name given twice: the first occurrence wins (later ones are dropped).
 * - A bad escape ('%' not followed by two hex digits), an escape decoding to NUL, or a name or value
 *   that is not valid UTF-8 makes the whole query invalid: returns GW_QUERY_BAD with *bad set to the
 *   offending parameter name (decoded when that is possible and valid UTF-8, else empty).
 * buf must hold at least len bytes (decoded text is never longer); kv must hold at least
 * gw_query_max_params(q, len) entries. Slices in kv and *bad point into buf.
 * - More than GW_QUERY_MAX_PARAMS non-empty pairs: GW_QUERY_TOO_MANY (*bad empty), checked first
 *   (the de-duplication costs the square of the count).
 * Returns GW_QUERY_OK with *nkv set.
 */
int gw_query_parse(const char *q, size_t len, char *buf, xws_kv_t *kv, size_t *nkv, xws_slice_t *bad);

/* Upper bound of the parameters in q: 1 + the number of '&'. */
size_t gw_query_max_params(const char *q, size_t len);

/* Looks a parameter up by name; 0 with *val set, or -1. */
int gw_query_get(const xws_kv_t *kv, size_t nkv, const char *name, xws_slice_t *val);

/* 1 when s (len bytes) is valid UTF-8, else 0. */
int gw_utf8_valid(const char *s, size_t len);

/* Self-test: silent on success, aborts on failure. */
void gw_route_test(void);

#endif
