#!/usr/bin/env bash
# Builds and starts the broker in local mode (no ZooKeeper) with conf/server.ini, in the
# foreground on port 8123, data in ~/meta. Extra arguments go to `metaq-server start`
# (e.g. --port 9000 --data /tmp/meta). Stop it with Ctrl-C or `metaq-server stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product metaq-server
exec .build/release/metaq-server start --local -f conf/server.ini --foreground "$@"
