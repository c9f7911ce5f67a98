/* gw_msg.c - the pure pieces of HTTP messages (see gw_msg.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "gw_check.h"
#include "gw_msg.h"
#include "gw_route.h"

const char *gw_msg_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 200   ? "Informational"
               : status < 300 ? "Success"
               : status < 400 ? "Redirection"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

static xws_slice_t s_trim(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return (xws_slice_t){p, n};
}

static xws_slice_t s_weak(xws_slice_t t)
{
    if (t.len >= 2 && t.ptr[0] == 'W' && t.ptr[1] == '/')
        t.ptr += 2, t.len -= 2;
    return t;
}

int gw_msg_inm_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len)
{
    if (inm == NULL || etag == NULL || etag_len == 0)
        return 0;
    xws_slice_t e = s_weak(s_trim(etag, etag_len));
    size_t i = 0;
    while (i <= inm_len) {
        size_t start = i;
        while (i < inm_len && inm[i] != ',')
            i++;
        xws_slice_t t = s_trim(inm + start, i - start);
        i++;
        if (t.len == 1 && t.ptr[0] == '*')
            return 1;
        t = s_weak(t);
        if (t.len > 0 && t.len == e.len && memcmp(t.ptr, e.ptr, e.len) == 0)
            return 1;
    }
    return 0;
}

/* Appends s as a JSON string (xws_json_string): 0, or -1 when s is not UTF-8. */
static int s_json_str(xws_buf_t *out, const char *s)
{
    return xws_json_string(out, s, strlen(s));
}

/*
 * The JSON body of PROTOCOL.md §9 (see gw_msg.h), {"error":code,"field":field,"message":message}, into out; when
 * a text is not UTF-8, the same without the details ("request rejected").
 */
void gw_msg_error_json(xws_buf_t *out, const char *code, const char *field, const char *message)
{
    xws_buf_adds(out, "{\"error\":");
    int rc = s_json_str(out, code);
    if (rc == 0) {
        xws_buf_adds(out, ",\"field\":");
        rc = s_json_str(out, field);
    }
    if (rc == 0) {
        xws_buf_adds(out, ",\"message\":");
        rc = s_json_str(out, message);
    }
    if (rc == 0) {
        xws_buf_add(out, "}", 1);
        return;
    }
    xws_buf_reset(out);
    xws_buf_addf(out, "{\"error\":\"%s\",\"field\":\"\",\"message\":\"request rejected\"}", code);
}

void gw_msg_hex_md5(const char *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
        abort();
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

size_t gw_msg_entity_limit(size_t max_body)
{
    size_t a = max_body * 4, b = max_body + 1024 * 1024;
    return a > b ? a : b;
}

static int s_scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

void gw_msg_split_target(const char *target, size_t len, xws_slice_t *path, xws_slice_t *query)
{
    const char *t = target, *end = target + len;
    if (t < end && *t != '/') { /* absolute-form: scheme "://" authority, then the path */
        const char *p = t;
        while (p < end && s_scheme_char(*p))
            p++;
        if (p > t && end - p >= 3 && memcmp(p, "://", 3) == 0) {
            for (p += 3; p < end && *p != '/' && *p != '?' && *p != '#';)
                p++;
            t = p;
        }
    }
    const char *hash = memchr(t, '#', (size_t)(end - t));
    if (hash != NULL)
        end = hash;
    const char *q = memchr(t, '?', (size_t)(end - t));
    if (q != NULL) {
        *path = (xws_slice_t){t, (size_t)(q - t)};
        *query = (xws_slice_t){q + 1, (size_t)(end - q - 1)};
    } else {
        *path = (xws_slice_t){t, (size_t)(end - t)};
        *query = (xws_slice_t){"", 0};
    }
}

/* ---- self-test -------------------------------------------------------------------------------- */

/* The error body as it was made before s_error_json: packed as msgpack and rendered by the proto library. */
static void s_error_json_reference(xws_buf_t *out, const char *code, const char *field, const char *message)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "error", 5);
    msgpack_pack_str_with_body(&pk, code, strlen(code));
    msgpack_pack_str_with_body(&pk, "field", 5);
    msgpack_pack_str_with_body(&pk, field, strlen(field));
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, message, strlen(message));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS || xws_msgpack_to_json(&u.data, out) != 0) {
        xws_buf_reset(out);
        xws_buf_addf(out, "{\"error\":\"%s\",\"field\":\"\",\"message\":\"request rejected\"}", code);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

void gw_msg_test(void)
{
    GW_CHECK(strcmp(gw_msg_reason(200), "OK") == 0 && strcmp(gw_msg_reason(504), "Gateway Timeout") == 0);
    GW_CHECK(strcmp(gw_msg_reason(418), "Client Error") == 0);
    const char *etag = "\"v42\"";
    GW_CHECK(gw_msg_inm_matches("\"v42\"", 5, etag, 5));
    GW_CHECK(gw_msg_inm_matches("W/\"v42\"", 7, etag, 5));
    GW_CHECK(gw_msg_inm_matches("\"a\", \"v42\"", 10, etag, 5));
    GW_CHECK(gw_msg_inm_matches("*", 1, etag, 5));
    GW_CHECK(!gw_msg_inm_matches("\"v4\"", 4, etag, 5));
    GW_CHECK(!gw_msg_inm_matches("", 0, etag, 5));
    GW_CHECK(!gw_msg_inm_matches("\"v42\"", 5, "", 0));
    char md5[33];
    gw_msg_hex_md5("", 0, md5);
    GW_CHECK(strcmp(md5, "d41d8cd98f00b204e9800998ecf8427e") == 0);

    static const char *const texts[] = {"",     "plain",        "quote \" and \\", "\b\f\n\r\t\x01\x1f\x7f", "/é€\xf0\x9f\x98\x80",
                                        "\xc3", "\xed\xa0\x80", "\xc0\xaf",        "\xf4\x90\x80\x80",       "ok"};
    size_t ntexts = sizeof(texts) / sizeof(texts[0]);
    for (size_t i = 0; i < ntexts; i++)
        for (size_t j = 0; j < ntexts; j++) {
            xws_buf_t got, want;
            xws_buf_init(&got);
            xws_buf_init(&want);
            gw_msg_error_json(&got, "invalid_value", texts[i], texts[j]);
            s_error_json_reference(&want, "invalid_value", texts[i], texts[j]);
            GW_CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
            xws_buf_dispose(&got);
            xws_buf_dispose(&want);
        }

    GW_CHECK(gw_msg_entity_limit(1048576) == 4 * 1048576 && gw_msg_entity_limit(1000) == 1000 + 1048576);
    GW_CHECK(gw_msg_entity_limit(0) == 1048576);
    static const struct {
        const char *target, *path, *query;
    } targets[] = {
        {"/a/b?x=1", "/a/b", "x=1"},
        {"/a/b", "/a/b", ""},
        {"/a/b#frag", "/a/b", ""},
        {"/a/b?x=1#frag?y", "/a/b", "x=1"},
        {"/a/b#f?x=1", "/a/b", ""},
        {"https://host:8443/a/b?x=1", "/a/b", "x=1"},
        {"HTTP://[::1]/a", "/a", ""},
        {"https://host", "", ""},
        {"https://host?x", "", "x"},
        {"http:/a", "http:/a", ""}, /* no authority: left as it is (a 404) */
        {"*", "*", ""},
        {"", "", ""},
        {"/?", "/", ""},
    };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        xws_slice_t p, q;
        gw_msg_split_target(targets[i].target, strlen(targets[i].target), &p, &q);
        GW_CHECK(p.len == strlen(targets[i].path) && memcmp(p.ptr, targets[i].path, p.len) == 0);
        GW_CHECK(q.len == strlen(targets[i].query) && memcmp(q.ptr, targets[i].query, q.len) == 0);
    }
}
