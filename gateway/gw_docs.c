/* gw_docs.c - the OpenAPI description and its reference page (see gw_docs.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "gw_check.h"
#include "gw_docs.h"

/* generated at build time from docs/ (embed.cmake): NUL-terminated texts */
extern const char gw_docs_openapi[];
extern const char gw_docs_page[];
extern const char gw_docs_js[];
extern const char gw_docs_css[];

/* the documentation routes: no service; `path` is also their label in the metrics */
enum { D_OPENAPI = 0, D_PAGE, D_JS, D_CSS, NDOCS };
static const gw_route_t s_routes[NDOCS] = {
    [D_OPENAPI] = {"", "api/openapi.json", NULL, NULL, 1, NULL},
    [D_PAGE] = {"", "api", NULL, NULL, 1, NULL},
    [D_JS] = {"", "api/api.js", NULL, NULL, 1, NULL},
    [D_CSS] = {"", "api/api.css", NULL, NULL, 1, NULL},
};

/* one row per route: its text and its media type */
static const struct {
    const char *text;
    const char *type;
} s_files[NDOCS] = {
    [D_OPENAPI] = {gw_docs_openapi, "application/json"},
    [D_PAGE] = {gw_docs_page, "text/html; charset=utf-8"},
    [D_JS] = {gw_docs_js, "text/javascript; charset=utf-8"},
    [D_CSS] = {gw_docs_css, "text/css; charset=utf-8"},
};

/* the strong entity tags, "\"<16 hex of FNV-1a 64>\"", computed on first use (one event loop) */
static char s_etags[NDOCS][20];

const gw_route_t *gw_docs_match(const char *path, size_t len)
{
    if (len > 1 && path[len - 1] == '/')
        len--;
    for (size_t i = 0; i < NDOCS; i++) {
        size_t n = strlen(s_routes[i].path);
        if (len == n + 1 && path[0] == '/' && memcmp(path + 1, s_routes[i].path, n) == 0)
            return &s_routes[i];
    }
    return NULL;
}

int gw_docs_owns(const gw_route_t *route)
{
    return route != NULL && route >= &s_routes[0] && route < &s_routes[NDOCS];
}

static const char *s_etag(size_t i)
{
    if (s_etags[i][0] == '\0') {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *p = (const unsigned char *)s_files[i].text; *p != '\0'; p++)
            h = (h ^ *p) * 0x100000001b3ULL;
        snprintf(s_etags[i], sizeof(s_etags[i]), "\"%016" PRIx64 "\"", h);
    }
    return s_etags[i];
}

/* 1 when the If-None-Match value (a list of tags, or "*") names etag, else 0 */
static int s_matches(const char *value, size_t len, const char *etag)
{
    size_t elen = strlen(etag), i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if ((end - start == 1 && value[start] == '*') || (end - start == elen && memcmp(value + start, etag, elen) == 0))
            return 1;
    }
    return 0;
}

void gw_docs_handle(gw_req_t *r)
{
    size_t i = (size_t)(r->route - s_routes);
    h2o_req_t *req = r->req;
    const char *etag = s_etag(i);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, "X-Content-Type-Options",
                          H2O_STRLIT("nosniff"));
    if (i == D_PAGE) /* the page loads its script, style and description from here, nothing else */
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, "Content-Security-Policy",
                              H2O_STRLIT("default-src 'self'; frame-ancestors 'none'"));
    ssize_t k = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (k >= 0 && s_matches(req->headers.entries[k].value.base, req->headers.entries[k].value.len, etag)) {
        gw_req_send(r, 304, NULL, 0);
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, s_files[i].type, strlen(s_files[i].type));
    gw_req_send(r, 200, s_files[i].text, strlen(s_files[i].text));
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_docs_test(void)
{
    static const struct {
        const char *path;
        int route; /* -1: none */
    } cases[] = {
        {"/api", D_PAGE},
        {"/api/", D_PAGE},
        {"/api/openapi.json", D_OPENAPI},
        {"/api/openapi.json/", D_OPENAPI},
        {"/api/api.js", D_JS},
        {"/api/api.css", D_CSS},
        {"/api//", -1},
        {"//api", -1},
        {"/API/", -1},
        {"/api/openapi.jso", -1},
        {"/api/openapi.json.gz", -1},
        {"/api/%6fpenapi.json", -1},
        {"/api/../api/", -1},
        {"/", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const gw_route_t *rt = gw_docs_match(cases[i].path, strlen(cases[i].path));
        GW_CHECK(cases[i].route < 0 ? rt == NULL : rt == &s_routes[cases[i].route]);
        GW_CHECK(rt == NULL || gw_docs_owns(rt));
    }
    GW_CHECK(!gw_docs_owns(gw_route_at(0)) && !gw_docs_owns(NULL));
    for (size_t i = 0; i < NDOCS; i++) {
        GW_CHECK(strlen(s_files[i].text) > 0);
        const char *etag = s_etag(i);
        GW_CHECK(strlen(etag) == 18 && etag[0] == '"' && etag[17] == '"');
        GW_CHECK(s_matches(etag, strlen(etag), etag) && s_matches("*", 1, etag));
    }
    GW_CHECK(strcmp(s_etag(D_PAGE), s_etag(D_OPENAPI)) != 0);
    char list[64];
    snprintf(list, sizeof(list), "\"x\" , %s", s_etag(D_JS));
    GW_CHECK(s_matches(list, strlen(list), s_etag(D_JS)) && !s_matches(list, strlen(list), s_etag(D_CSS)));
    GW_CHECK(!s_matches("", 0, s_etag(D_JS)) && !s_matches("W/", 2, s_etag(D_JS)));
}
