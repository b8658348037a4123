#!/usr/bin/env bash
# ringhub against uWebSockets.js (bench/uws) and the baseline hub (tokio +
# tokio-tungstenite), same machine, same run, same bench. Prints one JSON line per
# measurement and a table of medians over the rounds, with ratios ringhub / uWS and
# ringhub / baseline.
#
#   cargo build --release --workspace && bench/compare.sh [rounds]
#
# Chosen by the environment:
#   HUBS="ringhub baseline uws"   the hubs, in this order (the first is the one compared);
#                                 also ringhub-tls: ringhub serving wss:// (a CA and a
#                                 certificate made here with openssl), the bench over TLS;
#                                 ringhub-unpaced: ringhub with write_interval = 0s
#   SCENARIOS="..."               any of: fanout1m fanout100 storm idle19k syscalls (issue
#                                 18's set), connect fanout-max fanout-100k idle heartbeat
#                                 sustained (the earlier set). Default: all of them.
#                                 Not in the default: auth (ringhub only): a connect storm
#                                 with JWTs, then with opaque tokens through the connect
#                                 proxy (a local backend the bench serves) and through the
#                                 token store (a redis-server started here). AUTH_CONNECT=N
#                                 connects each (default 10,000; 40 with QUICK=1).
#   MODES="shared pinned"         shared: hub and bench float over both cores; pinned: hub
#                                 on core 1 (`taskset -c 1`), bench on core 0. The earlier
#                                 set always runs shared. `syscalls` always runs pinned.
#   QUICK=1                       tiny numbers, to check that every scenario runs (tests)
#   BIN=dir                       the binaries (default $CARGO_TARGET_DIR/release)
set -Eeuo pipefail
# A command that stops the script says which (the test of every scenario shows it).
trap 'echo "compare.sh: stopped at line $LINENO (exit $?): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROUNDS=${1:-1}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
SECRET=bench-secret
HUBS=${HUBS:-"ringhub baseline uws"}
SCENARIOS=${SCENARIOS:-"fanout1m fanout100 storm idle19k syscalls connect fanout-max fanout-100k idle heartbeat sustained"}
MODES=${MODES:-"shared pinned"}
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

# Sizes: issue 18's, or tiny ones with QUICK=1.
if [ "${QUICK:-}" = 1 ]; then
  SECS=1 FAN1M_SUBS=20 FAN100_SUBS=40 FAN100_CH=4 STORM=40 IDLE19K=40 IDLE10K=20 HEART=20
  CONNECT=40 FAN_SUBS=20 SUSTAIN_RATES=${SUSTAIN_RATES:-"50"} IDLE_SECS=1
  AUTH_CONNECT=${AUTH_CONNECT:-40}
else
  SECS=10 FAN1M_SUBS=1000 FAN100_SUBS=10000 FAN100_CH=100 STORM=10000 IDLE19K=19000
  IDLE10K=10000 HEART=19000 CONNECT=10000 FAN_SUBS=1000 IDLE_SECS=5
  AUTH_CONNECT=${AUTH_CONNECT:-10000}
  # The highest fixed rate a hub keeps up with (see `sustain`), per publisher.
  SUSTAIN_RATES=${SUSTAIN_RATES:-"500 600 700 800 900 1000 1250 1500 2000 2500 3000 3500 4000 4500 5000"}
fi

if [[ " $HUBS " == *" uws "* ]] && [ ! -d bench/uws/node_modules ]; then
  (cd bench/uws && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

if [[ " $HUBS " == *" ringhub-tls "* ]]; then # a CA and a certificate for localhost
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$OUT/hub.key" -out "$OUT/hub.csr" 2>/dev/null
  openssl x509 -req -in "$OUT/hub.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days 2 -extfile <(printf 'subjectAltName=DNS:localhost') -out "$OUT/hub.crt" 2>/dev/null
fi

PING=25s # every hub's ping interval; the heartbeat measurement sets 1s (not uWS: see below)
MODE=shared
mode_prefix() { # hub|bench -> the command prefix that pins it in the current mode
  [ "$MODE" = pinned ] || return 0
  if [ "$1" = hub ]; then echo "taskset -c 1"; else echo "taskset -c 0"; fi
}
threads() { if [ "$MODE" = pinned ]; then echo 1; else echo 2; fi; } # hub's and bench's

start_hub() { # name port -> pid
  local pin; pin=$(mode_prefix hub)
  case $1 in
    # HUB_ENV: more settings, as RINGHUB_* variables (the `auth` scenario's).
    # ringhub-unpaced: ringhub with write_interval 0 (every connection written at the end
    # of each pass), beside the default's paced writes.
    ringhub | ringhub-unpaced) env ${HUB_ENV:-} $([ "$1" = ringhub ] || echo RINGHUB_WRITE_INTERVAL=0s) RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$2 RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
               RINGHUB_SHARDS=$(threads) RINGHUB_PING_INTERVAL=$PING $pin $BIN/ringhub >"$OUT/hub.log" 2>&1 & ;;
    ringhub-tls) RINGHUB_CONFIG=bench/hub.toml RINGHUB_LISTEN=127.0.0.1:$2 RINGHUB_ADMIN_LISTEN=127.0.0.1:0 \
               RINGHUB_TLS_CERT="$OUT/hub.crt" RINGHUB_TLS_KEY="$OUT/hub.key" \
               RINGHUB_SHARDS=$(threads) RINGHUB_PING_INTERVAL=$PING $pin $BIN/ringhub >"$OUT/hub.log" 2>&1 & ;;
    baseline) $pin $BIN/baseline-hub --listen 127.0.0.1:$2 --secret $SECRET --threads "$(threads)" \
                --ping-interval $PING >"$OUT/hub.log" 2>&1 & ;;
    # uWS pings a connection idle for 24 s and closes it 16 s later (idle timeout 40 s).
    uws) $pin node bench/uws/server.js --listen 127.0.0.1:$2 --secret $SECRET \
           --idle-timeout 40 >"$OUT/hub.log" 2>&1 & ;;
  esac
  echo $!
}

wait_port() { # port pid: until the hub accepts (false if it exited or took 30 s)
  for _ in $(seq 600); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

run() { # hub scenario args...
  local hub=$1 name=$2; shift 2
  # A port below the ephemeral range; another one if the hub could not have it.
  local port pid tries
  for tries in 1 2 3; do
    port=$((10000 + RANDOM % 20000))
    pid=$(start_hub "$hub" $port)
    wait_port $port $pid && break
    kill $pid 2>/dev/null || true # it may have exited already (its port was taken)
    wait $pid 2>/dev/null || true
    echo "compare.sh: $hub did not listen on port $port (try $tries); it printed:" >&2
    tail -5 "$OUT/hub.log" >&2
    [ $tries -lt 3 ] || { echo "{\"hub\":\"$hub\",\"name\":\"$name\",\"mode\":\"$MODE\",\"error\":\"no hub\"}"; return 0; }
  done
  sleep 0.2
  local args=("$@")
  for i in "${!args[@]}"; do [ "${args[$i]}" = PID ] && args[$i]=$pid; done
  local line tls=()
  [ "$hub" != ringhub-tls ] || tls=(--tls-ca "$OUT/ca.pem")
  line=$($(mode_prefix bench) $BIN/ringhub-bench --threads "$(threads)" --secret $SECRET \
           --addr 127.0.0.1:$port --users "$hub$RANDOM" "${tls[@]}" "${args[@]}" 2>"$OUT/stderr" | tail -1) || true
  [ -n "$line" ] || { echo "compare.sh: $hub $name failed:" >&2; cat "$OUT/stderr" >&2; line='{"error":"bench failed"}'; }
  # What uWS dropped to its maxBackpressure (the others close a consumer that far behind).
  local dropped=null
  [ "$hub" != uws ] || dropped=$(curl -s --max-time 30 "http://127.0.0.1:$port/stats" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped"])' 2>/dev/null || echo null)
  echo "$line" | sed "s/^{/{\"hub\":\"$hub\",\"name\":\"$name\",\"mode\":\"$MODE\",\"round\":$round,\"hub_dropped\":$dropped,/" \
    | tee -a "$OUT/results.jsonl"
  kill $pid 2>/dev/null || true # the hub may have died under the load
  wait $pid 2>/dev/null || true
}

# A step passes when the publishers got out at least 95% of the rate asked for (a hub may
# hold them back through TCP), nothing was lost, no subscriber was closed, and delivery P99
# stayed under 500 ms. Rates are per publisher: 1,000 deliveries/s each.
sustain() { # hub
  local r best=
  for r in $SUSTAIN_RATES; do
    run "$1" "sustain-$r" fanout --subs $FAN_SUBS --channels 10 --pubs 10 --rate "$r" --seconds 8 >/dev/null
    tail -1 "$OUT/results.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
ok = ("rate" in r and r["offered_per_s"] >= 0.95 * r["rate"] * r["subs"] and r["lost"] == 0
      and r["closed"] == 0 and r["latency_ms"]["p99"] < 500)
print("  %s at %s/s per publisher: offered %.0f, achieved %.0f, P99 %.1f ms: %s" % (r["hub"],
      r.get("rate"), r.get("offered_per_s", 0), r.get("achieved_per_s", 0),
      r.get("latency_ms", {}).get("p99", 0), "pass" if ok else "fail"), file=sys.stderr)
sys.exit(0 if ok else 1)' || break
    best=$(tail -1 "$OUT/results.jsonl")
  done
  # The step that passed last is the hub's sustained rate for this round.
  [ -z "$best" ] || echo "$best" | sed 's/"name":"sustain-[0-9]*"/"name":"sustained"/' | tee -a "$OUT/results.jsonl"
}

scenario() { # name hub: issue 18's set in the current mode
  case $1 in
    fanout1m) run "$2" fanout1m fanout --subs $FAN1M_SUBS --channels 1 --pubs 10 --rate 100 \
                --seconds $SECS --pid PID ;;
    fanout100) run "$2" fanout100 fanout --subs $FAN100_SUBS --channels $FAN100_CH --pubs 10 \
                 --rate max --seconds $SECS --pid PID ;;
    storm) run "$2" storm connect --conns $STORM --concurrency 500 --pid PID ;;
    idle19k) run "$2" idle19k idle --conns $IDLE19K --pid PID --seconds $IDLE_SECS ;;
  esac
}

# System calls and sends per delivery, under `perf stat` (a run of its own: counting every
# system call slows every one a little, so the CPU figures come from the runs without it).
syscalls() { # hub
  if ! perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    echo "compare.sh: perf cannot count system calls here: skipping syscalls" >&2
    return 0
  fi
  run "$1" fanout1m-perf fanout --subs $FAN1M_SUBS --channels 1 --pubs 10 --rate 100 \
    --seconds $((SECS / 2 + 1)) --pid PID --perf
  run "$1" fanout100-perf fanout --subs $FAN100_SUBS --channels $FAN100_CH --pubs 10 \
    --rate max --seconds $((SECS / 2 + 1)) --pid PID --perf
}

legacy() { # name hub: the earlier set, shared
  case $1 in
    connect) run "$2" connect connect --conns $CONNECT --concurrency 1000 ;;
    fanout-max) run "$2" fanout-max fanout --subs $FAN_SUBS --channels 10 --pubs 10 --rate max --seconds $SECS ;;
    fanout-100k) run "$2" fanout-100k fanout --subs $FAN_SUBS --channels 10 --pubs 10 --rate 100 --seconds $SECS ;;
    idle) run "$2" idle idle --conns $IDLE10K --pid PID --seconds $IDLE_SECS ;;
    # uWS cannot ping every second: its idle timeout is a multiple of 4 s, and it pings a
    # margin (at least 4 s) before it.
    heartbeat) [ "$2" = uws ] || PING=1s run "$2" heartbeat idle --conns $HEART --pid PID --seconds $((IDLE_SECS * 2)) ;;
    sustained) sustain "$2" ;;
  esac
}

# Connect storms by how the token is checked: JWT, connect proxy, token store (ringhub).
auth() { # hub
  [ "$1" = ringhub ] || return 0
  local args=(connect --conns "$AUTH_CONNECT" --concurrency 500 --pid PID)
  run ringhub connect-jwt "${args[@]}"
  local pp=$((30000 + RANDOM % 10000))
  HUB_ENV="RINGHUB_CONNECT_PROXY_URL=http://127.0.0.1:$pp/connect" \
    run ringhub connect-proxy "${args[@]}" --opaque --proxy-listen 127.0.0.1:$pp
  local rp=$((40000 + RANDOM % 10000))
  redis-server --port $rp --save "" --appendonly no >/dev/null 2>&1 &
  local redis=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$rp) 2>/dev/null && break; sleep 0.05; done
  HUB_ENV="RINGHUB_REDIS_URL=redis://127.0.0.1:$rp RINGHUB_TOKEN_STORE=redis" \
    run ringhub connect-store "${args[@]}" --opaque --store-redis 127.0.0.1:$rp
  kill $redis 2>/dev/null || true
  wait $redis 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
  echo "compare.sh: round $round of $ROUNDS; $(uptime)" >&2
  for s in $SCENARIOS; do
    case $s in
      fanout1m | fanout100 | storm | idle19k)
        for MODE in $MODES; do for hub in $HUBS; do scenario "$s" "$hub"; done; done ;;
      syscalls) MODE=pinned; for hub in $HUBS; do syscalls "$hub"; done ;;
      auth) MODE=shared; for hub in $HUBS; do auth "$hub"; done ;;
      *) MODE=shared; for hub in $HUBS; do legacy "$s" "$hub"; done ;;
    esac
  done
done
echo "compare.sh: done; $(uptime)" >&2

python3 bench/compare-table.py "$OUT/results.jsonl" $HUBS
