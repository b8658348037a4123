#!/usr/bin/env python3
"""The table bench/compare.sh prints: medians over the rounds of each measurement, per hub,
with ratios of the first hub (ringhub) to each other one.

    compare-table.py results.jsonl ringhub baseline uws
"""
import json
import statistics
import sys

NAMES = {"ringhub": "ringhub", "ringhub-unpaced": "unpaced", "baseline": "baseline", "uws": "uWS"}


def get(r, path):
    for k in path.split("."):
        if not isinstance(r, dict) or r.get(k) is None:
            return None
        r = r[k]
    return r


def rows_of(path):
    rows = []
    for line in open(path):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


# (label, scenario name, mode or None for every mode run, field, "lower"/"higher"/"")
ISSUE_18 = []
for mode in ("shared", "pinned"):
    ISSUE_18 += [
        (f"1k subs / 1 ch at 1 M/s offered, {mode}: P50 ms at arrival", "fanout1m", mode, "latency_ms.p50", "lower"),
        ("  P99 ms at arrival", "fanout1m", mode, "latency_ms.p99", "lower"),
        ("  P50 ms at read", "fanout1m", mode, "read_latency_ms.p50", "lower"),
        ("  P99 ms at read", "fanout1m", mode, "read_latency_ms.p99", "lower"),
        ("  delivered", "fanout1m", mode, "deliveries", "higher"),
        ("  lost (not arrived 3 s after the end)", "fanout1m", mode, "lost", "lower"),
        ("  of which dropped by uWS's maxBackpressure", "fanout1m", mode, "hub_dropped", ""),
        ("  subscribers closed", "fanout1m", mode, "closed", "lower"),
        ("  hub CPU % user", "fanout1m", mode, "hub_cost.user_percent", ""),
        ("  hub CPU % kernel", "fanout1m", mode, "hub_cost.system_percent", ""),
        ("  hub user us per delivery", "fanout1m", mode, "hub_cost.user_us_per_delivery", "lower"),
        ("  hub kernel us per delivery", "fanout1m", mode, "hub_cost.system_us_per_delivery", "lower"),
        (f"10k subs / 100 ch at max, {mode}: deliveries/s", "fanout100", mode, "achieved_per_s", "higher"),
        ("  hub user us per delivery", "fanout100", mode, "hub_cost.user_us_per_delivery", "lower"),
        ("  hub kernel us per delivery", "fanout100", mode, "hub_cost.system_us_per_delivery", "lower"),
        ("  hub CPU us per delivery", "fanout100", mode, "hub_cost.cpu_us_per_delivery", "lower"),
        ("  P99 ms at arrival", "fanout100", mode, "latency_ms.p99", "lower"),
        ("  lost", "fanout100", mode, "lost", "lower"),
        ("  subscribers closed", "fanout100", mode, "closed", "lower"),
        (f"connect storm 10k at 500 in flight, {mode}: P99 ms", "storm", mode, "connect_ms.p99", "lower"),
        ("  connections/s", "storm", mode, "conns_per_s", "higher"),
        ("  hub user us per connection", "storm", mode, "hub_cpu_us_per_conn.user", "lower"),
        ("  hub kernel us per connection", "storm", mode, "hub_cpu_us_per_conn.system", "lower"),
        (f"idle RSS KiB per subscribed connection (19k), {mode}", "idle19k", mode, "kib_per_conn", "lower"),
        ("  connections subscribed", "idle19k", mode, "conns", "higher"),
    ]
for shape, name in (("1k subs / 1 ch at 1 M/s", "fanout1m-perf"), ("10k subs / 100 ch at max", "fanout100-perf")):
    ISSUE_18 += [
        (f"{shape}, pinned, under perf: system calls per delivery", name, "pinned", "hub_cost.syscalls_per_delivery", "lower"),
        ("  socket sends per delivery", name, "pinned", "hub_cost.sends_per_delivery", "lower"),
        ("  deliveries per send", name, "pinned", "hub_cost.delivery_per_send", "higher"),
        ("  io_uring operations per delivery", name, "pinned", "hub_cost.ring_ops_per_delivery", ""),
        ("  context switches per delivery", name, "pinned", "hub_cost.context_switches_per_delivery", "lower"),
        ("  deliveries/s (slowed by the counting)", name, "pinned", "achieved_per_s", "higher"),
    ]

EARLIER = [
    ("connect P99 ms (10k, 1000 in flight)", "connect", None, "connect_ms.p99", "lower"),
    ("  P99 ms until the bench saw TCP established (its own queue)", "connect", None, "established_ms.p99", "lower"),
    ("  P99 ms from there to welcome", "connect", None, "upgrade_ms.p99", "lower"),
    ("connections/s", "connect", None, "conns_per_s", "higher"),
    ("deliveries/s at --rate max", "fanout-max", None, "achieved_per_s", "higher"),
    ("delivery P99 ms at --rate max", "fanout-max", None, "latency_ms.p99", "lower"),
    ("deliveries/s sustained (no loss, P99 < 500 ms)", "sustained", None, "achieved_per_s", "higher"),
    ("  P99 ms at that rate", "sustained", None, "latency_ms.p99", "lower"),
    ("delivery P99 ms at 100k/s offered", "fanout-100k", None, "latency_ms.p99", "lower"),
    ("  P50 ms", "fanout-100k", None, "latency_ms.p50", "lower"),
    ("  read P99 ms (bench's own queueing added)", "fanout-100k", None, "read_latency_ms.p99", "lower"),
    ("deliveries/s at 100k/s offered", "fanout-100k", None, "achieved_per_s", "higher"),
    ("RSS KiB per idle connection", "idle", None, "kib_per_conn", "lower"),
    ("hub CPU us per ping (19k conns, 1 s)", "heartbeat", None, "hub_cpu_us_per_ping", "lower"),
    ("  of which user space", "heartbeat", None, "hub_user_us_per_ping", "lower"),
    ("  of which kernel", "heartbeat", None, "hub_system_us_per_ping", "lower"),
]


def main():
    rows = rows_of(sys.argv[1])
    hubs = sys.argv[2:] or ["ringhub", "baseline", "uws"]
    first, others = hubs[0], hubs[1:]

    def med(hub, name, mode, field):
        v = [get(r, field) for r in rows
             if r.get("hub") == hub and r.get("name") == name and mode in (None, r.get("mode"))]
        v = [x for x in v if isinstance(x, (int, float))]
        return (statistics.median(v), v) if v else (None, [])

    def cell(m):
        value, values = m
        if value is None:
            return "–"
        each = " / ".join(f"{x:,.3g}" for x in values) if len(values) > 1 else ""
        return f"{value:,.2f}" + (f" ({each})" if each else "")

    head = "| measure | " + " | ".join(NAMES.get(h, h) for h in hubs) + " | " + \
        " | ".join(f"{NAMES.get(first, first)} / {NAMES.get(o, o)}" for o in others) + " |"
    for table in (ISSUE_18, EARLIER):
        present = [t for t in table if any(r.get("name") == t[1] for r in rows)]
        if not present:
            continue
        print("\n" + head)
        print("|---" * (1 + len(hubs) + len(others)) + "|")
        for label, name, mode, field, better in present:
            ms = [med(h, name, mode, field) for h in hubs]
            ratios = []
            for m in ms[1:]:
                a, b = ms[0][0], m[0]
                ratios.append(f"{a / b:.2f}" if a is not None and b else "–")
            tag = f" ({better} is better)" if better else ""
            print(f"| {label}{tag} | " + " | ".join(cell(m) for m in ms) + " | " + " | ".join(ratios) + " |")


main()
