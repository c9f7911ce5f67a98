/* gw_testkit.c - the self-tests' fake worker helpers (see gw_testkit.h). */
#include <string.h>
#include "xws/proto.h"
#include "gw_broker.h"
#include "gw_check.h"
#include "gw_testkit.h"

void gw_test_pump(gw_app_t *app, int turns)
{
    for (int i = 0; i < turns; i++) {
        h2o_evloop_run(app->loop, 1);
        gw_broker_tick(app->broker);
    }
}

int gw_test_recv_request(gw_app_t *app, zsock_t *worker, int turns, uint64_t *key, xws_frames_t *f, xws_request_t *req)
{
    for (int i = 0; i < turns; i++) {
        while (zsock_events(worker) & ZMQ_POLLIN) {
            memset(f, 0, sizeof(*f));
            const char *err = NULL;
            if (xws_frames_recv(f, worker, 0, &err) != 0 || f->cmd != XWS_CMD_REQUEST) {
                xws_frames_dispose(f);
                continue;
            }
            GW_CHECK(f->count == 1 && f->key.len == 8);
            memcpy(key, f->key.ptr, 8);
            GW_CHECK(xws_request_decode(req, f->payload.ptr, f->payload.len, &err) == 0);
            return 1;
        }
        gw_test_pump(app, 1);
    }
    return 0;
}
