#include "engine/batch/executor.hpp"

#include <tbb/info.h>

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

int default_arena_threads() noexcept {
    return configured_threads();
}

} // namespace engram::engine
