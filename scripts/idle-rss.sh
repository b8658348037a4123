#!/usr/bin/env bash
# Issue 18's idle-memory point: RSS per idle subscribed connection (one subscription
# each), hub on CPU 1, bench on CPU 0.   scripts/idle-rss.sh [conns, default 19000]
# TLS=1: the same over wss:// (a CA and a certificate for localhost made here with openssl).
# DEFLATE=1: the hub with compression on, every connection negotiating permessage-deflate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
PORT=$((20000 + RANDOM % 20000))
TLS_ENV=() TLS_ARGS=()
if [ "${TLS:-}" = 1 ]; then
  DIR=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=rss-ca \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$DIR/hub.key" -out "$DIR/hub.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/hub.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 2 -extfile <(printf 'subjectAltName=DNS:localhost') -out "$DIR/hub.crt" 2>/dev/null
  TLS_ENV=(RINGHUB_TLS_CERT="$DIR/hub.crt" RINGHUB_TLS_KEY="$DIR/hub.key")
  TLS_ARGS=(--tls-ca "$DIR/ca.pem")
fi
EXTENSIONS=()
if [ "${DEFLATE:-}" = 1 ]; then
  export RINGHUB_COMPRESSION=true
  EXTENSIONS=(--extensions "permessage-deflate; client_max_window_bits")
fi
env "${TLS_ENV[@]}" RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$PORT RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
  RINGHUB_PING_INTERVAL=25s RINGHUB_DRIVER=${DRIVER:-io_uring} taskset -c 1 "$BIN/ringhub" >/dev/null 2>&1 &
HUB=$!
trap 'kill $HUB 2>/dev/null || true; [ -z "${DIR:-}" ] || rm -rf "$DIR"' EXIT
sleep 1
taskset -c 0 "$BIN/ringhub-bench" --threads 1 --secret bench-secret --addr 127.0.0.1:$PORT --users "i$RANDOM" \
  "${TLS_ARGS[@]}" "${EXTENSIONS[@]}" idle --conns "${1:-19000}" --pid $HUB --seconds 3 2>/dev/null | tail -1
