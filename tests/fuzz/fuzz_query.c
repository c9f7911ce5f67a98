/*
 * fuzz_query.c - libFuzzer target: the gateway's request-target handling, the bytes every HTTPS
 * client controls before authentication. The input is a request target ("/path?query#frag"):
 * split, the path matched against the routing table, the query parsed into parameters. Every
 * accepted result must hold together (slices inside their buffers, one act at most).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gw_msg.h"
#include "gw_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_inside(xws_slice_t s, const char *buf, size_t len)
{
    if (s.len > 0 && (s.ptr < buf || s.ptr + s.len > buf + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *target = (const char *)data;
    xws_slice_t path, query;
    gw_msg_split_target(target, size, &path, &query);
    s_inside(path, target, size);
    s_inside(query, target, size);

    gw_match_t m;
    if (gw_route_match(path.ptr, path.len, &m) == 0) {
        char acl[256];
        if (m.route == NULL || strlen(gw_route_acl_path(m.route, acl, sizeof(acl))) >= sizeof(acl))
            abort();
        gw_route_reads_body(m.route, query.ptr, query.len);
    }

    size_t max = gw_query_max_params(query.ptr, query.len);
    char *buf = malloc(query.len + 1);
    xws_kv_t *kv = calloc(max + 1, sizeof(*kv));
    if (buf == NULL || kv == NULL)
        abort();
    size_t n = 0;
    xws_slice_t bad = {NULL, 0};
    int rc = gw_query_parse(query.ptr, query.len, buf, kv, &n, &bad);
    if (rc == GW_QUERY_OK) {
        if (n > max)
            abort();
        for (size_t i = 0; i < n; i++) {
            s_inside(kv[i].key, buf, query.len + 1);
            s_inside(kv[i].val, buf, query.len + 1);
        }
        xws_slice_t act;
        gw_query_get(kv, n, "act", &act);
    }
    free(kv);
    free(buf);
    return 0;
}
