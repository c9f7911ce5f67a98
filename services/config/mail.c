/* mail.c - see mail.h */
#include <string.h>
#include "mail.h"
#include "svc_field.h"
#include "svc_log.h"
#include "svc_mp.h"
#include "svc_util.h"

#define MAIL_MAX_LEN 255   /* characters of every string */
#define MAIL_MAX_RULES 255 /* canonical rules */

/* ---- syntax: the common validators of the record layer (svc_field.h) ------------------------------ */

int mail_is_ip(const char *s, size_t len)
{
    return svc_check_ip(s, len) == 0;
}

int mail_is_hostname(const char *s, size_t len)
{
    return svc_check_host(s, len) == 0; /* "10.0.0.300" looks like an address: it must then be a valid one */
}

static int s_is_domain(const char *s, size_t len)
{
    return mail_is_hostname(s, len) || mail_is_ip(s, len);
}

int mail_is_relay(const char *s, size_t len)
{
    return svc_check_relay(s, len) == 0;
}

/* ---- the record ---------------------------------------------------------------------------------- */

static int s_domain_or_empty(const char *s, size_t len)
{
    return len == 0 || s_is_domain(s, len) ? 0 : -1;
}

static int s_host_or_empty(const char *s, size_t len)
{
    return len == 0 || mail_is_hostname(s, len) ? 0 : -1;
}

static int s_relay_or_empty(const char *s, size_t len)
{
    return len == 0 || mail_is_relay(s, len) ? 0 : -1;
}

static int s_has_space(xws_slice_t s);

/* a canonical pattern or result: non-empty, no white space */
static int s_rule_part(const char *s, size_t len)
{
    return len > 0 && !s_has_space((xws_slice_t){s, len}) ? 0 : -1;
}

#define MAIL_TEXT (SVC_F_DATA | SVC_F_REQUIRED | SVC_F_STRICT)
static const svc_field_t rule_fields[] = {
    {.name = "pattern",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_rule_part,
     .check_what = "a non-empty value without white space"},
    {.name = "result",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_rule_part,
     .check_what = "a non-empty value without white space"},
};
static const svc_table_t rule_table = SVC_TABLE(rule_fields);

/* the settings in output order; the defaults are the fresh-install values */
static const svc_field_t mail_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "mydomain",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_domain_or_empty,
     .check_what = "empty, a host name or an IP address",
     .def = ""},
    {.name = "origin",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_host_or_empty,
     .check_what = "empty or a host name (mail domain)",
     .def = "xivo-clients.proformatique.com"},
    {.name = "relayhost",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_relay_or_empty,
     .check_what = "empty, or a host name or address, optionally in brackets and with :port",
     .def = ""},
    {.name = "fallback_relayhost",
     .kind = SVC_TEXT,
     .flags = MAIL_TEXT,
     .max_len = MAIL_MAX_LEN,
     .check = s_relay_or_empty,
     .check_what = "empty, or a host name or address, optionally in brackets and with :port",
     .def = ""},
    {.name = "canonical", .kind = SVC_LIST, .flags = SVC_F_DATA | SVC_F_FALSE_IN, .max_len = MAIL_MAX_RULES, .sub = &rule_table},
};
static const svc_table_t mail_table = SVC_TABLE(mail_fields);

/* ---- view -------------------------------------------------------------------------------------- */

int mail_view(svc_ctx_t *ctx)
{
    static const char *const deps[] = {"mail", NULL};
    const char *argv[] = {"GET", svc_key(ctx, "mail:data")};
    redisReply *r = NULL;
    if (svc_etag_prefetch_or_reply(ctx, deps, 2, argv, &r) != 0)
        return -1;
    int rc = 0;
    svc_record_t *rec = svc_record_new(&mail_table);
    if (r == NULL || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING))
        rc = svc_reply_redis_failure(ctx, r, "reading the mail settings");
    else if (r->type == REDIS_REPLY_NIL)
        svc_record_defaults(rec); /* never written: the fresh-install values */
    else if (svc_record_load_stored(rec, r->str, r->len) != 0)
        rc = svc_reply_internal(ctx, "the stored mail settings are malformed");
    if (rc == 0) {
        char etag[sizeof(ctx->etag)];
        memcpy(etag, ctx->etag, sizeof(etag));
        svc_record_set_id(rec, 1);
        svc_record_render(rec, svc_reply_begin(ctx, 200));
        memcpy(ctx->etag, etag, sizeof(etag));
    }
    svc_record_destroy(&rec);
    freeReplyObject(r);
    return rc;
}

/* ---- edit -------------------------------------------------------------------------------------- */

int mail_edit(svc_ctx_t *ctx)
{
    const msgpack_object *body;
    if (svc_body_map_or_reply(ctx, &body) != 0)
        return -1;
    svc_record_t *rec = svc_record_new(&mail_table);
    int rc = svc_record_load_body_or_reply(ctx, rec, body) == 0 && svc_record_check_or_reply(ctx, rec) == 0 ? 0 : -1;
    if (rc == 0) {
        svc_record_defaults(rec); /* canonical absent: no rules */
        const char *keys[] = {svc_key(ctx, "mail:data"), svc_key(ctx, "ver:mail")};
        size_t lens[1];
        const char *args[] = {svc_record_blob(ctx, rec, &lens[0])};
        rc = svc_write(ctx, "config_mail_edit", 2, keys, 1, args, lens);
    }
    svc_record_destroy(&rec);
    return rc;
}

static int s_has_space(xws_slice_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == ' ' || (s.ptr[i] >= '\t' && s.ptr[i] <= '\r'))
            return 1;
    return 0;
}

static const svc_act_t mail_acts[] = {{"view", mail_view}, {"edit", mail_edit}, {NULL, NULL}};
const svc_resource_t cfg_mail_resource = {"mail", "view", mail_acts};

/* ---- self-test ------------------------------------------------------------------------------- */

#define S(x) x, strlen(x)

void mail_test(void)
{
    XWS_CHECK(mail_is_hostname(S("localhost")));
    XWS_CHECK(mail_is_hostname(S("smtp.free.fr")));
    XWS_CHECK(mail_is_hostname(S("xivo-clients.proformatique.com")));
    XWS_CHECK(mail_is_hostname(S("a1.b-2.C3")));
    XWS_CHECK(mail_is_hostname(S("10.0.0.1")));
    XWS_CHECK(!mail_is_hostname(S("10.0.0.300")));
    XWS_CHECK(!mail_is_hostname(S("1.2.3")));
    XWS_CHECK(mail_is_hostname(S("1.2.3a")));
    XWS_CHECK(!mail_is_hostname(S("")));
    XWS_CHECK(!mail_is_hostname(S("-a.com")));
    XWS_CHECK(!mail_is_hostname(S("a-.com")));
    XWS_CHECK(!mail_is_hostname(S("a..com")));
    XWS_CHECK(!mail_is_hostname(S("a.com.")));
    XWS_CHECK(!mail_is_hostname(S(".a.com")));
    XWS_CHECK(!mail_is_hostname(S("a_b.com")));
    XWS_CHECK(!mail_is_hostname(S("a b")));
    XWS_CHECK(!mail_is_hostname(S("user@example.com")));
    XWS_CHECK(!mail_is_hostname("a\0b", 3));
    char big[300];
    memset(big, 'a', sizeof(big));
    XWS_CHECK(mail_is_hostname(big, 63));
    XWS_CHECK(!mail_is_hostname(big, 64));
    for (int i = 63; i < 253; i += 64)
        big[i] = '.';
    XWS_CHECK(mail_is_hostname(big, 253));
    XWS_CHECK(!mail_is_hostname(big, 254));

    XWS_CHECK(mail_is_ip(S("192.168.1.1")));
    XWS_CHECK(mail_is_ip(S("::1")));
    XWS_CHECK(mail_is_ip(S("2001:db8::25")));
    XWS_CHECK(!mail_is_ip(S("192.168.1")));
    XWS_CHECK(!mail_is_ip(S("[::1]")));
    XWS_CHECK(!mail_is_ip(S("example.com")));
    XWS_CHECK(s_is_domain(S("::1")) && s_is_domain(S("example.com")) && !s_is_domain(S("[::1]")));

    XWS_CHECK(mail_is_relay(S("smtp.free.fr")));
    XWS_CHECK(mail_is_relay(S("smtp.free.fr:25")));
    XWS_CHECK(mail_is_relay(S("smtp.free.fr:65535")));
    XWS_CHECK(mail_is_relay(S("[smtp.free.fr]")));
    XWS_CHECK(mail_is_relay(S("[smtp.free.fr]:587")));
    XWS_CHECK(mail_is_relay(S("10.1.2.3")));
    XWS_CHECK(mail_is_relay(S("10.1.2.3:25")));
    XWS_CHECK(mail_is_relay(S("[10.1.2.3]:25")));
    XWS_CHECK(mail_is_relay(S("[2001:db8::1]")));
    XWS_CHECK(mail_is_relay(S("[2001:db8::1]:2525")));
    XWS_CHECK(!mail_is_relay(S("2001:db8::1")));
    XWS_CHECK(!mail_is_relay(S("smtp.free.fr:0")));
    XWS_CHECK(!mail_is_relay(S("smtp.free.fr:65536")));
    XWS_CHECK(!mail_is_relay(S("smtp.free.fr:")));
    XWS_CHECK(!mail_is_relay(S("smtp.free.fr:25:25")));
    XWS_CHECK(!mail_is_relay(S("smtp.free.fr:2x")));
    XWS_CHECK(!mail_is_relay(S("[smtp.free.fr")));
    XWS_CHECK(!mail_is_relay(S("[]")));
    XWS_CHECK(!mail_is_relay(S("[smtp.free.fr]x")));
    XWS_CHECK(!mail_is_relay(S("[smtp.free.fr]:")));
    XWS_CHECK(!mail_is_relay(S("smtp free.fr")));
    XWS_CHECK(!mail_is_relay(S("")));
    XWS_CHECK(!mail_is_relay(S(":25")));

    xws_slice_t a = {"a b", 3}, b = {"a\tb", 3}, c = {"ab", 2};
    XWS_CHECK(s_has_space(a) && s_has_space(b) && !s_has_space(c));
}
