/*
 * account_cli.c - "xws-config account ...": manages web-service accounts in Redis through the
 * same functions (lua/config.lua) as the service. Exit status: 0 ok, 1 error (message on
 * stderr), 2 usage. Passwords are never printed, except the one ensure-initial generates.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "config_int.h"

static const char s_usage[] = "usage: xws-config [-c FILE] account COMMAND ...\n"
                              "  add NAME --login L (--password P | --password-stdin) [--host ADDR|CIDR]... [--acl PATH]...\n"
                              "           [--description T] [--disabled]\n"
                              "  add NAME --host ADDR|CIDR... [--acl PATH]... [--description T] [--disabled]   (host-only)\n"
                              "  list [--json]\n"
                              "  remove NAME\n"
                              "  enable NAME | disable NAME\n"
                              "  passwd NAME (--password P | --password-stdin)\n"
                              "  set NAME [--login L] [--host X]... [--add-host X]... [--remove-host X]... [--clear-hosts]\n"
                              "           [--acl P]... [--add-acl P]... [--remove-acl P]... [--clear-acl] [--description T]\n"
                              "           (--host and --acl replace the list; --add-* and --remove-* change it)\n"
                              "  ensure-initial --login L [--password P | --password-stdin]\n";

enum {
    O_LOGIN = 1 << 0,
    O_PASSWORD = 1 << 1, /* --password and --password-stdin */
    O_HOST = 1 << 2,
    O_ACL = 1 << 3,
    O_DESC = 1 << 4,
    O_DISABLED = 1 << 5,
    O_CLEAR = 1 << 6, /* --clear-hosts, --clear-acl */
    O_JSON = 1 << 7,
    O_EDIT = 1 << 8, /* --add-host, --remove-host, --add-acl, --remove-acl */
};

/* one list option: a list of opts_t and the option that fills it */
enum { L_HOSTS, L_ACL, L_ADD_HOSTS, L_RM_HOSTS, L_ADD_ACL, L_RM_ACL, L_COUNT };

typedef struct {
    const char *login;
    char *password;       /* owned (read from stdin or copied) */
    char **list[L_COUNT]; /* L_HOSTS: --host, L_ACL: --acl, ... */
    size_t nlist[L_COUNT];
    const char *description;
    int disabled, clear_hosts, clear_acl, json;
    unsigned seen; /* O_* given */
} opts_t;

static void s_opts_free(opts_t *o)
{
    if (o->password != NULL) {
        OPENSSL_cleanse(o->password, strlen(o->password));
        free(o->password);
    }
    for (int l = 0; l < L_COUNT; l++) {
        for (size_t i = 0; i < o->nlist[l]; i++)
            free(o->list[l][i]);
        free(o->list[l]);
    }
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "xws-config: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", s_usage);
    return 2;
}

static char *s_read_stdin_password(void)
{
    char buf[2048];
    if (fgets(buf, sizeof(buf), stdin) == NULL)
        return NULL;
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *p = svc_strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return p;
}

/* parses argv[from..] against the allowed options; returns 0, 1 (error, reported) or 2 (usage) */
static int s_parse(int argc, char **argv, int from, unsigned allowed, opts_t *o)
{
    for (int i = from; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned opt;
        int takes = 1, list = -1;
        if (strcmp(a, "--login") == 0)
            opt = O_LOGIN;
        else if (strcmp(a, "--password") == 0 || strcmp(a, "--password-stdin") == 0)
            opt = O_PASSWORD, takes = strcmp(a, "--password") == 0;
        else if (strcmp(a, "--host") == 0)
            opt = O_HOST, list = L_HOSTS;
        else if (strcmp(a, "--acl") == 0)
            opt = O_ACL, list = L_ACL;
        else if (strcmp(a, "--add-host") == 0 || strcmp(a, "--remove-host") == 0)
            opt = O_EDIT, list = a[2] == 'a' ? L_ADD_HOSTS : L_RM_HOSTS;
        else if (strcmp(a, "--add-acl") == 0 || strcmp(a, "--remove-acl") == 0)
            opt = O_EDIT, list = a[2] == 'a' ? L_ADD_ACL : L_RM_ACL;
        else if (strcmp(a, "--description") == 0)
            opt = O_DESC;
        else if (strcmp(a, "--disabled") == 0)
            opt = O_DISABLED, takes = 0;
        else if (strcmp(a, "--clear-hosts") == 0 || strcmp(a, "--clear-acl") == 0)
            opt = O_CLEAR, takes = 0;
        else if (strcmp(a, "--json") == 0)
            opt = O_JSON, takes = 0;
        else
            return s_usage_error("unexpected argument '%s'", a);
        if (!(allowed & opt))
            return s_usage_error("option %s is not allowed here", a);
        if (takes && v == NULL)
            return s_usage_error("option %s needs a value", a);
        if ((opt == O_LOGIN || opt == O_PASSWORD || opt == O_DESC) && (o->seen & opt))
            return s_usage_error("option %s given twice", a);
        o->seen |= opt;
        const char *why;
        char canon[64];
        switch (opt) {
        case O_LOGIN:
            o->login = v;
            break;
        case O_PASSWORD:
            if (takes) {
                o->password = svc_strdup(v);
            } else if ((o->password = s_read_stdin_password()) == NULL) {
                fprintf(stderr, "xws-config: no password on standard input\n");
                return 1;
            }
            if (cfg_check_password(o->password, &why) != 0) {
                fprintf(stderr, "xws-config: %s\n", why);
                return 1;
            }
            break;
        case O_HOST:
        case O_ACL:
        case O_EDIT:
            if (list == L_HOSTS || list == L_ADD_HOSTS || list == L_RM_HOSTS) {
                if (cfg_normalise_host(v, canon, sizeof(canon), &why) != 0) {
                    fprintf(stderr, "xws-config: %s %s: %s\n", a, v, why);
                    return 1;
                }
                v = canon;
            } else if (cfg_check_acl(v, &why) != 0) {
                fprintf(stderr, "xws-config: %s %s: %s\n", a, v, why);
                return 1;
            }
            cfg_list_add(&o->list[list], &o->nlist[list], v);
            break;
        case O_DESC:
            if (strlen(v) > 1000 || !svc_printable(v, strlen(v), 0)) {
                fprintf(stderr, "xws-config: --description: at most 1000 printable characters\n");
                return 1;
            }
            o->description = v;
            break;
        case O_DISABLED:
            o->disabled = 1;
            break;
        case O_CLEAR:
            if (strcmp(a, "--clear-hosts") == 0)
                o->clear_hosts = 1;
            else
                o->clear_acl = 1;
            break;
        case O_JSON:
            o->json = 1;
            break;
        }
        if (takes)
            i++;
    }
    if (o->login != NULL) {
        const char *why;
        if (cfg_check_login(o->login, &why) != 0) {
            fprintf(stderr, "xws-config: --login: %s\n", why);
            return 1;
        }
    }
    return 0;
}

/* adds the entries of add to list, skipping duplicates */
static void s_merge(char ***list, size_t *n, char **add, size_t nadd)
{
    for (size_t i = 0; i < nadd; i++) {
        size_t k = 0;
        while (k < *n && strcmp((*list)[k], add[i]) != 0)
            k++;
        if (k == *n)
            cfg_list_add(list, n, add[i]);
    }
}

/* set's edit of one list: emptied first when replace, then the replacement, additions, removals */
static void s_edit_list(char ***list, size_t *n, int replace, const opts_t *o, int with, int add, int rm)
{
    if (replace) {
        for (size_t i = 0; i < *n; i++)
            free((*list)[i]);
        *n = 0;
    }
    s_merge(list, n, o->list[with], o->nlist[with]);
    s_merge(list, n, o->list[add], o->nlist[add]);
    for (size_t r = 0; r < o->nlist[rm]; r++) {
        size_t k = 0;
        while (k < *n && strcmp((*list)[k], o->list[rm][r]) != 0)
            k++;
        if (k < *n) {
            free((*list)[k]);
            memmove(&(*list)[k], &(*list)[k + 1], (*n - k - 1) * sizeof(**list));
            (*n)--;
        }
    }
}

/* says on stdout what a command did, and what the account is now */
static void s_said(const cfg_account_t *a, const char *what)
{
    printf("account %s %s: login %s, %s, hosts ", a->name, what, a->login[0] ? a->login : "(host-only)",
           a->disabled ? "disabled" : "enabled");
    for (size_t i = 0; i < a->nhosts; i++)
        printf("%s%s", i ? "," : "", a->hosts[i]);
    printf("%s, acl ", a->nhosts ? "" : "(any)");
    for (size_t i = 0; i < a->nacl; i++)
        printf("%s%s", i ? "," : "", a->acl[i]);
    printf("%s\n", a->nacl ? "" : "(none: every request is refused)");
}

/* prints the message of an error reply; returns 1 */
static int s_report(svc_ctx_t *ctx)
{
    msgpack_unpacked u;
    const char *msg = "failed";
    int len = 6;
    if (svc_mp_unpack(&u, ctx->body.data, ctx->body.size) == 0) {
        xws_slice_t m = svc_mp_slice(svc_mp_get(&u.data, "message"));
        if (m.len > 0)
            msg = m.ptr, len = (int)m.len;
    }
    if (ctx->status == 503)
        fprintf(stderr, "xws-config: Redis at %s is unavailable\n", svc_redis_spec(ctx->redis));
    else
        fprintf(stderr, "xws-config: %.*s\n", len, msg);
    msgpack_unpacked_destroy(&u);
    return 1;
}

static void s_account_blob(svc_ctx_t *ctx, const cfg_account_t *a, const char **blob, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    cfg_account_encode(a, &pk);
    *blob = svc_ctx_strndup(ctx, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

/* config_account_put of a; old: the record read before ("" to create). Returns the status. */
static int s_put(svc_ctx_t *ctx, const cfg_account_t *a, const char *old, size_t oldlen, int *conflict)
{
    const char *keys[] = {svc_key(ctx, "account:data"), svc_key(ctx, "account:login"), svc_key(ctx, "ver:account")};
    const char *args[4];
    size_t lens[4];
    args[0] = a->name, lens[0] = strlen(a->name);
    s_account_blob(ctx, a, &args[1], &lens[1]);
    args[2] = a->login, lens[2] = strlen(a->login);
    args[3] = old, lens[3] = oldlen;
    return svc_write_cas(ctx, conflict, "config_account_put", 3, keys, 4, args, lens);
}

typedef int (*s_change_fn)(cfg_account_t *a, opts_t *o);

/* read-modify-write of account name with compare-and-set; returns the exit status */
static int s_modify(svc_ctx_t *ctx, const char *name, opts_t *o, s_change_fn change, const char *what)
{
    for (int attempt = 0; attempt < SVC_CAS_ATTEMPTS; attempt++) {
        const char *argv[] = {"HGET", svc_key(ctx, "account:data"), name};
        redisReply *r = svc_redis_command(ctx->redis, 3, argv, NULL);
        if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            svc_reply_redis_failure(ctx, r, "reading an account");
            freeReplyObject(r);
            return s_report(ctx);
        }
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            fprintf(stderr, "xws-config: no account is named %s\n", name);
            return 1;
        }
        cfg_account_t a;
        const char *old = svc_ctx_strndup(ctx, r->str, r->len);
        size_t oldlen = r->len;
        int bad = cfg_account_decode(&a, r->str, r->len) != 0;
        freeReplyObject(r);
        if (bad) {
            fprintf(stderr, "xws-config: the stored record of account %s is corrupt\n", name);
            return 1;
        }
        if (change(&a, o) != 0) {
            cfg_account_dispose(&a);
            return 1;
        }
        int conflict;
        int rc = s_put(ctx, &a, old, oldlen, &conflict);
        if (rc == 0 && !conflict)
            s_said(&a, what);
        cfg_account_dispose(&a);
        if (rc != 0)
            return s_report(ctx);
        if (!conflict)
            return 0;
    }
    fprintf(stderr, "xws-config: account %s keeps changing under this command; try again\n", name);
    return 1;
}

static int s_enable(cfg_account_t *a, opts_t *o)
{
    a->disabled = 0;
    return 0;
}

static int s_disable(cfg_account_t *a, opts_t *o)
{
    a->disabled = 1;
    return 0;
}

static int s_passwd(cfg_account_t *a, opts_t *o)
{
    if (a->login[0] == '\0') {
        fprintf(stderr, "xws-config: account %s is host-only (no login): give it a login first with 'set --login'\n", a->name);
        return -1;
    }
    char h[160];
    cfg_password_hash(o->password, strlen(o->password), h, sizeof(h));
    free(a->password);
    a->password = svc_strdup(h);
    return 0;
}

static int s_set(cfg_account_t *a, opts_t *o)
{
    if (o->login != NULL) {
        free(a->login);
        a->login = svc_strdup(o->login);
        if (a->password[0] == '\0')
            fprintf(stderr, "xws-config: note: account %s has no password yet: set one with 'passwd'\n", a->name);
    }
    s_edit_list(&a->hosts, &a->nhosts, o->clear_hosts || (o->seen & O_HOST), o, L_HOSTS, L_ADD_HOSTS, L_RM_HOSTS);
    s_edit_list(&a->acl, &a->nacl, o->clear_acl || (o->seen & O_ACL), o, L_ACL, L_ADD_ACL, L_RM_ACL);
    if (o->description != NULL) {
        free(a->description);
        a->description = svc_strdup(o->description);
    }
    if (a->login[0] == '\0' && a->nhosts == 0) {
        fprintf(stderr, "xws-config: a host-only account needs at least one --host\n");
        return -1;
    }
    return 0;
}

static int s_cmd_add(svc_ctx_t *ctx, const char *name, opts_t *o)
{
    if (o->login == NULL && o->password != NULL)
        return s_usage_error("%s", "--password needs --login (a host-only account has no password)");
    if (o->login != NULL && o->password == NULL)
        return s_usage_error("%s", "an account with --login needs --password or --password-stdin");
    if (o->login == NULL && o->nlist[L_HOSTS] == 0)
        return s_usage_error("%s", "give --login and a password, or --host for a host-only account");
    cfg_account_t a = {0};
    char h[160] = "";
    if (o->password != NULL)
        cfg_password_hash(o->password, strlen(o->password), h, sizeof(h));
    a.name = svc_strdup(name);
    a.login = svc_strdup(o->login ? o->login : "");
    a.password = svc_strdup(h);
    a.description = svc_strdup(o->description ? o->description : "");
    a.disabled = o->disabled;
    s_merge(&a.hosts, &a.nhosts, o->list[L_HOSTS], o->nlist[L_HOSTS]);
    s_merge(&a.acl, &a.nacl, o->list[L_ACL], o->nlist[L_ACL]);
    int rc = s_put(ctx, &a, "", 0, NULL); /* a create never conflicts */
    if (rc == 0)
        s_said(&a, "added");
    cfg_account_dispose(&a);
    return rc == 0 ? 0 : s_report(ctx);
}

static int s_cmd_list(svc_ctx_t *ctx, opts_t *o)
{
    cfg_account_t *list;
    size_t n;
    long long version;
    if (cfg_accounts_load(ctx, &list, &n, &version) != 0)
        return s_report(ctx);
    if (o->json) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, svc_mp_write);
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++)
            cfg_account_render(&list[i], &pk, 1);
        msgpack_unpacked u;
        xws_buf_t out;
        xws_buf_init(&out);
        int ok = svc_mp_unpack(&u, sb.data, sb.size) == 0 && xws_msgpack_to_json(&u.data, &out) == 0;
        if (ok)
            printf("%.*s\n", (int)out.len, out.data);
        msgpack_unpacked_destroy(&u);
        xws_buf_dispose(&out);
        msgpack_sbuffer_destroy(&sb);
        cfg_accounts_free(list, n);
        if (!ok)
            fprintf(stderr, "xws-config: an account cannot be shown as JSON\n");
        return ok ? 0 : 1;
    }
    printf("%-20s %-20s %-9s %-30s %s\n", "NAME", "LOGIN", "STATE", "HOSTS", "ACL");
    for (size_t i = 0; i < n; i++) {
        xws_buf_t hosts, acl;
        xws_buf_init(&hosts), xws_buf_init(&acl);
        for (size_t k = 0; k < list[i].nhosts; k++)
            xws_buf_addf(&hosts, "%s%s", k ? "," : "", list[i].hosts[k]);
        for (size_t k = 0; k < list[i].nacl; k++)
            xws_buf_addf(&acl, "%s%s", k ? "," : "", list[i].acl[k]);
        printf("%-20s %-20s %-9s %-30.*s %.*s\n", list[i].name, list[i].login[0] ? list[i].login : "(host-only)",
               list[i].disabled ? "disabled" : "enabled", hosts.len ? (int)hosts.len : 3, hosts.len ? hosts.data : "any",
               acl.len ? (int)acl.len : 6, acl.len ? acl.data : "(none)");
        xws_buf_dispose(&hosts), xws_buf_dispose(&acl);
    }
    cfg_accounts_free(list, n);
    return 0;
}

static int s_cmd_remove(svc_ctx_t *ctx, const char *name)
{
    const char *keys[] = {svc_key(ctx, "account:data"), svc_key(ctx, "account:login"), svc_key(ctx, "ver:account")};
    const char *args[] = {name};
    if (svc_write(ctx, "config_account_remove", 3, keys, 1, args, NULL) != 0)
        return s_report(ctx);
    printf("account %s removed\n", name);
    return 0;
}

static int s_cmd_ensure(svc_ctx_t *ctx, opts_t *o)
{
    if (o->login == NULL)
        return s_usage_error("%s", "ensure-initial needs --login");
    char generated[17];
    const char *password = o->password;
    if (password == NULL) {
        svc_random_chars(generated, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
        password = generated;
    }
    cfg_account_t a = {0};
    char h[160];
    cfg_password_hash(password, strlen(password), h, sizeof(h));
    a.name = svc_strdup("admin");
    a.login = svc_strdup(o->login);
    a.password = svc_strdup(h);
    a.description = svc_strdup("initial account");
    cfg_list_add(&a.acl, &a.nacl, "*");
    const char *keys[] = {svc_key(ctx, "account:data"), svc_key(ctx, "account:login"), svc_key(ctx, "ver:account")};
    const char *args[3];
    size_t lens[3];
    args[0] = a.name, lens[0] = strlen(a.name);
    s_account_blob(ctx, &a, &args[1], &lens[1]);
    args[2] = a.login, lens[2] = strlen(a.login);
    int rc = svc_write(ctx, "config_account_ensure", 3, keys, 3, args, lens);
    cfg_account_dispose(&a);
    if (rc != 0)
        rc = s_report(ctx);
    else if (ctx->status == 200) /* 204: there were accounts already */
        printf("login: %s\npassword: %s\n", o->login, password);
    else
        printf("web-service accounts exist already: nothing done\n");
    OPENSSL_cleanse(generated, sizeof(generated));
    return rc;
}

int cfg_account_cli(const char *cfg_path, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (argc < 2)
        return s_usage_error("%s", "a command is needed");
    const char *cmd = argv[1], *name = NULL;
    static const struct {
        const char *name;
        int takes_name;
        unsigned allowed;
    } cmds[] = {
        {"add", 1, O_LOGIN | O_PASSWORD | O_HOST | O_ACL | O_DESC | O_DISABLED},
        {"list", 0, O_JSON},
        {"remove", 1, 0},
        {"enable", 1, 0},
        {"disable", 1, 0},
        {"passwd", 1, O_PASSWORD},
        {"set", 1, O_LOGIN | O_HOST | O_CLEAR | O_ACL | O_DESC | O_EDIT},
        {"ensure-initial", 0, O_LOGIN | O_PASSWORD},
    };
    size_t c = 0;
    while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[c].name, cmd) != 0)
        c++;
    if (c == sizeof(cmds) / sizeof(cmds[0]))
        return s_usage_error("unknown command '%s'", cmd);
    int from = 2;
    if (cmds[c].takes_name) {
        if (argc < 3 || strncmp(argv[2], "--", 2) == 0)
            return s_usage_error("%s needs an account name", cmd);
        name = argv[2];
        from = 3;
        const char *why;
        if (cfg_check_account_name(name, &why) != 0) {
            fprintf(stderr, "xws-config: %s: %s\n", name, why);
            return 1;
        }
    }
    opts_t o;
    memset(&o, 0, sizeof(o));
    int rc = s_parse(argc, argv, from, cmds[c].allowed, &o);
    if (rc == 0 && strcmp(cmd, "passwd") == 0 && o.password == NULL)
        rc = s_usage_error("%s", "passwd needs --password or --password-stdin");
    if (rc != 0) {
        s_opts_free(&o);
        return rc;
    }

    signal(SIGPIPE, SIG_IGN);
    svc_log_set_program("xws-config");
    svc_log_set_level(SVC_LOG_ERROR);
    xws_config_t *cfg = xws_config_load(cfg_path);
    if (cfg == NULL) {
        s_opts_free(&o);
        return 1;
    }
    long long tmo = xws_config_int(cfg, "redis_timeout_ms", 2000);
    svc_redis_t *redis =
        svc_redis_new(xws_config_get(cfg, "redis", "unix:${run_dir}/redis.sock"), tmo > 0 ? (int)tmo : 2000, "xws_config", cfg_lua);
    if (redis == NULL || svc_redis_password_file(redis, xws_config_get(cfg, "redis_password_file", "")) != 0) {
        svc_redis_destroy(&redis);
        xws_config_destroy(&cfg);
        s_opts_free(&o);
        return 1;
    }
    /* Redis may be starting: keep trying for a few seconds */
    long long until = svc_now_mono_ms() + 5000;
    while (svc_redis_connect(redis) != 0 && svc_now_mono_ms() < until)
        usleep(50000);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, redis, xws_config_get(cfg, "redis_prefix", "xws:"), xws_config_int(cfg, "write_id_ttl", 600), NULL);
    if (strcmp(cmd, "add") == 0)
        rc = s_cmd_add(&ctx, name, &o);
    else if (strcmp(cmd, "list") == 0)
        rc = s_cmd_list(&ctx, &o);
    else if (strcmp(cmd, "remove") == 0)
        rc = s_cmd_remove(&ctx, name);
    else if (strcmp(cmd, "enable") == 0)
        rc = s_modify(&ctx, name, &o, s_enable, "enabled");
    else if (strcmp(cmd, "disable") == 0)
        rc = s_modify(&ctx, name, &o, s_disable, "disabled");
    else if (strcmp(cmd, "passwd") == 0)
        rc = s_modify(&ctx, name, &o, s_passwd, "has a new password");
    else if (strcmp(cmd, "set") == 0)
        rc = s_modify(&ctx, name, &o, s_set, "updated");
    else
        rc = s_cmd_ensure(&ctx, &o);
    svc_ctx_dispose(&ctx);
    svc_redis_destroy(&redis);
    xws_config_destroy(&cfg);
    s_opts_free(&o);
    return rc;
}
