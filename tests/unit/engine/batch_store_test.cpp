#include "engine/batch/batch_store.hpp"

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

struct Workload {
    std::size_t dim;
    std::vector<std::string> ids;
    std::vector<double> confidence;
    std::vector<float> units; // ids.size() x stride
    std::size_t stride;
};

// Random unit vectors with planted near-duplicates (of earlier batch rows and of the prefill).
Workload make_workload(std::uint32_t seed, std::size_t dim, std::size_t n, const Workload* base) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Workload w{dim, {}, {}, {}, (dim + 15) / 16 * 16};
    w.units.assign(n * w.stride, 0.0F);
    for (std::size_t i = 0; i < n; ++i) {
        float* v = &w.units[i * w.stride];
        const double pick = u(rng);
        const float* src = nullptr;
        if (pick < 0.25 && i > 0) {
            src = &w.units[(rng() % i) * w.stride]; // near-duplicate of an earlier batch row
        } else if (pick < 0.4 && base != nullptr && !base->ids.empty()) {
            src = &base->units[(rng() % base->ids.size()) * base->stride]; // of the prefill
        }
        for (std::size_t d = 0; d < dim; ++d) {
            v[d] = src != nullptr ? src[d] + 0.05F * g(rng) : g(rng);
        }
        simd::kernels().normalize(v, dim);
        w.ids.push_back("s" + std::to_string(seed) + "-" + std::to_string(i));
        // coarse confidences make ties (equal confidence → skip) frequent
        w.confidence.push_back(0.3 + 0.1 * static_cast<double>(rng() % 7));
    }
    return w;
}

struct Snapshot {
    std::vector<std::tuple<int, double, std::string, std::string>> outcomes;
    std::map<std::string, float> hot; // id → activation
};

void prefill(MemoryEngine& m, const Workload& w) {
    for (std::size_t i = 0; i < w.ids.size(); ++i) {
        m.store(w.ids[i], &w.units[i * w.stride], Confidence(w.confidence[i]), 0.0);
    }
}

Snapshot state(const MemoryEngine& m, const std::vector<StoreOutcome>& outs) {
    Snapshot s;
    for (const auto& o : outs) {
        s.outcomes.emplace_back(static_cast<int>(o.kind), o.activation.value(), o.evicted_id,
                                o.duplicate_of);
    }
    for (std::uint32_t slot = 0; slot < m.hot().slots(); ++slot) {
        if (m.hot().info(slot).live) {
            s.hot[m.hot().info(slot).id] = m.hot().info(slot).activation;
        }
    }
    return s;
}

MemoryConfig config(std::size_t dim, std::size_t capacity) {
    MemoryConfig c;
    c.dim = dim;
    c.capacity = capacity;
    c.dedup_threshold = 0.95;
    return c;
}

Snapshot sequential(const MemoryConfig& c, const Workload& pre, const Workload& w) {
    MemoryEngine m(c);
    prefill(m, pre);
    std::vector<StoreOutcome> outs;
    for (std::size_t i = 0; i < w.ids.size(); ++i) {
        outs.push_back(m.store(w.ids[i], &w.units[i * w.stride], Confidence(w.confidence[i]), 1.0));
    }
    return state(m, outs);
}

Snapshot batched(const MemoryConfig& c, const Workload& pre, const Workload& w, int threads) {
    MemoryEngine m(c);
    prefill(m, pre);
    std::vector<BatchItem> items;
    for (std::size_t i = 0; i < w.ids.size(); ++i) {
        items.push_back({&w.ids[i], w.confidence[i], 1.0});
    }
    tbb::task_arena arena(threads);
    return state(m, store_batch(m, items, w.units.data(), w.stride, arena));
}

class BatchStoreTest : public ::testing::TestWithParam<std::tuple<std::size_t, std::size_t>> {};

// Batch ≡ sequential: same outcomes (kind, activation, evictions, duplicates) and the same hot
// tier, at 1 thread and at all threads, with dedup, capacity pressure and evictions.
TEST_P(BatchStoreTest, EqualsSequentialAtAnyThreadCount) {
    const auto [dim, capacity] = GetParam();
    for (std::uint32_t seed = 1; seed <= 4; ++seed) {
        const Workload pre = make_workload(1000 + seed, dim, 150, nullptr);
        const Workload w = make_workload(seed, dim, 700, &pre);
        const MemoryConfig c = config(dim, capacity);
        const Snapshot ref = sequential(c, pre, w);
        // the workload must actually exercise the semantics
        int dedup = 0, evicted = 0;
        for (const auto& [kind, act, ev, dup] : ref.outcomes) {
            dedup += kind != static_cast<int>(StoreKind::kStored) ? 1 : 0;
            evicted += ev.empty() ? 0 : 1;
        }
        EXPECT_GT(dedup, 50);
        if (capacity < 850) {
            EXPECT_GT(evicted, 10);
        }
        for (int threads : {1, tbb::info::default_concurrency()}) {
            const Snapshot got = batched(c, pre, w, threads);
            ASSERT_EQ(got.outcomes.size(), ref.outcomes.size());
            for (std::size_t i = 0; i < ref.outcomes.size(); ++i) {
                ASSERT_EQ(got.outcomes[i], ref.outcomes[i])
                    << "row " << i << " seed " << seed << " threads " << threads;
            }
            EXPECT_EQ(got.hot, ref.hot) << "threads " << threads;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchStoreTest,
                         ::testing::Values(std::make_tuple(std::size_t{16}, std::size_t{400}),
                                           std::make_tuple(std::size_t{37}, std::size_t{100000}),
                                           std::make_tuple(std::size_t{8}, std::size_t{120})));

// Across the DedupIndex's start (the hot tier reaches kIndexAfter inside the batch) and with it in
// use from the start: still batch ≡ sequential, and the index finds what the exact scan finds
// (dedup_exact) on planted near-duplicates.
TEST(BatchStore, EqualsSequentialWithTheDedupIndex) {
    constexpr std::size_t kDim = 32;
    for (const std::size_t prefill_rows : {std::size_t{900}, std::size_t{1500}}) {
        const Workload pre = make_workload(77, kDim, prefill_rows, nullptr);
        const Workload w = make_workload(78, kDim, 1500, &pre);
        for (const std::size_t capacity : {std::size_t{1800}, std::size_t{100000}}) {
            const MemoryConfig c = config(kDim, capacity);
            const Snapshot ref = sequential(c, pre, w);
            for (int threads : {1, tbb::info::default_concurrency()}) {
                const Snapshot got = batched(c, pre, w, threads);
                ASSERT_EQ(got.outcomes.size(), ref.outcomes.size());
                for (std::size_t i = 0; i < ref.outcomes.size(); ++i) {
                    ASSERT_EQ(got.outcomes[i], ref.outcomes[i])
                        << "row " << i << " prefill " << prefill_rows << " capacity " << capacity
                        << " threads " << threads;
                }
                EXPECT_EQ(got.hot, ref.hot) << "threads " << threads;
            }
            MemoryConfig exact = c;
            exact.dedup_exact = true;
            const Snapshot scan = sequential(exact, pre, w);
            std::size_t found = 0, same = 0;
            for (std::size_t i = 0; i < ref.outcomes.size(); ++i) {
                const bool dup_scan = std::get<0>(scan.outcomes[i]) != 0;
                found += dup_scan ? 1 : 0;
                same += dup_scan && std::get<0>(ref.outcomes[i]) != 0 ? 1 : 0;
            }
            EXPECT_GT(found, 250U);
            EXPECT_GE(same, found * 99 / 100) << same << " of " << found;
        }
    }
}

TEST(BatchStore, DedupOffStoresEverythingInOrder) {
    MemoryConfig c = config(4, 3);
    c.dedup_threshold.reset();
    MemoryEngine m(c);
    std::vector<std::string> ids = {"a", "b", "c", "d"};
    std::vector<float> units(4 * 16, 0.0F);
    for (int i = 0; i < 4; ++i) {
        units[i * 16] = 1.0F; // all identical: would be duplicates if dedup were on
    }
    std::vector<BatchItem> items;
    for (auto& id : ids) {
        items.push_back({&id, 0.9, 0.0});
    }
    tbb::task_arena arena(2);
    const auto outs = store_batch(m, items, units.data(), 16, arena);
    ASSERT_EQ(outs.size(), 4U);
    EXPECT_EQ(outs[3].evicted_id, "c"); // activations 0.9, 0.75, 0.6: c is the weakest
    EXPECT_DOUBLE_EQ(outs[3].activation.value(), 0.45);
}

} // namespace
} // namespace engram::engine
