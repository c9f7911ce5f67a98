/*
 * gw_guard - checks of a request's HTTP framing and of its browser context, made before anything
 * else looks at the request, and the JSON form of the answers h2o writes by itself on a request it
 * cannot parse.
 *
 * - Framing (RFC 9112 §6.1, §6.3, §3.2): an HTTP/1.x request with both Transfer-Encoding and
 *   Content-Length, with two Content-Length or two Transfer-Encoding headers, with two Host headers,
 *   or an HTTP/1.1 request with no Host; and a request of any protocol with two Authorization
 *   headers. h2o 2.2.5 keeps none of Host, Content-Length and Transfer-Encoding in req->headers,
 *   so the HTTP/1.x checks read the request's header block where h2o parsed it: the start of the
 *   connection's input buffer, which h2o consumes only after the answer.
 * - Browser context of the private mode: a request with an Origin other than the gateway's own
 *   (https://<Host>) or with Sec-Fetch-Site cross-site or same-site comes from a web page, not
 *   from a script on the host.
 * - h2o's own answer to a request it cannot parse (control bytes, more than 100 header fields, a
 *   request head above 400 KiB) is a fixed plain-text 400 written straight to the socket, past
 *   every filter. This module defines h2o_socket_write, which the executable exports in place of
 *   libh2o's (libh2o calls it through its PLT): it replaces exactly that fixed answer by a JSON
 *   400, or by a 414 when the request line alone is longer than h2o reads a head, both with the version
 *   and HSTS headers; every other write goes to libh2o's function unchanged.
 *
 * Stateless apart from the two answers gw_guard_init builds; called by gw_http.
 */
#ifndef GW_GUARD_H
#define GW_GUARD_H

#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>

/* The value of the version header on every answer. */
#define GW_WS_VERSION "1.0"

/* The value of Strict-Transport-Security on every answer (one year). */
#define GW_HSTS "max-age=31536000"

/* A refused request: the header at fault (the error's field) and the sentence of the answer. */
typedef struct {
    const char *field;
    const char *message;
} gw_guard_fault_t;

/* Builds the JSON answers that replace h2o's own 400 (until then h2o's goes out unchanged). */
void gw_guard_init(void);

/*
 * Checks the framing of req. Returns 0 when it is sound; -1 with *fault set otherwise: the caller
 * answers 400 and closes the connection (req->http1_is_persistent = 0), so that no byte after
 * this request's head is read as another request.
 */
int gw_guard_framing(h2o_req_t *req, gw_guard_fault_t *fault);

/*
 * Checks that req, sent to the private mode, does not come from a web page: returns 0 when it
 * carries no Origin or the gateway's own, and no Sec-Fetch-Site other than same-origin or none;
 * -1 with *fault set otherwise (the caller answers 403).
 */
int gw_guard_private_origin(h2o_req_t *req, gw_guard_fault_t *fault);

/* Self-test: silent on success, aborts on failure. */
void gw_guard_test(void);

#endif
