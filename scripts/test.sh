#!/usr/bin/env bash
# The whole test suite: libFuzzer over the broker's input paths for a bounded time, then the unit
# tests, the simulation sweeps and the integration tests.
# Usage: scripts/test.sh [extra swift test arguments]
#   FUZZ_SECONDS=N (default 30) sets the fuzzing time, 0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
fuzz_seconds="${FUZZ_SECONDS:-30}"
if [ "$fuzz_seconds" -gt 0 ]; then
  mkdir -p .build/fuzz
  log=.build/fuzz/last-run.log
  echo "fuzzing for ${fuzz_seconds}s (scripts/fuzz.sh; output in $log)" >&2
  if ! scripts/fuzz.sh "$fuzz_seconds" > "$log" 2>&1; then
    tail -n 80 "$log" >&2
    echo "fuzzing found a problem: the input is in .build/fuzz/findings/ (see scripts/fuzz.sh)" >&2
    exit 1
  fi
  grep -E "^#[0-9]+[[:space:]]+DONE" "$log" >&2 || true
fi
# Swift Testing only: its closing line ("Test run with N tests ... passed") counts what ran.
exec swift test --skip-build --disable-xctest "$@"
