/* buf.c - growable byte buffers and borrowed slices (see xws/proto.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xws/proto.h"
#include "internal.h"

xws_slice_t xws_slice(const char *s)
{
    if (s == NULL)
        return (xws_slice_t){"", 0};
    return (xws_slice_t){s, strlen(s)};
}

int xws_slice_eq(xws_slice_t a, const char *s)
{
    assert(s != NULL);
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

void xws_buf_init(xws_buf_t *b)
{
    assert(b != NULL);
    b->data = NULL;
    b->len = b->cap = 0;
}

int xws_sbuffer_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    if (sb->alloc - sb->size < len) {
        size_t n = sb->alloc != 0 ? sb->alloc * 2 : 256;
        while (n < sb->size + len)
            n *= 2;
        char *p = realloc(sb->data, n);
        if (p == NULL)
            abort();
        sb->data = p;
        sb->alloc = n;
    }
    memcpy(sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
}

void xws_buf_dispose(xws_buf_t *b)
{
    assert(b != NULL);
    free(b->data);
    xws_buf_init(b);
}

void xws_buf_reset(xws_buf_t *b)
{
    assert(b != NULL);
    b->len = 0;
}

/* makes room for n more bytes plus a NUL guard; aborts on out-of-memory */
static void s_reserve(xws_buf_t *b, size_t n)
{
    if (n >= SIZE_MAX / 2 - b->len)
        abort();
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        abort();
    b->data = p;
    b->cap = cap;
}

void xws_buf_reserve(xws_buf_t *b, size_t n)
{
    assert(b != NULL);
    s_reserve(b, n);
}

void xws_buf_add(xws_buf_t *b, const void *p, size_t n)
{
    assert(b != NULL && (p != NULL || n == 0));
    if (n == 0)
        return;
    s_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void xws_buf_adds(xws_buf_t *b, const char *s)
{
    assert(s != NULL);
    xws_buf_add(b, s, strlen(s));
}

void xws_buf_addf(xws_buf_t *b, const char *fmt, ...)
{
    assert(b != NULL && fmt != NULL);
    va_list ap;
    s_reserve(b, 64);
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if ((size_t)n >= b->cap - b->len) {
        s_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void xws_buf_test(void)
{
    xws_buf_t b;
    xws_buf_init(&b);
    CHECK(b.len == 0 && b.data == NULL);
    xws_buf_add(&b, NULL, 0);
    CHECK(b.len == 0);
    xws_buf_adds(&b, "abc");
    xws_buf_add(&b, "\0z", 2);
    CHECK(b.len == 5 && memcmp(b.data, "abc\0z", 5) == 0 && b.data[5] == '\0');
    xws_buf_reset(&b);
    CHECK(b.len == 0 && b.cap > 0);
    for (int i = 0; i < 1000; i++)
        xws_buf_addf(&b, "%d,", i);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0 && strcmp(b.data + b.len - 4, "999,") == 0);
    xws_buf_reset(&b);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xws_buf_addf(&b, "<%s>", big);
    CHECK(b.len == 1001 && b.data[0] == '<' && b.data[1000] == '>' && b.data[1001] == '\0');
    xws_buf_dispose(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);

    xws_slice_t s = xws_slice("hello");
    CHECK(s.len == 5 && xws_slice_eq(s, "hello") && !xws_slice_eq(s, "hell") && !xws_slice_eq(s, "hello!"));
    s = xws_slice(NULL);
    CHECK(s.len == 0 && xws_slice_eq(s, ""));
    CHECK(xws_slice_eq(XWS_SLICE_NULL, ""));
}
