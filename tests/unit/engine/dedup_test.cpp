#include "engine/dedup.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

constexpr std::size_t kDim = 64;

std::vector<float> random_unit(std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    for (float& x : v) {
        x = g(rng);
    }
    simd::kernels().normalize(v.data(), kDim);
    return v;
}

// A unit vector at cosine c from the unit vector q.
std::vector<float> at_cosine(const std::vector<float>& q, double c, std::mt19937& rng) {
    std::vector<float> r = random_unit(rng);
    const float along = simd::kernels().dot(r.data(), q.data(), kDim);
    for (std::size_t d = 0; d < kDim; ++d) {
        r[d] -= along * q[d];
    }
    simd::kernels().normalize(r.data(), kDim);
    std::vector<float> y(kDim);
    const double s = std::sqrt(1.0 - c * c);
    for (std::size_t d = 0; d < kDim; ++d) {
        y[d] = static_cast<float>(c * q[d] + s * r[d]);
    }
    return y;
}

std::vector<std::uint32_t> code_of(const DedupIndex& index, const std::vector<float>& v) {
    std::vector<std::uint32_t> code(index.words());
    std::vector<float> scratch;
    index.codes(v.data(), kDim, 1, code.data(), &scratch);
    return code;
}

std::vector<std::uint32_t> candidates(const DedupIndex& index, const std::vector<float>& q) {
    std::vector<std::uint32_t> out;
    std::vector<std::size_t> positions;
    index.candidates(code_of(index, q).data(), &positions, &out);
    return out;
}

// Planted near-duplicates, cosine uniform in [0.95, 1], among 20K random memories: found at
// the rate the parameters were chosen for, with few unrelated candidates.
TEST(DedupIndex, FindsPlantedNearDuplicates) {
    DedupIndexConfig config;
    config.dim = kDim;
    DedupIndex index(config);
    std::mt19937 rng(5);
    std::vector<std::vector<float>> rows;
    std::vector<std::uint32_t> codes;
    constexpr std::size_t kStore = 20000;
    for (std::size_t i = 0; i < kStore; ++i) {
        rows.push_back(random_unit(rng));
        index.add(static_cast<std::uint32_t>(i), code_of(index, rows.back()).data());
    }
    EXPECT_EQ(index.size(), kStore);
    constexpr std::size_t kPlants = 3000;
    std::uniform_real_distribution<double> cosine(0.95, 1.0);
    std::size_t found = 0, unrelated = 0;
    for (std::size_t p = 0; p < kPlants; ++p) {
        const std::size_t target = rng() % kStore;
        const std::vector<float> q = at_cosine(rows[target], cosine(rng), rng);
        const auto c = candidates(index, q);
        found += std::binary_search(c.begin(), c.end(), static_cast<std::uint32_t>(target)) ? 1 : 0;
        unrelated += c.size();
    }
    EXPECT_GE(found, kPlants * 998 / 1000) << found << " of " << kPlants;
    EXPECT_LT(unrelated / kPlants, 50U);
    EXPECT_GT(index.memory_bytes(), kStore * config.tables * 8);
}

// Removed slots are never returned; re-added slots are found under their new code; many
// removals (cells marked gone, then dropped by rehashing) keep the tables consistent.
TEST(DedupIndex, RemoveAndReuseSlots) {
    DedupIndexConfig config;
    config.dim = kDim;
    DedupIndex index(config);
    std::mt19937 rng(9);
    constexpr std::uint32_t kSlots = 3000;
    std::vector<std::vector<float>> rows(kSlots);
    for (std::uint32_t s = 0; s < kSlots; ++s) {
        rows[s] = random_unit(rng);
        index.add(s, code_of(index, rows[s]).data());
    }
    for (int round = 0; round < 5; ++round) {
        for (std::uint32_t s = round % 2; s < kSlots; s += 2) {
            index.remove(s);
            EXPECT_FALSE(index.contains(s));
            rows[s] = random_unit(rng);
            index.add(s, code_of(index, rows[s]).data());
        }
        index.remove(7);
        EXPECT_EQ(index.size(), kSlots - 1);
        for (std::uint32_t s = 0; s < kSlots; s += 37) {
            const auto c = candidates(index, rows[s]); // its own vector: every key matches
            EXPECT_EQ(std::binary_search(c.begin(), c.end(), s), s != 7) << "slot " << s;
        }
        index.add(7, code_of(index, rows[7]).data());
    }
}

// Codes do not depend on how many rows are computed together (batch ≡ sequential).
TEST(DedupIndex, CodesIndependentOfBlocking) {
    DedupIndexConfig config;
    config.dim = kDim;
    DedupIndex index(config);
    std::mt19937 rng(3);
    constexpr std::size_t kRows = 150;
    std::vector<float> rows;
    for (std::size_t i = 0; i < kRows; ++i) {
        const auto v = random_unit(rng);
        rows.insert(rows.end(), v.begin(), v.end());
    }
    std::vector<std::uint32_t> together(kRows * index.words());
    std::vector<float> scratch;
    index.codes(rows.data(), kDim, kRows, together.data(), &scratch);
    for (std::size_t i = 0; i < kRows; ++i) {
        std::vector<std::uint32_t> alone(index.words());
        index.codes(&rows[i * kDim], kDim, 1, alone.data(), &scratch);
        EXPECT_TRUE(std::equal(alone.begin(), alone.end(), &together[i * index.words()]))
            << "row " << i;
    }
}

} // namespace
} // namespace engram::engine
