#!/usr/bin/env bash
# An example cluster on this machine: one ZooKeeper on 127.0.0.1:2181 and brokers 0 and 1
# (conf/cluster/broker0.ini and broker1.ini, ports 8123 and 8124), all in the background, data and
# logs under $METAQ_CLUSTER_DIR (default /tmp/metaq-cluster).
#   scripts/run-cluster.sh          start (builds release binaries first)
#   scripts/run-cluster.sh stop     stop the brokers (they unregister), then ZooKeeper
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${METAQ_CLUSTER_DIR:-/tmp/metaq-cluster}
SERVER=.build/release/metaq-server

zk_ok() { [ "$(timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2181 && printf ruok >&3 && cat <&3' 2>/dev/null)" = imok ]; }

stop() {
  for id in 0 1; do
    [ -d "$DIR/broker$id" ] && "$SERVER" stop --data "$DIR/broker$id" || true
  done
  if [ -f "$DIR/zookeeper.pid" ]; then
    kill "$(cat "$DIR/zookeeper.pid")" 2>/dev/null || true
    rm -f "$DIR/zookeeper.pid"
    echo "ZooKeeper stopped"
  fi
}

if [ "${1:-start}" = stop ]; then stop; exit 0; fi

scripts/install-deps.sh
swift build -c release --product metaq-server
swift build -c release --product metaq
mkdir -p "$DIR/zookeeper"
if zk_ok; then
  echo "a ZooKeeper already answers on 127.0.0.1:2181; using it"
else
  ZK_JAR=$(dpkg -L libzookeeper-java | grep '/zookeeper\.jar$' | head -1)
  cat > "$DIR/zookeeper/zoo.cfg" <<CFG
tickTime=2000
dataDir=$DIR/zookeeper/data
clientPort=2181
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,dump
CFG
  nohup java -Xmx256m -cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain "$DIR/zookeeper/zoo.cfg" \
    > "$DIR/zookeeper/zookeeper.log" 2>&1 &
  echo $! > "$DIR/zookeeper.pid"
  for _ in $(seq 1 100); do zk_ok && break; sleep 0.2; done
  zk_ok || { echo "ZooKeeper did not start; see $DIR/zookeeper/zookeeper.log" >&2; exit 1; }
  echo "ZooKeeper listening on 127.0.0.1:2181 (pid $(cat "$DIR/zookeeper.pid"))"
fi
for id in 0 1; do
  mkdir -p "$DIR/broker$id"
  "$SERVER" start -f "conf/cluster/broker$id.ini" --data "$DIR/broker$id"
done
# A broker listens before its ZooKeeper registration is done: wait (at most 15 s) until both
# published topic `test`, so producers and groups started right after see every partition.
registered() {
  local dump
  dump=$(timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2181 && printf dump >&3 && cat <&3' 2>/dev/null)
  for id in 0 1; do grep -q "/meta/brokers/topics-pub/test/$id-m" <<<"$dump" || return 1; done
}
for _ in $(seq 1 75); do registered && break; sleep 0.2; done
registered || echo "warning: the brokers have not registered in ZooKeeper yet; see $DIR/broker*/metaq-server.log" >&2
echo "cluster up: .build/release/metaq cluster --zookeeper 127.0.0.1:2181"
echo "dashboards: http://127.0.0.1:8120/ (broker 0) and http://127.0.0.1:8121/ (broker 1); /metrics on each"
