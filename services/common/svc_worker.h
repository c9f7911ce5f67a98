/*
 * svc_worker - the worker side of PROTOCOL.md: a service is a table of resources, each a table
 * of acts with their handlers, plus a Redis function library; svc_worker runs the loop.
 *
 * The loop connects one DEALER per gateway worker endpoint (worker_endpoints), announces
 * READY <service> <worker_credit> <service-pid> batch, sends a HEARTBEAT with its report every
 * heartbeat_ms (PROTOCOL.md §2: the state of the store as its own PING probe found it, every
 * store_probe_ms, and its request, replayed-write and store-error counts), treats a gateway silent for expiry_ms as gone (the
 * socket is re-created and READY sent again; replies still owed to the old socket are dropped), and answers DISCONNECT with READY
 * (at most once a second).
 *
 * Requests overlap in one thread: each REQUEST (or each pair of a REQUEST batch) runs its
 * handler in a coroutine of its own (svc_coro), and a handler's Redis calls suspend it instead
 * of blocking (svc_redis). One loop turn: wait for the gateways and Redis; resume every
 * request whose Redis replies arrived; start every request that arrived; write every Redis
 * command queued by all of them in one write (Redis sees one pipeline); send every finished
 * reply, several per message to a gateway that sends batches. Handlers stay straight-line code.
 * A worker holds at most worker_credit requests per gateway link (the gateway enforces it; the
 * worker stops reading a link beyond it), so memory is bounded by the credit.
 *
 * Per request: decode (400 bad_envelope / unsupported_version); a request whose deadline has
 * passed is not handled but answered 504 timeout at once (logged), so that the gateway gets the
 * credit back; dispatch by resource and act (unknown act: the resource's default act; unknown
 * resource: 404); reply on the socket the request came from. SIGTERM/SIGINT: no new request is
 * taken, the requests in flight are finished (each bounded by the Redis timeout), DISCONNECT is
 * sent to every gateway, and svc_worker_run returns 0.
 *
 * Settings read (deploy/xws.conf): redis, redis_prefix, redis_timeout_ms, worker_endpoints,
 * heartbeat_ms, expiry_ms, worker_credit, write_id_ttl, store_probe_ms.
 */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include <msgpack.h>
#include "xws/config.h"
#include "xws/proto.h"
#include "svc_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A handler answers through the svc_reply_* functions; its return value is not used. */
typedef int (*svc_handler_fn)(svc_ctx_t *ctx);

typedef struct {
    const char *name;  /* act name */
    svc_handler_fn fn; /* its handler */
} svc_act_t;

typedef struct {
    const char *name;        /* resource name, as in the request envelope */
    const char *default_act; /* act for "" and for acts the resource does not know */
    const svc_act_t *acts;   /* terminated by {NULL, NULL} */
} svc_resource_t;

typedef struct {
    const char *service;             /* service name ([a-z0-9-], ≤ 32) */
    const char *lua;                 /* the function library body (without "#!lua"), or NULL */
    const svc_resource_t *resources; /* terminated by {NULL} */
    void *data;                      /* handed to every handler as ctx->data */
} svc_service_t;

/*
 * A second service that a process serves on threads of its own, beside its main one (e.g. slow
 * password checks that must not hold up the main service's requests): each thread is one worker
 * of service, with its own gateway sockets and Redis connection and the given credit. The pool
 * uses the main service's function library (its own `lua` is not used). threads_key names the
 * setting that says how many threads (0: none, at most SVC_POOL_MAX_THREADS): the thread count is
 * the bound of the CPU the pool takes. The threads are SCHED_BATCH (the main worker preempts them
 * when it wakes) and run nice_key higher (a smaller CPU share when the CPU is short). A thread
 * cannot send heartbeats in the middle of a long computation: on a CPU saturated for longer than
 * expiry_ms the gateway may forget it; it then announces itself again and the gateway sends the
 * request it held to another worker.
 */
typedef struct {
    const svc_service_t *service;
    const char *threads_key;
    int default_threads;  /* when the setting is absent */
    unsigned credit;      /* requests one thread holds at once (≥ 1) */
    const char *nice_key; /* setting: what the threads add to their nice value (0-19) */
    int default_nice;     /* when the setting is absent */
} svc_pool_t;

#define SVC_POOL_MAX_THREADS 64

typedef struct svc_worker svc_worker_t;

/* Requests one worker holds at once per gateway, unless worker_credit says otherwise. */
#define SVC_DEFAULT_CREDIT 64

/*
 * Creates a worker for service (borrowed) with the settings of cfg (borrowed; both must outlive
 * the worker). Returns NULL (logged) when a setting is malformed. Does not connect yet.
 */
svc_worker_t *svc_worker_new(const svc_service_t *service, xws_config_t *cfg);
/* NULL-safe; sets *self_p to NULL. */
void svc_worker_destroy(svc_worker_t **self_p);

/* Runs the loop until SIGTERM or SIGINT. Returns 0, or -1 when the sockets cannot be set up. */
int svc_worker_run(svc_worker_t *self);

/*
 * Handles one request envelope (the REQUEST's payload) without any socket: decodes it,
 * dispatches it and appends the reply envelope to out. Returns 1 (a reply was produced: a request
 * whose deadline has passed is not handled and gets 504 timeout, which gives the gateway the
 * worker's credit back at once). Called outside a coroutine, its Redis calls block (tools, tests).
 */
int svc_worker_handle(svc_worker_t *self, const void *envelope, size_t len, msgpack_sbuffer *out);

/* The worker's Redis handle, key prefix and write-id ttl (for tools built on a worker). */
svc_redis_t *svc_worker_redis(svc_worker_t *self);
const char *svc_worker_prefix(svc_worker_t *self);
long long svc_worker_write_id_ttl(svc_worker_t *self);

/*
 * The usual main(): parses "[-c|--config FILE] [-v|--verbose]" (-v: debug log, one line per
 * request; -h/--help and -V/--version too, xws/cli.h), loads the settings and runs the worker.
 * Returns the process exit status (0, 1 error, 2 usage).
 */
int svc_main(const svc_service_t *service, int argc, char **argv);

/* A command a worker binary also offers ("xws-config account ..."): run instead of the worker. */
typedef struct {
    const char *name;  /* the first operand that selects it: "account" */
    const char *usage; /* its line in --help: "account COMMAND ...  manage web-service accounts" */
    /* runs it with the settings file given by -c (or NULL) and argv[0] = name; the exit status */
    int (*run)(const char *config_path, int argc, char **argv);
} svc_command_t;

/*
 * svc_main, plus the command cmd (may be NULL) selected by its first operand, and the threads of
 * pool (borrowed, may be NULL), which stop with the main worker (SIGTERM/SIGINT); a pool thread
 * that fails stops the whole process (exit status 1).
 */
int svc_main_with(const svc_service_t *service, const svc_command_t *cmd, const svc_pool_t *pool, int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
