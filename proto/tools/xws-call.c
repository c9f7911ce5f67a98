/*
 * xws-call - sends one request to a gateway's internal endpoint and prints the answer.
 *
 *   xws-call [-c FILE] [-e ENDPOINT] [-t TIMEOUT_MS] [-a ACCOUNT] [-p key=value]... SERVICE RESOURCE ACT [JSON-BODY|-]
 *
 * The status goes to standard error as "status NNN" (and "etag ..." when there is one), the body
 * to standard output as compact JSON followed by a newline. Exit status: 0 for 2xx and 304, 1 for
 * any other status (or a reply that cannot be shown), 2 for a usage error, 3 when no reply came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "xws/cli.h"
#include "xws/config.h"
#include "xws/curve.h"
#include "xws/frames.h"

#define EXIT_STATUS 1
#define EXIT_USAGE 2
#define EXIT_NOREPLY 3

static const xws_cli_opt_t s_opts[] = {
    {'c', "config", "FILE", "settings file (default: $XWS_CONFIG)"},
    {'e', "endpoint", "ENDPOINT", "the gateway's internal endpoint (default: the internal_endpoint setting)"},
    {'t', "timeout", "MS", "how long to wait for the reply, in milliseconds (default: the deadline_ms setting)"},
    {'p', "param", "KEY=VALUE", "a query parameter (repeatable)"},
    {'a', "account", "NAME",
     "the caller account the request names (kept on an ipc:// or loopback endpoint; over CURVE the gateway names the "
     "caller by its key instead)"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-call", "[OPTION]... SERVICE RESOURCE ACT [JSON-BODY|-]",
    "Sends one request to a gateway's internal endpoint (ZeroMQ) and prints the answer: the status on standard error "
    "as \"status NNN\" (and \"etag ...\"), the body on standard output as compact JSON. JSON-BODY is the request "
    "body as JSON text, or - to read it from standard input.",
    s_opts,
    "Example: xws-call -p id=1 config entity view\n\n"
    "CURVE: with the settings curve_client_key (this consumer's secret certificate) and curve_gateway_key (the "
    "gateway's public certificate), the request goes over CURVE; the gateway then answers only a key of its "
    "allow-list, and a refused key gets no reply (exit status 3).\n\n"
    "Exit status: 0 for 2xx and 304, 1 for other statuses, 2 for a usage error, 3 when no reply came.\n"};

/* reads all of standard input into b */
static int s_read_stdin(xws_buf_t *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        xws_buf_add(b, chunk, n);
    return ferror(stdin) ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *endpoint = NULL, *account = NULL;
    long timeout_ms = -1;
    xws_kv_t *params = NULL;
    size_t nparams = 0;
    int opt, rc = EXIT_USAGE;

    const char *val;
    int state = 0;
    while ((opt = xws_cli_next(&s_cli, argc, argv, &state, &val)) != -1) {
        switch (opt) {
        case 'c':
            config_path = val;
            break;
        case 'e':
            endpoint = val;
            break;
        case 'a':
            account = val;
            break;
        case 't': {
            char *end;
            timeout_ms = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || timeout_ms < 1 || timeout_ms > 86400000) {
                fprintf(stderr, "xws-call: -t wants milliseconds between 1 and 86400000, not '%s'\n", val);
                free(params);
                return EXIT_USAGE;
            }
            break;
        }
        case 'p': {
            const char *eq = strchr(val, '=');
            if (eq == NULL || eq == val) {
                fprintf(stderr, "xws-call: -p wants key=value, not '%s'\n", val);
                free(params);
                return EXIT_USAGE;
            }
            if ((params = realloc(params, (nparams + 1) * sizeof(*params))) == NULL)
                abort();
            params[nparams].key = (xws_slice_t){val, (size_t)(eq - val)};
            params[nparams].val = xws_slice(eq + 1);
            nparams++;
            break;
        }
        }
    }
    if (argc - state < 3 || argc - state > 4) {
        free(params);
        return xws_cli_usage_error(&s_cli, "%s", argc - state < 3 ? "SERVICE, RESOURCE and ACT are needed" : "too many arguments");
    }

    xws_config_t *cfg = xws_config_load(config_path);
    if (cfg == NULL) {
        free(params);
        return EXIT_USAGE;
    }
    if (endpoint == NULL)
        endpoint = xws_config_get(cfg, "internal_endpoint", "ipc://${run_dir}/internal.ipc");
    if (timeout_ms < 0) {
        long long d = xws_config_int(cfg, "deadline_ms", 5000);
        timeout_ms = d >= 1 && d <= 86400000 ? (long)d : 5000;
    }

    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    xws_buf_t text, out;
    xws_buf_init(&text);
    xws_buf_init(&out);
    xws_client_t *client = NULL;
    if (argc - state == 4) {
        const char *arg = argv[state + 3];
        if (strcmp(arg, "-") == 0) {
            if (s_read_stdin(&text) != 0) {
                fprintf(stderr, "xws-call: cannot read standard input\n");
                goto done;
            }
        } else {
            xws_buf_adds(&text, arg);
        }
        char errbuf[256];
        if (xws_json_to_msgpack(text.data, text.len, &body, errbuf, sizeof(errbuf)) != 0) {
            fprintf(stderr, "xws-call: body: %s\n", errbuf);
            goto done;
        }
    }

    xws_request_spec_t spec = {.service = xws_slice(argv[state]),
                               .resource = xws_slice(argv[state + 1]),
                               .act = xws_slice(argv[state + 2]),
                               .params = params,
                               .nparams = nparams,
                               .body_msgpack = {body.data, body.size}};
    if (account != NULL)
        spec.caller_account = xws_slice(account);
    zsys_handler_set(NULL); /* Ctrl-C ends the tool at once */
    /* CURVE (PROTOCOL.md §1.1): this consumer's secret certificate and the gateway's public one */
    const char *own_cert, *gw_cert;
    char why[512] = "";
    if (xws_curve_consumer_settings(cfg, &own_cert, &gw_cert, why, sizeof(why)) != 0) {
        fprintf(stderr, "xws-call: %s\n", why);
        goto done;
    }
    client = xws_client_new_curve(endpoint, own_cert, gw_cert, why, sizeof(why));
    if (client == NULL) {
        fprintf(stderr, "xws-call: %s\n", why[0] != '\0' ? why : "cannot connect");
        goto done;
    }
    xws_reply_t rep;
    const char *err;
    if (xws_client_call(client, &spec, (int)timeout_ms, &rep, &err) != 0) {
        if (strcmp(err, "bad request") == 0) {
            fprintf(stderr, "xws-call: the request breaks a protocol limit (names 1-%d bytes, envelope at most %u bytes)\n",
                    XWS_MAX_NAME, XWS_MAX_ENVELOPE);
            rc = EXIT_USAGE;
        } else if (strcmp(err, "malformed reply") == 0) {
            fprintf(stderr, "xws-call: malformed reply from %s\n", endpoint);
            rc = EXIT_STATUS;
        } else {
            fprintf(stderr, "xws-call: no reply from %s within %ld ms (%s)\n", endpoint, timeout_ms, err);
            rc = EXIT_NOREPLY;
        }
        xws_reply_dispose(&rep);
        goto done;
    }
    fprintf(stderr, "status %u\n", rep.status);
    if (rep.etag.len != 0)
        fprintf(stderr, "etag %.*s\n", (int)rep.etag.len, rep.etag.ptr);
    rc = (rep.status >= 200 && rep.status <= 299) || rep.status == 304 ? 0 : EXIT_STATUS;
    if (rep.body != NULL) {
        if (xws_msgpack_to_json(rep.body, &out) != 0) {
            fprintf(stderr, "xws-call: the reply body has no JSON form\n");
            rc = EXIT_STATUS;
        } else {
            xws_buf_add(&out, "\n", 1);
            fwrite(out.data, 1, out.len, stdout);
        }
    }
    xws_reply_dispose(&rep);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "xws-call: cannot write standard output\n");
        rc = EXIT_STATUS;
    }

done:
    xws_client_destroy(&client);
    xws_buf_dispose(&text);
    xws_buf_dispose(&out);
    msgpack_sbuffer_destroy(&body);
    xws_config_destroy(&cfg);
    free(params);
    return rc;
}
