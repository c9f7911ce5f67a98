/* gw_authn.c - who is calling: credentials, accounts, ACL, password checks (see gw_authn.h). */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "gw_acl.h"
#include "gw_authn.h"
#include "gw_basic.h"
#include "gw_refresh.h"
#include "gw_status.h"
#include "gw_verify.h"

/* ---- the account of a request --------------------------------------------------------------------------- */

static void s_fail(gw_req_t *r, int count)
{
    if (count) {
        gw_backoff_fail(r->app->backoff, r->addr, r->login, h2o_now(r->app->loop));
        gw_metrics_auth(r->app->metrics, GW_AUTH_FAILURE);
    }
    gw_req_send_empty(r, 401);
}

/* The caller is the account acct: ACL, then check or dispatch. */
static void s_authorized(gw_req_t *r, const gw_account_t *acct)
{
    r->account = h2o_strdup(&r->req->pool, acct->name, strlen(acct->name)).base;
    if (gw_status_owns(r->route)) { /* /status details, /metrics: any account */
        gw_status_authorized(r);
        return;
    }
    if (r->route->service == NULL) { /* check: any authenticated account may test its credentials */
        gw_req_send(r, 200, NULL, 0);
        return;
    }
    char path[128];
    gw_route_acl_path(r->route, path, sizeof(path));
    if (!gw_acl_allows(acct->acl, acct->nacl, path)) {
        gw_req_send_empty(r, 403);
        return;
    }
    gw_req_dispatch(r);
}

/* A password check named acct: the account must still be enabled, hold that login, and allow the host. */
static void s_authorized_creds(gw_req_t *r, const gw_account_t *acct)
{
    OPENSSL_cleanse(r->password, sizeof(r->password));
    if (acct == NULL || acct->disabled || acct->hostonly || strcmp(acct->login, r->login) != 0 ||
        !gw_account_host_ok(acct, r->addr)) {
        s_fail(r, 0);
        return;
    }
    s_authorized(r, acct);
}

/* ---- password checks and fresh snapshots ------------------------------------------------------ */

/* The snapshot r waited for came (ok) or could not be had: authorized when it holds the account
 * with the credential that was verified, 401 when it does not (deleted, or changed again meanwhile). */
static void s_on_refreshed(gw_refresh_wait_t *w, int ok)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, rwait, w);
    if (!ok) {
        gw_req_send_error(r, 503, "no_worker", "", "the accounts could not be refreshed");
        return;
    }
    const gw_account_t *acct = gw_accounts_find(r->app->accounts, r->vname.ptr, r->vname.len);
    if (acct != NULL && (r->vcred.ptr == NULL || xws_slice_eq(r->vcred, acct->cred)))
        s_authorized_creds(r, acct);
    else
        s_fail(r, 0);
}

/* Parks r (its password was verified for the account name/cred) until a later snapshot. */
static void s_refresh_wait(gw_req_t *r, const msgpack_object *name, const msgpack_object *cred)
{
    r->phase = PH_REFRESH;
    r->vname = (xws_slice_t){h2o_strdup(&r->req->pool, name->via.str.ptr, name->via.str.size).base, name->via.str.size};
    r->vcred = cred != NULL
                   ? (xws_slice_t){h2o_strdup(&r->req->pool, cred->via.str.ptr, cred->via.str.size).base, cred->via.str.size}
                   : XWS_SLICE_NULL;
    r->rwait.on_done = s_on_refreshed;
    gw_refresh_wait(r->app->refresh, &r->rwait);
}

/* r no longer holds a check slot of its source (its check answered, or r went away). */
static void s_release_slot(gw_req_t *r)
{
    if (r->slot) {
        r->slot = 0;
        gw_backoff_leave(r->app->backoff, r->addr, h2o_now(r->app->loop));
    }
}

/* The password check r waited for ended (gw_verify.h). */
static void s_on_verified(gw_verify_wait_t *w, const gw_verify_result_t *res)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, vwait, w);
    s_release_slot(r);
    switch (res->kind) {
    case GW_VERIFY_OK:
        s_authorized_creds(r, res->acct);
        break;
    case GW_VERIFY_REFUSED:
        s_fail(r, 1);
        break;
    case GW_VERIFY_LATER:
        s_refresh_wait(r, res->name, res->cred);
        break;
    default:
        gw_req_send_error(r, res->status, res->code, "", res->message);
        break;
    }
}

/* Checks r's password: joins the identical check in progress, or starts one (or queues it). */
static void s_verify_start(gw_req_t *r)
{
    char password[MAX_CRED]; /* r's copy is wiped before the check can answer */
    memcpy(password, r->password, sizeof(password));
    OPENSSL_cleanse(r->password, sizeof(r->password));
    r->phase = PH_VERIFY;
    gw_metrics_auth(r->app->metrics, GW_AUTH_PASSWORD_CHECK);
    r->vwait.on_done = s_on_verified;
    r->vwait.deadline_unix_ms = r->deadline_unix_ms;
    int rc = gw_verifier_check(r->app->verifier, &r->vwait, r->ckey, r->login, password, r->addr_text);
    OPENSSL_cleanse(password, sizeof(password));
    if (rc != 0) {
        r->phase = PH_START;
        s_release_slot(r);
        gw_req_send_error(r, 503, "no_worker", "", "too many password checks are waiting");
    }
}

/* 429 without any password check: the attempt comes too early (wait_ms left on a lock) or its
 * source has too many checks running; Retry-After in whole seconds, at least 1. */
static void s_throttled(gw_req_t *r, uint64_t wait_ms, const char *message)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)(wait_ms == 0 ? 1 : (wait_ms + 999) / 1000));
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&r->req->pool, secs, SIZE_MAX).base,
                   strlen(secs));
    gw_metrics_auth(r->app->metrics, GW_AUTH_THROTTLED);
    gw_req_send_error(r, 429, "too_many_attempts", "", message);
}

void gw_authn_start(gw_req_t *r)
{
    gw_app_t *app = r->app;
    if (!gw_accounts_ready(app->accounts)) {
        gw_refresh_now(app->refresh);
        gw_req_send_error(r, 503, "no_worker", "", "the accounts are not loaded yet");
        return;
    }
    ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    int rc = i < 0 ? 0
                   : gw_basic_parse(r->req->headers.entries[i].value.base, r->req->headers.entries[i].value.len, r->login,
                                    sizeof(r->login), r->password, sizeof(r->password));
    if (rc == 0) { /* no credentials: a host-only account of the client address */
        const gw_account_t *acct = gw_accounts_hostonly(app->accounts, r->addr);
        if (acct == NULL)
            s_fail(r, 0);
        else
            s_authorized(r, acct);
        return;
    }
    if (rc < 0 || r->login[0] == '\0') { /* unusable or empty credentials never fall back to host-only accounts */
        s_fail(r, 1);
        return;
    }
    /*
     * The host restriction comes before anything that depends on the password (cache, check):
     * an account that may not call from here is refused at once, whatever the password, so the
     * answer (and its time) says nothing about it. (A login the snapshot does not know yet goes
     * on to the check, where a new account is found; its hosts are checked once it is known.)
     */
    const uint64_t now = h2o_now(app->loop);
    const gw_account_t *named = gw_accounts_by_login(app->accounts, r->login);
    if (named != NULL && !gw_account_host_ok(named, r->addr)) {
        OPENSSL_cleanse(r->password, sizeof(r->password));
        s_fail(r, 1);
        return;
    }
    gw_accounts_cache_key(app->accounts, r->login, r->password, r->ckey);
    const gw_account_t *acct = gw_accounts_cache_get(app->accounts, r->ckey);
    if (acct != NULL) { /* verified before: never throttled */
        if (!acct->disabled && strcmp(acct->login, r->login) == 0) {
            s_authorized_creds(r, acct);
            return;
        }
        gw_accounts_cache_drop(app->accounts, r->ckey);
    }
    uint64_t wait_ms = gw_backoff_wait(app->backoff, r->addr, r->login, now);
    if (wait_ms > 0) {
        OPENSSL_cleanse(r->password, sizeof(r->password));
        s_throttled(r, wait_ms, "too many failed attempts: try again later");
        return;
    }
    /* joining an identical check in progress costs nothing: only a new check takes a slot */
    if (!gw_verifier_pending(app->verifier, r->ckey)) {
        if (gw_backoff_enter(app->backoff, r->addr, now) != 0) {
            OPENSSL_cleanse(r->password, sizeof(r->password));
            s_throttled(r, 0, "too many password checks from this address at once: try again later");
            return;
        }
        r->slot = 1;
    }
    s_verify_start(r);
}

void gw_authn_abort(gw_req_t *r)
{
    gw_verify_leave(&r->vwait);
    gw_refresh_unwait(&r->rwait);
    s_release_slot(r);
}
