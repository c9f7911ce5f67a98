/*
 * xws-keys - makes a CURVE key pair for a gateway, a worker or an internal consumer.
 *
 *   xws-keys [-d DIR] [-f] NAME
 *
 * Writes DIR/NAME.key (the public certificate, mode 0644: copy it to the peers that must know
 * this key) and DIR/NAME.key_secret (the secret certificate, mode 0600: it stays with its
 * owner), in the czmq certificate format, with NAME in their metadata, and prints the public key.
 * Exit status: 0 when written, 1 when the pair could not be written, 2 for a usage error.
 */
#include <stdio.h>
#include <string.h>
#include "xws/cli.h"
#include "xws/curve.h"

static const xws_cli_opt_t s_opts[] = {
    {'d', "dir", "DIR", "where to write the two files (default: the current directory)"},
    {'f', "force", NULL, "replace an existing pair of that name"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-keys", "[OPTION]... NAME",
    "Makes a CURVE key pair for the ZeroMQ endpoints of XWS: NAME.key, the public certificate (mode 0644), to copy "
    "into the allow-list directory of the gateways (curve_workers_dir for a worker, curve_clients_dir for an "
    "internal consumer) or, for a gateway, to give to its workers and consumers (curve_gateway_key); and "
    "NAME.key_secret, the secret certificate (mode 0600), for its owner only (curve_secret_key of a gateway, "
    "curve_worker_key of a worker, curve_client_key of a consumer). NAME (1-64 characters of A-Z a-z 0-9 . _ -) is "
    "written into the certificates: the gateway names the peer by it in its log and, for an internal consumer, "
    "as the caller account of its requests. The public key is printed in Z85 text.",
    s_opts,
    "Example: xws-keys -d /etc/xws/curve gateway1\n\n"
    "Exit status: 0 when the pair is written, 1 when it cannot be, 2 for a usage error.\n"};

int main(int argc, char **argv)
{
    const char *dir = ".", *val;
    int force = 0, opt, state = 0;
    while ((opt = xws_cli_next(&s_cli, argc, argv, &state, &val)) != -1) {
        if (opt == 'd')
            dir = val;
        else if (opt == 'f')
            force = 1;
    }
    if (argc - state != 1)
        return xws_cli_usage_error(&s_cli, "%s", argc - state < 1 ? "NAME is needed" : "too many arguments");
    const char *name = argv[state];
    if (!xws_curve_name_ok(name))
        return xws_cli_usage_error(&s_cli, "the name '%s' must be 1-64 characters of A-Z a-z 0-9 . _ - (not starting with .)",
                                   name);
    char why[512], pub[XWS_CURVE_KEY_TXT + 1];
    zsys_handler_set(NULL);
    if (xws_curve_keygen(dir, name, force, pub, why, sizeof(why)) != 0) {
        fprintf(stderr, "xws-keys: %s\n", why);
        return 1;
    }
    printf("public key %s\nwrote %s/%s.key (public) and %s/%s.key_secret (secret, mode 0600)\n", pub, dir, name, dir, name);
    return fflush(stdout) == 0 ? 0 : 1;
}
