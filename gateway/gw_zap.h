/*
 * gw_zap - the CURVE guard of the gateway's two ROUTERs (PROTOCOL.md §1.1). One ZAP handler
 * (ZeroMQ RFC 27) bound on inproc://zeromq.zap.01 runs in a thread of its own (a zactor). Each
 * guarded socket is a CURVE server with the gateway's key pair and its own ZAP domain
 * (GW_ZAP_WORKERS, GW_ZAP_INTERNAL), and each domain has its own allow-list: a directory of
 * public certificates, read again at every handshake, so that adding or removing a file takes
 * effect for the next connection without a restart.
 *
 * An accepted peer's ZAP user id is the name of its certificate (metadata "name", else the file
 * name without ".key", else the key in Z85): every message from that connection carries it as
 * the "User-Id" property (zframe_meta), which the gateway trusts instead of anything the
 * message says. A refused peer is logged with its key (Z85), its address and the domain: an
 * unknown key by the handler, a peer that fails the handshake before (no CURVE, a wrong server
 * key) by a socket monitor. A peer that keeps trying is logged at most once a minute, with the
 * number of attempts in between.
 *
 * Threads: gw_zap_new, gw_zap_guard and gw_zap_destroy are called from the gateway's main
 * thread; the checks run in the handler's thread and only log.
 */
#ifndef GW_ZAP_H
#define GW_ZAP_H

#include <czmq.h>

#define GW_ZAP_WORKERS "workers"
#define GW_ZAP_INTERNAL "internal"

typedef struct gw_zap gw_zap_t;

/*
 * Starts the handler and binds it. Returns NULL (with the reason logged) when this libzmq has no
 * CURVE or the ZAP endpoint is taken (another handler in this process). Create it before any
 * guarded socket binds: a CURVE socket without a handler would accept every key.
 */
gw_zap_t *gw_zap_new(void);

/* Stops the handler. Destroy the guarded sockets first. NULL-safe; sets *self_p to NULL. */
void gw_zap_destroy(gw_zap_t **self_p);

/*
 * Makes sock, before it binds, a CURVE server in domain (one of the GW_ZAP_* names, each guarded
 * once): secret_cert is the gateway's secret certificate file, allow_dir the directory of the
 * public certificates of the peers allowed in (setting names in what_dir, for messages). Returns
 * 0, or -1 with the reason logged (unreadable certificate or directory, domain already guarded).
 */
int gw_zap_guard(gw_zap_t *self, zsock_t *sock, const char *domain, const char *secret_cert, const char *allow_dir,
                 const char *what_dir);

/*
 * The name of the peer that sent frame (a frame of a message received on a guarded socket), or
 * NULL when the connection is not authenticated by CURVE. The string belongs to the frame.
 */
const char *gw_zap_user(zframe_t *frame);

void gw_zap_test(void);

#endif
