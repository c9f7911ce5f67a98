/*
 * main.c - xws-config: the config service worker (entity, mail, context, account), and the account tool.
 *
 *   xws-config [-c FILE] [-v]                 serve the "config" service
 *   xws-config [-c FILE] account COMMAND ...   manage web-service accounts (see account_cli.c)
 */
#include <string.h>
#include "config_int.h"
#include "context.h"
#include "mail.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {
        cfg_entity_resource, cfg_mail_resource, cfg_context_resource, cfg_account_resource, {NULL, NULL, NULL}};
    /*
     * Password checks cost a ~100 ms derivation each: they run on threads of their own (setting
     * verify_threads, default 1) as the service "verify", one check at a time per thread (credit 1),
     * behind the data worker for the CPU (verify_nice, default 5), so that a password-guessing
     * flood queues at the gateway for them and never in front of the entity, mail and context
     * requests of this process.
     */
    const svc_resource_t verify_resources[] = {cfg_verify_resource, {NULL, NULL, NULL}};
    const svc_service_t verify = {XWS_SERVICE_VERIFY, NULL, verify_resources, NULL};
    const svc_pool_t pool = {&verify, "verify_threads", 1, 1, "verify_nice", 5};
    const svc_service_t service = {"config", cfg_lua, resources, NULL};
    const svc_command_t account = {"account", "account COMMAND ...  manage the web-service accounts ('account --help')",
                                   cfg_account_cli};
    return svc_main_with(&service, &account, &pool, argc, argv);
}
