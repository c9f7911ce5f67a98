/*
 * gw_broker - the dispatcher between the gateway and its workers (PROTOCOL.md §2, §5).
 *
 * It binds a ROUTER (ROUTER_MANDATORY, SNDTIMEO 0) on the worker endpoint and lives in the h2o
 * event loop (a dup of ZMQ_FD, read with DONT_READ and drained while ZMQ_EVENTS says POLLIN; the
 * socket is looked at again after every send). Workers register with READY <service> <credit>; a
 * job goes to a live worker of its service with spare credit (the fewest in flight, then the one
 * idle longest), else waits in the service's FIFO queue (bounded by jobs and by bytes). Heartbeats go both ways; a
 * worker silent for expiry_ms, one that says DISCONNECT, or one a send cannot reach (its connection
 * closed: a crash; workers that hold requests and are quiet for heartbeat_ms / 10 are probed with a
 * HEARTBEAT for this) is forgotten and what it held is sent again (same envelope, same rid) to
 * another worker or queued. Anything but READY from an unknown
 * peer is answered with DISCONNECT. Every job has a deadline; past it the owner hears
 * GW_JOB_TIMEOUT and a late reply is dropped (logged).
 *
 * A job is a struct the owner embeds in its own state (an HTTP request, an internal consumer
 * request, an account refresh) and submits with its encoded request envelope; the broker calls
 * job->on_done exactly once per accepted submit, unless the owner cancels it first. The broker's
 * copy of an envelope (held for re-dispatch) is wiped before it is freed: password checks and
 * records carry secrets.
 */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include <stddef.h>
#include <stdint.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0 /* the evloop flavour of h2o */
#endif
#include <h2o.h>
#include "xws/proto.h"

typedef struct gw_broker gw_broker_t;
typedef struct gw_job gw_job_t;

typedef enum {
    GW_JOB_REPLY = 0,     /* reply/len hold the reply envelope (valid during the callback only) */
    GW_JOB_TIMEOUT = 1,   /* the deadline passed */
    GW_JOB_BAD_REPLY = 2, /* the worker answered with a malformed message */
} gw_job_outcome_t;

typedef void (*gw_job_cb)(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len);

struct gw_job {
    gw_job_cb on_done; /* set by the owner before submit */
    void *data;        /* owner's pointer */
    /* private to the broker */
    int _state;                  /* 0 idle, 1 queued, 2 in flight, 3 expiring (deadline too near to dispatch) */
    uint64_t _id;                /* key of the REQUEST frame */
    struct gw_broker *_broker;   /* owner of the job while busy */
    struct gw_service *_service; /* target */
    char *_env;                  /* owned copy of the envelope (for re-dispatch) */
    size_t _envlen;
    uint64_t _deadline_at;      /* loop time (ms) of the deadline */
    uint64_t _env_deadline_at;  /* loop time (ms) when the envelope's budget ends, 0: no budget */
    h2o_linklist_t _link;       /* in the service queue, or the worker's in-flight list */
    h2o_timeout_entry_t _timer; /* deadline */
    struct gw_ticket *_ticket;  /* while in flight */
};

/* Settings of a broker. */
typedef struct {
    const char *endpoint;     /* where to bind the worker ROUTER */
    uint64_t deadline_ms;     /* job deadline */
    uint64_t heartbeat_ms;    /* heartbeat interval */
    uint64_t expiry_ms;       /* silence after which a worker is dead */
    size_t queue_max;         /* waiting jobs per service */
    size_t queue_max_bytes;   /* bytes of the waiting jobs' envelopes per service (0: no bound but queue_max) */
    struct gw_zap *zap;       /* with curve_secret and curve_dir: the endpoint is a CURVE server guarded by it (NULL: no CURVE) */
    const char *curve_secret; /* the gateway's secret certificate file */
    const char *curve_dir;    /* the allow-list of the workers' public certificates */
} gw_broker_opts_t;

/* The largest ZeroMQ frame the gateway's ROUTERs accept (ZMQ_MAXMSGSIZE): a peer sending a larger
 * one is disconnected by libzmq before the frame is buffered. */
#define GW_MAX_FRAME ((int64_t)XWS_MAX_ENVELOPE + 1024)
/* the largest frame a worker may send (replies carry long lists) */
#define GW_MAX_REPLY_FRAME ((int64_t)XWS_MAX_REPLY + 1024)

/* A queued job with less than this left before its deadline is not sent to a worker: it times out. */
#define GW_BROKER_MIN_LEFT_MS 10

/* Result of gw_broker_submit. */
#define GW_SUBMIT_OK 0
#define GW_SUBMIT_NO_WORKER -1 /* no live worker for the service: answer 503 */
#define GW_SUBMIT_FULL -2      /* every worker busy and the queue full (jobs or bytes): answer 503 */
#define GW_SUBMIT_UNKNOWN -3   /* no such service: answer 404 */

/*
 * Binds the worker endpoint (as a CURVE server in the ZAP domain "workers" when opts->zap is set)
 * and joins loop. Returns NULL (with a message on stderr) when the endpoint cannot be bound or
 * guarded. The services named in known (NULL-terminated, may be NULL) are the only
 * ones served: a READY for any other service is answered with DISCONNECT (logged, at most one line
 * a second), so that peers cannot grow the registry.
 */
gw_broker_t *gw_broker_new(h2o_loop_t *loop, const gw_broker_opts_t *opts, const char *const *known);

/* Sends DISCONNECT to every worker, cancels every job (no callbacks), closes. NULL-safe. */
void gw_broker_destroy(gw_broker_t **self_p);

/*
 * Submits job for service with the request envelope env/len (copied). On GW_SUBMIT_OK the job is
 * queued or sent and on_done will be called later (never from inside this call). Other results
 * leave the job untouched and idle. job must be idle (not submitted, or already done/cancelled).
 */
int gw_broker_submit(gw_broker_t *self, gw_job_t *job, const char *service, const void *env, size_t len);

/*
 * gw_broker_submit with the owner's own deadline (Unix ms, the envelope's; 0: none): the job's
 * deadline is the earlier of it and deadline_ms from now. A job still queued when less than
 * GW_BROKER_MIN_LEFT_MS remain is not dispatched: the owner hears GW_JOB_TIMEOUT (on a later loop
 * turn). Past that deadline gw_broker_tick times the job out (queued or in flight; a worker that
 * holds it keeps the credit until it answers), so the owner hears GW_JOB_TIMEOUT within a tick of
 * it; the broker's own timer (deadline_ms after the submit) remains the latest bound.
 */
int gw_broker_submit_until(gw_broker_t *self, gw_job_t *job, const char *service, const void *env, size_t len,
                           uint64_t deadline_unix_ms);

/* Withdraws a job; no callback follows. Idempotent; a job that is idle is left alone. */
void gw_broker_cancel(gw_broker_t *self, gw_job_t *job);

/* 1 when the job is submitted and not yet done. */
int gw_job_busy(const gw_job_t *job);

/* 1 when the service has at least one live worker. */
int gw_broker_has_worker(gw_broker_t *self, const char *service);

/* Number of jobs queued or in flight. */
size_t gw_broker_pending(gw_broker_t *self);

/* Heartbeats, expiry, release of orphaned credit: call it about every heartbeat_ms / 4. */
void gw_broker_tick(gw_broker_t *self);

/* Sends DISCONNECT to every worker and forgets them (for a clean stop). */
void gw_broker_disconnect_all(gw_broker_t *self);

/* What a worker said in its last report (the HEARTBEAT's third frame, PROTOCOL.md §2). */
typedef struct {
    int store;             /* GW_STORE_*: whether its last probe found Redis answering */
    uint64_t store_us;     /* round trip of its last successful probe, microseconds */
    uint64_t handled;      /* requests it answered since it started */
    uint64_t replayed;     /* writes it answered from their recorded outcome (a retried rid) */
    uint64_t store_errors; /* requests it answered 503 store_unavailable */
} gw_worker_report_t;

enum { GW_STORE_UNKNOWN = 0, GW_STORE_OK = 1, GW_STORE_DOWN = 2 };

/* Monotonic counts of one service since the gateway started. */
typedef struct {
    uint64_t registered;     /* workers that announced READY */
    uint64_t disconnected;   /* workers forgotten after their DISCONNECT (a clean stop) */
    uint64_t expired;        /* workers forgotten after expiry_ms of silence (a hang, a crash or a lost link beyond this host) */
    uint64_t unreachable;    /* workers forgotten because a send failed: their connection is gone (a crash on this host) */
    uint64_t other;          /* workers forgotten for another reason (re-registered for another service, gateway stopping) */
    uint64_t redispatched;   /* requests held by a forgotten worker and queued again */
    uint64_t no_worker;      /* submits refused: no live worker */
    uint64_t queue_full;     /* submits refused: the queue was full */
    uint64_t timeouts;       /* jobs that reached their deadline (owners answer 504) */
    uint64_t bad_reports;    /* reports that could not be read (ignored; the heartbeat still counts) */
    gw_worker_report_t gone; /* handled, replayed and store_errors of forgotten workers' last reports */
} gw_broker_counts_t;

/* The state of one service (gw_broker_services). */
typedef struct {
    const char *name;                         /* borrowed from the broker */
    size_t workers;                           /* live workers */
    size_t queued;                            /* jobs waiting */
    size_t inflight;                          /* requests held by workers */
    size_t credit;                            /* sum of the workers' credits */
    size_t store_ok;                          /* workers whose last report says Redis answered */
    size_t store_down;                        /* workers whose last report says it did not */
    uint64_t store_us;                        /* the slowest last probe among the store_ok workers, microseconds (0: none) */
    uint64_t handled, replayed, store_errors; /* the live workers' last reports plus counts.gone */
    gw_broker_counts_t counts;
} gw_broker_service_t;

/* Fills out[0..max-1] with the served services, in the order of the table; returns how many there are. */
size_t gw_broker_services(gw_broker_t *self, gw_broker_service_t *out, size_t max);

/* Fills buf with a one-line summary: services, workers, queued and in-flight jobs. */
void gw_broker_describe(gw_broker_t *self, char *buf, size_t size);

/* Self-test (gw_broker_test.c): fake workers over inproc:// in a loop of its own; aborts on failure. */
void gw_broker_test(void);

#endif
