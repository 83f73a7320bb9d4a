#!/usr/bin/env bash
# Our broker against Redis streams with `appendfsync always`, in the same run (issue 18).
#
# Each round starts a fresh `metaq-server` (release build, group commit, topic `bench` with 8
# partitions) and a fresh `redis-server --appendonly yes --appendfsync always`, and loads each at
# every shape (connections × requests in flight per connection) in turn — ours, then Redis, shape
# by shape — so both see the same minutes of this shared VM. Ours is driven by the independent
# MetaQ-wire load generator (`metaqbench`, ../shared/bench), Redis by `redis-benchmark` (XADD of a
# 100-byte field, pipelined). Prints every measurement, then the medians and the ratio per shape.
#
#   Benchmarks/peers.sh                               # 3 rounds, shapes 4x256 50x64 8x512, 8 s each
#   RUNS=5 DURATION=10 SHAPES="50x64" Benchmarks/peers.sh
#   PEERS=metaq Benchmarks/peers.sh                   # ours only (quick before/after checks)
#   CONFIG=threshold Benchmarks/peers.sh              # ours with unflushThreshold=1000 (Redis unchanged)
#   SYSTEM="ioThreads=0" PEERS=metaq Benchmarks/peers.sh   # extra [system] keys for ours
#
# Columns: msgs/s; the server's CPU over the run in % of one core (utime+stime from /proc); the
# hypervisor's steal time over the run in % of both vCPUs (runs with high steal are slower for that
# alone). Needs redis-server/redis-benchmark and Go (installed with apt when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
SHAPES=${SHAPES:-"4x256 50x64 8x512"}
PEERS=${PEERS:-"metaq redis"}
CONFIG=${CONFIG:-group-commit}
SIZE=${SIZE:-100}
SYSTEM=${SYSTEM:-}   # extra [system] lines for our broker, e.g. "ioThreads=0"
REDIS_COUNT=${REDIS_COUNT:-4000000}
METAQBENCH_SRC=${METAQBENCH_SRC:-$ROOT/../shared/bench/metaqbench/main.go}
cd "$ROOT"
source "$ROOT/Benchmarks/lib.sh"

need() { command -v "$1" > /dev/null 2>&1; }
if [[ " $PEERS " == *" redis "* ]] && ! need redis-server; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >&2
    systemctl disable --now redis-server > /dev/null 2>&1 || true
fi
METAQBENCH=$(command -v metaqbench || true)
if [[ -z "$METAQBENCH" ]]; then
    need go || DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go >&2
    METAQBENCH=$ROOT/.build/metaqbench
    GO111MODULE=off go build -o "$METAQBENCH" "$METAQBENCH_SRC" >&2
fi
swift build -c release --product metaq-server >&2
swift build -c release --product metaq >&2
BIN="$ROOT/.build/release"

WORK=$(mktemp -d /tmp/metaq-peers-XXXXXX)
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

threshold=0
[[ $CONFIG == threshold ]] && threshold=1000
{ sed -e "s/^unflushThreshold=.*/unflushThreshold=$threshold/" -e "s/^\[system\]\$/[system]\n${SYSTEM// /\\n}/" conf/server.ini
  printf '\n[topic=bench]\nnumPartitions=8\n'; } > "$WORK/server.ini"

HZ=$(getconf CLK_TCK)

# measure PID COMMAND... → "<command's stdout> <server cpu %> <steal %>" on one line
measure() {
    local pid=$1; shift
    local s0 t0 c0 w0 s1 t1 c1 w1 out
    s0=$(steal_ticks); t0=$(total_ticks); c0=$(cpu_ticks "$pid"); w0=$(date +%s%N)
    out=$("$@")
    s1=$(steal_ticks); t1=$(total_ticks); c1=$(cpu_ticks "$pid"); w1=$(date +%s%N)
    awk -v out="$out" -v c=$((c1 - c0)) -v hz="$HZ" -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v t=$((t1 - t0)) \
        'BEGIN { printf "%s %.0f %.0f\n", out, 100 * c / hz / (w / 1e9), (t > 0) ? 100 * s / t : 0 }'
}

run_metaq() {
    local connections=$1 window=$2 port
    port=$(free_port)
    rm -rf "$WORK/data"
    start_broker "$WORK/server.ini" "$WORK/data" "$port" "$WORK/server.log"
    metaq_rate() {
        "$METAQBENCH" -addr "127.0.0.1:$port" -topic bench -p 8 -c "$connections" -w "$window" -size "$SIZE" -n 0 \
            -d "${DURATION}s" | sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p'
    }
    measure "$SERVER_PID" metaq_rate
    stop_broker
}

run_redis() {
    local connections=$1 window=$2 port value
    port=$(free_port)
    rm -rf "$WORK/redis"; mkdir -p "$WORK/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always --dir "$WORK/redis" \
        > "$WORK/redis.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
    value=$(head -c "$SIZE" /dev/zero | tr '\0' x)
    redis_rate() {
        redis-benchmark -p "$port" -P "$window" -c "$connections" -n "$REDIS_COUNT" --csv XADD s '*' f "$value" \
            | awk -F'"' 'NR == 2 {printf "%.0f\n", $4}'
    }
    measure "$SERVER_PID" redis_rate
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

echo "| round | shape | peer | msgs/s | server CPU % | steal % |"
echo "| ---: | --- | --- | ---: | ---: | ---: |"
declare -A RATES
for round in $(seq "$RUNS"); do
    for shape in $SHAPES; do
        connections=${shape%x*}; window=${shape#*x}
        for peer in $PEERS; do
            read -r rate cpu steal < <("run_$peer" "$connections" "$window")
            echo "| $round | $connections × $window | $peer | $rate | $cpu | $steal |"
            RATES[$shape.$peer]="${RATES[$shape.$peer]:-} $rate"
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "Medians of $RUNS ($CONFIG, $SIZE B):"
echo
header="| connections × in flight |"; rule="| --- |"
for peer in $PEERS; do header+=" $peer |"; rule+=" ---: |"; done
[[ " $PEERS " == *" metaq "* && " $PEERS " == *" redis "* ]] && { header+=" ratio |"; rule+=" ---: |"; }
echo "$header"; echo "$rule"
for shape in $SHAPES; do
    row="| ${shape/x/ × } |"
    declare -A M=()
    for peer in $PEERS; do M[$peer]=$(median <<< "${RATES[$shape.$peer]}"); row+=" ${M[$peer]} |"; done
    if [[ -n "${M[metaq]:-}" && -n "${M[redis]:-}" ]]; then
        row+=" $(awk -v a="${M[metaq]}" -v b="${M[redis]}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }') |"
    fi
    echo "$row"
done
