/* gw_verify.c - password checks at the verify service, merged and bounded (see gw_verify.h). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <czmq.h>
#include "xws/log.h"
#include "gw_check.h"
#include "xws/frames.h"
#include "gw_refresh.h"
#include "gw_route.h"
#include "gw_testkit.h"
#include "gw_verify.h"

/* One password check, shared by the requests that present the same credentials while it runs. */
struct gw_verify {
    gw_verifier_t *owner;
    uint8_t key[32];        /* verification cache key of login/password */
    char *login, *password; /* the password is wiped and freed once the check is sent */
    uint64_t version;       /* snapshot version when the check was sent */
    char addr_text[48];     /* the client of the first request, for the envelope */
    int running;            /* 1 once sent (in owner->running), 0 while waiting */
    gw_job_t job;
    h2o_linklist_t link;    /* in owner->running or owner->waiting */
    h2o_linklist_t waiters; /* gw_verify_wait_t._link */
};

struct gw_verifier {
    gw_app_t *app;
    h2o_linklist_t running; /* gw_verify_t in flight */
    h2o_linklist_t waiting; /* gw_verify_t waiting for a free slot, FIFO */
    size_t nrunning, nwaiting;
};

gw_verifier_t *gw_verifier_new(gw_app_t *app)
{
    gw_verifier_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->app = app;
    h2o_linklist_init_anchor(&self->running);
    h2o_linklist_init_anchor(&self->waiting);
    return self;
}

static void s_free(gw_verify_t *v)
{
    gw_verifier_t *self = v->owner;
    assert(h2o_linklist_is_empty(&v->waiters));
    if (gw_job_busy(&v->job))
        gw_broker_cancel(self->app->broker, &v->job);
    if (h2o_linklist_is_linked(&v->link)) {
        h2o_linklist_unlink(&v->link);
        if (v->running)
            self->nrunning--;
        else
            self->nwaiting--;
    }
    if (v->password != NULL) {
        OPENSSL_cleanse(v->password, strlen(v->password));
        free(v->password);
    }
    free(v->login);
    OPENSSL_cleanse(v->key, sizeof(v->key));
    free(v);
}

void gw_verify_leave(gw_verify_wait_t *w)
{
    gw_verify_t *v = w->_verify;
    if (v == NULL)
        return;
    h2o_linklist_unlink(&w->_link);
    w->_verify = NULL;
    if (!v->running && h2o_linklist_is_empty(&v->waiters))
        s_free(v); /* not sent yet and nobody waits: forget it */
}

/* Takes the next waiter off v (NULL when none is left); the caller calls it back. */
static gw_verify_wait_t *s_next_waiter(gw_verify_t *v)
{
    if (h2o_linklist_is_empty(&v->waiters))
        return NULL;
    gw_verify_wait_t *w = H2O_STRUCT_FROM_MEMBER(gw_verify_wait_t, _link, v->waiters.next);
    h2o_linklist_unlink(&w->_link);
    w->_verify = NULL;
    return w;
}

/* Calls every waiter of v back with the same result. */
static void s_tell_all(gw_verify_t *v, const gw_verify_result_t *res)
{
    gw_verify_wait_t *w;
    while ((w = s_next_waiter(v)) != NULL)
        w->on_done(w, res);
}

static void s_error_all(gw_verify_t *v, int status, const char *code, const char *message)
{
    gw_verify_result_t res = {.kind = GW_VERIFY_ERROR, .status = status, .code = code, .message = message};
    s_tell_all(v, &res);
}

void gw_verifier_destroy(gw_verifier_t **self_p)
{
    assert(self_p != NULL);
    gw_verifier_t *self = *self_p;
    if (self == NULL)
        return;
    h2o_linklist_t *lists[] = {&self->running, &self->waiting};
    for (size_t i = 0; i < 2; i++)
        while (!h2o_linklist_is_empty(lists[i])) {
            gw_verify_t *v = H2O_STRUCT_FROM_MEMBER(gw_verify_t, link, lists[i]->next);
            while (s_next_waiter(v) != NULL) /* requests still open at exit: they no longer wait */
                ;
            s_free(v);
        }
    free(self);
    *self_p = NULL;
}

static void s_on_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len);

/* Sends v to the verify service (v is in owner->running). On failure its waiters are told and v is freed. */
static void s_send(gw_verify_t *v)
{
    gw_app_t *app = v->owner->app;
    msgpack_sbuffer body, env;
    msgpack_packer pk;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    size_t ll = strlen(v->login), pl = strlen(v->password);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "login", 5);
    msgpack_pack_str_with_body(&pk, v->login, ll);
    msgpack_pack_str_with_body(&pk, "password", 8);
    msgpack_pack_str_with_body(&pk, v->password, pl);
    OPENSSL_cleanse(v->password, pl);
    free(v->password);
    v->password = NULL;
    uint64_t deadline = 0; /* the latest deadline of the requests that wait for it */
    for (h2o_linklist_t *l = v->waiters.next; l != &v->waiters; l = l->next) {
        gw_verify_wait_t *w = H2O_STRUCT_FROM_MEMBER(gw_verify_wait_t, _link, l);
        if (w->deadline_unix_ms > deadline)
            deadline = w->deadline_unix_ms;
    }
    char rid[XWS_MAX_RID + 1];
    gw_app_rid(app, rid, sizeof(rid));
    xws_request_spec_t spec = {
        .rid = xws_slice(rid),
        .service = xws_slice(XWS_SERVICE_VERIFY),
        .resource = xws_slice(XWS_RESOURCE_ACCOUNT),
        .act = xws_slice(XWS_ACT_VERIFY),
        .body_msgpack = {body.data, body.size},
        .caller_mode = xws_slice("gateway"),
        .caller_account = xws_slice(""),
        .caller_addr = xws_slice(v->addr_text),
        .deadline_ms = deadline,
    };
    v->version = gw_accounts_version(app->accounts);
    int rc = xws_request_encode(&spec, &env);
    OPENSSL_cleanse(body.data, body.size);
    if (rc != 0) {
        s_error_all(v, 500, "internal_error", "the password check could not be encoded");
        s_free(v);
    } else {
        v->job.on_done = s_on_done;
        v->job.data = v;
        /* not bound to its requests' deadlines: once sent, the check completes and fills the cache */
        rc = gw_broker_submit(app->broker, &v->job, XWS_SERVICE_VERIFY, env.data, env.size);
        if (rc != GW_SUBMIT_OK) {
            char msg[160];
            gw_app_submit_error(rc, XWS_SERVICE_VERIFY, msg, sizeof(msg));
            s_error_all(v, 503, "no_worker", msg);
            s_free(v);
        }
    }
    OPENSSL_cleanse(env.data, env.size); /* the envelope copy lives in the broker until the reply */
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
}

/* Sends waiting checks while fewer than GW_VERIFY_MAX are in flight. */
static void s_pump(gw_verifier_t *self)
{
    while (self->nrunning < GW_VERIFY_MAX && !h2o_linklist_is_empty(&self->waiting)) {
        gw_verify_t *v = H2O_STRUCT_FROM_MEMBER(gw_verify_t, link, self->waiting.next);
        h2o_linklist_unlink(&v->link);
        self->nwaiting--;
        v->running = 1;
        h2o_linklist_insert(&self->running, &v->link);
        self->nrunning++;
        s_send(v);
    }
}

static void s_on_done(gw_job_t *job, gw_job_outcome_t outcome, const void *reply, size_t len)
{
    gw_verify_t *v = job->data;
    gw_verifier_t *self = v->owner;
    gw_app_t *app = self->app;
    xws_reply_t rep;
    const char *err = NULL;
    gw_verify_wait_t *w;
    if (outcome == GW_JOB_TIMEOUT) {
        s_error_all(v, 504, "timeout", "the account service did not answer in time");
    } else if (outcome != GW_JOB_REPLY || xws_reply_decode(&rep, reply, len, &err) != 0) {
        if (outcome == GW_JOB_REPLY)
            xws_reply_dispose(&rep);
        xws_log(XWS_LOG_ERROR, "malformed reply from the verify service");
        s_error_all(v, 500, "internal_error", "the account service sent a malformed reply");
    } else {
        unsigned status = rep.status;
        const msgpack_object *name = NULL, *cred = NULL;
        int stale = 0;
        if (status == 200 && rep.body != NULL && rep.body->type == MSGPACK_OBJECT_MAP)
            for (uint32_t i = 0; i < rep.body->via.map.size; i++) {
                const msgpack_object *k = &rep.body->via.map.ptr[i].key, *val = &rep.body->via.map.ptr[i].val;
                if (k->type != MSGPACK_OBJECT_STR || val->type != MSGPACK_OBJECT_STR)
                    continue;
                if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "name", 4) == 0)
                    name = val;
                else if (k->via.str.size == 4 && memcmp(k->via.str.ptr, "cred", 4) == 0)
                    cred = val;
            }
        if (status == 200 && name != NULL) {
            const gw_account_t *acct = gw_accounts_find(app->accounts, name->via.str.ptr, name->via.str.size);
            if (acct != NULL && cred != NULL && !xws_slice_eq((xws_slice_t){cred->via.str.ptr, cred->via.str.size}, acct->cred)) {
                /*
                 * The account changed after the snapshot (e.g. a new password): the passwords
                 * verified against the old state must not be accepted until the next refresh.
                 */
                gw_accounts_cache_forget(app->accounts, acct->name);
                gw_refresh_now(app->refresh);
                acct = gw_accounts_find(app->accounts, name->via.str.ptr, name->via.str.size);
                stale = 1;
            }
            /*
             * Remembered only when the snapshot did not change while the check ran: then the
             * account's cred is no newer than the state the password was checked against, and the
             * entry goes as soon as a later snapshot shows another cred.
             */
            if (acct != NULL && !stale) {
                if (gw_accounts_version(app->accounts) == v->version)
                    gw_accounts_cache_put(app->accounts, v->key, acct);
                gw_verify_result_t res = {.kind = GW_VERIFY_OK, .acct = acct};
                s_tell_all(v, &res);
            } else {
                /* a new account, or a new password, that the snapshot does not hold yet: the
                 * requests wait for a snapshot taken after this answer (no 401 for an account
                 * created a moment ago) */
                gw_verify_result_t res = {.kind = GW_VERIFY_LATER, .name = name, .cred = cred};
                s_tell_all(v, &res);
                gw_refresh_now(app->refresh);
            }
        } else if (status == 401 || status == 403 || status == 404) {
            gw_verify_result_t res = {.kind = GW_VERIFY_REFUSED};
            while ((w = s_next_waiter(v)) != NULL)
                w->on_done(w, &res);
        } else if (status == 504) {
            /* the check waited in the service's own queue past the request's budget */
            s_error_all(v, 504, "timeout", "the account service did not answer in time");
        } else if (status == 503) {
            s_error_all(v, 503, "store_unavailable",
                        "the data store (Redis) is unavailable, try again"); /* the config service's only 503 */
        } else {
            xws_log(XWS_LOG_WARN, "the verify service answered %u to a password check", status);
            s_error_all(v, 500, "internal_error", "the password could not be checked");
        }
        xws_reply_dispose(&rep);
    }
    s_free(v);
    s_pump(self);
}

static gw_verify_t *s_find(gw_verifier_t *self, const uint8_t key[32])
{
    h2o_linklist_t *lists[] = {&self->running, &self->waiting};
    for (size_t i = 0; i < 2; i++)
        for (h2o_linklist_t *l = lists[i]->next; l != lists[i]; l = l->next) {
            gw_verify_t *v = H2O_STRUCT_FROM_MEMBER(gw_verify_t, link, l);
            if (CRYPTO_memcmp(v->key, key, 32) == 0)
                return v;
        }
    return NULL;
}

int gw_verifier_pending(gw_verifier_t *self, const uint8_t key[32])
{
    return s_find(self, key) != NULL;
}

int gw_verifier_check(gw_verifier_t *self, gw_verify_wait_t *w, const uint8_t key[32], const char *login, const char *password,
                      const char *addr_text)
{
    assert(w->on_done != NULL && w->_verify == NULL);
    gw_verify_t *v = s_find(self, key);
    int fresh = v == NULL;
    if (fresh) {
        if (self->nrunning >= GW_VERIFY_MAX && self->nwaiting >= GW_VERIFY_WAITING_MAX)
            return -1;
        if ((v = calloc(1, sizeof(*v))) == NULL || (v->login = strdup(login)) == NULL || (v->password = strdup(password)) == NULL)
            abort();
        v->owner = self;
        memcpy(v->key, key, 32);
        snprintf(v->addr_text, sizeof(v->addr_text), "%s", addr_text);
        h2o_linklist_init_anchor(&v->waiters);
    }
    w->_verify = v;
    h2o_linklist_insert(&v->waiters, &w->_link);
    if (!fresh)
        return 0;
    if (self->nrunning < GW_VERIFY_MAX) {
        v->running = 1;
        h2o_linklist_insert(&self->running, &v->link);
        self->nrunning++;
        s_send(v);
    } else {
        h2o_linklist_insert(&self->waiting, &v->link); /* at the tail */
        self->nwaiting++;
    }
    return 0;
}

/* ---- self-test -------------------------------------------------------------------------------- */

#define TEST_EP "inproc://gw-verify-test"

typedef struct {
    gw_verify_wait_t w;
    int ndone;
    gw_verify_result_t res;
    char name[32];
} twait_t;

static void s_test_done(gw_verify_wait_t *w, const gw_verify_result_t *res)
{
    twait_t *t = H2O_STRUCT_FROM_MEMBER(twait_t, w, w);
    t->ndone++;
    t->res = *res;
    t->name[0] = '\0';
    if (res->kind == GW_VERIFY_LATER)
        snprintf(t->name, sizeof(t->name), "%.*s", (int)res->name->via.str.size, res->name->via.str.ptr);
    else if (res->kind == GW_VERIFY_OK)
        snprintf(t->name, sizeof(t->name), "%s", res->acct->name);
}

/* Receives one REQUEST at the fake config worker (up to 15000 loop turns of 2 ms: far beyond any stall; 50 when act is "?": a
 * short look): its key and act; 0 when none came. */
static int s_test_recv(gw_app_t *app, zsock_t *worker, uint64_t *key, char *act, size_t actsize)
{
    xws_frames_t f;
    xws_request_t req;
    if (!gw_test_recv_request(app, worker, act[0] == '?' ? 51 : 15000, key, &f, &req))
        return 0;
    /* password checks at the verify service, snapshots at the config service */
    GW_CHECK(xws_slice_eq(req.resource, XWS_RESOURCE_ACCOUNT));
    GW_CHECK(xws_slice_eq(req.service, xws_slice_eq(req.act, XWS_ACT_VERIFY) ? XWS_SERVICE_VERIFY : XWS_SERVICE_CONFIG));
    snprintf(act, actsize, "%.*s", (int)req.act.len, req.act.ptr);
    xws_request_dispose(&req);
    xws_frames_dispose(&f);
    return 1;
}

/* The fake config worker answers key with status and, when name is set, the body {"name", "cred"}. */
static void s_test_reply(zsock_t *worker, uint64_t key, unsigned status, const char *name, const char *cred)
{
    msgpack_sbuffer body, env;
    msgpack_packer pk;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    if (name != NULL) {
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "name", 4);
        msgpack_pack_str_with_body(&pk, name, strlen(name));
        msgpack_pack_str_with_body(&pk, "cred", 4);
        msgpack_pack_str_with_body(&pk, cred, strlen(cred));
    }
    GW_CHECK(xws_reply_encode(status, xws_slice(""), (xws_slice_t){body.data, body.size}, &env) == 0);
    GW_CHECK(xws_send_reply(worker, NULL, (xws_slice_t){(const char *)&key, 8}, (xws_slice_t){env.data, env.size}) == 0);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
}

static void s_test_snapshot(gw_accounts_t *accounts)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "version", 7);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str_with_body(&pk, "accounts", 8);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 7);
    const char *kv[] = {"name", "admin", "login", "admin", "cred", "c1"};
    for (size_t i = 0; i < 6; i++)
        msgpack_pack_str_with_body(&pk, kv[i], strlen(kv[i]));
    msgpack_pack_str_with_body(&pk, "hostonly", 8);
    msgpack_pack_false(&pk);
    msgpack_pack_str_with_body(&pk, "disabled", 8);
    msgpack_pack_false(&pk);
    msgpack_pack_str_with_body(&pk, "hosts", 5);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str_with_body(&pk, "acl", 3);
    msgpack_pack_array(&pk, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    GW_CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    const char *err = NULL;
    GW_CHECK(gw_accounts_load(accounts, &u.data, &err) == 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static int s_test_check(gw_app_t *app, twait_t *t, const char *login, const char *password)
{
    uint8_t key[32];
    memset(t, 0, sizeof(*t));
    t->w.on_done = s_test_done;
    t->w.deadline_unix_ms = gw_app_unix_ms() + 1000;
    gw_accounts_cache_key(app->accounts, login, password, key);
    return gw_verifier_check(app->verifier, &t->w, key, login, password, "192.0.2.1");
}

void gw_verify_test(void)
{
    gw_app_t app;
    memset(&app, 0, sizeof(app));
    app.loop = h2o_evloop_create();
    app.deadline_ms = 1000;
    app.accounts_refresh_ms = 3600000;
    snprintf(app.instance, sizeof(app.instance), "%s", "00000000000000aa");
    app.accounts = gw_accounts_new();
    s_test_snapshot(app.accounts);
    gw_broker_opts_t opts = {TEST_EP, 1000, 100, 5000, 100, 0, NULL, NULL, NULL};
    const char *known[] = {XWS_SERVICE_CONFIG, XWS_SERVICE_VERIFY, NULL};
    GW_CHECK((app.broker = gw_broker_new(app.loop, &opts, known)) != NULL);
    app.refresh = gw_refresh_new(&app);
    app.verifier = gw_verifier_new(&app);
    /* a fake worker of each: the password checks, and the config service (snapshots) */
    zsock_t *worker = zsock_new_dealer(">" TEST_EP), *cworker = zsock_new_dealer(">" TEST_EP);
    GW_CHECK(worker != NULL && xws_send_ready(worker, XWS_SERVICE_VERIFY, 16, "verify-test", NULL) == 0);
    GW_CHECK(cworker != NULL && xws_send_ready(cworker, XWS_SERVICE_CONFIG, 16, "config-test", NULL) == 0);
    for (int i = 0; i < 1000 &&
                    !(gw_broker_has_worker(app.broker, XWS_SERVICE_VERIFY) && gw_broker_has_worker(app.broker, XWS_SERVICE_CONFIG));
         i++)
        gw_test_pump(&app, 1);
    GW_CHECK(gw_broker_has_worker(app.broker, XWS_SERVICE_VERIFY) && gw_broker_has_worker(app.broker, XWS_SERVICE_CONFIG));
    twait_t t[9];
    uint64_t keys[9];
    char act[32];

    /* the same credentials twice: one check, both told; the right password is remembered */
    GW_CHECK(s_test_check(&app, &t[0], "admin", "secret") == 0 && s_test_check(&app, &t[1], "admin", "secret") == 0);
    GW_CHECK(t[0].ndone == 0 && t[1].ndone == 0 && gw_verifier_pending(app.verifier, t[0].w._verify->key));
    GW_CHECK(s_test_recv(&app, worker, &keys[0], act, sizeof(act)) && strcmp(act, XWS_ACT_VERIFY) == 0);
    snprintf(act, sizeof(act), "?");
    GW_CHECK(!s_test_recv(&app, worker, &keys[1], act, sizeof(act))); /* merged: no second check */
    s_test_reply(worker, keys[0], 200, "admin", "c1");
    for (int i = 0; i < 500 && t[1].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[0].ndone == 1 && t[0].res.kind == GW_VERIFY_OK && strcmp(t[0].name, "admin") == 0);
    GW_CHECK(t[1].ndone == 1 && t[1].res.kind == GW_VERIFY_OK);
    uint8_t key[32];
    gw_accounts_cache_key(app.accounts, "admin", "secret", key);
    GW_CHECK(gw_accounts_cache_get(app.accounts, key) != NULL);

    /* at most GW_VERIFY_MAX in flight: six logins, four sent; the sixth leaves before it is sent and never goes */
    char login[16];
    for (int i = 0; i < 6; i++) {
        snprintf(login, sizeof(login), "user%d", i);
        GW_CHECK(s_test_check(&app, &t[i], login, "pw") == 0);
    }
    for (int i = 0; i < GW_VERIFY_MAX; i++)
        GW_CHECK(s_test_recv(&app, worker, &keys[i], act, sizeof(act)) && strcmp(act, XWS_ACT_VERIFY) == 0);
    snprintf(act, sizeof(act), "?");
    GW_CHECK(!s_test_recv(&app, worker, &keys[4], act, sizeof(act)));
    gw_verify_leave(&t[5].w);
    gw_verify_leave(&t[5].w); /* idempotent */
    /* a refusal frees a slot: the fifth is sent */
    s_test_reply(worker, keys[0], 401, NULL, NULL);
    GW_CHECK(s_test_recv(&app, worker, &keys[4], act, sizeof(act)) && strcmp(act, XWS_ACT_VERIFY) == 0);
    GW_CHECK(t[0].ndone == 1 && t[0].res.kind == GW_VERIFY_REFUSED);
    /* the other answers: unavailable, an account the snapshot does not hold yet (a snapshot is asked for), an odd status */
    s_test_reply(worker, keys[1], 503, NULL, NULL);
    s_test_reply(worker, keys[2], 200, "newbie", "n1");
    GW_CHECK(s_test_recv(&app, cworker, &keys[6], act, sizeof(act)) && strcmp(act, XWS_ACT_SNAPSHOT) == 0);
    s_test_reply(worker, keys[3], 418, NULL, NULL);
    s_test_reply(worker, keys[4], 200, "admin", "c1");
    s_test_reply(cworker, keys[6], 304, NULL, NULL);
    for (int i = 0; i < 500 && t[4].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[1].ndone == 1 && t[1].res.kind == GW_VERIFY_ERROR && t[1].res.status == 503);
    GW_CHECK(t[2].ndone == 1 && t[2].res.kind == GW_VERIFY_LATER && strcmp(t[2].name, "newbie") == 0);
    GW_CHECK(t[3].ndone == 1 && t[3].res.kind == GW_VERIFY_ERROR && t[3].res.status == 500);
    GW_CHECK(t[4].ndone == 1 && t[4].res.kind == GW_VERIFY_OK);
    GW_CHECK(t[5].ndone == 0);
    snprintf(act, sizeof(act), "?");
    GW_CHECK(!s_test_recv(&app, worker, &keys[7], act, sizeof(act)));

    /* the service's own deadline passed while the check waited in its queue: 504, not 500 */
    GW_CHECK(s_test_check(&app, &t[8], "queued", "pw") == 0);
    GW_CHECK(s_test_recv(&app, worker, &keys[8], act, sizeof(act)) && strcmp(act, XWS_ACT_VERIFY) == 0);
    s_test_reply(worker, keys[8], 504, NULL, NULL);
    for (int i = 0; i < 500 && t[8].ndone == 0; i++)
        gw_test_pump(&app, 1);
    GW_CHECK(t[8].ndone == 1 && t[8].res.kind == GW_VERIFY_ERROR && t[8].res.status == 504);

    /* a check in flight at the end is forgotten without a callback */
    GW_CHECK(s_test_check(&app, &t[7], "late", "pw") == 0);
    GW_CHECK(s_test_recv(&app, worker, &keys[7], act, sizeof(act)));
    gw_verifier_destroy(&app.verifier);
    gw_verifier_destroy(&app.verifier); /* NULL-safe */
    GW_CHECK(app.verifier == NULL && t[7].ndone == 0);
    gw_refresh_destroy(&app.refresh);
    gw_broker_destroy(&app.broker);
    gw_accounts_destroy(&app.accounts);
    zsock_destroy(&worker);
    zsock_destroy(&cworker);
    h2o_evloop_destroy(app.loop);
}
