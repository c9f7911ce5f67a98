/* svc_redis.c - see svc_redis.h */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include "svc_coro.h"
#include "svc_log.h"
#include "svc_redis.h"
#include "svc_util.h"
#include "xws/cli.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

/* a coroutine waiting for the replies of the commands it queued (lives on the coroutine's stack) */
typedef struct s_waiter {
    struct s_waiter *next;
    svc_coro_t *co;    /* to resume when complete */
    int n, got;        /* replies expected, received */
    redisReply **out;  /* where they go */
    int failed;        /* 1: the connection failed first (out all NULL) */
    long long sent_ms; /* monotonic ms when the commands were queued */
    size_t bytes;      /* size of its replies on the wire */
} s_waiter_t;

/* a call whose replies are larger than this is resumed after the others of the same read */
#define LARGE_REPLY_BYTES (64 * 1024)

typedef struct {
    s_waiter_t *head, *tail;
} s_wlist_t;

typedef struct {
    char *host;
    int port;
} s_addr_t;

struct svc_redis {
    char *spec;          /* as given */
    char *path;          /* unix socket path, or NULL */
    char *host;          /* tcp host, or NULL (with Sentinel: the primary last resolved) */
    int port;            /* tcp port */
    s_addr_t *sentinels; /* sentinel://...: the Sentinels asked for the primary, or NULL */
    size_t nsentinels;
    char *master;        /* the name of the primary for the Sentinels */
    char *password;      /* AUTH after every connect (requirepass), or NULL */
    int wait_replicas;   /* WAIT for this many replicas after a write (0: none) */
    int wait_timeout_ms; /* how long WAIT may take */
    struct timeval tmo;  /* connect and command timeout */
    const char *libname; /* function library name (borrowed), without the version */
    char suffix[40];     /* "_v0_9_0": of the library's name and of every function's */
    const char *lua;     /* library body (borrowed) or NULL */
    char run_id[48];     /* the run_id of the Redis process of the current connection (INFO server), "" when unknown */
    redisContext *ctx;   /* NULL while disconnected */
    long long retry_at;  /* monotonic ms before which no connect is attempted */
    int backoff_ms;      /* current back-off */
    int failing;         /* 1 after a failure was logged, until the next success */
    int timed_out;       /* 1 when the last connection was dropped after a timeout */
    int reconnect_free;  /* 1 after a broken (not hanging) connection, until the next connect attempt */
    /* commands of coroutines: formatted into obuf, replies handed out in order */
    xws_buf_t obuf;              /* output not yet written */
    size_t obuf_off;             /* bytes of obuf already written */
    s_wlist_t waiting;           /* waiters in the order of their commands */
    s_wlist_t ready;             /* waiters whose replies are complete (or failed), to resume */
    s_wlist_t late;              /* the same with large replies: resumed after the others */
    size_t nwaiting;             /* length of waiting */
    long long heard_ms;          /* monotonic ms when Redis last sent bytes (the timeout counts from then, see s_overdue_at) */
    unsigned long long fed;      /* bytes given to the reader since the connection opened */
    unsigned long long consumed; /* bytes of it that formed complete replies */
};

static void s_wpush(s_wlist_t *l, s_waiter_t *w)
{
    w->next = NULL;
    if (l->tail != NULL)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static s_waiter_t *s_wpop(s_wlist_t *l)
{
    s_waiter_t *w = l->head;
    if (w != NULL) {
        l->head = w->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return w;
}

/* parses spec into self: 0, -1 malformed, -2 refused and reported */
/* parses "host:port" or "[v6]:port" (len bytes) into a new *host and *port; 0 or -1 */
static int s_parse_hostport(const char *h, size_t len, char **host, int *port)
{
    char buf[300];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, h, len);
    buf[len] = '\0';
    h = buf;
    const char *colon, *hend;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (hend == NULL || hend[1] != ':')
            return -1;
        colon = hend + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        if (colon == NULL)
            return -1;
        hend = colon;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (hend == h || *end != '\0' || colon[1] == '\0' || p < 1 || p > 65535)
        return -1;
    *host = svc_strndup(h, (size_t)(hend - h));
    *port = (int)p;
    return 0;
}

static int s_parse(svc_redis_t *self, const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *p = spec + 5;
        if (strncmp(p, "//", 2) == 0)
            p += 2;
        if (*p == '\0')
            return -1;
        if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            /* the kernel cannot take it: say so rather than a later "No such file or directory" */
            svc_log(SVC_LOG_ERROR, "redis: the socket path %s is too long (%zu bytes; at most %zu)", p, strlen(p),
                    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
            return -2;
        }
        self->path = svc_strdup(p);
        return 0;
    }
    if (strncmp(spec, "tcp://", 6) == 0)
        return s_parse_hostport(spec + 6, strlen(spec + 6), &self->host, &self->port);
    if (strncmp(spec, "sentinel://", 11) == 0) {
        /* sentinel://host:port[,host:port...]/master */
        const char *list = spec + 11, *slash = strchr(list, '/');
        if (slash == NULL || slash[1] == '\0' || slash == list)
            return -1;
        for (const char *p = list; p < slash;) {
            const char *comma = memchr(p, ',', (size_t)(slash - p));
            const char *end = comma != NULL ? comma : slash;
            self->sentinels = svc_realloc(self->sentinels, (self->nsentinels + 1) * sizeof(*self->sentinels));
            s_addr_t *a = &self->sentinels[self->nsentinels];
            if (s_parse_hostport(p, (size_t)(end - p), &a->host, &a->port) != 0)
                return -1;
            self->nsentinels++;
            p = end + (comma != NULL);
        }
        self->master = svc_strdup(slash + 1);
        return 0;
    }
    return -1;
}

svc_redis_t *svc_redis_new(const char *spec, int timeout_ms, const char *libname, const char *lua)
{
    assert(spec != NULL);
    svc_redis_t *self = svc_calloc(1, sizeof(*self));
    int bad = s_parse(self, spec);
    if (bad != 0) {
        if (bad == -1)
            svc_log(SVC_LOG_ERROR,
                    "redis: malformed address '%s' (expected unix:/path, tcp://host:port or "
                    "sentinel://host:port[,host:port...]/master)",
                    spec);
        svc_redis_destroy(&self);
        return NULL;
    }
    self->spec = svc_strdup(spec);
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    self->tmo.tv_sec = timeout_ms / 1000;
    self->tmo.tv_usec = (timeout_ms % 1000) * 1000;
    self->libname = libname;
    self->lua = lua;
    svc_redis_set_library_version(self, xws_version());
    self->backoff_ms = BACKOFF_MIN_MS;
    xws_buf_init(&self->obuf);
    return self;
}

void svc_redis_destroy(svc_redis_t **self_p)
{
    assert(self_p != NULL);
    svc_redis_t *self = *self_p;
    if (self == NULL)
        return;
    /* coroutines still waiting (a worker stopping on a fatal error) are left suspended: their
     * replies so far are freed, and they must not be resumed */
    for (s_waiter_t *w; (w = s_wpop(&self->waiting)) != NULL;)
        for (int i = 0; i < w->got; i++)
            freeReplyObject(w->out[i]);
    for (s_waiter_t *w; (w = s_wpop(&self->late)) != NULL;)
        for (int i = 0; i < w->got; i++)
            freeReplyObject(w->out[i]);
    for (s_waiter_t *w; (w = s_wpop(&self->ready)) != NULL;)
        for (int i = 0; i < w->got; i++)
            freeReplyObject(w->out[i]);
    if (self->ctx != NULL)
        redisFree(self->ctx);
    xws_buf_dispose(&self->obuf);
    free(self->spec);
    free(self->path);
    free(self->host);
    for (size_t i = 0; i < self->nsentinels; i++)
        free(self->sentinels[i].host);
    free(self->sentinels);
    free(self->master);
    if (self->password != NULL) {
        memset(self->password, 0, strlen(self->password));
        free(self->password);
    }
    free(self);
    *self_p = NULL;
}

const char *svc_redis_spec(const svc_redis_t *self)
{
    return self->spec;
}

/*
 * closes a broken connection. After a timeout (a Redis that hangs) the back-off applies at once,
 * so that the next requests fail fast instead of each waiting for the timeout again; after any
 * other failure (Redis restarted: EOF, broken pipe) one immediate reconnect is allowed.
 */
static void s_drop(svc_redis_t *self, const char *why, int timed_out)
{
    if (!self->failing)
        svc_log(SVC_LOG_ERROR, "redis: connection to %s lost: %s; reconnecting with back-off", self->spec, why);
    self->failing = 1;
    self->timed_out = timed_out;
    self->reconnect_free = !timed_out;
    redisFree(self->ctx);
    self->ctx = NULL;
    /* what coroutines queued is lost with the connection: each of them hears "failed" */
    xws_buf_reset(&self->obuf);
    self->obuf_off = 0;
    for (s_waiter_t *w; (w = s_wpop(&self->waiting)) != NULL;) {
        for (int i = 0; i < w->got; i++) {
            freeReplyObject(w->out[i]);
            w->out[i] = NULL;
        }
        w->failed = 1;
        s_wpush(&self->ready, w);
    }
    self->nwaiting = 0;
    self->fed = self->consumed = 0;
    if (timed_out) {
        self->retry_at = svc_now_mono_ms() + self->backoff_ms;
        self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
    }
}

/* a failed connect attempt: logged (once, then at the longest back-off), back-off doubled; -1 */
static int s_connect_failed(svc_redis_t *self, long long now, const char *why)
{
    if (!self->failing || self->backoff_ms >= BACKOFF_MAX_MS)
        svc_log(SVC_LOG_ERROR, "redis: cannot connect to %s: %s (next attempt in %d ms)", self->spec, why, self->backoff_ms);
    self->failing = 1;
    self->retry_at = now + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : self->backoff_ms * 2;
    return -1;
}

/* asks the Sentinels, in order, for the address of the primary; 0 (self->host/port set), or -1 */
static int s_resolve(svc_redis_t *self, char *why, size_t whylen)
{
    /* a Sentinel that does not answer must not hold the worker long: at most 500 ms each */
    struct timeval tmo = self->tmo;
    if (tmo.tv_sec > 0 || tmo.tv_usec > 500000)
        tmo = (struct timeval){0, 500000};
    snprintf(why, whylen, "no Sentinel answered for primary %s", self->master);
    for (size_t i = 0; i < self->nsentinels; i++) {
        redisContext *c = redisConnectWithTimeout(self->sentinels[i].host, self->sentinels[i].port, tmo);
        if (c == NULL)
            abort();
        redisReply *r = NULL;
        if (c->err == 0 && redisSetTimeout(c, tmo) == REDIS_OK)
            r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", self->master);
        int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                 r->element[1]->type == REDIS_REPLY_STRING;
        if (ok) {
            long port = strtol(r->element[1]->str, NULL, 10);
            ok = port >= 1 && port <= 65535;
            if (ok) {
                free(self->host);
                self->host = svc_strdup(r->element[0]->str);
                self->port = (int)port;
            }
        } else if (r != NULL && r->type == REDIS_REPLY_NIL) {
            snprintf(why, whylen, "the Sentinels do not know a primary named %s", self->master);
        }
        freeReplyObject(r);
        redisFree(c);
        if (ok)
            return 0;
    }
    return -1;
}

/* 1 when the server on c says it is a primary (ROLE) */
static int s_is_primary(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return ok;
}

/* the run_id of the Redis process behind c (a new one at every start of Redis, and on another
 * server after a failover) into self->run_id; "" when INFO does not say (renamed away) */
static void s_read_run_id(svc_redis_t *self, redisContext *c)
{
    self->run_id[0] = '\0';
    redisReply *r = redisCommand(c, "INFO server");
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "\nrun_id:") : NULL;
    if (p != NULL) {
        p += strlen("\nrun_id:");
        size_t n = strspn(p, "0123456789abcdefABCDEF");
        if (n > 0 && n < sizeof(self->run_id)) {
            memcpy(self->run_id, p, n);
            self->run_id[n] = '\0';
        }
    }
    if (self->run_id[0] == '\0')
        svc_log(SVC_LOG_WARN, "redis: INFO server gave no run_id: entity tags cannot tell a restarted Redis from the same one");
    freeReplyObject(r);
}

int svc_redis_connect(svc_redis_t *self)
{
    assert(self != NULL);
    if (self->ctx != NULL)
        return 0;
    long long now = svc_now_mono_ms();
    if (now < self->retry_at)
        return -1;
    self->reconnect_free = 0;
    char why[256];
    if (self->nsentinels > 0 && s_resolve(self, why, sizeof(why)) != 0)
        return s_connect_failed(self, now, why);
    redisContext *c = self->path != NULL ? redisConnectUnixWithTimeout(self->path, self->tmo)
                                         : redisConnectWithTimeout(self->host, self->port, self->tmo);
    if (c == NULL)
        abort(); /* hiredis returns NULL only when out of memory */
    if (c->err != 0 || redisSetTimeout(c, self->tmo) != REDIS_OK) {
        snprintf(why, sizeof(why), "%s", c->errstr);
        redisFree(c);
        return s_connect_failed(self, now, why);
    }
    if (self->password != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", self->password);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        snprintf(why, sizeof(why), "authentication refused: %s", r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return s_connect_failed(self, now, why);
        }
    }
    if (self->nsentinels > 0 && !s_is_primary(c)) {
        /* the Sentinels' answer is behind a failover in progress: ask again after the back-off */
        snprintf(why, sizeof(why), "%s:%d is not a primary (a failover is in progress)", self->host, self->port);
        redisFree(c);
        return s_connect_failed(self, now, why);
    }
    s_read_run_id(self, c);
    self->ctx = c;
    self->timed_out = 0;
    if (self->failing)
        svc_log(SVC_LOG_INFO, "redis: connected to %s", self->spec);
    self->failing = 0;
    self->backoff_ms = BACKOFF_MIN_MS;
    self->retry_at = 0;
    if (self->lua != NULL && svc_redis_load(self) != 0 && self->ctx == NULL)
        return -1;
    return 0;
}

/* appends c (one of '*', '$'), the decimal n and CRLF to out */
static void s_format_len(xws_buf_t *out, char c, size_t n)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do
        tmp[--i] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    tmp[--i] = c;
    xws_buf_add(out, tmp + i, sizeof(tmp) - i);
}

/* appends one command in the Redis protocol (RESP: an array of bulk strings) to out */
static void s_format(xws_buf_t *out, int argc, const char *const *argv, const size_t *lens)
{
    s_format_len(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens != NULL ? lens[i] : strlen(argv[i]);
        s_format_len(out, '$', len);
        xws_buf_add(out, argv[i], len);
        xws_buf_add(out, "\r\n", 2);
    }
}

/*
 * One attempt of n commands (a pipeline; lenss NULL, or lenss[i] NULL, for NUL-terminated
 * arguments) on the current connection: 0 with every reply in out, or -1 (out all NULL, the
 * connection dropped) on an I/O failure.
 */
static int s_send(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs, const size_t *const *lenss,
                  redisReply **out)
{
    for (int i = 0; i < n; i++)
        out[i] = NULL; /* every path below may free them */
    svc_coro_t *co = svc_coro_current();
    if (co != NULL) {
        /* in a coroutine: queue the commands, sleep until the owner's loop brings the replies */
        for (int i = 0; i < n; i++)
            s_format(&self->obuf, argcs[i], argvs[i], lenss != NULL ? lenss[i] : NULL);
        s_waiter_t w = {.co = co, .n = n, .out = out, .sent_ms = svc_now_mono_ms()};
        s_wpush(&self->waiting, &w);
        self->nwaiting++;
        svc_coro_yield();
        return w.failed ? -1 : 0;
    }
    errno = 0;
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        ok = redisAppendCommandArgv(self->ctx, argcs[i], (const char **)argvs[i], lenss != NULL ? lenss[i] : NULL) == REDIS_OK;
    for (int i = 0; i < n && ok; i++)
        ok = redisGetReply(self->ctx, (void **)&out[i]) == REDIS_OK && out[i] != NULL;
    if (ok)
        return 0;
    for (int i = 0; i < n; i++) {
        freeReplyObject(out[i]);
        out[i] = NULL;
    }
    int timed_out = errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT;
    s_drop(self, timed_out ? "command timed out" : self->ctx->errstr[0] != '\0' ? self->ctx->errstr : "I/O error", timed_out);
    return -1;
}

/* Error replies of a server that refuses every command for a while, running none of them: it is still
 * loading its data set after a restart (LOADING), or a script or function runs beyond its time limit
 * (BUSY). They mean "unavailable, try again", like a lost connection. */
static const char *const s_refusals[] = {"LOADING ", "BUSY "};

/* 1 when some out[0..n-1] is such a refusal; then every out[i] is freed and NULL. */
static int s_refused(redisReply **out, int n)
{
    int refused = 0;
    for (int i = 0; i < n && !refused; i++)
        for (size_t k = 0; out[i] != NULL && out[i]->type == REDIS_REPLY_ERROR && k < sizeof(s_refusals) / sizeof(s_refusals[0]);
             k++)
            refused |= strncmp(out[i]->str, s_refusals[k], strlen(s_refusals[k])) == 0;
    for (int i = 0; i < n && refused; i++) {
        freeReplyObject(out[i]);
        out[i] = NULL;
    }
    return refused;
}

/* s_send with one immediate reconnect when the connection broke (not when Redis hangs); -1 as well when
 * the server refused the commands for now (s_refused) */
static int s_run(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs, const size_t *const *lenss,
                 redisReply **out)
{
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (self->ctx == NULL) {
            if (attempt > 0 && self->timed_out)
                break; /* Redis hangs: do not wait for a second timeout */
            if (attempt > 0 && self->reconnect_free)
                self->retry_at = 0; /* the connection just broke: one immediate reconnect */
            if (svc_redis_connect(self) != 0)
                break;
        }
        if (s_send(self, n, argcs, argvs, lenss, out) == 0)
            return s_refused(out, n) ? -1 : 0;
    }
    return -1;
}

redisReply *svc_redis_command(svc_redis_t *self, int argc, const char **argv, const size_t *lens)
{
    assert(self != NULL && argc > 0);
    const char *const *argvs[1] = {argv};
    const size_t *lenss[1] = {lens};
    redisReply *r = NULL;
    s_run(self, 1, &argc, argvs, lenss, &r);
    return r;
}

int svc_redis_pipeline(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs, redisReply **out)
{
    assert(self != NULL && n > 0);
    return s_run(self, n, argcs, argvs, NULL, out);
}

redisReply *svc_redis_tx(svc_redis_t *self, int n, const int *argcs, const char *const *const *argvs)
{
    assert(self != NULL && n > 0);
    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
    int *c = svc_calloc((size_t)n + 2, sizeof(*c));
    const char *const **v = svc_calloc((size_t)n + 2, sizeof(*v));
    redisReply **out = svc_calloc((size_t)n + 2, sizeof(*out));
    c[0] = c[n + 1] = 1;
    v[0] = multi;
    v[n + 1] = exec;
    for (int i = 0; i < n; i++)
        c[i + 1] = argcs[i], v[i + 1] = argvs[i];
    redisReply *r = NULL;
    if (svc_redis_pipeline(self, n + 2, c, v, out) == 0) {
        for (int i = 0; i <= n; i++) /* OK and QUEUED: EXEC says how it went */
            freeReplyObject(out[i]);
        r = out[n + 1];
    }
    free(c);
    free(v);
    free(out);
    return r;
}

/* orders the (field, value) pairs of an HGETALL reply by field: length, then bytes */
static int s_cmp_pair(const void *a, const void *b)
{
    const redisReply *x = *(const redisReply *const *)a, *y = *(const redisReply *const *)b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->len > 0 ? memcmp(x->str, y->str, x->len) : 0;
}

int svc_hash_init(svc_hash_t *self, const redisReply *h)
{
    memset(self, 0, sizeof(*self));
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i < h->elements; i++)
        if (h->element[i]->type != REDIS_REPLY_STRING)
            return -1;
    self->n = h->elements / 2;
    self->_pairs = svc_calloc(h->elements + 1, sizeof(*self->_pairs));
    if (self->n > 0) {
        memcpy(self->_pairs, h->element, h->elements * sizeof(*self->_pairs));
        qsort(self->_pairs, self->n, 2 * sizeof(*self->_pairs), s_cmp_pair);
    }
    return 0;
}

void svc_hash_dispose(svc_hash_t *self)
{
    if (self == NULL)
        return;
    free(self->_pairs);
    memset(self, 0, sizeof(*self));
}

const redisReply *svc_hash_get(const svc_hash_t *self, const char *field, size_t len)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const redisReply *k = self->_pairs[2 * mid];
        int c = k->len != len ? (k->len < len ? -1 : 1) : (len > 0 ? memcmp(k->str, field, len) : 0);
        if (c == 0)
            return self->_pairs[2 * mid + 1];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int svc_redis_load(svc_redis_t *self)
{
    assert(self != NULL);
    if (self->lua == NULL || self->ctx == NULL)
        return -1;
    xws_buf_t text;
    xws_buf_init(&text);
    /* the library and its functions carry the version (prelude.lua, xws_register_function) */
    xws_buf_addf(&text, "#!lua name=%s%s\nlocal XWS_FN_SUFFIX = '%s'\n", self->libname, self->suffix, self->suffix);
    xws_buf_adds(&text, self->lua);
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", text.data};
    size_t lens[] = {8, 4, 7, text.len};
    /* on the current connection only (this runs inside a connect): no reconnect from here */
    const int argc = 4;
    const char *const *argvs[1] = {argv};
    const size_t *lenss[1] = {lens};
    redisReply *r = NULL;
    s_send(self, 1, &argc, argvs, lenss, &r);
    xws_buf_dispose(&text);
    int rc = r != NULL && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        svc_log(SVC_LOG_ERROR, "redis: loading function library %s failed: %s%s", self->libname, r->str,
                strstr(r->str, "NOAUTH") != NULL || strstr(r->str, "unauthenticated") != NULL
                    ? " (this Redis requires a password: set redis_password_file)"
                    : "");
    freeReplyObject(r);
    return rc;
}

redisReply *svc_redis_fcall(svc_redis_t *self, int readonly, const char *fn, int nkeys, const char *const *keys, int nargs,
                            const char *const *args, const size_t *arglens)
{
    assert(self != NULL && fn != NULL && nkeys >= 0 && nargs >= 0);
    int argc = 3 + nkeys + nargs;
    const char **argv = svc_calloc((size_t)argc, sizeof(*argv));
    size_t *lens = svc_calloc((size_t)argc, sizeof(*lens));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    char name[128];
    snprintf(name, sizeof(name), "%s%s", fn, self->suffix);
    argv[0] = readonly ? "FCALL_RO" : "FCALL";
    argv[1] = name;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i];
        lens[3 + nkeys + i] = arglens != NULL ? arglens[i] : strlen(args[i]);
    }
    for (int i = 0; i < 3 + nkeys; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = svc_redis_command(self, argc, argv, lens);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0 && self->ctx != NULL) {
        /* the server became a replica (a failover): nothing was written; find the new primary */
        freeReplyObject(r);
        r = NULL;
        s_drop(self, "the server is a replica now (failover)", 0);
    }
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strstr(r->str, "Function not found") != NULL) {
        freeReplyObject(r);
        r = NULL;
        svc_log(SVC_LOG_WARN, "redis: function %s not found, loading library %s again", fn, self->libname);
        if (svc_redis_load(self) == 0 || self->ctx != NULL)
            r = svc_redis_command(self, argc, argv, lens);
    }
    free(argv);
    free(lens);
    return r;
}

void svc_redis_set_library_version(svc_redis_t *self, const char *version)
{
    assert(self != NULL && version != NULL);
    size_t n = (size_t)snprintf(self->suffix, sizeof(self->suffix), "_v%s", version);
    for (size_t i = 2; i < n && i < sizeof(self->suffix); i++)
        if (!isalnum((unsigned char)self->suffix[i]))
            self->suffix[i] = '_'; /* function names: [A-Za-z0-9_] */
}

const char *svc_redis_fn_suffix(const svc_redis_t *self)
{
    return self->suffix;
}

const char *svc_redis_run_id(const svc_redis_t *self)
{
    return self->run_id;
}

void svc_redis_set_password(svc_redis_t *self, const char *password)
{
    assert(self != NULL);
    free(self->password);
    self->password = password != NULL && password[0] != '\0' ? svc_strdup(password) : NULL;
}

int svc_redis_password_file(svc_redis_t *self, const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    FILE *f = fopen(path, "r");
    char line[1024];
    if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
        svc_log(SVC_LOG_ERROR, "redis_password_file %s: %s", path, f == NULL ? strerror(errno) : "empty");
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    svc_redis_set_password(self, line);
    memset(line, 0, sizeof(line));
    return 0;
}

void svc_redis_set_wait(svc_redis_t *self, int replicas, int timeout_ms)
{
    assert(self != NULL);
    int tmo_ms = (int)(self->tmo.tv_sec * 1000 + self->tmo.tv_usec / 1000);
    self->wait_replicas = replicas > 0 ? replicas : 0;
    /* WAIT must end before the command timeout, which would drop the connection */
    self->wait_timeout_ms = timeout_ms > 0 && timeout_ms < tmo_ms - 100 ? timeout_ms : (tmo_ms > 200 ? tmo_ms - 100 : 100);
}

int svc_redis_wait(svc_redis_t *self, int *acked)
{
    assert(self != NULL);
    *acked = 0;
    if (self->wait_replicas == 0)
        return 0;
    char n[16], t[16];
    snprintf(n, sizeof(n), "%d", self->wait_replicas);
    snprintf(t, sizeof(t), "%d", self->wait_timeout_ms);
    const char *argv[] = {"WAIT", n, t};
    redisReply *r = svc_redis_command(self, 3, argv, NULL);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        *acked = (int)r->integer;
    freeReplyObject(r);
    return *acked >= self->wait_replicas ? 0 : -1;
}

int svc_redis_wait_wanted(const svc_redis_t *self)
{
    return self->wait_replicas;
}

/* ---- commands of coroutines ------------------------------------------------------------------ */

int svc_redis_io_wanted(const svc_redis_t *self, int *want_read, int *want_write)
{
    *want_read = *want_write = 0;
    if (self->ctx == NULL)
        return -1;
    *want_read = self->waiting.head != NULL;
    *want_write = self->obuf_off < self->obuf.len;
    return self->ctx->fd;
}

void svc_redis_flush(svc_redis_t *self)
{
    if (self->ctx == NULL)
        return;
    int fd = self->ctx->fd;
    while (self->obuf_off < self->obuf.len) {
        ssize_t n = send(fd, self->obuf.data + self->obuf_off, self->obuf.len - self->obuf_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            self->obuf_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            s_drop(self, n == 0 ? "connection closed" : strerror(errno), 0);
            return;
        }
    }
    if (self->obuf_off == self->obuf.len) {
        xws_buf_reset(&self->obuf);
        self->obuf_off = 0;
    }
}

/* reads the replies available without blocking and hands them to their waiters; 0, or -1 after a drop */
static int s_read(svc_redis_t *self)
{
    if (self->ctx == NULL)
        return -1;
    int fd = self->ctx->fd, heard = 0;
    while (self->waiting.head != NULL) {
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        heard |= n > 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            s_drop(self, n == 0 ? "connection closed by the server" : strerror(errno), 0);
            return -1;
        }
        if (redisReaderFeed(self->ctx->reader, buf, (size_t)n) != REDIS_OK) {
            s_drop(self, "protocol error", 0);
            return -1;
        }
        self->fed += (unsigned long long)n;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(self->ctx->reader, &reply) != REDIS_OK) {
                s_drop(self, "protocol error", 0);
                return -1;
            }
            if (reply == NULL)
                break;
            s_waiter_t *w = self->waiting.head;
            if (w == NULL) { /* a reply nobody asked for: the stream is out of step */
                freeReplyObject(reply);
                s_drop(self, "unexpected reply", 0);
                return -1;
            }
            w->out[w->got++] = reply;
            /* what the reader holds beyond this reply is the start of the next ones */
            unsigned long long now_consumed = self->fed - (self->ctx->reader->len - self->ctx->reader->pos);
            w->bytes += (size_t)(now_consumed - self->consumed);
            self->consumed = now_consumed;
            if (w->got == w->n) {
                s_wpop(&self->waiting);
                s_wpush(w->bytes > LARGE_REPLY_BYTES ? &self->late : &self->ready, w);
                self->nwaiting--;
            }
        }
        if ((size_t)n < sizeof(buf))
            break;
    }
    if (heard)
        self->heard_ms = svc_now_mono_ms();
    return 0;
}

void svc_redis_io(svc_redis_t *self)
{
    svc_redis_flush(self);
    if (s_read(self) == 0)
        svc_redis_expire(self, svc_now_mono_ms());
}

/*
 * When the oldest awaited reply is overdue: the timeout after its commands were sent, or after
 * Redis last sent bytes when that is later. Redis answers in order, so bytes that arrive while a
 * reply is awaited show that it is working through the pipeline: a worker that spent a while
 * rendering long answers (reading nothing meanwhile) finds the next replies waiting in the
 * socket, not a hung server.
 */
static long long s_overdue_at(const svc_redis_t *self)
{
    long long since = self->waiting.head->sent_ms > self->heard_ms ? self->waiting.head->sent_ms : self->heard_ms;
    return since + svc_redis_timeout_ms(self);
}

void svc_redis_expire(svc_redis_t *self, long long now_ms)
{
    if (self->ctx == NULL || self->waiting.head == NULL || now_ms < s_overdue_at(self))
        return;
    /* what arrived while the worker was busy elsewhere counts: read it before judging */
    if (s_read(self) != 0 || self->waiting.head == NULL || svc_now_mono_ms() < s_overdue_at(self))
        return;
    s_drop(self, "command timed out", 1);
}

int svc_redis_wait_ms(const svc_redis_t *self, long long now_ms)
{
    if (self->ctx == NULL || self->waiting.head == NULL)
        return -1;
    long long left = s_overdue_at(self) - now_ms;
    return left < 0 ? 0 : left > 600000 ? 600000 : (int)left;
}

struct svc_coro *svc_redis_next_ready(svc_redis_t *self, int *large)
{
    s_waiter_t *w = s_wpop(&self->ready);
    *large = w == NULL;
    if (w == NULL)
        w = s_wpop(&self->late);
    return w != NULL ? w->co : NULL;
}

size_t svc_redis_waiting(const svc_redis_t *self)
{
    return self->nwaiting;
}

long long svc_redis_timeout_ms(const svc_redis_t *self)
{
    return (long long)self->tmo.tv_sec * 1000 + self->tmo.tv_usec / 1000;
}

void svc_redis_test(void)
{
    /* svc_hash: an HGETALL reply as a map */
    redisReply f[6] = {{.type = REDIS_REPLY_STRING, .str = "10", .len = 2}, {.type = REDIS_REPLY_STRING, .str = "ten", .len = 3},
                       {.type = REDIS_REPLY_STRING, .str = "9", .len = 1},  {.type = REDIS_REPLY_STRING, .str = "nine", .len = 4},
                       {.type = REDIS_REPLY_STRING, .str = "", .len = 0},   {.type = REDIS_REPLY_STRING, .str = "empty", .len = 5}};
    redisReply *fe[6] = {&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]};
    redisReply h = {.type = REDIS_REPLY_ARRAY, .elements = 6, .element = fe};
    svc_hash_t hv;
    XWS_CHECK(svc_hash_init(&hv, &h) == 0 && hv.n == 3);
    XWS_CHECK(svc_hash_get(&hv, "9", 1) == &f[3] && svc_hash_get(&hv, "10", 2) == &f[1] && svc_hash_get(&hv, "", 0) == &f[5]);
    XWS_CHECK(svc_hash_get(&hv, "1", 1) == NULL && svc_hash_get(&hv, "100", 3) == NULL && svc_hash_get(&hv, "ten", 3) == NULL);
    svc_hash_dispose(&hv);
    h.elements = 5; /* odd */
    XWS_CHECK(svc_hash_init(&hv, &h) == -1 && hv.n == 0 && svc_hash_get(&hv, "9", 1) == NULL);
    f[2].type = REDIS_REPLY_INTEGER; /* not a string */
    h.elements = 6;
    XWS_CHECK(svc_hash_init(&hv, &h) == -1);
    XWS_CHECK(svc_hash_init(&hv, NULL) == -1);
    h.elements = 0;
    XWS_CHECK(svc_hash_init(&hv, &h) == 0 && hv.n == 0 && svc_hash_get(&hv, "", 0) == NULL);
    svc_hash_dispose(&hv);

    svc_redis_t *r = svc_redis_new("tcp://[::1]:6379", 100, "t", NULL);
    XWS_CHECK(r != NULL && r->host != NULL && strcmp(r->host, "::1") == 0 && r->port == 6379);
    svc_redis_destroy(&r);
    XWS_CHECK(r == NULL);
    svc_redis_destroy(&r);
    r = svc_redis_new("tcp://localhost:7", 100, "t", NULL);
    XWS_CHECK(r != NULL && strcmp(r->host, "localhost") == 0 && r->port == 7);
    svc_redis_destroy(&r);
    r = svc_redis_new("unix:/nonexistent/dir/redis.sock", 100, "t", NULL);
    XWS_CHECK(r != NULL && strcmp(r->path, "/nonexistent/dir/redis.sock") == 0);
    /* unavailable: NULL at once, and the back-off makes the next call skip the connect (a
     * connect attempt would move retry_at) */
    const char *argv[] = {"PING"};
    XWS_CHECK(svc_redis_command(r, 1, argv, NULL) == NULL);
    XWS_CHECK(r->retry_at > 0);
    long long later = svc_now_mono_ms() + 3600 * 1000;
    r->retry_at = later;
    XWS_CHECK(svc_redis_command(r, 1, argv, NULL) == NULL);
    XWS_CHECK(r->retry_at == later && r->ctx == NULL);
    svc_redis_destroy(&r);
    XWS_CHECK(svc_redis_new("redis://x", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("tcp://host", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("tcp://host:0", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("tcp://:80", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("unix:", 100, "t", NULL) == NULL);
    r = svc_redis_new("sentinel://127.0.0.1:1,[::1]:2/mymaster", 100, "t", NULL);
    XWS_CHECK(r != NULL && r->nsentinels == 2 && r->sentinels[1].port == 2 && strcmp(r->sentinels[1].host, "::1") == 0 &&
              strcmp(r->master, "mymaster") == 0);
    XWS_CHECK(svc_redis_connect(r) == -1); /* no Sentinel answers */
    svc_redis_destroy(&r);
    XWS_CHECK(svc_redis_new("sentinel://127.0.0.1:1", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("sentinel://127.0.0.1:1/", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("sentinel:///m", 100, "t", NULL) == NULL);
    XWS_CHECK(svc_redis_new("sentinel://127.0.0.1:1,x/m", 100, "t", NULL) == NULL);
    char longpath[160] = "unix:/";
    memset(longpath + 6, 'x', sizeof(longpath) - 7);
    XWS_CHECK(svc_redis_new(longpath, 100, "t", NULL) == NULL);
}
