/* svc_util.c - see svc_util.h */
#include <locale.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>
#include <wctype.h>
#include "svc_util.h"

void *svc_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

void *svc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

void *svc_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

char *svc_strdup(const char *s)
{
    return svc_strndup(s, strlen(s));
}

char *svc_strndup(const char *s, size_t n)
{
    char *p = svc_malloc(n + 1);
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

long long svc_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long svc_now_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long svc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* decodes one code point at s[*i]; -1 when invalid */
static long s_utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    long cp;
    size_t n;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xc2 && c <= 0xdf) {
        cp = c & 0x1f, n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        cp = c & 0x0f, n = 2;
    } else if (c >= 0xf0 && c <= 0xf4) {
        cp = c & 0x07, n = 3;
    } else {
        return -1;
    }
    if (*i + n >= len)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return cp;
}

long svc_utf8_len(const char *s, size_t len)
{
    long count = 0;
    for (size_t i = 0; i < len; count++)
        if (s_utf8_next((const unsigned char *)s, len, &i) < 0)
            return -1;
    return count;
}

int svc_printable(const char *s, size_t len, int multiline)
{
    for (size_t i = 0; i < len;) {
        long cp = s_utf8_next((const unsigned char *)s, len, &i);
        if (cp < 0)
            return 0;
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            if (!(multiline && (cp == '\t' || cp == '\n')))
                return 0;
        }
    }
    return 1;
}

/* the C.UTF-8 locale for towlower_l(); (locale_t)0 when the C library lacks it (ASCII folding) */
static locale_t s_utf8_locale(void)
{
    static locale_t loc;
    static int tried;
    if (!tried) {
        tried = 1;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

/*
 * Decodes s/n into lower-cased code points (out, room for n entries); returns their count. A
 * byte that does not start a valid UTF-8 sequence stands for itself (as 0x110000 + byte), so it
 * matches only the same byte.
 */
static size_t s_fold(const char *s, size_t n, uint32_t *out)
{
    locale_t loc = s_utf8_locale();
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = 1;
        unsigned c = p[i];
        if (c < 0x80) {
            cp = c;
        } else if (c >= 0xc2 && c <= 0xdf && i + 1 < n && (p[i + 1] & 0xc0) == 0x80) {
            cp = (c & 0x1fu) << 6 | (p[i + 1] & 0x3fu);
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef && i + 2 < n && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80) {
            cp = (c & 0x0fu) << 12 | (p[i + 1] & 0x3fu) << 6 | (p[i + 2] & 0x3fu);
            len = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 1;
        } else if (c >= 0xf0 && c <= 0xf4 && i + 3 < n && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80 &&
                   (p[i + 3] & 0xc0) == 0x80) {
            cp = (c & 0x07u) << 18 | (p[i + 1] & 0x3fu) << 12 | (p[i + 2] & 0x3fu) << 6 | (p[i + 3] & 0x3fu);
            len = cp >= 0x10000 && cp <= 0x10ffff ? 4 : 1;
        } else {
            cp = 0;
        }
        if (len == 1 && c >= 0x80)
            cp = 0x110000u + c;
        if (cp < 0x110000u)
            cp = loc != (locale_t)0 ? (uint32_t)towlower_l((wint_t)cp, loc) : (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        out[k++] = cp;
        i += len;
    }
    return k;
}

int svc_icontains(const char *hay, size_t haylen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return 1;
    if (nlen > haylen)
        return 0;
    uint32_t hbuf[256], nbuf[64];
    uint32_t *h = haylen <= 256 ? hbuf : svc_calloc(haylen, sizeof(*h));
    uint32_t *nd = nlen <= 64 ? nbuf : svc_calloc(nlen, sizeof(*nd));
    size_t hn = s_fold(hay, haylen, h), nn = s_fold(needle, nlen, nd);
    int found = 0;
    for (size_t i = 0; !found && i + nn <= hn; i++)
        found = memcmp(h + i, nd, nn * sizeof(*nd)) == 0;
    if (h != hbuf)
        free(h);
    if (nd != nbuf)
        free(nd);
    return found;
}

void svc_random_chars(char *buf, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet);
    unsigned limit = 256 - 256 % (unsigned)alen; /* rejection sampling: no modulo bias */
    size_t got = 0;
    while (got < n) {
        unsigned char r[64];
        if (RAND_bytes(r, sizeof(r)) != 1)
            abort();
        for (size_t k = 0; k < sizeof(r) && got < n; k++)
            if (r[k] < limit)
                buf[got++] = alphabet[r[k] % alen];
    }
    buf[n] = '\0';
}

void svc_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void svc_util_test(void)
{
    XWS_CHECK(svc_utf8_len("abc", 3) == 3);
    XWS_CHECK(svc_utf8_len("Zo\xc3\xab", 4) == 3);
    XWS_CHECK(svc_utf8_len("\xe2\x82\xac", 3) == 1);
    XWS_CHECK(svc_utf8_len("\xf0\x9f\x98\x80", 4) == 1);
    XWS_CHECK(svc_utf8_len("\xc3", 1) == -1);             /* truncated */
    XWS_CHECK(svc_utf8_len("\xe2\x82", 2) == -1);         /* truncated */
    XWS_CHECK(svc_utf8_len("\xc0\xaf", 2) == -1);         /* overlong */
    XWS_CHECK(svc_utf8_len("\xe0\x80\xaf", 3) == -1);     /* overlong */
    XWS_CHECK(svc_utf8_len("\xed\xa0\x80", 3) == -1);     /* surrogate */
    XWS_CHECK(svc_utf8_len("\xf4\x90\x80\x80", 4) == -1); /* beyond U+10FFFF */
    XWS_CHECK(svc_utf8_len("\xff", 1) == -1);
    XWS_CHECK(svc_utf8_len("", 0) == 0);
    XWS_CHECK(svc_printable("Hello, world", 12, 0));
    XWS_CHECK(!svc_printable("a\tb", 3, 0));
    XWS_CHECK(svc_printable("a\tb\nc", 5, 1));
    XWS_CHECK(!svc_printable("a\x01", 2, 1));
    XWS_CHECK(!svc_printable("a\x7f", 2, 0));
    XWS_CHECK(!svc_printable("\xc2\x85", 2, 1)); /* C1 control */
    XWS_CHECK(svc_printable("\xc2\xa0", 2, 0));
    XWS_CHECK(!svc_printable("a\0b", 3, 1));
    XWS_CHECK(!svc_printable("a\rb", 3, 1)); /* carriage return: never */
    XWS_CHECK(svc_icontains("Hello World", 11, "o w", 3));
    XWS_CHECK(svc_icontains("abc", 3, "", 0));
    XWS_CHECK(!svc_icontains("abc", 3, "abcd", 4));
    XWS_CHECK(svc_icontains("ABC", 3, "bc", 2));
    XWS_CHECK(svc_icontains("\xc3\x89lodie Caf\xc3\xa9", 13, "\xc3\xa9lodie", 7)); /* "Élodie Café" / "élodie" */
    XWS_CHECK(svc_icontains("Z\xc3\xbcrich", 7, "Z\xc3\x9cRICH", 7));              /* "Zürich" / "ZÜRICH" */
    XWS_CHECK(!svc_icontains("\xc3\xa9", 2, "e", 1));
    XWS_CHECK(svc_icontains("a\xff"
                            "b",
                            3, "\xff", 1)); /* stray bytes match exactly */
    XWS_CHECK(!svc_icontains("a\xc3"
                             "b",
                             3, "\xc3\xa9", 2));
    char buf[17];
    svc_random_chars(buf, 16, "ab");
    XWS_CHECK(strlen(buf) == 16 && strspn(buf, "ab") == 16);
    unsigned char raw[2] = {0x0f, 0xa0};
    char hex[5];
    svc_hex(raw, 2, hex);
    XWS_CHECK(strcmp(hex, "0fa0") == 0);
}
