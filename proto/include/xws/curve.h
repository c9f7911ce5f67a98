/*
 * xws/curve.h - ZeroMQ CURVE keys as the XWS processes use them (PROTOCOL.md §1.1): czmq
 * certificates ("NAME.key" public, "NAME.key_secret" secret, ZPL text with Z85 keys), a client
 * side for workers and internal consumers, and the key pairs that xws-keys writes. Includes
 * czmq: keep it out of headers every module includes.
 */
#ifndef XWS_CURVE_H
#define XWS_CURVE_H

#include <czmq.h>
#include "xws/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Length of a CURVE key in Z85 text, without its NUL. */
#define XWS_CURVE_KEY_TXT 40

/* 1 when the linked libzmq speaks CURVE (built with libsodium), else 0. */
int xws_curve_available(void);

/*
 * Loads the czmq certificate at path. with_secret: 1 when its secret key is needed (the file
 * must then hold one, as "NAME.key_secret" does). Returns the certificate (the caller destroys
 * it), or NULL with the reason in why (unreadable or malformed file, no secret key).
 */
zcert_t *xws_curve_load(const char *path, int with_secret, char *why, size_t whylen);

/*
 * Makes sock, before it connects, a CURVE client: own_cert is the path of this peer's secret
 * certificate, server_cert the path of the server's public certificate. Returns 0, or -1 with
 * the reason in why (either file unusable, or no CURVE in this libzmq); sock is unchanged then.
 */
int xws_curve_client(zsock_t *sock, const char *own_cert, const char *server_cert, char *why, size_t whylen);

/*
 * The CURVE settings of an internal consumer (xws-call, xws-bootstrap): curve_client_key (its
 * secret certificate) and curve_gateway_key (the gateway's public certificate). Returns 0 with
 * *own and *server both NULL (no curve_client_key: no CURVE; curve_gateway_key alone may be set
 * for the host's workers) or both set (strings owned by cfg); -1 with the reason in why when
 * curve_client_key is set without exactly one gateway certificate.
 */
int xws_curve_consumer_settings(xws_config_t *cfg, const char **own, const char **server, char *why, size_t whylen);

/*
 * Writes a new key pair named name (1-64 bytes of [A-Za-z0-9._-], stored in the certificate's
 * metadata as "name") into dir: dir/NAME.key (public, mode 0644) and dir/NAME.key_secret
 * (secret, mode 0600, never readable by others, even for a moment). Refuses to replace an
 * existing file unless force. On success returns 0 and, when public_txt is not NULL, copies the
 * public key as Z85 text into it (XWS_CURVE_KEY_TXT + 1 bytes); -1 with the reason in why.
 */
int xws_curve_keygen(const char *dir, const char *name, int force, char *public_txt, char *why, size_t whylen);

/* 1 when name is a valid key name for xws_curve_keygen. */
int xws_curve_name_ok(const char *name);

/* Self-test of this module (writes certificates in a directory under /tmp). */
void xws_curve_test(void);

#ifdef __cplusplus
}
#endif
#endif
