/*
 * pickup_table.c - the declarations of the `pickup` resource (spec §5.4) on the record layer:
 * the pickup object (stored in pickup:data, rendered as the list element and view's "pickup"),
 * one member row (stored in the array of pickup:rows, rendered in view's "members" and
 * "pickups") and the members of a request body.
 */
#include "pickup.h"

static const svc_field_t s_fields[] = {
    {.name = "commented", .kind = SVC_BOOL, .flags = SVC_F_DATA, .def = "false", .out = SVC_OUT_NUMBER},
    {.name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000},
    {.name = "id", .kind = SVC_INT, .flags = SVC_F_ID},
    {.name = "name", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM, .min_len = 1, .max_len = 128},
};
const svc_table_t pickup_table = SVC_TABLE(s_fields);

static const char *const s_categories[] = {"member", "pickup", NULL};
static const char *const s_membertypes[] = {"user", "group", "queue", NULL};

static const svc_field_t s_row_fields[] = {
    {.name = "category", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED, .choices = s_categories},
    {.name = "memberid", .kind = SVC_INT, .flags = SVC_F_DATA | SVC_F_REQUIRED, .min = 1, .max = 1LL << 53},
    {.name = "membertype", .kind = SVC_ENUM, .flags = SVC_F_DATA | SVC_F_REQUIRED, .choices = s_membertypes},
    {.name = "pickupid", .kind = SVC_INT, .flags = SVC_F_ID},
};
const svc_table_t pickup_row_table = SVC_TABLE(s_row_fields);

static const svc_field_t s_members_fields[] = {
    {.name = "members", .kind = SVC_LIST, .flags = SVC_F_DATA | SVC_F_FALSE_IN, .max_len = 1000, .sub = &pickup_row_table},
};
const svc_table_t pickup_members_table = SVC_TABLE(s_members_fields);
