/*
 * gw_basic - the HTTP Basic credentials of an Authorization header. Pure function: it writes
 * only into the caller's buffers.
 */
#ifndef GW_BASIC_H
#define GW_BASIC_H

#include <stddef.h>

/*
 * Parses the value of an Authorization header. Returns 1 with login/password (NUL-terminated,
 * in the caller's buffers of size lsize/psize) for a well-formed "Basic <base64(login:password)>"
 * whose decoded text holds no NUL byte, 0 when the header is absent (hdr NULL or empty),
 * -1 when it is present but not usable (another scheme, bad base64, no ':', too long): the
 * caller treats -1 as wrong credentials.
 */
int gw_basic_parse(const char *hdr, size_t len, char *login, size_t lsize, char *password, size_t psize);

/* Self-test: silent on success, aborts on failure. */
void gw_basic_test(void);

#endif
