# shellcheck shell=bash
# lib-resource.sh - what the per-resource benchmarks (bench-lines.sh, bench-users.sh, bench-extensions.sh) share,
# sourced by them: the Release build, a complete XWS instance and Debian's h2o on loopback, the
# clean-up at exit, and CPU and memory readings from /proc.
#
# The script that sources it sets NAME (for messages), PROJECT, BUILD, OUT, LOGIN, PASSWORD and
# NEEDS (the worker binaries it measures) first, and ACCESS_LOG=on when the gateway is to write
# its access log (to W/access.log; default off); then it calls, in order:
#   bench_build                     builds the Release binaries into BUILD, checks NEEDS
#   bench_start                     starts XWS (XPORT, LAUNCH_PID) and h2o (HPORT, H2O_PID, serving
#                                   W/www) in the work directory W; stops both at exit
#   bench_child PROGRAM             the pid of the launcher's child running PROGRAM
#   bench_ticks PID                 utime+stime of every thread of PID, in clock ticks (HZ per second)
#   bench_hwm_kib PID               the peak resident memory of PID (VmHWM), in KiB
#   bench_cpu_seq K URL AUTH PID... server CPU per request of K sequential requests (lists)

bench_die() {
    echo "$NAME: $*" >&2
    exit 1
}

bench_build() {
    local tool b
    for tool in wrk h2o curl openssl python3; do
        command -v "$tool" >/dev/null || bench_die "$tool is missing (deploy/install-deps.sh)"
    done
    echo "== build (Release) into $BUILD"
    cmake -S "$PROJECT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j "$(nproc)" >/dev/null ||
        bench_die "build failed"
    for b in $NEEDS; do
        [ -x "$BUILD/bin/$b" ] || bench_die "$b was not built"
    done
}

bench_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_cleanup() {
    [ -n "${H2O_PID:-}" ] && kill -TERM "$H2O_PID" 2>/dev/null && wait "$H2O_PID" 2>/dev/null
    if [ -n "${LAUNCH_PID:-}" ]; then
        kill -TERM "$LAUNCH_PID" 2>/dev/null
        for _ in $(seq 1 600); do kill -0 "$LAUNCH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$LAUNCH_PID" 2>/dev/null
        wait "$LAUNCH_PID" 2>/dev/null
    fi
    echo "== stopped everything; logs in $W; results in $OUT"
}

bench_start() {
    W=$(mktemp -d /tmp/xws-bench-run-XXXXXX)
    XPORT=$(bench_free_port)
    HPORT=$(bench_free_port)
    LAUNCH_PID=""
    H2O_PID=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    local access=off
    [ "${ACCESS_LOG:-off}" = on ] && access=$W/access.log
    echo "== starting XWS on 127.0.0.1:$XPORT (access log $access, one worker per service)"
    XWS_ACCESS_LOG=$access "$PROJECT/deploy/xws-launch" --bin-dir "$BUILD/bin" --run-dir "$W/run" --port "$XPORT" \
        --login "$LOGIN" --password "$PASSWORD" --workers "${WORKERS:-1}" >"$W/xws.log" 2>&1 &
    LAUNCH_PID=$!
    ROOT=https://127.0.0.1:$XPORT/service/ipbx/json.php/restricted
    local code=""
    for _ in $(seq 1 300); do
        code=$(curl -sk -o /dev/null -w '%{http_code}' -u "$LOGIN:$PASSWORD" "$ROOT/pbx_settings/lines/?act=list" 2>/dev/null)
        [ "$code" = 200 ] || [ "$code" = 204 ] && break
        sleep 0.2
    done
    [ "$code" = 200 ] || [ "$code" = 204 ] || bench_die "XWS did not start (see $W/xws.log)"

    mkdir -p "$W/www"
    openssl ecparam -name prime256v1 -genkey -noout -out "$W/key.pem" 2>/dev/null
    openssl req -new -x509 -key "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=127.0.0.1 2>/dev/null
    cat >"$W/h2o.conf" <<EOF
user: root
num-threads: 1
pid-file: $W/h2o.pid
error-log: $W/h2o.err
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
    sleep 1
}

bench_child() {
    local p
    for p in $(pgrep -P "$LAUNCH_PID"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"; done
}

bench_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }

bench_hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

HZ=$(getconf CLK_TCK)

# bench_cpu_seq K URL AUTH PID...: the server CPU per request of requests sent one after the
# other (curl; at least K of them and at least 3 seconds' worth, so that clock ticks are fine
# enough), in microseconds: "total kind=us ..." (kind: each process's name). Exact for long
# answers, where a wrk run ends with requests still running whose CPU it would count.
bench_cpu_seq() {
    local k=$1 url=$2 auth=$3 p kinds=""
    shift 3
    local a b
    for _ in $(seq 1 240); do # first, the requests still running from an earlier run end (the CPU stays still)
        a=0 b=0
        for p in "$@"; do a=$((a + $(bench_ticks "$p"))); done
        sleep 0.5
        for p in "$@"; do b=$((b + $(bench_ticks "$p"))); done
        [ "$a" = "$b" ] && break
    done
    declare -A t0
    for p in "$@"; do t0[$p]=$(bench_ticks "$p"); done
    local sent=0 end=$((SECONDS + 3))
    while [ "$sent" -lt "$k" ] || [ "$SECONDS" -lt "$end" ]; do
        if [ -n "$auth" ]; then curl -sk -u "$auth" -o /dev/null "$url"; else curl -sk -o /dev/null "$url"; fi
        sent=$((sent + 1))
    done
    k=$sent
    for p in "$@"; do kinds="$kinds $(cat "/proc/$p/comm" 2>/dev/null)=$(($(bench_ticks "$p") - ${t0[$p]}))"; done
    # shellcheck disable=SC2086
    python3 - "$k" "$HZ" $kinds <<'PY'
import sys
k, hz = int(sys.argv[1]), int(sys.argv[2])
kinds = {}
for kv in sys.argv[3:]:
    name, v = kv.split("=")
    kinds[name] = kinds.get(name, 0) + int(v) * 1e6 / hz / k
print(round(sum(kinds.values()), 1), " ".join("%s=%.1f" % kv for kv in sorted(kinds.items())))
PY
}
