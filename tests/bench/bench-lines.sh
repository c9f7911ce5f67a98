#!/usr/bin/env bash
# bench-lines.sh - what the lines resource costs: act=list of 1,000 and of 10,000 lines, and
# act=view of one line, against Debian's h2o serving the same bytes as static files over the same
# TLS, in the same run.
#
# Builds the Release binaries, starts a complete XWS instance (xws-launch: private Redis, one
# worker of each service, the gateway) in a temporary run directory, adds sip lines through the
# HTTPS API (8 keep-alive connections) until the store holds 1,000, measures, adds more until it
# holds 10,000, measures again. Each measurement alternates XWS and h2o REPS times:
#   wrk -t1 -cC -dDUR   (keep-alive HTTPS/1.1)
# and reports the medians of req/s, the answer size, the server CPU per request (XWS: gateway +
# ipbx-lines worker + Redis, from /proc; h2o: its process), and the ratios. The list of 10,000
# should cost about 10 times the list of 1,000 (linear); the table says what it measured.
# Views run with 4 connections, lists with one (wrk -t1 -c1). The CPU per list is measured apart,
# on SEQ lists sent one after the other (curl): a wrk run of a few long lists ends with one still
# running, whose CPU would count for a list that wrk does not count.
#
# Environment: REPS (3), DUR (5 seconds), SEQ (5), BUILD (build dir, default build/), OUT (results
# directory, default a new one under /tmp: table.txt and results.json). Loopback only; every run
# is bounded in time; everything started here is stopped at the end.
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DUR=${DUR:-5}
SEQ=${SEQ:-5}
BUILD=${BUILD:-$PROJECT/build}
OUT=${OUT:-$(mktemp -d /tmp/xws-bench-lines-XXXXXX)}
LOGIN=bench
PASSWORD=bench-password-1
mkdir -p "$OUT"

NAME=bench-lines
NEEDS=xws-ipbx-lines
# shellcheck source=tests/bench/lib-resource.sh
. "$PROJECT/tests/bench/lib-resource.sh"
bench_build
bench_start
BASE=$ROOT/pbx_settings/lines/

# adds sip lines until the store holds n of them (8 keep-alive connections)
fill_to() {
    python3 - "$XPORT" "$LOGIN" "$PASSWORD" "$1" <<'PY'
import base64, http.client, json, ssl, sys, threading
port, login, password, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
auth = "Basic " + base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
path = "/service/ipbx/json.php/restricted/pbx_settings/lines/"
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
c.request("GET", path + "?act=list", headers={"Authorization": auth}); r = c.getresponse(); body = r.read()
have = len(json.loads(body)) if r.status == 200 else 0
todo = max(0, want - have); errors = []
def work(k):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    for _ in range(k):
        c.request("POST", path + "?act=add", body=json.dumps({"protocol": {"protocol": "sip", "context": "default"}}),
                  headers={"Authorization": auth, "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status != 200:
            errors.append(r.status)
ts = [threading.Thread(target=work, args=(todo // 8 + (1 if i < todo % 8 else 0),)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    sys.exit("adds failed: %r" % errors[:5])
PY
}

# the pids of the XWS server processes whose CPU counts: gateway, ipbx-lines worker, Redis
xws_pids() {
    for p in $(pgrep -P "$LAUNCH_PID"); do
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in
        xws-gateway | xws-ipbx-lines | redis-server) echo "$p" ;;
        esac
    done
}

# run NAME SIDE URL: one wrk run; prints "NAME SIDE req/s requests cpu_us_per_req [kind=us ...]"
run() {
    local name=$1 side=$2 url=$3 pids p out rps n
    if [ "$side" = xws ]; then pids=$(xws_pids); else pids=$H2O_PID; fi
    declare -A t0
    for p in $pids; do t0[$p]=$(bench_ticks "$p"); done
    # lists: one connection, so that the CPU of a list still running when wrk stops is at most one list's
    local conns=4
    case "$name" in list-*) conns=1 ;; esac
    out=$(timeout -k 5 $((DUR + 60)) wrk -t1 -c"$conns" -d"${DUR}s" --timeout 60s \
        -H "Authorization: Basic $(printf '%s:%s' "$LOGIN" "$PASSWORD" | base64)" "$url" 2>&1)
    local kinds=""
    for p in $pids; do kinds="$kinds $(cat "/proc/$p/comm" 2>/dev/null)=$(($(bench_ticks "$p") - ${t0[$p]}))"; done
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "bench-lines: $name $side: errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; fi
    case "$name" in
    list-*) # the CPU of SEQ lists sent one after the other (a wrk run ends with a list still running)
        local auth=""
        [ "$side" = xws ] && auth="$LOGIN:$PASSWORD"
        # shellcheck disable=SC2086
        echo "$name $side ${rps:-0} ${n:-0} $(bench_cpu_seq "$SEQ" "$url" "$auth" $pids)"
        return
        ;;
    esac
    # shellcheck disable=SC2086
    python3 - "$name" "$side" "${rps:-0}" "${n:-0}" "$HZ" $kinds <<'PY'
import sys
name, side, rps, n, hz = sys.argv[1], sys.argv[2], sys.argv[3], max(int(sys.argv[4]), 1), int(sys.argv[5])
kinds = {}
for kv in sys.argv[6:]:
    k, v = kv.split("=")
    kinds[k] = kinds.get(k, 0) + int(v) * 1e6 / hz / n
print(name, side, rps, n, round(sum(kinds.values()), 1), " ".join("%s=%.1f" % kv for kv in sorted(kinds.items())))
PY
}

: >"$W/runs.txt"
measure() { # NAME QUERY: saves the answer for h2o, then alternates XWS and h2o REPS times
    local name=$1 query=$2
    curl -sk -u "$LOGIN:$PASSWORD" "$BASE?$query" -o "$W/www/$name.json"
    local bytes
    bytes=$(stat -c %s "$W/www/$name.json")
    echo "== $name: $bytes bytes"
    for _ in $(seq 1 "$REPS"); do
        run "$name" xws "$BASE?$query" | tee -a "$W/runs.txt"
        run "$name" h2o "https://127.0.0.1:$HPORT/$name.json" | tee -a "$W/runs.txt"
    done
    echo "bytes $name $bytes" >>"$W/runs.txt"
}

echo "== adding 1,000 lines"
fill_to 1000 || exit 1
measure list-1000 "act=list"
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$W/www/list-1000.json")
measure view "act=view&id=$ID"
echo "== adding lines up to 10,000"
fill_to 10000 || exit 1
measure list-10000 "act=list"

python3 - "$W/runs.txt" "$OUT" "$REPS" "$DUR" "$SEQ" <<'PY'
import json, statistics, sys
runs, out, reps, dur, seq = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
rows, size = {}, {}
for line in open(runs):
    f = line.split()
    if f[0] == "bytes":
        size[f[1]] = int(f[2]); continue
    rows.setdefault((f[0], f[1]), []).append((float(f[2]), float(f[4]), dict(kv.split("=") for kv in f[5:])))
res = {}
for (name, side), v in rows.items():
    kinds = sorted({k for x in v for k in x[2]})
    res.setdefault(name, {})[side] = {"rps": statistics.median(x[0] for x in v), "cpu_us_per_req": statistics.median(x[1] for x in v),
                                      "cpu_us_per_req_by_process": {k: statistics.median(float(x[2].get(k, 0)) for x in v) for k in kinds}}
lines = ["%-11s %9s %12s %12s %7s %14s %14s %7s" % ("answer", "bytes", "XWS req/s", "h2o req/s", "ratio", "XWS CPU us/req", "h2o CPU us/req", "ratio")]
for name in ("view", "list-1000", "list-10000"):
    x, h = res[name]["xws"], res[name]["h2o"]
    res[name]["bytes"] = size[name]
    res[name]["ratio_rps"] = x["rps"] / h["rps"] if h["rps"] else None
    res[name]["ratio_cpu"] = x["cpu_us_per_req"] / h["cpu_us_per_req"] if h["cpu_us_per_req"] else None
    lines.append("%-11s %9d %12.0f %12.0f %7.3f %14.1f %14.1f %7.2f" % (name, size[name], x["rps"], h["rps"], res[name]["ratio_rps"] or 0,
                 x["cpu_us_per_req"], h["cpu_us_per_req"], res[name]["ratio_cpu"] or 0))
for name in ("view", "list-1000", "list-10000"):
    lines.append("  %-11s XWS CPU us/req by process: %s" % (name, ", ".join("%s %.1f" % kv for kv in res[name]["xws"]["cpu_us_per_req_by_process"].items())))
grow = res["list-10000"]["xws"]["cpu_us_per_req"] / res["list-1000"]["xws"]["cpu_us_per_req"]
res["list_cpu_growth_1000_to_10000"] = grow
lines.append("list of 10,000 / list of 1,000, XWS CPU per request: %.2f (10 = linear)" % grow)
lines.append("(medians of %s runs of wrk -d%ss, views -c4, lists -c1, list CPU from %s sequential lists; XWS CPU = gateway + ipbx-lines worker + Redis)" % (reps, dur, seq))
text = "\n".join(lines)
print(text)
open(out + "/table.txt", "w").write(text + "\n")
json.dump(res, open(out + "/results.json", "w"), indent=1)
PY
