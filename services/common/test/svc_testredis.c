/* svc_testredis.c - see svc_testredis.h */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "svc_testredis.h"

int svc_testredis_start(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "redis-server --port 0 --unixsocket %s/redis.sock --unixsocketperm 700 --save '' --appendonly no "
             "--daemonize yes --pidfile %s/redis.pid --dir %s --logfile %s/redis.log",
             dir, dir, dir, dir);
    if (system(cmd) != 0)
        return -1;
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
    for (int i = 0; i < 200; i++) {
        struct stat st;
        if (stat(sock, &st) == 0)
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
        for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
            usleep(10000);
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/redis.sock", dir);
    unlink(path);
}
