// HnswIndex snapshots: serialize(), serialize_to(), deserialize() and holds() (declared in
// hnsw.hpp; shared layout and accessors in hnsw_internal.hpp).
//
// HOW IT WORKS
//   serialize_to() holds the gate exclusively (inserts, removes and purges wait; searches go on),
//   sizes the snapshot in a first pass (the header records the total), then streams it in pieces
//   of about `piece` bytes, hashing as it goes; the FNV-1a hash comes last. deserialize() checks
//   magic, version, length and checksum before parsing, then rebuilds the slots in order with
//   bounds-checked reads and checks every count, link, state, list and the entry point. holds()
//   compares a live node's stored vector with the caller's, byte for byte (its code and scale
//   when the owner keeps the rows). With the owner's rows, live nodes are written from them and
//   tombstones from their codes: the format is the same either way.
#include "engine/hnsw/hnsw.hpp"

#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/hnsw/hnsw_internal.hpp"
#include "engine/hnsw/quant.hpp"

namespace engram::engine {

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

bool HnswIndex::holds(std::uint32_t label, const float* unit) const {
    const std::uint32_t slot = labels_->find(label);
    if (slot == kNone) {
        return false;
    }
    if (!config_.rows.set()) {
        return std::memcmp(row(slot), unit, config_.dim * sizeof(float)) == 0;
    }
    // The owner's row is the current one whatever the node was built from: compare what the
    // node was built from, its code and scale.
    std::vector<std::int8_t> code(code_len_);
    const float inv = quant::quantize_i8(unit, config_.dim, code.data(), code_len_);
    return inv == inv_scale(slot) && std::memcmp(code.data(), codes(slot), code_len_) == 0;
}

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
        if (st == kRemoved && config_.rows.set()) {
            // The owner may have reused the label's row: write what the walk scores, the code.
            const std::int8_t* code = codes(slot);
            const float inv = inv_scale(slot);
            for (std::size_t i = 0; i < config_.dim; ++i) {
                put<float>(&buf, static_cast<float>(code[i]) * inv);
            }
        } else {
            buf.append(reinterpret_cast<const char*>(row(slot)), config_.dim * sizeof(float));
        }
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
