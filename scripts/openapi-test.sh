#!/usr/bin/env bash
# Schemathesis against a running hub (docs/observability.md): every operation of
# src/control/openapi.json is called with generated requests and the API key; the run fails
# on a 5xx, a response that does not match the document (status, content type, headers,
# body schema), or an invalid request the hub accepts. Installs schemathesis (PyPI) into a
# venv of its own when missing.
#
# `positive_data_acceptance` is left out: whether a schema-valid request succeeds depends on
# configuration and time the document cannot state (presence on a namespace that has none,
# a mute `until` already past), and the hub answers those 400 as docs/api.md says.
#
# Uses the ringhub binary of the last `cargo build` ($CARGO_TARGET_DIR or target/), or $RINGHUB_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${RINGHUB_BIN:-${CARGO_TARGET_DIR:-target}/debug/ringhub}"
[ -x "$BIN" ] || { echo "openapi-test.sh: $BIN is missing: cargo build first" >&2; exit 1; }
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ringhub-openapi-tools"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "openapi-test.sh: installing schemathesis into $VENV"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  python3 -m venv "$VENV" 2>/dev/null || {
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$VENV"
  }
  "$VENV/bin/python" -m pip install --quiet schemathesis
fi

TMP=$(mktemp -d)
HUB=""
cleanup() {
  if [ -n "$HUB" ]; then kill "$HUB" 2>/dev/null || true; wait "$HUB" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

KEY="openapi-key"
# Presence and history on every namespace, so that those operations get past 400 and 404.
cat >"$TMP/ringhub.toml" <<TOML
[namespaces."*"]
presence = true
history_size = 10
TOML
: >"$TMP/hub.log"
env -i PATH="$PATH" RINGHUB_CONFIG="$TMP/ringhub.toml" RINGHUB_LISTEN=127.0.0.1:0 \
  RINGHUB_ADMIN_LISTEN=127.0.0.1:0 RINGHUB_SHARDS=2 RINGHUB_JWT_SECRET=openapi \
  RINGHUB_API_KEYS="$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" RINGHUB_LOG=warn,ringhub=info \
  "$BIN" >"$TMP/hub.log" 2>&1 &
HUB=$!
ADMIN=""
for _ in $(seq 100); do
  ADMIN=$(sed -n 's/.*ringhub ready .* admin=\([0-9.:]*\).*/\1/p' "$TMP/hub.log" | head -1)
  [ -n "$ADMIN" ] && break
  sleep 0.1
done
[ -n "$ADMIN" ] || { echo "openapi-test.sh: the hub did not start:" >&2; cat "$TMP/hub.log" >&2; exit 1; }

# The document the hub serves is the one in the repository.
curl -sf -H "Authorization: Bearer $KEY" "http://$ADMIN/api/openapi.json" | cmp - src/control/openapi.json

# Every operation's example request, as documented, gets a 200 from the hub.
python3 - "http://$ADMIN" "$KEY" src/control/openapi.json <<'PY'
import json, sys, urllib.request
base, key, spec = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
bad = []
for path, item in spec["paths"].items():
    for method, op in item.items():
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
        req = urllib.request.Request(base + path.replace("{channel}", "chat%3Alobby"), method=method.upper(),
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}"})
        try:
            status = urllib.request.urlopen(req, timeout=5).status
        except urllib.error.HTTPError as e:
            status = e.code
        if status != 200:
            bad.append(f"{method.upper()} {path}: {status}")
if bad:
    sys.exit("openapi-test.sh: example requests refused: " + "; ".join(bad))
print(f"openapi-test.sh: every example request answered 200")
PY

# From the temporary directory, where schemathesis leaves its .schemathesis/ cache.
SPEC="$PWD/src/control/openapi.json"
(cd "$TMP" && "$VENV/bin/schemathesis" run "$SPEC" --url "http://$ADMIN" \
  -H "Authorization: Bearer $KEY" --exclude-checks positive_data_acceptance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" --seed 1 --no-color)
