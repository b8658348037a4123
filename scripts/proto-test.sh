#!/usr/bin/env bash
# The binary protocol from Python (issue 19): protobuf classes generated from proto/ by
# grpcio-tools' protoc, into a temporary directory, and tests/python/proto_test.py talking
# to a running hub with `websockets`. Installs websockets, protobuf and grpcio-tools (PyPI)
# into a venv of its own when missing.
#
# Uses the ringhub binary of the last `cargo build` ($CARGO_TARGET_DIR or target/), or $RINGHUB_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${RINGHUB_BIN:-${CARGO_TARGET_DIR:-target}/debug/ringhub}"
[ -x "$BIN" ] || { echo "proto-test.sh: $BIN is missing: cargo build first" >&2; exit 1; }
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ringhub-proto-tools"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import websockets, google.protobuf, grpc_tools" 2>/dev/null; then
  echo "proto-test.sh: installing websockets, protobuf and grpcio-tools into $VENV"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  python3 -m venv "$VENV" 2>/dev/null || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  }
  "$VENV/bin/python" -m pip install --quiet websockets protobuf grpcio-tools
fi

TMP=$(mktemp -d)
HUB=""
cleanup() {
  if [ -n "$HUB" ]; then kill "$HUB" 2>/dev/null || true; wait "$HUB" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

"$VENV/bin/python" -m grpc_tools.protoc -Iproto --python_out="$TMP" proto/ringhub/v1/*.proto

cat >"$TMP/ringhub.toml" <<TOML
[namespaces.chat]
public = true
client_publish = true

[namespaces.game]
public = true
client_publish = true
deltas = true
TOML
: >"$TMP/hub.log"
env -i PATH="$PATH" RINGHUB_CONFIG="$TMP/ringhub.toml" RINGHUB_LISTEN=127.0.0.1:0 \
  RINGHUB_ADMIN_LISTEN=127.0.0.1:0 RINGHUB_SHARDS=2 RINGHUB_JWT_SECRET=proto-test \
  RINGHUB_LOG=warn,ringhub=info "$BIN" >"$TMP/hub.log" 2>&1 &
HUB=$!
ADDR=""
for _ in $(seq 100); do
  ADDR=$(sed -n 's/.*ringhub ready addr=\([0-9.:]*\).*/\1/p' "$TMP/hub.log" | head -1)
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "proto-test.sh: the hub did not start:" >&2; cat "$TMP/hub.log" >&2; exit 1; }

token() { RINGHUB_JWT_SECRET=proto-test "$BIN" token --user "$1"; }
PYTHONPATH="$TMP" "$VENV/bin/python" tests/python/proto_test.py "ws://$ADDR/ws" "$(token py-a)" "$(token py-b)"
