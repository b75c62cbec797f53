#include "storage/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstring>
#include <vector>

namespace engram::storage {

Status from_rocksdb(const rocksdb::Status& s, std::string_view context) {
    if (s.ok()) {
        return Status::ok();
    }
    std::string msg = std::string(context) + ": " + s.ToString();
    if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
        return Status::busy(std::move(msg));
    }
    if (s.IsNoSpace()) {
        return {Code::kNoSpace, std::move(msg)};
    }
    if (s.IsIOError()) {
        return Status::io(std::move(msg));
    }
    if (s.IsCorruption()) {
        return Status::corruption(std::move(msg));
    }
    if (s.IsNotFound()) {
        return Status::not_found(std::move(msg));
    }
    if (s.IsInvalidArgument()) {
        return Status::invalid(std::move(msg));
    }
    return Status::internal(std::move(msg));
}

Batch::Batch(std::size_t reserved_bytes)
    : wb_(std::make_unique<rocksdb::WriteBatch>(reserved_bytes)) {}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

void Batch::put_episode(std::string_view id, std::string_view value) {
    wb_->Put(store_->episodes_, rocksdb::Slice(id.data(), id.size()),
             rocksdb::Slice(value.data(), value.size()));
}
void Batch::put_episode(std::string_view id, std::string_view head, std::string_view tail) {
    const rocksdb::Slice key(id.data(), id.size());
    const rocksdb::Slice parts[2] = {rocksdb::Slice(head.data(), head.size()),
                                     rocksdb::Slice(tail.data(), tail.size())};
    wb_->Put(store_->episodes_, rocksdb::SliceParts(&key, 1), rocksdb::SliceParts(parts, 2));
}
void Batch::clear() {
    wb_->Clear();
}
namespace {
std::string edge_key(std::string_view src, std::string_view dst) {
    std::string k(src);
    k.push_back('\0');
    k.append(dst);
    return k;
}
} // namespace
void Batch::put_edge(std::string_view src, std::string_view dst, double weight) {
    char v[sizeof(double)];
    std::memcpy(v, &weight, sizeof v);
    wb_->Put(store_->edges_, edge_key(src, dst), rocksdb::Slice(v, sizeof v));
}
void Batch::delete_edge(std::string_view src, std::string_view dst) {
    wb_->Delete(store_->edges_, edge_key(src, dst));
}
void Batch::put_index(std::string_view key, std::string_view value) {
    wb_->Put(store_->index_, rocksdb::Slice(key.data(), key.size()),
             rocksdb::Slice(value.data(), value.size()));
}
void Batch::delete_episode(std::string_view id) {
    wb_->Delete(store_->episodes_, rocksdb::Slice(id.data(), id.size()));
}
void Batch::put_meta(std::string_view key, std::string_view value) {
    wb_->Put(store_->meta_, rocksdb::Slice(key.data(), key.size()),
             rocksdb::Slice(value.data(), value.size()));
}
std::size_t Batch::size() const {
    return static_cast<std::size_t>(wb_->Count());
}
std::size_t Batch::byte_size() const {
    return wb_->GetDataSize();
}

EpisodeCursor::EpisodeCursor(std::unique_ptr<rocksdb::Iterator> it) : it_(std::move(it)) {}
EpisodeCursor::~EpisodeCursor() = default;
void EpisodeCursor::seek_first() {
    it_->SeekToFirst();
}
void EpisodeCursor::seek(std::string_view id) {
    it_->Seek(rocksdb::Slice(id.data(), id.size()));
}
bool EpisodeCursor::valid() const {
    return it_->Valid();
}
void EpisodeCursor::next() {
    it_->Next();
}
std::string_view EpisodeCursor::id() const {
    const rocksdb::Slice k = it_->key();
    return {k.data(), k.size()};
}
std::string_view EpisodeCursor::value() const {
    const rocksdb::Slice v = it_->value();
    return {v.data(), v.size()};
}
Status EpisodeCursor::status() const {
    return from_rocksdb(it_->status(), "reading episodes");
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, bool in_memory) {
    std::unique_ptr<Store> store(new Store()); // private constructor
    store->path_ = path;
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.max_background_jobs = 2;
    if (in_memory) {
        store->env_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
        options.env = store->env_.get();
    }
    rocksdb::ColumnFamilyOptions cf;
    cf.compression = rocksdb::kNoCompression; // embeddings do not compress
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, cf},
        {"episodes", cf},
        {"edges", cf},
        {"meta", cf},
        {"index", cf},
    };
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    const rocksdb::Status s = rocksdb::DB::Open(options, path, families, &handles, &raw);
    if (!s.ok()) {
        const std::string text = s.ToString();
        if (s.IsIOError() && (text.find("lock") != std::string::npos ||
                              text.find("Resource temporarily unavailable") != std::string::npos)) {
            return Status::busy("engram store '" + path +
                                "' is in use by another process (its RocksDB LOCK is held)");
        }
        return from_rocksdb(s, "opening engram store '" + path + "'");
    }
    store->db_.reset(raw);
    // handles[0] is the default family, owned by the DB.
    store->episodes_ = handles[1];
    store->edges_ = handles[2];
    store->meta_ = handles[3];
    store->index_ = handles[4];
    store->db_->DestroyColumnFamilyHandle(handles[0]);
    return store;
}

Store::~Store() {
    if (db_) {
        for (auto* h : {episodes_, edges_, meta_, index_}) {
            if (h != nullptr) {
                db_->DestroyColumnFamilyHandle(h);
            }
        }
        db_->Close().PermitUncheckedError();
        db_.reset();
    }
}

Status Store::destroy(const std::string& path) {
    const rocksdb::Status s = rocksdb::DestroyDB(path, rocksdb::Options());
    return from_rocksdb(s, "removing engram store '" + path + "'");
}

Status Store::get_episode(std::string_view id, std::string* value) const {
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), episodes_, rocksdb::Slice(id.data(), id.size()), value);
    return from_rocksdb(s, "reading episode '" + std::string(id) + "'");
}

Result<std::optional<std::string>> Store::get_index(std::string_view key) const {
    std::string value;
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), index_, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) {
        return std::optional<std::string>();
    }
    ENGRAM_TRY(from_rocksdb(s, "reading the index snapshot"));
    return std::optional<std::string>(std::move(value));
}

Result<std::optional<std::string>> Store::get_meta(std::string_view key) const {
    std::string value;
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), meta_, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) {
        return std::optional<std::string>();
    }
    ENGRAM_TRY(from_rocksdb(s, "reading store metadata"));
    return std::optional<std::string>(std::move(value));
}

Batch Store::batch(std::size_t reserved_bytes) const {
    Batch b(reserved_bytes);
    b.store_ = this;
    return b;
}

Status Store::write(Batch& batch, SyncMode sync) {
    rocksdb::WriteOptions wo;
    wo.sync = sync == SyncMode::kFull;
    wo.disableWAL = sync == SyncMode::kOff;
    return from_rocksdb(db_->Write(wo, batch.wb_.get()),
                        "committing to engram store '" + path_ + "'");
}

std::unique_ptr<EpisodeCursor> Store::edges() const {
    return std::make_unique<EpisodeCursor>(
        std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), edges_)));
}

std::unique_ptr<EpisodeCursor> Store::episodes() const {
    return std::make_unique<EpisodeCursor>(
        std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(rocksdb::ReadOptions(), episodes_)));
}

} // namespace engram::storage
