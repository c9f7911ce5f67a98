/* envelope.c - request and reply envelopes of PROTOCOL.md §3-4 (see xws/proto.h). */
#include <assert.h>
#include <string.h>
#include <sys/time.h>
#include "xws/proto.h"
#include "internal.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static void s_pack_slice(msgpack_packer *pk, xws_slice_t s)
{
    PACK(msgpack_pack_str_with_body(pk, s.len != 0 ? s.ptr : "", s.len));
}

static void s_pack_key(msgpack_packer *pk, const char *k)
{
    PACK(msgpack_pack_str_with_body(pk, k, strlen(k)));
}

/* 0 when body is empty or exactly one msgpack object within the body depth limit */
static int s_body_ok(xws_slice_t body)
{
    const char *err;
    return body.len == 0 ? 0 : xws_msgpack_validate(body.ptr, body.len, XWS_MAX_DEPTH, &err);
}

/* appends the raw bytes of an already-encoded object */
static void s_pack_raw(msgpack_sbuffer *out, xws_slice_t raw)
{
    PACK(msgpack_sbuffer_write(out, raw.ptr, raw.len));
}

/* a str object whose length is within [min, max] */
static int s_str(const msgpack_object *o, size_t min, size_t max, xws_slice_t *out)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size > max)
        return -1;
    out->ptr = o->via.str.size != 0 ? o->via.str.ptr : "";
    out->len = o->via.str.size;
    return 0;
}

static int s_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

/* Decodes data into u and checks the common frame of both envelopes: a map with str keys whose
 * "v" is 1. Returns 0, or -1 with *err set. */
static int s_decode_map(msgpack_unpacked *u, const void *data, size_t len, size_t max, uint32_t *version, const char **err)
{
    const char *why = NULL;
    msgpack_unpacked_init(u);
    if (len > max) {
        *err = "oversized envelope";
        return -1;
    }
    /* the envelope map is one level: the body inside it may still be XWS_MAX_DEPTH deep */
    if (xws_msgpack_decode(u, data, len, XWS_MAX_DEPTH + 1, &why) != 0) {
        *err = why;
        return -1;
    }
    const msgpack_object *root = &u->data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        *err = "not a map";
        return -1;
    }
    const msgpack_object *v = NULL;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            *err = "non-string key";
            return -1;
        }
        if (s_key_is(k, "v")) {
            if (v != NULL) {
                *err = "duplicate key";
                return -1;
            }
            v = &root->via.map.ptr[i].val;
        }
    }
    if (v == NULL) {
        *err = "missing v";
        return -1;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *err = "bad v";
        return -1;
    }
    if (v->via.u64 != XWS_ENVELOPE_VERSION) {
        *err = "unsupported_version";
        return -1;
    }
    *version = (uint32_t)v->via.u64;
    return 0;
}

/* Marks field bit in *seen; -1 when it was already seen (a duplicate known key). */
static int s_once(unsigned *seen, unsigned bit, const char **err)
{
    if (*seen & bit) {
        *err = "duplicate key";
        return -1;
    }
    *seen |= bit;
    return 0;
}

/* ---- request --------------------------------------------------------------------------------- */

/* Wall-clock Unix time in ms: the local clock against which budgets become deadlines. */
static uint64_t s_unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The envelope's last bytes when it carries a budget: the key, then a uint 32 (0xce) */
static const char s_budget_tail[] = "\xa6"
                                    "budget\xce";
#define BUDGET_TAIL_LEN (sizeof(s_budget_tail) - 1 + 4)

/* The budget (ms) left before deadline_ms (Unix ms), in the range of a uint 32. */
static uint32_t s_budget(uint64_t deadline_ms)
{
    uint64_t now = s_unix_ms(), left = deadline_ms > now ? deadline_ms - now : 0;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

int xws_request_get_budget(const void *env, size_t len, uint64_t *budget_ms)
{
    const unsigned char *p = env;
    if (len < BUDGET_TAIL_LEN || memcmp(p + len - BUDGET_TAIL_LEN, s_budget_tail, sizeof(s_budget_tail) - 1) != 0)
        return -1;
    p += len - 4;
    *budget_ms = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    return 0;
}

int xws_request_set_budget(void *env, size_t len, uint64_t budget_ms)
{
    unsigned char *p = env;
    if (len < BUDGET_TAIL_LEN || memcmp(p + len - BUDGET_TAIL_LEN, s_budget_tail, sizeof(s_budget_tail) - 1) != 0)
        return -1;
    uint32_t b = budget_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)budget_ms;
    p += len - 4;
    p[0] = (unsigned char)(b >> 24), p[1] = (unsigned char)(b >> 16), p[2] = (unsigned char)(b >> 8), p[3] = (unsigned char)b;
    return 0;
}

int xws_request_encode(const xws_request_spec_t *spec, msgpack_sbuffer *out)
{
    assert(spec != NULL && out != NULL && (spec->params != NULL || spec->nparams == 0));
    if (spec->rid.len == 0 || spec->rid.len > XWS_MAX_RID || spec->service.len == 0 || spec->service.len > XWS_MAX_NAME ||
        spec->resource.len == 0 || spec->resource.len > XWS_MAX_NAME || spec->act.len > XWS_MAX_NAME || spec->nparams > UINT32_MAX)
        return -1;
    if (s_body_ok(spec->body_msgpack) != 0)
        return -1;
    int has_caller = spec->caller_mode.ptr != NULL || spec->caller_account.ptr != NULL || spec->caller_addr.ptr != NULL;
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, xws_sbuffer_write);
    uint32_t n =
        5 + (spec->nparams != 0) + (spec->body_msgpack.len != 0) + has_caller + (spec->deadline_ms != 0) + (spec->inm.len != 0);
    PACK(msgpack_pack_map(&pk, n));
    s_pack_key(&pk, "v");
    PACK(msgpack_pack_uint32(&pk, XWS_ENVELOPE_VERSION));
    s_pack_key(&pk, "rid");
    s_pack_slice(&pk, spec->rid);
    s_pack_key(&pk, "service");
    s_pack_slice(&pk, spec->service);
    s_pack_key(&pk, "resource");
    s_pack_slice(&pk, spec->resource);
    s_pack_key(&pk, "act");
    s_pack_slice(&pk, spec->act);
    if (spec->nparams != 0) {
        s_pack_key(&pk, "params");
        PACK(msgpack_pack_map(&pk, (uint32_t)spec->nparams));
        for (size_t i = 0; i < spec->nparams; i++) {
            s_pack_slice(&pk, spec->params[i].key);
            s_pack_slice(&pk, spec->params[i].val);
        }
    }
    if (spec->body_msgpack.len != 0) {
        s_pack_key(&pk, "body");
        s_pack_raw(out, spec->body_msgpack);
    }
    if (has_caller) {
        uint32_t nc = (spec->caller_mode.ptr != NULL) + (spec->caller_account.ptr != NULL) + (spec->caller_addr.ptr != NULL);
        s_pack_key(&pk, "caller");
        PACK(msgpack_pack_map(&pk, nc));
        if (spec->caller_mode.ptr != NULL) {
            s_pack_key(&pk, "mode");
            s_pack_slice(&pk, spec->caller_mode);
        }
        if (spec->caller_account.ptr != NULL) {
            s_pack_key(&pk, "account");
            s_pack_slice(&pk, spec->caller_account);
        }
        if (spec->caller_addr.ptr != NULL) {
            s_pack_key(&pk, "addr");
            s_pack_slice(&pk, spec->caller_addr);
        }
    }
    if (spec->inm.len != 0) {
        s_pack_key(&pk, "inm");
        s_pack_slice(&pk, spec->inm);
    }
    if (spec->deadline_ms != 0) { /* last, fixed width: xws_request_set_budget rewrites it in place */
        s_pack_key(&pk, "budget");
        PACK(msgpack_pack_fix_uint32(&pk, s_budget(spec->deadline_ms)));
    }
    if (out->size - start > XWS_MAX_ENVELOPE) {
        out->size = start;
        return -1;
    }
    return 0;
}

enum {
    F_RID = 1,
    F_SERVICE = 2,
    F_RESOURCE = 4,
    F_ACT = 8,
    F_PARAMS = 16,
    F_BODY = 32,
    F_CALLER = 64,
    F_DEADLINE = 128,
    F_INM = 256
};

static int s_caller(xws_request_t *req, const msgpack_object *o, const char **err)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        *err = "bad caller";
        return -1;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        xws_slice_t *dst = NULL;
        if (k->type != MSGPACK_OBJECT_STR) {
            *err = "bad caller";
            return -1;
        }
        if (s_key_is(k, "mode"))
            dst = &req->caller_mode;
        else if (s_key_is(k, "account"))
            dst = &req->caller_account;
        else if (s_key_is(k, "addr"))
            dst = &req->caller_addr;
        if (dst != NULL && (dst->ptr != NULL || s_str(v, 0, XWS_MAX_ENVELOPE, dst) != 0)) {
            *err = "bad caller";
            return -1;
        }
    }
    return 0;
}

static int s_params(xws_request_t *req, const msgpack_object *o, const char **err)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        *err = "bad params";
        return -1;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR || o->via.map.ptr[i].val.type != MSGPACK_OBJECT_STR) {
            *err = "bad params";
            return -1;
        }
    }
    req->params = &o->via.map;
    return 0;
}

int xws_request_decode(xws_request_t *req, const void *data, size_t len, const char **err)
{
    assert(req != NULL && (data != NULL || len == 0) && err != NULL);
    memset(req, 0, sizeof(*req));
    if (s_decode_map(&req->_unpacked, data, len, XWS_MAX_ENVELOPE, &req->version, err) != 0)
        return -1;
    const msgpack_object_map *m = &req->_unpacked.data.via.map;
    unsigned seen = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        if (s_key_is(k, "rid")) {
            if (s_once(&seen, F_RID, err) != 0)
                return -1;
            if (s_str(v, 1, XWS_MAX_RID, &req->rid) != 0) {
                *err = "bad rid";
                return -1;
            }
        } else if (s_key_is(k, "service")) {
            if (s_once(&seen, F_SERVICE, err) != 0)
                return -1;
            if (s_str(v, 1, XWS_MAX_NAME, &req->service) != 0) {
                *err = "bad service";
                return -1;
            }
        } else if (s_key_is(k, "resource")) {
            if (s_once(&seen, F_RESOURCE, err) != 0)
                return -1;
            if (s_str(v, 1, XWS_MAX_NAME, &req->resource) != 0) {
                *err = "bad resource";
                return -1;
            }
        } else if (s_key_is(k, "act")) {
            if (s_once(&seen, F_ACT, err) != 0)
                return -1;
            if (s_str(v, 0, XWS_MAX_NAME, &req->act) != 0) {
                *err = "bad act";
                return -1;
            }
        } else if (s_key_is(k, "params")) {
            if (s_once(&seen, F_PARAMS, err) != 0 || s_params(req, v, err) != 0)
                return -1;
        } else if (s_key_is(k, "body")) {
            if (s_once(&seen, F_BODY, err) != 0)
                return -1;
            req->body = v->type == MSGPACK_OBJECT_NIL ? NULL : v;
        } else if (s_key_is(k, "caller")) {
            if (s_once(&seen, F_CALLER, err) != 0 || s_caller(req, v, err) != 0)
                return -1;
        } else if (s_key_is(k, "budget")) { /* ms the sender still waits: a deadline on this host's clock */
            if (s_once(&seen, F_DEADLINE, err) != 0)
                return -1;
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > UINT32_MAX) {
                *err = "bad budget";
                return -1;
            }
            req->deadline_ms = s_unix_ms() + v->via.u64;
        } else if (s_key_is(k, "deadline")) { /* before budgets: the sender's Unix time, taken as is */
            if (s_once(&seen, F_DEADLINE, err) != 0)
                return -1;
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *err = "bad deadline";
                return -1;
            }
            req->deadline_ms = v->via.u64;
        } else if (s_key_is(k, "inm")) {
            if (s_once(&seen, F_INM, err) != 0)
                return -1;
            if (s_str(v, 0, XWS_MAX_ENVELOPE, &req->inm) != 0) {
                *err = "bad inm";
                return -1;
            }
        }
    }
    if (!(seen & F_RID))
        *err = "missing rid";
    else if (!(seen & F_SERVICE))
        *err = "missing service";
    else if (!(seen & F_RESOURCE))
        *err = "missing resource";
    else if (!(seen & F_ACT))
        *err = "missing act";
    else
        return 0;
    return -1;
}

void xws_request_dispose(xws_request_t *req)
{
    assert(req != NULL);
    msgpack_unpacked_destroy(&req->_unpacked);
    memset(req, 0, sizeof(*req));
    msgpack_unpacked_init(&req->_unpacked);
}

int xws_request_param(const xws_request_t *req, const char *name, xws_slice_t *out)
{
    assert(req != NULL && name != NULL && out != NULL);
    if (req->params == NULL)
        return -1;
    for (uint32_t i = 0; i < req->params->size; i++) { /* the first occurrence wins */
        const msgpack_object_kv *kv = &req->params->ptr[i];
        if (s_key_is(&kv->key, name)) {
            out->ptr = kv->val.via.str.size != 0 ? kv->val.via.str.ptr : "";
            out->len = kv->val.via.str.size;
            return 0;
        }
    }
    return -1;
}

/* ---- reply ----------------------------------------------------------------------------------- */

int xws_reply_encode(unsigned status, xws_slice_t etag, xws_slice_t body_msgpack, msgpack_sbuffer *out)
{
    return xws_reply_encode_flags(status, etag, body_msgpack, 0, out);
}

int xws_reply_encode_flags(unsigned status, xws_slice_t etag, xws_slice_t body_msgpack, unsigned flags, msgpack_sbuffer *out)
{
    assert(out != NULL);
    if (status < 100 || status > 599 || (!(flags & XWS_REPLY_PACKED_BODY) && s_body_ok(body_msgpack) != 0))
        return -1;
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, xws_sbuffer_write);
    int replayed = (flags & XWS_REPLY_REPLAYED) != 0;
    PACK(msgpack_pack_map(&pk, 2 + (body_msgpack.len != 0) + (etag.len != 0) + replayed));
    s_pack_key(&pk, "v");
    PACK(msgpack_pack_uint32(&pk, XWS_ENVELOPE_VERSION));
    s_pack_key(&pk, "status");
    PACK(msgpack_pack_uint32(&pk, status));
    if (etag.len != 0) {
        s_pack_key(&pk, "etag");
        s_pack_slice(&pk, etag);
    }
    if (replayed) {
        s_pack_key(&pk, "replayed");
        PACK(msgpack_pack_true(&pk));
    }
    if (body_msgpack.len != 0) { /* last: a relaying receiver takes it as the rest of the bytes (xws_reply_decode_raw) */
        s_pack_key(&pk, "body");
        s_pack_raw(out, body_msgpack);
    }
    if (out->size - start > XWS_MAX_REPLY) {
        out->size = start;
        return -1;
    }
    return 0;
}

int xws_reply_encode_error(unsigned status, const char *code, const char *field, const char *message, msgpack_sbuffer *out)
{
    assert(code != NULL && field != NULL && message != NULL && out != NULL);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 3));
    s_pack_key(&pk, "error");
    s_pack_key(&pk, code);
    s_pack_key(&pk, "field");
    s_pack_key(&pk, field);
    s_pack_key(&pk, "message");
    s_pack_key(&pk, message);
    int rc = xws_reply_encode(status, XWS_SLICE_NULL, (xws_slice_t){body.data, body.size}, out);
    msgpack_sbuffer_destroy(&body);
    return rc;
}

enum { R_STATUS = 1, R_BODY = 2, R_ETAG = 4, R_REPLAYED = 8 };

/* Reads one known field of a reply envelope (status, body, etag, replayed; others are ignored). 0, or -1 with *err set. */
static int s_reply_field(xws_reply_t *rep, const msgpack_object *k, const msgpack_object *v, unsigned *seen, const char **err)
{
    if (s_key_is(k, "status")) {
        if (s_once(seen, R_STATUS, err) != 0)
            return -1;
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 < 100 || v->via.u64 > 599) {
            *err = "bad status";
            return -1;
        }
        rep->status = (unsigned)v->via.u64;
    } else if (s_key_is(k, "body")) {
        if (s_once(seen, R_BODY, err) != 0)
            return -1;
        rep->body = v->type == MSGPACK_OBJECT_NIL ? NULL : v;
    } else if (s_key_is(k, "etag")) {
        if (s_once(seen, R_ETAG, err) != 0)
            return -1;
        if (s_str(v, 0, XWS_MAX_ENVELOPE, &rep->etag) != 0) {
            *err = "bad etag";
            return -1;
        }
    } else if (s_key_is(k, "replayed")) {
        if (s_once(seen, R_REPLAYED, err) != 0)
            return -1;
        if (v->type != MSGPACK_OBJECT_BOOLEAN) {
            *err = "bad replayed";
            return -1;
        }
        rep->replayed = v->via.boolean;
    }
    return 0;
}

int xws_reply_decode(xws_reply_t *rep, const void *data, size_t len, const char **err)
{
    assert(rep != NULL && (data != NULL || len == 0) && err != NULL);
    memset(rep, 0, sizeof(*rep));
    if (s_decode_map(&rep->_unpacked, data, len, XWS_MAX_REPLY, &rep->version, err) != 0)
        return -1;
    const msgpack_object_map *m = &rep->_unpacked.data.via.map;
    unsigned seen = 0;
    for (uint32_t i = 0; i < m->size; i++)
        if (s_reply_field(rep, &m->ptr[i].key, &m->ptr[i].val, &seen, err) != 0)
            return -1;
    if (!(seen & R_STATUS)) {
        *err = "missing status";
        return -1;
    }
    return 0;
}

int xws_reply_decode_raw(xws_reply_t *rep, const void *data, size_t len, const char **err)
{
    assert(rep != NULL && (data != NULL || len == 0) && err != NULL);
    memset(rep, 0, sizeof(*rep));
    msgpack_unpacked_init(&rep->_unpacked);
    if (len > XWS_MAX_REPLY) {
        *err = "oversized envelope";
        return -1;
    }
    const unsigned char *p = data, *end = p + len;
    uint32_t n = 0;
    int h = xws_msgpack_map_header(&p, end, &n);
    if (h == -2) {
        *err = "truncated";
        return -1;
    }
    if (h == -1) {
        msgpack_object o; /* any other object: checked whole, as xws_reply_decode would */
        const unsigned char *q = p;
        if (xws_msgpack_next(&q, end, XWS_MAX_DEPTH + 1, &o, err) != 0)
            return -1;
        *err = q != end ? "trailing bytes" : "not a map";
        return -1;
    }
    /* the body inside the envelope may be XWS_MAX_DEPTH deep, as with xws_reply_decode */
    unsigned seen = 0;
    int have_v = 0;
    for (uint32_t i = 0; i < n; i++) {
        msgpack_object k, v;
        if (xws_msgpack_next(&p, end, XWS_MAX_DEPTH, &k, err) != 0)
            return -1;
        const unsigned char *vstart = p;
        if (i + 1 == n && k.type == MSGPACK_OBJECT_STR && s_key_is(&k, "body") && !(seen & R_BODY) && p < end &&
            !(*p == 0xc0 && p + 1 == end)) {
            /* a body that is the last entry is the rest of the bytes, left unwalked: the caller's
             * rendering (xws_msgpack_raw_to_json) reads it once and refuses it when malformed */
            seen |= R_BODY;
            rep->body_raw = (xws_slice_t){(const char *)p, (size_t)(end - p)};
            p = end;
            break;
        }
        if (xws_msgpack_next(&p, end, XWS_MAX_DEPTH, &v, err) != 0)
            return -1;
        if (k.type != MSGPACK_OBJECT_STR) {
            *err = "non-string key";
            return -1;
        }
        if (s_key_is(&k, "v")) {
            if (have_v) {
                *err = "duplicate key";
                return -1;
            }
            have_v = 1;
            if (v.type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *err = "bad v";
                return -1;
            }
            if (v.via.u64 != XWS_ENVELOPE_VERSION) {
                *err = "unsupported_version";
                return -1;
            }
            rep->version = (uint32_t)v.via.u64;
            continue;
        }
        if (s_reply_field(rep, &k, &v, &seen, err) != 0)
            return -1;
        if (s_key_is(&k, "body")) { /* the tree is not built: the caller renders the raw bytes */
            rep->body = NULL;
            if (v.type != MSGPACK_OBJECT_NIL)
                rep->body_raw = (xws_slice_t){(const char *)vstart, (size_t)(p - vstart)};
        }
    }
    if (p != end) {
        *err = "trailing bytes";
        return -1;
    }
    if (!have_v) {
        *err = "missing v";
        return -1;
    }
    if (!(seen & R_STATUS)) {
        *err = "missing status";
        return -1;
    }
    return 0;
}

void xws_reply_dispose(xws_reply_t *rep)
{
    assert(rep != NULL);
    msgpack_unpacked_destroy(&rep->_unpacked);
    memset(rep, 0, sizeof(*rep));
    msgpack_unpacked_init(&rep->_unpacked);
}

/* ---- self-test ------------------------------------------------------------------------------- */

/* decodes every prefix and many single-byte mutations of data: none may crash or leak */
/* xws_reply_decode_raw accepts and refuses what xws_reply_decode does, with the same fields and
 * the same JSON rendering of the body; but for a body in last place, which it leaves to the
 * rendering: what xws_reply_decode refuses and it accepts has a last body that does not render */
static void s_same_reply(const char *data, size_t len)
{
    xws_reply_t a, b;
    const char *ea = NULL, *eb = NULL;
    int ra = xws_reply_decode(&a, data, len, &ea), rb = xws_reply_decode_raw(&b, data, len, &eb);
    if (ra != 0 && rb == 0) {
        xws_buf_t j;
        xws_buf_init(&j);
        CHECK(b.body_raw.ptr != NULL && b.body_raw.ptr + b.body_raw.len == data + len);
        CHECK(xws_msgpack_raw_to_json(b.body_raw.ptr, b.body_raw.len, &j, &eb) == -1);
        xws_buf_dispose(&j);
        ra = rb = -1, eb = "left to the rendering";
    }
    CHECK(ra == rb && (ra == 0 || eb != NULL));
    if (ra == 0) {
        CHECK(a.status == b.status && a.version == b.version && a.replayed == b.replayed && a.etag.len == b.etag.len);
        CHECK(a.etag.len == 0 || memcmp(a.etag.ptr, b.etag.ptr, a.etag.len) == 0);
        CHECK(b.body == NULL && (a.body == NULL) == (b.body_raw.ptr == NULL));
        if (a.body != NULL) {
            xws_buf_t ja, jb;
            xws_buf_init(&ja);
            xws_buf_init(&jb);
            int ja_rc = xws_msgpack_to_json(a.body, &ja), jb_rc = xws_msgpack_raw_to_json(b.body_raw.ptr, b.body_raw.len, &jb, &eb);
            CHECK(ja_rc == jb_rc && (ja_rc != 0 || (ja.len == jb.len && memcmp(ja.data, jb.data, ja.len) == 0)));
            xws_buf_dispose(&ja);
            xws_buf_dispose(&jb);
        }
    }
    xws_reply_dispose(&a);
    xws_reply_dispose(&b);
}

static void s_torture(const char *data, size_t len, int is_request)
{
    const char *err;
    for (size_t n = 0; n < len; n++) {
        err = NULL;
        if (is_request) {
            xws_request_t r;
            CHECK(xws_request_decode(&r, data, n, &err) == -1 && err != NULL);
            xws_request_dispose(&r);
        } else {
            xws_reply_t r;
            CHECK(xws_reply_decode(&r, data, n, &err) == -1 && err != NULL);
            xws_reply_dispose(&r);
            s_same_reply(data, n);
        }
    }
    char *copy = malloc(len + 1);
    CHECK(copy != NULL);
    memcpy(copy, data, len);
    copy[len] = '\x01';
    for (size_t i = 0; i < len; i++) {
        static const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc4,
                                               0xc7, 0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
        for (size_t j = 0; j < sizeof(values) + 1; j++) {
            char saved = copy[i];
            copy[i] = j < sizeof(values) ? (char)values[j] : (char)(saved ^ 0x20);
            err = NULL;
            if (is_request) {
                xws_request_t r;
                if (xws_request_decode(&r, copy, len, &err) != 0)
                    CHECK(err != NULL);
                else
                    CHECK(r.rid.len >= 1 && r.service.len >= 1 && r.resource.len >= 1 && r.version == 1);
                xws_request_dispose(&r);
            } else {
                xws_reply_t r;
                if (xws_reply_decode(&r, copy, len, &err) != 0)
                    CHECK(err != NULL);
                else
                    CHECK(r.status >= 100 && r.status <= 599 && r.version == 1);
                xws_reply_dispose(&r);
                s_same_reply(copy, len);
            }
            copy[i] = saved;
        }
    }
    /* one extra byte is trailing junk */
    if (is_request) {
        xws_request_t r;
        CHECK(xws_request_decode(&r, copy, len + 1, &err) == -1 && strcmp(err, "trailing bytes") == 0);
        xws_request_dispose(&r);
    } else {
        xws_reply_t r;
        CHECK(xws_reply_decode(&r, copy, len + 1, &err) == -1 && strcmp(err, "trailing bytes") == 0);
        xws_reply_dispose(&r);
    }
    free(copy);
}

/* encodes a map of string pairs (NULL-terminated list) plus one raw value under key "x" */
static void s_map_with(msgpack_sbuffer *sb, const char *const *pairs, const char *xkey, xws_slice_t xraw)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    uint32_t n = 0;
    while (pairs[2 * n] != NULL)
        n++;
    PACK(msgpack_pack_map(&pk, n + 1 + (xkey != NULL)));
    s_pack_key(&pk, "v");
    PACK(msgpack_pack_uint8(&pk, 1));
    for (uint32_t i = 0; i < n; i++) {
        s_pack_key(&pk, pairs[2 * i]);
        s_pack_key(&pk, pairs[2 * i + 1]);
    }
    if (xkey != NULL) {
        s_pack_key(&pk, xkey);
        s_pack_raw(sb, xraw);
    }
}

static int s_try_request(const char *const *pairs, const char *xkey, xws_slice_t xraw, const char **err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_map_with(&sb, pairs, xkey, xraw);
    xws_request_t r;
    int rc = xws_request_decode(&r, sb.data, sb.size, err);
    xws_request_dispose(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

void xws_envelope_test(void)
{
    msgpack_sbuffer body, env;
    msgpack_sbuffer_init(&body);
    msgpack_sbuffer_init(&env);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 2));
    s_pack_key(&pk, "name");
    s_pack_key(&pk, "Zoë");
    s_pack_key(&pk, "list");
    PACK(msgpack_pack_array(&pk, 2));
    PACK(msgpack_pack_int64(&pk, -7));
    PACK(msgpack_pack_double(&pk, 0.5));

    xws_kv_t params[] = {
        {xws_slice("act"), xws_slice("x")}, {xws_slice("id"), xws_slice("12")}, {xws_slice("id"), xws_slice("13")}};
    xws_request_spec_t spec = {.rid = xws_slice("gw1-42"),
                               .service = xws_slice("config"),
                               .resource = xws_slice("entity"),
                               .act = xws_slice("edit"),
                               .params = params,
                               .nparams = 3,
                               .body_msgpack = {body.data, body.size},
                               .caller_mode = xws_slice("restricted"),
                               .caller_account = xws_slice(""),
                               .caller_addr = xws_slice("127.0.0.1"),
                               .deadline_ms = s_unix_ms() + 60000,
                               .inm = xws_slice("\"abc\"")};
    uint64_t t0 = s_unix_ms();
    CHECK(xws_request_encode(&spec, &env) == 0);

    xws_request_t req;
    const char *err = NULL;
    CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    uint64_t t1 = s_unix_ms();
    /* the budget (deadline - encode time) becomes a deadline on the decoder's clock */
    CHECK(req.deadline_ms >= spec.deadline_ms - (t1 - t0) && req.deadline_ms <= spec.deadline_ms + (t1 - t0));
    CHECK(env.size > BUDGET_TAIL_LEN && memcmp(env.data + env.size - BUDGET_TAIL_LEN, s_budget_tail, 8) == 0);
    CHECK(req.version == 1 && xws_slice_eq(req.rid, "gw1-42") && xws_slice_eq(req.service, "config"));
    CHECK(xws_slice_eq(req.resource, "entity") && xws_slice_eq(req.act, "edit"));
    CHECK(xws_slice_eq(req.caller_mode, "restricted") && xws_slice_eq(req.caller_account, "") && req.caller_account.ptr != NULL);
    CHECK(xws_slice_eq(req.caller_addr, "127.0.0.1") && xws_slice_eq(req.inm, "\"abc\""));
    CHECK(req.params != NULL && req.params->size == 3);
    xws_slice_t v;
    CHECK(xws_request_param(&req, "id", &v) == 0 && xws_slice_eq(v, "12")); /* first occurrence wins */
    CHECK(xws_request_param(&req, "act", &v) == 0 && xws_slice_eq(v, "x"));
    CHECK(xws_request_param(&req, "nope", &v) == -1);
    CHECK(req.body != NULL && req.body->type == MSGPACK_OBJECT_MAP && req.body->via.map.size == 2);
    msgpack_unpacked ref;
    CHECK(xws_msgpack_decode(&ref, body.data, body.size, 32, &err) == 0);
    CHECK(msgpack_object_equal(*req.body, ref.data));
    msgpack_unpacked_destroy(&ref);
    xws_request_dispose(&req);
    xws_request_dispose(&req); /* disposing twice is harmless */
    s_torture(env.data, env.size, 1);
    /* the budget is rewritten in place (a re-sent or queued envelope), and 0 is a deadline already due */
    CHECK(xws_request_set_budget(env.data, env.size, 250) == 0);
    uint64_t budget = 0;
    CHECK(xws_request_get_budget(env.data, env.size, &budget) == 0 && budget == 250);
    CHECK(xws_request_get_budget(env.data, env.size - 1, &budget) == -1);
    t0 = s_unix_ms();
    CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    t1 = s_unix_ms();
    CHECK(req.deadline_ms >= t0 + 250 && req.deadline_ms <= t1 + 250);
    xws_request_dispose(&req);
    xws_request_spec_t past = spec;
    past.deadline_ms = 1700000000123ull; /* long gone: budget 0 */
    msgpack_sbuffer_clear(&env);
    CHECK(xws_request_encode(&past, &env) == 0);
    t0 = s_unix_ms();
    CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    CHECK(req.deadline_ms >= t0 && req.deadline_ms <= s_unix_ms());
    xws_request_dispose(&req);
    CHECK(xws_request_set_budget(env.data, env.size - 1, 5) == -1 && xws_request_set_budget(env.data, 3, 5) == -1);

    /* minimal request: no params, body, caller, deadline, inm; act "" */
    xws_request_spec_t min = {.rid = xws_slice("r"), .service = xws_slice("s"), .resource = xws_slice("t")};
    msgpack_sbuffer_clear(&env);
    CHECK(xws_request_encode(&min, &env) == 0);
    CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0);
    CHECK(req.params == NULL && req.body == NULL && req.caller_mode.ptr == NULL && req.deadline_ms == 0 && req.inm.len == 0);
    CHECK(xws_slice_eq(req.act, "") && xws_request_param(&req, "x", &v) == -1);
    xws_request_dispose(&req);

    /* encoder limits */
    char longname[100];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    xws_request_spec_t bad = min;
    bad.rid = (xws_slice_t){longname, XWS_MAX_RID + 1};
    CHECK(xws_request_encode(&bad, &env) == -1);
    bad.rid = (xws_slice_t){longname, XWS_MAX_RID};
    CHECK(xws_request_encode(&bad, &env) == 0);
    bad = min;
    bad.service = (xws_slice_t){longname, XWS_MAX_NAME + 1};
    CHECK(xws_request_encode(&bad, &env) == -1);
    bad = min;
    bad.rid = XWS_SLICE_NULL;
    CHECK(xws_request_encode(&bad, &env) == -1);
    bad = min;
    bad.body_msgpack = (xws_slice_t){"\xc0\xc0", 2}; /* two objects */
    CHECK(xws_request_encode(&bad, &env) == -1);
    bad.body_msgpack = (xws_slice_t){"\x92\xc0", 2}; /* truncated */
    CHECK(xws_request_encode(&bad, &env) == -1);
    size_t before = env.size;
    char *huge = malloc(XWS_MAX_ENVELOPE + 16);
    CHECK(huge != NULL);
    huge[0] = (char)0xdb; /* str32 of XWS_MAX_ENVELOPE bytes */
    huge[1] = 0, huge[2] = (char)(XWS_MAX_ENVELOPE >> 16), huge[3] = 0, huge[4] = 0;
    memset(huge + 5, 'x', XWS_MAX_ENVELOPE);
    bad.body_msgpack = (xws_slice_t){huge, XWS_MAX_ENVELOPE + 5};
    CHECK(xws_request_encode(&bad, &env) == -1 && env.size == before); /* too big: nothing appended */
    CHECK(xws_request_decode(&req, huge, XWS_MAX_ENVELOPE + 5, &err) == -1 && strcmp(err, "oversized envelope") == 0);
    xws_request_dispose(&req);
    free(huge);

    /* a body of the full allowed depth fits in an envelope */
    msgpack_sbuffer_clear(&body);
    for (int i = 0; i < XWS_MAX_DEPTH; i++)
        PACK(msgpack_pack_array(&pk, 1));
    PACK(msgpack_pack_nil(&pk));
    bad = min;
    bad.body_msgpack = (xws_slice_t){body.data, body.size};
    msgpack_sbuffer_clear(&env);
    CHECK(xws_request_encode(&bad, &env) == 0);
    CHECK(xws_request_decode(&req, env.data, env.size, &err) == 0 && req.body != NULL);
    xws_request_dispose(&req);
    msgpack_sbuffer_clear(&body); /* one level deeper is refused */
    for (int i = 0; i < XWS_MAX_DEPTH + 1; i++)
        PACK(msgpack_pack_array(&pk, 1));
    PACK(msgpack_pack_nil(&pk));
    bad.body_msgpack = (xws_slice_t){body.data, body.size};
    CHECK(xws_request_encode(&bad, &env) == -1);

    /* decoder: hand-made envelopes */
    static const char *const full[] = {"rid", "1", "service", "s", "resource", "r", "act", "", NULL};
    static const char *const norid[] = {"service", "s", "resource", "r", "act", "", NULL};
    static const char *const noact[] = {"rid", "1", "service", "s", "resource", "r", NULL};
    static const char *const emptyrid[] = {"rid", "", "service", "s", "resource", "r", "act", "", NULL};
    static const char *const duprid[] = {"rid", "1", "rid", "2", "service", "s", "resource", "r", "act", "", NULL};
    static const char *const unknown[] = {"rid", "1", "service", "s", "resource", "r", "act", "", "zzz", "ignored", NULL};
    CHECK(s_try_request(full, NULL, XWS_SLICE_NULL, &err) == 0);
    CHECK(s_try_request(unknown, NULL, XWS_SLICE_NULL, &err) == 0);
    CHECK(s_try_request(norid, NULL, XWS_SLICE_NULL, &err) == -1 && strcmp(err, "missing rid") == 0);
    CHECK(s_try_request(noact, NULL, XWS_SLICE_NULL, &err) == -1 && strcmp(err, "missing act") == 0);
    CHECK(s_try_request(emptyrid, NULL, XWS_SLICE_NULL, &err) == -1 && strcmp(err, "bad rid") == 0);
    CHECK(s_try_request(duprid, NULL, XWS_SLICE_NULL, &err) == -1 && strcmp(err, "duplicate key") == 0);
    CHECK(s_try_request(full, "params", (xws_slice_t){"\x81\xa1k\x01", 4}, &err) == -1 && strcmp(err, "bad params") == 0);
    CHECK(s_try_request(full, "params", (xws_slice_t){"\x81\xa1k\xc4\x01x", 6}, &err) == -1 && strcmp(err, "bad params") == 0);
    CHECK(s_try_request(full, "params", (xws_slice_t){"\x81\x01\xa1k", 4}, &err) == -1 && strcmp(err, "bad params") == 0);
    CHECK(s_try_request(full, "params", (xws_slice_t){"\x90", 1}, &err) == -1 && strcmp(err, "bad params") == 0);
    CHECK(s_try_request(full, "params", (xws_slice_t){"\x81\xa1k\xa1v", 5}, &err) == 0);
    CHECK(s_try_request(full, "caller", (xws_slice_t){"\x81\xa4mode\x07", 7}, &err) == -1 && strcmp(err, "bad caller") == 0);
    CHECK(s_try_request(full, "caller", (xws_slice_t){"\x81\xa1z\x07", 4}, &err) == 0); /* unknown caller key */
    CHECK(s_try_request(full, "deadline", (xws_slice_t){"\xff", 1}, &err) == -1 && strcmp(err, "bad deadline") == 0);
    CHECK(s_try_request(full, "deadline", (xws_slice_t){"\xcf\0\0\1\x8b\xcf\xe5\x68\x7b", 9}, &err) == 0); /* older senders */
    CHECK(s_try_request(full, "budget", (xws_slice_t){"\xa1x", 2}, &err) == -1 && strcmp(err, "bad budget") == 0);
    CHECK(s_try_request(full, "budget", (xws_slice_t){"\xcf\0\0\0\1\0\0\0\0", 9}, &err) == -1 && strcmp(err, "bad budget") == 0);
    CHECK(s_try_request(full, "budget", (xws_slice_t){"\xcd\x13\x88", 3}, &err) == 0);
    CHECK(s_try_request(full, "inm", (xws_slice_t){"\x01", 1}, &err) == -1 && strcmp(err, "bad inm") == 0);
    CHECK(s_try_request(full, "body", (xws_slice_t){"\xc0", 1}, &err) == 0);
    CHECK(s_try_request(full, "body", (xws_slice_t){"\xc4\x00", 2}, &err) == 0); /* any type is the worker's business */
    CHECK(s_try_request(full, NULL, XWS_SLICE_NULL, &err) == 0);
    const char *vers[][2] = {{"\x81\xa1v\x02", "unsupported_version"}, {"\x81\xa1v\xcf\0\0\0\1\0\0\0\1", "unsupported_version"},
                             {"\x81\xa1v\xa1\x31", "bad v"},           {"\x80", "missing v"},
                             {"\x81\x01\x01", "non-string key"},       {"\x91\x01", "not a map"}};
    for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
        size_t n = i == 1 ? 12 : strlen(vers[i][0]);
        CHECK(xws_request_decode(&req, vers[i][0], n, &err) == -1 && strcmp(err, vers[i][1]) == 0);
        xws_request_dispose(&req);
        xws_reply_t rep;
        CHECK(xws_reply_decode(&rep, vers[i][0], n, &err) == -1 && strcmp(err, vers[i][1]) == 0);
        xws_reply_dispose(&rep);
        CHECK(xws_reply_decode_raw(&rep, vers[i][0], n, &err) == -1 && strcmp(err, vers[i][1]) == 0);
        xws_reply_dispose(&rep);
    }
    /* a version-2 envelope is unsupported_version even when its other fields look wrong */
    CHECK(xws_request_decode(&req, "\x82\xa3rid\x01\xa1v\x02", 9, &err) == -1 && strcmp(err, "unsupported_version") == 0);
    xws_request_dispose(&req);

    /* replies */
    msgpack_sbuffer_clear(&env);
    msgpack_sbuffer_clear(&body);
    PACK(msgpack_pack_array(&pk, 1));
    PACK(msgpack_pack_str_with_body(&pk, "a", 1));
    CHECK(xws_reply_encode(200, xws_slice("\"v1\""), (xws_slice_t){body.data, body.size}, &env) == 0);
    xws_reply_t rep;
    CHECK(xws_reply_decode(&rep, env.data, env.size, &err) == 0);
    CHECK(rep.version == 1 && rep.status == 200 && xws_slice_eq(rep.etag, "\"v1\"") && rep.body != NULL);
    CHECK(rep.body->type == MSGPACK_OBJECT_ARRAY && rep.body->via.array.size == 1);
    xws_reply_dispose(&rep);
    s_torture(env.data, env.size, 0);
    msgpack_sbuffer_clear(&env);
    CHECK(xws_reply_encode(204, XWS_SLICE_NULL, XWS_SLICE_NULL, &env) == 0);
    CHECK(xws_reply_decode(&rep, env.data, env.size, &err) == 0 && rep.status == 204 && rep.body == NULL && rep.etag.len == 0);
    CHECK(rep.replayed == 0);
    xws_reply_dispose(&rep);
    msgpack_sbuffer_clear(&env);
    CHECK(xws_reply_encode_flags(200, XWS_SLICE_NULL, XWS_SLICE_NULL, XWS_REPLY_REPLAYED, &env) == 0);
    CHECK(xws_reply_decode(&rep, env.data, env.size, &err) == 0 && rep.status == 200 && rep.replayed == 1);
    xws_reply_dispose(&rep);
    s_torture(env.data, env.size, 0);
    CHECK(xws_reply_decode(&rep, "\x83\xa1v\x01\xa6status\xcc\xc8\xa8replayed\x01", 23, &err) == -1 &&
          strcmp(err, "bad replayed") == 0);
    xws_reply_dispose(&rep);
    msgpack_sbuffer_clear(&env);
    CHECK(xws_reply_encode(99, XWS_SLICE_NULL, XWS_SLICE_NULL, &env) == -1);
    CHECK(xws_reply_encode(600, XWS_SLICE_NULL, XWS_SLICE_NULL, &env) == -1);
    CHECK(xws_reply_encode(200, XWS_SLICE_NULL, (xws_slice_t){"\xc1", 1}, &env) == -1);
    msgpack_sbuffer_clear(&env);
    CHECK(xws_reply_encode_error(400, "missing_field", "name", "name is required", &env) == 0);
    CHECK(xws_reply_decode(&rep, env.data, env.size, &err) == 0 && rep.status == 400 && rep.body != NULL);
    CHECK(rep.body->type == MSGPACK_OBJECT_MAP && rep.body->via.map.size == 3);
    CHECK(s_key_is(&rep.body->via.map.ptr[0].key, "error") && s_key_is(&rep.body->via.map.ptr[0].val, "missing_field"));
    CHECK(s_key_is(&rep.body->via.map.ptr[1].val, "name") && s_key_is(&rep.body->via.map.ptr[2].val, "name is required"));
    xws_reply_dispose(&rep);
    CHECK(xws_reply_decode(&rep, "\x82\xa1v\x01\xa6status\xcd\x02\x58", 14, &err) == -1 && strcmp(err, "bad status") == 0);
    xws_reply_dispose(&rep);
    CHECK(xws_reply_decode(&rep, "\x81\xa1v\x01", 4, &err) == -1 && strcmp(err, "missing status") == 0);
    xws_reply_dispose(&rep);

    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&env);
}
