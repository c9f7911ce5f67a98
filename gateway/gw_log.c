/* gw_log.c - access log (see gw_log.h). */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "gw_check.h"
#include "gw_log.h"

struct gw_log {
    FILE *out; /* NULL: disabled */
    int owned; /* 1: fclose at destroy */
};

gw_log_t *gw_log_new(const char *target)
{
    gw_log_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    if (target == NULL || *target == '\0' || strcmp(target, "off") == 0)
        return self;
    if (strcmp(target, "-") == 0) {
        self->out = stdout;
        setvbuf(stdout, NULL, _IOLBF, 0);
        return self;
    }
    if ((self->out = fopen(target, "a")) == NULL) {
        fprintf(stderr, "xws-gateway: cannot open the access log %s: %s\n", target, strerror(errno));
        free(self);
        return NULL;
    }
    setvbuf(self->out, NULL, _IOLBF, 0);
    self->owned = 1;
    return self;
}

void gw_log_destroy(gw_log_t **self_p)
{
    assert(self_p != NULL);
    gw_log_t *self = *self_p;
    if (self == NULL)
        return;
    if (self->owned)
        fclose(self->out);
    else if (self->out != NULL)
        fflush(self->out);
    free(self);
    *self_p = NULL;
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

void gw_log_access(gw_log_t *self, const gw_log_entry_t *e)
{
    if (self == NULL || self->out == NULL)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[40], method[40], path[1024], act[100], account[200];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    gw_log_escape(e->method, e->method_len, method, sizeof(method));
    gw_log_escape(e->path, e->path_len, path, sizeof(path));
    gw_log_escape(e->act, e->act_len, act, sizeof(act));
    const char *a = e->account != NULL && e->account[0] != '\0' ? e->account : "-";
    gw_log_escape(a, strlen(a), account, sizeof(account));
    fprintf(self->out, "%s.%03dZ %s %s %s act=%s %d %zu %.1fms account=%s\n", when, (int)(tv.tv_usec / 1000),
            e->client != NULL ? e->client : "-", method[0] ? method : "-", path[0] ? path : "-", act[0] ? act : "-", e->status,
            e->bytes, (double)e->duration_us / 1000.0, account);
}

void gw_log_test(void)
{
    char out[32];
    gw_log_escape("/a b\\c\n\xc3\xa9", 9, out, sizeof(out));
    GW_CHECK(strcmp(out, "/a\\x20b\\x5cc\\x0a\\xc3\\xa9") == 0);
    gw_log_escape("abcdefgh", 8, out, 5);
    GW_CHECK(strcmp(out, "abcd") == 0);
    gw_log_t *log = gw_log_new("off");
    GW_CHECK(log != NULL);
    gw_log_entry_t e = {"127.0.0.1", "GET", 3, "/x", 2, "", 0, 200, 0, 1500, NULL};
    gw_log_access(log, &e); /* disabled: writes nothing */
    gw_log_destroy(&log);
    GW_CHECK(log == NULL);
    char path[] = "/tmp/gw-log-test-XXXXXX";
    int fd = mkstemp(path);
    GW_CHECK(fd >= 0);
    log = gw_log_new(path);
    GW_CHECK(log != NULL);
    gw_log_access(log, &e);
    gw_log_destroy(&log);
    FILE *f = fopen(path, "r");
    char line[256];
    GW_CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL);
    GW_CHECK(strstr(line, " 127.0.0.1 GET /x act=- 200 0 1.5ms account=-\n") != NULL);
    fclose(f);
    unlink(path);
    close(fd);
    GW_CHECK(gw_log_new("/nonexistent/dir/log") == NULL);
}
