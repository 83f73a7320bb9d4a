# Shared pieces of the Benchmarks/*.sh scripts (sourced, not run).
#   free_port                → a free TCP port on 127.0.0.1
#   steal_ticks, total_ticks → /proc/stat's steal and total CPU ticks (steal % over a run)
#   cpu_ticks PID            → utime+stime of PID
#   start_broker INI DATA PORT LOG → starts $BIN/metaq-server in local mode in the background,
#                              sets SERVER_PID and returns once `metaq stats` answers (10 s at most)
#   stop_broker              → SIGTERM to SERVER_PID, waits, clears it

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }
total_ticks() { awk '/^cpu /{s=0; for(i=2;i<=NF;i++) s+=$i; print s}' /proc/stat; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_broker() {
    local ini=$1 data=$2 port=$3 log=$4
    "$BIN/metaq-server" start --local -f "$ini" --data "$data" --port "$port" --host 127.0.0.1 --foreground > "$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        "$BIN/metaq" stats --server "meta://127.0.0.1:$port" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
}

stop_broker() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
