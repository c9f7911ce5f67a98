/*
 * xws/check.h - the self-test check of every module of the project: unlike assert(), it holds
 * whatever NDEBUG says (Release builds test too). On failure it prints the file, the line and the
 * failed condition, then aborts.
 */
#ifndef XWS_CHECK_H
#define XWS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define XWS_CHECK(x)                                                                                                               \
    do {                                                                                                                           \
        if (!(x)) {                                                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                                                  \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

#endif
