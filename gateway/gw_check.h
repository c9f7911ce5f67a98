/*
 * gw_check - the self-test assertion of the gateway modules: unlike assert(), it is not compiled
 * away by NDEBUG, so the self-tests test in every build type.
 */
#ifndef GW_CHECK_H
#define GW_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define GW_CHECK(expr)                                                                                                             \
    do {                                                                                                                           \
        if (!(expr)) {                                                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);                                               \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

#endif
