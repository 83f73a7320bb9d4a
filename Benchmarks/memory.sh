#!/usr/bin/env bash
# The broker's memory with 1,000 partitions under load (issue 18: goal ≤ 256 MiB RSS).
#
# Starts a fresh release `metaq-server` (group commit, topic `bench` with PARTITIONS partitions,
# temp data directory under /tmp, 127.0.0.1) and loads it with the independent load generator
# (`metaqbench -p PARTITIONS -c 50 -w 64`): DURATION seconds of 100 B messages, then DURATION
# seconds of 1 KiB messages, on the same broker. It samples the broker's VmRSS and VmHWM from
# /proc/PID/status every 0.5 s and prints, per phase, the peak and the steady RSS (median of the
# samples in the second half of the phase), the rate, and where the memory is at the end of each
# phase (/proc/PID/smaps_rollup, the largest mappings of `pmap -x`), plus jemalloc's own totals
# (MALLOC_CONF=stats_print:true, printed by the broker at exit). The samples and the details are
# written to a directory whose path is printed; the data directory is removed.
#
#   Benchmarks/memory.sh                          # 1,000 partitions, 20 s per phase
#   PARTITIONS=100 DURATION=10 Benchmarks/memory.sh
#   CONFIG=threshold Benchmarks/memory.sh         # unflushThreshold=1000 instead of group commit
#   SIZES="100 1024 16384" Benchmarks/memory.sh   # other message sizes (a phase each)
#
# Limits that apply at 1,000 partitions: the topic has its own [topic=bench] section, so
# maxAutoCreatedPartitions (partitions created through wildcard sections) does not; the descriptor
# budget is partitions + maxConnections + 128 = 11,128 with the default maxConnections=10000, and
# the broker raises its soft limit to the hard one at start (the script prints both; the broker
# warns in its log when the hard limit is lower). `steal` is the hypervisor's steal time over
# the phase, in % of both vCPUs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTITIONS=${PARTITIONS:-1000}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-50}
WINDOW=${WINDOW:-64}
CONFIG=${CONFIG:-group-commit}
SIZES=${SIZES:-"100 1024"}   # message sizes, one phase each, in this order
METAQBENCH=$(command -v metaqbench) || { echo "metaqbench is not on PATH (../shared/bench/metaqbench)" >&2; exit 1; }
cd "$ROOT"
source "$ROOT/Benchmarks/lib.sh"
swift build -c release --product metaq-server >&2
swift build -c release --product metaq >&2
BIN="$ROOT/.build/release"

WORK=$(mktemp -d /tmp/metaq-memory-XXXXXX)
REPORTS=${REPORTS:-$(mktemp -d /tmp/metaq-memory-reports-XXXXXX)}
mkdir -p "$REPORTS"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
    if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

threshold=0
[[ $CONFIG == threshold ]] && threshold=1000
{ sed -e "s/^unflushThreshold=.*/unflushThreshold=$threshold/" conf/server.ini
  printf '\n[topic=bench]\nnumPartitions=%d\n' "$PARTITIONS"; } > "$WORK/server.ini"

kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$SERVER_PID/status"; }

PORT=$(free_port)
MALLOC_CONF=stats_print:true "$BIN/metaq-server" start --local -f "$WORK/server.ini" --data "$WORK/data" \
    --port "$PORT" --host 127.0.0.1 --foreground > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 60))
until "$BIN/metaq" stats --server "meta://127.0.0.1:$PORT" > /dev/null 2>&1; do
    if ((SECONDS > deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server did not answer; its log:" >&2; cat "$WORK/server.log" >&2; exit 1
    fi
    sleep 0.1
done
echo "descriptor limit of the broker: $(awk '/^Max open files/ {print $4 " soft, " $5 " hard"}' "/proc/$SERVER_PID/limits");" \
     "its log: $(grep -m1 'file descriptor limit' "$WORK/server.log" | sed -e 's/.*metaq-server: //' -e 's/ \[.*//')"
echo "idle after start ($PARTITIONS partitions created): VmRSS $(kib VmRSS) KiB, VmHWM $(kib VmHWM) KiB"

# Samples "<seconds since start> <phase> <VmRSS KiB> <VmHWM KiB>" every 0.5 s into samples.txt.
echo idle > "$WORK/phase"
(
    t0=$(date +%s%N)
    while [[ -r /proc/$SERVER_PID/status ]]; do
        awk -v t=$(( ($(date +%s%N) - t0) / 1000000 )) -v phase="$(cat "$WORK/phase")" \
            '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {if (r) printf "%.1f %s %d %d\n", t / 1000, phase, r, h}' \
            "/proc/$SERVER_PID/status" 2>/dev/null || true
        sleep 0.5
    done
) > "$REPORTS/samples.txt" &
SAMPLER_PID=$!

snapshot() {
    local name=$1
    {
        echo "== smaps_rollup =="; cat "/proc/$SERVER_PID/smaps_rollup"
        echo; echo "== status =="; grep -E '^(Vm|Rss|Threads)' "/proc/$SERVER_PID/status"
        echo; echo "== pmap -x, largest RSS first =="
        # (awk, not head, ends the pipe: head would leave sort to die of SIGPIPE, which pipefail and
        # set -e turn into the end of the script)
        pmap -x "$SERVER_PID" | awk 'NR > 2 && $1 ~ /^[0-9a-f]+$/' | sort -k3 -n -r | awk 'NR <= 20'
        echo; echo "== pmap -x total =="; pmap -x "$SERVER_PID" | tail -1
    } > "$REPORTS/$name.txt"
}

echo
echo "| phase | msgs/s | peak VmRSS MiB | steady VmRSS MiB | VmHWM MiB | anon MiB | file MiB | steal % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for size in $SIZES; do
    phase="${size}B"
    echo "$phase" > "$WORK/phase"
    s0=$(steal_ticks); t0=$(total_ticks)
    if ! out=$("$METAQBENCH" -addr "127.0.0.1:$PORT" -topic bench -p "$PARTITIONS" -c "$CONNECTIONS" -w "$WINDOW" \
        -size "$size" -n 0 -d "${DURATION}s" -timeout "$((DURATION + 60))s" 2> "$WORK/metaqbench.err"); then
        echo "metaqbench failed in phase $phase: $(cat "$WORK/metaqbench.err")" >&2
        echo "broker alive: $(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no); end of its log:" >&2
        tail -5 "$WORK/server.log" >&2
        exit 1
    fi
    s1=$(steal_ticks); t1=$(total_ticks)
    snapshot "$phase"
    echo "after-$phase" > "$WORK/phase"
    grep -q " non200=0 " <<< "$out" || echo "warning: metaqbench reported errors: $out" >&2
    echo "$out" >> "$REPORTS/metaqbench.txt"
    rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<< "$out")
    anon=$(awk '/^Anonymous:/ {printf "%.0f", $2 / 1024}' "$REPORTS/$phase.txt")
    file=$(awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {printf "%.0f", (r - a) / 1024}' "$REPORTS/$phase.txt")
    peak=$(awk -v phase="$phase" '$2 == phase && $3 > p {p = $3} END {print p + 0}' "$REPORTS/samples.txt")
    # steady: the median of the samples in the second half of the phase
    steady=$(awk -v phase="$phase" '$2 == phase {v[++n] = $3} END {for (i = int(n / 2) + 1; i <= n; i++) print v[i]}' \
        "$REPORTS/samples.txt" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)] + 0}')
    awk -v phase="$phase" -v rate="$rate" -v peak="$peak" -v steady="$steady" -v hwm="$(kib VmHWM)" -v anon="$anon" \
        -v file="$file" -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN {
            printf "| %s | %s | %.0f | %.0f | %.0f | %s | %s | %.0f |\n", phase, rate, peak / 1024, steady / 1024, hwm / 1024,
                anon, file, (t > 0) ? 100 * s / t : 0 }'
done

# jemalloc's totals, printed at exit (stats_print): stop the broker cleanly and read them.
kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
cp "$WORK/server.log" "$REPORTS/server.log"
echo
echo "jemalloc at exit (bytes):"
grep -E '^(Allocated|Background|Arenas|Runtime)|^ *(tcache_max|narenas):' "$WORK/server.log" | head -8 || true
echo
echo "samples, snapshots (smaps_rollup, pmap -x) and the broker's log: $REPORTS"
