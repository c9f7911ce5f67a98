/* gw_app.c - what the whole gateway process shares: request ids and the clock (see gw_app.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include "gw_app.h"

uint64_t gw_app_unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void gw_app_rid(gw_app_t *app, char *buf, size_t size)
{
    /* "<instance>-<counter>", formatted by hand: it runs once per request */
    char digits[24];
    size_t nd = 0;
    uint64_t v = ++app->rid_counter;
    do
        digits[nd++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    size_t il = strlen(app->instance);
    if (il + 1 + nd + 1 > size) { /* cannot happen with XWS_MAX_RID-sized buffers; stay correct anyway */
        snprintf(buf, size, "%s-%" PRIu64, app->instance, app->rid_counter);
        return;
    }
    memcpy(buf, app->instance, il);
    buf[il] = '-';
    for (size_t i = 0; i < nd; i++)
        buf[il + 1 + i] = digits[nd - 1 - i];
    buf[il + 1 + nd] = '\0';
}

void gw_app_submit_error(int rc, const char *service, char *buf, size_t size)
{
    if (rc == GW_SUBMIT_FULL)
        snprintf(buf, size, "every worker of service %s is busy and its queue is full", service);
    else
        snprintf(buf, size, "no worker of service %s is available", service);
}
