/*
 * svc_field - the record layer: a resource declares its records as data (tables of fields, with
 * nested objects, arrays, column-oriented row groups, variants chosen by a field and rules that
 * see the whole record) and this module validates request bodies against the declaration,
 * stores records as msgpack and renders them in declaration order with the contract's output
 * types.
 *
 * Kinds of field:
 *   SVC_TEXT, SVC_INT, SVC_BOOL  scalars (spec §3 input rules, below)
 *   SVC_ENUM                     text that must be one of .choices
 *   SVC_OBJECT                   a nested record of table .sub
 *   SVC_LIST                     an array: of scalars described by .item, or of records of .sub
 *   SVC_ROWS                     a column-oriented row group (`linefeatures`, `phonefunckey`): the
 *                                input is an object of parallel arrays, one per column of .sub;
 *                                the row count is the longest column, a missing cell is absent,
 *                                a row whose cells are all empty is ignored. Each row is a record
 *                                of .sub; errors name the cell: "linefeatures.number[1]" (the
 *                                index is the row's index in the request)
 *
 * A table may carry a variant: the value of one of its fields (e.g. "protocol") selects a second
 * table (sip, iax, sccp, custom) whose fields are read from the same object, checked after the
 * common ones, stored with them and rendered after them. Rules see the whole record:
 * SVC_RULE_REQUIRED_IF ("loginclient" when "enableclient" is true), SVC_RULE_EXCLUSIVE,
 * SVC_RULE_DEFAULT (a computed default, e.g. a generated secret) and SVC_RULE_CHECK (anything
 * else, OrReply).
 *
 * Input rules (spec §3): null counts as absent, unknown keys are ignored (unless the object is
 * SVC_F_CLOSED); flags accept true/false, 1/0, "1"/"0", "yes"/"no", "true"/"false" (any case);
 * numbers accept a JSON integer (or an integral real) or a string of digits ("" for an optional
 * number counts as absent); text accepts a string, or an integer taken as its decimal text
 * (unless SVC_F_STRICT). Text lengths count code points. Optional text may be empty whatever its
 * character rules. "Printable" text is valid UTF-8 without control characters (tab and newline
 * only where the field says multiline). Collections with SVC_F_FALSE_IN take `false` as "empty".
 * An edit is a merge: load the stored record, then the body on top (objects merge key by key;
 * arrays and row groups given in the body replace the stored ones).
 *
 * Errors follow PROTOCOL.md §9: missing_field, invalid_value, too_long, too_short, out_of_range
 * (and a field's own .check_code), with "field" the path of the value: "context.name",
 * "canonical[0].pattern", "linefeatures.number[1]". Type errors of the whole body are found by
 * svc_record_load_body_or_reply (in declaration order), rule errors by svc_record_check_or_reply.
 *
 * A typical add handler:
 *
 *     svc_record_t *rec = svc_record_new(&entity_table);
 *     if (svc_record_load_body_or_reply(ctx, rec, body) != 0 || (svc_record_defaults(rec),
 *         svc_record_check_or_reply(ctx, rec)) != 0) ...
 *     svc_record_pack_stored(rec, &pk);   // the blob the Redis function stores
 */
#ifndef SVC_FIELD_H
#define SVC_FIELD_H

#include <stddef.h>
#include <msgpack.h>
#include "svc_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SVC_TEXT,   /* a string */
    SVC_INT,    /* a signed 64-bit integer */
    SVC_BOOL,   /* a flag */
    SVC_ENUM,   /* a string among .choices */
    SVC_OBJECT, /* a nested record of table .sub */
    SVC_LIST,   /* an array of scalars (.item) or of records (.sub) */
    SVC_ROWS,   /* a column-oriented row group: records of .sub given as parallel arrays */
} svc_kind_t;

enum {
    SVC_F_REQUIRED = 1u << 0,   /* must be present (not null) once merged with defaults */
    SVC_F_INPUT = 1u << 1,      /* read from request bodies; without it the field is server-managed */
    SVC_F_STORED = 1u << 2,     /* part of the stored record */
    SVC_F_ID = 1u << 3,         /* output only: the record's id */
    SVC_F_COMPUTED = 1u << 4,   /* output only: written by the field's compute callback */
    SVC_F_HIDDEN = 1u << 5,     /* stored but never rendered */
    SVC_F_LOWER = 1u << 6,      /* input is lowercased (ASCII) */
    SVC_F_UPPER = 1u << 7,      /* input is uppercased (ASCII) */
    SVC_F_TRIM = 1u << 8,       /* surrounding white space is removed from the input */
    SVC_F_MULTILINE = 1u << 9,  /* tab and newline are allowed (description fields) */
    SVC_F_SEARCH = 1u << 10,    /* searched by svc_record_match */
    SVC_F_STRICT = 1u << 11,    /* text: only a JSON string is accepted (no integer) */
    SVC_F_FALSE_IN = 1u << 12,  /* collection: `false` on input is the empty collection */
    SVC_F_FALSE_OUT = 1u << 13, /* collection: rendered as `false` when empty (spec §3) */
    SVC_F_CLOSED = 1u << 14,    /* object: a key that is not a field is invalid_value (path.key) */
    SVC_F_INLINE = 1u << 15,    /* object of an array-stored table: its stored fields are spliced into the parent's array */
    SVC_F_DEDUP = 1u << 16,     /* list of scalars: repeated values are dropped (the first one is kept) */
    SVC_F_CSV = 1u << 17,       /* list of scalars: a string is split at commas */
};

/* The common combination: an input field that is stored. */
#define SVC_F_DATA (SVC_F_INPUT | SVC_F_STORED)

typedef enum {
    SVC_OUT_NATIVE, /* text as str, int as int, bool as bool */
    SVC_OUT_STRING, /* int and bool as their decimal text ("0"/"1" for flags; "" when unset) */
    SVC_OUT_NUMBER, /* bool as the number 0/1 (the pickup's `commented`); int and text as native */
} svc_out_t;

typedef struct svc_record svc_record_t;
typedef struct svc_table svc_table_t;
typedef struct svc_field svc_field_t;

/* Extra validation of a text value (non-empty, or required): 0 when valid. */
typedef int (*svc_check_fn)(const char *s, size_t len);
/* Renders a computed field's value (exactly one msgpack object). */
typedef void (*svc_compute_fn)(const svc_record_t *rec, msgpack_packer *pk);

struct svc_field {
    const char *name;                    /* key in bodies, records and output */
    svc_kind_t kind;                     /* value type */
    unsigned flags;                      /* SVC_F_* */
    unsigned min_len;                    /* text: fewest code points when non-empty or required */
    unsigned max_len;                    /* text: most code points; list/rows: most items; 0: no limit */
    long long min, max;                  /* int: inclusive bounds, checked unless both are 0 */
    const char *charset;                 /* text: allowed ASCII characters, ranges as "a-z0-9_.-"; NULL: printable */
    svc_check_fn check;                  /* text: extra validation, or NULL */
    const char *check_what;              /* text: what check expects, for the message ("an e-mail address") */
    const char *check_code;              /* text: error code when check fails (NULL: invalid_value) */
    const char *def;                     /* default as text ("30", "true", "client") for absent fields; NULL: none */
    svc_out_t out;                       /* output form */
    svc_compute_fn compute;              /* SVC_F_COMPUTED fields */
    const char *const *choices;          /* enum: the allowed values, NULL-terminated */
    const svc_table_t *sub;              /* object, rows, list of records: the table of the nested records */
    const svc_field_t *item;             /* list of scalars: kind and rules of one item (its name is unused) */
    size_t (*norm)(char *s, size_t len); /* text: normaliser run after trim/case; may grow the text by up to 63 bytes; returns the
                                            new length (0: left as is) */
};

/* A variant: the value of field selects the table of the second part ("sip" → sip_table). */
typedef struct {
    const char *value;
    const svc_table_t *table;
} svc_case_t;

typedef struct {
    const char *field;       /* a text or enum field of the same table */
    const svc_case_t *cases; /* terminated by {NULL, NULL} */
} svc_variant_t;

typedef enum {
    SVC_RULE_REQUIRED_IF, /* field is required when `when` is true/non-empty (or equals `equals`) */
    SVC_RULE_EXCLUSIVE,   /* field and `when` may not both be set (true/non-empty) */
    SVC_RULE_DEFAULT,     /* fill(rec) computes field when it is unset or empty (svc_record_defaults) */
    SVC_RULE_CHECK,       /* check(ctx, rec): 0, or -1 with the reply set (svc_record_error_or_reply helps) */
} svc_rule_kind_t;

typedef struct {
    svc_rule_kind_t kind;
    const char *field;
    const char *when;
    const char *equals;
    void (*fill)(svc_record_t *rec);
    int (*check)(svc_ctx_t *ctx, svc_record_t *rec);
} svc_rule_t;

struct svc_table {
    const svc_field_t *fields;
    size_t n;
    int stored_array;             /* stored form: a positional array of the stored fields (default: a map) */
    const svc_variant_t *variant; /* or NULL */
    const svc_rule_t *rules;      /* run in order after the fields' own checks; or NULL */
    size_t nrules;
};

/* SVC_TABLE(fields) or SVC_TABLE(fields, .variant = &v, .rules = r, .nrules = 2, .stored_array = 1) */
#define SVC_TABLE(array, ...) ((svc_table_t){.fields = (array), .n = sizeof(array) / sizeof((array)[0]), __VA_ARGS__})
#define SVC_RULES(array) .rules = (array), .nrules = sizeof(array) / sizeof((array)[0])

/* A new empty record of table t (borrowed, must outlive the record). Aborts on OOM. */
svc_record_t *svc_record_new(const svc_table_t *t);
/* NULL-safe; sets *self_p to NULL. */
void svc_record_destroy(svc_record_t **self_p);
/* Error paths name fields as prefix + name (copied; "" by default), e.g. "userfeatures.". */
void svc_record_set_path(svc_record_t *self, const char *prefix);
/* The path of field name of this record as errors show it ("linefeatures.number[1]"), pooled in ctx. */
const char *svc_record_path(svc_ctx_t *ctx, const svc_record_t *self, const char *name);
/* Sets a 400 error on field name of this record. Returns -1. */
int svc_record_error_or_reply(svc_ctx_t *ctx, const svc_record_t *self, const char *name, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The record's id (rendered by SVC_F_ID fields). */
void svc_record_set_id(svc_record_t *self, long long id);
long long svc_record_id(const svc_record_t *self);

/*
 * Value access by field name, in the record's table or its variant part (asserts that the name
 * is declared). Scalars: svc_record_has / str / int / set_* / unset. Text value is NUL-terminated,
 * owned by the record, "" when unset; *len when len != NULL. Int or bool: 0 when unset.
 */
int svc_record_has(const svc_record_t *self, const char *name);
const char *svc_record_str(const svc_record_t *self, const char *name, size_t *len);
long long svc_record_int(const svc_record_t *self, const char *name);
void svc_record_set_str(svc_record_t *self, const char *name, const char *s, size_t len);
void svc_record_set_int(svc_record_t *self, const char *name, long long v);
void svc_record_unset(svc_record_t *self, const char *name);
/* 1 when the field is declared (in the table or the variant part chosen now). */
int svc_record_declares(const svc_record_t *self, const char *name);
/* Object: the nested record (created empty when unset). Owned by self. */
svc_record_t *svc_record_obj(svc_record_t *self, const char *name);
/* List of records or rows: the count, and record i (owned by self); svc_record_row_index: its index in the request. */
size_t svc_record_count(const svc_record_t *self, const char *name);
svc_record_t *svc_record_at(const svc_record_t *self, const char *name, size_t i);
size_t svc_record_row_index(const svc_record_t *row);
/* Appends a new empty record to a list of records or rows and returns it (owned by self). */
svc_record_t *svc_record_append(svc_record_t *self, const char *name);
/* List of scalars: item i as text ("" when not text) or int. */
const char *svc_record_item_str(const svc_record_t *self, const char *name, size_t i, size_t *len);
long long svc_record_item_int(const svc_record_t *self, const char *name, size_t i);
/* The declaration of field name (in the table or the variant part chosen now), or NULL. */
const svc_field_t *svc_record_field(const svc_record_t *self, const char *name);
/* List of scalars: the index in the request of item i (for error paths: "<path>[index]"). */
size_t svc_record_item_index(const svc_record_t *self, const char *name, size_t i);
/* The variant chosen by the record ("sip"), or NULL when none. */
const char *svc_record_variant(const svc_record_t *self);

/*
 * Reads the SVC_F_INPUT fields present (and not null) in map into the record, converting and
 * normalising them; fields absent from the body keep their value (this is the merge of an
 * edit). A value of the wrong type is a 400 invalid_value (out_of_range for a too large number,
 * too_long for a list with too many items). 0, or -1 with the answer set.
 */
int svc_record_load_body_or_reply(svc_ctx_t *ctx, svc_record_t *self, const msgpack_object *map);
/* Gives unset SVC_F_STORED fields their default (def, else ""/0/false/empty unless required), then runs the DEFAULT rules. */
void svc_record_defaults(svc_record_t *self);
/* Checks every stored field against its rules, then the table's rules. 0, or -1 with the 400 answer set. */
int svc_record_check_or_reply(svc_ctx_t *ctx, svc_record_t *self);

/* Loads a stored record (as written by svc_record_pack_stored). 0, or -1 when malformed. Costs
 * one allocation for all the texts of the load (kept with the root record), none per field. */
int svc_record_load_stored(svc_record_t *self, const char *data, size_t len);
/* svc_record_load_stored of only the top-level fields named in only (NULL-terminated) of a record
 * stored as a map: the other entries are stepped over without being decoded (a view that shows
 * one part of a large record). The entries read are checked as svc_record_load_stored checks
 * them, the others only for being well-formed msgpack. 0, or -1 when malformed. */
int svc_record_load_stored_only(svc_record_t *self, const char *data, size_t len, const char *const *only);
/* Packs the stored fields (a map in table order without the unset fields, or the positional array). */
void svc_record_pack_stored(const svc_record_t *self, msgpack_packer *pk);
/* The stored form as a string pooled in ctx (for svc_write arguments). */
const char *svc_record_blob(svc_ctx_t *ctx, const svc_record_t *self, size_t *len);

/* Packs the output object: every field not hidden, in table order (variant part last), in its output form. */
void svc_record_render(const svc_record_t *self, msgpack_packer *pk);
/* The same without the map header, to compose several records into one object: count, then fields. */
size_t svc_record_render_count(const svc_record_t *self);
void svc_record_render_fields(const svc_record_t *self, msgpack_packer *pk);
/* 1 when needle occurs in one of the SVC_F_SEARCH fields (case-insensitive, Unicode). */
int svc_record_match(const svc_record_t *self, const char *needle, size_t len);

/* Common validators for svc_field_t.check: 0 when valid. */
int svc_check_email(const char *s, size_t len);    /* a plausible address: local@domain.tld */
int svc_check_hostname(const char *s, size_t len); /* RFC 1123 host name */
int svc_check_host(const char *s, size_t len);     /* a host name (an all-digit last label: an IPv4 address) */
int svc_check_ip(const char *s, size_t len);       /* an IPv4 or IPv6 address */
int svc_check_relay(const char *s, size_t len);    /* host or IPv4, or [IPv6/IPv4/host], then optional :port */
int svc_check_mac(const char *s, size_t len);      /* xx:xx:xx:xx:xx:xx, lowercase hex (see svc_norm_mac) */
/* Normalises a MAC address in place (case, "-"/":"/no separators) to xx:xx:xx:xx:xx:xx (s must have room for 17
 * bytes); returns 17, or 0 (s unchanged) when it is not a MAC address. */
size_t svc_norm_mac(char *s, size_t len);

void svc_field_test(void);

#ifdef __cplusplus
}
#endif
#endif
