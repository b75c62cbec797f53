// Memory discipline on the hot path: applying a batch allocates per block of episodes and for
// amortised growth, never per episode. Counted by replacing the global operator new of this
// test binary (the extension never does that to its host).
#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "engine/batch/batch_store.hpp"
#include "engine/simd/kernels.hpp"

namespace {
std::atomic<std::size_t> g_news{0};
} // namespace

void* operator new(std::size_t n) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t /*n*/) noexcept {
    std::free(p);
}

namespace engram::engine {
namespace {

struct Batch {
    std::vector<std::string> ids;
    std::vector<BatchItem> items;
    std::vector<float> units;
};

// n episodes (ids of 6 characters, as short ids are) with every 10th a copy of the one before
// (a planted duplicate).
Batch make_batch(std::size_t first, std::size_t n, std::size_t stride, std::size_t dim) {
    Batch b;
    std::mt19937 rng(static_cast<unsigned>(first));
    std::normal_distribution<float> nd;
    b.ids.reserve(n);
    b.units.assign(n * stride, 0.0F);
    for (std::size_t i = 0; i < n; ++i) {
        char id[16];
        std::snprintf(id, sizeof id, "e%05zu", first + i);
        b.ids.emplace_back(id);
        float* u = &b.units[i * stride];
        if (i % 10 == 9) {
            std::copy_n(u - stride, dim, u);
            continue;
        }
        for (std::size_t d = 0; d < dim; ++d) {
            u[d] = nd(rng);
        }
        simd::kernels().normalize(u, dim);
    }
    for (std::size_t i = 0; i < n; ++i) {
        b.items.push_back({&b.ids[i], 0.5 + static_cast<double>(i % 5) / 10.0, 1.0e9});
    }
    return b;
}

TEST(Allocation, ApplyingABatchDoesNotAllocatePerEpisode) {
    MemoryConfig config;
    config.dim = 64;
    config.capacity = 5000; // the second batch runs under pressure, with evictions
    config.dedup_threshold = 0.95;
    MemoryEngine memory(config);
    const std::size_t stride = memory.hot().stride();
    tbb::task_arena arena(2);
    constexpr std::size_t kRows = 4096;
    // Warm up: the tier, its id table and eviction heap grow to their size.
    const Batch warm = make_batch(0, kRows, stride, config.dim);
    (void)store_batch(memory, warm.items, warm.units.data(), stride, arena);
    const Batch batch = make_batch(kRows, kRows, stride, config.dim);

    const std::size_t before = g_news.load();
    const auto outs = store_batch(memory, batch.items, batch.units.data(), stride, arena);
    const std::size_t allocations = g_news.load() - before;

    std::size_t evicted = 0, deduplicated = 0;
    for (const StoreOutcome& o : outs) {
        evicted += o.evicted_id.empty() ? 0 : 1;
        deduplicated += o.kind == StoreKind::kStored ? 0 : 1;
    }
    EXPECT_GT(evicted, 1000U);     // the batch did evict
    EXPECT_GT(deduplicated, 300U); // and found its planted duplicates
    // Per block of 64 episodes a few (candidate lists, scratch), plus growth: far below one per
    // episode.
    std::printf("%zu allocations for %zu rows\n", allocations, kRows);
    EXPECT_LT(allocations, kRows / 8) << allocations << " allocations for " << kRows << " rows";
}

} // namespace
} // namespace engram::engine
