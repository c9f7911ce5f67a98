/* gw_refresh.c - the periodic account snapshot and the requests parked until a fresh one (see gw_refresh.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "xws/log.h"
#include "xws/frames.h"
#include "gw_check.h"
#include "gw_refresh.h"
#include "gw_testkit.h"
#include "gw_route.h"

enum { REFRESH_UNKNOWN = 0, REFRESH_OK, REFRESH_NO_WORKER, REFRESH_FAILED };

struct gw_refresh {
    gw_app_t *app;
    gw_job_t job;           /* the snapshot request in flight */
    uint64_t last;          /* loop ms of the last snapshot request */
    int state;              /* last outcome reported on stderr (to log changes only) */
    uint64_t seq;           /* snapshot requests sent so far (the one in flight is number seq) */
    uint64_t last_ok;       /* loop ms of the last answer that loaded or confirmed the snapshot (0: none yet) */
    h2o_linklist_t waiting; /* gw_refresh_wait_t._link: parked until a snapshot request after their own */
};

static void s_state(gw_refresh_t *self, int state, const char *msg)
{
    if (self->state != state && msg != NULL)
        xws_log(XWS_LOG_INFO, "accounts: %s", msg);
    self->state = state;
}

gw_refresh_t *gw_refresh_new(gw_app_t *app)
{
    gw_refresh_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->app = app;
    h2o_linklist_init_anchor(&self->waiting);
    return self;
}

void gw_refresh_destroy(gw_refresh_t **self_p)
{
    assert(self_p != NULL);
    gw_refresh_t *self = *self_p;
    if (self == NULL)
        return;
    gw_refresh_stop(self);
    while (!h2o_linklist_is_empty(&self->waiting)) /* requests still open at exit: they no longer wait */
        h2o_linklist_unlink(self->waiting.next);
    free(self);
    *self_p = NULL;
}

void gw_refresh_stop(gw_refresh_t *self)
{
    if (gw_job_busy(&self->job))
        gw_broker_cancel(self->app->broker, &self->job);
}

void gw_refresh_wait(gw_refresh_t *self, gw_refresh_wait_t *w)
{
    assert(w->on_done != NULL && !h2o_linklist_is_linked(&w->_link));
    /* a snapshot request already in flight may have been answered before the change: the next one */
    w->_need = self->seq + 1;
    h2o_linklist_insert(&self->waiting, &w->_link);
}

void gw_refresh_unwait(gw_refresh_wait_t *w)
{
    if (h2o_linklist_is_linked(&w->_link))
        h2o_linklist_unlink(&w->_link);
}

/*
 * After snapshot request number self->seq ended (ok: a snapshot is loaded), tells the parked
 * requests that waited for it. Those that wait for a later one get it asked for.
 */
static void s_resolve(gw_refresh_t *self, int ok)
{
    h2o_linklist_t *l = self->waiting.next;
    while (l != &self->waiting) {
        gw_refresh_wait_t *w = H2O_STRUCT_FROM_MEMBER(gw_refresh_wait_t, _link, l);
        l = l->next;
        if (w->_need > self->seq)
            continue;
        h2o_linklist_unlink(&w->_link);
        w->on_done(w, ok);
    }
    if (!h2o_linklist_is_empty(&self->waiting))
        gw_refresh_now(self);
}

static void s_on_loaded(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len);

static void s_on_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    gw_refresh_t *self = job->data;
    s_on_loaded(job, outcome, reply, len);
    s_resolve(self, self->state == REFRESH_OK);
}

/* Loads the snapshot of a refresh answer; app->refresh_state says how it went. */
static void s_on_loaded(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    gw_refresh_t *self = job->data;
    gw_app_t *app = self->app;
    if (outcome == GW_JOB_TIMEOUT) {
        s_state(self, REFRESH_FAILED, "the config service did not answer the snapshot request");
        return;
    }
    xws_reply_t rep;
    const char *err = NULL;
    if (outcome != GW_JOB_REPLY || xws_reply_decode(&rep, reply, len, &err) != 0) {
        if (outcome == GW_JOB_REPLY)
            xws_reply_dispose(&rep);
        s_state(self, REFRESH_FAILED, "malformed snapshot reply from the config service");
        return;
    }
    if (rep.status == 304) {
        s_state(self, REFRESH_OK, "snapshot up to date");
        self->last_ok = h2o_now(app->loop);
    } else if (rep.status == 200 && rep.body != NULL) {
        uint64_t before = gw_accounts_version(app->accounts);
        int was_ready = gw_accounts_ready(app->accounts);
        if (gw_accounts_load(app->accounts, rep.body, &err) != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "snapshot refused: %s", err);
            s_state(self, REFRESH_FAILED, msg);
        } else {
            if (!was_ready || before != gw_accounts_version(app->accounts))
                xws_log(XWS_LOG_INFO, "accounts: version %" PRIu64 ", %zu account(s)\n", gw_accounts_version(app->accounts),
                        gw_accounts_count(app->accounts));
            self->state = REFRESH_OK;
            self->last_ok = h2o_now(app->loop);
        }
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "the config service answered %u to the snapshot request", rep.status);
        s_state(self, REFRESH_FAILED, msg);
    }
    xws_reply_dispose(&rep);
}

void gw_refresh_now(gw_refresh_t *self)
{
    gw_app_t *app = self->app;
    if (gw_job_busy(&self->job) || app->stopping)
        return;
    self->last = h2o_now(app->loop);
    char rid[XWS_MAX_RID + 1], since[24];
    gw_app_rid(app, rid, sizeof(rid));
    xws_kv_t kv = {xws_slice("since"), XWS_SLICE_NULL};
    if (gw_accounts_ready(app->accounts)) {
        snprintf(since, sizeof(since), "%" PRIu64, gw_accounts_version(app->accounts));
        kv.val = xws_slice(since);
    }
    xws_request_spec_t spec = {
        .rid = xws_slice(rid),
        .service = xws_slice(XWS_SERVICE_CONFIG),
        .resource = xws_slice(XWS_RESOURCE_ACCOUNT),
        .act = xws_slice(XWS_ACT_SNAPSHOT),
        .params = &kv,
        .nparams = gw_accounts_ready(app->accounts) ? 1 : 0,
        .caller_mode = xws_slice("gateway"),
        .caller_account = xws_slice(""),
        .caller_addr = xws_slice(""),
        .deadline_ms = gw_app_unix_ms() + app->deadline_ms,
    };
    msgpack_sbuffer env;
    msgpack_sbuffer_init(&env);
    self->seq++;
    if (xws_request_encode(&spec, &env) != 0) {
        s_state(self, REFRESH_FAILED, "cannot encode the snapshot request");
        s_resolve(self, 0);
    } else {
        self->job.on_done = s_on_done;
        self->job.data = self;
        int rc = gw_broker_submit(app->broker, &self->job, XWS_SERVICE_CONFIG, env.data, env.size);
        if (rc != GW_SUBMIT_OK) {
            s_state(self, REFRESH_NO_WORKER,
                    gw_accounts_ready(app->accounts)
                        ? "no config worker; keeping the last snapshot"
                        : "no config worker yet; restricted requests answer 503 until the accounts arrive");
            s_resolve(self, 0);
        }
    }
    msgpack_sbuffer_destroy(&env);
}

uint64_t gw_refresh_last_ok(const gw_refresh_t *self)
{
    return self->last_ok;
}

void gw_refresh_tick(gw_refresh_t *self)
{
    gw_app_t *app = self->app;
    uint64_t now = h2o_now(app->loop);
    if (now - self->last >= app->accounts_refresh_ms || (!gw_accounts_ready(app->accounts) && now - self->last >= 100))
        gw_refresh_now(self);
}

/* ---- self-test -------------------------------------------------------------------------------- */

#define TEST_EP "inproc://gw-refresh-test"

typedef struct {
    gw_refresh_wait_t w;
    int ndone, ok;
} twait_t;

static void s_test_done(gw_refresh_wait_t *w, int ok)
{
    twait_t *t = H2O_STRUCT_FROM_MEMBER(twait_t, w, w);
    t->ndone++;
    t->ok = ok;
}

/* Receives one snapshot request at the fake config worker: 1 with its key and its `since` (0: none), 0 when none came. */
static int s_test_recv(gw_app_t *app, zsock_t *worker, int turns, uint64_t *key, uint64_t *since)
{
    xws_frames_t f;
    xws_request_t req;
    if (!gw_test_recv_request(app, worker, turns, key, &f, &req))
        return 0;
    GW_CHECK(xws_slice_eq(req.resource, XWS_RESOURCE_ACCOUNT) && xws_slice_eq(req.act, XWS_ACT_SNAPSHOT));
    xws_slice_t v;
    *since = xws_request_param(&req, "since", &v) == 0 ? strtoull(v.ptr, NULL, 10) : 0;
    xws_request_dispose(&req);
    xws_frames_dispose(&f);
    return 1;
}

/* The fake config worker answers key: status, with a snapshot of one account at version when status is 200. */
static void s_test_reply(zsock_t *worker, uint64_t key, unsigned status, uint64_t version)
{
    msgpack_sbuffer body, env;
    msgpack_packer pk;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    if (status == 200) {
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "version", 7);
        msgpack_pack_uint64(&pk, version);
        msgpack_pack_str_with_body(&pk, "accounts", 8);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 6);
        const char *kv[] = {"name", "admin", "login", "admin"};
        for (size_t i = 0; i < 4; i++)
            msgpack_pack_str_with_body(&pk, kv[i], strlen(kv[i]));
        msgpack_pack_str_with_body(&pk, "hostonly", 8);
        msgpack_pack_false(&pk);
        msgpack_pack_str_with_body(&pk, "disabled", 8);
        msgpack_pack_false(&pk);
        msgpack_pack_str_with_body(&pk, "hosts", 5);
        msgpack_pack_array(&pk, 0);
        msgpack_pack_str_with_body(&pk, "acl", 3);
        msgpack_pack_array(&pk, 0);
    }
    GW_CHECK(xws_reply_encode(status, xws_slice(""), (xws_slice_t){body.data, body.size}, &env) == 0);
    GW_CHECK(xws_send_reply(worker, NULL, (xws_slice_t){(const char *)&key, 8}, (xws_slice_t){env.data, env.size}) == 0);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
}

static void s_test_park(gw_refresh_t *self, twait_t *t)
{
    memset(t, 0, sizeof(*t));
    t->w.on_done = s_test_done;
    gw_refresh_wait(self, &t->w);
}

void gw_refresh_test(void)
{
    gw_app_t app;
    memset(&app, 0, sizeof(app));
    app.loop = h2o_evloop_create();
    app.deadline_ms = 1000;
    app.accounts_refresh_ms = 3600000;
    snprintf(app.instance, sizeof(app.instance), "%s", "00000000000000bb");
    app.accounts = gw_accounts_new();
    gw_broker_opts_t opts = {TEST_EP, 1000, 100, 5000, 100, 0, NULL, NULL, NULL};
    const char *known[] = {XWS_SERVICE_CONFIG, NULL};
    GW_CHECK((app.broker = gw_broker_new(app.loop, &opts, known)) != NULL);
    gw_refresh_t *rf = app.refresh = gw_refresh_new(&app);
    zsock_t *worker = zsock_new_dealer(">" TEST_EP);
    GW_CHECK(worker != NULL && xws_send_ready(worker, XWS_SERVICE_CONFIG, 16, "config-test", NULL) == 0);
    for (int i = 0; i < 1000 && !gw_broker_has_worker(app.broker, XWS_SERVICE_CONFIG); i++)
        gw_test_pump(&app, 1);
    uint64_t key, since;
    twait_t t[4];

    /* no snapshot yet: the tick asks (without `since`), the answer is loaded */
    gw_refresh_tick(rf);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since) && since == 0);
    gw_refresh_now(rf); /* one in flight: nothing more */
    s_test_reply(worker, key, 200, 5);
    for (int i = 0; i < 500 && !gw_accounts_ready(app.accounts); i++)
        gw_test_pump(&app, 1);
    GW_CHECK(gw_accounts_ready(app.accounts) && gw_accounts_version(app.accounts) == 5 && gw_accounts_count(app.accounts) == 1);
    GW_CHECK(gw_refresh_last_ok(rf) != 0);
    GW_CHECK(!s_test_recv(&app, worker, 20, &key, &since));

    /* parked while nothing is in flight: the next request's end answers it; later ones carry `since` */
    s_test_park(rf, &t[0]);
    gw_refresh_now(rf);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since) && since == 5);
    s_test_reply(worker, key, 304, 0);
    for (int i = 0; i < 500 && t[0].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[0].ndone == 1 && t[0].ok == 1);

    /* parked while one is in flight: that one may predate the change, so the next is asked for and answers it */
    gw_refresh_now(rf);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since));
    s_test_park(rf, &t[1]);
    s_test_park(rf, &t[2]);
    gw_refresh_unwait(&t[2].w);
    gw_refresh_unwait(&t[2].w); /* idempotent */
    s_test_reply(worker, key, 200, 6);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since) && since == 6);
    GW_CHECK(t[1].ndone == 0 && gw_accounts_version(app.accounts) == 6);
    s_test_reply(worker, key, 304, 0);
    for (int i = 0; i < 500 && t[1].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[1].ndone == 1 && t[1].ok == 1 && t[2].ndone == 0);

    /* a failed refresh: the parked request hears ok = 0; the loaded snapshot stays */
    uint64_t ok_at = gw_refresh_last_ok(rf);
    GW_CHECK(ok_at != 0);
    s_test_park(rf, &t[3]);
    gw_refresh_now(rf);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since));
    s_test_reply(worker, key, 500, 0);
    for (int i = 0; i < 500 && t[3].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[3].ndone == 1 && t[3].ok == 0 && gw_accounts_version(app.accounts) == 6);
    GW_CHECK(gw_refresh_last_ok(rf) == ok_at); /* a failed refresh does not count as fresh */

    /* destroy with a request in flight and a parked waiter: no callback */
    s_test_park(rf, &t[0]);
    gw_refresh_now(rf);
    GW_CHECK(s_test_recv(&app, worker, 15000, &key, &since));
    gw_refresh_destroy(&app.refresh);
    gw_refresh_destroy(&app.refresh); /* NULL-safe */
    GW_CHECK(app.refresh == NULL && t[0].ndone == 0);
    gw_broker_destroy(&app.broker);
    gw_accounts_destroy(&app.accounts);
    zsock_destroy(&worker);
    h2o_evloop_destroy(app.loop);
}
