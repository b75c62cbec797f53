#pragma once
// MemoryEngine: the store semantics of DESIGN §2 over a HotTier — pressure, deduplication,
// eviction and store-time activation, one episode at a time, in the order they are given.
//
// The engine holds no episode text: only what the semantics need (unit embeddings, store-time
// activation, encoding confidence, time). The caller persists full records.
//
// Duplicate scoring is canonical: candidates are screened with any kernel at a slightly lower
// threshold (kScreenSlack), then every candidate's cosine is recomputed with the one `dot`
// kernel, and only that score is compared with the threshold. Sequential store() and the batch
// engine (engine/batch) therefore agree exactly, whichever kernels screened the candidates.
//
// Thread safety: not internally synchronised; the owner serialises calls.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// Screening margin below the threshold: far above any kernel's rounding difference (~1e-6).
inline constexpr float kScreenSlack = 1e-3F;

enum class StoreKind { kStored, kReplaced, kSkipped };

struct StoreOutcome {
    StoreKind kind = StoreKind::kStored;
    Activation activation;    // the store's activation (× 0.9 when skipped as a duplicate)
    double pressure = 0.0;    // count before / capacity
    std::string evicted_id;   // memory moved to the cold tier to make room, if any
    std::string duplicate_of; // existing memory matched by deduplication (replaced or kept)
};

// A hot memory that an episode duplicates, with its canonical score.
struct Duplicate {
    std::uint32_t slot = 0;
    float score = 0.0F;
};

class MemoryEngine {
public:
    explicit MemoryEngine(const MemoryConfig& config);

    const MemoryConfig& config() const noexcept { return config_; }
    HotTier& hot() noexcept { return hot_; }
    const HotTier& hot() const noexcept { return hot_; }
    double pressure() const noexcept;

    // Canonical cosine of a unit vector with a hot slot.
    float score(const float* unit, std::uint32_t slot) const noexcept;
    // The best hot memory with canonical score >= the dedup threshold (ties: smallest id), or
    // nullopt (also when deduplication is off).
    std::optional<Duplicate> find_duplicate(const float* unit) const;

    // Stores one episode whose id is not in the hot tier. `unit` is its L2-normalised embedding.
    StoreOutcome store(const std::string& id, const float* unit, Confidence encoding,
                       double occurred_at);
    // store() with the duplicate already found (the batch engine's entry point).
    StoreOutcome store_resolved(const std::string& id, const float* unit, Confidence encoding,
                                double occurred_at, std::optional<Duplicate> dup);
    // Puts a memory back in the hot tier as it was (rebuilding from storage); no semantics applied.
    void restore(const std::string& id, const float* unit, double activation, double confidence,
                 double occurred_at);

private:
    MemoryConfig config_;
    HotTier hot_;
};

} // namespace engram::engine
