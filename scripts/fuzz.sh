#!/usr/bin/env bash
# Fuzzes the broker's input paths with libFuzzer: frames through the decoder and the broker
# machine over an in-memory disk, server.ini text, partitions found on disk (Fuzz/FuzzTargets).
# Builds `metaq-fuzz` with -sanitize=fuzzer,address into .build/fuzz (its own scratch path, so the
# ordinary build is untouched) and runs it for a bounded time, starting from Fuzz/corpus.
#
# Usage: scripts/fuzz.sh [seconds, default 60] [extra libFuzzer flags]
#        FUZZ_CONFIG=release scripts/fuzz.sh 600     # optimized build: more inputs per second
# A finding is written to .build/fuzz/findings/ (crash-, leak-, timeout- or oom-<hash>) and the
# script exits non-zero. Replay it with `.build/fuzz/<config>/metaq-fuzz <file>` (or with an
# ordinary build's `metaq-fuzz <file>`), fix it, and add the file to Fuzz/corpus: every test
# run replays the corpus (Tests/FuzzTargetsTests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
config="${FUZZ_CONFIG:-debug}"
scratch=.build/fuzz
# libFuzzer needs lld here (gold trips over the two candidate `main`s); Swift ships it.
swift build -c "$config" --scratch-path "$scratch" --product metaq-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
work="$scratch/corpus"
findings="$scratch/findings"
mkdir -p "$work" "$findings"
echo "fuzzing for ${seconds}s from Fuzz/corpus; findings go to $findings/" >&2
# libFuzzer reports a crash itself; Swift's backtracer would only slow it down.
SWIFT_BACKTRACE=enable=no "$scratch/$config/metaq-fuzz" "$work" Fuzz/corpus \
  -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
  -dict=Fuzz/metaq.dict -artifact_prefix="$findings/" -print_final_stats=1 "$@"
