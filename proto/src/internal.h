/* internal.h - helpers shared by the modules of the proto library (not installed). */
#ifndef XWS_INTERNAL_H
#define XWS_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include "xws/check.h"
#include "xws/proto.h"

/* A self-test check that holds whatever NDEBUG says (xws/check.h). */
#define CHECK(x) XWS_CHECK(x)

/* Aborts when a msgpack packer call reports a failure (only out-of-memory can cause one). */
#define PACK(call)                                                                                                                 \
    do {                                                                                                                           \
        if ((call) != 0)                                                                                                           \
            abort();                                                                                                               \
    } while (0)

/*
 * Renders a scalar (nil, boolean, integer within int64, finite real, str) as JSON into out,
 * exactly as xws_msgpack_to_json renders it inside a tree. -1 for a container, BIN, EXT, an
 * integer above INT64_MAX, a non-finite real, a str that is not UTF-8.
 */
int xws_json_scalar(const msgpack_object *o, xws_buf_t *out);

/*
 * Appends s/n as a JSON string (xws_json_string); with nul_ok 0 a NUL byte is refused like
 * invalid UTF-8 (a map key: PROTOCOL.md §7). Returns 0, or -1 with out's text unchanged.
 */
int xws_json_escape(xws_buf_t *out, const char *s, size_t n, int nul_ok);

#endif
