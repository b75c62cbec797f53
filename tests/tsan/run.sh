#!/usr/bin/env bash
# The ThreadSanitizer target (ctest label tsan): builds the unit tests with -fsanitize=thread in
# a separate build directory and runs every test that exercises parallel code. Only Debian's
# uninstrumented oneTBB and RocksDB are suppressed (tests/tsan/tsan.supp), never Engram's code.
# Usage: run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$2
# -Werror stays on the main build; at TSan's -O1 GCC 12 reports false -Wmaybe-uninitialized
# positives inside std::optional, so this auxiliary build only warns.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAM_TSAN=ON \
      -DENGRAM_BENCH=OFF -DENGRAM_WERROR=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target engram_unit_tests >"$build/build.log" 2>&1 ||
    { cat "$build/build.log"; exit 1; }
export TSAN_OPTIONS="suppressions=$src/tests/tsan/tsan.supp halt_on_error=1 second_deadlock_stack=1"
# Parallel code: the batch store, the HNSW index, recall and spreading batches, searches of an
# open store while its index is built. Allocation.*
# replaces the global operator new of the test binary, which fights the sanitizer's own
# allocator (it hangs in race reports): it runs in the normal build only.
filter='*BatchStore*:*Hnsw*:*Concurrent*:*Batch*:*Parallel*:*SharedStore*-Allocation.*'
"$build/tests/engram_unit_tests" --gtest_filter="$filter" --gtest_brief=1
