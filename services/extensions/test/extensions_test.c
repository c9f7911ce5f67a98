/*
 * extensions_test.c - the self-test of the extensions service: the candidate arithmetic
 * (ext_next_match against a brute-force scan), then the walk against a private redis-server: the
 * document's example, overlapping ranges of several widths compared with a brute-force model on
 * random data, every refusal, and what the walk costs on a large range (Redis calls, used numbers
 * read, held at once). Last line: "N passed, M failed".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "extensions.h"
#include "svc_testredis.h"

static char s_dir[64];
static svc_redis_t *s_redis;

/* ---- a context in the store: its ranges of each type and its numbers in use ----------------------- */

typedef struct {
    const char *type;
    const char *beg, *end;
} s_range_t;

static void s_cmd(int argc, const char **argv, const size_t *lens)
{
    redisReply *r = svc_redis_command(s_redis, argc, argv, lens);
    XWS_CHECK(r != NULL && r->type != REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* stores context name with ranges (the positional record of the config service: ranges at 6-10) */
static void s_context(const char *name, const s_range_t *ranges, size_t n)
{
    static const char *const types[] = {"user", "group", "queue", "meetme", "incall"};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    msgpack_pack_array(&pk, 11);
    svc_mp_cstr(&pk, name);
    for (int i = 1; i < 6; i++)
        msgpack_pack_nil(&pk);
    for (int t = 0; t < 5; t++) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            c += strcmp(ranges[i].type, types[t]) == 0;
        msgpack_pack_array(&pk, c);
        for (size_t i = 0; i < n; i++)
            if (strcmp(ranges[i].type, types[t]) == 0) {
                msgpack_pack_array(&pk, 2);
                svc_mp_cstr(&pk, ranges[i].beg);
                svc_mp_cstr(&pk, ranges[i].end);
            }
    }
    const char *argv[] = {"HSET", "t:context:data", name, sb.data};
    size_t lens[] = {4, strlen("t:context:data"), strlen(name), sb.size};
    s_cmd(4, argv, lens);
    msgpack_sbuffer_destroy(&sb);
}

/* marks num used in context name (as xws_number_take does) */
static void s_take(const char *name, const char *num)
{
    char hkey[96], zkey[96];
    snprintf(hkey, sizeof(hkey), "t:context:numbers:%s", name);
    snprintf(zkey, sizeof(zkey), "t:context:numidx:%s", name);
    const char *h[] = {"HSET", hkey, num, "user:test"};
    s_cmd(4, h, NULL);
    const char *z[] = {"ZADD", zkey, num, num};
    s_cmd(4, z, NULL);
}

static void s_clear(const char *name)
{
    char hkey[96], zkey[96];
    snprintf(hkey, sizeof(hkey), "t:context:numbers:%s", name);
    snprintf(zkey, sizeof(zkey), "t:context:numidx:%s", name);
    const char *argv[] = {"DEL", hkey, zkey};
    s_cmd(3, argv, NULL);
}

/* ---- walking -------------------------------------------------------------------------------------- */

typedef struct {
    long long *v;
    size_t n, cap;
} s_list_t;

static void s_collect(void *arg, long long number)
{
    s_list_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap * 2 + 64;
        l->v = svc_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = number;
}

/* walks; returns the status (0 → 200 with *out, else the reply's status) */
static unsigned s_walk(const char *context, const char *type, const char *contains, size_t limit, s_list_t *out,
                       ext_walk_stats_t *st)
{
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, s_redis, "t:", 600, NULL);
    memset(out, 0, sizeof(*out));
    int rc = ext_walk_or_reply(&ctx, context, type, contains, limit, s_collect, out, st);
    unsigned status = rc == 0 ? 0 : ctx.status;
    XWS_CHECK(rc == 0 || status >= 400);
    svc_ctx_dispose(&ctx);
    return status;
}

static int s_list_is(const s_list_t *l, const long long *want, size_t n)
{
    if (l->n != n || (n > 0 && memcmp(l->v, want, n * sizeof(*want)) != 0)) {
        fprintf(stderr, "got %zu numbers:", l->n);
        for (size_t i = 0; i < l->n && i < 40; i++)
            fprintf(stderr, " %lld", l->v[i]);
        fprintf(stderr, "\nwant %zu:", n);
        for (size_t i = 0; i < n && i < 40; i++)
            fprintf(stderr, " %lld", want[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    return 1;
}

/* ---- tests ---------------------------------------------------------------------------------------- */

/* ext_next_match against a scan of every number of 1 to 4 digits, for patterns of 0 to 3 digits */
static void s_next_match(void)
{
    static const char *const patterns[] = {"", "0", "1", "9", "00", "10", "01", "99", "42", "000", "101", "909", "1234", "12345"};
    for (int d = 1; d <= 4; d++) {
        long long top = 1;
        for (int i = 0; i < d; i++)
            top *= 10;
        for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
            size_t m = strlen(patterns[p]);
            long long want = -1; /* the answer for x, computed from the top down */
            for (long long x = top - 1; x >= 0; x--) {
                char s[24];
                snprintf(s, sizeof(s), "%0*lld", d, x);
                if (strstr(s, patterns[p]) != NULL)
                    want = x;
                long long got = ext_next_match(x, d, patterns[p], m);
                if (got != want) {
                    fprintf(stderr, "next_match(%lld, %d, \"%s\") = %lld, want %lld\n", x, d, patterns[p], got, want);
                    XWS_CHECK(got == want);
                }
            }
            XWS_CHECK(ext_next_match(top, d, patterns[p], m) == -1);
        }
    }
    /* the widest numbers */
    XWS_CHECK(ext_next_match(0, 16, "9999999999999999", 16) == 9999999999999999LL);
    XWS_CHECK(ext_next_match(1, 16, "", 0) == 1);
    XWS_CHECK(ext_next_match(123, 16, "0", 1) == 123);
    XWS_CHECK(ext_next_match(5, 1, "7", 1) == 7 && ext_next_match(8, 1, "7", 1) == -1);
}

/* the document's example and the refusals */
static void s_example(void)
{
    s_context("doc", (const s_range_t[]){{"user", "100", "299"}}, 1);
    s_clear("doc");
    for (const char *const *n = (const char *const[]){"100", "103", "107", "108", NULL}; *n != NULL; n++)
        s_take("doc", *n);
    s_list_t l;
    XWS_CHECK(s_walk("doc", "user", "10", 0, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){101, 102, 104, 105, 106, 109, 110, 210}, 8));
    free(l.v);
    XWS_CHECK(s_walk("doc", "user", "10", 3, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){101, 102, 104}, 3));
    free(l.v);
    XWS_CHECK(s_walk("doc", "user", NULL, 0, &l, NULL) == 0 && l.n == 196 && l.v[0] == 101 && l.v[195] == 299);
    free(l.v);
    XWS_CHECK(s_walk("doc", "user", "", 2, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){101, 102}, 2));
    free(l.v);
    /* no range of that type, no match, a pattern longer than the numbers */
    XWS_CHECK(s_walk("doc", "group", NULL, 0, &l, NULL) == 0 && l.n == 0);
    free(l.v);
    XWS_CHECK(s_walk("doc", "user", "300", 0, &l, NULL) == 0 && l.n == 0);
    free(l.v);
    XWS_CHECK(s_walk("doc", "user", "1000", 0, &l, NULL) == 0 && l.n == 0);
    free(l.v);
    /* a number used by another type counts; another width does not ("0101" is not 101) */
    s_take("doc", "101");
    s_take("doc", "0102");
    XWS_CHECK(s_walk("doc", "user", "10", 0, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){102, 104, 105, 106, 109, 110, 210}, 7));
    free(l.v);
    /* refusals */
    XWS_CHECK(s_walk("nosuch", "user", NULL, 0, &l, NULL) == 404 && l.n == 0);
    XWS_CHECK(s_walk("doc", "users", NULL, 0, &l, NULL) == 400 && l.n == 0);
    /* single numbers, overlapping and adjacent ranges, the incall "any" entry, several widths */
    s_context("mix",
              (const s_range_t[]){{"group", "500", "510"},
                                  {"group", "505", "520"},
                                  {"group", "521", "522"},
                                  {"group", "530", ""},
                                  {"group", "0500", "0502"},
                                  {"group", "50", "51"},
                                  {"incall", "", ""},
                                  {"incall", "7000", "7001"}},
              8);
    s_clear("mix");
    s_take("mix", "0501");
    s_take("mix", "510");
    XWS_CHECK(s_walk("mix", "group", "50", 0, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){50, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509}, 11));
    free(l.v);
    XWS_CHECK(s_walk("mix", "group", "3", 0, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){503, 513, 530}, 3));
    free(l.v);
    XWS_CHECK(s_walk("mix", "incall", NULL, 0, &l, NULL) == 0);
    XWS_CHECK(s_list_is(&l, (const long long[]){7000, 7001}, 2));
    free(l.v);
}

/* the model: every value of a free candidate of some range (its text zero-padded to the range's width) */
static int s_used_has(char (*used)[8], size_t nused, const char *text)
{
    for (size_t i = 0; i < nused; i++)
        if (strcmp(used[i], text) == 0)
            return 1;
    return 0;
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void s_model(void)
{
    static const char *const types[] = {"user", "group", "queue"};
    srand(12345);
    for (int round = 0; round < 150; round++) {
        s_range_t ranges[8];
        char texts[8][2][8];
        size_t nr = (size_t)(1 + rand() % 6);
        for (size_t i = 0; i < nr; i++) {
            int d = 2 + rand() % 3;
            int top = d == 2 ? 100 : d == 3 ? 1000 : 10000;
            int lo = rand() % top, span = rand() % 3 == 0 ? 0 : rand() % (top / 4 + 1);
            int hi = lo + span < top ? lo + span : top - 1;
            snprintf(texts[i][0], 8, "%0*d", d, lo);
            if (rand() % 5 == 0)
                texts[i][1][0] = '\0'; /* a single number */
            else
                snprintf(texts[i][1], 8, "%0*d", d, hi);
            ranges[i] = (s_range_t){types[rand() % 3], texts[i][0], texts[i][1]};
        }
        s_context("rnd", ranges, nr);
        s_clear("rnd");
        size_t nused = (size_t)(rand() % 400);
        char(*used)[8] = svc_calloc(nused + 1, 8);
        for (size_t i = 0; i < nused; i++) {
            int d = 2 + rand() % 3;
            if (rand() % 2 == 0 && nr > 0) { /* mostly inside a range */
                const s_range_t *r = &ranges[rand() % nr];
                d = (int)strlen(r->beg);
                int lo = atoi(r->beg), hi = r->end[0] != '\0' ? atoi(r->end) : lo;
                snprintf(used[i], 8, "%0*d", d, lo + rand() % (hi - lo + 1));
            } else {
                snprintf(used[i], 8, "%0*d", d, rand() % (d == 2 ? 100 : d == 3 ? 1000 : 10000));
            }
            s_take("rnd", used[i]);
        }
        const char *type = types[rand() % 3];
        char pattern[4] = "";
        int plen = rand() % 4;
        for (int i = 0; i < plen; i++)
            pattern[i] = (char)('0' + rand() % 10);
        pattern[plen] = '\0';
        size_t limit = rand() % 3 == 0 ? (size_t)(1 + rand() % 30) : 0;
        /* brute force */
        s_list_t want = {0};
        for (size_t i = 0; i < nr; i++) {
            if (strcmp(ranges[i].type, type) != 0)
                continue;
            int d = (int)strlen(ranges[i].beg);
            int lo = atoi(ranges[i].beg), hi = ranges[i].end[0] != '\0' ? atoi(ranges[i].end) : lo;
            for (int x = lo; x <= hi; x++) {
                char t[8];
                snprintf(t, sizeof(t), "%0*d", d, x);
                if (strstr(t, pattern) != NULL && !s_used_has(used, nused, t))
                    s_collect(&want, x);
            }
        }
        if (want.n > 0)
            qsort(want.v, want.n, sizeof(*want.v), s_cmp_ll);
        size_t k = 0;
        for (size_t i = 0; i < want.n; i++)
            if (k == 0 || want.v[k - 1] != want.v[i])
                want.v[k++] = want.v[i];
        want.n = limit > 0 && k > limit ? limit : k;
        s_list_t got;
        ext_walk_stats_t st;
        XWS_CHECK(s_walk("rnd", type, pattern, limit, &got, &st) == 0);
        if (!s_list_is(&got, want.v, want.n)) {
            fprintf(stderr, "round %d: type %s pattern \"%s\" limit %zu, ranges:", round, type, pattern, limit);
            for (size_t i = 0; i < nr; i++)
                fprintf(stderr, " %s:%s-%s", ranges[i].type, ranges[i].beg, ranges[i].end);
            fprintf(stderr, "\n");
            XWS_CHECK(0);
        }
        XWS_CHECK(st.used <= nused + st.fetches * (EXT_BATCH_MAX + 1)); /* sanity of the counters */
        free(got.v);
        free(want.v);
        free(used);
    }
}

/*
 * The cost on a large range: user 100000-999999 with 10,000 numbers in use (every 90th). limit=10
 * reads one small batch; the full answer reads each used number about once, in a few batches,
 * never holding more than a batch, and looks at each candidate once.
 */
static void s_cost(void)
{
    s_context("big", (const s_range_t[]){{"user", "100000", "999999"}}, 1);
    s_clear("big");
    /* 10,000 used numbers, ZADD in chunks */
    char zkey[] = "t:context:numidx:big";
    for (int c = 0; c < 10; c++) {
        const char *argv[2 + 2 * 1000];
        char nums[1000][8];
        argv[0] = "ZADD";
        argv[1] = zkey;
        for (int i = 0; i < 1000; i++) {
            snprintf(nums[i], sizeof(nums[i]), "%d", 100000 + 90 * (c * 1000 + i));
            argv[2 + 2 * i] = nums[i];
            argv[3 + 2 * i] = nums[i];
        }
        s_cmd(2 + 2 * 1000, argv, NULL);
    }
    s_list_t l;
    ext_walk_stats_t st;
    XWS_CHECK(s_walk("big", "user", NULL, 10, &l, &st) == 0);
    XWS_CHECK(
        s_list_is(&l, (const long long[]){100001, 100002, 100003, 100004, 100005, 100006, 100007, 100008, 100009, 100010}, 10));
    printf("  limit=10: %zu fetches, %zu used numbers read, %zu candidates looked at\n", st.fetches, st.used, st.visited);
    XWS_CHECK(st.fetches == 1 && st.used <= 27 && st.visited == 11);
    free(l.v);
    XWS_CHECK(s_walk("big", "user", NULL, 0, &l, &st) == 0);
    printf("  full: %zu numbers, %zu fetches, %zu used numbers read, at most %zu held, %zu candidates\n", l.n, st.fetches, st.used,
           st.held_max, st.visited);
    XWS_CHECK(l.n == 900000 - 10000 && l.v[0] == 100001 && l.v[l.n - 1] == 999999);
    for (size_t i = 1; i < l.n; i++)
        XWS_CHECK(l.v[i] > l.v[i - 1] && (l.v[i] - 100000) % 90 != 0);
    XWS_CHECK(st.fetches <= 12 && st.used <= 10000 + st.fetches && st.held_max <= EXT_BATCH_MAX && st.visited == 900000);
    free(l.v);
    /* a filter that matches few numbers of the range looks at those only */
    XWS_CHECK(s_walk("big", "user", "99999", 0, &l, &st) == 0);
    printf("  number=99999: %zu numbers, %zu candidates looked at\n", l.n, st.visited);
    XWS_CHECK(l.n == 18 && st.visited == 18 && st.fetches <= 18);
    free(l.v);
    /* limit=10 after a dense run of used numbers: batches double, each used number read once or so */
    s_clear("big");
    for (int c = 0; c < 5; c++) {
        const char *argv[2 + 2 * 1000];
        char nums[1000][8];
        argv[0] = "ZADD";
        argv[1] = zkey;
        for (int i = 0; i < 1000; i++) {
            snprintf(nums[i], sizeof(nums[i]), "%d", 100000 + c * 1000 + i);
            argv[2 + 2 * i] = nums[i];
            argv[3 + 2 * i] = nums[i];
        }
        s_cmd(2 + 2 * 1000, argv, NULL);
    }
    XWS_CHECK(s_walk("big", "user", NULL, 10, &l, &st) == 0);
    printf("  limit=10 behind 5000 used: %zu fetches, %zu used numbers read\n", st.fetches, st.used);
    XWS_CHECK(l.n == 10 && l.v[0] == 105000 && l.v[9] == 105009 && st.fetches <= 9 && st.used <= 5000 + st.fetches);
    free(l.v);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
        int redis;
    } tests[] = {
        {"next match", s_next_match, 0},
        {"example (redis)", s_example, 1},
        {"model (redis)", s_model, 1},
        {"cost (redis)", s_cost, 1},
    };
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (tests[i].redis) {
            strcpy(s_dir, "/tmp/xws-extensions-test-XXXXXX");
            if (mkdtemp(s_dir) == NULL || svc_testredis_start(s_dir) != 0) {
                fprintf(stderr, "%s: cannot start redis-server\n", tests[i].name);
                failed++;
                continue;
            }
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            if (tests[i].redis) {
                char spec[128];
                snprintf(spec, sizeof(spec), "unix:%s/redis.sock", s_dir);
                s_redis = svc_redis_new(spec, 30000, "xws_extensions_test", NULL);
                XWS_CHECK(s_redis != NULL && svc_redis_connect(s_redis) == 0);
            }
            tests[i].fn();
            svc_redis_destroy(&s_redis);
            exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("%-20s %s\n", tests[i].name, ok ? "ok" : "FAILED");
        ok ? passed++ : failed++;
        if (tests[i].redis) {
            svc_testredis_stop(s_dir);
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
            if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", s_dir);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
