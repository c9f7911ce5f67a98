/* gw_selftest - xws-gateway-test: runs the self-test of every gateway module (ctest). */
#include <stdio.h>
#include "gw_accounts.h"
#include "gw_acl.h"
#include "gw_backoff.h"
#include "gw_basic.h"
#include "gw_broker.h"
#include "gw_cache.h"
#include "gw_conns.h"
#include "gw_guard.h"
#include "gw_docs.h"
#include "gw_http.h"
#include "gw_internal.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_msg.h"
#include "gw_net.h"
#include "gw_refresh.h"
#include "gw_route.h"
#include "gw_status.h"
#include "gw_tls.h"
#include "gw_verify.h"
#include "gw_zap.h"

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"gw_route", gw_route_test},   {"gw_net", gw_net_test},         {"gw_acl", gw_acl_test},
        {"gw_basic", gw_basic_test},   {"gw_backoff", gw_backoff_test}, {"gw_accounts", gw_accounts_test},
        {"gw_log", gw_log_test},       {"gw_tls", gw_tls_test},         {"gw_broker", gw_broker_test},
        {"gw_verify", gw_verify_test}, {"gw_refresh", gw_refresh_test}, {"gw_internal", gw_internal_test},
        {"gw_msg", gw_msg_test},       {"gw_http", gw_http_test},       {"gw_metrics", gw_metrics_test},
        {"gw_status", gw_status_test}, {"gw_guard", gw_guard_test},     {"gw_conns", gw_conns_test},
        {"gw_docs", gw_docs_test},     {"gw_zap", gw_zap_test},         {"gw_cache", gw_cache_test},
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    for (size_t i = 0; i < n; i++) {
        tests[i].fn(); /* aborts on failure */
        printf("ok %zu - %s\n", i + 1, tests[i].name);
    }
    printf("%zu passed, 0 failed\n", n);
    return 0;
}
