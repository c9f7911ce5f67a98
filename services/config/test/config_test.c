/*
 * config_test.c - tests of the config service: pure parts, then the entity, account, mail and
 * context resources end to end through svc_worker_handle (envelope in, envelope out) against a private
 * redis-server on a temporary Unix socket, then the account tool. Last line: "N passed, M failed".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "config_int.h"
#include "context.h"
#include "mail.h"
#include "svc_testredis.h"

static char s_dir[64];
static char s_sock[128];

static int s_redis_start(void)
{
    snprintf(s_sock, sizeof(s_sock), "%s/redis.sock", s_dir);
    return svc_testredis_start(s_dir);
}

static void s_redis_stop(void)
{
    svc_testredis_stop(s_dir);
}

/* ---- calling the service -------------------------------------------------------------------------- */

static svc_worker_t *s_worker;
static svc_worker_t *s_vworker; /* the "verify" service: account/verify */
static xws_config_t *s_cfg;
static const svc_resource_t *s_res;
static svc_service_t s_service;

typedef struct {
    unsigned status;
    char body[8192]; /* the body as JSON ("" when none) */
    char etag[64];
    int replayed; /* the reply envelope says "replayed" */
} answer_t;

/* one request; params as "k=v&k=v" (no escaping); body as JSON text or NULL */
/*
 * Removes every ,"cred":"<32 lower-case hex>" from body (the credential fingerprints of an account
 * snapshot, which change with every salted password); returns how many, or -1 when one is malformed.
 */
static int s_strip_cred(char *body)
{
    static const char tag[] = ",\"cred\":\"";
    int n = 0;
    char *p;
    while ((p = strstr(body, tag)) != NULL) {
        char *hex = p + strlen(tag);
        for (int i = 0; i < 32; i++)
            if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                return -1;
        if (hex[32] != '"')
            return -1;
        memmove(p, hex + 33, strlen(hex + 33) + 1);
        n++;
    }
    return n;
}

static answer_t s_call(const char *resource, const char *act, const char *params, const char *body, const char *mode,
                       const char *inm, const char *rid)
{
    answer_t a;
    memset(&a, 0, sizeof(a));
    xws_kv_t kv[8];
    size_t nkv = 0;
    char pbuf[512];
    snprintf(pbuf, sizeof(pbuf), "%s", params ? params : "");
    for (char *save = NULL, *tok = strtok_r(pbuf, "&", &save); tok != NULL && nkv < 8; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        XWS_CHECK(eq != NULL);
        *eq = '\0';
        kv[nkv].key = xws_slice(tok);
        kv[nkv++].val = xws_slice(eq + 1);
    }
    msgpack_sbuffer b, env, out;
    msgpack_sbuffer_init(&b), msgpack_sbuffer_init(&env), msgpack_sbuffer_init(&out);
    if (body != NULL)
        XWS_CHECK(xws_json_to_msgpack(body, strlen(body), &b, NULL, 0) == 0);
    char ridbuf[40];
    if (rid == NULL) {
        svc_random_chars(ridbuf, 32, "abcdef0123456789");
        rid = ridbuf;
    }
    /* password checks go to the service of their own, as the gateway sends them */
    int verify = strcmp(resource, "account") == 0 && strcmp(act, "verify") == 0;
    xws_request_spec_t spec = {.rid = xws_slice(rid),
                               .service = xws_slice(verify ? XWS_SERVICE_VERIFY : "config"),
                               .resource = xws_slice(resource),
                               .act = xws_slice(act),
                               .params = kv,
                               .nparams = nkv,
                               .body_msgpack = {b.data, b.size},
                               .caller_mode = xws_slice(mode ? mode : "restricted"),
                               .caller_account = xws_slice("test"),
                               .inm = xws_slice(inm)};
    XWS_CHECK(xws_request_encode(&spec, &env) == 0);
    XWS_CHECK(svc_worker_handle(verify ? s_vworker : s_worker, env.data, env.size, &out) == 1);
    xws_reply_t rep;
    const char *err;
    XWS_CHECK(xws_reply_decode(&rep, out.data, out.size, &err) == 0);
    a.status = rep.status;
    a.replayed = rep.replayed;
    snprintf(a.etag, sizeof(a.etag), "%.*s", (int)rep.etag.len, rep.etag.ptr);
    if (rep.body != NULL) {
        xws_buf_t j;
        xws_buf_init(&j);
        XWS_CHECK(xws_msgpack_to_json(rep.body, &j) == 0);
        snprintf(a.body, sizeof(a.body), "%.*s", (int)j.len, j.data);
        xws_buf_dispose(&j);
    }
    xws_reply_dispose(&rep);
    msgpack_sbuffer_destroy(&b), msgpack_sbuffer_destroy(&env), msgpack_sbuffer_destroy(&out);
    return a;
}

#define EXPECT(ans, st)                                                                                                            \
    do {                                                                                                                           \
        if ((ans).status != (st))                                                                                                  \
            fprintf(stderr, "%s:%d: status %u, expected %u; body %s\n", __FILE__, __LINE__, (ans).status, (unsigned)(st),          \
                    (ans).body);                                                                                                   \
        XWS_CHECK((ans).status == (st));                                                                                           \
    } while (0)

static const char s_example[] = "{\"name\": \"proformatique\", \"displayname\": \"Proformatique\", \"phonenumber\": "
                                "\"0033141389960\", \"faxnumber\": \"0033141389970\", \"email\": \"contact@proformatique.com\", "
                                "\"url\": \"http://www.proformatique.com\", \"address1\": \"10 bis, rue Lucien VOILIN\", "
                                "\"address2\": \"\", \"city\": \"Puteaux\", \"state\": \"Hauts de Seine\", \"zipcode\": "
                                "\"92800\", \"country\": \"FR\", \"description\": \"\"}";

static void s_entity_test(void)
{
    answer_t a = s_call("entity", "list", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 204);
    a = s_call("entity", "deleteall", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 204);
    a = s_call("entity", "add", NULL, s_example, NULL, NULL, "add-1");
    EXPECT(a, 200);
    XWS_CHECK(a.body[0] == '\0');
    a = s_call("entity", "add", NULL, s_example, NULL, NULL, "add-1"); /* the same request again: same outcome */
    EXPECT(a, 200);
    a = s_call("entity", "add", NULL, s_example, NULL, NULL, NULL); /* a new request: the name is taken */
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"error\":\"already_exists\",\"field\":\"name\"") != NULL);
    a = s_call("entity", "list", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(a.etag[0] == '"');
    char *dc = strstr(a.body, "\"dcreate\":");
    XWS_CHECK(dc != NULL);
    char want[2048];
    snprintf(want, sizeof(want),
             "[{\"id\":1,\"name\":\"proformatique\",\"displayname\":\"Proformatique\",\"phonenumber\":\"0033141389960\","
             "\"faxnumber\":\"0033141389970\",\"email\":\"contact@proformatique.com\",\"url\":\"http://www.proformatique.com\","
             "\"address1\":\"10 bis, rue Lucien VOILIN\",\"address2\":\"\",\"city\":\"Puteaux\",\"state\":\"Hauts de Seine\","
             "\"zipcode\":\"92800\",\"country\":\"FR\",\"description\":\"\",\"disable\":false,\"dcreate\":%lld,"
             "\"identity\":\"Proformatique (proformatique)\"}]",
             atoll(dc + 10));
    if (strcmp(a.body, want) != 0)
        fprintf(stderr, "got  %s\nwant %s\n", a.body, want);
    XWS_CHECK(strcmp(a.body, want) == 0);
    XWS_CHECK(atoll(dc + 10) > 1700000000);
    char etag[64];
    strcpy(etag, a.etag);
    a = s_call("entity", "list", NULL, NULL, NULL, etag, NULL);
    EXPECT(a, 304);
    XWS_CHECK(a.body[0] == '\0');
    a = s_call("entity", "nosuchact", NULL, NULL, NULL, NULL, NULL); /* default act: list */
    EXPECT(a, 200);

    /* view, search */
    a = s_call("entity", "view", "id=1", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strncmp(a.body, "{\"id\":1,\"name\":\"proformatique\"", 30) == 0);
    a = s_call("entity", "view", "id=2", NULL, NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "view", "id=abc", NULL, NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "view", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "search", "search=PUTEAUX", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "search", "search=hauts de", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "search", "search=nowhere", NULL, NULL, NULL, NULL);
    EXPECT(a, 204);
    a = s_call("entity", "search", "search=", NULL, NULL, NULL, NULL);
    EXPECT(a, 204);
    a = s_call("entity", "search", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 204);

    /* validation */
    a = s_call("entity", "add", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "empty_body") != NULL);
    a = s_call("entity", "add", NULL, "[1]", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "not_an_object") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"x\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"missing_field\",\"field\":\"displayname\"") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"x y\",\"displayname\":\"Xyz\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xy\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "too_short") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xyz\",\"country\":\"fra\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"field\":\"country\"") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xyz\",\"email\":\"nope\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xyz\",\"phonenumber\":\"12a\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xyz\",\"address1\":\"0123456789012345678901234567890\"}",
               NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "too_long") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"xy\",\"displayname\":\"Xy\\u0007z\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "add", NULL,
               "{\"name\":\"ACME\",\"displayname\":\"Acme Corp\",\"country\":\"de\",\"description\":\"a\\tb\\nc\","
               "\"disable\":true,\"id\":99,\"unknown\":1,\"city\":null}",
               NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "view", "id=2", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strstr(a.body, "\"id\":2,\"name\":\"acme\"") != NULL && strstr(a.body, "\"country\":\"DE\"") != NULL);
    XWS_CHECK(strstr(a.body, "\"disable\":false") != NULL && strstr(a.body, "\"city\":\"\"") != NULL);
    XWS_CHECK(strstr(a.body, "\"identity\":\"Acme Corp (acme)\"") != NULL);

    /* edit: partial, rename keeps the index right, conflicts */
    a = s_call("entity", "edit", "id=2", "{\"name\":\"Acme2\",\"city\":\"Lyon\"}", NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "view", "id=2", NULL, NULL, NULL, NULL);
    XWS_CHECK(strstr(a.body, "\"name\":\"acme2\"") != NULL && strstr(a.body, "\"city\":\"Lyon\"") != NULL &&
              strstr(a.body, "\"displayname\":\"Acme Corp\"") != NULL);
    a = s_call("entity", "add", NULL, "{\"name\":\"acme\",\"displayname\":\"Old name free again\"}", NULL, NULL, NULL);
    EXPECT(a, 200); /* id 3 */
    a = s_call("entity", "edit", "id=2", "{\"name\":\"proformatique\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "already_exists") != NULL);
    a = s_call("entity", "edit", "id=2", "{\"displayname\":\"A\"}", NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "edit", "id=9", "{\"displayname\":\"Abcd\"}", NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "edit", "id=2", NULL, NULL, NULL, NULL);
    EXPECT(a, 400);
    a = s_call("entity", "edit", "id=2", "{\"name\":\"acme2\"}", NULL, NULL, NULL); /* same name */
    EXPECT(a, 200);

    /* delete: in use → 405; deleteall keeps what is in use */
    svc_ctx_t ctx;
    svc_ctx_init(&ctx, NULL, svc_worker_redis(s_worker), "xws:", 600, NULL);
    const char *hset[] = {"HSET", "xws:entity:refs", "1", "2"};
    redisReply *r = svc_redis_command(svc_worker_redis(s_worker), 4, hset, NULL);
    XWS_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    a = s_call("entity", "delete", "id=1", NULL, NULL, NULL, NULL);
    EXPECT(a, 405);
    XWS_CHECK(strstr(a.body, "in_use") != NULL);
    a = s_call("entity", "delete", "id=42", NULL, NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "delete", "id=3", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "view", "id=3", NULL, NULL, NULL, NULL);
    EXPECT(a, 404);
    a = s_call("entity", "deleteall", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "list", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strncmp(a.body, "[{\"id\":1,", 9) == 0 && strstr(a.body, "\"id\":2") == NULL);
    const char *hdel[] = {"HDEL", "xws:entity:refs", "1"};
    freeReplyObject(svc_redis_command(svc_worker_redis(s_worker), 3, hdel, NULL));
    a = s_call("entity", "deleteall", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "list", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 204);
    /* ids are never reused */
    a = s_call("entity", "add", NULL, s_example, NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("entity", "view", "id=4", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    /* the index followed every change: only proformatique is left */
    const char *hgetall[] = {"HGETALL", "xws:entity:name"};
    r = svc_redis_command(svc_worker_redis(s_worker), 2, hgetall, NULL);
    XWS_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && strcmp(r->element[0]->str, "proformatique") == 0 &&
              strcmp(r->element[1]->str, "4") == 0);
    freeReplyObject(r);
    svc_ctx_dispose(&ctx);
}

static void s_account_test_redis(void)
{
    /* accounts made with the tool, read through the resource */
    char *add[] = {"account", "add",    "gw",         "--login", "jo",           "--password",
                   "pw1",     "--host", "10.0.0.0/8", "--acl",   "service/ipbx", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 11, add) == 0);
    XWS_CHECK(cfg_account_cli(NULL, 11, add) == 1); /* the name exists */
    char *add2[] = {"account", "add", "other", "--login", "jo", "--password", "x", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 7, add2) == 1); /* the login exists */
    char *hostonly[] = {"account", "add", "mon", "--host", "127.0.0.1", "--acl", "*", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 7, hostonly) == 0);
    char *bad[] = {"account", "add", "x", "--password", "p", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 5, bad) == 2);
    char *ensure[] = {"account", "ensure-initial", "--login", "admin", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 4, ensure) == 0); /* accounts exist: nothing */

    answer_t a = s_call("account", "snapshot", NULL, NULL, "internal", NULL, NULL);
    EXPECT(a, 403);
    a = s_call("account", "snapshot", NULL, NULL, "gateway", NULL, NULL);
    EXPECT(a, 200);
    const char *want = "{\"version\":2,\"accounts\":[{\"name\":\"gw\",\"login\":\"jo\",\"hostonly\":false,\"disabled\":false,"
                       "\"hosts\":[\"10.0.0.0/8\"],\"acl\":[\"service/ipbx\"]},{\"name\":\"mon\",\"login\":\"\",\"hostonly\":true,"
                       "\"disabled\":false,\"hosts\":[\"127.0.0.1\"],\"acl\":[\"*\"]}]}";
    XWS_CHECK(s_strip_cred(a.body) == 2); /* one fingerprint per account */
    if (strcmp(a.body, want) != 0)
        fprintf(stderr, "got  %s\nwant %s\n", a.body, want);
    XWS_CHECK(strcmp(a.body, want) == 0);
    a = s_call("account", "snapshot", "since=2", NULL, "gateway", NULL, NULL);
    EXPECT(a, 304);
    a = s_call("account", "snapshot", "since=1", NULL, "gateway", NULL, NULL);
    EXPECT(a, 200);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"pw1\"}", "gateway", NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(s_strip_cred(a.body) == 1 && strcmp(a.body, "{\"name\":\"gw\"}") == 0);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"pw2\"}", "gateway", NULL, NULL);
    EXPECT(a, 401);
    a = s_call("account", "verify", NULL, "{\"login\":\"nobody\",\"password\":\"pw1\"}", "gateway", NULL, NULL);
    EXPECT(a, 401);
    a = s_call("account", "verify", NULL, "{\"login\":\"\",\"password\":\"\"}", "gateway", NULL, NULL);
    EXPECT(a, 401);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\"}", "gateway", NULL, NULL);
    EXPECT(a, 400);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"pw1\"}", "restricted", NULL, NULL);
    EXPECT(a, 403);

    char *dis[] = {"account", "disable", "gw", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 3, dis) == 0);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"pw1\"}", "gateway", NULL, NULL);
    EXPECT(a, 401);
    char *en[] = {"account", "enable", "gw", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 3, en) == 0);
    char *pw[] = {"account", "passwd", "gw", "--password", "new", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 5, pw) == 0);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"new\"}", "gateway", NULL, NULL);
    EXPECT(a, 200);
    char *set[] = {"account", "set", "gw", "--login", "jo2", "--clear-hosts", "--acl", "callcenter", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 8, set) == 0);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo\",\"password\":\"new\"}", "gateway", NULL, NULL);
    EXPECT(a, 401);
    a = s_call("account", "verify", NULL, "{\"login\":\"jo2\",\"password\":\"new\"}", "gateway", NULL, NULL);
    EXPECT(a, 200);
    a = s_call("account", "snapshot", NULL, NULL, "gateway", NULL, NULL);
    XWS_CHECK(s_strip_cred(a.body) == 2);
    /* --acl replaces the list */
    XWS_CHECK(strstr(a.body, "{\"name\":\"gw\",\"login\":\"jo2\",\"hostonly\":false,\"disabled\":false,\"hosts\":[],"
                             "\"acl\":[\"callcenter\"]}") != NULL);
    /* --add-acl and --remove-acl change it */
    char *edit[] = {"account", "set", "gw", "--add-acl", "service/ipbx", "--add-acl", "xivo", "--remove-acl", "callcenter", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 9, edit) == 0);
    a = s_call("account", "snapshot", NULL, NULL, "gateway", NULL, NULL);
    XWS_CHECK(s_strip_cred(a.body) == 2);
    XWS_CHECK(strstr(a.body, "\"name\":\"gw\",\"login\":\"jo2\",\"hostonly\":false,\"disabled\":false,\"hosts\":[],"
                             "\"acl\":[\"service/ipbx\",\"xivo\"]}") != NULL);
    char *pwho[] = {"account", "passwd", "mon", "--password", "x", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 5, pwho) == 1); /* host-only */
    char *rm[] = {"account", "remove", "gw", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 3, rm) == 0);
    XWS_CHECK(cfg_account_cli(NULL, 3, rm) == 1);
    char *rm2[] = {"account", "remove", "mon", NULL};
    XWS_CHECK(cfg_account_cli(NULL, 3, rm2) == 0);
    a = s_call("account", "snapshot", NULL, NULL, "gateway", NULL, NULL);
    XWS_CHECK(strstr(a.body, "\"accounts\":[]") != NULL);
    const char *hlen[] = {"HLEN", "xws:account:login"};
    redisReply *r = svc_redis_command(svc_worker_redis(s_worker), 2, hlen, NULL);
    XWS_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
}

typedef struct {
    const char *name;
    void (*fn)(void);
    int redis;
} test_t;

static void s_with_worker(void (*fn)(void))
{
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", s_sock);
    setenv("XWS_REDIS", spec, 1);
    setenv("XWS_WORKER_ENDPOINTS", "ipc:///tmp/xws-config-test-none.ipc", 1);
    /* a Redis that is only slow (a loaded machine, sanitizers) must not look like a hung one: no test here waits for the timeout */
    setenv("XWS_REDIS_TIMEOUT_MS", "30000", 1);
    s_cfg = xws_config_load(NULL);
    const svc_resource_t resources[] = {
        cfg_entity_resource, cfg_mail_resource, cfg_context_resource, cfg_account_resource, {NULL, NULL, NULL}};
    s_res = resources;
    s_service = (svc_service_t){"config", cfg_lua, s_res, NULL};
    s_worker = svc_worker_new(&s_service, s_cfg);
    XWS_CHECK(s_worker != NULL);
    const svc_resource_t vresources[] = {cfg_verify_resource, {NULL, NULL, NULL}};
    const svc_service_t vservice = {XWS_SERVICE_VERIFY, cfg_lua, vresources, NULL};
    s_vworker = svc_worker_new(&vservice, s_cfg);
    XWS_CHECK(s_vworker != NULL);
    fn();
    svc_worker_destroy(&s_vworker);
    svc_worker_destroy(&s_worker);
    xws_config_destroy(&s_cfg);
}

static void s_entity(void)
{
    s_with_worker(s_entity_test);
}

static void s_account(void)
{
    s_with_worker(s_account_test_redis);
}

/* random values of every msgpack type, invalid UTF-8 included */
static void s_random_value(msgpack_packer *pk, unsigned *seed, int depth)
{
    char buf[80];
    size_t len = (size_t)(rand_r(seed) % 70);
    for (size_t i = 0; i < len; i++)
        buf[i] = rand_r(seed) % 3 ? "abcXYZ09 .-_@#*+\t\n"[rand_r(seed) % 19] : (char)rand_r(seed);
    switch (rand_r(seed) % (depth < 3 ? 12 : 10)) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        rand_r(seed) % 2 ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case 2:
        msgpack_pack_uint64(pk, (uint64_t)rand_r(seed) << (rand_r(seed) % 40));
        break;
    case 3:
        msgpack_pack_int64(pk, -(int64_t)rand_r(seed));
        break;
    case 4:
        msgpack_pack_uint64(pk, UINT64_MAX - (uint64_t)(rand_r(seed) % 3));
        break;
    case 5:
        msgpack_pack_double(pk, (double)rand_r(seed) / 7.0);
        break;
    case 6:
        msgpack_pack_bin(pk, len);
        msgpack_pack_bin_body(pk, buf, len);
        break;
    case 7:
        msgpack_pack_ext(pk, len, 1);
        msgpack_pack_ext_body(pk, buf, len);
        break;
    case 8:
    case 9:
        svc_mp_strn(pk, buf, len);
        break;
    case 10: {
        int n = rand_r(seed) % 4;
        msgpack_pack_array(pk, (size_t)n);
        for (int i = 0; i < n; i++)
            s_random_value(pk, seed, depth + 1);
        break;
    }
    default: {
        int n = rand_r(seed) % 4;
        msgpack_pack_map(pk, (size_t)n);
        for (int i = 0; i < n; i++) {
            s_random_value(pk, seed, depth + 1);
            s_random_value(pk, seed, depth + 1);
        }
    }
    }
}

/* thousands of random bodies for add and edit: every answer is 200, 400 or 404, nothing crashes */
static void s_entity_fuzz(void)
{
    static const char *keys[] = {"name",        "displayname", "phonenumber", "faxnumber", "email",   "url",
                                 "address1",    "address2",    "city",        "state",     "zipcode", "country",
                                 "description", "disable",     "dcreate",     "id",        "identity"};
    unsigned seed = 4242;
    int ok = 0;
    for (int i = 0; i < 3000; i++) {
        msgpack_sbuffer b, env, out;
        msgpack_sbuffer_init(&b), msgpack_sbuffer_init(&env), msgpack_sbuffer_init(&out);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        if (rand_r(&seed) % 10 == 0) {
            s_random_value(&pk, &seed, 0); /* a body of any type */
        } else {
            int n = 1 + rand_r(&seed) % 8;
            msgpack_pack_map(&pk, (size_t)n + 2);
            svc_mp_key(&pk, "name");
            char nm[16];
            snprintf(nm, sizeof(nm), "n%d", rand_r(&seed) % 50);
            svc_mp_cstr(&pk, nm);
            svc_mp_key(&pk, "displayname");
            svc_mp_cstr(&pk, "Fuzzed");
            for (int k = 0; k < n; k++) {
                svc_mp_key(&pk, keys[rand_r(&seed) % (sizeof(keys) / sizeof(keys[0]))]);
                s_random_value(&pk, &seed, 1);
            }
        }
        int edit = rand_r(&seed) % 2;
        char id[16], rid[32];
        snprintf(id, sizeof(id), "%d", 1 + rand_r(&seed) % 20);
        snprintf(rid, sizeof(rid), "fuzz-%d", i);
        xws_kv_t kv = {xws_slice("id"), xws_slice(id)};
        xws_request_spec_t spec = {.rid = xws_slice(rid),
                                   .service = xws_slice("config"),
                                   .resource = xws_slice("entity"),
                                   .act = xws_slice(edit ? "edit" : "add"),
                                   .params = &kv,
                                   .nparams = 1,
                                   .body_msgpack = {b.data, b.size},
                                   .caller_mode = xws_slice("internal")};
        XWS_CHECK(xws_request_encode(&spec, &env) == 0);
        XWS_CHECK(svc_worker_handle(s_worker, env.data, env.size, &out) == 1);
        xws_reply_t rep;
        const char *err;
        XWS_CHECK(xws_reply_decode(&rep, out.data, out.size, &err) == 0);
        if (rep.status != 200 && rep.status != 400 && rep.status != 404)
            fprintf(stderr, "status %u\n", rep.status);
        XWS_CHECK(rep.status == 200 || rep.status == 400 || rep.status == 404);
        ok += rep.status == 200;
        if (rep.body != NULL) { /* every answer renders as JSON */
            xws_buf_t j;
            xws_buf_init(&j);
            XWS_CHECK(xws_msgpack_to_json(rep.body, &j) == 0);
            xws_buf_dispose(&j);
        }
        xws_reply_dispose(&rep);
        msgpack_sbuffer_destroy(&b), msgpack_sbuffer_destroy(&env), msgpack_sbuffer_destroy(&out);
    }
    XWS_CHECK(ok > 10);
    /* whatever happened, the name index and the records agree */
    answer_t a = s_call("entity", "list", NULL, NULL, NULL, NULL, NULL);
    XWS_CHECK(a.status == 200 || a.status == 204);
    const char *hlen1[] = {"HLEN", "xws:entity:name"}, *hlen2[] = {"HLEN", "xws:entity:data"};
    redisReply *r1 = svc_redis_command(svc_worker_redis(s_worker), 2, hlen1, NULL);
    redisReply *r2 = svc_redis_command(svc_worker_redis(s_worker), 2, hlen2, NULL);
    XWS_CHECK(r1 && r2 && r1->type == REDIS_REPLY_INTEGER && r1->integer == r2->integer);
    freeReplyObject(r1), freeReplyObject(r2);
}

static void s_fuzz(void)
{
    s_with_worker(s_entity_fuzz);
}

/* ---- mail and context ------------------------------------------------------------------------------ */

/* one call and its expected status (EXPECT evaluates its argument more than once) */
#define EXPECT_CALL(st, ...)                                                                                                       \
    do {                                                                                                                           \
        answer_t a_ = s_call(__VA_ARGS__);                                                                                         \
        EXPECT(a_, st);                                                                                                            \
    } while (0)

static long long s_redis_int(const char *cmd, const char *key)
{
    const char *argv[] = {cmd, key};
    redisReply *r = svc_redis_command(svc_worker_redis(s_worker), 2, argv, NULL);
    XWS_CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void s_mail_context_pure(void)
{
    mail_test();
    context_test();
}

static void s_mail_context_test(void)
{
    static const char fresh[] = "{\"id\":1,\"mydomain\":\"\",\"origin\":\"xivo-clients.proformatique.com\",\"relayhost\":\"\","
                                "\"fallback_relayhost\":\"\",\"canonical\":[]}";
    static const char doc[] = "{\"mydomain\":\"proformatique.com\",\"origin\":\"devel.proformatique.com\",\"relayhost\":"
                              "\"smtp.free.fr\",\"fallback_relayhost\":\"smtp.orange.fr\",\"canonical\":[{\"pattern\":"
                              "\"@proformatique.com\",\"result\":\"support@proformatique.com\"}]}";
    answer_t a = s_call("mail", "", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strcmp(a.body, fresh) == 0);
    answer_t b = s_call("mail", "", NULL, NULL, NULL, a.etag, NULL);
    EXPECT(b, 304);
    a = s_call("mail", "edit", NULL, doc, NULL, NULL, "mail-1");
    EXPECT(a, 200);
    XWS_CHECK(a.body[0] == '\0' && !a.replayed);
    a = s_call("mail", "edit", NULL, doc, NULL, NULL, "mail-1"); /* a retry: the recorded outcome */
    EXPECT(a, 200);
    XWS_CHECK(a.replayed);
    XWS_CHECK(s_redis_int("TTL", "xws:wid:mail-1") > 0);
    /* the same write id with another request: refused, not answered with the recorded outcome */
    a = s_call("mail", "edit", NULL, "{\"mydomain\":\"\",\"origin\":\"\",\"relayhost\":\"\",\"fallback_relayhost\":\"\"}", NULL,
               NULL, "mail-1");
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"error\":\"bad_envelope\"") != NULL && !a.replayed);
    a = s_call("mail", "view", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strncmp(a.body, "{\"id\":1,", 8) == 0 && strcmp(a.body + 8, doc + 1) == 0);
    a = s_call("mail", "edit", NULL, "{\"mydomain\":\"\",\"origin\":\"\",\"relayhost\":\"a b\",\"fallback_relayhost\":\"\"}", NULL,
               NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"error\":\"invalid_value\",\"field\":\"relayhost\"") != NULL);

    /* contexts: the entity with the lowest id by default; references counted */
    a = s_call("context", "add", NULL, "{\"context\":{\"name\":\"c1\"}}", NULL, NULL, NULL);
    EXPECT(a, 400);
    XWS_CHECK(strstr(a.body, "\"error\":\"missing_field\",\"field\":\"context.entity\"") != NULL);
    EXPECT_CALL(200, "entity", "add", NULL, "{\"name\":\"e1\",\"displayname\":\"Entity 1\"}", NULL, NULL, NULL);
    EXPECT_CALL(200, "entity", "add", NULL, "{\"name\":\"e2\",\"displayname\":\"Entity 2\"}", NULL, NULL, NULL);
    a = s_call("context", "add", NULL, "{\"context\":{\"name\":\"c1\"}}", NULL, NULL, "bootstrap:test/c1");
    EXPECT(a, 200);
    XWS_CHECK(s_redis_int("TTL", "xws:wid:bootstrap:test/c1") == -1); /* kept for good */
    a = s_call("context", "add", NULL,
               "{\"context\":{\"name\":\"c2\",\"entity\":\"e2\"},\"contextinclude\":[\"c1\"],"
               "\"contextnumbers\":{\"user\":[{\"numberbeg\":\"100\",\"numberend\":\"199\"}],\"incall\":[{\"numberbeg\":\"\"}]}}",
               NULL, NULL, NULL);
    EXPECT(a, 200);
    a = s_call("context", "view", "id=c2", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strcmp(a.body, "{\"context\":{\"name\":\"c2\",\"displayname\":\"c2\",\"entity\":\"e2\",\"contexttype\":"
                             "\"internal\",\"description\":\"\"},\"contextinclude\":[\"c1\"],\"contextnumbers\":{\"user\":[{"
                             "\"numberbeg\":\"100\",\"numberend\":\"199\"}],\"group\":false,\"queue\":false,\"meetme\":false,"
                             "\"incall\":[{\"numberbeg\":\"\",\"numberend\":\"\",\"didlength\":4}]}}") == 0);
    a = s_call("context", "list", NULL, NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    XWS_CHECK(strcmp(a.body, "[{\"name\":\"c1\",\"displayname\":\"c1\",\"entity\":\"e1\",\"contexttype\":\"internal\","
                             "\"description\":\"\"},{\"name\":\"c2\",\"displayname\":\"c2\",\"entity\":\"e2\",\"contexttype\":"
                             "\"internal\",\"description\":\"\"}]") == 0);
    EXPECT_CALL(405, "entity", "delete", "id=1", NULL, NULL, NULL, NULL);
    EXPECT_CALL(405, "context", "delete", "id=c1", NULL, NULL, NULL, NULL); /* included by c2 */
    EXPECT_CALL(200, "context", "edit", "id=c2", "{\"contextinclude\":false,\"context\":{\"entity\":\"e1\"}}", NULL, NULL, NULL);
    EXPECT_CALL(200, "entity", "delete", "id=2", NULL, NULL, NULL, NULL);
    EXPECT_CALL(200, "context", "delete", "id=c1", NULL, NULL, NULL, NULL);
    EXPECT_CALL(404, "context", "delete", "id=c1", NULL, NULL, NULL, NULL);
    a = s_call("context", "search", "search=C2", NULL, NULL, NULL, NULL);
    EXPECT(a, 200);
    EXPECT_CALL(204, "context", "search", "search=", NULL, NULL, NULL, NULL);
    EXPECT_CALL(404, "context", "view", "id=c1", NULL, NULL, NULL, NULL);
    EXPECT_CALL(200, "context", "delete", "id=c2", NULL, NULL, NULL, NULL);
    EXPECT_CALL(204, "context", "list", NULL, NULL, NULL, NULL, NULL);
    XWS_CHECK(s_redis_int("HLEN", "xws:entity:refs") == 0 && s_redis_int("HLEN", "xws:context:inclrefs") == 0);
}

/* random msgpack for a part of a context body: usually well-formed, sometimes anything */
static void s_random_context(msgpack_packer *pk, unsigned *seed)
{
    static const char *names[] = {"ca", "cb", "cc", "cd", "xivo-x", "bad name"};
    static const char *types[] = {"user", "group", "queue", "meetme", "incall", "bogus"};
    static const char *bounds[] = {"", "1", "10", "100", "150", "199", "200", "1000", "x1", "99999999999999999"};
    int nparts = rand_r(seed) % 4;
    msgpack_pack_map(pk, (size_t)nparts + 1);
    svc_mp_key(pk, "context");
    if (rand_r(seed) % 12 == 0) {
        s_random_value(pk, seed, 1);
    } else {
        msgpack_pack_map(pk, 3);
        svc_mp_key(pk, "name");
        svc_mp_cstr(pk, names[rand_r(seed) % 6]);
        svc_mp_key(pk, "entity");
        if (rand_r(seed) % 5 == 0)
            s_random_value(pk, seed, 2);
        else
            svc_mp_cstr(pk, rand_r(seed) % 3 ? "e1" : "nope");
        svc_mp_key(pk, rand_r(seed) % 2 ? "displayname" : "description");
        s_random_value(pk, seed, 2);
    }
    for (int p = 0; p < nparts; p++) {
        if (rand_r(seed) % 2) {
            svc_mp_key(pk, "contextinclude");
            int n = rand_r(seed) % 4;
            msgpack_pack_array(pk, (size_t)n);
            for (int i = 0; i < n; i++) {
                if (rand_r(seed) % 8 == 0)
                    s_random_value(pk, seed, 2);
                else
                    svc_mp_cstr(pk, names[rand_r(seed) % 6]);
            }
        } else {
            svc_mp_key(pk, "contextnumbers");
            int n = rand_r(seed) % 3;
            msgpack_pack_map(pk, (size_t)n);
            for (int i = 0; i < n; i++) {
                svc_mp_cstr(pk, types[rand_r(seed) % 6]);
                int k = rand_r(seed) % 3;
                msgpack_pack_array(pk, (size_t)k);
                for (int j = 0; j < k; j++) {
                    msgpack_pack_map(pk, 3);
                    svc_mp_key(pk, "numberbeg");
                    svc_mp_cstr(pk, bounds[rand_r(seed) % 10]);
                    svc_mp_key(pk, "numberend");
                    svc_mp_cstr(pk, bounds[rand_r(seed) % 10]);
                    svc_mp_key(pk, "didlength");
                    s_random_value(pk, seed, 3);
                }
            }
        }
    }
}

/* thousands of random context adds, edits and deletes, and mail edits: every answer is 200, 400,
 * 404 or 405, and the reference counts always match the records */
static void s_context_fuzz(void)
{
    EXPECT_CALL(200, "entity", "add", NULL, "{\"name\":\"e1\",\"displayname\":\"Entity 1\"}", NULL, NULL, NULL);
    const char *hset[] = {"HSET", "xws:context:numbers:ca", "150", "user:line/1", "1000", "incall:1"};
    redisReply *hr = svc_redis_command(svc_worker_redis(s_worker), 6, hset, NULL);
    XWS_CHECK(hr != NULL && hr->type == REDIS_REPLY_INTEGER);
    freeReplyObject(hr);
    unsigned seed = 777;
    int ok = 0;
    for (int i = 0; i < 3000; i++) {
        msgpack_sbuffer b, env, out;
        msgpack_sbuffer_init(&b), msgpack_sbuffer_init(&env), msgpack_sbuffer_init(&out);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        int what = rand_r(&seed) % 10;
        const char *resource = "context", *act = what < 4 ? "add" : what < 8 ? "edit" : "delete";
        if (what == 9) {
            resource = "mail", act = "edit";
            msgpack_pack_map(&pk, 5);
            static const char *keys[] = {"mydomain", "origin", "relayhost", "fallback_relayhost", "canonical"};
            for (int k = 0; k < 5; k++) {
                svc_mp_key(&pk, keys[k]);
                if (rand_r(&seed) % 3)
                    svc_mp_cstr(&pk, "");
                else
                    s_random_value(&pk, &seed, 1);
            }
        } else if (rand_r(&seed) % 15 == 0) {
            s_random_value(&pk, &seed, 0);
        } else {
            s_random_context(&pk, &seed);
        }
        static const char *ids[] = {"ca", "cb", "cc", "cd", "", "bad id"};
        char rid[32];
        snprintf(rid, sizeof(rid), "cfuzz-%d", i);
        xws_kv_t kv = {xws_slice("id"), xws_slice(ids[rand_r(&seed) % 6])};
        xws_request_spec_t spec = {.rid = xws_slice(rid),
                                   .service = xws_slice("config"),
                                   .resource = xws_slice(resource),
                                   .act = xws_slice(act),
                                   .params = &kv,
                                   .nparams = 1,
                                   .body_msgpack = {b.data, b.size},
                                   .caller_mode = xws_slice("internal")};
        XWS_CHECK(xws_request_encode(&spec, &env) == 0);
        XWS_CHECK(svc_worker_handle(s_worker, env.data, env.size, &out) == 1);
        xws_reply_t rep;
        const char *err;
        XWS_CHECK(xws_reply_decode(&rep, out.data, out.size, &err) == 0);
        if (rep.status != 200 && rep.status != 400 && rep.status != 404 && rep.status != 405)
            fprintf(stderr, "%s %s: status %u\n", resource, act, rep.status);
        XWS_CHECK(rep.status == 200 || rep.status == 400 || rep.status == 404 || rep.status == 405);
        ok += rep.status == 200;
        if (rep.body != NULL) {
            xws_buf_t j;
            xws_buf_init(&j);
            XWS_CHECK(xws_msgpack_to_json(rep.body, &j) == 0);
            xws_buf_dispose(&j);
        }
        xws_reply_dispose(&rep);
        msgpack_sbuffer_destroy(&b), msgpack_sbuffer_destroy(&env), msgpack_sbuffer_destroy(&out);
    }
    XWS_CHECK(ok > 50);
    /* every view renders; the counts match the records */
    answer_t a = s_call("context", "list", NULL, NULL, NULL, NULL, NULL);
    XWS_CHECK(a.status == 200 || a.status == 204);
    EXPECT_CALL(200, "mail", "view", NULL, NULL, NULL, NULL, NULL);
    static const char check[] = "local recs = redis.call('HVALS', KEYS[1]) local incl = 0 "
                                "for _, r in ipairs(recs) do incl = incl + #cmsgpack.unpack(r)[6] end "
                                "local s = 0 for _, v in ipairs(redis.call('HVALS', KEYS[2])) do s = s + tonumber(v) end "
                                "local e = 0 for _, v in ipairs(redis.call('HVALS', KEYS[3])) do e = e + tonumber(v) end "
                                "return {#recs, e, incl, s}";
    const char *argv[] = {"EVAL", check, "3", "xws:context:data", "xws:context:inclrefs", "xws:entity:refs"};
    redisReply *r = svc_redis_command(svc_worker_redis(s_worker), 6, argv, NULL);
    XWS_CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
    XWS_CHECK(r->element[0]->integer == r->element[1]->integer); /* one entity reference per context */
    XWS_CHECK(r->element[2]->integer == r->element[3]->integer); /* one include reference per include */
    freeReplyObject(r);
}

static void s_mail_context(void)
{
    s_with_worker(s_mail_context_test);
}

static void s_mail_context_fuzz(void)
{
    s_with_worker(s_context_fuzz);
}

int main(void)
{
    static const test_t tests[] = {
        {"account (pure)", cfg_account_test, 0},
        {"entity (redis)", s_entity, 1},
        {"account (redis)", s_account, 1},
        {"entity fuzz (redis)", s_fuzz, 1},
        {"mail, context (pure)", s_mail_context_pure, 0},
        {"mail, context (redis)", s_mail_context, 1},
        {"context fuzz (redis)", s_mail_context_fuzz, 1},
    };
    signal(SIGPIPE, SIG_IGN);
    svc_log_set_level(SVC_LOG_ERROR);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (tests[i].redis) {
            strcpy(s_dir, "/tmp/xws-config-test-XXXXXX");
            if (mkdtemp(s_dir) == NULL || s_redis_start() != 0) {
                fprintf(stderr, "%s: cannot start redis-server\n", tests[i].name);
                failed++;
                continue;
            }
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            tests[i].fn();
            exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("%-20s %s\n", tests[i].name, ok ? "ok" : "FAILED");
        ok ? passed++ : failed++;
        if (tests[i].redis) {
            s_redis_stop();
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
            if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", s_dir);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
