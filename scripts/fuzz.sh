#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, failing on any crash (a panic,
# an arithmetic overflow: debug assertions are on), timeout, leak or out-of-memory. docs/fuzzing.md
# describes the targets, the seeds and the long runs.
#
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_TARGETS   space-separated targets (default: all of them)
#   FUZZ_NICE      nice level of the runs (default 0; the long runs use 19)
#
# The seeds (fuzz/corpus/<target>/) are only read; what libFuzzer adds goes to
# fuzz/work/<target>/, which is not committed. A crashing input is written under
# fuzz/artifacts/<target>/: make it a regression test (docs/fuzzing.md).
#
# With a nightly toolchain the targets run under AddressSanitizer (leaks included). Without
# one they run on stable with `--sanitizer none`: libFuzzer and its coverage still work,
# only the sanitizer is gone, said loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-60}
NICE=${FUZZ_NICE:-0}
# The fuzz crate has its own workspace and its own target dir (fuzz/target).
unset CARGO_TARGET_DIR

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if cargo +nightly --version >/dev/null 2>&1; then
  FUZZ=(cargo +nightly fuzz)
  SANITIZER=address
else
  echo "fuzz.sh: WARNING: no nightly toolchain: fuzzing on stable without AddressSanitizer" >&2
  echo "fuzz.sh: WARNING: (install one with: rustup toolchain install nightly)" >&2
  FUZZ=(cargo fuzz)
  SANITIZER=none
fi

# Overflow checks on. cargo-fuzz compiles each crate as one codegen unit by default: several
# build the hub's crate much faster on a busy machine, for a slightly slower target.
BUILD=(--debug-assertions --sanitizer "$SANITIZER" --codegen-units 16)
TARGETS=${FUZZ_TARGETS:-$("${FUZZ[@]}" list)}

# One build for every target; each run below finds it up to date.
"${FUZZ[@]}" build "${BUILD[@]}"

failed=()
for target in $TARGETS; do
  mkdir -p "fuzz/work/$target"
  echo "fuzz.sh: $target for ${SECONDS_EACH}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GB is a leak or a bomb.
  if ! nice -n "$NICE" "${FUZZ[@]}" run "${BUILD[@]}" "$target" \
      "fuzz/work/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${SECONDS_EACH}s without a crash"
