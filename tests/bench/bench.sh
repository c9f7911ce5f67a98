#!/usr/bin/env bash
# bench.sh - XWS against the Debian h2o static server, measured in the same run.
#
# Builds the Release binaries into $BUILD, starts Debian's h2o (1 thread) serving the bytes of one
# XWS answer as a static file over the same kind of TLS, then, for each access-log mode in
# LOG_MODES, starts a complete XWS instance (xws-launch: private Redis, workers, gateway) in a
# fresh run directory, creates one entity, and runs REPS repetitions of, alternating XWS and h2o
# (GET act=view&id=N with Basic credentials against the static file):
#   h1-c64   wrk -t2 -c64 -d$DUR --latency          HTTPS HTTP/1.1 keep-alive throughput
#   h2-c16   h2load -c16 -m16 -D $DUR                HTTPS HTTP/2 throughput (no percentiles)
#   h1-seq   wrk -t1 -c1 -d$DUR --latency            one connection, strictly sequential: latency
#            With PIN=1 the servers (every XWS process, or h2o) run on CPU 0 and wrk on CPU 1 for
#            this test only: unpinned ping-pong results on this kind of VM are bimodal.
#   sweep    wrk -t(min 2,c) -c$c -d$DUR_SWEEP --latency for c in CONNS: req/s and p99 per count
# Around every run it reads utime+stime (all threads) from /proc/<pid>/stat of every server
# process (xws-gateway, each worker kind, redis-server; h2o) and divides the difference by the
# requests served: CPU µs per request per process kind, the XWS total and its ratio to h2o's.
# It also records the client's CPU per request (wrk/h2load, from `times`) and the machine-wide busy
# and steal time (/proc/stat), from which the report derives the CPU taken by other processes
# during each run ("noise" line): on a shared machine, figures taken beside another load mislead.
#
# Access log: "off" runs with access_log=off, like the h2o reference (which has no access log);
# "on" writes it to <run dir>/access.log (XWS_ACCESS_LOG, read by the gateway). That file is
# counted and emptied after each run so that it does not fill /tmp.
#
# Output: progress lines and the tables (medians of REPS runs; ratios are XWS ÷ h2o, so above 1
# is worse for latency and CPU and better for req/s) on standard output, and in $OUT:
#   results.json   every run and every median, the machine-readable form of the tables
#   table.txt      the tables;  runs.tsv  one line per run;  raw/  the client output of each run
#   sweep.png      req/s and p99 against connections, XWS (each log mode) and h2o (gnuplot)
# Everything listens on 127.0.0.1 only, every load is bounded in time (and by timeout), and
# everything started here is stopped at the end (a SIGTERM takes effect when the current run
# ends). Takes about 12 minutes with the defaults, 2 with QUICK=1.
#
# Environment:
#   REPS (3)            repetitions; every figure is the median of REPS runs
#   DUR (10)            seconds per h1-c64, h2-c16 and h1-seq run
#   DUR_SWEEP (3)       seconds per sweep point;  CONNS ("1 4 16 64 256") the sweep's counts
#   WORKERS (1)         instances of each worker service (xws-launch --workers)
#   CREDIT (unset)      requests one worker accepts at once (XWS_WORKER_CREDIT; default 1)
#   LOG_MODES ("off on") the access-log modes to run, in order
#   PIN (1)             pin servers/client for h1-seq (0: let the kernel place them)
#   OUT                 results directory (default: a fresh /tmp/xws-bench-out-XXXXXX)
#   BUILD               build directory (default <project>/build)
#   PAUSE (1)           seconds of rest between two runs
#   QUICK=1             smoke run: REPS=1 DUR=3 DUR_SWEEP=2 PAUSE=0.3 (explicit values win)
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$PROJECT/tests/bench
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} DUR=${DUR:-3} DUR_SWEEP=${DUR_SWEEP:-2} PAUSE=${PAUSE:-0.3}
fi
REPS=${REPS:-3}
DUR=${DUR:-10}
DUR_SWEEP=${DUR_SWEEP:-3}
PAUSE=${PAUSE:-1}
CONNS=${CONNS:-1 4 16 64 256}
WORKERS=${WORKERS:-1}
CREDIT=${CREDIT:-}
LOG_MODES=${LOG_MODES:-off on}
PIN=${PIN:-1}
BUILD=${BUILD:-$PROJECT/build}
USER_LOGIN=bench
USER_PASSWORD=bench-password-1

die() {
    echo "bench: $*" >&2
    exit 1
}
for v in REPS DUR DUR_SWEEP WORKERS; do
    case "${!v}" in '' | *[!0-9]* | 0) die "$v must be a positive integer" ;; esac
done
for c in $CONNS; do
    case "$c" in '' | *[!0-9]* | 0) die "CONNS must be positive integers" ;; esac
done
for m in $LOG_MODES; do
    case "$m" in on | off) ;; *) die "LOG_MODES takes on and off" ;; esac
done
for tool in wrk h2load h2o curl openssl python3 taskset; do
    command -v "$tool" >/dev/null || die "$tool is missing (deploy/install-deps.sh)"
done
if [ "$PIN" = 1 ] && [ "$(nproc)" -lt 2 ]; then
    echo "bench: fewer than 2 CPUs: h1-seq runs unpinned"
    PIN=0
fi

if [ -z "${OUT:-}" ]; then
    OUT=$(mktemp -d /tmp/xws-bench-out-XXXXXX)
else
    mkdir -p "$OUT" || die "cannot create $OUT"
    OUT=$(cd "$OUT" && pwd)
fi
mkdir -p "$OUT/raw"
: >"$OUT/runs.tsv"

echo "== build (Release) into $BUILD"
if ! { cmake -S "$PROJECT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j "$(nproc)" >/dev/null; }; then
    die "build failed"
fi

W=$(mktemp -d /tmp/xws-bench-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LAUNCH_PID=""
H2O_PID=""
MODE=""

# stop_xws: SIGTERM to the launcher (it stops gateway, workers, then Redis); after 60 s, SIGKILL
# to whatever of it is left.
stop_xws() {
    local i kids
    [ -n "$LAUNCH_PID" ] || return 0
    kids=$(pgrep -P "$LAUNCH_PID")
    kill -TERM "$LAUNCH_PID" 2>/dev/null
    for ((i = 0; i < 600; i++)); do
        kill -0 "$LAUNCH_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$LAUNCH_PID" 2>/dev/null; then
        echo "bench: xws-launch (pid $LAUNCH_PID) did not stop within 60 s: killing it" >&2
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL "$LAUNCH_PID" $kids 2>/dev/null
    fi
    wait "$LAUNCH_PID" 2>/dev/null
    LAUNCH_PID=""
}

cleanup() {
    trap '' INT TERM
    if [ -n "$H2O_PID" ]; then
        kill -TERM "$H2O_PID" 2>/dev/null
        wait "$H2O_PID" 2>/dev/null
    fi
    stop_xws
    echo "== stopped everything; logs in $W; results in $OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- h2o reference ---------------------------------------------------------------------------------

HPORT=$(free_port)
mkdir -p "$W/www"
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
echo "== starting h2o on 127.0.0.1:$HPORT"
h2o -c "$W/h2o.conf" >"$W/h2o.out" 2>&1 &
H2O_PID=$!
ok=0
for _ in $(seq 1 100); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HPORT/" 2>/dev/null)" != 000 ] && { ok=1; break; }
    kill -0 "$H2O_PID" 2>/dev/null || break
    sleep 0.1
done
[ "$ok" = 1 ] || { cat "$W/h2o.out" "$W/h2o.err" >&2 2>/dev/null; die "h2o did not come up"; }

# ---- XWS ---------------------------------------------------------------------------------------

# start_xws MODE: starts XWS with the access log MODE (on/off) in a fresh run directory, creates
# the entity, and sets XURL, AUTH, HURL (h2o serving the same bytes) and ENTITY_BYTES.
start_xws() {
    local mode=$1 run=$W/run-$1 log=$W/xws-$1.log port code ok=0 id
    port=$(free_port)
    local access=off
    [ "$mode" = on ] && access=$run/access.log
    ACCESS_LOG=$access
    echo "== starting XWS on 127.0.0.1:$port, access log $access (run directory $run)"
    local -a env=(XWS_ACCESS_LOG="$access")
    [ -n "$CREDIT" ] && env+=(XWS_WORKER_CREDIT="$CREDIT")
    env "${env[@]}" "$PROJECT/deploy/xws-launch" --bin-dir "$BUILD/bin" --run-dir "$run" --port "$port" \
        --login "$USER_LOGIN" --password "$USER_PASSWORD" --workers "$WORKERS" >"$log" 2>&1 &
    LAUNCH_PID=$!
    # the launcher prints "XWS is running" once the gateway answers and the bootstrap data are in
    for _ in $(seq 1 600); do
        grep -q 'XWS is running' "$log" 2>/dev/null && { ok=1; break; }
        kill -0 "$LAUNCH_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ "$ok" = 1 ] || { tail -n 30 "$log" >&2; die "XWS did not come up; see $log"; }

    local base=https://127.0.0.1:$port/xivo/configuration/json.php/restricted/manage/entity/
    code=$(curl -sk -u "$USER_LOGIN:$USER_PASSWORD" -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
        --data-binary '{"name":"bench","displayname":"Benchmark Entity","city":"Paris","country":"FR","email":"bench@example.com"}' \
        "$base?act=add")
    id=$(curl -sk -u "$USER_LOGIN:$USER_PASSWORD" "$base?act=search&search=bench" |
        python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin) if e["name"]=="bench"][0])') ||
        die "could not create the entity (add status $code)"
    XURL="$base?act=view&id=$id"
    AUTH="Authorization: Basic $(printf '%s:%s' "$USER_LOGIN" "$USER_PASSWORD" | base64 -w0)"
    # The static reference serves exactly the bytes of the XWS answer.
    curl -sk -H "$AUTH" "$XURL" >"$W/www/entity-$mode.json"
    HURL=https://127.0.0.1:$HPORT/entity-$mode.json
    cmp -s <(curl -sk "$HURL") "$W/www/entity-$mode.json" || die "h2o does not serve the reference file"
    ENTITY_BYTES=$(wc -c <"$W/www/entity-$mode.json")
    echo "== entity $id: $ENTITY_BYTES bytes: $(head -c 100 "$W/www/entity-$mode.json")..."
}

# xws_pids: the server processes of the running instance (children of the launcher named
# xws-* or redis-server; not the sed filters of their output, not the one-shot xws-bootstrap).
xws_pids() {
    local p comm
    for p in $(pgrep -P "$LAUNCH_PID"); do
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        case "$comm" in xws-bootstrap) ;; xws-* | redis-server) printf '%s ' "$p" ;; esac
    done
}

# ---- measurement ---------------------------------------------------------------------------------

HZ=$(getconf CLK_TCK)
# cpu_snapshot PID...: one "pid kind ticks" line per process; ticks = utime+stime of all its
# threads (fields 14 and 15 of /proc/PID/stat, counted after the parenthesised command name).
cpu_snapshot() {
    local p comm t
    for p in "$@"; do
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        t=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null) || continue
        echo "$p $comm $t"
    done
}
# cpu_per_request BEFORE AFTER REQUESTS: "kind=µs;kind=µs..." (CPU per request of each kind).
# A process gone during the run (restarted by the launcher) is left out, with a warning.
cpu_per_request() {
    awk -v hz="$HZ" -v n="$3" '
        FNR == NR { if (NF == 3) { b[$1] = $3; k[$1] = $2 } ; next }
        NF == 3 && ($1 in b) { d[$2] += $3 - b[$1]; seen[$1] = 1 }
        END {
            for (p in b) if (!(p in seen)) lost++
            if (lost) printf "bench: %d server process(es) ended during the run; their CPU is not counted\n", lost > "/dev/stderr"
            s = ""
            for (kind in d) s = s sprintf("%s%s=%.2f", (s == "" ? "" : ";"), kind, n > 0 ? d[kind] / hz * 1e6 / n : 0)
            print (s == "" ? "-" : s)
        }' <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}
# machine_ticks: "total idle+iowait steal" jiffies of all CPUs from /proc/stat (guest time is
# already in user time, so it is not added again)
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9; exit}' /proc/stat; }
# to_ms VALUE: a wrk duration (12.5us, 1.20ms, 2.00s, 1.00m) in milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v == "") { print "-"; exit }
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
        if (f < 0) print "-"; else printf "%.4f\n", n * f
    }'
}

# pin_servers SIDE CPULIST: sets the CPU affinity of every thread of the server processes of SIDE.
pin_servers() {
    local side=$1 cpus=$2 p pids
    if [ "$side" = xws ]; then pids=$(xws_pids); else pids=$H2O_PID; fi
    for p in $pids; do taskset -a -c -p "$cpus" "$p" >/dev/null 2>&1 || echo "bench: could not pin pid $p to CPUs $cpus" >&2; done
}
ALL_CPUS=$(taskset -c -p $$ | awk '{print $NF}') # this script's own CPU list: what the servers get back

# measure TEST SIDE REP CONNS SECONDS CLIENT...: one bounded run of CLIENT against SIDE (xws or
# h2o); appends one line to runs.tsv and prints a progress line.
measure() {
    local test=$1 side=$2 rep=$3 conns=$4 secs=$5
    shift 5
    local pids before after out raw rps reqs bad p50=- p99=- cpu loglines=- stat0 stat1 t0 t1 client machine
    if [ "$side" = xws ]; then pids=$(xws_pids); else pids=$H2O_PID; fi
    raw=$OUT/raw/$MODE-$test-$side-$rep.txt
    stat0=$(machine_ticks)
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2086 # a list of pids
    before=$(cpu_snapshot $pids)
    # `times` in the same subshell: its second line is the CPU time of the client (timeout + it)
    out=$(timeout -k 5 $((secs + 30)) "$@" 2>&1; echo __times__; times)
    # shellcheck disable=SC2086
    after=$(cpu_snapshot $pids)
    t1=$EPOCHREALTIME
    stat1=$(machine_ticks)
    client=$(printf '%s\n' "$out" | sed -n '/^__times__$/,$p' | tail -n1)
    out=$(printf '%s\n' "$out" | sed '/^__times__$/,$d')
    printf '%s\n%s\n' "$*" "$out" >"$raw"
    if [[ "$*" == *wrk\ * ]]; then
        rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
        reqs=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
        bad=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ {n += $5}
            /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
        p50=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "50%" {print $2}')")
        p99=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')")
    else
        rps=$(printf '%s\n' "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
        reqs=$(printf '%s\n' "$out" | awk '/^requests:/ {print $8}')
        bad=$(printf '%s\n' "$out" | awk '/^status codes:/ {n += $7 + $9} /^requests:/ {n += $10 + $12} END {print n + 0}')
    fi
    rps=${rps:-0}
    [[ "$reqs" =~ ^[0-9]+$ ]] || reqs=0
    cpu=$(cpu_per_request "$before" "$after" "$reqs")
    # client CPU µs per request; machine-wide busy and steal % of all CPUs; wall seconds
    client=$(awk -v t="$client" -v n="$reqs" 'BEGIN {
        split(t, a, " "); s = 0
        for (i = 1; i <= 2; i++) { m = a[i]; sub(/m.*/, "", m); x = a[i]; sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); s += m * 60 + x }
        if (n > 0) printf "%.2f", s * 1e6 / n; else print "-" }')
    machine=$(awk -v a="$stat0" -v b="$stat1" -v t0="$t0" -v t1="$t1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); tot = y[1] - x[1]
        if (tot > 0) printf "%.1f\t%.2f\t%.3f", 100 * (tot - (y[2] - x[2])) / tot, 100 * (y[3] - x[3]) / tot, t1 - t0
        else printf "-\t-\t%.3f", t1 - t0 }')
    if [ "$side" = xws ] && [ "$ACCESS_LOG" != off ]; then
        loglines=$(wc -l <"$ACCESS_LOG" 2>/dev/null || echo 0)
        : >"$ACCESS_LOG" # the gateway appends (O_APPEND): emptying it is safe
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$MODE" "$test" "$side" "$rep" "$conns" "$rps" "$reqs" "$bad" "$p50" "$p99" "$cpu" "$loglines" "$client" \
        "$machine" >>"$OUT/runs.tsv"
    printf '   %-3s %-10s %-3s %9s req/s  p50 %7s  p99 %8s ms  err %s  CPU us/req %s client=%s  busy %s%%\n' \
        "$MODE" "$test" "$side" "$rps" "$p50" "$p99" "$bad" "$(printf '%s' "$cpu" | tr ';' ' ')" "$client" \
        "${machine%%$'\t'*}"
    if [ "$bad" != 0 ]; then
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/      | /'
    fi
    sleep "$PAUSE"
}

# seq_run SIDE REP URL [HEADER]: the one-connection latency run, pinned when PIN=1.
seq_run() {
    local side=$1 rep=$2 url=$3
    shift 3
    local -a client=(wrk -t1 -c1 -d"${DUR}s" --latency "$@" "$url")
    if [ "$PIN" = 1 ]; then
        pin_servers "$side" 0
        measure h1-seq "$side" "$rep" 1 "$DUR" taskset -c 1 "${client[@]}"
        pin_servers "$side" "$ALL_CPUS"
    else
        measure h1-seq "$side" "$rep" 1 "$DUR" "${client[@]}"
    fi
}

# ---- runs ----------------------------------------------------------------------------------------

for MODE in $LOG_MODES; do
    start_xws "$MODE"
    for i in $(seq 1 "$REPS"); do
        echo "== access log $MODE: repetition $i/$REPS"
        measure h1-c64 xws "$i" 64 "$DUR" wrk -t2 -c64 -d"${DUR}s" --latency -H "$AUTH" "$XURL"
        measure h1-c64 h2o "$i" 64 "$DUR" wrk -t2 -c64 -d"${DUR}s" --latency "$HURL"
        measure h2-c16 xws "$i" 16 "$DUR" h2load -c16 -m16 -D "$DUR" -H "$AUTH" "$XURL"
        measure h2-c16 h2o "$i" 16 "$DUR" h2load -c16 -m16 -D "$DUR" "$HURL"
        seq_run xws "$i" "$XURL" -H "$AUTH"
        seq_run h2o "$i" "$HURL"
        for c in $CONNS; do
            t=$((c < 2 ? c : 2))
            measure "sweep-c$c" xws "$i" "$c" "$DUR_SWEEP" wrk -t"$t" -c"$c" -d"${DUR_SWEEP}s" --latency -H "$AUTH" "$XURL"
            measure "sweep-c$c" h2o "$i" "$c" "$DUR_SWEEP" wrk -t"$t" -c"$c" -d"${DUR_SWEEP}s" --latency "$HURL"
        done
    done
    stop_xws
done

# ---- report --------------------------------------------------------------------------------------

{
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host\t%s\n' "$(hostname)"
    printf 'cpus\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'commit\t%s\n' "$(git -C "$PROJECT" rev-parse HEAD 2>/dev/null || echo unknown)"
    printf 'reps\t%s\n' "$REPS"
    printf 'dur_s\t%s\n' "$DUR"
    printf 'dur_sweep_s\t%s\n' "$DUR_SWEEP"
    printf 'conns\t%s\n' "$CONNS"
    printf 'workers\t%s\n' "$WORKERS"
    printf 'worker_credit\t%s\n' "${CREDIT:-default}"
    printf 'pin\t%s\n' "$PIN"
    printf 'log_modes\t%s\n' "$LOG_MODES"
    printf 'entity_bytes\t%s\n' "$ENTITY_BYTES"
    printf 'h2o\t%s\n' "$(h2o --version 2>/dev/null | head -n1)"
    printf 'wrk\t%s\n' "$(wrk --version 2>&1 | head -n1 | awk '{print $2}')"
    printf 'h2load\t%s\n' "$(h2load --version 2>/dev/null | head -n1)"
} >"$OUT/meta.tsv"

python3 "$HERE/bench-report.py" "$OUT" | tee "$OUT/table.txt" || die "the report failed (runs in $OUT/runs.tsv)"

if command -v gnuplot >/dev/null; then
    # pngcairo is in Debian's gnuplot-nox; fall back on the libgd png terminal where it is not
    gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 ||
        sed -i 's/^set terminal pngcairo .*/set terminal png size 1200,900/' "$OUT/sweep.gp"
    if gnuplot "$OUT/sweep.gp" 2>"$OUT/gnuplot.err"; then
        echo "== plot: $OUT/sweep.png"
    else
        echo "bench: gnuplot failed (see $OUT/gnuplot.err); no plot"
    fi
else
    echo "bench: gnuplot is not installed (Debian package gnuplot-nox): no plot; data in $OUT/sweep-*.dat"
fi
echo "== results: $OUT/results.json"
