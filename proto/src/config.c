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
    struct entry *next;
} entry_t;

struct xws_config {
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
    if (path == NULL || *path == '\0')
        return self;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "config: cannot read %s: %s\n", path, strerror(errno));
        xws_config_destroy(&self);
        return NULL;
    }
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
        s_push(&self->file, key, val);
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

long long xws_config_int(xws_config_t *self, const char *key, long long def)
{
    const char *v = xws_config_get(self, key, NULL);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0) {
        fprintf(stderr, "config: %s: expected a non-negative integer, got '%s'\n", key, v);
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
    unlink(path);
}
