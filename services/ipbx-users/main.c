/*
 * main.c - xws-ipbx-users: the ipbx-users service worker (resources `users`, `groups`, `queues`
 * and `pickup`).
 *
 *   xws-ipbx-users [-c FILE] [-v]
 */
#include "groups.h"
#include "pickup.h"
#include "users.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {users_resource, groups_resource, queues_resource, pickup_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"ipbx-users", users_lua, resources, NULL};
    return svc_main(&service, argc, argv);
}
