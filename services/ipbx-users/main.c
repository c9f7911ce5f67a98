/*
 * main.c - xws-ipbx-users: the ipbx-users service worker (resource `users`).
 *
 *   xws-ipbx-users [-c FILE] [-v]
 */
#include "users.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {users_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"ipbx-users", users_lua, resources, NULL};
    return svc_main(&service, argc, argv);
}
