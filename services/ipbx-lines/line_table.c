/*
 * line_table.c - the declarations of a line (spec §5.1): the features part, the protocol part
 * with one variant per protocol, the rules, the indexes. Everything the handlers validate, store
 * and render comes from these tables.
 */
#include <string.h>
#include "lines.h"

/* ---- value rules ------------------------------------------------------------------------------- */

static const char *const s_protocols[] = {"sip", "iax", "sccp", "custom", NULL};
static const char *const s_yesno[] = {"", "no", "yes", "0", "1", NULL};
static const char *const s_inband[] = {"", "no", "yes", "0", "1", "never", NULL};
static const char *const s_languages[] = {"", "de_DE", "en_US", "es_ES", "fr_FR", "fr_CA", "nl_NL", NULL};
static const char *const s_nat[] = {"", "no", "yes", "force_rport", "comedia", NULL};
static const char *const s_dtmf[] = {"", "rfc2833", "inband", "info", "auto", NULL};
static const char *const s_hosttype[] = {"dynamic", "static", NULL};
static const char *const s_disallow[] = {"", "all", NULL};
static const char *const s_insecure[] = {"", "no", "port", "invite", "port,invite", NULL};
static const char *const s_sendrpid[] = {"", "no", "yes", "0", "1", "pai", "rpid", NULL};
static const char *const s_reinvite[] = {"", "no", "yes", "0", "1", "nonat", "update", "update,nonat", NULL};
static const char *const s_amaflags[] = {"", "default", "omit", "billing", "documentation", NULL};
static const char *const s_type[] = {"friend", NULL};

/* server-managed fields: only absent or empty is accepted (the check runs on non-empty values) */
static int s_check_empty(const char *s, size_t len)
{
    (void)s, (void)len;
    return -1;
}

static long long s_digits_value(const char *s, size_t len)
{
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 1000000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* qualify: no, yes, or 500-4000 (milliseconds) */
static int s_check_qualify(const char *s, size_t len)
{
    if ((len == 2 && memcmp(s, "no", 2) == 0) || (len == 3 && memcmp(s, "yes", 3) == 0))
        return 0;
    long long v = s_digits_value(s, len);
    return v >= 500 && v <= 4000 ? 0 : -1;
}

static int s_check_calllimit(const char *s, size_t len)
{
    long long v = s_digits_value(s, len);
    return v >= 0 && v <= 40 ? 0 : -1;
}

/*
 * callerid: `"Name" <number>`, `Name <number>`, `<number>` or `Name` become `"Name" <number>` /
 * `"Name"` (surrounding quotes of the name are dropped first, white space around the parts too).
 */
static size_t s_norm_callerid(char *s, size_t len)
{
    if (len == 0)
        return 0;
    const char *name = s, *num = NULL;
    size_t nlen = len, numlen = 0;
    if (s[len - 1] == '>') {
        const char *lt = NULL;
        for (size_t i = len - 1; i-- > 0;)
            if (s[i] == '<') {
                lt = s + i;
                break;
            }
        if (lt != NULL) {
            num = lt + 1;
            numlen = (size_t)(s + len - 1 - num);
            nlen = (size_t)(lt - s);
        }
    }
    while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
        nlen--;
    while (nlen > 0 && (*name == ' ' || *name == '\t'))
        name++, nlen--;
    if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"')
        name++, nlen -= 2;
    while (num != NULL && numlen > 0 && (*num == ' ' || *num == '\t'))
        num++, numlen--;
    while (num != NULL && numlen > 0 && (num[numlen - 1] == ' ' || num[numlen - 1] == '\t'))
        numlen--;
    char *out = svc_malloc(len + 8);
    size_t n = 0;
    out[n++] = '"';
    memcpy(out + n, name, nlen), n += nlen;
    out[n++] = '"';
    if (num != NULL && numlen > 0) {
        out[n++] = ' ';
        out[n++] = '<';
        memcpy(out + n, num, numlen), n += numlen;
        out[n++] = '>';
    }
    memcpy(s, out, n);
    free(out);
    return n;
}

/* ---- protocol parts ----------------------------------------------------------------------------- */

#define YESNO(n)                                                                                                                   \
    {                                                                                                                              \
        .name = n, .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_yesno                                                       \
    }
#define CHOICE(n, c)                                                                                                               \
    {                                                                                                                              \
        .name = n, .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = c                                                             \
    }
#define TEXT(n, mx)                                                                                                                \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = mx                                                            \
    }
#define DIGITS(n)                                                                                                                  \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 9, .charset = "0-9"                                           \
    }
/* server-managed: shown ("" always) */
#define MANAGED(n)                                                                                                                 \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA, .check = s_check_empty, .check_what = "empty (the server manages it)"    \
    }
/* server-managed and never shown */
#define MANAGED_HIDDEN(n)                                                                                                          \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_HIDDEN, .check = s_check_empty,                                   \
        .check_what = "empty (the server manages it)"                                                                              \
    }

#define NAME_FIELD                                                                                                                 \
    {                                                                                                                              \
        .name = "name", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_LOWER | SVC_F_TRIM, .min_len = 1, .max_len = 40,             \
        .charset = "a-z0-9_-"                                                                                                      \
    }
#define SECRET_FIELD                                                                                                               \
    {                                                                                                                              \
        .name = "secret", .kind = SVC_TEXT, .flags = SVC_F_DATA, .min_len = 1, .max_len = 80                                       \
    }
#define ALLOW_FIELD                                                                                                                \
    {                                                                                                                              \
        .name = "allow", .kind = SVC_LIST, .flags = SVC_F_DATA | SVC_F_CSV | SVC_F_DEDUP | SVC_F_FALSE_IN | SVC_F_FALSE_OUT,       \
        .max_len = 64, .item = &(const svc_field_t)                                                                                \
        {                                                                                                                          \
            .kind = SVC_TEXT, .flags = SVC_F_REQUIRED | SVC_F_LOWER | SVC_F_TRIM, .min_len = 1, .max_len = 16,                     \
            .charset = "a-z0-9_."                                                                                                  \
        }                                                                                                                          \
    }
#define CALLERID_FIELD                                                                                                             \
    {                                                                                                                              \
        .name = "callerid", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 160, .norm = s_norm_callerid            \
    }
#define HOST_FIELDS                                                                                                                \
    {.name = "host-type", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_hosttype, .def = "dynamic"},                         \
    {                                                                                                                              \
        .name = "host", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM | SVC_F_LOWER, .max_len = 255, .check = svc_check_host, \
        .check_what = "an address or a host name"                                                                                  \
    }
#define QUALIFY_FIELD                                                                                                              \
    {                                                                                                                              \
        .name = "qualify", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 4, .check = s_check_qualify,             \
        .check_what = "no, yes or 500-4000"                                                                                        \
    }
#define MAILBOX_FIELD                                                                                                              \
    {                                                                                                                              \
        .name = "mailbox", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 80, .charset = "0-9#*@A-Za-z_-"                       \
    }
#define TYPE_FIELD                                                                                                                 \
    {                                                                                                                              \
        .name = "type", .kind = SVC_ENUM, .flags = SVC_F_STORED, .choices = s_type, .def = "friend"                                \
    }

static void s_gen_name(svc_record_t *rec)
{
    char buf[9];
    svc_random_chars(buf, 8, "abcdefghijklmnopqrstuvwxyz0123456789");
    svc_record_set_str(rec, "name", buf, 8);
}

static void s_gen_secret(svc_record_t *rec)
{
    char buf[9];
    svc_random_chars(buf, 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    svc_record_set_str(rec, "secret", buf, 8);
}

/* host-type static needs a host; a dynamic line's host is "dynamic" */
static int s_host_rule(svc_ctx_t *ctx, svc_record_t *rec)
{
    size_t tl, hl;
    const char *type = svc_record_str(rec, "host-type", &tl);
    const char *host = svc_record_str(rec, "host", &hl);
    if (tl == 6 && memcmp(type, "static", 6) == 0) {
        if (hl == 0 || (hl == 7 && memcmp(host, "dynamic", 7) == 0))
            return svc_record_error_or_reply(ctx, rec, "host", "missing_field",
                                             "a static line needs a host (an address or a name)");
        return 0;
    }
    svc_record_set_str(rec, "host-type", "dynamic", 7);
    svc_record_set_str(rec, "host", "dynamic", 7);
    return 0;
}

static const svc_rule_t s_peer_rules[] = {
    {.kind = SVC_RULE_DEFAULT, .field = "name", .fill = s_gen_name},
    {.kind = SVC_RULE_DEFAULT, .field = "secret", .fill = s_gen_secret},
    {.kind = SVC_RULE_CHECK, .check = s_host_rule},
};

static const svc_field_t s_sip_fields[] = {
    NAME_FIELD,
    SECRET_FIELD,
    TYPE_FIELD,
    MANAGED("username"),
    CHOICE("language", s_languages),
    CHOICE("nat", s_nat),
    YESNO("subscribemwi"),
    YESNO("buggymwi"),
    CHOICE("progressinband", s_inband),
    CHOICE("dtmfmode", s_dtmf),
    YESNO("rfc2833compensate"),
    QUALIFY_FIELD,
    DIGITS("rtptimeout"),
    DIGITS("rtpholdtimeout"),
    DIGITS("rtpkeepalive"),
    YESNO("allowtransfer"),
    YESNO("autoframing"),
    YESNO("videosupport"),
    DIGITS("maxcallbitrate"),
    YESNO("g726nonstandard"),
    CHOICE("disallow", s_disallow),
    ALLOW_FIELD,
    YESNO("t38pt_udptl"),
    YESNO("t38pt_rtp"),
    YESNO("t38pt_tcp"),
    YESNO("t38pt_usertpsource"),
    CALLERID_FIELD,
    CHOICE("insecure", s_insecure),
    HOST_FIELDS,
    MANAGED("port"),
    TEXT("permit", 255),
    TEXT("deny", 255),
    YESNO("trustrpid"),
    CHOICE("sendrpid", s_sendrpid),
    YESNO("allowsubscribe"),
    YESNO("allowoverlap"),
    YESNO("promiscredir"),
    YESNO("usereqphone"),
    CHOICE("canreinvite", s_reinvite),
    TEXT("fromuser", 80),
    TEXT("fromdomain", 255),
    CHOICE("amaflags", s_amaflags),
    {.name = "accountcode", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 20},
    YESNO("useclientcode"),
    MAILBOX_FIELD,
    {.name = "call-limit",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 2,
     .charset = "0-9",
     .check = s_check_calllimit,
     .check_what = "0-40"},
    MANAGED_HIDDEN("md5secret"),
    MANAGED_HIDDEN("fullname"),
    MANAGED_HIDDEN("cid_number"),
    MANAGED_HIDDEN("defaultip"),
    MANAGED_HIDDEN("regexten"),
    MANAGED_HIDDEN("fullcontact"),
    MANAGED_HIDDEN("vmexten"),
    MANAGED_HIDDEN("callingpres"),
    MANAGED_HIDDEN("ipaddr"),
    MANAGED_HIDDEN("regseconds"),
    MANAGED_HIDDEN("regserver"),
    MANAGED_HIDDEN("lastms"),
    MANAGED_HIDDEN("subscribecontext"),
    MANAGED_HIDDEN("mohinterpret"),
};
static const svc_table_t s_sip_table = SVC_TABLE(s_sip_fields, SVC_RULES(s_peer_rules));

static const svc_field_t s_iax_fields[] = {
    NAME_FIELD,
    SECRET_FIELD,
    TYPE_FIELD,
    MANAGED("username"),
    CHOICE("language", s_languages),
    QUALIFY_FIELD,
    CHOICE("disallow", s_disallow),
    ALLOW_FIELD,
    CALLERID_FIELD,
    HOST_FIELDS,
    MANAGED("port"),
    TEXT("permit", 255),
    TEXT("deny", 255),
    CHOICE("amaflags", s_amaflags),
    {.name = "accountcode", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 20},
    MAILBOX_FIELD,
    MANAGED_HIDDEN("fullname"),
    MANAGED_HIDDEN("cid_number"),
    MANAGED_HIDDEN("defaultip"),
    MANAGED_HIDDEN("regexten"),
    MANAGED_HIDDEN("ipaddr"),
    MANAGED_HIDDEN("regseconds"),
};
static const svc_table_t s_iax_table = SVC_TABLE(s_iax_fields, SVC_RULES(s_peer_rules));

/* sccp: the name is the number (lines_fix_or_reply) */
static const svc_field_t s_sccp_fields[] = {
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_STORED},
    {.name = "cid_name", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 80},
    {.name = "cid_num", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 40, .charset = "0-9*#+"},
};
static const svc_table_t s_sccp_table = SVC_TABLE(s_sccp_fields);

/* custom: the name is the interface (lines_fix_or_reply) */
static const svc_field_t s_custom_fields[] = {
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_STORED},
    {.name = "interface", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM, .min_len = 1, .max_len = 128},
};
static const svc_table_t s_custom_table = SVC_TABLE(s_custom_fields);

static const svc_case_t s_cases[] = {
    {"sip", &s_sip_table}, {"iax", &s_iax_table}, {"sccp", &s_sccp_table}, {"custom", &s_custom_table}, {NULL, NULL}};
static const svc_variant_t s_variant = {"protocol", s_cases};

static const svc_field_t s_proto_fields[] = {
    {.name = "protocol", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_LOWER | SVC_F_TRIM, .choices = s_protocols},
    {.name = "context",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM,
     .min_len = 1,
     .max_len = 39,
     .charset = "A-Za-z0-9_-"},
};
static const svc_table_t s_proto_table = SVC_TABLE(s_proto_fields, .variant = &s_variant);

/* ---- the features part ----------------------------------------------------------------------------- */

/* identity: SIP/name, IAX/name, SCCP/name, or the custom interface (= the name) */
static void s_identity(const svc_record_t *rec, msgpack_packer *pk)
{
    size_t pl, nl;
    const char *p = svc_record_str(rec, "protocol", &pl), *n = svc_record_str(rec, "name", &nl);
    if (pl == 6 && memcmp(p, "custom", 6) == 0) {
        svc_mp_strn(pk, n, nl);
        return;
    }
    char tech[8];
    size_t tl = pl < sizeof(tech) ? pl : sizeof(tech) - 1;
    for (size_t i = 0; i < tl; i++)
        tech[i] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i]);
    msgpack_pack_str(pk, tl + 1 + nl);
    msgpack_pack_str_body(pk, tech, tl);
    msgpack_pack_str_body(pk, "/", 1);
    msgpack_pack_str_body(pk, n, nl);
}

/* initialized: a sip line is once it has registered (never, as long as nothing records registrations); others always */
static void s_initialized(const svc_record_t *rec, msgpack_packer *pk)
{
    size_t pl;
    const char *p = svc_record_str(rec, "protocol", &pl);
    if (pl == 3 && memcmp(p, "sip", 3) == 0)
        msgpack_pack_false(pk);
    else
        msgpack_pack_true(pk);
}

/*
 * Fields without SVC_F_STORED/INPUT (protocolid, iduserfeatures, useridentity, provisioningid) are
 * shown only: the handlers set them before rendering from the line's id and its attachments.
 * `device` is read from bodies but kept outside the record (line:device, see README.md).
 */
static const svc_field_t s_lf_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "protocol", .kind = SVC_TEXT, .flags = SVC_F_STORED},
    {.name = "protocolid", .kind = SVC_INT},
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_STORED},
    {.name = "number", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 40, .charset = "0-9*#"},
    {.name = "context", .kind = SVC_TEXT, .flags = SVC_F_STORED},
    {.name = "iduserfeatures", .kind = SVC_INT},
    {.name = "useridentity", .kind = SVC_TEXT},
    {.name = "device", .kind = SVC_TEXT, .flags = SVC_F_INPUT | SVC_F_TRIM, .max_len = 18, .charset = "0-9"},
    {.name = "num", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 1, .max = 12, .def = "1"},
    {.name = "rules_type", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 16},
    {.name = "rules_time", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 8, .charset = "0-9"},
    {.name = "rules_order", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 9999, .def = "1"},
    {.name = "rules_group", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 16},
    {.name = "config", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 128},
    {.name = "configregistrar", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 128, .def = "default"},
    {.name = "provisioningid", .kind = SVC_INT},
    {.name = "internal", .kind = SVC_BOOL, .flags = SVC_F_STORED, .def = "false"},
    {.name = "commented", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
    {.name = "identity", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_identity},
    {.name = "initialized", .kind = SVC_BOOL, .flags = SVC_F_COMPUTED, .compute = s_initialized},
};
static const svc_table_t s_lf_table = SVC_TABLE(s_lf_fields);

static const svc_field_t s_line_fields[] = {
    {.name = "linefeatures", .kind = SVC_OBJECT, .flags = SVC_F_DATA, .sub = &s_lf_table},
    {.name = "protocol", .kind = SVC_OBJECT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .sub = &s_proto_table},
};
const svc_table_t lines_table = SVC_TABLE(s_line_fields);

static const svc_index_t s_indexes[] = {
    {SVC_IX_UNIQUE, "protocol.name", "line:name", NULL, 1, "a line named %s already exists"},
    {SVC_IX_REF, "protocol.context", "context:data", "context:refs", 0, "no context is named %s"},
};
static const char *const s_depends[] = {"users", NULL};
/*
 * The generic svc_records_* writes are not used (.service NULL): a line write also reserves its
 * number, so every write is a function of lua/lines.lua, which maintains these indexes with the
 * prelude's xws_records_check / xws_records_apply from the entries of svc_index_pack_entries.
 */
const svc_records_t lines_records = {.service = NULL,
                                     .crud = {"lines", &lines_table, "line:data", s_depends},
                                     .seq = "line:seq",
                                     .inrefs = "line:refs",
                                     .indexes = s_indexes,
                                     .nindexes = 2};

int lines_fix_or_reply(svc_ctx_t *ctx, svc_record_t *rec)
{
    if (!svc_record_has(rec, "protocol"))
        return 0; /* the checks refuse the line */
    svc_record_t *proto = svc_record_obj(rec, "protocol"), *lf = svc_record_obj(rec, "linefeatures");
    size_t pl, cl, nl;
    const char *p = svc_record_str(proto, "protocol", &pl);
    const char *c = svc_record_str(proto, "context", &cl);
    if (svc_record_variant(proto) == NULL)
        return 0; /* the checks refuse the protocol */
    if (strcmp(p, "sccp") == 0) {
        const char *num = svc_record_str(lf, "number", &nl);
        if (nl == 0)
            return svc_record_error_or_reply(ctx, lf, "number", "missing_field", "an sccp line needs a number (it is its name)");
        svc_record_set_str(proto, "name", num, nl);
    } else if (strcmp(p, "custom") == 0) {
        const char *itf = svc_record_str(proto, "interface", &nl);
        svc_record_set_str(proto, "name", itf, nl);
    }
    const char *name = svc_record_str(proto, "name", &nl);
    svc_record_set_str(lf, "protocol", p, pl);
    svc_record_set_str(lf, "context", c, cl);
    svc_record_set_str(lf, "name", name, nl);
    return 0;
}
