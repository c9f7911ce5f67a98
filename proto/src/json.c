/* json.c - JSON <-> msgpack conversion with the limits of PROTOCOL.md §7 (see xws/proto.h). */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "xws/proto.h"
#include "internal.h"

/* ---- JSON -> msgpack ------------------------------------------------------------------------- */

/* Packs j at container depth `depth` (the top value is at 0). Returns 0, or -1 when too deep. */
static int s_pack(msgpack_packer *pk, const json_t *j, int depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *val;
        if (depth + 1 > XWS_MAX_DEPTH)
            return -1;
        PACK(msgpack_pack_map(pk, (uint32_t)json_object_size(j)));
        json_object_keylen_foreach((json_t *)j, key, klen, val)
        {
            PACK(msgpack_pack_str_with_body(pk, key, klen));
            if (s_pack(pk, val, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;
        if (depth + 1 > XWS_MAX_DEPTH)
            return -1;
        PACK(msgpack_pack_array(pk, (uint32_t)json_array_size(j)));
        json_array_foreach(j, i, val)
        {
            if (s_pack(pk, val, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_STRING:
        PACK(msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j)));
        return 0;
    case JSON_INTEGER:
        PACK(msgpack_pack_int64(pk, json_integer_value(j)));
        return 0;
    case JSON_REAL:
        PACK(msgpack_pack_double(pk, json_real_value(j)));
        return 0;
    case JSON_TRUE:
        PACK(msgpack_pack_true(pk));
        return 0;
    case JSON_FALSE:
        PACK(msgpack_pack_false(pk));
        return 0;
    case JSON_NULL:
        PACK(msgpack_pack_nil(pk));
        return 0;
    }
    return -1;
}

int xws_json_to_msgpack(const char *json, size_t len, msgpack_sbuffer *out, char *errbuf, size_t errlen)
{
    assert((json != NULL || len == 0) && out != NULL && (errbuf == NULL || errlen > 0));
    json_error_t jerr;
    /* A raw NUL byte is never valid JSON (a NUL inside a string must be written \u0000), but
     * jansson stops reading at one: refuse it first. */
    const char *nul = len != 0 ? memchr(json, '\0', len) : NULL;
    if (nul != NULL) {
        int line = 1, column = 1;
        for (const char *p = json; p < nul; p++, column++)
            if (*p == '\n')
                line++, column = 0;
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "invalid JSON at line %d, column %d: NUL byte", line, column);
        return -1;
    }
    /* duplicate keys are allowed (the last one wins); NUL is allowed in strings, not in keys */
    json_t *root = json_loadb(json != NULL ? json : "", len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return -1;
    }
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, xws_sbuffer_write);
    int rc = s_pack(&pk, root, 0);
    json_decref(root);
    if (rc != 0) {
        out->size = start;
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "invalid JSON: arrays and objects nested deeper than %d levels", XWS_MAX_DEPTH);
    }
    return rc;
}

/* ---- msgpack -> JSON ------------------------------------------------------------------------- */

/*
 * What a byte of a string needs in its JSON form: 0 none (copied as it is: printable ASCII, DEL
 * included), 1 an escape (control bytes, '"' and '\\'), 2 the check of a UTF-8 sequence (a byte
 * above 0x7f starts one, or is invalid). One table lookup per byte: runs of plain bytes are
 * copied with one memcpy.
 */
static const unsigned char s_class[256] = {[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 2};

/* the two-character escapes; 0: written \u00XX */
static const char s_short_escape[256] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};

/*
 * The length of the well-formed UTF-8 sequence that starts at p (p[0] > 0x7f), n bytes being
 * readable; 0 when it is ill-formed (overlong, surrogate, above U+10FFFF, cut, bad lead or
 * continuation byte).
 */
static size_t s_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n - 1 < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return need + 1;
}

int xws_json_escape(xws_buf_t *out, const char *str, size_t n, int nul_ok)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t start = out->len;
    if (out->cap - out->len <= n + 2) /* room for the whole string when nothing needs an escape (and the NUL) */
        xws_buf_reserve(out, n + 2);
    char *o = out->data + out->len;
    *o++ = '"';
    size_t i = 0, run = 0; /* s[run, i) is a run of bytes copied as they are */
    while (i < n) {
        unsigned k = s_class[s[i]];
        if (k == 0) {
            i++;
            continue;
        }
        if (k == 2) {
            size_t m = s_utf8_seq(s + i, n - i);
            if (m == 0)
                goto fail;
            i += m;
            continue;
        }
        unsigned char c = s[i];
        if (c == 0 && !nul_ok)
            goto fail;
        memcpy(o, s + run, i - run);
        o += i - run;
        out->len = (size_t)(o - out->data);
        xws_buf_reserve(out, 6 + (n - i - 1) + 1); /* this escape, the rest unescaped, the closing quote */
        o = out->data + out->len;
        *o++ = '\\';
        if (s_short_escape[c] != 0) {
            *o++ = s_short_escape[c];
        } else {
            static const char hex[] = "0123456789abcdef";
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        run = ++i;
    }
    if (n > run) { /* s may be NULL when n is 0 */
        memcpy(o, s + run, n - run);
        o += n - run;
    }
    *o++ = '"';
    *o = '\0';
    out->len = (size_t)(o - out->data);
    return 0;
fail:
    out->len = start;
    out->data[start] = '\0';
    return -1;
}

int xws_json_string(xws_buf_t *out, const char *s, size_t n)
{
    assert(out != NULL && (s != NULL || n == 0));
    return xws_json_escape(out, s, n, 1);
}

/* Formats d with the shortest of %.15g/%.16g/%.17g that reads back as d; a real keeps a '.' or
 * an exponent so that it stays a real. -1 for NaN and infinities. */
static int s_real(xws_buf_t *out, double d)
{
    char text[40];
    if (!isfinite(d))
        return -1;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    xws_buf_adds(out, text);
    if (strpbrk(text, ".en") == NULL)
        xws_buf_add(out, ".0", 2);
    return 0;
}

/* appends the decimal form of v, with a minus sign when neg (formatted by hand: lists hold many numbers) */
static void s_decimal(xws_buf_t *out, uint64_t v, int neg)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    if (neg)
        tmp[--i] = '-';
    size_t n = sizeof(tmp) - i;
    xws_buf_reserve(out, n);
    memcpy(out->data + out->len, tmp + i, n);
    out->len += n;
    out->data[out->len] = '\0';
}

int xws_json_scalar(const msgpack_object *o, xws_buf_t *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        xws_buf_add(out, "null", 4);
        return 0;
    case MSGPACK_OBJECT_BOOLEAN:
        xws_buf_adds(out, o->via.boolean ? "true" : "false");
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return -1;
        s_decimal(out, o->via.u64, 0);
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: /* i64 < 0: its magnitude as unsigned, INT64_MIN included */
        s_decimal(out, o->via.i64 < 0 ? (uint64_t)0 - (uint64_t)o->via.i64 : (uint64_t)o->via.i64, o->via.i64 < 0);
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return s_real(out, o->via.f64);
    case MSGPACK_OBJECT_STR:
        return xws_json_string(out, o->via.str.ptr, o->via.str.size);
    default: /* containers, BIN, EXT */
        return -1;
    }
}

static int s_render(const msgpack_object *o, xws_buf_t *out, int depth)
{
    switch (o->type) {
    case MSGPACK_OBJECT_ARRAY:
        if (depth + 1 > XWS_MAX_DEPTH)
            return -1;
        xws_buf_add(out, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i != 0)
                xws_buf_add(out, ",", 1);
            if (s_render(&o->via.array.ptr[i], out, depth + 1) != 0)
                return -1;
        }
        xws_buf_add(out, "]", 1);
        return 0;
    case MSGPACK_OBJECT_MAP:
        if (depth + 1 > XWS_MAX_DEPTH)
            return -1;
        xws_buf_add(out, "{", 1);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            /* PROTOCOL.md §7: no NUL in keys (JSON readers such as jansson refuse it) */
            if (kv->key.type != MSGPACK_OBJECT_STR ||
                (kv->key.via.str.size != 0 && memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size) != NULL))
                return -1;
            if (i != 0)
                xws_buf_add(out, ",", 1);
            if (xws_json_string(out, kv->key.via.str.ptr, kv->key.via.str.size) != 0)
                return -1;
            xws_buf_add(out, ":", 1);
            if (s_render(&kv->val, out, depth + 1) != 0)
                return -1;
        }
        xws_buf_add(out, "}", 1);
        return 0;
    default:
        return xws_json_scalar(o, out);
    }
}

int xws_msgpack_to_json(const msgpack_object *o, xws_buf_t *out)
{
    assert(o != NULL && out != NULL);
    return s_render(o, out, 0);
}

/* ---- self-test ------------------------------------------------------------------------------- */

static void s_same_raw(const char *mp, size_t len, int rc, const xws_buf_t *out);

/* JSON text -> msgpack -> JSON text; returns the rendering in out (reset first), or -1 */
static int s_roundtrip(const char *json, size_t len, xws_buf_t *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    xws_buf_reset(out);
    char errbuf[200];
    int rc = xws_json_to_msgpack(json, len, &sb, errbuf, sizeof(errbuf));
    if (rc == 0) {
        msgpack_unpacked u;
        const char *err;
        CHECK(xws_msgpack_decode(&u, sb.data, sb.size, XWS_MAX_DEPTH, &err) == 0);
        rc = xws_msgpack_to_json(&u.data, out);
        msgpack_unpacked_destroy(&u);
        CHECK(rc == 0); /* whatever JSON gives has a JSON form */
        s_same_raw(sb.data, sb.size, rc, out);
    } else {
        CHECK(sb.size == 0 && strncmp(errbuf, "invalid JSON", 12) == 0);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* the one-pass rendering of mp/len gives what the tree rendering gave (rc, and out when 0) */
static void s_same_raw(const char *mp, size_t len, int rc, const xws_buf_t *out)
{
    xws_buf_t raw;
    const char *err = NULL;
    xws_buf_init(&raw);
    int rrc = xws_msgpack_raw_to_json(mp, len, &raw, &err);
    CHECK(rrc == rc && (rc != 0 || (raw.len == out->len && memcmp(raw.data, out->data, out->len) == 0)));
    CHECK(rc == 0 || err != NULL);
    xws_buf_dispose(&raw);
}

/* renders a one-object msgpack buffer to JSON; -1 when it has no JSON form (both renderings checked) */
static int s_render_raw(const char *mp, size_t len, xws_buf_t *out)
{
    msgpack_unpacked u;
    const char *err;
    xws_buf_reset(out);
    CHECK(xws_msgpack_decode(&u, mp, len, 64, &err) == 0);
    int rc = xws_msgpack_to_json(&u.data, out);
    msgpack_unpacked_destroy(&u);
    s_same_raw(mp, len, rc, out);
    return rc;
}

static void s_nest_json(xws_buf_t *b, int depth, char open, char close)
{
    xws_buf_reset(b);
    for (int i = 0; i < depth; i++)
        xws_buf_add(b, open == '{' ? "{\"k\":" : "[", open == '{' ? 5 : 1);
    xws_buf_add(b, "1", 1);
    for (int i = 0; i < depth; i++)
        xws_buf_add(b, &close, 1);
}

/* 1 when p/n is well-formed UTF-8: the reference of the escaper's own check (byte by byte) */
static int s_ref_utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t m = 0;
        for (size_t len = 2; len <= 4 && len <= n - i && m == 0; len++) { /* decode, then refuse what is not canonical */
            unsigned c = p[i],
                     lead_bits = len == 2   ? 0x1f
                                 : len == 3 ? 0x0f
                                            : 0x07,
                     prefix = len == 2   ? 0xc0
                              : len == 3 ? 0xe0
                                         : 0xf0;
            if ((c & ~lead_bits & 0xff) != prefix)
                continue;
            uint32_t cp = c & lead_bits;
            size_t k;
            for (k = 1; k < len && (p[i + k] & 0xc0) == 0x80; k++)
                cp = cp << 6 | (p[i + k] & 0x3f);
            uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
            if (k == len && cp >= min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff))
                m = len;
        }
        if (m == 0)
            return 0;
        i += m;
    }
    return 1;
}

/* the escaper as first written (one byte at a time, printf for \u00XX): its output must not change */
static int s_ref_string(xws_buf_t *out, const char *s, size_t n)
{
    if (!s_ref_utf8_ok((const unsigned char *)s, n))
        return -1;
    xws_buf_add(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : NULL;
        if (e != NULL)
            xws_buf_adds(out, e);
        else if (c < 0x20)
            xws_buf_addf(out, "\\u%04x", c);
        else
            xws_buf_add(out, &s[i], 1);
    }
    xws_buf_add(out, "\"", 1);
    return 0;
}

/* xws_json_string appends to what out holds exactly what the reference appends, or refuses what it refuses */
static void s_same_string(const char *s, size_t n)
{
    xws_buf_t a, b;
    xws_buf_init(&a);
    xws_buf_init(&b);
    xws_buf_adds(&a, "[1,");
    xws_buf_adds(&b, "[1,");
    int ra = xws_json_string(&a, s, n), rb = s_ref_string(&b, s, n);
    if (ra != rb || a.len != b.len || memcmp(a.data, b.data, a.len) != 0 || a.data[a.len] != '\0') {
        fprintf(stderr, "json string of %zu bytes: got %d '%s', want %d '%s'\n", n, ra, a.data, rb, b.data);
        CHECK(0);
    }
    /* a map key: the same, NUL refused */
    xws_buf_reset(&a);
    int rk = xws_json_escape(&a, s, n, 0);
    CHECK(rk == (rb == 0 && (n == 0 || memchr(s, '\0', n) == NULL) ? 0 : -1));
    CHECK(rk != 0 || (a.len == b.len - 3 && memcmp(a.data, b.data + 3, a.len) == 0));
    CHECK(rk == 0 || (a.len == 0 && a.data[0] == '\0'));
    xws_buf_dispose(&a);
    xws_buf_dispose(&b);
}

/* the escaper against its reference: every byte alone and between others, the edges of UTF-8,
 * long strings that grow the buffer after an escape, and random strings */
static void s_string_test(void)
{
    char s[8];
    for (int c = 0; c < 256; c++) {
        s[0] = (char)c;
        s_same_string(s, 1);
        memcpy(s, "ab", 2);
        s[2] = (char)c;
        memcpy(s + 3, "cd", 2);
        s_same_string(s, 5);
        for (int c2 = 0x80; c2 < 0x100; c2 += 0x0f) { /* two-byte sequences, valid and not */
            s[0] = (char)c;
            s[1] = (char)c2;
            s_same_string(s, 2);
        }
    }
    xws_buf_t out;
    xws_buf_init(&out);
    /* every control byte: the short escapes, else \u00XX in lower case; DEL, "/" and U+2028 are kept */
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"\0", 1, "\"\\u0000\""},
        {"\x01", 1, "\"\\u0001\""},
        {"\x1f", 1, "\"\\u001f\""},
        {"\x0b", 1, "\"\\u000b\""},
        {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
        {"\"\\", 2, "\"\\\"\\\\\""},
        {"\x7f/", 2, "\"\x7f/\""},
        {"\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\xe2\x80\xa8\xe2\x80\xa9\""},
        {"\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""},
        {"", 0, "\"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xws_buf_reset(&out);
        CHECK(xws_json_string(&out, cases[i].in, cases[i].len) == 0 && strcmp(out.data, cases[i].out) == 0);
        s_same_string(cases[i].in, cases[i].len);
    }
    /* invalid UTF-8 is refused, out unchanged */
    static const char *const bad[] = {"\x80",
                                      "\xbf",
                                      "\xc0\x80",
                                      "\xc1\xbf",
                                      "\xe0\x80\xaf",
                                      "\xed\xa0\x80",
                                      "\xed\xbf\xbf",
                                      "\xf0\x80\x80\x80",
                                      "\xf4\x90\x80\x80",
                                      "\xf5\x80\x80\x80",
                                      "\xff",
                                      "\xe2\x82",
                                      "a\xc3",
                                      "\xc3(",
                                      "\xe2\x28\xa1",
                                      "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xws_buf_reset(&out);
        xws_buf_adds(&out, "x");
        CHECK(xws_json_string(&out, bad[i], strlen(bad[i])) == -1 && out.len == 1 && strcmp(out.data, "x") == 0);
        s_same_string(bad[i], strlen(bad[i]));
    }
    CHECK(xws_json_string(&out, NULL, 0) == 0 && strcmp(out.data, "x\"\"") == 0);
    /* long strings: all escapes (the buffer grows after each run), none, and mixed with UTF-8 */
    char big[5000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 32);
    s_same_string(big, sizeof(big));
    memset(big, 'a', sizeof(big));
    s_same_string(big, sizeof(big));
    for (size_t i = 0; i + 3 <= sizeof(big); i += 7)
        memcpy(big + i, i % 2 ? "\xc3\xa9\n" : "\"\xe2\x82", 3);
    s_same_string(big, sizeof(big) - 2);
    /* random strings over the bytes that matter (xorshift: the same strings every run) */
    static const unsigned char alphabet[] = {0x00, 0x01, 0x08, 0x09, 0x0a, 0x1f, 0x20, '"',  '/',  '\\',
                                             'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
                                             0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(x % 24);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            big[i] = (char)alphabet[x % sizeof(alphabet)];
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        s_same_string(big, n);
    }
    xws_buf_dispose(&out);
}

void xws_json_test(void)
{
    s_string_test();
    xws_buf_t out, in;
    xws_buf_init(&out);
    xws_buf_init(&in);
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"b\": 1, \"a\": [true, false, null], \"c\": \"x\"}", "{\"b\":1,\"a\":[true,false,null],\"c\":\"x\"}"},
        {"  42 ", "42"},
        {"-9223372036854775808", "-9223372036854775808"},
        {"9223372036854775807", "9223372036854775807"},
        {"3.0", "3.0"},
        {"1E2", "100.0"},
        {"0.1", "0.1"},
        {"-0.0", "-0.0"},
        {"1e300", "1e+300"},
        {"1.5e-7", "1.5e-07"},
        {"123456789.123456789", "123456789.12345679"},
        {"\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"", "\"é/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\""},
        {"\"a\\u0000b\"", "\"a\\u0000b\""},
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
        {"{\"a\": 1, \"a\": 2}", "{\"a\":2}"},
        {"[]", "[]"},
        {"{}", "{}"},
        {"\"\"", "\"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (s_roundtrip(cases[i].in, strlen(cases[i].in), &out) != 0 || strcmp(out.data, cases[i].out) != 0) {
            fprintf(stderr, "json case %zu: got '%s', want '%s'\n", i, out.data != NULL ? out.data : "(error)", cases[i].out);
            CHECK(0);
        }
    }
    static const char *const bad[] = {"",
                                      " ",
                                      "{",
                                      "[1,]",
                                      "01",
                                      "1.",
                                      "\"\\u0000\"x",
                                      "nan",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "1e400",
                                      "{\"a\\u0000\":1}",
                                      "\"\xff\"",
                                      "\"\xed\xa0\x80\"",
                                      "[1] [2]",
                                      "{\"a\" 1}",
                                      "'x'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (s_roundtrip(bad[i], strlen(bad[i]), &out) != -1) {
            fprintf(stderr, "json bad case %zu accepted: '%s'\n", i, bad[i]);
            CHECK(0);
        }
    }
    /* the error text names the place */
    char errbuf[120];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(xws_json_to_msgpack("{\"a\":\n  x}", 10, &sb, errbuf, sizeof(errbuf)) == -1);
    CHECK(strncmp(errbuf, "invalid JSON at line 2, column ", 31) == 0);
    CHECK(xws_json_to_msgpack("[1,", 3, &sb, errbuf, 8) == -1 && strlen(errbuf) == 7); /* truncated detail */
    CHECK(xws_json_to_msgpack("[1,", 3, &sb, NULL, 0) == -1 && sb.size == 0);
    CHECK(xws_json_to_msgpack(NULL, 0, &sb, NULL, 0) == -1);
    /* a NUL byte inside the text is not JSON */
    CHECK(xws_json_to_msgpack("[1]\0", 4, &sb, NULL, 0) == -1);
    msgpack_sbuffer_destroy(&sb);

    /* depth: 32 levels pass both ways, 33 do not */
    s_nest_json(&in, XWS_MAX_DEPTH, '[', ']');
    CHECK(s_roundtrip(in.data, in.len, &out) == 0 && out.len == in.len);
    s_nest_json(&in, XWS_MAX_DEPTH, '{', '}');
    CHECK(s_roundtrip(in.data, in.len, &out) == 0 && out.len == in.len);
    s_nest_json(&in, XWS_MAX_DEPTH + 1, '[', ']');
    CHECK(s_roundtrip(in.data, in.len, &out) == -1);
    s_nest_json(&in, 5000, '{', '}');
    CHECK(s_roundtrip(in.data, in.len, &out) == -1);
    {
        msgpack_sbuffer deep;
        msgpack_sbuffer_init(&deep);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &deep, msgpack_sbuffer_write);
        for (int i = 0; i < XWS_MAX_DEPTH + 1; i++)
            PACK(msgpack_pack_array(&pk, 1));
        PACK(msgpack_pack_nil(&pk));
        CHECK(s_render_raw(deep.data, deep.size, &out) == -1);
        CHECK(s_render_raw(deep.data + 1, deep.size - 1, &out) == 0);
        msgpack_sbuffer_destroy(&deep);
    }

    /* msgpack values without a JSON form */
    CHECK(s_render_raw("\xc4\x01x", 3, &out) == -1);              /* bin */
    CHECK(s_render_raw("\xd4\x01x", 3, &out) == -1);              /* ext */
    CHECK(s_render_raw("\x81\x01\x01", 3, &out) == -1);           /* int key */
    CHECK(s_render_raw("\xcf\x80\0\0\0\0\0\0\0", 9, &out) == -1); /* > INT64_MAX */
    CHECK(s_render_raw("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, &out) == 0 && strcmp(out.data, "9223372036854775807") == 0);
    CHECK(s_render_raw("\xcb\x7f\xf8\0\0\0\0\0\0", 9, &out) == -1); /* NaN */
    CHECK(s_render_raw("\xcb\x7f\xf0\0\0\0\0\0\0", 9, &out) == -1); /* +Inf */
    CHECK(s_render_raw("\xca\xff\x80\0\0", 5, &out) == -1);         /* float32 -Inf */
    CHECK(s_render_raw("\xca\x3f\xc0\0\0", 5, &out) == 0 && strcmp(out.data, "1.5") == 0);
    CHECK(s_render_raw("\xa2\xc3\x28", 3, &out) == -1);             /* bad UTF-8 */
    CHECK(s_render_raw("\xa3\xe0\x80\xaf", 4, &out) == -1);         /* overlong */
    CHECK(s_render_raw("\xa4\xf4\x90\x80\x80", 5, &out) == -1);     /* > U+10FFFF */
    CHECK(s_render_raw("\xa3\xed\xa0\x80", 4, &out) == -1);         /* surrogate */
    CHECK(s_render_raw("\xa2\xe2\x82", 3, &out) == -1);             /* cut sequence */
    CHECK(s_render_raw("\x81\xa2\xc3\x28\x01", 5, &out) == -1);     /* bad UTF-8 key */
    CHECK(s_render_raw("\x81\xa3\x61\x00\x62\x01", 6, &out) == -1); /* NUL in a key */
    CHECK(s_render_raw("\x81\xa3\x61\x01\x62\x01", 6, &out) == 0 && strcmp(out.data, "{\"a\\u0001b\":1}") == 0);
    CHECK(s_render_raw("\xa4\xf0\x9f\x98\x80", 5, &out) == 0 && strcmp(out.data, "\"\xf0\x9f\x98\x80\"") == 0);
    CHECK(s_render_raw("\x92\xd0\x85\xc2", 4, &out) == 0 && strcmp(out.data, "[-123,false]") == 0);
    CHECK(s_render_raw("\x82\xa1z\xc0\xa1\x61\x90", 7, &out) == 0 && strcmp(out.data, "{\"z\":null,\"a\":[]}") == 0);

    /* reals read back exactly */
    double samples[] = {0.1, 1.0 / 3, 2.0 / 3, 1e-310, 5e-324, 1.7976931348623157e308, 123456.789, -2.5e-5, 4503599627370496.5};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        xws_buf_reset(&out);
        msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = samples[i]};
        CHECK(xws_msgpack_to_json(&o, &out) == 0 && strtod(out.data, NULL) == samples[i]);
        CHECK(strpbrk(out.data, ".e") != NULL);
    }

    /* every truncation of a JSON text is handled */
    const char *text = "{\"name\":\"Zo\xc3\xab\",\"n\":[1,-2.5e3,{\"x\":null}],\"t\":true,\"s\":\"\\u20ac\\n\"}";
    for (size_t n = 0; n <= strlen(text); n++)
        s_roundtrip(text, n, &out);
    CHECK(s_roundtrip(text, strlen(text), &out) == 0);
    CHECK(strcmp(out.data, "{\"name\":\"Zo\xc3\xab\",\"n\":[1,-2500.0,{\"x\":null}],\"t\":true,\"s\":\"\xe2\x82\xac\\n\"}") == 0);

    xws_buf_dispose(&out);
    xws_buf_dispose(&in);
}
