/* svc_testredis.c - see svc_testredis.h */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "svc_testredis.h"

/* the bound of every wait: generous, so that a loaded machine makes the tests slower, never wrong */
#define WAIT_MS 30000

static long long s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when the server on the Unix socket sock answers PING (by until at the latest) */
static int s_ping(const char *sock, long long until)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(a.sun_path))
        return 0;
    strcpy(a.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    char buf[16];
    size_t n = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
        while (n < 7) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            long long left = until - s_mono_ms();
            if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                break;
            ssize_t k = read(fd, buf + n, sizeof(buf) - n);
            if (k <= 0)
                break;
            n += (size_t)k;
        }
    }
    close(fd);
    return n >= 7 && memcmp(buf, "+PONG\r\n", 7) == 0;
}

/* 1 while process pid exists and is not a zombie */
static int s_alive(int pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return kill(pid, 0) == 0;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *paren = strrchr(line, ')'); /* "pid (comm) S ...": comm may hold anything */
    return paren == NULL || (paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X');
}

int svc_testredis_start(const char *dir)
{
    char cmd[1024], sock[256], pidfile[256];
    snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", dir);
    unlink(pidfile); /* a stale one (a killed server) would name the wrong process */
    snprintf(cmd, sizeof(cmd),
             "redis-server --port 0 --unixsocket %s --unixsocketperm 700 --save '' --appendonly no "
             "--daemonize yes --pidfile %s --dir %s --logfile %s/redis.log",
             sock, pidfile, dir, dir);
    if (system(cmd) != 0)
        return -1;
    /* ready: it answers on its socket (the file alone may exist before the server listens) and wrote its pid */
    long long until = s_mono_ms() + WAIT_MS;
    while (s_mono_ms() < until) {
        if (svc_testredis_pid(dir) > 0 && s_ping(sock, until))
            return 0;
        usleep(10000);
    }
    return -1;
}

int svc_testredis_pid(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/redis.pid", dir);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f != NULL) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

void svc_testredis_stop(const char *dir)
{
    int pid = svc_testredis_pid(dir);
    if (pid > 0) {
        kill(pid, SIGCONT);
        kill(pid, SIGTERM);
        long long until = s_mono_ms() + WAIT_MS;
        while (s_alive(pid) && s_mono_ms() < until)
            usleep(10000);
        if (s_alive(pid)) {
            fprintf(stderr, "redis-server %d still runs %d ms after SIGTERM: SIGKILL\n", pid, WAIT_MS);
            kill(pid, SIGKILL);
            for (until = s_mono_ms() + WAIT_MS; s_alive(pid) && s_mono_ms() < until;)
                usleep(10000);
        }
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/redis.sock", dir);
    unlink(path);
}
