#!/usr/bin/env bash
# Issue 18's profile of one fan-out point, pinned (hub on CPU 1, bench on CPU 0): hub CPU
# (user, kernel) and system calls per delivery, read around the whole bench run.
#
#   scripts/profile-fanout.sh 1m     # 1,000 subscribers on 1 channel, 1,000,000/s offered
#   scripts/profile-fanout.sh 100ch  # 10,000 subscribers over 100 channels, --rate max
#   scripts/profile-fanout.sh 100ch300k  # the same at 30/s per publisher: 300,000/s offered
#   PERF_RECORD=1 scripts/profile-fanout.sh 1m   # also perf record -g (perf.data in $OUT)
# Env: BIN (default target/release), DRIVER (io_uring|epoll), OUT (dir kept for perf.data).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-$(mktemp -d)}
case ${1:-1m} in
  1m) SHAPE=(--subs 1000 --channels 1 --pubs 1 --rate 1000 --seconds ${SECONDS_RUN:-10}) ;;
  100ch300k) SHAPE=(--subs 10000 --channels 100 --pubs 100 --rate 30 --seconds ${SECONDS_RUN:-10}) ;;
  100ch) SHAPE=(--subs 10000 --channels 100 --pubs 100 --rate max --seconds ${SECONDS_RUN:-10}) ;;
  *) echo "usage: $0 1m|100ch|100ch300k" >&2; exit 2 ;;
esac
PORT=$((20000 + RANDOM % 20000))
RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$PORT RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
  RINGHUB_PING_INTERVAL=25s RINGHUB_DRIVER=${DRIVER:-io_uring} taskset -c 1 "$BIN/ringhub" >"$OUT/hub.log" 2>&1 &
HUB=$!
trap 'kill $HUB 2>/dev/null || true' EXIT
sleep 1
EVENTS='syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_futex,io_uring:io_uring_submit_req,io_uring:io_uring_complete,io_uring:io_uring_task_add,context-switches'
perf stat -x, -e "$EVENTS" -p $HUB -o "$OUT/stat.csv" &
STAT=$!
if [ -n "${PERF_RECORD:-}" ]; then
  perf record -g -F 999 -e cpu-clock -p $HUB -o "$OUT/perf.data" 2>/dev/null &
  REC=$!
fi
read -r u0 s0 < <(awk '{sub(/.*\) /,""); print $12, $13}' /proc/$HUB/stat)
taskset -c 0 "$BIN/ringhub-bench" --threads 1 --secret bench-secret --addr 127.0.0.1:$PORT --users "p$RANDOM" \
  fanout "${SHAPE[@]}" 2>"$OUT/bench.err" | tail -1 >"$OUT/bench.json"
read -r u1 s1 < <(awk '{sub(/.*\) /,""); print $12, $13}' /proc/$HUB/stat)
[ -n "${REC:-}" ] && kill -INT $REC && wait $REC 2>/dev/null || true
kill -INT $STAT; wait $STAT 2>/dev/null || true
python3 - "$OUT" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, u0, s0, u1, s1, hz = sys.argv[1], *map(int, sys.argv[2:7])
r = json.load(open(out + "/bench.json"))
d = max(r["deliveries"], 1)
user, sys_ = (u1 - u0) / hz, (s1 - s0) / hz
print(f"deliveries {d:,} (lost {r['lost']}, closed {r['closed']}), offered {r['offered_per_s']:,.0f}/s, achieved {r['achieved_per_s']:,.0f}/s")
print(f"delivery P50 {r['latency_ms']['p50']} ms, P99 {r['latency_ms']['p99']} ms; read P99 {r['read_latency_ms']['p99']} ms")
print(f"hub CPU per delivery: user {user/d*1e6:.3f} us + kernel {sys_/d*1e6:.3f} us = {(user+sys_)/d*1e6:.3f} us")
for line in open(out + "/stat.csv"):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].isdigit() and int(f[0]) > 0:
        print(f"  {f[2]:40s} {int(f[0]):>12,}  per delivery {int(f[0])/d:.4f}")
PY
