/*
 * svc_examples.c - the worked examples of services/common/README.md, each validated and rendered
 * by the record layer: a sip line with its protocol variant, a user with two `linefeatures` rows
 * and an error at row 1, and a device with its mac index (svc_index entries). Run by xws-svc-test.
 */
#include <string.h>
#include "svc.h"

/* ---- a line: common fields + the protocol's variant part ---------------------------------------- */

static const char *const line_protocols[] = {"sip", "iax", "sccp", "custom", NULL};
static const char *const line_yesno[] = {"", "no", "yes", NULL};
static const char *const line_hosttype[] = {"dynamic", "static", NULL};

static const svc_field_t sip_fields[] = {
    {.name = "secret", .kind = SVC_TEXT, .flags = SVC_F_DATA, .min_len = 1, .max_len = 80},
    {.name = "nat", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = line_yesno},
    {.name = "host-type", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = line_hosttype, .def = "dynamic"},
    {.name = "host", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 255, .check = svc_check_host, .check_what = "a host"},
    {.name = "call-limit", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 40, .out = SVC_OUT_STRING},
    {.name = "allow",
     .kind = SVC_LIST,
     .flags = SVC_F_DATA | SVC_F_CSV,
     .item = &(const svc_field_t){.kind = SVC_TEXT, .charset = "a-z0-9"}},
};
static const svc_rule_t sip_rules[] = {{.kind = SVC_RULE_REQUIRED_IF, .field = "host", .when = "host-type", .equals = "static"}};
static const svc_table_t sip_table = SVC_TABLE(sip_fields, SVC_RULES(sip_rules));
static const svc_field_t custom_fields[] = {
    {.name = "interface", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min_len = 1, .max_len = 128},
};
static const svc_table_t custom_table = SVC_TABLE(custom_fields);
static const svc_case_t line_cases[] = {{"sip", &sip_table}, {"iax", &sip_table}, {"custom", &custom_table}, {NULL, NULL}};
static const svc_variant_t line_variant = {"protocol", line_cases};

static void s_secret(svc_record_t *rec)
{
    svc_record_set_str(rec, "name", "generated", 9);
}

static const svc_field_t line_fields[] = {
    {.name = "protocol", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED, .choices = line_protocols},
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_LOWER, .max_len = 40, .charset = "a-z0-9_-"},
    {.name = "context", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min_len = 1, .max_len = 39},
};
static const svc_rule_t line_rules[] = {{.kind = SVC_RULE_DEFAULT, .field = "name", .fill = s_secret}};
static const svc_table_t line_table = SVC_TABLE(line_fields, .variant = &line_variant, SVC_RULES(line_rules));

/* the body {"protocol": {...}} of a line add */
static const svc_field_t line_body_fields[] = {
    {.name = "protocol", .kind = SVC_OBJECT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .sub = &line_table},
};
static const svc_table_t line_body = SVC_TABLE(line_body_fields);

/* ---- a user: flat fields + a column-oriented row group ------------------------------------------- */

static const svc_field_t lf_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_DATA},
    {.name = "protocol", .kind = SVC_ENUM, .flags = SVC_F_DATA, .choices = line_protocols},
    {.name = "context", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 39},
    {.name = "number", .kind = SVC_TEXT, .flags = SVC_F_DATA, .max_len = 40, .charset = "0-9*#"},
};
static int s_new_line_needs(svc_ctx_t *ctx, svc_record_t *row)
{
    if (svc_record_int(row, "id") != 0)
        return 0;
    if (!svc_record_has(row, "protocol") || svc_record_str(row, "protocol", NULL)[0] == '\0')
        return svc_record_error_or_reply(ctx, row, "protocol", "missing_field", "a new line needs a protocol");
    return 0;
}
static const svc_rule_t lf_rules[] = {{.kind = SVC_RULE_CHECK, .check = s_new_line_needs}};
static const svc_table_t lf_table = SVC_TABLE(lf_fields, SVC_RULES(lf_rules));

static const svc_field_t uf_fields[] = {
    {.name = "firstname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min_len = 1, .max_len = 128},
    {.name = "enableclient", .kind = SVC_BOOL, .flags = SVC_F_DATA},
    {.name = "loginclient", .kind = SVC_TEXT, .flags = SVC_F_DATA, .min_len = 2, .max_len = 64},
    {.name = "ringseconds", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 60, .def = "30"},
};
static const svc_rule_t uf_rules[] = {{.kind = SVC_RULE_REQUIRED_IF, .field = "loginclient", .when = "enableclient"}};
static const svc_table_t uf_table = SVC_TABLE(uf_fields, SVC_RULES(uf_rules));

static const svc_field_t user_fields[] = {
    {.name = "userfeatures", .kind = SVC_OBJECT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .sub = &uf_table},
    {.name = "linefeatures", .kind = SVC_ROWS, .flags = SVC_F_DATA | SVC_F_FALSE_OUT, .sub = &lf_table},
};
static const svc_table_t user_table = SVC_TABLE(user_fields);

/* ---- a device: its mac is normalised and indexed --------------------------------------------------- */

static const svc_field_t device_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "mac",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM,
     .norm = svc_norm_mac,
     .check = svc_check_mac,
     .check_what = "a MAC address"},
    {.name = "ip", .kind = SVC_TEXT, .flags = SVC_F_DATA, .check = svc_check_ip, .check_what = "an IPv4 or IPv6 address"},
    {.name = "internal", .kind = SVC_BOOL, .flags = SVC_F_DATA, .out = SVC_OUT_STRING},
    {.name = "configured", .kind = SVC_BOOL, .flags = SVC_F_DATA},
};
static const svc_table_t device_table = SVC_TABLE(device_fields);
static const svc_index_t device_ix[] = {
    {SVC_IX_UNIQUE, "mac", "device:mac", NULL, 1, "a device with mac %s already exists"},
    {SVC_IX_LOOKUP, "ip", "device:ip", NULL, 0, NULL},
};
static const svc_records_t device_records = {.service = "devices",
                                             .crud = {"device", &device_table, "device:data", NULL},
                                             .seq = "device:seq",
                                             .indexes = device_ix,
                                             .nindexes = 2};

/* ---- running them ------------------------------------------------------------------------------ */

/* validates json against t as an add; want_code NULL: accepted, and the rendering (or the index entries) is want */
static void s_example(const svc_table_t *t, const char *json, const char *want_code, const char *want_field, const char *want,
                      const svc_records_t *ix)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    XWS_CHECK(xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0);
    msgpack_unpacked u;
    XWS_CHECK(svc_mp_unpack(&u, sb.data, sb.size) == 0);
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(t);
    int rc = svc_record_load_body_or_reply(&ctx, rec, &u.data);
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = svc_record_check_or_reply(&ctx, rec);
    }
    xws_buf_t out;
    xws_buf_init(&out);
    if (want_code != NULL) {
        msgpack_unpacked e;
        XWS_CHECK(rc == -1 && ctx.status == 400 && svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0);
        int ok = svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) && svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field);
        if (!ok)
            fprintf(stderr, "%s: expected %s %s, got %.*s\n", json, want_code, want_field, (int)ctx.body.size, ctx.body.data);
        XWS_CHECK(ok);
        msgpack_unpacked_destroy(&e);
    } else {
        if (rc != 0)
            fprintf(stderr, "%s: refused: %.*s\n", json, (int)ctx.body.size, ctx.body.data);
        XWS_CHECK(rc == 0);
        /* stored and loaded back, then rendered (or its index entries) */
        size_t len;
        const char *blob = svc_record_blob(&ctx, rec, &len);
        svc_record_t *back = svc_record_new(t);
        XWS_CHECK(svc_record_load_stored(back, blob, len) == 0);
        svc_record_set_id(back, 7);
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, svc_mp_write);
        if (ix != NULL)
            svc_index_pack_entries(&ctx, ix, back, &pk);
        else
            svc_record_render(back, &pk);
        msgpack_unpacked r;
        XWS_CHECK(svc_mp_unpack(&r, sb.data, sb.size) == 0 && xws_msgpack_to_json(&r.data, &out) == 0);
        xws_buf_add(&out, "", 1);
        if (strcmp(out.data, want) != 0)
            fprintf(stderr, "%s:\n rendered %s\n expected %s\n", json, out.data, want);
        XWS_CHECK(strcmp(out.data, want) == 0);
        msgpack_unpacked_destroy(&r);
        svc_record_destroy(&back);
    }
    xws_buf_dispose(&out);
    svc_record_destroy(&rec);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

void svc_examples_test(void)
{
    /* a sip line: the protocol selects the sip part, which is validated, stored and rendered after the common part */
    s_example(&line_body,
              "{\"protocol\":{\"protocol\":\"sip\",\"context\":\"default\",\"secret\":\"S3CR3T\",\"nat\":\"yes\","
              "\"allow\":\"ulaw, alaw\",\"call-limit\":\"10\",\"interface\":\"ignored\"}}",
              NULL, NULL,
              "{\"protocol\":{\"protocol\":\"sip\",\"name\":\"generated\",\"context\":\"default\",\"secret\":\"S3CR3T\",\"nat\":"
              "\"yes\",\"host-type\":\"dynamic\",\"host\":\"\",\"call-limit\":\"10\",\"allow\":[\"ulaw\",\"alaw\"]}}",
              NULL);
    s_example(&line_body, "{\"protocol\":{\"protocol\":\"sip\",\"context\":\"default\",\"host-type\":\"static\"}}", "missing_field",
              "protocol.host", NULL, NULL);
    s_example(&line_body, "{\"protocol\":{\"protocol\":\"sip\",\"context\":\"default\",\"nat\":\"always\"}}", "invalid_value",
              "protocol.nat", NULL, NULL);
    s_example(&line_body, "{\"protocol\":{\"protocol\":\"sip\",\"context\":\"default\",\"allow\":[\"ulaw\",\"a-law\"]}}",
              "invalid_value", "protocol.allow[1]", NULL, NULL);
    s_example(&line_body, "{\"protocol\":{\"protocol\":\"custom\",\"context\":\"default\"}}", "missing_field", "protocol.interface",
              NULL, NULL);
    s_example(&line_body, "{\"protocol\":{\"protocol\":\"h323\",\"context\":\"default\"}}", "invalid_value", "protocol.protocol",
              NULL, NULL);

    /* a user with two linefeatures rows (the all-empty template row is ignored); an error at row 1 names it */
    s_example(
        &user_table,
        "{\"userfeatures\":{\"firstname\":\"John\"},\"linefeatures\":{\"id\":[\"\",\"\",\"45\"],\"protocol\":[\"sip\",\"\",\"\"],"
        "\"context\":[\"default\",\"\",\"default\"],\"number\":[\"101\",\"\",\"\"]}}",
        NULL, NULL,
        "{\"userfeatures\":{\"firstname\":\"John\",\"enableclient\":false,\"loginclient\":\"\",\"ringseconds\":30},"
        "\"linefeatures\":[{\"id\":0,\"protocol\":\"sip\",\"context\":\"default\",\"number\":\"101\"},"
        "{\"id\":45,\"protocol\":\"\",\"context\":\"default\",\"number\":\"\"}]}",
        NULL);
    s_example(&user_table,
              "{\"userfeatures\":{\"firstname\":\"John\"},\"linefeatures\":{\"protocol\":[\"sip\",\"sip\"],"
              "\"context\":[\"default\",\"default\"],\"number\":[\"101\",\"10x\"]}}",
              "invalid_value", "linefeatures.number[1]", NULL, NULL);
    s_example(&user_table,
              "{\"userfeatures\":{\"firstname\":\"John\"},\"linefeatures\":{\"context\":[\"default\",\"default\"],"
              "\"protocol\":[\"sip\"]}}",
              "missing_field", "linefeatures.protocol[1]", NULL, NULL);
    s_example(&user_table, "{\"userfeatures\":{\"firstname\":\"John\",\"enableclient\":true}}", "missing_field",
              "userfeatures.loginclient", NULL, NULL);
    s_example(&user_table, "{\"userfeatures\":{\"firstname\":\"Jo\"},\"linefeatures\":{\"number\":\"101\"}}", "invalid_value",
              "linefeatures.number", NULL, NULL);
    s_example(&user_table, "{\"userfeatures\":{\"firstname\":\"Jo\"}}", NULL, NULL,
              "{\"userfeatures\":{\"firstname\":\"Jo\",\"enableclient\":false,\"loginclient\":\"\",\"ringseconds\":30},"
              "\"linefeatures\":false}",
              NULL);

    /* a device: the mac is normalised and rendered, and its index entries are what the Redis functions maintain */
    s_example(&device_table, "{\"mac\":\" 00-11-22-AA-BB-CC \",\"ip\":\"10.0.0.5\",\"internal\":1}", NULL, NULL,
              "{\"id\":7,\"mac\":\"00:11:22:aa:bb:cc\",\"ip\":\"10.0.0.5\",\"internal\":\"1\",\"configured\":false}", NULL);
    s_example(&device_table, "{\"mac\":\"001122AABBCC\",\"ip\":\"10.0.0.5\"}", NULL, NULL,
              "[[[\"00:11:22:aa:bb:cc\",\"mac\"]],[[\"10.0.0.5\",\"ip\"]]]", &device_records);
    s_example(&device_table, "{\"mac\":\"00:11:22:aa:bb\"}", "invalid_value", "mac", NULL, NULL);
    s_example(&device_table, "{\"mac\":\"00:11:22:aa:bb:cc\",\"ip\":\"10.0.0.300\"}", "invalid_value", "ip", NULL, NULL);
}
