/*
 * gw_acl - the ACL rule of spec §2.1: which paths an account's ACL entries grant. Pure function.
 */
#ifndef GW_ACL_H
#define GW_ACL_H

#include <stddef.h>

/*
 * 1 when one entry of acl (n NUL-terminated strings) grants path: the entry is "*", equals path,
 * or is a prefix of path that ends at a '/' boundary (the entry ends with '/', or path continues
 * with '/'). An empty list grants nothing.
 */
int gw_acl_allows(char *const *acl, size_t n, const char *path);

/* Self-test: silent on success, aborts on failure. */
void gw_acl_test(void);

#endif
