#!/usr/bin/env bash
# The whole test suite: unit tests, the simulation sweeps and the integration tests.
# Usage: scripts/test.sh [extra swift test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
# Swift Testing only: its closing line ("Test run with N tests ... passed") counts what ran.
exec swift test --skip-build --disable-xctest "$@"
