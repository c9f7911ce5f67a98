/* gw_acl.c - the ACL rule (see gw_acl.h). */
#include <string.h>
#include "gw_acl.h"
#include "gw_check.h"

int gw_acl_allows(char *const *acl, size_t n, const char *path)
{
    size_t plen = strlen(path);
    for (size_t i = 0; i < n; i++) {
        const char *e = acl[i];
        size_t elen = strlen(e);
        if (strcmp(e, "*") == 0)
            return 1;
        if (elen == 0 || elen > plen || memcmp(e, path, elen) != 0)
            continue;
        if (elen == plen || e[elen - 1] == '/' || path[elen] == '/')
            return 1;
    }
    return 0;
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_acl_test(void)
{
    /* ACL */
    char *acl1[] = {"service/ipbx"}, *acl2[] = {"service/ipbx/"}, *acl3[] = {"*"};
    char *acl4[] = {"xivo/configuration/manage/entity", "callcenter"};
    GW_CHECK(gw_acl_allows(acl1, 1, "service/ipbx/pbx_settings/users"));
    GW_CHECK(gw_acl_allows(acl1, 1, "service/ipbx"));
    GW_CHECK(!gw_acl_allows(acl1, 1, "service/ipbxx/pbx_settings/users"));
    GW_CHECK(!gw_acl_allows(acl1, 1, "xivo/configuration/manage/entity"));
    GW_CHECK(gw_acl_allows(acl2, 1, "service/ipbx/pbx_settings/lines"));
    GW_CHECK(gw_acl_allows(acl3, 1, "callcenter/settings/queues"));
    GW_CHECK(!gw_acl_allows(acl3, 0, "callcenter/settings/queues"));
    GW_CHECK(gw_acl_allows(acl4, 2, "xivo/configuration/manage/entity"));
    GW_CHECK(!gw_acl_allows(acl4, 2, "xivo/configuration/manage/entityx"));
    GW_CHECK(gw_acl_allows(acl4, 2, "callcenter/settings/queues"));
    GW_CHECK(!gw_acl_allows(acl4, 2, "xivo/configuration/network/mail"));
}
