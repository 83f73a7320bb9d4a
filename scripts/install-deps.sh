#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when they are missing.
# Safe to run repeatedly; runs `apt-get update` only if a package has to be installed.
set -euo pipefail

# iproute2 (ss), util-linux (prlimit) and unzip are used by the integration tests; chromium by
# the dashboard's browser tests (headless, driven by its command line).
packages=(zlib1g-dev libjemalloc-dev libzookeeper-mt-dev zookeeper iproute2 util-linux unzip chromium)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The /metrics test parses the exposition with the official Python client's parser (issue 19):
# from PyPI where pip may install (a pyenv or venv python), else Debian's package (the system
# python of a fresh Debian 12 refuses pip installs, PEP 668).
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
  echo "installing: prometheus_client" >&2
  if ! python3 -m pip install --quiet --disable-pip-version-check prometheus_client >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-prometheus-client
  fi
  python3 -c "import prometheus_client" || { echo "prometheus_client is not importable by python3" >&2; exit 1; }
fi
