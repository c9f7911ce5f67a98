/* notify.c - readiness and watchdog notifications to systemd (see xws/notify.h). */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "xws/check.h"
#include "xws/notify.h"

int xws_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* never wait: a full queue at the receiver must not stall the caller's event loop (the notification is dropped) */
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(state) ? 0 : -1;
}

uint64_t xws_watchdog_interval_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (usec == NULL || usec[0] == '\0')
        return 0;
    /* WATCHDOG_PID names the process the watchdog is for (a child does not inherit it) */
    if (pid != NULL && pid[0] != '\0' && strtoll(pid, NULL, 10) != (long long)getpid())
        return 0;
    char *end;
    unsigned long long us = strtoull(usec, &end, 10);
    if (*end != '\0' || us == 0)
        return 0;
    uint64_t ms = us / 2000;
    return ms > 0 ? ms : 1;
}

void xws_notify_test(void)
{
    unsetenv("NOTIFY_SOCKET");
    XWS_CHECK(xws_notify("READY=1") == 1);
    char dir[] = "/tmp/xws-notify-XXXXXX";
    XWS_CHECK(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof(path), "%s/n.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    XWS_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    setenv("NOTIFY_SOCKET", path, 1);
    XWS_CHECK(xws_notify("READY=1") == 0);
    char buf[32] = {0};
    XWS_CHECK(recv(fd, buf, sizeof(buf) - 1, 0) == 7 && strcmp(buf, "READY=1") == 0);
    setenv("NOTIFY_SOCKET", "relative", 1);
    XWS_CHECK(xws_notify("READY=1") == -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    rmdir(dir);
    setenv("WATCHDOG_USEC", "3000000", 1);
    unsetenv("WATCHDOG_PID");
    XWS_CHECK(xws_watchdog_interval_ms() == 1500);
    setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog */
    XWS_CHECK(xws_watchdog_interval_ms() == 0 || getpid() == 1);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "x", 1);
    XWS_CHECK(xws_watchdog_interval_ms() == 0);
    unsetenv("WATCHDOG_USEC");
    XWS_CHECK(xws_watchdog_interval_ms() == 0);
}
