/* gw_log.c - access log (see gw_log.h). */
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ (self-test) */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "xws/log.h"
#include "gw_check.h"
#include "gw_log.h"

/* the longest line: 24 (time) + 1023 (path) + 39 (method) + 99 (act) + 199 (account) + numbers, with room for the client */
#define LINE_MAX_BYTES 2048

struct gw_log {
    int fd;           /* -1: disabled */
    int owned;        /* 1: close at destroy */
    char *path;       /* the file of an owned fd (for gw_log_reopen), or NULL */
    h2o_loop_t *loop; /* NULL: no timer */
    h2o_timeout_t flush_timeout;
    h2o_timeout_entry_t flush_entry;
    char *buf; /* buf[off, len) is not written yet */
    size_t off, len, cap;
    int blocked;     /* the last write would have blocked: the timer retries, not every line */
    int failing;     /* errno of the trouble being reported (EAGAIN: lines dropped, buffer full), 0 while fine */
    uint64_t lost;   /* lines lost since the last report */
    time_t when_sec; /* the second formatted in when */
    char when[24];   /* "YYYY-MM-DDTHH:MM:SS" */
};

static long long s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t s_count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    const char *end = p + n, *nl;
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL)
        k++, p = nl + 1;
    return k + (p < end); /* an unterminated tail is (part of) a line too */
}

/* Reports trouble e on stderr when it is new, and counts n lines lost. */
static void s_trouble(gw_log_t *self, int e, uint64_t n)
{
    self->lost += n;
    if (self->failing == e)
        return;
    self->failing = e;
    if (e == EAGAIN)
        xws_log(XWS_LOG_WARN, "access log: the output blocks and %d bytes wait: dropping lines until it drains", GW_LOG_MAX_BYTES);
    else
        xws_log(XWS_LOG_ERROR, "access log: cannot write: %s; dropping lines until writing works again", strerror(e));
}

/* Writes buf[off, len): 0 when all of it is out or dropped (the buffer is then empty), -1 when some waits (EAGAIN). */
static int s_write(gw_log_t *self)
{
    while (self->off < self->len) {
        ssize_t n = write(self->fd, self->buf + self->off, self->len - self->off);
        if (n > 0) {
            self->off += (size_t)n;
            self->blocked = 0;
            if (self->failing != 0) {
                xws_log(XWS_LOG_WARN, "access log: writing again; %llu line(s) lost", (unsigned long long)self->lost);
                self->failing = 0;
                self->lost = 0;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            self->blocked = 1;
            return -1;
        }
        s_trouble(self, n < 0 ? errno : EIO, s_count_lines(self->buf + self->off, self->len - self->off));
        break;
    }
    self->off = self->len = 0;
    self->blocked = 0;
    if (self->loop != NULL && h2o_timeout_is_linked(&self->flush_entry))
        h2o_timeout_unlink(&self->flush_entry);
    return 0;
}

static void s_on_flush_timer(h2o_timeout_entry_t *entry)
{
    gw_log_t *self = H2O_STRUCT_FROM_MEMBER(gw_log_t, flush_entry, entry);
    if (s_write(self) != 0) /* the output blocks: try again later */
        h2o_timeout_link(self->loop, &self->flush_timeout, &self->flush_entry);
}

/* Makes room for n more bytes: 0, or -1 when GW_LOG_MAX_BYTES would be exceeded. */
static int s_reserve(gw_log_t *self, size_t n)
{
    if (self->len + n <= self->cap)
        return 0;
    if (self->off > 0) { /* what a partial write left: move it to the front */
        memmove(self->buf, self->buf + self->off, self->len - self->off);
        self->len -= self->off;
        self->off = 0;
        if (self->len + n <= self->cap)
            return 0;
    }
    if (self->len + n > GW_LOG_MAX_BYTES)
        return -1;
    size_t cap = self->cap * 2 > GW_LOG_MAX_BYTES ? GW_LOG_MAX_BYTES : self->cap * 2;
    if (cap < self->len + n)
        cap = self->len + n;
    char *buf = realloc(self->buf, cap);
    if (buf == NULL)
        abort();
    self->buf = buf;
    self->cap = cap;
    return 0;
}

/* A log writing to fd (-1: disabled); owned: close it at destroy. */
static gw_log_t *s_new(h2o_loop_t *loop, int fd, int owned)
{
    gw_log_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    self->fd = fd;
    self->owned = owned;
    self->when_sec = (time_t)-1;
    if (fd < 0)
        return self;
    self->cap = GW_LOG_FLUSH_BYTES + LINE_MAX_BYTES;
    if ((self->buf = malloc(self->cap)) == NULL)
        abort();
    if (loop != NULL) {
        self->loop = loop;
        h2o_timeout_init(loop, &self->flush_timeout, GW_LOG_FLUSH_MS);
        self->flush_entry.cb = s_on_flush_timer;
    }
    return self;
}

gw_log_t *gw_log_new(h2o_loop_t *loop, const char *target)
{
    if (target == NULL || *target == '\0' || strcmp(target, "off") == 0)
        return s_new(NULL, -1, 0);
    if (strcmp(target, "-") == 0)
        return s_new(loop, STDOUT_FILENO, 0);
    int fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        xws_log(XWS_LOG_ERROR, "cannot open the access log %s: %s", target, strerror(errno));
        return NULL;
    }
    gw_log_t *self = s_new(loop, fd, 1);
    if ((self->path = strdup(target)) == NULL)
        abort();
    return self;
}

int gw_log_reopen(gw_log_t *self)
{
    if (self == NULL || self->path == NULL)
        return 0;
    int fd = open(self->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        xws_log(XWS_LOG_ERROR, "cannot reopen the access log %s: %s (still writing to the old file)", self->path, strerror(errno));
        return -1;
    }
    gw_log_flush(self); /* what is buffered goes to the old file (a rotated log's last lines) */
    close(self->fd);
    self->fd = fd;
    return 0;
}

void gw_log_destroy(gw_log_t **self_p)
{
    assert(self_p != NULL);
    gw_log_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->fd >= 0) {
        long long until = s_mono_ms() + GW_LOG_EXIT_WAIT_MS, left;
        while (s_write(self) != 0 && (left = until - s_mono_ms()) > 0) {
            struct pollfd pfd = {.fd = self->fd, .events = POLLOUT};
            poll(&pfd, 1, (int)left); /* EINTR or not: try again */
        }
        if (self->off < self->len) {
            self->lost += s_count_lines(self->buf + self->off, self->len - self->off);
            xws_log(XWS_LOG_WARN, "access log: the output still blocks after %d ms", GW_LOG_EXIT_WAIT_MS);
        }
        if (self->lost > 0)
            xws_log(XWS_LOG_WARN, "access log: %llu line(s) lost", (unsigned long long)self->lost);
        if (self->owned)
            close(self->fd);
    }
    if (self->loop != NULL) {
        if (h2o_timeout_is_linked(&self->flush_entry))
            h2o_timeout_unlink(&self->flush_entry);
        h2o_timeout_dispose(self->loop, &self->flush_timeout);
    }
    free(self->buf);
    free(self->path);
    free(self);
    *self_p = NULL;
}

int gw_log_flush(gw_log_t *self)
{
    if (self == NULL || self->fd < 0)
        return 0;
    return s_write(self);
}

void gw_log_escape(const char *s, size_t len, char *out, size_t size)
{
    assert(size > 0);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '\\') {
            if (o + 1 >= size)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 4 >= size)
                break;
            snprintf(out + o, size - o, "\\x%02x", c);
            o += 4;
        }
    }
    out[o] = '\0';
}

/* A line being formatted: n is the length it would have, the bytes beyond size - 1 are dropped (as snprintf). */
typedef struct {
    char *p;
    size_t n, size;
} line_t;

static void s_cat(line_t *l, const char *s, size_t len)
{
    if (l->n + 1 < l->size) {
        size_t room = l->size - 1 - l->n;
        memcpy(l->p + l->n, s, len < room ? len : room);
    }
    l->n += len;
}

/* appends the decimal form of v, at least width digits (zeros in front), with a '-' when neg */
static void s_cat_decimal(line_t *l, uint64_t v, int neg, size_t width)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0 || sizeof(tmp) - i < width);
    if (neg)
        tmp[--i] = '-';
    s_cat(l, tmp + i, sizeof(tmp) - i);
}

/*
 * Appends us microseconds in milliseconds with one decimal, the bytes printf("%.1f", us / 1000.0)
 * gives: the double nearest us / 1000 rounded to a tenth, an exact tie to the even tenth (0.25 ->
 * "0.2"). Only a remainder of exactly 50 µs is near a tie: the sign of d * 1000 - us (exact with
 * fma, d being us / 1000 rounded) says on which side of it the double lies.
 */
static void s_cat_ms(line_t *l, uint64_t us)
{
    if (us >= (uint64_t)1 << 40) { /* 12 days: never seen; printf keeps it exact */
        char text[40];
        int n = snprintf(text, sizeof(text), "%.1f", (double)us / 1000.0);
        s_cat(l, text, n > 0 ? (size_t)n : 0);
        return;
    }
    uint64_t tenths = us / 100, rest = us % 100;
    if (rest > 50) {
        tenths++;
    } else if (rest == 50) {
        double d = (double)us / 1000.0, above = fma(d, 1000.0, -(double)us);
        if (above > 0 || (above == 0 && tenths % 2 == 1))
            tenths++;
    }
    s_cat_decimal(l, tenths / 10, 0, 1);
    char frac[2] = {'.', (char)('0' + tenths % 10)};
    s_cat(l, frac, 2);
}

static void s_cat_str(line_t *l, const char *s)
{
    s_cat(l, s, strlen(s));
}

/*
 * Formats the line of e into line/size (NUL-terminated) with the time when (seconds) and ms
 * (milliseconds): "<when>.<ms>Z <client> <method> <path> act=<act> <status> <bytes> <duration>ms
 * account=<account>\n", each field escaped, "-" for an empty one. Returns its length; a line
 * longer than size - 1 is cut and still ends with a newline. The same bytes as the snprintf of
 * "%s.%03dZ %s %s %s act=%s %d %zu %.1fms account=%s\n" it replaces (the self-test compares both).
 */
static size_t s_format(const char *when, int ms, const gw_log_entry_t *e, char *line, size_t size)
{
    char method[40], path[1024], act[100], account[200];
    gw_log_escape(e->method, e->method_len, method, sizeof(method));
    gw_log_escape(e->path, e->path_len, path, sizeof(path));
    gw_log_escape(e->act, e->act_len, act, sizeof(act));
    const char *a = e->account != NULL && e->account[0] != '\0' ? e->account : "-";
    gw_log_escape(a, strlen(a), account, sizeof(account));
    line_t l = {line, 0, size};
    s_cat_str(&l, when);
    s_cat(&l, ".", 1);
    s_cat_decimal(&l, (uint64_t)ms, 0, 3);
    s_cat(&l, "Z ", 2);
    s_cat_str(&l, e->client != NULL ? e->client : "-");
    s_cat(&l, " ", 1);
    s_cat_str(&l, method[0] ? method : "-");
    s_cat(&l, " ", 1);
    s_cat_str(&l, path[0] ? path : "-");
    s_cat(&l, " act=", 5);
    s_cat_str(&l, act[0] ? act : "-");
    s_cat(&l, " ", 1);
    s_cat_decimal(&l, e->status < 0 ? (uint64_t)0 - (uint64_t)(int64_t)e->status : (uint64_t)e->status, e->status < 0, 1);
    s_cat(&l, " ", 1);
    s_cat_decimal(&l, e->bytes, 0, 1);
    s_cat(&l, " ", 1);
    s_cat_ms(&l, e->duration_us);
    s_cat(&l, "ms account=", 11);
    s_cat_str(&l, account);
    s_cat(&l, "\n", 1);
    if (l.n >= size) { /* only an absurd client string gets here: cut, keep the line */
        l.n = size - 1;
        line[l.n - 1] = '\n';
    }
    line[l.n] = '\0';
    return l.n;
}

void gw_log_access(gw_log_t *self, const gw_log_entry_t *e)
{
    if (self == NULL || self->fd < 0)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != self->when_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(self->when, sizeof(self->when), "%Y-%m-%dT%H:%M:%S", &tm);
        self->when_sec = tv.tv_sec;
    }
    char line[LINE_MAX_BYTES];
    size_t n = s_format(self->when, (int)(tv.tv_usec / 1000), e, line, sizeof(line));
    if (s_reserve(self, n) != 0) {
        s_trouble(self, EAGAIN, 1);
        return;
    }
    memcpy(self->buf + self->len, line, n);
    self->len += n;
    /* while the output blocks, the timer retries rather than every line (without a loop, every line) */
    if ((!self->blocked || self->loop == NULL) && self->len - self->off >= GW_LOG_FLUSH_BYTES && s_write(self) == 0)
        return;
    if (self->loop != NULL && !h2o_timeout_is_linked(&self->flush_entry))
        h2o_timeout_link(self->loop, &self->flush_timeout, &self->flush_entry);
}

/* ---- self-test -------------------------------------------------------------------------------------- */

static off_t s_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The whole file (NUL-terminated, caller frees), or NULL. */
static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0, k;
    char *s = malloc(cap);
    GW_CHECK(s != NULL);
    while ((k = fread(s + n, 1, cap - n - 1, f)) > 0)
        if ((n += k) + 1 == cap) {
            GW_CHECK((s = realloc(s, cap *= 2)) != NULL);
        }
    fclose(f);
    s[n] = '\0';
    *len = n;
    return s;
}

/* Entry of burst line i: path "/burst/<i>". */
static gw_log_entry_t s_burst_entry(char *path, size_t size, unsigned i)
{
    int n = snprintf(path, size, "/burst/%u", i);
    gw_log_entry_t e = {"10.0.0.1", "GET", 3, path, (size_t)n, "list", 4, 200, 123, 2500, "admin"};
    return e;
}

/* Checks that text holds complete burst lines first, first+1, ...: returns how many (-1 on a malformed or out-of-order line). */
static long s_check_burst(const char *text, size_t len, unsigned first)
{
    long k = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return -1; /* an incomplete line */
        char want[128];
        snprintf(want, sizeof(want), " 10.0.0.1 GET /burst/%lu act=list 200 123 2.5ms account=admin\n", (unsigned long)first + k);
        size_t wl = strlen(want);
        if ((size_t)(nl + 1 - p) < wl || memcmp(nl + 1 - wl, want, wl) != 0 || nl + 1 - p != 24 + (long)wl)
            return -1;
        k++;
        p = nl + 1;
    }
    return k;
}

/* Reads what the pipe holds into *text (grown), without blocking. */
static void s_drain_pipe(int fd, char **text, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 65536) {
            *cap = *cap * 2 + 65536;
            GW_CHECK((*text = realloc(*text, *cap)) != NULL);
        }
        ssize_t n = read(fd, *text + *len, *cap - *len);
        if (n <= 0)
            return;
        *len += (size_t)n;
    }
}

/* the line as the snprintf s_format replaced wrote it (the reference of its bytes) */
static size_t s_format_ref(const char *when, int ms, const gw_log_entry_t *e, char *line, size_t size)
{
    char method[40], path[1024], act[100], account[200];
    gw_log_escape(e->method, e->method_len, method, sizeof(method));
    gw_log_escape(e->path, e->path_len, path, sizeof(path));
    gw_log_escape(e->act, e->act_len, act, sizeof(act));
    const char *a = e->account != NULL && e->account[0] != '\0' ? e->account : "-";
    gw_log_escape(a, strlen(a), account, sizeof(account));
    int n = snprintf(line, size, "%s.%03dZ %s %s %s act=%s %d %zu %.1fms account=%s\n", when, ms,
                     e->client != NULL ? e->client : "-", method[0] ? method : "-", path[0] ? path : "-", act[0] ? act : "-",
                     e->status, e->bytes, (double)e->duration_us / 1000.0, account);
    GW_CHECK(n > 0);
    if ((size_t)n >= size) {
        n = (int)size - 1;
        line[n - 1] = '\n';
    }
    return (size_t)n;
}

/* s_format writes the bytes of the reference */
static void s_same_line(const char *when, int ms, const gw_log_entry_t *e, size_t size)
{
    char a[LINE_MAX_BYTES], b[LINE_MAX_BYTES];
    GW_CHECK(size <= sizeof(a));
    size_t na = s_format(when, ms, e, a, size), nb = s_format_ref(when, ms, e, b, size);
    if (na != nb || memcmp(a, b, na) != 0 || a[na] != '\0') {
        fprintf(stderr, "access log line: got '%.*s', want '%.*s'\n", (int)na, a, (int)nb, b);
        GW_CHECK(0);
    }
}

/* the hand-made formatting against printf: every duration up to 1 s and samples beyond, ties
 * included; the numbers, the empty fields, escapes, the cut of a line too long for its buffer */
static void s_format_test(void)
{
    gw_log_entry_t e = {"127.0.0.1", "GET", 3, "/x", 2, "", 0, 200, 0, 0, NULL};
    char line[LINE_MAX_BYTES];
    for (uint64_t us = 0; us <= 1000000; us++) {
        e.duration_us = us;
        char want[48];
        line_t l = {line, 0, sizeof(line)};
        s_cat_ms(&l, us);
        int n = snprintf(want, sizeof(want), "%.1f", (double)us / 1000.0);
        if (l.n != (size_t)n || memcmp(line, want, l.n) != 0) {
            fprintf(stderr, "duration %llu us: got '%.*s', want '%s'\n", (unsigned long long)us, (int)l.n, line, want);
            GW_CHECK(0);
        }
    }
    uint64_t x = 0x2545f4914f6cdd1du;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        e.duration_us = i % 2 ? (x >> (x % 64)) / 100 * 100 + 50 : x >> (x % 64); /* many near ties, all magnitudes */
        e.status = (int)(x % 1000) - (i % 7 == 0 ? 1000 : 0);
        e.bytes = (size_t)(x >> (x % 64));
        s_same_line("2026-01-01T12:00:00", (int)(x % 1000), &e, sizeof(line));
    }
    e.duration_us = UINT64_MAX;
    s_same_line("2026-01-01T12:00:00", 0, &e, sizeof(line));
    gw_log_entry_t odd = {NULL, "", 0, "/a b\\\xc3\xa9", 8, "li st", 5, 499, 12, 250, "ad\nmin"};
    s_same_line("2026-01-01T12:00:00", 7, &odd, sizeof(line));
    char client[3000];
    memset(client, 'c', sizeof(client) - 1);
    client[sizeof(client) - 1] = '\0';
    odd.client = client; /* too long: cut, still a line */
    s_same_line("2026-01-01T12:00:00", 999, &odd, sizeof(line));
    for (size_t size = 2; size < 80; size++)
        s_same_line("2026-01-01T12:00:00", 5, &e, size);
    GW_CHECK(s_format("2026-01-01T12:00:00", 5, &e, line, 40) == 39 && line[38] == '\n');
}

void gw_log_test(void)
{
    s_format_test();
    char out[32];
    gw_log_escape("/a b\\c\n\xc3\xa9", 9, out, sizeof(out));
    GW_CHECK(strcmp(out, "/a\\x20b\\x5cc\\x0a\\xc3\\xa9") == 0);
    gw_log_escape("abcdefgh", 8, out, 5);
    GW_CHECK(strcmp(out, "abcd") == 0);
    gw_log_t *log = gw_log_new(NULL, "off");
    GW_CHECK(log != NULL);
    gw_log_entry_t e = {"127.0.0.1", "GET", 3, "/x", 2, "", 0, 200, 0, 1500, NULL};
    gw_log_access(log, &e); /* disabled: writes nothing */
    GW_CHECK(gw_log_flush(log) == 0 && gw_log_flush(NULL) == 0);
    gw_log_destroy(&log);
    GW_CHECK(log == NULL);
    gw_log_destroy(&log);
    GW_CHECK(gw_log_new(NULL, "/nonexistent/dir/log") == NULL);

    /* buffered: nothing reaches the file before a flush; the flush writes the line whole */
    char path[] = "/tmp/gw-log-test-XXXXXX";
    int fd = mkstemp(path);
    GW_CHECK(fd >= 0);
    close(fd);
    log = gw_log_new(NULL, path);
    GW_CHECK(log != NULL);
    gw_log_access(log, &e);
    GW_CHECK(s_size(path) == 0);
    GW_CHECK(gw_log_flush(log) == 0);
    size_t len;
    char *text = s_slurp(path, &len);
    GW_CHECK(text != NULL && len > 24 && strchr(text, '\n') == text + len - 1);
    GW_CHECK(strcmp(text + 24, " 127.0.0.1 GET /x act=- 200 0 1.5ms account=-\n") == 0 && text[23] == 'Z' && text[10] == 'T');
    free(text);
    gw_log_access(log, &e);
    gw_log_destroy(&log); /* destroy writes what is left */
    text = s_slurp(path, &len);
    GW_CHECK(text != NULL && len > 0 && s_count_lines(text, len) == 2);
    free(text);

    /* a burst: written by the size threshold along the way, never a partial line, all of it in order at destroy */
    GW_CHECK(truncate(path, 0) == 0);
    log = gw_log_new(NULL, path);
    GW_CHECK(log != NULL);
    char bpath[64];
    unsigned nburst = 20000, nwrites = 0;
    off_t size = 0;
    for (unsigned i = 0; i < nburst; i++) {
        gw_log_entry_t be = s_burst_entry(bpath, sizeof(bpath), i);
        gw_log_access(log, &be);
        GW_CHECK(log->len - log->off < GW_LOG_FLUSH_BYTES); /* the threshold wrote it */
        off_t now = s_size(path);
        if (now != size) { /* a write: of at least GW_LOG_FLUSH_BYTES, whole lines */
            GW_CHECK(now - size >= GW_LOG_FLUSH_BYTES && log->len == 0);
            size = now;
            nwrites++;
        }
    }
    GW_CHECK(nwrites > 0); /* written along the way, a few times */
    gw_log_destroy(&log);
    text = s_slurp(path, &len);
    GW_CHECK(text != NULL && s_check_burst(text, len, 0) == (long)nburst && nwrites <= len / GW_LOG_FLUSH_BYTES);
    free(text);

    /* the loop timer writes a line shortly after it was logged (waiting on the condition, not on the clock) */
    GW_CHECK(truncate(path, 0) == 0);
    h2o_loop_t *loop = h2o_evloop_create();
    log = gw_log_new(loop, path);
    GW_CHECK(log != NULL);
    gw_log_access(log, &e);
    GW_CHECK(s_size(path) == 0 && h2o_timeout_is_linked(&log->flush_entry));
    long long until = s_mono_ms() + 30000;
    while (s_size(path) == 0 && s_mono_ms() < until)
        h2o_evloop_run(loop, 100);
    GW_CHECK(s_size(path) > 0 && !h2o_timeout_is_linked(&log->flush_entry));
    gw_log_access(log, &e); /* still buffered at destroy: written, and the timer is stopped before the loop goes */
    gw_log_destroy(&log);
    h2o_evloop_destroy(loop);
    text = s_slurp(path, &len);
    GW_CHECK(text != NULL && s_count_lines(text, len) == 2);
    free(text);

    /* "-": standard output */
    GW_CHECK(truncate(path, 0) == 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    GW_CHECK(saved >= 0 && (fd = open(path, O_WRONLY | O_APPEND)) >= 0 && dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
    close(fd);
    log = gw_log_new(NULL, "-");
    GW_CHECK(log != NULL);
    gw_log_access(log, &e);
    gw_log_destroy(&log);
    GW_CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
    close(saved);
    text = s_slurp(path, &len);
    GW_CHECK(text != NULL && len > 24 && strcmp(text + 24, " 127.0.0.1 GET /x act=- 200 0 1.5ms account=-\n") == 0);
    free(text);
    unlink(path);

    /* a non-blocking pipe that nobody reads: partial writes and EAGAIN keep every line; the timer or a flush retries */
    int p[2];
    GW_CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096); /* small, to get there soon (may be refused: the default works too) */
    log = s_new(NULL, p[1], 1);
    for (unsigned i = 0; i < nburst; i++) {
        gw_log_entry_t be = s_burst_entry(bpath, sizeof(bpath), i);
        gw_log_access(log, &be);
    }
    GW_CHECK(log->blocked && log->lost == 0 && log->len - log->off > GW_LOG_FLUSH_BYTES);
    char *got = NULL;
    size_t glen = 0, gcap = 0;
    until = s_mono_ms() + 30000;
    int rc;
    while ((rc = gw_log_flush(log)) != 0 && s_mono_ms() < until)
        s_drain_pipe(p[0], &got, &glen, &gcap);
    GW_CHECK(rc == 0 && !log->blocked && log->lost == 0);
    s_drain_pipe(p[0], &got, &glen, &gcap);
    GW_CHECK(s_check_burst(got, glen, 0) == (long)nburst);
    /* past GW_LOG_MAX_BYTES of unwritten lines, new lines are dropped and counted; what is written stays whole and in order */
    glen = 0;
    unsigned nover = 0;
    while (log->lost < 100) {
        gw_log_entry_t be = s_burst_entry(bpath, sizeof(bpath), nover++);
        gw_log_access(log, &be);
        GW_CHECK(log->len - log->off <= GW_LOG_MAX_BYTES && nover < 10 * GW_LOG_MAX_BYTES / 64);
    }
    GW_CHECK(log->failing == EAGAIN);
    until = s_mono_ms() + 30000;
    while ((rc = gw_log_flush(log)) != 0 && s_mono_ms() < until)
        s_drain_pipe(p[0], &got, &glen, &gcap);
    GW_CHECK(rc == 0);
    s_drain_pipe(p[0], &got, &glen, &gcap);
    GW_CHECK(s_check_burst(got, glen, 0) == (long)(nover - 100)); /* the first ones arrived, the last 100 were dropped */
    gw_log_access(log, &e);
    GW_CHECK(gw_log_flush(log) == 0 && log->failing == 0 && log->lost == 0); /* written again: the loss was reported */
    gw_log_destroy(&log);                                                    /* closes p[1] */
    close(p[0]);
    free(got);

    /* a write error drops the buffered lines (reported on stderr) rather than keeping them forever */
    log = gw_log_new(NULL, "/dev/full");
    GW_CHECK(log != NULL);
    gw_log_access(log, &e);
    gw_log_access(log, &e);
    GW_CHECK(gw_log_flush(log) == 0 && log->failing == ENOSPC && log->lost == 2 && log->len == 0);
    gw_log_destroy(&log);
}
