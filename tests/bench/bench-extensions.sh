#!/usr/bin/env bash
# bench-extensions.sh - what a free-number search costs: system_management/extensions in a
# context whose user range is 100000-999999 with 10,000 numbers taken by real lines, for
# limit=10 and for the whole answer (about 890,000 numbers), against Debian's h2o serving the
# same bytes as static files over the same TLS, in the same run.
#
# Builds the Release binaries, starts a complete XWS instance (xws-launch: private Redis, one
# worker of each service, the gateway), creates the context through the HTTPS API and adds
# 10,000 sip lines with random distinct numbers in it (8 keep-alive connections). Then, REPS
# times each, alternating XWS and h2o: wrk -t1 -c1 -dDUR on each query. Reports the medians of
# req/s, the answer size, the CPU per query of the extensions worker and of all XWS server
# processes (from /proc), h2o's, and the extensions worker's peak memory (VmHWM, measured once
# before and once after the runs).
#
# Environment: REPS (3), DUR (5 seconds), BUILD (build dir, default build/), OUT (results
# directory: table.txt and results.json; default a new one under /tmp). Loopback only; every run
# is bounded in time; everything started here is stopped at the end.
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DUR=${DUR:-5}
BUILD=${BUILD:-$PROJECT/build}
OUT=${OUT:-$(mktemp -d /tmp/xws-bench-ext-XXXXXX)}
LOGIN=bench
PASSWORD=bench-password-1
mkdir -p "$OUT"

NAME=bench-extensions
NEEDS="xws-extensions xws-ipbx-lines"
# shellcheck source=tests/bench/lib-resource.sh
. "$PROJECT/tests/bench/lib-resource.sh"
bench_build
bench_start

echo "== context 'big' (user range 100000-999999) and 10,000 lines in it"
python3 - "$XPORT" "$LOGIN" "$PASSWORD" <<'PY' || exit 1
import base64, http.client, json, random, ssl, sys, threading
port, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
auth = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (login, password)).encode()).decode(),
        "Content-Type": "application/json"}
root = "/service/ipbx/json.php/restricted"
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
body = {"context": {"name": "big", "entity": "default"},
        "contextnumbers": {"user": [{"numberbeg": "100000", "numberend": "999999"}]}}
c.request("POST", root + "/system_management/context/?act=add", body=json.dumps(body), headers=auth)
r = c.getresponse(); r.read()
if r.status != 200:
    sys.exit("context add: %d" % r.status)
numbers = random.Random(7).sample(range(100000, 1000000), 10000)
errors = []
def work(part):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    for n in part:
        b = {"protocol": {"protocol": "sip", "context": "big"}, "linefeatures": {"number": str(n)}}
        c.request("POST", root + "/pbx_settings/lines/?act=add", body=json.dumps(b), headers=auth)
        r = c.getresponse(); r.read()
        if r.status != 200:
            errors.append(r.status)
ts = [threading.Thread(target=work, args=(numbers[i::8],)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    sys.exit("line adds failed: %r" % errors[:5])
PY

EXT_PID=$(bench_child xws-extensions)
[ -n "$EXT_PID" ] || { echo "bench-extensions: no xws-extensions worker" >&2; exit 1; }
HWM0=$(bench_hwm_kib "$EXT_PID")

: >"$W/runs.txt"
run() { # NAME SIDE URL
    local name=$1 side=$2 url=$3 pids p out
    if [ "$side" = xws ]; then
        pids="$(bench_child xws-gateway) $EXT_PID $(bench_child redis-server)"
    else
        pids=$H2O_PID
    fi
    declare -A t0
    for p in $pids; do t0[$p]=$(bench_ticks "$p"); done
    out=$(timeout -k 5 $((DUR + 60)) wrk -t1 -c1 -d"${DUR}s" --timeout 60s \
        -H "Authorization: Basic $(printf '%s:%s' "$LOGIN" "$PASSWORD" | base64)" "$url" 2>&1)
    local kinds=""
    for p in $pids; do kinds="$kinds $(cat "/proc/$p/comm")=$(($(bench_ticks "$p") - ${t0[$p]}))"; done
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "bench-extensions: $name $side: errors" >&2; fi
    echo "$name $side $(awk '/^Requests\/sec/ {print $2}' <<<"$out") $(awk '/requests in/ {print $1}' <<<"$out")$kinds" |
        tee -a "$W/runs.txt"
}
measure() { # NAME QUERY
    local name=$1 query=$2 url="$ROOT/system_management/extensions/?$2"
    curl -sk -u "$LOGIN:$PASSWORD" "$url" -o "$W/www/$name.json"
    echo "bytes $name $(stat -c %s "$W/www/$name.json")" >>"$W/runs.txt"
    for _ in $(seq 1 "$REPS"); do
        run "$name" xws "$url"
        run "$name" h2o "https://127.0.0.1:$HPORT/$name.json"
    done
}
measure limit-10 "context=big&obj=user&limit=10"
measure full "context=big&obj=user"
HWM1=$(bench_hwm_kib "$EXT_PID")

python3 - "$W/runs.txt" "$OUT" "$HZ" "$HWM0" "$HWM1" "$REPS" "$DUR" <<'PY'
import json, statistics, sys
runs, out, hz, hwm0, hwm1, reps, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
rows, size = {}, {}
for line in open(runs):
    f = line.split()
    if f[0] == "bytes":
        size[f[1]] = int(f[2]); continue
    n = max(int(f[3] or 0), 1)
    cpu = {k: int(v) * 1e6 / hz / n for k, v in (kv.split("=") for kv in f[4:])}
    rows.setdefault((f[0], f[1]), []).append((float(f[2] or 0), cpu))
res = {"extensions_worker_peak_kib_before": hwm0, "extensions_worker_peak_kib_after": hwm1}
lines = ["%-9s %9s %10s %10s %7s %16s %14s %14s" % ("query", "bytes", "XWS q/s", "h2o q/s", "ratio", "worker us/query", "XWS us/query", "h2o us/query")]
for name in ("limit-10", "full"):
    x, h = rows[(name, "xws")], rows[(name, "h2o")]
    rx, rh = statistics.median(v[0] for v in x), statistics.median(v[0] for v in h)
    worker = statistics.median(v[1].get("xws-extensions", 0) for v in x)
    total = statistics.median(sum(v[1].values()) for v in x)
    hcpu = statistics.median(sum(v[1].values()) for v in h)
    res[name] = {"bytes": size[name], "xws_rps": rx, "h2o_rps": rh, "ratio": rx / rh if rh else None,
                 "worker_cpu_us_per_query": worker, "xws_cpu_us_per_query": total, "h2o_cpu_us_per_query": hcpu}
    lines.append("%-9s %9d %10.1f %10.1f %7.3f %16.1f %14.1f %14.1f" % (name, size[name], rx, rh, rx / rh if rh else 0, worker, total, hcpu))
lines.append("extensions worker peak memory (VmHWM): %.1f MiB before the queries, %.1f MiB after" % (hwm0 / 1024, hwm1 / 1024))
lines.append("(medians of %s runs of wrk -t1 -c1 -d%ss; XWS CPU = gateway + extensions worker + Redis)" % (reps, dur))
text = "\n".join(lines)
print(text)
open(out + "/table.txt", "w").write(text + "\n")
json.dump(res, open(out + "/results.json", "w"), indent=1)
PY
