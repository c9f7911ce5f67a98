/* internal.h - helpers shared by the modules of the proto library (not installed). */
#ifndef XWS_INTERNAL_H
#define XWS_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include "xws/check.h"

/* A self-test check that holds whatever NDEBUG says (xws/check.h). */
#define CHECK(x) XWS_CHECK(x)

/* Aborts when a msgpack packer call reports a failure (only out-of-memory can cause one). */
#define PACK(call)                                                                                                                 \
    do {                                                                                                                           \
        if ((call) != 0)                                                                                                           \
            abort();                                                                                                               \
    } while (0)

#endif
