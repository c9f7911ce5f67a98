/* gw_refresh.c - the periodic account snapshot and the requests parked until a fresh one (see gw_refresh.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gw_refresh.h"
#include "gw_route.h"

enum { REFRESH_UNKNOWN = 0, REFRESH_OK, REFRESH_NO_WORKER, REFRESH_FAILED };

struct gw_refresh {
    gw_app_t *app;
    gw_job_t job;           /* the snapshot request in flight */
    uint64_t last;          /* loop ms of the last snapshot request */
    int state;              /* last outcome reported on stderr (to log changes only) */
    uint64_t seq;           /* snapshot requests sent so far (the one in flight is number seq) */
    h2o_linklist_t waiting; /* gw_refresh_wait_t._link: parked until a snapshot request after their own */
};

static void s_state(gw_refresh_t *self, int state, const char *msg)
{
    if (self->state != state && msg != NULL)
        fprintf(stderr, "xws-gateway: accounts: %s\n", msg);
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
    } else if (rep.status == 200 && rep.body != NULL) {
        uint64_t before = gw_accounts_version(app->accounts);
        int was_ready = gw_accounts_ready(app->accounts);
        if (gw_accounts_load(app->accounts, rep.body, &err) != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "snapshot refused: %s", err);
            s_state(self, REFRESH_FAILED, msg);
        } else {
            if (!was_ready || before != gw_accounts_version(app->accounts))
                fprintf(stderr, "xws-gateway: accounts: version %" PRIu64 ", %zu account(s)\n", gw_accounts_version(app->accounts),
                        gw_accounts_count(app->accounts));
            self->state = REFRESH_OK;
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
        .service = xws_slice(GW_SERVICE_CONFIG),
        .resource = xws_slice(GW_RESOURCE_ACCOUNT),
        .act = xws_slice(GW_ACT_SNAPSHOT),
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
        int rc = gw_broker_submit(app->broker, &self->job, GW_SERVICE_CONFIG, env.data, env.size);
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

void gw_refresh_tick(gw_refresh_t *self)
{
    gw_app_t *app = self->app;
    uint64_t now = h2o_now(app->loop);
    if (now - self->last >= app->accounts_refresh_ms || (!gw_accounts_ready(app->accounts) && now - self->last >= 100))
        gw_refresh_now(self);
}
