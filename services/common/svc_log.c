/* svc_log.c - see svc_log.h */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "svc_log.h"

static const char *s_program = "xws";
static svc_log_level_t s_level = SVC_LOG_INFO;

void svc_log_set_program(const char *program)
{
    s_program = program;
}

void svc_log_set_level(svc_log_level_t level)
{
    s_level = level;
}

int svc_log_enabled(svc_log_level_t level)
{
    return level <= s_level;
}

void svc_log(svc_log_level_t level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (!svc_log_enabled(level))
        return;
    char line[2048], stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    int n =
        snprintf(line, sizeof(line), "%s.%03ldZ %s[%d] %s: ", stamp, ts.tv_nsec / 1000000, s_program, (int)getpid(), names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
