/* gw_guard.c - request framing, the private mode's browser check, h2o's own 400 (see gw_guard.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xws/log.h"
#include "gw_check.h"
#include "gw_guard.h"

/* ---- framing ------------------------------------------------------------------------------------ */

/* The headers h2o 2.2.5 takes out of an HTTP/1.x request, counted in its raw head. */
enum { H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_COUNT };

static const struct {
    const char *lower; /* the name as compared */
    const char *field; /* the name in the answer */
    unsigned max;      /* occurrences allowed */
    unsigned min11;    /* occurrences required of an HTTP/1.1 request */
    const char *message;
} s_counted[H_COUNT] = {
    [H_HOST] = {"host", "Host", 1, 1, "an HTTP/1.1 request needs exactly one Host header"},
    [H_CONTENT_LENGTH] = {"content-length", "Content-Length", 1, 0, "the request has more than one Content-Length header"},
    [H_TRANSFER_ENCODING] = {"transfer-encoding", "Transfer-Encoding", 1, 0,
                             "the request has more than one Transfer-Encoding header"},
};

/*
 * The head (request line and header lines, up to the empty line) of the HTTP/1.x request req in
 * the bytes p[0..n), or {NULL, 0} when they do not start with req's request line and a complete
 * head. Leading empty lines are skipped, as h2o's parser does.
 */
static h2o_iovec_t s_find_head(h2o_req_t *req, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    size_t mlen = req->input.method.len;
    if ((size_t)(end - p) <= mlen || memcmp(p, req->input.method.base, mlen) != 0 || p[mlen] != ' ')
        return h2o_iovec_init(NULL, 0);
    for (const char *q = p; q < end; q++) {
        if (*q != '\n')
            continue;
        if ((q + 1 < end && q[1] == '\n') || (q + 2 < end && q[1] == '\r' && q[2] == '\n'))
            return h2o_iovec_init(p, (size_t)(q + 1 - p));
    }
    return h2o_iovec_init(NULL, 0);
}

/* Counts the s_counted headers of the head (request line first) into counts. */
static void s_count_headers(h2o_iovec_t head, unsigned counts[H_COUNT])
{
    memset(counts, 0, sizeof(unsigned) * H_COUNT);
    const char *p = head.base, *end = head.base + head.len;
    const char *nl = memchr(p, '\n', head.len);
    p = nl != NULL ? nl + 1 : end; /* past the request line */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && *p != ' ' && *p != '\t') { /* a folded line continues the previous value */
            for (int h = 0; h < H_COUNT; h++)
                if (h2o_lcstris(p, (size_t)(colon - p), s_counted[h].lower, strlen(s_counted[h].lower)))
                    counts[h]++;
        }
        p = eol + 1;
    }
}

/* The framing rules over the counted headers of an HTTP/1.x request of version (0x100 or 0x101). */
static int s_framing_rules(const unsigned counts[H_COUNT], int version, gw_guard_fault_t *fault)
{
    if (counts[H_TRANSFER_ENCODING] > 0 && counts[H_CONTENT_LENGTH] > 0) {
        *fault = (gw_guard_fault_t){"Transfer-Encoding", "the request has both Transfer-Encoding and Content-Length"};
        return -1;
    }
    for (int h = 0; h < H_COUNT; h++) {
        unsigned min = version >= 0x101 ? s_counted[h].min11 : 0;
        if (counts[h] > s_counted[h].max || counts[h] < min) {
            *fault = (gw_guard_fault_t){s_counted[h].field, s_counted[h].message};
            return -1;
        }
    }
    return 0;
}

int gw_guard_framing(h2o_req_t *req, gw_guard_fault_t *fault)
{
    ssize_t first = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (first != -1 && h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, first) != -1) {
        *fault = (gw_guard_fault_t){"Authorization", "the request has more than one Authorization header"};
        return -1;
    }
    if (req->version >= 0x200)
        return 0; /* HTTP/2 frames the body itself; h2o refuses its content-length and transfer-encoding abuses */
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    h2o_iovec_t head =
        sock != NULL && sock->input != NULL ? s_find_head(req, sock->input->bytes, sock->input->size) : h2o_iovec_init(NULL, 0);
    if (head.base == NULL) { /* cannot happen with h2o 2.2.5; refuse rather than serve unchecked */
        *fault = (gw_guard_fault_t){"", "the request head could not be checked"};
        return -1;
    }
    unsigned counts[H_COUNT];
    s_count_headers(head, counts);
    return s_framing_rules(counts, req->version, fault);
}

/* ---- the private mode and browsers --------------------------------------------------------------- */

int gw_guard_private_origin(h2o_req_t *req, gw_guard_fault_t *fault)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i != -1) {
        h2o_iovec_t o = req->headers.entries[i].value, host = req->input.authority;
        int own = o.len == sizeof("https://") - 1 + host.len && h2o_lcstris(o.base, 8, H2O_STRLIT("https://")) &&
                  h2o_lcstris(o.base + 8, host.len, host.base, host.len);
        if (!own) {
            *fault = (gw_guard_fault_t){"Origin", "the private mode serves programs on this host, not web pages: the request "
                                                  "carries the Origin of another site"};
            return -1;
        }
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("sec-fetch-site"), -1);
    if (i != -1) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (!h2o_lcstris(v.base, v.len, H2O_STRLIT("same-origin")) && !h2o_lcstris(v.base, v.len, H2O_STRLIT("none"))) {
            *fault = (gw_guard_fault_t){"Sec-Fetch-Site", "the private mode serves programs on this host, not web pages: the "
                                                          "request was sent by a page of another site"};
            return -1;
        }
    }
    return 0;
}

/* ---- h2o's own 400 ------------------------------------------------------------------------------- */

/* What libh2o 2.2.5 writes on a request it cannot parse (lib/core/http1.c), byte for byte. */
static const char s_h2o_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
                                "Content-Length: 11\r\n\r\nBad Request";

static char s_answer_400[512], s_answer_414[512];
static h2o_iovec_t s_iov_400, s_iov_414;

/* Builds a complete HTTP/1.1 answer into buf (static storage: the socket may write it later). */
static h2o_iovec_t s_build(char *buf, size_t size, const char *status, const char *body)
{
    int n = snprintf(buf, size,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %zu\r\n"
                     "X-XIVO-WS-VERSION: " GW_WS_VERSION "\r\nCache-Control: no-store\r\nStrict-Transport-Security: " GW_HSTS
                     "\r\n\r\n%s",
                     status, strlen(body), body);
    if (n < 0 || (size_t)n >= size)
        abort(); /* the answers are constants that fit */
    return h2o_iovec_init(buf, (size_t)n);
}

void gw_guard_init(void)
{
    s_iov_400 = s_build(s_answer_400, sizeof(s_answer_400), "400 Bad Request",
                        "{\"error\":\"invalid_value\",\"field\":\"\",\"message\":\"the request could not be parsed (control "
                        "characters, more than 100 header fields or a malformed request line or header)\"}");
    s_iov_414 = s_build(s_answer_414, sizeof(s_answer_414), "414 URI Too Long",
                        "{\"error\":\"too_long\",\"field\":\"\",\"message\":\"the query string is too long\"}");
}

/* 1 when the connection's input holds an unfinished request line as long as h2o reads a request head. */
static int s_request_line_too_long(h2o_socket_t *sock)
{
    if (sock->input == NULL || sock->input->size < H2O_MAX_REQLEN)
        return 0;
    return memchr(sock->input->bytes, '\n', H2O_MAX_REQLEN) == NULL;
}

typedef void (*s_socket_write_fn)(h2o_socket_t *, h2o_iovec_t *, size_t, h2o_socket_cb);

/* The interposed h2o_socket_write (see gw_guard.h): libh2o's, except for its fixed 400. */
void h2o_socket_write(h2o_socket_t *sock, h2o_iovec_t *bufs, size_t bufcnt, h2o_socket_cb cb)
{
    static s_socket_write_fn next;
    if (next == NULL) {
        next = (s_socket_write_fn)dlsym(RTLD_NEXT, "h2o_socket_write");
        if (next == NULL) {
            xws_log(XWS_LOG_WARN, "h2o_socket_write not found in libh2o: %s", dlerror());
            abort();
        }
    }
    if (bufcnt == 1 && bufs[0].len == sizeof(s_h2o_400) - 1 && s_iov_400.base != NULL &&
        memcmp(bufs[0].base, s_h2o_400, sizeof(s_h2o_400) - 1) == 0) {
        static h2o_iovec_t mine; /* static: h2o may read the vector after this call returns */
        mine = s_request_line_too_long(sock) ? s_iov_414 : s_iov_400;
        next(sock, &mine, 1, cb);
        return;
    }
    next(sock, bufs, bufcnt, cb);
}

/* ---- self-test ----------------------------------------------------------------------------------- */

static int s_check_head(const char *raw, int version, const char **field)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    const char *sp = strchr(raw + strspn(raw, "\r\n"), ' ');
    req.input.method = h2o_iovec_init(raw + strspn(raw, "\r\n"), (size_t)(sp - raw - strspn(raw, "\r\n")));
    h2o_iovec_t head = s_find_head(&req, raw, strlen(raw));
    if (head.base == NULL) {
        *field = "(no head)";
        return -1;
    }
    unsigned counts[H_COUNT];
    s_count_headers(head, counts);
    gw_guard_fault_t fault = {"", ""};
    int rc = s_framing_rules(counts, version, &fault);
    *field = fault.field;
    return rc;
}

void gw_guard_test(void)
{
    static const struct {
        const char *raw;
        int version;
        const char *field; /* NULL: sound */
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0x101, NULL},
        {"\r\nGET / HTTP/1.1\nhost: a\n\nGET /next HTTP/1.1\r\n\r\n", 0x101, NULL},
        {"GET / HTTP/1.0\r\n\r\n", 0x100, NULL},
        {"GET / HTTP/1.1\r\n\r\n", 0x101, "Host"},
        {"GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 0x100, "Host"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\ncontent-length: 5\r\n\r\n{}abc", 0x101, "Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0x101,
         "Transfer-Encoding"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0x101,
         "Transfer-Encoding"},
        {"POST / HTTP/1.1\r\nHost: a\r\nX-Note: Host: b\r\n folded: Content-Length: 3\r\n\r\n", 0x101, NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\n", 0x101, "(no head)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *field = NULL;
        int rc = s_check_head(cases[i].raw, cases[i].version, &field);
        if (cases[i].field == NULL)
            GW_CHECK(rc == 0);
        else
            GW_CHECK(rc == -1 && strcmp(field, cases[i].field) == 0);
    }
    gw_guard_init();
    GW_CHECK(strstr(s_answer_400, "X-XIVO-WS-VERSION: " GW_WS_VERSION "\r\n") != NULL);
    GW_CHECK(strncmp(s_answer_414, "HTTP/1.1 414 ", 13) == 0);
}
