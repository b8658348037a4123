#!/usr/bin/env bash
# The TypeScript SDK's tests (clients/typescript): unit tests with node's test runner, then
# end-to-end tests that drive the SDK in headless Chromium (Debian's, through
# puppeteer-core) against the ringhub binary, with Redis for the two-instance cases.
#
# Installs what they need: chromium (and node/npm) through apt when missing, and the
# package's devDependencies with `npm ci`. Uses the debug binary in CARGO_TARGET_DIR (or
# target/), building it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "sdk-test.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bin="${CARGO_TARGET_DIR:-target}/debug/ringhub"
[ -x "$bin" ] || cargo build --locked --bin ringhub

cd clients/typescript
# puppeteer-core never downloads a browser; the variable keeps it that way for any tool.
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
npm test
