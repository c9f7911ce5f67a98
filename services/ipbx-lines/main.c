/*
 * main.c - xws-ipbx-lines: the ipbx-lines service worker (resource `lines`).
 *
 *   xws-ipbx-lines [-c FILE] [-v]
 */
#include "lines.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {lines_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"ipbx-lines", lines_lua, resources, NULL};
    return svc_main(&service, argc, argv);
}
