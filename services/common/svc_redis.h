/*
 * svc_redis - one synchronous Redis connection of a worker, with the service's function library.
 *
 * The connection is opened lazily and re-opened after any failure, with an exponential back-off
 * (100 ms doubling to 1 s) so that a Redis that is down costs a request nothing but a clock
 * read: while it is down every call returns NULL at once ("unavailable"), and handlers answer
 * 500. The command timeout (redis_timeout_ms) is applied again after every reconnect. SIGPIPE
 * must be ignored by the process (svc_worker and the tools do it).
 *
 * The service's Lua library is loaded with FUNCTION LOAD REPLACE after every connect, and again
 * when an FCALL answers "Function not found" (a FUNCTION FLUSH, a fresh Redis behind a proxy).
 */
#ifndef SVC_REDIS_H
#define SVC_REDIS_H

#include <stddef.h>
#include <hiredis.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_redis svc_redis_t;

/*
 * Creates a connection handle for spec ("unix:/path/redis.sock" or "tcp://host:port", host may
 * be "[v6addr]"). timeout_ms: connect and command timeout. libname/lua: the function library
 * (lua holds the library body without the "#!lua" line; both borrowed, must outlive the handle;
 * lua may be NULL for no library). Does not connect yet. Returns NULL (and logs) on a malformed
 * spec.
 */
svc_redis_t *svc_redis_new(const char *spec, int timeout_ms, const char *libname, const char *lua);
/* NULL-safe; closes the connection and sets *self_p to NULL. */
void svc_redis_destroy(svc_redis_t **self_p);

/* Connects now if not connected and the back-off allows it. 0 when connected, else -1. */
int svc_redis_connect(svc_redis_t *self);

/*
 * Runs one command (argv with lengths; lens may be NULL for NUL-terminated strings). A broken
 * connection is re-opened once and the command sent again, so use it for commands that are safe
 * to repeat (reads, and writes guarded by a write id). Returns the reply (caller frees it with
 * freeReplyObject; it may be a REDIS_REPLY_ERROR), or NULL when Redis is unavailable.
 */
redisReply *svc_redis_command(svc_redis_t *self, int argc, const char **argv, const size_t *lens);

/*
 * Sends n commands in one round trip (a pipeline: Redis runs them in order, not atomically) and
 * stores their replies in out[0..n-1] (caller frees each with freeReplyObject). A broken
 * connection is re-opened once and the whole pipeline sent again, so use it for reads only.
 * Returns 0, or -1 (every out[i] NULL) when Redis is unavailable.
 */
int svc_redis_pipeline(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs, redisReply **out);

/*
 * FCALL (readonly: FCALL_RO) of function fn with nkeys keys and nargs arguments (arglens may be
 * NULL). Reloads the library and retries once on "Function not found". Same return as
 * svc_redis_command.
 */
redisReply *svc_redis_fcall(svc_redis_t *self, int readonly, const char *fn, int nkeys, const char *const *keys, int nargs,
                            const char *const *args, const size_t *arglens);

/* Loads the library now (FUNCTION LOAD REPLACE). 0, or -1 (logged). */
int svc_redis_load(svc_redis_t *self);

/* The spec given to svc_redis_new (for messages). */
const char *svc_redis_spec(const svc_redis_t *self);

/* Self-test: parsing of specs and the unavailable path (needs no server). */
void svc_redis_test(void);

#ifdef __cplusplus
}
#endif
#endif
