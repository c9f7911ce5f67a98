/* svc_field.c - see svc_field.h */
#define _GNU_SOURCE
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

typedef struct {
    int set;     /* 1 when the field has a value */
    long long i; /* SVC_INT, SVC_BOOL */
    char *s;     /* SVC_TEXT: owned, NUL-terminated */
    size_t len;  /* SVC_TEXT: bytes */
} svc_value_t;

struct svc_record {
    const svc_table_t *table; /* borrowed */
    svc_value_t *v;           /* one per field */
    long long id;             /* rendered by SVC_F_ID fields */
    const char *path;         /* prefix of field names in errors */
};

svc_record_t *svc_record_new(const svc_table_t *t)
{
    assert(t != NULL && t->fields != NULL);
    svc_record_t *self = svc_calloc(1, sizeof(*self));
    self->table = t;
    self->v = svc_calloc(t->n, sizeof(*self->v));
    self->path = "";
    return self;
}

void svc_record_destroy(svc_record_t **self_p)
{
    assert(self_p != NULL);
    svc_record_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t i = 0; i < self->table->n; i++)
        free(self->v[i].s);
    free(self->v);
    free(self);
    *self_p = NULL;
}

void svc_record_set_path(svc_record_t *self, const char *prefix)
{
    self->path = prefix != NULL ? prefix : "";
}

void svc_record_set_id(svc_record_t *self, long long id)
{
    self->id = id;
}

long long svc_record_id(const svc_record_t *self)
{
    return self->id;
}

static size_t s_index(const svc_record_t *self, const char *name)
{
    for (size_t i = 0; i < self->table->n; i++)
        if (strcmp(self->table->fields[i].name, name) == 0)
            return i;
    assert(!"field not in table");
    abort();
}

static void s_set_str(svc_value_t *v, const char *s, size_t len)
{
    free(v->s);
    v->s = svc_strndup(s, len);
    v->len = len;
    v->set = 1;
}

int svc_record_has(const svc_record_t *self, const char *name)
{
    return self->v[s_index(self, name)].set;
}

const char *svc_record_str(const svc_record_t *self, const char *name, size_t *len)
{
    const svc_value_t *v = &self->v[s_index(self, name)];
    if (len != NULL)
        *len = v->set && v->s ? v->len : 0;
    return v->set && v->s ? v->s : "";
}

long long svc_record_int(const svc_record_t *self, const char *name)
{
    const svc_value_t *v = &self->v[s_index(self, name)];
    return v->set ? v->i : 0;
}

void svc_record_set_str(svc_record_t *self, const char *name, const char *s, size_t len)
{
    s_set_str(&self->v[s_index(self, name)], s, len);
}

void svc_record_set_int(svc_record_t *self, const char *name, long long v)
{
    svc_value_t *x = &self->v[s_index(self, name)];
    x->i = v;
    x->set = 1;
}

void svc_record_unset(svc_record_t *self, const char *name)
{
    svc_value_t *x = &self->v[s_index(self, name)];
    free(x->s);
    memset(x, 0, sizeof(*x));
}

/* ---- input ---------------------------------------------------------------------------------- */

static int s_bad(svc_ctx_t *ctx, const svc_record_t *self, const svc_field_t *f, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int s_bad(svc_ctx_t *ctx, const svc_record_t *self, const svc_field_t *f, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *path = svc_ctx_printf(ctx, "%s%s", self->path, f->name);
    return svc_reply_error(ctx, 400, code, path, "%s: %s", path, msg);
}

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
}

int svc_record_load_body_or_reply(svc_ctx_t *ctx, svc_record_t *self, const msgpack_object *map)
{
    assert(map != NULL && map->type == MSGPACK_OBJECT_MAP);
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        if (!(f->flags & SVC_F_INPUT))
            continue;
        /* duplicate keys: the last one wins, as in the JSON conversion */
        const msgpack_object *o = NULL;
        size_t nlen = strlen(f->name);
        for (uint32_t k = 0; k < map->via.map.size; k++) {
            const msgpack_object *key = &map->via.map.ptr[k].key;
            if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == nlen && memcmp(key->via.str.ptr, f->name, nlen) == 0)
                o = &map->via.map.ptr[k].val;
        }
        if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
            continue;
        svc_value_t *v = &self->v[i];
        char num[32];
        switch (f->kind) {
        case SVC_TEXT:
            if (o->type == MSGPACK_OBJECT_STR) {
                s_set_str(v, o->via.str.ptr, o->via.str.size);
            } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                snprintf(num, sizeof(num), "%llu", (unsigned long long)o->via.u64);
                s_set_str(v, num, strlen(num));
            } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                snprintf(num, sizeof(num), "%lld", (long long)o->via.i64);
                s_set_str(v, num, strlen(num));
            } else {
                return s_bad(ctx, self, f, "invalid_value", "expected a string");
            }
            s_normalise(f, v);
            break;
        case SVC_INT:
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                if (o->via.u64 > (uint64_t)LLONG_MAX)
                    return s_bad(ctx, self, f, "out_of_range", "number too large");
                v->i = (long long)o->via.u64;
            } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                v->i = o->via.i64;
            } else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
                double d = o->via.f64;
                if (!isfinite(d) || d != floor(d))
                    return s_bad(ctx, self, f, "invalid_value", "expected an integer");
                if (d < -9.2e18 || d > 9.2e18)
                    return s_bad(ctx, self, f, "out_of_range", "number too large");
                v->i = (long long)d;
            } else if (o->type == MSGPACK_OBJECT_STR) {
                const char *p = o->via.str.ptr;
                size_t n = o->via.str.size;
                while (n > 0 && (*p == ' ' || *p == '\t'))
                    p++, n--;
                while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                    n--;
                if (n == 0 && !(f->flags & SVC_F_REQUIRED))
                    continue; /* "" for an optional number: absent */
                if (n == 0)
                    return s_bad(ctx, self, f, "invalid_value", "expected a number");
                long long x = 0;
                for (size_t k = 0; k < n; k++) {
                    if (p[k] < '0' || p[k] > '9')
                        return s_bad(ctx, self, f, "invalid_value", "expected a number");
                    if (x > (LLONG_MAX - 9) / 10)
                        return s_bad(ctx, self, f, "out_of_range", "number too large");
                    x = x * 10 + (p[k] - '0');
                }
                v->i = x;
            } else {
                return s_bad(ctx, self, f, "invalid_value", "expected a number");
            }
            v->set = 1;
            break;
        case SVC_BOOL:
            if (s_flag(o, &v->i) != 0)
                return s_bad(ctx, self, f, "invalid_value", "expected a boolean (true/false, 1/0, yes/no)");
            v->set = 1;
            break;
        }
    }
    return 0;
}

void svc_record_defaults(svc_record_t *self)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        svc_value_t *v = &self->v[i];
        if (!(f->flags & SVC_F_STORED) || v->set)
            continue;
        if (f->def == NULL && (f->flags & SVC_F_REQUIRED))
            continue;
        const char *d = f->def != NULL ? f->def : "";
        switch (f->kind) {
        case SVC_TEXT:
            s_set_str(v, d, strlen(d));
            break;
        case SVC_INT:
            v->i = strtoll(d, NULL, 10);
            v->set = 1;
            break;
        case SVC_BOOL:
            v->i = strcmp(d, "1") == 0 || strcmp(d, "true") == 0 || strcmp(d, "yes") == 0;
            v->set = 1;
            break;
        }
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

int svc_record_check_or_reply(svc_ctx_t *ctx, svc_record_t *self)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        const svc_value_t *v = &self->v[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        if (!v->set) {
            if (f->flags & SVC_F_REQUIRED)
                return s_bad(ctx, self, f, "missing_field", "this field is required");
            continue;
        }
        if (f->kind == SVC_INT) {
            if ((f->min != 0 || f->max != 0) && (v->i < f->min || v->i > f->max))
                return s_bad(ctx, self, f, "out_of_range", "must be between %lld and %lld", f->min, f->max);
            continue;
        }
        if (f->kind != SVC_TEXT)
            continue;
        long cps = svc_utf8_len(v->s, v->len);
        if (cps < 0)
            return s_bad(ctx, self, f, "invalid_value", "not valid UTF-8");
        if (cps == 0 && !(f->flags & SVC_F_REQUIRED))
            continue;
        if ((unsigned long)cps < f->min_len)
            return s_bad(ctx, self, f, "too_short", "at least %u characters", f->min_len);
        if (f->max_len > 0 && (unsigned long)cps > f->max_len)
            return s_bad(ctx, self, f, "too_long", "at most %u characters", f->max_len);
        if (f->charset != NULL) {
            for (size_t k = 0; k < v->len; k++)
                if (!s_charset_has(f->charset, (unsigned char)v->s[k]))
                    return s_bad(ctx, self, f, "invalid_value", "only the characters %s are allowed", f->charset);
        } else if (!svc_printable(v->s, v->len, (f->flags & SVC_F_MULTILINE) != 0)) {
            return s_bad(ctx, self, f, "invalid_value", "control characters are not allowed");
        }
        if (f->check != NULL && f->check(v->s, v->len) != 0)
            return s_bad(ctx, self, f, "invalid_value", "expected %s", f->check_what ? f->check_what : "a valid value");
    }
    return 0;
}

/* ---- storage and output ------------------------------------------------------------------------ */

int svc_record_load_stored(svc_record_t *self, const char *data, size_t len)
{
    msgpack_unpacked u;
    int rc = -1;
    if (svc_mp_unpack(&u, data, len) != 0 || u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        if (!(f->flags & SVC_F_STORED))
            continue;
        const msgpack_object *o = svc_mp_get(&u.data, f->name);
        if (o == NULL)
            continue;
        svc_value_t *v = &self->v[i];
        if (f->kind == SVC_TEXT && o->type == MSGPACK_OBJECT_STR) {
            s_set_str(v, o->via.str.ptr, o->via.str.size);
        } else if (f->kind == SVC_INT && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)LLONG_MAX) {
            v->i = (long long)o->via.u64, v->set = 1;
        } else if (f->kind == SVC_INT && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            v->i = o->via.i64, v->set = 1;
        } else if (f->kind == SVC_BOOL && o->type == MSGPACK_OBJECT_BOOLEAN) {
            v->i = o->via.boolean, v->set = 1;
        } else {
            goto out;
        }
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

static void s_pack_value(const svc_field_t *f, const svc_value_t *v, svc_out_t out, msgpack_packer *pk)
{
    char num[32];
    switch (f->kind) {
    case SVC_TEXT:
        svc_mp_strn(pk, v->set && v->s ? v->s : "", v->set && v->s ? v->len : 0);
        break;
    case SVC_INT:
        if (out == SVC_OUT_STRING) {
            snprintf(num, sizeof(num), "%lld", v->set ? v->i : 0);
            svc_mp_cstr(pk, num);
        } else {
            msgpack_pack_int64(pk, v->set ? v->i : 0);
        }
        break;
    case SVC_BOOL:
        if (out == SVC_OUT_STRING)
            svc_mp_cstr(pk, v->set && v->i ? "1" : "0");
        else if (v->set && v->i)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    }
}

void svc_record_pack_stored(const svc_record_t *self, msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i < self->table->n; i++)
        if ((self->table->fields[i].flags & SVC_F_STORED) && self->v[i].set)
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        if (!(f->flags & SVC_F_STORED) || !self->v[i].set)
            continue;
        svc_mp_cstr(pk, f->name);
        s_pack_value(f, &self->v[i], SVC_OUT_NATIVE, pk);
    }
}

void svc_record_render(const svc_record_t *self, msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i < self->table->n; i++)
        if (!(self->table->fields[i].flags & SVC_F_HIDDEN))
            n++;
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        if (f->flags & SVC_F_HIDDEN)
            continue;
        svc_mp_cstr(pk, f->name);
        if (f->flags & SVC_F_ID) {
            svc_value_t v = {.set = 1, .i = self->id};
            s_pack_value(f, &v, f->out, pk);
        } else if (f->flags & SVC_F_COMPUTED) {
            assert(f->compute != NULL);
            f->compute(self, pk);
        } else {
            s_pack_value(f, &self->v[i], f->out, pk);
        }
    }
}

int svc_record_match(const svc_record_t *self, const char *needle, size_t len)
{
    for (size_t i = 0; i < self->table->n; i++) {
        const svc_field_t *f = &self->table->fields[i];
        const svc_value_t *v = &self->v[i];
        if ((f->flags & SVC_F_SEARCH) && f->kind == SVC_TEXT && v->set && svc_icontains(v->s, v->len, needle, len))
            return 1;
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
    SVC_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    SVC_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
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
        SVC_CHECK(rc == 0);
    } else {
        SVC_CHECK(rc == -1 && ctx.status == 400);
        msgpack_unpacked e;
        SVC_CHECK(svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0);
        if (!svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) || !svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field))
            fprintf(stderr, "%s: expected %s/%s\n", json, want_code, want_field);
        SVC_CHECK(svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code));
        SVC_CHECK(svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field));
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
    SVC_CHECK(strcmp(svc_record_str(r, "name", NULL), "ab.c") == 0);
    SVC_CHECK(strcmp(svc_record_str(r, "cc", NULL), "FR") == 0);
    SVC_CHECK(svc_record_int(r, "ring") == 15 && svc_record_int(r, "on") == 1 && svc_record_int(r, "off") == 1);
    SVC_CHECK(svc_record_has(r, "made") && svc_record_int(r, "made") == 0); /* defaults: 0 */
    svc_record_set_int(r, "made", 1234);
    svc_record_set_id(r, 7);
    SVC_CHECK(svc_record_match(r, "B.c", 3) && !svc_record_match(r, "zz", 2));

    /* stored form round trip, then rendering in table order */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, svc_mp_write);
    svc_record_pack_stored(r, &pk);
    svc_record_t *r2 = svc_record_new(&s_test_table);
    SVC_CHECK(svc_record_load_stored(r2, sb.data, sb.size) == 0);
    SVC_CHECK(svc_record_int(r2, "made") == 1234 && strcmp(svc_record_str(r2, "name", NULL), "ab.c") == 0);
    svc_record_set_id(r2, 7);
    msgpack_sbuffer_clear(&sb);
    svc_record_render(r2, &pk);
    msgpack_unpacked u;
    SVC_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    xws_buf_t json;
    xws_buf_init(&json);
    SVC_CHECK(xws_msgpack_to_json(&u.data, &json) == 0);
    xws_buf_add(&json, "", 1);
    const char *want =
        "{\"id\":7,\"name\":\"ab.c\",\"label\":\"\",\"mail\":\"\",\"cc\":\"FR\",\"notes\":\"\",\"ring\":15,\"on\":\"1\","
        "\"off\":true,\"made\":1234,\"identity\":\"<ab.c>\"}";
    if (strcmp(json.data, want) != 0)
        fprintf(stderr, "rendered %s\n", json.data);
    SVC_CHECK(strcmp(json.data, want) == 0);
    xws_buf_dispose(&json);
    msgpack_unpacked_destroy(&u);
    SVC_CHECK(svc_record_load_stored(r2, sb.data, sb.size - 1) == -1);  /* truncated */
    SVC_CHECK(svc_record_load_stored(r2, "\x81\xa4name\x05", 7) == -1); /* wrong type */
    msgpack_sbuffer_destroy(&sb);
    svc_record_destroy(&r2);
    svc_record_destroy(&r);
    SVC_CHECK(r == NULL);
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

    SVC_CHECK(svc_check_hostname("a-b.example.com", 15) == 0);
    SVC_CHECK(svc_check_hostname("-a.com", 6) == -1);
    SVC_CHECK(svc_check_hostname("a..com", 6) == -1);
    SVC_CHECK(svc_check_hostname("a.com.", 6) == -1);
    SVC_CHECK(svc_check_email("contact@proformatique.com", 25) == 0);
    SVC_CHECK(svc_check_email("a.b+c@x.fr", 10) == 0);
    SVC_CHECK(svc_check_email("a@localhost", 11) == -1);
    SVC_CHECK(svc_check_email("a..b@x.fr", 9) == -1);
    SVC_CHECK(svc_check_email("@x.fr", 5) == -1);
    SVC_CHECK(svc_check_email("a b@x.fr", 8) == -1);
}
