#include "storage/store.hpp"

#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace engram::storage {
namespace {

void append_be64(std::string* out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
        out->push_back(static_cast<char>((v >> shift) & 0xFFU));
    }
}
void append_be32(std::string* out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out->push_back(static_cast<char>((v >> shift) & 0xFFU));
    }
}
// Big-endian, of the first 8 bytes (of all of them when fewer: read_be64 of 4 bytes is a be32).
std::uint64_t read_be64(std::string_view b) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8 && i < b.size(); ++i) {
        v = (v << 8) | static_cast<unsigned char>(b[i]);
    }
    return v;
}
// Staging keys: be64 txn, then 'o' be64 seq (→ the operation's bytes) or 'i' id '\0' be64 seq
// (→ be64 seq). Ids hold no NUL byte (the table refuses them), so the entries of one id are
// consecutive and ids sort as themselves.
std::string staging_prefix(std::uint64_t txn, char kind) {
    std::string k;
    append_be64(&k, txn);
    k.push_back(kind);
    return k;
}
std::string staged_op_key(std::uint64_t txn, std::uint64_t seq) {
    std::string k = staging_prefix(txn, 'o');
    append_be64(&k, seq);
    return k;
}
std::string staged_id_key(std::uint64_t txn, std::string_view id, std::uint64_t seq) {
    std::string k = staging_prefix(txn, 'i');
    k.append(id);
    k.push_back('\0');
    append_be64(&k, seq);
    return k;
}
// One past every key that starts with `prefix` (prefix is never all 0xFF here).
std::string prefix_end(std::string prefix) {
    while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) {
        prefix.pop_back();
    }
    if (!prefix.empty()) {
        prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
    }
    return prefix;
}
constexpr std::string_view kPublishing = "publishing";
constexpr std::string_view kUndoPrefix = "undo/";

} // namespace

// The bytes of one transaction's staged operations, appended in staging order; the staging
// family's op keys point into it (be64 offset, be32 length). It lives as long as the
// transaction stages (or a cursor still reads it) and is removed then; open() removes any a
// crashed process left.
struct SpillFile {
    rocksdb::Env* env = nullptr;
    std::string path;
    std::mutex mutex; // appends
    std::unique_ptr<rocksdb::WritableFile> out;
    std::unique_ptr<rocksdb::RandomAccessFile> in;
    std::uint64_t size = 0;

    SpillFile() = default;
    SpillFile(const SpillFile&) = delete;
    SpillFile& operator=(const SpillFile&) = delete;
    ~SpillFile() {
        in.reset();
        if (out) {
            out->Close().PermitUncheckedError();
            out.reset();
        }
        env->DeleteFile(path).PermitUncheckedError();
    }

    Status read(std::string_view where, std::string* bytes) const {
        if (where.size() != 12) {
            return Status::corruption("bad staged operation reference");
        }
        const std::uint64_t offset = read_be64(where);
        const auto n = static_cast<std::uint32_t>(read_be64(where.substr(8)));
        bytes->resize(n);
        rocksdb::Slice got;
        ENGRAM_TRY(from_rocksdb(in->Read(offset, n, &got, bytes->data()),
                                "reading staged rows from '" + path + "'"));
        if (got.size() != n) {
            return Status::corruption("staged rows in '" + path + "' are truncated");
        }
        if (got.data() != bytes->data()) {
            std::memcpy(bytes->data(), got.data(), n);
        }
        return Status::ok();
    }
};

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
    spill_.clear();
    spill_status_ = Status::ok();
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
void Batch::delete_index(std::string_view key) {
    wb_->Delete(store_->index_, rocksdb::Slice(key.data(), key.size()));
}
void Batch::delete_episode(std::string_view id) {
    wb_->Delete(store_->episodes_, rocksdb::Slice(id.data(), id.size()));
}
void Batch::put_meta(std::string_view key, std::string_view value) {
    wb_->Put(store_->meta_, rocksdb::Slice(key.data(), key.size()),
             rocksdb::Slice(value.data(), value.size()));
}
void Batch::put_staged(std::uint64_t txn, std::uint64_t seq, std::string_view id,
                       std::string_view bytes, bool flag) {
    auto part = std::find_if(spill_.begin(), spill_.end(),
                             [&](const SpillPart& p) { return p.txn == txn; });
    if (part == spill_.end()) {
        SpillPart fresh;
        fresh.txn = txn;
        auto file = store_->spill(txn);
        if (file) {
            std::lock_guard<std::mutex> g(file.value()->mutex);
            fresh.base = file.value()->size;
        } else if (spill_status_.is_ok()) {
            spill_status_ = file.status();
        }
        spill_.push_back(std::move(fresh));
        part = spill_.end() - 1;
    }
    std::string where;
    append_be64(&where, part->base + part->bytes.size());
    append_be32(&where, static_cast<std::uint32_t>(bytes.size()));
    part->bytes.append(bytes);
    std::string seq_bytes;
    append_be64(&seq_bytes, seq);
    seq_bytes.push_back(flag ? '\1' : '\0');
    wb_->Put(store_->staging_, staged_op_key(txn, seq), where);
    wb_->Put(store_->staging_, staged_id_key(txn, id, seq), seq_bytes);
}
void Batch::delete_staged(std::uint64_t txn, std::uint64_t seq, std::string_view id) {
    wb_->Delete(store_->staging_, staged_op_key(txn, seq));
    wb_->Delete(store_->staging_, staged_id_key(txn, id, seq));
}
void Batch::begin_publish() {
    wb_->Put(store_->meta_, rocksdb::Slice(kPublishing.data(), kPublishing.size()), "1");
}
void Batch::put_undo(std::uint64_t seq, std::string_view id,
                     std::optional<std::string_view> before) {
    // value: u8 present, u32 id length, id, previous value
    std::string key(kUndoPrefix);
    append_be64(&key, seq);
    std::string v;
    v.push_back(before ? '\1' : '\0');
    const auto n = static_cast<std::uint32_t>(id.size());
    v.append(reinterpret_cast<const char*>(&n), sizeof n);
    v.append(id);
    if (before) {
        v.append(*before);
    }
    wb_->Put(store_->meta_, key, v);
}
void Batch::end_publish() {
    const std::string begin(kUndoPrefix);
    const std::string end = prefix_end(begin);
    wb_->DeleteRange(store_->meta_, begin, end);
    wb_->Delete(store_->meta_, rocksdb::Slice(kPublishing.data(), kPublishing.size()));
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
    spilled_valid_ = false;
    it_->Seek(prefix_);
}
void EpisodeCursor::seek(std::string_view id) {
    spilled_valid_ = false;
    std::string k = prefix_;
    k.append(id);
    it_->Seek(k);
}
bool EpisodeCursor::valid() const {
    return it_->Valid() && it_->key().starts_with(prefix_);
}
void EpisodeCursor::next() {
    spilled_valid_ = false;
    it_->Next();
}
std::string_view EpisodeCursor::id() const {
    const rocksdb::Slice k = it_->key();
    const std::size_t skip = prefix_.size();
    const std::size_t n = k.size() >= skip + strip_back_ ? k.size() - skip - strip_back_ : 0;
    return {k.data() + skip, n};
}
std::string_view EpisodeCursor::value() const {
    const rocksdb::Slice v = it_->value();
    if (!spill_) {
        return {v.data(), v.size()};
    }
    if (!spilled_valid_) {
        spilled_valid_ = true;
        Status s = spill_->read(std::string_view(v.data(), v.size()), &spilled_);
        if (!s.is_ok()) {
            spilled_.clear();
            if (spill_status_.is_ok()) {
                spill_status_ = std::move(s);
            }
        }
    }
    return spilled_;
}
Status EpisodeCursor::status() const {
    if (!spill_status_.is_ok()) {
        return spill_status_;
    }
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
    // Point lookups of absent ids (every insert checks its id) stop at the filter.
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    rocksdb::ColumnFamilyOptions keyed = cf;
    keyed.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    // ... and in the memtables, which a filter skips too.
    keyed.memtable_whole_key_filtering = true;
    keyed.memtable_prefix_bloom_size_ratio = 0.02;
    // Staged rows of large transactions: small memtables, so that staging bounds memory.
    // Its data lives for one transaction and goes by DeleteRange, so it is never compacted.
    rocksdb::ColumnFamilyOptions staging = keyed;
    staging.write_buffer_size = 16U << 20;
    staging.max_write_buffer_number = 2;
    staging.disable_auto_compactions = true;
    staging.level0_slowdown_writes_trigger = 1 << 30;
    staging.level0_stop_writes_trigger = 1 << 30;
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, cf},
        {"episodes", keyed},
        {"edges", cf},
        {"meta", cf},
        {"index", cf},
        {"staging", staging},
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
    store->staging_ = handles[5];
    store->db_->DestroyColumnFamilyHandle(handles[0]);
    // What a previous process staged died with it; a publish it left half done is undone.
    ENGRAM_TRY(store->clear_staging(std::string(), std::string(9, '\xff')));
    ENGRAM_TRY(store->remove_spill_files());
    ENGRAM_TRY(store->undo_unfinished_publish());
    return store;
}

Status Store::undo_unfinished_publish() {
    auto mark = get_meta(kPublishing);
    if (!mark) {
        return mark.status();
    }
    if (!mark->has_value()) {
        return Status::ok();
    }
    // Newest first, in bounded batches; each batch restores values and drops their undo
    // records atomically, so a crash here resumes where it stopped.
    const std::string lower(kUndoPrefix);
    const std::string upper = prefix_end(lower);
    const rocksdb::Slice lower_slice(lower);
    const rocksdb::Slice upper_slice(upper);
    for (;;) {
        rocksdb::ReadOptions ro;
        ro.iterate_lower_bound = &lower_slice;
        ro.iterate_upper_bound = &upper_slice;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, meta_));
        rocksdb::WriteBatch wb;
        std::size_t bytes = 0;
        for (it->SeekToLast(); it->Valid() && bytes < (16U << 20); it->Prev()) {
            const rocksdb::Slice v = it->value();
            std::uint32_t n = 0;
            if (v.size() < 1 + sizeof n) {
                return Status::corruption("engram store '" + path_ + "': bad undo record");
            }
            std::memcpy(&n, v.data() + 1, sizeof n);
            if (v.size() < 1 + sizeof n + n) {
                return Status::corruption("engram store '" + path_ + "': bad undo record");
            }
            const rocksdb::Slice id(v.data() + 1 + sizeof n, n);
            if (v[0] != '\0') {
                const std::size_t head = 1 + sizeof n + n;
                wb.Put(episodes_, id, rocksdb::Slice(v.data() + head, v.size() - head));
            } else {
                wb.Delete(episodes_, id);
            }
            wb.Delete(meta_, it->key());
            bytes += v.size();
        }
        ENGRAM_TRY(from_rocksdb(it->status(), "reading the undo records of '" + path_ + "'"));
        if (wb.Count() == 0) {
            break;
        }
        rocksdb::WriteOptions wo;
        wo.sync = true;
        ENGRAM_TRY(
            from_rocksdb(db_->Write(wo, &wb), "undoing an unfinished commit in '" + path_ + "'"));
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return from_rocksdb(
        db_->Delete(wo, meta_, rocksdb::Slice(kPublishing.data(), kPublishing.size())),
        "undoing an unfinished commit in '" + path_ + "'");
}

Store::~Store() {
    if (db_) {
        view_.reset();
        for (auto* h : {episodes_, edges_, meta_, index_, staging_}) {
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
    const auto v = view();
    rocksdb::ReadOptions ro;
    ro.snapshot = v.get();
    const rocksdb::Status s = db_->Get(ro, episodes_, rocksdb::Slice(id.data(), id.size()), value);
    return from_rocksdb(s, "reading episode '" + std::string(id) + "'");
}

Status Store::get_episode_latest(std::string_view id, std::string* value) const {
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), episodes_, rocksdb::Slice(id.data(), id.size()), value);
    return from_rocksdb(s, "reading episode '" + std::string(id) + "'");
}

std::shared_ptr<const rocksdb::Snapshot> Store::view() const {
    std::lock_guard<std::mutex> g(view_mutex_);
    return view_;
}

void Store::hold_view(bool hold) {
    std::shared_ptr<const rocksdb::Snapshot> old;
    std::lock_guard<std::mutex> g(view_mutex_);
    if (hold && !view_) {
        rocksdb::DB* db = db_.get();
        view_ = std::shared_ptr<const rocksdb::Snapshot>(
            db->GetSnapshot(), [db](const rocksdb::Snapshot* s) { db->ReleaseSnapshot(s); });
    } else if (!hold) {
        old = std::move(view_); // released outside the lock (readers may still hold it)
        view_.reset();
    }
}

std::unique_ptr<EpisodeCursor> Store::cursor(rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                                             std::size_t strip_back, bool published) const {
    std::unique_ptr<EpisodeCursor> c(new EpisodeCursor()); // private constructor
    c->prefix_ = std::move(prefix);
    c->strip_back_ = strip_back;
    rocksdb::ReadOptions ro;
    if (published) {
        c->snapshot_ = view();
        ro.snapshot = c->snapshot_.get();
    }
    if (!c->prefix_.empty()) {
        c->upper_ = prefix_end(c->prefix_);
        c->upper_slice_ = std::make_unique<rocksdb::Slice>(c->upper_);
        ro.iterate_upper_bound = c->upper_slice_.get();
    }
    c->it_.reset(db_->NewIterator(ro, cf));
    return c;
}

std::string Store::spill_path(std::uint64_t txn) const {
    return path_ + "/staging-" + std::to_string(txn) + ".spill";
}

Result<std::shared_ptr<SpillFile>> Store::spill(std::uint64_t txn) const {
    std::lock_guard<std::mutex> g(spill_mutex_);
    if (auto it = spills_.find(txn); it != spills_.end()) {
        return it->second;
    }
    auto file = std::make_shared<SpillFile>();
    file->env = env_ ? env_.get() : rocksdb::Env::Default();
    file->path = spill_path(txn);
    const rocksdb::EnvOptions eo;
    ENGRAM_TRY(from_rocksdb(file->env->NewWritableFile(file->path, &file->out, eo),
                            "creating staging file '" + file->path + "'"));
    ENGRAM_TRY(from_rocksdb(file->env->NewRandomAccessFile(file->path, &file->in, eo),
                            "opening staging file '" + file->path + "'"));
    spills_.emplace(txn, file);
    return file;
}

Status Store::remove_spill_files() {
    if (env_) {
        return Status::ok(); // a fresh in-memory file system: nothing left over
    }
    rocksdb::Env* env = rocksdb::Env::Default();
    std::vector<std::string> names;
    ENGRAM_TRY(from_rocksdb(env->GetChildren(path_, &names), "listing '" + path_ + "'"));
    for (const std::string& name : names) {
        if (name.starts_with("staging-") && name.ends_with(".spill")) {
            ENGRAM_TRY(from_rocksdb(env->DeleteFile(path_ + "/" + name),
                                    "removing staging file '" + name + "'"));
        }
    }
    return Status::ok();
}

Status Store::write_staging(Batch& batch) {
    ENGRAM_TRY(batch.spill_status_);
    for (Batch::SpillPart& part : batch.spill_) {
        if (part.bytes.empty()) {
            continue;
        }
        auto file = spill(part.txn);
        if (!file) {
            return file.status();
        }
        SpillFile& f = *file.value();
        std::lock_guard<std::mutex> g(f.mutex);
        if (f.size != part.base) {
            return Status::internal("staging batches of one transaction written out of order");
        }
        // Page cache only: a crash loses the staging area anyway.
        ENGRAM_TRY(from_rocksdb(f.out->Append(part.bytes), "staging rows in '" + f.path + "'"));
        ENGRAM_TRY(from_rocksdb(f.out->Flush(), "staging rows in '" + f.path + "'"));
        f.size += part.bytes.size();
        part.base = f.size;
        part.bytes.clear();
    }
    rocksdb::WriteOptions wo;
    wo.disableWAL = true; // a crash loses the staging area anyway
    return from_rocksdb(db_->Write(wo, batch.wb_.get()),
                        "staging rows in engram store '" + path_ + "'");
}

Result<std::optional<std::pair<std::uint64_t, std::string>>>
Store::get_staged(std::uint64_t txn, std::string_view id) const {
    using Found = std::optional<std::pair<std::uint64_t, std::string>>;
    std::string prefix = staging_prefix(txn, 'i');
    prefix.append(id);
    prefix.push_back('\0');
    std::string last = prefix;
    last.append(8, '\xff');
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), staging_));
    it->SeekForPrev(last);
    if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
        ENGRAM_TRY(from_rocksdb(it->status(), "reading staged rows"));
        return Found();
    }
    const std::uint64_t seq = read_be64(std::string_view(it->value().data(), it->value().size()));
    std::string where;
    ENGRAM_TRY(
        from_rocksdb(db_->Get(rocksdb::ReadOptions(), staging_, staged_op_key(txn, seq), &where),
                     "reading staged rows"));
    auto file = spill(txn);
    if (!file) {
        return file.status();
    }
    std::string bytes;
    ENGRAM_TRY(file.value()->read(where, &bytes));
    return Found(std::make_pair(seq, std::move(bytes)));
}

std::unique_ptr<EpisodeCursor> Store::staged_ops(std::uint64_t txn, std::uint64_t from_seq) const {
    auto c = cursor(staging_, staging_prefix(txn, 'o'), 0, false);
    auto file = spill(txn);
    if (file) {
        c->spill_ = std::move(file.value());
    } else {
        c->spill_status_ = file.status();
    }
    std::string from;
    append_be64(&from, from_seq);
    c->seek(from);
    return c;
}

std::unique_ptr<EpisodeCursor> Store::staged_ids(std::uint64_t txn) const {
    auto c = cursor(staging_, staging_prefix(txn, 'i'), 9, false);
    c->seek_first();
    return c;
}

Status Store::drop_staged(std::uint64_t txn) {
    {
        // The file goes with the last reference (a cursor may still hold one).
        std::lock_guard<std::mutex> g(spill_mutex_);
        spills_.erase(txn);
    }
    std::string begin;
    std::string end;
    append_be64(&begin, txn);
    append_be64(&end, txn + 1);
    return clear_staging(begin, end);
}

Status Store::clear_staging(const std::string& begin, const std::string& end) {
    // The family is never compacted on its own: whole files go first, the rest is hidden by a
    // range tombstone and compacted away (which also reclaims the disk).
    const rocksdb::Slice b(begin);
    const rocksdb::Slice e(end);
    ENGRAM_TRY(from_rocksdb(rocksdb::DeleteFilesInRange(db_.get(), staging_, &b, &e),
                            "dropping staged rows"));
    ENGRAM_TRY(from_rocksdb(db_->DeleteRange(rocksdb::WriteOptions(), staging_, b, e),
                            "dropping staged rows"));
    return from_rocksdb(db_->CompactRange(rocksdb::CompactRangeOptions(), staging_, &b, &e),
                        "dropping staged rows");
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

Status Store::write_unlogged(Batch& batch) {
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    return from_rocksdb(db_->Write(wo, batch.wb_.get()),
                        "committing to engram store '" + path_ + "'");
}

Status Store::flush_episodes() {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    return from_rocksdb(db_->Flush(fo, episodes_), "flushing engram store '" + path_ + "'");
}

std::unique_ptr<EpisodeCursor> Store::edges() const {
    return cursor(edges_, "", 0, false);
}

std::unique_ptr<EpisodeCursor> Store::episodes() const {
    return cursor(episodes_, "", 0, true);
}

StoreMemory Store::memory() const {
    const auto property = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& name) {
        std::uint64_t v = 0;
        return db_->GetIntProperty(cf, name, &v) ? static_cast<std::size_t>(v) : std::size_t{0};
    };
    StoreMemory m;
    for (rocksdb::ColumnFamilyHandle* cf :
         {db_->DefaultColumnFamily(), episodes_, edges_, meta_, index_}) {
        m.memtables += property(cf, "rocksdb.size-all-mem-tables");
        m.table_readers += property(cf, "rocksdb.estimate-table-readers-mem");
    }
    m.staging = property(staging_, "rocksdb.size-all-mem-tables");
    m.table_readers += property(staging_, "rocksdb.estimate-table-readers-mem");
    // Two table factories, each with its own cache (open()): the episodes family's, shared with
    // staging, and the default one, shared by the other families.
    m.block_cache = property(episodes_, "rocksdb.block-cache-usage") +
                    property(db_->DefaultColumnFamily(), "rocksdb.block-cache-usage");
    return m;
}

} // namespace engram::storage
