/*
 * svc_field - table-driven records: a resource declares its fields once (name, kind, rules,
 * normaliser, default, output form) and this module validates request bodies against the table,
 * stores records as msgpack maps and renders them in table order.
 *
 * Input rules (spec §3): null counts as absent, unknown keys are ignored; flags accept
 * true/false, 1/0, "1"/"0", "yes"/"no", "true"/"false" (any case); numbers accept a JSON
 * integer or a string of digits ("" for an optional number counts as absent); text accepts a
 * string (an integer is taken as its decimal text). Text lengths count code points. Optional
 * text may be empty whatever its character rules. "Printable" text is valid UTF-8 without
 * control characters (tab and newline only where the field says multiline).
 *
 * Errors follow PROTOCOL.md §9: missing_field, invalid_value, too_long, too_short, out_of_range,
 * with "field" naming the key (behind the record's path prefix, e.g. "userfeatures.firstname").
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
    SVC_TEXT, /* a string */
    SVC_INT,  /* a signed 64-bit integer */
    SVC_BOOL, /* a flag */
} svc_kind_t;

enum {
    SVC_F_REQUIRED = 1u << 0,  /* must be present (not null) once merged with defaults */
    SVC_F_INPUT = 1u << 1,     /* read from request bodies; without it the field is server-managed */
    SVC_F_STORED = 1u << 2,    /* part of the stored record */
    SVC_F_ID = 1u << 3,        /* output only: the record's id */
    SVC_F_COMPUTED = 1u << 4,  /* output only: written by the field's compute callback */
    SVC_F_HIDDEN = 1u << 5,    /* stored but never rendered */
    SVC_F_LOWER = 1u << 6,     /* input is lowercased (ASCII) */
    SVC_F_UPPER = 1u << 7,     /* input is uppercased (ASCII) */
    SVC_F_TRIM = 1u << 8,      /* surrounding white space is removed from the input */
    SVC_F_MULTILINE = 1u << 9, /* tab and newline are allowed (description fields) */
    SVC_F_SEARCH = 1u << 10,   /* searched by svc_record_match */
};

/* The common combination: an input field that is stored. */
#define SVC_F_DATA (SVC_F_INPUT | SVC_F_STORED)

typedef enum {
    SVC_OUT_NATIVE, /* text as str, int as int, bool as bool */
    SVC_OUT_STRING, /* int and bool as their decimal text ("0"/"1" for flags) */
} svc_out_t;

typedef struct svc_record svc_record_t;

/* Extra validation of a non-empty text value: 0 when valid. */
typedef int (*svc_check_fn)(const char *s, size_t len);
/* Renders a computed field's value (exactly one msgpack object). */
typedef void (*svc_compute_fn)(const svc_record_t *rec, msgpack_packer *pk);

typedef struct {
    const char *name;       /* key in bodies, records and output */
    svc_kind_t kind;        /* value type */
    unsigned flags;         /* SVC_F_* */
    unsigned min_len;       /* text: fewest code points when non-empty or required */
    unsigned max_len;       /* text: most code points; 0: no limit */
    long long min, max;     /* int: inclusive bounds, checked unless both are 0 */
    const char *charset;    /* text: allowed ASCII characters, ranges as "a-z0-9_.-"; NULL: printable */
    svc_check_fn check;     /* text: extra validation, or NULL */
    const char *check_what; /* text: what check expects, for the message ("an e-mail address") */
    const char *def;        /* default as text ("30", "true", "client") for absent fields; NULL: none */
    svc_out_t out;          /* output form */
    svc_compute_fn compute; /* SVC_F_COMPUTED fields */
} svc_field_t;

typedef struct {
    const svc_field_t *fields;
    size_t n;
} svc_table_t;

#define SVC_TABLE(array) ((svc_table_t){(array), sizeof(array) / sizeof((array)[0])})

/* A new empty record of table t (borrowed, must outlive the record). Aborts on OOM. */
svc_record_t *svc_record_new(const svc_table_t *t);
/* NULL-safe; sets *self_p to NULL. */
void svc_record_destroy(svc_record_t **self_p);
/* Error paths name fields as prefix + name (prefix borrowed; "" by default). */
void svc_record_set_path(svc_record_t *self, const char *prefix);

/* The record's id (rendered by SVC_F_ID fields). */
void svc_record_set_id(svc_record_t *self, long long id);
long long svc_record_id(const svc_record_t *self);

/* Value access by field name (asserts that the name is in the table). */
int svc_record_has(const svc_record_t *self, const char *name);
/* Text value (NUL-terminated, owned by the record) or "" when unset; *len when len != NULL. */
const char *svc_record_str(const svc_record_t *self, const char *name, size_t *len);
/* Int or bool value (0 when unset). */
long long svc_record_int(const svc_record_t *self, const char *name);
void svc_record_set_str(svc_record_t *self, const char *name, const char *s, size_t len);
void svc_record_set_int(svc_record_t *self, const char *name, long long v);
void svc_record_unset(svc_record_t *self, const char *name);

/*
 * Reads the SVC_F_INPUT fields present (and not null) in map into the record, converting and
 * normalising them; fields absent from the body keep their value (this is the merge of an
 * edit). A value of the wrong type is a 400 invalid_value (out_of_range for a too large number).
 */
int svc_record_load_body_or_reply(svc_ctx_t *ctx, svc_record_t *self, const msgpack_object *map);
/* Gives unset SVC_F_STORED fields their default (def, else ""/0/false unless required). */
void svc_record_defaults(svc_record_t *self);
/* Checks every stored field against its rules. 0, or -1 with the 400 answer set. */
int svc_record_check_or_reply(svc_ctx_t *ctx, svc_record_t *self);

/* Loads a stored record (a msgpack map as written by svc_record_pack_stored). 0, or -1 when malformed. */
int svc_record_load_stored(svc_record_t *self, const char *data, size_t len);
/* Packs the stored fields as a map, in table order (unset fields are left out). */
void svc_record_pack_stored(const svc_record_t *self, msgpack_packer *pk);
/* Packs the output object: every field not hidden, in table order, in its output form. */
void svc_record_render(const svc_record_t *self, msgpack_packer *pk);
/* 1 when needle occurs in one of the SVC_F_SEARCH fields (case-insensitive, Unicode). */
int svc_record_match(const svc_record_t *self, const char *needle, size_t len);

/* Common validators for svc_field_t.check. */
int svc_check_email(const char *s, size_t len);    /* a plausible address: local@domain.tld */
int svc_check_hostname(const char *s, size_t len); /* RFC 1123 host name */

void svc_field_test(void);

#ifdef __cplusplus
}
#endif
#endif
