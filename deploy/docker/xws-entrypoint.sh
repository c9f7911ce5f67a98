#!/usr/bin/env bash
# xws-entrypoint - entrypoint of the XWS container image: runs one role per container.
#
# Usage: xws-entrypoint ROLE [ARGS...]
#   gateway [ARGS]        the HTTPS gateway (xws-gateway)
#   <service> [ARGS]      a worker service: config, ipbx-lines, ipbx-users, devices, extensions
#                         (runs xws-<service>; -v adds one log line per request)
#   init                  creates the first web-service account when none exists, then exits
#                         (XWS_ADMIN_LOGIN, default admin; XWS_ADMIN_PASSWORD_FILE, a file
#                         whose first line is the password (a Docker secret), or
#                         XWS_ADMIN_PASSWORD; default random, printed once)
#   bootstrap [ARGS]      loads the bootstrap data set through the gateway's internal endpoint
#                         (xws-bootstrap; retries for XWS_BOOTSTRAP_WAIT seconds, default 60)
#   health-worker         exits 0 when the worker of this container is serving (its
#                         health_file, XWS_HEALTH_FILE, is fresh: loop turning, Redis answering)
#   health                exits 0 when the gateway of this container is ready (GET /status/ready:
#                         every service has a worker that reaches Redis, the accounts are loaded;
#                         the compose health check)
#   account COMMAND ...   xws-config account COMMAND ... (list, add, passwd, ...)
#   call ARGS ...         xws-call ARGS ...
#   help                  this text
#   anything else         run as a command (e.g. bash)
#
# Settings come from $XWS_CONFIG (/etc/xws/xws.conf in the image) and XWS_<KEY> variables.
# The gateway generates a self-signed certificate for 127.0.0.1 in data_dir/tls on its first
# start; set XWS_TLS_HOSTNAME=pbx.example.com to have it made for that name instead (only when
# no certificate exists yet and tls_cert/tls_key are not set).
set -euo pipefail

say() { printf 'xws-entrypoint: %s\n' "$*" >&2; }

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
}

# setting KEY DEFAULT: the value of a setting as the programs see it: $XWS_<KEY>, else the
# "key = value" line of $XWS_CONFIG, else DEFAULT (${run_dir} is not expanded here).
setting() {
    local key=$1 def=$2 var val
    var=XWS_$(printf '%s' "$key" | tr '[:lower:]' '[:upper:]')
    if [ -n "${!var+x}" ]; then
        printf '%s\n' "${!var}"
        return
    fi
    if [ -n "${XWS_CONFIG:-}" ] && [ -r "$XWS_CONFIG" ]; then
        val=$(sed -n "s/^[[:space:]]*${key}[[:space:]]*=[[:space:]]*\\(.*[^[:space:]]\\)[[:space:]]*\$/\\1/p" "$XWS_CONFIG" | tail -n 1)
        if [ -n "$val" ]; then
            printf '%s\n' "$val"
            return
        fi
    fi
    printf '%s\n' "$def"
}

# tls_prepare: with XWS_TLS_HOSTNAME, makes the gateway's self-signed pair for that name before
# the gateway's first start (the gateway would otherwise make one for 127.0.0.1).
tls_prepare() {
    local host=${XWS_TLS_HOSTNAME:-} dir
    [ -n "$host" ] || return 0
    if [ -n "$(setting tls_cert '')" ] || [ -n "$(setting tls_key '')" ]; then
        return 0
    fi
    dir=$(setting data_dir /var/lib/xws)/tls
    if [ -e "$dir/cert.pem" ] || [ -e "$dir/key.pem" ]; then
        return 0
    fi
    mkdir -p "$dir"
    chmod 700 "$dir"
    xws-tls-selfsigned --days 825 "$host" "$dir" >&2
}

# role_init: the first account. Redis may still be starting: the account tool waits 5 s by
# itself; this retries for up to 60 s in all.
role_init() {
    local login=${XWS_ADMIN_LOGIN:-admin} password=${XWS_ADMIN_PASSWORD:-} out i
    local file=${XWS_ADMIN_PASSWORD_FILE:-}
    unset XWS_ADMIN_LOGIN XWS_ADMIN_PASSWORD XWS_ADMIN_PASSWORD_FILE
    if [ -n "$file" ]; then
        # a Docker secret: the first line of the file
        IFS= read -r password <"$file" || [ -n "$password" ] || {
            say "cannot read a password from $file"
            exit 1
        }
        password=${password%$'\r'}
    fi
    # the password goes through standard input, never on a command line
    local -a cmd=(xws-config account ensure-initial --login "$login")
    [ -n "$password" ] && cmd+=(--password-stdin)
    for ((i = 1; ; i++)); do
        if out=$("${cmd[@]}" <<<"$password"); then
            break
        fi
        if [ "$i" -ge 12 ]; then
            say "could not check or create the first account (see the messages above)"
            exit 1
        fi
        say "Redis is not ready yet; trying again in 5 s"
        sleep 5
    done
    if printf '%s\n' "$out" | grep -q '^password: '; then
        say "first start: web-service account 'admin' created"
        # stdout: docker compose logs init; a password that was given is not copied there
        if [ -n "$password" ]; then
            printf '%s\n' "$out" | sed -e 's/^password: .*/password: the one given (XWS_ADMIN_PASSWORD or XWS_ADMIN_PASSWORD_FILE)/' -e 's/^/  /'
        else
            printf '%s\n' "$out" | sed 's/^/  /'
        fi
        say "to change it: docker compose exec config xws-config account passwd admin --password NEW"
    else
        say "web-service accounts already exist: nothing to do"
    fi
}

# role_health: the gateway's readiness (GET /status/ready, no credentials): 200 once every
# service has a worker that reaches Redis and the accounts are loaded; 503 with the reasons.
role_health() {
    local listen port out code
    listen=$(setting listen 127.0.0.1:8443)
    port=${listen##*:}
    out=$(curl -sk -m 3 -w '\n%{http_code}' "https://127.0.0.1:$port/status/ready" || true)
    code=${out##*$'\n'}
    case "$code" in
    200) exit 0 ;;
    *)
        echo "gateway not ready on port $port (${code:-no answer}): ${out%$'\n'*}"
        exit 1
        ;;
    esac
}

# role_health_worker: a worker touches its health_file (XWS_HEALTH_FILE) every 2 s while its loop
# turns and its last probe found Redis answering; older than 15 s (or missing) is unhealthy.
role_health_worker() {
    local file=${XWS_HEALTH_FILE:-} age
    [ -n "$file" ] || { echo "XWS_HEALTH_FILE is not set"; exit 1; }
    [ -f "$file" ] || { echo "no health file yet ($file): not serving, or Redis not answering"; exit 1; }
    age=$(($(date +%s) - $(stat -c %Y "$file")))
    if [ "$age" -gt 15 ]; then
        echo "health file $file is ${age}s old: the worker's loop is stuck or Redis does not answer"
        exit 1
    fi
    exit 0
}

role=${1:-help}
[ $# -gt 0 ] && shift

case "$role" in
help | -h | --help)
    usage
    ;;
gateway)
    tls_prepare
    exec xws-gateway "$@"
    ;;
init)
    role_init
    ;;
bootstrap)
    exec xws-bootstrap -w "${XWS_BOOTSTRAP_WAIT:-60}" "$@"
    ;;
health)
    role_health
    ;;
health-worker)
    role_health_worker
    ;;
account)
    exec xws-config account "$@"
    ;;
call)
    exec xws-call "$@"
    ;;
*)
    # a worker service by its name, else a command
    if [[ "$role" =~ ^[a-z][a-z0-9-]*$ ]] && [ "$role" != gateway ] && command -v "xws-$role" >/dev/null 2>&1; then
        exec "xws-$role" "$@"
    fi
    exec "$role" "$@"
    ;;
esac
