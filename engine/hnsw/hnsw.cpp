// HnswIndex: configuration, construction, slot storage, level draw and insertion. The rest of
// the class: search.cpp (search), remove.cpp (removal and purges), serialize.cpp (snapshots);
// what they share (layout, accessors, scratch, epochs) is in hnsw_internal.hpp.
//
// HOW IT WORKS
//   insert() takes a slot (a purged one past its grace period, else the next one, allocating its
//   chunk on first use), draws the level (random_level: -ln(U) * 1/ln(m), U from splitmix64 of the
//   seed and a counter), writes its int8 code (and the vector, unless the owner keeps the rows)
//   and the node, then insert_slot() walks
//   down from the entry point: greedy above the node's level, a beam of ef_construction
//   (search_level, live nodes only) at each level below. select_neighbors() (paper's Algorithm 4)
//   prunes what was found; the node's lists are written bottom-up and each chosen neighbour links
//   back (link_to), re-selecting with the same heuristic when its list is full.
#include "engine/hnsw/hnsw.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/hnsw/hnsw_internal.hpp"
#include "engine/hnsw/quant.hpp"
#include "engine/pool.hpp"

namespace engram::engine {

namespace {

constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
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
    if (!config_.rows.set()) {
        c->rows = static_cast<float*>(aligned_zalloc(cap * row_stride_ * sizeof(float), kAlign));
    }
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
    if (chunk->rows != nullptr) {
        std::memcpy(chunk->rows + o * row_stride_, unit, config_.dim * sizeof(float));
    }
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

// ---- queries ----------------------------------------------------------------------------------

std::size_t HnswIndex::size() const noexcept {
    return live_.load(std::memory_order_relaxed);
}

bool HnswIndex::contains(std::uint32_t label) const {
    return labels_->find(label) != kNone;
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

HnswMemory HnswIndex::memory() const {
    HnswMemory mem;
    for (std::size_t c = 0; c < kMaxChunks; ++c) {
        const Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
        if (chunk == nullptr) {
            break; // chunks are allocated in order
        }
        const std::size_t cap = chunk_capacity(c);
        mem.links += cap * (link0_stride_ * sizeof(std::uint32_t) + sizeof(Node));
        mem.codes += cap * (code_len_ + sizeof(float) + 1);
        if (chunk->rows != nullptr) {
            mem.rows += cap * row_stride_ * sizeof(float);
        }
    }
    // Upper levels (estimated, not walked): a node has level >= l with probability m^-l, so
    // 1/(m-1) upper lists per node on average, each 1 + m ids.
    const std::size_t slots = next_slot_.load(std::memory_order_acquire);
    mem.links += slots * (1 + m_) * sizeof(std::uint32_t) / (m_ - 1);
    // An unordered_map node (two ids, a next pointer, malloc's header) and a bucket each.
    mem.labels = (live_.load(std::memory_order_relaxed) + pending_count_.load()) * (32 + 8);
    return mem;
}

void HnswIndex::wait_for_searches() const {
    // A search that runs now registered in an epoch <= tag; once the epoch reaches tag + 2,
    // every search of epoch tag has finished (Epochs).
    const std::uint64_t tag = epochs_->tag();
    for (int spins = 0; epochs_->current() < tag + 2; ++spins) {
        epochs_->try_advance();
        if (epochs_->current() >= tag + 2) {
            break;
        }
        if (spins < 64) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }
}

} // namespace engram::engine
