/*
 * devices_test.c - the device declarations on their own (no Redis): bodies validated, completed
 * and rendered by the table of device_table.c (the three mac forms, IPv4 and IPv6, the generated
 * deviceid, the defaults, capabilities), every field's error path, and the index entries the
 * Redis functions maintain. Last line: "N passed, M failed".
 */
#include <stdio.h>
#include <string.h>
#include "devices.h"

static int s_passed, s_failed;

/*
 * Validates json as a device add. want_code NULL: accepted, and the rendering (or, with entries,
 * the index entries) contains want; else the error code and field.
 */
static void s_case(const char *json, const char *want_code, const char *want_field, int entries, const char *want)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int ok = xws_json_to_msgpack(json, strlen(json), &sb, NULL, 0) == 0;
    msgpack_unpacked u;
    ok = ok && svc_mp_unpack(&u, sb.data, sb.size) == 0;
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, NULL, "t:", 0, NULL);
    svc_record_t *rec = svc_record_new(&devices_table);
    int rc = ok ? svc_record_load_body_or_reply(&ctx, rec, &u.data) : -1;
    if (rc == 0) {
        svc_record_defaults(rec);
        rc = svc_record_check_or_reply(&ctx, rec);
    }
    xws_buf_t out;
    xws_buf_init(&out);
    if (want_code != NULL) {
        msgpack_unpacked e;
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
            svc_record_set_id(rec, 7);
            if (entries)
                svc_index_pack_entries(&ctx, &devices_records, rec, &pk);
            else
                svc_record_render(rec, &pk);
            msgpack_unpacked r;
            ok = svc_mp_unpack(&r, rb.data, rb.size) == 0 && xws_msgpack_to_json(&r.data, &out) == 0;
            xws_buf_add(&out, "", 1);
            ok = ok && strstr(out.data, want) != NULL;
            if (!ok)
                fprintf(stderr, "%s: expected %s in %s\n", json, want, out.data != NULL ? out.data : "(nothing)");
            msgpack_unpacked_destroy(&r);
            msgpack_sbuffer_destroy(&rb);
        } else {
            fprintf(stderr, "%s: refused: %.*s\n", json, (int)ctx.body.size, ctx.body.data);
        }
    }
    xws_buf_dispose(&out);
    svc_record_destroy(&rec);
    svc_ctx_dispose(&ctx);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    if (ok)
        s_passed++;
    else
        s_failed++;
}

#define M "\"mac\":\"00:08:5D:2A:4F:B1\""

int main(void)
{
    svc_log_set_level(SVC_LOG_ERROR);
    /* the three mac forms give one stored form; the element's types and defaults */
    s_case("{" M "}", NULL, NULL, 0, "\"mac\":\"00:08:5d:2a:4f:b1\"");
    s_case("{\"mac\":\" 00-08-5d-2a-4f-b1 \"}", NULL, NULL, 0, "\"mac\":\"00:08:5d:2a:4f:b1\"");
    s_case("{\"mac\":\"00085D2A4FB1\"}", NULL, NULL, 0, "\"mac\":\"00:08:5d:2a:4f:b1\"");
    s_case("{" M "}", NULL, NULL, 0,
           "\"sn\":\"\",\"vendor\":\"\",\"model\":\"\",\"version\":\"\",\"proto\":\"\",\"internal\":\"0\",\"configured\":false,"
           "\"commented\":false,\"description\":\"\",\"provdexist\":true,\"capabilities\":false}");
    s_case("{" M ",\"internal\":true,\"configured\":\"1\",\"commented\":\"yes\",\"provdexist\":0}", NULL, NULL, 0,
           "\"internal\":\"1\",\"configured\":true,\"commented\":true,\"description\":\"\",\"provdexist\":false");
    s_case("{" M ",\"capabilities\":{\"sip.lines\":\"3\",\"unknown\":1}}", NULL, NULL, 0, "\"capabilities\":{\"sip.lines\":3");
    s_case("{" M ",\"capabilities\":false}", NULL, NULL, 0, "\"capabilities\":false}");
    /* a generated deviceid: 32 lowercase hex digits; a given one is lowercased */
    s_case("{" M "}", NULL, NULL, 0, "{\"id\":7,\"deviceid\":\"");
    s_case("{" M ",\"deviceid\":\"0123456789ABCDEF0123456789abcdef\"}", NULL, NULL, 0,
           "\"deviceid\":\"0123456789abcdef0123456789abcdef\"");
    /* addresses: IPv4, IPv6 (lowercased) */
    s_case("{" M ",\"ip\":\"10.0.0.5\"}", NULL, NULL, 0, "\"ip\":\"10.0.0.5\"");
    s_case("{" M ",\"ip\":\"FE80::1\"}", NULL, NULL, 0, "\"ip\":\"fe80::1\"");
    /* index entries: mac, ip, deviceid */
    s_case("{\"mac\":\"00085d2a4fb1\",\"ip\":\"10.0.0.5\",\"deviceid\":\"0123456789abcdef0123456789abcdef\"}", NULL, NULL, 1,
           "[[[\"00:08:5d:2a:4f:b1\",\"mac\"]],[[\"10.0.0.5\",\"ip\"]],[[\"0123456789abcdef0123456789abcdef\",\"deviceid\"]]]");
    s_case("{" M "}", NULL, NULL, 1, "[[[\"00:08:5d:2a:4f:b1\",\"mac\"]],[],[[\"");
    /* refusals */
    s_case("{}", "missing_field", "mac", 0, NULL);
    s_case("{\"mac\":\"\"}", "invalid_value", "mac", 0, NULL);
    s_case("{\"mac\":\"00:08:5d:2a:4f\"}", "invalid_value", "mac", 0, NULL);
    s_case("{\"mac\":\"00:08:5d:2a:4f:b1:00\"}", "too_long", "mac", 0, NULL);
    s_case("{\"mac\":\"00:08:5d:2a:4f:bg\"}", "invalid_value", "mac", 0, NULL);
    s_case("{" M ",\"ip\":\"10.0.0.300\"}", "invalid_value", "ip", 0, NULL);
    s_case("{" M ",\"ip\":\"fe80:::1\"}", "invalid_value", "ip", 0, NULL);
    s_case("{" M ",\"ip\":\"host.example\"}", "invalid_value", "ip", 0, NULL);
    s_case("{" M ",\"deviceid\":\"0123\"}", "too_short", "deviceid", 0, NULL);
    s_case("{" M ",\"deviceid\":\"0123456789abcdef0123456789abcdeg\"}", "invalid_value", "deviceid", 0, NULL);
    s_case("{" M ",\"deviceid\":\"0123456789abcdef0123456789abcdef0\"}", "too_long", "deviceid", 0, NULL);
    s_case("{" M ",\"internal\":\"maybe\"}", "invalid_value", "internal", 0, NULL);
    s_case("{" M ",\"configured\":[]}", "invalid_value", "configured", 0, NULL);
    s_case("{" M ",\"proto\":\"SIP/2\"}", "invalid_value", "proto", 0, NULL);
    s_case("{" M ",\"version\":\""
           "0123456789012345678901234567890123456789012345678901234567890123456789"
           "\"}",
           "too_long", "version", 0, NULL);
    s_case("{" M ",\"vendor\":\"a\\u0001b\"}", "invalid_value", "vendor", 0, NULL);
    s_case("{" M ",\"capabilities\":{\"sip.lines\":13}}", "out_of_range", "capabilities.sip.lines", 0, NULL);
    s_case("{" M ",\"capabilities\":\"many\"}", "invalid_value", "capabilities", 0, NULL);
    /* the id forms the handlers accept */
    XWS_CHECK(devices_is_deviceid("0123456789ABCDEF0123456789abcdef"));
    XWS_CHECK(!devices_is_deviceid("0123456789abcdef0123456789abcde"));
    XWS_CHECK(!devices_is_deviceid("0123456789abcdef0123456789abcdeg"));
    XWS_CHECK(!devices_is_deviceid("42"));
    printf("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed == 0 ? 0 : 1;
}
