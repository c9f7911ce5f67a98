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
    const svc_service_t service = {"config", cfg_lua, resources, NULL};
    const svc_command_t account = {"account", "account COMMAND ...  manage the web-service accounts ('account --help')",
                                   cfg_account_cli};
    return svc_main_with(&service, &account, argc, argv);
}
