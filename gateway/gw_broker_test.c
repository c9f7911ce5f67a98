/*
 * gw_broker_test.c - the self-test of gw_broker (see gw_broker.h), apart from gw_broker.c for its
 * length. It drives a broker through its API in an h2o event loop of its own, with fake workers
 * (DEALER sockets speaking PROTOCOL.md §2 over inproc://), and checks: READY and credit, the
 * least-loaded choice, batches of requests per loop turn to a worker whose READY says "batch",
 * the bounded queue, re-dispatch of what a departed, crashed or expired worker held (same key), deadlines
 * and late replies, cancellation (queued, in flight, and before the REQUEST left), the refusal
 * of an unknown service, the workers' reports and the per-service counts (gw_broker_services).
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "xws/frames.h"
#include "gw_broker.h"
#include "gw_check.h"

#define EP "inproc://gw-broker-test"

/* A job with what its callback saw. */
typedef struct {
    gw_job_t job;
    int ndone;
    gw_job_outcome_t outcome;
    char reply[32];
} tjob_t;

static void s_on_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    tjob_t *t = job->data;
    t->ndone++;
    t->outcome = outcome;
    size_t n = len < sizeof(t->reply) - 1 ? len : sizeof(t->reply) - 1;
    if (n > 0)
        memcpy(t->reply, reply, n);
    t->reply[n] = '\0';
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The loop, the broker, and the fake workers that are alive (they send heartbeats while the loop runs). */
typedef struct {
    h2o_loop_t *loop;
    gw_broker_t *b;
    zsock_t *alive[4];
    uint64_t last_beat;
} ctx_t;

/* Runs the loop (and the broker's tick) for about ms milliseconds. */
static void s_pump(ctx_t *x, uint64_t ms)
{
    uint64_t until = s_now_ms() + ms;
    do {
        h2o_evloop_run(x->loop, 2);
        if (s_now_ms() - x->last_beat >= 20) {
            for (size_t i = 0; i < 4; i++)
                if (x->alive[i] != NULL)
                    GW_CHECK(xws_send_heartbeat(x->alive[i], NULL) == 0);
            x->last_beat = s_now_ms();
        }
        gw_broker_tick(x->b);
    } while (s_now_ms() < until);
}

static int s_submit(gw_broker_t *b, tjob_t *t, const char *service, const char *env)
{
    memset(t, 0, sizeof(*t));
    t->job.on_done = s_on_done;
    t->job.data = t;
    return gw_broker_submit(b, &t->job, service, env, strlen(env));
}

/* One REQUEST pair a fake worker received. */
typedef struct {
    uint64_t key;
    char env[32];
} got_t;

/*
 * Pumps the loop until the worker has a message or ms pass; appends its REQUEST pairs to got and
 * returns how many pairs the message held (0: nothing came, -1: another command).
 */
static int s_recv(ctx_t *x, zsock_t *w, uint64_t ms, got_t *got, size_t *ngot)
{
    uint64_t until = s_now_ms() + ms;
    for (;;) {
        while (zsock_events(w) & ZMQ_POLLIN) {
            xws_frames_t f;
            memset(&f, 0, sizeof(f));
            const char *err = NULL;
            int rc = xws_frames_recv(&f, w, 0, &err);
            if (rc != 0) {
                xws_frames_dispose(&f);
                break;
            }
            if (f.cmd == XWS_CMD_HEARTBEAT) {
                xws_frames_dispose(&f);
                continue;
            }
            int n = -1;
            if (f.cmd == XWS_CMD_REQUEST) {
                n = (int)f.count;
                for (size_t i = 0; i < f.count; i++) {
                    xws_slice_t key, payload;
                    xws_frames_pair(&f, i, &key, &payload);
                    GW_CHECK(key.len == 8 && payload.len < sizeof(got[0].env));
                    memcpy(&got[*ngot].key, key.ptr, 8);
                    got[*ngot].key = be64toh(got[*ngot].key);
                    memcpy(got[*ngot].env, payload.ptr, payload.len);
                    got[*ngot].env[payload.len] = '\0';
                    (*ngot)++;
                }
            }
            xws_frames_dispose(&f);
            return n;
        }
        if (s_now_ms() >= until)
            return 0;
        s_pump(x, 2);
    }
}

/* The worker answers the request of key with text. */
static void s_reply(zsock_t *w, uint64_t key, const char *text)
{
    uint64_t k = htobe64(key);
    GW_CHECK(xws_send_reply(w, NULL, (xws_slice_t){(const char *)&k, 8}, xws_slice(text)) == 0);
}

static zsock_t *s_worker(const char *service, unsigned credit, const char *name, const char *features)
{
    zsock_t *w = zsock_new_dealer(">" EP);
    GW_CHECK(w != NULL);
    GW_CHECK(xws_send_ready(w, service, credit, name, features) == 0);
    return w;
}

/* Pumps until the service has n workers, judged by the description. */
/* The state of service from gw_broker_services. */
static gw_broker_service_t s_svc(gw_broker_t *b, const char *service)
{
    gw_broker_service_t all[8];
    size_t n = gw_broker_services(b, all, 8);
    GW_CHECK(n <= 8);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, service) == 0)
            return all[i];
    GW_CHECK(!"no such service");
    return all[0];
}

/* A fake worker's report: {store, store_us, handled} (store NULL: a report that is not a map). */
static void s_report(zsock_t *w, const char *store, uint64_t store_us, uint64_t handled)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (store == NULL) {
        msgpack_pack_array(&pk, 0);
    } else {
        msgpack_pack_map(&pk, 4);
        msgpack_pack_str_with_body(&pk, "store", 5);
        msgpack_pack_str_with_body(&pk, store, strlen(store));
        msgpack_pack_str_with_body(&pk, "store_us", 8);
        msgpack_pack_uint64(&pk, store_us);
        msgpack_pack_str_with_body(&pk, "handled", 7);
        msgpack_pack_uint64(&pk, handled);
        msgpack_pack_str_with_body(&pk, "future", 6); /* unknown keys are ignored */
        msgpack_pack_true(&pk);
    }
    GW_CHECK(xws_send_heartbeat_report(w, NULL, (xws_slice_t){sb.data, sb.size}) == 0);
    msgpack_sbuffer_destroy(&sb);
}

static void s_wait_workers(ctx_t *x, const char *service, size_t n)
{
    char want[64], desc[512];
    snprintf(want, sizeof(want), "%s: %zu worker(s)", service, n);
    uint64_t until = s_now_ms() + 2000;
    do {
        s_pump(x, 2);
        gw_broker_describe(x->b, desc, sizeof(desc));
    } while (strstr(desc, want) == NULL && s_now_ms() < until);
    GW_CHECK(strstr(desc, want) != NULL);
}

void gw_broker_test(void)
{
    ctx_t x;
    memset(&x, 0, sizeof(x));
    h2o_loop_t *loop = x.loop = h2o_evloop_create();
    gw_broker_opts_t opts = {EP, 400, 50, 150, 2, 6, NULL, NULL, NULL}; /* deadline, heartbeat, expiry (ms), queue (jobs, bytes) */
    const char *known[] = {"svc", "other", NULL};
    gw_broker_t *b = x.b = gw_broker_new(loop, &opts, known);
    GW_CHECK(b != NULL);
    tjob_t j[12];
    got_t got[16];
    size_t ngot = 0;

    /* no such service; no worker yet */
    GW_CHECK(s_submit(b, &j[0], "nope", "e") == GW_SUBMIT_UNKNOWN && !gw_job_busy(&j[0].job));
    GW_CHECK(s_submit(b, &j[0], "svc", "e") == GW_SUBMIT_NO_WORKER && !gw_job_busy(&j[0].job));

    /* a READY for a service the gateway does not route is answered with DISCONNECT */
    zsock_t *stranger = s_worker("unrouted", 1, "stranger", NULL);
    s_pump(&x, 20);
    GW_CHECK(s_recv(&x, stranger, 30000, got, &ngot) == -1 && ngot == 0);
    zsock_destroy(&stranger);

    /* READY and credit: A takes 2 at once, the third waits in the queue */
    zsock_t *a = x.alive[0] = s_worker("svc", 2, "A", NULL);
    s_wait_workers(&x, "svc", 1);
    GW_CHECK(gw_broker_has_worker(b, "svc") && !gw_broker_has_worker(b, "other"));
    GW_CHECK(s_submit(b, &j[1], "svc", "e1") == GW_SUBMIT_OK && s_submit(b, &j[2], "svc", "e2") == GW_SUBMIT_OK);
    GW_CHECK(s_submit(b, &j[3], "svc", "e3") == GW_SUBMIT_OK && gw_broker_pending(b) == 3);
    GW_CHECK(j[1].ndone == 0 && gw_job_busy(&j[1].job)); /* never called back from inside submit */
    /* a worker without "batch" gets one REQUEST per message */
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && s_recv(&x, a, 1000, got, &ngot) == 1);
    GW_CHECK(s_recv(&x, a, 50, got, &ngot) == 0 && ngot == 2);
    GW_CHECK(strcmp(got[0].env, "e1") == 0 && strcmp(got[1].env, "e2") == 0 && got[0].key != got[1].key);
    char desc[512];
    gw_broker_describe(b, desc, sizeof(desc));
    GW_CHECK(strstr(desc, "svc: 1 worker(s), 2 in flight, 1 queued") != NULL);

    /* a reply completes its job (exactly once) and frees the credit for the queued one */
    s_reply(a, got[0].key, "r1");
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && strcmp(got[2].env, "e3") == 0);
    GW_CHECK(j[1].ndone == 1 && j[1].outcome == GW_JOB_REPLY && strcmp(j[1].reply, "r1") == 0 && !gw_job_busy(&j[1].job));
    GW_CHECK(gw_broker_pending(b) == 2);

    /* the bounded queue: A is full (e2, e3), two may wait, the next is refused; and at most 6 bytes wait */
    GW_CHECK(s_submit(b, &j[4], "svc", "e4") == GW_SUBMIT_OK);
    GW_CHECK(s_submit(b, &j[6], "svc", "e-long") == GW_SUBMIT_FULL && !gw_job_busy(&j[6].job));
    GW_CHECK(s_submit(b, &j[5], "svc", "e5") == GW_SUBMIT_OK);
    GW_CHECK(s_submit(b, &j[6], "svc", "e6") == GW_SUBMIT_FULL && !gw_job_busy(&j[6].job));
    gw_broker_service_t st = s_svc(b, "svc");
    GW_CHECK(st.counts.no_worker == 1 && st.counts.queue_full == 2 && st.counts.registered == 1); /* by count and by bytes */
    GW_CHECK(st.workers == 1 && st.credit == 2 && st.inflight == 2 && st.queued == 2 && st.store_ok == 0);

    /* B reads batches: the queued pair reaches it in one message, in order */
    zsock_t *bw = x.alive[1] = s_worker("svc", 3, "B", "batch");
    s_wait_workers(&x, "svc", 2);
    size_t first = ngot;
    GW_CHECK(s_recv(&x, bw, 30000, got, &ngot) == 2);
    GW_CHECK(strcmp(got[first].env, "e4") == 0 && strcmp(got[first + 1].env, "e5") == 0);
    uint64_t key4 = got[first].key, key5 = got[first + 1].key;

    /* B is the only one with credit: e6 goes to B (3 of 3 now) */
    GW_CHECK(s_submit(b, &j[6], "svc", "e6") == GW_SUBMIT_OK);
    GW_CHECK(s_recv(&x, bw, 30000, got, &ngot) == 1 && strcmp(got[ngot - 1].env, "e6") == 0);
    uint64_t key6 = got[ngot - 1].key;
    /* the least loaded: A answers e2 (1 of 2 held), B answers e4 (2 of 3 held): e7 goes to A */
    s_reply(a, got[1].key, "r2");
    s_reply(bw, key4, "r4");
    s_pump(&x, 20);
    GW_CHECK(j[2].ndone == 1 && strcmp(j[2].reply, "r2") == 0 && j[4].ndone == 1 && strcmp(j[4].reply, "r4") == 0);
    GW_CHECK(s_submit(b, &j[7], "svc", "e7") == GW_SUBMIT_OK);
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && strcmp(got[ngot - 1].env, "e7") == 0);
    GW_CHECK(s_recv(&x, bw, 50, got, &ngot) == 0);
    s_reply(a, got[2].key, "r3");
    s_reply(a, got[ngot - 1].key, "r7");
    s_reply(bw, key5, "r5");
    s_pump(&x, 30);
    GW_CHECK(j[3].ndone == 1 && j[7].ndone == 1 && j[5].ndone == 1 && strcmp(j[5].reply, "r5") == 0);

    /* reports: the store state and figures of each worker, summed per service */
    s_report(a, "ok", 70, 4);
    s_report(bw, "ok", 90, 3);
    for (uint64_t t1 = s_now_ms(); s_svc(b, "svc").store_ok < 2 && s_now_ms() - t1 < 30000;)
        s_pump(&x, 2);
    st = s_svc(b, "svc");
    GW_CHECK(st.store_ok == 2 && st.store_down == 0 && st.store_us == 90 && st.handled == 7);

    /* re-dispatch: B leaves holding e6; A gets it again with the same key */
    x.alive[1] = NULL;
    GW_CHECK(xws_send_disconnect(bw, NULL) == 0);
    s_wait_workers(&x, "svc", 1);
    st = s_svc(b, "svc");
    GW_CHECK(st.counts.disconnected == 1 && st.counts.redispatched == 1 && st.counts.registered == 2);
    GW_CHECK(st.store_ok == 1 && st.store_us == 70 && st.handled == 7); /* B's figures stay in the sum */
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && got[ngot - 1].key == key6 && strcmp(got[ngot - 1].env, "e6") == 0);
    GW_CHECK(j[6].ndone == 0);
    s_reply(a, key6, "r6");
    s_pump(&x, 20);
    GW_CHECK(j[6].ndone == 1 && strcmp(j[6].reply, "r6") == 0);
    /* a reply from a worker that no longer holds the request is dropped */
    s_reply(bw, key6, "late");
    s_pump(&x, 20);
    GW_CHECK(j[6].ndone == 1 && strcmp(j[6].reply, "r6") == 0);
    zsock_destroy(&bw);

    /* cancel: queued before the loop turn ends (its REQUEST never leaves) and in flight (no callback follows) */
    GW_CHECK(s_submit(b, &j[8], "svc", "e8") == GW_SUBMIT_OK);
    gw_broker_cancel(b, &j[8].job);
    gw_broker_cancel(b, &j[8].job); /* idempotent */
    GW_CHECK(!gw_job_busy(&j[8].job) && gw_broker_pending(b) == 0);
    GW_CHECK(s_recv(&x, a, 50, got, &ngot) == 0);
    GW_CHECK(s_submit(b, &j[9], "svc", "e9") == GW_SUBMIT_OK);
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && strcmp(got[ngot - 1].env, "e9") == 0);
    gw_broker_cancel(b, &j[9].job);
    s_reply(a, got[ngot - 1].key, "r9");
    s_pump(&x, 20);
    GW_CHECK(j[8].ndone == 0 && j[9].ndone == 0);

    /* deadlines: the owner's (submit_until) and the broker's; the late reply is dropped, its credit comes back */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t unow = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    memset(&j[10], 0, sizeof(j[10]));
    j[10].job.on_done = s_on_done;
    j[10].job.data = &j[10];
    GW_CHECK(gw_broker_submit_until(b, &j[10].job, "svc", "e10", 3, unow + 60) == GW_SUBMIT_OK);
    GW_CHECK(s_submit(b, &j[11], "svc", "e11") == GW_SUBMIT_OK);
    size_t before = ngot;
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && s_recv(&x, a, 1000, got, &ngot) == 1);
    uint64_t t0 = s_now_ms();
    while (j[10].ndone == 0 && s_now_ms() - t0 < 1000)
        s_pump(&x, 5);
    GW_CHECK(j[10].ndone == 1 && j[10].outcome == GW_JOB_TIMEOUT && j[11].ndone == 0);
    while (j[11].ndone == 0 && s_now_ms() - t0 < 2000)
        s_pump(&x, 5);
    GW_CHECK(j[11].ndone == 1 && j[11].outcome == GW_JOB_TIMEOUT && s_now_ms() - t0 >= 150);
    GW_CHECK(gw_broker_pending(b) == 0);
    gw_broker_describe(b, desc, sizeof(desc));
    /* the worker still works on e11 and keeps its credit; e10's, long past its deadline, was released */
    GW_CHECK(strstr(desc, "svc: 1 worker(s), 1 in flight") != NULL);
    s_reply(a, got[before].key, "late");
    s_reply(a, got[before + 1].key, "late");
    s_pump(&x, 20);
    GW_CHECK(j[10].ndone == 1 && j[11].ndone == 1);
    gw_broker_describe(b, desc, sizeof(desc));
    GW_CHECK(strstr(desc, "svc: 1 worker(s), 0 in flight") != NULL);
    GW_CHECK(s_svc(b, "svc").counts.timeouts == 2);
    /* a report that says "down", then one that cannot be read: no longer counted as reaching the store */
    s_report(a, "down", 0, 6);
    for (uint64_t t1 = s_now_ms(); s_svc(b, "svc").store_down < 1 && s_now_ms() - t1 < 30000;)
        s_pump(&x, 2);
    st = s_svc(b, "svc");
    GW_CHECK(st.store_ok == 0 && st.store_down == 1 && st.handled == 9);
    s_report(a, NULL, 0, 0);
    for (uint64_t t1 = s_now_ms(); s_svc(b, "svc").counts.bad_reports < 1 && s_now_ms() - t1 < 30000;)
        s_pump(&x, 2);
    st = s_svc(b, "svc");
    GW_CHECK(st.store_ok == 0 && st.store_down == 0 && st.workers == 1);

    /* expiry: A falls silent holding e0; once it is forgotten, D gets e0 with the same key */
    GW_CHECK(s_submit(b, &j[0], "svc", "e0") == GW_SUBMIT_OK);
    GW_CHECK(s_recv(&x, a, 30000, got, &ngot) == 1 && strcmp(got[ngot - 1].env, "e0") == 0);
    uint64_t key0 = got[ngot - 1].key;
    x.alive[0] = NULL;
    zsock_t *d = x.alive[2] = s_worker("svc", 1, "D", NULL);
    s_wait_workers(&x, "svc", 2);
    GW_CHECK(s_recv(&x, d, 30000, got, &ngot) == 1 && got[ngot - 1].key == key0 && strcmp(got[ngot - 1].env, "e0") == 0);
    s_wait_workers(&x, "svc", 1);
    s_reply(d, key0, "r0");
    s_pump(&x, 20);
    GW_CHECK(j[0].ndone == 1 && j[0].outcome == GW_JOB_REPLY && strcmp(j[0].reply, "r0") == 0);
    st = s_svc(b, "svc");
    GW_CHECK(st.counts.expired == 1 && st.counts.redispatched == 2 && st.counts.registered == 3 && st.counts.disconnected == 1);
    GW_CHECK(s_svc(b, "other").workers == 0 && s_svc(b, "other").counts.registered == 0);
    zsock_destroy(&a);

    /* a crash: E holds e12 and its connection closes without DISCONNECT; the probe of a quiet worker
     * that holds requests finds it unreachable (not expired) and D gets e12 with the same key */
    zsock_t *e = x.alive[1] = s_worker("svc", 1, "E", NULL);
    s_wait_workers(&x, "svc", 2);
    GW_CHECK(s_submit(b, &j[3], "svc", "e12") == GW_SUBMIT_OK);
    GW_CHECK(s_recv(&x, e, 30000, got, &ngot) == 1 && strcmp(got[ngot - 1].env, "e12") == 0); /* idle longest */
    uint64_t key12 = got[ngot - 1].key;
    x.alive[1] = NULL;
    zsock_destroy(&e);
    GW_CHECK(s_recv(&x, d, 30000, got, &ngot) == 1 && got[ngot - 1].key == key12 && strcmp(got[ngot - 1].env, "e12") == 0);
    s_reply(d, key12, "r12");
    s_pump(&x, 20);
    GW_CHECK(j[3].ndone == 1 && j[3].outcome == GW_JOB_REPLY && strcmp(j[3].reply, "r12") == 0);
    st = s_svc(b, "svc");
    GW_CHECK(st.counts.unreachable == 1 && st.counts.expired == 1 && st.counts.redispatched == 3 && st.workers == 1);

    /* destroy with a job queued: no callback */
    zsock_t *c = x.alive[3] = s_worker("svc", 1, "C", NULL);
    s_wait_workers(&x, "svc", 2);
    GW_CHECK(s_submit(b, &j[1], "svc", "x") == GW_SUBMIT_OK && s_submit(b, &j[2], "svc", "y") == GW_SUBMIT_OK);
    gw_broker_destroy(&b);
    gw_broker_destroy(&b); /* NULL-safe */
    GW_CHECK(b == NULL && j[1].ndone == 0 && j[2].ndone == 0);
    zsock_destroy(&c);
    zsock_destroy(&d);
    h2o_evloop_destroy(loop);
}
