// Opening a store, and the process-wide registry of open stores.
//
// HOW IT WORKS
//   A store is identified by its canonical path (or, in memory, its name). acquire() returns the
//   SharedStore this process already has open there, or opens the RocksDB database, checks the
//   persisted format and dim against the table's options, and fills the engine: from the graph
//   snapshot when one matches the data (db/snapshot.cpp), else by scanning every record
//   (load()). Then the edges are loaded and the index builder starts (db/index.cpp).
//   The last shared_ptr to go closes the store under the registry lock (so closing and reopening
//   the same path never race): the builder stops, the snapshot is written, and a dropped table's
//   files are deleted.
#include "db/shared_store.hpp"

#include <filesystem>
#include <map>

#include "db/util.hpp"
#include "engine/batch/executor.hpp"
#include "storage/codec.hpp"

namespace engram::db {
namespace {

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, std::weak_ptr<SharedStore>>& registry() {
    static std::map<std::string, std::weak_ptr<SharedStore>> r;
    return r;
}

} // namespace

std::string store_key(const StoreOptions& options) {
    if (options.in_memory) {
        return "memory:" + options.path;
    }
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(options.path, ec), ec);
    return ec ? options.path : p.string();
}

std::vector<std::shared_ptr<SharedStore>> SharedStore::open_stores() {
    std::vector<std::shared_ptr<SharedStore>> out;
    std::lock_guard<std::mutex> lock(registry_mutex());
    for (const auto& [key, weak] : registry()) {
        if (auto s = weak.lock()) {
            out.push_back(std::move(s));
        }
    }
    return out;
}

SharedStore::SharedStore(const StoreOptions& options)
    : options_(options), memory_(std::make_unique<engine::MemoryEngine>(options.memory)) {}

SharedStore::~SharedStore() {
    // Called with registry_mutex() held by release (see acquire's deleter).
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        stop_ = true;
    }
    tail_cv_.notify_all();
    if (builder_.joinable()) {
        builder_.join();
    }
    if (!dropped_ && !options_.in_memory && db_) {
        save_snapshot(); // best effort: a missing or stale snapshot only means a rebuild
    }
    db_.reset();
    if (dropped_ && !options_.in_memory) {
        storage::Store::destroy(options_.path).message(); // best effort: the table is gone
        std::error_code ec;
        std::filesystem::remove_all(options_.path, ec);
    }
}

Result<std::shared_ptr<SharedStore>> SharedStore::acquire(const StoreOptions& options) {
    ENGRAM_TRY(options.memory.validate());
    const std::string key = store_key(options);
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (auto it = registry().find(key); it != registry().end()) {
        if (auto existing = it->second.lock()) {
            if (existing->options_.memory.dim != options.memory.dim) {
                return Status::invalid(
                    "engram store '" + options.path +
                    "' has dim=" + std::to_string(existing->options_.memory.dim) +
                    ", but the table declares dim=" + std::to_string(options.memory.dim));
            }
            return existing;
        }
    }
    std::unique_ptr<SharedStore> fresh(new SharedStore(options)); // private constructor
    auto opened = storage::Store::open(options.path, options.in_memory);
    if (!opened) {
        return opened.status();
    }
    fresh->db_ = std::move(opened.value());
    ENGRAM_TRY(fresh->check_and_persist_options());
    fresh->reset_index();
    auto restored = fresh->load_snapshot();
    if (!restored) {
        return restored.status();
    }
    if (!restored.value()) {
        ENGRAM_TRY(fresh->load());
    }
    ENGRAM_TRY(fresh->load_edges());
    fresh->drain_journal();
    fresh->rebuild_recall_indexes();
    fresh->builder_ = std::thread([s = fresh.get()] { s->build_loop(); });
    // The deleter takes the registry lock so that closing and re-opening the same path never race.
    std::shared_ptr<SharedStore> shared(fresh.release(), [key](SharedStore* s) {
        std::lock_guard<std::mutex> guard(registry_mutex());
        if (auto it = registry().find(key); it != registry().end() && it->second.expired()) {
            registry().erase(it);
        }
        delete s; // owned here since acquire released it to this shared_ptr
    });
    registry()[key] = shared;
    return shared;
}

Status SharedStore::check_and_persist_options() {
    auto format = db_->get_meta("format");
    if (!format) {
        return format.status();
    }
    auto dim = db_->get_meta("dim");
    if (!dim) {
        return dim.status();
    }
    if (format->has_value() && **format != "1") {
        return Status::corruption("engram store '" + options_.path + "' has format " + **format +
                                  ", this build reads format 1");
    }
    if (dim->has_value() && **dim != std::to_string(options_.memory.dim)) {
        return Status::invalid(
            "engram store '" + options_.path + "' was created with dim=" + **dim +
            ", but the table declares dim=" + std::to_string(options_.memory.dim));
    }
    auto version = db_->get_meta("version");
    if (!version) {
        return version.status();
    }
    version_ = version->has_value() ? std::stoull(**version) : 0;
    storage::Batch b = db_->batch();
    b.put_meta("format", "1");
    b.put_meta("dim", std::to_string(options_.memory.dim));
    b.put_meta("capacity", std::to_string(options_.memory.capacity));
    b.put_meta("m", std::to_string(options_.m));
    b.put_meta("ef_construction", std::to_string(options_.ef_construction));
    b.put_meta("ef_search", std::to_string(options_.ef_search));
    return db_->write(b, storage::SyncMode::kFull);
}

Result<bool>
SharedStore::scan_records(const std::function<Result<bool>(const engine::EpisodeRecord&)>& hot) {
    cold_ = 0;
    auto cursor = db_->episodes();
    for (cursor->seek_first(); cursor->valid(); cursor->next()) {
        auto rec = storage::decode_record(cursor->id(), cursor->value());
        if (!rec) {
            return rec.status();
        }
        if (rec->tier == engine::Tier::kCold) {
            ++cold_;
            continue;
        }
        const engine::Episode& e = rec->episode;
        if (e.embedding.size() != options_.memory.dim) {
            return Status::corruption(
                "episode '" + e.id + "' has " + std::to_string(e.embedding.size()) +
                " dimensions, the store has " + std::to_string(options_.memory.dim));
        }
        auto go_on = hot(rec.value());
        if (!go_on || !go_on.value()) {
            return go_on;
        }
    }
    ENGRAM_TRY(cursor->status());
    return true;
}

void SharedStore::restore_hot(const engine::EpisodeRecord& rec) {
    const engine::Episode& e = rec.episode;
    const auto unit = detail::unit_vector(e.embedding);
    memory_->restore(e.id, unit.data(), rec.activation, e.confidence, e.occurred_at);
    set_text(e);
}

Status SharedStore::load() {
    auto scanned = scan_records([&](const engine::EpisodeRecord& rec) -> Result<bool> {
        restore_hot(rec);
        return true;
    });
    hot_count_ = static_cast<std::int64_t>(memory_->hot().count());
    cold_count_ = static_cast<std::int64_t>(cold_);
    ENGRAM_TRY(scanned.status());
    memory_->rebuild_dedup(engine::default_arena()); // restores do not maintain it
    return Status::ok();
}

Result<bool> SharedStore::exists(const std::string& id) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return exists_locked(id);
}

Result<bool> SharedStore::exists_locked(const std::string& id) const {
    if (memory_->hot().find(id)) {
        return true;
    }
    std::string value;
    Status s = db_->get_episode_latest(id, &value);
    if (s.is_ok()) {
        return true;
    }
    if (s.code() == Code::kNotFound) {
        return false;
    }
    return s;
}

} // namespace engram::db
