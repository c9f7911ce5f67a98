/*
 * mpdecode.c - a strict msgpack decoder into msgpack-c's object model (see xws/proto.h).
 *
 * msgpack-c's own msgpack_unpack_next() stops at 32 nested containers (MSGPACK_EMBED_STACK_SIZE)
 * and reports that as out-of-memory; a request envelope carrying a body of the allowed depth 32
 * needs 33 levels. This decoder takes the depth limit as a parameter, checks every length against
 * the bytes that remain before allocating anything (a 5-byte "array of 4 billion" allocates
 * nothing), and says why it refused the input.
 */
#include <assert.h>
#include <string.h>
#include "xws/proto.h"
#include "internal.h"

typedef struct {
    const unsigned char *p, *end;
    msgpack_zone *zone; /* NULL: validate only (or render, with json) */
    xws_buf_t *json;    /* not NULL: render each object as JSON into it, build nothing */
    int max_depth;
    const char *err;
} dec_t;

/* appends p/n to b: the renderer's xws_buf_add, inline, leaving room for the NUL written at the end */
static inline void s_put(xws_buf_t *b, const char *p, size_t n)
{
    if (b->cap - b->len <= n)
        xws_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void s_putc(xws_buf_t *b, char c)
{
    if (b->cap - b->len <= 1)
        xws_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

static int s_fail(dec_t *d, const char *why)
{
    d->err = why;
    return -1;
}

/* reads an n-byte big-endian unsigned integer */
static int s_be(dec_t *d, size_t n, uint64_t *out)
{
    if ((size_t)(d->end - d->p) < n)
        return s_fail(d, "truncated");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | d->p[i];
    d->p += n;
    *out = v;
    return 0;
}

/* takes n raw bytes */
static int s_raw(dec_t *d, uint64_t n, const char **ptr)
{
    if ((uint64_t)(d->end - d->p) < n)
        return s_fail(d, "truncated");
    *ptr = (const char *)d->p;
    d->p += n;
    return 0;
}

static void *s_alloc(dec_t *d, size_t size)
{
    if (size == 0)
        return NULL;
    void *p = msgpack_zone_malloc(d->zone, size);
    if (p == NULL)
        abort();
    return p;
}

static int s_obj(dec_t *d, msgpack_object *o, int depth);

static int s_array(dec_t *d, msgpack_object *o, uint64_t n, int depth)
{
    if (depth + 1 > d->max_depth)
        return s_fail(d, "too deep");
    if ((uint64_t)(d->end - d->p) < n) /* every element takes at least one byte */
        return s_fail(d, "truncated");
    if (d->json != NULL) {
        s_putc(d->json, '[');
        for (uint64_t i = 0; i < n; i++) {
            if (i != 0)
                s_putc(d->json, ',');
            if (s_obj(d, NULL, depth + 1) != 0)
                return -1;
        }
        s_putc(d->json, ']');
        return 0;
    }
    msgpack_object *items = NULL;
    if (o != NULL) {
        items = s_alloc(d, (size_t)n * sizeof(*items));
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = items;
    }
    for (uint64_t i = 0; i < n; i++)
        if (s_obj(d, items != NULL ? &items[i] : NULL, depth + 1) != 0)
            return -1;
    return 0;
}

/* JSON rendering of a map's key: a str without NUL (PROTOCOL.md §7), or -1 (no JSON form) */
static int s_json_key(dec_t *d)
{
    if (d->p == d->end)
        return s_fail(d, "truncated");
    unsigned char c = *d->p++;
    uint64_t n;
    const char *ptr;
    if (c >= 0xa0 && c <= 0xbf)
        n = c & 0x1f;
    else if (c >= 0xd9 && c <= 0xdb) {
        if (s_be(d, (size_t)1 << (c - 0xd9), &n) != 0)
            return -1;
    } else
        return s_fail(d, "no JSON form");
    if (s_raw(d, n, &ptr) != 0)
        return -1;
    if (xws_json_escape(d->json, ptr, (size_t)n, 0) != 0)
        return s_fail(d, "no JSON form");
    return 0;
}

static int s_map(dec_t *d, msgpack_object *o, uint64_t n, int depth)
{
    if (depth + 1 > d->max_depth)
        return s_fail(d, "too deep");
    if ((uint64_t)(d->end - d->p) / 2 < n) /* every pair takes at least two bytes */
        return s_fail(d, "truncated");
    if (d->json != NULL) {
        s_putc(d->json, '{');
        for (uint64_t i = 0; i < n; i++) {
            if (i != 0)
                s_putc(d->json, ',');
            if (s_json_key(d) != 0)
                return -1;
            s_putc(d->json, ':');
            if (s_obj(d, NULL, depth + 1) != 0)
                return -1;
        }
        s_putc(d->json, '}');
        return 0;
    }
    msgpack_object_kv *kv = NULL;
    if (o != NULL) {
        kv = s_alloc(d, (size_t)n * sizeof(*kv));
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = kv;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (s_obj(d, kv != NULL ? &kv[i].key : NULL, depth + 1) != 0 || s_obj(d, kv != NULL ? &kv[i].val : NULL, depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int s_bytes(dec_t *d, msgpack_object *o, msgpack_object_type type, size_t lenbytes)
{
    uint64_t n;
    const char *ptr;
    if (s_be(d, lenbytes, &n) != 0 || s_raw(d, n, &ptr) != 0)
        return -1;
    if (o != NULL) {
        o->type = type;
        o->via.str.size = (uint32_t)n; /* str and bin share this layout */
        o->via.str.ptr = ptr;
    }
    return 0;
}

static int s_ext(dec_t *d, msgpack_object *o, uint64_t n)
{
    const char *ptr;
    if (d->p == d->end)
        return s_fail(d, "truncated");
    int8_t type = (int8_t)*d->p++;
    if (s_raw(d, n, &ptr) != 0)
        return -1;
    if (o != NULL) {
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = type;
        o->via.ext.size = (uint32_t)n;
        o->via.ext.ptr = ptr;
    }
    return 0;
}

static void s_int(msgpack_object *o, int64_t v)
{
    if (o == NULL)
        return;
    if (v >= 0) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = (uint64_t)v;
    } else {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = v;
    }
}

static int s_decode_obj(dec_t *d, msgpack_object *o, int depth)
{
    if (d->p == d->end)
        return s_fail(d, "truncated");
    unsigned char c = *d->p++;
    uint64_t n;
    msgpack_object dummy;
    msgpack_object *t = o != NULL ? o : &dummy; /* scalars are cheap to build either way */

    if (c <= 0x7f) {
        s_int(o, c);
        return 0;
    }
    if (c >= 0xe0) {
        s_int(o, (int8_t)c);
        return 0;
    }
    if (c >= 0x80 && c <= 0x8f)
        return s_map(d, o, c & 0x0f, depth);
    if (c >= 0x90 && c <= 0x9f)
        return s_array(d, o, c & 0x0f, depth);
    if (c >= 0xa0 && c <= 0xbf) {
        const char *ptr;
        if (s_raw(d, c & 0x1f, &ptr) != 0)
            return -1;
        t->type = MSGPACK_OBJECT_STR;
        t->via.str.size = c & 0x1f;
        t->via.str.ptr = ptr;
        return 0;
    }
    switch (c) {
    case 0xc0:
        t->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        t->type = MSGPACK_OBJECT_BOOLEAN;
        t->via.boolean = c == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return s_bytes(d, o, MSGPACK_OBJECT_BIN, (size_t)1 << (c - 0xc4));
    case 0xc7:
    case 0xc8:
    case 0xc9:
        if (s_be(d, (size_t)1 << (c - 0xc7), &n) != 0)
            return -1;
        return s_ext(d, o, n);
    case 0xca: {
        uint32_t bits;
        float f;
        if (s_be(d, 4, &n) != 0)
            return -1;
        bits = (uint32_t)n;
        memcpy(&f, &bits, sizeof(f));
        t->type = MSGPACK_OBJECT_FLOAT32;
        t->via.f64 = f;
        return 0;
    }
    case 0xcb: {
        double f;
        if (s_be(d, 8, &n) != 0)
            return -1;
        memcpy(&f, &n, sizeof(f));
        t->type = MSGPACK_OBJECT_FLOAT64;
        t->via.f64 = f;
        return 0;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (s_be(d, (size_t)1 << (c - 0xcc), &n) != 0)
            return -1;
        t->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        t->via.u64 = n;
        return 0;
    case 0xd0:
        if (s_be(d, 1, &n) != 0)
            return -1;
        s_int(o, (int8_t)n);
        return 0;
    case 0xd1:
        if (s_be(d, 2, &n) != 0)
            return -1;
        s_int(o, (int16_t)n);
        return 0;
    case 0xd2:
        if (s_be(d, 4, &n) != 0)
            return -1;
        s_int(o, (int32_t)n);
        return 0;
    case 0xd3:
        if (s_be(d, 8, &n) != 0)
            return -1;
        s_int(o, (int64_t)n);
        return 0;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return s_ext(d, o, (uint64_t)1 << (c - 0xd4));
    case 0xd9:
    case 0xda:
    case 0xdb:
        return s_bytes(d, o, MSGPACK_OBJECT_STR, (size_t)1 << (c - 0xd9));
    case 0xdc:
    case 0xdd:
        if (s_be(d, c == 0xdc ? 2 : 4, &n) != 0)
            return -1;
        return s_array(d, o, n, depth);
    case 0xde:
    case 0xdf:
        if (s_be(d, c == 0xde ? 2 : 4, &n) != 0)
            return -1;
        return s_map(d, o, n, depth);
    default: /* 0xc1 is never used */
        return s_fail(d, "malformed msgpack");
    }
}

/*
 * One object: decoded (or validated), or, in JSON mode, rendered: the common scalars (small
 * integers, short strings, nil, booleans) straight from their bytes, the others through a local
 * object and xws_json_scalar. Both ways give the same bytes and the same errors.
 */
static int s_obj(dec_t *d, msgpack_object *o, int depth)
{
    if (d->json == NULL || d->p == d->end)
        return s_decode_obj(d, o, depth);
    unsigned char c = *d->p;
    if ((c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf))
        return s_decode_obj(d, NULL, depth);
    if (c <= 0x7f) { /* positive fixint: 1 to 3 digits */
        char digits[3];
        size_t k = 0;
        if (c >= 100)
            digits[k++] = (char)('0' + c / 100);
        if (c >= 10)
            digits[k++] = (char)('0' + c / 10 % 10);
        digits[k++] = (char)('0' + c % 10);
        s_put(d->json, digits, k);
        d->p++;
        return 0;
    }
    if (c >= 0xa0 && c <= 0xbf) { /* fixstr */
        const char *ptr;
        d->p++;
        if (s_raw(d, c & 0x1f, &ptr) != 0)
            return -1;
        if (xws_json_escape(d->json, ptr, c & 0x1f, 1) != 0)
            return s_fail(d, "no JSON form");
        return 0;
    }
    if (c == 0xc0 || c == 0xc2 || c == 0xc3) {
        static const struct {
            const char *text;
            size_t len;
        } words[] = {{"null", 4}, {"", 0}, {"false", 5}, {"true", 4}};
        s_put(d->json, words[c - 0xc0].text, words[c - 0xc0].len);
        d->p++;
        return 0;
    }
    msgpack_object v;
    if (s_decode_obj(d, &v, depth) != 0)
        return -1;
    if (xws_json_scalar(&v, d->json) != 0)
        return s_fail(d, "no JSON form");
    return 0;
}

static int s_run(dec_t *d, msgpack_object *o, const char **err)
{
    int rc = s_obj(d, o, 0);
    if (rc == 0 && d->p != d->end) {
        d->err = "trailing bytes";
        rc = -1;
    }
    if (rc != 0 && err != NULL)
        *err = d->err;
    return rc;
}

int xws_msgpack_decode(msgpack_unpacked *u, const void *data, size_t len, int max_depth, const char **err)
{
    assert(u != NULL && (data != NULL || len == 0) && max_depth >= 1 && max_depth <= 1000);
    msgpack_unpacked_init(u);
    /* the decoded objects take about 3 times the bytes of the input, strings excepted (they point
     * into it): a first chunk of that size serves most messages in one small allocation, which
     * the allocator recycles cheaply; the zone grows by itself when it is not enough */
    size_t chunk = len < (MSGPACK_ZONE_CHUNK_SIZE - 256) / 3 ? len * 3 + 256 : MSGPACK_ZONE_CHUNK_SIZE;
    u->zone = msgpack_zone_new(chunk);
    if (u->zone == NULL)
        abort();
    dec_t d = {(const unsigned char *)data, (const unsigned char *)data + len, u->zone, NULL, max_depth, NULL};
    if (s_run(&d, &u->data, err) != 0) {
        msgpack_unpacked_destroy(u);
        msgpack_unpacked_init(u);
        return -1;
    }
    return 0;
}

int xws_msgpack_validate(const void *data, size_t len, int max_depth, const char **err)
{
    assert((data != NULL || len == 0) && max_depth >= 1 && max_depth <= 1000);
    dec_t d = {(const unsigned char *)data, (const unsigned char *)data + len, NULL, NULL, max_depth, NULL};
    return s_run(&d, NULL, err);
}

int xws_msgpack_raw_to_json(const void *data, size_t len, xws_buf_t *out, const char **err)
{
    assert((data != NULL || len == 0) && out != NULL);
    dec_t d = {(const unsigned char *)data, (const unsigned char *)data + len, NULL, out, XWS_MAX_DEPTH, NULL};
    int rc = s_run(&d, NULL, err);
    if (out->data != NULL) /* s_put leaves room for it */
        out->data[out->len] = '\0';
    return rc;
}

int xws_msgpack_map_header(const unsigned char **p, const unsigned char *end, uint32_t *n)
{
    const unsigned char *q = *p;
    if (q >= end)
        return -2;
    size_t width = *q >= 0x80 && *q <= 0x8f ? 0 : *q == 0xde ? 2 : *q == 0xdf ? 4 : 5;
    if (width == 5)
        return -1;
    if ((size_t)(end - q) < 1 + width)
        return -2;
    uint32_t v = width == 0 ? (uint32_t)(*q & 0x0f) : 0;
    for (size_t i = 1; i <= width; i++)
        v = v << 8 | q[i];
    *n = v;
    *p = q + 1 + width;
    return 0;
}

int xws_msgpack_next(const unsigned char **p, const unsigned char *end, int max_depth, msgpack_object *o, const char **err)
{
    assert(p != NULL && *p != NULL && end >= *p && o != NULL && max_depth >= 1 && max_depth <= 1000);
    dec_t d = {*p, end, NULL, NULL, max_depth, NULL};
    unsigned char c = *p < end ? **p : 0xc0;
    int container = (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
    if (s_decode_obj(&d, container ? NULL : o, 0) != 0) {
        *err = d.err;
        return -1;
    }
    if (container) {
        memset(o, 0, sizeof(*o));
        o->type = (c >= 0x80 && c <= 0x8f) || c >= 0xde ? MSGPACK_OBJECT_MAP : MSGPACK_OBJECT_ARRAY;
    }
    *p = d.p;
    return 0;
}

/* packs depth nested arrays around a nil */
static void s_nest(msgpack_sbuffer *sb, int depth)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (int i = 0; i < depth; i++)
        PACK(msgpack_pack_array(&pk, 1));
    PACK(msgpack_pack_nil(&pk));
}

void xws_msgpack_test(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* every type msgpack-c can pack, compared with msgpack-c's own decoder */
    PACK(msgpack_pack_map(&pk, 3));
    PACK(msgpack_pack_str_with_body(&pk, "a", 1));
    PACK(msgpack_pack_array(&pk, 14));
    PACK(msgpack_pack_nil(&pk));
    PACK(msgpack_pack_true(&pk));
    PACK(msgpack_pack_false(&pk));
    PACK(msgpack_pack_int64(&pk, -1));
    PACK(msgpack_pack_int64(&pk, INT64_MIN));
    PACK(msgpack_pack_uint64(&pk, UINT64_MAX));
    PACK(msgpack_pack_int16(&pk, -300));
    PACK(msgpack_pack_float(&pk, 1.5f));
    PACK(msgpack_pack_double(&pk, -2.25));
    PACK(msgpack_pack_bin_with_body(&pk, "\0\1", 2));
    PACK(msgpack_pack_ext_with_body(&pk, "xyz", 3, 7));
    PACK(msgpack_pack_ext_with_body(&pk, "0123456789abcdef", 16, -1));
    char big[70000];
    memset(big, 'q', sizeof(big));
    PACK(msgpack_pack_str_with_body(&pk, big, sizeof(big)));
    PACK(msgpack_pack_int8(&pk, 5));
    PACK(msgpack_pack_str_with_body(&pk, "", 0));
    PACK(msgpack_pack_map(&pk, 0));
    PACK(msgpack_pack_uint8(&pk, 1));
    PACK(msgpack_pack_array(&pk, 0));

    msgpack_unpacked mine, ref;
    const char *err = NULL;
    CHECK(xws_msgpack_decode(&mine, sb.data, sb.size, 3, &err) == 0);
    CHECK(xws_msgpack_validate(sb.data, sb.size, 3, &err) == 0);
    msgpack_unpacked_init(&ref);
    size_t off = 0;
    CHECK(msgpack_unpack_next(&ref, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS && off == sb.size);
    CHECK(msgpack_object_equal(mine.data, ref.data));
    const msgpack_object *arr = &mine.data.via.map.ptr[0].val;
    CHECK(arr->type == MSGPACK_OBJECT_ARRAY && arr->via.array.size == 14);
    CHECK(arr->via.array.ptr[4].type == MSGPACK_OBJECT_NEGATIVE_INTEGER && arr->via.array.ptr[4].via.i64 == INT64_MIN);
    CHECK(arr->via.array.ptr[5].type == MSGPACK_OBJECT_POSITIVE_INTEGER && arr->via.array.ptr[5].via.u64 == UINT64_MAX);
    CHECK(arr->via.array.ptr[7].type == MSGPACK_OBJECT_FLOAT32 && arr->via.array.ptr[7].via.f64 == 1.5);
    CHECK(arr->via.array.ptr[10].type == MSGPACK_OBJECT_EXT && arr->via.array.ptr[10].via.ext.type == 7);
    CHECK(arr->via.array.ptr[13].type == MSGPACK_OBJECT_POSITIVE_INTEGER && arr->via.array.ptr[13].via.u64 == 5);
    msgpack_unpacked_destroy(&mine);
    msgpack_unpacked_destroy(&ref);
    /* two levels: too deep for a limit of 1 */
    CHECK(xws_msgpack_decode(&mine, sb.data, sb.size, 1, &err) == -1 && strcmp(err, "too deep") == 0);
    msgpack_unpacked_destroy(&mine);

    /* every truncation is refused, every byte mutation is survived */
    for (size_t n = 0; n < sb.size; n += n < 200 ? 1 : 997) {
        CHECK(xws_msgpack_decode(&mine, sb.data, n, 32, &err) == -1);
        msgpack_unpacked_destroy(&mine);
        CHECK(xws_msgpack_validate(sb.data, n, 32, &err) == -1);
    }
    char *copy = malloc(200);
    CHECK(copy != NULL);
    memcpy(copy, sb.data, 200);
    for (size_t i = 0; i < 200; i++) {
        for (int v = 0; v < 256; v += 3) {
            char saved = copy[i];
            copy[i] = (char)v;
            int rc = xws_msgpack_decode(&mine, copy, 200, 32, &err);
            CHECK(rc == xws_msgpack_validate(copy, 200, 32, &err)); /* both modes agree */
            msgpack_unpacked_destroy(&mine);
            copy[i] = saved;
        }
    }
    free(copy);
    /* trailing bytes */
    CHECK(xws_msgpack_decode(&mine, "\xc0\xc0", 2, 32, &err) == -1 && strcmp(err, "trailing bytes") == 0);
    msgpack_unpacked_destroy(&mine);
    CHECK(xws_msgpack_decode(&mine, "\xc1", 1, 32, &err) == -1 && strcmp(err, "malformed msgpack") == 0);
    msgpack_unpacked_destroy(&mine);
    /* huge announced sizes allocate nothing */
    CHECK(xws_msgpack_decode(&mine, "\xdd\xff\xff\xff\xff\xc0", 6, 32, &err) == -1 && strcmp(err, "truncated") == 0);
    msgpack_unpacked_destroy(&mine);
    CHECK(xws_msgpack_decode(&mine, "\xdf\xff\xff\xff\xff\xc0\xc0", 7, 32, &err) == -1 && strcmp(err, "truncated") == 0);
    msgpack_unpacked_destroy(&mine);
    CHECK(xws_msgpack_decode(&mine, "\xdb\xff\xff\xff\xff", 5, 32, &err) == -1 && strcmp(err, "truncated") == 0);
    msgpack_unpacked_destroy(&mine);
    CHECK(xws_msgpack_decode(&mine, "", 0, 32, &err) == -1 && strcmp(err, "truncated") == 0);
    msgpack_unpacked_destroy(&mine);

    /* depth: 33 nested arrays pass a limit of 33 (msgpack-c refuses them), 34 do not */
    msgpack_sbuffer_clear(&sb);
    s_nest(&sb, 33);
    CHECK(xws_msgpack_decode(&mine, sb.data, sb.size, 33, &err) == 0);
    msgpack_unpacked_destroy(&mine);
    CHECK(xws_msgpack_decode(&mine, sb.data, sb.size, 32, &err) == -1 && strcmp(err, "too deep") == 0);
    msgpack_unpacked_destroy(&mine);
    msgpack_sbuffer_clear(&sb);
    s_nest(&sb, 100000);
    CHECK(xws_msgpack_validate(sb.data, sb.size, 1000, &err) == -1 && strcmp(err, "too deep") == 0);
    msgpack_sbuffer_destroy(&sb);
    /* map headers of the three widths, what is not a map, and what ends too soon */
    {
        static const unsigned char fix[] = {0x82}, m16[] = {0xde, 0x01, 0x02}, m32[] = {0xdf, 0x00, 0x01, 0x00, 0x03},
                                   arr[] = {0x92}, cut[] = {0xdf, 0x00, 0x01};
        const unsigned char *q;
        uint32_t n = 0;
        CHECK((q = fix, xws_msgpack_map_header(&q, fix + 1, &n)) == 0 && n == 2 && q == fix + 1);
        CHECK((q = m16, xws_msgpack_map_header(&q, m16 + 3, &n)) == 0 && n == 0x102 && q == m16 + 3);
        CHECK((q = m32, xws_msgpack_map_header(&q, m32 + 5, &n)) == 0 && n == 0x10003 && q == m32 + 5);
        CHECK((q = arr, xws_msgpack_map_header(&q, arr + 1, &n)) == -1 && q == arr);
        CHECK((q = cut, xws_msgpack_map_header(&q, cut + 3, &n)) == -2 && q == cut);
        CHECK((q = fix, xws_msgpack_map_header(&q, fix, &n)) == -2);
    }
}
