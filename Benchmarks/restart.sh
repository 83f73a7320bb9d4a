#!/usr/bin/env bash
# Restart time with a large data directory (issue 18: goal, serving within 1 s with 10 GiB).
#
# Fills a temp data directory under /tmp with GIB GiB (release `metaq-server`, unflushThreshold=1000,
# topic `bench` with 8 partitions, SIZE-byte messages from the independent load generator
# `metaqbench -p 8 -c 4 -w 64`), stops the broker cleanly (SIGTERM, wait), then restarts it RUNS
# times in each way below and measures the wall time from exec to its first answer (a `version`
# request polled every 2 ms from a small Python client; the broker listens only once every
# partition is recovered):
#
#   clean-warm   after a clean stop, the data in the page cache (a process restart)
#   clean-cold   after a clean stop, the data directory's pages evicted first (posix_fadvise
#                DONTNEED on its files only: nothing else on the VM loses its cache), as after a
#                reboot
#   crash        after SIGKILL in the middle of a load (recovery must check the tail)
#   crash-cold   the same, with the data's pages evicted before the restart
#
# Each row also gives the size of the last segment of every partition together (a start after a
# crash verifies every record there; after a clean stop the clean-stop mark lets it skip them, and
# the rate column is then meaningless) and the rate it was read at, and how long the clean
# stop after the restart took. The broker's own log lines for the restart (its recovery of each
# partition and "metaq-server started") go to the report directory. With PERF=1 the first restart
# of each kind runs under `perf record -g` (slower for it), and the report lists the functions
# with the most samples. Checks the free disk space first; the data
# directory is deleted at the end (also on failure).
#
#   Benchmarks/restart.sh                       # 10 GiB of 4 KiB messages, 3 restarts of each kind
#   GIB=2 RUNS=1 Benchmarks/restart.sh          # a quick check
#   PERF=1 RUNS=1 Benchmarks/restart.sh         # where the restart's time goes
#   KINDS="clean-warm crash" Benchmarks/restart.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GIB=${GIB:-10}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
KINDS=${KINDS:-"clean-warm clean-cold crash crash-cold"}
PERF=${PERF:-0}
METAQBENCH=$(command -v metaqbench) || { echo "metaqbench is not on PATH (../shared/bench/metaqbench)" >&2; exit 1; }
cd "$ROOT"
source "$ROOT/Benchmarks/lib.sh"

WORK=$(mktemp -d /tmp/metaq-restart-XXXXXX)
REPORTS=${REPORTS:-$(mktemp -d /tmp/metaq-restart-reports-XXXXXX)}
mkdir -p "$REPORTS"
SERVER_PID=""
LOAD_PID=""
cleanup() {
    if [[ -n "$LOAD_PID" ]]; then kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

need_kib=$(( (GIB + 2) * 1024 * 1024 ))
free_kib=$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')
echo "disk: $((free_kib / 1024 / 1024)) GiB free under /tmp, $((need_kib / 1024 / 1024)) GiB needed"
((free_kib >= need_kib)) || { echo "not enough free disk space for $GIB GiB of data" >&2; exit 1; }

swift build -c release --product metaq-server >&2
swift build -c release --product metaq >&2
BIN="$ROOT/.build/release"

{ sed -e 's/^unflushThreshold=.*/unflushThreshold=1000/' conf/server.ini; printf '\n[topic=bench]\nnumPartitions=8\n'; } \
    > "$WORK/server.ini"
PORT=$(free_port)


# Waits for the first answer to `version` on PORT; prints the milliseconds since START_NS (the
# time just before exec). Exits 1 after 120 s or when the broker died.
cat > "$WORK/first-answer.py" <<'EOF'
import os, socket, sys, time
port, start_ns, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    if not os.path.exists(f"/proc/{pid}"):
        sys.exit("the broker exited")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"version 1\r\n")
            if s.recv(64).startswith(b"result 200"):
                print(f"{(time.time_ns() - start_ns) / 1e6:.0f}")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.002)
sys.exit("no answer within 120 s")
EOF

# Evicts the data directory's pages from the page cache (its files only) and prints how many
# MiB of them stayed cached (dirty pages cannot be dropped).
evict() {
    python3 - "$WORK/data" <<'EOF'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
EOF
    find "$WORK/data" -name '*.meta' -print0 | xargs -0 fincore -b -n -o RES 2>/dev/null \
        | awk '{s += $1} END {printf "%.0f", s / 1048576}'
}

# The bytes of the last segment of every partition, in MiB: what a start scans record by record
# (PartitionLog.open → scanLast verifies every record's CRC32 there; sealed segments are not read)
# unless a clean stop left its clean-stop mark.
last_segments_mib() {
    local dir total=0 last
    for dir in "$WORK"/data/*/; do
        last=$(find "$dir" -maxdepth 1 -name '*.meta' | sort | tail -1)
        [[ -n "$last" ]] && total=$((total + $(stat -c %s "$last")))
    done
    echo $((total / 1048576))
}

# start LOG [perf-output] → starts the broker in the background; sets SERVER_PID and START_NS
start() {
    local log=$1 perf_out=${2:-}
    START_NS=$(date +%s%N)
    if [[ -n "$perf_out" ]]; then
        perf record -F 2000 -g -o "$perf_out" -- "$BIN/metaq-server" start --local -f "$WORK/server.ini" \
            --data "$WORK/data" --port "$PORT" --host 127.0.0.1 --foreground > "$log" 2>&1 &
    else
        "$BIN/metaq-server" start --local -f "$WORK/server.ini" --data "$WORK/data" --port "$PORT" \
            --host 127.0.0.1 --foreground > "$log" 2>&1 &
    fi
    SERVER_PID=$!
}

# stop → SIGTERM, wait; sets STOP_MS to the milliseconds the clean stop took (not in a
# subshell: only this shell can wait for the broker)
stop() {
    local t0
    t0=$(date +%s%N)
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# The broker's pid: under perf, the broker is perf's child.
broker_pid() {
    local child
    child=$(pgrep -P "$SERVER_PID" 2>/dev/null | head -1 || true)
    echo "${child:-$SERVER_PID}"
}

echo "filling $WORK/data with $GIB GiB of $SIZE-byte messages..."
count=$(( GIB * 1024 * 1024 * 1024 / (SIZE + 20) + 1 ))
start "$WORK/fill.log"
python3 "$WORK/first-answer.py" "$PORT" "$START_NS" "$SERVER_PID" > /dev/null
w0=$(date +%s%N)
fill=$("$METAQBENCH" -addr "127.0.0.1:$PORT" -topic bench -p 8 -c 4 -w 64 -size "$SIZE" -n "$count" -timeout 30m)
grep -q " non200=0 " <<< "$fill" || { echo "the fill had errors: $fill" >&2; exit 1; }
stop; stop_ms=$STOP_MS
echo "filled: $(du -sh "$WORK/data" | cut -f1) in $(( ($(date +%s%N) - w0) / 1000000000 )) s" \
     "($(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<< "$fill") msgs/s); clean stop took $stop_ms ms;" \
     "segments: $(find "$WORK/data" -name '*.meta' | wc -l), the last of each partition: $(last_segments_mib) MiB"
echo
echo "| kind | run | first answer ms | last segments MiB | MB/s of them | clean stop after it ms | data cached at start MiB | steal % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

for kind in $KINDS; do
    for run in $(seq "$RUNS"); do
        stop_ms=-
        if [[ $kind == crash* ]]; then
            # A load in flight, then SIGKILL: the broker dies with unsynced bytes at every tail.
            start "$WORK/before-crash.log"
            python3 "$WORK/first-answer.py" "$PORT" "$START_NS" "$SERVER_PID" > /dev/null
            # A short load (about a second), so the crash runs do not grow the data much.
            "$METAQBENCH" -addr "127.0.0.1:$PORT" -topic bench -p 8 -c 4 -w 64 -size "$SIZE" -n 0 -d 2s \
                > /dev/null 2>&1 &
            LOAD_PID=$!
            sleep 1
            kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
            wait "$LOAD_PID" 2>/dev/null || true; LOAD_PID=""
        fi
        cached=-
        [[ $kind == *cold ]] && cached=$(evict)
        perf_out=""
        [[ $PERF == 1 && $run == 1 ]] && perf_out="$REPORTS/perf-$kind.data"
        scanned=$(last_segments_mib)
        s0=$(steal_ticks); t0=$(total_ticks)
        start "$REPORTS/$kind-$run.log" "$perf_out"
        ms=$(python3 "$WORK/first-answer.py" "$PORT" "$START_NS" "$SERVER_PID")
        s1=$(steal_ticks); t1=$(total_ticks)
        if [[ -n "$perf_out" ]]; then
            # Only the start: stop the broker (perf's child) cleanly once it answers; perf then ends.
            kill -TERM "$(broker_pid)"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
            perf report -i "$perf_out" --no-children --stdio --percent-limit 1 -g none 2>/dev/null \
                | grep -v '^#' | grep -v '^$' | head -30 > "$REPORTS/perf-$kind.txt" || true
        else
            stop; stop_ms=$STOP_MS
        fi
        awk -v k="$kind" -v r="$run" -v ms="$ms" -v sc="$scanned" -v st="$stop_ms" -v c="$cached" -v s=$((s1 - s0)) \
            -v t=$((t1 - t0)) 'BEGIN { printf "| %s | %d | %s | %d | %.0f | %s | %s | %.0f |\n", k, r, ms, sc,
                sc * 1048576 / 1e6 / (ms / 1000), st, c, (t > 0) ? 100 * s / t : 0 }'
    done
done
echo
echo "the broker's log of each restart$([[ $PERF == 1 ]] && echo ", perf reports"): $REPORTS"
