#pragma once
// Private to engine/hnsw/: what hnsw.cpp, search.cpp, remove.cpp and serialize.cpp share — the
// constants, the chunk geometry, the node and chunk layout, per-thread scratch, the label map,
// epochs and the serialize() gate (namespace hnsw_detail, used unqualified by those files), and
// the storage accessors and int8 scores of HnswIndex, defined inline here so that the search and
// purge loops in the other files still inline them. Include nowhere else.
#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/hnsw/hnsw.hpp"
#include "engine/pool.hpp"

namespace engram::engine {

namespace hnsw_detail {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kNoEntry = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint8_t kMaxLevel = 31;
constexpr std::size_t kAlign = 64;

// Chunk geometry: chunk c holds 256 << c slots up to 65536, then 65536 each. Small indexes stay
// small, large ones add 64K slots at a time, and slot -> (chunk, offset) is a few bit operations.
constexpr std::uint32_t kFirstShift = 8;
constexpr std::uint32_t kLastShift = 16;
constexpr std::size_t kGeoChunks = kLastShift - kFirstShift + 1;
constexpr std::uint64_t kGeoSlots = (std::uint64_t{1} << kFirstShift) * ((1U << kGeoChunks) - 1);
constexpr std::size_t kMaxChunks =
    kGeoChunks + static_cast<std::size_t>(((std::uint64_t{1} << 32) - kGeoSlots) >> kLastShift) + 1;

inline void locate(std::uint32_t slot, std::size_t* chunk, std::size_t* offset) noexcept {
    if (slot < kGeoSlots) {
        const std::uint32_t s = slot + (1U << kFirstShift);
        const std::uint32_t hi = 31U - static_cast<std::uint32_t>(__builtin_clz(s));
        *chunk = hi - kFirstShift;
        *offset = s - (1U << hi);
    } else {
        const std::uint64_t r = slot - kGeoSlots;
        *chunk = kGeoChunks + static_cast<std::size_t>(r >> kLastShift);
        *offset = static_cast<std::size_t>(r & ((1U << kLastShift) - 1));
    }
}

constexpr std::size_t chunk_capacity(std::size_t chunk) noexcept {
    return chunk < kGeoChunks ? (std::size_t{1} << (kFirstShift + chunk))
                              : (std::size_t{1} << kLastShift);
}

inline std::uint64_t pack_entry(std::uint32_t slot, std::uint32_t level) noexcept {
    return slot | (std::uint64_t{level} << 32);
}

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

inline std::uint32_t load(const std::uint32_t& v) noexcept {
    return std::atomic_ref<const std::uint32_t>(v).load(std::memory_order_acquire);
}
inline void store(std::uint32_t& v, std::uint32_t x) noexcept {
    std::atomic_ref<std::uint32_t>(v).store(x, std::memory_order_release);
}

enum : std::uint8_t { kFree = 0, kLive = 1, kRemoved = 2 };

struct Candidate {
    float score;
    std::uint32_t slot;
};

struct Node {
    std::uint32_t lock = 0;  // spin lock, through atomic_ref
    std::uint32_t label = 0; // written before the node is published, immutable until reuse
    std::uint8_t level = 0;
    // Levels 1..level, each [count, m ids].
    std::unique_ptr<std::uint32_t[]> upper;
};

struct Chunk {
    std::uint32_t* links0 = nullptr; // capacity * link0_stride
    std::int8_t* codes = nullptr;    // capacity * code_len
    float* scales = nullptr;         // capacity inv_scales (dense: stays in cache)
    std::uint8_t* states = nullptr;  // capacity states, through atomic_ref (dense, like scales)
    float* rows = nullptr;           // capacity * row_stride (nullptr: the owner keeps rows)
    std::unique_ptr<Node[]> nodes;

    Chunk() = default;
    Chunk(const Chunk&) = delete;
    Chunk& operator=(const Chunk&) = delete;
    ~Chunk() {
        aligned_free(links0);
        aligned_free(codes);
        aligned_free(scales);
        aligned_free(states);
        aligned_free(rows);
    }
};

struct Query {
    const std::int8_t* codes;
    float inv_scale;
};

// Per-thread search state: visited marks (a generation per slot), the heaps and buffers. Lives
// in a thread_local, so searches allocate nothing once warm; a nested use on the same thread (a
// filter that searches) gets a fresh one.
struct Scratch {
    std::vector<std::uint16_t> visited;
    std::uint16_t generation = 0;
    std::vector<Candidate> candidates;
    std::vector<Candidate> results;
    std::vector<Candidate> entries;
    std::vector<Candidate> work;
    std::vector<Candidate> work2;
    std::vector<std::uint32_t> ids;
    std::vector<std::int8_t> query_codes;
    std::vector<const float*> rows; // the re-rank's float rows
    bool busy = false;

    void begin(std::size_t slots) {
        if (visited.size() < slots) {
            visited.resize(std::max(slots, visited.size() * 2));
        }
        if (++generation == 0) {
            std::fill(visited.begin(), visited.end(), std::uint16_t{0});
            generation = 1;
        }
    }
    // True when slot was not yet visited in this generation (and marks it).
    bool visit(std::uint32_t slot) {
        if (slot >= visited.size()) {
            visited.resize(std::max<std::size_t>(slot + 1, visited.size() * 2));
        }
        if (visited[slot] == generation) {
            return false;
        }
        visited[slot] = generation;
        return true;
    }
};

class ScratchLease {
public:
    ScratchLease() {
        thread_local Scratch local;
        if (!local.busy) {
            scratch_ = &local;
        } else {
            own_ = std::make_unique<Scratch>();
            scratch_ = own_.get();
        }
        scratch_->busy = true;
    }
    ~ScratchLease() { scratch_->busy = false; }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    Scratch& get() noexcept { return *scratch_; }

private:
    Scratch* scratch_ = nullptr;
    std::unique_ptr<Scratch> own_;
};

// label -> slot, sharded so that concurrent writers rarely meet.
class LabelMap {
public:
    // Sets label -> slot; returns the previous slot or kNone.
    std::uint32_t exchange(std::uint32_t label, std::uint32_t slot) {
        Shard& s = shard(label);
        std::lock_guard<std::mutex> lock(s.mutex);
        auto [it, inserted] = s.map.try_emplace(label, slot);
        if (inserted) {
            return kNone;
        }
        return std::exchange(it->second, slot);
    }
    std::uint32_t erase(std::uint32_t label) {
        Shard& s = shard(label);
        std::lock_guard<std::mutex> lock(s.mutex);
        auto it = s.map.find(label);
        if (it == s.map.end()) {
            return kNone;
        }
        const std::uint32_t slot = it->second;
        s.map.erase(it);
        return slot;
    }
    std::uint32_t find(std::uint32_t label) const {
        const Shard& s = shard(label);
        std::lock_guard<std::mutex> lock(s.mutex);
        auto it = s.map.find(label);
        return it == s.map.end() ? kNone : it->second;
    }

private:
    static constexpr std::size_t kShards = 64;
    struct alignas(64) Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::uint32_t, std::uint32_t> map;
    };
    Shard& shard(std::uint32_t label) noexcept { return shards_[splitmix64(label) % kShards]; }
    const Shard& shard(std::uint32_t label) const noexcept {
        return shards_[splitmix64(label) % kShards];
    }
    std::array<Shard, kShards> shards_;
};

// Epoch-based reclamation for searches, which take no lock. A search registers in the current
// epoch e (counter stripe per thread, two parities); the epoch may advance from e to e+1 only
// when no search of epoch e-1 is still running. A slot purged with tag r is therefore unreachable
// by any running search once the epoch reaches r+2, and may be reused.
class Epochs {
public:
    std::uint64_t enter(std::size_t stripe) noexcept {
        std::uint64_t e = global_.load();
        for (;;) {
            stripes_[stripe].active[e & 1].fetch_add(1);
            const std::uint64_t again = global_.load();
            if (again == e) {
                return e;
            }
            stripes_[stripe].active[e & 1].fetch_sub(1);
            e = again;
        }
    }
    void exit(std::size_t stripe, std::uint64_t e) noexcept {
        stripes_[stripe].active[e & 1].fetch_sub(1, std::memory_order_release);
    }
    // Advances when no search of the previous epoch runs; returns the epoch now.
    std::uint64_t try_advance() noexcept {
        std::uint64_t e = global_.load();
        std::int64_t older = 0;
        for (const Stripe& s : stripes_) {
            older += s.active[(e + 1) & 1].load();
        }
        if (older == 0) {
            global_.compare_exchange_strong(e, e + 1);
        }
        return global_.load();
    }
    // An RMW, so that whoever later reads a newer epoch also sees what the caller wrote before.
    std::uint64_t tag() noexcept { return global_.fetch_add(0); }
    [[nodiscard]] std::uint64_t current() const noexcept { return global_.load(); }

    static std::size_t thread_stripe() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t stripe = next.fetch_add(1) % kStripes;
        return stripe;
    }

private:
    static constexpr std::size_t kStripes = 16;
    struct alignas(64) Stripe {
        std::atomic<std::int64_t> active[2] = {};
    };
    std::atomic<std::uint64_t> global_{2};
    std::array<Stripe, kStripes> stripes_;
};

class EpochGuard {
public:
    explicit EpochGuard(Epochs& epochs)
        : epochs_(epochs), stripe_(Epochs::thread_stripe()), epoch_(epochs.enter(stripe_)) {}
    ~EpochGuard() { epochs_.exit(stripe_, epoch_); }
    EpochGuard(const EpochGuard&) = delete;
    EpochGuard& operator=(const EpochGuard&) = delete;

private:
    Epochs& epochs_;
    std::size_t stripe_;
    std::uint64_t epoch_;
};

// A writer-preferring shared gate: once an exclusive holder waits, new shared holders wait too
// (std::shared_mutex on glibc prefers readers and could starve serialize() under steady inserts).
class Gate {
public:
    void lock_shared() {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return !exclusive_ && waiting_ == 0; });
        ++shared_;
    }
    void unlock_shared() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--shared_ == 0) {
            cv_.notify_all();
        }
    }
    void lock() {
        std::unique_lock<std::mutex> lock(mutex_);
        ++waiting_;
        cv_.wait(lock, [&] { return !exclusive_ && shared_ == 0; });
        --waiting_;
        exclusive_ = true;
    }
    void unlock() {
        std::lock_guard<std::mutex> lock(mutex_);
        exclusive_ = false;
        cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t shared_ = 0;
    std::size_t waiting_ = 0;
    bool exclusive_ = false;
};

inline void sort_best_first(std::vector<Candidate>& v) {
    std::sort(v.begin(), v.end(), [](const Candidate& a, const Candidate& b) {
        return a.score != b.score ? a.score > b.score : a.slot < b.slot;
    });
}

} // namespace hnsw_detail

// The four .cpp files use these names unqualified, as when they were one file's anonymous
// namespace.
using namespace hnsw_detail;

// ---- storage ----------------------------------------------------------------------------------

inline HnswIndex::Node& HnswIndex::node(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->nodes[o];
}

inline const std::int8_t* HnswIndex::codes(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->codes + o * code_len_;
}

inline bool HnswIndex::allocated(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire) != nullptr;
}

inline std::uint8_t HnswIndex::state(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    const std::uint8_t& st = chunks_[c].load(std::memory_order_acquire)->states[o];
    return std::atomic_ref<const std::uint8_t>(st).load(std::memory_order_acquire);
}

inline void HnswIndex::set_state(std::uint32_t slot, std::uint8_t st) noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    std::uint8_t& cell = chunks_[c].load(std::memory_order_acquire)->states[o];
    std::atomic_ref<std::uint8_t>(cell).store(st, std::memory_order_release);
}

inline float HnswIndex::inv_scale(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->scales[o];
}

inline const float* HnswIndex::row(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    const Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
    if (config_.rows.set()) {
        return config_.rows.row(config_.rows.context, chunk->nodes[o].label);
    }
    return chunk->rows + o * row_stride_;
}

inline std::uint32_t* HnswIndex::links(std::uint32_t slot, std::size_t level) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
    if (level == 0) {
        return chunk->links0 + o * link0_stride_;
    }
    Node& n = chunk->nodes[o];
    assert(level <= n.level);
    return n.upper.get() + (level - 1) * (1 + m_);
}

// Holds a node's spin lock for a scope (released on bad_alloc too).
class HnswIndex::NodeLock {
public:
    NodeLock(const HnswIndex& index, std::uint32_t slot) : index_(index), slot_(slot) {
        index_.lock_node(slot_);
    }
    ~NodeLock() { index_.unlock_node(slot_); }
    NodeLock(const NodeLock&) = delete;
    NodeLock& operator=(const NodeLock&) = delete;

private:
    const HnswIndex& index_;
    std::uint32_t slot_;
};

// ---- scoring ----------------------------------------------------------------------------------

inline float HnswIndex::score(const Query& q, std::uint32_t slot) const noexcept {
    return static_cast<float>(dot_i8_(q.codes, codes(slot), code_len_)) * q.inv_scale *
           inv_scale(slot);
}

inline float HnswIndex::score(std::uint32_t a, std::uint32_t b) const noexcept {
    return static_cast<float>(dot_i8_(codes(a), codes(b), code_len_)) * inv_scale(a) * inv_scale(b);
}

} // namespace engram::engine
