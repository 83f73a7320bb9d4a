#!/usr/bin/env bash
# Instructions per put (issue 18): the broker's CPU cost counted by `valgrind --tool=callgrind`,
# which is repeatable on this shared VM where seconds are not.
#
# Each run starts a fresh release `metaq-server` under callgrind (topic `bench` with 8 partitions,
# temp data directory under /tmp, 127.0.0.1), waits until it answers `metaq stats`, warms it up
# with WARMUP puts, zeroes callgrind's counters, sends exactly N puts of 100 B with the
# independent load generator (`metaqbench -p 8 -c 4 -w 256 -size 100`), dumps the counters and
# stops the server. It prints the instructions (Ir) of the whole process over the N puts, Ir per
# put, and writes the top functions by inclusive and by self cost (callgrind_annotate, TOP lines
# each, Swift names demangled) to a report file whose path it prints. Reports are kept; the data
# directory is removed.
#
#   Benchmarks/callgrind.sh                         # group commit and threshold, 2 runs each
#   N=100000 RUNS=3 CONFIGS=threshold Benchmarks/callgrind.sh
#   SOURCE=/work/wt-base Benchmarks/callgrind.sh    # another checkout (builds its release binaries)
#   SYSTEM="ioThreads=0" Benchmarks/callgrind.sh    # extra [system] keys (space-separated)
#
# CONFIGS: group-commit (unflushThreshold=0: a put is answered after its fdatasync) and/or
# threshold (unflushThreshold=1000). Valgrind runs the broker ~50x slower: the default N keeps a
# run under ~2 minutes here. Instructions include everything the process did between the zero and
# the dump (all threads: event loop, sync threads, timers), divided by N. `steal` is the
# hypervisor's steal time over the counted part, in % of both vCPUs (it does not change Ir, but
# group commit's batch sizes depend on timing, so Ir per put can move a little with load).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/Benchmarks/lib.sh"
SOURCE=$(cd "${SOURCE:-$ROOT}" && pwd)
N=${N:-200000}
WARMUP=${WARMUP:-20000}
RUNS=${RUNS:-2}
SYSTEM=${SYSTEM:-}   # extra [system] lines, e.g. "ioThreads=0"
CONFIGS=${CONFIGS:-"group-commit threshold"}
TOP=${TOP:-25}
METAQBENCH=$(command -v metaqbench) || { echo "metaqbench is not on PATH (../shared/bench/metaqbench)" >&2; exit 1; }
for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" > /dev/null || { echo "$tool missing: apt-get install valgrind" >&2; exit 1; }
done

cd "$SOURCE"
swift build -c release --product metaq-server >&2
swift build -c release --product metaq >&2
BIN="$SOURCE/.build/release"
# The newest commit that changed the broker's code (a commit that only adds scripts or docs runs the same binary).
COMMIT=$(git -C "$SOURCE" log -1 --format=%h -- Sources Package.swift Package.resolved 2>/dev/null || echo unknown)

WORK=$(mktemp -d /tmp/metaq-callgrind-XXXXXX)
REPORTS=${REPORTS:-$(mktemp -d /tmp/metaq-callgrind-reports-XXXXXX)}
mkdir -p "$REPORTS"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain emits ("unhandled dwarf2 abbrev form"):
# run a copy without debug sections; the symbol table still names every function.
objcopy --strip-debug "$BIN/metaq-server" "$WORK/metaq-server"

for config in $CONFIGS; do
    case $config in
        group-commit) threshold=0 ;;
        threshold) threshold=1000 ;;
        *) echo "unknown config $config (group-commit | threshold)" >&2; exit 1 ;;
    esac
    { sed -e "s/^unflushThreshold=.*/unflushThreshold=$threshold/" -e "s/^\[system\]\$/[system]\n${SYSTEM// /\\n}/" "$ROOT/conf/server.ini"
      printf '\n[topic=bench]\nnumPartitions=8\n'; } \
        > "$WORK/$config.ini"
done

demangle() { if command -v swift-demangle > /dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }

# top_functions yes|no DUMP → the TOP costliest functions, inclusive (yes) or self (no), demangled
top_functions() {
    callgrind_annotate --inclusive="$1" --threshold=100 "$2" > "$WORK/annotate.txt" 2>/dev/null
    # The thread-entry frames that were on the stack at the zero and the dump (clone, the event
    # loop's thread closure) come out with all of the thread's cost as "self", a callgrind artefact:
    # the self list leaves out every line above 50 % but the total.
    demangle < "$WORK/annotate.txt" | awk -v top="$TOP" -v self="$1" '
        /^-+$/ {n++; next}
        self == "no" && !/PROGRAM TOTALS/ && match($0, /\( *[0-9.]+%\)/) && substr($0, RSTART + 1, RLENGTH - 3) + 0 > 50 {next}
        n >= 3 && NF && shown < top {print; shown++}'
}

# puts_counted DUMP → the calls of BrokerMachine.handlePut in the dump: the puts its counters cover
puts_counted() {
    awk '
        /^fn=/ {id = $1; sub(/^fn=/, "", id); if (NF > 1) names[id] = $2; current = 0; next}
        /^cfn=/ {
            id = $1; sub(/^cfn=/, "", id)
            if (NF > 1) names[id] = $2
            current = (names[id] ~ /BrokerMachine.*handlePut/)
            next
        }
        /^calls=/ && current {split($1, a, "="); total += a[2]; current = 0; next}
        {current = 0}
        END {print total + 0}' "$1"
}

# measure CONFIG → one counted run: sets IR, COUNTED, OUT, DUMP, SECONDS_NS, STEAL_PCT
measure() {
    local config=$1 port s0 t0 s1 t1 w0 w1
    port=$(free_port)
    rm -rf "$WORK/data" "$WORK"/callgrind.out.*
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
        "$WORK/metaq-server" start --local -f "$WORK/$config.ini" --data "$WORK/data" --port "$port" \
        --host 127.0.0.1 --foreground > "$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 120))
    until "$BIN/metaq" stats --server "meta://127.0.0.1:$port" > /dev/null 2>&1; do
        if ((SECONDS > deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not answer; its log:" >&2; cat "$WORK/server.log" >&2; exit 1
        fi
        sleep 0.2
    done
    "$METAQBENCH" -addr "127.0.0.1:$port" -topic bench -p 8 -c 4 -w 256 -size 100 -n "$WARMUP" -timeout 10m > /dev/null
    callgrind_control --zero "$SERVER_PID" > /dev/null 2>&1
    s0=$(steal_ticks); t0=$(total_ticks); w0=$(date +%s%N)
    OUT=$("$METAQBENCH" -addr "127.0.0.1:$port" -topic bench -p 8 -c 4 -w 256 -size 100 -n "$N" -timeout 10m)
    s1=$(steal_ticks); t1=$(total_ticks); w1=$(date +%s%N)
    callgrind_control --dump "$SERVER_PID" > /dev/null 2>&1
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    grep -q " non200=0 " <<< "$OUT" || echo "warning: metaqbench reported errors: $OUT" >&2
    # The dump after the zero is callgrind.out.PID.1 (the file without a suffix is the exit dump).
    DUMP=$(ls "$WORK"/callgrind.out.*.1 2>/dev/null | head -1)
    [[ -n "$DUMP" ]] || { echo "no callgrind dump in $WORK" >&2; ls "$WORK" >&2; exit 1; }
    IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$DUMP")
    COUNTED=$(puts_counted "$DUMP")
    SECONDS_NS=$((w1 - w0))
    STEAL_PCT=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.0f", (t > 0) ? 100 * s / t : 0}')
}

# run CONFIG RUN → prints "| config | run | Ir | Ir/put | puts counted | seconds | steal % | report |"
run() {
    local config=$1 round=$2 report attempt
    # The zero is asked of the process through vgdb; once in a while it took effect late (a dump
    # holding a few hundred puts' worth). The dump's own count of handlePut calls tells: a run
    # whose count is not N is run again, up to 3 times.
    for attempt in 1 2 3; do
        measure "$config"
        [[ $COUNTED == "$N" ]] && break
        echo "run $config/$round: the dump counted $COUNTED puts, not $N (attempt $attempt)" >&2
    done
    report="$REPORTS/$COMMIT-$config-$round.txt"
    {
        echo "commit $COMMIT, $config, run $round: $N puts of 100 B, metaqbench -p 8 -c 4 -w 256"
        echo "metaqbench: $OUT"
        echo "Ir total $IR, Ir per put $((IR / N)), handlePut calls counted $COUNTED"
        echo
        echo "== inclusive =="
        top_functions yes "$DUMP"
        echo
        echo "== self =="
        top_functions no "$DUMP"
    } > "$report"
    cp "$DUMP" "$REPORTS/$COMMIT-$config-$round.callgrind"
    awk -v c="$config" -v r="$round" -v ir="$IR" -v n="$N" -v k="$COUNTED" -v w="$SECONDS_NS" -v st="$STEAL_PCT" \
        -v rep="$report" 'BEGIN { printf "| %s | %d | %.0f | %.0f | %s | %.0f | %s | %s |\n", c, r, ir, ir / n, k, w / 1e9, \
            st, rep }'
}

echo "commit $COMMIT ($SOURCE), N=$N puts per run"
echo
echo "| config | run | Ir | Ir per put | puts counted | seconds | steal % | report |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for round in $(seq "$RUNS"); do
    for config in $CONFIGS; do
        run "$config" "$round"
    done
done
echo
echo "reports and raw callgrind files: $REPORTS"
