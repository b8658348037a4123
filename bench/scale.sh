#!/usr/bin/env bash
# 100,000 concurrent connections across six instances joined by Redis, on one machine,
# still delivering: six hubs (one shard each), six bench processes holding ~16,700 idle
# subscribed connections each (one process may hold 20,000 files here), and, while they
# are held, a fan-out whose publishers are on the first instance and subscribers on the
# last (every delivery crosses Redis).
#
#   cargo build --release --workspace && bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
N=${N:-100000}
HUBS=6
PER=$(( (N + HUBS - 1) / HUBS ))
REDIS_PORT=$((30000 + RANDOM % 10000))
redis-server --port $REDIS_PORT --save '' --appendonly no >/dev/null 2>&1 &
REDIS=$!
PIDS=()
trap 'kill ${PIDS[@]} $REDIS 2>/dev/null || true' EXIT
sleep 0.5
for i in $(seq 1 $HUBS); do
  RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$((18500 + i)) RINGHUB_ADMIN_LISTEN=127.0.0.1:$((19500 + i)) \
  RINGHUB_SHARDS=1 RINGHUB_INSTANCE_ID=scale-$i RINGHUB_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/ \
  RINGHUB_PING_INTERVAL=60s $BIN/ringhub >/dev/null 2>&1 &
  PIDS+=($!)
done
sleep 2
HOLD=()
for i in $(seq 1 $HUBS); do
  $BIN/ringhub-bench --secret bench-secret --addr 127.0.0.1:$((18500 + i)) --users "scale$i" \
    idle --conns $PER --pid ${PIDS[$((i - 1))]} --seconds 40 > /tmp/scale-idle-$i.json 2>/tmp/scale-idle-$i.log &
  HOLD+=($!)
done
# Wait until every connection is open, then deliver across instances while they are held.
for _ in $(seq 1 120); do
  total=0
  for i in $(seq 1 $HUBS); do
    n=$(curl -s http://127.0.0.1:$((19500 + i))/metrics | awk '/^ringhub_connections\{/ {s += $2} END {print s + 0}')
    total=$((total + n))
  done
  [ "$total" -ge "$N" ] && break
  sleep 1
done
echo "connected: $total connections across $HUBS instances"
# Every relay must be connected before the cross-instance fan-out starts.
for i in $(seq 1 $HUBS); do
  for _ in $(seq 1 60); do
    curl -s http://127.0.0.1:$((19500 + i))/metrics | grep -q '^ringhub_relay_up 1' && break
    sleep 0.5
  done
done
for i in $(seq 1 $HUBS); do
  printf 'instance %d: RSS %s KiB\n' $i "$(awk '/VmRSS/ {print $2}' /proc/${PIDS[$((i - 1))]}/status)"
done
grep -E '^(Slab|SUnreclaim):' /proc/meminfo
$BIN/ringhub-bench --secret bench-secret --addr 127.0.0.1:18501 --users scalefan fanout \
  --subs 1000 --channels 10 --pubs 10 --rate 10 --seconds 10 --sub-addr 127.0.0.1:$((18500 + HUBS)) 2>&1 | tail -1
for i in 1 $HUBS; do
  echo "instance $i relay: $(curl -s http://127.0.0.1:$((19500 + i))/metrics | grep -E '^ringhub_(relay|ingress)' | tr '\n' ' ')"
done
wait "${HOLD[@]}"
for i in $(seq 1 $HUBS); do tail -1 /tmp/scale-idle-$i.json; done
