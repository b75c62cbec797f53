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
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/core/status.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
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
    // Edges: key = src '\0' dst, value = float64 weight.
    void put_edge(std::string_view src, std::string_view dst, double weight);
    void delete_edge(std::string_view src, std::string_view dst);
    std::size_t size() const;
    std::size_t byte_size() const;

private:
    friend class Store;
    std::unique_ptr<rocksdb::WriteBatch> wb_;
    const Store* store_ = nullptr;
};

// Iterates the `episodes` family in id order over a consistent view.
class EpisodeCursor {
public:
    explicit EpisodeCursor(std::unique_ptr<rocksdb::Iterator> it);
    ~EpisodeCursor();
    void seek_first();
    void seek(std::string_view id);
    bool valid() const;
    void next();
    std::string_view id() const;
    std::string_view value() const;
    Status status() const;

private:
    std::unique_ptr<rocksdb::Iterator> it_;
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

    // NotFound when absent.
    Status get_episode(std::string_view id, std::string* value) const;
    Result<std::optional<std::string>> get_meta(std::string_view key) const;
    Result<std::optional<std::string>> get_index(std::string_view key) const;
    // A batch for this store; reserved_bytes pre-sizes its buffer (avoids regrowth copies).
    Batch batch(std::size_t reserved_bytes = 0) const;
    Status write(Batch& batch, SyncMode sync);
    std::unique_ptr<EpisodeCursor> episodes() const;
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
};

} // namespace engram::storage
