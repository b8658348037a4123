#!/usr/bin/env bash
# 100,000 concurrent connections across six instances joined by Redis, on one machine,
# still delivering: six hubs (one shard each), six bench processes holding ~16,700 idle
# subscribed connections each (one process may hold 20,000 files here), and, while they
# are held, a fan-out whose publishers are on the first instance and subscribers on the
# last (every delivery crosses Redis).
#
#   cargo build --release --workspace && bench/scale.sh
#
# CLUSTER=1: the instances are joined by a Redis Cluster (three masters, three replicas,
# on this machine) instead of one redis-server. Either way the fan-out reports Redis CPU
# per publication (utime + stime of the redis-server processes, from /proc/<pid>/stat,
# over the relay's publications). FAN overrides the fan-out's options; N the connections
# held (CLUSTER=1 N=6000 for a small run).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-target}/release
N=${N:-100000}
HUBS=6
PER=$(( (N + HUBS - 1) / HUBS ))
FAN=${FAN:---subs 1000 --channels 10 --pubs 10 --rate 10 --seconds 10}
REDIS_PORT=$((30000 + RANDOM % 10000))
REDIS_PIDS=()
PIDS=()
trap 'kill ${PIDS[@]} ${REDIS_PIDS[@]} 2>/dev/null || true; rm -rf /tmp/scale-cluster-$$' EXIT
if [ "${CLUSTER:-0}" = 1 ]; then
  NODES=()
  for k in 0 1 2 3 4 5; do
    port=$((REDIS_PORT + k)); mkdir -p /tmp/scale-cluster-$$/$k
    redis-server --port $port --bind 127.0.0.1 --cluster-enabled yes --cluster-port $((port + 100)) \
      --save '' --appendonly no --repl-diskless-sync-delay 0 --dir /tmp/scale-cluster-$$/$k >/dev/null 2>&1 &
    REDIS_PIDS+=($!); NODES+=(127.0.0.1:$port)
  done
  sleep 0.5
  redis-cli --cluster create "${NODES[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  until redis-cli -p $REDIS_PORT cluster info | grep -q cluster_state:ok; do sleep 0.2; done
  REDIS_ENV="RINGHUB_REDIS_CLUSTER=redis+cluster://$(IFS=,; echo "${NODES[*]}")"
else
  redis-server --port $REDIS_PORT --save '' --appendonly no >/dev/null 2>&1 &
  REDIS_PIDS+=($!)
  REDIS_ENV=RINGHUB_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
fi
sleep 0.5
# CPU ticks (user + system) of the redis-server processes.
redis_ticks() { for p in "${REDIS_PIDS[@]}"; do awk '{print $14 + $15}' /proc/$p/stat; done | awk '{s += $1} END {print s}'; }
published() { curl -s http://127.0.0.1:19501/metrics | awk '/^ringhub_relay_published_total/ {print $2}'; }
for i in $(seq 1 $HUBS); do
  env RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$((18500 + i)) RINGHUB_ADMIN_LISTEN=127.0.0.1:$((19500 + i)) \
  RINGHUB_SHARDS=1 RINGHUB_INSTANCE_ID=scale-$i "$REDIS_ENV" \
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
# Redis' own background CPU (the cluster bus's pings, replication, cron), over 5 s idle.
idle0=$(redis_ticks); sleep 5; idle1=$(redis_ticks)
per_pid() { for p in "${REDIS_PIDS[@]}"; do awk '{print $14 + $15}' /proc/$p/stat; done | tr '\n' ' '; }
each0=$(per_pid)
ticks0=$(redis_ticks); pub0=$(published); t0=$(date +%s.%N)
# shellcheck disable=SC2086
$BIN/ringhub-bench --secret bench-secret --addr 127.0.0.1:18501 --users scalefan fanout \
  $FAN --sub-addr 127.0.0.1:$((18500 + HUBS)) 2>&1 | tail -1
ticks1=$(redis_ticks); pub1=$(published); t1=$(date +%s.%N)
each1=$(per_pid)
# Per process (ticks of 1/CLK_TCK s), with its role: the busiest one is the ceiling.
k=0
for p in "${REDIS_PIDS[@]}"; do
  a=$(echo "$each0" | cut -d' ' -f$((k + 1))); b=$(echo "$each1" | cut -d' ' -f$((k + 1)))
  role=$(redis-cli -p $((REDIS_PORT + k)) info replication | awk -F: '/^role/ {print $2}' | tr -d '\r')
  echo "redis pid $p ($role): $((b - a)) ticks during the fan-out"
  k=$((k + 1))
done
awk -v t=$((ticks1 - ticks0)) -v i=$((idle1 - idle0)) -v n="$pub0" -v m="$pub1" -v s0="$t0" -v s1="$t1" \
  -v hz="$(getconf CLK_TCK)" -v mode="${CLUSTER:-0}" 'BEGIN {
  p = m - n; secs = s1 - s0; net = t / hz - i / hz / 5 * secs
  per = p > 0 ? t / hz * 1e6 / p : 0; per_net = p > 0 ? net * 1e6 / p : 0
  printf "redis (cluster=%s): %.2f CPU s in %.1f s (%.2f of it idle background) for %d publications: %.1f us per publication (%.1f net of background)\n", mode, t / hz, secs, i / hz / 5 * secs, p, per, per_net }'
for i in 1 $HUBS; do
  echo "instance $i relay: $(curl -s http://127.0.0.1:$((19500 + i))/metrics | grep -E '^ringhub_(relay|ingress)' | tr '\n' ' ')"
done
wait "${HOLD[@]}"
for i in $(seq 1 $HUBS); do tail -1 /tmp/scale-idle-$i.json; done
