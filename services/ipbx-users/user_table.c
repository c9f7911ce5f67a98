/*
 * user_table.c - the declarations of the users resource (spec §5.3): the userfeatures record
 * (stored as a msgpack map), one row of the column-oriented linefeatures group, and the request
 * body. Rules that need the store (entity exists, login unique, lines free, numbers free) are
 * checked by lua/users.lua in the same call as the write.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "users.h"

static const char *const s_bsfilter[] = {"no", "boss", "secretary", NULL};
static const char *const s_languages[] = {"", "de_DE", "en_US", "es_ES", "fr_FR", "fr_CA", "nl_NL", NULL};
static const char *const s_protocols[] = {"sip", "iax", "sccp", "custom", NULL};

/* "First Last" trimmed, "" when both are empty */
static size_t s_names(const svc_record_t *rec, char *out, size_t cap)
{
    size_t fl, ll;
    const char *f = svc_record_str(rec, "firstname", &fl), *l = svc_record_str(rec, "lastname", &ll);
    int n = snprintf(out, cap, "%s%s%s", f, fl > 0 && ll > 0 ? " " : "", l);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    size_t b = 0;
    while (b < len && (out[b] == ' ' || out[b] == '\t'))
        b++;
    while (len > b && (out[len - 1] == ' ' || out[len - 1] == '\t'))
        len--;
    memmove(out, out + b, len - b);
    out[len - b] = '\0';
    return len - b;
}

static void s_fullname(const svc_record_t *rec, msgpack_packer *pk)
{
    char buf[600];
    size_t n = s_names(rec, buf, sizeof(buf));
    if (n == 0)
        svc_mp_cstr(pk, "-");
    else
        svc_mp_strn(pk, buf, n);
}

static void s_callerid(const svc_record_t *rec, msgpack_packer *pk)
{
    char buf[600];
    size_t n = s_names(rec, buf, sizeof(buf));
    msgpack_pack_str(pk, n + 2);
    msgpack_pack_str_body(pk, "\"", 1);
    msgpack_pack_str_body(pk, buf, n);
    msgpack_pack_str_body(pk, "\"", 1);
}

/* cti_profile_id: the stored number, null when none (0). The stored field is the first of that name */
static void s_cti_profile(const svc_record_t *rec, msgpack_packer *pk)
{
    long long v = svc_record_int(rec, "cti_profile_id");
    if (v > 0)
        msgpack_pack_int64(pk, v);
    else
        msgpack_pack_nil(pk);
}

/* ^\+?[0-9*#]{1,128}$ */
static int s_check_dest(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '+';
    if (len - i < 1 || len - i > 128)
        return -1;
    for (; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '*' || s[i] == '#'))
            return -1;
    return 0;
}

/* HH:MM, 00:00-23:59 */
static int s_check_hhmm(const char *s, size_t len)
{
    if (len != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    return (s[0] - '0') * 10 + (s[1] - '0') < 24 && s[3] < '6' ? 0 : -1;
}

/* a zone of the tz database: Area/Location of [A-Za-z0-9_+-], and, where the system has the
 * database, a file of it */
static int s_check_tz(const char *s, size_t len)
{
    if (len == 0 || len > 64 || s[0] == '/' || s[len - 1] == '/')
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '-' ||
              c == '/'))
            return -1;
        if (c == '/' && s[i + 1] == '/')
            return -1;
        if (c == '.')
            return -1;
    }
    struct stat st;
    if (stat("/usr/share/zoneinfo", &st) != 0)
        return 0;
    char path[128];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%.*s", (int)len, s);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

/* outcallerid: default, anonymous, or a caller id (printable, ≤ 80) */
static int s_ringseconds_step(svc_ctx_t *ctx, svc_record_t *rec)
{
    if (svc_record_int(rec, "ringseconds") % 5 != 0)
        return svc_record_error_or_reply(ctx, rec, "ringseconds", "out_of_range", "ringseconds is 0 to 60 in steps of 5");
    return 0;
}

/* an empty destination turns its enable flag off */
static int s_destinations(svc_ctx_t *ctx, svc_record_t *rec)
{
    (void)ctx;
    static const char *const pairs[][2] = {{"destrna", "enablerna"}, {"destbusy", "enablebusy"}, {"destunc", "enableunc"}};
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        svc_record_str(rec, pairs[i][0], &len);
        if (len == 0)
            svc_record_set_int(rec, pairs[i][1], 0);
    }
    return 0;
}

#define TEXT(n, max)                                                                                                               \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = max                                                           \
    }
#define FLAG(n, d)                                                                                                                 \
    {                                                                                                                              \
        .name = n, .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = d                                                                 \
    }

static const svc_field_t s_uf_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "entityid", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 999999999},
    {.name = "firstname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM, .min_len = 1, .max_len = 128},
    {.name = "lastname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 128},
    {.name = "fullname", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_fullname},
    {.name = "identity", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_fullname},
    {.name = "callerid", .kind = SVC_TEXT, .flags = SVC_F_COMPUTED, .compute = s_callerid},
    {.name = "loginclient",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA,
     .min_len = 2,
     .max_len = 64,
     .charset = "a-zA-Z0-9-._~!$&'()*+,;=%"},
    {.name = "passwdclient", .kind = SVC_TEXT, .flags = SVC_F_DATA, .min_len = 4, .max_len = 64},
    {.name = "mobilephonenumber",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 129,
     .check = s_check_dest,
     .check_what = "a phone number"},
    {.name = "ringseconds", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 60, .def = "30"},
    {.name = "simultcalls", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 1, .max = 20, .def = "5"},
    {.name = "musiconhold", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 128, .charset = "a-zA-Z0-9_-", .def = "default"},
    {.name = "voicemailid", .kind = SVC_INT, .flags = SVC_F_STORED},
    {.name = "profileclient", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 64, .def = "client"},
    /* stored as given (0 = none), rendered by the computed field of the same name: null when none */
    {.name = "cti_profile_id", .kind = SVC_INT, .flags = SVC_F_DATA | SVC_F_HIDDEN, .min = 0, .max = 999999999},
    {.name = "cti_profile_id", .kind = SVC_INT, .flags = SVC_F_COMPUTED, .compute = s_cti_profile},
    FLAG("enableclient", "false"),
    FLAG("enablehint", "true"),
    {.name = "enablevoicemail", .kind = SVC_BOOL, .flags = SVC_F_STORED, .def = "false"},
    FLAG("enablexfer", "true"),
    FLAG("enableautomon", "false"),
    FLAG("callrecord", "false"),
    FLAG("callfilter", "false"),
    FLAG("enablednd", "false"),
    FLAG("enablerna", "false"),
    FLAG("enablebusy", "false"),
    FLAG("enableunc", "false"),
    {.name = "destrna",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 129,
     .check = s_check_dest,
     .check_what = "a phone number"},
    {.name = "destbusy",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 129,
     .check = s_check_dest,
     .check_what = "a phone number"},
    {.name = "destunc",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 129,
     .check = s_check_dest,
     .check_what = "a phone number"},
    {.name = "bsfilter", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_bsfilter, .def = "no"},
    {.name = "agentid", .kind = SVC_INT, .flags = SVC_F_STORED},
    {.name = "outcallerid", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .min_len = 1, .max_len = 80, .def = "default"},
    {.name = "preprocess_subroutine", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 39, .charset = "a-zA-Z0-9_-"},
    {.name = "language", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_languages},
    {.name = "timezone",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 64,
     .check = s_check_tz,
     .check_what = "a time zone of the tz database"},
    TEXT("ringintern", 64),
    TEXT("ringextern", 64),
    TEXT("ringgroup", 64),
    TEXT("ringforward", 64),
    {.name = "rightcallcode", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 15, .charset = "0-9"},
    {.name = "alarmclock",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 5,
     .check = s_check_hhmm,
     .check_what = "a time HH:MM"},
    TEXT("pitchdirection", 16),
    TEXT("pitch", 16),
    TEXT("userfield", 128),
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
    FLAG("commented", "false"),
};
static const svc_rule_t s_uf_rules[] = {
    {.kind = SVC_RULE_REQUIRED_IF, .field = "loginclient", .when = "enableclient"},
    {.kind = SVC_RULE_REQUIRED_IF, .field = "passwdclient", .when = "enableclient"},
    {.kind = SVC_RULE_CHECK, .check = s_ringseconds_step},
    {.kind = SVC_RULE_CHECK, .check = s_destinations},
};
const svc_table_t users_uf_table = SVC_TABLE(s_uf_fields, SVC_RULES(s_uf_rules));

/* a row whose id is absent, empty or 0 creates a line: protocol and context required */
static int s_new_line_needs(svc_ctx_t *ctx, svc_record_t *row)
{
    if (svc_record_int(row, "id") != 0)
        return 0;
    if (svc_record_str(row, "protocol", NULL)[0] == '\0')
        return svc_record_error_or_reply(ctx, row, "protocol", "missing_field", "a new line needs a protocol");
    if (svc_record_str(row, "context", NULL)[0] == '\0')
        return svc_record_error_or_reply(ctx, row, "context", "missing_field", "a new line needs a context");
    return 0;
}

static const svc_field_t s_lf_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 999999999},
    {.name = "protocol", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_LOWER, .choices = s_protocols},
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 128},
    {.name = "context", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 39, .charset = "A-Za-z0-9_-"},
    {.name = "number", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 40, .charset = "0-9*#"},
    {.name = "rules_type", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 16},
    {.name = "rules_time", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 8, .charset = "0-9"},
    {.name = "rules_order", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 9999},
    {.name = "rules_group", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 16},
    {.name = "secret", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 80},
    /* the device of a new line (an existing device id) and its slot on it (1-12; 0 or empty: 1, the lines' default) */
    {.name = "device", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 18, .charset = "0-9"},
    {.name = "num", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 12},
};
static const svc_rule_t s_lf_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_new_line_needs}};
const svc_table_t users_lf_table = SVC_TABLE(s_lf_fields, SVC_RULES(s_lf_rules));

/* voicemail (spec §5.3): its context is resolved by the Redis function when not given */
static const svc_field_t s_vm_fields[] = {
    {.name = "mailbox",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM,
     .min_len = 1,
     .max_len = 40,
     .charset = "0-9*#"},
    {.name = "fullname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM, .min_len = 1, .max_len = 80},
    {.name = "password", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 80, .charset = "0-9*#"},
    {.name = "email",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM,
     .max_len = 255,
     .check = svc_check_email,
     .check_what = "an e-mail address"},
    {.name = "tz", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 80, .charset = "a-zA-Z0-9_/+-"},
    {.name = "attach", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "deletevoicemail", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "context", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 39, .charset = "A-Za-z0-9_-"},
    {.name = "skipcheckpass", .kind = SVC_BOOL, .flags = SVC_F_STORED, .def = "false"},
};
const svc_table_t users_vm_table = SVC_TABLE(s_vm_fields);
static const svc_field_t s_vmf_fields[] = {
    {.name = "skipcheckpass", .kind = SVC_BOOL, .flags = SVC_F_DATA},
};
const svc_table_t users_vmf_table = SVC_TABLE(s_vmf_fields);

static const svc_field_t s_body_fields[] = {
    {.name = "userfeatures", .kind = SVC_OBJECT, .flags = SVC_F_DATA, .sub = &users_uf_table},
    {.name = "linefeatures", .kind = SVC_ROWS, .flags = SVC_F_DATA | SVC_F_FALSE_IN, .max_len = 64, .sub = &users_lf_table},
};
const svc_table_t users_body_table = SVC_TABLE(s_body_fields);

/* ---- phonefunckey rows and queueskills, stored together in user:extra -------------------------------- */

static const char *const s_fktypes[] = {"user", "group", "queue", "meetme", "extension", "custom", "bsfilter", "agent", NULL};

/* an object id: 1-999999999, decimal, no leading zero */
static int s_check_object_id(const char *s, size_t len)
{
    if (len == 0 || len > 9 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    return 0;
}

/* a number to call (1-40 of [0-9*#]) or a service of the PBX: extenfeatures-<1-64 of [a-z0-9_]> */
static int s_check_fk_extension(const char *s, size_t len)
{
    static const char feat[] = "extenfeatures-";
    const size_t fl = sizeof(feat) - 1;
    if (len > fl && memcmp(s, feat, fl) == 0) {
        if (len - fl > 64)
            return -1;
        for (size_t i = fl; i < len; i++)
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                return -1;
        return 0;
    }
    if (len == 0 || len > 40)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '*' || s[i] == '#'))
            return -1;
    return 0;
}

/* a dial string: printable, no white space */
static int s_check_fk_custom(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return -1;
    return len > 0 ? 0 : -1;
}

/*
 * What the typeval of each function key type must be (spec §5.3 lists the types; the forms are
 * the original's). Every type needs a typeval. The ids of users, groups and queues are references
 * (users_fk_target): kept in funckey:target, group and queue ids checked to exist by lua/users.lua
 * in the write, and a key goes when the object it names is deleted.
 */
static const struct {
    const char *type;
    int (*check)(const char *s, size_t len);
    const char *what;
} s_fk_typevals[] = {
    {"user", s_check_object_id, "the id of a user"},
    {"group", s_check_object_id, "the id of a group"},
    {"queue", s_check_object_id, "the id of a queue"},
    {"meetme", s_check_object_id, "the id of a conference room"},
    {"extension", s_check_fk_extension, "a number ([0-9*#], at most 40) or extenfeatures-<service>"},
    {"custom", s_check_fk_custom, "a dial string without white space"},
    {"bsfilter", s_check_object_id, "the id of the boss or secretary user"},
    {"agent", s_check_object_id, "the id of an agent"},
};

const char *users_fk_target(const char *type)
{
    static const char *const kinds[] = {"user", "group", "queue", NULL};
    for (size_t i = 0; kinds[i] != NULL; i++)
        if (strcmp(kinds[i], type) == 0)
            return kinds[i];
    return NULL;
}

static int s_fk_check(svc_ctx_t *ctx, svc_record_t *row)
{
    const char *type = svc_record_str(row, "type", NULL);
    size_t len;
    const char *val = svc_record_str(row, "typeval", &len);
    for (size_t i = 0; i < sizeof(s_fk_typevals) / sizeof(s_fk_typevals[0]); i++) {
        if (strcmp(s_fk_typevals[i].type, type) != 0)
            continue;
        if (len == 0)
            return svc_record_error_or_reply(ctx, row, "typeval", "missing_field", "a key of type %s needs %s", type,
                                             s_fk_typevals[i].what);
        if (s_fk_typevals[i].check(val, len) != 0)
            return svc_record_error_or_reply(ctx, row, "typeval", "invalid_value", "a key of type %s takes %s", type,
                                             s_fk_typevals[i].what);
    }
    return 0;
}

static const svc_field_t s_fk_fields[] = {
    {.name = "fknum", .kind = SVC_INT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min = 1, .max = 999},
    {.name = "type", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED, .choices = s_fktypes},
    {.name = "typeval", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 255},
    {.name = "supervision", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "label", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 32},
};
static const svc_rule_t s_fk_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_fk_check}};
static const svc_table_t s_fk_table = SVC_TABLE(s_fk_fields, SVC_RULES(s_fk_rules));

static const svc_field_t s_skill_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min = 1, .max = 999999999},
    {.name = "weight", .kind = SVC_INT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min = 0, .max = 100},
};
static const svc_table_t s_skill_table = SVC_TABLE(s_skill_fields);

/* fknum unique per user, skill ids unique */
static int s_extra_unique(svc_ctx_t *ctx, svc_record_t *rec)
{
    static const char *const groups[][2] = {{"phonefunckey", "fknum"}, {"queueskills", "id"}};
    for (size_t g = 0; g < 2; g++) {
        size_t n = svc_record_count(rec, groups[g][0]);
        for (size_t i = 0; i < n; i++) {
            svc_record_t *a = svc_record_at(rec, groups[g][0], i);
            for (size_t j = 0; j < i; j++) {
                if (svc_record_int(svc_record_at(rec, groups[g][0], j), groups[g][1]) == svc_record_int(a, groups[g][1]))
                    return svc_record_error_or_reply(ctx, a, groups[g][1], "already_exists", "%s %lld is given twice", groups[g][1],
                                                     svc_record_int(a, groups[g][1]));
            }
        }
    }
    return 0;
}

static const svc_field_t s_extra_fields[] = {
    {.name = "phonefunckey",
     .kind = SVC_ROWS,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT,
     .max_len = 999,
     .sub = &s_fk_table},
    {.name = "queueskills",
     .kind = SVC_LIST,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT,
     .max_len = 1000,
     .sub = &s_skill_table},
};
static const svc_rule_t s_extra_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_extra_unique}};
const svc_table_t users_extra_table = SVC_TABLE(s_extra_fields, SVC_RULES(s_extra_rules));

/* ---- dialaction, group and queue memberships ------------------------------------------------------- */

const char *const users_da_events[] = {"noanswer", "busy", "congestion", "chanunavail", NULL};

static const char *const s_actiontypes[] = {"none",    "endcall",     "user",     "group",     "queue",
                                            "meetme",  "voicemail",   "schedule", "voicemenu", "extension",
                                            "outcall", "application", "sound",    "custom",    NULL};
static const char *const s_endcall_actions[] = {"hangup", "busy", "congestion", NULL};
static const char *const s_app_actions[] = {"faxtomail", "voicemailmain", "callbackdisa", "disa", "directory", "dictate", NULL};

/* what an actiontype needs (spec §5.3): an action among .actions, or actionarg1 naming an object by id */
static const struct {
    const char *type;
    const char *const *actions; /* NULL: action free */
    int names_object;           /* actionarg1: the id of a user, group or queue (existence checked by lua/users.lua) */
} s_da_needs[] = {
    {"endcall", s_endcall_actions, 0}, {"application", s_app_actions, 0}, {"user", NULL, 1}, {"group", NULL, 1}, {"queue", NULL, 1},
};

static int s_in(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static int s_da_check(svc_ctx_t *ctx, svc_record_t *rec)
{
    const char *type = svc_record_str(rec, "actiontype", NULL);
    for (size_t i = 0; i < sizeof(s_da_needs) / sizeof(s_da_needs[0]); i++) {
        if (strcmp(s_da_needs[i].type, type) != 0)
            continue;
        const char *action = svc_record_str(rec, "action", NULL);
        if (s_da_needs[i].actions != NULL && action[0] == '\0')
            return svc_record_error_or_reply(ctx, rec, "action", "missing_field", "actiontype %s needs an action", type);
        if (s_da_needs[i].actions != NULL && !s_in(s_da_needs[i].actions, action))
            return svc_record_error_or_reply(ctx, rec, "action", "invalid_value", "%s is not an action of actiontype %s", action,
                                             type);
        if (s_da_needs[i].names_object) {
            size_t len;
            const char *arg = svc_record_str(rec, "actionarg1", &len);
            if (len == 0)
                return svc_record_error_or_reply(ctx, rec, "actionarg1", "missing_field", "actiontype %s needs the id of a %s",
                                                 type, type);
            int ok = len <= 9 && arg[0] != '0';
            for (size_t j = 0; ok && j < len; j++)
                ok = arg[j] >= '0' && arg[j] <= '9';
            if (!ok)
                return svc_record_error_or_reply(ctx, rec, "actionarg1", "invalid_value", "actionarg1 is the id of a %s", type);
        }
    }
    return 0;
}

static const svc_field_t s_da_fields[] = {
    {.name = "actiontype", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED, .choices = s_actiontypes},
    {.name = "action", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 64},
    {.name = "actionarg1", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 255},
    {.name = "actionarg2", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 255},
};
static const svc_rule_t s_da_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_da_check}};
const svc_table_t users_da_table = SVC_TABLE(s_da_fields, SVC_RULES(s_da_rules));

static const char *const s_chantypes[] = {"default", "local", NULL};

static const svc_field_t s_group_opt_fields[] = {
    {.name = "chantype", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_chantypes, .def = "default"},
    {.name = "call-limit", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 999999, .def = "0"},
};
const svc_table_t users_group_opt_table = SVC_TABLE(s_group_opt_fields);

static const svc_field_t s_queue_opt_fields[] = {
    {.name = "chantype", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = s_chantypes, .def = "default"},
    {.name = "call-limit", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 999999, .def = "0"},
    {.name = "penalty", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 999999, .def = "0"},
};
const svc_table_t users_queue_opt_table = SVC_TABLE(s_queue_opt_fields);

static const svc_field_t s_member_name = {.kind = SVC_TEXT, .flags = SVC_F_TRIM, .min_len = 1, .max_len = 128};

static const svc_field_t s_select_fields[] = {
    {.name = "group-select",
     .kind = SVC_LIST,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_DEDUP,
     .max_len = 1000,
     .item = &s_member_name},
    {.name = "queue-select",
     .kind = SVC_LIST,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_DEDUP,
     .max_len = 1000,
     .item = &s_member_name},
};
const svc_table_t users_select_table = SVC_TABLE(s_select_fields);
