#!/usr/bin/env bash
# Runs sql/examples/quickstart.sql in the sqlite3 shell against a file database in a fresh
# temporary directory, with ./build/engram loadable from there, and shows the results.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$build" "$dir/build"
cd "$dir"
echo "== sqlite3 demo.db < sql/examples/quickstart.sql   (in $dir)"
sqlite3 -header -column demo.db < "$root/sql/examples/quickstart.sql"
