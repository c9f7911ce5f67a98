/* svc_log.c - see svc_log.h: the services' name for the one log format of xws/log.h. */
#include <stdarg.h>
#include "xws/log.h"
#include "svc_log.h"

void svc_log_set_program(const char *program)
{
    xws_log_set_program(program);
}

void svc_log_set_level(svc_log_level_t level)
{
    xws_log_set_level((xws_log_level_t)level);
}

int svc_log_enabled(svc_log_level_t level)
{
    return xws_log_enabled((xws_log_level_t)level);
}

void svc_log(svc_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xws_logv((xws_log_level_t)level, fmt, ap);
    va_end(ap);
}
