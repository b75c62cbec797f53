#include "engine/batch/pacer.hpp"

#include <gtest/gtest.h>

namespace engram::engine {
namespace {

PacerConfig config(Backpressure b) {
    PacerConfig c;
    c.strategy = b;
    c.budget_bytes = 1000 * 1000; // 1000 rows of 1000 bytes
    c.row_bytes = 1000;
    c.max_unindexed = 500;
    c.min_free_bytes = 1U << 20;
    c.target_ms = 100.0;
    return c;
}

constexpr Pressure kCalm{0, 1U << 30};
constexpr Pressure kTailOver{501, 1U << 30};
constexpr Pressure kMemoryShort{0, 1000};

TEST(Pacer, ParsesAndNamesStrategies) {
    for (auto b : {Backpressure::kBlock, Backpressure::kAdaptiveResize, Backpressure::kFallback}) {
        EXPECT_EQ(parse_backpressure(backpressure_name(b)), b);
    }
    EXPECT_FALSE(parse_backpressure("wait").has_value());
    EXPECT_FALSE(parse_backpressure("").has_value());
}

TEST(Pacer, BlockWaitsOnlyForTheTailAndKeepsFullChunks) {
    Pacer p(config(Backpressure::kBlock));
    EXPECT_FALSE(p.should_wait(kCalm));
    EXPECT_FALSE(p.should_wait({500, 1U << 30})); // at the limit is fine
    EXPECT_TRUE(p.should_wait(kTailOver));
    EXPECT_FALSE(p.should_wait(kMemoryShort));
    EXPECT_EQ(p.budget_rows(), 1000U);
    const Step s = p.next(kTailOver, 5000);
    EXPECT_EQ(s.rows, 1000U);
    EXPECT_EQ(s.mode, ApplyMode::kBatch);
    p.record(1000, 1e6); // latency does not change block's chunks
    EXPECT_EQ(p.next(kCalm, 5000).rows, 1000U);
    EXPECT_EQ(p.next(kCalm, 7).rows, 7U); // never more than what remains
}

TEST(Pacer, AdaptiveResizeNeverWaitsAndFollowsLatencyAndMemory) {
    Pacer p(config(Backpressure::kAdaptiveResize));
    EXPECT_FALSE(p.should_wait(kTailOver));
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 1000U);
    p.record(1000, 250.0); // too slow: halve
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 500U);
    p.record(500, 250.0);
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 250U);
    p.record(100, 250.0); // a partial chunk says nothing
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 250U);
    p.record(250, 80.0); // within the target: unchanged
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 250U);
    p.record(250, 10.0); // fast: grow by half
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 375U);
    for (int i = 0; i < 20; ++i) {
        p.record(p.chunk_rows(), 1.0);
    }
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, 1000U); // capped by the budget
    EXPECT_EQ(p.next(kMemoryShort, 1U << 20).rows, Pacer::kMinRows);
    for (int i = 0; i < 20; ++i) {
        p.record(p.chunk_rows(), 1e6);
    }
    EXPECT_EQ(p.next(kCalm, 1U << 20).rows, Pacer::kMinRows); // floor
    EXPECT_EQ(p.next(kCalm, 1U << 20).mode, ApplyMode::kBatch);
}

TEST(Pacer, FallbackSwitchesToSingleOpModeUnderPressureForTheRestOfTheCommit) {
    Pacer p(config(Backpressure::kFallback));
    EXPECT_FALSE(p.should_wait(kTailOver));
    Step s = p.next(kCalm, 5000);
    EXPECT_EQ(s.rows, 1000U);
    EXPECT_EQ(s.mode, ApplyMode::kBatch);
    EXPECT_FALSE(p.single());
    s = p.next(kTailOver, 4000);
    EXPECT_EQ(s.mode, ApplyMode::kSingle);
    EXPECT_EQ(s.rows, Pacer::kMinRows);
    s = p.next(kCalm, 3000); // stays single
    EXPECT_EQ(s.mode, ApplyMode::kSingle);
    EXPECT_TRUE(p.single());

    Pacer q(config(Backpressure::kFallback));
    EXPECT_EQ(q.next(kMemoryShort, 10).mode, ApplyMode::kSingle);
}

TEST(Pacer, TinyBudgetsStillMakeProgress) {
    PacerConfig c = config(Backpressure::kBlock);
    c.budget_bytes = 10;
    Pacer p(c);
    EXPECT_EQ(p.budget_rows(), Pacer::kMinRows);
    EXPECT_EQ(p.next(kCalm, 1).rows, 1U);
    EXPECT_EQ(p.next(kCalm, 0).rows, 1U); // callers stop at zero; never a zero-row chunk
}

TEST(Pacer, ReadsAvailableMemory) {
    const std::size_t bytes = available_memory_bytes();
    EXPECT_GT(bytes, 1U << 20); // this machine has more than a megabyte free
}

} // namespace
} // namespace engram::engine
