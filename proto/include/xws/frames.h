/*
 * xws/frames.h - building and parsing the ZeroMQ messages of PROTOCOL.md §2, and a synchronous
 * client for internal consumers. Includes czmq: keep it out of headers every module includes.
 */
#ifndef XWS_FRAMES_H
#define XWS_FRAMES_H

#include <czmq.h>
#include "xws/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A parsed protocol message. For a message received on a ROUTER, identity holds the peer
 * identity frame (owned by the struct); for a DEALER it is NULL. The slices point into msg.
 */
typedef struct {
    zmsg_t *msg;        /* owned: the whole message */
    zframe_t *identity; /* owned or NULL */
    xws_cmd_t cmd;
    xws_slice_t service;  /* READY: service name */
    unsigned credit;      /* READY: credit */
    xws_slice_t name;     /* READY: optional worker name */
    xws_slice_t features; /* READY: optional features, comma-separated (e.g. "batch") */
    xws_slice_t key;      /* REQUEST, REPLY: key frame of the first pair */
    xws_slice_t payload;  /* REQUEST, REPLY: envelope bytes of the first pair; HEARTBEAT: the worker's report (empty: none) */
    size_t count;         /* REQUEST, REPLY: number of (key, envelope) pairs, 1 to XWS_MAX_BATCH */
    xws_slice_t *_more;   /* pairs 2..count as key, envelope, key, ... (owned; NULL when count is 1) */
} xws_frames_t;

/* The i-th (key, envelope) pair of a REQUEST or REPLY (i < f->count). */
void xws_frames_pair(const xws_frames_t *f, size_t i, xws_slice_t *key, xws_slice_t *payload);

/* 1 when the comma-separated features list holds name. */
int xws_features_has(xws_slice_t features, const char *name);

/*
 * Receives one message from sock (non-blocking: returns -1 with *err = "no message" when there
 * is none) and parses it into f. with_identity: 1 for a ROUTER socket. Returns 0 with f filled,
 * or -1 with *err set to a static reason ("bad signature", "unknown command", "bad frame count",
 * "oversized envelope", "bad credit", "bad service", "bad key"); on -1 f->identity and f->key may
 * still be set when they could be read (to answer bad_envelope), and the caller must still call
 * xws_frames_dispose(f).
 */
int xws_frames_recv(xws_frames_t *f, zsock_t *sock, int with_identity, const char **err);
void xws_frames_dispose(xws_frames_t *f);

/*
 * Sends one protocol message without blocking. identity: the ROUTER peer to send to, or NULL on
 * a DEALER. Frames after the command are given as slices. Returns 0, or -1 when the message could
 * not be queued at once (EAGAIN, EHOSTUNREACH, ...).
 */
int xws_frames_send(zsock_t *sock, zframe_t *identity, xws_cmd_t cmd, const xws_slice_t *frames, size_t nframes);

/* Convenience wrappers. name and features may be NULL (features needs a name). */
int xws_send_ready(zsock_t *sock, const char *service, unsigned credit, const char *name, const char *features);
/*
 * Sends n (1 to XWS_MAX_BATCH) REQUEST or REPLY pairs in one message: pairs holds key, envelope,
 * key, envelope, ... (2n slices). Only to a peer that speaks "batch" (PROTOCOL.md §2) when n > 1.
 */
int xws_send_batch(zsock_t *sock, zframe_t *identity, xws_cmd_t cmd, const xws_slice_t *pairs, size_t n);
int xws_send_request(zsock_t *sock, zframe_t *identity, xws_slice_t key, xws_slice_t envelope);
int xws_send_reply(zsock_t *sock, zframe_t *identity, xws_slice_t key, xws_slice_t envelope);
int xws_send_heartbeat(zsock_t *sock, zframe_t *identity);
/* A HEARTBEAT carrying a worker's report (PROTOCOL.md §2: msgpack map, ≤ XWS_MAX_REPORT bytes); -1 when larger. */
int xws_send_heartbeat_report(zsock_t *sock, zframe_t *identity, xws_slice_t report);
int xws_send_disconnect(zsock_t *sock, zframe_t *identity);

/* ---- synchronous internal client ------------------------------------------------------------ */

typedef struct xws_client xws_client_t;

/* Connects a DEALER to a gateway's internal endpoint ("ipc://…" or "tcp://…"). NULL on failure. */
xws_client_t *xws_client_new(const char *endpoint);
/*
 * Same, as a CURVE client when own_cert (this consumer's secret certificate file) and
 * server_cert (the gateway's public certificate file) are given (both or neither). NULL on
 * failure, with the reason in why (may be NULL).
 */
xws_client_t *xws_client_new_curve(const char *endpoint, const char *own_cert, const char *server_cert, char *why, size_t whylen);
/* NULL-safe; sets *self_p to NULL. */
void xws_client_destroy(xws_client_t **self_p);

/*
 * Sends one request and waits up to timeout_ms for its reply. spec->rid may be empty: a random
 * unique id is generated. deadline_ms of 0 is set to now + timeout_ms. On success returns 0 and
 * fills rep (dispose it with xws_reply_dispose); the reply buffer is kept inside the client until
 * the next call. Returns -1 on timeout or a malformed reply (*err says which).
 */
int xws_client_call(xws_client_t *self, const xws_request_spec_t *spec, int timeout_ms, xws_reply_t *rep, const char **err);

/*
 * Fills buf, which is nbytes_hex bytes long (≥ 1), with nbytes_hex - 1 random lowercase hex
 * digits and a NUL: pass a 33-byte buffer and its size for 32 digits (128 random bits).
 */
void xws_random_hex(char *buf, size_t nbytes_hex);

/* Self-test of this module (binds/connects ipc sockets in /tmp). */
void xws_frames_test(void);

#ifdef __cplusplus
}
#endif
#endif
