/*
 * account.c - web-service accounts: the stored record, its validation, password hashing, and the
 * account resource the gateway uses (PROTOCOL.md §8: snapshot, verify; caller mode "gateway"
 * only).
 *
 * Redis: <p>account:data (hash name → msgpack record), <p>account:login (hash login → name,
 * the unique index of logins), <p>ver:account (bumped by every change). Writes are the
 * config_account_* functions of lua/config.lua, called by the command-line tool.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include "config_int.h"

/* ---- record -------------------------------------------------------------------------------------- */

void cfg_list_add(char ***list, size_t *n, const char *s)
{
    *list = svc_realloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = svc_strdup(s);
}

static void s_list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void cfg_account_dispose(cfg_account_t *a)
{
    free(a->name);
    free(a->login);
    free(a->password);
    s_list_free(a->hosts, a->nhosts);
    s_list_free(a->acl, a->nacl);
    free(a->description);
    memset(a, 0, sizeof(*a));
}

static char *s_str(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return NULL;
    return svc_strndup(o->via.str.ptr, o->via.str.size);
}

static int s_strlist(const msgpack_object *o, char ***list, size_t *n)
{
    if (o == NULL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        char *s = s_str(&o->via.array.ptr[i]);
        if (s == NULL)
            return -1;
        cfg_list_add(list, n, s);
        free(s);
    }
    return 0;
}

int cfg_account_decode(cfg_account_t *a, const char *data, size_t len)
{
    memset(a, 0, sizeof(*a));
    msgpack_unpacked u;
    int rc = -1;
    if (svc_mp_unpack(&u, data, len) != 0 || u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    const msgpack_object *dis = svc_mp_get(&u.data, "disabled");
    a->name = s_str(svc_mp_get(&u.data, "name"));
    a->login = s_str(svc_mp_get(&u.data, "login"));
    a->password = s_str(svc_mp_get(&u.data, "password"));
    a->description = s_str(svc_mp_get(&u.data, "description"));
    if (a->name == NULL || a->login == NULL || a->password == NULL || (dis != NULL && dis->type != MSGPACK_OBJECT_BOOLEAN) ||
        s_strlist(svc_mp_get(&u.data, "hosts"), &a->hosts, &a->nhosts) != 0 ||
        s_strlist(svc_mp_get(&u.data, "acl"), &a->acl, &a->nacl) != 0)
        goto out;
    if (a->description == NULL)
        a->description = svc_strdup("");
    a->disabled = dis != NULL && dis->via.boolean;
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        cfg_account_dispose(a);
    return rc;
}

static void s_pack_list(msgpack_packer *pk, char **list, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        svc_mp_cstr(pk, list[i]);
}

void cfg_account_encode(const cfg_account_t *a, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 7);
    svc_mp_key(pk, "name");
    svc_mp_cstr(pk, a->name);
    svc_mp_key(pk, "login");
    svc_mp_cstr(pk, a->login);
    svc_mp_key(pk, "password");
    svc_mp_cstr(pk, a->password);
    svc_mp_key(pk, "hosts");
    s_pack_list(pk, a->hosts, a->nhosts);
    svc_mp_key(pk, "acl");
    s_pack_list(pk, a->acl, a->nacl);
    svc_mp_key(pk, "disabled");
    a->disabled ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    svc_mp_key(pk, "description");
    svc_mp_cstr(pk, a->description);
}

/* packs a map of the 6 public fields of a plus room for nextra more pairs, which the caller packs */
static void s_render_public(const cfg_account_t *a, msgpack_packer *pk, uint32_t nextra)
{
    msgpack_pack_map(pk, 6 + nextra);
    svc_mp_key(pk, "name");
    svc_mp_cstr(pk, a->name);
    svc_mp_key(pk, "login");
    svc_mp_cstr(pk, a->login);
    svc_mp_key(pk, "hostonly");
    a->login[0] == '\0' ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    svc_mp_key(pk, "disabled");
    a->disabled ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    svc_mp_key(pk, "hosts");
    s_pack_list(pk, a->hosts, a->nhosts);
    svc_mp_key(pk, "acl");
    s_pack_list(pk, a->acl, a->nacl);
}

void cfg_account_render(const cfg_account_t *a, msgpack_packer *pk, int with_description)
{
    s_render_public(a, pk, with_description ? 1 : 0);
    if (with_description) {
        svc_mp_key(pk, "description");
        svc_mp_cstr(pk, a->description);
    }
}

/* ---- validation ------------------------------------------------------------------------------------ */

int cfg_check_account_name(const char *s, const char **why)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64) {
        *why = "an account name has 1 to 64 characters";
        return -1;
    }
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n) {
        *why = "an account name may only hold letters, digits, '_', '.' and '-'";
        return -1;
    }
    return 0;
}

int cfg_check_login(const char *s, const char **why)
{
    size_t n = strlen(s);
    long cps = svc_utf8_len(s, n);
    if (cps < 1 || cps > 64) {
        *why = "a login has 1 to 64 characters (UTF-8)";
        return -1;
    }
    if (!svc_printable(s, n, 0) || strchr(s, ':') != NULL) {
        *why = "a login must be printable and may not contain ':'";
        return -1;
    }
    return 0;
}

int cfg_check_password(const char *s, const char **why)
{
    size_t n = strlen(s);
    if (n < 1 || n > 1024) {
        *why = "a password has 1 to 1024 bytes";
        return -1;
    }
    if (svc_utf8_len(s, n) < 0) {
        *why = "a password must be valid UTF-8";
        return -1;
    }
    return 0;
}

int cfg_check_acl(const char *s, const char **why)
{
    if (strcmp(s, "*") == 0)
        return 0;
    size_t n = strlen(s);
    *why = "an ACL entry is '*' or a path like service/ipbx/pbx_settings/users (segments of letters, digits, '_', '-', '.')";
    if (n < 1 || n > 255 || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//") != NULL)
        return -1;
    if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/") != n)
        return -1;
    for (const char *seg = s; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        if (seg[0] == '.' && (seg[1] == '/' || seg[1] == '\0' || (seg[1] == '.' && (seg[2] == '/' || seg[2] == '\0'))))
            return -1;
    return 0;
}

int cfg_normalise_host(const char *s, char *out, size_t outlen, const char **why)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    *why = "expected an IPv4 or IPv6 address, or a network such as 10.0.0.0/8 or fd00::/8";
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    unsigned char bin[16];
    int family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(family, addr, bin) != 1)
        return -1;
    char canon[INET6_ADDRSTRLEN];
    if (inet_ntop(family, bin, canon, sizeof(canon)) == NULL)
        return -1;
    if (slash == NULL) {
        snprintf(out, outlen, "%s", canon);
        return 0;
    }
    const char *p = slash + 1;
    int max = family == AF_INET ? 32 : 128;
    if (*p == '\0' || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p) || (p[0] == '0' && p[1] != '\0') || atoi(p) > max)
        return -1;
    snprintf(out, outlen, "%s/%d", canon, atoi(p));
    return 0;
}

/* ---- passwords ------------------------------------------------------------------------------------- */

void cfg_password_hash(const char *password, size_t len, char *out, size_t outlen)
{
    unsigned char salt[CFG_SALT_BYTES], hash[CFG_HASH_BYTES];
    char salthex[2 * CFG_SALT_BYTES + 1], hashhex[2 * CFG_HASH_BYTES + 1];
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        PKCS5_PBKDF2_HMAC(password, (int)len, salt, sizeof(salt), CFG_PBKDF2_ITERATIONS, EVP_sha256(), sizeof(hash), hash) != 1)
        abort();
    svc_hex(salt, sizeof(salt), salthex);
    svc_hex(hash, sizeof(hash), hashhex);
    snprintf(out, outlen, "pbkdf2-sha256$%d$%s$%s", CFG_PBKDF2_ITERATIONS, salthex, hashhex);
    OPENSSL_cleanse(hash, sizeof(hash));
}

static int s_unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

int cfg_password_verify(const char *password, size_t len, const char *stored)
{
    /* a malformed or empty stored hash still costs one derivation: no timing difference */
    static const unsigned char dummy_salt[CFG_SALT_BYTES] = {0};
    const unsigned char *salt = dummy_salt;
    unsigned char want[CFG_HASH_BYTES], got[CFG_HASH_BYTES], s[CFG_SALT_BYTES];
    int iter = CFG_PBKDF2_ITERATIONS, valid = 0;
    memset(want, 0, sizeof(want));
    const char *p = stored != NULL && strncmp(stored, "pbkdf2-sha256$", 14) == 0 ? stored + 14 : NULL;
    if (p != NULL) {
        char *end;
        long it = strtol(p, &end, 10);
        if (end != p && *end == '$' && it >= 1000 && it <= 10000000 &&
            strlen(end + 1) == 2 * CFG_SALT_BYTES + 1 + 2 * CFG_HASH_BYTES && end[1 + 2 * CFG_SALT_BYTES] == '$' &&
            s_unhex(end + 1, CFG_SALT_BYTES, s) == 0 && s_unhex(end + 2 + 2 * CFG_SALT_BYTES, CFG_HASH_BYTES, want) == 0) {
            iter = (int)it;
            salt = s;
            valid = 1;
        }
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, CFG_SALT_BYTES, iter, EVP_sha256(), sizeof(got), got) != 1)
        abort();
    int same = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return valid && same;
}

/* ---- loading ---------------------------------------------------------------------------------------- */

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp(((const cfg_account_t *)a)->name, ((const cfg_account_t *)b)->name);
}

void cfg_accounts_free(cfg_account_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cfg_account_dispose(&list[i]);
    free(list);
}

int cfg_accounts_load(svc_ctx_t *ctx, cfg_account_t **list, size_t *n, long long *version)
{
    const char *keys[] = {svc_key(ctx, "account:data"), svc_key(ctx, "ver:account")};
    redisReply *r = svc_redis_fcall(ctx->redis, 1, "config_account_all", 2, keys, 0, NULL, NULL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        svc_reply_redis_failure(ctx, r, "reading accounts");
        freeReplyObject(r);
        return -1;
    }
    *version = r->element[0]->integer;
    *n = 0;
    *list = svc_calloc(r->elements, sizeof(**list));
    for (size_t i = 1; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING ||
            cfg_account_decode(&(*list)[*n], r->element[i]->str, r->element[i]->len) != 0) {
            svc_log(SVC_LOG_ERROR, "a stored account record is corrupt: skipped");
            continue;
        }
        (*n)++;
    }
    freeReplyObject(r);
    qsort(*list, *n, sizeof(**list), s_cmp_name);
    return 0;
}

/* ---- the resource ------------------------------------------------------------------------------------ */

static int s_gateway_or_reply(svc_ctx_t *ctx)
{
    if (!svc_caller_is(ctx, "gateway"))
        return svc_reply_error(ctx, 403, "forbidden", "", "accounts are only served to the gateway itself");
    return 0;
}

/*
 * The credential fingerprint of an account (PROTOCOL.md §8, `cred` of a snapshot): 32 hex digits,
 * the first 16 bytes of SHA-256(login \0 stored password hash \0 "0"/"1" for disabled). It changes
 * whenever the login, the password (the hash is salted afresh at every change), the disabled flag or
 * the host-only status (an empty login) changes; the gateway keeps its verified credentials of an
 * account only while it stays the same.
 */
static void s_cred(const cfg_account_t *a, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(c, a->login, strlen(a->login) + 1) != 1 ||
        EVP_DigestUpdate(c, a->password, strlen(a->password) + 1) != 1 || EVP_DigestUpdate(c, a->disabled ? "1" : "0", 1) != 1 ||
        EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen < 16)
        abort();
    EVP_MD_CTX_free(c);
    svc_hex(md, 16, out);
}

/* An account as the snapshot gives it: the public fields of cfg_account_render and its `cred`. */
static void s_snapshot_account(const cfg_account_t *a, msgpack_packer *pk)
{
    char cred[33];
    s_cred(a, cred);
    s_render_public(a, pk, 1);
    svc_mp_key(pk, "cred");
    svc_mp_cstr(pk, cred);
}

static int s_snapshot(svc_ctx_t *ctx)
{
    if (s_gateway_or_reply(ctx) != 0)
        return -1;
    const char *since = svc_param(ctx, "since");
    if (since != NULL && *since != '\0') {
        const char *argv[] = {"GET", svc_key(ctx, "ver:account")};
        redisReply *r = svc_redis_command(ctx->redis, 2, argv, NULL);
        if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            svc_reply_redis_failure(ctx, r, "reading the account version");
            freeReplyObject(r);
            return -1;
        }
        int same = r->type == REDIS_REPLY_NIL ? strcmp(since, "0") == 0 : strcmp(since, r->str) == 0;
        freeReplyObject(r);
        if (same)
            return svc_reply_empty(ctx, 304);
    }
    cfg_account_t *list;
    size_t n;
    long long version;
    if (cfg_accounts_load(ctx, &list, &n, &version) != 0)
        return -1;
    msgpack_packer *pk = svc_reply_begin(ctx, 200);
    msgpack_pack_map(pk, 2);
    svc_mp_key(pk, "version");
    msgpack_pack_int64(pk, version);
    svc_mp_key(pk, "accounts");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        s_snapshot_account(&list[i], pk);
    cfg_accounts_free(list, n);
    return 0;
}

static int s_verify(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (s_gateway_or_reply(ctx) != 0 || svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    const msgpack_object *lo = svc_mp_get(body, "login"), *pw = svc_mp_get(body, "password");
    if (lo == NULL || lo->type != MSGPACK_OBJECT_STR)
        return svc_reply_error(ctx, 400, lo == NULL ? "missing_field" : "invalid_value", "login", "login: a string is required");
    if (pw == NULL || pw->type != MSGPACK_OBJECT_STR)
        return svc_reply_error(ctx, 400, pw == NULL ? "missing_field" : "invalid_value", "password",
                               "password: a string is required");
    cfg_account_t acc;
    int found = 0;
    if (lo->via.str.size > 0) {
        const char *keys[] = {svc_key(ctx, "account:login"), svc_key(ctx, "account:data")};
        const char *args[] = {lo->via.str.ptr};
        size_t lens[] = {lo->via.str.size};
        redisReply *r = svc_redis_fcall(ctx->redis, 1, "config_account_by_login", 2, keys, 1, args, lens);
        if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            svc_reply_redis_failure(ctx, r, "reading an account");
            freeReplyObject(r);
            return -1;
        }
        found = r->type == REDIS_REPLY_STRING && cfg_account_decode(&acc, r->str, r->len) == 0;
        freeReplyObject(r);
    }
    /* the derivation runs whatever was found, so the answer time says nothing about the login */
    int ok = cfg_password_verify(pw->via.str.ptr, pw->via.str.size, found ? acc.password : NULL);
    ok = ok && found && !acc.disabled && acc.login[0] != '\0' && xws_slice_eq(svc_mp_slice(lo), acc.login);
    if (!ok) {
        if (found)
            cfg_account_dispose(&acc);
        return svc_reply_error(ctx, 401, "bad_credentials", "", "wrong login or password");
    }
    char cred[33];
    s_cred(&acc, cred);
    msgpack_packer *pk = svc_reply_begin(ctx, 200);
    msgpack_pack_map(pk, 2);
    svc_mp_key(pk, "name");
    svc_mp_cstr(pk, acc.name);
    svc_mp_key(pk, "cred"); /* lets the gateway see that its snapshot is older than the account */
    svc_mp_cstr(pk, cred);
    cfg_account_dispose(&acc);
    return 0;
}

/* The data service serves the snapshot; the password checks (a slow derivation each) are served
 * by the pool of the "verify" service, on threads of their own (main.c). */
static const svc_act_t s_acts[] = {{XWS_ACT_SNAPSHOT, s_snapshot}, {NULL, NULL}};
static const svc_act_t s_verify_acts[] = {{XWS_ACT_VERIFY, s_verify}, {NULL, NULL}};

const svc_resource_t cfg_account_resource = {XWS_RESOURCE_ACCOUNT, XWS_ACT_SNAPSHOT, s_acts};
const svc_resource_t cfg_verify_resource = {XWS_RESOURCE_ACCOUNT, XWS_ACT_VERIFY, s_verify_acts};

/* ---- self-test ------------------------------------------------------------------------------------- */

void cfg_account_test(void)
{
    char h[160], out[64];
    const char *why;
    cfg_password_hash("s3cret", 6, h, sizeof(h));
    XWS_CHECK(strncmp(h, "pbkdf2-sha256$100000$", 21) == 0 && strlen(h) == 21 + 32 + 1 + 64);
    XWS_CHECK(cfg_password_verify("s3cret", 6, h) == 1);
    XWS_CHECK(cfg_password_verify("s3cre", 5, h) == 0);
    XWS_CHECK(cfg_password_verify("s3cret", 6, "") == 0);
    XWS_CHECK(cfg_password_verify("s3cret", 6, NULL) == 0);
    XWS_CHECK(cfg_password_verify("s3cret", 6, "pbkdf2-sha256$100000$zz$zz") == 0);
    char h2[160];
    cfg_password_hash("s3cret", 6, h2, sizeof(h2));
    XWS_CHECK(strcmp(h, h2) != 0); /* salted */

    XWS_CHECK(cfg_normalise_host("10.1.2.3", out, sizeof(out), &why) == 0 && strcmp(out, "10.1.2.3") == 0);
    XWS_CHECK(cfg_normalise_host("10.0.0.0/8", out, sizeof(out), &why) == 0 && strcmp(out, "10.0.0.0/8") == 0);
    XWS_CHECK(cfg_normalise_host("::1", out, sizeof(out), &why) == 0 && strcmp(out, "::1") == 0);
    XWS_CHECK(cfg_normalise_host("FD00:0::/8", out, sizeof(out), &why) == 0 && strcmp(out, "fd00::/8") == 0);
    XWS_CHECK(cfg_normalise_host("10.0.0.0/33", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("10.0.0.0/", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("10.0.0.0/08", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("10.0.0", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("example.com", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("::1/129", out, sizeof(out), &why) == -1);
    XWS_CHECK(cfg_normalise_host("", out, sizeof(out), &why) == -1);

    XWS_CHECK(cfg_check_acl("*", &why) == 0);
    XWS_CHECK(cfg_check_acl("service/ipbx/pbx_settings/users", &why) == 0);
    XWS_CHECK(cfg_check_acl("callcenter", &why) == 0);
    XWS_CHECK(cfg_check_acl("service/", &why) == -1);
    XWS_CHECK(cfg_check_acl("/service", &why) == -1);
    XWS_CHECK(cfg_check_acl("a//b", &why) == -1);
    XWS_CHECK(cfg_check_acl("a/../b", &why) == -1);
    XWS_CHECK(cfg_check_acl("a b", &why) == -1);
    XWS_CHECK(cfg_check_acl("", &why) == -1);
    XWS_CHECK(cfg_check_account_name("admin_1.x-y", &why) == 0);
    XWS_CHECK(cfg_check_account_name("a b", &why) == -1);
    XWS_CHECK(cfg_check_account_name("", &why) == -1);
    XWS_CHECK(cfg_check_login("jo@example", &why) == 0);
    XWS_CHECK(cfg_check_login("a:b", &why) == -1);
    XWS_CHECK(cfg_check_login("a\tb", &why) == -1);
    XWS_CHECK(cfg_check_login("", &why) == -1);

    /* record round trip */
    cfg_account_t a = {0}, b;
    a.name = svc_strdup("gw"), a.login = svc_strdup("jo"), a.password = svc_strdup(h), a.description = svc_strdup("d");
    cfg_list_add(&a.hosts, &a.nhosts, "10.0.0.0/8");
    cfg_list_add(&a.acl, &a.nacl, "*");
    a.disabled = 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    cfg_account_encode(&a, &pk);
    XWS_CHECK(cfg_account_decode(&b, sb.data, sb.size) == 0);
    XWS_CHECK(strcmp(b.name, "gw") == 0 && strcmp(b.login, "jo") == 0 && strcmp(b.password, h) == 0 && b.disabled == 1);
    XWS_CHECK(b.nhosts == 1 && strcmp(b.hosts[0], "10.0.0.0/8") == 0 && b.nacl == 1 && strcmp(b.acl[0], "*") == 0);
    cfg_account_dispose(&b);
    XWS_CHECK(cfg_account_decode(&b, sb.data, sb.size - 1) == -1);
    XWS_CHECK(cfg_account_decode(&b, "\x81\xa4name\x01", 7) == -1);
    msgpack_sbuffer_destroy(&sb);

    /* the credential fingerprint follows login, password hash and disabled flag, nothing else */
    char c1[33], c2[33];
    s_cred(&a, c1);
    XWS_CHECK(strlen(c1) == 32 && strspn(c1, "0123456789abcdef") == 32);
    free(a.description), a.description = svc_strdup("other");
    cfg_list_add(&a.acl, &a.nacl, "callcenter");
    s_cred(&a, c2);
    XWS_CHECK(strcmp(c1, c2) == 0);
    a.disabled = 0;
    s_cred(&a, c2);
    XWS_CHECK(strcmp(c1, c2) != 0);
    a.disabled = 1;
    free(a.login), a.login = svc_strdup("");
    s_cred(&a, c2);
    XWS_CHECK(strcmp(c1, c2) != 0);
    free(a.login), a.login = svc_strdup("jo");
    free(a.password), a.password = svc_strdup(h2);
    s_cred(&a, c2);
    XWS_CHECK(strcmp(c1, c2) != 0);
    free(a.password), a.password = svc_strdup(h);
    s_cred(&a, c2);
    XWS_CHECK(strcmp(c1, c2) == 0);
    cfg_account_dispose(&a);
}
