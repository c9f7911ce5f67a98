/*
 * provision.c - xws-devices-provision: an example internal consumer. A provisioning system
 * registers phones without HTTP: it speaks the msgpack protocol of proto/PROTOCOL.md to the
 * gateway's internal ZeroMQ endpoint, with the proto library's synchronous client.
 *
 *   xws-devices-provision [-c FILE] [-e ENDPOINT] MAC [field=value]...
 *
 * Looks the phone up by its MAC (act search: exact match, any of the three MAC forms), adds it
 * when it is unknown (act add) or updates it with the given fields (act edit, partial), then
 * lists every device (act list) on standard output as JSON. Standard error tells what happened:
 * "added <id>", "updated <id>", or the error answer. Exit status: 0 done, 1 refused or failed,
 * 2 usage. Example:
 *
 *   xws-devices-provision 00:08:5D:2A:4F:B1 ip=10.0.0.5 vendor=Aastra model=6731i configured=1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "xws/cli.h"
#include "xws/config.h"
#include "xws/frames.h"

/* one request; 0 with *rep filled (dispose it), or -1 (no reply) */
static int s_call(xws_client_t *c, const char *act, const xws_kv_t *params, size_t nparams, const msgpack_sbuffer *body,
                  xws_reply_t *rep)
{
    xws_request_spec_t spec = {.service = xws_slice("devices"),
                               .resource = xws_slice("devices"),
                               .act = xws_slice(act),
                               .params = params,
                               .nparams = nparams,
                               .body_msgpack = {body != NULL ? body->data : NULL, body != NULL ? body->size : 0}};
    const char *err;
    if (xws_client_call(c, &spec, 5000, rep, &err) != 0) {
        fprintf(stderr, "%s: no answer (%s)\n", act, err);
        xws_reply_dispose(rep);
        return -1;
    }
    return 0;
}

/* prints a reply body as JSON on f */
static void s_print(FILE *f, const xws_reply_t *rep)
{
    xws_buf_t out;
    xws_buf_init(&out);
    if (rep->body != NULL && xws_msgpack_to_json(rep->body, &out) == 0)
        fprintf(f, "%.*s\n", (int)out.len, out.data);
    xws_buf_dispose(&out);
}

/* the "id" of the first element of a search answer, or -1 */
static long long s_first_id(const xws_reply_t *rep)
{
    const msgpack_object *b = rep->body;
    if (b == NULL || b->type != MSGPACK_OBJECT_ARRAY || b->via.array.size == 0 || b->via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
        return -1;
    const msgpack_object_map *m = &b->via.array.ptr[0].via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type == MSGPACK_OBJECT_STR && m->ptr[i].key.via.str.size == 2 &&
            memcmp(m->ptr[i].key.via.str.ptr, "id", 2) == 0 && m->ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            return (long long)m->ptr[i].val.via.u64;
    return -1;
}

static const xws_cli_opt_t s_opts[] = {
    {'c', "config", "FILE", "settings file (default: $XWS_CONFIG)"},
    {'e', "endpoint", "ENDPOINT", "the gateway's internal endpoint (default: the internal_endpoint setting)"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-devices-provision", "[OPTION]... MAC [FIELD=VALUE]...",
    "An example provisioning client on the internal endpoint: looks the phone up by its MAC, adds it when it is "
    "unknown or updates it with the given fields, then lists every device as JSON on standard output. Standard error "
    "tells what happened (added ID, updated ID, or the error answer).",
    s_opts,
    "Example: xws-devices-provision 00:08:5D:2A:4F:B1 ip=10.0.0.5 vendor=Aastra model=6731i configured=1\n\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage.\n"};

int main(int argc, char **argv)
{
    const char *config_path = NULL, *endpoint = NULL, *val;
    int opt, first = 0;
    while ((opt = xws_cli_next(&s_cli, argc, argv, &first, &val)) != -1) {
        if (opt == 'c')
            config_path = val;
        else if (opt == 'e')
            endpoint = val;
    }
    if (first >= argc)
        return xws_cli_usage_error(&s_cli, "%s", "a MAC address is needed");
    const char *mac = argv[first];
    /* the body: {"mac": MAC, field: value, ...} (values as text: the service reads flags and numbers from text) */
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)(argc - first));
    msgpack_pack_str_with_body(&pk, "mac", 3);
    msgpack_pack_str_with_body(&pk, mac, strlen(mac));
    for (int i = first + 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i]) {
            fprintf(stderr, "xws-devices-provision: '%s' is not field=value\n", argv[i]);
            msgpack_sbuffer_destroy(&body);
            return 2;
        }
        msgpack_pack_str_with_body(&pk, argv[i], (size_t)(eq - argv[i]));
        msgpack_pack_str_with_body(&pk, eq + 1, strlen(eq + 1));
    }

    xws_config_t *cfg = xws_config_load(config_path);
    if (cfg == NULL) {
        msgpack_sbuffer_destroy(&body);
        return 2;
    }
    if (endpoint == NULL)
        endpoint = xws_config_get(cfg, "internal_endpoint", "ipc://${run_dir}/internal.ipc");
    zsys_handler_set(NULL);
    xws_client_t *client = xws_client_new(endpoint);
    int rc = 1;
    xws_reply_t rep;
    if (client == NULL) {
        fprintf(stderr, "xws-devices-provision: cannot connect to '%s'\n", endpoint);
        goto done;
    }
    /* 1. is the phone known? */
    xws_kv_t search = {xws_slice("search"), xws_slice(mac)};
    if (s_call(client, "search", &search, 1, NULL, &rep) != 0)
        goto done;
    long long id = rep.status == 200 ? s_first_id(&rep) : -1;
    unsigned st = rep.status;
    xws_reply_dispose(&rep);
    if (st != 200 && st != 204) {
        fprintf(stderr, "search: status %u\n", st);
        goto done;
    }
    /* 2. add it, or update it */
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    xws_kv_t idp = {xws_slice("id"), xws_slice(ids)};
    if (s_call(client, id > 0 ? "edit" : "add", &idp, id > 0, &body, &rep) != 0)
        goto done;
    if (rep.status != 200) {
        fprintf(stderr, "%s: status %u\n", id > 0 ? "edit" : "add", rep.status);
        s_print(stderr, &rep);
        xws_reply_dispose(&rep);
        goto done;
    }
    if (id > 0) {
        fprintf(stderr, "updated %lld\n", id);
    } else {
        fprintf(stderr, "added ");
        s_print(stderr, &rep); /* the new device */
    }
    xws_reply_dispose(&rep);
    /* 3. every device */
    if (s_call(client, "list", NULL, 0, NULL, &rep) != 0)
        goto done;
    if (rep.status == 200 || rep.status == 204) {
        if (rep.status == 200)
            s_print(stdout, &rep);
        rc = 0;
    } else {
        fprintf(stderr, "list: status %u\n", rep.status);
    }
    xws_reply_dispose(&rep);
done:
    xws_client_destroy(&client);
    xws_config_destroy(&cfg);
    msgpack_sbuffer_destroy(&body);
    return rc;
}
