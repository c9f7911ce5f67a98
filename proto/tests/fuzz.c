/*
 * fuzz.c - libFuzzer target for the decoders that take bytes from peers and clients (built only
 * with clang: cmake -DCMAKE_C_COMPILER=clang ...; run: xws-proto-fuzz -max_total_time=60).
 * The first input byte picks the decoder: request envelope, reply envelope, JSON text, or a bare
 * msgpack object rendered as JSON. Every accepted value must render or be refused cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "xws/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_render(const msgpack_object *o)
{
    xws_buf_t out;
    xws_buf_init(&out);
    if (xws_msgpack_to_json(o, &out) == 0) {
        /* what renders must read back as JSON */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (xws_json_to_msgpack(out.data, out.len, &sb, NULL, 0) != 0)
            abort();
        msgpack_sbuffer_destroy(&sb);
    }
    xws_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1, *err;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        xws_request_t req;
        if (xws_request_decode(&req, p, n, &err) == 0) {
            xws_slice_t v;
            xws_request_param(&req, "id", &v);
            if (req.body != NULL)
                s_render(req.body);
        }
        xws_request_dispose(&req);
        break;
    }
    case 1: {
        /* the one-pass decoding and rendering (the gateway's) agree with the tree's */
        xws_reply_t rep, raw;
        int rc = xws_reply_decode(&rep, p, n, &err), rrc = xws_reply_decode_raw(&raw, p, n, &err);
        if (rc != 0 && rrc == 0) { /* a last body is left to the rendering, which must refuse it */
            xws_buf_t j;
            xws_buf_init(&j);
            if (raw.body_raw.ptr == NULL || xws_msgpack_raw_to_json(raw.body_raw.ptr, raw.body_raw.len, &j, &err) != -1)
                abort();
            xws_buf_dispose(&j);
            rrc = rc;
        }
        if (rc != rrc || (rc == 0 && (rep.status != raw.status || (rep.body == NULL) != (raw.body_raw.ptr == NULL))))
            abort();
        if (rc == 0 && rep.body != NULL) {
            s_render(rep.body);
            xws_buf_t a, b;
            xws_buf_init(&a);
            xws_buf_init(&b);
            int ra = xws_msgpack_to_json(rep.body, &a), rb = xws_msgpack_raw_to_json(raw.body_raw.ptr, raw.body_raw.len, &b, &err);
            if (ra != rb || (ra == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)))
                abort();
            xws_buf_dispose(&a);
            xws_buf_dispose(&b);
        }
        xws_reply_dispose(&rep);
        xws_reply_dispose(&raw);
        break;
    }
    case 2: {
        msgpack_sbuffer sb;
        char errbuf[128];
        msgpack_sbuffer_init(&sb);
        if (xws_json_to_msgpack(p, n, &sb, errbuf, sizeof(errbuf)) == 0) {
            msgpack_unpacked u;
            if (xws_msgpack_decode(&u, sb.data, sb.size, XWS_MAX_DEPTH, &err) != 0)
                abort();
            xws_buf_t out;
            xws_buf_init(&out);
            if (xws_msgpack_to_json(&u.data, &out) != 0)
                abort();
            xws_buf_dispose(&out);
            msgpack_unpacked_destroy(&u);
        }
        msgpack_sbuffer_destroy(&sb);
        break;
    }
    default: {
        msgpack_unpacked u;
        int rc = xws_msgpack_decode(&u, p, n, XWS_MAX_DEPTH + 1, &err);
        if (rc != xws_msgpack_validate(p, n, XWS_MAX_DEPTH + 1, &err))
            abort();
        if (rc == 0)
            s_render(&u.data);
        msgpack_unpacked_destroy(&u);
        break;
    }
    }
    return 0;
}
