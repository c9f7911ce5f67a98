/*
 * xws/proto.h - the XWS wire protocol (see proto/PROTOCOL.md): frames, request and reply
 * envelopes, JSON <-> msgpack conversion with limits, and a synchronous client for internal
 * consumers and tools.
 *
 * Conventions: functions return 0 on success and -1 on failure; misuse (NULL where an object is
 * required) is an assert. Slices (xws_slice_t) are borrowed views, never NUL-terminated unless
 * said so. Objects decoded from a buffer point into that buffer: the buffer must outlive them.
 */
#ifndef XWS_PROTO_H
#define XWS_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants ---------------------------------------------------------------------------- */

#define XWS_SIGNATURE "XWS1" /* frame 0 of every message */
#define XWS_SIGNATURE_LEN 4
#define XWS_ENVELOPE_VERSION 1      /* "v" of request and reply envelopes */
#define XWS_MAX_ENVELOPE (2u << 20) /* bytes; larger request envelope frames are malformed */
#define XWS_MAX_REPLY (64u << 20)   /* bytes; larger reply envelope frames are malformed (long lists) */
#define XWS_MAX_KEY 32              /* bytes of the REQUEST/REPLY key frame */
#define XWS_MAX_BATCH 256           /* (key, envelope) pairs in one REQUEST/REPLY message */
#define XWS_MAX_REPORT 512          /* bytes of a worker's report frame in a HEARTBEAT */

/* The gateway-only account resource of the config service (PROTOCOL.md §8): its names, shared by
 * the gateway that asks and the config service that answers. */
#define XWS_SERVICE_CONFIG "config"
/* The password checks (`account/verify`) have a service of their own, served by threads of the
 * config process, so that they never share a queue or a thread with the data requests. */
#define XWS_SERVICE_VERIFY "verify"
#define XWS_RESOURCE_ACCOUNT "account"
#define XWS_ACT_VERIFY "verify"
#define XWS_ACT_SNAPSHOT "snapshot"
#define XWS_MAX_RID 64   /* bytes of a request id */
#define XWS_MAX_NAME 32  /* bytes of service, resource and act names */
#define XWS_MAX_DEPTH 32 /* nesting of arrays/objects in converted bodies */

typedef enum {
    XWS_CMD_READY = 0x01,
    XWS_CMD_REQUEST = 0x02,
    XWS_CMD_REPLY = 0x03,
    XWS_CMD_HEARTBEAT = 0x04,
    XWS_CMD_DISCONNECT = 0x05,
} xws_cmd_t;

/* a borrowed run of bytes */
typedef struct {
    const char *ptr;
    size_t len;
} xws_slice_t;

#define XWS_SLICE_NULL ((xws_slice_t){NULL, 0})
/* a slice over a NUL-terminated string (NULL gives the empty slice) */
xws_slice_t xws_slice(const char *s);
/* 1 when the slice equals the NUL-terminated string s, else 0 */
int xws_slice_eq(xws_slice_t a, const char *s);

/* ---- growable byte buffer ------------------------------------------------------------------ */

/* A heap buffer; embed it, xws_buf_init() it, xws_buf_dispose() it. Aborts on out-of-memory. */
typedef struct {
    char *data;
    size_t len, cap;
} xws_buf_t;

void xws_buf_init(xws_buf_t *b);
/*
 * A msgpack_sbuffer write callback (for msgpack_packer_init) that starts small: the first
 * allocation is the size of the first write rounded up to 256 bytes (msgpack's own starts at
 * 8 KiB), then the buffer doubles. Small messages thus stay in the allocator's cheap size
 * classes. Aborts when out of memory.
 */
int xws_sbuffer_write(void *sbuffer, const char *buf, size_t len);
void xws_buf_dispose(xws_buf_t *b);
void xws_buf_reset(xws_buf_t *b);             /* len = 0, keeps the memory */
void xws_buf_reserve(xws_buf_t *b, size_t n); /* room for n more bytes without another allocation */
void xws_buf_add(xws_buf_t *b, const void *p, size_t n);
void xws_buf_adds(xws_buf_t *b, const char *s); /* adds strlen(s) bytes */
void xws_buf_addf(xws_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- request envelope ----------------------------------------------------------------------- */

/* One query parameter. */
typedef struct {
    xws_slice_t key, val;
} xws_kv_t;

/*
 * What an encoder needs to build a request envelope. All slices are borrowed. body_msgpack is
 * the already-encoded msgpack value of the body (one object), or an empty slice for "no body".
 */
typedef struct {
    xws_slice_t rid, service, resource, act;
    const xws_kv_t *params;
    size_t nparams;
    xws_slice_t body_msgpack;
    xws_slice_t caller_mode, caller_account, caller_addr;
    uint64_t deadline_ms; /* Unix ms on this host's clock, 0: none; sent as the budget left (PROTOCOL.md §3) */
    xws_slice_t inm;      /* If-None-Match, empty: none */
} xws_request_spec_t;

/*
 * Appends the msgpack request envelope for spec to out (a msgpack_sbuffer the caller owns).
 * Returns 0, or -1 when a field breaks a limit of PROTOCOL.md (rid/name too long, body_msgpack
 * not exactly one well-formed msgpack object).
 */
int xws_request_encode(const xws_request_spec_t *spec, msgpack_sbuffer *out);

/*
 * Rewrites the budget of an encoded request envelope env/len (in place): budget_ms (capped at
 * 2^32 - 1) becomes the time the sender still waits, for an envelope encoded earlier and sent
 * now (queued, or sent again). Returns 0, or -1 when the envelope carries no budget.
 */
int xws_request_set_budget(void *env, size_t len, uint64_t budget_ms);

/* Reads the budget of an encoded request envelope into *budget_ms: 0, or -1 when it carries none. */
int xws_request_get_budget(const void *env, size_t len, uint64_t *budget_ms);

/*
 * A decoded request envelope. Fields point into the decoded buffer and into _unpacked: valid
 * until xws_request_dispose() and while the buffer lives. body is NULL when absent or nil.
 */
typedef struct {
    uint32_t version;
    xws_slice_t rid, service, resource, act;
    xws_slice_t caller_mode, caller_account, caller_addr;
    uint64_t deadline_ms; /* Unix ms on this host's clock (the received budget added to the time of decoding), 0: none */
    xws_slice_t inm;
    const msgpack_object_map *params; /* NULL when absent; every key and value is a str */
    const msgpack_object *body;
    msgpack_unpacked _unpacked;
} xws_request_t;

/*
 * Decodes a request envelope from data/len into req (which needs no prior init).
 * Returns 0, or -1 with *err set to a static reason ("truncated", "trailing bytes",
 * "not a map", "missing rid", "bad params", "unsupported_version", ...). On -1 req is still
 * disposed-safe. The envelope must be exactly one msgpack object (no trailing bytes).
 * A version other than 1 sets *err to exactly "unsupported_version".
 */
int xws_request_decode(xws_request_t *req, const void *data, size_t len, const char **err);
void xws_request_dispose(xws_request_t *req);

/* Looks up parameter name; 0 and *out set when present, else -1. */
int xws_request_param(const xws_request_t *req, const char *name, xws_slice_t *out);

/* ---- reply envelope ------------------------------------------------------------------------- */

/*
 * Appends a reply envelope to out. body_msgpack: one encoded msgpack object, or empty for "no
 * body". etag: empty for none. Returns 0 or -1 (bad status or body).
 */
int xws_reply_encode(unsigned status, xws_slice_t etag, xws_slice_t body_msgpack, msgpack_sbuffer *out);

/* flags of xws_reply_encode_flags() */
#define XWS_REPLY_REPLAYED 1u /* "replayed": true - the recorded outcome of an earlier request with this rid */
/* the body comes from the caller's own msgpack packer (one object, within XWS_MAX_DEPTH by
 * construction): it is not walked again here (the receiver checks every body it decodes) */
#define XWS_REPLY_PACKED_BODY 2u

/* xws_reply_encode() with flags (XWS_REPLY_*, 0 for none). */
int xws_reply_encode_flags(unsigned status, xws_slice_t etag, xws_slice_t body_msgpack, unsigned flags, msgpack_sbuffer *out);

/*
 * Appends a reply envelope whose body is the error object
 * {"error": code, "field": field, "message": message} (field may be "" but not NULL).
 */
int xws_reply_encode_error(unsigned status, const char *code, const char *field, const char *message, msgpack_sbuffer *out);

/* A decoded reply; same lifetime rules as xws_request_t. */
typedef struct {
    uint32_t version;
    unsigned status;
    xws_slice_t etag;
    const msgpack_object *body; /* NULL when absent or nil */
    xws_slice_t body_raw;       /* xws_reply_decode_raw: the body's msgpack bytes (ptr NULL when absent or nil) */
    int replayed;               /* 1: the worker answered the recorded outcome of an earlier request with this rid */
    msgpack_unpacked _unpacked;
} xws_reply_t;

int xws_reply_decode(xws_reply_t *rep, const void *data, size_t len, const char **err);

/*
 * xws_reply_decode for a reply that is only relayed: the same checks and fields, but the body is
 * left as its bytes (body_raw, pointing into data; body stays NULL) and no object tree is built,
 * so that a long list costs one pass (xws_msgpack_raw_to_json) and no allocation. A body that is
 * the envelope's last entry (as xws_reply_encode writes it) is the rest of the bytes and is not
 * walked here: it is checked by whoever reads it (xws_msgpack_raw_to_json refuses a malformed
 * object or trailing bytes), so that it is read once; a body elsewhere is checked here. Dispose
 * with xws_reply_dispose.
 */
int xws_reply_decode_raw(xws_reply_t *rep, const void *data, size_t len, const char **err);
void xws_reply_dispose(xws_reply_t *rep);

/* ---- msgpack decoding ------------------------------------------------------------------------ */

/*
 * Decodes exactly one msgpack object from data/len into u (which needs no prior init; dispose it
 * with msgpack_unpacked_destroy() whatever the result). Strings, bins and exts point into data;
 * arrays and maps live in u's zone. Nesting of arrays/maps deeper than max_depth (1..1000; the top
 * container is depth 1) is refused. Returns 0, or -1 with *err set to a static reason
 * ("truncated", "trailing bytes", "too deep", "malformed msgpack"). Unlike msgpack_unpack_next()
 * it has no fixed depth limit of its own (an envelope needs 1 + XWS_MAX_DEPTH levels) and never
 * allocates more than the input can describe.
 */
int xws_msgpack_decode(msgpack_unpacked *u, const void *data, size_t len, int max_depth, const char **err);

/* Same checks without building anything: 0 when data/len is exactly one well-formed object. */
int xws_msgpack_validate(const void *data, size_t len, int max_depth, const char **err);

/*
 * Reads the next msgpack object at *p (before end), checked as xws_msgpack_validate checks (depth
 * max_depth), and moves *p past it. A scalar is decoded into *o (strings point into the input); a
 * container is only checked: o->type says MAP or ARRAY, with no elements. 0, or -1 with *err set.
 * With it a reader walks stored bytes and skips what it does not need without building anything.
 */
int xws_msgpack_next(const unsigned char **p, const unsigned char *end, int max_depth, msgpack_object *o, const char **err);

/*
 * Reads the header of a map at *p (before end): 0 with its number of entries in *n and *p moved
 * to the first key; -1 when *p is not a map (*p unchanged); -2 when the bytes end first. With
 * xws_msgpack_next, a reader walks a map's entries one by one.
 */
int xws_msgpack_map_header(const unsigned char **p, const unsigned char *end, uint32_t *n);

/* ---- JSON <-> msgpack ----------------------------------------------------------------------- */

/*
 * Parses JSON text (RFC 8259, any top-level value) and appends it to out as one msgpack object.
 * Limits of PROTOCOL.md §7 apply. Returns 0, or -1 with *err set to a static English sentence
 * saying what is wrong ("invalid JSON at line 1, column 5: ..." is written to errbuf when given).
 * errbuf may be NULL; otherwise it receives a NUL-terminated detail of at most errlen bytes.
 */
int xws_json_to_msgpack(const char *json, size_t len, msgpack_sbuffer *out, char *errbuf, size_t errlen);

/*
 * Renders a msgpack object as compact JSON into out (appending). Deterministic: keys in the
 * object's order, no spaces, UTF-8 kept, "/" not escaped, control characters escaped, reals with
 * the shortest text that reads back the same. Returns 0, or -1 when the object has no JSON form
 * (bin, ext, non-str key, NUL in a key, invalid UTF-8, u64 > INT64_MAX, NaN/Inf, depth >
 * XWS_MAX_DEPTH); on -1 out may hold a partial rendering (reset it).
 */
/*
 * Appends s/n as a JSON string, escaped exactly as xws_msgpack_to_json escapes strings. Returns 0,
 * or -1 (out unchanged) when s is not valid UTF-8, which has no JSON form.
 */
int xws_json_string(xws_buf_t *out, const char *s, size_t n);
int xws_msgpack_to_json(const msgpack_object *o, xws_buf_t *out);

/*
 * Renders the one msgpack object of data/len straight from its bytes, as xws_msgpack_to_json
 * renders its decoded tree (same text, same refusals, depth XWS_MAX_DEPTH), in one pass that
 * builds no tree and allocates nothing but out's growth. Returns 0, or -1 with *err set ("no JSON
 * form", or a decoding reason of xws_msgpack_decode); out may then hold a partial rendering.
 */
int xws_msgpack_raw_to_json(const void *data, size_t len, xws_buf_t *out, const char **err);

/* ---- frames ----------------------------------------------------------------------------------- */

/*
 * Frame helpers are declared in xws/frames.h (they need czmq), so that this header stays free of
 * czmq's global macros.
 */

/* ---- self-tests ---------------------------------------------------------------------------- */

/* Each runs the module's self-test: silent on success, aborts (assert-like, NDEBUG-proof) on
 * failure. */
void xws_buf_test(void);
void xws_envelope_test(void);
void xws_json_test(void);
void xws_msgpack_test(void);

#ifdef __cplusplus
}
#endif
#endif
