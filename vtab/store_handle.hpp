#pragma once
// SharedStore: one open Engram store — its RocksDB database and its in-memory engine — shared by
// every connection of the process that names the same path (reference counted through
// shared_ptr; the last release closes it, and deletes its files when the table was dropped).
//
// Plain C++: no SQLite here. Connections queue their writes as PendingOps and hand the whole
// transaction to commit(), which applies it in order under the store's write lock and writes it
// to RocksDB as one atomic batch.
//
// Thread safety: acquire()/release are thread-safe; commit() takes the exclusive lock; readers
// (search, stats) take `mutex()` shared.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "engine/core/episode.hpp"
#include "engine/core/status.hpp"
#include "engine/memory.hpp"
#include "storage/store.hpp"

namespace engram::vtab {

struct StoreOptions {
    std::string path; // directory, or a name for in-memory stores
    bool in_memory = false;
    engine::MemoryConfig memory;
    storage::SyncMode sync = storage::SyncMode::kFull;
    // HNSW parameters, validated and persisted (the graph index uses them).
    int m = 16;
    int ef_construction = 200;
    int ef_search = 64;
};

struct PendingOp {
    enum class Kind { kInsert, kUpdate, kDelete };
    Kind kind = Kind::kInsert;
    std::string id;          // the row's id (old id for updates)
    engine::Episode episode; // kInsert / kUpdate
    bool replace = false;    // kInsert: INSERT OR REPLACE over an existing id
};

// One committed batch, as engram_batches reports it.
struct BatchReport {
    std::int64_t seq = 0;
    std::int64_t size = 0; // episodes inserted (stored, replaced or skipped)
    std::int64_t successful = 0;
    std::int64_t degraded = 0;
    std::int64_t deduplicated = 0;
    std::int64_t evicted = 0;
    std::int64_t updated = 0;
    std::int64_t deleted = 0;
    double ms = 0.0;
    double peak_pressure = 0.0;
    std::string simd;
};

struct StoreStats {
    std::size_t hot = 0;
    std::size_t cold = 0;
    double pressure = 0.0;
    std::int64_t batches = 0;
    // Progress of the commit running now (0 / 0 when none).
    std::int64_t committing_rows = 0; // operations in the batch being committed
    std::int64_t applied_rows = 0;    // of which applied to the engine so far
    double rate = 0.0;                // rows/s of the running commit, else of the last one
};

class SharedStore {
public:
    // Opens the store at options.path, or returns the one this process already has open there
    // (whose persisted dim must equal options' dim). Persists options on first creation.
    static Result<std::shared_ptr<SharedStore>> acquire(const StoreOptions& options);
    ~SharedStore();
    SharedStore(const SharedStore&) = delete;
    SharedStore& operator=(const SharedStore&) = delete;

    const StoreOptions& options() const noexcept { return options_; }
    std::shared_mutex& mutex() noexcept { return mutex_; }
    storage::Store& db() noexcept { return *db_; }
    const engine::MemoryEngine& memory() const noexcept { return *memory_; }

    // True when an episode with this id is stored (hot or cold).
    Result<bool> exists(const std::string& id);
    // Applies the transaction's operations in order and commits them atomically. On error nothing
    // is changed (in memory or on disk).
    Status commit(const std::vector<PendingOp>& ops);
    StoreStats stats();
    std::vector<BatchReport> batches();
    // Delete the files when the last reference goes (DROP TABLE).
    void mark_dropped() noexcept { dropped_ = true; }

private:
    explicit SharedStore(const StoreOptions& options);
    Status load();
    Status check_and_persist_options();
    Result<bool> exists_locked(const std::string& id) const;

    StoreOptions options_;
    std::unique_ptr<storage::Store> db_;
    std::unique_ptr<engine::MemoryEngine> memory_;
    std::shared_mutex mutex_;
    std::size_t cold_ = 0;
    // Read by stats() without the store lock, so another connection can watch a long commit.
    std::atomic<std::int64_t> hot_count_{0};
    std::atomic<std::int64_t> cold_count_{0};
    std::atomic<std::int64_t> committing_rows_{0};
    std::atomic<std::int64_t> applied_rows_{0};
    std::atomic<double> commit_started_{0.0}; // steady seconds; 0 when no commit runs
    std::atomic<double> last_rate_{0.0};
    std::vector<float> units_;                    // commit scratch: normalised embeddings
    std::unique_ptr<storage::Batch> write_batch_; // commit scratch: reused buffer
    std::mutex batches_mutex_;
    std::deque<BatchReport> batches_;
    std::int64_t batch_seq_ = 0;
    bool dropped_ = false;
};

// The options' stable key in the process-wide registry (canonical path or in-memory name).
std::string store_key(const StoreOptions& options);

} // namespace engram::vtab
