#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when they are missing.
# Safe to run repeatedly; runs `apt-get update` only if a package has to be installed.
set -euo pipefail

# iproute2 (ss), util-linux (prlimit) and unzip are used by the integration tests; chromium by
# the dashboard's browser tests (headless, driven by its command line).
packages=(zlib1g-dev libjemalloc-dev libzookeeper-mt-dev zookeeper iproute2 util-linux unzip chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The /metrics test parses the exposition with the official Python client's parser (issue 19).
if ! python3 -c "import prometheus_client" >/dev/null 2>&1; then
  echo "installing: prometheus_client (PyPI)" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore prometheus_client
fi
