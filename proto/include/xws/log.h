/*
 * xws/log.h - the one log line format of every XWS process (gateway, workers, tools): on standard
 * error, one line per message, with the time (UTC, ms), the level, the process and its pid.
 *
 *   text (default):  2026-12-05T23:34:22.638Z xws-gateway[123] info: listening on https://...
 *   json (setting log_format = json):
 *     {"time":"2026-12-05T23:34:22.638Z","level":"info","process":"xws-gateway","pid":123,"msg":"..."}
 *
 * The gateway's access log keeps its own line (gateway/gw_log.h): it is data, not messages.
 */
#ifndef XWS_LOG_H
#define XWS_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { XWS_LOG_ERROR = 0, XWS_LOG_WARN = 1, XWS_LOG_INFO = 2, XWS_LOG_DEBUG = 3 } xws_log_level_t;

/* The process name of every line (borrowed: a string that lives forever). */
void xws_log_set_program(const char *program);
/* Lines above level are dropped. Default: XWS_LOG_INFO. */
void xws_log_set_level(xws_log_level_t level);
/* "text" or "json" (the log_format setting); 0, or -1 for anything else (nothing changes). */
int xws_log_set_format(const char *name);
/* 1 when a line at level would be written. */
int xws_log_enabled(xws_log_level_t level);
/* Writes one line (no trailing newline in fmt). */
void xws_log(xws_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xws_logv(xws_log_level_t level, const char *fmt, va_list ap);

void xws_log_test(void);

#ifdef __cplusplus
}
#endif
#endif
