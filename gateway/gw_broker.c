/* gw_broker.c - worker registry, credit-based dispatch, queues, heartbeats (see gw_broker.h). */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <czmq.h>
#include "xws/log.h"
#include "xws/frames.h"
#include "gw_broker.h"
#include "gw_broker_int.h"
#include "gw_zap.h"

static void *s_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

/* ---- lookup helpers --------------------------------------------------------------------------- */

service_t *gwb_service_find(gw_broker_t *self, const char *name, size_t len)
{
    for (service_t *s = self->services; s != NULL; s = s->next)
        if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
            return s;
    return NULL;
}

static service_t *s_service_add(gw_broker_t *self, const char *name, size_t len)
{
    service_t *s = gwb_service_find(self, name, len);
    if (s != NULL)
        return s;
    assert(len <= XWS_MAX_NAME);
    s = s_xcalloc(1, sizeof(*s));
    memcpy(s->name, name, len);
    h2o_linklist_init_anchor(&s->workers);
    h2o_linklist_init_anchor(&s->queue);
    s->next = self->services;
    self->services = s;
    return s;
}

ticket_t **gwb_ticket_slot(gw_broker_t *self, uint64_t id)
{
    ticket_t **pp = &self->tickets[id % TICKET_BUCKETS];
    while (*pp != NULL && (*pp)->id != id)
        pp = &(*pp)->hnext;
    return pp;
}

void gwb_ticket_free(gw_broker_t *self, ticket_t *t)
{
    ticket_t **pp = gwb_ticket_slot(self, t->id);
    assert(*pp == t);
    *pp = t->hnext;
    h2o_linklist_unlink(&t->link);
    if (h2o_linklist_is_linked(&t->olink))
        h2o_linklist_unlink(&t->olink);
    t->worker->inflight--;
    if (t->job != NULL)
        t->job->_ticket = NULL;
    free(t);
}

/* Marks the socket for another look on the next loop turn: a send may have eaten the fd's edge. */
void gwb_poke(gw_broker_t *self)
{
    if (!h2o_timeout_is_linked(&self->recheck))
        h2o_timeout_link(self->loop, &self->zero, &self->recheck);
}

/* ---- job life --------------------------------------------------------------------------------- */

/* Makes a job idle: no timer, no envelope, not counted. */
static void s_job_release(gw_broker_t *self, gw_job_t *job)
{
    if (h2o_timeout_is_linked(&job->_timer))
        h2o_timeout_unlink(&job->_timer);
    if (h2o_linklist_is_linked(&job->_link))
        h2o_linklist_unlink(&job->_link);
    if (job->_state == JOB_QUEUED)
        gwb_unqueued(job->_service, job);
    if (job->_ticket != NULL) { /* the worker still works on it: keep its credit until it answers */
        job->_ticket->job = NULL;
        job->_ticket = NULL;
    }
    OPENSSL_cleanse(job->_env, job->_envlen); /* a password check, a record with its secrets */
    free(job->_env);
    job->_env = NULL;
    job->_envlen = 0;
    job->_state = JOB_IDLE;
    self->npending--;
}

void gwb_finish(gw_broker_t *self, gw_job_t *job, gw_job_outcome_t outcome, const void *data, size_t len)
{
    s_job_release(self, job);
    job->on_done(job, outcome, data, len);
}

static void s_on_deadline(h2o_timeout_entry_t *entry)
{
    gw_job_t *job = H2O_STRUCT_FROM_MEMBER(gw_job_t, _timer, entry);
    job->_service->counts.timeouts++;
    gwb_finish(job->_broker, job, GW_JOB_TIMEOUT, NULL, 0);
}

int gw_job_busy(const gw_job_t *job)
{
    return job->_state != JOB_IDLE;
}

/* ---- sending ---------------------------------------------------------------------------------- */

static int s_send(gw_broker_t *self, worker_t *w, xws_cmd_t cmd, const xws_slice_t *frames, size_t n)
{
    int rc = xws_frames_send(self->sock, w->identity, cmd, frames, n);
    gwb_poke(self);
    if (rc == 0)
        w->last_sent = h2o_now(self->loop);
    return rc;
}

/* Forgets a worker: what it held goes back to the head of its service's queue, in order. */
void gwb_worker_forget(gw_broker_t *self, worker_t *w, gwb_gone_t how, const char *why)
{
    service_t *svc = w->service;
    size_t requeued = 0;
    gw_broker_counts_t *c = &svc->counts;
    c->disconnected += how == GWB_GONE_DISCONNECTED;
    c->expired += how == GWB_GONE_EXPIRED;
    c->unreachable += how == GWB_GONE_UNREACHABLE;
    c->other += how == GWB_GONE_OTHER;
    c->gone.handled += w->report.handled;
    c->gone.replayed += w->report.replayed;
    c->gone.store_errors += w->report.store_errors;
    while (!h2o_linklist_is_empty(&w->tickets)) {
        ticket_t *t = H2O_STRUCT_FROM_MEMBER(ticket_t, link, w->tickets.prev); /* last first */
        gw_job_t *job = t->job;
        gwb_ticket_free(self, t);
        if (job != NULL) {
            h2o_linklist_insert(svc->queue.next, &job->_link);
            job->_state = JOB_QUEUED;
            gwb_queued(svc, job);
            requeued++;
        }
    }
    c->redispatched += requeued;
    if (h2o_linklist_is_linked(&w->dlink))
        h2o_linklist_unlink(&w->dlink);
    h2o_linklist_unlink(&w->link);
    svc->nworkers--;
    /* a worker that says goodbye (or is told to) is news; one that went silent is a warning */
    xws_log(how == GWB_GONE_EXPIRED || how == GWB_GONE_UNREACHABLE ? XWS_LOG_WARN : XWS_LOG_INFO,
            "worker %s (%s) %s; %zu request(s) sent again, %zu worker(s) left", w->name, svc->name, why, requeued, svc->nworkers);
    zframe_destroy(&w->identity);
    free(w);
}

/*
 * Times a job out on the next loop turn (its timer moves to the zero timeout), not from inside the
 * caller: owners' callbacks may submit jobs. A queued job leaves its queue.
 */
static void s_expire_soon(gw_broker_t *self, gw_job_t *job)
{
    if (job->_state == JOB_QUEUED) {
        h2o_linklist_unlink(&job->_link);
        gwb_unqueued(job->_service, job);
        job->_state = JOB_EXPIRING;
    }
    if (h2o_timeout_is_linked(&job->_timer))
        h2o_timeout_unlink(&job->_timer);
    h2o_timeout_link(self->loop, &self->zero, &job->_timer);
}

/* Sends queued jobs of svc to workers with spare credit. */
void gwb_dispatch(gw_broker_t *self, service_t *svc)
{
    while (!h2o_linklist_is_empty(&svc->queue)) {
        worker_t *best = NULL;
        for (h2o_linklist_t *l = svc->workers.next; l != &svc->workers; l = l->next) {
            worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, link, l);
            if (w->inflight >= w->credit)
                continue;
            if (best == NULL || w->inflight < best->inflight ||
                (w->inflight == best->inflight && w->last_dispatch < best->last_dispatch))
                best = w;
        }
        if (best == NULL)
            return;
        gw_job_t *job = H2O_STRUCT_FROM_MEMBER(gw_job_t, _link, svc->queue.next);
        if (job->_deadline_at < h2o_now(self->loop) + GW_BROKER_MIN_LEFT_MS) { /* too late to be worth a worker's time */
            s_expire_soon(self, job);
            continue;
        }
        h2o_linklist_unlink(&job->_link);
        gwb_unqueued(svc, job);
        ticket_t *t = s_xcalloc(1, sizeof(*t));
        t->id = job->_id;
        t->job = job;
        t->worker = best;
        t->deadline_at = job->_deadline_at;
        h2o_linklist_insert(&best->tickets, &t->link);
        /* the REQUEST leaves with the others of this loop turn (s_on_flush) */
        h2o_linklist_insert(&best->outbox, &t->olink);
        if (!h2o_linklist_is_linked(&best->dlink))
            h2o_linklist_insert(&self->dirty, &best->dlink);
        if (!h2o_timeout_is_linked(&self->flush))
            h2o_timeout_link(self->loop, &self->zero, &self->flush);
        ticket_t **slot = gwb_ticket_slot(self, t->id);
        assert(*slot == NULL);
        *slot = t;
        best->inflight++;
        best->last_dispatch = h2o_now(self->loop);
        job->_ticket = t;
        job->_state = JOB_INFLIGHT;
    }
}

/*
 * Hands w's outbox to ZeroMQ: several REQUESTs per message to a worker that reads batches. Tickets
 * whose job was withdrawn meanwhile are dropped (their credit comes back). -1 when the worker
 * cannot be reached (what it holds is then re-dispatched by the caller).
 */
static int s_flush_worker(gw_broker_t *self, worker_t *w)
{
    size_t max = w->batch ? XWS_MAX_BATCH : 1;
    while (!h2o_linklist_is_empty(&w->outbox)) {
        uint64_t keys[XWS_MAX_BATCH];
        xws_slice_t pairs[2 * XWS_MAX_BATCH];
        size_t n = 0;
        while (n < max && !h2o_linklist_is_empty(&w->outbox)) {
            ticket_t *t = H2O_STRUCT_FROM_MEMBER(ticket_t, olink, w->outbox.next);
            h2o_linklist_unlink(&t->olink);
            if (t->job == NULL) { /* timed out or cancelled before it left */
                gwb_ticket_free(self, t);
                continue;
            }
            /* the budget left now (not when the envelope was encoded), never beyond the owner's */
            uint64_t now = h2o_now(self->loop), until = t->deadline_at;
            if (t->job->_env_deadline_at != 0 && t->job->_env_deadline_at < until)
                until = t->job->_env_deadline_at;
            xws_request_set_budget(t->job->_env, t->job->_envlen, until > now ? until - now : 0);
            keys[n] = htobe64(t->id);
            pairs[2 * n] = (xws_slice_t){(const char *)&keys[n], sizeof(keys[n])};
            pairs[2 * n + 1] = (xws_slice_t){t->job->_env, t->job->_envlen};
            n++;
        }
        if (n > 0 && xws_send_batch(self->sock, w->identity, XWS_CMD_REQUEST, pairs, n) != 0)
            return -1;
        if (n > 0)
            w->last_sent = h2o_now(self->loop);
    }
    return 0;
}

static void s_on_flush(h2o_timeout_entry_t *entry)
{
    gw_broker_t *self = H2O_STRUCT_FROM_MEMBER(gw_broker_t, flush, entry);
    while (!h2o_linklist_is_empty(&self->dirty)) {
        worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, dlink, self->dirty.next);
        h2o_linklist_unlink(&w->dlink);
        if (s_flush_worker(self, w) != 0) {
            char why[96];
            snprintf(why, sizeof(why), "cannot be reached (%s)", zmq_strerror(zmq_errno()));
            service_t *svc = w->service;
            gwb_worker_forget(self, w, GWB_GONE_UNREACHABLE, why);
            gwb_dispatch(self, svc); /* to the other workers: they join the dirty list */
        }
    }
    gwb_poke(self); /* a send may have eaten the fd's edge */
}

/* ---- public ----------------------------------------------------------------------------------- */

gw_broker_t *gw_broker_new(h2o_loop_t *loop, const gw_broker_opts_t *opts, const char *const *known)
{
    assert(loop != NULL && opts != NULL && opts->endpoint != NULL);
    gw_broker_t *self = s_xcalloc(1, sizeof(*self));
    self->loop = loop;
    self->opts = *opts;
    self->endpoint = strdup(opts->endpoint);
    if (self->endpoint == NULL)
        abort();
    self->opts.endpoint = self->endpoint;
    self->sock = zsock_new(ZMQ_ROUTER);
    if (self->sock == NULL)
        abort();
    zsock_set_router_mandatory(self->sock, 1);
    zsock_set_sndtimeo(self->sock, 0);
    zsock_set_sndhwm(self->sock, 100000);
    zsock_set_rcvhwm(self->sock, 100000);
    zsock_set_linger(self->sock, 200);
    zsock_set_maxmsgsize(self->sock, GW_MAX_REPLY_FRAME); /* a larger frame drops the worker instead of being buffered */
    if (opts->zap != NULL &&
        gw_zap_guard(opts->zap, self->sock, GW_ZAP_WORKERS, opts->curve_secret, opts->curve_dir, "curve_workers_dir") != 0) {
        zsock_destroy(&self->sock);
        free(self->endpoint);
        free(self);
        return NULL;
    }
    if (zsock_bind(self->sock, "%s", opts->endpoint) < 0) {
        xws_log(XWS_LOG_ERROR, "cannot bind the worker endpoint %s: %s", opts->endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&self->sock);
        free(self->endpoint);
        free(self);
        return NULL;
    }
    self->file = gw_endpoint_file(opts->endpoint);
    int fd = dup(zsock_fd(self->sock));
    if (fd < 0) {
        xws_log(XWS_LOG_ERROR, "dup: %s", strerror(errno));
        abort();
    }
    self->watch = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    self->watch->data = self;
    h2o_socket_read_start(self->watch, gwb_on_readable);
    h2o_timeout_init(loop, &self->deadline, opts->deadline_ms);
    h2o_timeout_init(loop, &self->zero, 0);
    self->recheck.cb = gwb_on_recheck;
    self->flush.cb = s_on_flush;
    h2o_linklist_init_anchor(&self->dirty);
    for (const char *const *k = known; k != NULL && *k != NULL; k++)
        s_service_add(self, *k, strlen(*k));
    gwb_poke(self);
    return self;
}

void gw_broker_disconnect_all(gw_broker_t *self)
{
    for (service_t *s = self->services; s != NULL; s = s->next)
        while (!h2o_linklist_is_empty(&s->workers)) {
            worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, link, s->workers.next);
            xws_send_disconnect(self->sock, w->identity);
            gwb_worker_forget(self, w, GWB_GONE_OTHER, "sent DISCONNECT (gateway stopping)");
        }
}

void gw_broker_destroy(gw_broker_t **self_p)
{
    assert(self_p != NULL);
    gw_broker_t *self = *self_p;
    if (self == NULL)
        return;
    gw_broker_disconnect_all(self);
    while (self->services != NULL) {
        service_t *s = self->services;
        self->services = s->next;
        while (!h2o_linklist_is_empty(&s->queue)) {
            gw_job_t *job = H2O_STRUCT_FROM_MEMBER(gw_job_t, _link, s->queue.next);
            s_job_release(self, job);
        }
        free(s);
    }
    if (h2o_timeout_is_linked(&self->recheck))
        h2o_timeout_unlink(&self->recheck);
    if (h2o_timeout_is_linked(&self->flush))
        h2o_timeout_unlink(&self->flush);
    h2o_timeout_dispose(self->loop, &self->deadline);
    h2o_timeout_dispose(self->loop, &self->zero);
    h2o_socket_read_stop(self->watch);
    h2o_socket_close(self->watch);
    zsock_destroy(&self->sock);
    gw_endpoint_unlink(self->endpoint, self->file);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

static uint64_t s_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int gw_broker_submit(gw_broker_t *self, gw_job_t *job, const char *service, const void *env, size_t len)
{
    return gw_broker_submit_until(self, job, service, env, len, 0);
}

int gw_broker_submit_until(gw_broker_t *self, gw_job_t *job, const char *service, const void *env, size_t len,
                           uint64_t deadline_unix_ms)
{
    assert(self != NULL && job != NULL && job->on_done != NULL && service != NULL);
    assert(job->_state == JOB_IDLE);
    service_t *svc = gwb_service_find(self, service, strlen(service));
    if (svc == NULL)
        return GW_SUBMIT_UNKNOWN;
    if (svc->nworkers == 0) {
        svc->counts.no_worker++;
        return GW_SUBMIT_NO_WORKER;
    }
    if (svc->nqueued >= self->opts.queue_max ||
        (self->opts.queue_max_bytes != 0 && svc->nqueued > 0 && svc->queued_bytes + len > self->opts.queue_max_bytes)) {
        /* the first waiting job is accepted whatever its size: the envelope limit bounds it */
        svc->counts.queue_full++;
        return GW_SUBMIT_FULL;
    }
    job->_service = svc;
    job->_broker = self;
    job->_env = malloc(len > 0 ? len : 1);
    if (job->_env == NULL)
        abort();
    memcpy(job->_env, env, len);
    job->_envlen = len;
    job->_id = ++self->last_id;
    job->_ticket = NULL;
    job->_deadline_at = h2o_now(self->loop) + self->opts.deadline_ms;
    uint64_t budget;
    job->_env_deadline_at = xws_request_get_budget(env, len, &budget) == 0 ? h2o_now(self->loop) + budget : 0;
    if (deadline_unix_ms != 0) { /* an earlier deadline of the owner's: the same instant in loop time */
        uint64_t unow = s_unix_ms(), left = deadline_unix_ms > unow ? deadline_unix_ms - unow : 0;
        if (left < self->opts.deadline_ms)
            job->_deadline_at = h2o_now(self->loop) + left;
    }
    memset(&job->_timer, 0, sizeof(job->_timer));
    job->_timer.cb = s_on_deadline;
    memset(&job->_link, 0, sizeof(job->_link));
    h2o_timeout_link(self->loop, &self->deadline, &job->_timer);
    h2o_linklist_insert(&svc->queue, &job->_link);
    job->_state = JOB_QUEUED;
    gwb_queued(svc, job);
    self->npending++;
    gwb_dispatch(self, svc);
    return GW_SUBMIT_OK;
}

void gw_broker_cancel(gw_broker_t *self, gw_job_t *job)
{
    if (job->_state == JOB_IDLE)
        return;
    s_job_release(self, job);
}

int gw_broker_has_worker(gw_broker_t *self, const char *service)
{
    service_t *svc = gwb_service_find(self, service, strlen(service));
    return svc != NULL && svc->nworkers > 0;
}

size_t gw_broker_pending(gw_broker_t *self)
{
    return self->npending;
}

void gw_broker_tick(gw_broker_t *self)
{
    uint64_t now = h2o_now(self->loop);
    for (service_t *s = self->services; s != NULL; s = s->next) {
        int freed = 0;
        /* jobs whose owner's deadline (earlier than the broker's timer) has passed: queued ones first */
        h2o_linklist_t *jl = s->queue.next;
        while (jl != &s->queue) {
            gw_job_t *job = H2O_STRUCT_FROM_MEMBER(gw_job_t, _link, jl);
            jl = jl->next;
            if (job->_deadline_at <= now)
                s_expire_soon(self, job);
        }
        h2o_linklist_t *l = s->workers.next;
        while (l != &s->workers) {
            worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, link, l);
            l = l->next;
            uint64_t silent = now > w->last_seen ? now - w->last_seen : 0, probe_ms = self->opts.heartbeat_ms / 10;
            /* the heartbeat, and a probe of a worker that holds requests (or is past its expiry) and has said
             * nothing for a tenth of the interval: a crashed worker's ipc:// or local tcp:// connection is gone,
             * so the send fails at once (ROUTER_MANDATORY) and what it held goes to the others now, not at
             * expiry. A probe never declares a worker dead by itself: a quiet live worker just gets a heartbeat */
            int probe = silent >= probe_ms && now - w->last_sent >= probe_ms && (w->inflight > 0 || silent > self->opts.expiry_ms);
            if ((probe || now - w->last_sent >= self->opts.heartbeat_ms) && s_send(self, w, XWS_CMD_HEARTBEAT, NULL, 0) != 0) {
                gwb_worker_forget(self, w, GWB_GONE_UNREACHABLE, "cannot be reached (its connection is closed)");
                freed = 1;
                continue;
            }
            if (silent > self->opts.expiry_ms) {
                gwb_worker_forget(self, w, GWB_GONE_EXPIRED, "expired (no heartbeat)");
                freed = 1;
                continue;
            }
            /* credit held by requests nobody waits for, long after their deadline: the worker dropped them */
            h2o_linklist_t *tl = w->tickets.next;
            while (tl != &w->tickets) {
                ticket_t *t = H2O_STRUCT_FROM_MEMBER(ticket_t, link, tl);
                tl = tl->next;
                if (t->job != NULL && t->deadline_at <= now)
                    s_expire_soon(self, t->job); /* its owner stops waiting; the credit stays taken until the worker answers */
                if (t->job == NULL && now > t->deadline_at + self->opts.expiry_ms) {
                    xws_log(XWS_LOG_WARN, "worker %s never answered request %" PRIu64 "; its credit is released\n", w->name, t->id);
                    gwb_ticket_free(self, t);
                    freed = 1;
                }
            }
        }
        if (freed)
            gwb_dispatch(self, s);
    }
    gwb_drain(self);
}

size_t gw_broker_services(gw_broker_t *self, gw_broker_service_t *out, size_t max)
{
    size_t n = 0;
    for (service_t *s = self->services; s != NULL; s = s->next, n++) {
        if (n >= max)
            continue;
        gw_broker_service_t *o = &out[n];
        memset(o, 0, sizeof(*o));
        o->name = s->name;
        o->workers = s->nworkers;
        o->queued = s->nqueued;
        o->counts = s->counts;
        o->handled = s->counts.gone.handled;
        o->replayed = s->counts.gone.replayed;
        o->store_errors = s->counts.gone.store_errors;
        for (h2o_linklist_t *l = s->workers.next; l != &s->workers; l = l->next) {
            const worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, link, l);
            o->inflight += w->inflight;
            o->credit += w->credit;
            o->store_ok += w->report.store == GW_STORE_OK;
            o->store_down += w->report.store == GW_STORE_DOWN;
            if (w->report.store == GW_STORE_OK && w->report.store_us > o->store_us)
                o->store_us = w->report.store_us;
            o->handled += w->report.handled;
            o->replayed += w->report.replayed;
            o->store_errors += w->report.store_errors;
        }
    }
    return n;
}

void gw_broker_describe(gw_broker_t *self, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (service_t *s = self->services; s != NULL && o < size; s = s->next) {
        unsigned inflight = 0;
        for (h2o_linklist_t *l = s->workers.next; l != &s->workers; l = l->next)
            inflight += H2O_STRUCT_FROM_MEMBER(worker_t, link, l)->inflight;
        int n = snprintf(buf + o, size - o, "%s%s: %zu worker(s), %u in flight, %zu queued", o > 0 ? "; " : "", s->name,
                         s->nworkers, inflight, s->nqueued);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}
