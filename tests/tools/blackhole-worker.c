/*
 * xws-test-blackhole - a worker that registers for a service, heartbeats, and never answers a
 * request. The black-box tests use it to check that the gateway answers 504 at the deadline and
 * keeps serving meanwhile.
 *
 * Usage: xws-test-blackhole [-c FILE] [-s SERVICE] [-n CREDIT]
 *   -c FILE     settings file (default: $XWS_CONFIG); reads worker_endpoints and heartbeat_ms
 *   -s SERVICE  service to announce (default: config)
 *   -n CREDIT   credit to announce, 1-1000 (default: 1000, so that every request reaches it)
 *
 * It connects a DEALER to every worker endpoint, sends READY, answers DISCONNECT with READY
 * (re-registration after a gateway restart), sends HEARTBEAT every heartbeat interval, counts the
 * requests it swallows, and stops on SIGINT/SIGTERM with a DISCONNECT.
 */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xws/config.h"
#include "xws/frames.h"

#define MAX_ENDPOINTS 16

static void usage(void)
{
    fprintf(stderr, "usage: xws-test-blackhole [-c FILE] [-s SERVICE] [-n CREDIT]\n");
    exit(2);
}

/* Connects one DEALER per comma-separated endpoint of list into socks; returns how many, -1 on error. */
static int connect_all(const char *list, zsock_t **socks)
{
    int n = 0;
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL)
        abort();
    for (char *ep = strtok_r(copy, ",", &save); ep != NULL; ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        size_t len = strlen(ep);
        while (len > 0 && ep[len - 1] == ' ')
            ep[--len] = '\0';
        if (len == 0)
            continue;
        if (n == MAX_ENDPOINTS) {
            fprintf(stderr, "blackhole: more than %d endpoints\n", MAX_ENDPOINTS);
            break;
        }
        zsock_t *s = zsock_new(ZMQ_DEALER);
        if (s == NULL || zsock_connect(s, "%s", ep) != 0) {
            fprintf(stderr, "blackhole: cannot connect to %s\n", ep);
            zsock_destroy(&s);
            free(copy);
            return -1;
        }
        zsock_set_linger(s, 0);
        socks[n++] = s;
        fprintf(stderr, "blackhole: connected to %s\n", ep);
    }
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *service = "config";
    long credit = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "c:s:n:h")) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            service = optarg;
            break;
        case 'n': {
            char *end;
            errno = 0;
            credit = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || credit < 1 || credit > 1000)
                usage();
            break;
        }
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();

    xws_config_t *cfg = xws_config_load(config_path);
    if (cfg == NULL)
        return 1;
    const char *endpoints = xws_config_get(cfg, "worker_endpoints", "ipc://${run_dir}/workers.ipc");
    long long heartbeat_ms = xws_config_int(cfg, "heartbeat_ms", 1000);
    if (heartbeat_ms <= 0) {
        fprintf(stderr, "blackhole: bad heartbeat_ms\n");
        xws_config_destroy(&cfg);
        return 1;
    }

    zsock_t *socks[MAX_ENDPOINTS];
    int nsocks = connect_all(endpoints, socks);
    if (nsocks <= 0) {
        xws_config_destroy(&cfg);
        return 1;
    }
    zpoller_t *poller = zpoller_new(NULL);
    if (poller == NULL)
        abort();
    for (int i = 0; i < nsocks; i++) {
        zpoller_add(poller, socks[i]);
        xws_send_ready(socks[i], service, (unsigned)credit, "blackhole", NULL);
    }
    fprintf(stderr, "blackhole: READY %s %ld sent\n", service, credit);

    unsigned long swallowed = 0;
    int64_t next_heartbeat = zclock_mono() + heartbeat_ms;
    while (!zsys_interrupted) {
        int64_t wait_ms = next_heartbeat - zclock_mono();
        zsock_t *which = zpoller_wait(poller, (int)(wait_ms > 0 ? wait_ms : 0));
        if (zpoller_terminated(poller))
            break;
        if (which != NULL) {
            for (;;) {
                xws_frames_t f;
                const char *err = NULL;
                memset(&f, 0, sizeof(f));
                int rc = xws_frames_recv(&f, which, 0, &err);
                if (rc == 0) {
                    if (f.cmd == XWS_CMD_REQUEST) {
                        swallowed++;
                        fprintf(stderr, "blackhole: swallowed request %lu\n", swallowed);
                    } else if (f.cmd == XWS_CMD_DISCONNECT) {
                        fprintf(stderr, "blackhole: DISCONNECT received, sending READY again\n");
                        xws_send_ready(which, service, (unsigned)credit, "blackhole", NULL);
                    }
                    xws_frames_dispose(&f);
                    continue;
                }
                xws_frames_dispose(&f);
                if (err != NULL && strcmp(err, "no message") == 0)
                    break;
                fprintf(stderr, "blackhole: malformed message dropped: %s\n", err ? err : "?");
            }
        }
        if (zclock_mono() >= next_heartbeat) {
            for (int i = 0; i < nsocks; i++)
                xws_send_heartbeat(socks[i], NULL);
            next_heartbeat = zclock_mono() + heartbeat_ms;
        }
    }

    for (int i = 0; i < nsocks; i++) {
        xws_send_disconnect(socks[i], NULL);
        zsock_destroy(&socks[i]);
    }
    zpoller_destroy(&poller);
    xws_config_destroy(&cfg);
    fprintf(stderr, "blackhole: stopped after swallowing %lu requests\n", swallowed);
    return 0;
}
