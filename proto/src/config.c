/* config.c - settings from a file and the environment (see xws/config.h). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "xws/check.h"
#include "xws/config.h"

typedef struct entry {
    char *key, *val;
    int line; /* in the file; 0 for derived strings */
    struct entry *next;
} entry_t;

/* Every setting: the keys documented in deploy/xws.conf (a test checks that both lists agree). */
static const char *const s_known[] = {
    "access_log",
    "accounts_refresh_ms",
    "bootstrap_file",
    "curve_client_key",
    "curve_clients_dir",
    "curve_gateway_key",
    "curve_secret_key",
    "curve_worker_key",
    "curve_workers_dir",
    "data_dir",
    "deadline_ms",
    "expiry_ms",
    "function_library_version",
    "health_file",
    "heartbeat_ms",
    "internal_endpoint",
    "ipc_group_access",
    "listen",
    "log_format",
    "max_body",
    "max_connections",
    "max_query",
    "queue_max",
    "redis",
    "redis_password_file",
    "redis_prefix",
    "redis_timeout_ms",
    "redis_wait_replicas",
    "redis_wait_timeout_ms",
    "run_dir",
    "store_probe_ms",
    "tls_cert",
    "tls_key",
    "worker_credit",
    "worker_endpoint_insecure",
    "worker_endpoints",
    "write_id_ttl",
    "queue_max_bytes",
    "reply_cache_bytes",
    "request_read_timeout_ms",
    "tls_ciphers",
    "verify_nice",
    "verify_threads",
};

/* XWS_* variables that are not settings: read by the launcher, the container entrypoint, the
 * install and test scripts. */
static const char *const s_other_env[] = {
    "XWS_CONFIG",  "XWS_ADMIN_LOGIN", "XWS_ADMIN_PASSWORD", "XWS_ADMIN_PASSWORD_FILE", "XWS_BIN_DIR",
    "XWS_PORT",    "XWS_WORKERS",     "XWS_BOOTSTRAP_WAIT", "XWS_TLS_HOSTNAME",        "XWS_KEEP_LOGS",
    "XWS_VERSION", "XWS_HTTPS_PORT",  "XWS_HTTPS_BIND",     "XWS_REDIS_APPENDFSYNC",   "XWS_ENV_FILE",
};

extern char **environ;

static int s_is_known(const char *key)
{
    for (size_t i = 0; i < sizeof(s_known) / sizeof(s_known[0]); i++)
        if (strcmp(s_known[i], key) == 0)
            return 1;
    return 0;
}

/* edit distance of a and b (both short), case-insensitive */
static size_t s_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

/* the known key closest to key (for "did you mean"), or NULL when none is close */
static const char *s_closest(const char *key)
{
    const char *best = NULL;
    size_t bestd = 4; /* at most 3 edits away */
    for (size_t i = 0; i < sizeof(s_known) / sizeof(s_known[0]); i++) {
        size_t d = s_distance(key, s_known[i]);
        if (d < bestd)
            best = s_known[i], bestd = d;
    }
    return best;
}

/* 0, or -1 after reporting every XWS_* variable of the environment that is neither a setting
 * (XWS_<KEY>) nor one of s_other_env */
static int s_check_environment(void)
{
    int bad = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "XWS_", 4) != 0)
            continue;
        size_t n = strcspn(*e, "=");
        char name[128], key[128];
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, *e, n);
        name[n] = '\0';
        int other = 0;
        for (size_t i = 0; i < sizeof(s_other_env) / sizeof(s_other_env[0]); i++)
            other |= strcmp(s_other_env[i], name) == 0;
        for (size_t i = 4; i <= n; i++)
            key[i - 4] = (char)tolower((unsigned char)name[i]);
        if (other || s_is_known(key))
            continue;
        const char *near = s_closest(key);
        char hint[160] = "", up[128];
        if (near != NULL) {
            size_t k = 0;
            for (; near[k] != '\0' && k + 1 < sizeof(up); k++)
                up[k] = (char)toupper((unsigned char)near[k]);
            up[k] = '\0';
            snprintf(hint, sizeof(hint), " (did you mean XWS_%s?)", up);
        }
        fprintf(stderr, "config: environment: unknown variable %s%s\n", name, hint);
        bad = 1;
    }
    return bad ? -1 : 0;
}

struct xws_config {
    char *path;       /* the file, or NULL */
    entry_t *file;    /* key/value pairs read from the file */
    entry_t *derived; /* strings returned to callers (env copies, expansions): freed at destroy */
};

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void s_push(entry_t **list, const char *key, const char *val)
{
    entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL || (e->val = strdup(val)) == NULL)
        abort();
    e->next = *list;
    *list = e;
}

static void s_free(entry_t *e)
{
    while (e != NULL) {
        entry_t *next = e->next;
        free(e->key);
        free(e->val);
        free(e);
        e = next;
    }
}

xws_config_t *xws_config_load(const char *path)
{
    xws_config_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    if (path == NULL)
        path = getenv("XWS_CONFIG");
    if (s_check_environment() != 0) {
        xws_config_destroy(&self);
        return NULL;
    }
    if (path == NULL || *path == '\0')
        return self;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "config: cannot read %s: %s\n", path, strerror(errno));
        xws_config_destroy(&self);
        return NULL;
    }
    if ((self->path = strdup(path)) == NULL)
        abort();
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *s = s_trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fprintf(stderr, "config: %s:%d: expected 'key = value'\n", path, lineno);
            fclose(f);
            xws_config_destroy(&self);
            return NULL;
        }
        *eq = '\0';
        char *key = s_trim(s), *val = s_trim(eq + 1);
        if (*key == '\0') {
            fprintf(stderr, "config: %s:%d: empty key\n", path, lineno);
            fclose(f);
            xws_config_destroy(&self);
            return NULL;
        }
        if (!s_is_known(key)) {
            const char *near = s_closest(key);
            fprintf(stderr, "config: %s:%d: unknown setting '%s'%s%s%s\n", path, lineno, key, near ? " (did you mean '" : "",
                    near ? near : "", near ? "'?)" : "");
            fclose(f);
            xws_config_destroy(&self);
            return NULL;
        }
        s_push(&self->file, key, val);
        self->file->line = lineno;
    }
    fclose(f);
    return self;
}

void xws_config_destroy(xws_config_t **self_p)
{
    assert(self_p != NULL);
    xws_config_t *self = *self_p;
    if (self == NULL)
        return;
    s_free(self->file);
    s_free(self->derived);
    free(self->path);
    free(self);
    *self_p = NULL;
}

/* the raw value (env, then file), without expansion; NULL when unset */
static const char *s_raw(xws_config_t *self, const char *key)
{
    char env[128] = "XWS_";
    size_t n = 4;
    for (const char *k = key; *k != '\0' && n + 1 < sizeof(env); k++)
        env[n++] = (char)toupper((unsigned char)*k);
    env[n] = '\0';
    const char *v = getenv(env);
    if (v != NULL)
        return v;
    /* the file list is newest first: the last occurrence in the file wins */
    for (entry_t *e = self->file; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

const char *xws_config_get(xws_config_t *self, const char *key, const char *def)
{
    assert(self != NULL && key != NULL);
    const char *v = s_raw(self, key);
    if (v == NULL)
        v = def;
    if (v == NULL)
        return NULL;
    const char *mark = strstr(v, "${run_dir}");
    if (mark == NULL)
        return v;
    const char *run_dir = strcmp(key, "run_dir") == 0 ? "./run" : xws_config_get(self, "run_dir", "./run");
    size_t n = strlen(v) - strlen("${run_dir}") + strlen(run_dir) + 1;
    char *out = malloc(n);
    if (out == NULL)
        abort();
    snprintf(out, n, "%.*s%s%s", (int)(mark - v), v, run_dir, mark + strlen("${run_dir}"));
    s_push(&self->derived, key, out);
    free(out);
    return self->derived->val;
}

const char *xws_config_source(xws_config_t *self, const char *key, char *buf, size_t size)
{
    char env[128] = "XWS_";
    size_t n = 4;
    for (const char *k = key; *k != '\0' && n + 1 < sizeof(env); k++)
        env[n++] = (char)toupper((unsigned char)*k);
    env[n] = '\0';
    if (getenv(env) != NULL) {
        snprintf(buf, size, "from the environment, %s", env);
        return buf;
    }
    for (entry_t *e = self->file; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0) {
            snprintf(buf, size, "from %s:%d", self->path ? self->path : "?", e->line);
            return buf;
        }
    snprintf(buf, size, "the built-in default");
    return buf;
}

long long xws_config_int(xws_config_t *self, const char *key, long long def)
{
    const char *v = xws_config_get(self, key, NULL);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0) {
        char from[300];
        xws_config_source(self, key, from, sizeof(from));
        fprintf(stderr, "config: %s = '%s' (%s): expected a non-negative integer\n", key, v, from);
        return -1;
    }
    return n;
}

#define CHECK(x) XWS_CHECK(x)

void xws_config_test(void)
{
    char path[] = "/tmp/xws-config-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\nrun_dir = /srv/x  \n\nworker_endpoints = ipc://${run_dir}/w.ipc # trailing\ndeadline_ms=250\n", f);
    fclose(f);
    unsetenv("XWS_RUN_DIR");
    unsetenv("XWS_DEADLINE_MS");
    xws_config_t *c = xws_config_load(path);
    CHECK(c != NULL);
    CHECK(strcmp(xws_config_get(c, "run_dir", NULL), "/srv/x") == 0);
    CHECK(strcmp(xws_config_get(c, "worker_endpoints", NULL), "ipc:///srv/x/w.ipc") == 0);
    CHECK(xws_config_int(c, "deadline_ms", 5) == 250);
    CHECK(xws_config_int(c, "missing", 7) == 7);
    CHECK(xws_config_get(c, "missing", NULL) == NULL);
    setenv("XWS_DEADLINE_MS", "99", 1);
    CHECK(xws_config_int(c, "deadline_ms", 5) == 99);
    setenv("XWS_DEADLINE_MS", "x9", 1);
    CHECK(xws_config_int(c, "deadline_ms", 5) == -1);
    unsetenv("XWS_DEADLINE_MS");
    xws_config_destroy(&c);
    CHECK(c == NULL);
    xws_config_destroy(&c);
    CHECK(xws_config_load("/nonexistent/xws.conf") == NULL);
    /* where a value comes from */
    c = xws_config_load(path);
    char from[300];
    CHECK(strstr(xws_config_source(c, "deadline_ms", from, sizeof(from)), ":5") != NULL);
    CHECK(strcmp(xws_config_source(c, "listen", from, sizeof(from)), "the built-in default") == 0);
    setenv("XWS_DEADLINE_MS", "7", 1);
    CHECK(strcmp(xws_config_source(c, "deadline_ms", from, sizeof(from)), "from the environment, XWS_DEADLINE_MS") == 0);
    unsetenv("XWS_DEADLINE_MS");
    xws_config_destroy(&c);
    /* strict: an unknown key in the file, an unknown XWS_ variable */
    f = fopen(path, "w");
    fputs("deadline_ms = 5\nredis_timout_ms = 100\n", f);
    fclose(f);
    CHECK(xws_config_load(path) == NULL);
    CHECK(s_closest("redis_timout_ms") != NULL && strcmp(s_closest("redis_timout_ms"), "redis_timeout_ms") == 0);
    CHECK(s_closest("completely_unrelated_name") == NULL);
    unlink(path);
    setenv("XWS_DEADLINE_MSS", "1", 1);
    CHECK(xws_config_load(NULL) == NULL);
    unsetenv("XWS_DEADLINE_MSS");
    setenv("XWS_ADMIN_LOGIN", "x", 1); /* read by the scripts: allowed */
    c = xws_config_load(NULL);
    CHECK(c != NULL);
    xws_config_destroy(&c);
    unsetenv("XWS_ADMIN_LOGIN");
}
