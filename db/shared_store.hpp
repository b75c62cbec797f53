#pragma once
// SharedStore: one open Engram store — its RocksDB database and its in-memory engine — shared by
// every connection of the process that names the same path (reference counted through
// shared_ptr; the last release closes it, and deletes its files when the table was dropped).
//
// Plain C++: no SQLite here. Connections queue their writes as PendingOps and hand the whole
// transaction to commit(), which applies it in order under the store's write lock and writes it
// to RocksDB as one atomic batch.
//
// Where each part lives:
//   db/open.cpp        acquire (the process-wide registry), load, close
//   db/pending_op.cpp  queued operations and their staged form
//   db/commit.cpp      the commit protocol (chunks, undo, publish) and applying a chunk
//   db/index.cpp       the background index builder and its journal
//   db/snapshot.cpp    the graph snapshot written at close, loaded (or reconciled) at open
//   db/query.cpp       similarity search and recall
//   db/spread.cpp      edges and activation spreading
//   db/stats.cpp       engram_stats / engram_batches figures
//   db/memory.cpp      resident bytes by part (engram_debug's memory section)
//
// Thread safety: acquire()/release are thread-safe; commit() takes the exclusive lock; readers
// (search, stats) take `mutex()` shared.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "db/types.hpp"
#include "engine/hnsw/hnsw.hpp"
#include "engine/spread.hpp"
#include "engine/text_index.hpp"
#include "engine/time_index.hpp"

namespace engram::db {

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
    // Large transactions are published in chunks (paced by the backpressure strategy) behind a
    // pinned read view and an undo log, so that readers and a crash see all of it or none.
    Status commit(const TransactionOps& ops);
    // Bumped by every commit of episodes (read without the store lock).
    std::uint64_t data_version() const noexcept { return version_.load(); }
    Status commit(const std::vector<PendingOp>& ops) { return commit(TransactionOps{0, 0, ops}); }
    // A fresh staging transaction number (keys of Store::put_staged).
    std::uint64_t next_txn() noexcept { return txn_seq_.fetch_add(1) + 1; }
    // Open transactions report the rows they staged (and unstaged) here, for engram_stats.
    void count_staged(std::int64_t delta) noexcept { staged_rows_.fetch_add(delta); }
    StoreStats stats();
    // Resident bytes by part, (name, bytes) in a fixed order (db/memory.cpp lists them). Takes
    // the store's shared lock (waits for a running commit). Walks the ids: O(hot memories).
    using MemoryParts = std::vector<std::pair<const char*, std::size_t>>;
    MemoryParts memory_usage();
    // Every store open in this process now (references: release them outside any store lock).
    static std::vector<std::shared_ptr<SharedStore>> open_stores();
    // The k hot memories most similar to `unit` with score >= threshold, best first (ties:
    // smallest id): the graph index's answer (beam ef) merged with an exact scan of the memories
    // not indexed yet. `filter` (may be null) is applied during the graph walk.
    // Takes the store's shared lock (no other lock); its cost does not grow with the store
    // beyond the graph walk and the unindexed tail.
    using Hits = std::vector<std::pair<std::string, float>>;
    Hits search(const float* unit, std::size_t k, float threshold, std::size_t ef,
                const SearchFilter* filter);
    // search() for n queries (row q at units + q * stride, L2-normalised) under one hold of the
    // shared lock: the unindexed tail is scored for blocks of queries at once (blocked SIMD),
    // the graph searched in parallel. out[q] = exactly what search() returns for query q.
    void search_batch(const float* units, std::size_t n, std::size_t stride, std::size_t k,
                      float threshold, std::size_t ef, const SearchFilter* filter,
                      std::vector<Hits>* out);
    // Recall (DESIGN §2) of each cue against the hot memories (and the cold ones for cues that
    // ask for them), in parallel over cues; results per cue as (id, confidence), best first.
    // Candidates come from the store's indexes (engine/recall.hpp says what each cue kind
    // guarantees). With `scan`, every memory is read for every cue instead: the reference the
    // indexed path is tested and benchmarked against.
    std::vector<Result<std::vector<std::pair<std::string, double>>>>
    recall(std::span<const engine::Cue> cues, bool scan = false);
    // Writes edge changes atomically (every src and dst must be a stored memory) and applies them
    // to the in-memory graph. On error nothing changes.
    Status commit_edges(const std::vector<EdgeOp>& ops);
    // Spreading activation (DESIGN §2) from each seed set over the edges, in parallel over sets.
    // An unknown seed id fails its set with a message naming it.
    std::vector<Result<std::vector<SpreadRow>>>
    spread(std::span<const std::vector<SpreadSeed>> sets, std::size_t max_depth,
           std::optional<double> threshold);
    // Blocks until every hot memory is in the graph index (tests, benchmarks).
    void wait_indexed();
    std::vector<BatchReport> batches();
    // Delete the files when the last reference goes (DROP TABLE).
    void mark_dropped() noexcept { dropped_ = true; }

private:
    explicit SharedStore(const StoreOptions& options);
    Status load();
    // Calls `hot` for each hot record of the store in id order (counting cold ones into cold_);
    // false from `hot` stops the scan and is returned. A wrong dimension is corruption.
    Result<bool> scan_records(const std::function<Result<bool>(const engine::EpisodeRecord&)>& hot);
    // Puts a stored hot record into the engine as it was.
    void restore_hot(const engine::EpisodeRecord& rec);
    Status check_and_persist_options();
    Result<bool> exists_locked(const std::string& id) const;
    engine::PacerConfig pacer_config() const;
    std::size_t unindexed(); // hot memories not in the graph index yet
    Status check_ids(const TransactionOps& tx);
    // Applies one chunk of a commit to the engine and fills write_batches_ with its records (and
    // chunk_before_ with their previous values when `undo`).
    Status apply_chunk(std::span<const PendingOp> ops, engine::ApplyMode mode, bool undo,
                       double stored_at, std::size_t* cold_count, BatchReport* report);
    std::vector<std::pair<std::string, std::optional<std::string>>> chunk_before_;

    StoreOptions options_;
    std::unique_ptr<storage::Store> db_;
    std::unique_ptr<engine::MemoryEngine> memory_;
    std::shared_mutex mutex_;
    std::size_t cold_ = 0;
    // Read by stats() without the store lock, so another connection can watch a long commit.
    std::atomic<std::int64_t> hot_count_{0};
    std::atomic<std::int64_t> cold_count_{0};
    std::atomic<std::uint64_t> txn_seq_{0};
    std::atomic<std::int64_t> staged_rows_{0};
    std::atomic<std::int64_t> committing_rows_{0};
    std::atomic<std::int64_t> applied_rows_{0};
    std::atomic<double> commit_started_{0.0}; // steady seconds; 0 when no commit runs
    std::atomic<double> last_rate_{0.0};
    // The graph index over hot slots (label = slot), fed by a background builder thread from
    // the tier's journal. state_[slot]: 0 none, 1 waiting (in tail_), 2 indexed. tail_ lists
    // the slots queued for the builder in order; entries before tail_head_ were all taken, and
    // an entry whose slot is no longer in state 1 is stale (skipped). state_ and tail_ are
    // resized, appended to and compacted only under mutex_ held exclusively; under mutex_
    // shared, the builder sets states (atomic_ref) and advances tail_head_ while searches read
    // both: a search lists the unindexed memories from tail_head_ on, without any other lock.
    // tail_mutex_ guards waiting_, building_ and stop_ (the builder's and waiters' bookkeeping).
    void drain_journal();
    void save_snapshot();
    Result<bool> load_snapshot();           // false: no usable snapshot (nothing loaded)
    std::atomic<std::uint64_t> version_{0}; // data version: bumped by every episode commit
    std::string index_source_;              // set at open, then constant
    void build_loop();
    void reset_index();
    engine::HnswConfig index_config() const;
    std::unique_ptr<engine::HnswIndex> index_;
    std::vector<engine::TierEvent> journal_;
    std::mutex tail_mutex_;
    std::condition_variable tail_cv_;
    std::condition_variable idle_cv_;
    std::vector<std::uint32_t> tail_;
    std::atomic<std::size_t> tail_head_{0};
    std::vector<std::uint8_t> state_;
    // Slots in state 1 from tail_head_ on (read under mutex_, exclusive or shared).
    void collect_unindexed(std::vector<std::uint32_t>* out) const;
    // Search internals (db/query.cpp), under the shared lock.
    struct FilterContext;
    std::unique_ptr<FilterContext> make_filter_context(const SearchFilter* filter) const;
    // The unindexed live slots that pass the filter (fc may be null), sorted.
    void pending_slots(const FilterContext* fc, std::vector<std::uint32_t>* out) const;
    // For each of nq queries (rows qs + a * qstride), into cands[a]: the pending slots that
    // can be among its k best with score >= threshold, scored with the canonical kernel.
    void score_tail(const float* qs, std::size_t qstride, std::size_t nq,
                    std::span<const std::uint32_t> pending, float threshold, std::size_t k,
                    std::vector<float>* scores, std::vector<engine::Match>* cands) const;
    // Adds the graph's answer to `found` (the tail's) and returns the k best, with ids.
    Hits finish_search(const float* unit, std::size_t k, float threshold, std::size_t ef,
                       const FilterContext* fc, std::vector<engine::Match>* found) const;
    std::size_t waiting_ = 0; // slots in state 1
    bool building_ = false;
    std::atomic<bool> purge_wanted_{false}; // tombstones reached the purge threshold
    bool stop_ = false;
    std::atomic<std::int64_t> indexed_count_{0};
    std::atomic<int> writers_waiting_{0}; // commits waiting for mutex_ (the builder yields)
    std::thread builder_;
    // what / location of each hot slot (for recall); entries of free slots are stale.
    struct SlotText {
        std::string what;
        std::string location;
        std::string metadata;
    };
    void set_text(const engine::Episode& e);
    std::vector<SlotText> texts_;
    // Recall's indexes over the hot slots (db/index.cpp keeps them, db/query.cpp reads them):
    // words and substrings of `what`, of the location, and the time order. Kept per journal
    // event while recall_indexed_; rebuilt whole after a load or when garbage outweighs them.
    engine::TextIndex what_index_;
    engine::TextIndex place_index_;
    engine::TimeIndex time_index_;
    bool recall_indexed_ = false;
    void index_for_recall(std::uint32_t slot);
    void rebuild_recall_indexes();
    class RecallSource; // engine::RecallStore over this store (db/query.cpp)
    // Up to k hot slots nearest to `unit`: the graph's ef = max(k, ef_search) walk and the
    // unindexed tail (under the shared lock).
    void nearest_slots(const float* unit, std::size_t k, std::vector<std::uint32_t>* out) const;
    // The edges as a compressed graph over dense node numbers (guarded by mutex_).
    Status load_edges();
    std::uint32_t node_for(const std::string& id);
    std::unordered_map<std::string, std::uint32_t> node_of_;
    std::vector<std::string> id_of_;
    engine::EdgeGraph graph_;
    std::vector<float> units_; // commit scratch: normalised embeddings
    // Commit scratch (reused buffers): the chunk's records in write_parts_ batches.
    std::vector<storage::Batch> write_batches_;
    std::size_t write_parts_ = 0;
    std::mutex batches_mutex_;
    std::deque<BatchReport> batches_;
    std::int64_t batch_seq_ = 0;
    bool dropped_ = false;
};

} // namespace engram::db
