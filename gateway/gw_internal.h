/*
 * gw_internal - the endpoint of internal consumers (PROTOCOL.md §1): a second ROUTER that takes
 * REQUEST [key][envelope] from any DEALER, sends the envelope to the same services as HTTPS
 * requests (caller mode "internal") and answers REPLY [key][reply envelope]. Protected by CURVE
 * when curve_clients_dir is set (ZAP domain "internal", gw_zap.h): the caller account and address
 * of each request are then the consumer's key name and peer address, never the envelope's. Without
 * CURVE, only ipc:// and loopback tcp:// endpoints are allowed.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <sys/types.h>
#include "gw_app.h"

/*
 * Binds endpoint and joins app's loop. curve_clients_dir: directory of the consumers' public
 * certificates (NULL or "": no CURVE); with it, curve_secret is the gateway's secret certificate
 * file and app->zap the running guard. Returns NULL with the reason on stderr (bind failure,
 * unreadable certificate or directory, no guard, or a non-local endpoint without CURVE).
 */
gw_internal_t *gw_internal_new(gw_app_t *app, const char *endpoint, const char *curve_secret, const char *curve_clients_dir);

/* Drops pending consumer requests (no answer), closes the endpoint. NULL-safe. */
void gw_internal_destroy(gw_internal_t **self_p);

/* Consumer requests waiting for a worker. */
size_t gw_internal_pending(gw_internal_t *self);

/* 1 when endpoint is ipc:// or tcp:// on a loopback address (127.0.0.0/8, [::1], localhost). */
int gw_endpoint_is_local(const char *endpoint);

/* The identity of the socket file of an "ipc://PATH" endpoint (zeros for other transports). */
typedef struct {
    dev_t dev;
    ino_t ino;
} gw_ipc_file_t;

/* Reads the identity of endpoint's socket file, just after this process bound it. */
gw_ipc_file_t gw_endpoint_file(const char *endpoint);

/* Opens the socket file of an "ipc://PATH" endpoint to its group (0770); nothing for other transports. */
void gw_endpoint_share(const char *endpoint);

/*
 * Removes the socket file of an "ipc://PATH" endpoint that this process bound, at a clean stop,
 * unless it is no longer the file recorded at the bind (another gateway bound the path since).
 */
void gw_endpoint_unlink(const char *endpoint, gw_ipc_file_t file);

void gw_internal_test(void);

#endif
