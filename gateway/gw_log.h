/*
 * gw_log - the access log: one line per HTTP request, to standard output, a file, or nowhere.
 * Line: <UTC time> <client> <method> <path without query> act=<act> <status> <body bytes>
 * <duration>ms account=<account or ->. Passwords and Authorization headers are never logged;
 * bytes that are not printable ASCII are written as \xHH.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_log gw_log_t;

/*
 * Opens the access log: "-" is standard output, "off" (or "" / NULL) disables it, anything else is
 * a file opened for appending. Returns NULL with the reason on stderr when the file cannot be
 * opened.
 */
gw_log_t *gw_log_new(const char *target);
/* NULL-safe; sets *self_p to NULL. */
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

/* Writes one line (no-op when disabled). */
void gw_log_access(gw_log_t *self, const gw_log_entry_t *e);

/* Escapes s into out (size ≥ 1): printable ASCII except space and backslash as is, others as \xHH. */
void gw_log_escape(const char *s, size_t len, char *out, size_t size);

void gw_log_test(void);

#endif
