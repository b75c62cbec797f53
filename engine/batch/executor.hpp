#pragma once
// The extension's private oneTBB arena. Engram never touches the host's TBB settings
// (no tbb::global_control): all parallel work runs inside this arena.
// ENGRAM_THREADS=N in the environment caps its concurrency (default: all cores).
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstddef>

namespace engram::engine {

tbb::task_arena& default_arena();
// A second private arena, as wide but at low priority, for background work (the graph index
// builder), so that commits and queries in default_arena() are served first.
tbb::task_arena& background_arena();
int default_arena_threads() noexcept;

// Runs body(range) over [0, n) in parallel inside `arena` and returns when all of it is done.
// Each chunk ends with a release on one atomic that the caller acquires afterwards: the
// happens-before edge that oneTBB provides internally is thus also visible to ThreadSanitizer
// (Debian's libtbb is not instrumented), so results written by workers are published explicitly.
template <typename Body>
void parallel_ranges(tbb::task_arena& arena, std::size_t n, std::size_t grain, const Body& body) {
    std::atomic<std::size_t> done{0};
    arena.execute([&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, grain),
                          [&](const tbb::blocked_range<std::size_t>& r) {
                              body(r);
                              done.fetch_add(r.size(), std::memory_order_acq_rel);
                          });
    });
    (void)done.load(std::memory_order_acquire);
}

// parallel_ranges with one call per index.
template <typename Body>
void parallel_indices(tbb::task_arena& arena, std::size_t n, const Body& body) {
    parallel_ranges(arena, n, 1, [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) {
            body(i);
        }
    });
}

} // namespace engram::engine
