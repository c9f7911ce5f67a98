/* gw_route.c - routing table, path normalisation, query parsing (see gw_route.h). */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "gw_check.h"
#include "gw_route.h"

static const char *const s_add_edit[] = {"add", "edit", NULL};
static const char *const s_edit[] = {"edit", NULL};
static const char *const s_none[] = {NULL};

#define FRONT_CONF "xivo/configuration"
#define FRONT_IPBX "service/ipbx"
#define FRONT_CC "callcenter"

/* The table of spec §1.1 and PROTOCOL.md §8: one row per route. */
static const gw_route_t s_routes[] = {
    {FRONT_CONF, "manage/entity", XWS_SERVICE_CONFIG, "entity", 0, s_add_edit},
    {FRONT_CONF, "network/mail", XWS_SERVICE_CONFIG, "mail", 1, s_edit},
    {FRONT_CONF, "check", NULL, "check", 1, s_none},
    {FRONT_IPBX, "system_management/context", XWS_SERVICE_CONFIG, "context", 0, s_add_edit},
    {FRONT_IPBX, "pbx_settings/lines", "ipbx-lines", "lines", 0, s_add_edit},
    {FRONT_IPBX, "pbx_settings/users", "ipbx-users", "users", 0, s_add_edit},
    {FRONT_IPBX, "pbx_settings/groups", "ipbx-users", "groups", 0, s_add_edit},
    {FRONT_IPBX, "call_management/pickup", "ipbx-users", "pickup", 0, s_add_edit},
    {FRONT_IPBX, "pbx_settings/devices", "devices", "devices", 0, s_add_edit},
    {FRONT_IPBX, "system_management/extensions", "extensions", "extensions", 1, s_none},
    {FRONT_CC, "settings/queues", "ipbx-users", "queues", 0, s_add_edit},
};
#define NROUTES (sizeof(s_routes) / sizeof(s_routes[0]))

/* The fronts: the path components before the mode, and the ACL prefix they stand for. */
static const struct {
    const char *comps[3];
    size_t ncomps;
    const char *front;
} s_fronts[] = {
    {{"xivo", "configuration", "json.php"}, 3, FRONT_CONF},
    {{"service", "ipbx", "json.php"}, 3, FRONT_IPBX},
    {{"callcenter", "json.php", NULL}, 2, FRONT_CC},
};

#define MAX_COMPS 8     /* the longest route has 3 + 1 + 2 components */
#define MAX_COMP_LEN 64 /* longer components cannot match any route */

static int s_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes s[0..n) into out (room for n bytes); plus: 1 turns '+' into a space.
 * Returns the decoded length, or -1 on a bad escape or an escape that decodes to NUL.
 */
static long s_pct_decode(const char *s, size_t n, char *out, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+' && plus) {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            if ((hi = s_hexval(s[i + 1])) < 0 || (lo = s_hexval(s[i + 2])) < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0)
                return -1;
            i += 2;
        }
        out[o++] = (char)c;
    }
    return (long)o;
}

int gw_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

int gw_route_match(const char *path, size_t len, gw_match_t *m)
{
    assert(m != NULL);
    assert(path != NULL || len == 0);
    char store[MAX_COMPS][MAX_COMP_LEN];
    size_t lens[MAX_COMPS], n = 0;

    if (len == 0 || path[0] != '/')
        return -1;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++; /* collapse repeated slashes; a trailing slash leaves nothing behind */
        if (i == len)
            break;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t clen = i - start;
        if (n == MAX_COMPS || clen > MAX_COMP_LEN)
            return -1;
        long d = s_pct_decode(path + start, clen, store[n], 0);
        if (d <= 0 || store[n][0] == '.' || store[n][0] == '_')
            return -1;
        lens[n++] = (size_t)d;
    }

#define COMP_IS(k, s) (lens[k] == strlen(s) && memcmp(store[k], (s), lens[k]) == 0)
    for (size_t f = 0; f < sizeof(s_fronts) / sizeof(s_fronts[0]); f++) {
        size_t nf = s_fronts[f].ncomps, c;
        if (n < nf + 2)
            continue;
        for (c = 0; c < nf; c++)
            if (!COMP_IS(c, s_fronts[f].comps[c]))
                break;
        if (c != nf)
            continue;
        gw_mode_t mode;
        if (COMP_IS(nf, "restricted"))
            mode = GW_MODE_RESTRICTED;
        else if (COMP_IS(nf, "private"))
            mode = GW_MODE_PRIVATE;
        else
            return -1;
        /* the rest must spell the route's path, component by component */
        for (size_t r = 0; r < NROUTES; r++) {
            const gw_route_t *route = &s_routes[r];
            if (strcmp(route->front, s_fronts[f].front) != 0)
                continue;
            const char *p = route->path;
            size_t k = nf + 1;
            int ok = 1;
            while (*p != '\0' && ok) {
                const char *slash = strchr(p, '/');
                size_t plen = slash != NULL ? (size_t)(slash - p) : strlen(p);
                ok = k < n && lens[k] == plen && memcmp(store[k], p, plen) == 0;
                k++;
                p += plen + (slash != NULL);
            }
            if (!ok || k != n)
                continue;
            if (route->restricted_only && mode != GW_MODE_RESTRICTED)
                return -1;
            m->route = route;
            m->mode = mode;
            return 0;
        }
        return -1;
    }
#undef COMP_IS
    return -1;
}

int gw_route_reads_body(const gw_route_t *route, const char *act, size_t len)
{
    assert(route != NULL);
    for (const char *const *a = route->body_acts; *a != NULL; a++)
        if (strlen(*a) == len && memcmp(*a, act, len) == 0)
            return 1;
    return 0;
}

const char *gw_route_acl_path(const gw_route_t *route, char *buf, size_t size)
{
    assert(route != NULL && buf != NULL && size > 0);
    snprintf(buf, size, "%s/%s", route->front, route->path);
    return buf;
}

size_t gw_route_count(void)
{
    return NROUTES;
}

int gw_route_services(const char **out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        const char *svc = s_routes[i].service;
        if (svc == NULL)
            continue;
        size_t k = 0;
        while (k < n && strcmp(out[k], svc) != 0)
            k++;
        if (k < n)
            continue;
        if (n + 1 >= size)
            return -1;
        out[n++] = svc;
    }
    if (size == 0)
        return -1;
    out[n] = NULL;
    return (int)n;
}

const gw_route_t *gw_route_at(size_t i)
{
    assert(i < NROUTES);
    return &s_routes[i];
}

/* ---- query ------------------------------------------------------------------------------------ */

size_t gw_query_max_params(const char *q, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += q[i] == '&';
    return n;
}

static int s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static xws_slice_t s_trim(const char *p, size_t n)
{
    while (n > 0 && s_is_space(*p))
        p++, n--;
    while (n > 0 && s_is_space(p[n - 1]))
        n--;
    return (xws_slice_t){p, n};
}

int gw_query_get(const xws_kv_t *kv, size_t nkv, const char *name, xws_slice_t *val)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < nkv; i++)
        if (kv[i].key.len == nlen && memcmp(kv[i].key.ptr, name, nlen) == 0) {
            *val = kv[i].val;
            return 0;
        }
    return -1;
}

int gw_query_parse(const char *q, size_t len, char *buf, xws_kv_t *kv, size_t *nkv, xws_slice_t *bad)
{
    assert(nkv != NULL && bad != NULL);
    assert(len == 0 || (q != NULL && buf != NULL && kv != NULL));
    size_t o = 0, n = 0, i = 0;
    *nkv = 0;
    *bad = (xws_slice_t){"", 0};
    size_t npairs = 0;
    for (size_t k = 0; k < len; k++)
        if (q[k] != '&' && (k == 0 || q[k - 1] == '&') && ++npairs > GW_QUERY_MAX_PARAMS)
            return GW_QUERY_TOO_MANY;
    while (i <= len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        const char *pair = q + start;
        size_t plen = i - start;
        i++; /* skip '&' (or step past the end) */
        if (plen == 0)
            continue;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;
        char *kout = buf + o;
        long kd = s_pct_decode(pair, klen, kout, 1);
        if (kd < 0)
            return GW_QUERY_BAD; /* the name itself is unreadable: *bad stays "" */
        xws_slice_t key = s_trim(kout, (size_t)kd);
        if (!gw_utf8_valid(key.ptr, key.len))
            return GW_QUERY_BAD;
        o += (size_t)kd;
        char *vout = buf + o;
        long vd = 0;
        if (eq != NULL)
            vd = s_pct_decode(eq + 1, plen - klen - 1, vout, 1);
        if (vd < 0 || !gw_utf8_valid(vout, (size_t)vd)) {
            *bad = key;
            return GW_QUERY_BAD;
        }
        o += (size_t)vd;
        if (key.len == 0)
            continue;
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = kv[k].key.len == key.len && memcmp(kv[k].key.ptr, key.ptr, key.len) == 0;
        if (dup)
            continue; /* first occurrence wins */
        kv[n].key = key;
        kv[n].val = s_trim(vout, (size_t)vd);
        n++;
    }
    *nkv = n;
    return GW_QUERY_OK;
}

/* ---- self-test -------------------------------------------------------------------------------- */

static int s_match(const char *path, const char *want_path, gw_mode_t want_mode)
{
    gw_match_t m;
    if (gw_route_match(path, strlen(path), &m) != 0)
        return want_path == NULL;
    return want_path != NULL && strcmp(m.route->path, want_path) == 0 && m.mode == want_mode;
}

static int s_query(const char *q, const char *name, const char *want)
{
    size_t len = strlen(q), n;
    char buf[256];
    xws_kv_t kv[32];
    xws_slice_t bad, v;
    GW_CHECK(len < sizeof(buf) && gw_query_max_params(q, len) <= 32);
    if (gw_query_parse(q, len, buf, kv, &n, &bad) != GW_QUERY_OK)
        return 0;
    if (gw_query_get(kv, n, name, &v) != 0)
        return want == NULL;
    return want != NULL && v.len == strlen(want) && memcmp(v.ptr, want, v.len) == 0;
}

static int s_query_bad(const char *q, const char *want_bad)
{
    size_t len = strlen(q), n;
    char buf[256];
    xws_kv_t kv[32];
    xws_slice_t bad;
    if (gw_query_parse(q, len, buf, kv, &n, &bad) != GW_QUERY_BAD)
        return 0;
    return bad.len == strlen(want_bad) && memcmp(bad.ptr, want_bad, bad.len) == 0;
}

void gw_route_test(void)
{
    const gw_mode_t R = GW_MODE_RESTRICTED, P = GW_MODE_PRIVATE;
    /* every route of the table, both modes */
    GW_CHECK(s_match("/xivo/configuration/json.php/restricted/manage/entity", "manage/entity", R));
    GW_CHECK(s_match("/xivo/configuration/json.php/private/manage/entity/", "manage/entity", P));
    GW_CHECK(s_match("/xivo/configuration/json.php/restricted/network/mail/", "network/mail", R));
    GW_CHECK(s_match("/xivo/configuration/json.php/private/network/mail", NULL, P));
    GW_CHECK(s_match("/xivo/configuration/json.php/restricted/check/", "check", R));
    GW_CHECK(s_match("/xivo/configuration/json.php/restricted/check", "check", R));
    GW_CHECK(s_match("/xivo/configuration/json.php/private/check", NULL, P));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/lines", "pbx_settings/lines", R));
    GW_CHECK(s_match("/service/ipbx/json.php/private/pbx_settings/users/", "pbx_settings/users", P));
    GW_CHECK(s_match("/service/ipbx/json.php/private/pbx_settings/devices", "pbx_settings/devices", P));
    GW_CHECK(s_match("/service/ipbx/json.php/private/pbx_settings/groups", "pbx_settings/groups", P));
    GW_CHECK(s_match("/service/ipbx/json.php/private/call_management/pickup", "call_management/pickup", P));
    GW_CHECK(s_match("/service/ipbx/json.php/private/system_management/context", "system_management/context", P));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/system_management/extensions", "system_management/extensions", R));
    GW_CHECK(s_match("/service/ipbx/json.php/private/system_management/extensions", NULL, P));
    GW_CHECK(s_match("/callcenter/json.php/restricted/settings/queues", "settings/queues", R));
    GW_CHECK(s_match("/callcenter/json.php/private/settings/queues/", "settings/queues", P));
    /* slashes collapse, percent-decoding before comparison */
    GW_CHECK(s_match("//service///ipbx/json.php//restricted/pbx_settings//users//", "pbx_settings/users", R));
    GW_CHECK(s_match("/service/ipbx/json%2Ephp/restricted/pbx_settings/%75sers", "pbx_settings/users", R));
    /* misses */
    GW_CHECK(s_match("", NULL, R));
    GW_CHECK(s_match("service/ipbx/json.php/restricted/pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/users/x", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/./pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/x/../pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/_pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/.users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/%2Eusers", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings%2Fusers", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/users%00", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/user%zz", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/pbx_settings/users%", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/Restricted/pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/public/pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/service/ipbx/json.php/restricted/manage/entity", NULL, R));
    GW_CHECK(s_match("/xivo/configuration/json.php/restricted/pbx_settings/users", NULL, R));
    GW_CHECK(s_match("/callcenter/json.php/restricted/settings/queues/a/b/c/d/e/f/g", NULL, R));
    GW_CHECK(s_match("/", NULL, R));

    /* body acts and ACL paths */
    gw_match_t m;
    char acl[128];
    GW_CHECK(gw_route_match("/network/mail", 13, &m) == -1);
    GW_CHECK(gw_route_match("/xivo/configuration/json.php/restricted/network/mail", 52, &m) == 0);
    GW_CHECK(gw_route_reads_body(m.route, "edit", 4) && !gw_route_reads_body(m.route, "add", 3));
    GW_CHECK(strcmp(gw_route_acl_path(m.route, acl, sizeof(acl)), "xivo/configuration/network/mail") == 0);
    GW_CHECK(gw_route_count() == 11 && gw_route_at(0) != NULL);
    const char *svcs[8];
    GW_CHECK(gw_route_services(svcs, 8) == 5 && svcs[5] == NULL);
    GW_CHECK(strcmp(svcs[0], XWS_SERVICE_CONFIG) == 0 && strcmp(svcs[1], "ipbx-lines") == 0 && strcmp(svcs[2], "ipbx-users") == 0);
    GW_CHECK(strcmp(svcs[3], "devices") == 0 && strcmp(svcs[4], "extensions") == 0);
    GW_CHECK(gw_route_services(svcs, 5) == -1 && gw_route_services(svcs, 0) == -1);
    for (size_t i = 0; i < gw_route_count(); i++) {
        const gw_route_t *r = gw_route_at(i);
        GW_CHECK(r->service == NULL || strlen(r->service) <= XWS_MAX_NAME);
        GW_CHECK(!gw_route_reads_body(r, "list", 4) && !gw_route_reads_body(r, "", 0));
    }

    /* query */
    GW_CHECK(s_query("act=list&id=3", "act", "list"));
    GW_CHECK(s_query("act=list&id=3", "id", "3"));
    GW_CHECK(s_query("name=J%C3%B6rg+M", "name", "J\xc3\xb6rg M"));
    GW_CHECK(s_query("search=+%20bob%09+", "search", "bob"));
    GW_CHECK(s_query("id=1&id=2", "id", "1"));
    GW_CHECK(s_query("flag&x=1", "flag", ""));
    GW_CHECK(s_query("empty=&x=1", "empty", ""));
    GW_CHECK(s_query("&&=x&a=b&", "a", "b"));
    GW_CHECK(s_query("&&=x&a=b&", "", NULL));
    GW_CHECK(s_query("a=b=c", "a", "b=c"));
    GW_CHECK(s_query("%61ct=view", "act", "view"));
    GW_CHECK(s_query("", "act", NULL));
    GW_CHECK(s_query_bad("id=%zz", "id"));
    GW_CHECK(s_query_bad("act=list&id=%4", "id"));
    GW_CHECK(s_query_bad("id=%", "id"));
    GW_CHECK(s_query_bad("search=%00", "search"));
    GW_CHECK(s_query_bad("search=%C3", "search"));
    GW_CHECK(s_query_bad("%zz=1", ""));
    GW_CHECK(s_query_bad("%ff=1", ""));

    /* at most GW_QUERY_MAX_PARAMS non-empty pairs (empty pairs between '&' are free) */
    {
        char q[2048];
        size_t o = 0;
        for (int i = 0; i < GW_QUERY_MAX_PARAMS; i++)
            o += (size_t)snprintf(q + o, sizeof(q) - o, "%sp%d=%d&&", i ? "&" : "", i, i);
        char buf[sizeof(q)];
        xws_kv_t kv[4 * GW_QUERY_MAX_PARAMS];
        size_t n = 0;
        xws_slice_t bad;
        GW_CHECK(gw_query_max_params(q, o) <= 4 * GW_QUERY_MAX_PARAMS);
        GW_CHECK(gw_query_parse(q, o, buf, kv, &n, &bad) == GW_QUERY_OK && n == GW_QUERY_MAX_PARAMS);
        o += (size_t)snprintf(q + o, sizeof(q) - o, "x");
        GW_CHECK(gw_query_parse(q, o, buf, kv, &n, &bad) == GW_QUERY_TOO_MANY && n == 0 && bad.len == 0);
        memset(q, '&', 500);
        GW_CHECK(gw_query_parse(q, 500, buf, kv, &n, &bad) == GW_QUERY_OK && n == 0);
        for (int i = 0; i < 202; i += 2)
            q[i] = 'a'; /* 101 times "a" (duplicates count) */
        GW_CHECK(gw_query_parse(q, 500, buf, kv, &n, &bad) == GW_QUERY_TOO_MANY);
        GW_CHECK(gw_query_parse(q, 200, buf, kv, &n, &bad) == GW_QUERY_OK && n == 1);
    }

    /* utf-8 */
    GW_CHECK(gw_utf8_valid("", 0) && gw_utf8_valid("a\xc3\xa9", 3) && gw_utf8_valid("\xf0\x9f\x98\x80", 4));
    GW_CHECK(!gw_utf8_valid("\xc0\x80", 2) && !gw_utf8_valid("\xed\xa0\x80", 3) && !gw_utf8_valid("\xe0\x80\x80", 3));
    GW_CHECK(!gw_utf8_valid("\xf4\x90\x80\x80", 4) && !gw_utf8_valid("\xe2\x82", 2));
}
