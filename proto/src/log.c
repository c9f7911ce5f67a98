/* log.c - the one log line format (see xws/log.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "xws/check.h"
#include "xws/log.h"
#include "xws/proto.h"

static const char *s_program = "xws";
static xws_log_level_t s_level = XWS_LOG_INFO;
static int s_json;
static FILE *s_out; /* NULL: stderr (the self-test writes elsewhere) */

void xws_log_set_program(const char *program)
{
    s_program = program;
}

void xws_log_set_level(xws_log_level_t level)
{
    s_level = level;
}

int xws_log_set_format(const char *name)
{
    if (name == NULL || strcmp(name, "text") == 0 || name[0] == '\0')
        s_json = 0;
    else if (strcmp(name, "json") == 0)
        s_json = 1;
    else
        return -1;
    return 0;
}

int xws_log_enabled(xws_log_level_t level)
{
    return level <= s_level;
}

void xws_logv(xws_log_level_t level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (!xws_log_enabled(level))
        return;
    char msg[2048], stamp[40];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    FILE *out = s_out != NULL ? s_out : stderr;
    if (!s_json) {
        fprintf(out, "%s %s[%d] %s: %s\n", stamp, s_program, (int)getpid(), names[level], msg);
        return;
    }
    xws_buf_t line;
    xws_buf_init(&line);
    xws_buf_addf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"process\":", stamp, names[level]);
    xws_json_string(&line, s_program, strlen(s_program));
    xws_buf_addf(&line, ",\"pid\":%d,\"msg\":", (int)getpid());
    xws_json_string(&line, msg, strlen(msg));
    fprintf(out, "%.*s}\n", (int)line.len, line.data);
    xws_buf_dispose(&line);
}

void xws_log(xws_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xws_logv(level, fmt, ap);
    va_end(ap);
}

void xws_log_test(void)
{
    char buf[1024];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    XWS_CHECK(f != NULL);
    s_out = f;
    xws_log_set_program("xws-test");
    XWS_CHECK(xws_log_set_format("yaml") == -1 && xws_log_set_format("text") == 0);
    xws_log(XWS_LOG_WARN, "a %s", "warning");
    xws_log(XWS_LOG_DEBUG, "dropped");
    XWS_CHECK(xws_log_set_format("json") == 0);
    xws_log(XWS_LOG_ERROR, "quote \" and\nnewline");
    fflush(f);
    XWS_CHECK(strstr(buf, "Z xws-test[") != NULL && strstr(buf, "] warning: a warning\n") != NULL);
    XWS_CHECK(strstr(buf, "dropped") == NULL);
    XWS_CHECK(strstr(buf, "\"level\":\"error\",\"process\":\"xws-test\",\"pid\":") != NULL);
    XWS_CHECK(strstr(buf, "\"msg\":\"quote \\\" and\\nnewline\"}\n") != NULL);
    fclose(f);
    s_out = NULL;
    xws_log_set_format("text");
    xws_log_set_program("xws");
}
