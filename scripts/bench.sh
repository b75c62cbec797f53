#!/usr/bin/env bash
# Runs the benchmarks and writes bench/report.md (markdown, ratios measured in the same run).
# The machine is shared and noisy: each benchmark is repeated and the median reported.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
report="$root/bench/report.md"

# HNSW vs hnswlib: three runs, then one recall@10-vs-QPS plot per data set and size (gnuplot,
# when installed) in place of the `<!-- plot: STEM -->` lines the bench prints under its sweeps.
#   1. engram_hnsw_bench_native, 20K vectors: hnswlib compiled with -march=native (its AVX-512
#      path), the fair comparison and the headline.
#   2. engram_hnsw_bench, 20K vectors: hnswlib without ISA flags (its SSE path), as Engram is.
#   3. engram_hnsw_bench_native, 100K synthetic vectors, 2-thread builds only (a 1-thread
#      hnswlib build of 100K 768-d vectors alone takes minutes on 2 cores).
# The sweep data (bench/recall_qps_*.dat) and plots (bench/recall_qps_*.png) are rewritten.
hnsw_section() {
    local dir="$root/bench" native="$build/bench/engram_hnsw_bench_native"
    local plain="$build/bench/engram_hnsw_bench" out
    out=$(mktemp)
    rm -f "$dir"/recall_qps_*.dat "$dir"/recall_qps_*.png
    echo "## HNSW vs hnswlib"
    echo
    echo "hnswlib is header-only, so its distance code gets the bench's compiler flags: the"
    echo "headline compares against hnswlib built with \`-march=native\` (only that bench file;"
    echo "Engram's engine is the same library, dispatching at run time in both). The runs without"
    echo "ISA flags (hnswlib on SSE) follow, then 100K vectors (2-thread builds only: the 1-thread"
    echo "build is skipped there, the searches run against the 2-thread builds). Plots: Engram's"
    echo "line comes from the first run listed in each plot (the \`-march=native\` one)."
    (
        cd "$dir"
        echo
        "$native" --data-out "$dir"
        echo
        "$plain" --data-out "$dir"
        echo
        "$native" --n 100000 --skip-fashion --parallel-build-only --data-out "$dir"
    ) > "$out"
    local stem name files isas f isa
    if command -v gnuplot > /dev/null; then
        while IFS= read -r stem; do
            files="" isas=""
            for isa in avx512 avx sse scalar; do # the -march=native data first
                f="$stem"_"$isa".dat
                if [[ -f "$dir/$f" ]]; then
                    files+="$f " isas+="$isa "
                fi
            done
            name=${stem#recall_qps_} # <data set>_n<N>
            (cd "$dir" && gnuplot -e "out='$stem.png'; name='${name%_n*}, n=${name##*_n}'" \
                -e "files='${files% }'; isas='${isas% }'" "$dir/plot_recall_qps.gp") ||
                echo "bench.sh: gnuplot failed for $stem" >&2
        done < <(sed -n 's/^<!-- plot: \(.*\) -->$/\1/p' "$out" | sort -u)
    fi
    # The first placeholder of a plot becomes the image (when it was drawn), the others go.
    local line
    local -A shown=()
    while IFS= read -r line; do
        if [[ $line =~ ^'<!-- plot: '(.*)' -->'$ ]]; then
            stem=${BASH_REMATCH[1]}
            if [[ -z ${shown[$stem]:-} && -f "$dir/$stem.png" ]]; then
                echo "![recall vs QPS]($stem.png)"
            fi
            shown[$stem]=1
        else
            printf '%s\n' "$line"
        fi
    done < "$out"
    rm -f "$out"
}
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
    # RSS per memory at 100K x 768-d after the graph is built, next to the raw vectors and to
    # hnswlib's index. ENGRAM_BENCH_BASE=OTHER_BUILD/engram adds before/after ratios against an
    # earlier build (e.g. main built in another directory).
    /usr/bin/python3 "$root/bench/memory_bench.py" "$build/engram" --reps 3 \
        ${ENGRAM_BENCH_BASE:+--base "$ENGRAM_BENCH_BASE"}
    echo
    echo "## Spreading activation and recall"
    echo
    "$build/bench/engram_spread_bench"
    echo
    # Recall per cue kind as the store grows to 1M memories, through SQL (a few minutes).
    /usr/bin/python3 "$root/bench/recall_bench.py" "$build/engram"
    if [[ -x "$build/bench/engram_hnsw_bench" ]]; then
        echo
        hnsw_section
    fi
    echo
    "$build/bench/engram_dedup_bench"
    echo
    # Through SQL as the store grows (to 1M memories: on 2 cores this part takes the longest,
    # mostly the graph index catching up), next to hnswlib and to the direct index's sweep on
    # the same Fashion-MNIST data (the -march=native run's file, when there is one).
    direct=$(ls "$root"/bench/recall_qps_Fashion-MNIST-784_n20000_{avx512,avx,sse}.dat 2>/dev/null |
        head -1 || true)
    /usr/bin/python3 "$root/bench/sql_scale_bench.py" "$build/engram" --plot-dir "$root/bench" \
        ${direct:+--direct-dat "$direct"}
    echo
    # The HTTP server on loopback: 1000-store batches and batch similarity, bounded in count and time.
    /usr/bin/python3 "$root/bench/server_load_bench.py" "$build/engram"
} > "$report.tmp"
mv "$report.tmp" "$report"
cat "$report"
