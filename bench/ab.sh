#!/usr/bin/env bash
# Two builds of ringhub on the same fan-out steps, alternating run by run, so that the
# machine's drift hits both alike: tells a regression from noise near a threshold.
#
#   bench/ab.sh OLD_TREE NEW_TREE [rounds] [rates...]
#
# Each tree must have been built with `cargo build --release --workspace`. Prints one line
# per run: tree, rate per publisher, deliveries/s achieved, delivery P99 ms, lost.
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
RATES=${*:-2000 2500}
for _ in $(seq "$ROUNDS"); do
  for tree in "$OLD" "$NEW"; do
    for rate in $RATES; do
      cd "$tree"
      port=$((20000 + RANDOM % 20000))
      RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$port RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
        RINGHUB_SHARDS=2 RINGHUB_PING_INTERVAL=25s target/release/ringhub >/dev/null 2>&1 &
      pid=$!
      sleep 1
      target/release/ringhub-bench --threads 2 --secret bench-secret --addr 127.0.0.1:$port \
        --users "u$RANDOM" fanout --subs 1000 --channels 10 --pubs 10 --rate "$rate" --seconds 8 \
        2>/dev/null | tail -1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(sys.argv[1], sys.argv[2], round(r["achieved_per_s"]), r["latency_ms"]["p99"], r["lost"])' "$tree" "$rate"
      kill $pid; wait $pid 2>/dev/null || true
    done
  done
done
