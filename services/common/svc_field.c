/* svc_field.c - see svc_field.h */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include "svc_field.h"
#include "svc_mp.h"
#include "svc_util.h"

typedef struct svc_value svc_value_t;
struct svc_value {
    int set;             /* 1 when the field has a value (an empty collection is a value) */
    int own;             /* 1: s is freed with the value */
    long long i;         /* SVC_INT, SVC_BOOL */
    char *s;             /* SVC_TEXT, SVC_ENUM: NUL-terminated; malloc'ed when own, else in the root record's blocks */
    size_t len;          /* SVC_TEXT, SVC_ENUM: bytes */
    svc_record_t *obj;   /* SVC_OBJECT */
    svc_record_t **recs; /* SVC_LIST of records, SVC_ROWS */
    size_t nrecs;        /* ... their count */
    svc_value_t *items;  /* SVC_LIST of scalars */
    size_t nitems;       /* ... their count */
    size_t idx;          /* an item: its index in the request */
};

/* a block of texts loaded from a stored record (svc_record_load_stored: one block per load, no
 * allocation per field), owned by the root record */
typedef struct s_block {
    struct s_block *next;
    char data[];
} s_block_t;

/* where the texts of one stored load go */
typedef struct {
    char *p;
    size_t left;
} s_arena_t;

struct svc_record {
    const svc_table_t *table;  /* borrowed */
    s_block_t *_blocks;        /* texts of stored loads (see s_block_t) */
    svc_value_t *v;            /* one per field */
    long long id;              /* rendered by SVC_F_ID fields */
    char *prefix;              /* root: prefix of field names in errors (owned) */
    svc_record_t *parent;      /* nested records: the owner (borrowed) */
    const svc_field_t *pfield; /* ... the owner's field holding this record */
    size_t pidx;               /* ... the index in the request (list items, rows) */
    int is_variant;            /* 1: the variant part of parent */
    svc_record_t *var;         /* the variant part, or NULL */
    const svc_case_t *vcase;   /* the case of the variant part */
};

static int s_is_scalar(svc_kind_t k)
{
    return k == SVC_TEXT || k == SVC_INT || k == SVC_BOOL || k == SVC_ENUM;
}

static int s_is_text(svc_kind_t k)
{
    return k == SVC_TEXT || k == SVC_ENUM;
}

static svc_record_t *s_new(const svc_table_t *t, svc_record_t *parent, const svc_field_t *pf, size_t pidx)
{
    assert(t != NULL && t->fields != NULL);
    /* one allocation: the record, then its values (svc_record_t is a multiple of 8 bytes: the values are aligned) */
    _Static_assert(sizeof(svc_record_t) % _Alignof(svc_value_t) == 0, "values after the record are aligned");
    svc_record_t *self = svc_calloc(1, sizeof(*self) + (t->n + 1) * sizeof(svc_value_t));
    self->table = t;
    self->v = (svc_value_t *)(self + 1);
    self->parent = parent;
    self->pfield = pf;
    self->pidx = pidx;
    return self;
}

svc_record_t *svc_record_new(const svc_table_t *t)
{
    return s_new(t, NULL, NULL, 0);
}

static void s_value_clear(svc_value_t *v)
{
    if (v->own)
        free(v->s);
    svc_record_destroy(&v->obj);
    for (size_t i = 0; i < v->nrecs; i++)
        svc_record_destroy(&v->recs[i]);
    free(v->recs);
    for (size_t i = 0; i < v->nitems; i++)
        s_value_clear(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

/* frees what value v owns (v itself is left as is: its record is being freed) */
static void s_value_release(svc_value_t *v)
{
    if (v->own)
        free(v->s);
    if (v->obj != NULL)
        svc_record_destroy(&v->obj);
    for (size_t i = 0; i < v->nrecs; i++)
        svc_record_destroy(&v->recs[i]);
    free(v->recs);
    for (size_t i = 0; i < v->nitems; i++)
        s_value_release(&v->items[i]);
    free(v->items);
}

void svc_record_destroy(svc_record_t **self_p)
{
    assert(self_p != NULL);
    svc_record_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t i = 0; i < self->table->n; i++) {
        svc_value_t *v = &self->v[i];
        if (v->own || v->obj != NULL || v->recs != NULL || v->items != NULL) /* most values own nothing */
            s_value_release(v);
    }
    svc_record_destroy(&self->var);
    for (s_block_t *b = self->_blocks, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(self->prefix);
    free(self);
    *self_p = NULL;
}

void svc_record_set_path(svc_record_t *self, const char *prefix)
{
    free(self->prefix);
    self->prefix = prefix != NULL && *prefix != '\0' ? svc_strdup(prefix) : NULL;
}

void svc_record_set_id(svc_record_t *self, long long id)
{
    self->id = id;
}

long long svc_record_id(const svc_record_t *self)
{
    return self->id;
}

/* ---- paths ------------------------------------------------------------------------------------- */

/* appends the path of field name of rec (idx >= 0: item idx of that field) to b */
static void s_path(xws_buf_t *b, const svc_record_t *rec, const char *name, long idx)
{
    char num[32];
    if (rec->is_variant) {
        s_path(b, rec->parent, name, idx);
        return;
    }
    if (rec->parent == NULL) {
        if (rec->prefix != NULL)
            xws_buf_add(b, rec->prefix, strlen(rec->prefix));
    } else if (rec->pfield->kind == SVC_OBJECT) {
        s_path(b, rec->parent, rec->pfield->name, -1);
        xws_buf_add(b, ".", 1);
    } else if (rec->pfield->kind == SVC_LIST) {
        s_path(b, rec->parent, rec->pfield->name, (long)rec->pidx);
        xws_buf_add(b, ".", 1);
    } else { /* a row: "linefeatures.number[1]" */
        s_path(b, rec->parent, rec->pfield->name, -1);
        xws_buf_add(b, ".", 1);
        idx = (long)rec->pidx;
    }
    xws_buf_add(b, name, strlen(name));
    if (idx >= 0) {
        snprintf(num, sizeof(num), "[%ld]", idx);
        xws_buf_add(b, num, strlen(num));
    }
}

static const char *s_path_pooled(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx)
{
    xws_buf_t b;
    xws_buf_init(&b);
    s_path(&b, rec, name, idx);
    const char *p = svc_ctx_strndup(ctx, b.data != NULL ? b.data : "", b.len);
    xws_buf_dispose(&b);
    return p;
}

const char *svc_record_path(svc_ctx_t *ctx, const svc_record_t *self, const char *name)
{
    return s_path_pooled(ctx, self, name, -1);
}

static int s_vbad(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx, const char *code, const char *fmt,
                  va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *path = s_path_pooled(ctx, rec, name, idx);
    return svc_reply_error(ctx, 400, code, path, "%s: %s", path, msg);
}

static int s_bad(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int s_bad(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vbad(ctx, rec, name, idx, code, fmt, ap);
    va_end(ap);
    return -1;
}

int svc_record_error_or_reply(svc_ctx_t *ctx, const svc_record_t *self, const char *name, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vbad(ctx, self, name, -1, code, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- access ------------------------------------------------------------------------------------ */

/* the value and field of name in rec or its variant part; NULL when not declared */
static svc_value_t *s_find(const svc_record_t *rec, const char *name, const svc_field_t **f)
{
    for (; rec != NULL; rec = rec->var) {
        for (size_t i = 0; i < rec->table->n; i++) {
            if (strcmp(rec->table->fields[i].name, name) == 0) {
                if (f != NULL)
                    *f = &rec->table->fields[i];
                return &rec->v[i];
            }
        }
    }
    return NULL;
}

static svc_value_t *s_slot(const svc_record_t *rec, const char *name, const svc_field_t **f)
{
    svc_value_t *v = s_find(rec, name, f);
    assert(v != NULL && "field not declared");
    if (v == NULL)
        abort();
    return v;
}

static void s_set_str(svc_value_t *v, const char *s, size_t len)
{
    char *d = svc_strndup(s, len); /* before the free: s may be v's own text */
    if (v->own)
        free(v->s);
    v->s = d;
    v->own = 1;
    v->len = len;
    v->set = 1;
}

int svc_record_declares(const svc_record_t *self, const char *name)
{
    return s_find(self, name, NULL) != NULL;
}

int svc_record_has(const svc_record_t *self, const char *name)
{
    return s_slot(self, name, NULL)->set;
}

const char *svc_record_str(const svc_record_t *self, const char *name, size_t *len)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    if (len != NULL)
        *len = v->set && v->s ? v->len : 0;
    return v->set && v->s ? v->s : "";
}

long long svc_record_int(const svc_record_t *self, const char *name)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    return v->set ? v->i : 0;
}

void svc_record_set_str(svc_record_t *self, const char *name, const char *s, size_t len)
{
    s_set_str(s_slot(self, name, NULL), s, len);
}

void svc_record_set_int(svc_record_t *self, const char *name, long long v)
{
    svc_value_t *x = s_slot(self, name, NULL);
    x->i = v;
    x->set = 1;
}

void svc_record_unset(svc_record_t *self, const char *name)
{
    s_value_clear(s_slot(self, name, NULL));
}

/* the record that owns the value v of field f (self or its variant part) */
static svc_record_t *s_owner(svc_record_t *self, const svc_value_t *v)
{
    for (svc_record_t *r = self; r != NULL; r = r->var)
        if (v >= r->v && v < r->v + r->table->n)
            return r;
    abort();
}

static svc_record_t *s_obj(svc_record_t *owner, const svc_field_t *f, svc_value_t *v)
{
    if (v->obj == NULL)
        v->obj = s_new(f->sub, owner, f, 0);
    v->set = 1;
    return v->obj;
}

svc_record_t *svc_record_obj(svc_record_t *self, const char *name)
{
    const svc_field_t *f;
    svc_value_t *v = s_slot(self, name, &f);
    assert(f->kind == SVC_OBJECT);
    return s_obj(s_owner(self, v), f, v);
}

size_t svc_record_count(const svc_record_t *self, const char *name)
{
    const svc_field_t *f;
    const svc_value_t *v = s_slot(self, name, &f);
    return f->sub != NULL ? v->nrecs : v->nitems;
}

svc_record_t *svc_record_at(const svc_record_t *self, const char *name, size_t i)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    assert(i < v->nrecs);
    return v->recs[i];
}

size_t svc_record_row_index(const svc_record_t *row)
{
    return row->pidx;
}

static svc_record_t *s_append(svc_record_t *owner, const svc_field_t *f, svc_value_t *v, size_t idx)
{
    v->recs = svc_realloc(v->recs, (v->nrecs + 1) * sizeof(*v->recs));
    svc_record_t *r = s_new(f->sub, owner, f, idx);
    v->recs[v->nrecs++] = r;
    v->set = 1;
    return r;
}

svc_record_t *svc_record_append(svc_record_t *self, const char *name)
{
    const svc_field_t *f;
    svc_value_t *v = s_slot(self, name, &f);
    assert((f->kind == SVC_LIST || f->kind == SVC_ROWS) && f->sub != NULL);
    return s_append(s_owner(self, v), f, v, v->nrecs);
}

const char *svc_record_item_str(const svc_record_t *self, const char *name, size_t i, size_t *len)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    assert(i < v->nitems);
    if (len != NULL)
        *len = v->items[i].s != NULL ? v->items[i].len : 0;
    return v->items[i].s != NULL ? v->items[i].s : "";
}

long long svc_record_item_int(const svc_record_t *self, const char *name, size_t i)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    assert(i < v->nitems);
    return v->items[i].i;
}

const svc_field_t *svc_record_field(const svc_record_t *self, const char *name)
{
    const svc_field_t *f = NULL;
    return s_find(self, name, &f) != NULL ? f : NULL;
}

size_t svc_record_item_index(const svc_record_t *self, const char *name, size_t i)
{
    const svc_value_t *v = s_slot(self, name, NULL);
    assert(i < v->nitems);
    return v->items[i].idx;
}

const char *svc_record_variant(const svc_record_t *self)
{
    return self->vcase != NULL ? self->vcase->value : NULL;
}

/* ---- input ------------------------------------------------------------------------------------- */

/* parses a flag; 0 with *out, or -1 */
static int s_flag(const msgpack_object *o, long long *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        *out = o->via.boolean ? 1 : 0;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > 1)
            return -1;
        *out = (long long)o->via.u64;
        return 0;
    case MSGPACK_OBJECT_STR: {
        static const char *yes[] = {"1", "yes", "true"}, *no[] = {"0", "no", "false"};
        for (int i = 0; i < 3; i++) {
            if (o->via.str.size == strlen(yes[i]) && strncasecmp(o->via.str.ptr, yes[i], o->via.str.size) == 0) {
                *out = 1;
                return 0;
            }
            if (o->via.str.size == strlen(no[i]) && strncasecmp(o->via.str.ptr, no[i], o->via.str.size) == 0) {
                *out = 0;
                return 0;
            }
        }
        return -1;
    }
    default:
        return -1;
    }
}

static void s_normalise(const svc_field_t *f, svc_value_t *v)
{
    if (f->flags & SVC_F_TRIM) {
        size_t a = 0, b = v->len;
        while (a < b && (v->s[a] == ' ' || v->s[a] == '\t' || v->s[a] == '\n' || v->s[a] == '\r'))
            a++;
        while (b > a && (v->s[b - 1] == ' ' || v->s[b - 1] == '\t' || v->s[b - 1] == '\n' || v->s[b - 1] == '\r'))
            b--;
        memmove(v->s, v->s + a, b - a);
        v->len = b - a;
        v->s[v->len] = '\0';
    }
    for (size_t i = 0; i < v->len; i++) {
        if ((f->flags & SVC_F_LOWER) && v->s[i] >= 'A' && v->s[i] <= 'Z')
            v->s[i] = (char)(v->s[i] + 32);
        if ((f->flags & SVC_F_UPPER) && v->s[i] >= 'a' && v->s[i] <= 'z')
            v->s[i] = (char)(v->s[i] - 32);
    }
    if (f->norm != NULL && v->len > 0) {
        if (!v->own) /* a text of a block: copied out to grow */
            s_set_str(v, v->s, v->len);
        v->s = svc_realloc(v->s, v->len + 64); /* a normaliser may grow the text by up to 63 bytes */
        size_t n = f->norm(v->s, v->len);
        if (n > 0) {
            v->len = n;
            v->s[n] = '\0';
        }
    }
}

/* the value under key in map (the last one when repeated), or NULL */
static const msgpack_object *s_get(const msgpack_object *map, const char *key)
{
    return svc_mp_get(map, key);
}

/*
 * Loads one scalar o into v for field f; errors name field `name` (item idx when >= 0) of rec.
 * 1 when o counts as absent ("" for an optional number), 0 when loaded, -1 with the reply set.
 */
static int s_load_scalar(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx, const svc_field_t *f, svc_value_t *v,
                         const msgpack_object *o)
{
    char num[32];
    switch (f->kind) {
    case SVC_TEXT:
    case SVC_ENUM:
        if (o->type == MSGPACK_OBJECT_STR) {
            s_set_str(v, o->via.str.ptr, o->via.str.size);
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && !(f->flags & SVC_F_STRICT)) {
            snprintf(num, sizeof(num), "%llu", (unsigned long long)o->via.u64);
            s_set_str(v, num, strlen(num));
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && !(f->flags & SVC_F_STRICT)) {
            snprintf(num, sizeof(num), "%lld", (long long)o->via.i64);
            s_set_str(v, num, strlen(num));
        } else {
            return s_bad(ctx, rec, name, idx, "invalid_value", "expected a string");
        }
        s_normalise(f, v);
        return 0;
    case SVC_INT:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (o->via.u64 > (uint64_t)LLONG_MAX)
                return s_bad(ctx, rec, name, idx, "out_of_range", "number too large");
            v->i = (long long)o->via.u64;
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            v->i = o->via.i64;
        } else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
            double d = o->via.f64;
            if (!isfinite(d) || d != floor(d))
                return s_bad(ctx, rec, name, idx, "invalid_value", "expected an integer");
            if (d < -9.2e18 || d > 9.2e18)
                return s_bad(ctx, rec, name, idx, "out_of_range", "number too large");
            v->i = (long long)d;
        } else if (o->type == MSGPACK_OBJECT_STR) {
            const char *p = o->via.str.ptr;
            size_t n = o->via.str.size;
            while (n > 0 && (*p == ' ' || *p == '\t'))
                p++, n--;
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == 0 && !(f->flags & SVC_F_REQUIRED))
                return 1; /* "" for an optional number: absent */
            if (n == 0)
                return s_bad(ctx, rec, name, idx, "invalid_value", "expected a number");
            long long x = 0;
            for (size_t k = 0; k < n; k++) {
                if (p[k] < '0' || p[k] > '9')
                    return s_bad(ctx, rec, name, idx, "invalid_value", "expected a number");
                if (x > (LLONG_MAX - 9) / 10)
                    return s_bad(ctx, rec, name, idx, "out_of_range", "number too large");
                x = x * 10 + (p[k] - '0');
            }
            v->i = x;
        } else {
            return s_bad(ctx, rec, name, idx, "invalid_value", "expected a number");
        }
        v->set = 1;
        return 0;
    case SVC_BOOL:
        if (s_flag(o, &v->i) != 0)
            return s_bad(ctx, rec, name, idx, "invalid_value", "expected a boolean (true/false, 1/0, yes/no)");
        v->set = 1;
        return 0;
    default:
        abort();
    }
}

static int s_load_map(svc_ctx_t *ctx, svc_record_t *rec, const msgpack_object *map);

static int s_is_false(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean;
}

/* empties every collection of rec (an object given as false) */
static void s_empty_collections(svc_record_t *rec)
{
    for (size_t i = 0; i < rec->table->n; i++) {
        svc_kind_t k = rec->table->fields[i].kind;
        if (k == SVC_LIST || k == SVC_ROWS) {
            s_value_clear(&rec->v[i]);
            rec->v[i].set = 1;
        } else if (k == SVC_OBJECT && rec->v[i].obj != NULL) {
            s_empty_collections(rec->v[i].obj);
        }
    }
}

/* a key of an SVC_F_CLOSED object that is not declared: invalid_value naming it */
static int s_closed_or_reply(svc_ctx_t *ctx, svc_record_t *obj, const msgpack_object *map)
{
    for (uint32_t k = 0; k < map->via.map.size; k++) {
        const msgpack_object *key = &map->via.map.ptr[k].key;
        int known = 0;
        for (size_t i = 0; i < obj->table->n && !known; i++)
            known = svc_mp_str_eq(key, obj->table->fields[i].name) && (obj->table->fields[i].flags & SVC_F_INPUT);
        if (known)
            continue;
        const char *what = "a key of this object";
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size <= 64 && svc_printable(key->via.str.ptr, key->via.str.size, 0)) {
            char *name = svc_ctx_strndup(ctx, key->via.str.ptr, key->via.str.size);
            xws_buf_t b;
            xws_buf_init(&b);
            for (size_t i = 0; i < obj->table->n; i++) {
                if (i > 0)
                    xws_buf_add(&b, ", ", 2);
                xws_buf_add(&b, obj->table->fields[i].name, strlen(obj->table->fields[i].name));
            }
            xws_buf_add(&b, "", 1);
            s_bad(ctx, obj, name, -1, "invalid_value", "not one of the keys %s", b.data);
            xws_buf_dispose(&b);
            return -1;
        }
        return s_bad(ctx, obj->parent, obj->pfield->name, -1, "invalid_value", "%s is not known", what);
    }
    return 0;
}

/* 1 when a cell of a row group counts as empty */
static int s_cell_empty(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NIL || (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0);
}

static int s_load_rows(svc_ctx_t *ctx, svc_record_t *rec, const svc_field_t *f, svc_value_t *v, const msgpack_object *o)
{
    const svc_table_t *t = f->sub;
    const msgpack_object **cols = svc_calloc(t->n + 1, sizeof(*cols));
    size_t nrows = 0;
    int rc = 0;
    for (size_t c = 0; c < t->n && rc == 0; c++) {
        if (!(t->fields[c].flags & SVC_F_INPUT))
            continue;
        const msgpack_object *col = s_get(o, t->fields[c].name);
        if (col == NULL || col->type == MSGPACK_OBJECT_NIL)
            continue;
        if (col->type != MSGPACK_OBJECT_ARRAY) {
            xws_buf_t b;
            xws_buf_init(&b);
            s_path(&b, rec, f->name, -1);
            xws_buf_add(&b, ".", 1);
            xws_buf_add(&b, t->fields[c].name, strlen(t->fields[c].name));
            xws_buf_add(&b, "", 1);
            const char *path = svc_ctx_strndup(ctx, b.data, b.len - 1);
            xws_buf_dispose(&b);
            rc = svc_reply_error(ctx, 400, "invalid_value", path, "%s: expected an array (one cell per row)", path);
            break;
        }
        cols[c] = col;
        if (col->via.array.size > nrows)
            nrows = col->via.array.size;
    }
    if (rc == 0 && f->max_len > 0 && nrows > f->max_len)
        rc = s_bad(ctx, rec, f->name, -1, "too_long", "at most %u rows", f->max_len);
    if (rc == 0) {
        s_value_clear(v);
        v->set = 1;
        msgpack_object_kv *kv = svc_calloc(t->n + 1, sizeof(*kv));
        for (size_t r = 0; r < nrows && rc == 0; r++) {
            uint32_t n = 0;
            int empty = 1;
            for (size_t c = 0; c < t->n; c++) {
                if (cols[c] == NULL)
                    continue;
                kv[n].key.type = MSGPACK_OBJECT_STR;
                kv[n].key.via.str.ptr = t->fields[c].name;
                kv[n].key.via.str.size = (uint32_t)strlen(t->fields[c].name);
                kv[n].val = r < cols[c]->via.array.size ? cols[c]->via.array.ptr[r] : (msgpack_object){.type = MSGPACK_OBJECT_NIL};
                empty &= s_cell_empty(&kv[n].val);
                n++;
            }
            if (empty)
                continue; /* the web form's template row */
            msgpack_object row = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = n, .ptr = kv}};
            rc = s_load_map(ctx, s_append(rec, f, v, r), &row);
        }
        free(kv);
    }
    free(cols);
    return rc;
}

static int s_load_list(svc_ctx_t *ctx, svc_record_t *rec, const svc_field_t *f, svc_value_t *v, const msgpack_object *o)
{
    msgpack_object *split = NULL;
    msgpack_object arr = *o;
    if (o->type == MSGPACK_OBJECT_STR && (f->flags & SVC_F_CSV) && f->sub == NULL) {
        /* "ulaw,alaw" → ["ulaw", "alaw"] (an empty string is the empty list) */
        size_t n = 0, cap = 1;
        for (uint32_t i = 0; i < o->via.str.size; i++)
            cap += o->via.str.ptr[i] == ',';
        split = svc_calloc(cap, sizeof(*split));
        const char *p = o->via.str.ptr, *end = p + o->via.str.size;
        while (o->via.str.size > 0 && p <= end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            const char *e = c != NULL ? c : end;
            const char *a = p, *b = e;
            while (a < b && *a == ' ')
                a++;
            while (b > a && b[-1] == ' ')
                b--;
            split[n].type = MSGPACK_OBJECT_STR;
            split[n].via.str.ptr = a;
            split[n].via.str.size = (uint32_t)(b - a);
            n++;
            p = e + 1;
        }
        arr.type = MSGPACK_OBJECT_ARRAY;
        arr.via.array.size = (uint32_t)n;
        arr.via.array.ptr = split;
    }
    int rc = 0;
    if (arr.type != MSGPACK_OBJECT_ARRAY)
        rc = s_bad(ctx, rec, f->name, -1, "invalid_value", "expected an array");
    else if (f->max_len > 0 && arr.via.array.size > f->max_len)
        rc = s_bad(ctx, rec, f->name, -1, "too_long", "at most %u items", f->max_len);
    if (rc == 0) {
        s_value_clear(v);
        v->set = 1;
        uint32_t n = arr.via.array.size;
        if (f->sub == NULL)
            v->items = svc_calloc(n + 1, sizeof(*v->items));
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            const msgpack_object *e = &arr.via.array.ptr[i];
            if (f->sub != NULL) {
                if (e->type != MSGPACK_OBJECT_MAP)
                    rc = s_bad(ctx, rec, f->name, (long)i, "invalid_value", "expected an object");
                else
                    rc = s_load_map(ctx, s_append(rec, f, v, i), e);
                continue;
            }
            svc_value_t *it = &v->items[v->nitems];
            if (e->type == MSGPACK_OBJECT_NIL) {
                rc = s_bad(ctx, rec, f->name, (long)i, "invalid_value", "an item may not be null");
                continue;
            }
            int st = s_load_scalar(ctx, rec, f->name, (long)i, f->item, it, e);
            if (st < 0) {
                rc = -1;
                continue;
            }
            it->set = 1;
            it->idx = i;
            int dup = 0;
            for (size_t k = 0; k < v->nitems && (f->flags & SVC_F_DEDUP) && !dup; k++)
                dup = s_is_text(f->item->kind) ? (v->items[k].len == it->len && memcmp(v->items[k].s, it->s, it->len) == 0)
                                               : v->items[k].i == it->i;
            if (dup)
                s_value_clear(it);
            else
                v->nitems++;
        }
    }
    free(split);
    return rc;
}

/* loads o (not absent, not null) into field f (value v) of rec */
static int s_load_value(svc_ctx_t *ctx, svc_record_t *rec, const svc_field_t *f, svc_value_t *v, const msgpack_object *o)
{
    if (s_is_scalar(f->kind))
        return s_load_scalar(ctx, rec, f->name, -1, f, v, o) < 0 ? -1 : 0;
    if ((f->flags & SVC_F_FALSE_IN) && s_is_false(o)) {
        if (f->kind == SVC_OBJECT) {
            s_empty_collections(s_obj(rec, f, v));
        } else {
            s_value_clear(v);
            v->set = 1;
        }
        return 0;
    }
    switch (f->kind) {
    case SVC_OBJECT:
        if (o->type != MSGPACK_OBJECT_MAP)
            return s_bad(ctx, rec, f->name, -1, "invalid_value", "expected an object");
        if ((f->flags & SVC_F_CLOSED) && s_closed_or_reply(ctx, s_obj(rec, f, v), o) != 0)
            return -1;
        return s_load_map(ctx, s_obj(rec, f, v), o);
    case SVC_LIST:
        return s_load_list(ctx, rec, f, v, o);
    case SVC_ROWS:
        if (o->type != MSGPACK_OBJECT_MAP)
            return s_bad(ctx, rec, f->name, -1, "invalid_value", "expected an object of columns");
        return s_load_rows(ctx, rec, f, v, o);
    default:
        abort();
    }
}

/* chooses the variant part from the selector's current value (a new case starts empty) */
static void s_choose_variant(svc_record_t *rec)
{
    const svc_variant_t *var = rec->table->variant;
    if (var == NULL)
        return;
    const svc_value_t *sel = s_slot(rec, var->field, NULL);
    const svc_case_t *c = NULL;
    for (const svc_case_t *k = var->cases; sel->set && sel->s != NULL && k->value != NULL && c == NULL; k++)
        if (strcmp(k->value, sel->s) == 0)
            c = k;
    if (c == rec->vcase)
        return;
    svc_record_destroy(&rec->var);
    rec->vcase = c;
    if (c != NULL) {
        rec->var = s_new(c->table, rec, NULL, 0);
        rec->var->is_variant = 1;
    }
}

static int s_load_map(svc_ctx_t *ctx, svc_record_t *rec, const msgpack_object *map)
{
    for (size_t i = 0; i < rec->table->n; i++) {
        const svc_field_t *f = &rec->table->fields[i];
        if (!(f->flags & SVC_F_INPUT))
            continue;
        const msgpack_object *o = s_get(map, f->name);
        if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
            continue;
        if (s_load_value(ctx, rec, f, &rec->v[i], o) != 0)
            return -1;
    }
    s_choose_variant(rec);
    return rec->var != NULL ? s_load_map(ctx, rec->var, map) : 0;
}

int svc_record_load_body_or_reply(svc_ctx_t *ctx, svc_record_t *self, const msgpack_object *map)
{
    assert(map != NULL && map->type == MSGPACK_OBJECT_MAP);
    return s_load_map(ctx, self, map);
}

/* ---- defaults and checks ---------------------------------------------------------------------- */

static int s_truthy(const svc_field_t *f, const svc_value_t *v)
{
    if (!v->set)
        return 0;
    if (s_is_text(f->kind))
        return v->len > 0;
    if (f->kind == SVC_INT || f->kind == SVC_BOOL)
        return v->i != 0;
    return v->nrecs > 0 || v->nitems > 0 || v->obj != NULL;
}

void svc_record_defaults(svc_record_t *self)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        svc_value_t *v = &self->v[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        if (f->kind == SVC_OBJECT) {
            if (v->set || !(f->flags & SVC_F_REQUIRED))
                svc_record_defaults(s_obj(self, f, v));
            continue;
        }
        if (f->kind == SVC_LIST || f->kind == SVC_ROWS) {
            for (size_t k = 0; k < v->nrecs; k++)
                svc_record_defaults(v->recs[k]);
            if (!(f->flags & SVC_F_REQUIRED))
                v->set = 1;
            continue;
        }
        if (v->set || (f->def == NULL && (f->flags & SVC_F_REQUIRED)))
            continue;
        const char *d = f->def != NULL ? f->def : "";
        if (s_is_text(f->kind)) {
            s_set_str(v, d, strlen(d));
        } else if (f->kind == SVC_INT) {
            v->i = strtoll(d, NULL, 10);
            v->set = 1;
        } else {
            v->i = strcmp(d, "1") == 0 || strcmp(d, "true") == 0 || strcmp(d, "yes") == 0;
            v->set = 1;
        }
    }
    s_choose_variant(self);
    if (self->var != NULL)
        svc_record_defaults(self->var);
    for (size_t r = 0; r < self->table->nrules; r++) {
        const svc_rule_t *rule = &self->table->rules[r];
        if (rule->kind != SVC_RULE_DEFAULT)
            continue;
        const svc_field_t *f;
        const svc_value_t *v = s_slot(self, rule->field, &f);
        if (!v->set || (s_is_text(f->kind) && v->len == 0))
            rule->fill(self);
    }
}

static int s_charset_has(const char *spec, unsigned char c)
{
    for (const char *p = spec; *p != '\0'; p++) {
        if (p[1] == '-' && p[2] != '\0') {
            if (c >= (unsigned char)p[0] && c <= (unsigned char)p[2])
                return 1;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return 1;
        }
    }
    return 0;
}

/* the rules of one scalar value of field f (errors name `name`, item idx when >= 0) */
static int s_check_scalar(svc_ctx_t *ctx, const svc_record_t *rec, const char *name, long idx, const svc_field_t *f,
                          const svc_value_t *v)
{
    if (f->kind == SVC_INT) {
        if ((f->min != 0 || f->max != 0) && (v->i < f->min || v->i > f->max))
            return s_bad(ctx, rec, name, idx, "out_of_range", "must be between %lld and %lld", f->min, f->max);
        return 0;
    }
    if (!s_is_text(f->kind))
        return 0;
    long cps = svc_utf8_len(v->s, v->len);
    if (cps < 0)
        return s_bad(ctx, rec, name, idx, "invalid_value", "not valid UTF-8");
    if (cps == 0 && !(f->flags & SVC_F_REQUIRED))
        return 0;
    if (f->kind == SVC_ENUM) {
        for (const char *const *c = f->choices; *c != NULL; c++)
            if (strlen(*c) == v->len && memcmp(*c, v->s, v->len) == 0)
                return 0;
        xws_buf_t b;
        xws_buf_init(&b);
        for (const char *const *c = f->choices; *c != NULL; c++) {
            if (c != f->choices)
                xws_buf_add(&b, ", ", 2);
            xws_buf_add(&b, *c, strlen(*c));
        }
        xws_buf_add(&b, "", 1);
        s_bad(ctx, rec, name, idx, "invalid_value", "expected one of %s", b.data);
        xws_buf_dispose(&b);
        return -1;
    }
    if ((unsigned long)cps < f->min_len)
        return s_bad(ctx, rec, name, idx, "too_short", "at least %u characters", f->min_len);
    if (f->max_len > 0 && (unsigned long)cps > f->max_len)
        return s_bad(ctx, rec, name, idx, "too_long", "at most %u characters", f->max_len);
    if (f->charset != NULL) {
        for (size_t k = 0; k < v->len; k++)
            if (!s_charset_has(f->charset, (unsigned char)v->s[k]))
                return s_bad(ctx, rec, name, idx, "invalid_value", "only the characters %s are allowed", f->charset);
    } else if (!svc_printable(v->s, v->len, (f->flags & SVC_F_MULTILINE) != 0)) {
        return s_bad(ctx, rec, name, idx, "invalid_value", "control characters are not allowed");
    }
    if (f->check != NULL && f->check(v->s, v->len) != 0)
        return s_bad(ctx, rec, name, idx, f->check_code != NULL ? f->check_code : "invalid_value", "expected %s",
                     f->check_what ? f->check_what : "a valid value");
    return 0;
}

static int s_rules_or_reply(svc_ctx_t *ctx, svc_record_t *self)
{
    for (size_t r = 0; r < self->table->nrules; r++) {
        const svc_rule_t *rule = &self->table->rules[r];
        const svc_field_t *f, *w;
        const svc_value_t *v, *wv;
        switch (rule->kind) {
        case SVC_RULE_REQUIRED_IF:
            v = s_slot(self, rule->field, &f);
            wv = s_slot(self, rule->when, &w);
            if (rule->equals != NULL ? (wv->set && wv->s != NULL && strcmp(wv->s, rule->equals) == 0) : s_truthy(w, wv)) {
                if (!s_truthy(f, v))
                    return s_bad(ctx, self, rule->field, -1, "missing_field", "required when %s is %s", rule->when,
                                 rule->equals != NULL ? rule->equals : "set");
            }
            break;
        case SVC_RULE_EXCLUSIVE:
            v = s_slot(self, rule->field, &f);
            wv = s_slot(self, rule->when, &w);
            if (s_truthy(f, v) && s_truthy(w, wv))
                return s_bad(ctx, self, rule->field, -1, "invalid_value", "cannot be given together with %s", rule->when);
            break;
        case SVC_RULE_CHECK:
            if (rule->check(ctx, self) != 0)
                return -1;
            break;
        case SVC_RULE_DEFAULT:
            break;
        }
    }
    return 0;
}

int svc_record_check_or_reply(svc_ctx_t *ctx, svc_record_t *self)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        const svc_value_t *v = &self->v[i];
        if (!(f->flags & (SVC_F_STORED | SVC_F_INPUT)))
            continue;
        if (!v->set) {
            if (f->flags & SVC_F_REQUIRED)
                return s_bad(ctx, self, f->name, -1, "missing_field", "this field is required");
            continue;
        }
        if (s_is_scalar(f->kind)) {
            if (s_check_scalar(ctx, self, f->name, -1, f, v) != 0)
                return -1;
        } else if (f->kind == SVC_OBJECT) {
            if (v->obj != NULL && svc_record_check_or_reply(ctx, v->obj) != 0)
                return -1;
        } else {
            for (size_t k = 0; k < v->nrecs; k++)
                if (svc_record_check_or_reply(ctx, v->recs[k]) != 0)
                    return -1;
            for (size_t k = 0; k < v->nitems; k++)
                if (s_check_scalar(ctx, self, f->name, (long)v->items[k].idx, f->item, &v->items[k]) != 0)
                    return -1;
        }
    }
    if (self->var != NULL && svc_record_check_or_reply(ctx, self->var) != 0)
        return -1;
    return s_rules_or_reply(ctx, self);
}

/* ---- storage ----------------------------------------------------------------------------------- */

static void s_pack_stored(const svc_record_t *self, msgpack_packer *pk);

/* elements of the positional array of table t (inline objects count their own) */
static size_t s_array_width(const svc_table_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const svc_field_t *f = &t->fields[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        n += f->kind == SVC_OBJECT && (f->flags & SVC_F_INLINE) ? s_array_width(f->sub) : 1;
    }
    return n;
}

static void s_pack_scalar(const svc_field_t *f, const svc_value_t *v, msgpack_packer *pk)
{
    if (!v->set)
        msgpack_pack_nil(pk);
    else if (s_is_text(f->kind))
        svc_mp_strn(pk, v->s != NULL ? v->s : "", v->s != NULL ? v->len : 0);
    else if (f->kind == SVC_INT)
        msgpack_pack_int64(pk, v->i);
    else if (v->i)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void s_pack_stored_value(const svc_field_t *f, const svc_value_t *v, msgpack_packer *pk)
{
    if (s_is_scalar(f->kind)) {
        s_pack_scalar(f, v, pk);
    } else if (f->kind == SVC_OBJECT) {
        if (v->obj != NULL)
            s_pack_stored(v->obj, pk);
        else
            msgpack_pack_nil(pk);
    } else if (f->sub != NULL) {
        msgpack_pack_array(pk, v->nrecs);
        for (size_t k = 0; k < v->nrecs; k++)
            s_pack_stored(v->recs[k], pk);
    } else {
        msgpack_pack_array(pk, v->nitems);
        for (size_t k = 0; k < v->nitems; k++)
            s_pack_scalar(f->item, &v->items[k], pk);
    }
}

static void s_pack_array_fields(const svc_table_t *t, const svc_record_t *self, msgpack_packer *pk)
{
    for (size_t i = 0; i < t->n; i++) {
        const svc_field_t *f = &t->fields[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        if (f->kind == SVC_OBJECT && (f->flags & SVC_F_INLINE))
            s_pack_array_fields(f->sub, self != NULL ? self->v[i].obj : NULL, pk);
        else if (self == NULL)
            msgpack_pack_nil(pk);
        else
            s_pack_stored_value(f, &self->v[i], pk);
    }
}

static size_t s_map_count(const svc_record_t *self)
{
    size_t n = 0;
    for (; self != NULL; self = self->var)
        for (size_t i = 0; i < self->table->n; i++)
            if ((self->table->fields[i].flags & SVC_F_STORED) && self->v[i].set)
                n++;
    return n;
}

static void s_pack_stored(const svc_record_t *self, msgpack_packer *pk)
{
    if (self->table->stored_array) {
        assert(self->table->variant == NULL);
        msgpack_pack_array(pk, s_array_width(self->table));
        s_pack_array_fields(self->table, self, pk);
        return;
    }
    msgpack_pack_map(pk, s_map_count(self));
    for (const svc_record_t *r = self; r != NULL; r = r->var) {
        for (size_t i = 0; i < r->table->n; i++) {
            const svc_field_t *f = &r->table->fields[i];
            if (!(f->flags & SVC_F_STORED) || !r->v[i].set)
                continue;
            svc_mp_cstr(pk, f->name);
            s_pack_stored_value(f, &r->v[i], pk);
        }
    }
}

void svc_record_pack_stored(const svc_record_t *self, msgpack_packer *pk)
{
    s_pack_stored(self, pk);
}

const char *svc_record_blob(svc_ctx_t *ctx, const svc_record_t *self, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    s_pack_stored(self, &pk);
    const char *b = svc_ctx_strndup(ctx, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return b;
}

static int s_load_stored_obj(svc_record_t *self, const msgpack_object *o, s_arena_t *a);

/* a text of a stored load: copied into the load's block (room for every text of the load is reserved) */
static void s_set_str_arena(svc_value_t *v, const char *s, size_t len, s_arena_t *a)
{
    assert(a->left >= len + 1);
    if (v->own)
        free(v->s);
    v->s = a->p;
    if (len > 0)
        memcpy(v->s, s, len);
    v->s[len] = '\0';
    a->p += len + 1;
    a->left -= len + 1;
    v->own = 0;
    v->len = len;
    v->set = 1;
}

static int s_load_stored_scalar(const svc_field_t *f, svc_value_t *v, const msgpack_object *o, s_arena_t *a)
{
    if (s_is_text(f->kind) && o->type == MSGPACK_OBJECT_STR)
        s_set_str_arena(v, o->via.str.ptr, o->via.str.size, a);
    else if (f->kind == SVC_INT && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)LLONG_MAX)
        v->i = (long long)o->via.u64, v->set = 1;
    else if (f->kind == SVC_INT && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v->i = o->via.i64, v->set = 1;
    else if (f->kind == SVC_BOOL && o->type == MSGPACK_OBJECT_BOOLEAN)
        v->i = o->via.boolean, v->set = 1;
    else
        return -1;
    return 0;
}

static int s_load_stored_value(svc_record_t *rec, const svc_field_t *f, svc_value_t *v, const msgpack_object *o, s_arena_t *a)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        s_value_clear(v);
        return 0;
    }
    if (s_is_scalar(f->kind))
        return s_load_stored_scalar(f, v, o, a);
    if (f->kind == SVC_OBJECT)
        return s_load_stored_obj(s_obj(rec, f, v), o, a);
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    s_value_clear(v);
    v->set = 1;
    if (f->sub != NULL) {
        for (uint32_t k = 0; k < o->via.array.size; k++)
            if (s_load_stored_obj(s_append(rec, f, v, k), &o->via.array.ptr[k], a) != 0)
                return -1;
        return 0;
    }
    v->items = svc_calloc(o->via.array.size + 1, sizeof(*v->items));
    for (uint32_t k = 0; k < o->via.array.size; k++) {
        if (s_load_stored_scalar(f->item, &v->items[k], &o->via.array.ptr[k], a) != 0)
            return -1;
        v->items[k].idx = k;
        v->nitems++;
    }
    return 0;
}

static int s_load_array_fields(svc_record_t *self, const msgpack_object *arr, uint32_t *pos, s_arena_t *a)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        if (f->kind == SVC_OBJECT && (f->flags & SVC_F_INLINE)) {
            if (s_load_array_fields(s_obj(self, f, &self->v[i]), arr, pos, a) != 0)
                return -1;
            continue;
        }
        uint32_t p = (*pos)++;
        if (p >= arr->via.array.size)
            continue; /* positions appended by a later version */
        if (s_load_stored_value(self, f, &self->v[i], &arr->via.array.ptr[p], a) != 0)
            return -1;
    }
    return 0;
}

/* an index of the keys of a stored map (open addressing, the last of equal keys wins as with
 * svc_mp_get), so that a record whose map is not in table order (a record written by a Lua
 * function) is loaded without a scan of the map per field */
#define S_KEYIDX_SLOTS 512 /* maps of up to half as many keys are indexed; larger ones are scanned */

typedef struct {
    const msgpack_object_map *m;
    uint16_t slot[S_KEYIDX_SLOTS]; /* 1 + the key's position, 0: empty */
} s_keyidx_t;

static unsigned s_key_hash(const char *k, size_t len)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

/* 0, or -1 when the map is too large to be indexed */
static int s_keyidx_init(s_keyidx_t *x, const msgpack_object_map *m)
{
    x->m = m;
    if (m->size > S_KEYIDX_SLOTS / 2)
        return -1;
    memset(x->slot, 0, sizeof(x->slot));
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        unsigned h = s_key_hash(k->via.str.ptr, k->via.str.size) % S_KEYIDX_SLOTS;
        for (;; h = (h + 1) % S_KEYIDX_SLOTS) {
            if (x->slot[h] == 0) {
                x->slot[h] = (uint16_t)(i + 1);
                break;
            }
            const msgpack_object *o = &m->ptr[x->slot[h] - 1].key;
            if (o->via.str.size == k->via.str.size && memcmp(o->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0) {
                x->slot[h] = (uint16_t)(i + 1); /* a later equal key wins */
                break;
            }
        }
    }
    return 0;
}

/* the value of key name (len bytes) in the indexed map, NULL when absent */
static const msgpack_object *s_keyidx_get(const s_keyidx_t *x, const char *name, size_t len)
{
    for (unsigned h = s_key_hash(name, len) % S_KEYIDX_SLOTS; x->slot[h] != 0; h = (h + 1) % S_KEYIDX_SLOTS) {
        const msgpack_object_kv *kv = &x->m->ptr[x->slot[h] - 1];
        if (kv->key.via.str.size == len && memcmp(kv->key.via.str.ptr, name, len) == 0)
            return &kv->val;
    }
    return NULL;
}

static int s_load_stored_obj(svc_record_t *self, const msgpack_object *o, s_arena_t *a)
{
    if (self->table->stored_array) {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return -1;
        uint32_t pos = 0;
        return s_load_array_fields(self, o, &pos, a);
    }
    if (o->type != MSGPACK_OBJECT_MAP)
        return -1;
    /* svc_record_pack_stored writes the fields in table order (variant part last): walk the map
     * along the table, and look a key up only when it is not the next one. Unset fields are not
     * stored, and a map out of table order is looked up through an index of its keys. */
    const msgpack_object_map *m = &o->via.map;
    s_keyidx_t idx;
    int indexed = 0; /* the index: 0 not built yet (at the first key out of order), 1 built, -1 map too large */
    uint32_t next = 0;
    for (svc_record_t *r = self; r != NULL; r = r->var) {
        for (size_t i = 0; i < r->table->n; i++) {
            const svc_field_t *f = &r->table->fields[i];
            if (!(f->flags & SVC_F_STORED))
                continue;
            const msgpack_object *v = NULL;
            size_t nl = strlen(f->name);
            const msgpack_object *k = next < m->size ? &m->ptr[next].key : NULL;
            if (k != NULL && k->type == MSGPACK_OBJECT_STR && k->via.str.size == nl && memcmp(k->via.str.ptr, f->name, nl) == 0)
                v = &m->ptr[next++].val;
            else {
                if (indexed == 0)
                    indexed = s_keyidx_init(&idx, m) == 0 ? 1 : -1;
                v = indexed > 0 ? s_keyidx_get(&idx, f->name, nl) : svc_mp_get(o, f->name);
            }
            if (v != NULL && s_load_stored_value(r, f, &r->v[i], v, a) != 0)
                return -1;
        }
        s_choose_variant(r);
    }
    return 0;
}

/* one zone for every load (kept between calls: no allocation per load), cleared after each */
static msgpack_zone *s_load_zone(void)
{
    static __thread msgpack_zone *zone;
    if (zone == NULL && (zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)) == NULL)
        abort();
    return zone;
}

/* the arena for the texts of a load of len stored bytes: each text takes at most its bytes and a
 * NUL, and its header is at least one byte; the block is kept with the root record */
static s_arena_t s_load_arena(svc_record_t *self, size_t len)
{
    svc_record_t *root = self;
    while (root->parent != NULL)
        root = root->parent;
    s_block_t *b = svc_malloc(sizeof(*b) + 2 * len);
    b->next = root->_blocks;
    root->_blocks = b;
    return (s_arena_t){b->data, 2 * len};
}

int svc_record_load_stored(svc_record_t *self, const char *data, size_t len)
{
    msgpack_zone *zone = s_load_zone();
    msgpack_object o;
    size_t off = 0;
    int rc = -1;
    if (data != NULL && len > 0 && msgpack_unpack(data, len, &off, zone, &o) == MSGPACK_UNPACK_SUCCESS && off == len) {
        s_arena_t a = s_load_arena(self, len);
        rc = s_load_stored_obj(self, &o, &a);
    }
    msgpack_zone_clear(zone);
    return rc;
}

int svc_record_load_stored_only(svc_record_t *self, const char *data, size_t len, const char *const *only)
{
    assert(!self->table->stored_array && only != NULL);
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    const char *err;
    uint32_t n;
    if (data == NULL || xws_msgpack_map_header(&p, end, &n) != 0)
        return -1;
    msgpack_zone *zone = s_load_zone();
    s_arena_t a = {NULL, 0};
    int rc = 0;
    for (uint32_t e = 0; e < n && rc == 0; e++) {
        msgpack_object k, v;
        if (xws_msgpack_next(&p, end, 1, &k, &err) != 0 || k.type != MSGPACK_OBJECT_STR) {
            rc = -1;
            break;
        }
        const unsigned char *vstart = p;
        if (xws_msgpack_next(&p, end, XWS_MAX_DEPTH, &v, &err) != 0) {
            rc = -1;
            break;
        }
        size_t i = 0;
        for (; only[i] != NULL; i++)
            if (strlen(only[i]) == k.via.str.size && memcmp(only[i], k.via.str.ptr, k.via.str.size) == 0)
                break;
        const svc_field_t *f = NULL;
        for (size_t j = 0; only[i] != NULL && j < self->table->n && f == NULL; j++)
            if (strcmp(self->table->fields[j].name, only[i]) == 0)
                f = &self->table->fields[j];
        if (f == NULL || !(f->flags & SVC_F_STORED))
            continue; /* not asked for: stepped over */
        size_t off = 0;
        if (a.p == NULL)
            a = s_load_arena(self, len);
        if (msgpack_unpack((const char *)vstart, (size_t)(p - vstart), &off, zone, &v) != MSGPACK_UNPACK_SUCCESS ||
            s_load_stored_value(self, f, &self->v[f - self->table->fields], &v, &a) != 0)
            rc = -1;
        msgpack_zone_clear(zone);
    }
    if (rc == 0 && p != end)
        rc = -1; /* trailing bytes */
    if (rc == 0)
        s_choose_variant(self);
    return rc;
}

/* ---- output ------------------------------------------------------------------------------------ */

static void s_render_scalar(const svc_field_t *f, const svc_value_t *v, svc_out_t out, msgpack_packer *pk)
{
    char num[32];
    if (s_is_text(f->kind)) {
        svc_mp_strn(pk, v->set && v->s ? v->s : "", v->set && v->s ? v->len : 0);
    } else if (out == SVC_OUT_STRING) {
        if (!v->set)
            svc_mp_cstr(pk, "");
        else if (f->kind == SVC_BOOL)
            svc_mp_cstr(pk, v->i ? "1" : "0");
        else
            snprintf(num, sizeof(num), "%lld", v->i), svc_mp_cstr(pk, num);
    } else if (f->kind == SVC_INT) {
        msgpack_pack_int64(pk, v->set ? v->i : 0);
    } else if (out == SVC_OUT_NUMBER) {
        msgpack_pack_int(pk, v->set && v->i ? 1 : 0);
    } else if (v->set && v->i) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
}

/* 1 when every rendered field of rec is unset or an empty collection */
static int s_empty(const svc_record_t *rec)
{
    for (; rec != NULL; rec = rec->var) {
        for (size_t i = 0; i < rec->table->n; i++) {
            const svc_field_t *f = &rec->table->fields[i];
            const svc_value_t *v = &rec->v[i];
            if (f->flags & (SVC_F_HIDDEN | SVC_F_ID | SVC_F_COMPUTED))
                continue;
            if (f->kind == SVC_OBJECT ? (v->obj != NULL && !s_empty(v->obj)) : s_truthy(f, v))
                return 0;
        }
    }
    return 1;
}

size_t svc_record_render_count(const svc_record_t *self)
{
    size_t n = 0;
    for (; self != NULL; self = self->var)
        for (size_t i = 0; i < self->table->n; i++)
            if (!(self->table->fields[i].flags & SVC_F_HIDDEN))
                n++;
    return n;
}

void svc_record_render_fields(const svc_record_t *self, msgpack_packer *pk)
{
    for (const svc_record_t *r = self; r != NULL; r = r->var) {
        for (size_t i = 0; i < r->table->n; i++) {
            const svc_field_t *f = &r->table->fields[i];
            const svc_value_t *v = &r->v[i];
            if (f->flags & SVC_F_HIDDEN)
                continue;
            svc_mp_cstr(pk, f->name);
            if (f->flags & SVC_F_ID) {
                svc_value_t idv = {.set = 1, .i = self->id};
                s_render_scalar(f, &idv, f->out, pk);
            } else if (f->flags & SVC_F_COMPUTED) {
                assert(f->compute != NULL);
                f->compute(r, pk);
            } else if (s_is_scalar(f->kind)) {
                s_render_scalar(f, v, f->out, pk);
            } else if (f->kind == SVC_OBJECT) {
                if ((f->flags & SVC_F_FALSE_OUT) && (v->obj == NULL || s_empty(v->obj)))
                    msgpack_pack_false(pk);
                else if (v->obj == NULL)
                    msgpack_pack_map(pk, 0);
                else
                    svc_record_render(v->obj, pk);
            } else if ((f->flags & SVC_F_FALSE_OUT) && v->nrecs == 0 && v->nitems == 0) {
                msgpack_pack_false(pk);
            } else if (f->sub != NULL) {
                msgpack_pack_array(pk, v->nrecs);
                for (size_t k = 0; k < v->nrecs; k++)
                    svc_record_render(v->recs[k], pk);
            } else {
                msgpack_pack_array(pk, v->nitems);
                for (size_t k = 0; k < v->nitems; k++)
                    s_render_scalar(f->item, &v->items[k], f->item->out, pk);
            }
        }
    }
}

void svc_record_render(const svc_record_t *self, msgpack_packer *pk)
{
    msgpack_pack_map(pk, svc_record_render_count(self));
    svc_record_render_fields(self, pk);
}

int svc_record_match(const svc_record_t *self, const char *needle, size_t len)
{
    for (; self != NULL; self = self->var) {
        for (size_t i = 0; i < self->table->n; i++) {
            const svc_field_t *f = &self->table->fields[i];
            const svc_value_t *v = &self->v[i];
            if ((f->flags & SVC_F_SEARCH) && s_is_text(f->kind) && v->set && svc_icontains(v->s, v->len, needle, len))
                return 1;
        }
    }
    return 0;
}

/* ---- validators ------------------------------------------------------------------------------- */

int svc_check_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return -1;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || (label == 0 && c == '-') || ++label > 63)
            return -1;
    }
    return label == 0 || s[len - 1] == '-' ? -1 : 0;
}

int svc_check_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (at == NULL || at == s || (size_t)(at - s) > 64)
        return -1;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(".!#$%&'*+/=?^_`{|}~-", c)))
            return -1;
    }
    if (s[0] == '.' || at[-1] == '.' || memmem(s, (size_t)(at - s), "..", 2) != NULL)
        return -1;
    const char *dom = at + 1;
    size_t dlen = len - (size_t)(dom - s);
    if (memchr(dom, '.', dlen) == NULL)
        return -1;
    return svc_check_hostname(dom, dlen);
}

static int s_is_ipv4(const char *s, size_t len)
{
    char buf[16];
    struct in_addr a;
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, &a) == 1;
}

static int s_is_ipv6(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

int svc_check_ip(const char *s, size_t len)
{
    return s_is_ipv4(s, len) || s_is_ipv6(s, len) ? 0 : -1;
}

int svc_check_host(const char *s, size_t len)
{
    if (svc_check_hostname(s, len) != 0 || memchr(s, '\0', len) != NULL)
        return -1;
    /* "10.0.0.300" looks like an address, not a name: it must then be a valid one */
    const char *dot = memrchr(s, '.', len);
    const char *last = dot != NULL ? dot + 1 : s;
    size_t n = len - (size_t)(last - s);
    for (size_t i = 0; i < n; i++)
        if (last[i] < '0' || last[i] > '9')
            return 0;
    return s_is_ipv4(s, len) ? 0 : -1;
}

static int s_is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

int svc_check_relay(const char *s, size_t len)
{
    if (len == 0)
        return -1;
    const char *rest;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        const char *host = s + 1;
        size_t hlen = (size_t)(close - host);
        if (!(s_is_ipv6(host, hlen) || s_is_ipv4(host, hlen) || svc_check_host(host, hlen) == 0))
            return -1;
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        size_t hlen = colon != NULL ? (size_t)(colon - s) : len;
        if (svc_check_host(s, hlen) != 0) /* also accepts a valid IPv4 address */
            return -1;
        rest = s + hlen;
    }
    size_t rlen = len - (size_t)(rest - s);
    if (rlen == 0)
        return 0;
    return rest[0] == ':' && s_is_port(rest + 1, rlen - 1) ? 0 : -1;
}

size_t svc_norm_mac(char *s, size_t len)
{
    char hex[12];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ':' || c == '-')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c + 32);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n == 12)
            return 0;
        hex[n++] = c;
    }
    if (n != 12)
        return 0;
    for (size_t i = 0, o = 0; i < 6; i++) {
        s[o++] = hex[2 * i];
        s[o++] = hex[2 * i + 1];
        if (i < 5)
            s[o++] = ':';
    }
    return 17;
}

int svc_check_mac(const char *s, size_t len)
{
    if (len != 17)
        return -1;
    for (size_t i = 0; i < 17; i++) {
        char c = s[i];
        if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    return 0;
}
/* ---- self-test ------------------------------------------------------------------------------- */

static void s_identity(const svc_record_t *rec, msgpack_packer *pk)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "<%s>", svc_record_str(rec, "name", NULL));
    svc_mp_cstr(pk, buf);
}

static const svc_field_t s_test_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "name",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_LOWER | SVC_F_TRIM | SVC_F_SEARCH,
     .min_len = 1,
     .max_len = 8,
     .charset = "a-z0-9_.-"},
    {.name = "label", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_SEARCH, .max_len = 4},
    {.name = "mail", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 64, .check = svc_check_email, .check_what = "an e-mail"},
    {.name = "cc", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_UPPER, .min_len = 2, .max_len = 2, .charset = "A-Z"},
    {.name = "notes", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 10},
    {.name = "ring", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 60, .def = "30"},
    {.name = "on", .kind = SVC_BOOL, .flags = SVC_F_DATA, .out = SVC_OUT_STRING},
    {.name = "off", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "true"},
    {.name = "secret", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_HIDDEN},
    {.name = "made", .kind = SVC_INT, .flags = SVC_F_STORED},
    {.name = "identity", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_identity},
};
static const svc_table_t s_test_table = SVC_TABLE(s_test_fields);

/* builds a body from a JSON text through the proto converter */
static int s_try(const char *json, const char *want_code, const char *want_field, svc_record_t **out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    XWS_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(&s_test_table);
    int rc = svc_record_load_body_or_reply(&ctx, rec, &u.data);
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = svc_record_check_or_reply(&ctx, rec);
    }
    if (want_code == NULL) {
        if (rc != 0)
            fprintf(stderr, "unexpected rejection of %s\n", json);
        XWS_CHECK(rc == 0);
    } else {
        XWS_CHECK(rc == -1 && ctx.status == 400);
        msgpack_unpacked e;
        XWS_CHECK(svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0);
        if (!svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) || !svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field))
            fprintf(stderr, "%s: expected %s/%s\n", json, want_code, want_field);
        XWS_CHECK(svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code));
        XWS_CHECK(svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field));
        msgpack_unpacked_destroy(&e);
    }
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    if (out != NULL && rc == 0)
        *out = rec;
    else
        svc_record_destroy(&rec);
    return rc;
}

void svc_field_test(void)
{
    svc_record_t *r = NULL;
    s_try("{\"name\":\" Ab.C \",\"cc\":\"fr\",\"on\":\"yes\",\"ring\":\"15\",\"x\":[1]}", NULL, NULL, &r);
    XWS_CHECK(strcmp(svc_record_str(r, "name", NULL), "ab.c") == 0);
    XWS_CHECK(strcmp(svc_record_str(r, "cc", NULL), "FR") == 0);
    XWS_CHECK(svc_record_int(r, "ring") == 15 && svc_record_int(r, "on") == 1 && svc_record_int(r, "off") == 1);
    XWS_CHECK(svc_record_has(r, "made") && svc_record_int(r, "made") == 0); /* defaults: 0 */
    svc_record_set_int(r, "made", 1234);
    svc_record_set_id(r, 7);
    XWS_CHECK(svc_record_match(r, "B.c", 3) && !svc_record_match(r, "zz", 2));

    /* stored form round trip, then rendering in table order */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    svc_record_pack_stored(r, &pk);
    svc_record_t *r2 = svc_record_new(&s_test_table);
    XWS_CHECK(svc_record_load_stored(r2, sb.data, sb.size) == 0);
    XWS_CHECK(svc_record_int(r2, "made") == 1234 && strcmp(svc_record_str(r2, "name", NULL), "ab.c") == 0);
    svc_record_set_id(r2, 7);
    msgpack_sbuffer_clear(&sb);
    svc_record_render(r2, &pk);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    xws_buf_t json;
    xws_buf_init(&json);
    XWS_CHECK(xws_msgpack_to_json(&u.data, &json) == 0);
    xws_buf_add(&json, "", 1);
    const char *want =
        "{\"id\":7,\"name\":\"ab.c\",\"label\":\"\",\"mail\":\"\",\"cc\":\"FR\",\"notes\":\"\",\"ring\":15,\"on\":\"1\","
        "\"off\":true,\"made\":1234,\"identity\":\"<ab.c>\"}";
    if (strcmp(json.data, want) != 0)
        fprintf(stderr, "rendered %s\n", json.data);
    XWS_CHECK(strcmp(json.data, want) == 0);
    xws_buf_dispose(&json);
    msgpack_unpacked_destroy(&u);
    XWS_CHECK(svc_record_load_stored(r2, sb.data, sb.size - 1) == -1);  /* truncated */
    XWS_CHECK(svc_record_load_stored(r2, "\x81\xa4name\x05", 7) == -1); /* wrong type */
    /* keys out of table order and missing ones (looked up, not walked), a second load on top
     * (texts in a second block), a text set from the record's own text, then a body on top */
    XWS_CHECK(svc_record_load_stored(r2,
                                     "\x83\xa4ring\x05\xa2"
                                     "cc\xa2"
                                     "DE\xa4name\xa2zz",
                                     21) == 0);
    XWS_CHECK(strcmp(svc_record_str(r2, "name", NULL), "zz") == 0 && strcmp(svc_record_str(r2, "cc", NULL), "DE") == 0);
    XWS_CHECK(svc_record_int(r2, "ring") == 5 && svc_record_int(r2, "made") == 1234);
    /* a key out of order given twice: the last one wins (as svc_mp_get); a key in its place is walked */
    XWS_CHECK(svc_record_load_stored(r2,
                                     "\x83\xa2"
                                     "cc\xa2"
                                     "DE\xa4name\xa1"
                                     "a\xa4name\xa1"
                                     "b",
                                     21) == 0);
    XWS_CHECK(strcmp(svc_record_str(r2, "name", NULL), "b") == 0 && strcmp(svc_record_str(r2, "cc", NULL), "DE") == 0);
    /* a map too large for the key index (more than 256 keys) is looked up by scanning */
    {
        msgpack_sbuffer big;
        msgpack_sbuffer_init(&big);
        msgpack_packer bpk;
        msgpack_packer_init(&bpk, &big, svc_mp_write);
        msgpack_pack_map(&bpk, 301);
        for (int i = 0; i < 300; i++) {
            char k[16];
            snprintf(k, sizeof(k), "k%d", i);
            svc_mp_cstr(&bpk, k);
            msgpack_pack_int(&bpk, i);
        }
        svc_mp_cstr(&bpk, "ring");
        msgpack_pack_int(&bpk, 9);
        XWS_CHECK(svc_record_load_stored(r2, big.data, big.size) == 0 && svc_record_int(r2, "ring") == 9);
        msgpack_sbuffer_destroy(&big);
    }
    /* only some fields: the others stay unset and are stepped over, malformed bytes are refused */
    {
        static const char *const only[] = {"cc", "ring", "nosuch", NULL};
        svc_record_t *r3 = svc_record_new(&s_test_table);
        const char *stored = "\x84\xa4ring\x05\xa4name\xa2zz\xa2"
                             "cc\xa2"
                             "DE\xa4made\x92\x01\x02";
        XWS_CHECK(svc_record_load_stored_only(r3, stored, 29, only) == 0);
        XWS_CHECK(svc_record_int(r3, "ring") == 5 && strcmp(svc_record_str(r3, "cc", NULL), "DE") == 0);
        XWS_CHECK(!svc_record_has(r3, "name") && !svc_record_has(r3, "made")); /* a wrong type, never read */
        svc_record_destroy(&r3);
        r3 = svc_record_new(&s_test_table);
        XWS_CHECK(svc_record_load_stored_only(r3, stored, 28, only) == -1);             /* truncated */
        XWS_CHECK(svc_record_load_stored_only(r3, "\x81\xa4ring\xa1x", 8, only) == -1); /* a wrong type read */
        XWS_CHECK(svc_record_load_stored_only(r3, "\x91\x01", 2, only) == -1);          /* not a map */
        XWS_CHECK(svc_record_load_stored_only(r3, "\x80\xc0", 2, only) == -1);          /* trailing bytes */
        XWS_CHECK(svc_record_load_stored_only(r3, "\x81\x01\x02", 3, only) == -1);      /* a key not a string */
        svc_record_destroy(&r3);
        /* the same values as a whole load */
        r3 = svc_record_new(&s_test_table);
        msgpack_sbuffer_clear(&sb);
        svc_record_pack_stored(r2, &pk);
        XWS_CHECK(svc_record_load_stored_only(r3, sb.data, sb.size, only) == 0);
        XWS_CHECK(svc_record_int(r3, "ring") == svc_record_int(r2, "ring"));
        XWS_CHECK(strcmp(svc_record_str(r3, "cc", NULL), svc_record_str(r2, "cc", NULL)) == 0);
        svc_record_destroy(&r3);
    }
    size_t nl;
    const char *nm = svc_record_str(r2, "cc", &nl);
    svc_record_set_str(r2, "cc", nm, nl);
    svc_record_set_str(r2, "name", "yy", 2);
    XWS_CHECK(strcmp(svc_record_str(r2, "cc", NULL), "DE") == 0 && strcmp(svc_record_str(r2, "name", NULL), "yy") == 0);
    msgpack_unpacked body;
    XWS_CHECK(svc_mp_unpack(&body, "\x81\xa4name\xa3 Q ", 10) == 0);
    svc_ctx_t tctx;
    svc_ctx_init(&tctx, NULL, NULL, "t:", 0, NULL);
    XWS_CHECK(svc_record_load_body_or_reply(&tctx, r2, &body.data) == 0 && strcmp(svc_record_str(r2, "name", NULL), "q") == 0);
    svc_ctx_dispose(&tctx);
    msgpack_unpacked_destroy(&body);
    msgpack_sbuffer_destroy(&sb);
    svc_record_destroy(&r2);
    svc_record_destroy(&r);
    XWS_CHECK(r == NULL);
    svc_record_destroy(&r);

    /* the error codes, each naming its field */
    s_try("{}", "missing_field", "name", NULL);
    s_try("{\"name\":null}", "missing_field", "name", NULL);
    s_try("{\"name\":\"\"}", "too_short", "name", NULL);
    s_try("{\"name\":\"abcdefghi\"}", "too_long", "name", NULL);
    s_try("{\"name\":\"a b\"}", "invalid_value", "name", NULL);
    s_try("{\"name\":true}", "invalid_value", "name", NULL);
    s_try("{\"name\":\"a\",\"label\":\"\\u00e9\\u00e9\\u00e9\\u00e9\"}", NULL, NULL, NULL); /* 4 code points */
    s_try("{\"name\":\"a\",\"label\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}", "too_long", "label", NULL);
    s_try("{\"name\":\"a\",\"label\":\"a\\u0001\"}", "invalid_value", "label", NULL);
    s_try("{\"name\":\"a\",\"notes\":\"a\\tb\\nc\"}", NULL, NULL, NULL);
    s_try("{\"name\":\"a\",\"label\":\"a\\tb\"}", "invalid_value", "label", NULL);
    s_try("{\"name\":\"a\",\"mail\":\"x@example.com\"}", NULL, NULL, NULL);
    s_try("{\"name\":\"a\",\"mail\":\"x@\"}", "invalid_value", "mail", NULL);
    s_try("{\"name\":\"a\",\"mail\":\"\"}", NULL, NULL, NULL); /* optional text may be empty */
    s_try("{\"name\":\"a\",\"cc\":\"F\"}", "too_short", "cc", NULL);
    s_try("{\"name\":\"a\",\"cc\":\"F1\"}", "invalid_value", "cc", NULL);
    s_try("{\"name\":\"a\",\"ring\":61}", "out_of_range", "ring", NULL);
    s_try("{\"name\":\"a\",\"ring\":-1}", "out_of_range", "ring", NULL);
    s_try("{\"name\":\"a\",\"ring\":\"1x\"}", "invalid_value", "ring", NULL);
    s_try("{\"name\":\"a\",\"ring\":1.5}", "invalid_value", "ring", NULL);
    s_try("{\"name\":\"a\",\"ring\":20.0}", NULL, NULL, NULL);
    s_try("{\"name\":\"a\",\"ring\":\"\"}", NULL, NULL, NULL);
    s_try("{\"name\":\"a\",\"ring\":\"99999999999999999999999\"}", "out_of_range", "ring", NULL);
    s_try("{\"name\":\"a\",\"ring\":9223372036854775807}", "out_of_range", "ring", NULL);
    s_try("{\"name\":\"a\",\"on\":2}", "invalid_value", "on", NULL);
    s_try("{\"name\":\"a\",\"on\":\"maybe\"}", "invalid_value", "on", NULL);
    s_try("{\"name\":\"a\",\"on\":\"TRUE\",\"off\":0}", NULL, NULL, NULL);
    s_try("{\"name\":\"a\",\"on\":[]}", "invalid_value", "on", NULL);
    s_try("{\"name\":12}", NULL, NULL, NULL);                      /* an integer is taken as text */
    s_try("{\"name\":\"a\",\"made\":\"junk\"}", NULL, NULL, NULL); /* server-managed: ignored */

    XWS_CHECK(svc_check_hostname("a-b.example.com", 15) == 0);
    XWS_CHECK(svc_check_hostname("-a.com", 6) == -1);
    XWS_CHECK(svc_check_hostname("a..com", 6) == -1);
    XWS_CHECK(svc_check_hostname("a.com.", 6) == -1);
    XWS_CHECK(svc_check_email("contact@proformatique.com", 25) == 0);
    XWS_CHECK(svc_check_email("a.b+c@x.fr", 10) == 0);
    XWS_CHECK(svc_check_email("a@localhost", 11) == -1);
    XWS_CHECK(svc_check_email("a..b@x.fr", 9) == -1);
    XWS_CHECK(svc_check_email("@x.fr", 5) == -1);
    XWS_CHECK(svc_check_email("a b@x.fr", 8) == -1);

    /* a flag rendered as the number 0/1 */
    static const svc_field_t flag_fields[] = {{.name = "f", .kind = SVC_BOOL, .flags = SVC_F_DATA, .out = SVC_OUT_NUMBER}};
    static const svc_table_t flag_table = SVC_TABLE(flag_fields);
    for (int on = 0; on < 3; on++) {
        svc_record_t *fr = svc_record_new(&flag_table);
        if (on < 2)
            svc_record_set_int(fr, "f", on);
        msgpack_sbuffer fsb;
        msgpack_sbuffer_init(&fsb);
        msgpack_packer fpk;
        msgpack_packer_init(&fpk, &fsb, svc_mp_write);
        svc_record_render(fr, &fpk);
        const char *fwant = on == 1 ? "\x81\xa1"
                                      "f\x01"
                                    : "\x81\xa1"
                                      "f\x00";
        XWS_CHECK(fsb.size == 4 && memcmp(fsb.data, fwant, 4) == 0);
        msgpack_sbuffer_destroy(&fsb);
        svc_record_destroy(&fr);
    }
}
