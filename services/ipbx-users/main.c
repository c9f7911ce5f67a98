/*
 * main.c - xws-ipbx-users: the ipbx-users service worker (resources `users`, `groups`, `queues`).
 *
 *   xws-ipbx-users [-c FILE] [-v]
 */
#include "users.h"
#include "groups.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {users_resource, groups_resource, queues_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"ipbx-users", users_lua, resources, NULL};
    return svc_main(&service, argc, argv);
}
