/* mail.c - see mail.h */
#include <arpa/inet.h>
#include <string.h>
#include "mail.h"
#include "svc_log.h"
#include "svc_mp.h"
#include "svc_util.h"

#define MAIL_MAX_LEN 255   /* characters of every string */
#define MAIL_MAX_RULES 255 /* canonical rules */

/* the four scalar settings, in output order, with their fresh-install values and syntax */
typedef int (*mail_check_fn)(const char *s, size_t len);

static int s_is_domain(const char *s, size_t len);

static const struct {
    const char *name;
    const char *fresh;
    mail_check_fn check;
    const char *what; /* for messages */
} mail_fields[] = {
    {"mydomain", "", s_is_domain, "a host name or an IP address"},
    {"origin", "xivo-clients.proformatique.com", mail_is_hostname, "a host name (mail domain)"},
    {"relayhost", "", mail_is_relay, "a host name or address, optionally in brackets and with :port"},
    {"fallback_relayhost", "", mail_is_relay, "a host name or address, optionally in brackets and with :port"},
};
#define MAIL_NFIELDS (sizeof(mail_fields) / sizeof(mail_fields[0]))

/* ---- syntax ------------------------------------------------------------------------------------ */

static int s_all_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
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

int mail_is_ip(const char *s, size_t len)
{
    return s_is_ipv4(s, len) || s_is_ipv6(s, len);
}

int mail_is_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return 0;
    size_t start = 0;
    size_t last_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
                return 0;
            continue;
        }
        size_t n = i - start; /* the label s[start..i) */
        if (n == 0 || n > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        last_start = start;
        start = i + 1;
    }
    /* "10.0.0.300" looks like an address, not a name: it must then be a valid one */
    if (s_all_digits(s + last_start, len - last_start))
        return s_is_ipv4(s, len);
    return 1;
}

static int s_is_domain(const char *s, size_t len)
{
    return mail_is_hostname(s, len) || mail_is_ip(s, len);
}

static int s_is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5 || !s_all_digits(s, len))
        return 0;
    long v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v >= 1 && v <= 65535;
}

int mail_is_relay(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    const char *host;
    size_t hlen;
    const char *rest;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return 0;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (!(s_is_ipv6(host, hlen) || s_is_ipv4(host, hlen) || mail_is_hostname(host, hlen)))
            return 0;
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        host = s;
        hlen = colon != NULL ? (size_t)(colon - s) : len;
        if (!mail_is_hostname(host, hlen)) /* also accepts a valid IPv4 address */
            return 0;
        rest = s + hlen;
    }
    size_t rlen = len - (size_t)(rest - s);
    if (rlen == 0)
        return 1;
    return rest[0] == ':' && s_is_port(rest + 1, rlen - 1);
}

/* ---- view -------------------------------------------------------------------------------------- */

/* packs the settings map of the view (id first), from a stored map or the fresh-install values */
static int s_pack_view(svc_ctx_t *ctx, const msgpack_object *stored)
{
    msgpack_packer *pk = svc_reply_begin(ctx, 200);
    msgpack_pack_map(pk, 2 + MAIL_NFIELDS);
    svc_mp_key(pk, "id");
    msgpack_pack_int(pk, 1);
    for (size_t i = 0; i < MAIL_NFIELDS; i++) {
        svc_mp_key(pk, mail_fields[i].name);
        const msgpack_object *v = stored != NULL ? svc_mp_get(stored, mail_fields[i].name) : NULL;
        if (v != NULL && v->type == MSGPACK_OBJECT_STR)
            svc_mp_strn(pk, v->via.str.ptr, v->via.str.size);
        else
            svc_mp_cstr(pk, stored != NULL ? "" : mail_fields[i].fresh);
    }
    svc_mp_key(pk, "canonical");
    const msgpack_object *c = stored != NULL ? svc_mp_get(stored, "canonical") : NULL;
    if (c == NULL || c->type != MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array(pk, 0);
        return 0;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->via.array.size; i++)
        n += c->via.array.ptr[i].type == MSGPACK_OBJECT_MAP;
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < c->via.array.size; i++) {
        const msgpack_object *r = &c->via.array.ptr[i];
        if (r->type != MSGPACK_OBJECT_MAP)
            continue;
        msgpack_pack_map(pk, 2);
        svc_mp_key(pk, "pattern");
        xws_slice_t p = svc_mp_slice(svc_mp_get(r, "pattern"));
        svc_mp_strn(pk, p.ptr, p.len);
        svc_mp_key(pk, "result");
        xws_slice_t q = svc_mp_slice(svc_mp_get(r, "result"));
        svc_mp_strn(pk, q.ptr, q.len);
    }
    return 0;
}

int mail_view(svc_ctx_t *ctx)
{
    static const char *const deps[] = {"mail", NULL};
    int e = svc_etag_or_reply(ctx, deps);
    if (e != 0)
        return e < 0 ? -1 : 0;
    const char *argv[] = {"GET", svc_key(ctx, "mail:data")};
    redisReply *r = svc_redis_command(ctx->redis, 2, argv, NULL);
    if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
        svc_reply_redis_failure(ctx, r, "reading the mail settings");
        freeReplyObject(r);
        return -1;
    }
    int rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = s_pack_view(ctx, NULL);
    } else {
        msgpack_unpacked u;
        if (svc_mp_unpack(&u, r->str, r->len) != 0 || u.data.type != MSGPACK_OBJECT_MAP)
            rc = svc_reply_internal(ctx, "the stored mail settings are not a msgpack map");
        else
            rc = s_pack_view(ctx, &u.data);
        msgpack_unpacked_destroy(&u);
    }
    freeReplyObject(r);
    return rc;
}

/* ---- edit -------------------------------------------------------------------------------------- */

/* a string value of the body: present, a str, printable, at most MAIL_MAX_LEN characters */
static int s_string_or_reply(svc_ctx_t *ctx, const msgpack_object *v, const char *field, xws_slice_t *out)
{
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
        return svc_reply_error(ctx, 400, "missing_field", field, "%s is required", field);
    if (v->type != MSGPACK_OBJECT_STR)
        return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be a string", field);
    long n = svc_utf8_len(v->via.str.ptr, v->via.str.size);
    if (n < 0 || !svc_printable(v->via.str.ptr, v->via.str.size, 0))
        return svc_reply_error(ctx, 400, "invalid_value", field, "%s must be printable text", field);
    if (n > MAIL_MAX_LEN)
        return svc_reply_error(ctx, 400, "too_long", field, "%s is longer than %d characters", field, MAIL_MAX_LEN);
    out->ptr = v->via.str.ptr;
    out->len = v->via.str.size;
    return 0;
}

static int s_has_space(xws_slice_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == ' ' || (s.ptr[i] >= '\t' && s.ptr[i] <= '\r'))
            return 1;
    return 0;
}

/* one canonical rule's pattern or result: non-empty, no white space */
static int s_rule_part_or_reply(svc_ctx_t *ctx, const msgpack_object *rule, const char *key, uint32_t i, xws_slice_t *out)
{
    const char *field = svc_ctx_printf(ctx, "canonical[%u].%s", i, key);
    if (s_string_or_reply(ctx, svc_mp_get(rule, key), field, out) != 0)
        return -1;
    if (out->len == 0)
        return svc_reply_error(ctx, 400, "invalid_value", field, "%s must not be empty", field);
    if (s_has_space(*out))
        return svc_reply_error(ctx, 400, "invalid_value", field, "%s must not contain white space", field);
    return 0;
}

int mail_edit(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    xws_slice_t vals[MAIL_NFIELDS];
    for (size_t i = 0; i < MAIL_NFIELDS; i++) {
        const char *name = mail_fields[i].name;
        if (s_string_or_reply(ctx, svc_mp_get(body, name), name, &vals[i]) != 0)
            return -1;
        if (vals[i].len > 0 && !mail_fields[i].check(vals[i].ptr, vals[i].len))
            return svc_reply_error(ctx, 400, "invalid_value", name, "%s must be empty or %s", name, mail_fields[i].what);
    }
    const msgpack_object *canon = svc_mp_get(body, "canonical");
    uint32_t nrules = 0;
    /* absent, null and false (the empty collection of spec section 3) mean no rules */
    if (canon != NULL && canon->type != MSGPACK_OBJECT_NIL && !(canon->type == MSGPACK_OBJECT_BOOLEAN && !canon->via.boolean)) {
        if (canon->type != MSGPACK_OBJECT_ARRAY)
            return svc_reply_error(ctx, 400, "invalid_value", "canonical", "canonical must be an array of rules");
        nrules = canon->via.array.size;
        if (nrules > MAIL_MAX_RULES)
            return svc_reply_error(ctx, 400, "too_long", "canonical", "canonical holds more than %d rules", MAIL_MAX_RULES);
    }
    xws_slice_t *pat = svc_calloc(nrules + 1, sizeof(*pat));
    xws_slice_t *res = svc_calloc(nrules + 1, sizeof(*res));
    int rc = 0;
    for (uint32_t i = 0; i < nrules && rc == 0; i++) {
        const msgpack_object *rule = &canon->via.array.ptr[i];
        if (rule->type != MSGPACK_OBJECT_MAP) {
            const char *field = svc_ctx_printf(ctx, "canonical[%u]", i);
            rc = svc_reply_error(ctx, 400, "invalid_value", field, "%s must be an object with pattern and result", field);
        } else if (s_rule_part_or_reply(ctx, rule, "pattern", i, &pat[i]) != 0 ||
                   s_rule_part_or_reply(ctx, rule, "result", i, &res[i]) != 0) {
            rc = -1;
        }
    }
    if (rc == 0) {
        /* the stored form: exactly the validated values, nothing else from the body */
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, MAIL_NFIELDS + 1);
        for (size_t i = 0; i < MAIL_NFIELDS; i++) {
            svc_mp_key(&pk, mail_fields[i].name);
            svc_mp_strn(&pk, vals[i].ptr, vals[i].len);
        }
        svc_mp_key(&pk, "canonical");
        msgpack_pack_array(&pk, nrules);
        for (uint32_t i = 0; i < nrules; i++) {
            msgpack_pack_map(&pk, 2);
            svc_mp_key(&pk, "pattern");
            svc_mp_strn(&pk, pat[i].ptr, pat[i].len);
            svc_mp_key(&pk, "result");
            svc_mp_strn(&pk, res[i].ptr, res[i].len);
        }
        const char *keys[] = {svc_key(ctx, "mail:data"), svc_key(ctx, "ver:mail")};
        const char *args[] = {sb.data != NULL ? sb.data : ""};
        size_t lens[] = {sb.size};
        int st = svc_write(ctx, "config_mail_edit", 2, keys, 1, args, lens);
        msgpack_sbuffer_destroy(&sb);
        if (st < 0)
            rc = -1;
        else if (st == 0)
            rc = svc_reply_internal(ctx, "mail edit: unexpected conflict outcome");
        else
            rc = st >= 400 ? -1 : 0;
    }
    free(pat);
    free(res);
    return rc;
}

static const svc_act_t mail_acts[] = {{"view", mail_view}, {"edit", mail_edit}, {NULL, NULL}};
const svc_resource_t cfg_mail_resource = {"mail", "view", mail_acts};

/* ---- self-test ------------------------------------------------------------------------------- */

#define S(x) x, strlen(x)

void mail_test(void)
{
    SVC_CHECK(mail_is_hostname(S("localhost")));
    SVC_CHECK(mail_is_hostname(S("smtp.free.fr")));
    SVC_CHECK(mail_is_hostname(S("xivo-clients.proformatique.com")));
    SVC_CHECK(mail_is_hostname(S("a1.b-2.C3")));
    SVC_CHECK(mail_is_hostname(S("10.0.0.1")));
    SVC_CHECK(!mail_is_hostname(S("10.0.0.300")));
    SVC_CHECK(!mail_is_hostname(S("1.2.3")));
    SVC_CHECK(mail_is_hostname(S("1.2.3a")));
    SVC_CHECK(!mail_is_hostname(S("")));
    SVC_CHECK(!mail_is_hostname(S("-a.com")));
    SVC_CHECK(!mail_is_hostname(S("a-.com")));
    SVC_CHECK(!mail_is_hostname(S("a..com")));
    SVC_CHECK(!mail_is_hostname(S("a.com.")));
    SVC_CHECK(!mail_is_hostname(S(".a.com")));
    SVC_CHECK(!mail_is_hostname(S("a_b.com")));
    SVC_CHECK(!mail_is_hostname(S("a b")));
    SVC_CHECK(!mail_is_hostname(S("user@example.com")));
    SVC_CHECK(!mail_is_hostname("a\0b", 3));
    char big[300];
    memset(big, 'a', sizeof(big));
    SVC_CHECK(mail_is_hostname(big, 63));
    SVC_CHECK(!mail_is_hostname(big, 64));
    for (int i = 63; i < 253; i += 64)
        big[i] = '.';
    SVC_CHECK(mail_is_hostname(big, 253));
    SVC_CHECK(!mail_is_hostname(big, 254));

    SVC_CHECK(mail_is_ip(S("192.168.1.1")));
    SVC_CHECK(mail_is_ip(S("::1")));
    SVC_CHECK(mail_is_ip(S("2001:db8::25")));
    SVC_CHECK(!mail_is_ip(S("192.168.1")));
    SVC_CHECK(!mail_is_ip(S("[::1]")));
    SVC_CHECK(!mail_is_ip(S("example.com")));
    SVC_CHECK(s_is_domain(S("::1")) && s_is_domain(S("example.com")) && !s_is_domain(S("[::1]")));

    SVC_CHECK(mail_is_relay(S("smtp.free.fr")));
    SVC_CHECK(mail_is_relay(S("smtp.free.fr:25")));
    SVC_CHECK(mail_is_relay(S("smtp.free.fr:65535")));
    SVC_CHECK(mail_is_relay(S("[smtp.free.fr]")));
    SVC_CHECK(mail_is_relay(S("[smtp.free.fr]:587")));
    SVC_CHECK(mail_is_relay(S("10.1.2.3")));
    SVC_CHECK(mail_is_relay(S("10.1.2.3:25")));
    SVC_CHECK(mail_is_relay(S("[10.1.2.3]:25")));
    SVC_CHECK(mail_is_relay(S("[2001:db8::1]")));
    SVC_CHECK(mail_is_relay(S("[2001:db8::1]:2525")));
    SVC_CHECK(!mail_is_relay(S("2001:db8::1")));
    SVC_CHECK(!mail_is_relay(S("smtp.free.fr:0")));
    SVC_CHECK(!mail_is_relay(S("smtp.free.fr:65536")));
    SVC_CHECK(!mail_is_relay(S("smtp.free.fr:")));
    SVC_CHECK(!mail_is_relay(S("smtp.free.fr:25:25")));
    SVC_CHECK(!mail_is_relay(S("smtp.free.fr:2x")));
    SVC_CHECK(!mail_is_relay(S("[smtp.free.fr")));
    SVC_CHECK(!mail_is_relay(S("[]")));
    SVC_CHECK(!mail_is_relay(S("[smtp.free.fr]x")));
    SVC_CHECK(!mail_is_relay(S("[smtp.free.fr]:")));
    SVC_CHECK(!mail_is_relay(S("smtp free.fr")));
    SVC_CHECK(!mail_is_relay(S("")));
    SVC_CHECK(!mail_is_relay(S(":25")));

    xws_slice_t a = {"a b", 3}, b = {"a\tb", 3}, c = {"ab", 2};
    SVC_CHECK(s_has_space(a) && s_has_space(b) && !s_has_space(c));
}
