/*
 * gw_log - the access log: one line per HTTP request, to standard output, a file, or nowhere.
 * Line: <UTC time> <client> <method> <path without query> act=<act> <status> <body bytes>
 * <duration>ms account=<account or ->. Passwords and Authorization headers are never logged;
 * bytes that are not printable ASCII are written as \xHH.
 *
 * Lines are not written one by one: gw_log_access appends the line to a memory buffer, and the
 * buffer goes out with one write(2) when it holds GW_LOG_FLUSH_BYTES, when a loop timer fires
 * GW_LOG_FLUSH_MS after the first line that found it empty, on gw_log_flush, and at
 * gw_log_destroy. So a line reaches its output at most about GW_LOG_FLUSH_MS after the request
 * (while the loop runs), the process makes one system call per flush rather than per request, and
 * a clean exit (gw_log_destroy in the stop path) loses nothing; a crash or SIGKILL loses at most
 * the last few milliseconds of lines.
 *
 * Writes: a partial write keeps the rest for the next one; EINTR is retried; EAGAIN (an output
 * that someone made non-blocking and that is full) keeps the lines, which the timer retries, up
 * to GW_LOG_MAX_BYTES buffered, beyond which new lines are dropped and counted. Any other write
 * error (EPIPE, ENOSPC...) drops the buffered lines and is reported on stderr, once per episode,
 * with the count of lost lines when writing works again. Single-threaded: the event loop's thread.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <stdint.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0 /* the evloop flavour of h2o */
#endif
#include <h2o.h>

/* the buffer is written when it holds this much */
#define GW_LOG_FLUSH_BYTES (64 * 1024)
/* and at the latest this long after its first line */
#define GW_LOG_FLUSH_MS 5
/* lines that find this much unwritten (the output blocks) are dropped */
#define GW_LOG_MAX_BYTES (4 * 1024 * 1024)
/* gw_log_destroy waits at most this long for an output that would block */
#define GW_LOG_EXIT_WAIT_MS 5000

typedef struct gw_log gw_log_t;

/*
 * Opens the access log: "-" is standard output, "off" (or "" / NULL) disables it, anything else is
 * a file opened for appending (created 0666 & ~umask). loop: the event loop whose timer writes the
 * buffer (it must outlive the log); NULL for no timer (the buffer is then written only when full,
 * on gw_log_flush and at destroy). Returns NULL with the reason on stderr when the file cannot be
 * opened.
 */
gw_log_t *gw_log_new(h2o_loop_t *loop, const char *target);
/* Opens the file again (after a log rotation moved it: SIGHUP), the buffered lines going to the
 * old one first. 0 (also for standard output or no log), -1 (reported; the old file is kept). */
int gw_log_reopen(gw_log_t *self);
/* NULL-safe; writes what is buffered (waiting at most GW_LOG_EXIT_WAIT_MS for a non-blocking output
 * that stays full), closes a file, stops the timer, and sets *self_p to NULL. */
void gw_log_destroy(gw_log_t **self_p);

/* One entry; the (ptr, len) strings need not be NUL-terminated. duration_us is in microseconds. */
typedef struct {
    const char *client;
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *act;
    size_t act_len;
    int status;
    size_t bytes;
    uint64_t duration_us;
    const char *account; /* NULL or "" when none */
} gw_log_entry_t;

/* Buffers one line (no-op when disabled or NULL); writes the buffer when it reaches GW_LOG_FLUSH_BYTES. */
void gw_log_access(gw_log_t *self, const gw_log_entry_t *e);

/* Writes what is buffered now. 0 when nothing is left buffered (written, or dropped after a write
 * error), -1 when some stays because the output would block (EAGAIN). NULL-safe (0). */
int gw_log_flush(gw_log_t *self);

/* Escapes s into out (size ≥ 1): printable ASCII except space and backslash as is, others as \xHH. */
void gw_log_escape(const char *s, size_t len, char *out, size_t size);

void gw_log_test(void);

#endif
