#pragma once
// DedupIndex: the candidate structure of deduplication — which hot memories may be within the
// dedup threshold of a new episode — at a cost per episode that does not grow with the store.
//
// HOW IT WORKS
//   Multi-table sign-random-projection hashing (SimHash, Charikar 2002) with multi-probe
//   (Lv et al. 2007) and a sketch prefilter:
//   - Codes. A row x gets tables × bits sign bits, bit j = [u_j · x > 0], and a 64-bit sketch
//     from 64 more. The u_j are the rows of a pseudo-random rotation H D3 H D2 H D1 (H the
//     Walsh-Hadamard transform, D_i random ±1 diagonals from `seed`; Andoni et al. 2015), applied
//     in O(d log d) instead of one dot product per bit. Two unit vectors at angle θ agree on each
//     bit with probability about 1 − θ/π: a near-duplicate (cos ≥ 0.95, θ ≤ 18.2°) agrees on
//     ≥ 90% of them, an unrelated memory on about half, so with 24-bit keys unrelated memories
//     rarely share a key.
//   - Tables. Table t holds (key, slot) pairs in an open-addressing hash table (linear probing,
//     8 bytes a pair, at most 70% full; grows by doubling, so adding allocates nothing but
//     amortised growth). candidates() visits the query's key and every key within Hamming distance
//     `radius` in every table (the cells of all probes are prefetched first), and keeps a slot
//     only when its sketch differs from the query's in at most `sketch_max` bits.
//   The answer is a deterministic function of the rows in the index and of the query: a row's
//   code is computed by the same operations in the same order however many rows are coded
//   together, so batch and sequential stores see the same candidates.
//   The caller rescores candidates exactly; the structure only decides which rows are looked at.
//   Parameters (defaults below) were chosen on planted near-duplicates, cos uniform in
//   [0.95, 1], on Fashion-MNIST and on Gaussian and low-rank synthetic sets: ≥ 99.9% found on
//   each (README, "Deduplication").
//
// Thread safety: const methods may run concurrently; add/remove need exclusive access.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace engram::engine {

struct DedupIndexConfig {
    // Dimension of the rows. Default: none (must be set).
    std::size_t dim = 0;
    // Hash tables. More tables find more near-duplicates (each is an independent chance) and
    // cost memory (8 bytes per memory per table, at most 70% full) and probe time. Default: 20.
    std::size_t tables = 20;
    // Bits per table key, 8..31. More bits make buckets smaller (fewer unrelated candidates)
    // and a near-duplicate less likely to share a key. Default: 24.
    std::size_t bits = 24;
    // Multi-probe radius, 0..2: keys within this Hamming distance of the query's are visited
    // too. Default: 1.
    std::size_t radius = 1;
    // Candidates whose 64-bit sketch differs from the query's in more bits are dropped before
    // any exact score (a cos 0.95 pair differs in 6.5 bits on average, sd 2.4; an unrelated pair
    // in 32). Default: 20.
    std::size_t sketch_max = 20;
    // Seed of the projection directions. Default: fixed.
    std::uint64_t seed = 0x656e6772616d2d31ULL;
};

class DedupIndex {
public:
    explicit DedupIndex(const DedupIndexConfig& config);

    const DedupIndexConfig& config() const noexcept { return config_; }
    // 32-bit words of one row's code: one key per table, then the 64-bit sketch.
    std::size_t words() const noexcept { return config_.tables + 2; }

    // Codes of n rows (row i at rows + i * stride) into out[i * words(), ...). `scratch` is
    // reused between calls. Thread-safe.
    void codes(const float* rows, std::size_t stride, std::size_t n, std::uint32_t* out,
               std::vector<float>* scratch) const;
    // The sketch of a code, and whether two codes' sketches are within sketch_max bits.
    std::uint64_t sketch_at(const std::uint32_t* code) const noexcept {
        return static_cast<std::uint64_t>(code[config_.tables]) |
               static_cast<std::uint64_t>(code[config_.tables + 1]) << 32;
    }
    bool sketch_near(const std::uint32_t* a, const std::uint32_t* b) const noexcept {
        return static_cast<std::size_t>(__builtin_popcountll(sketch_at(a) ^ sketch_at(b))) <=
               config_.sketch_max;
    }
    // The probe masks (key ^ mask is probed), the zero mask first.
    const std::vector<std::uint32_t>& masks() const noexcept { return masks_; }

    // Adds `slot` with its code (replacing what the slot had); remove() takes it out (no-op when
    // absent).
    void add(std::uint32_t slot, const std::uint32_t* code);
    void remove(std::uint32_t slot);
    bool contains(std::uint32_t slot) const noexcept {
        return slot < present_.size() && present_[slot] != 0;
    }
    std::size_t size() const noexcept { return size_; }
    std::size_t memory_bytes() const noexcept;

    // The slots under a probed key whose sketch is near the code's, sorted, each once, into
    // *out. `positions` is scratch reused between calls.
    void candidates(const std::uint32_t* code, std::vector<std::size_t>* positions,
                    std::vector<std::uint32_t>* out) const;

private:
    // Cells: key << 32 | slot; kEmpty ends a probe run; kGone (a removed pair) does not. Keys
    // have at most 31 bits, so neither marker matches a key.
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    static constexpr std::uint64_t kGone = ~std::uint64_t{0} - 1;
    struct Table {
        std::vector<std::uint64_t> cells;
        std::size_t mask = 0;
        std::size_t used = 0; // pairs and kGone cells
        std::size_t home(std::uint32_t key) const noexcept {
            return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask;
        }
        void insert(std::uint64_t cell);
        void erase(std::uint64_t cell);
        void rehash(std::size_t capacity);
    };

    DedupIndexConfig config_;
    std::size_t planes_ = 0;   // bits of a code: tables * bits + 64
    std::size_t width_ = 0;    // rotation size: a power of two >= dim and planes_
    std::vector<float> signs_; // the rotation's random diagonals, kRounds x width_
    std::vector<std::uint32_t> masks_;
    std::vector<Table> tables_;
    // Per slot: its keys (for remove), sketch and presence.
    std::vector<std::uint32_t> keys_;
    std::vector<std::uint64_t> sketches_;
    std::vector<std::uint8_t> present_;
    std::size_t size_ = 0;
};

} // namespace engram::engine
