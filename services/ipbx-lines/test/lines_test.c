/*
 * lines_test.c - the line declarations on their own (no Redis): bodies of every protocol
 * validated, completed and rendered by the tables of line_table.c, the rules' error paths, the
 * callerid normalisation, and the index entries the Redis functions maintain. Last line:
 * "N passed, M failed".
 */
#include <stdio.h>
#include <string.h>
#include "lines.h"

static int s_passed, s_failed;

/*
 * Validates json as a line add. want_code NULL: accepted, and the rendering of part `part` (or of
 * the index entries when part is NULL) contains `want`; else the error code and field.
 */
static void s_case(const char *json, const char *want_code, const char *want_field, const char *part, const char *want)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int ok = xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ok = ok && svc_mp_unpack(&u, sb.data, sb.size) == 0;
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(&lines_table);
    int rc = ok ? svc_record_load_body_or_reply(&ctx, rec, &u.data) : -1;
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = lines_fix_or_reply(&ctx, rec);
    }
    if (rc == 0)
        rc = svc_record_check_or_reply(&ctx, rec);
    xws_buf_t out;
    xws_buf_init(&out);
    if (want_code != NULL) {
        msgpack_unpacked e;
        msgpack_unpacked_init(&e);
        ok = ok && rc == -1 && ctx.status == 400 && svc_mp_unpack(&e, ctx.body.data, ctx.body.size) == 0 &&
             svc_mp_str_eq(svc_mp_get(&e.data, "error"), want_code) && svc_mp_str_eq(svc_mp_get(&e.data, "field"), want_field);
        if (!ok)
            fprintf(stderr, "%s: expected %s %s, got %d %.*s\n", json, want_code, want_field, rc, (int)ctx.body.size,
                    ctx.body.data);
        msgpack_unpacked_destroy(&e);
    } else {
        ok = ok && rc == 0;
        if (ok) {
            msgpack_sbuffer rb;
            msgpack_sbuffer_init(&rb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &rb, svc_mp_write);
            if (part != NULL)
                svc_record_render(svc_record_obj(rec, part), &pk);
            else
                svc_index_pack_entries(&ctx, &lines_records, rec, &pk);
            msgpack_unpacked r;
            msgpack_unpacked_init(&r);
            ok = svc_mp_unpack(&r, rb.data, rb.size) == 0 && xws_msgpack_to_json(&r.data, &out) == 0;
            xws_buf_add(&out, "", 1);
            ok = ok && strstr(out.data, want) != NULL;
            msgpack_unpacked_destroy(&r);
            msgpack_sbuffer_destroy(&rb);
        }
        if (!ok)
            fprintf(stderr, "%s:\n got %s %.*s\n want %s\n", json, out.data != NULL ? out.data : "(refused)", (int)ctx.body.size,
                    ctx.body.data, want);
    }
    ok ? s_passed++ : s_failed++;
    xws_buf_dispose(&out);
    svc_record_destroy(&rec);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

#define P(x) "{\"protocol\":{" x "}}"
#define PL(x, l) "{\"protocol\":{" x "},\"linefeatures\":{" l "}}"
#define SIP "\"protocol\":\"sip\",\"context\":\"default\""

int main(void)
{
    svc_log_set_level(SVC_LOG_ERROR);
    /* sip: names lowercased, codecs as a list, callerid normalised, a dynamic host */
    s_case(P(SIP ",\"name\":\"Bob\",\"allow\":\"ULAW, alaw,ulaw\",\"callerid\":\"Bob Smith <101>\""), NULL, NULL, "protocol",
           "\"name\":\"bob\"");
    s_case(P(SIP ",\"allow\":\"ULAW, alaw,ulaw\""), NULL, NULL, "protocol", "\"allow\":[\"ulaw\",\"alaw\"]");
    s_case(P(SIP ",\"callerid\":\"Bob Smith <101>\""), NULL, NULL, "protocol", "\"callerid\":\"\\\"Bob Smith\\\" <101>\"");
    s_case(P(SIP ",\"callerid\":\"  \\\"Bob\\\"   < 101 > \""), NULL, NULL, "protocol", "\"callerid\":\"\\\"Bob\\\" <101>\"");
    s_case(P(SIP ",\"callerid\":\"Reception\""), NULL, NULL, "protocol", "\"callerid\":\"\\\"Reception\\\"\"");
    s_case(P(SIP ",\"callerid\":\"\""), NULL, NULL, "protocol", "\"callerid\":\"\"");
    s_case(P(SIP), NULL, NULL, "protocol", "\"host-type\":\"dynamic\",\"host\":\"dynamic\"");
    s_case(P(SIP ",\"host-type\":\"static\",\"host\":\"10.0.0.9\""), NULL, NULL, "protocol", "\"host\":\"10.0.0.9\"");
    s_case(P(SIP ",\"call-limit\":12,\"qualify\":\"yes\""), NULL, NULL, "protocol", "\"call-limit\":\"12\"");
    s_case(P(SIP ",\"qualify\":2000"), NULL, NULL, "protocol", "\"qualify\":\"2000\"");
    s_case(P(SIP ",\"allow\":false"), NULL, NULL, "protocol", "\"allow\":false");
    /* linefeatures: protocol, name and context come from the protocol part; num defaults to 1 */
    s_case(PL(SIP ",\"name\":\"x1\"", "\"number\":\"101\",\"name\":\"ignored\",\"context\":\"elsewhere\""), NULL, NULL,
           "linefeatures", "\"protocol\":\"sip\",\"protocolid\":0,\"name\":\"x1\",\"number\":\"101\",\"context\":\"default\"");
    s_case(PL(SIP, "\"number\":\"101\""), NULL, NULL, "linefeatures", "\"num\":1,");
    s_case(PL(SIP, "\"num\":\"12\",\"commented\":\"yes\""), NULL, NULL, "linefeatures", "\"commented\":true");
    /* sccp named by its number, custom by its interface */
    s_case(PL("\"protocol\":\"sccp\",\"context\":\"default\",\"name\":\"ignored\"", "\"number\":\"102\""), NULL, NULL, "protocol",
           "{\"protocol\":\"sccp\",\"context\":\"default\",\"name\":\"102\",\"cid_name\":\"\",\"cid_num\":\"\"}");
    s_case(P("\"protocol\":\"custom\",\"context\":\"default\",\"interface\":\" DAHDI/g1 \""), NULL, NULL, "linefeatures",
           "\"name\":\"DAHDI/g1\"");
    s_case(P("\"protocol\":\"CUSTOM\",\"context\":\"default\",\"interface\":\"x\""), NULL, NULL, "linefeatures",
           "\"identity\":\"x\"");
    s_case(P("\"protocol\":\"iax\",\"context\":\"default\",\"name\":\"abc\""), NULL, NULL, "linefeatures",
           "\"identity\":\"IAX/abc\",\"initialized\":true");
    /* index entries: the name (folded) and the context */
    s_case(P(SIP ",\"name\":\"Abc\""), NULL, NULL, NULL, "[[[\"abc\",\"protocol.name\"]],[[\"default\",\"protocol.context\"]]]");
    s_case(P("\"protocol\":\"custom\",\"context\":\"c1\",\"interface\":\"SIP/Trunk\""), NULL, NULL, NULL,
           "[[[\"sip/trunk\",\"protocol.name\"]],[[\"c1\",\"protocol.context\"]]]");

    /* refusals name the value */
    s_case("{}", "missing_field", "protocol", NULL, NULL);
    s_case(P("\"protocol\":\"sip\""), "missing_field", "protocol.context", NULL, NULL);
    s_case(P("\"protocol\":\"pots\",\"context\":\"default\""), "invalid_value", "protocol.protocol", NULL, NULL);
    s_case(P(SIP ",\"name\":\"a.b\""), "invalid_value", "protocol.name", NULL, NULL);
    s_case(P(SIP ",\"host-type\":\"static\""), "missing_field", "protocol.host", NULL, NULL);
    s_case(P(SIP ",\"host-type\":\"static\",\"host\":\"dynamic\""), "missing_field", "protocol.host", NULL, NULL);
    s_case(P(SIP ",\"qualify\":\"499\""), "invalid_value", "protocol.qualify", NULL, NULL);
    s_case(P(SIP ",\"qualify\":\"4001\""), "invalid_value", "protocol.qualify", NULL, NULL);
    s_case(P(SIP ",\"call-limit\":\"41\""), "invalid_value", "protocol.call-limit", NULL, NULL);
    s_case(P(SIP ",\"allow\":\"ulaw,,alaw\""), "too_short", "protocol.allow[1]", NULL, NULL);
    s_case(P(SIP ",\"allow\":[\"ulaw\",\"\"]"), "too_short", "protocol.allow[1]", NULL, NULL);
    s_case(P(SIP ",\"md5secret\":\"x\""), "invalid_value", "protocol.md5secret", NULL, NULL);
    s_case(P(SIP ",\"port\":5060"), "invalid_value", "protocol.port", NULL, NULL);
    s_case(P("\"protocol\":\"iax\",\"context\":\"default\",\"dtmfmode\":\"bogus\""), NULL, NULL, "protocol", "\"name\"");
    s_case(P("\"protocol\":\"sccp\",\"context\":\"default\""), "missing_field", "linefeatures.number", NULL, NULL);
    s_case(P("\"protocol\":\"custom\",\"context\":\"default\",\"interface\":\"\""), "too_short", "protocol.interface", NULL, NULL);
    s_case(PL(SIP, "\"num\":0"), "out_of_range", "linefeatures.num", NULL, NULL);
    s_case(PL(SIP, "\"number\":\"12a\""), "invalid_value", "linefeatures.number", NULL, NULL);
    s_case(PL(SIP, "\"device\":\"dev-1\""), "invalid_value", "linefeatures.device", NULL, NULL);
    s_case(PL(SIP, "\"description\":\"a\\rb\""), "invalid_value", "linefeatures.description", NULL, NULL);

    printf("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed == 0 ? 0 : 1;
}
