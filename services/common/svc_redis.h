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
struct svc_coro;

/*
 * Creates a connection handle for spec ("unix:/path/redis.sock", "tcp://host:port", host may
 * be "[v6addr]", or "sentinel://host:port[,host:port...]/master": the primary named master,
 * asked of those Redis Sentinels at every connect; a connection to a server that is not a
 * primary, or a write refused with READONLY (a failover under way), is dropped and the primary
 * asked for again, with the usual back-off). timeout_ms: connect and command timeout. libname/lua: the function library
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
 * freeReplyObject; it may be a REDIS_REPLY_ERROR), or NULL when Redis is unavailable: no connection,
 * or a server that refuses every command for now (LOADING its data set after a restart, BUSY with a
 * script beyond its time limit), which ran nothing.
 */
redisReply *svc_redis_command(svc_redis_t *self, int argc, const char **argv, const size_t *lens);

/*
 * Sends n commands in one round trip (a pipeline: Redis runs them in order, not atomically) and
 * stores their replies in out[0..n-1] (caller frees each with freeReplyObject). A broken
 * connection is re-opened once and the whole pipeline sent again, so use it for reads only.
 * Returns 0, or -1 (every out[i] NULL) when Redis is unavailable (as for svc_redis_command).
 */
int svc_redis_pipeline(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs, redisReply **out);

/*
 * A transaction in one round trip: MULTI, the n commands (argcs/argvs), EXEC, sent as one
 * pipeline (svc_redis_pipeline: a broken connection is re-opened once and everything sent again,
 * so use it for reads). Returns EXEC's reply (an array of the n replies; an error or nil reply
 * when the transaction failed; the caller frees it), or NULL when Redis is unavailable.
 */
redisReply *svc_redis_tx(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs);

/*
 * An HGETALL reply seen as a map: its (field, value) pairs sorted by field (length, then bytes),
 * looked up by binary search, so that a worker joins whole hashes read in one transaction
 * without a Redis function copying them. The pairs are borrowed from the reply, which must
 * outlive the view.
 */
typedef struct {
    const redisReply **_pairs; /* field, value, field, value, ... sorted by field */
    size_t n;                  /* number of pairs */
} svc_hash_t;

/* Builds the view of reply h: 0, or -1 (the view empty) when h is not an array of strings of even length. */
int svc_hash_init(svc_hash_t *self, const redisReply *h);
/* Frees the view (not the reply); NULL-safe for an initialised or zeroed view. */
void svc_hash_dispose(svc_hash_t *self);
/* The value of field/len, or NULL when the hash has no such field. */
const redisReply *svc_hash_get(const svc_hash_t *self, const char *field, size_t len);

/*
 * FCALL (readonly: FCALL_RO) of function fn with nkeys keys and nargs arguments (arglens may be
 * NULL). Reloads the library and retries once on "Function not found". Same return as
 * svc_redis_command.
 */
redisReply *svc_redis_fcall(svc_redis_t *self, int readonly, const char *fn, int nkeys, const char *const *keys, int nargs,
                            const char *const *args, const size_t *arglens);

/* Loads the library now (FUNCTION LOAD REPLACE). 0, or -1 (logged). */
int svc_redis_load(svc_redis_t *self);

/*
 * The version the function library is named after (default: this build's, xws_version()): the
 * library is "<libname>_v<version>" and each function "<name>_v<version>" (dots become '_'), so
 * that workers of two versions run side by side on one Redis (a rolling upgrade). FCALLs through
 * svc_redis_fcall add the suffix; a command built by hand adds svc_redis_fn_suffix().
 */
void svc_redis_set_library_version(svc_redis_t *self, const char *version);
const char *svc_redis_fn_suffix(const svc_redis_t *self);

/* The run_id of the Redis process of the current connection (read at each connect; another one
 * after Redis restarted or failed over), "" before the first connect or when INFO does not give
 * it. Entity tags mix it in (svc_ctx.h). */
const char *svc_redis_run_id(const svc_redis_t *self);

/* AUTH password after every connect (Redis requirepass); NULL or "": none. Copied. */
void svc_redis_set_password(svc_redis_t *self, const char *password);
/* The same from the first line of file path (a container secret); NULL or "": nothing. 0, or -1 (logged). */
int svc_redis_password_file(svc_redis_t *self, const char *path);

/*
 * Acknowledged writes (setting redis_wait_replicas): after each write, WAIT until `replicas`
 * replicas have it, for at most timeout_ms (kept below the command timeout). 0 replicas: off.
 */
void svc_redis_set_wait(svc_redis_t *self, int replicas, int timeout_ms);
/* The replicas a write waits for (0: none). */
int svc_redis_wait_wanted(const svc_redis_t *self);
/* WAIT as set: 0 when enough replicas have every write of this connection so far (or none is
 * wanted), -1 otherwise; *acked: how many did. */
int svc_redis_wait(svc_redis_t *self, int *acked);

/* The spec given to svc_redis_new (for messages). */
const char *svc_redis_spec(const svc_redis_t *self);

/* ---- commands of coroutines --------------------------------------------------------------------
 *
 * Called from inside a coroutine (svc_coro_current() != NULL), svc_redis_command, _pipeline and
 * _fcall do not block the thread: they format their commands into the handle's output buffer,
 * note that the coroutine waits for that many replies, and suspend it. The owner of the
 * coroutines (svc_worker's loop) moves the bytes and resumes them:
 *
 *     fd = svc_redis_io_wanted(r, &rd, &wr);      // poll fd for rd / wr, at most svc_redis_wait_ms
 *     svc_redis_io(r);                            // write what is queued, read what arrived
 *     while ((co = svc_redis_next_ready(r, &large)))  // every coroutine whose replies are all in
 *         svc_coro_resume(co);
 *
 * So every command queued in one loop turn, by any number of requests, leaves in one write, and
 * Redis answers them in one pipeline. Replies come back in order and each coroutine receives
 * exactly the replies of its own commands. When the connection fails or the oldest awaited reply
 * is older than the timeout, the connection is dropped and every waiting coroutine is made ready
 * with a failure (the call then behaves as in the blocking case: one immediate reconnect and
 * resend after a broken connection, none after a timeout). The same functions called outside a
 * coroutine block, as described above; a handle must not mix both while coroutines wait.
 */

/*
 * The connection's fd and what to wait for: *want_read when replies are awaited, *want_write
 * when queued output is left. Returns -1 (both 0) while disconnected.
 */
int svc_redis_io_wanted(const svc_redis_t *self, int *want_read, int *want_write);
/*
 * Writes queued output and reads available replies without blocking, handing complete replies
 * to their coroutines (see svc_redis_next_ready); drops the connection on an I/O error or an
 * expired timeout. Call it from outside any coroutine.
 */
void svc_redis_io(svc_redis_t *self);
/* Writes queued output without blocking (what is left goes with the next svc_redis_io). */
void svc_redis_flush(svc_redis_t *self);
/*
 * Drops the connection (failing every waiting coroutine) when the oldest awaited reply is overdue:
 * the timeout has passed since its commands were sent and since Redis last sent any bytes
 * (replies come in order: bytes arriving show Redis working through the pipeline). Reads what is
 * available first, so replies that arrived while the worker was busy are not taken for a hang.
 */
void svc_redis_expire(svc_redis_t *self, long long now_ms);
/* Milliseconds until the oldest awaited reply is overdue (0: now), or -1 when nothing is awaited. */
int svc_redis_wait_ms(const svc_redis_t *self, long long now_ms);
/*
 * The next coroutine whose call completed (or failed), to resume; NULL when there is none. Calls
 * whose replies are large (over 64 KiB on the wire: long lists) come after all the others, with
 * *large set to 1, so that the owner can send what the small ones finished before a long render.
 */
struct svc_coro *svc_redis_next_ready(svc_redis_t *self, int *large);
/* Number of coroutines waiting for replies. */
size_t svc_redis_waiting(const svc_redis_t *self);
/* The command timeout in milliseconds. */
long long svc_redis_timeout_ms(const svc_redis_t *self);

/* Self-test: parsing of specs and the unavailable path (needs no server). */
void svc_redis_test(void);

#ifdef __cplusplus
}
#endif
#endif
