/*
 * xws-bootstrap - loads the bootstrap data set (deploy/bootstrap.json) through the services.
 *
 *   xws-bootstrap [-c FILE] [-e ENDPOINT] [-w SECONDS] [BOOTSTRAP.json]
 *
 * The file is {"version": 1, "items": [{"key", "service", "resource", "act", "body", "params"}...]}
 * ("body" any JSON value, "params" an object of strings, both optional). Each item is sent as one
 * request over the gateway's internal endpoint with the request id "bootstrap:<key>". The
 * services record the outcome of such writes without expiry, so an item is applied once per
 * store: a later run gets the recorded outcome back (nothing changes, and an object an operator
 * deleted since does not come back). Items are sent in file order.
 *
 * While the gateway does not answer, the service has no worker or its data store is down (503,
 * 504), a request is retried for up to SECONDS (default 20) from the start of the run. One line
 * per item goes to standard output: "applied", "already applied" or "refused: <status> <error>
 * (<field>): <message>".
 * Exit status: 0 when every item was applied now or before, 1 when an item was refused or got no
 * answer, 2 for a usage error or an unreadable file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "xws/cli.h"
#include "xws/config.h"
#include "xws/curve.h"
#include "xws/frames.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define RID_PREFIX "bootstrap:"
#define MAX_KEY (XWS_MAX_RID - (int)(sizeof(RID_PREFIX) - 1))
#define CALL_TIMEOUT_MS 5000 /* one attempt */
#define RETRY_PAUSE_MS 250

static const xws_cli_opt_t s_opts[] = {
    {'c', "config", "FILE", "settings file (default: $XWS_CONFIG)"},
    {'e', "endpoint", "ENDPOINT", "the gateway's internal endpoint (default: the internal_endpoint setting)"},
    {'w', "wait", "SECONDS", "how long to retry while a service is not available (default 20)"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-bootstrap", "[OPTION]... [BOOTSTRAP.json]",
    "Loads the bootstrap data set (default: the bootstrap_file setting, deploy/bootstrap.json) through the services, "
    "over the gateway's internal endpoint. Each item is applied once per store: a later run gets the recorded outcome "
    "back. One line per item: applied, already applied, or refused with the reason.",
    s_opts,
    "CURVE: with the settings curve_client_key (this consumer's secret certificate) and curve_gateway_key (the "
    "gateway's public certificate), the requests go over CURVE.\n\n"
    "Exit status: 0 when every item was applied now or before, 1 when an item was refused or got no answer, 2 for a "
    "usage error, an unreadable file or an unusable certificate.\n"};

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* 1 when key is 1..MAX_KEY bytes of [A-Za-z0-9_.:/-] */
static int s_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > (size_t)MAX_KEY)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_.:/-", c) != NULL))
            return 0;
    }
    return 1;
}

/* 1 when s is a 1..XWS_MAX_NAME byte name */
static int s_name_ok(const char *s)
{
    return s != NULL && strlen(s) >= 1 && strlen(s) <= XWS_MAX_NAME;
}

/* Checks the shape of the file; prints what is wrong and returns -1. */
static int s_check_file(const char *path, json_t *root)
{
    json_t *v = json_object_get(root, "version");
    if (!json_is_object(root) || !json_is_integer(v) || json_integer_value(v) != 1) {
        fprintf(stderr, "xws-bootstrap: %s: expected an object with \"version\": 1\n", path);
        return -1;
    }
    json_t *items = json_object_get(root, "items");
    if (!json_is_array(items)) {
        fprintf(stderr, "xws-bootstrap: %s: \"items\" must be an array\n", path);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *key = json_string_value(json_object_get(it, "key"));
        if (!json_is_object(it) || key == NULL || !s_key_ok(key)) {
            fprintf(stderr, "xws-bootstrap: %s: item %zu: \"key\" must be 1-%d characters of [A-Za-z0-9_.:/-]\n", path, i, MAX_KEY);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(key, json_string_value(json_object_get(json_array_get(items, k), "key"))) == 0) {
                fprintf(stderr, "xws-bootstrap: %s: item %zu: key \"%s\" is used twice\n", path, i, key);
                return -1;
            }
        }
        static const char *const names[] = {"service", "resource", "act"};
        for (size_t k = 0; k < 3; k++) {
            if (!s_name_ok(json_string_value(json_object_get(it, names[k])))) {
                fprintf(stderr, "xws-bootstrap: %s: item %s: \"%s\" must be a string of 1-%d bytes\n", path, key, names[k],
                        XWS_MAX_NAME);
                return -1;
            }
        }
        json_t *params = json_object_get(it, "params");
        if (params != NULL && !json_is_null(params)) {
            const char *pk;
            json_t *pv;
            int ok = json_is_object(params);
            json_object_foreach(params, pk, pv) ok = ok && json_is_string(pv);
            if (!ok) {
                fprintf(stderr, "xws-bootstrap: %s: item %s: \"params\" must be an object of strings\n", path, key);
                return -1;
            }
        }
    }
    return 0;
}

/* the str value of key in the msgpack map o, as a printf-able length/pointer pair */
static xws_slice_t s_mp_str(const msgpack_object *o, const char *key)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
        return xws_slice("");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type == MSGPACK_OBJECT_STR && xws_slice_eq((xws_slice_t){k->via.str.ptr, k->via.str.size}, key) &&
            v->type == MSGPACK_OBJECT_STR)
            return (xws_slice_t){v->via.str.ptr, v->via.str.size};
    }
    return xws_slice("");
}

typedef enum { ITEM_APPLIED, ITEM_REPLAYED, ITEM_REFUSED, ITEM_NO_ANSWER } item_result_t;

/*
 * Sends one item until it gets a definite answer or the retry window (ends at deadline, a
 * monotonic time in ms) is over. *client may be re-created (a timed-out request is dropped with
 * its socket, so that it does not reach the service later).
 */
/* where and how to reach the gateway: its internal endpoint, and the CURVE certificates or NULLs */
typedef struct {
    const char *endpoint, *own_cert, *gw_cert;
} target_t;

static item_result_t s_apply(xws_client_t **client, const target_t *to, json_t *it, long long deadline)
{
    const char *key = json_string_value(json_object_get(it, "key"));
    char rid[XWS_MAX_RID + 1];
    snprintf(rid, sizeof(rid), "%s%s", RID_PREFIX, key);

    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    json_t *jbody = json_object_get(it, "body");
    if (jbody != NULL && !json_is_null(jbody)) {
        char *text = json_dumps(jbody, JSON_COMPACT | JSON_ENCODE_ANY);
        char errbuf[256];
        int bad = text == NULL || xws_json_to_msgpack(text, strlen(text), &body, errbuf, sizeof(errbuf)) != 0;
        free(text);
        if (bad) {
            printf("bootstrap: %s: refused: the body cannot be sent (too deep or too large)\n", key);
            msgpack_sbuffer_destroy(&body);
            return ITEM_REFUSED;
        }
    }
    json_t *jparams = json_object_get(it, "params");
    size_t np = json_is_object(jparams) ? json_object_size(jparams) : 0;
    xws_kv_t *params = calloc(np + 1, sizeof(*params));
    if (params == NULL)
        abort();
    size_t i = 0;
    const char *pk;
    json_t *pv;
    if (np > 0) {
        json_object_foreach(jparams, pk, pv)
        {
            params[i].key = xws_slice(pk);
            params[i].val = (xws_slice_t){json_string_value(pv), json_string_length(pv)};
            i++;
        }
    }
    xws_request_spec_t spec = {.rid = xws_slice(rid),
                               .service = xws_slice(json_string_value(json_object_get(it, "service"))),
                               .resource = xws_slice(json_string_value(json_object_get(it, "resource"))),
                               .act = xws_slice(json_string_value(json_object_get(it, "act"))),
                               .params = params,
                               .nparams = np,
                               .body_msgpack = {body.data, body.size}};
    item_result_t res = ITEM_NO_ANSWER;
    const char *why = "no answer";
    for (;;) {
        long long left = deadline - s_now_ms();
        int timeout = left < 500 ? 500 : left > CALL_TIMEOUT_MS ? CALL_TIMEOUT_MS : (int)left;
        if (*client == NULL && (*client = xws_client_new_curve(to->endpoint, to->own_cert, to->gw_cert, NULL, 0)) == NULL) {
            why = "cannot connect to the internal endpoint";
        } else {
            xws_reply_t rep;
            const char *err = NULL;
            if (xws_client_call(*client, &spec, timeout, &rep, &err) == 0) {
                unsigned st = rep.status;
                if (st >= 200 && st <= 299) {
                    res = rep.replayed ? ITEM_REPLAYED : ITEM_APPLIED;
                } else if (st != 503 && st != 504) {
                    xws_slice_t code = s_mp_str(rep.body, "error"), field = s_mp_str(rep.body, "field");
                    xws_slice_t msg = s_mp_str(rep.body, "message");
                    printf("bootstrap: %s: refused: %u %.*s (%.*s): %.*s%s\n", key, st, (int)code.len, code.ptr, (int)field.len,
                           field.ptr, (int)msg.len, msg.ptr, rep.replayed ? " (recorded at an earlier run)" : "");
                    res = ITEM_REFUSED;
                } else {
                    why = st == 504 ? "the service did not answer in time (504)"
                          : xws_slice_eq(s_mp_str(rep.body, "error"), "store_unavailable") ? "the data store is unavailable (503)"
                                                                                           : "the service has no worker (503)";
                }
                xws_reply_dispose(&rep);
                if (res != ITEM_NO_ANSWER)
                    break;
            } else {
                xws_reply_dispose(&rep);
                if (err != NULL && strcmp(err, "bad request") == 0) {
                    printf("bootstrap: %s: refused: the request breaks a protocol limit\n", key);
                    res = ITEM_REFUSED;
                    break;
                }
                why = "the gateway did not answer";
                xws_client_destroy(client); /* drops the unanswered request */
            }
        }
        if (s_now_ms() + RETRY_PAUSE_MS >= deadline)
            break;
        s_sleep_ms(RETRY_PAUSE_MS);
    }
    if (res == ITEM_APPLIED)
        printf("bootstrap: %s: applied\n", key);
    else if (res == ITEM_REPLAYED)
        printf("bootstrap: %s: already applied\n", key);
    else if (res == ITEM_NO_ANSWER)
        printf("bootstrap: %s: not applied: %s\n", key, why);
    fflush(stdout);
    free(params);
    msgpack_sbuffer_destroy(&body);
    return res;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *endpoint = NULL;
    long wait_s = 20;
    const char *val;
    int opt, state = 0;
    while ((opt = xws_cli_next(&s_cli, argc, argv, &state, &val)) != -1) {
        switch (opt) {
        case 'c':
            config_path = val;
            break;
        case 'e':
            endpoint = val;
            break;
        case 'w': {
            char *end;
            wait_s = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || wait_s < 0 || wait_s > 86400) {
                fprintf(stderr, "xws-bootstrap: -w wants seconds between 0 and 86400, not '%s'\n", val);
                return EXIT_USAGE;
            }
            break;
        }
        }
    }
    if (argc - state > 1)
        return xws_cli_usage_error(&s_cli, "%s", "one data set file at most");
    xws_config_t *cfg = xws_config_load(config_path);
    if (cfg == NULL)
        return EXIT_USAGE;
    if (endpoint == NULL)
        endpoint = xws_config_get(cfg, "internal_endpoint", "ipc://${run_dir}/internal.ipc");
    const char *path = argc - state == 1 ? argv[state] : xws_config_get(cfg, "bootstrap_file", "deploy/bootstrap.json");

    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "xws-bootstrap: %s: line %d, column %d: %s\n", path, jerr.line, jerr.column, jerr.text);
        xws_config_destroy(&cfg);
        return EXIT_USAGE;
    }
    if (s_check_file(path, root) != 0) {
        json_decref(root);
        xws_config_destroy(&cfg);
        return EXIT_USAGE;
    }
    zsys_handler_set(NULL); /* Ctrl-C ends the tool at once */
    /* CURVE (PROTOCOL.md §1.1): checked once here, so that a bad certificate is not retried */
    target_t to = {endpoint, NULL, NULL};
    char why[512] = "";
    xws_client_t *client = NULL;
    if (xws_curve_consumer_settings(cfg, &to.own_cert, &to.gw_cert, why, sizeof(why)) != 0 ||
        (to.own_cert != NULL && (client = xws_client_new_curve(endpoint, to.own_cert, to.gw_cert, why, sizeof(why))) == NULL)) {
        fprintf(stderr, "xws-bootstrap: %s\n", why);
        json_decref(root);
        xws_config_destroy(&cfg);
        return EXIT_USAGE;
    }
    long long deadline = s_now_ms() + wait_s * 1000;
    json_t *items = json_object_get(root, "items");
    size_t failed = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        item_result_t r = s_apply(&client, &to, json_array_get(items, i), deadline);
        failed += r == ITEM_REFUSED || r == ITEM_NO_ANSWER;
    }
    xws_client_destroy(&client);
    json_decref(root);
    xws_config_destroy(&cfg);
    return failed == 0 ? 0 : EXIT_FAILED;
}
