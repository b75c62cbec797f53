#!/usr/bin/env bash
# Runs the benchmarks and writes bench/report.md (markdown, ratios measured in the same run).
# The machine is shared and noisy: each benchmark is repeated and the median reported.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
report="$root/bench/report.md"
{
    echo "# Engram benchmark report"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo
    echo "## SIMD kernels (vs the scalar reference, same run)"
    echo
    "$build/bench/engram_simd_bench" --benchmark_color=false
    echo
    /usr/bin/python3 "$root/bench/ingest_bench.py" "$build/engram" --reps 3
    echo
    echo "## Spreading activation and recall"
    echo
    "$build/bench/engram_spread_bench"
    if [[ -x "$build/bench/engram_hnsw_bench" ]]; then
        echo
        echo "## HNSW vs hnswlib"
        echo
        (cd "$root/bench" && "$build/bench/engram_hnsw_bench")
    fi
} > "$report.tmp"
mv "$report.tmp" "$report"
cat "$report"
