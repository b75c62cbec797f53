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
// Where duplicate candidates come from: while the hot tier holds fewer than kIndexAfter
// memories (and always with dedup_exact), every hot memory (an exact scan). When it reaches
// kIndexAfter, the engine builds a DedupIndex (engine/dedup.hpp) and keeps it in step with every
// insert, update and removal (a removal that takes the tier under kIndexAfter drops it): the
// candidates are then the memories it returns, at a cost that does not grow with the store.
// Which of the two is used, and what it returns, depend only on the hot memories, so a batch
// and the same rows stored one by one agree exactly.
//
// Thread safety: not internally synchronised; the owner serialises calls.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tbb/task_arena.h>

#include "engine/core/confidence.hpp"
#include "engine/core/status.hpp"
#include "engine/dedup.hpp"
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
    // true: deduplication always scans every hot memory (exact, O(store) per episode) instead of
    // using the DedupIndex once the store holds kIndexAfter memories. Default: false.
    bool dedup_exact = false;

    [[nodiscard]] Status validate() const;
};

// Screening margin below the threshold: far above any kernel's rounding difference (~1e-6).
inline constexpr float kScreenSlack = 1e-3F;
// Hot memories from which deduplication uses the DedupIndex (unless dedup_exact).
inline constexpr std::size_t kIndexAfter = 1024;

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
    // The best hot memory with canonical score >= the dedup threshold (ties: smallest id) among
    // the candidates (see above), or nullopt (also when deduplication is off).
    std::optional<Duplicate> find_duplicate(const float* unit) const;
    // The DedupIndex once it is in use (nullptr while candidates come from an exact scan).
    const DedupIndex* dedup_index() const noexcept { return dedup_.get(); }
    // Episodes that may still be stored before the DedupIndex can start (the exact scan is used
    // for them); 0 when it is in use or never will be.
    std::size_t exact_window() const noexcept;

    // Stores one episode whose id is not in the hot tier. `unit` is its L2-normalised embedding.
    StoreOutcome store(const std::string& id, const float* unit, Confidence encoding,
                       double occurred_at);
    // store() with the duplicate already found (the batch engine's entry point). `code`, when
    // given, is the episode's DedupIndex code (computed by the caller's screening).
    StoreOutcome store_resolved(const std::string& id, const float* unit, Confidence encoding,
                                double occurred_at, std::optional<Duplicate> dup,
                                const std::uint32_t* code = nullptr);
    // Removes a hot memory; false when absent. Under kIndexAfter memories, the DedupIndex goes
    // (the exact scan again).
    bool remove(std::string_view id);
    // Replaces the embedding and facts of a hot memory; false when absent.
    bool update(std::string_view id, const float* unit, float confidence, double occurred_at);
    // Puts a memory back in the hot tier as it was (rebuilding from storage); no semantics
    // applied, and the DedupIndex is not told: call rebuild_dedup() after the last restore.
    void restore(const std::string& id, const float* unit, double activation, double confidence,
                 double occurred_at);
    // Rebuilds the DedupIndex over the hot memories (after restores) when the store is large
    // enough (kIndexAfter) and deduplication uses it. Codes are computed in `arena`.
    void rebuild_dedup(tbb::task_arena& arena);

private:
    void maybe_start_index();
    bool remove_hot(std::string_view id); // remove() without the switch back to the scan
    void index_add(std::uint32_t slot, const float* unit, const std::uint32_t* code);

    MemoryConfig config_;
    HotTier hot_;
    std::unique_ptr<DedupIndex> dedup_;
    std::vector<std::uint32_t> code_scratch_;
    std::vector<float> proj_scratch_;
};

} // namespace engram::engine
