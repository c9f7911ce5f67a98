#!/usr/bin/env bash
# bench-users.sh - what the users resource costs: act=list of 1,000 and of 10,000 users, and
# act=view of a user with 3 lines, a voicemail, 4 dialactions and 5 function keys, against
# Debian's h2o serving the same bytes as static files over the same TLS, in the same run.
#
# Builds the Release binaries, starts a complete XWS instance (xws-launch: private Redis, one
# worker of each service, the gateway, access log on) in a temporary run directory, adds the
# viewed user, then plain users through the HTTPS API (8 keep-alive connections) until the store
# holds 1,000, measures, adds more until it holds 10,000, measures again. Each measurement
# alternates XWS and h2o REPS times, two runs each:
#   c64   wrk -t2 -c64 -dDUR --latency   (keep-alive HTTPS/1.1): req/s, server CPU per request
#   c1    wrk -t1 -c1  -dDUR --latency   one connection: the median latency (p50)
# and reports the medians, the ratios XWS/h2o, and the XWS CPU per request by process (gateway,
# ipbx-users worker, Redis; h2o: its process). The lists of 10,000 run with C10K connections
# (default 64) in the c64 row. The CPU per list is measured apart, on SEQ lists sent one after the
# other (curl): a wrk run of long lists ends with lists still running, whose CPU would count.
#
# Environment: REPS (3), DUR (5 seconds), SEQ (5), C10K (64), BUILD (build dir, default build/), OUT
# (results directory, default a new one under /tmp: table.txt and results.json), ONLY (`view`: the
# view alone, without filling the store and listing). Loopback only;
# every run is bounded in time; everything started here is stopped at the end.
set -uo pipefail

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
DUR=${DUR:-5}
SEQ=${SEQ:-5}
C10K=${C10K:-64}
ONLY=${ONLY:-}
BUILD=${BUILD:-$PROJECT/build}
OUT=${OUT:-$(mktemp -d /tmp/xws-bench-users-XXXXXX)}
LOGIN=bench
PASSWORD=bench-password-1
mkdir -p "$OUT"

NAME=bench-users
NEEDS="xws-ipbx-users xws-ipbx-lines"
ACCESS_LOG=on
# shellcheck source=tests/bench/lib-resource.sh
. "$PROJECT/tests/bench/lib-resource.sh"
bench_build
bench_start
BASE=$ROOT/pbx_settings/users/

# add_view: adds the viewed user (3 sip lines, voicemail, 4 dialactions, 5 function keys); prints its id
add_view() {
    python3 - "$XPORT" "$LOGIN" "$PASSWORD" <<'PY'
import base64, http.client, json, ssl, sys
port, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
auth = "Basic " + base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
da = lambda t, a="", a1="", a2="": {"actiontype": t, "action": a, "actionarg1": a1, "actionarg2": a2}
body = {
    "userfeatures": {"firstname": "Viewed", "lastname": "User", "loginclient": "viewed", "passwdclient": "secret1",
                     "enableclient": True, "mobilephonenumber": "+33600000000", "description": "bench"},
    "linefeatures": {"protocol": ["sip", "sip", "sip"], "context": ["default", "default", "default"]},
    "voicemail": {"mailbox": "9001", "fullname": "Viewed User", "password": "1234", "email": "viewed@example.com"},
    "dialaction": {"noanswer": da("voicemail", "", "9001"), "busy": da("endcall", "busy"),
                   "congestion": da("endcall", "congestion"), "chanunavail": da("application", "voicemailmain")},
    "phonefunckey": {"fknum": ["1", "2", "3", "4", "5"], "type": ["custom", "custom", "extension", "bsfilter", "custom"],
                     "typeval": ["*10", "*11", "100", "1", "*12"], "supervision": ["0", "1", "0", "1", "0"],
                     "label": ["one", "two", "three", "four", "five"]},
}
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
c.request("POST", "/service/ipbx/json.php/restricted/pbx_settings/users/?act=add", body=json.dumps(body),
          headers={"Authorization": auth, "Content-Type": "application/json"})
r = c.getresponse(); text = r.read()
if r.status != 200:
    sys.exit("adding the viewed user: %d %s" % (r.status, text[:300]))
print(json.loads(text))
PY
}

# adds plain users until the store holds n of them (8 keep-alive connections)
fill_to() {
    python3 - "$XPORT" "$LOGIN" "$PASSWORD" "$1" <<'PY'
import base64, http.client, json, ssl, sys, threading
port, login, password, want = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
auth = "Basic " + base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
path = "/service/ipbx/json.php/restricted/pbx_settings/users/"
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
c.request("GET", path + "?act=list", headers={"Authorization": auth}); r = c.getresponse(); body = r.read()
have = len(json.loads(body)) if r.status == 200 else 0
todo = max(0, want - have); errors = []
def work(t, k):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    for i in range(k):
        u = {"firstname": "User%d-%d" % (have + t, i), "lastname": "Bench", "description": "benchmark user"}
        c.request("POST", path + "?act=add", body=json.dumps({"userfeatures": u}),
                  headers={"Authorization": auth, "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        if r.status != 200:
            errors.append(r.status)
ts = [threading.Thread(target=work, args=(t, todo // 8 + (1 if t < todo % 8 else 0))) for t in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    sys.exit("adds failed: %r" % errors[:5])
PY
}

# the pids of the XWS server processes whose CPU counts: gateway, ipbx-users worker, Redis
xws_pids() {
    for p in $(pgrep -P "$LAUNCH_PID"); do
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in
        xws-gateway | xws-ipbx-users | redis-server) echo "$p" ;;
        esac
    done
}

# run NAME SIDE MODE CONNS URL: one wrk run; prints "NAME SIDE MODE req/s requests non2xx p50_ms cpu_us_per_req [kind=us ...]"
run() {
    local name=$1 side=$2 mode=$3 conns=$4 url=$5 pids p out rps n p50 errs threads=2
    [ "$conns" = 1 ] && threads=1
    if [ "$side" = xws ]; then pids=$(xws_pids); else pids=$H2O_PID; fi
    declare -A t0
    for p in $pids; do t0[$p]=$(bench_ticks "$p"); done
    out=$(timeout -k 5 $((DUR + 90)) wrk -t"$threads" -c"$conns" -d"${DUR}s" --timeout 60s --latency \
        -H "Authorization: Basic $(printf '%s:%s' "$LOGIN" "$PASSWORD" | base64)" "$url" 2>&1)
    local kinds=""
    for p in $pids; do kinds="$kinds $(cat "/proc/$p/comm" 2>/dev/null)=$(($(bench_ticks "$p") - ${t0[$p]}))"; done
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "$NAME: $name $side $mode: errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; fi
    local seqcpu=""
    if [ "$mode" = c64 ] && [ "${name#list-}" != "$name" ]; then
        # the CPU of SEQ lists one after the other: a wrk run of long lists ends with lists still running
        local auth=""
        [ "$side" = xws ] && auth="$LOGIN:$PASSWORD"
        [ "$side" = xws ] && pids=$(xws_pids) # a worker restarted during the run has a new pid
        # shellcheck disable=SC2086
        seqcpu=$(bench_cpu_seq "$SEQ" "$url" "$auth" $pids)
    fi
    # shellcheck disable=SC2086
    python3 - "$name" "$side" "$mode" "${rps:-0}" "${n:-0}" "${p50:-0us}" "$HZ" "$seqcpu" "${errs:-0}" $kinds <<'PY'
import re, sys
name, side, mode, rps, n, p50, hz = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], max(int(sys.argv[5]), 1), sys.argv[6], int(sys.argv[7])
m = re.match(r"([0-9.]+)(us|ms|s|m)$", p50)
ms = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)] if m else 0
kinds = {}
for kv in sys.argv[10:]:
    k, v = kv.split("=")
    kinds[k] = kinds.get(k, 0) + int(v) * 1e6 / hz / n
if sys.argv[8]:  # measured on sequential requests
    total, *kv = sys.argv[8].split()
    kinds = {k: float(v) for k, v in (x.split("=") for x in kv)}
print(name, side, mode, rps, n, sys.argv[9], round(ms, 3), round(sum(kinds.values()), 1), " ".join("%s=%.1f" % kv for kv in sorted(kinds.items())))
PY
}

: >"$W/runs.txt"
measure() { # NAME QUERY C64: saves the answer for h2o, then alternates XWS and h2o REPS times
    local name=$1 query=$2 c64=$3 side url
    curl -sk -u "$LOGIN:$PASSWORD" "$BASE?$query" -o "$W/www/$name.json"
    local bytes
    bytes=$(stat -c %s "$W/www/$name.json")
    echo "== $name: $bytes bytes"
    for _ in $(seq 1 "$REPS"); do
        for side in xws h2o; do
            url="$BASE?$query"
            [ "$side" = h2o ] && url="https://127.0.0.1:$HPORT/$name.json"
            run "$name" "$side" c64 "$c64" "$url" | tee -a "$W/runs.txt"
            run "$name" "$side" c1 1 "$url" | tee -a "$W/runs.txt"
        done
    done
    echo "bytes $name $bytes" >>"$W/runs.txt"
}

echo "== adding the viewed user"
ID=$(add_view) || exit 1
if [ "$ONLY" != view ]; then
    echo "== adding users up to 1,000"
    fill_to 1000 || exit 1
fi
measure view "act=view&id=$ID" 64
if [ "$ONLY" != view ]; then
    measure list-1000 "act=list" 64
    echo "== adding users up to 10,000"
    fill_to 10000 || exit 1
    measure list-10000 "act=list" "$C10K"
fi

python3 - "$W/runs.txt" "$OUT" "$REPS" "$DUR" "$C10K" "$ONLY" <<'PY'
import json, statistics, sys
runs, out, reps, dur, c10k, only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
rows, size = {}, {}
for line in open(runs):
    f = line.split()
    if f[0] == "bytes":
        size[f[1]] = int(f[2]); continue
    rows.setdefault((f[0], f[1], f[2]), []).append((float(f[3]), float(f[6]), float(f[7]), dict(kv.split("=") for kv in f[8:] if kv[0] != "="), int(f[5])))
res = {}
for (name, side, mode), v in rows.items():
    kinds = sorted({k for x in v for k in x[3]})
    res.setdefault(name, {}).setdefault(side, {})[mode] = {
        "rps": statistics.median(x[0] for x in v), "p50_ms": statistics.median(x[1] for x in v),
        "cpu_us_per_req": statistics.median(x[2] for x in v), "non_2xx": sum(x[4] for x in v),
        "cpu_us_per_req_by_process": {k: statistics.median(float(x[3].get(k, 0)) for x in v) for k in kinds}}
names = ("view",) if only == "view" else ("view", "list-1000", "list-10000")
lines = ["%-11s %9s %10s %10s %7s %10s %10s %7s %11s %11s" % ("answer", "bytes", "XWS req/s", "h2o req/s", "ratio",
         "XWS p50 ms", "h2o p50 ms", "ratio", "XWS us/req", "h2o us/req")]
for name in names:
    x, h = res[name]["xws"], res[name]["h2o"]
    r = res[name]
    r["bytes"] = size[name]
    r["ratio_rps_c64"] = x["c64"]["rps"] / h["c64"]["rps"] if h["c64"]["rps"] else None
    r["ratio_p50_c1"] = x["c1"]["p50_ms"] / h["c1"]["p50_ms"] if h["c1"]["p50_ms"] else None
    lines.append("%-11s %9d %10.0f %10.0f %7.3f %10.3f %10.3f %7.2f %11.1f %11.1f" % (
        name, size[name], x["c64"]["rps"], h["c64"]["rps"], r["ratio_rps_c64"] or 0, x["c1"]["p50_ms"], h["c1"]["p50_ms"],
        r["ratio_p50_c1"] or 0, x["c64"]["cpu_us_per_req"], h["c64"]["cpu_us_per_req"]))
for name in names:
    bad = res[name]["xws"]["c64"]["non_2xx"] + res[name]["xws"]["c1"]["non_2xx"]
    if bad:
        lines.append("  %-11s XWS answered %d requests with an error status (counted in its req/s): see the run's xws.log" % (name, bad))
for name in names:
    lines.append("  %-11s XWS CPU us/req by process (c64 runs): %s" % (name, ", ".join(
        "%s %.1f" % kv for kv in res[name]["xws"]["c64"]["cpu_us_per_req_by_process"].items())))
if only != "view":
    grow = res["list-10000"]["xws"]["c64"]["cpu_us_per_req"] / res["list-1000"]["xws"]["c64"]["cpu_us_per_req"]
    res["list_cpu_growth_1000_to_10000"] = grow
    lines.append("list of 10,000 / list of 1,000, XWS CPU per request: %.2f (10 = linear)" % grow)
v = res["view"]["ratio_rps_c64"] or 0
lines.append("view at c64: %.3f of h2o's req/s (bar: 0.333) %s" % (v, "met" if v >= 1 / 3 else "NOT met"))
lines.append("(medians of %s runs of wrk -d%ss; req/s and view CPU from -t2 -c64 (lists of 10,000: -c%s), list CPU from"
             " sequential lists, p50 from -t1 -c1; XWS access log on; XWS CPU = gateway + ipbx-users worker + Redis)" % (reps, dur, c10k))
text = "\n".join(lines)
print(text)
open(out + "/table.txt", "w").write(text + "\n")
json.dump(res, open(out + "/results.json", "w"), indent=1)
PY
