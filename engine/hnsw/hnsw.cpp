#include "engine/hnsw/hnsw.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <new>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "engine/hnsw/quant.hpp"
#include "engine/pool.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {

namespace {

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

constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
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

inline void prefetch(const void* p) noexcept {
    __builtin_prefetch(p, 0, 3);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

} // namespace

namespace hnsw_detail {

enum : std::uint8_t { kFree = 0, kLive = 1, kRemoved = 2 };

struct Candidate {
    float score;
    std::uint32_t slot;
};

// Best first: a max-heap on score.
struct WorseScore {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
        return a.score < b.score;
    }
};
// Worst on top: a min-heap on score.
struct BetterScore {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
        return a.score > b.score;
    }
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
    float* rows = nullptr;           // capacity * row_stride
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

} // namespace hnsw_detail

using hnsw_detail::Candidate;
using hnsw_detail::kFree;
using hnsw_detail::kLive;
using hnsw_detail::kRemoved;

namespace {

void sort_best_first(std::vector<Candidate>& v) {
    std::sort(v.begin(), v.end(), [](const Candidate& a, const Candidate& b) {
        return a.score != b.score ? a.score > b.score : a.slot < b.slot;
    });
}

} // namespace

// ---- config ---------------------------------------------------------------------------------

Status HnswConfig::validate() const {
    if (dim < 1 || dim > 65536) {
        return Status::invalid("hnsw: dim must be in 1..65536 (got " + std::to_string(dim) + ")");
    }
    if (m < 2 || m > 256) {
        return Status::invalid("hnsw: m must be in 2..256 (got " + std::to_string(m) + ")");
    }
    if (ef_construction < 1 || ef_construction > 65536) {
        return Status::invalid("hnsw: ef_construction must be in 1..65536 (got " +
                               std::to_string(ef_construction) + ")");
    }
    return Status::ok();
}

// ---- construction / storage -------------------------------------------------------------------

HnswIndex::HnswIndex(const HnswConfig& config)
    : config_(config), chunks_(std::make_unique<std::atomic<Chunk*>[]>(kMaxChunks)),
      entry_(kNoEntry), labels_(std::make_unique<hnsw_detail::LabelMap>()),
      epochs_(std::make_unique<hnsw_detail::Epochs>()),
      gate_(std::make_unique<hnsw_detail::Gate>()) {
    assert(config.validate().is_ok());
    config_.dim = std::clamp<std::size_t>(config_.dim, 1, 65536);
    config_.m = std::clamp<std::size_t>(config_.m, 2, 256);
    config_.ef_construction = std::clamp<std::size_t>(config_.ef_construction, 1, 65536);
    m_ = config_.m;
    m0_ = 2 * config_.m;
    ef_build_ = std::max(config_.ef_construction, m_);
    level_mult_ = 1.0 / std::log(static_cast<double>(m_));
    code_len_ = round_up(config_.dim, quant::kQuantBlock);
    row_stride_ = round_up(config_.dim, kAlign / sizeof(float));
    link0_stride_ = round_up(1 + m0_, kAlign / sizeof(std::uint32_t));
    dot_i8_ = quant::quant_kernels().dot_i8;
}

HnswIndex::~HnswIndex() {
    // The directory owns its chunks (published as raw atomic pointers so readers need no lock).
    for (std::size_t c = 0; c < kMaxChunks; ++c) {
        const std::unique_ptr<Chunk> owned(chunks_[c].load(std::memory_order_relaxed));
    }
}

const char* HnswIndex::kernel_name() noexcept {
    return quant::quant_kernels().name;
}

void HnswIndex::ensure_chunk(std::size_t chunk) {
    if (chunks_[chunk].load(std::memory_order_acquire) != nullptr) {
        return;
    }
    std::lock_guard<std::mutex> lock(grow_mutex_);
    if (chunks_[chunk].load(std::memory_order_relaxed) != nullptr) {
        return;
    }
    const std::size_t cap = chunk_capacity(chunk);
    auto c = std::make_unique<Chunk>();
    c->links0 = static_cast<std::uint32_t*>(
        aligned_zalloc(cap * link0_stride_ * sizeof(std::uint32_t), kAlign));
    c->codes = static_cast<std::int8_t*>(aligned_zalloc(cap * code_len_, kAlign));
    c->scales = static_cast<float*>(aligned_zalloc(cap * sizeof(float), kAlign));
    c->states = static_cast<std::uint8_t*>(aligned_zalloc(cap, kAlign));
    c->rows = static_cast<float*>(aligned_zalloc(cap * row_stride_ * sizeof(float), kAlign));
    c->nodes = std::make_unique<Node[]>(cap);
    chunks_[chunk].store(c.release(), std::memory_order_release);
}

void HnswIndex::reserve(std::size_t slots) {
    if (slots == 0) {
        return;
    }
    std::size_t last = 0;
    std::size_t offset = 0;
    locate(static_cast<std::uint32_t>(std::min<std::size_t>(slots, kNone) - 1), &last, &offset);
    for (std::size_t c = 0; c <= last; ++c) {
        ensure_chunk(c);
    }
}

HnswIndex::Node& HnswIndex::node(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->nodes[o];
}

const std::int8_t* HnswIndex::codes(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->codes + o * code_len_;
}

bool HnswIndex::allocated(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire) != nullptr;
}

std::uint8_t HnswIndex::state(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    const std::uint8_t& st = chunks_[c].load(std::memory_order_acquire)->states[o];
    return std::atomic_ref<const std::uint8_t>(st).load(std::memory_order_acquire);
}

void HnswIndex::set_state(std::uint32_t slot, std::uint8_t st) noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    std::uint8_t& cell = chunks_[c].load(std::memory_order_acquire)->states[o];
    std::atomic_ref<std::uint8_t>(cell).store(st, std::memory_order_release);
}

float HnswIndex::inv_scale(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->scales[o];
}

const float* HnswIndex::row(std::uint32_t slot) const noexcept {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    return chunks_[c].load(std::memory_order_acquire)->rows + o * row_stride_;
}

std::uint32_t* HnswIndex::links(std::uint32_t slot, std::size_t level) const noexcept {
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

std::uint32_t HnswIndex::allocate_slot() {
    if (limbo_count_.load(std::memory_order_acquire) > 0) {
        std::lock_guard<std::mutex> lock(free_mutex_);
        if (limbo_head_ < limbo_.size()) {
            const auto [slot, tag] = limbo_[limbo_head_];
            // Two advances: the purge's own epoch, then the next.
            for (int i = 0; i < 2 && epochs_->current() < tag + 2; ++i) {
                epochs_->try_advance();
            }
            if (epochs_->current() >= tag + 2) {
                ++limbo_head_;
                limbo_count_.fetch_sub(1, std::memory_order_release);
                if (limbo_head_ == limbo_.size()) {
                    limbo_.clear();
                    limbo_head_ = 0;
                }
                return slot;
            }
        }
    }
    const std::uint32_t slot = next_slot_.fetch_add(1, std::memory_order_acq_rel);
    if (slot == kNone) {
        throw std::length_error("hnsw: more than 2^32 - 1 slots");
    }
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    ensure_chunk(c);
    return slot;
}

std::uint8_t HnswIndex::random_level() {
    const std::uint64_t n = level_counter_.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t x = splitmix64(config_.seed ^ splitmix64(n));
    const double u = static_cast<double>((x >> 11) + 1) * 0x1.0p-53; // (0, 1]
    const double level = std::floor(-std::log(u) * level_mult_);
    return static_cast<std::uint8_t>(std::min<double>(level, kMaxLevel));
}

void HnswIndex::init_node(std::uint32_t slot, std::uint32_t label, std::uint8_t level,
                          const float* unit) {
    std::size_t c = 0;
    std::size_t o = 0;
    locate(slot, &c, &o);
    Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
    std::memcpy(chunk->rows + o * row_stride_, unit, config_.dim * sizeof(float));
    chunk->scales[o] =
        quant::quantize_i8(unit, config_.dim, chunk->codes + o * code_len_, code_len_);
    Node& n = chunk->nodes[o];
    n.label = label;
    n.level = level;
    n.upper.reset();
    if (level > 0) {
        n.upper = std::make_unique<std::uint32_t[]>(level * (1 + m_));
    }
    store(chunk->links0[o * link0_stride_], 0);
    std::atomic_ref<std::uint8_t>(chunk->states[o]).store(kLive, std::memory_order_release);
}

void HnswIndex::lock_node(std::uint32_t slot) const noexcept {
    std::atomic_ref<std::uint32_t> lock(node(slot).lock);
    for (int spins = 0; lock.exchange(1, std::memory_order_acquire) != 0;) {
        while (lock.load(std::memory_order_relaxed) != 0) {
            if (++spins < 64) {
                cpu_relax();
            } else {
                std::this_thread::yield();
            }
        }
    }
}

void HnswIndex::unlock_node(std::uint32_t slot) const noexcept {
    std::atomic_ref<std::uint32_t>(node(slot).lock).store(0, std::memory_order_release);
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

// ---- scoring and search -----------------------------------------------------------------------

float HnswIndex::score(const Query& q, std::uint32_t slot) const noexcept {
    return static_cast<float>(dot_i8_(q.codes, codes(slot), code_len_)) * q.inv_scale *
           inv_scale(slot);
}

float HnswIndex::score(std::uint32_t a, std::uint32_t b) const noexcept {
    return static_cast<float>(dot_i8_(codes(a), codes(b), code_len_)) * inv_scale(a) * inv_scale(b);
}

void HnswIndex::greedy(const Query& q, std::size_t level, Candidate* cur) const {
    for (bool changed = true; changed;) {
        changed = false;
        const std::uint32_t* list = links(cur->slot, level);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), m_);
        for (std::uint32_t i = 0; i < n; ++i) {
            prefetch(codes(load(list[1 + i])));
        }
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            const float s = score(q, id);
            if (s > cur->score) {
                *cur = {s, id};
                changed = true;
            }
        }
    }
}

void HnswIndex::search_level(const Query& q, std::size_t ef, std::size_t level,
                             const std::function<bool(std::uint32_t)>* filter, Scratch& s) const {
    s.begin(next_slot_.load(std::memory_order_acquire));
    auto& cands = s.candidates;
    auto& results = s.results;
    cands.clear();
    results.clear();
    const auto accepted = [&](std::uint32_t slot) {
        return state(slot) == kLive && (filter == nullptr || (*filter)(node(slot).label));
    };
    const auto add_result = [&](const Candidate& c) {
        results.push_back(c);
        std::push_heap(results.begin(), results.end(), hnsw_detail::BetterScore{});
        if (results.size() > ef) {
            std::pop_heap(results.begin(), results.end(), hnsw_detail::BetterScore{});
            results.pop_back();
        }
    };
    for (const Candidate& e : s.entries) {
        if (!s.visit(e.slot)) {
            continue;
        }
        cands.push_back(e);
        std::push_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
        if (accepted(e.slot)) {
            add_result(e);
        }
    }
    const std::size_t limit = max_links(level);
    const std::size_t lines = code_len_ / kAlign;
    auto& ids = s.ids;
    ids.resize(limit);
    while (!cands.empty()) {
        const Candidate c = cands.front();
        if (results.size() >= ef && c.score < results.front().score) {
            break;
        }
        std::pop_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
        cands.pop_back();
        if (!cands.empty()) {
            prefetch(links(cands.front().slot, level)); // likely the next one expanded
        }

        const std::uint32_t* list = links(c.slot, level);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), limit);
        std::size_t fresh = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (s.visit(id)) {
                ids[fresh++] = id;
                prefetch(codes(id));
            }
        }
        for (std::size_t i = 0; i < fresh; ++i) {
            const std::uint32_t id = ids[i];
            if (i + 1 < fresh) {
                // The first line of the next row is already on its way; ask for the rest.
                const std::int8_t* next = codes(ids[i + 1]);
                for (std::size_t l = 1; l < lines; ++l) {
                    prefetch(next + l * kAlign);
                }
            }
            const float sc = score(q, id);
            if (results.size() < ef || sc > results.front().score) {
                cands.push_back({sc, id});
                std::push_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
                if (accepted(id)) {
                    add_result({sc, id});
                }
            }
        }
    }
}

std::vector<std::pair<std::uint32_t, float>>
HnswIndex::search(const float* unit, std::size_t k, std::size_t ef,
                  const std::function<bool(std::uint32_t)>* filter) const {
    std::vector<std::pair<std::uint32_t, float>> out;
    if (k == 0) {
        return out;
    }
    ef = std::max(ef, k);
    hnsw_detail::ScratchLease lease;
    Scratch& s = lease.get();
    hnsw_detail::EpochGuard guard(*epochs_);
    const std::uint64_t entry = entry_.load(std::memory_order_acquire);
    if (entry == kNoEntry) {
        return out;
    }
    s.query_codes.resize(code_len_);
    const Query q{s.query_codes.data(),
                  quant::quantize_i8(unit, config_.dim, s.query_codes.data(), code_len_)};
    Candidate cur{0.0F, static_cast<std::uint32_t>(entry)};
    cur.score = score(q, cur.slot);
    for (auto level = static_cast<std::size_t>(entry >> 32); level > 0; --level) {
        greedy(q, level, &cur);
    }
    s.entries.assign(1, cur);
    search_level(q, ef, 0, filter, s);

    // Exact re-rank of the ef survivors of the int8 walk.
    const simd::KernelTable& kt = simd::kernels();
    out.reserve(s.results.size());
    for (const Candidate& c : s.results) {
        out.emplace_back(node(c.slot).label, kt.dot(unit, row(c.slot), config_.dim));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (out.size() > k) {
        out.resize(k);
    }
    return out;
}

// ---- insertion --------------------------------------------------------------------------------

void HnswIndex::select_neighbors(std::vector<Candidate>& sorted, std::size_t limit) const {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < sorted.size() && kept < limit; ++i) {
        const Candidate c = sorted[i];
        bool good = true;
        for (std::size_t j = 0; j < kept; ++j) {
            // c is closer to an already kept neighbour than to the base: that neighbour covers
            // c's direction.
            if (score(c.slot, sorted[j].slot) > c.score) {
                good = false;
                break;
            }
        }
        if (good) {
            sorted[kept++] = c;
        }
    }
    sorted.resize(kept);
}

void HnswIndex::write_links(std::uint32_t slot, std::size_t level,
                            const std::vector<Candidate>& list) {
    std::uint32_t* l = links(slot, level);
    const std::size_t n = std::min(list.size(), max_links(level));
    for (std::size_t i = 0; i < n; ++i) {
        store(l[1 + i], list[i].slot);
    }
    store(l[0], static_cast<std::uint32_t>(n));
}

void HnswIndex::link_to(std::uint32_t from, std::uint32_t to, std::size_t level, Scratch& s) {
    const NodeLock lock(*this, from);
    std::uint32_t* list = links(from, level);
    const std::uint32_t n = load(list[0]);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (load(list[1 + i]) == to) {
            return;
        }
    }
    if (n < max_links(level)) {
        store(list[1 + n], to);
        store(list[0], n + 1);
        return;
    }
    // Full: re-select among the current links and the new one. Tombstones stay candidates:
    // dropping one here would lose the paths through it that its purge is to reconnect.
    auto& cands = s.work2;
    cands.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t id = load(list[1 + i]);
        cands.push_back({score(from, id), id});
    }
    cands.push_back({score(from, to), to});
    sort_best_first(cands);
    select_neighbors(cands, max_links(level));
    write_links(from, level, cands);
}

void HnswIndex::insert(std::uint32_t label, const float* unit) {
    {
        std::shared_lock<hnsw_detail::Gate> writer(*gate_);
        hnsw_detail::ScratchLease lease;
        const std::uint32_t slot = allocate_slot();
        const std::uint8_t level = random_level();
        init_node(slot, label, level, unit);
        live_.fetch_add(1, std::memory_order_relaxed);
        const std::uint32_t old = labels_->exchange(label, slot);
        if (old != kNone) {
            mark_removed(old);
        }
        // Registered like a search: a purge waits for inserts that may have seen its nodes live.
        const hnsw_detail::EpochGuard guard(*epochs_);
        insert_slot(slot, level, lease.get());
    }
    if (config_.auto_purge) {
        (void)maybe_purge();
    }
}

void HnswIndex::insert_slot(std::uint32_t slot, std::uint8_t level, Scratch& s) {
    const Query q{codes(slot), inv_scale(slot)};
    std::array<std::vector<Candidate>, kMaxLevel + 1> chosen;
    for (;;) {
        const std::uint64_t entry = entry_.load(std::memory_order_acquire);
        if (entry == kNoEntry) {
            std::lock_guard<std::mutex> lock(entry_mutex_);
            if (entry_.load(std::memory_order_acquire) == kNoEntry) {
                entry_.store(pack_entry(slot, level), std::memory_order_release);
                return;
            }
            continue;
        }
        const auto entry_level = static_cast<std::size_t>(entry >> 32);
        Candidate cur{0.0F, static_cast<std::uint32_t>(entry)};
        cur.score = score(q, cur.slot);
        for (std::size_t l = entry_level; l > level; --l) {
            greedy(q, l, &cur);
        }
        const std::size_t top = std::min<std::size_t>(level, entry_level);
        s.entries.assign(1, cur);
        for (std::size_t l = top + 1; l-- > 0;) {
            // Only live nodes are candidates: new links never point at tombstones, which is what
            // lets a purge run alongside inserts (see purge_batch). Tombstones are still walked.
            search_level(q, ef_build_, l, nullptr, s);
            auto& found = chosen[l];
            found.assign(s.results.begin(), s.results.end());
            sort_best_first(found);
            if (!found.empty()) {
                s.entries = found;
            }
            select_neighbors(found, m_);
        }
        if (chosen[0].empty()) {
            // Nothing live is reachable (every node walked is a tombstone): this node becomes
            // the entry point, so that it and what follows can be found. If the entry moved
            // meanwhile, start again from the new one.
            std::lock_guard<std::mutex> lock(entry_mutex_);
            if (entry_.load(std::memory_order_acquire) == entry) {
                entry_.store(pack_entry(slot, level), std::memory_order_release);
                return;
            }
            continue;
        }
        // Link bottom-up: when the node becomes reachable at a level, its lists below are in
        // place.
        for (std::size_t l = 0; l <= top; ++l) {
            {
                const NodeLock lock(*this, slot);
                write_links(slot, l, chosen[l]);
            }
            for (const Candidate& c : chosen[l]) {
                link_to(c.slot, slot, l, s);
            }
        }
        std::lock_guard<std::mutex> lock(entry_mutex_);
        const std::uint64_t now = entry_.load(std::memory_order_acquire);
        // A purge may have left no entry (it saw no live node) while this insert ran.
        if (now == kNoEntry || level > (now >> 32)) {
            entry_.store(pack_entry(slot, level), std::memory_order_release);
        }
        return;
    }
}

// ---- removal ----------------------------------------------------------------------------------

void HnswIndex::mark_removed(std::uint32_t slot) {
    set_state(slot, kRemoved);
    live_.fetch_sub(1, std::memory_order_relaxed);
    // Tagged after the state is stored: an operation that enters a later epoch sees it removed.
    const std::uint64_t tag = epochs_->tag();
    std::lock_guard<std::mutex> lock(free_mutex_);
    pending_.emplace_back(slot, tag);
    pending_count_.store(pending_.size(), std::memory_order_release);
}

bool HnswIndex::remove(std::uint32_t label) {
    {
        std::shared_lock<hnsw_detail::Gate> writer(*gate_);
        const std::uint32_t slot = labels_->erase(label);
        if (slot == kNone) {
            return false;
        }
        mark_removed(slot);
    }
    if (config_.auto_purge) {
        (void)maybe_purge();
    }
    return true;
}

bool HnswIndex::purge_due() const noexcept {
    // A batch of at least 1/16 of the live nodes (and 64) keeps the full scan cheap per removal
    // while tombstones stay a small fraction of what searches walk through.
    const std::size_t threshold =
        std::max<std::size_t>(64, live_.load(std::memory_order_relaxed) / 16);
    return pending_count_.load(std::memory_order_acquire) >= threshold;
}

std::size_t HnswIndex::purge_if_due() {
    return maybe_purge();
}

std::size_t HnswIndex::maybe_purge() {
    if (!purge_due()) {
        return 0;
    }
    std::unique_lock<std::mutex> one(purge_mutex_, std::try_to_lock);
    if (!one.owns_lock()) {
        return 0; // another thread is purging
    }
    std::shared_lock<hnsw_detail::Gate> writer(*gate_);
    return purge_batch(false);
}

std::size_t HnswIndex::purge() {
    std::lock_guard<std::mutex> one(purge_mutex_);
    std::shared_lock<hnsw_detail::Gate> writer(*gate_);
    return purge_batch(true);
}

void HnswIndex::repair(std::uint32_t slot, std::size_t level,
                       const std::vector<std::uint8_t>& in_batch, Scratch& s) {
    const std::size_t scanned = in_batch.size();
    const auto purged = [&](std::uint32_t id) { return id < scanned && in_batch[id] != 0; };
    std::uint32_t* list = links(slot, level);
    const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), max_links(level));
    auto& ids = s.ids;
    ids.clear();
    if (state(slot) != kLive) {
        // A tombstone of a later batch: only unlink the purged nodes (their slots will be
        // reused, and searches still walk this list).
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (!purged(id)) {
                ids.push_back(id);
            }
        }
        for (std::size_t i = 0; i < ids.size(); ++i) {
            store(list[1 + i], ids[i]);
        }
        store(list[0], static_cast<std::uint32_t>(ids.size()));
        return;
    }
    // Candidates: the surviving links (tombstones of later batches included, as in link_to),
    // and the live nodes among the links of purged neighbours and, one step further, of their
    // purged neighbours.
    const auto take = [&](std::uint32_t id) {
        if (id != slot && !purged(id) && state(id) == kLive) {
            ids.push_back(id);
        }
    };
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t id = load(list[1 + i]);
        if (!purged(id)) {
            ids.push_back(id);
            continue;
        }
        // A purged node's lists no longer change: nothing links to tombstones any more.
        const std::uint32_t* hop = links(id, level);
        const std::uint32_t hn = std::min<std::uint32_t>(load(hop[0]), max_links(level));
        for (std::uint32_t j = 0; j < hn; ++j) {
            const std::uint32_t id2 = load(hop[1 + j]);
            if (!purged(id2)) {
                take(id2);
                continue;
            }
            const std::uint32_t* hop2 = links(id2, level);
            const std::uint32_t hn2 = std::min<std::uint32_t>(load(hop2[0]), max_links(level));
            for (std::uint32_t k = 0; k < hn2; ++k) {
                take(load(hop2[1 + k]));
            }
        }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    auto& cands = s.work;
    cands.clear();
    for (const std::uint32_t id : ids) {
        cands.push_back({score(slot, id), id});
    }
    sort_best_first(cands);
    select_neighbors(cands, max_links(level));
    write_links(slot, level, cands);
}

// Heuristic pruning (in link_to and in repairs) can drop a node's last level-0 in-link, and a
// node nothing links to is never found. The purge has just walked every list, so it also counts
// in-links at level 0 and gives each such orphan one: a link from its best live out-neighbour,
// in place of that neighbour's weakest link whose target keeps another in-link.
void HnswIndex::adopt_orphans(std::uint32_t slots, std::uint32_t entry, Scratch& s) {
    std::vector<std::uint16_t> in(slots, 0);
    const auto live = [&](std::uint32_t id) {
        return id < slots && allocated(id) && state(id) == kLive;
    };
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        if (!live(slot)) {
            continue;
        }
        const std::uint32_t* list = links(slot, 0);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), m0_);
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (id < slots && in[id] < std::numeric_limits<std::uint16_t>::max()) {
                ++in[id];
            }
        }
    }
    for (std::uint32_t y = 0; y < slots; ++y) {
        if (in[y] != 0 || y == entry || !live(y)) {
            continue;
        }
        const std::uint32_t* out = links(y, 0);
        const std::uint32_t n = std::min<std::uint32_t>(load(out[0]), m0_);
        Candidate parent{0.0F, kNone};
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t x = load(out[1 + i]);
            const float sc = live(x) ? score(x, y) : -2.0F;
            if (sc > -2.0F && (parent.slot == kNone || sc > parent.score)) {
                parent = {sc, x};
            }
        }
        if (parent.slot == kNone) {
            continue; // no live out-link either: nothing to hang it on
        }
        const NodeLock lock(*this, parent.slot);
        std::uint32_t* list = links(parent.slot, 0);
        const std::uint32_t cnt = std::min<std::uint32_t>(load(list[0]), m0_);
        if (cnt < m0_) {
            store(list[1 + cnt], y);
            store(list[0], cnt + 1);
            ++in[y];
            continue;
        }
        auto& victims = s.work;
        victims.clear();
        for (std::uint32_t i = 0; i < cnt; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (id == y) {
                victims.clear(); // linked meanwhile
                break;
            }
            if (id < slots && in[id] >= 2) { // newer nodes were not counted: keep them
                victims.push_back({score(parent.slot, id), i}); // .slot = position in the list
            }
        }
        if (victims.empty()) {
            continue;
        }
        const Candidate weakest = *std::min_element(
            victims.begin(), victims.end(),
            [](const Candidate& a, const Candidate& b) { return a.score < b.score; });
        const std::uint32_t dropped = load(list[1 + weakest.slot]);
        store(list[1 + weakest.slot], y);
        --in[dropped];
        ++in[y];
    }
}

// HOW A PURGE RUNS ALONGSIDE INSERTS AND SEARCHES
//   A tombstone joins a batch only once the epoch has passed its tag by two: every insert or
//   search that might have seen it live has finished, and every later one sees it removed. No
//   insert selects a removed node as a neighbour (construction accepts live nodes only), and
//   re-selection in link_to drops them, so from then on no new link to a batch member appears.
//   The scan then rewrites every list that links to the batch, each under its node's lock (so
//   it serialises with link_to), and moves the entry point off the batch. The members' slots go
//   to limbo, reused only when every operation that started before the scan ended is done.
std::size_t HnswIndex::purge_batch(bool force) {
    // The ready tombstones form the batch. When forced, wait a little (yielding) for running
    // operations to let the epoch pass the rest; whatever is still not ready waits for the next
    // purge.
    constexpr int kForcedAttempts = 200;
    std::vector<std::uint32_t> batch;
    for (int attempt = 1;; ++attempt) {
        epochs_->try_advance();
        const std::uint64_t now = epochs_->try_advance();
        {
            std::lock_guard<std::mutex> lock(free_mutex_);
            std::size_t ready = 0;
            while (ready < pending_.size() && pending_[ready].second + 2 <= now) {
                ++ready;
            }
            if (!force || ready == pending_.size() || attempt == kForcedAttempts) {
                for (std::size_t i = 0; i < ready; ++i) {
                    batch.push_back(pending_[i].first);
                }
                pending_.erase(pending_.begin(),
                               pending_.begin() + static_cast<std::ptrdiff_t>(ready));
                pending_count_.store(pending_.size(), std::memory_order_release);
                break;
            }
        }
        std::this_thread::yield();
    }
    if (batch.empty()) {
        return 0;
    }
    hnsw_detail::ScratchLease lease;
    Scratch& s = lease.get();
    std::uint32_t best = kNone;
    std::size_t best_level = 0;
    {
        const hnsw_detail::EpochGuard guard(*epochs_); // the scan reads the graph
        const std::uint32_t slots = next_slot_.load(std::memory_order_acquire);
        std::vector<std::uint8_t> in_batch(slots, 0);
        for (const std::uint32_t b : batch) {
            in_batch[b] = 1;
        }
        for (std::uint32_t slot = 0; slot < slots; ++slot) {
            // A slot handed out by allocate_slot() may still wait for its chunk; such a slot
            // belongs to an insert that began after the batch closed and cannot link to it.
            if (in_batch[slot] != 0 || !allocated(slot)) {
                continue;
            }
            const std::uint8_t st = state(slot);
            if (st == kFree) {
                continue;
            }
            const Node& n = node(slot);
            if (st == kLive && (best == kNone || n.level > best_level)) {
                best = slot;
                best_level = n.level;
            }
            for (std::size_t l = 0; l <= n.level; ++l) {
                const std::uint32_t* list = links(slot, l);
                const std::uint32_t cnt = std::min<std::uint32_t>(load(list[0]), max_links(l));
                bool touched = false;
                for (std::uint32_t i = 0; i < cnt && !touched; ++i) {
                    const std::uint32_t id = load(list[1 + i]);
                    touched = id < slots && in_batch[id] != 0;
                }
                if (touched) {
                    const NodeLock lock(*this, slot);
                    repair(slot, l, in_batch, s);
                }
            }
        }
        std::uint64_t entry = 0;
        {
            std::lock_guard<std::mutex> lock(entry_mutex_);
            entry = entry_.load(std::memory_order_acquire);
            if (entry != kNoEntry && in_batch[static_cast<std::uint32_t>(entry)] != 0) {
                entry = best == kNone ? kNoEntry
                                      : pack_entry(best, static_cast<std::uint32_t>(best_level));
                entry_.store(entry, std::memory_order_release);
            }
        }
        adopt_orphans(slots, static_cast<std::uint32_t>(entry), s);
    }
    for (const std::uint32_t b : batch) {
        set_state(b, kFree);
    }
    const std::uint64_t tag = epochs_->tag();
    std::lock_guard<std::mutex> lock(free_mutex_);
    for (const std::uint32_t b : batch) {
        limbo_.emplace_back(b, tag);
    }
    limbo_count_.store(limbo_.size() - limbo_head_, std::memory_order_release);
    return batch.size();
}

// ---- queries ----------------------------------------------------------------------------------

std::size_t HnswIndex::size() const noexcept {
    return live_.load(std::memory_order_relaxed);
}

bool HnswIndex::contains(std::uint32_t label) const {
    return labels_->find(label) != kNone;
}

bool HnswIndex::holds(std::uint32_t label, const float* unit) const {
    const std::uint32_t slot = labels_->find(label);
    return slot != kNone && std::memcmp(row(slot), unit, config_.dim * sizeof(float)) == 0;
}

HnswStats HnswIndex::stats() const {
    HnswStats st;
    st.live = size();
    st.tombstones = pending_count_.load(std::memory_order_acquire);
    st.free_slots = limbo_count_.load(std::memory_order_acquire);
    st.slots = next_slot_.load(std::memory_order_acquire);
    const std::uint64_t entry = entry_.load(std::memory_order_acquire);
    st.max_level = entry == kNoEntry ? 0 : static_cast<std::size_t>(entry >> 32);
    return st;
}

// ---- persistence ------------------------------------------------------------------------------
//
// Snapshot format, version 1, little-endian:
//   "ENGRHNSW" u32 version u64 total_bytes
//   u32 dim u32 m u64 level_counter u32 slots u64 entry (slot | level << 32, or all ones)
//   per slot: u8 state (0 free, 1 live, 2 tombstone); unless free: u32 label, u8 level,
//             dim x f32 vector, then per level 0..level: u32 count, count x u32 ids
//   u32 n, n x u32 tombstones (purge order); u32 n, n x u32 free slots (reuse order)
//   u64 FNV-1a of every byte before it
// Codes are recomputed from the float vectors (quantize_i8 is deterministic), so the copy walks
// exactly the same graph with exactly the same scores.

namespace {

constexpr char kMagic[8] = {'E', 'N', 'G', 'R', 'H', 'N', 'S', 'W'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 8 + 4 + 8;

constexpr std::uint64_t kFnvBasis = 0xCBF29CE484222325ULL;

std::uint64_t fnv1a(const char* p, std::size_t n, std::uint64_t h = kFnvBasis) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001B3ULL;
    }
    return h;
}

template <typename T> void put(std::string* out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out->append(b, sizeof(T));
}

// Bounds-checked reading: a read past the end fails, and so does every read after it.
class Reader {
public:
    explicit Reader(std::string_view bytes) : p_(bytes.data()), left_(bytes.size()) {}
    template <typename T> bool get(T* v) noexcept {
        if (left_ < sizeof(T)) {
            left_ = 0;
            return false;
        }
        std::memcpy(v, p_, sizeof(T));
        p_ += sizeof(T);
        left_ -= sizeof(T);
        return true;
    }
    bool bytes(void* dst, std::size_t n) noexcept {
        if (left_ < n) {
            left_ = 0;
            return false;
        }
        std::memcpy(dst, p_, n);
        p_ += n;
        left_ -= n;
        return true;
    }
    [[nodiscard]] std::size_t left() const noexcept { return left_; }

private:
    const char* p_;
    std::size_t left_;
};

Status corrupt(const std::string& what) {
    return Status::corruption("hnsw snapshot: " + what);
}

} // namespace

void HnswIndex::serialize(std::string* out) const {
    serialize_to([out](std::string_view piece) { out->append(piece); }, 1U << 20);
}

void HnswIndex::serialize_to(const std::function<void(std::string_view)>& sink,
                             std::size_t piece) const {
    std::lock_guard<hnsw_detail::Gate> exclusive(*gate_);
    std::lock_guard<std::mutex> lock(free_mutex_);
    // Nothing changes while the gate is held: a first pass sizes the snapshot (its header
    // holds the total), the second streams it.
    const std::uint32_t slots = next_slot_.load(std::memory_order_acquire);
    auto link_count = [&](std::uint32_t slot, std::size_t l) {
        return std::min<std::uint32_t>(load(links(slot, l)[0]), max_links(l));
    };
    std::uint64_t total = kHeaderBytes + 4 + 4 + 8 + 4 + 8; // header .. entry point
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        total += 1;
        if (state(slot) == kFree) {
            continue;
        }
        const Node& n = node(slot);
        total += 4 + 1 + config_.dim * sizeof(float);
        for (std::size_t l = 0; l <= n.level; ++l) {
            total += 4 + 4 * static_cast<std::uint64_t>(link_count(slot, l));
        }
    }
    total += 4 + 4 * pending_.size() + 4 + 4 * (limbo_.size() - limbo_head_) + 8;

    std::string buf;
    buf.reserve(piece + config_.dim * sizeof(float) + 4096);
    std::uint64_t hash = kFnvBasis;
    auto emit = [&](bool force) {
        if (!buf.empty() && (force || buf.size() >= piece)) {
            hash = fnv1a(buf.data(), buf.size(), hash);
            sink(buf);
            buf.clear();
        }
    };
    buf.append(kMagic, sizeof kMagic);
    put<std::uint32_t>(&buf, kVersion);
    put<std::uint64_t>(&buf, total);
    put<std::uint32_t>(&buf, static_cast<std::uint32_t>(config_.dim));
    put<std::uint32_t>(&buf, static_cast<std::uint32_t>(m_));
    put<std::uint64_t>(&buf, level_counter_.load(std::memory_order_relaxed));
    put<std::uint32_t>(&buf, slots);
    put<std::uint64_t>(&buf, entry_.load(std::memory_order_acquire));
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        const std::uint8_t st = state(slot);
        put<std::uint8_t>(&buf, st);
        if (st == kFree) {
            continue;
        }
        const Node& n = node(slot);
        put<std::uint32_t>(&buf, n.label);
        put<std::uint8_t>(&buf, n.level);
        buf.append(reinterpret_cast<const char*>(row(slot)), config_.dim * sizeof(float));
        for (std::size_t l = 0; l <= n.level; ++l) {
            const std::uint32_t* list = links(slot, l);
            const std::uint32_t cnt = link_count(slot, l);
            put<std::uint32_t>(&buf, cnt);
            for (std::uint32_t i = 0; i < cnt; ++i) {
                put<std::uint32_t>(&buf, load(list[1 + i]));
            }
        }
        emit(false);
    }
    put<std::uint32_t>(&buf, static_cast<std::uint32_t>(pending_.size()));
    for (const auto& p : pending_) {
        put<std::uint32_t>(&buf, p.first);
    }
    put<std::uint32_t>(&buf, static_cast<std::uint32_t>(limbo_.size() - limbo_head_));
    for (std::size_t i = limbo_head_; i < limbo_.size(); ++i) {
        put<std::uint32_t>(&buf, limbo_[i].first);
    }
    emit(true);
    put<std::uint64_t>(&buf, hash);
    sink(buf);
}

Result<std::unique_ptr<HnswIndex>> HnswIndex::deserialize(std::string_view bytes,
                                                          const HnswConfig& config) {
    ENGRAM_TRY(config.validate());
    if (bytes.size() < kHeaderBytes + sizeof(std::uint64_t)) {
        return corrupt("truncated (" + std::to_string(bytes.size()) + " bytes)");
    }
    if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
        return corrupt("bad magic");
    }
    Reader r(bytes.substr(sizeof kMagic));
    std::uint32_t version = 0;
    std::uint64_t total = 0;
    (void)r.get(&version);
    (void)r.get(&total);
    if (version != kVersion) {
        return corrupt("unsupported version " + std::to_string(version));
    }
    if (total != bytes.size()) {
        return corrupt("length " + std::to_string(bytes.size()) + " != recorded " +
                       std::to_string(total));
    }
    const std::size_t body = bytes.size() - sizeof(std::uint64_t);
    std::uint64_t checksum = 0;
    std::memcpy(&checksum, bytes.data() + body, sizeof checksum);
    if (checksum != fnv1a(bytes.data(), body)) {
        return corrupt("checksum mismatch");
    }
    r = Reader(bytes.substr(kHeaderBytes, body - kHeaderBytes));

    std::uint32_t dim = 0;
    std::uint32_t m = 0;
    std::uint64_t level_counter = 0;
    std::uint32_t slots = 0;
    std::uint64_t entry = 0;
    if (!r.get(&dim) || !r.get(&m) || !r.get(&level_counter) || !r.get(&slots) || !r.get(&entry)) {
        return corrupt("truncated header");
    }
    if (dim != config.dim || m != config.m) {
        return Status::invalid("hnsw snapshot: dim/m " + std::to_string(dim) + "/" +
                               std::to_string(m) + " do not match the config's " +
                               std::to_string(config.dim) + "/" + std::to_string(config.m));
    }
    if (slots == kNone || slots > r.left()) { // every slot takes at least one byte
        return corrupt("slot count " + std::to_string(slots) + " exceeds the data");
    }
    auto index = std::make_unique<HnswIndex>(config);
    HnswIndex& x = *index;
    x.level_counter_.store(level_counter, std::memory_order_relaxed);
    std::vector<float> vec(dim);
    std::size_t live = 0;
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        const std::uint32_t got = x.allocate_slot();
        assert(got == slot);
        (void)got;
        std::uint8_t st = 0;
        if (!r.get(&st)) {
            return corrupt("truncated at slot " + std::to_string(slot));
        }
        if (st == kFree) {
            continue;
        }
        if (st != kLive && st != kRemoved) {
            return corrupt("bad state " + std::to_string(st) + " at slot " + std::to_string(slot));
        }
        std::uint32_t label = 0;
        std::uint8_t level = 0;
        if (!r.get(&label) || !r.get(&level) || !r.bytes(vec.data(), dim * sizeof(float))) {
            return corrupt("truncated at slot " + std::to_string(slot));
        }
        if (level > kMaxLevel) {
            return corrupt("level " + std::to_string(level) + " at slot " + std::to_string(slot));
        }
        for (const float v : vec) {
            if (!std::isfinite(v)) {
                return corrupt("non-finite vector at slot " + std::to_string(slot));
            }
        }
        x.init_node(slot, label, level, vec.data());
        if (st == kRemoved) {
            x.set_state(slot, kRemoved);
        } else {
            ++live;
            if (x.labels_->exchange(label, slot) != kNone) {
                return corrupt("duplicate label " + std::to_string(label));
            }
        }
        for (std::size_t l = 0; l <= level; ++l) {
            std::uint32_t cnt = 0;
            if (!r.get(&cnt) || cnt > x.max_links(l)) {
                return corrupt("bad link count at slot " + std::to_string(slot));
            }
            std::uint32_t* list = x.links(slot, l);
            for (std::uint32_t i = 0; i < cnt; ++i) {
                std::uint32_t id = 0;
                if (!r.get(&id) || id >= slots) {
                    return corrupt("bad link at slot " + std::to_string(slot));
                }
                store(list[1 + i], id);
            }
            store(list[0], cnt);
        }
    }
    // Lists, once every node is known: links must point at used slots that reach the level.
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        if (x.state(slot) == kFree) {
            continue;
        }
        const Node& n = x.node(slot);
        for (std::size_t l = 0; l <= n.level; ++l) {
            const std::uint32_t* list = x.links(slot, l);
            for (std::uint32_t i = 0; i < load(list[0]); ++i) {
                const std::uint32_t id = load(list[1 + i]);
                if (x.state(id) == kFree || x.node(id).level < l) {
                    return corrupt("dangling link at slot " + std::to_string(slot));
                }
            }
        }
    }
    const auto read_set = [&](std::uint8_t want, std::vector<std::uint32_t>* ids) -> bool {
        std::uint32_t n = 0;
        if (!r.get(&n) || n > slots) {
            return false;
        }
        std::vector<std::uint8_t> seen(slots, 0);
        for (std::uint32_t i = 0; i < n; ++i) {
            std::uint32_t id = 0;
            if (!r.get(&id) || id >= slots || seen[id] || x.state(id) != want) {
                return false;
            }
            seen[id] = 1;
            ids->push_back(id);
        }
        return true;
    };
    std::vector<std::uint32_t> pending;
    std::vector<std::uint32_t> free_slots;
    if (!read_set(kRemoved, &pending) || !read_set(kFree, &free_slots)) {
        return corrupt("bad tombstone or free list");
    }
    if (r.left() != 0) {
        return corrupt("trailing bytes");
    }
    const std::size_t used = slots - free_slots.size();
    if (used != live + pending.size()) {
        return corrupt("tombstone/free lists do not cover the slots");
    }
    if (entry == kNoEntry) {
        if (used != 0) {
            return corrupt("no entry point");
        }
    } else {
        const auto es = static_cast<std::uint32_t>(entry);
        if (es >= slots || x.state(es) == kFree || x.node(es).level != (entry >> 32)) {
            return corrupt("bad entry point");
        }
    }
    x.entry_.store(entry, std::memory_order_release);
    x.live_.store(live, std::memory_order_relaxed);
    for (const std::uint32_t p : pending) {
        x.pending_.emplace_back(p, 0); // no operation can hold them: purgeable at once
    }
    x.pending_count_.store(x.pending_.size(), std::memory_order_release);
    for (const std::uint32_t f : free_slots) {
        x.limbo_.emplace_back(f, 0); // no search can hold them: reusable at once
    }
    x.limbo_count_.store(x.limbo_.size(), std::memory_order_release);
    return index;
}

} // namespace engram::engine
