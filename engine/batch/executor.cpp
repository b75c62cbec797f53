#include "engine/batch/executor.hpp"

#include <tbb/info.h>

#include <algorithm>
#include <cstdlib>

namespace engram::engine {
namespace {
int configured_threads() noexcept {
    const int all = tbb::info::default_concurrency();
    if (const char* env = std::getenv("ENGRAM_THREADS")) {
        const int n = std::atoi(env);
        if (n >= 1 && n <= all) {
            return n;
        }
    }
    return all;
}
} // namespace

tbb::task_arena& default_arena() {
    static tbb::task_arena arena(configured_threads());
    return arena;
}

tbb::task_arena& background_arena() {
    // As wide as the foreground, at low priority: the index catches up on every core while
    // nothing else runs, and oneTBB's workers go to default_arena() first when commits or batch
    // queries have work there (the builder also steps aside for a waiting commit).
    static tbb::task_arena arena(configured_threads(), 1, tbb::task_arena::priority::low);
    return arena;
}

int default_arena_threads() noexcept {
    return configured_threads();
}

} // namespace engram::engine
