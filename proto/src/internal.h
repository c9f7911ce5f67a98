/* internal.h - helpers shared by the modules of the proto library (not installed). */
#ifndef XWS_INTERNAL_H
#define XWS_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

/* A self-test check that holds whatever NDEBUG says: prints the failed condition and aborts. */
#define CHECK(x)                                                                                                                   \
    do {                                                                                                                           \
        if (!(x)) {                                                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                                                  \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

/* Aborts when a msgpack packer call reports a failure (only out-of-memory can cause one). */
#define PACK(call)                                                                                                                 \
    do {                                                                                                                           \
        if ((call) != 0)                                                                                                           \
            abort();                                                                                                               \
    } while (0)

#endif
