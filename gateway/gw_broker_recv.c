/* gw_broker_recv.c - the broker's receiving side: messages from workers (see gw_broker.h, gw_broker_int.h). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
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

static worker_t *s_worker_find(gw_broker_t *self, zframe_t *identity)
{
    for (service_t *s = self->services; s != NULL; s = s->next)
        for (h2o_linklist_t *l = s->workers.next; l != &s->workers; l = l->next) {
            worker_t *w = H2O_STRUCT_FROM_MEMBER(worker_t, link, l);
            if (zframe_eq(w->identity, identity))
                return w;
        }
    return NULL;
}

static void s_peer_text(zframe_t *identity, char *buf, size_t size)
{
    size_t n = identity != NULL ? zframe_size(identity) : 0, o = 0;
    const unsigned char *d = identity != NULL ? zframe_data(identity) : NULL;
    o += (size_t)snprintf(buf, size, "peer ");
    for (size_t i = 0; i < n && i < 8 && o + 3 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%02x", d[i]);
    if (n == 0)
        snprintf(buf + o, size - o, "?");
}

/* ---- receiving -------------------------------------------------------------------------------- */

/* Answers DISCONNECT to a READY for a service the gateway does not route; logs at most once a second. */
static void s_refuse_unknown(gw_broker_t *self, xws_frames_t *f)
{
    uint64_t now = h2o_now(self->loop);
    self->nrefused++;
    if (self->refused_log_at == 0 || now - self->refused_log_at >= 1000) {
        char peer[96], service[XWS_MAX_NAME + 1];
        size_t n = f->service.len < XWS_MAX_NAME ? f->service.len : XWS_MAX_NAME;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)f->service.ptr[i];
            service[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
        }
        service[n] = '\0';
        s_peer_text(f->identity, peer, sizeof(peer));
        xws_log(XWS_LOG_WARN,
                "%s announced service \"%s\", which this gateway does not route: sent DISCONNECT (%" PRIu64
                " such announcement(s) refused since the last message)\n",
                peer, service, self->nrefused);
        self->refused_log_at = now;
        self->nrefused = 0;
    }
    if (f->identity != NULL) {
        xws_send_disconnect(self->sock, f->identity);
        gwb_poke(self);
    }
}

static void s_on_ready(gw_broker_t *self, xws_frames_t *f, worker_t *w)
{
    uint64_t now = h2o_now(self->loop);
    if (w != NULL && !xws_slice_eq(f->service, w->service->name)) {
        gwb_worker_forget(self, w, GWB_GONE_OTHER, "announced another service");
        w = NULL;
    }
    if (w == NULL) {
        service_t *svc = gwb_service_find(self, f->service.ptr, f->service.len);
        if (svc == NULL) { /* not routed: refusing it keeps the registry bounded */
            s_refuse_unknown(self, f);
            return;
        }
        w = s_xcalloc(1, sizeof(*w));
        w->identity = zframe_dup(f->identity);
        w->service = svc;
        h2o_linklist_init_anchor(&w->tickets);
        h2o_linklist_init_anchor(&w->outbox);
        h2o_linklist_insert(&svc->workers, &w->link);
        svc->nworkers++;
        svc->counts.registered++;
        w->last_sent = now;
        if (f->name.len > 0) {
            size_t n = f->name.len < 64 ? f->name.len : 64;
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)f->name.ptr[i];
                w->name[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
            }
        } else {
            s_peer_text(f->identity, w->name, sizeof(w->name));
        }
        /* over CURVE, the name of the worker's key (gw_zap) says who it is */
        const char *key = gw_zap_user(zmsg_first(f->msg));
        xws_log(XWS_LOG_INFO, "worker %s ready for %s (credit %u, %zu worker(s)%s%s)", w->name, svc->name, f->credit, svc->nworkers,
                key != NULL ? ", CURVE key " : "", key != NULL ? key : "");
    }
    w->credit = f->credit;
    w->batch = xws_features_has(f->features, "batch");
    w->last_seen = gwb_clock_ms();
    gwb_dispatch(self, w->service);
}

/* Reads a worker's report: {store, store_us, handled, replayed, store_errors, ...} (unknown keys ignored). */
static int s_report_parse(xws_slice_t data, gw_worker_report_t *r)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = -1;
    if (msgpack_unpack_next(&u, data.ptr, data.len, NULL) != MSGPACK_UNPACK_SUCCESS || u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    static const struct {
        const char *key;
        size_t off;
    } figures[] = {
        {"store_us", offsetof(gw_worker_report_t, store_us)},
        {"handled", offsetof(gw_worker_report_t, handled)},
        {"replayed", offsetof(gw_worker_report_t, replayed)},
        {"store_errors", offsetof(gw_worker_report_t, store_errors)},
    };
    memset(r, 0, sizeof(*r));
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            goto out;
        xws_slice_t key = {k->via.str.ptr, k->via.str.size};
        if (xws_slice_eq(key, "store")) {
            if (v->type != MSGPACK_OBJECT_STR)
                goto out;
            xws_slice_t st = {v->via.str.ptr, v->via.str.size};
            r->store = xws_slice_eq(st, "ok") ? GW_STORE_OK : xws_slice_eq(st, "down") ? GW_STORE_DOWN : GW_STORE_UNKNOWN;
            continue;
        }
        for (size_t j = 0; j < sizeof(figures) / sizeof(figures[0]); j++)
            if (xws_slice_eq(key, figures[j].key)) {
                if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    goto out;
                *(uint64_t *)((char *)r + figures[j].off) = v->via.u64;
            }
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* A worker's report in its HEARTBEAT; one that cannot be read is counted and leaves the store state unknown. */
static void s_on_report(gw_broker_t *self, worker_t *w, xws_slice_t data)
{
    gw_worker_report_t r;
    if (s_report_parse(data, &r) != 0) {
        w->service->counts.bad_reports++;
        w->report.store = GW_STORE_UNKNOWN;
        return;
    }
    w->report = r;
}

static void s_on_reply(gw_broker_t *self, xws_slice_t key, xws_slice_t payload, worker_t *w, int malformed)
{
    uint64_t id = 0;
    if (key.len == sizeof(id)) {
        memcpy(&id, key.ptr, sizeof(id));
        id = be64toh(id);
    }
    ticket_t *t = *gwb_ticket_slot(self, id);
    if (id == 0 || t == NULL || t->worker != w) {
        self->nlate++;
        xws_log(XWS_LOG_WARN, "reply from worker %s for unknown request %" PRIu64 " dropped\n", w->name, id);
        return;
    }
    service_t *svc = w->service;
    gw_job_t *job = t->job;
    gwb_ticket_free(self, t);
    if (job == NULL) {
        self->nlate++;
        xws_log(XWS_LOG_WARN, "late reply from worker %s for request %" PRIu64 " dropped (deadline passed or client gone)\n",
                w->name, id);
    } else if (malformed) {
        gwb_finish(self, job, GW_JOB_BAD_REPLY, NULL, 0);
    } else {
        gwb_finish(self, job, GW_JOB_REPLY, payload.ptr, payload.len);
    }
    gwb_dispatch(self, svc);
}

uint64_t gwb_clock_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void s_handle(gw_broker_t *self, xws_frames_t *f, int rc, const char *err)
{
    char peer[96];
    worker_t *w = f->identity != NULL ? s_worker_find(self, f->identity) : NULL;
    if (w != NULL)
        w->last_seen = gwb_clock_ms(); /* any message is a sign of life, seen now (not at the loop turn's start) */
    if (rc != 0) {
        if (w != NULL)
            snprintf(peer, sizeof(peer), "%s", w->name);
        else
            s_peer_text(f->identity, peer, sizeof(peer));
        xws_log(XWS_LOG_ERROR, "malformed message from worker %s dropped: %s", peer, err != NULL ? err : "?");
        if (w != NULL && f->key.len == 8) /* the key names one of our requests: fail it now */
            s_on_reply(self, f->key, XWS_SLICE_NULL, w, 1);
        return;
    }
    if (f->cmd == XWS_CMD_READY) {
        s_on_ready(self, f, w);
        return;
    }
    if (w == NULL) {
        if (f->cmd != XWS_CMD_DISCONNECT && f->identity != NULL) {
            xws_send_disconnect(self->sock, f->identity);
            gwb_poke(self);
        }
        return;
    }
    switch (f->cmd) {
    case XWS_CMD_REPLY:
        for (size_t i = 0; i < f->count; i++) {
            xws_slice_t key, payload;
            xws_frames_pair(f, i, &key, &payload);
            s_on_reply(self, key, payload, w, 0);
        }
        break;
    case XWS_CMD_HEARTBEAT:
        if (f->payload.len > 0)
            s_on_report(self, w, f->payload);
        break;
    case XWS_CMD_DISCONNECT: {
        service_t *svc = w->service;
        gwb_worker_forget(self, w, GWB_GONE_DISCONNECTED, "disconnected");
        gwb_dispatch(self, svc); /* what it held goes to the others now, not at the next event of the service */
        break;
    }
    case XWS_CMD_REQUEST: {
        xws_log(XWS_LOG_WARN, "worker %s sent a REQUEST; answered bad_envelope", w->name);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (xws_reply_encode_error(400, "bad_envelope", "", "workers do not send requests", &sb) == 0)
            xws_send_reply(self->sock, w->identity, f->key, (xws_slice_t){sb.data, sb.size});
        msgpack_sbuffer_destroy(&sb);
        gwb_poke(self);
        break;
    }
    default:
        break;
    }
}

void gwb_drain(gw_broker_t *self)
{
    while (zsock_events(self->sock) & ZMQ_POLLIN) {
        xws_frames_t f;
        memset(&f, 0, sizeof(f));
        const char *err = NULL;
        int rc = xws_frames_recv(&f, self->sock, 1, &err);
        if (rc != 0 && f.msg == NULL && f.identity == NULL && err != NULL && strcmp(err, "no message") == 0) {
            xws_frames_dispose(&f);
            break;
        }
        s_handle(self, &f, rc, err);
        xws_frames_dispose(&f);
    }
}

void gwb_on_readable(h2o_socket_t *sock, const char *err)
{
    gwb_drain(sock->data);
}

void gwb_on_recheck(h2o_timeout_entry_t *entry)
{
    gw_broker_t *self = H2O_STRUCT_FROM_MEMBER(gw_broker_t, recheck, entry);
    gwb_drain(self);
}
