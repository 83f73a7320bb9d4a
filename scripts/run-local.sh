#!/usr/bin/env bash
# Builds and starts the broker in local mode (no ZooKeeper), with conf/server.ini.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if ! grep -q '"metaq-server"' Package.swift; then
  echo "metaq-server does not exist yet: the broker arrives with the next issue (local mode, wire protocol)." >&2
  echo "What exists today: the wire codec, the partition log and the simulated disk (see README.md)." >&2
  exit 1
fi
swift build -c release --product metaq-server
exec .build/release/metaq-server start --local -f conf/server.ini "$@"
