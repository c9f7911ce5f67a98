/*
 * svc_util - small helpers shared by the worker library: allocation that aborts on
 * out-of-memory, clocks, an NDEBUG-proof check macro for self-tests, and UTF-8 checks.
 */
#ifndef SVC_UTIL_H
#define SVC_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "xws/check.h"
#include "xws/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The project's one check macro is XWS_CHECK (xws/check.h, included here): it prints the failed
 * expression and aborts, also when NDEBUG is defined.
 */

/* The services' one allocation helper: never returns NULL (aborts on out-of-memory). */
void *svc_malloc(size_t n);
void *svc_calloc(size_t n, size_t size);
void *svc_realloc(void *p, size_t n);
char *svc_strdup(const char *s);
char *svc_strndup(const char *s, size_t n); /* copies n bytes (NULs included) and adds a NUL */

/* Milliseconds: of a monotonic clock, and of the Unix epoch. */
long long svc_now_mono_ms(void);
long long svc_now_ms(void);
/* Microseconds of a monotonic clock. */
long long svc_now_mono_us(void);

/*
 * Counts the code points of s/len when it is valid UTF-8 (shortest forms, no surrogates, at most
 * U+10FFFF); -1 otherwise.
 */
long svc_utf8_len(const char *s, size_t len);

/*
 * 1 when s/len is "printable": valid UTF-8 without control characters (C0, DEL, C1); tab and
 * newline are allowed when multiline is 1 (description fields), carriage return never.
 */
int svc_printable(const char *s, size_t len, int multiline);

/* 1 when needle occurs in hay, case-insensitively (Unicode simple lower-casing of UTF-8 text). */
int svc_icontains(const char *hay, size_t haylen, const char *needle, size_t nlen);

/* Fills buf (n + 1 bytes) with n characters drawn uniformly from alphabet, from the OS RNG. */
void svc_random_chars(char *buf, size_t n, const char *alphabet);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void svc_hex(const unsigned char *p, size_t n, char *out);

void svc_util_test(void);

#ifdef __cplusplus
}
#endif
#endif
