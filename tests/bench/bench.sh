#!/usr/bin/env bash
# bench.sh - throughput of XWS against the Debian h2o static server, measured in the same run.
#
# Builds the Release binaries (build/), starts a complete XWS instance (xws-launch, private
# Redis, workers, gateway) in a temporary run directory, creates one entity, then alternates:
#   - wrk -t2 -c64 -d10s     HTTPS HTTP/1.1 keep-alive, GET act=view&id=N with Basic credentials
#   - the same wrk command against the Debian h2o binary serving the same bytes as a static file
#   - h2load -c16 -m16 -D 10 HTTP/2, XWS and h2o static
# REPS times each (default 3), and prints the medians, the XWS/h2o ratios and the server CPU time
# per request. Everything listens on 127.0.0.1 only, every run is bounded in time, and everything
# started here is stopped at the end.
#
# Environment: REPS (3), DUR (10 seconds per run), WORKERS (config workers, 1), BUILD (build dir).
# XWS runs with access_log=off, like the h2o reference (which has no access log configured).
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DUR=${DUR:-10}
WORKERS=${WORKERS:-1}
BUILD=${BUILD:-$PROJECT/build}
USER_LOGIN=bench
USER_PASSWORD=bench-password-1

for tool in wrk h2load h2o curl openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (deploy/install-deps.sh)" >&2; exit 1; }
done

echo "== build (Release) into $BUILD"
cmake -S "$PROJECT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j "$(nproc)" >/dev/null ||
    { echo "bench: build failed" >&2; exit 1; }

W=$(mktemp -d /tmp/xws-bench-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
XPORT=$(free_port)
HPORT=$(free_port)
LAUNCH_PID=""
H2O_PID=""

cleanup() {
    [ -n "$H2O_PID" ] && kill -TERM "$H2O_PID" 2>/dev/null && wait "$H2O_PID" 2>/dev/null
    if [ -n "$LAUNCH_PID" ]; then
        kill -TERM "$LAUNCH_PID" 2>/dev/null
        wait "$LAUNCH_PID" 2>/dev/null
    fi
    echo "== stopped everything; logs in $W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting XWS on 127.0.0.1:$XPORT (run directory $W/run)"
XWS_ACCESS_LOG=off "$PROJECT/deploy/xws-launch" --bin-dir "$BUILD/bin" --run-dir "$W/run" --port "$XPORT" \
    --login "$USER_LOGIN" --password "$USER_PASSWORD" --workers "$WORKERS" >"$W/xws.log" 2>&1 &
LAUNCH_PID=$!

XURL_BASE=https://127.0.0.1:$XPORT/xivo/configuration/json.php/restricted/manage/entity/
ok=0
for _ in $(seq 1 300); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' -u "$USER_LOGIN:$USER_PASSWORD" "$XURL_BASE?act=list" 2>/dev/null)
    if [ "$code" = 200 ] || [ "$code" = 204 ]; then ok=1; break; fi
    kill -0 "$LAUNCH_PID" 2>/dev/null || break
    sleep 0.1
done
[ "$ok" -eq 1 ] || { echo "bench: XWS did not come up (last status $code); see $W/xws.log" >&2; tail -n 30 "$W/xws.log" >&2; exit 1; }

curl -sk -u "$USER_LOGIN:$USER_PASSWORD" -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}\n' \
    --data-binary '{"name":"bench","displayname":"Benchmark Entity","city":"Paris","country":"FR","email":"bench@example.com"}' \
    "$XURL_BASE?act=add" >"$W/add.status"
ID=$(curl -sk -u "$USER_LOGIN:$USER_PASSWORD" "$XURL_BASE?act=search&search=bench" |
    python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin) if e["name"]=="bench"][0])') ||
    { echo "bench: could not create the entity (add status $(cat "$W/add.status"))" >&2; exit 1; }
XURL="$XURL_BASE?act=view&id=$ID"
AUTH="Authorization: Basic $(printf '%s:%s' "$USER_LOGIN" "$USER_PASSWORD" | base64 -w0)"

# The static reference serves exactly the bytes of the XWS answer.
mkdir -p "$W/www"
curl -sk -H "$AUTH" "$XURL" >"$W/www/entity.json"
echo "== entity $ID: $(wc -c <"$W/www/entity.json") bytes: $(head -c 120 "$W/www/entity.json")..."

openssl ecparam -name prime256v1 -genkey -noout -out "$W/key.pem"
openssl req -new -x509 -key "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
# h2o drops to "nobody" when started as root unless told otherwise
[ "$(id -u)" -eq 0 ] && echo "user: root" >"$W/h2o.conf"
cat >>"$W/h2o.conf" <<EOF
num-threads: 1
pid-file: $W/h2o.pid
error-log: $W/h2o.err
max-connections: 4096
http2-max-concurrent-requests-per-connection: 256
listen:
  host: 127.0.0.1
  port: $HPORT
  ssl:
    certificate-file: $W/cert.pem
    key-file: $W/key.pem
    minimum-version: TLSv1.2
    ocsp-update-interval: 0
hosts:
  "127.0.0.1":
    paths:
      "/":
        file.dir: $W/www
        file.send-compressed: OFF
EOF
h2o -c "$W/h2o.conf" >"$W/h2o.out" 2>&1 &
H2O_PID=$!
HURL=https://127.0.0.1:$HPORT/entity.json
for _ in $(seq 1 50); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "$HURL")" = 200 ] && break
    sleep 0.1
done
cmp -s <(curl -sk "$HURL") "$W/www/entity.json" || { echo "bench: h2o does not serve the reference file" >&2; exit 1; }

HZ=$(getconf CLK_TCK)
# cpu_ticks PID...: user+system ticks of the processes and their children still running
cpu_ticks() {
    local total=0 p t
    for p in "$@"; do
        t=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
xws_pids() { pgrep -P "$LAUNCH_PID" -d ' ' -f 'xws-|redis-server'; }

declare -A RPS CPU
# run TAG PIDS-FUNCTION CLIENT...: one bounded measurement; records req/s and server CPU µs/req
run() {
    local tag=$1 pidsfn=$2
    shift 2
    local pids c0 c1 out rps reqs bad
    pids=$($pidsfn)
    c0=$(cpu_ticks $pids)
    out=$(timeout $((DUR + 30)) "$@" 2>&1)
    c1=$(cpu_ticks $pids)
    if [[ "$1" == wrk ]]; then
        rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
        reqs=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
        bad=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
        bad=${bad:-0}
    else
        rps=$(printf '%s\n' "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
        reqs=$(printf '%s\n' "$out" | awk '/^requests:/ {print $8}')
        bad=$(printf '%s\n' "$out" | awk '/^status codes:/ {print $7 + $9}')
        local failed
        failed=$(printf '%s\n' "$out" | awk '/^requests:/ {print $10 + $12}')
        bad=$((${bad:-0} + ${failed:-0}))
    fi
    rps=${rps:-0}
    local us=0
    if [ -n "$reqs" ] && [ "$reqs" -gt 0 ] 2>/dev/null; then
        us=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
    fi
    RPS[$tag]="${RPS[$tag]:-} $rps"
    CPU[$tag]="${CPU[$tag]:-} $us"
    printf '   %-10s %12s req/s  server CPU %7s us/req  errors/non-2xx: %s\n' "$tag" "$rps" "$us" "$bad"
    if [ "$bad" != 0 ]; then
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/      | /'
    fi
    sleep 1
}
h2o_pids() { echo "$H2O_PID"; }

for i in $(seq 1 "$REPS"); do
    echo "== repetition $i/$REPS"
    run xws-h1 xws_pids wrk -t2 -c64 -d"${DUR}s" -H "$AUTH" "$XURL"
    run h2o-h1 h2o_pids wrk -t2 -c64 -d"${DUR}s" "$HURL"
    run xws-h2 xws_pids h2load -c16 -m16 -D "$DUR" -H "$AUTH" "$XURL"
    run h2o-h2 h2o_pids h2load -c16 -m16 -D "$DUR" "$HURL"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "== medians of $REPS runs of ${DUR}s (XWS: $WORKERS config worker(s), gateway, Redis; h2o: 1 thread, static file)"
printf '   %-8s %14s %14s %8s %16s %16s\n' test "XWS req/s" "h2o req/s" ratio "XWS CPU us/req" "h2o CPU us/req"
for proto in h1 h2; do
    x=$(echo "${RPS[xws-$proto]}" | median)
    h=$(echo "${RPS[h2o-$proto]}" | median)
    xc=$(echo "${CPU[xws-$proto]}" | median)
    hc=$(echo "${CPU[h2o-$proto]}" | median)
    ratio=$(awk -v x="$x" -v h="$h" 'BEGIN { if (h > 0) printf "%.3f", x / h; else print "n/a" }')
    printf '   %-8s %14s %14s %8s %16s %16s\n' "$proto" "$x" "$h" "$ratio" "$xc" "$hc"
done
