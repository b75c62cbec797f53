#!/usr/bin/env bash
# Runs one .sql file through the real sqlite3 shell, in a fresh temporary directory where
# ./build/engram is loadable (as the README says), against a file database test.db.
# With a neighbouring .expected file: stdout+stderr must equal it. Without one (examples):
# the run must succeed and print no error.
# Usage: run.sh SQLITE3 BUILD_DIR FILE.sql      (UPDATE_EXPECTED=1 rewrites the .expected file)
set -uo pipefail
shell=$1
build=$(cd "$2" && pwd)
sql=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
expected="${sql%.sql}.expected"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$build" "$dir/build"
cd "$dir"
actual=$("$shell" test.db < "$sql" 2>&1)
rc=$?
if [[ -f "$expected" ]]; then
    if [[ "${UPDATE_EXPECTED:-0}" == 1 ]]; then
        printf '%s\n' "$actual" > "$expected"
        exit 0
    fi
    if ! diff -u "$expected" <(printf '%s\n' "$actual"); then
        echo "FAIL: $(basename "$sql") output differs from $(basename "$expected")"
        exit 1
    fi
    exit 0
fi
printf '%s\n' "$actual"
if [[ $rc -ne 0 ]] || grep -qiE '(error|no such)' <<<"$actual"; then
    echo "FAIL: $(basename "$sql") exited $rc or printed an error"
    exit 1
fi
