/*
 * svc_log - one-line logs on standard error, with a level threshold: the services' name for the
 * one log format of every process (xws/log.h; text or JSON lines, setting log_format).
 *
 * A text line reads "<UTC time> <program>[<pid>] <level>: <text>". Errors are always written; debug
 * lines only when the threshold was raised (svc_log_set_level), so handlers can test
 * svc_log_enabled(SVC_LOG_DEBUG) before building an expensive line.
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SVC_LOG_ERROR = 0,
    SVC_LOG_WARN = 1,
    SVC_LOG_INFO = 2,
    SVC_LOG_DEBUG = 3,
} svc_log_level_t;

/* Sets the program name shown in every line (borrowed: a string that lives forever). */
void svc_log_set_program(const char *program);
/* Lines above level are dropped. Default: SVC_LOG_INFO. */
void svc_log_set_level(svc_log_level_t level);
/* 1 when a line at level would be written. */
int svc_log_enabled(svc_log_level_t level);
/* Writes one line (a trailing newline is added). */
void svc_log(svc_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
