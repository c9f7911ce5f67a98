/* frames.c - the ZeroMQ messages of PROTOCOL.md §2 and the synchronous internal client (see
 * xws/frames.h). */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "xws/curve.h"
#include "xws/frames.h"
#include "internal.h"

#define MAX_WORKER_NAME 64

/* ---- parsing --------------------------------------------------------------------------------- */

static xws_slice_t s_frame_slice(zframe_t *fr)
{
    return (xws_slice_t){zframe_size(fr) != 0 ? (const char *)zframe_data(fr) : "", zframe_size(fr)};
}

static int s_service_ok(xws_slice_t s)
{
    if (s.len < 1 || s.len > XWS_MAX_NAME)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* decimal 1-1000 without sign, spaces or leading zeros; 0 when malformed */
static unsigned s_credit(xws_slice_t s)
{
    if (s.len < 1 || s.len > 4 || s.ptr[0] == '0')
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s.ptr[i] - '0');
    }
    return v <= 1000 ? v : 0;
}

/* a worker name goes into log lines: printable ASCII only */
static int s_name_ok(xws_slice_t s)
{
    if (s.len > MAX_WORKER_NAME)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e)
            return 0;
    return 1;
}

static int s_fail(const char **err, const char *why)
{
    *err = why;
    return -1;
}

/* features: comma-separated tokens of [a-z0-9-], at most 64 bytes in all */
static int s_features_ok(xws_slice_t s)
{
    if (s.len > MAX_WORKER_NAME)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ','))
            return 0;
    }
    return 1;
}

int xws_features_has(xws_slice_t features, const char *name)
{
    size_t nlen = strlen(name), i = 0;
    while (i < features.len) {
        size_t j = i;
        while (j < features.len && features.ptr[j] != ',')
            j++;
        if (j - i == nlen && memcmp(features.ptr + i, name, nlen) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

void xws_frames_pair(const xws_frames_t *f, size_t i, xws_slice_t *key, xws_slice_t *payload)
{
    assert(i < f->count);
    if (i == 0) {
        *key = f->key;
        *payload = f->payload;
    } else {
        *key = f->_more[2 * (i - 1)];
        *payload = f->_more[2 * (i - 1) + 1];
    }
}

/* one (key, envelope) pair of a REQUEST/REPLY: 0, or -1 with *err */
static int s_pair(xws_cmd_t cmd, zframe_t *k, zframe_t *e, xws_slice_t *key, xws_slice_t *payload, const char **err)
{
    if (zframe_size(k) < 1 || zframe_size(k) > XWS_MAX_KEY)
        return s_fail(err, "bad key");
    if (zframe_size(e) > (cmd == XWS_CMD_REPLY ? XWS_MAX_REPLY : XWS_MAX_ENVELOPE))
        return s_fail(err, "oversized envelope");
    *key = s_frame_slice(k);
    *payload = s_frame_slice(e);
    return 0;
}

/* the pairs of a REQUEST/REPLY with n frames in all (signature and command included) */
static int s_parse_pairs(xws_frames_t *f, zframe_t *k, size_t n, const char **err)
{
    /* the first key is kept whenever it is readable, so that the caller can answer bad_envelope */
    if (k != NULL && zframe_size(k) >= 1 && zframe_size(k) <= XWS_MAX_KEY)
        f->key = s_frame_slice(k);
    if (n < 4 || n % 2 != 0 || (n - 2) / 2 > XWS_MAX_BATCH)
        return s_fail(err, "bad frame count");
    f->count = (n - 2) / 2;
    if (f->count > 1)
        f->_more = calloc(2 * (f->count - 1), sizeof(xws_slice_t));
    if (f->count > 1 && f->_more == NULL)
        abort();
    for (size_t i = 0; i < f->count; i++) {
        zframe_t *e = zmsg_next(f->msg);
        xws_slice_t *ks = i == 0 ? &f->key : &f->_more[2 * (i - 1)];
        xws_slice_t *ps = i == 0 ? &f->payload : &f->_more[2 * (i - 1) + 1];
        if (s_pair(f->cmd, k, e, ks, ps, err) != 0) {
            f->count = 0;
            return -1;
        }
        if (i + 1 < f->count)
            k = zmsg_next(f->msg);
    }
    return 0;
}

/* parses f->msg (identity already removed) */
static int s_parse(xws_frames_t *f, const char **err)
{
    zframe_t *fr[6] = {NULL};
    size_t n = zmsg_size(f->msg);
    /* the first three frames; the message's cursor stays on the third */
    fr[0] = zmsg_first(f->msg);
    fr[1] = fr[0] != NULL ? zmsg_next(f->msg) : NULL;
    fr[2] = fr[1] != NULL ? zmsg_next(f->msg) : NULL;
    if (n < 2)
        return s_fail(err, n == 1 && zframe_size(fr[0]) != XWS_SIGNATURE_LEN ? "bad signature" : "bad frame count");
    if (zframe_size(fr[0]) != XWS_SIGNATURE_LEN || memcmp(zframe_data(fr[0]), XWS_SIGNATURE, XWS_SIGNATURE_LEN) != 0)
        return s_fail(err, "bad signature");
    if (zframe_size(fr[1]) != 1 || zframe_data(fr[1])[0] < XWS_CMD_READY || zframe_data(fr[1])[0] > XWS_CMD_DISCONNECT)
        return s_fail(err, "unknown command");
    f->cmd = (xws_cmd_t)zframe_data(fr[1])[0];
    switch (f->cmd) {
    case XWS_CMD_READY:
        if (n < 4 || n > 6)
            return s_fail(err, "bad frame count");
        for (size_t i = 3; i < n; i++)
            fr[i] = zmsg_next(f->msg);
        f->service = s_frame_slice(fr[2]);
        if (!s_service_ok(f->service))
            return s_fail(err, "bad service");
        if ((f->credit = s_credit(s_frame_slice(fr[3]))) == 0)
            return s_fail(err, "bad credit");
        if (n >= 5) {
            f->name = s_frame_slice(fr[4]);
            if (!s_name_ok(f->name))
                return s_fail(err, "bad name");
        }
        if (n == 6) {
            f->features = s_frame_slice(fr[5]);
            if (!s_features_ok(f->features))
                return s_fail(err, "bad features");
        }
        return 0;
    case XWS_CMD_REQUEST:
    case XWS_CMD_REPLY:
        return s_parse_pairs(f, fr[2], n, err);
    case XWS_CMD_HEARTBEAT: /* an optional third frame: the worker's report */
        if (n == 3) {
            f->payload = s_frame_slice(fr[2]);
            return f->payload.len <= XWS_MAX_REPORT ? 0 : s_fail(err, "oversized report");
        }
        return n == 2 ? 0 : s_fail(err, "bad frame count");
    case XWS_CMD_DISCONNECT:
        return n == 2 ? 0 : s_fail(err, "bad frame count");
    }
    return s_fail(err, "unknown command");
}

int xws_frames_recv(xws_frames_t *f, zsock_t *sock, int with_identity, const char **err)
{
    assert(f != NULL && sock != NULL && err != NULL);
    memset(f, 0, sizeof(*f));
    f->msg = zmsg_recv_nowait(sock);
    if (f->msg == NULL)
        return s_fail(err, "no message");
    if (with_identity) {
        f->identity = zmsg_pop(f->msg);
        if (f->identity == NULL)
            return s_fail(err, "bad frame count");
    }
    return s_parse(f, err);
}

void xws_frames_dispose(xws_frames_t *f)
{
    assert(f != NULL);
    zmsg_destroy(&f->msg);
    zframe_destroy(&f->identity);
    free(f->_more);
    memset(f, 0, sizeof(*f));
}

/* ---- sending --------------------------------------------------------------------------------- */

static int s_send(void *handle, const void *p, size_t n, int more)
{
    return zmq_send(handle, n != 0 ? p : "", n, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0 ? -1 : 0;
}

int xws_frames_send(zsock_t *sock, zframe_t *identity, xws_cmd_t cmd, const xws_slice_t *frames, size_t nframes)
{
    assert(sock != NULL && (frames != NULL || nframes == 0));
    void *h = zsock_resolve(sock);
    unsigned char c = (unsigned char)cmd;
    /* Once the first part of a message is queued, libzmq accepts the rest of it: only the first
     * send can fail with EAGAIN or EHOSTUNREACH, and then nothing was queued. */
    if (identity != NULL && s_send(h, zframe_data(identity), zframe_size(identity), 1) != 0)
        return -1;
    if (s_send(h, XWS_SIGNATURE, XWS_SIGNATURE_LEN, 1) != 0 || s_send(h, &c, 1, nframes != 0) != 0)
        return -1;
    for (size_t i = 0; i < nframes; i++)
        if (s_send(h, frames[i].ptr, frames[i].len, i + 1 < nframes) != 0)
            return -1;
    return 0;
}

int xws_send_ready(zsock_t *sock, const char *service, unsigned credit, const char *name, const char *features)
{
    assert(service != NULL && (features == NULL || name != NULL));
    char text[16];
    snprintf(text, sizeof(text), "%u", credit);
    xws_slice_t fr[4] = {xws_slice(service), xws_slice(text), xws_slice(name), xws_slice(features)};
    if (!s_service_ok(fr[0]) || credit < 1 || credit > 1000 || (name != NULL && !s_name_ok(fr[2])) ||
        (features != NULL && !s_features_ok(fr[3])))
        return -1;
    return xws_frames_send(sock, NULL, XWS_CMD_READY, fr, features != NULL ? 4 : name != NULL ? 3 : 2);
}

int xws_send_batch(zsock_t *sock, zframe_t *identity, xws_cmd_t cmd, const xws_slice_t *pairs, size_t n)
{
    assert(cmd == XWS_CMD_REQUEST || cmd == XWS_CMD_REPLY);
    if (n < 1 || n > XWS_MAX_BATCH)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (pairs[2 * i].len < 1 || pairs[2 * i].len > XWS_MAX_KEY ||
            pairs[2 * i + 1].len > (cmd == XWS_CMD_REPLY ? XWS_MAX_REPLY : XWS_MAX_ENVELOPE))
            return -1;
    return xws_frames_send(sock, identity, cmd, pairs, 2 * n);
}

int xws_send_request(zsock_t *sock, zframe_t *identity, xws_slice_t key, xws_slice_t envelope)
{
    xws_slice_t fr[2] = {key, envelope};
    if (key.len < 1 || key.len > XWS_MAX_KEY || envelope.len > XWS_MAX_ENVELOPE)
        return -1;
    return xws_frames_send(sock, identity, XWS_CMD_REQUEST, fr, 2);
}

int xws_send_reply(zsock_t *sock, zframe_t *identity, xws_slice_t key, xws_slice_t envelope)
{
    xws_slice_t fr[2] = {key, envelope};
    if (key.len < 1 || key.len > XWS_MAX_KEY || envelope.len > XWS_MAX_REPLY)
        return -1;
    return xws_frames_send(sock, identity, XWS_CMD_REPLY, fr, 2);
}

int xws_send_heartbeat(zsock_t *sock, zframe_t *identity)
{
    return xws_frames_send(sock, identity, XWS_CMD_HEARTBEAT, NULL, 0);
}

int xws_send_heartbeat_report(zsock_t *sock, zframe_t *identity, xws_slice_t report)
{
    if (report.len > XWS_MAX_REPORT)
        return -1;
    return xws_frames_send(sock, identity, XWS_CMD_HEARTBEAT, &report, 1);
}

int xws_send_disconnect(zsock_t *sock, zframe_t *identity)
{
    return xws_frames_send(sock, identity, XWS_CMD_DISCONNECT, NULL, 0);
}

/* ---- randomness ------------------------------------------------------------------------------ */

/* fills p with n random bytes from the kernel; aborts when it cannot */
static void s_random(void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        b += got;
        n -= (size_t)got;
    }
}

void xws_random_hex(char *buf, size_t nbytes_hex)
{
    assert(buf != NULL && nbytes_hex >= 1);
    static const char hex[] = "0123456789abcdef";
    size_t digits = nbytes_hex - 1;
    unsigned char raw[64];
    for (size_t i = 0; i < digits; i++) {
        if (i % (2 * sizeof(raw)) == 0)
            s_random(raw, sizeof(raw));
        unsigned char byte = raw[(i / 2) % sizeof(raw)];
        buf[i] = hex[i % 2 == 0 ? byte >> 4 : byte & 0x0f];
    }
    buf[digits] = '\0';
}

/* ---- synchronous client ---------------------------------------------------------------------- */

struct xws_client {
    zsock_t *sock;
    zpoller_t *poller;
    xws_frames_t last; /* the last reply message: the decoded reply points into it */
};

xws_client_t *xws_client_new(const char *endpoint)
{
    return xws_client_new_curve(endpoint, NULL, NULL, NULL, 0);
}

xws_client_t *xws_client_new_curve(const char *endpoint, const char *own_cert, const char *server_cert, char *why, size_t whylen)
{
    assert(endpoint != NULL && (own_cert == NULL) == (server_cert == NULL));
    xws_client_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->sock = zsock_new(ZMQ_DEALER);
    if (self->sock == NULL)
        abort();
    if (own_cert != NULL && xws_curve_client(self->sock, own_cert, server_cert, why, whylen) != 0) {
        xws_client_destroy(&self);
        return NULL;
    }
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        if (why != NULL && whylen > 0)
            snprintf(why, whylen, "cannot connect to '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        xws_client_destroy(&self);
        return NULL;
    }
    self->poller = zpoller_new(self->sock, NULL);
    if (self->poller == NULL)
        abort();
    return self;
}

void xws_client_destroy(xws_client_t **self_p)
{
    assert(self_p != NULL);
    xws_client_t *self = *self_p;
    if (self == NULL)
        return;
    xws_frames_dispose(&self->last);
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->sock);
    free(self);
    *self_p = NULL;
}

int xws_client_call(xws_client_t *self, const xws_request_spec_t *spec, int timeout_ms, xws_reply_t *rep, const char **err)
{
    assert(self != NULL && spec != NULL && rep != NULL && err != NULL);
    memset(rep, 0, sizeof(*rep));
    msgpack_unpacked_init(&rep->_unpacked);
    xws_frames_dispose(&self->last);
    if (timeout_ms < 0)
        timeout_ms = 0;

    xws_request_spec_t s = *spec;
    char rid[33];
    if (s.rid.len == 0) {
        xws_random_hex(rid, sizeof(rid));
        s.rid = (xws_slice_t){rid, 32};
    }
    if (s.deadline_ms == 0)
        s.deadline_ms = (uint64_t)zclock_time() + (uint64_t)timeout_ms;
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    if (xws_request_encode(&s, &env) != 0) {
        msgpack_sbuffer_destroy(&env);
        return s_fail(err, "bad request");
    }
    unsigned char key[8];
    s_random(key, sizeof(key));
    int rc = xws_send_request(self->sock, NULL, (xws_slice_t){(const char *)key, sizeof(key)}, (xws_slice_t){env.data, env.size});
    msgpack_sbuffer_destroy(&env);
    if (rc != 0)
        return s_fail(err, "cannot send");

    int64_t end = zclock_mono() + timeout_ms;
    for (;;) {
        xws_frames_t f;
        const char *why;
        /* drain what is there before waiting: replies to earlier, timed-out calls are skipped */
        while (xws_frames_recv(&f, self->sock, 0, &why) == 0 || strcmp(why, "no message") != 0) {
            if (f.msg != NULL && f.cmd == XWS_CMD_REPLY && f.payload.ptr != NULL && f.key.len == sizeof(key) &&
                memcmp(f.key.ptr, key, sizeof(key)) == 0) {
                self->last = f;
                if (xws_reply_decode(rep, f.payload.ptr, f.payload.len, &why) != 0) {
                    xws_reply_dispose(rep);
                    return s_fail(err, "malformed reply");
                }
                return 0;
            }
            xws_frames_dispose(&f);
        }
        xws_frames_dispose(&f);
        int64_t left = end - zclock_mono();
        if (left <= 0)
            return s_fail(err, "timeout");
        if (zpoller_wait(self->poller, (int)left) == NULL && zpoller_terminated(self->poller))
            return s_fail(err, "interrupted");
    }
}

/* ---- self-test ------------------------------------------------------------------------------- */

/* sends a raw multipart message given as NUL-separated frames (lens[i] bytes each) */
static void s_send_raw(zsock_t *sock, const char *const *frames, const size_t *lens, size_t n)
{
    zmsg_t *msg = zmsg_new();
    for (size_t i = 0; i < n; i++)
        CHECK(zmsg_addmem(msg, frames[i], lens[i]) == 0);
    CHECK(zmsg_send(&msg, sock) == 0);
}

/* waits for one message on sock and parses it */
static int s_recv_wait(xws_frames_t *f, zsock_t *sock, int with_identity, const char **err)
{
    zpoller_t *p = zpoller_new(sock, NULL);
    CHECK(zpoller_wait(p, 30000) == sock);
    zpoller_destroy(&p);
    return xws_frames_recv(f, sock, with_identity, err);
}

/* sends frames to the router and expects the parse to fail with why */
static void s_expect(zsock_t *dealer, zsock_t *router, const char *const *frames, const size_t *lens, size_t n, const char *why,
                     int key_set)
{
    xws_frames_t f;
    const char *err = NULL;
    s_send_raw(dealer, frames, lens, n);
    int rc = s_recv_wait(&f, router, 1, &err);
    if (why == NULL) {
        if (rc != 0)
            fprintf(stderr, "frames: unexpected failure '%s'\n", err);
        CHECK(rc == 0);
    } else {
        if (rc != -1 || strcmp(err, why) != 0)
            fprintf(stderr, "frames: got rc %d '%s', want '%s'\n", rc, rc == 0 ? "" : err, why);
        CHECK(rc == -1 && strcmp(err, why) == 0);
    }
    CHECK(f.identity != NULL);
    CHECK((f.key.len != 0) == (key_set != 0));
    xws_frames_dispose(&f);
}

/* a fake gateway for the client test: answers each REQUEST after a reply with a wrong key and a
 * heartbeat; act "slow" gets no answer; act "garbage" gets a malformed envelope */
static void s_fake_gateway(zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    CHECK(router != NULL && zsock_bind(router, "%s", (const char *)args) == 0);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    for (;;) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe || which == NULL)
            break;
        xws_frames_t f;
        const char *err;
        while (xws_frames_recv(&f, router, 1, &err) == 0 || strcmp(err, "no message") != 0) {
            xws_request_t req;
            if (f.msg != NULL && f.cmd == XWS_CMD_REQUEST && xws_request_decode(&req, f.payload.ptr, f.payload.len, &err) == 0) {
                msgpack_sbuffer out, body;
                msgpack_sbuffer_init(&out);
                msgpack_sbuffer_init(&body);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
                PACK(msgpack_pack_array(&pk, 3));
                PACK(msgpack_pack_str_with_body(&pk, req.rid.ptr, req.rid.len));
                PACK(msgpack_pack_str_with_body(&pk, req.act.ptr, req.act.len));
                if (req.body != NULL)
                    PACK(msgpack_pack_object(&pk, *req.body));
                else
                    PACK(msgpack_pack_nil(&pk));
                CHECK(xws_reply_encode(200, xws_slice("\"e\""), (xws_slice_t){body.data, body.size}, &out) == 0);
                xws_slice_t env = {out.data, out.size};
                CHECK(xws_send_reply(router, f.identity, xws_slice("wrong-key"), env) == 0);
                CHECK(xws_send_heartbeat(router, f.identity) == 0);
                if (xws_slice_eq(req.act, "garbage"))
                    CHECK(xws_send_reply(router, f.identity, f.key, xws_slice("\x81\xa1v")) == 0);
                else if (!xws_slice_eq(req.act, "slow"))
                    CHECK(xws_send_reply(router, f.identity, f.key, env) == 0);
                msgpack_sbuffer_destroy(&out);
                msgpack_sbuffer_destroy(&body);
                xws_request_dispose(&req);
            }
            xws_frames_dispose(&f);
        }
        xws_frames_dispose(&f);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

static void s_client_test(void)
{
    char ep[128];
    snprintf(ep, sizeof(ep), "ipc:///tmp/xws-client-test-%d.ipc", (int)getpid());
    zactor_t *gw = zactor_new(s_fake_gateway, ep);
    CHECK(gw != NULL);
    xws_client_t *c = xws_client_new(ep);
    CHECK(c != NULL);

    xws_kv_t params[] = {{xws_slice("id"), xws_slice("3")}};
    xws_request_spec_t spec = {.service = xws_slice("config"),
                               .resource = xws_slice("entity"),
                               .act = xws_slice("view"),
                               .params = params,
                               .nparams = 1,
                               .body_msgpack = xws_slice("\x91\x2a")};
    xws_reply_t rep;
    const char *err = NULL;
    xws_buf_t json;
    xws_buf_init(&json);
    for (int round = 0; round < 3; round++) {
        CHECK(xws_client_call(c, &spec, 30000, &rep, &err) == 0);
        CHECK(rep.status == 200 && xws_slice_eq(rep.etag, "\"e\"") && rep.body != NULL);
        CHECK(rep.body->type == MSGPACK_OBJECT_ARRAY && rep.body->via.array.size == 3);
        CHECK(rep.body->via.array.ptr[0].via.str.size == 32); /* a generated rid */
        xws_buf_reset(&json);
        CHECK(xws_msgpack_to_json(&rep.body->via.array.ptr[1], &json) == 0 && strcmp(json.data, "\"view\"") == 0);
        xws_buf_reset(&json);
        CHECK(xws_msgpack_to_json(&rep.body->via.array.ptr[2], &json) == 0 && strcmp(json.data, "[42]") == 0);
        xws_reply_dispose(&rep);
        if (round == 1) {
            /* a call that times out; its late reply (none here) would be skipped */
            xws_request_spec_t slow = spec;
            slow.act = xws_slice("slow");
            int64_t t0 = zclock_mono();
            CHECK(xws_client_call(c, &slow, 150, &rep, &err) == -1 && strcmp(err, "timeout") == 0);
            CHECK(zclock_mono() - t0 >= 140);
            xws_reply_dispose(&rep);
            slow.act = xws_slice("garbage");
            CHECK(xws_client_call(c, &slow, 30000, &rep, &err) == -1 && strcmp(err, "malformed reply") == 0);
            xws_reply_dispose(&rep);
        }
    }
    spec.rid = xws_slice("fixed-rid");
    CHECK(
        xws_client_call(c, &spec, 30000, &rep, &err) == 0 &&
        xws_slice_eq((xws_slice_t){rep.body->via.array.ptr[0].via.str.ptr, rep.body->via.array.ptr[0].via.str.size}, "fixed-rid"));
    xws_reply_dispose(&rep);
    spec.service = XWS_SLICE_NULL;
    CHECK(xws_client_call(c, &spec, 30000, &rep, &err) == -1 && strcmp(err, "bad request") == 0);
    xws_reply_dispose(&rep);
    xws_buf_dispose(&json);
    xws_client_destroy(&c);
    CHECK(c == NULL);
    xws_client_destroy(&c);
    zactor_destroy(&gw);
    unlink(ep + strlen("ipc://"));

    /* nobody listening: a timeout, not a hang */
    snprintf(ep, sizeof(ep), "ipc:///tmp/xws-client-none-%d.ipc", (int)getpid());
    c = xws_client_new(ep);
    CHECK(c != NULL);
    spec.service = xws_slice("config");
    CHECK(xws_client_call(c, &spec, 50, &rep, &err) == -1 && strcmp(err, "timeout") == 0);
    xws_reply_dispose(&rep);
    xws_client_destroy(&c);
    CHECK(xws_client_new("bogus://x") == NULL);
}

void xws_frames_test(void)
{
    char hex1[33], hex2[33], small[5];
    xws_random_hex(hex1, sizeof(hex1));
    xws_random_hex(hex2, sizeof(hex2));
    CHECK(strlen(hex1) == 32 && strspn(hex1, "0123456789abcdef") == 32 && strcmp(hex1, hex2) != 0);
    xws_random_hex(small, sizeof(small));
    CHECK(strlen(small) == 4);

    char ep[128];
    snprintf(ep, sizeof(ep), "ipc:///tmp/xws-frames-test-%d.ipc", (int)getpid());
    zsock_t *router = zsock_new(ZMQ_ROUTER), *dealer = zsock_new(ZMQ_DEALER);
    CHECK(router != NULL && dealer != NULL);
    zsock_set_router_mandatory(router, 1);
    CHECK(zsock_bind(router, "%s", ep) == 0 && zsock_connect(dealer, "%s", ep) == 0);

    xws_frames_t f;
    const char *err = NULL;
    CHECK(xws_frames_recv(&f, router, 1, &err) == -1 && strcmp(err, "no message") == 0);
    xws_frames_dispose(&f);

    /* the worker life cycle */
    CHECK(xws_send_ready(dealer, "ipbx-users", 4, "host-1/42", NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0);
    CHECK(f.cmd == XWS_CMD_READY && xws_slice_eq(f.service, "ipbx-users") && f.credit == 4 && xws_slice_eq(f.name, "host-1/42"));
    CHECK(f.identity != NULL);
    zframe_t *worker = zframe_dup(f.identity);
    xws_frames_dispose(&f);
    CHECK(xws_send_ready(dealer, "config", 1000, NULL, NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.credit == 1000 && f.name.len == 0 && f.features.len == 0);
    xws_frames_dispose(&f);
    CHECK(xws_send_ready(dealer, "config", 64, "w", "batch,x-y") == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.credit == 64 && xws_features_has(f.features, "batch"));
    CHECK(xws_features_has(f.features, "x-y") && !xws_features_has(f.features, "bat") && !xws_features_has(f.features, "x"));
    xws_frames_dispose(&f);
    CHECK(xws_send_ready(dealer, "Config", 1, NULL, NULL) == -1);
    CHECK(xws_send_ready(dealer, "config", 0, NULL, NULL) == -1);
    CHECK(xws_send_ready(dealer, "config", 1001, NULL, NULL) == -1);
    CHECK(xws_send_ready(dealer, "config", 1, "w", "Batch") == -1);

    CHECK(xws_send_request(router, worker, xws_slice("k1"), xws_slice("\x80")) == 0);
    CHECK(s_recv_wait(&f, dealer, 0, &err) == 0);
    CHECK(f.cmd == XWS_CMD_REQUEST && f.identity == NULL && xws_slice_eq(f.key, "k1") && xws_slice_eq(f.payload, "\x80"));
    xws_frames_dispose(&f);
    CHECK(xws_send_reply(dealer, NULL, xws_slice("k1"), XWS_SLICE_NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.cmd == XWS_CMD_REPLY && f.payload.len == 0 && xws_slice_eq(f.key, "k1"));
    CHECK(zframe_eq(f.identity, worker) && f.count == 1);
    xws_frames_dispose(&f);
    /* batches: several pairs in one message, each read back in order */
    xws_slice_t pairs[6] = {xws_slice("a"), xws_slice(""), xws_slice("bb"), xws_slice(""), xws_slice("c"), XWS_SLICE_NULL};
    CHECK(xws_send_batch(router, worker, XWS_CMD_REQUEST, pairs, 3) == 0);
    CHECK(s_recv_wait(&f, dealer, 0, &err) == 0 && f.cmd == XWS_CMD_REQUEST && f.count == 3);
    for (size_t i = 0; i < 3; i++) {
        xws_slice_t k, p;
        xws_frames_pair(&f, i, &k, &p);
        CHECK(k.len == pairs[2 * i].len && memcmp(k.ptr, pairs[2 * i].ptr, k.len) == 0 && p.len == pairs[2 * i + 1].len);
    }
    xws_frames_dispose(&f);
    CHECK(xws_send_batch(dealer, NULL, XWS_CMD_REPLY, pairs, 1) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.cmd == XWS_CMD_REPLY && f.count == 1 && xws_slice_eq(f.key, "a"));
    xws_frames_dispose(&f);
    CHECK(xws_send_batch(dealer, NULL, XWS_CMD_REPLY, pairs, 0) == -1);
    CHECK(xws_send_batch(dealer, NULL, XWS_CMD_REPLY, pairs, XWS_MAX_BATCH + 1) == -1);
    pairs[2] = XWS_SLICE_NULL;
    CHECK(xws_send_batch(dealer, NULL, XWS_CMD_REPLY, pairs, 2) == -1); /* an empty key */
    CHECK(xws_send_heartbeat(router, worker) == 0);
    CHECK(s_recv_wait(&f, dealer, 0, &err) == 0 && f.cmd == XWS_CMD_HEARTBEAT);
    xws_frames_dispose(&f);
    CHECK(xws_send_disconnect(dealer, NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.cmd == XWS_CMD_DISCONNECT);
    xws_frames_dispose(&f);
    CHECK(xws_send_request(router, worker, XWS_SLICE_NULL, xws_slice("\x80")) == -1);
    zframe_t *ghost = zframe_new("ghost", 5);
    CHECK(xws_send_heartbeat(router, ghost) == -1); /* ROUTER_MANDATORY: unknown peer */
    zframe_destroy(&ghost);
    zframe_destroy(&worker);

    /* malformed messages: each is refused with its reason */
    char key33[33], name65[65], svc33[33];
    memset(key33, 'k', sizeof(key33));
    memset(name65, 'n', sizeof(name65));
    memset(svc33, 's', sizeof(svc33));
    const char R[] = {XWS_CMD_READY}, Q[] = {XWS_CMD_REQUEST}, P[] = {XWS_CMD_REPLY}, H[] = {XWS_CMD_HEARTBEAT};
    const char Z[] = {0}, SIX[] = {6};
    struct {
        const char *frames[6];
        size_t lens[6];
        size_t n;
        const char *why;
        int key_set;
    } cases[] = {
        {{"XWS2", H}, {4, 1}, 2, "bad signature", 0},
        {{"XWS", H}, {3, 1}, 2, "bad signature", 0},
        {{"XWS1"}, {4}, 1, "bad frame count", 0},
        {{"junk"}, {3}, 1, "bad signature", 0},
        {{"XWS1", Z}, {4, 1}, 2, "unknown command", 0},
        {{"XWS1", SIX}, {4, 1}, 2, "unknown command", 0},
        {{"XWS1", "\x04\x04"}, {4, 2}, 2, "unknown command", 0},
        {{"XWS1", ""}, {4, 0}, 2, "unknown command", 0},
        {{"XWS1", H, "x"}, {4, 1, 1}, 3, NULL, 0}, /* a report frame */
        {{"XWS1", H, "x", "y"}, {4, 1, 1, 1}, 4, "bad frame count", 0},
        {{"XWS1", R, "config"}, {4, 1, 6}, 3, "bad frame count", 0},
        {{"XWS1", R, "config", "1", "w", "X"}, {4, 1, 6, 1, 1, 1}, 6, "bad features", 0},
        {{"XWS1", R, "config", "1", "w", "batch"}, {4, 1, 6, 1, 1, 5}, 6, NULL, 0},
        {{"XWS1", R, "config", "0"}, {4, 1, 6, 1}, 4, "bad credit", 0},
        {{"XWS1", R, "config", "1001"}, {4, 1, 6, 4}, 4, "bad credit", 0},
        {{"XWS1", R, "config", "01"}, {4, 1, 6, 2}, 4, "bad credit", 0},
        {{"XWS1", R, "config", "+1"}, {4, 1, 6, 2}, 4, "bad credit", 0},
        {{"XWS1", R, "config", " 1"}, {4, 1, 6, 2}, 4, "bad credit", 0},
        {{"XWS1", R, "config", ""}, {4, 1, 6, 0}, 4, "bad credit", 0},
        {{"XWS1", R, "config", "99999"}, {4, 1, 6, 5}, 4, "bad credit", 0},
        {{"XWS1", R, "Config", "1"}, {4, 1, 6, 1}, 4, "bad service", 0},
        {{"XWS1", R, "a_b", "1"}, {4, 1, 3, 1}, 4, "bad service", 0},
        {{"XWS1", R, "", "1"}, {4, 1, 0, 1}, 4, "bad service", 0},
        {{"XWS1", R, svc33, "1"}, {4, 1, 33, 1}, 4, "bad service", 0},
        {{"XWS1", R, svc33, "1"}, {4, 1, 32, 1}, 4, NULL, 0},
        {{"XWS1", R, "a", "1000", name65}, {4, 1, 1, 4, 64}, 5, NULL, 0},
        {{"XWS1", R, "a", "1000", name65}, {4, 1, 1, 4, 65}, 5, "bad name", 0},
        {{"XWS1", R, "a", "1000", "a\nb"}, {4, 1, 1, 4, 3}, 5, "bad name", 0},
        {{"XWS1", Q}, {4, 1}, 2, "bad frame count", 0},
        {{"XWS1", Q, "key"}, {4, 1, 3}, 3, "bad frame count", 1},
        {{"XWS1", Q, "key", "\x80", "x"}, {4, 1, 3, 1, 1}, 5, "bad frame count", 1},
        {{"XWS1", Q, "key", "\x80", "k2", "\x80"}, {4, 1, 3, 1, 2, 1}, 6, NULL, 1},
        {{"XWS1", P, "key", "\x80", "", "\x80"}, {4, 1, 3, 1, 0, 1}, 6, "bad key", 1},
        {{"XWS1", P, "key", "\x80", key33, "\x80"}, {4, 1, 3, 1, 33, 1}, 6, "bad key", 1},
        {{"XWS1", Q, "", "\x80"}, {4, 1, 0, 1}, 4, "bad key", 0},
        {{"XWS1", P, key33, "\x80"}, {4, 1, 33, 1}, 4, "bad key", 0},
        {{"XWS1", P, key33, "\x80"}, {4, 1, 32, 1}, 4, NULL, 1},
        {{"XWS1", Q, "k", ""}, {4, 1, 1, 0}, 4, NULL, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        s_expect(dealer, router, cases[i].frames, cases[i].lens, cases[i].n, cases[i].why, cases[i].key_set);
    /* an oversized envelope: the key is still readable */
    char *big = malloc(XWS_MAX_ENVELOPE + 1);
    CHECK(big != NULL);
    memset(big, 0, XWS_MAX_ENVELOPE + 1);
    const char *fr[] = {"XWS1", Q, "key", big};
    size_t lens[] = {4, 1, 3, XWS_MAX_ENVELOPE + 1};
    s_expect(dealer, router, fr, lens, 4, "oversized envelope", 1);
    lens[3] = XWS_MAX_ENVELOPE;
    s_expect(dealer, router, fr, lens, 4, NULL, 1);
    CHECK(xws_send_request(dealer, NULL, xws_slice("k"), (xws_slice_t){big, XWS_MAX_ENVELOPE + 1}) == -1);
    /* a worker's report in a HEARTBEAT: up to XWS_MAX_REPORT bytes */
    const char *hb[] = {"XWS1", H, big};
    size_t hblens[] = {4, 1, XWS_MAX_REPORT + 1};
    s_expect(dealer, router, hb, hblens, 3, "oversized report", 0);
    CHECK(xws_send_heartbeat_report(dealer, NULL, (xws_slice_t){big, XWS_MAX_REPORT + 1}) == -1);
    CHECK(xws_send_heartbeat_report(dealer, NULL, xws_slice("\x81\xa1s\x01")) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.cmd == XWS_CMD_HEARTBEAT && xws_slice_eq(f.payload, "\x81\xa1s\x01"));
    xws_frames_dispose(&f);
    CHECK(xws_send_heartbeat(dealer, NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0 && f.cmd == XWS_CMD_HEARTBEAT && f.payload.len == 0);
    xws_frames_dispose(&f);
    free(big);
    /* a DEALER never sees an identity frame: an empty message cannot occur, a short one is refused */
    zframe_t *id = NULL;
    CHECK(xws_send_heartbeat(dealer, NULL) == 0);
    CHECK(s_recv_wait(&f, router, 1, &err) == 0);
    id = zframe_dup(f.identity);
    xws_frames_dispose(&f);
    zmsg_t *m = zmsg_new();
    zmsg_append(m, &id);
    zmsg_addstr(m, "XWS1");
    CHECK(zmsg_send(&m, router) == 0);
    CHECK(s_recv_wait(&f, dealer, 0, &err) == -1 && strcmp(err, "bad frame count") == 0);
    xws_frames_dispose(&f);

    zsock_destroy(&dealer);
    zsock_destroy(&router);
    unlink(ep + strlen("ipc://"));
    s_client_test();
}
