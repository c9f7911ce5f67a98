/* gw_zap.c - the ZAP handler of the gateway's CURVE endpoints (see gw_zap.h). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "xws/curve.h"
#include "xws/log.h"
#include "gw_check.h"
#include "gw_zap.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MAX_DOMAINS 4
/* refusals remembered for the rate limit, and how long one peer stays quiet in the log */
#define SEEN_MAX 64
#define SEEN_QUIET_MS 60000

typedef struct {
    char *domain;
    char *dir;
    zsock_t *monitor; /* PAIR on the guarded socket's monitor */
} domain_t;

typedef struct {
    char tag[384]; /* domain, key, address, reason */
    int64_t last_ms;
    unsigned skipped; /* refusals not logged since last_ms */
} seen_t;

/* the handler thread's state */
typedef struct {
    zsock_t *pipe;
    zsock_t *zap; /* REP on ZAP_ENDPOINT */
    zpoller_t *poller;
    domain_t domains[MAX_DOMAINS];
    size_t ndomains;
    seen_t seen[SEEN_MAX];
} handler_t;

struct gw_zap {
    zactor_t *actor;
    char *guarded[MAX_DOMAINS]; /* domains guarded so far */
    size_t nguarded;
};

static const char *s_domain_dir(handler_t *h, const char *domain)
{
    for (size_t i = 0; i < h->ndomains; i++)
        if (strcmp(h->domains[i].domain, domain) == 0)
            return h->domains[i].dir;
    return NULL;
}

/*
 * Logs one refusal, or counts it when the same peer (domain, key, address) was logged less than
 * SEEN_QUIET_MS ago; the oldest remembered peer makes room for a new one.
 */
static void s_refused(handler_t *h, const char *domain, const char *key, const char *addr, const char *why)
{
    char tag[sizeof(h->seen[0].tag)];
    snprintf(tag, sizeof(tag), "%s %s %s %s", domain, key, addr, why);
    int64_t now = zclock_mono();
    seen_t *slot = NULL, *oldest = &h->seen[0];
    for (size_t i = 0; i < SEEN_MAX && slot == NULL; i++) {
        if (h->seen[i].last_ms != 0 && strcmp(h->seen[i].tag, tag) == 0)
            slot = &h->seen[i];
        else if (h->seen[i].last_ms < oldest->last_ms)
            oldest = &h->seen[i];
    }
    if (slot != NULL && now - slot->last_ms < SEEN_QUIET_MS) {
        slot->skipped++;
        return;
    }
    unsigned skipped = slot != NULL ? slot->skipped : 0;
    if (slot == NULL) {
        slot = oldest;
        snprintf(slot->tag, sizeof(slot->tag), "%s", tag);
    }
    slot->last_ms = now;
    slot->skipped = 0;
    char more[64] = "";
    if (skipped > 0)
        snprintf(more, sizeof(more), " (%u more attempt%s since the last report)", skipped, skipped == 1 ? "" : "s");
    xws_log(XWS_LOG_WARN, "CURVE: refused a peer on the %s endpoint: key %s, address %s: %s%s", domain, key, addr, why, more);
}

/*
 * Looks for the public key key (Z85) among the certificates of dir: files not starting with '.'
 * and not ending with "_secret". Returns 1 with the peer's name in name, 0 when no file holds
 * it, -1 when dir cannot be read.
 */
static int s_lookup(const char *dir, const char *key, char *name, size_t namelen)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || (n >= 7 && strcmp(e->d_name + n - 7, "_secret") == 0))
            continue;
        char path[4096];
        struct stat st;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        zcert_t *cert = xws_curve_load(path, 0, NULL, 0);
        if (cert != NULL && strcmp(zcert_public_txt(cert), key) == 0) {
            found = 1;
            const char *meta = zcert_meta(cert, "name");
            char stem[256];
            snprintf(stem, sizeof(stem), "%s", e->d_name);
            size_t sl = strlen(stem);
            if (sl > 4 && strcmp(stem + sl - 4, ".key") == 0)
                stem[sl - 4] = '\0';
            snprintf(name, namelen, "%s", xws_curve_name_ok(meta) ? meta : xws_curve_name_ok(stem) ? stem : key);
        }
        zcert_destroy(&cert);
    }
    closedir(d);
    return found;
}

/* Answers one ZAP request (RFC 27): 200 with the peer's name, or 400. */
static void s_on_zap(handler_t *h)
{
    zmsg_t *req = zmsg_recv(h->zap);
    if (req == NULL)
        return;
    char *version = zmsg_popstr(req);
    zframe_t *rid = zmsg_pop(req);
    char *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req);
    zframe_t *identity = zmsg_pop(req);
    char *mechanism = zmsg_popstr(req);
    zframe_t *cred = zmsg_pop(req);
    const char *status = "400", *text = "refused";
    char user[256] = "";
    if (version == NULL || strcmp(version, "1.0") != 0 || rid == NULL || domain == NULL || address == NULL || mechanism == NULL) {
        status = "500", text = "malformed ZAP request";
        xws_log(XWS_LOG_ERROR, "CURVE: malformed ZAP request from libzmq");
    } else {
        const char *dir = s_domain_dir(h, domain);
        if (dir == NULL && strcmp(mechanism, "NULL") == 0) {
            status = "200", text = "OK"; /* not a guarded socket: no CURVE asked for */
        } else if (dir == NULL) {
            s_refused(h, domain[0] != '\0' ? domain : "(no domain)", "(none)", address, "no allow-list for this socket");
        } else if (strcmp(mechanism, "CURVE") != 0 || cred == NULL || zframe_size(cred) != 32) {
            s_refused(h, domain, "(none)", address, "not a CURVE handshake");
        } else {
            char key[XWS_CURVE_KEY_TXT + 1];
            zmq_z85_encode(key, zframe_data(cred), 32);
            int rc = s_lookup(dir, key, user, sizeof(user));
            if (rc == 1) {
                status = "200", text = "OK";
                xws_log(XWS_LOG_INFO, "CURVE: accepted %s (key %s) from %s on the %s endpoint", user, key, address, domain);
            } else if (rc == 0) {
                s_refused(h, domain, key, address, "the key is not in the allow-list");
            } else {
                char why[160];
                snprintf(why, sizeof(why), "the allow-list %s cannot be read (%s)", dir, strerror(errno));
                s_refused(h, domain, key, address, why);
            }
        }
    }
    /* always a reply: the REP socket takes no other request before it */
    if (rid == NULL)
        rid = zframe_new_empty();
    zmsg_t *rep = zmsg_new();
    zmsg_addstr(rep, "1.0");
    zmsg_append(rep, &rid);
    zmsg_addstr(rep, status);
    zmsg_addstr(rep, text);
    zmsg_addstr(rep, strcmp(status, "200") == 0 ? user : "");
    zmsg_addmem(rep, NULL, 0);
    zmsg_send(&rep, h->zap);
    zstr_free(&version);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&mechanism);
    zframe_destroy(&rid);
    zframe_destroy(&identity);
    zframe_destroy(&cred);
    zmsg_destroy(&req);
}

/* Logs a handshake that failed before the ZAP check (monitor event of a guarded socket). */
static void s_on_monitor(handler_t *h, domain_t *d)
{
    zmsg_t *m = zmsg_recv(d->monitor);
    if (m == NULL)
        return;
    zframe_t *ev = zmsg_first(m);
    char *where = zmsg_size(m) >= 2 ? zframe_strdup(zmsg_next(m)) : NULL;
    if (ev != NULL && zframe_size(ev) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy(&event, zframe_data(ev), 2);
        memcpy(&value, zframe_data(ev) + 2, 4);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            char why[160];
            /* a peer without a key is seen either way, whichever side notices the mismatch first */
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                snprintf(why, sizeof(why), "it does not speak CURVE (no key set on its side)");
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
                snprintf(why, sizeof(why), "its handshake does not decrypt (a wrong gateway public key on its side?)");
            else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
                snprintf(why, sizeof(why), "it broke off the handshake (%s): no CURVE key set on its side?", strerror((int)value));
            else
                snprintf(why, sizeof(why), "failed handshake (ZMTP error 0x%x)", (unsigned)value);
            char addr[160];
            snprintf(addr, sizeof(addr), "unknown (a connection to %s)", where != NULL ? where : "?");
            s_refused(h, d->domain, "(none)", addr, why);
        }
    }
    zstr_free(&where);
    zmsg_destroy(&m);
}

/* GUARD domain dir monitor-endpoint: answers with a signal, 0 or -1 */
static int s_on_guard(handler_t *h, zmsg_t *cmd)
{
    char *domain = zmsg_popstr(cmd), *dir = zmsg_popstr(cmd), *mon = zmsg_popstr(cmd);
    int rc = -1;
    if (domain != NULL && dir != NULL && mon != NULL && h->ndomains < MAX_DOMAINS && s_domain_dir(h, domain) == NULL) {
        zsock_t *pair = zsock_new(ZMQ_PAIR);
        if (pair != NULL && zsock_connect(pair, "%s", mon) == 0) {
            domain_t *d = &h->domains[h->ndomains++];
            d->domain = domain, d->dir = dir, d->monitor = pair;
            domain = dir = NULL;
            zpoller_add(h->poller, pair);
            rc = 0;
        } else {
            zsock_destroy(&pair);
        }
    }
    zstr_free(&domain);
    zstr_free(&dir);
    zstr_free(&mon);
    return rc;
}

static void s_handler(zsock_t *pipe, void *args)
{
    (void)args;
    /* the process's signals are for its main thread (whose loop they must wake) */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    zsock_signal(pipe, 0); /* zactor_new's handshake; the outcome of the bind follows */
    handler_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        abort();
    h->pipe = pipe;
    h->zap = zsock_new(ZMQ_REP);
    if (h->zap == NULL || zsock_bind(h->zap, ZAP_ENDPOINT) != 0) {
        xws_log(XWS_LOG_ERROR, "CURVE: cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        zsock_destroy(&h->zap);
        free(h);
        zsock_signal(pipe, 1);
        return;
    }
    h->poller = zpoller_new(pipe, h->zap, NULL);
    zsock_signal(pipe, 0);
    /* the handler lasts as long as the gateway: a CURVE socket without it would accept any key */
    int done = 0;
    while (!done) {
        void *which = zpoller_wait(h->poller, -1);
        if (which == NULL) {
            if (zmq_errno() == ETERM)
                break;
            continue;
        }
        if (which == h->zap) {
            s_on_zap(h);
        } else if (which == pipe) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *verb = cmd != NULL ? zmsg_popstr(cmd) : NULL;
            if (verb == NULL || strcmp(verb, "$TERM") == 0)
                done = 1;
            else if (strcmp(verb, "GUARD") == 0)
                zsock_signal(pipe, s_on_guard(h, cmd) == 0 ? 0 : 1);
            zstr_free(&verb);
            zmsg_destroy(&cmd);
        } else {
            for (size_t i = 0; i < h->ndomains; i++)
                if (which == h->domains[i].monitor)
                    s_on_monitor(h, &h->domains[i]);
        }
    }
    zpoller_destroy(&h->poller);
    for (size_t i = 0; i < h->ndomains; i++) {
        zsock_destroy(&h->domains[i].monitor);
        free(h->domains[i].domain);
        free(h->domains[i].dir);
    }
    zsock_destroy(&h->zap);
    free(h);
}

gw_zap_t *gw_zap_new(void)
{
    if (!xws_curve_available()) {
        xws_log(XWS_LOG_ERROR, "CURVE: this libzmq has no CURVE support (built without libsodium)");
        return NULL;
    }
    gw_zap_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    /* after zactor_new's handshake, the handler signals 0 once bound, 1 when the bind failed */
    self->actor = zactor_new(s_handler, NULL);
    if (self->actor == NULL)
        abort();
    int status = zsock_wait(self->actor);
    if (status != 0) {
        zactor_destroy(&self->actor);
        free(self);
        return NULL;
    }
    return self;
}

void gw_zap_destroy(gw_zap_t **self_p)
{
    assert(self_p != NULL);
    gw_zap_t *self = *self_p;
    if (self == NULL)
        return;
    zactor_destroy(&self->actor);
    for (size_t i = 0; i < self->nguarded; i++)
        free(self->guarded[i]);
    free(self);
    *self_p = NULL;
}

int gw_zap_guard(gw_zap_t *self, zsock_t *sock, const char *domain, const char *secret_cert, const char *allow_dir,
                 const char *what_dir)
{
    assert(self != NULL && sock != NULL && domain != NULL && secret_cert != NULL && allow_dir != NULL);
    for (size_t i = 0; i < self->nguarded; i++)
        if (strcmp(self->guarded[i], domain) == 0) {
            xws_log(XWS_LOG_ERROR, "CURVE: the %s endpoint is guarded twice", domain);
            return -1;
        }
    if (self->nguarded == MAX_DOMAINS)
        return -1;
    struct stat st;
    DIR *d = opendir(allow_dir);
    if (d == NULL || stat(allow_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        xws_log(XWS_LOG_ERROR, "CURVE: %s %s is not a readable directory: %s", what_dir, allow_dir, strerror(errno));
        if (d != NULL)
            closedir(d);
        return -1;
    }
    closedir(d);
    char why[512];
    zcert_t *cert = xws_curve_load(secret_cert, 1, why, sizeof(why));
    if (cert == NULL) {
        xws_log(XWS_LOG_ERROR, "CURVE: curve_secret_key: %s", why);
        return -1;
    }
    char mon[96];
    snprintf(mon, sizeof(mon), "inproc://xws-zap-monitor-%s-%p", domain, (void *)self);
    if (zmq_socket_monitor(zsock_resolve(sock), mon, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) !=
        0) {
        xws_log(XWS_LOG_ERROR, "CURVE: cannot monitor the %s endpoint: %s", domain, zmq_strerror(zmq_errno()));
        zcert_destroy(&cert);
        return -1;
    }
    zstr_sendx(self->actor, "GUARD", domain, allow_dir, mon, NULL);
    if (zsock_wait(self->actor) != 0) {
        xws_log(XWS_LOG_ERROR, "CURVE: the handler refused the %s endpoint", domain);
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
        zcert_destroy(&cert);
        return -1;
    }
    zcert_apply(cert, sock);
    zcert_destroy(&cert);
    zsock_set_curve_server(sock, 1);
    zsock_set_zap_domain(sock, domain);
    self->guarded[self->nguarded] = strdup(domain);
    if (self->guarded[self->nguarded] == NULL)
        abort();
    self->nguarded++;
    return 0;
}

const char *gw_zap_user(zframe_t *frame)
{
    const char *user = frame != NULL ? zframe_meta(frame, "User-Id") : NULL;
    return user != NULL && user[0] != '\0' ? user : NULL;
}

/* ---- self-test ------------------------------------------------------------------------------ */

/* a DEALER with the secret certificate own of dir, the gateway's public certificate, connected to ep */
static zsock_t *s_test_dealer(const char *dir, const char *own, const char *ep)
{
    char own_path[256], gw_path[256], why[256];
    snprintf(own_path, sizeof(own_path), "%s/%s.key_secret", dir, own);
    snprintf(gw_path, sizeof(gw_path), "%s/gw.key", dir);
    zsock_t *s = zsock_new(ZMQ_DEALER);
    GW_CHECK(s != NULL && xws_curve_client(s, own_path, gw_path, why, sizeof(why)) == 0);
    zsock_set_linger(s, 0);
    GW_CHECK(zsock_connect(s, "%s", ep) == 0);
    return s;
}

/* sends "hello" from dealer; returns the ZAP user of the message the router gets (owned by the caller) */
static char *s_test_user(zsock_t *dealer, zsock_t *router)
{
    GW_CHECK(zstr_send(dealer, "hello") == 0);
    zmsg_t *m = zmsg_recv(router); /* rcvtimeo set: NULL on time-out */
    GW_CHECK(m != NULL && zmsg_size(m) == 2);
    zframe_t *body = zmsg_last(m);
    GW_CHECK(zframe_streq(body, "hello"));
    const char *user = gw_zap_user(body);
    char *copy = user != NULL ? strdup(user) : NULL;
    zmsg_destroy(&m);
    return copy;
}

static void s_test_copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    GW_CHECK(in != NULL && out != NULL);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        GW_CHECK(fwrite(buf, 1, n, out) == n);
    GW_CHECK(fclose(in) == 0 && fclose(out) == 0);
}

void gw_zap_test(void)
{
    if (!xws_curve_available()) {
        printf("# gw_zap: this libzmq has no CURVE, skipped\n");
        return;
    }
    char dir[] = "/tmp/gw-zap-XXXXXX", allow[64], path[256], path2[256], ep[128], why[256];
    GW_CHECK(mkdtemp(dir) != NULL);
    snprintf(allow, sizeof(allow), "%s/allow", dir);
    GW_CHECK(mkdir(allow, 0700) == 0);
    GW_CHECK(xws_curve_keygen(dir, "gw", 0, NULL, why, sizeof(why)) == 0);
    GW_CHECK(xws_curve_keygen(dir, "w1", 0, NULL, why, sizeof(why)) == 0);
    GW_CHECK(xws_curve_keygen(dir, "stranger", 0, NULL, why, sizeof(why)) == 0);
    snprintf(path, sizeof(path), "%s/w1.key", dir);
    snprintf(path2, sizeof(path2), "%s/w1.key", allow);
    s_test_copy(path, path2);

    gw_zap_t *zap = gw_zap_new();
    GW_CHECK(zap != NULL);
    GW_CHECK(gw_zap_new() == NULL); /* one handler per process */
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    GW_CHECK(router != NULL);
    zsock_set_rcvtimeo(router, 20000);
    snprintf(path, sizeof(path), "%s/gw.key", dir);
    GW_CHECK(gw_zap_guard(zap, router, GW_ZAP_WORKERS, path, allow, "curve_workers_dir") == -1); /* no secret key */
    snprintf(path, sizeof(path), "%s/gw.key_secret", dir);
    GW_CHECK(gw_zap_guard(zap, router, GW_ZAP_WORKERS, path, "/nonexistent/dir", "curve_workers_dir") == -1);
    GW_CHECK(gw_zap_guard(zap, router, GW_ZAP_WORKERS, path, allow, "curve_workers_dir") == 0);
    GW_CHECK(gw_zap_guard(zap, router, GW_ZAP_WORKERS, path, allow, "curve_workers_dir") == -1); /* twice */
    snprintf(ep, sizeof(ep), "ipc://%s/r.ipc", dir);
    GW_CHECK(zsock_bind(router, "%s", ep) == 0);

    /* an unknown key: the handshake fails with 400, the router gets nothing */
    char own_path[256];
    snprintf(own_path, sizeof(own_path), "%s/stranger.key_secret", dir);
    snprintf(path, sizeof(path), "%s/gw.key", dir);
    zsock_t *stranger = zsock_new(ZMQ_DEALER);
    GW_CHECK(stranger != NULL && xws_curve_client(stranger, own_path, path, why, sizeof(why)) == 0);
    zsock_set_linger(stranger, 0);
    GW_CHECK(zmq_socket_monitor(zsock_resolve(stranger), "inproc://gw-zap-test-mon", ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0);
    zsock_t *mon = zsock_new_pair(">inproc://gw-zap-test-mon");
    GW_CHECK(mon != NULL);
    zsock_set_rcvtimeo(mon, 20000);
    GW_CHECK(zsock_connect(stranger, "%s", ep) == 0);
    GW_CHECK(zstr_send(stranger, "intruder") == 0);
    zmsg_t *ev = zmsg_recv(mon);
    GW_CHECK(ev != NULL && zframe_size(zmsg_first(ev)) == 6);
    uint16_t event;
    uint32_t status;
    memcpy(&event, zframe_data(zmsg_first(ev)), 2);
    memcpy(&status, zframe_data(zmsg_first(ev)) + 2, 4);
    GW_CHECK(event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && status == 400);
    zmsg_destroy(&ev);

    /* an allowed key: served, its name is the message's user */
    zsock_t *w1 = s_test_dealer(dir, "w1", ep);
    char *user = s_test_user(w1, router);
    GW_CHECK(user != NULL && strcmp(user, "w1") == 0); /* and not "intruder" first: the stranger sent nothing through */
    free(user);

    /* rotation: a key file added to the allow-list counts from the next handshake, no restart */
    snprintf(path, sizeof(path), "%s/stranger.key", dir);
    snprintf(path2, sizeof(path2), "%s/newcomer.key", allow);
    s_test_copy(path, path2);
    zsock_t *newcomer = s_test_dealer(dir, "stranger", ep);
    user = s_test_user(newcomer, router);
    GW_CHECK(user != NULL && strcmp(user, "stranger") == 0); /* the name in the certificate */
    free(user);

    zsock_destroy(&newcomer);
    zsock_destroy(&w1);
    zsock_set_linger(mon, 0);
    zsock_destroy(&mon);
    zsock_destroy(&stranger);
    zsock_destroy(&router);
    gw_zap_destroy(&zap);
    GW_CHECK(zap == NULL);
    gw_zap_destroy(&zap); /* NULL-safe */
    const char *files[] = {"gw.key",       "gw.key_secret",      "w1.key", "w1.key_secret", "stranger.key", "stranger.key_secret",
                           "allow/w1.key", "allow/newcomer.key", "r.ipc"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    GW_CHECK(rmdir(allow) == 0 && rmdir(dir) == 0);
}
