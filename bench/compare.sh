#!/usr/bin/env bash
# ringhub against the baseline hub (tokio + tokio-tungstenite), same machine, same run,
# same bench. Prints one JSON line per measurement and a table of ratios.
#
#   cargo build --release --workspace && bench/compare.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-1}
BIN=target/release
SECRET=bench-secret
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

BENCH_THREADS=${BENCH_THREADS:-2} # one per core: with one, the bench is what a fast hub waits for
PING=25s # both hubs' ping interval; the heartbeat measurement sets 1s
start_hub() { # name port -> pid
  case $1 in
    ringhub) RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$2 RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
               RINGHUB_SHARDS=2 RINGHUB_PING_INTERVAL=$PING $BIN/ringhub >/dev/null 2>&1 & ;;
    baseline) $BIN/baseline-hub --listen 127.0.0.1:$2 --secret $SECRET --threads 2 \
                --ping-interval $PING >/dev/null 2>&1 & ;;
  esac
  echo $!
}

run() { # hub scenario args...
  local hub=$1 name=$2; shift 2
  local port=$((20000 + RANDOM % 20000))
  local pid; pid=$(start_hub "$hub" $port)
  sleep 1
  local args=("$@")
  for i in "${!args[@]}"; do [ "${args[$i]}" = PID ] && args[$i]=$pid; done
  $BIN/ringhub-bench --threads $BENCH_THREADS --secret $SECRET --addr 127.0.0.1:$port --users "$hub$RANDOM" "${args[@]}" 2>/dev/null \
    | tail -1 | sed "s/^{/{\"hub\":\"$hub\",\"name\":\"$name\",\"round\":$round,/" | tee -a "$OUT/results.jsonl"
  kill $pid; wait $pid 2>/dev/null || true
}

# The highest fixed rate a hub keeps up with: stepping up the offered rate until a step fails.
# A step passes when the publishers got out at least 95% of the rate asked for (a hub may
# hold them back through TCP), nothing was lost, no subscriber was closed, and delivery P99
# stayed under 500 ms. Rates are per publisher: 1,000 deliveries/s each.
SUSTAIN_RATES=${SUSTAIN_RATES:-"500 600 700 800 900 1000 1250 1500 2000 2500 3000 3500 4000 4500 5000"}
sustain() { # hub
  local r best=
  for r in $SUSTAIN_RATES; do
    run "$1" "sustain-$r" fanout --subs 1000 --channels 10 --pubs 10 --rate "$r" --seconds 8 >/dev/null
    tail -1 "$OUT/results.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
ok = (r["offered_per_s"] >= 0.95 * r["rate"] * 1000 and r["lost"] == 0 and r["closed"] == 0
      and r["latency_ms"]["p99"] < 500)
print("  %s at %d/s per publisher: offered %.0f, achieved %.0f, P99 %.1f ms: %s" % (r["hub"],
      r["rate"], r["offered_per_s"], r["achieved_per_s"], r["latency_ms"]["p99"], "pass" if ok else "fail"),
      file=sys.stderr)
sys.exit(0 if ok else 1)' || break
    best=$(tail -1 "$OUT/results.jsonl")
  done
  # The step that passed last is the hub's sustained rate for this round.
  [ -z "$best" ] || echo "$best" | sed 's/"name":"sustain-[0-9]*"/"name":"sustained"/' >>"$OUT/results.jsonl"
}

for round in $(seq "$ROUNDS"); do
  for hub in ringhub baseline; do
    run $hub connect connect --conns 10000 --concurrency 1000
    run $hub fanout-max fanout --subs 1000 --channels 10 --pubs 10 --rate max --seconds 10
    run $hub fanout-100k fanout --subs 1000 --channels 10 --pubs 10 --rate 100 --seconds 10
    run $hub idle idle --conns 10000 --pid PID --seconds 5
    PING=1s run $hub heartbeat idle --conns 19000 --pid PID --seconds 10
    sustain $hub
  done
done

python3 - "$OUT/results.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(hub, name, f):
    v = [f(r) for r in rows if r["hub"] == hub and r["name"] == name]
    return statistics.median(v) if v else float("nan")
metrics = [
    ("connect P99 ms (10k, 1000 in flight)", "connect", lambda r: r["connect_ms"]["p99"], "lower"),
    ("  P99 ms until the bench saw TCP established (its own queue)", "connect", lambda r: r["established_ms"]["p99"], "lower"),
    ("  P99 ms from there to welcome", "connect", lambda r: r["upgrade_ms"]["p99"], "lower"),
    ("connections/s", "connect", lambda r: r["conns_per_s"], "higher"),
    ("deliveries/s at --rate max", "fanout-max", lambda r: r["achieved_per_s"], "higher"),
    ("delivery P99 ms at --rate max", "fanout-max", lambda r: r["latency_ms"]["p99"], "lower"),
    ("deliveries/s sustained (no loss, P99 < 500 ms)", "sustained", lambda r: r["achieved_per_s"], "higher"),
    ("  P99 ms at that rate", "sustained", lambda r: r["latency_ms"]["p99"], "lower"),
    ("delivery P99 ms at 100k/s offered", "fanout-100k", lambda r: r["latency_ms"]["p99"], "lower"),
    ("  P50 ms", "fanout-100k", lambda r: r["latency_ms"]["p50"], "lower"),
    ("  read P99 ms (bench's own queueing added)", "fanout-100k", lambda r: r["read_latency_ms"]["p99"], "lower"),
    ("deliveries/s at 100k/s offered", "fanout-100k", lambda r: r["achieved_per_s"], "higher"),
    ("RSS KiB per idle connection", "idle", lambda r: r["kib_per_conn"], "lower"),
    ("hub CPU us per ping (19k conns, 1 s)", "heartbeat", lambda r: r["hub_cpu_us_per_ping"], "lower"),
    ("  of which user space", "heartbeat", lambda r: r["hub_user_us_per_ping"], "lower"),
    ("  of which kernel", "heartbeat", lambda r: r["hub_system_us_per_ping"], "lower"),
]
print("\n| measure | ringhub | baseline | ringhub / baseline |\n|---|---|---|---|")
for label, name, f, better in metrics:
    a, b = med("ringhub", name, f), med("baseline", name, f)
    print(f"| {label} ({better} is better) | {a:,.2f} | {b:,.2f} | {a / b:.2f} |")
PY
