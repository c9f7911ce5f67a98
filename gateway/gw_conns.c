/* gw_conns.c - accepted connections and the HTTP/2 bounds (see gw_conns.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "xws/log.h"
#include "gw_check.h"
#include "gw_conns.h" /* h2o.h first: http2_internal.h needs it */
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include "gw_net.h"

struct gw_conn {
    gw_conns_t *owner;
    h2o_socket_t *sock;
    h2o_linklist_t link;           /* in owner->all */
    void (*on_closed)(void *data); /* the accepting code's own notice */
    void *data;
    h2o_http2_conn_t *h2;        /* h2o's HTTP/2 connection, once a request of it was seen */
    int closing;                 /* 1 once shut down */
    size_t active;               /* requests in the handler's hands */
    uint64_t last_activity;      /* loop ms: accept, h2 seen, a request started or ended */
    uint64_t reset_window_start; /* loop ms */
    unsigned resets;             /* cancelled requests since reset_window_start */
};

struct gw_conns {
    h2o_loop_t *loop;
    uint64_t read_timeout_ms;
    h2o_linklist_t all;
    size_t count;
};

gw_conns_t *gw_conns_new(h2o_loop_t *loop, uint64_t read_timeout_ms)
{
    assert(loop != NULL && read_timeout_ms > 0);
    gw_conns_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->loop = loop;
    self->read_timeout_ms = read_timeout_ms;
    h2o_linklist_init_anchor(&self->all);
    return self;
}

void gw_conns_destroy(gw_conns_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gw_conns_t *self = *self_p;
    while (!h2o_linklist_is_empty(&self->all)) {
        gw_conn_t *c = H2O_STRUCT_FROM_MEMBER(gw_conn_t, link, self->all.next);
        h2o_linklist_unlink(&c->link);
        c->sock->on_close.cb = NULL; /* the socket outlives the table: no notice into freed memory */
        c->sock->on_close.data = NULL;
        free(c);
    }
    free(self);
    *self_p = NULL;
}

static void s_on_close(void *data)
{
    gw_conn_t *c = data;
    void (*cb)(void *) = c->on_closed;
    void *cbdata = c->data;
    h2o_linklist_unlink(&c->link);
    c->owner->count--;
    free(c);
    if (cb != NULL)
        cb(cbdata);
}

void gw_conns_add(gw_conns_t *self, h2o_socket_t *sock, void (*on_closed)(void *data), void *data)
{
    gw_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->owner = self;
    c->sock = sock;
    c->on_closed = on_closed;
    c->data = data;
    c->last_activity = h2o_now(self->loop);
    h2o_linklist_insert(&self->all, &c->link);
    self->count++;
    sock->on_close.cb = s_on_close;
    sock->on_close.data = c;
}

gw_conn_t *gw_conns_of(h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL && sock->on_close.cb == s_on_close ? sock->on_close.data : NULL;
}

/*
 * On HTTP/2, queues a GOAWAY frame with h2_error (an H2O_HTTP2_ERROR_* code) and debug data why,
 * as h2o does for a protocol error: h2o writes it at its next turn and then accepts no new stream.
 */
static void s_goaway(h2o_http2_conn_t *h2, int h2_error, const char *why)
{
    if (h2 == NULL || h2->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return;
    h2o_http2_encode_goaway_frame(&h2->_write.buf, h2->pull_stream_ids.max_open, h2_error, h2o_iovec_init(why, strlen(why)));
    h2o_http2_conn_request_write(h2);
    h2->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
}

/*
 * Closes c once, why logged. HTTP/2 (a request seen): a GOAWAY with h2_error, then the reading
 * side is shut down, so that h2o reads the end of the stream and closes the connection once the
 * GOAWAY is written. Otherwise both sides are shut down (h2o reads the end and closes).
 */
static void s_close(gw_conn_t *c, int h2_error, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(c->sock, (struct sockaddr *)&ss);
    uint8_t addr[16];
    char text[48] = "?";
    gw_addr_from_sockaddr((struct sockaddr *)&ss, len, addr, text, sizeof(text));
    xws_log(XWS_LOG_WARN, "closing the connection of %s: %s", text, why);
    if (c->h2 != NULL && c->h2->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
        s_goaway(c->h2, h2_error, why);
        shutdown(h2o_socket_get_fd(c->sock), SHUT_RD);
    } else {
        shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
    }
}

int gw_conn_request_start(gw_conn_t *c, h2o_req_t *req)
{
    if (c->closing)
        return -1;
    if (req != NULL && req->version >= 0x200 && c->h2 == NULL)
        c->h2 = (h2o_http2_conn_t *)req->conn; /* an HTTP/2 request's conn is h2o's HTTP/2 connection */
    c->active++;
    c->last_activity = h2o_now(c->owner->loop);
    return 0;
}

void gw_conn_request_end(gw_conn_t *c, int cancelled)
{
    assert(c->active > 0);
    c->active--;
    uint64_t now = h2o_now(c->owner->loop);
    c->last_activity = now;
    if (!cancelled)
        return;
    if (now - c->reset_window_start >= GW_CONNS_RESET_WINDOW_MS) {
        c->reset_window_start = now;
        c->resets = 0;
    }
    if (++c->resets > GW_CONNS_MAX_RESETS) {
        char why[128];
        snprintf(why, sizeof(why), "more than %d requests cancelled by the client within %d ms (rapid reset)", GW_CONNS_MAX_RESETS,
                 GW_CONNS_RESET_WINDOW_MS);
        s_close(c, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, why);
    }
}

void gw_conns_tick(gw_conns_t *self)
{
    uint64_t now = h2o_now(self->loop);
    for (h2o_linklist_t *l = self->all.next; l != &self->all; l = l->next) {
        gw_conn_t *c = H2O_STRUCT_FROM_MEMBER(gw_conn_t, link, l);
        if (c->closing)
            continue;
        if (c->active == 0 && now - c->last_activity >= self->read_timeout_ms) {
            char why[128];
            snprintf(why, sizeof(why), "no complete request for %llu ms", (unsigned long long)self->read_timeout_ms);
            s_close(c, H2O_HTTP2_ERROR_NONE, why);
        }
    }
}

size_t gw_conns_count(gw_conns_t *self)
{
    return self->count;
}

/* ---- self-test ------------------------------------------------------------------------------------ */

static void s_test_closed(void *data)
{
    (*(int *)data)++;
}

/* 1 when the peer of a socketpair end sees the end of the stream (the other end was shut down). */
static int s_test_peer_ended(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

void gw_conns_test(void)
{
    h2o_loop_t *loop = h2o_evloop_create();
    gw_conns_t *t = gw_conns_new(loop, 50);
    int sv[2], closed = 0;
    GW_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, sv[0], 0);
    gw_conns_add(t, sock, s_test_closed, &closed);
    GW_CHECK(gw_conns_count(t) == 1);
    gw_conn_t *c = sock->on_close.data;

    /* a request in hand keeps the connection whatever the time; cancelled requests are counted */
    GW_CHECK(gw_conn_request_start(c, NULL) == 0);
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(loop, 30);
    gw_conns_tick(t);
    GW_CHECK(!c->closing && !s_test_peer_ended(sv[1]));
    gw_conn_request_end(c, 1);
    GW_CHECK(c->resets == 1 && !c->closing);
    for (int i = 0; i < GW_CONNS_MAX_RESETS; i++) {
        GW_CHECK(gw_conn_request_start(c, NULL) == 0);
        gw_conn_request_end(c, 1);
    }
    GW_CHECK(c->closing && s_test_peer_ended(sv[1])); /* past the bound: shut down */
    GW_CHECK(gw_conn_request_start(c, NULL) == -1);   /* and its next requests are refused */

    /* a second connection with nothing in hand is closed after the read timeout */
    int sv2[2];
    GW_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    h2o_socket_t *idle = h2o_evloop_socket_create(loop, sv2[0], 0);
    gw_conns_add(t, idle, s_test_closed, &closed);
    gw_conn_t *ic = idle->on_close.data;
    gw_conns_tick(t);
    GW_CHECK(!ic->closing);
    uint64_t until = h2o_now(loop) + 50;
    while (h2o_now(loop) < until)
        h2o_evloop_run(loop, 60);
    gw_conns_tick(t);
    GW_CHECK(ic->closing && s_test_peer_ended(sv2[1]));

    /* h2o closing a socket frees its record and tells the accepting code */
    h2o_socket_close(sock);
    h2o_socket_close(idle);
    for (int i = 0; i < 5 && closed < 2; i++)
        h2o_evloop_run(loop, 10);
    GW_CHECK(closed == 2 && gw_conns_count(t) == 0);
    gw_conns_destroy(&t);
    GW_CHECK(t == NULL);
    gw_conns_destroy(&t);
    close(sv[1]);
    close(sv2[1]);
    h2o_evloop_destroy(loop);
}
