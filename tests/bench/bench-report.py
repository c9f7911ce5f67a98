#!/usr/bin/env python3
"""bench-report.py OUT - the report of tests/bench/bench.sh.

Reads OUT/runs.tsv (one line per run: mode, test, side, rep, conns, req/s, requests, errors,
p50 ms, p99 ms, "kind=CPU us per request;...", access-log lines, client CPU us per request,
machine busy %, steal %, wall seconds) and OUT/meta.tsv, and writes:
  OUT/results.json    meta, every run, and per mode and test the medians of XWS and h2o and the
                      ratios XWS / h2o; the access-log cost (on / off) when both modes ran
  OUT/sweep-*.dat     the sweep's medians per series (conns, req/s, p50 ms, p99 ms)
  OUT/sweep.gp        the gnuplot script that draws OUT/sweep.png from them
and prints the tables on standard output.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

OUT = sys.argv[1]

MAIN_TESTS = [
    ("h1-c64", "HTTP/1.1 keep-alive, wrk -t2 -c64"),
    ("h2-c16", "HTTP/2, h2load -c16 -m16"),
    ("h1-seq", "one connection, sequential, wrk -t1 -c1"),
]


def num(s):
    if s in ("", "-"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return round(a / b, 4) if a is not None and b not in (None, 0) else None


def meta_value(v):
    try:
        return int(v)
    except ValueError:
        return v


meta = OrderedDict()
with open(f"{OUT}/meta.tsv") as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = meta_value(v)

runs = []
with open(f"{OUT}/runs.tsv") as f:
    for line in f:
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 16:
            continue
        mode, test, side, rep, conns, rps, reqs, errors, p50, p99, cpu, loglines, client, busy, steal, wall = fields
        cpu_kinds = {}
        if cpu != "-":
            for item in cpu.split(";"):
                kind, _, us = item.partition("=")
                cpu_kinds[kind] = float(us)
        runs.append(
            {
                "mode": mode,
                "test": test,
                "side": side,
                "rep": int(rep),
                "conns": int(conns),
                "rps": num(rps) or 0.0,
                "requests": int(reqs),
                "errors": int(errors) if errors.isdigit() else errors,
                "p50_ms": num(p50),
                "p99_ms": num(p99),
                "cpu_us_per_req": cpu_kinds,
                "cpu_us_per_req_total": round(sum(cpu_kinds.values()), 2) if cpu_kinds else None,
                "access_log_lines": int(loglines) if loglines.isdigit() else None,
                "client_cpu_us_per_req": num(client),
                "machine_busy_pct": num(busy),
                "machine_steal_pct": num(steal),
                "wall_s": num(wall),
            }
        )
        r = runs[-1]
        # CPU of everything else on the machine during the run (other users, the launcher, ...):
        # busy CPU minus the servers' and the client's, in cores
        if r["machine_busy_pct"] is not None and r["wall_s"] and r["client_cpu_us_per_req"] is not None:
            ours = ((r["cpu_us_per_req_total"] or 0) + r["client_cpu_us_per_req"]) * r["requests"] / 1e6 / r["wall_s"]
            r["other_cores"] = round(r["machine_busy_pct"] / 100 * int(meta.get("cpus", 1)) - ours, 3)
        else:
            r["other_cores"] = None

groups = defaultdict(list)
for r in runs:
    groups[(r["mode"], r["test"], r["side"])].append(r)


def summary(rs):
    """Medians over the runs of one (mode, test, side)."""
    if not rs:
        return None
    kinds = sorted({k for r in rs for k in r["cpu_us_per_req"]})
    s = OrderedDict()
    s["runs"] = len(rs)
    s["rps"] = median([r["rps"] for r in rs])
    s["rps_min"] = min(r["rps"] for r in rs)
    s["rps_max"] = max(r["rps"] for r in rs)
    s["p50_ms"] = median([r["p50_ms"] for r in rs])
    s["p99_ms"] = median([r["p99_ms"] for r in rs])
    s["cpu_us_per_req"] = OrderedDict((k, median([r["cpu_us_per_req"].get(k) for r in rs])) for k in kinds)
    s["cpu_us_per_req_total"] = median([r["cpu_us_per_req_total"] for r in rs])
    s["client_cpu_us_per_req"] = median([r["client_cpu_us_per_req"] for r in rs])
    s["machine_busy_pct"] = median([r["machine_busy_pct"] for r in rs])
    s["machine_steal_pct"] = median([r["machine_steal_pct"] for r in rs])
    s["other_cores"] = median([r["other_cores"] for r in rs])
    s["requests"] = sum(r["requests"] for r in rs)
    s["errors"] = sum(r["errors"] for r in rs if isinstance(r["errors"], int))
    lines = [r["access_log_lines"] for r in rs if r["access_log_lines"] is not None]
    if lines:
        s["access_log_lines"] = sum(lines)
    return s


def compare(x, h):
    if x is None or h is None:
        return None
    return OrderedDict(
        (k, ratio(x[f], h[f]))
        for k, f in (("rps", "rps"), ("p50", "p50_ms"), ("p99", "p99_ms"), ("cpu", "cpu_us_per_req_total"))
    )


modes = []
for r in runs:
    if r["mode"] not in modes:
        modes.append(r["mode"])
sweep_tests = sorted({r["test"] for r in runs if r["test"].startswith("sweep-c")}, key=lambda t: int(t[7:]))

results = OrderedDict()
results["meta"] = meta
results["ratios"] = "XWS / h2o: above 1 means XWS serves more req/s, or has a higher latency or CPU cost"
results["modes"] = OrderedDict()
for mode in modes:
    m = OrderedDict()
    m["access_log"] = mode
    m["tests"] = OrderedDict()
    for test, what in MAIN_TESTS:
        x, h = summary(groups[(mode, test, "xws")]), summary(groups[(mode, test, "h2o")])
        if x or h:
            m["tests"][test] = OrderedDict([("what", what), ("xws", x), ("h2o", h), ("ratio", compare(x, h))])
    m["sweep"] = []
    for test in sweep_tests:
        x, h = summary(groups[(mode, test, "xws")]), summary(groups[(mode, test, "h2o")])
        m["sweep"].append(OrderedDict([("conns", int(test[7:])), ("xws", x), ("h2o", h), ("ratio", compare(x, h))]))
    results["modes"][mode] = m

if "on" in results["modes"] and "off" in results["modes"]:
    cost = OrderedDict()
    on, off = results["modes"]["on"], results["modes"]["off"]
    for test, _ in MAIN_TESTS:
        if test in on["tests"] and test in off["tests"] and on["tests"][test]["xws"] and off["tests"][test]["xws"]:
            a, b = on["tests"][test]["xws"], off["tests"][test]["xws"]
            cost[test] = OrderedDict(
                (k, ratio(a[f], b[f]))
                for k, f in (("rps", "rps"), ("p50", "p50_ms"), ("p99", "p99_ms"), ("cpu", "cpu_us_per_req_total"))
            )
    results["access_log_cost_on_over_off"] = cost
results["runs"] = runs

# ---- tables ---------------------------------------------------------------------------------------


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}".replace(",", " ")


def fr(v):
    return "-" if v is None else f"{v:.3f}"


def row(cells, widths):
    return "   " + " ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


print()
print(
    f"== XWS ({meta.get('workers')} instance(s) of each worker, credit {meta.get('worker_credit')}, gateway, Redis) "
    f"against h2o (1 thread, static file of {meta.get('entity_bytes')} bytes); medians of {meta.get('reps')} run(s) "
    f"of {meta.get('dur_s')} s, sweep {meta.get('dur_sweep_s')} s per point; ratios are XWS / h2o"
)
if meta.get("pin") == 1:
    print("   h1-seq is pinned: the servers on CPU 0, wrk on CPU 1")
else:
    print("   h1-seq is not pinned (PIN=0): the kernel places servers and client")
for mode in modes:
    m = results["modes"][mode]
    print()
    print(f"== access log {mode}")
    w = [10, 10, 10, 7, 9, 9, 7, 9, 9, 7, 8]
    print(row(["test", "XWS req/s", "h2o req/s", "ratio", "XWS p50", "h2o p50", "ratio", "XWS p99", "h2o p99", "ratio", "errors"], w))
    print(row(["", "", "", "", "ms", "ms", "", "ms", "ms", "", "XWS/h2o"], w))
    for test, t in m["tests"].items():
        x, h, q = t["xws"] or {}, t["h2o"] or {}, t["ratio"] or {}
        print(
            row(
                [
                    test,
                    fmt(x.get("rps")),
                    fmt(h.get("rps")),
                    fr(q.get("rps")),
                    fmt(x.get("p50_ms"), 3),
                    fmt(h.get("p50_ms"), 3),
                    fr(q.get("p50")),
                    fmt(x.get("p99_ms"), 3),
                    fmt(h.get("p99_ms"), 3),
                    fr(q.get("p99")),
                    f"{x.get('errors', '-')}/{h.get('errors', '-')}",
                ],
                w,
            )
        )
    # CPU per request: the gateway, the config worker, the other workers together, Redis.
    print()
    w = [10, 9, 9, 9, 9, 9, 9, 7, 9, 9]
    print(row(["CPU us/req", "gateway", "config", "other wk", "redis", "XWS all", "h2o", "ratio", "client X", "client h"], w))
    for test, t in list(m["tests"].items()) + [(f"sweep-c{s['conns']}", s) for s in m["sweep"]]:
        x, h, q = t["xws"] or {}, t["h2o"] or {}, t["ratio"] or {}
        k = x.get("cpu_us_per_req", {})
        others = [v for kind, v in k.items() if kind not in ("xws-gateway", "xws-config", "redis-server") and v is not None]
        print(
            row(
                [
                    test,
                    fmt(k.get("xws-gateway"), 1),
                    fmt(k.get("xws-config"), 1),
                    fmt(sum(others), 1) if others else "-",
                    fmt(k.get("redis-server"), 1),
                    fmt(x.get("cpu_us_per_req_total"), 1),
                    fmt(h.get("cpu_us_per_req_total"), 1),
                    fr(q.get("cpu")),
                    fmt(x.get("client_cpu_us_per_req"), 1),
                    fmt(h.get("client_cpu_us_per_req"), 1),
                ],
                w,
            )
        )
    if m["sweep"]:
        print()
        w = [10, 10, 10, 7, 9, 9, 7, 8]
        print(row(["conns", "XWS req/s", "h2o req/s", "ratio", "XWS p99", "h2o p99", "ratio", "errors"], w))
        for s in m["sweep"]:
            x, h, q = s["xws"] or {}, s["h2o"] or {}, s["ratio"] or {}
            print(
                row(
                    [
                        s["conns"],
                        fmt(x.get("rps")),
                        fmt(h.get("rps")),
                        fr(q.get("rps")),
                        fmt(x.get("p99_ms"), 3),
                        fmt(h.get("p99_ms"), 3),
                        fr(q.get("p99")),
                        f"{x.get('errors', '-')}/{h.get('errors', '-')}",
                    ],
                    w,
                )
            )
    lines = [t["xws"].get("access_log_lines") for t in m["tests"].values() if t["xws"]]
    lines += [s["xws"].get("access_log_lines") for s in m["sweep"] if s["xws"]]
    lines = [v for v in lines if v is not None]
    if lines:
        reqs = sum(t["xws"]["requests"] for t in m["tests"].values() if t["xws"]) + sum(
            s["xws"]["requests"] for s in m["sweep"] if s["xws"]
        )
        print(f"   access log: {sum(lines)} lines written for {reqs} requests completed by the clients")
    mode_runs = [r for r in runs if r["mode"] == mode]
    other = [r["other_cores"] for r in mode_runs if r["other_cores"] is not None]
    steal = [r["machine_steal_pct"] for r in mode_runs if r["machine_steal_pct"] is not None]
    if other:
        m["other_cores_median"] = round(median(other), 3)
        m["other_cores_max"] = max(other)
        print(
            f"   noise: CPU used by other processes during the runs: median {median(other):.2f} core(s), "
            f"max {max(other):.2f}; steal median {median(steal) if steal else 0:.2f}% "
            f"(more than ~0.1 core disturbs the figures)"
        )

if results.get("access_log_cost_on_over_off"):
    print()
    print("== access log cost, XWS only (on / off)")
    w = [10, 8, 8, 8, 8]
    print(row(["test", "req/s", "p50", "p99", "CPU/req"], w))
    for test, c in results["access_log_cost_on_over_off"].items():
        print(row([test, fr(c["rps"]), fr(c["p50"]), fr(c["p99"]), fr(c["cpu"])], w))


# ---- plot data ------------------------------------------------------------------------------------

series = []  # (file, title)
for mode in modes:
    pts = [(s["conns"], s["xws"]) for s in results["modes"][mode]["sweep"] if s["xws"]]
    if pts:
        name = f"sweep-xws-log-{mode}.dat"
        with open(f"{OUT}/{name}", "w") as f:
            f.write("# conns rps p50_ms p99_ms\n")
            for c, x in pts:
                f.write(f"{c} {x['rps']} {x['p50_ms'] if x['p50_ms'] is not None else 'NaN'} {x['p99_ms'] if x['p99_ms'] is not None else 'NaN'}\n")
        series.append((name, f"XWS, access log {mode}"))
# h2o: the medians over every h2o sweep run (it is measured in each mode's block, same settings)
pts = []
for test in sweep_tests:
    s = summary([r for mode in modes for r in groups[(mode, test, "h2o")]])
    if s:
        pts.append((int(test[7:]), s))
if pts:
    with open(f"{OUT}/sweep-h2o.dat", "w") as f:
        f.write("# conns rps p50_ms p99_ms\n")
        for c, h in pts:
            f.write(f"{c} {h['rps']} {h['p50_ms'] if h['p50_ms'] is not None else 'NaN'} {h['p99_ms'] if h['p99_ms'] is not None else 'NaN'}\n")
    series.append(("sweep-h2o.dat", "h2o static file"))

if series:
    conns = sorted({c for s in results["modes"].values() for c in [p["conns"] for p in s["sweep"]]})
    xtics = ", ".join(f'"{c}" {c}' for c in conns)
    title = (
        f"XWS act=view vs h2o static, HTTPS HTTP/1.1 keep-alive (wrk, {meta.get('dur_sweep_s')} s per point, "
        f"median of {meta.get('reps')}; {meta.get('workers')} worker(s) per service; {meta.get('cpus')} CPUs; {meta.get('date')})"
    )

    def plot(col):
        return ", \\\n     ".join(f'"{OUT}/{name}" using 1:{col} with linespoints lw 2 pt 7 title "{t}"' for name, t in series)

    with open(f"{OUT}/sweep.gp", "w") as f:
        f.write(
            f"""set terminal pngcairo size 1200,900 enhanced font "DejaVu Sans,11"
set output "{OUT}/sweep.png"
set multiplot layout 2,1 title "{title}" font ",11"
set logscale x 2
set xrange [{conns[0] / 1.4}:{conns[-1] * 1.4}]
set xtics ({xtics})
set xlabel "connections"
set grid
set key outside right top vertical
set logscale y 10
set format y "%.0s%c"
set ylabel "requests per second (log scale)"
set title "throughput"
plot {plot(2)}
set key outside right top vertical
set format y "%g"
set ylabel "p99 latency, ms (log scale)"
set title "99th percentile latency"
plot {plot(4)}
unset multiplot
"""
        )

with open(f"{OUT}/results.json", "w") as f:
    json.dump(results, f, indent=1)
    f.write("\n")
