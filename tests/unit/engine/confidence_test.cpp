#include "engine/core/confidence.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace engram::engine {
namespace {

TEST(Confidence, ConstructorsClamp) {
    EXPECT_DOUBLE_EQ(Confidence(1.7).value(), 1.0);
    EXPECT_DOUBLE_EQ(Confidence(-0.2).value(), 0.0);
    EXPECT_DOUBLE_EQ(Confidence(std::numeric_limits<double>::quiet_NaN()).value(), 0.0);
    EXPECT_DOUBLE_EQ(Confidence(0.42).value(), 0.42);
    EXPECT_DOUBLE_EQ(Confidence::exact(2.0).value(), 1.0);
}

TEST(Confidence, LogicalOperations) {
    const Confidence a(0.6), b(0.5);
    EXPECT_DOUBLE_EQ(a.and_(b).value(), 0.3);
    EXPECT_DOUBLE_EQ(a.or_(b).value(), 0.6 + 0.5 - 0.3);
    EXPECT_DOUBLE_EQ(a.not_().value(), 0.4);
}

TEST(Confidence, CombineWeighted) {
    const Confidence a(0.2), b(0.8);
    EXPECT_DOUBLE_EQ(a.combine_weighted(b, 1.0, 3.0).value(), (0.2 + 2.4) / 4.0);
    EXPECT_DOUBLE_EQ(a.combine_weighted(b, 0.0, 0.0).value(), 0.5); // zero weights
    EXPECT_DOUBLE_EQ(a.combine_weighted(b, 0.0, 1.0).value(), 0.8);
}

TEST(Confidence, Calibrate) {
    EXPECT_DOUBLE_EQ(Confidence(0.9).calibrate().value(), 0.9 * 0.85);
    EXPECT_DOUBLE_EQ(Confidence(0.8).calibrate().value(), 0.8 * 0.9); // 0.8 is in (0.6, 0.8]
    EXPECT_DOUBLE_EQ(Confidence(0.7).calibrate().value(), 0.7 * 0.9);
    EXPECT_DOUBLE_EQ(Confidence(0.6).calibrate().value(), 0.6);
    EXPECT_DOUBLE_EQ(Confidence(0.1).calibrate().value(), 0.1);
}

TEST(Confidence, Decayed) {
    EXPECT_NEAR(Confidence(1.0).decayed(0.7, 1).value(), std::exp(-0.7), 1e-12);
    EXPECT_NEAR(Confidence(0.5).decayed(0.7, 2).value(), 0.5 * std::exp(-1.4), 1e-12);
    EXPECT_DOUBLE_EQ(Confidence(0.5).decayed(0.0, 5).value(), 0.5);
}

TEST(Activation, SuccessfulAndDegraded) {
    EXPECT_TRUE(Activation(0.9).successful());
    EXPECT_FALSE(Activation(0.9).degraded());
    EXPECT_FALSE(Activation(0.5).successful()); // strictly above one half
    EXPECT_TRUE(Activation(0.51).successful());
    EXPECT_TRUE(Activation(0.79).degraded());
    EXPECT_FALSE(Activation(0.8).degraded());
    EXPECT_DOUBLE_EQ(Activation(3.0).value(), 1.0);
}

// Worked examples of DESIGN §2.
TEST(StoreActivation, WorkedExamples) {
    const Activation empty = store_activation(Confidence(0.9), 0.0 / 10.0);
    EXPECT_DOUBLE_EQ(empty.value(), 0.9);
    EXPECT_TRUE(empty.successful());
    EXPECT_FALSE(empty.degraded());
    const Activation full = store_activation(Confidence(0.9), 5.0 / 5.0);
    EXPECT_DOUBLE_EQ(full.value(), 0.45);
    EXPECT_FALSE(full.successful());
    EXPECT_TRUE(full.degraded());
    const Activation weak = store_activation(Confidence(0.5), 0.0);
    EXPECT_DOUBLE_EQ(weak.value(), 0.5);
    EXPECT_FALSE(weak.successful());
}

} // namespace
} // namespace engram::engine
