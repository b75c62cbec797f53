#pragma once
// Store: one RocksDB database per Engram store, with column families `episodes` (id → record),
// `edges`, `meta` (format version, options, counters) and `index` (graph snapshots).
//
// Writes go through WriteBatch objects applied atomically by write(): one SQL transaction is one
// write() call, so a crash leaves either all of it or none of it. Reads see committed data only.
// RocksDB's LOCK file makes a second process opening the same directory fail; that failure is
// reported as Code::kBusy with a message saying the store is in use.
//
// Thread safety: all methods may be called concurrently (RocksDB is internally synchronised);
// a Batch or Cursor belongs to one thread at a time.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Slice;
class Snapshot;
class Env;
class Iterator;
class WriteBatch;
class Status;
} // namespace rocksdb

namespace engram::storage {

// Durability of a committed transaction. full: fsync the WAL at commit (survives power loss);
// normal: WAL written at commit, fsynced by the OS later (survives a process crash); off: no WAL
// (a crash loses what was not yet flushed). Default: full.
enum class SyncMode { kFull, kNormal, kOff };

// Maps a RocksDB status to an Engram status, prefixing `context` to the message.
Status from_rocksdb(const rocksdb::Status& s, std::string_view context);

class Store;

class Batch {
public:
    explicit Batch(std::size_t reserved_bytes = 0);
    ~Batch();
    Batch(Batch&&) noexcept;
    Batch& operator=(Batch&&) noexcept;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    void put_episode(std::string_view id, std::string_view value);
    // Puts value = head + tail without concatenating them first.
    void put_episode(std::string_view id, std::string_view head, std::string_view tail);
    // Empties the batch, keeping its buffer for reuse.
    void clear();
    void delete_episode(std::string_view id);
    void put_meta(std::string_view key, std::string_view value);
    // The `index` family: graph snapshots.
    void put_index(std::string_view key, std::string_view value);
    void delete_index(std::string_view key);
    // Edges: key = src '\0' dst, value = float64 weight.
    void put_edge(std::string_view src, std::string_view dst, double weight);
    void delete_edge(std::string_view src, std::string_view dst);

    // ---- staging: the rows of a transaction too large for memory (see Store::stage) ----------
    // Stages operation `seq` of transaction `txn` (its bytes are the caller's encoding) under
    // the operation's id, so that it can be found by id and iterated in id order; `flag` is
    // kept with the id (staged_ids).
    // The bytes go to the transaction's spill file (appended by Store::write_staging, one
    // write per batch and transaction), the keys to the staging family.
    void put_staged(std::uint64_t txn, std::uint64_t seq, std::string_view id,
                    std::string_view bytes, bool flag);
    void delete_staged(std::uint64_t txn, std::uint64_t seq, std::string_view id);

    // ---- publishing a transaction in several writes (see Store::open) ------------------------
    // Marks a publish in progress; a store opened while the mark is set undoes the publish.
    void begin_publish();
    // Records the value `id` had before this publish wrote it (nullopt: it was absent). `seq`
    // orders the records; undo restores them from the highest down.
    void put_undo(std::uint64_t seq, std::string_view id, std::optional<std::string_view> before);
    // Ends the publish: drops the mark and every undo record.
    void end_publish();

    std::size_t size() const;
    std::size_t byte_size() const;

private:
    friend class Store;
    std::unique_ptr<rocksdb::WriteBatch> wb_;
    const Store* store_ = nullptr;
    // Staged bytes not yet in the spill files, per transaction: they go at `base` (the
    // file's size when this batch first staged for it).
    struct SpillPart {
        std::uint64_t txn = 0;
        std::uint64_t base = 0;
        std::string bytes;
    };
    std::vector<SpillPart> spill_;
    Status spill_status_; // opening a spill file failed
};

struct SpillFile;

// Iterates a column family in key order over a consistent view.
class EpisodeCursor {
public:
    explicit EpisodeCursor(std::unique_ptr<rocksdb::Iterator> it);
    ~EpisodeCursor();
    EpisodeCursor(const EpisodeCursor&) = delete;
    EpisodeCursor& operator=(const EpisodeCursor&) = delete;
    void seek_first();
    void seek(std::string_view id);
    bool valid() const;
    void next();
    std::string_view id() const;
    std::string_view value() const;
    Status status() const;

private:
    friend class Store;
    EpisodeCursor() = default;
    // Declared before it_: the iterator may refer to them.
    std::shared_ptr<const rocksdb::Snapshot> snapshot_;
    std::string prefix_; // keys start with it; id() leaves it out
    std::string upper_;  // iterate_upper_bound (empty: none)
    std::unique_ptr<rocksdb::Slice> upper_slice_;
    std::size_t strip_back_ = 0; // id() also leaves out this many trailing bytes
    std::unique_ptr<rocksdb::Iterator> it_;
    // Staged operations: value() is read from the spill file the key points into.
    std::shared_ptr<SpillFile> spill_;
    mutable std::string spilled_;
    mutable bool spilled_valid_ = false;
    mutable Status spill_status_;
};

// RocksDB's resident bytes for one store, from its properties.
struct StoreMemory {
    std::size_t memtables = 0;     // active, immutable and pinned memtables (staging excluded)
    std::size_t staging = 0;       // the staging family's memtables
    std::size_t block_cache = 0;   // the two block caches (episodes + staging, and the others)
    std::size_t table_readers = 0; // index and filter blocks held outside the caches
};

class Store {
public:
    // Opens (creating if missing) the store at `path`. in_memory keeps everything in a private
    // in-memory file system (used for :memory: databases); path then only names it.
    static Result<std::unique_ptr<Store>> open(const std::string& path, bool in_memory);
    // Deletes a closed store's files.
    static Status destroy(const std::string& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::string& path() const noexcept { return path_; }
    bool in_memory() const noexcept { return env_ != nullptr; }

    // NotFound when absent. Reads the published view (see hold_view).
    Status get_episode(std::string_view id, std::string* value) const;
    // The latest written value, including the parts of a publish still in progress.
    Status get_episode_latest(std::string_view id, std::string* value) const;
    // While a transaction is published in several writes, readers (get_episode, episodes())
    // keep seeing the state before it: hold_view(true) pins that state, hold_view(false)
    // releases it once the publish is complete (or undone).
    void hold_view(bool hold);
    // Undoes a publish left unfinished (begin_publish without end_publish): restores every
    // value from the undo records. open() runs it; a commit that fails midway runs it too.
    Status undo_unfinished_publish();
    Result<std::optional<std::string>> get_meta(std::string_view key) const;
    Result<std::optional<std::string>> get_index(std::string_view key) const;
    // A batch for this store; reserved_bytes pre-sizes its buffer (avoids regrowth copies).
    Batch batch(std::size_t reserved_bytes = 0) const;
    Status write(Batch& batch, SyncMode sync);
    // A write that skips the WAL: a crash loses it unless flush_episodes() ran after it. For
    // the data of a publish in several writes, whose undo records were made durable first.
    Status write_unlogged(Batch& batch);
    // Flushes the episodes family's memtables to table files and waits (fsynced): every
    // unlogged write before it is then durable.
    Status flush_episodes();
    // What RocksDB holds in memory for this store (thread-safe; properties, no I/O).
    StoreMemory memory() const;
    std::unique_ptr<EpisodeCursor> episodes() const;

    // Staging (a family written without the WAL: a crash loses it, and open() drops whatever a
    // previous process left). Writes a batch of put_staged / delete_staged.
    Status write_staging(Batch& batch);
    // The latest operation staged for `id` in `txn`: (seq, bytes), or nullopt.
    Result<std::optional<std::pair<std::uint64_t, std::string>>>
    get_staged(std::uint64_t txn, std::string_view id) const;
    // The operations of `txn` from `from_seq` on, in seq order (id() = be64 seq, value() =
    // bytes).
    std::unique_ptr<EpisodeCursor> staged_ops(std::uint64_t txn, std::uint64_t from_seq) const;
    // The ids staged in `txn`, in id order, one entry per operation (id() = the id; value() =
    // be64 seq then u8 flag); the entries of one id are consecutive, by seq.
    std::unique_ptr<EpisodeCursor> staged_ids(std::uint64_t txn) const;
    // Drops everything staged for `txn`.
    Status drop_staged(std::uint64_t txn);
    // Iterates the `edges` family (id() = src '\0' dst, value() = weight bytes).
    std::unique_ptr<EpisodeCursor> edges() const;

private:
    friend class Batch;
    Store() = default;

    std::string path_;
    std::unique_ptr<rocksdb::Env> env_;
    std::unique_ptr<rocksdb::DB> db_;
    rocksdb::ColumnFamilyHandle* episodes_ = nullptr;
    rocksdb::ColumnFamilyHandle* edges_ = nullptr;
    rocksdb::ColumnFamilyHandle* meta_ = nullptr;
    rocksdb::ColumnFamilyHandle* index_ = nullptr;
    rocksdb::ColumnFamilyHandle* staging_ = nullptr;
    Status clear_staging(const std::string& begin, const std::string& end);
    // The spill files of transactions staging now (bytes of their staged operations).
    mutable std::mutex spill_mutex_;
    mutable std::map<std::uint64_t, std::shared_ptr<SpillFile>> spills_;
    // The spill file of `txn`, created when missing.
    Result<std::shared_ptr<SpillFile>> spill(std::uint64_t txn) const;
    std::string spill_path(std::uint64_t txn) const;
    Status remove_spill_files();
    mutable std::mutex view_mutex_;
    std::shared_ptr<const rocksdb::Snapshot> view_; // set while a publish is in progress
    std::shared_ptr<const rocksdb::Snapshot> view() const;
    std::unique_ptr<EpisodeCursor> cursor(rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                                          std::size_t strip_back, bool published) const;
};

} // namespace engram::storage
