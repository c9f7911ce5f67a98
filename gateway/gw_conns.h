/*
 * gw_conns - the accepted HTTPS connections, and the bounds h2o 2.2.5 does not put on HTTP/2:
 *
 * - Time to a request: h2o closes an HTTP/1.1 connection that takes more than its request
 *   timeout to send a request's head and body, but on HTTP/2 any frame (a PING, one byte of
 *   DATA) restarts its idle timer. A connection with no request in the gateway's hands (none
 *   being served or written) and none started or ended for read_timeout_ms is closed, whatever
 *   its protocol: this bounds the time to receive a request's headers and body on HTTP/2 as h2o
 *   does on HTTP/1.1 (with the same timeout), and closes idle connections that ping. A TLS
 *   handshake counts as time without a request.
 * - Rapid reset (CVE-2023-44487): a request the client cancels before its answer is counted
 *   against its connection; past GW_CONNS_MAX_RESETS within GW_CONNS_RESET_WINDOW_MS the
 *   connection is closed, and the requests it still sends are answered 503 at once (never sent
 *   to a worker). A cancelled request's job is withdrawn by its owner (gw_http) before it leaves.
 *
 * Closing an HTTP/2 connection queues a GOAWAY frame (ENHANCE_YOUR_CALM after rapid reset,
 * NO_ERROR after the time bound; h2o 2.2.5 has no call for it, so it is built with the functions
 * of h2o/http2_internal.h as h2o does for its own protocol errors) and shuts the reading side
 * down; other connections are shut down both ways. Either way h2o reads the end of the stream and
 * closes the connection itself (after writing what is queued), freeing its requests. The
 * checks run from gw_conns_tick. The module owns one record per connection, freed when h2o
 * closes the socket (h2o_socket_t.on_close, which it takes over: on_closed is called after).
 */
#ifndef GW_CONNS_H
#define GW_CONNS_H

#include <stdint.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>

/* Requests cancelled by the client, at most, within the window below, on one HTTP/2 connection. */
#define GW_CONNS_MAX_RESETS 100
#define GW_CONNS_RESET_WINDOW_MS 10000

typedef struct gw_conns gw_conns_t;
typedef struct gw_conn gw_conn_t;

/* A table of connections in loop with the bound read_timeout_ms (> 0). Never NULL. */
gw_conns_t *gw_conns_new(h2o_loop_t *loop, uint64_t read_timeout_ms);

/* Frees the table; connections still open are forgotten (their on_closed is not called). NULL-safe. */
void gw_conns_destroy(gw_conns_t **self_p);

/* Tracks an accepted socket (before h2o_accept); on_closed(data) is called when h2o closes it. */
void gw_conns_add(gw_conns_t *self, h2o_socket_t *sock, void (*on_closed)(void *data), void *data);

/* The connection of req, or NULL when it is not tracked. */
gw_conn_t *gw_conns_of(h2o_req_t *req);

/*
 * A request req of c reached the handler (req NULL in self-tests): returns 0, or -1 when c is
 * being closed (the caller answers at once and sends nothing to a worker). Each call that returns
 * 0 is paired with one gw_conn_request_end.
 */
int gw_conn_request_start(gw_conn_t *c, h2o_req_t *req);

/* A request of c ended: answered, or (cancelled = 1) freed by h2o before its answer. */
void gw_conn_request_end(gw_conn_t *c, int cancelled);

/* Closes the connections past a bound; call it about every 100 ms (the bounds' resolution). */
void gw_conns_tick(gw_conns_t *self);

/* Number of tracked connections. */
size_t gw_conns_count(gw_conns_t *self);

/* Self-test over socket pairs in a loop of its own: silent on success, aborts on failure. */
void gw_conns_test(void);

#endif
