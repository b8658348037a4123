#!/usr/bin/env bash
# The dashboard and the alerting rules against a real Prometheus (docs/observability.md):
# promtool checks and unit-tests the rules; then two real hubs run (one alone, one with a
# real redis-server and an rpc backend configured, so that the relay and rpc series exist),
# a real Prometheus scrapes both every second, traffic goes through them, and every
# dashboard panel's and every rule's PromQL is evaluated through Prometheus's HTTP API
# (scripts/observability_check.py). Installs Debian's prometheus package when missing.
#
# Uses the ringhub binary of the last `cargo build` ($CARGO_TARGET_DIR or target/), or $RINGHUB_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${RINGHUB_BIN:-${CARGO_TARGET_DIR:-target}/debug/ringhub}"
[ -x "$BIN" ] || { echo "observability-test.sh: $BIN is missing: cargo build first" >&2; exit 1; }

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "observability-test.sh: installing prometheus (Debian)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # The package starts a service where systemd runs; this script starts its own instance.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus >/dev/null
fi

promtool check rules deploy/prometheus/ringhub-alerts.yml
(cd deploy/prometheus && promtool test rules ringhub-alerts.test.yml)

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

KEY="observability-key"
SECRET="observability-secret"
DIGEST=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)

# Starts a hub with the given extra settings and waits for it; sets HUB to "public@admin".
# (Not through $(..): the pid must reach PIDS in this shell, for the cleanup.)
start_hub() {
  local name=$1; shift
  env -i PATH="$PATH" RINGHUB_LISTEN=127.0.0.1:0 RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
    RINGHUB_SHARDS=2 RINGHUB_JWT_SECRET="$SECRET" RINGHUB_API_KEYS="$DIGEST" RINGHUB_LOG=info \
    RINGHUB_INSTANCE_ID="$name" "$@" "$BIN" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    local line
    line=$(grep -m1 'ringhub ready' "$TMP/$name.log" 2>/dev/null || true)
    if [ -n "$line" ]; then
      local addr admin
      addr=$(sed -n 's/.*ringhub ready addr=\([0-9.:]*\).*/\1/p' <<<"$line")
      admin=$(sed -n 's/.* admin=\([0-9.:]*\).*/\1/p' <<<"$line")
      HUB="$addr@$admin"
      return 0
    fi
    sleep 0.1
  done
  echo "observability-test.sh: hub $name did not start:" >&2; cat "$TMP/$name.log" >&2; return 1
}

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_hub "obs-alone"
ALONE=$HUB
# The rpc backend is a closed port: the rpc and breaker series exist whether or not calls
# are made.
start_hub "obs-redis" RINGHUB_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
  RINGHUB_RPC_URL="http://127.0.0.1:9/rpc"
CLUSTER=$HUB

PROM_PORT=$(free_port)
cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/ringhub-alerts.yml
scrape_configs:
  - job_name: ringhub
    static_configs:
      - targets: ["${ALONE#*@}", "${CLUSTER#*@}"]
YAML
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null || {
  echo "observability-test.sh: Prometheus did not start:" >&2; cat "$TMP/prometheus.log" >&2; exit 1; }

JWT_SECRET="$SECRET" python3 scripts/observability_check.py "http://127.0.0.1:$PROM_PORT" "$KEY" "$ALONE" "$CLUSTER"
