/*
 * svc_testredis - a private redis-server for self-tests: daemonized in a temporary directory,
 * listening on <dir>/redis.sock only, no persistence.
 */
#ifndef SVC_TESTREDIS_H
#define SVC_TESTREDIS_H

/* Starts redis-server in dir and waits until it answers PING on its socket and its pid file is
 * written (30 s at most: a loaded machine is slow, not broken). 0, or -1. */
int svc_testredis_start(const char *dir);
/* The pid of the redis-server of dir, or 0 when unknown. */
int svc_testredis_pid(const char *dir);
/* Stops it (SIGCONT, in case a test left it stopped, then SIGTERM; waits until it is gone, SIGKILL
 * after 30 s) and removes its socket. */
void svc_testredis_stop(const char *dir);

#endif
