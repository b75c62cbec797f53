// The graph snapshot: the HNSW index saved at close and loaded at open.
//
// HOW IT WORKS
//   Snapshot layout in the `index` family:
//     "snapshot.meta"  u32 format (1) | u64 data version | u64 slots | per slot: u8 state (0 free,
//                      1 hot not indexed, 2 hot indexed), and when hot u32 id length + id |
//                      u64 graph bytes | u32 chunks
//     "snapshot.NNNN"  the graph (HnswIndex::serialize) in chunks of kSnapshotChunk bytes
//   It is written when the store closes, and used on open only when
//   its data version equals the store's (every commit bumps the version): labels are hot slots,
//   so the hot tier is rebuilt with exactly the saved slot layout.
//   A stale snapshot (commits after it, then a crash) is reconciled: unchanged memories keep
//   their nodes, changed or new ones are re-indexed, gone ones removed.
#include "db/shared_store.hpp"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "db/util.hpp"
#include "engine/batch/executor.hpp"
#include "storage/codec.hpp"

namespace engram::db {
namespace {
constexpr std::size_t kSnapshotChunk = 64U << 20;
template <typename T> void put_pod(std::string* out, T v) {
    out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T> bool get_pod(std::string_view* in, T* v) {
    if (in->size() < sizeof(T)) {
        return false;
    }
    std::memcpy(v, in->data(), sizeof(T));
    in->remove_prefix(sizeof(T));
    return true;
}
} // namespace

void SharedStore::save_snapshot() {
    // The builder has stopped: state_ is stable. Memories not indexed yet are saved as such and
    // go back to the builder's queue on open.
    const engine::HotTier& hot = memory_->hot();
    std::string meta;
    put_pod<std::uint32_t>(&meta, 1);
    put_pod<std::uint64_t>(&meta, version_.load());
    put_pod<std::uint64_t>(&meta, hot.slots());
    for (std::uint32_t s = 0; s < hot.slots(); ++s) {
        const engine::SlotInfo& info = hot.info(s);
        const bool indexed = s < state_.size() && state_[s] == 2;
        put_pod<std::uint8_t>(&meta, info.live ? (indexed ? 2 : 1) : 0);
        if (info.live) {
            put_pod<std::uint32_t>(&meta, static_cast<std::uint32_t>(info.id.size()));
            meta += info.id;
        }
    }
    // Streamed one chunk per write (never a copy of the whole graph in memory): the old meta
    // goes first and the new one last, so a crash in between leaves no snapshot (a rebuild),
    // never a mix of two.
    storage::Batch b = db_->batch();
    b.delete_index("snapshot.meta");
    if (!db_->write(b, storage::SyncMode::kNormal).is_ok()) {
        return;
    }
    std::string chunk;
    std::uint64_t graph_bytes = 0;
    std::uint32_t chunks = 0;
    bool ok = true;
    auto write_chunk = [&](std::string_view bytes) {
        char key[32];
        std::snprintf(key, sizeof key, "snapshot.%06u", chunks);
        b.clear();
        b.put_index(key, bytes);
        ok = ok && db_->write(b, storage::SyncMode::kNormal).is_ok();
        ++chunks;
    };
    index_->serialize_to(
        [&](std::string_view piece) {
            graph_bytes += piece.size();
            chunk.append(piece);
            if (chunk.size() >= kSnapshotChunk) {
                write_chunk(std::string_view(chunk).substr(0, kSnapshotChunk));
                chunk.erase(0, kSnapshotChunk);
            }
        },
        1U << 20);
    if (!chunk.empty()) {
        write_chunk(chunk);
    }
    if (!ok) {
        return;
    }
    put_pod<std::uint64_t>(&meta, graph_bytes);
    put_pod<std::uint32_t>(&meta, chunks);
    b.clear();
    b.put_index("snapshot.meta", meta);
    (void)db_->write(b, storage::SyncMode::kFull);
}

Result<bool> SharedStore::load_snapshot() {
    auto meta = db_->get_index("snapshot.meta");
    if (!meta) {
        return meta.status();
    }
    if (!meta->has_value()) {
        index_source_ = "built (no snapshot)";
        return false;
    }
    index_source_ = "rebuilt (the snapshot did not match the data)";
    std::string_view in(**meta);
    std::uint32_t format = 0;
    std::uint64_t version = 0, slots = 0;
    if (!get_pod(&in, &format) || format != 1 || !get_pod(&in, &version) || !get_pod(&in, &slots) ||
        slots > (1ULL << 32)) {
        return false; // foreign: rebuild
    }
    // Commits after the snapshot (a crash before the next close): reconcile, re-indexing only
    // the memories that changed.
    const bool stale = version != version_;
    std::unordered_map<std::string, std::uint32_t> layout;
    std::vector<std::uint8_t> saved_state(slots, 0);
    for (std::uint64_t s = 0; s < slots; ++s) {
        std::uint8_t live = 0;
        if (!get_pod(&in, &live) || live > 2) {
            return false;
        }
        saved_state[s] = live;
        if (live != 0) {
            std::uint32_t n = 0;
            if (!get_pod(&in, &n) || in.size() < n) {
                return false;
            }
            layout.emplace(std::string(in.substr(0, n)), static_cast<std::uint32_t>(s));
            in.remove_prefix(n);
        }
    }
    std::uint64_t graph_bytes = 0;
    std::uint32_t chunks = 0;
    if (!get_pod(&in, &graph_bytes) || !get_pod(&in, &chunks)) {
        return false;
    }
    std::string graph;
    graph.reserve(graph_bytes);
    for (std::uint32_t c = 0; c < chunks; ++c) {
        char key[32];
        std::snprintf(key, sizeof key, "snapshot.%06u", c);
        auto part = db_->get_index(key);
        if (!part) {
            return part.status();
        }
        if (!part->has_value()) {
            return false;
        }
        graph += **part;
    }
    if (graph.size() != graph_bytes) {
        return false;
    }
    auto index = engine::HnswIndex::deserialize(graph, index_config());
    if (!index) {
        return false;
    }
    graph = std::string();
    auto give_up = [&]() {
        memory_ = std::make_unique<engine::MemoryEngine>(options_.memory);
        reset_index();
        return false; // the data and the snapshot disagree: rebuild
    };
    // Rebuild the hot tier in the saved slot layout.
    engine::HotTier& hot = memory_->hot();
    hot.prepare_slots(slots);
    std::vector<std::uint8_t> placed(slots, 0);
    std::vector<std::string> unplaced; // hot memories the snapshot does not know (stale only)
    std::size_t reindexed = 0;
    auto scanned = scan_records([&](const engine::EpisodeRecord& rec) -> Result<bool> {
        const engine::Episode& e = rec.episode;
        auto it = layout.find(e.id);
        if (it == layout.end()) {
            unplaced.push_back(e.id);
            return stale; // a fresh snapshot must know every hot memory
        }
        const std::uint32_t slot = it->second;
        const auto unit = detail::unit_vector(e.embedding);
        hot.insert_at(slot, e.id, unit.data(), static_cast<float>(rec.activation),
                      static_cast<float>(e.confidence), e.occurred_at);
        set_text(e);
        placed[slot] = 1;
        if (stale && saved_state[slot] == 2 && !(*index)->holds(slot, unit.data())) {
            saved_state[slot] = 1; // changed since the snapshot: index it again
            ++reindexed;
        }
        return true;
    });
    if (!scanned) {
        return scanned.status();
    }
    if (!scanned.value()) {
        return give_up();
    }
    for (std::uint32_t s = 0; s < slots; ++s) {
        if (saved_state[s] != 0 && placed[s] == 0) {
            if (!stale) {
                return give_up();
            }
            if (saved_state[s] == 2) {
                (*index)->remove(s); // gone (deleted or evicted) since the snapshot
            }
            saved_state[s] = 0;
        }
    }
    hot.finish_layout();
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        index_ = std::move(index.value());
        journal_.clear();
        state_ = std::move(saved_state);
        tail_.clear();
        tail_head_ = 0;
        waiting_ = 0;
        std::int64_t indexed = 0;
        for (std::uint32_t s = 0; s < state_.size(); ++s) {
            if (state_[s] == 1) {
                tail_.push_back(s);
                ++waiting_;
            } else if (state_[s] == 2) {
                ++indexed;
            }
        }
        indexed_count_ = indexed;
    }
    // Memories stored after the snapshot: into free slots; the journal queues them for the
    // builder.
    for (const std::string& id : unplaced) {
        std::string value;
        ENGRAM_TRY(db_->get_episode(id, &value));
        auto rec = storage::decode_record(id, value);
        if (!rec) {
            return rec.status();
        }
        restore_hot(rec.value());
    }
    reindexed += unplaced.size();
    memory_->rebuild_dedup(engine::default_arena()); // restores do not maintain it
    index_source_ = stale ? "snapshot, " + std::to_string(reindexed) + " re-indexed" : "snapshot";
    hot_count_ = static_cast<std::int64_t>(hot.count());
    cold_count_ = static_cast<std::int64_t>(cold_);
    return true;
}

} // namespace engram::db
