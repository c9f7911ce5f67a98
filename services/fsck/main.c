/*
 * main.c - xws-fsck: checks that every index, reference count, attachment and number of the
 * store agrees with the objects, and prints what does not (README.md beside this file).
 *
 *   xws-fsck [-c FILE] [-a AREA]... [--json] [-t MS]
 *
 * The whole check is one read-only Redis function call (fsck_check of library xws_fsck,
 * lua/fsck.lua, FCALL_RO): an atomic snapshot, so writes racing the check cannot make it report
 * a false problem. The program lists the contexts first (their number keys are passed in KEYS);
 * the function answers "list again" when a context appeared in between.
 *
 * Exit status: 0 clean, 1 problems found (one line each on standard output), 2 usage,
 * settings or Redis error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "svc.h"
#include "xws/cli.h"
#include "xws/config.h"

extern const char fsck_lua[];

#define EXIT_PROBLEMS 1
#define EXIT_ERROR 2

/* The keys the check reads, after the prefix; fsck_check maps them by these names. */
static const char *const s_keys[] = {
    "entity:seq",    "entity:data",     "entity:name",       "entity:refs",    "context:data", "context:inclrefs",
    "context:refs",  "line:seq",        "line:data",         "line:name",      "line:refs",    "line:owner",
    "line:byuser",   "line:device",     "line:bydevice",     "device:seq",     "device:data",  "device:mac",
    "device:ip",     "device:deviceid", "device:refs",       "user:seq",       "user:data",    "user:login",
    "user:identity", "user:voicemail",  "voicemail:mailbox", "voicemail:seq",  "user:extra",   "group:seq",
    "group:data",    "group:name",      "group:members",     "user:groups",    "queue:seq",    "queue:data",
    "queue:name",    "queue:members",   "user:queues",       "pickup:data",    "pickup:name",  "pickup:rows",
    "pickup:target", "user:dialaction", "dialaction:target", "funckey:target",
};
#define NKEYS (sizeof(s_keys) / sizeof(s_keys[0]))

/* An area of the check, and the service names that select several at once. */
static const struct {
    const char *name;
    const char *areas;
} s_areas[] = {
    {"entities", "entities"},
    {"contexts", "contexts"},
    {"numbers", "numbers"},
    {"lines", "lines"},
    {"devices", "devices"},
    {"users", "users"},
    {"voicemail", "voicemail"},
    {"groups", "groups"},
    {"queues", "queues"},
    {"pickups", "pickups"},
    {"dialactions", "dialactions"},
    {"funckeys", "funckeys"},
    {"config", "entities,contexts"},
    {"ipbx-lines", "lines"},
    {"ipbx-users", "users,voicemail,groups,queues,pickups,dialactions,funckeys"},
    {"extensions", "numbers"},
};

static const xws_cli_opt_t s_opts[] = {
    {'c', "config", "FILE", "settings file (default: $XWS_CONFIG; the redis and redis_prefix settings are used)"},
    {'a', "area", "AREA",
     "check only this area (repeatable): entities, contexts, numbers, lines, devices, users, voicemail, groups, queues, "
     "pickups, dialactions, funckeys, or a service name (config, ipbx-lines, ipbx-users, devices, extensions); default: all"},
    {'j', "json", NULL, "print the result as one JSON object on standard output"},
    {'t', "timeout", "MS", "how long to wait for Redis to answer the check, in milliseconds (default: 60000)"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-fsck", "[OPTION]...",
    "Checks the consistency of the XWS store in Redis: unique indexes against the records, reference counts against "
    "the objects that refer, references pointing at existing objects, line owners and devices both ways, the numbers "
    "taken in each context, sequence counters, memberships, pickups, dialactions and function keys. Prints one line per problem: "
    "area, key[field], what is wrong, what was expected. The whole check is one read-only Redis function call (an "
    "atomic snapshot): Redis serves nothing else while it runs (0.4 to 1.2 s per 10,000 lines on a small machine).",
    s_opts,
    "Environment: XWS_CONFIG, and XWS_REDIS, XWS_REDIS_PREFIX override the settings.\n\n"
    "Exit status: 0 clean, 1 problems found, 2 usage, settings or Redis error.\n"};

/* one problem as the function reported it */
typedef struct {
    char *f[4]; /* area, key, what, expected */
} problem_t;

static int s_problem_cmp(const void *a, const void *b)
{
    const problem_t *x = a, *y = b;
    for (int i = 0; i < 4; i++) {
        int c = strcmp(x->f[i], y->f[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* adds the areas that name (an area or a service) selects to list; -1 when it is unknown */
static int s_add_area(xws_buf_t *list, const char *name)
{
    for (size_t i = 0; i < sizeof(s_areas) / sizeof(s_areas[0]); i++) {
        if (strcmp(s_areas[i].name, name) == 0) {
            xws_buf_addf(list, "%s%s", list->len > 0 ? "," : "", s_areas[i].areas);
            return 0;
        }
    }
    return -1;
}

/* text for a terminal: control characters become '?' */
static void s_print_text(FILE *out, const char *s)
{
    for (; *s != '\0'; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

/* a JSON string, or its bytes as hex when they are not UTF-8 */
static void s_json_str(xws_buf_t *b, const char *s)
{
    if (xws_json_string(b, s, strlen(s)) != 0) {
        xws_buf_adds(b, "\"\\\\x");
        for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
            xws_buf_addf(b, "%02x", *p);
        xws_buf_adds(b, "\"");
    }
}

/* appends to names every field of hash key; 0, or -1 (reported) */
static int s_hkeys(svc_redis_t *r, const char *key, char ***names, size_t *n)
{
    const char *argv[] = {"HKEYS", key};
    redisReply *rep = svc_redis_command(r, 2, argv, NULL);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "xws-fsck: HKEYS %s failed: %s\n", key,
                rep != NULL && rep->str != NULL ? rep->str : "Redis is unavailable");
        freeReplyObject(rep);
        return -1;
    }
    *names = svc_realloc(*names, (*n + rep->elements + 1) * sizeof(char *));
    for (size_t i = 0; i < rep->elements; i++)
        (*names)[(*n)++] = svc_strdup(rep->element[i]->str);
    freeReplyObject(rep);
    return 0;
}

/* appends to names the <ctx> of every key "<prefix><what><ctx>" (SCAN); 0, or -1 (reported) */
static int s_scan_contexts(svc_redis_t *r, const char *prefix, const char *what, char ***names, size_t *n)
{
    xws_buf_t pat;
    xws_buf_init(&pat);
    for (const char *p = prefix; *p != '\0'; p++) {
        if (strchr("*?[]\\", *p) != NULL)
            xws_buf_add(&pat, "\\", 1);
        xws_buf_add(&pat, p, 1);
    }
    xws_buf_addf(&pat, "%s*", what);
    size_t skip = strlen(prefix) + strlen(what);
    char cursor[32] = "0";
    int rc = 0;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pat.data, "COUNT", "1000"};
        redisReply *rep = svc_redis_command(r, 6, argv, NULL);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "xws-fsck: SCAN failed: %s\n", rep != NULL && rep->str != NULL ? rep->str : "Redis is unavailable");
            freeReplyObject(rep);
            rc = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        *names = svc_realloc(*names, (*n + keys->elements + 1) * sizeof(char *));
        for (size_t i = 0; i < keys->elements; i++)
            if (keys->element[i]->len > skip)
                (*names)[(*n)++] = svc_strdup(keys->element[i]->str + skip);
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    xws_buf_dispose(&pat);
    return rc;
}

static int s_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs the check once: lists the contexts, calls fsck_check. Returns its reply (the caller frees
 * it; {-1} means "a context appeared: again"), or NULL after reporting an error. *call_ms: how
 * long the function call itself took (Redis serves nothing else meanwhile).
 */
static redisReply *s_check(svc_redis_t *r, const char *prefix, const char *areas, long long *call_ms)
{
    char **ctx = NULL;
    size_t nctx = 0;
    xws_buf_t k;
    xws_buf_init(&k);
    xws_buf_addf(&k, "%scontext:data", prefix);
    int rc = s_hkeys(r, k.data, &ctx, &nctx);
    xws_buf_dispose(&k);
    if (rc == 0)
        rc = s_scan_contexts(r, prefix, "context:numbers:", &ctx, &nctx);
    if (rc == 0)
        rc = s_scan_contexts(r, prefix, "context:numidx:", &ctx, &nctx);
    redisReply *rep = NULL;
    if (rc == 0) {
        /* unique names, sorted */
        if (nctx > 0)
            qsort(ctx, nctx, sizeof(char *), s_strcmp);
        size_t u = 0;
        for (size_t i = 0; i < nctx; i++) {
            if (u > 0 && strcmp(ctx[u - 1], ctx[i]) == 0)
                free(ctx[i]);
            else
                ctx[u++] = ctx[i];
        }
        nctx = u;
        size_t nkeys = NKEYS + 2 * nctx, nargs = 2 + NKEYS + nctx;
        char **keys = svc_calloc(nkeys, sizeof(char *));
        const char **args = svc_calloc(nargs, sizeof(char *));
        char num[32];
        snprintf(num, sizeof(num), "%zu", NKEYS);
        args[0] = areas;
        args[1] = num;
        for (size_t i = 0; i < NKEYS; i++) {
            xws_buf_t b;
            xws_buf_init(&b);
            xws_buf_addf(&b, "%s%s", prefix, s_keys[i]);
            keys[i] = b.data;
            args[2 + i] = s_keys[i];
        }
        for (size_t i = 0; i < nctx; i++) {
            for (int j = 0; j < 2; j++) {
                xws_buf_t b;
                xws_buf_init(&b);
                xws_buf_addf(&b, "%scontext:%s:%s", prefix, j == 0 ? "numbers" : "numidx", ctx[i]);
                keys[NKEYS + 2 * i + j] = b.data;
            }
            args[2 + NKEYS + i] = ctx[i];
        }
        long long t0 = svc_now_mono_ms();
        rep = svc_redis_fcall(r, 1, "fsck_check", (int)nkeys, (const char *const *)keys, (int)nargs, args, NULL);
        *call_ms = svc_now_mono_ms() - t0;
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "xws-fsck: the check failed: %s\n",
                    rep == NULL        ? "Redis is unavailable or did not answer in time"
                    : rep->str != NULL ? rep->str
                                       : "unexpected reply");
            freeReplyObject(rep);
            rep = NULL;
        }
        for (size_t i = 0; i < nkeys; i++)
            free(keys[i]);
        free(keys);
        free(args);
    }
    for (size_t i = 0; i < nctx; i++)
        free(ctx[i]);
    free(ctx);
    return rep;
}

/* Prints the problems of reply rep (text or JSON); returns the exit status. */
static int s_report(redisReply *rep, int json, long long ms)
{
    size_t n = 0;
    problem_t *p = svc_calloc(rep->elements, sizeof(problem_t));
    for (size_t i = 1; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
            continue;
        for (int j = 0; j < 4; j++)
            p[n].f[j] = e->element[j]->type == REDIS_REPLY_STRING ? e->element[j]->str : "?";
        n++;
    }
    if (n > 0)
        qsort(p, n, sizeof(problem_t), s_problem_cmp);
    long long checked = rep->element[0]->integer;
    if (json) {
        xws_buf_t b;
        xws_buf_init(&b);
        xws_buf_addf(&b, "{\"clean\":%s,\"checked\":%lld,\"ms\":%lld,\"problems\":[", n == 0 ? "true" : "false", checked, ms);
        static const char *const names[] = {"area", "key", "problem", "expected"};
        for (size_t i = 0; i < n; i++) {
            xws_buf_adds(&b, i > 0 ? ",{" : "{");
            for (int j = 0; j < 4; j++) {
                xws_buf_addf(&b, "%s\"%s\":", j > 0 ? "," : "", names[j]);
                s_json_str(&b, p[i].f[j]);
            }
            xws_buf_adds(&b, "}");
        }
        xws_buf_adds(&b, "]}\n");
        fwrite(b.data, 1, b.len, stdout);
        xws_buf_dispose(&b);
    } else {
        for (size_t i = 0; i < n; i++) {
            s_print_text(stdout, p[i].f[0]);
            fputc(' ', stdout);
            s_print_text(stdout, p[i].f[1]);
            fputs(": ", stdout);
            s_print_text(stdout, p[i].f[2]);
            fputs("; expected: ", stdout);
            s_print_text(stdout, p[i].f[3]);
            fputc('\n', stdout);
        }
    }
    if (n == 0)
        fprintf(stderr, "xws-fsck: clean (%lld records and index entries checked in %lld ms)\n", checked, ms);
    else
        fprintf(stderr, "xws-fsck: %zu problem(s) (%lld records and index entries checked in %lld ms)\n", n, checked, ms);
    free(p);
    return n == 0 ? 0 : EXIT_PROBLEMS;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *val;
    int opt, state = 0, json = 0;
    long timeout_ms = 60000;
    xws_buf_t areas;
    xws_buf_init(&areas);
    while ((opt = xws_cli_next(&s_cli, argc, argv, &state, &val)) != -1) {
        switch (opt) {
        case 'c':
            config_path = val;
            break;
        case 'a':
            if (s_add_area(&areas, val) != 0) {
                xws_buf_dispose(&areas);
                return xws_cli_usage_error(&s_cli, "unknown area '%s'", val);
            }
            break;
        case 'j':
            json = 1;
            break;
        case 't': {
            char *end;
            timeout_ms = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || timeout_ms < 1 || timeout_ms > 86400000) {
                xws_buf_dispose(&areas);
                return xws_cli_usage_error(&s_cli, "-t wants milliseconds between 1 and 86400000, not '%s'", val);
            }
            break;
        }
        }
    }
    if (state < argc) {
        xws_buf_dispose(&areas);
        return xws_cli_usage_error(&s_cli, "unexpected argument '%s'", argv[state]);
    }
    if (areas.len == 0)
        xws_buf_adds(&areas, "all");

    signal(SIGPIPE, SIG_IGN);
    svc_log_set_program("xws-fsck");
    svc_log_set_level(SVC_LOG_ERROR);
    int rc = EXIT_ERROR;
    xws_config_t *cfg = xws_config_load(config_path);
    svc_redis_t *redis = NULL;
    if (cfg != NULL)
        redis = svc_redis_new(xws_config_get(cfg, "redis", "unix:${run_dir}/redis.sock"), (int)timeout_ms, "xws_fsck", fsck_lua);
    if (redis != NULL && svc_redis_password_file(redis, xws_config_get(cfg, "redis_password_file", "")) != 0)
        svc_redis_destroy(&redis);
    if (redis != NULL) {
        /* Redis may be starting: keep trying for a few seconds */
        long long until = svc_now_mono_ms() + 3000;
        while (svc_redis_connect(redis) != 0 && svc_now_mono_ms() < until)
            usleep(50000);
        if (svc_redis_connect(redis) != 0) {
            fprintf(stderr, "xws-fsck: Redis at %s is unavailable\n", svc_redis_spec(redis));
        } else {
            const char *prefix = xws_config_get(cfg, "redis_prefix", "xws:");
            for (int attempt = 0; attempt < 10; attempt++) {
                long long ms = 0;
                redisReply *rep = s_check(redis, prefix, areas.data, &ms);
                if (rep == NULL)
                    break;
                if (rep->element[0]->integer >= 0) {
                    rc = s_report(rep, json, ms);
                    freeReplyObject(rep);
                    break;
                }
                freeReplyObject(rep);
                if (attempt == 9)
                    fprintf(stderr, "xws-fsck: contexts kept appearing while the check started; try again\n");
            }
        }
    }
    svc_redis_destroy(&redis);
    xws_config_destroy(&cfg);
    xws_buf_dispose(&areas);
    return rc;
}
