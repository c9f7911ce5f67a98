/*
 * gw_testkit - what the gateway's module self-tests share to play a fake worker against a real
 * app loop and broker (gw_refresh, gw_verify): turning the loop, and receiving one REQUEST.
 */
#ifndef GW_TESTKIT_H
#define GW_TESTKIT_H

#include <czmq.h>
#include "xws/frames.h"
#include "gw_app.h"

/* Runs turns loop turns (1 ms each at most) with a broker tick after each. */
void gw_test_pump(gw_app_t *app, int turns);

/*
 * Waits up to turns loop turns for one REQUEST (a single key/envelope pair) at the fake worker:
 * 1 with its key and the request decoded into *req (the caller disposes req, then f), 0 when none
 * came (nothing to dispose). Other commands are skipped.
 */
int gw_test_recv_request(gw_app_t *app, zsock_t *worker, int turns, uint64_t *key, xws_frames_t *f, xws_request_t *req);

#endif
