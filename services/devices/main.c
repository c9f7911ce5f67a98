/*
 * main.c - xws-devices: the devices service worker (resource `devices`).
 *
 *   xws-devices [-c FILE] [-v]
 */
#include "devices.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {devices_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"devices", devices_lua, resources, NULL};
    return svc_main(&service, argc, argv);
}
