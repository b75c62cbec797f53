#pragma once
// MemoryEngine: the store semantics of DESIGN §2 over a HotTier — pressure, deduplication,
// eviction and store-time activation, one episode at a time, in the order they are given.
//
// The engine holds no episode text: only what the semantics need (unit embeddings, store-time
// activation, encoding confidence, time). The caller persists full records.
//
// Thread safety: not internally synchronised; the owner serialises calls.
#include <cstddef>
#include <optional>
#include <string>

#include "engine/core/confidence.hpp"
#include "engine/core/status.hpp"
#include "engine/hot_tier.hpp"

namespace engram::engine {

struct MemoryConfig {
    // Embedding dimension. Default: 768. Allowed: 1..4096.
    std::size_t dim = 768;
    // Hot-tier capacity: more memories than this are evicted to the cold tier (lowest store-time
    // activation first). Pressure = count / capacity degrades activation. Default: 1000000.
    std::size_t capacity = 1000000;
    // Cosine at or above which a new episode is a duplicate of an existing hot memory; nullopt
    // turns deduplication off. Default: 0.95. Allowed: (0, 1].
    std::optional<double> dedup_threshold = 0.95;

    [[nodiscard]] Status validate() const;
};

enum class StoreKind { kStored, kReplaced, kSkipped };

struct StoreOutcome {
    StoreKind kind = StoreKind::kStored;
    Activation activation;    // the store's activation (× 0.9 when skipped as a duplicate)
    double pressure = 0.0;    // count before / capacity
    std::string evicted_id;   // memory moved to the cold tier to make room, if any
    std::string duplicate_of; // existing memory matched by deduplication (replaced or kept)
};

class MemoryEngine {
public:
    explicit MemoryEngine(const MemoryConfig& config);

    const MemoryConfig& config() const noexcept { return config_; }
    void set_capacity(std::size_t capacity) noexcept { config_.capacity = capacity; }
    void set_dedup_threshold(std::optional<double> t) noexcept { config_.dedup_threshold = t; }
    HotTier& hot() noexcept { return hot_; }
    const HotTier& hot() const noexcept { return hot_; }
    double pressure() const noexcept;

    // Stores one episode whose id is not in the hot tier. `unit` is its L2-normalised embedding.
    StoreOutcome store(const std::string& id, const float* unit, Confidence encoding,
                       double occurred_at);
    // Puts a memory back in the hot tier as it was (rebuilding from storage); no semantics applied.
    void restore(const std::string& id, const float* unit, double activation, double confidence,
                 double occurred_at);

private:
    MemoryConfig config_;
    HotTier hot_;
};

} // namespace engram::engine
