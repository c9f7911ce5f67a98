/*
 * svc_etag - strong entity tags of read answers.
 *
 * An ETag is a hash (SHA-256, first 128 bits, hex, in double quotes) of: the key prefix, the
 * service, resource and act, the request parameters sorted by name (except "sum", which the
 * gateway answers itself), the store's epoch (a random token kept in Redis, so that a wiped and
 * refilled store never repeats an old tag) and the version counters of every resource the
 * answer depends on. Any write bumps its resource's counter, so the tag changes whenever the
 * data behind the answer may have changed, whichever worker or gateway made the change.
 */
#ifndef SVC_ETAG_H
#define SVC_ETAG_H

#include <stddef.h>
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SVC_ETAG_SIZE 35 /* quotes + 32 hex digits + NUL */

/*
 * Computes the tag into out. params may be NULL (no parameters); its keys and values must be
 * str objects (others are skipped). vers: n version numbers, in the order the handler declares
 * its resources.
 */
void svc_etag_compute(const char *prefix, const char *service, const char *resource, const char *act,
                      const msgpack_object_map *params, const char *epoch, const long long *vers, size_t n,
                      char out[SVC_ETAG_SIZE]);

void svc_etag_test(void);

#ifdef __cplusplus
}
#endif
#endif
