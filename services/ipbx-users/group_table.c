/*
 * group_table.c - the declarations of a group (spec §5.5) and of a queue (§5.6): the fields with
 * their rules, the indexes and what tells the two kinds apart. The handlers of groups.c validate,
 * store and render only through these tables.
 */
#include "groups.h"

/* a queue's displayname, when absent or empty: its name */
static void s_default_displayname(svc_record_t *rec)
{
    size_t len;
    const char *name = svc_record_str(rec, "name", &len);
    svc_record_set_str(rec, "displayname", name, len);
}

#define GROUPS_ID                                                                                                                  \
    {                                                                                                                              \
        .name = "id", .kind = SVC_INT, .flags = SVC_F_ID                                                                           \
    }
#define GROUPS_NAME                                                                                                                \
    {                                                                                                                              \
        .name = "name", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM | SVC_F_SEARCH, .min_len = 1,          \
        .max_len = 128, .charset = "a-z0-9_-"                                                                                      \
    }
/* a number is all digits: it must lie inside one of the context's ranges of the kind (lua/groups.lua) */
#define GROUPS_NUMBER                                                                                                              \
    {                                                                                                                              \
        .name = "number", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM | SVC_F_SEARCH, .max_len = 40, .charset = "0-9"       \
    }
#define GROUPS_CONTEXT                                                                                                             \
    {                                                                                                                              \
        .name = "context", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_REQUIRED | SVC_F_TRIM, .min_len = 1, .max_len = 39,       \
        .charset = "A-Za-z0-9_-", .def = "default"                                                                                 \
    }
#define GROUPS_DESCRIPTION                                                                                                         \
    {                                                                                                                              \
        .name = "description", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_MULTILINE, .max_len = 1000                            \
    }

static const svc_field_t s_group_fields[] = {GROUPS_ID, GROUPS_NAME, GROUPS_NUMBER, GROUPS_CONTEXT, GROUPS_DESCRIPTION};
static const svc_table_t s_group_table = SVC_TABLE(s_group_fields);

static const svc_field_t s_queue_fields[] = {
    GROUPS_ID,     GROUPS_NAME,    {.name = "displayname", .kind = SVC_TEXT, .flags = SVC_F_DATA | SVC_F_TRIM, .max_len = 128},
    GROUPS_NUMBER, GROUPS_CONTEXT, GROUPS_DESCRIPTION,
};
static const svc_rule_t s_queue_rules[] = {
    {.kind = SVC_RULE_DEFAULT, .field = "displayname", .fill = s_default_displayname},
};
static const svc_table_t s_queue_table = SVC_TABLE(s_queue_fields, SVC_RULES(s_queue_rules));

/* index 1: the unique name; index 2: the context (a reference: context:data, counted in context:refs) */
static const svc_index_t s_group_ix[] = {
    {SVC_IX_UNIQUE, "name", "group:name", NULL, 0, "a group named %s already exists"},
    {SVC_IX_REF, "context", "context:data", "context:refs", 0, "no context is named %s"},
};
static const svc_index_t s_queue_ix[] = {
    {SVC_IX_UNIQUE, "name", "queue:name", NULL, 0, "a queue named %s already exists"},
    {SVC_IX_REF, "context", "context:data", "context:refs", 0, "no context is named %s"},
};

/*
 * The generic svc_records_* writes are not used (.service NULL): a write also reserves a number
 * and a delete runs the reference cascade, so every write is a function of lua/groups.lua, which
 * maintains these indexes with the prelude's xws_records_check / xws_records_apply.
 */
static const svc_records_t s_group_records = {.service = NULL,
                                              .crud = {"groups", &s_group_table, "group:data", NULL},
                                              .seq = "group:seq",
                                              .inrefs = NULL,
                                              .indexes = s_group_ix,
                                              .nindexes = 2};
static const svc_records_t s_queue_records = {.service = NULL,
                                              .crud = {"queues", &s_queue_table, "queue:data", NULL},
                                              .seq = "queue:seq",
                                              .inrefs = NULL,
                                              .indexes = s_queue_ix,
                                              .nindexes = 2};

/* a view shows the members, whose writers (users) bump ver:groups / ver:queues and ver:users */
static const char *const s_group_view_deps[] = {"groups", "users", NULL};
static const char *const s_queue_view_deps[] = {"queues", "users", NULL};

const groups_kind_t groups_group = {"group", "group:members", &s_group_records, s_group_view_deps};
const groups_kind_t groups_queue = {"queue", "queue:members", &s_queue_records, s_queue_view_deps};
