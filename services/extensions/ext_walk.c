/* ext_walk.c - the free-number walk of the extensions service; see extensions.h */
#include <stdlib.h>
#include <string.h>
#include "extensions.h"

/* an interval of numbers of one width: lo..hi, texts zero-padded to the group's digits */
typedef struct {
    long long lo, hi;
} s_iv_t;

/*
 * The merged intervals of one width, with the walk's position and the used numbers of that width
 * read ahead: used[0..nused) holds every used number in [known_lo, known_hi], ascending.
 */
typedef struct {
    int digits;
    s_iv_t *iv;
    size_t niv, k;  /* intervals; the current one */
    long long x;    /* the next value to look at */
    long long next; /* the next free candidate (valid when has_next) */
    int has_next, done;
    long long *used;
    size_t nused, pos, batch;
    long long known_lo, known_hi; /* known_hi < known_lo: nothing known */
} s_group_t;

static const long long s_pow10[] = {1LL,
                                    10LL,
                                    100LL,
                                    1000LL,
                                    10000LL,
                                    100000LL,
                                    1000000LL,
                                    10000000LL,
                                    100000000LL,
                                    1000000000LL,
                                    10000000000LL,
                                    100000000000LL,
                                    1000000000000LL,
                                    10000000000000LL,
                                    100000000000000LL,
                                    1000000000000000LL,
                                    10000000000000000LL};

long long ext_next_match(long long x, int digits, const char *pattern, size_t m)
{
    if (x < 0 || digits < 1 || digits > SVC_NUMBER_MAX_DIGITS || x >= s_pow10[digits])
        return -1;
    if (m == 0)
        return x;
    if (m > (size_t)digits)
        return -1;
    char s[24];
    snprintf(s, sizeof(s), "%0*lld", digits, x);
    long long best = -1;
    size_t d = (size_t)digits;
    for (size_t i = 0; i + m <= d; i++) {
        int c = memcmp(pattern, s + i, m);
        if (c == 0)
            return x; /* x itself contains it */
        long long pre = 0;
        for (size_t j = 0; j < i; j++)
            pre = pre * 10 + (s[j] - '0');
        if (c < 0) { /* the same prefix cannot hold it: the next prefix can */
            if (++pre >= s_pow10[i])
                continue;
        }
        long long p = 0;
        for (size_t j = 0; j < m; j++)
            p = p * 10 + (pattern[j] - '0');
        long long cand = (pre * s_pow10[m] + p) * s_pow10[d - i - m]; /* prefix, pattern, zeros */
        if (best < 0 || cand < best)
            best = cand;
    }
    return best;
}

static int s_cmp_iv(const void *a, const void *b)
{
    const s_iv_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* reads the used numbers of g's width from `from` to the end of the current interval, in a batch */
static int s_fetch_or_reply(svc_ctx_t *ctx, const char *idxkey, s_group_t *g, long long from, ext_walk_stats_t *st)
{
    long long upto = g->iv[g->k].hi;
    char min[24], max[24], count[24];
    snprintf(min, sizeof(min), "%lld", from);
    snprintf(max, sizeof(max), "%lld", upto);
    snprintf(count, sizeof(count), "%zu", g->batch);
    const char *argv[] = {"ZRANGEBYSCORE", idxkey, min, max, "LIMIT", "0", count};
    redisReply *r = svc_redis_command(ctx->redis, 7, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        svc_reply_redis_failure(ctx, r, "reading the numbers in use");
        freeReplyObject(r);
        return -1;
    }
    st->fetches++;
    st->used += r->elements;
    g->used = svc_realloc(g->used, (r->elements > 0 ? r->elements : 1) * sizeof(*g->used));
    g->nused = 0;
    g->pos = 0;
    long long last = from;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > SVC_NUMBER_MAX_DIGITS)
            continue;
        long long v = 0;
        int digits_only = 1;
        for (size_t j = 0; j < e->len; j++) {
            if (e->str[j] < '0' || e->str[j] > '9')
                digits_only = 0;
            else
                v = v * 10 + (e->str[j] - '0');
        }
        if (!digits_only)
            continue;
        if (v > last)
            last = v;
        if (e->len == (size_t)g->digits && v >= from && (g->nused == 0 || v > g->used[g->nused - 1]))
            g->used[g->nused++] = v; /* "0150" is not "150": only this width counts */
    }
    g->known_lo = from;
    /* a full batch may have cut the members of its last score: what is below it is complete */
    if (r->elements < g->batch)
        g->known_hi = upto;
    else /* a batch holds more members than one score can have (one per width), so last > from */
        g->known_hi = last > from ? last - 1 : from;
    if (g->nused > st->held_max)
        st->held_max = g->nused;
    freeReplyObject(r);
    if (g->batch < EXT_BATCH_MAX)
        g->batch *= 2;
    return 0;
}

/* sets g->next to g's next free candidate (or g->done); 0, or -1 with the reply set */
static int s_peek_or_reply(svc_ctx_t *ctx, const char *idxkey, s_group_t *g, const char *pattern, size_t m, ext_walk_stats_t *st)
{
    while (!g->has_next && !g->done) {
        if (g->k >= g->niv) {
            g->done = 1;
            break;
        }
        const s_iv_t *iv = &g->iv[g->k];
        if (g->x < iv->lo)
            g->x = iv->lo;
        long long c = g->x <= iv->hi ? ext_next_match(g->x, g->digits, pattern, m) : -1;
        if (c < 0 || c > iv->hi) {
            g->k++;
            continue;
        }
        st->visited++;
        if (c < g->known_lo || c > g->known_hi) {
            if (s_fetch_or_reply(ctx, idxkey, g, c, st) != 0)
                return -1;
        }
        while (g->pos < g->nused && g->used[g->pos] < c)
            g->pos++;
        g->x = c + 1;
        if (g->pos < g->nused && g->used[g->pos] == c)
            continue; /* in use */
        g->next = c;
        g->has_next = 1;
    }
    return 0;
}

int ext_walk_or_reply(svc_ctx_t *ctx, const char *context, const char *type, const char *contains, size_t limit, ext_emit_fn emit,
                      void *arg, ext_walk_stats_t *stats)
{
    ext_walk_stats_t local;
    ext_walk_stats_t *st = stats != NULL ? stats : &local;
    memset(st, 0, sizeof(*st));
    svc_range_t *ranges;
    size_t nr;
    if (svc_context_ranges_or_reply(ctx, context, type, &ranges, &nr) != 0)
        return -1;
    const char *pattern = contains != NULL ? contains : "";
    size_t m = strlen(pattern);
    /* one group per width; its intervals sorted and merged (ranges may overlap) */
    s_group_t groups[SVC_NUMBER_MAX_DIGITS + 1];
    memset(groups, 0, sizeof(groups));
    for (size_t i = 0; i < nr; i++) {
        size_t d = strlen(ranges[i].beg);
        if (d == 0)
            continue; /* an incall "any DID" entry names no number */
        const char *end = ranges[i].end[0] != '\0' ? ranges[i].end : ranges[i].beg;
        if (strlen(end) != d || strspn(ranges[i].beg, "0123456789") != d || strspn(end, "0123456789") != d)
            continue; /* not a range of numbers (the context service never stores one) */
        s_group_t *g = &groups[d];
        g->iv = svc_realloc(g->iv, (g->niv + 1) * sizeof(*g->iv));
        g->iv[g->niv++] = (s_iv_t){strtoll(ranges[i].beg, NULL, 10), strtoll(end, NULL, 10)};
    }
    free(ranges);
    for (int d = 1; d <= SVC_NUMBER_MAX_DIGITS; d++) {
        s_group_t *g = &groups[d];
        g->digits = d;
        g->batch = limit > 0 && limit + 17 < EXT_BATCH_FIRST ? limit + 17 : EXT_BATCH_FIRST; /* > 16 members */
        g->known_lo = 0;
        g->known_hi = -1;
        if (g->niv == 0) {
            g->done = 1;
            continue;
        }
        qsort(g->iv, g->niv, sizeof(*g->iv), s_cmp_iv);
        size_t k = 0;
        for (size_t i = 1; i < g->niv; i++) {
            if (g->iv[i].lo <= g->iv[k].hi + 1) {
                if (g->iv[i].hi > g->iv[k].hi)
                    g->iv[k].hi = g->iv[i].hi;
            } else {
                g->iv[++k] = g->iv[i];
            }
        }
        g->niv = k + 1;
        g->x = g->iv[0].lo;
    }
    const char *idxkey = svc_number_idx_key(ctx, context);
    int active[SVC_NUMBER_MAX_DIGITS];
    size_t nactive = 0;
    for (int d = 1; d <= SVC_NUMBER_MAX_DIGITS; d++)
        if (!groups[d].done)
            active[nactive++] = d;
    int rc = 0;
    size_t found = 0;
    while (rc == 0 && nactive > 0 && (limit == 0 || found < limit)) {
        /* the smallest candidate of every width: widths overlap in value only with leading zeros */
        long long min = -1;
        for (size_t i = 0; i < nactive && rc == 0; i++) {
            s_group_t *g = &groups[active[i]];
            rc = s_peek_or_reply(ctx, idxkey, g, pattern, m, st);
            if (rc == 0 && g->has_next && (min < 0 || g->next < min))
                min = g->next;
        }
        if (rc != 0 || min < 0)
            break;
        size_t k = 0;
        for (size_t i = 0; i < nactive; i++) {
            s_group_t *g = &groups[active[i]];
            if (g->has_next && g->next == min)
                g->has_next = 0; /* one answer per value */
            if (!g->done)
                active[k++] = active[i];
        }
        nactive = k;
        emit(arg, min);
        found++;
    }
    for (int d = 0; d <= SVC_NUMBER_MAX_DIGITS; d++) {
        free(groups[d].iv);
        free(groups[d].used);
    }
    return rc;
}
