/*
 * main.c - xws-extensions: the extensions service worker (resource `extensions`, restricted only).
 *
 *   xws-extensions [-c FILE] [-v]
 */
#include "extensions.h"

int main(int argc, char **argv)
{
    const svc_resource_t resources[] = {extensions_resource, {NULL, NULL, NULL}};
    const svc_service_t service = {"extensions", NULL, resources, NULL};
    return svc_main(&service, argc, argv);
}
