/*
 * device_table.c - the declarations of a device (spec §5.2): one flat record, stored as a msgpack
 * map, rendered in the document's order with its types (`internal` as "0"/"1", the flags as
 * booleans, `capabilities` an object or false), and its indexes.
 */
#include <string.h>
#include "devices.h"

/* a generated deviceid: 32 random lowercase hex digits */
static void s_gen_deviceid(svc_record_t *rec)
{
    char id[33];
    svc_random_chars(id, 32, "0123456789abcdef");
    svc_record_set_str(rec, "deviceid", id, 32);
}

#define TEXT(n, mx)                                                                                                                \
    {                                                                                                                              \
        .name = n, .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = (mx)                                             \
    }

/* the plugin capabilities a provisioning system reports for the model (provd's names) */
static const svc_field_t s_capability_fields[] = {
    {.name = "sip.lines", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 12},
    {.name = "sccp.lines", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 12},
    {.name = "function_keys", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 1000},
    {.name = "expansion_modules", .kind = SVC_INT, .flags = SVC_F_DATA, .min = 0, .max = 16},
};
static const svc_table_t s_capability_table = SVC_TABLE(s_capability_fields);

static const svc_field_t s_fields[] = {
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "deviceid",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM | SVC_F_LOWER,
     .min_len = 32,
     .max_len = 32,
     .charset = "0-9a-f"},
    TEXT("config", 128),
    TEXT("plugin", 128),
    {.name = "ip",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_TRIM | SVC_F_LOWER,
     .max_len = 45,
     .check = svc_check_ip,
     .check_what = "an IPv4 or IPv6 address"},
    {.name = "mac",
     .kind = SVC_TEXT,
     .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM,
     .max_len = 17,
     .norm = svc_norm_mac,
     .check = svc_check_mac,
     .check_what = "a MAC address (00:08:5d:2a:4f:b1, 00-08-5d-2a-4f-b1 or 00085d2a4fb1)"},
    TEXT("sn", 128),
    TEXT("vendor", 128),
    TEXT("model", 128),
    TEXT("version", 64),
    {.name = "proto", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 16, .charset = "A-Za-z0-9_-"},
    {.name = "internal", .kind = SVC_BOOL, .flags = SVC_F_DATA, .out = SVC_OUT_STRING, .def = "false"},
    {.name = "configured", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "commented", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false"},
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
    {.name = "provdexist", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "true"},
    {.name = "capabilities",
     .kind = SVC_OBJECT,
     .flags = SVC_F_DATA | SVC_F_FALSE_IN | SVC_F_FALSE_OUT,
     .sub = &s_capability_table},
};
static const svc_rule_t s_rules[] = {
    {.kind = SVC_RULE_DEFAULT, .field = "deviceid", .fill = s_gen_deviceid},
};
const svc_table_t devices_table = SVC_TABLE(s_fields, SVC_RULES(s_rules));

/* the mac is normalised before it is indexed (folding is then a no-op, kept for safety); ip is
 * lowercased on input (IPv6), deviceid too */
static const svc_index_t s_indexes[] = {
    {SVC_IX_UNIQUE, "mac", "device:mac", NULL, 1, "a device with mac %s already exists"},
    {SVC_IX_LOOKUP, "ip", "device:ip", NULL, 1, NULL},
    {SVC_IX_UNIQUE, "deviceid", "device:deviceid", NULL, 1, "a device with deviceid %s already exists"},
};
const svc_records_t devices_records = {.service = "devices",
                                       .crud = {"devices", &devices_table, "device:data", NULL},
                                       .seq = "device:seq",
                                       .inrefs = "device:refs",
                                       .indexes = s_indexes,
                                       .nindexes = 3,
                                       .add_answers_id = 1};

int devices_is_deviceid(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return 0;
    return 1;
}
