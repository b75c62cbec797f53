#pragma once
// The db layer's value types: a store's options, a transaction's queued operations, edge writes,
// search filters, spreading seeds and results, batch reports and statistics.
// Plain C++ (no SQLite): vtab/ fills and reads them; db/shared_store.hpp acts on them.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>

#include "engine/batch/pacer.hpp"
#include "engine/core/episode.hpp"
#include "engine/core/status.hpp"
#include "engine/memory.hpp"
#include "storage/store.hpp"

namespace engram::db {

struct StoreOptions {
    std::string path; // directory, or a name for in-memory stores
    bool in_memory = false;
    engine::MemoryConfig memory;
    storage::SyncMode sync = storage::SyncMode::kFull;
    // HNSW parameters, validated and persisted (the graph index uses them).
    int m = 16;
    int ef_construction = 200;
    int ef_search = 64;
    // Transactions: rows beyond this many bytes are staged on disk (batch_memory), and the
    // backpressure strategy with the limit of the not-yet-indexed tail (max_unindexed).
    std::size_t batch_memory = 64U << 20;
    engine::Backpressure backpressure = engine::Backpressure::kBlock;
    std::size_t max_unindexed = 100000;
};

struct PendingOp {
    enum class Kind { kInsert, kUpdate, kDelete };
    Kind kind = Kind::kInsert;
    std::string id;          // the row's id (old id for updates)
    engine::Episode episode; // kInsert / kUpdate
    bool replace = false;    // kInsert: INSERT OR REPLACE over an existing id
};

// The staged form of an operation (Store::put_staged bytes), and back.
std::string encode_op(const PendingOp& op);
Result<PendingOp> decode_op(std::string_view bytes);
// Memory an operation holds while queued (for the batch_memory budget).
std::size_t op_bytes(const PendingOp& op) noexcept;

// The operations of one transaction, in order: `staged` operations on disk (seq 0 .. staged-1
// of staging transaction `txn`), then those still in memory.
struct TransactionOps {
    std::uint64_t txn = 0;
    std::size_t staged = 0;
    std::span<const PendingOp> tail;
    std::size_t tail_bytes = 0; // op_bytes() summed over `tail`
    // SharedStore::data_version() when the transaction began: if nothing was committed since,
    // the id checks its rows passed when they were queued still hold.
    std::uint64_t base_version = 0;
};

// One write to the edges of a store (engram_edges).
struct EdgeOp {
    bool remove = false;
    std::string src;
    std::string dst;
    double weight = 0.0;
};

// Restricts a similarity search (applied during the graph walk, so k results come back when k
// matching memories exist). Every given criterion must hold.
struct SearchFilter {
    std::optional<double> from, to;          // occurred_at range, inclusive
    std::optional<std::string> location;     // case-insensitive substring of the location
    std::optional<std::string> metadata_key; // metadata[key] == metadata_value (JSON values)
    std::string metadata_value;              // JSON text
    std::optional<std::unordered_set<std::string>> ids; // only these ids
};

struct SpreadSeed {
    std::string id;
    double activation = 1.0;
};

struct SpreadRow {
    std::string id;
    double activation = 0.0;
    std::uint32_t depth = 0;
    double confidence = 0.0;
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
    std::int64_t staged = 0;    // rows that were staged on disk before the commit
    std::int64_t chunks = 0;    // writes the commit was published in (1: one atomic batch)
    std::string mode = "batch"; // 'single' when fallback switched to single-op mode
    double waited_ms = 0.0;     // time blocked by backpressure before the commit
};

struct StoreStats {
    std::size_t hot = 0;
    std::size_t indexed = 0; // hot memories in the graph index (the rest are scanned exactly)
    std::size_t cold = 0;
    double pressure = 0.0;
    std::int64_t batches = 0;
    // Progress of the commit running now (0 / 0 when none).
    std::int64_t committing_rows = 0; // operations in the batch being committed
    std::int64_t applied_rows = 0;    // of which applied to the engine so far
    double rate = 0.0;                // rows/s of the running commit, else of the last one
    std::int64_t staged_rows = 0;     // rows open transactions have staged on disk
    std::string index_source;         // how the graph index was obtained at open
};

// The options' stable key in the process-wide registry (canonical path or in-memory name).
std::string store_key(const StoreOptions& options);

} // namespace engram::db
