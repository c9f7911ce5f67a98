/*
 * svc_mp - msgpack helpers: map look-up, string access and packing of C strings.
 */
#ifndef SVC_MP_H
#define SVC_MP_H

#include <stddef.h>
#include <msgpack.h>
#include "xws/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value under key in map (a MAP object; anything else gives NULL); NULL when absent. A key given
 * twice (an internal consumer's msgpack may hold duplicates): the last one wins, as in JSON. Borrowed. */
const msgpack_object *svc_mp_get(const msgpack_object *map, const char *key);
/* 1 when o is a str equal to s. */
int svc_mp_str_eq(const msgpack_object *o, const char *s);
/* The bytes of a str object as a slice; the empty slice for anything else. */
xws_slice_t svc_mp_slice(const msgpack_object *o);
/* A msgpack_packer write callback for a msgpack_sbuffer that aborts on out-of-memory. */
int svc_mp_write(void *sbuffer, const char *buf, size_t len);
/* Packs a NUL-terminated string (NULL packs ""). */
void svc_mp_cstr(msgpack_packer *pk, const char *s);
/* Packs len bytes as a str. */
void svc_mp_strn(msgpack_packer *pk, const char *p, size_t len);
/* Packs key s (a str) then nothing else: a shorthand for map keys. */
#define svc_mp_key(pk, s) svc_mp_cstr((pk), (s))
/*
 * Unpacks data/len into u (initialised by the call; destroy it with msgpack_unpacked_destroy
 * in every case). Returns 0 when the buffer holds exactly one well-formed object, else -1.
 */
int svc_mp_unpack(msgpack_unpacked *u, const char *data, size_t len);

void svc_mp_test(void);

#ifdef __cplusplus
}
#endif
#endif
