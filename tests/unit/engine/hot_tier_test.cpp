#include "engine/hot_tier.hpp"

#include "engine/pool.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace engram::engine {
namespace {

std::vector<float> unit(std::size_t dim, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(dim);
    double n = 0;
    for (auto& x : v) {
        x = d(rng);
        n += double(x) * x;
    }
    for (auto& x : v) {
        x = static_cast<float>(x / std::sqrt(n));
    }
    return v;
}

TEST(HotTier, RowsAreCacheLineAlignedAndStable) {
    HotTier hot(13);
    EXPECT_EQ(hot.stride(), 16U);
    std::vector<const float*> rows;
    for (std::uint32_t i = 0; i < 3000; ++i) { // spans several chunks
        const auto v = unit(13, i);
        const auto s = hot.insert("id" + std::to_string(i), v.data(), 0.5F, 0.9F, 0.0);
        rows.push_back(hot.row(s));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(hot.row(s)) % 64, 0U);
    }
    // Rows never move when later chunks are added.
    for (std::uint32_t i = 0; i < 3000; ++i) {
        EXPECT_EQ(hot.row(*hot.find("id" + std::to_string(i))), rows[i]);
    }
    EXPECT_EQ(hot.count(), 3000U);
}

TEST(HotTier, RemoveFreesAndReusesSlots) {
    HotTier hot(8);
    const auto a = unit(8, 1), b = unit(8, 2);
    const auto sa = hot.insert("a", a.data(), 0.5F, 0.9F, 0.0);
    hot.insert("b", b.data(), 0.6F, 0.9F, 0.0);
    EXPECT_TRUE(hot.remove("a"));
    EXPECT_FALSE(hot.remove("a"));
    EXPECT_FALSE(hot.find("a").has_value());
    EXPECT_EQ(hot.count(), 1U);
    const auto sc = hot.insert("c", a.data(), 0.7F, 0.9F, 0.0);
    EXPECT_EQ(sc, sa);
    EXPECT_EQ(hot.info(sc).id, "c");
}

TEST(HotTier, EvictionCandidateIsLowestActivationThenSmallestId) {
    HotTier hot(4);
    const auto v = unit(4, 3);
    hot.insert("m", v.data(), 0.7F, 0.9F, 0.0);
    hot.insert("z", v.data(), 0.4F, 0.9F, 0.0);
    hot.insert("b", v.data(), 0.4F, 0.9F, 0.0);
    hot.insert("a", v.data(), 0.9F, 0.9F, 0.0);
    EXPECT_EQ(hot.info(*hot.eviction_candidate()).id, "b");
    hot.remove("b");
    EXPECT_EQ(hot.info(*hot.eviction_candidate()).id, "z");
    hot.remove("z");
    EXPECT_EQ(hot.info(*hot.eviction_candidate()).id, "m");
}

TEST(HotTier, TopKMatchesBruteForce) {
    const std::size_t dim = 37;
    HotTier hot(dim);
    std::vector<std::vector<float>> data;
    for (std::uint32_t i = 0; i < 500; ++i) {
        data.push_back(unit(dim, 100 + i));
        hot.insert("v" + std::to_string(1000 + i), data.back().data(), 0.5F, 0.9F, 0.0);
    }
    hot.remove("v1007");
    const auto q = unit(dim, 7);
    const auto top = hot.top_k(q.data(), 10, -1.0F);
    ASSERT_EQ(top.size(), 10U);
    // brute force
    std::vector<std::pair<float, std::string>> all;
    for (std::uint32_t i = 0; i < 500; ++i) {
        if (i == 7) {
            continue;
        }
        double d = 0;
        for (std::size_t j = 0; j < dim; ++j) {
            d += double(q[j]) * data[i][j];
        }
        all.emplace_back(static_cast<float>(d), "v" + std::to_string(1000 + i));
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (std::size_t r = 0; r < 10; ++r) {
        EXPECT_EQ(hot.info(top[r].slot).id, all[r].second) << r;
        EXPECT_NEAR(top[r].score, all[r].first, 1e-5);
    }
    // threshold filters; k larger than the count returns everything that passes
    const auto pos = hot.top_k(q.data(), 100000, 0.0F);
    std::size_t expected = 0;
    for (auto& [s, id] : all) {
        expected += s >= 0.0F ? 1 : 0;
    }
    EXPECT_NEAR(static_cast<double>(pos.size()), static_cast<double>(expected), 2.0);
    EXPECT_TRUE(hot.top_k(q.data(), 0, -1.0F).empty());
}

TEST(HotTier, TiesBreakBySmallestId) {
    HotTier hot(4);
    const auto v = unit(4, 9);
    hot.insert("c", v.data(), 0.5F, 0.9F, 0.0);
    hot.insert("a", v.data(), 0.5F, 0.9F, 0.0);
    hot.insert("b", v.data(), 0.5F, 0.9F, 0.0);
    const auto top = hot.top_k(v.data(), 2, -1.0F);
    ASSERT_EQ(top.size(), 2U);
    EXPECT_EQ(hot.info(top[0].slot).id, "a");
    EXPECT_EQ(hot.info(top[1].slot).id, "b");
    EXPECT_EQ(hot.info(hot.best_match(v.data())->slot).id, "a");
}

TEST(HotTier, IdTableAndEvictionOrderMatchABruteForceModel) {
    HotTier hot(4);
    std::mt19937 rng(11);
    std::map<std::string, float> model; // id -> activation
    const float v[4] = {1.0F, 0.0F, 0.0F, 0.0F};
    for (int step = 0; step < 20000; ++step) {
        const std::string id =
            "m" + std::to_string(rng() % 3000) + std::string(rng() % 2 ? 20 : 0, 'x');
        if (model.count(id) != 0 && rng() % 2 == 0) {
            ASSERT_TRUE(hot.remove(id));
            model.erase(id);
        } else if (model.count(id) == 0) {
            // few distinct activations, so that ties (broken by id) are common
            const float a = static_cast<float>(rng() % 8) / 8.0F;
            hot.insert(id, v, a, 0.5F, 0.0);
            model[id] = a;
        } else {
            ASSERT_FALSE(hot.remove(id + "?"));
        }
        ASSERT_EQ(hot.count(), model.size());
        if (step % 97 == 0) {
            for (const auto& [mid, a] : model) {
                const auto slot = hot.find(mid);
                ASSERT_TRUE(slot.has_value()) << mid;
                ASSERT_EQ(hot.info(*slot).id, mid);
            }
        }
        const auto cand = hot.eviction_candidate();
        if (model.empty()) {
            ASSERT_FALSE(cand.has_value());
            continue;
        }
        std::pair<float, std::string> best{2.0F, ""};
        for (const auto& [mid, a] : model) {
            best = std::min(best, std::make_pair(a, mid));
        }
        ASSERT_TRUE(cand.has_value());
        ASSERT_EQ(hot.info(*cand).id, best.second) << "step " << step;
    }
}

TEST(Pool, ChunksAreZeroedAlignedAndPlacedPerTheNodeCount) {
    constexpr std::size_t kBytes = HotTier::kChunkRows * 16 * sizeof(float);
    for (std::size_t index = 0; index < 4; ++index) {
        auto* p = static_cast<unsigned char*>(chunk_zalloc(kBytes, HotTier::kAlign, index));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % HotTier::kAlign, 0U);
        std::size_t nonzero = 0;
        for (std::size_t i = 0; i < kBytes; ++i) {
            nonzero += p[i] != 0 ? 1 : 0;
        }
        EXPECT_EQ(nonzero, 0U);
        p[kBytes - 1] = 1; // writable to the end
        chunk_free(p, kBytes);
    }
    EXPECT_GE(numa_nodes(), 1);
    EXPECT_EQ(numa_placement() == "off (1 node)", numa_nodes() == 1);
}

} // namespace
} // namespace engram::engine
