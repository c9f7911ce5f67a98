/*
 * xws/notify.h - the service manager's readiness and watchdog protocol (systemd's sd_notify:
 * datagrams on $NOTIFY_SOCKET), spoken without libsystemd. Without NOTIFY_SOCKET (not started by
 * systemd with Type=notify) every call does nothing.
 */
#ifndef XWS_NOTIFY_H
#define XWS_NOTIFY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sends state ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...") to the service manager,
 * without ever waiting (a manager whose queue is full misses it: -1 with EAGAIN).
 * 0 sent, 1 no manager listens, -1 failed (errno). */
int xws_notify(const char *state);

/* The interval at which WATCHDOG=1 must be sent (half the manager's WATCHDOG_USEC), in
 * milliseconds; 0 when no watchdog is asked of this process. */
uint64_t xws_watchdog_interval_ms(void);

void xws_notify_test(void);

#ifdef __cplusplus
}
#endif
#endif
