#!/usr/bin/env bash
# End-to-end broker figures for docs/PERFORMANCE.md: each workload RUNS times (default 3) against
# a fresh `metaq-server` (release build, temp data directory under /tmp, 127.0.0.1), driven by
# `metaq bench`; prints every run and the median per workload as a markdown table.
#
#   Benchmarks/end-to-end.sh                 # all workloads, 3 runs each, 8 s per produce run
#   RUNS=5 DURATION=10 Benchmarks/end-to-end.sh
#   ONLY="thr-100 consume-1k" Benchmarks/end-to-end.sh   # some workloads only (p99-half needs gc-100)
#   RUNS=5 ONLY=scrape Benchmarks/end-to-end.sh       # put rates without and with a /metrics scraper
#   PIPELINE=1024 ONLY="gc-100 gc-100-sync" Benchmarks/end-to-end.sh   # more puts in flight per connection
#
# Workloads (the ones issue 3 sets targets for):
#   gc-100      group commit (ack after fdatasync), 100 B, 4 connections x 256 in flight
#   gc-1k       the same with 1 KiB messages
#   thr-100     unflushThreshold=1000 (ack after write), 100 B
#   consume-1k  2,000,000 messages of 1 KiB produced, then read back with 1 MiB gets (sendfile)
#   p99-half    group commit, 100 B, paced at half the median gc-100 rate: latency percentiles
#   tx-100      group commit, 100 B, local transactions of 10 messages (BEGIN, 10 puts, COMMIT
#               pipelined; 4 connections x 256 messages in flight); latency is per transaction
#   gc-100-async  gc-100 against a master with an asynchronous slave (a second broker on this
#               machine copying it; issue 17)
#   gc-100-sync   gc-100 against a synchronous master (minInSyncReplicas=2): a put is answered
#               once the slave has it durably too
#   scrape      gc-100 and thr-100, each run twice per round, alternately without and with a scraper
#               fetching the dashboard's /metrics (and its topics page) every second (issue 19: what
#               serving metrics costs the put path); the scraper's successful fetches are counted
#               and printed, so a run whose scraper failed is visible
#
# The `steal` column is the hypervisor's steal time over the run (from /proc/stat), in percent of
# both vCPUs: this VM shares its cores, and runs with high steal are slower for that reason alone.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
ONLY=${ONLY:-}   # e.g. ONLY="thr-100 consume-1k": run only these workloads (p99-half needs gc-100)
cd "$ROOT"
source "$ROOT/Benchmarks/lib.sh"
swift build -c release --product metaq-server >&2
swift build -c release --product metaq >&2
BIN="$ROOT/.build/release"

WORK=$(mktemp -d /tmp/metaq-e2e-XXXXXX)
SERVER_PID=""
SLAVE_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [[ -n "$SLAVE_PID" ]]; then kill "$SLAVE_PID" 2>/dev/null || true; wait "$SLAVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(free_port)
DASHBOARD_PORT=$(free_port)
sed -e 's/^unflushThreshold=.*/unflushThreshold=0/' -e "s/^\[system\]/[system]\ndashboardHttpPort=$DASHBOARD_PORT/" \
    conf/server.ini > "$WORK/group-commit.ini"
sed -e 's/^unflushThreshold=.*/unflushThreshold=1000/' -e "s/^\[system\]/[system]\ndashboardHttpPort=$DASHBOARD_PORT/" \
    conf/server.ini > "$WORK/threshold.ini"
SLAVE_PORT=$(free_port)
for mode in async sync; do
    synchronous=$([[ $mode == sync ]] && echo true || echo false)
    { cat "$WORK/group-commit.ini"; printf '\n[replication]\nsynchronous=%s\nminInSyncReplicas=2\n' "$synchronous"; } \
        > "$WORK/master-$mode.ini"
done
{ sed -e "s/^dashboardHttpPort=.*/dashboardHttpPort=$(free_port)/" "$WORK/group-commit.ini"
  printf '\n[replication]\nslaveId=1\nmaster=127.0.0.1:%s\n' "$PORT"; } > "$WORK/slave.ini"


# run CONFIG BENCH-ARGS... → prints the bench output, then "steal <percent>"
run() {
    local config=$1; shift
    rm -rf "$WORK/data" "$WORK/slave-data"
    "$BIN/metaq-server" start --local -f "$config" --data "$WORK/data" --port "$PORT" --host 127.0.0.1 \
        --foreground > "$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        "$BIN/metaq" stats --server "meta://127.0.0.1:$PORT" > /dev/null 2>&1 && break
        sleep 0.1
    done
    if [[ $config == */master-*.ini ]]; then
        # The slave, and its first hello: the master knows it before the first put.
        "$BIN/metaq-server" start --local -f "$WORK/slave.ini" --data "$WORK/slave-data" --port "$SLAVE_PORT" \
            --host 127.0.0.1 --dashboard-port 0 --foreground > "$WORK/slave.log" 2>&1 &
        SLAVE_PID=$!
        for _ in $(seq 100); do
            "$BIN/metaq" stats replication --server "meta://127.0.0.1:$PORT" 2>/dev/null | grep -q '^slaves_in_sync 1' && break
            sleep 0.1
        done
    fi
    local s0 t0 s1 t1 scraper=""
    if [[ -n "${SCRAPE:-}" ]]; then
        # One fetch of /metrics and one of the topics page per second, counted when they succeed.
        ( n=0; trap 'echo "scrapes $n" > "$WORK/scrapes"; exit 0' TERM
          while true; do
              curl -sf -o /dev/null "http://127.0.0.1:$DASHBOARD_PORT/metrics" \
                  && curl -sf -o /dev/null "http://127.0.0.1:$DASHBOARD_PORT/topics" && n=$((n + 1))
              sleep 1
          done ) &
        scraper=$!
    fi
    s0=$(steal_ticks); t0=$(total_ticks)
    "$BIN/metaq" bench --server "meta://127.0.0.1:$PORT" "$@" 2>/dev/null
    s1=$(steal_ticks); t1=$(total_ticks)
    if [[ -n "$scraper" ]]; then
        kill -TERM "$scraper"; wait "$scraper" 2>/dev/null || true
        cat "$WORK/scrapes"
    fi
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    if [[ -n "$SLAVE_PID" ]]; then kill "$SLAVE_PID"; wait "$SLAVE_PID" 2>/dev/null || true; SLAVE_PID=""; fi
    # The broker's own account of its sync cycles (logged at stop), for the latency analysis.
    grep "sync cycles since start" "$WORK/server.log" | sed -e 's/.*metaq-server: /cycles /' -e 's/ \[Runtime\].*//' || true
    awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "steal %.0f\n", (t > 0) ? (100 * s / t) : 0 }'
}

# field extractors over one run's output
rate_of() { awk -v what="$1" '$1 == what":" {getline; print $1}' | head -1; }
mbs_of() { awk -v what="$1" '$1 == what":" {getline; print $3}' | head -1; }
lat_of() { awk -v what="$1" '$1 == what":" {getline; getline; print $4" / "$6" / "$8" / "$10}' | head -1; }
steal_of() { awk '$1 == "steal" {print $2}'; }
scrapes_of() { awk '$1 == "scrapes" {print " (" $2 " scrapes)"}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| workload | run | msgs/s | MB/s | latency µs p50 / p99 / p99.9 / max | steal % |"
echo "| --- | ---: | ---: | ---: | --- | ---: |"

declare -A MEDIAN
CYCLES=()
workload() {
    local name=$1 phase=$2 config=$3; shift 3
    if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then return; fi
    local rates=()
    for i in $(seq "$RUNS"); do
        local out
        out=$(run "$config" "$@")
        local r m l s
        r=$(rate_of "$phase" <<< "$out"); m=$(mbs_of "$phase" <<< "$out")
        l=$(lat_of "$phase" <<< "$out"); s="$(steal_of <<< "$out")$(scrapes_of <<< "$out")"
        rates+=("$r")
        CYCLES+=("$name run $i: $(awk '$1 == "cycles" {$1 = ""; print substr($0, 2)}' <<< "$out")")
        echo "| $name | $i | $r | $m | $l | $s |"
    done
    MEDIAN[$name]=$(printf '%s\n' "${rates[@]}" | median)
    echo "| **$name** | **median** | **${MEDIAN[$name]}** | | | |"
}

COMMON=(--connections 4 --pipeline "${PIPELINE:-256}")
workload gc-100 produce "$WORK/group-commit.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"
workload gc-1k produce "$WORK/group-commit.ini" produce "${COMMON[@]}" --message-size 1024 --duration "$DURATION"
workload thr-100 produce "$WORK/threshold.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"
workload tx-100 produce "$WORK/group-commit.ini" produce "${COMMON[@]}" --message-size 100 --transaction-size 10 --duration "$DURATION"
workload gc-100-async produce "$WORK/master-async.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"
workload gc-100-sync produce "$WORK/master-sync.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"
workload consume-1k consume "$WORK/group-commit.ini" both "${COMMON[@]}" --message-size 1024 --count 2000000
# Without and with a /metrics scraper, alternating run by run (RUNS rounds of each pair).
scrape_pair() {
    local name=$1 config=$2; shift 2
    if [[ -z "$ONLY" || " $ONLY " != *" scrape "* ]]; then return; fi
    local plain=() scraped=()
    for i in $(seq "$RUNS"); do
        for with in "" 1; do
            local out r s
            out=$(SCRAPE=$with run "$config" "$@")
            r=$(rate_of produce <<< "$out"); s="$(steal_of <<< "$out")$(scrapes_of <<< "$out")"
            if [[ -n "$with" ]]; then scraped+=("$r"); echo "| $name + scraper | $i | $r | | $(lat_of produce <<< "$out") | $s |"
            else plain+=("$r"); echo "| $name | $i | $r | | $(lat_of produce <<< "$out") | $s |"; fi
        done
    done
    echo "| **$name** | **median** | **$(printf '%s\n' "${plain[@]}" | median)** | | | |"
    echo "| **$name + scraper** | **median** | **$(printf '%s\n' "${scraped[@]}" | median)** | | | |"
}
scrape_pair gc-100 "$WORK/group-commit.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"
scrape_pair thr-100 "$WORK/threshold.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION"

if [[ -n "${MEDIAN[gc-100]:-}" ]]; then
    HALF=$(( ${MEDIAN[gc-100]} / 2 ))
    workload p99-half produce "$WORK/group-commit.ini" produce "${COMMON[@]}" --message-size 100 --duration "$DURATION" --rate "$HALF"
    echo
    echo "p99-half paced at $HALF msgs/s (half the gc-100 median)."
fi
echo
echo "Broker sync cycles per run (each stage p50/p99/max µs; batch_us per put answered):"
for line in "${CYCLES[@]}"; do echo "- $line"; done
