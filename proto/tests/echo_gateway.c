/*
 * echo_gateway.c - a test peer standing in for a gateway's internal endpoint, for the tests of
 * xws-call and of the client: binds a ROUTER to ENDPOINT and answers each REQUEST with
 *
 *   {"service": s, "resource": r, "act": a, "params": {...}, "body": <request body or null>}
 *
 * with the status given by the parameter "status" (default 200) and the etag "echo". The act
 * "noreply" gets no answer, the act "binary" gets a bin body (which has no JSON form), and an
 * envelope that does not decode gets 400 bad_envelope (or unsupported_version). Runs until
 * SIGINT/SIGTERM.
 *
 *   xws-test-echo-gateway ENDPOINT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xws/frames.h"

static void s_pack_key(msgpack_packer *pk, const char *k)
{
    if (msgpack_pack_str_with_body(pk, k, strlen(k)) != 0)
        abort();
}

static void s_answer(zsock_t *router, xws_frames_t *f)
{
    xws_request_t req;
    const char *err;
    msgpack_sbuffer out, body;
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    if (xws_request_decode(&req, f->payload.ptr, f->payload.len, &err) != 0) {
        int bad_version = strcmp(err, "unsupported_version") == 0;
        if (xws_reply_encode_error(400, bad_version ? "unsupported_version" : "bad_envelope", "", err, &out) != 0)
            abort();
    } else if (!xws_slice_eq(req.act, "noreply")) {
        unsigned status = 200;
        xws_slice_t s;
        if (xws_request_param(&req, "status", &s) == 0 && s.len == 3)
            status = (unsigned)strtoul((char[4]){s.ptr[0], s.ptr[1], s.ptr[2], 0}, NULL, 10);
        if (xws_slice_eq(req.act, "binary")) {
            msgpack_pack_bin_with_body(&pk, "\x01", 1);
        } else {
            msgpack_pack_map(&pk, 5);
            s_pack_key(&pk, "service");
            msgpack_pack_str_with_body(&pk, req.service.ptr, req.service.len);
            s_pack_key(&pk, "resource");
            msgpack_pack_str_with_body(&pk, req.resource.ptr, req.resource.len);
            s_pack_key(&pk, "act");
            msgpack_pack_str_with_body(&pk, req.act.ptr, req.act.len);
            s_pack_key(&pk, "params");
            if (req.params != NULL)
                msgpack_pack_object(&pk, (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = *req.params});
            else
                msgpack_pack_map(&pk, 0);
            s_pack_key(&pk, "body");
            if (req.body != NULL)
                msgpack_pack_object(&pk, *req.body);
            else
                msgpack_pack_nil(&pk);
        }
        if (xws_reply_encode(status, xws_slice(status == 200 ? "\"echo\"" : ""), (xws_slice_t){body.data, body.size}, &out) != 0 &&
            xws_reply_encode_error(500, "internal_error", "", "bad status parameter", &out) != 0)
            abort();
    }
    if (out.size != 0 && xws_send_reply(router, f->identity, f->key, (xws_slice_t){out.data, out.size}) != 0)
        fprintf(stderr, "echo-gateway: cannot send a reply\n");
    xws_request_dispose(&req);
    msgpack_sbuffer_destroy(&out);
    msgpack_sbuffer_destroy(&body);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: xws-test-echo-gateway ENDPOINT\n");
        return 2;
    }
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    if (router == NULL || zsock_bind(router, "%s", argv[1]) != 0) {
        fprintf(stderr, "echo-gateway: cannot bind %s\n", argv[1]);
        zsock_destroy(&router);
        return 1;
    }
    zpoller_t *poller = zpoller_new(router, NULL);
    while (!zsys_interrupted) {
        if (zpoller_wait(poller, 1000) == NULL) {
            if (zpoller_terminated(poller))
                break;
            continue;
        }
        xws_frames_t f;
        const char *err;
        int rc;
        while ((rc = xws_frames_recv(&f, router, 1, &err)) == 0 || strcmp(err, "no message") != 0) {
            if (rc == 0 && f.cmd == XWS_CMD_REQUEST)
                s_answer(router, &f);
            else if (rc != 0)
                fprintf(stderr, "echo-gateway: dropped a message: %s\n", err);
            xws_frames_dispose(&f);
        }
        xws_frames_dispose(&f);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
    return 0;
}
