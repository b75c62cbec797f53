#pragma once
// HotTier: the in-memory working set of a store — unit-length embeddings in 64-byte aligned rows,
// with the per-memory facts that store, eviction and search need.
//
// Rows live in fixed-size chunks that never move once allocated (row pointers stay valid until
// the slot is freed); each row's stride is padded to 16 floats (one 64-byte cache line), so every
// row starts on a cache-line boundary. Chunks come from mimalloc (engine/pool.hpp), never from a
// replaced global allocator. Freed slots are zeroed and reused.
//
// Thread safety: const methods may run concurrently with each other; mutation needs exclusive
// access (the owner serialises writers against readers).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::engine {

struct SlotInfo {
    std::string id;
    std::uint64_t serial = 0; // unique per stored memory in this tier's lifetime (never reused)
    float activation = 0.0F;  // store-time activation
    float confidence = 0.0F;  // encoding confidence
    double occurred_at = 0.0;
    bool live = false;
};

// What happened to a slot, for observers that mirror the tier (the graph index).
struct TierEvent {
    enum class Kind : std::uint8_t { kAdd, kRemove, kUpdate };
    Kind kind;
    std::uint32_t slot;
};

// Resident bytes of a HotTier (allocated capacity): the rows, and the per-slot rest (ids and
// facts, the id table, the eviction heap, the free list).
struct HotTierMemory {
    std::size_t rows = 0;
    std::size_t ids = 0;
};

struct Match {
    std::uint32_t slot = 0;
    float score = 0.0F;
};

class HotTier {
public:
    static constexpr std::size_t kChunkRows = 1024;
    static constexpr std::size_t kAlign = 64;

    explicit HotTier(std::size_t dim);
    ~HotTier();
    HotTier(const HotTier&) = delete;
    HotTier& operator=(const HotTier&) = delete;

    std::size_t dim() const noexcept { return dim_; }
    std::size_t stride() const noexcept { return stride_; }
    std::size_t count() const noexcept { return live_; }
    // Slots allocated so far (live or free); rows [0, slots()) are addressable.
    std::size_t slots() const noexcept { return infos_.size(); }

    // Inserts a unit-length embedding (dim floats) for an id that is not present; returns its slot.
    std::uint32_t insert(std::string_view id, const float* unit, float activation, float confidence,
                         double occurred_at);
    // Restoring a saved slot layout: prepare_slots(n) makes slots [0, n) addressable and free,
    // insert_at() fills one of them, finish_layout() rebuilds the free list. In between, only
    // insert_at() may be called.
    void prepare_slots(std::size_t n);
    void insert_at(std::uint32_t slot, std::string_view id, const float* unit, float activation,
                   float confidence, double occurred_at);
    void finish_layout();
    // Removes an id; false when absent.
    bool remove(std::string_view id);
    // Replaces the embedding and facts of a present id; false when absent.
    bool update(std::string_view id, const float* unit, float confidence, double occurred_at);
    std::optional<std::uint32_t> find(std::string_view id) const;
    // When set, every insert/remove/update appends a TierEvent here (nullptr: off).
    void set_journal(std::vector<TierEvent>* journal) noexcept { journal_ = journal; }

    const float* row(std::uint32_t slot) const noexcept {
        return chunks_[slot / kChunkRows] + (slot % kChunkRows) * stride_;
    }
    const SlotInfo& info(std::uint32_t slot) const noexcept { return infos_[slot]; }

    // The memory eviction would remove: lowest store-time activation, ties to the smallest id.
    std::optional<std::uint32_t> eviction_candidate() const;
    // Best cosine match (ties to the smallest id), or nullopt when empty.
    std::optional<Match> best_match(const float* unit) const;
    // Up to k live slots with score >= threshold, best first (ties: smallest id). k = 0 → none.
    std::vector<Match> top_k(const float* unit, std::size_t k, float threshold) const;
    // Scores every allocated slot (free slots score 0) into out[0, slots()).
    void score_all(const float* unit, float* out) const;
    // What the tier holds in memory (walks the ids: O(slots)).
    HotTierMemory memory() const;

private:
    float* mutable_row(std::uint32_t slot) noexcept {
        return chunks_[slot / kChunkRows] + (slot % kChunkRows) * stride_;
    }
    std::uint32_t allocate_slot();
    // id → slot: open addressing (linear probing) over slot numbers, the ids themselves living
    // once in infos_. Entries: 0 empty, kTombstone erased, else slot + 1. Grows by doubling, so
    // storing a memory allocates nothing but amortised growth.
    static constexpr std::uint32_t kTombstone = 0xFFFFFFFFU;
    std::size_t probe(std::string_view id) const noexcept; // position of id, or npos
    void table_insert(std::uint32_t slot);
    void table_grow();
    // Eviction order (lowest store-time activation, ties to the smaller id) as an indexed binary
    // heap of live slots; heap_pos_[slot] is the slot's position (kNoPos when not in it).
    static constexpr std::uint32_t kNoPos = 0xFFFFFFFFU;
    bool evicts_before(std::uint32_t a, std::uint32_t b) const noexcept;
    void heap_push(std::uint32_t slot);
    void heap_erase(std::uint32_t slot);
    void heap_swap(std::size_t i, std::size_t j) noexcept;
    void heap_up(std::size_t i) noexcept;
    void heap_down(std::size_t i) noexcept;

    std::size_t dim_;
    std::size_t stride_;
    std::vector<float*> chunks_;
    std::vector<SlotInfo> infos_;
    std::vector<std::uint32_t> free_;
    std::uint64_t next_serial_ = 1;
    std::vector<TierEvent>* journal_ = nullptr;
    std::size_t live_ = 0;
    std::vector<std::uint32_t> table_;
    std::size_t table_used_ = 0; // entries that are not empty (live or tombstones)
    std::vector<std::uint32_t> heap_;
    std::vector<std::uint32_t> heap_pos_;
};

} // namespace engram::engine
