/*
 * gw_broker_int - the broker's private state, shared by gw_broker.c (jobs, dispatch, sending,
 * the public API) and gw_broker_recv.c (messages from workers). Nothing else includes it.
 */
#ifndef GW_BROKER_INT_H
#define GW_BROKER_INT_H

#include <czmq.h>
#include "gw_broker.h"
#include "gw_internal.h"

#define TICKET_BUCKETS 4096

typedef struct gw_service service_t;
typedef struct gw_worker worker_t;
typedef struct gw_ticket ticket_t;

/* A request sent to a worker and not answered yet; outlives its job when the job is withdrawn. */
struct gw_ticket {
    uint64_t id;          /* key frame */
    gw_job_t *job;        /* NULL when orphaned (timed out or cancelled) */
    worker_t *worker;     /* holder */
    uint64_t deadline_at; /* loop ms */
    h2o_linklist_t link;  /* in worker->tickets */
    h2o_linklist_t olink; /* in worker->outbox until its REQUEST is handed to ZeroMQ */
    ticket_t *hnext;      /* hash chain */
};

struct gw_worker {
    zframe_t *identity;        /* ROUTER peer id (owned) */
    char name[80];             /* for logs: the READY name, else the identity in hex */
    service_t *service;        /* its service */
    unsigned credit;           /* requests it accepts at once */
    unsigned inflight;         /* tickets held */
    uint64_t last_seen;        /* gwb_clock_ms() of its last message */
    uint64_t last_sent;        /* loop ms of our last message to it */
    uint64_t last_dispatch;    /* loop ms of its last request (idle-longest preference) */
    int batch;                 /* 1 when its READY said it reads several requests per message */
    gw_worker_report_t report; /* its last report (PROTOCOL.md §2); zero until the first */
    h2o_linklist_t tickets;    /* ticket_t.link */
    h2o_linklist_t outbox;     /* ticket_t.olink: dispatched in this loop turn, not sent yet */
    h2o_linklist_t dlink;      /* in broker->dirty while its outbox is not empty */
    h2o_linklist_t link;       /* in service->workers */
};

struct gw_service {
    char name[XWS_MAX_NAME + 1];
    h2o_linklist_t workers; /* worker_t.link */
    h2o_linklist_t queue;   /* gw_job_t._link, FIFO */
    size_t nworkers, nqueued;
    gw_broker_counts_t counts; /* events since the start; the figures of forgotten workers' last reports included */
    size_t queued_bytes;       /* envelope bytes of the nqueued jobs */
    service_t *next;
};

struct gw_broker {
    h2o_loop_t *loop;
    gw_broker_opts_t opts;
    char *endpoint;
    zsock_t *sock;
    h2o_socket_t *watch;    /* dup of ZMQ_FD */
    h2o_timeout_t deadline; /* opts.deadline_ms */
    h2o_timeout_t zero;     /* "look at the socket again" */
    h2o_timeout_entry_t recheck;
    h2o_timeout_entry_t flush; /* "send the outboxes": at the end of the loop turn */
    h2o_linklist_t dirty;      /* worker_t.dlink: workers with an outbox to send */
    service_t *services;
    ticket_t *tickets[TICKET_BUCKETS];
    uint64_t last_id;
    size_t npending;
    uint64_t nlate;          /* late replies dropped */
    uint64_t refused_log_at; /* loop ms of the last "unknown service" message */
    uint64_t nrefused;       /* READY for unknown services not reported yet */
    gw_ipc_file_t file;      /* of an ipc:// endpoint: removed at a clean stop */
};

/* JOB_EXPIRING: taken out of its queue because its deadline is too near; its timeout fires on the next loop turn */
enum { JOB_IDLE = 0, JOB_QUEUED = 1, JOB_INFLIGHT = 2, JOB_EXPIRING = 3 };

/* ---- shared between the two files (gwb_: private to the broker) ---- */

/* The service called name (len bytes), or NULL. */
service_t *gwb_service_find(gw_broker_t *self, const char *name, size_t len);

/* Why a worker is forgotten, for the service's counts. */
typedef enum { GWB_GONE_DISCONNECTED, GWB_GONE_EXPIRED, GWB_GONE_UNREACHABLE, GWB_GONE_OTHER } gwb_gone_t;

/* Forgets a worker (counted as how, logged with why): what it held goes back to the head of its
 * service's queue, in order (the caller dispatches). */
void gwb_worker_forget(gw_broker_t *self, worker_t *w, gwb_gone_t how, const char *why);

/* Sends queued jobs of svc to workers with spare credit (their REQUESTs leave at the end of the loop turn). */
void gwb_dispatch(gw_broker_t *self, service_t *svc);

/* The hash slot of ticket id: *slot is the ticket, or NULL. */
ticket_t **gwb_ticket_slot(gw_broker_t *self, uint64_t id);

/* Frees a ticket; its worker's credit comes back. */
void gwb_ticket_free(gw_broker_t *self, ticket_t *t);

/* Counts job (just put in svc's queue) as waiting: jobs and envelope bytes. */
static inline void gwb_queued(service_t *svc, const gw_job_t *job)
{
    svc->nqueued++;
    svc->queued_bytes += job->_envlen;
}

/* Counts job (just taken out of svc's queue) as no longer waiting. */
static inline void gwb_unqueued(service_t *svc, const gw_job_t *job)
{
    svc->nqueued--;
    svc->queued_bytes -= job->_envlen;
}

/* Makes the job idle and calls its owner back (exactly once). */
void gwb_finish(gw_broker_t *self, gw_job_t *job, gw_job_outcome_t outcome, const void *data, size_t len);

/* Marks the socket for another look on the next loop turn: a send may have eaten the fd's edge. */
void gwb_poke(gw_broker_t *self);

/* Reads and handles every message waiting on the worker socket. */
void gwb_drain(gw_broker_t *self);

/*
 * The time now, on h2o_now()'s clock (milliseconds of gettimeofday in h2o 2.2.5's evloop) but read
 * at the call: h2o_now() is the time the loop's turn began, so a message handled after a long
 * turn (answers rendered one after another) would look older than it is and a worker whose
 * heartbeats waited behind them would be expired though alive.
 */
uint64_t gwb_clock_ms(void);

/* The loop's callbacks of the socket's fd and of the next-turn recheck. */
void gwb_on_readable(h2o_socket_t *sock, const char *err);
void gwb_on_recheck(h2o_timeout_entry_t *entry);

#endif
