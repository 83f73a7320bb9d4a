#!/usr/bin/env bash
# An example master + slave pair on this machine, local mode (no ZooKeeper): the master on 8123
# (conf/replication/master.ini) and its slave on 8124 (conf/replication/slave.ini), both in the
# background, data and logs under $METAQ_REPLICATED_DIR (default /tmp/metaq-replicated).
#   scripts/run-replicated.sh           start, asynchronous replication (builds release binaries)
#   scripts/run-replicated.sh --sync    start with synchronous replication (synchronous=true)
#   scripts/run-replicated.sh status    the slave's replication status (metaq-server slave-status)
#   scripts/run-replicated.sh stop      stop both
# docs/REPLICATION.md explains what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${METAQ_REPLICATED_DIR:-/tmp/metaq-replicated}
SERVER=.build/release/metaq-server

case "${1:-start}" in
  stop)
    for name in slave master; do
      [ -d "$DIR/$name" ] && "$SERVER" stop --data "$DIR/$name" || true
    done
    exit 0 ;;
  status)
    exec "$SERVER" slave-status -f "$DIR/slave.ini" --port 8124 ;;
  start|--sync) ;;
  *) echo "usage: $0 [--sync|status|stop]" >&2; exit 64 ;;
esac

scripts/install-deps.sh
swift build -c release --product metaq-server
swift build -c release --product metaq
mkdir -p "$DIR/master" "$DIR/slave"
cp conf/replication/slave.ini "$DIR/slave.ini"
if [ "${1:-start}" = --sync ]; then
  sed 's/^synchronous=false/synchronous=true/' conf/replication/master.ini > "$DIR/master.ini"
else
  cp conf/replication/master.ini "$DIR/master.ini"
fi
"$SERVER" start -f "$DIR/master.ini" --data "$DIR/master"
"$SERVER" start -f "$DIR/slave.ini" --data "$DIR/slave"
echo "master meta://127.0.0.1:8123 ($(grep '^synchronous' "$DIR/master.ini")), slave meta://127.0.0.1:8124"
echo "dashboards: http://127.0.0.1:8120/ (master) and http://127.0.0.1:8121/ (slave)"
echo "try: .build/release/metaq produce test --server meta://127.0.0.1:8123 hello"
echo "     scripts/run-replicated.sh status"
