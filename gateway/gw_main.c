/*
 * gw_main - xws-gateway [-c FILE]: reads the settings, sets up TLS, the HTTPS listener, the worker
 * broker and the internal endpoint, runs the h2o event loop, and stops cleanly on SIGTERM/SIGINT.
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>
#include <czmq.h>
#include "xws/log.h"
#include "xws/cli.h"
#include "xws/config.h"
#include "xws/curve.h"
#include "xws/notify.h"
#include "gw_app.h"
#include "gw_conns.h"
#include "gw_guard.h"
#include "gw_http.h"
#include "gw_msg.h"
#include "gw_internal.h"
#include "gw_zap.h"
#include "gw_refresh.h"
#include "gw_route.h"
#include "gw_tls.h"
#include "gw_verify.h"

/* How long the listener rests when accept() fails for want of file descriptors or memory. */
#define ACCEPT_PAUSE_MS 100

static struct {
    gw_app_t app;
    h2o_socket_t *listener;
    int listening;          /* 1 while the listener is read */
    int accept_paused;      /* 1 during the ACCEPT_PAUSE_MS rest after EMFILE/ENFILE */
    size_t nconns;          /* accepted connections not closed yet */
    size_t max_connections; /* the listener is not read while nconns is at this bound */
    uint64_t accept_error_log_at;
    uint64_t naccept_errors;
    h2o_timeout_t accept_pause_timeout;
    h2o_timeout_entry_t accept_pause;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;
    volatile sig_atomic_t stop;
    volatile sig_atomic_t reopen; /* SIGHUP: reopen the access log file */
    uint64_t watchdog_ms;         /* WATCHDOG=1 every this many ms (systemd), 0: none */
    uint64_t watchdog_at;         /* loop ms of the last one */
} g;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        g.reopen = 1;
    else
        g.stop = 1;
}

/* Reads the listener exactly when a connection may be accepted: not stopping, not resting, below max_connections. */
static void s_listener_update(void);

/* An accepted connection was closed (h2o_socket_t.on_close): one more may be accepted. */
static void s_on_conn_close(void *data)
{
    assert(g.nconns > 0);
    g.nconns--;
    s_listener_update();
}

static void s_on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    errno = 0;
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
        int e = errno;
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            /* the pending connection stays in the backlog and the listener stays readable: rest instead of spinning */
            uint64_t now = h2o_now(g.app.loop);
            g.naccept_errors++;
            if (g.accept_error_log_at == 0 || now - g.accept_error_log_at >= 10000) {
                xws_log(XWS_LOG_ERROR,
                        "cannot accept connections: %s (%zu open); not accepting for %d ms (%" PRIu64
                        " such failure(s) since the last message)\n",
                        strerror(e), g.nconns, ACCEPT_PAUSE_MS, g.naccept_errors);
                g.accept_error_log_at = now;
                g.naccept_errors = 0;
            }
            g.accept_paused = 1;
            if (!h2o_timeout_is_linked(&g.accept_pause))
                h2o_timeout_link(g.app.loop, &g.accept_pause_timeout, &g.accept_pause);
            s_listener_update();
        }
        return;
    }
    g.nconns++;
    gw_conns_add(g.app.conns, sock, s_on_conn_close, NULL);
    if (g.nconns >= g.max_connections)
        s_listener_update();
    h2o_accept(&g.app.accept_ctx, sock);
}

static void s_listener_update(void)
{
    if (g.listener == NULL)
        return;
    int want = !g.app.stopping && !g.accept_paused && g.nconns < g.max_connections;
    if (want && !g.listening)
        h2o_socket_read_start(g.listener, s_on_accept);
    else if (!want && g.listening)
        h2o_socket_read_stop(g.listener);
    g.listening = want;
}

static void s_on_accept_pause_end(h2o_timeout_entry_t *entry)
{
    g.accept_paused = 0;
    s_listener_update();
}

static void s_on_tick(h2o_timeout_entry_t *entry)
{
    uint64_t now = h2o_now(g.app.loop);
    if (g.watchdog_ms > 0 && now - g.watchdog_at >= g.watchdog_ms) {
        xws_notify("WATCHDOG=1"); /* the loop turns: the service manager need not restart us */
        g.watchdog_at = now;
    }
    if (g.reopen) {
        g.reopen = 0;
        if (gw_log_reopen(g.app.log) == 0)
            xws_log(XWS_LOG_INFO, "SIGHUP: log files reopened");
    }
    gw_broker_tick(g.app.broker);
    gw_conns_tick(g.app.conns);
    if (!g.app.stopping) {
        gw_refresh_tick(g.app.refresh);
        gw_backoff_tick(g.app.backoff, h2o_now(g.app.loop));
    }
    h2o_timeout_link(g.app.loop, &g.tick_timeout, &g.tick);
}

/* Opens the listening socket for "host:port" or "[v6]:port"; returns the fd or -1 (reason on stderr). */
static int s_listen(const char *spec)
{
    char host[256], port[16];
    const char *colon;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
            goto bad;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
            goto bad;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
        goto bad;
    strcpy(port, colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        xws_log(XWS_LOG_ERROR, "listen = %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        xws_log(XWS_LOG_ERROR, "cannot listen on %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[64] = "?", p[16] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV);
    xws_log(XWS_LOG_INFO, "listening on https://%s%s%s:%s/", strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", p);
    return fd;
bad:
    xws_log(XWS_LOG_ERROR, "listen = %s: expected host:port or [v6addr]:port", spec);
    return -1;
}

static int s_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                xws_log(XWS_LOG_ERROR, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            buf[i] = c;
        }
    return 0;
}

/*
 * Checks the CURVE settings (PROTOCOL.md §1.1): the allow-list directories need the gateway's
 * secret certificate, which must then hold a secret key, and the key alone guards nothing.
 * Returns 0, or -1 with the reason on stderr.
 */
static int s_check_curve(const char *secret, const char *workers_dir, const char *clients_dir)
{
    int dirs = workers_dir[0] != '\0' || clients_dir[0] != '\0';
    if (!dirs && secret[0] == '\0')
        return 0;
    if (!dirs) {
        xws_log(XWS_LOG_ERROR, "curve_secret_key is set but guards nothing: set curve_workers_dir (the workers' public "
                               "certificates) and/or curve_clients_dir (the internal consumers')");
        return -1;
    }
    if (secret[0] == '\0') {
        xws_log(XWS_LOG_ERROR, "curve_workers_dir and curve_clients_dir need curve_secret_key (the gateway's secret certificate)");
        return -1;
    }
    if (!xws_curve_available()) {
        xws_log(XWS_LOG_ERROR, "CURVE settings are set, but this libzmq has no CURVE support (built without libsodium)");
        return -1;
    }
    char why[512];
    zcert_t *cert = xws_curve_load(secret, 1, why, sizeof(why));
    if (cert == NULL) {
        xws_log(XWS_LOG_ERROR, "curve_secret_key: %s", why);
        return -1;
    }
    zcert_destroy(&cert);
    const char *names[] = {"curve_workers_dir", "curve_clients_dir"}, *dirsv[] = {workers_dir, clients_dir};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (dirsv[i][0] != '\0' && (stat(dirsv[i], &st) != 0 || !S_ISDIR(st.st_mode) || access(dirsv[i], R_OK | X_OK) != 0)) {
            xws_log(XWS_LOG_ERROR, "%s: %s is not a readable directory", names[i], dirsv[i]);
            return -1;
        }
    }
    return 0;
}

/* A positive integer setting, or -1 (reason on stderr). */
static long long s_setting(xws_config_t *cfg, const char *key, long long def, long long min)
{
    long long v = xws_config_int(cfg, key, def);
    if (v < min) {
        if (v >= 0)
            xws_log(XWS_LOG_ERROR, "%s must be at least %lld", key, min);
        return -1;
    }
    return v;
}

/* Raises the soft limit of open files to the hard one (connections are files); a failure is only reported. */
static void s_raise_nofile(size_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        xws_log(XWS_LOG_ERROR, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            xws_log(XWS_LOG_ERROR, "cannot raise the open files limit from %llu to %llu: %s", (unsigned long long)was,
                    (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)max_connections + 64 > (unsigned long long)rl.rlim_cur)
        xws_log(XWS_LOG_WARN,
                "max_connections = %zu is close to or above the open files limit (%llu): connections beyond "
                "the limit wait in the backlog",
                max_connections, (unsigned long long)rl.rlim_cur);
}

static const xws_cli_opt_t s_opts[] = {
    {'c', "config", "FILE",
     "settings file (default: $XWS_CONFIG, else built-in defaults); every key can be overridden by the environment "
     "variable XWS_<KEY>"},
    {0, "check-config", NULL, "check the settings (file and environment) and exit: 0 when valid, 2 otherwise"},
    {0},
};

static const xws_cli_t s_cli = {
    "xws-gateway", "[OPTION]...",
    "The HTTPS gateway of XWS: serves the json.php web services on listen (TLS, HTTP/1.1 and HTTP/2), authenticates "
    "and authorises each request, and hands it to a worker of its service over ZeroMQ (worker_endpoints); internal "
    "consumers reach the same services on internal_endpoint.",
    s_opts, "Exit status: 0 after a clean stop (SIGTERM or SIGINT), 1 or 2 when it cannot start.\n"};

int main(int argc, char **argv)
{
    const char *cfgpath = NULL, *arg;
    int opt, state = 0;
    int check_only = 0;
    while ((opt = xws_cli_next(&s_cli, argc, argv, &state, &arg)) != -1) {
        if (opt == 'c')
            cfgpath = arg;
        else if (opt == 0x101)
            check_only = 1;
    }
    if (state != argc)
        return xws_cli_usage_error(&s_cli, "unexpected argument '%s'", argv[state]);

    signal(SIGPIPE, SIG_IGN);
    /* the ZeroMQ ipc sockets and the log files are for this user only, whatever the caller's
     * umask (a group-connectable worker endpoint would accept any local worker) */
    umask(077);
    /* long answers (lists of thousands of records) are converted in buffers of megabytes: keep
     * them in the heap for reuse rather than a fresh zeroed mapping for each one */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    zsys_handler_set(NULL); /* SIGINT/SIGTERM are ours */
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    xws_log_set_program("xws-gateway");
    xws_config_t *cfg = xws_config_load(cfgpath);
    if (cfg == NULL)
        return 2;
    if (xws_log_set_format(xws_config_get(cfg, "log_format", "text")) != 0) {
        xws_log(XWS_LOG_ERROR, "log_format must be text or json");
        xws_config_destroy(&cfg);
        return 2;
    }
    gw_app_t *app = &g.app;
    const char *run_dir = xws_config_get(cfg, "run_dir", "./run");
    const char *listen_on = xws_config_get(cfg, "listen", "127.0.0.1:8443");
    const char *data_dir = xws_config_get(cfg, "data_dir", "${run_dir}/data");
    const char *tls_cert = xws_config_get(cfg, "tls_cert", "");
    const char *tls_key = xws_config_get(cfg, "tls_key", "");
    const char *tls_ciphers = xws_config_get(cfg, "tls_ciphers", "");
    const char *endpoints = xws_config_get(cfg, "worker_endpoints", "ipc://${run_dir}/workers.ipc");
    const char *internal_ep = xws_config_get(cfg, "internal_endpoint", "ipc://${run_dir}/internal.ipc");
    const char *curve_secret = xws_config_get(cfg, "curve_secret_key", "");
    const char *curve_clients = xws_config_get(cfg, "curve_clients_dir", "");
    const char *curve_workers = xws_config_get(cfg, "curve_workers_dir", "");
    const char *access_log = xws_config_get(cfg, "access_log", "-");
    long long deadline_ms = s_setting(cfg, "deadline_ms", 5000, 1);
    long long max_body = s_setting(cfg, "max_body", 1048576, 0);
    long long max_query = s_setting(cfg, "max_query", 8192, 0);
    long long queue_max = s_setting(cfg, "queue_max", 10000, 0);
    long long queue_max_bytes = s_setting(cfg, "queue_max_bytes", 64ll << 20, 0);
    long long heartbeat_ms = s_setting(cfg, "heartbeat_ms", 1000, 10);
    long long expiry_ms = s_setting(cfg, "expiry_ms", 3000, 10);
    long long refresh_ms = s_setting(cfg, "accounts_refresh_ms", 1000, 10);
    long long max_connections = s_setting(cfg, "max_connections", 4096, 1);
    long long read_timeout_ms = s_setting(cfg, "request_read_timeout_ms", 10000, 100);
    long long cache_bytes = s_setting(cfg, "reply_cache_bytes", 64ll << 20, 0);
    const char *insecure = xws_config_get(cfg, "worker_endpoint_insecure", "no");
    if (deadline_ms < 0 || max_body < 0 || max_query < 0 || queue_max < 0 || queue_max_bytes < 0 || heartbeat_ms < 0 ||
        expiry_ms < 0 || refresh_ms < 0 || max_connections < 0 || read_timeout_ms < 0 || cache_bytes < 0) {
        xws_config_destroy(&cfg);
        return 2;
    }
    if (expiry_ms <= heartbeat_ms) {
        xws_log(XWS_LOG_ERROR,
                "expiry_ms (%lld) must be greater than heartbeat_ms (%lld), or every worker expires between "
                "two heartbeats",
                expiry_ms, heartbeat_ms);
        xws_config_destroy(&cfg);
        return 2;
    }
    if (strcmp(insecure, "yes") != 0 && strcmp(insecure, "no") != 0) {
        xws_log(XWS_LOG_ERROR, "worker_endpoint_insecure must be yes or no");
        xws_config_destroy(&cfg);
        return 2;
    }
    if (max_body > (1ll << 30)) {
        xws_log(XWS_LOG_ERROR, "max_body above 1 GiB is not supported (the body is held in memory)");
        xws_config_destroy(&cfg);
        return 2;
    }
    /* the gateway binds the first worker endpoint */
    char worker_ep[1024];
    size_t eplen = strcspn(endpoints, ",");
    while (eplen > 0 && endpoints[eplen - 1] == ' ')
        eplen--;
    while (*endpoints == ' ')
        endpoints++, eplen--;
    if (eplen == 0 || eplen >= sizeof(worker_ep)) {
        xws_log(XWS_LOG_ERROR, "worker_endpoints is empty or too long");
        xws_config_destroy(&cfg);
        return 2;
    }
    memcpy(worker_ep, endpoints, eplen);
    worker_ep[eplen] = '\0';
    if (s_check_curve(curve_secret, curve_workers, curve_clients) != 0) {
        xws_config_destroy(&cfg);
        return 2;
    }
    /* any peer that can connect to the worker endpoint can register as a worker and receive requests, password checks included */
    if (!gw_endpoint_is_local(worker_ep) && curve_workers[0] == '\0' && strcmp(insecure, "yes") != 0) {
        xws_log(XWS_LOG_ERROR,
                "the worker endpoint %s is reachable beyond this host: any peer that can connect to it can register "
                "as a worker and receive requests, password checks included. Set curve_secret_key and "
                "curve_workers_dir (CURVE keys), use ipc:// or a loopback address, or set worker_endpoint_insecure = yes "
                "if only trusted hosts can reach it (a private network)",
                worker_ep);
        xws_config_destroy(&cfg);
        return 2;
    }
    if (check_only) {
        xws_config_destroy(&cfg);
        printf("xws-gateway: the settings are valid\n");
        return 0;
    }
    g.max_connections = (size_t)max_connections;
    s_raise_nofile(g.max_connections);
    if (s_mkdirs(run_dir) != 0) {
        xws_config_destroy(&cfg);
        return 1;
    }

    app->deadline_ms = (uint64_t)deadline_ms;
    app->accounts_refresh_ms = (uint64_t)refresh_ms;
    app->max_body = (size_t)max_body;
    app->max_query = (size_t)max_query;
    unsigned char inst[8];
    if (RAND_bytes(inst, sizeof(inst)) != 1)
        abort();
    for (int i = 0; i < 8; i++)
        snprintf(app->instance + 2 * i, 3, "%02x", inst[i]);

    gw_guard_init();
    h2o_config_init(&app->config);
    /*
     * h2o refuses bodies above max_request_entity_size itself (over HTTP/2 with a stream reset, not
     * a status), so set it well above max_body: the handler answers 413 with the JSON error to any
     * body up to this bound, on both protocols.
     */
    app->config.max_request_entity_size = gw_msg_entity_limit((size_t)max_body);
    app->config.server_name = h2o_iovec_init(H2O_STRLIT("xws-gateway"));
    app->config.http1.req_timeout = (uint64_t)read_timeout_ms; /* HTTP/2: gw_conns */
    h2o_hostconf_t *host = h2o_config_register_host(&app->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    gw_http_register(app, host);

    app->loop = h2o_evloop_create();
    h2o_context_init(&app->ctx, app->loop, &app->config);
    app->conns = gw_conns_new(app->loop, (uint64_t)read_timeout_ms);
    h2o_timeout_init(app->loop, &app->request_timeout, (uint64_t)deadline_ms);
    app->accept_ctx.ctx = &app->ctx;
    app->accept_ctx.hosts = app->config.hosts;
    int rc = 1;
    if ((app->accept_ctx.ssl_ctx = gw_tls_new(tls_cert, tls_key, data_dir, tls_ciphers)) == NULL)
        goto out;
    app->metrics = gw_metrics_new(gw_app_unix_ms());
    app->cache = gw_cache_new((size_t)cache_bytes);
    if ((app->accounts = gw_accounts_new()) == NULL || (app->backoff = gw_backoff_new()) == NULL ||
        (app->log = gw_log_new(app->loop, access_log)) == NULL)
        goto out;
    /* the CURVE guard first: a CURVE socket without its ZAP handler would accept any key */
    if ((curve_workers[0] != '\0' || curve_clients[0] != '\0') && (app->zap = gw_zap_new()) == NULL)
        goto out;
    gw_broker_opts_t bopts = {
        worker_ep, (uint64_t)deadline_ms, (uint64_t)heartbeat_ms, (uint64_t)expiry_ms, (size_t)queue_max, (size_t)queue_max_bytes,
        NULL,      curve_secret,          curve_workers};
    if (curve_workers[0] != '\0')
        bopts.zap = app->zap;
    const char *services[16];
    int nservices = gw_route_services(services, sizeof(services) / sizeof(services[0]) - 1);
    if (nservices < 0)
        abort(); /* the table names more services than this room: a build mistake */
    /* password checks: a queue and workers of their own, never routed from HTTP (gw_verify.h) */
    services[nservices] = XWS_SERVICE_VERIFY;
    services[nservices + 1] = NULL;
    if ((app->broker = gw_broker_new(app->loop, &bopts, services)) == NULL)
        goto out;
    app->refresh = gw_refresh_new(app);
    app->verifier = gw_verifier_new(app);
    if ((app->internal = gw_internal_new(app, internal_ep, curve_secret, curve_clients)) == NULL)
        goto out;
    /* ipc sockets are the owner's only (umask 077) unless local consumers of the group are
     * meant to reach them (systemd: a provisioning service running as another user in group xws) */
    const char *group_access = xws_config_get(cfg, "ipc_group_access", "no");
    if (strcmp(group_access, "yes") == 0) {
        gw_endpoint_share(worker_ep);
        gw_endpoint_share(internal_ep);
    } else if (strcmp(group_access, "no") != 0) {
        xws_log(XWS_LOG_ERROR, "ipc_group_access must be yes or no, not '%s'", group_access);
        goto out;
    }
    int fd = s_listen(listen_on);
    if (fd < 0)
        goto out;
    g.listener = h2o_evloop_socket_create(app->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_timeout_init(app->loop, &g.accept_pause_timeout, ACCEPT_PAUSE_MS);
    g.accept_pause.cb = s_on_accept_pause_end;
    s_listener_update();
    xws_log(XWS_LOG_INFO, "instance %s; workers on %s, internal consumers on %s", app->instance, worker_ep, internal_ep);

    uint64_t tick_ms = (uint64_t)heartbeat_ms / 4;
    if (tick_ms > 100)
        tick_ms = 100;
    if (tick_ms < 5)
        tick_ms = 5;
    h2o_timeout_init(app->loop, &g.tick_timeout, tick_ms);
    g.tick.cb = s_on_tick;
    h2o_timeout_link(app->loop, &g.tick_timeout, &g.tick);
    gw_refresh_now(app->refresh);
    /* systemd Type=notify: ready once listening and bound to the workers' endpoint */
    g.watchdog_ms = xws_watchdog_interval_ms();
    g.watchdog_at = h2o_now(app->loop);
    xws_notify("READY=1");

    while (!g.stop)
        if (h2o_evloop_run(app->loop, INT32_MAX) != 0 && errno != EINTR) {
            xws_log(XWS_LOG_ERROR, "event loop failure: %s", strerror(errno));
            break;
        }

    /* stop: no new connections, finish what is in flight (until the deadline), then say goodbye to the workers */
    xws_log(XWS_LOG_INFO, "stopping; %zu request(s) in flight", app->nrequests + gw_internal_pending(app->internal));
    app->stopping = 1;
    xws_notify("STOPPING=1");
    s_listener_update(); /* stops reading it */
    h2o_socket_close(g.listener);
    g.listener = NULL;
    h2o_context_request_shutdown(&app->ctx);
    gw_refresh_stop(app->refresh);
    uint64_t until = h2o_now(app->loop) + app->deadline_ms + 200;
    while ((app->nrequests > 0 || gw_internal_pending(app->internal) > 0) && h2o_now(app->loop) < until)
        if (h2o_evloop_run(app->loop, 50) != 0 && errno != EINTR)
            break;
    if (app->nrequests > 0) {
        char state[512];
        gw_broker_describe(app->broker, state, sizeof(state));
        xws_log(XWS_LOG_WARN, "%zu request(s) still open at exit (%s)", app->nrequests, state);
    }
    rc = 0;
out:
    if (h2o_timeout_is_linked(&g.tick))
        h2o_timeout_unlink(&g.tick);
    if (h2o_timeout_is_linked(&g.accept_pause))
        h2o_timeout_unlink(&g.accept_pause);
    if (g.listener != NULL) {
        if (g.listening)
            h2o_socket_read_stop(g.listener);
        h2o_socket_close(g.listener);
    }
    gw_internal_destroy(&app->internal);
    gw_verifier_destroy(&app->verifier);
    gw_refresh_destroy(&app->refresh);
    gw_broker_destroy(&app->broker); /* sends DISCONNECT to every worker */
    gw_zap_destroy(&app->zap);       /* after the sockets it guards */
    gw_conns_destroy(&app->conns);
    gw_log_destroy(&app->log); /* writes the lines still buffered: the last requests of a SIGTERM stop included */
    gw_accounts_destroy(&app->accounts);
    gw_backoff_destroy(&app->backoff);
    gw_metrics_destroy(&app->metrics);
    gw_cache_destroy(&app->cache);
    if (app->accept_ctx.ssl_ctx != NULL)
        SSL_CTX_free(app->accept_ctx.ssl_ctx);
    app->accept_ctx.ssl_ctx = NULL;
    xws_config_destroy(&cfg);
    xws_log(XWS_LOG_INFO, "stopped");
    /* the h2o context and loop are left to the process exit: connections that are still open may hold them */
    return rc;
}
