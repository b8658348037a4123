#!/usr/bin/env bash
# Issue 18's idle-memory point: RSS per idle subscribed connection (one subscription
# each), hub on CPU 1, bench on CPU 0.   scripts/idle-rss.sh [conns, default 19000]
# DEFLATE=1: the hub with compression on, every connection negotiating permessage-deflate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
PORT=$((20000 + RANDOM % 20000))
EXTENSIONS=()
if [ "${DEFLATE:-}" = 1 ]; then
  export RINGHUB_COMPRESSION=true
  EXTENSIONS=(--extensions "permessage-deflate; client_max_window_bits")
fi
RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$PORT RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
  RINGHUB_PING_INTERVAL=25s RINGHUB_DRIVER=${DRIVER:-io_uring} taskset -c 1 "$BIN/ringhub" >/dev/null 2>&1 &
HUB=$!
trap 'kill $HUB 2>/dev/null || true' EXIT
sleep 1
taskset -c 0 "$BIN/ringhub-bench" --threads 1 --secret bench-secret --addr 127.0.0.1:$PORT --users "i$RANDOM" "${EXTENSIONS[@]}" \
  idle --conns "${1:-19000}" --pid $HUB --seconds 3 2>/dev/null | tail -1
