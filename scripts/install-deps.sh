#!/usr/bin/env bash
# Installs the Debian 12 packages Engram needs to build, test and benchmark.
# Idempotent: runs `apt-get update` and `apt-get install` only when something is missing.
# Usage: scripts/install-deps.sh [--bench]
set -euo pipefail

pkgs=(g++ cmake make pkg-config sqlite3 libsqlite3-dev librocksdb-dev libtbb-dev libxsimd-dev
      libnuma-dev libmimalloc-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev zlib1g-dev python3
      libcpp-httplib-dev chromium)
if [[ "${1:-}" == "--bench" ]]; then
    pkgs+=(libhnswlib-dev dataset-fashion-mnist gnuplot-nox python3-numpy python3-hnswlib)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# Node.js (with npm) is needed by the client tests; the machine image may ship its own build, which
# Debian's npm package conflicts with, so Debian's nodejs/npm are installed only when node is absent.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
