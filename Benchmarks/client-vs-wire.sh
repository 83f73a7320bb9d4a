#!/usr/bin/env bash
# MetaQClient's async producer against the raw MetaQ wire, on the same broker in the same run (issue 18).
#
# Each round starts a fresh `metaq-server` (release build, group commit, topic `bench` with 8
# partitions, no ZooKeeper) and loads it twice in turn: the independent Go load generator
# (`metaqbench`, 4 connections × 256 puts in flight, 100 B) for DURATION seconds, then
# `metaq bench-group --servers … --produce-only` (one MetaQClient, 4 producers — one connection each,
# WINDOW async sends outstanding, at most 256 in flight per connection, COUNT messages of 100 B; each
# put names partition -1 and the broker picks). Prints every measurement, then the medians and the client/wire ratio.
#
#   Benchmarks/client-vs-wire.sh                  # 3 rounds
#   RUNS=5 COUNT=2000000 Benchmarks/client-vs-wire.sh
#   BUILD=0 Benchmarks/client-vs-wire.sh          # use the release binaries as they are
#   CLIENTS="before=/tmp/metaq-before after=.build/release/metaq" Benchmarks/client-vs-wire.sh
#                                                  # several client builds, each in every round
#
# Columns: msgs/s; the CPU of the load's process (the client or metaqbench) over the run in % of
# one core, and per message (utime+stime from /proc); the server's CPU in % of one core; the CPU
# every other process of the VM used meanwhile, in % of all vCPUs (busy time from /proc/stat minus
# load and server; on a VM shared with other jobs a run is only comparable with its neighbours);
# the hypervisor's steal time over the run in % of all vCPUs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
COUNT=${COUNT:-1000000}
SIZE=${SIZE:-100}
BUILD=${BUILD:-1}
# Sends the application keeps outstanding. The producers put at most 256 each on the wire (1,024 in
# all, as metaqbench's 4 × 256); the rest wait in their queues, so the wire stays full while the
# benchmark's sending task refills its window (it wakes when half of it is free).
WINDOW=${WINDOW:-2048}
cd "$ROOT"
source "$ROOT/Benchmarks/lib.sh"

METAQBENCH=$(command -v metaqbench || true)
if [[ -z "$METAQBENCH" ]]; then
    METAQBENCH=$ROOT/.build/metaqbench
    GO111MODULE=off go build -o "$METAQBENCH" "${METAQBENCH_SRC:-$ROOT/../shared/bench/metaqbench/main.go}" >&2
fi
if [[ $BUILD == 1 ]]; then
    swift build -c release --product metaq-server >&2
    swift build -c release --product metaq >&2
fi
BIN="$ROOT/.build/release"
CLIENTS=${CLIENTS:-"client=$BIN/metaq"}

WORK=$(mktemp -d /tmp/metaq-client-vs-wire-XXXXXX)
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

{ sed -e "s/^unflushThreshold=.*/unflushThreshold=0/" conf/server.ini; printf '\n[topic=bench]\nnumPartitions=8\n'; } \
    > "$WORK/server.ini"

idle_ticks() { awk '/^cpu /{print $5 + $6}' /proc/stat; }
# cutime+cstime of process $1: grows by a child's CPU when the child ends and is waited for.
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

start_server() {
    PORT=$(free_port)
    rm -rf "$WORK/data"
    start_broker "$WORK/server.ini" "$WORK/data" "$PORT" "$WORK/server.log"
}

# measure COMMAND... → "<msgs/s> <load cpu %> <load cpu µs/msg> <server cpu %> <others %> <steal %>"; the command prints msgs/s
# runs as a child of this shell (its CPU is read from the shell's totals of waited-for children).
measure() {
    local me=$BASHPID s0 t0 i0 c0 l0 w0 s1 t1 i1 c1 l1 w1 out
    s0=$(steal_ticks); t0=$(total_ticks); i0=$(idle_ticks); c0=$(cpu_ticks "$SERVER_PID"); l0=$(child_ticks "$me")
    w0=$(date +%s%N)
    out=$("$@")
    s1=$(steal_ticks); t1=$(total_ticks); i1=$(idle_ticks); c1=$(cpu_ticks "$SERVER_PID"); l1=$(child_ticks "$me")
    w1=$(date +%s%N)
    awk -v out="$out" -v c=$((c1 - c0)) -v l=$((l1 - l0)) -v hz="$HZ" -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v t=$((t1 - t0)) \
        -v i=$((i1 - i0)) -v n="$(nproc)" \
        'BEGIN { secs = w / 1e9; other = 100 * ((t - i - s) / hz / secs - l / hz / secs - c / hz / secs) / n
                 printf "%s %.0f %.2f %.0f %.0f %.0f\n", out, 100 * l / hz / secs, (out > 0) ? 1e6 * l / hz / (out * secs) : 0,
                 100 * c / hz / secs, (other > 0) ? other : 0, (t > 0) ? 100 * s / t : 0 }'
}

wire_rate() {
    "$METAQBENCH" -addr "127.0.0.1:$PORT" -topic bench -p 8 -c 4 -w 256 -size "$SIZE" -n 0 -d "${DURATION}s" \
        | sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p'
}

client_rate() {
    "$1" bench-group --servers "meta://127.0.0.1:$PORT" --produce-only --topic bench --producers 4 \
        --window "$WINDOW" --max-in-flight 256 --count "$COUNT" --message-size "$SIZE" \
        | sed -n 's/.* = \([0-9]*\) msgs\/s.*/\1/p'
}

echo "| round | load | msgs/s | load CPU % | load CPU µs/msg | server CPU % | others % | steal % |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
declare -A RATES
for round in $(seq "$RUNS"); do
    start_server
    read -r rate lcpu lus scpu others steal < <(measure wire_rate)
    echo "| $round | wire: metaqbench -c 4 -w 256 | $rate | $lcpu | $lus | $scpu | $others | $steal |"
    RATES[wire]="${RATES[wire]:-} $rate"
    stop_broker
    for client in $CLIENTS; do
        name=${client%%=*}
        start_server
        read -r rate lcpu lus scpu others steal < <(measure client_rate "${client#*=}")
        echo "| $round | $name: MetaQClient 4 producers, window $WINDOW | $rate | $lcpu | $lus | $scpu | $others | $steal |"
        RATES[$name]="${RATES[$name]:-} $rate"
        stop_broker
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wire=$(median <<< "${RATES[wire]}")
echo
echo "Medians of $RUNS (group commit, $SIZE B): raw wire $wire msgs/s"
for client in $CLIENTS; do
    name=${client%%=*}
    rate=$(median <<< "${RATES[$name]}")
    echo "  $name: $rate msgs/s, ratio to the wire $(awk -v a="$rate" -v b="$wire" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
done
