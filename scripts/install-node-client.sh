#!/usr/bin/env bash
# Installs better-sqlite3@12 (the Node client the client tests use) into tests/clients/node,
# from the npm registry, once. Version 12: version 13 needs Node 22.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/clients/node"
if [[ -f "$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-node-client: npm not found (scripts/install-deps.sh installs Node.js)" >&2
    exit 1
fi
echo "install-node-client: npm install better-sqlite3@12 (first run only)"
cd "$dir"
npm install --no-audit --no-fund --loglevel=error >/dev/null
