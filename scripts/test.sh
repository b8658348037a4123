#!/usr/bin/env bash
# The whole test suite: unit and integration tests (against real sockets, on both the
# io_uring and epoll drivers), the cargo-fuzz targets for FUZZ_SECONDS each (default 60,
# scripts/fuzz.sh), then the Autobahn|Testsuite fuzzing client (cases 1-10, and the
# permessage-deflate cases 12 and 13) against the hub's testing echo endpoint, on both
# drivers. Between the two, the deployment checks
# (scripts/check-deploy.sh: hadolint, kubectl kustomize, kubernetes-validate).
# The binary protocol is also tested from Python (scripts/proto-test.sh: protobuf classes
# generated from proto/, over websockets).
#
# Installs redis-server when it is missing and sets RINGHUB_REQUIRE_REDIS=1, so that tests
# needing Redis fail loudly instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
export RINGHUB_REQUIRE_REDIS=1

# Python's `websockets`, the wss:// client of tests/tls.rs and the permessage-deflate client
# of tests/deflate.rs (clients ringhub did not write), in a venv of our own (Debian's
# Python refuses system-wide pip installs, PEP 668).
TEST_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ringhub-test-tools"
if ! "$TEST_VENV/bin/python" -c 'import websockets' >/dev/null 2>&1; then
  echo "test.sh: installing websockets into $TEST_VENV"
  python3 -m venv "$TEST_VENV" 2>/dev/null || {
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv python3-pip >/dev/null
    python3 -m venv "$TEST_VENV"
  }
  "$TEST_VENV/bin/python" -m pip install --quiet websockets
fi
# Not RINGHUB_*: the hub takes every RINGHUB_ variable as a setting and refuses unknown ones
# (bench/compare.sh starts it with this environment).
export TEST_PYTHON="$TEST_VENV/bin/python" TEST_REQUIRE_PYTHON_WEBSOCKETS=1

# Build once; the tests and the Autobahn run share the build.
cargo build --all-targets --locked
cargo test --workspace --locked

# The TypeScript SDK: unit tests, and end-to-end tests in headless Chromium against the hub.
./scripts/sdk-test.sh

# The parsers of untrusted bytes under libFuzzer, a bounded time each (docs/fuzzing.md).
./scripts/fuzz.sh

# The Dockerfile and the Kubernetes manifests (hadolint, kubectl kustomize, kubernetes-validate).
./scripts/check-deploy.sh

# The Grafana dashboard and the alerting rules against a real Prometheus scraping real hubs.
./scripts/observability-test.sh

# Schemathesis against a running hub, from the admin port's OpenAPI document.
./scripts/openapi-test.sh

# The binary protocol from Python: protobuf classes generated from proto/, over websockets.
./scripts/proto-test.sh

AUTOBAHN="../shared/tools/autobahn/run.sh"
if [ ! -x "$AUTOBAHN" ]; then
  if [ "${CI:-}" = true ]; then
    echo "test.sh: $AUTOBAHN is missing (shared/ must sit beside the project)" >&2
    exit 1
  fi
  echo "test.sh: skipping Autobahn: $AUTOBAHN not found (shared/ is not beside the project)"
  exit 0
fi

# Cases 1-10, and 12 and 13 (permessage-deflate, every echo compressed: threshold 0), all of
# them, on both drivers. A case is a ping-pong between the suite's one-threaded Python 2
# client and the hub, so one run keeps about one core busy, and 12 and 13 are nearly all of
# the time (1,000 messages of up to 128 KiB a case; the client's zlib is most of its CPU,
# the hub's is zlib-rs built optimized even in the debug build, Cargo.toml). So the runs go
# side by side, each against a hub of its own: per driver two, the case groups split into
# two halves of about equal time, four runs at once on the 2 cores (PERFORMANCE.md).
#   AUTOBAHN_CASES=...     instead, one run per driver with these cases (e.g. "1.*,2.*")
#   AUTOBAHN_EXCLUDE=...   cases to leave out of every run (run.sh)
#   AUTOBAHN_DRIVERS=...   default "io_uring epoll"
#   AUTOBAHN_TIMEOUT=N     wall-clock cap of each run, seconds (default 1800)
#   AUTOBAHN_CASE_TIMEOUT=N  run.sh's watchdog of one case, seconds (default here 300: on a
#                          loaded machine 12.3.10 took 58 s, with run.sh's default at 60)
#   AUTOBAHN_REPORTS=DIR   the runs' reports under DIR/<run> (default: run.sh's folder)
AB_HALF_A="12.2.*,12.3.*,13.1.*,13.2.*,13.3.*"
AB_HALF_B="1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.1.*,12.4.*,12.5.*,13.4.*,13.5.*,13.6.*,13.7.*"
AB_RUNS=()
for driver in ${AUTOBAHN_DRIVERS:-io_uring epoll}; do
  if [ -n "${AUTOBAHN_CASES:-}" ]; then
    AB_RUNS+=("$driver $driver $AUTOBAHN_CASES")
  else
    AB_RUNS+=("$driver $driver-a $AB_HALF_A" "$driver $driver-b $AB_HALF_B")
  fi
done
AB_TMP=$(mktemp -d)
AB_REPORTS="${AUTOBAHN_REPORTS:-}"
unset AUTOBAHN_CASES AUTOBAHN_REPORTS

# Runs the echo endpoint on a free port with the suite's limits, then the suite against it;
# everything it prints goes to $AB_TMP/NAME.out.
autobahn() {
  local driver=$1 name=$2 cases=$3 log="$AB_TMP/$2.hub" out="$AB_TMP/$2.out"
  RINGHUB_LISTEN=127.0.0.1:0 RINGHUB_ADMIN_LISTEN=127.0.0.1:0 RINGHUB_SHARDS=2 \
  RINGHUB_DRIVER="$driver" RINGHUB_ECHO_ENDPOINT=true RINGHUB_JWT_SECRET=autobahn \
  RINGHUB_MAX_MESSAGE_SIZE=16777216 RINGHUB_MAX_FRAGMENTS=1000000 \
  RINGHUB_SEND_QUEUE_BYTES=67108864 RINGHUB_CONNECTS_PER_SECOND_PER_IP=100000 RINGHUB_LOG=info \
  RINGHUB_COMPRESSION=true RINGHUB_COMPRESSION_THRESHOLD=0 \
    "${CARGO_TARGET_DIR:-target}/debug/ringhub" >"$log" 2>&1 &
  local pid=$! addr="" rpid rc=0
  for _ in $(seq 100); do
    addr=$(sed -n 's/.*ringhub ready addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    { echo "test.sh: the hub ($driver) did not start:"; cat "$log"; } >"$out"
    kill "$pid" 2>/dev/null
    return 1
  fi
  # (this function runs in a subshell of its own: the exports stay in it)
  export AUTOBAHN_CASES="$cases" AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-1800}" \
    AUTOBAHN_CASE_TIMEOUT="${AUTOBAHN_CASE_TIMEOUT:-300}"
  [ -z "$AB_REPORTS" ] || export AUTOBAHN_REPORTS="$AB_REPORTS/$name"
  "$AUTOBAHN" "ws://$addr/echo" "ringhub-$name" >"$out" 2>&1 &
  rpid=$!
  trap 'kill -TERM $rpid $pid 2>/dev/null' TERM
  wait "$rpid" || rc=$?
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  return $rc
}

# The harness (a private Python 2.7 and the suite) once, before the runs that share it.
"$(dirname "$AUTOBAHN")/setup.sh" || { echo "test.sh: the Autobahn harness did not build" >&2; exit 1; }
echo "test.sh: Autobahn, ${#AB_RUNS[@]} runs at once:"
AB_PIDS=()
for run in "${AB_RUNS[@]}"; do
  read -r driver name cases <<<"$run"
  echo "  $name: $driver, cases [$cases]${AUTOBAHN_EXCLUDE:+ minus [$AUTOBAHN_EXCLUDE]}"
  autobahn "$driver" "$name" "$cases" &
  AB_PIDS+=($!)
done
trap 'kill -TERM "${AB_PIDS[@]}" 2>/dev/null' EXIT
# A line a minute with where each run is (from run.sh's own progress lines).
ab_alive() {
  local p
  for p in "${AB_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}
ab_start=$(date +%s)
ab_tick=0
while sleep 5 && ab_alive; do
  ab_tick=$((ab_tick + 5))
  [ $((ab_tick % 60)) = 0 ] || continue
  line=""
  for run in "${AB_RUNS[@]}"; do
    read -r _ name _ <<<"$run"
    at=$(sed -n 's/^autobahn: [0-9]*s, case \([^ ]*\) .*/\1/p' "$AB_TMP/$name.out" 2>/dev/null | tail -1)
    line="$line $name ${at:--}"
  done
  echo "test.sh: Autobahn $(($(date +%s) - ab_start))s:$line"
done
AB_FAILED=()
for i in "${!AB_RUNS[@]}"; do
  read -r driver name _ <<<"${AB_RUNS[$i]}"
  rc=0
  wait "${AB_PIDS[$i]}" || rc=$?
  echo
  echo "== Autobahn run $name ($driver): exit status $rc"
  cat "$AB_TMP/$name.out"
  [ "$rc" = 0 ] || AB_FAILED+=("$name")
done
trap - EXIT
# The runs' last lines ("autobahn: N passed, M failed"), summed.
totals=$(cat "$AB_TMP"/*.out | awk '/^autobahn: [0-9]+ passed, [0-9]+ failed$/ {p += $2; f += $4} END {print p + 0, f + 0}')
rm -rf "$AB_TMP"
echo
echo "test.sh: Autobahn: ${totals% *} passed, ${totals#* } failed in ${#AB_RUNS[@]} runs, $(($(date +%s) - ab_start))s"
if [ "${#AB_FAILED[@]}" -gt 0 ]; then
  echo "test.sh: Autobahn FAILED in: ${AB_FAILED[*]} (their tables above)" >&2
  exit 1
fi
echo "test.sh: Autobahn passed in every run"
