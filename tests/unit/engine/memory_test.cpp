#include "engine/memory.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace engram::engine {
namespace {

std::vector<float> axis(std::size_t dim, std::size_t i, float tilt = 0.0F) {
    std::vector<float> v(dim, 0.0F);
    v[i % dim] = 1.0F;
    v[(i + 1) % dim] = tilt;
    double n = 0;
    for (float x : v) {
        n += double(x) * x;
    }
    for (auto& x : v) {
        x = static_cast<float>(x / std::sqrt(n));
    }
    return v;
}

MemoryConfig config(std::size_t dim, std::size_t capacity, std::optional<double> dedup) {
    MemoryConfig c;
    c.dim = dim;
    c.capacity = capacity;
    c.dedup_threshold = dedup;
    return c;
}

TEST(MemoryConfig, ValidateNamesTheOption) {
    EXPECT_TRUE(config(768, 10, 0.95).validate().is_ok());
    EXPECT_NE(config(0, 10, 0.95).validate().message().find("dim"), std::string::npos);
    EXPECT_NE(config(4097, 10, 0.95).validate().message().find("4097"), std::string::npos);
    EXPECT_NE(config(8, 0, 0.95).validate().message().find("capacity"), std::string::npos);
    EXPECT_NE(config(8, 10, 1.5).validate().message().find("dedup"), std::string::npos);
}

// DESIGN §2 worked examples.
TEST(MemoryEngine, EmptyStoreFullActivation) {
    MemoryEngine m(config(16, 10, std::nullopt));
    const auto v = axis(16, 0);
    const auto out = m.store("e1", v.data(), Confidence(0.9), 0.0);
    EXPECT_EQ(out.kind, StoreKind::kStored);
    EXPECT_DOUBLE_EQ(out.activation.value(), 0.9);
    EXPECT_TRUE(out.activation.successful());
    EXPECT_FALSE(out.activation.degraded());
}

TEST(MemoryEngine, FullStoreEvictsLowestActivation) {
    MemoryEngine m(config(16, 5, std::nullopt));
    const double conf[] = {0.9, 0.6, 0.8, 0.95, 0.7};
    for (std::size_t i = 0; i < 5; ++i) {
        const auto v = axis(16, i);
        m.store("e" + std::to_string(i), v.data(), Confidence(conf[i]), 0.0);
    }
    // activations: 0.9*1, 0.6*0.9, 0.8*0.8, 0.95*0.7, 0.7*0.6 → e4 (0.42) is lowest
    const auto v = axis(16, 9);
    const auto out = m.store("new", v.data(), Confidence(0.9), 0.0);
    EXPECT_DOUBLE_EQ(out.pressure, 1.0);
    EXPECT_DOUBLE_EQ(out.activation.value(), 0.45);
    EXPECT_EQ(out.evicted_id, "e4");
    EXPECT_EQ(m.hot().count(), 5U);
    EXPECT_FALSE(m.hot().find("e4").has_value());
    EXPECT_TRUE(m.hot().find("new").has_value());
}

TEST(MemoryEngine, WeakEncodingIsNotSuccessful) {
    MemoryEngine m(config(16, 10, std::nullopt));
    const auto v = axis(16, 0);
    const auto out = m.store("e1", v.data(), Confidence(0.5), 0.0);
    EXPECT_DOUBLE_EQ(out.activation.value(), 0.5);
    EXPECT_FALSE(out.activation.successful());
}

TEST(MemoryEngine, PressureComesFromTheCountBefore) {
    MemoryEngine m(config(16, 4, std::nullopt));
    const double expected[] = {0.8, 0.8 * 0.875, 0.8 * 0.75, 0.8 * 0.625};
    for (std::size_t i = 0; i < 4; ++i) {
        const auto v = axis(16, i);
        const auto out = m.store("e" + std::to_string(i), v.data(), Confidence(0.8), 0.0);
        EXPECT_NEAR(out.activation.value(), expected[i], 1e-12) << i;
    }
}

TEST(MemoryEngine, DuplicateWithHigherConfidenceReplaces) {
    MemoryEngine m(config(16, 10, 0.95));
    const auto a = axis(16, 0), near = axis(16, 0, 0.1F); // cos ≈ 0.995
    m.store("old", a.data(), Confidence(0.6), 0.0);
    const auto out = m.store("new", near.data(), Confidence(0.9), 0.0);
    EXPECT_EQ(out.kind, StoreKind::kReplaced);
    EXPECT_EQ(out.duplicate_of, "old");
    EXPECT_EQ(m.hot().count(), 1U);
    EXPECT_TRUE(m.hot().find("new").has_value());
    EXPECT_FALSE(m.hot().find("old").has_value());
    EXPECT_DOUBLE_EQ(out.activation.value(), 0.9 * (1 - 0.5 * 0.1)); // pressure 1/10 before
}

TEST(MemoryEngine, DuplicateWithoutHigherConfidenceIsSkipped) {
    MemoryEngine m(config(16, 10, 0.95));
    const auto a = axis(16, 0), near = axis(16, 0, 0.1F);
    m.store("old", a.data(), Confidence(0.9), 0.0);
    const auto out = m.store("new", near.data(), Confidence(0.9), 0.0); // equal: not higher
    EXPECT_EQ(out.kind, StoreKind::kSkipped);
    EXPECT_EQ(out.duplicate_of, "old");
    EXPECT_NEAR(out.activation.value(), 0.9 * 0.95 * 0.9, 1e-12);
    EXPECT_EQ(m.hot().count(), 1U);
    EXPECT_FALSE(m.hot().find("new").has_value());
}

TEST(MemoryEngine, BelowThresholdOrDedupOffStoresBoth) {
    const auto a = axis(16, 0), far = axis(16, 0, 0.5F); // cos ≈ 0.894
    MemoryEngine m(config(16, 10, 0.95));
    m.store("a", a.data(), Confidence(0.9), 0.0);
    EXPECT_EQ(m.store("b", far.data(), Confidence(0.9), 0.0).kind, StoreKind::kStored);
    MemoryEngine off(config(16, 10, std::nullopt));
    off.store("a", a.data(), Confidence(0.9), 0.0);
    EXPECT_EQ(off.store("b", a.data(), Confidence(0.9), 0.0).kind, StoreKind::kStored);
    EXPECT_EQ(off.hot().count(), 2U);
}

// Candidates come from the DedupIndex exactly while the hot tier holds kIndexAfter memories or
// more (never with dedup_exact), and it finds a re-stored memory like the scan does.
TEST(MemoryEngine, DedupIndexFollowsTheHotCount) {
    for (const bool exact : {false, true}) {
        MemoryConfig c;
        c.dim = 32;
        c.dedup_exact = exact;
        MemoryEngine m(c);
        std::vector<std::vector<float>> rows;
        std::uint64_t state = 1;
        for (std::size_t i = 0; i < kIndexAfter + 10; ++i) {
            std::vector<float> v(32);
            for (float& x : v) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                x = static_cast<float>(static_cast<std::int64_t>(state >> 11) % 2001 - 1000);
            }
            const float norm = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0F));
            for (float& x : v) {
                x /= norm;
            }
            rows.push_back(v);
            const auto out = m.store("m" + std::to_string(i), v.data(), Confidence(0.9), 0.0);
            EXPECT_EQ(m.dedup_index() != nullptr, !exact && m.hot().count() >= kIndexAfter);
            (void)out;
        }
        const auto hot = m.hot().count();
        ASSERT_GE(hot, kIndexAfter);
        // A copy of a stored memory is its duplicate, through either path.
        const auto dup = m.find_duplicate(rows[3].data());
        ASSERT_TRUE(dup.has_value());
        EXPECT_FLOAT_EQ(dup->score, 1.0F);
        for (std::size_t i = 0; m.hot().count() >= kIndexAfter; ++i) {
            m.remove("m" + std::to_string(i));
        }
        EXPECT_EQ(m.dedup_index(), nullptr);
        ASSERT_TRUE(m.find_duplicate(rows[kIndexAfter + 5].data()).has_value());
    }
}

} // namespace
} // namespace engram::engine
