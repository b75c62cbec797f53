#pragma once
// Pacer: the backpressure policy of a commit (DESIGN §5). Pure logic over measurements, so that
// every strategy is unit-tested without a real load.
//
// A commit is applied in chunks. The pacer says, before the commit, whether it must wait for the
// background index builder, and, before each chunk, how many rows the chunk takes and whether
// they go through the batch engine or one at a time. Every choice gives the same stored outcome
// (batch ≡ sequential); they differ only in memory, latency and how far the unindexed tail grows.
//
//   block            waits before the commit while the unindexed tail is over its limit;
//                    chunks hold the memory budget's worth of rows.
//   adaptive_resize  never waits; the chunk size starts at the budget and adapts to measured
//                    latency (halved above the target, grown by half while under half of it)
//                    and to memory (minimum chunks while memory is short).
//   fallback         never waits; batch chunks while there is no pressure, then single-op mode
//                    (rows one at a time, small chunks) for the rest of the commit once the tail
//                    is over its limit or memory is short.
#include <cstddef>
#include <optional>
#include <string_view>

namespace engram::engine {

enum class Backpressure { kBlock, kAdaptiveResize, kFallback };

std::string_view backpressure_name(Backpressure b) noexcept;
std::optional<Backpressure> parse_backpressure(std::string_view s) noexcept;

struct PacerConfig {
    Backpressure strategy = Backpressure::kBlock;
    std::size_t budget_bytes = 64U << 20;    // in-memory batch budget (store option batch_memory)
    std::size_t row_bytes = 4096;            // memory one row costs while its chunk is applied
    std::size_t max_unindexed = 100000;      // limit of the not-yet-indexed tail
    std::size_t min_free_bytes = 256U << 20; // below this much available memory, memory is short
    double target_ms = 100.0;                // chunk latency target (adaptive_resize)
};

struct Pressure {
    std::size_t unindexed = 0;
    std::size_t available_bytes = static_cast<std::size_t>(-1);
};

enum class ApplyMode { kBatch, kSingle };

struct Step {
    std::size_t rows = 0;
    ApplyMode mode = ApplyMode::kBatch;
};

class Pacer {
public:
    static constexpr std::size_t kMinRows = 64;

    explicit Pacer(const PacerConfig& config) noexcept;

    // Before the commit takes the store: true while it must wait for the index builder.
    bool should_wait(const Pressure& p) const noexcept;
    // The next chunk (at most `remaining` rows, at least one when remaining > 0).
    Step next(const Pressure& p, std::size_t remaining) noexcept;
    // Feedback: the last chunk of `rows` rows took `ms` milliseconds.
    void record(std::size_t rows, double ms) noexcept;

    std::size_t budget_rows() const noexcept { return budget_rows_; }
    std::size_t chunk_rows() const noexcept { return rows_; }
    bool single() const noexcept { return single_; }

private:
    bool memory_short(const Pressure& p) const noexcept;
    bool tail_over(const Pressure& p) const noexcept;

    PacerConfig config_;
    std::size_t budget_rows_;
    std::size_t rows_;
    bool single_ = false;
};

// MemAvailable from /proc/meminfo, in bytes (SIZE_MAX when it cannot be read).
std::size_t available_memory_bytes() noexcept;

} // namespace engram::engine
