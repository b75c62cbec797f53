// The `engram` virtual table: a store of episodes.
//
// USAGE
//   CREATE VIRTUAL TABLE mem USING engram(dim=768, capacity=1000000, path='mem.engram',
//                                         dedup=0.95, dedup_exact=off, sync=full, m=16,
//                                         ef_construction=200, ef_search=64);
//   INSERT INTO mem(id, what, embedding, confidence) VALUES ('e1', 'coffee', :vec, 0.9);
//   SELECT * FROM mem WHERE id = 'e1';
//   UPDATE mem SET confidence = 0.8 WHERE id = 'e1';   DELETE FROM mem WHERE id = 'e1';
//
// COLUMNS
//   id TEXT (primary key), what, embedding (float32 BLOB out; BLOB or JSON array in),
//   occurred_at (unix seconds or ISO-8601 in, ISO-8601 UTC out), location, who (JSON array),
//   confidence, vividness, reliability, metadata (JSON object), and read-only activation, tier
//   ('hot' | 'cold' | 'pending' before commit), stored_at.
//
// HOW IT WORKS
//   The table is declared WITHOUT ROWID with `id` as its primary key, so xUpdate receives ids.
//   Writes are validated row by row in xUpdate (errors name the row and column and change
//   nothing) and queued on this connection's table object; xSync hands the whole transaction to
//   the shared store, which applies it in insertion order (pressure, deduplication, eviction)
//   and writes it to RocksDB as one atomic batch. Savepoints (statement rollback) truncate the
//   queue. Reads merge the committed RocksDB view with this connection's queue, so a transaction
//   sees its own writes and nobody else does until COMMIT.
//
// QUERY PLANS (idxNum)
//   0  full scan in id order
//   1  id = ?  (argv[0]; SQLite turns id IN (...) into repeated lookups)
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/time.hpp"
#include "storage/codec.hpp"
#include "vtab/connection.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"
#include "vtab/savepoints.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {
namespace {

enum Column {
    kId = 0,
    kWhat,
    kEmbedding,
    kOccurredAt,
    kLocation,
    kWho,
    kConfidence,
    kVividness,
    kReliability,
    kMetadata,
    kActivation,
    kTier,
    kStoredAt,
    kColumnCount
};

constexpr const char* kColumnNames[kColumnCount] = {
    "id",        "what",        "embedding", "occurred_at", "location", "who",      "confidence",
    "vividness", "reliability", "metadata",  "activation",  "tier",     "stored_at"};

constexpr const char* kSchema =
    "CREATE TABLE x(id TEXT PRIMARY KEY NOT NULL, what TEXT, embedding BLOB, occurred_at TEXT, "
    "location TEXT, who TEXT, confidence REAL, vividness REAL, reliability REAL, metadata TEXT, "
    "activation REAL, tier TEXT, stored_at TEXT) WITHOUT ROWID";

// A Bloom filter over the ids a transaction staged on disk: most lookups of an id the
// transaction never wrote stop here instead of searching the staging area.
class StagedIdFilter {
public:
    void add(std::string_view id) {
        if (bits_.empty()) {
            bits_.assign(kWords, 0);
        }
        for (std::uint64_t h : hashes(id)) {
            bits_[(h >> 6) % kWords] |= 1ULL << (h & 63U);
        }
    }
    bool may_contain(std::string_view id) const {
        if (bits_.empty()) {
            return false;
        }
        for (std::uint64_t h : hashes(id)) {
            if ((bits_[(h >> 6) % kWords] & (1ULL << (h & 63U))) == 0) {
                return false;
            }
        }
        return true;
    }
    void clear() { bits_ = std::vector<std::uint64_t>(); }

private:
    static constexpr std::size_t kWords = (16U << 20) / 64; // 16 Mbit, 2 MB
    static std::array<std::uint64_t, 3> hashes(std::string_view id) {
        const std::uint64_t a = std::hash<std::string_view>()(id);
        const std::uint64_t b = (a * 0x9E3779B97F4A7C15ULL) ^ (a >> 29);
        return {a, a + b, a + 2 * b};
    }
    std::vector<std::uint64_t> bits_;
};

struct EngramTable : sqlite3_vtab {
    ConnectionContext* ctx = nullptr;
    std::string name; // lower-case
    std::shared_ptr<db::SharedStore> store;
    // This transaction's writes, in order: the first `staged` on disk (staging transaction
    // `txn`, once the queue outgrew half of batch_memory), then `ops` in memory.
    std::uint64_t txn = 0;
    std::size_t staged = 0;
    std::uint64_t base_version = 0; // the store's data_version() at xBegin
    StagedIdFilter staged_ids;
    std::vector<db::PendingOp> ops;
    std::size_t ops_bytes = 0;
    std::map<std::string, std::size_t> overlay; // id → index in ops of its latest op
    std::vector<std::size_t> savepoints;        // position() at each savepoint level

    std::size_t position() const { return staged + ops.size(); }
    // The latest op this transaction queued for `id`, if any (*op is set to it; it points into
    // `ops` or into *scratch).
    Result<bool> latest_op(const std::string& id, const db::PendingOp** op, db::PendingOp* scratch,
                           std::uint64_t* staged_seq = nullptr);
    // The row this transaction sees for `id`: nullopt = absent. *touched: the transaction
    // wrote `id` (even if it then deleted it).
    Result<std::optional<engine::EpisodeRecord>> visible(const std::string& id, bool* pending,
                                                         bool* touched = nullptr);
    void queue(db::PendingOp op);
    Status spill_if_needed();
    Status truncate_to(std::size_t mark);
    Status reset();
};

Result<bool> EngramTable::latest_op(const std::string& id, const db::PendingOp** op,
                                    db::PendingOp* scratch, std::uint64_t* staged_seq) {
    if (auto it = overlay.find(id); it != overlay.end()) {
        *op = &ops[it->second];
        return true;
    }
    if (staged == 0 || !staged_ids.may_contain(id)) {
        return false;
    }
    auto found = store->db().get_staged(txn, id);
    if (!found) {
        return found.status();
    }
    if (!found->has_value()) {
        return false;
    }
    auto decoded = db::decode_op((*found)->second);
    if (!decoded) {
        return decoded.status();
    }
    *scratch = std::move(decoded.value());
    *op = scratch;
    if (staged_seq != nullptr) {
        *staged_seq = (*found)->first;
    }
    return true;
}

Result<std::optional<engine::EpisodeRecord>> EngramTable::visible(const std::string& id,
                                                                  bool* pending, bool* touched) {
    *pending = false;
    const db::PendingOp* op = nullptr;
    db::PendingOp scratch;
    auto queued = latest_op(id, &op, &scratch);
    if (!queued) {
        return queued.status();
    }
    if (touched != nullptr) {
        *touched = queued.value();
    }
    if (queued.value()) {
        if (op->kind == db::PendingOp::Kind::kDelete) {
            return std::optional<engine::EpisodeRecord>();
        }
        engine::EpisodeRecord r;
        r.episode = op == &scratch ? std::move(scratch.episode) : op->episode;
        *pending = true;
        return std::optional<engine::EpisodeRecord>(std::move(r));
    }
    std::string value;
    Status s = store->db().get_episode(id, &value);
    if (s.code() == Code::kNotFound) {
        return std::optional<engine::EpisodeRecord>();
    }
    ENGRAM_TRY(s);
    auto rec = storage::decode_record(id, value);
    if (!rec) {
        return rec.status();
    }
    return std::optional<engine::EpisodeRecord>(std::move(rec.value()));
}

void EngramTable::queue(db::PendingOp op) {
    ops_bytes += db::op_bytes(op);
    overlay[op.id] = ops.size();
    ops.push_back(std::move(op));
}

Status EngramTable::spill_if_needed() {
    // Half of the budget for the queue; the commit's chunks take the other half.
    if (ops_bytes <= store->options().batch_memory / 2 || ops.empty()) {
        return Status::ok();
    }
    if (txn == 0) {
        txn = store->next_txn();
    }
    storage::Batch batch = store->db().batch();
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
        const db::PendingOp& op = ops[i];
        const std::string encoded = db::encode_op(op);
        bytes += encoded.size();
        batch.put_staged(txn, staged + i, op.id, encoded,
                         op.kind == db::PendingOp::Kind::kInsert && !op.replace);
        staged_ids.add(op.id);
        if (bytes > (8U << 20)) { // bounded write batches
            ENGRAM_TRY(store->db().write_staging(batch));
            batch.clear();
            bytes = 0;
        }
    }
    ENGRAM_TRY(store->db().write_staging(batch));
    staged += ops.size();
    store->count_staged(static_cast<std::int64_t>(ops.size()));
    ops = std::vector<db::PendingOp>();
    overlay.clear();
    ops_bytes = 0;
    return Status::ok();
}

Status EngramTable::truncate_to(std::size_t mark) {
    if (mark >= staged) {
        ops.resize(std::min(mark - staged, ops.size()));
    } else {
        // Unstage the ops from `mark` on (their ids are needed to find their id entries).
        auto cursor = store->db().staged_ops(txn, mark);
        storage::Batch batch = store->db().batch();
        std::uint64_t seq = mark;
        for (; cursor->valid() && seq < staged; cursor->next(), ++seq) {
            auto op = db::decode_op(cursor->value());
            if (!op) {
                return op.status();
            }
            batch.delete_staged(txn, seq, op->id);
            if (batch.byte_size() > (8U << 20)) {
                ENGRAM_TRY(store->db().write_staging(batch));
                batch.clear();
            }
        }
        ENGRAM_TRY(cursor->status());
        ENGRAM_TRY(store->db().write_staging(batch));
        store->count_staged(-static_cast<std::int64_t>(staged - mark));
        staged = mark;
        ops.clear();
    }
    overlay.clear();
    ops_bytes = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
        overlay[ops[i].id] = i;
        ops_bytes += db::op_bytes(ops[i]);
    }
    return Status::ok();
}

Status EngramTable::reset() {
    ops = std::vector<db::PendingOp>();
    overlay.clear();
    ops_bytes = 0;
    savepoints.clear();
    staged_ids.clear();
    Status s;
    if (staged > 0) {
        s = store->db().drop_staged(txn);
        store->count_staged(-static_cast<std::int64_t>(staged));
    }
    staged = 0;
    txn = 0;
    return s;
}

// The transaction's writes in id order, the latest op per id: the staged ones merged with
// those in memory (which are newer). Holds no iterator into the in-memory queue between calls
// (each step looks up the first id after the last one yielded), so the transaction may keep
// writing, and even spill, while a scan is open.
class QueuedOps {
public:
    Status open(EngramTable* t) {
        t_ = t;
        started_ = false;
        last_.clear();
        staged_.reset();
        staged_count_ = 0;
        return settle();
    }
    bool valid() const { return cur_ != nullptr; }
    const std::string& id() const { return cur_id_; }
    // Valid until the table changes (the cursor copies the row at once).
    const db::PendingOp& op() const { return *cur_; }
    Status next() {
        last_ = cur_id_;
        started_ = true;
        return settle();
    }

private:
    // The staged ids past last_, from an iterator re-created whenever more rows were staged.
    Status staged_after_last(std::optional<std::string>* out) {
        out->reset();
        if (t_->staged == 0) {
            return Status::ok();
        }
        if (!staged_ || staged_count_ != t_->staged) {
            staged_ = t_->store->db().staged_ids(t_->txn);
            staged_count_ = t_->staged;
            if (started_) {
                staged_->seek(last_);
            }
        }
        while (staged_->valid() && started_ && staged_->id() <= last_) {
            staged_->next();
        }
        ENGRAM_TRY(staged_->status());
        if (staged_->valid()) {
            *out = std::string(staged_->id());
        }
        return Status::ok();
    }
    Status settle() {
        cur_ = nullptr;
        std::optional<std::string> staged_id;
        ENGRAM_TRY(staged_after_last(&staged_id));
        const auto mem = started_ ? t_->overlay.upper_bound(last_) : t_->overlay.begin();
        const bool have_mem = mem != t_->overlay.end();
        if (staged_id && (!have_mem || *staged_id < mem->first)) {
            const db::PendingOp* op = nullptr;
            auto found = t_->latest_op(*staged_id, &op, &staged_op_);
            if (!found) {
                return found.status();
            }
            if (!found.value()) {
                return Status::internal("staged row " + quote_text(*staged_id) + " vanished");
            }
            cur_id_ = std::move(*staged_id);
            cur_ = op;
            return Status::ok();
        }
        if (have_mem) { // newer than a staged op for the same id, if any
            cur_id_ = mem->first;
            cur_ = &t_->ops[mem->second];
        }
        return Status::ok();
    }

    EngramTable* t_ = nullptr;
    bool started_ = false;
    std::string last_; // the id yielded last (when started_)
    std::unique_ptr<storage::EpisodeCursor> staged_;
    std::size_t staged_count_ = 0; // t_->staged when staged_ was created
    db::PendingOp staged_op_;
    std::string cur_id_;
    const db::PendingOp* cur_ = nullptr;
};

struct EngramCursor : sqlite3_vtab_cursor {
    int plan = 0;
    bool eof = true;
    engine::EpisodeRecord row;
    bool pending = false;
    // full scan: committed rows merged with the transaction's queued writes
    std::unique_ptr<storage::EpisodeCursor> committed;
    QueuedOps queued;
    EngramTable* table() const { return static_cast<EngramTable*>(pVtab); }
};

// ---- options -------------------------------------------------------------------------------

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
        const char q = v.front();
        std::string out;
        for (std::size_t i = 1; i + 1 < v.size(); ++i) {
            out += v[i];
            if (v[i] == q && i + 2 < v.size() && v[i + 1] == q) {
                ++i;
            }
        }
        return out;
    }
    return v;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\n\r");
    if (b == std::string::npos) {
        return "";
    }
    const auto e = s.find_last_not_of(" \t\n\r");
    return s.substr(b, e - b + 1);
}

Status parse_int(const std::string& key, const std::string& v, long long lo, long long hi,
                 long long* out) {
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
        return Status::invalid("engram option " + key + ": expected an integer between " +
                               std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                               quote_text(v));
    }
    *out = n;
    return Status::ok();
}

// A size in bytes: an integer with an optional KB, MB or GB suffix (powers of 1024).
Status parse_bytes(const std::string& key, const std::string& v, unsigned long long lo,
                   unsigned long long hi, std::size_t* out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    const std::string unit = lower(trim(end != nullptr ? std::string(end) : std::string()));
    unsigned long long scale = 0;
    if (unit.empty() || unit == "b") {
        scale = 1;
    } else if (unit == "kb" || unit == "k") {
        scale = 1ULL << 10;
    } else if (unit == "mb" || unit == "m") {
        scale = 1ULL << 20;
    } else if (unit == "gb" || unit == "g") {
        scale = 1ULL << 30;
    }
    const bool digits = !v.empty() && v[0] >= '0' && v[0] <= '9';
    if (!digits || errno != 0 || scale == 0 || n > hi / scale || n * scale < lo || n * scale > hi) {
        return Status::invalid("engram option " + key +
                               ": expected a size such as 64MB (at least 1MB), got " +
                               quote_text(v));
    }
    *out = static_cast<std::size_t>(n * scale);
    return Status::ok();
}

Status parse_options(sqlite3* conn, int argc, const char* const* argv, db::StoreOptions* o) {
    const std::string schema = argv[1];
    const std::string table = argv[2];
    std::map<std::string, bool> seen;
    bool has_path = false;
    for (int i = 3; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto eq = arg.find('=');
        if (eq == std::string::npos) {
            return Status::invalid("engram option " + quote_text(trim(arg)) +
                                   ": expected key=value");
        }
        const std::string key = lower(trim(arg.substr(0, eq)));
        const std::string value = unquote(trim(arg.substr(eq + 1)));
        if (seen[key]) {
            return Status::invalid("engram option " + key + " given twice");
        }
        seen[key] = true;
        long long n = 0;
        if (key == "dim") {
            ENGRAM_TRY(parse_int(key, value, 1, 4096, &n));
            o->memory.dim = static_cast<std::size_t>(n);
        } else if (key == "capacity") {
            ENGRAM_TRY(parse_int(key, value, 1, 1LL << 40, &n));
            o->memory.capacity = static_cast<std::size_t>(n);
        } else if (key == "path") {
            if (value.empty()) {
                return Status::invalid("engram option path: must not be empty");
            }
            o->path = value;
            has_path = true;
        } else if (key == "dedup") {
            if (lower(value) == "off") {
                o->memory.dedup_threshold.reset();
            } else {
                char* end = nullptr;
                const double d = std::strtod(value.c_str(), &end);
                if (value.empty() || *end != '\0' || !(d > 0.0 && d <= 1.0)) {
                    return Status::invalid(
                        "engram option dedup: expected 'off' or a cosine in (0, 1], got " +
                        quote_text(value));
                }
                o->memory.dedup_threshold = d;
            }
        } else if (key == "dedup_exact") {
            const std::string v = lower(value);
            if (v != "on" && v != "off") {
                return Status::invalid("engram option dedup_exact: expected on or off, got " +
                                       quote_text(value));
            }
            o->memory.dedup_exact = v == "on";
        } else if (key == "sync") {
            const std::string v = lower(value);
            if (v == "full") {
                o->sync = storage::SyncMode::kFull;
            } else if (v == "normal") {
                o->sync = storage::SyncMode::kNormal;
            } else if (v == "off") {
                o->sync = storage::SyncMode::kOff;
            } else {
                return Status::invalid("engram option sync: expected full, normal or off, got " +
                                       quote_text(value));
            }
        } else if (key == "m") {
            ENGRAM_TRY(parse_int(key, value, 2, 128, &n));
            o->m = static_cast<int>(n);
        } else if (key == "ef_construction") {
            ENGRAM_TRY(parse_int(key, value, 1, 100000, &n));
            o->ef_construction = static_cast<int>(n);
        } else if (key == "ef_search") {
            ENGRAM_TRY(parse_int(key, value, 1, 100000, &n));
            o->ef_search = static_cast<int>(n);
        } else if (key == "batch_memory") {
            ENGRAM_TRY(parse_bytes(key, value, 1U << 20, 1ULL << 40, &o->batch_memory));
        } else if (key == "backpressure") {
            const auto b = engine::parse_backpressure(lower(value));
            if (!b) {
                return Status::invalid("engram option backpressure: expected block, "
                                       "adaptive_resize or fallback, got " +
                                       quote_text(value));
            }
            o->backpressure = *b;
        } else if (key == "max_unindexed") {
            ENGRAM_TRY(parse_int(key, value, 0, 1LL << 40, &n));
            o->max_unindexed = static_cast<std::size_t>(n);
        } else {
            return Status::invalid("unknown engram option " + quote_text(key) +
                                   " (expected dim, capacity, path, dedup, dedup_exact, sync, m, "
                                   "ef_construction, ef_search, batch_memory, backpressure or "
                                   "max_unindexed)");
        }
    }
    const char* file = sqlite3_db_filename(conn, schema.c_str());
    if (!has_path) {
        if (file == nullptr || file[0] == '\0') {
            o->in_memory = true;
            char buf[64];
            std::snprintf(buf, sizeof buf, "%p", static_cast<void*>(conn));
            // A name in the store's private in-memory file system (which wants absolute paths).
            o->path = "/engram-memory/" + std::string(buf) + "/" + schema + "." + table;
        } else {
            o->path = std::string(file) + "-" + table + ".engram";
        }
    }
    return o->memory.validate();
}

// ---- lifecycle -----------------------------------------------------------------------------

int engram_init(sqlite3* conn, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
                char** pz_err) noexcept {
    return guard_err(pz_err, [&]() -> Status {
        db::StoreOptions options;
        ENGRAM_TRY(parse_options(conn, argc, argv, &options));
        auto store = db::SharedStore::acquire(options);
        if (!store) {
            return store.status();
        }
        if (sqlite3_declare_vtab(conn, kSchema) != SQLITE_OK) {
            return Status::internal("declaring the engram table failed");
        }
        sqlite3_vtab_config(conn, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
        auto table = std::make_unique<EngramTable>();
        table->ctx = static_cast<ConnectionContext*>(aux);
        table->name = lower(argv[2]);
        table->store = std::move(store.value());
        table->ctx->stores[table->name] = table->store;
        EngramTable* raw = table.get();
        table->ctx->pending_ids[table->name] = [raw](const std::string& id) {
            const db::PendingOp* op = nullptr;
            db::PendingOp scratch;
            auto queued = raw->latest_op(id, &op, &scratch);
            return queued.is_ok() && queued.value() && op->kind != db::PendingOp::Kind::kDelete;
        };
        *out = table.release(); // owned by SQLite until xDisconnect/xDestroy
        return Status::ok();
    });
}

int engram_disconnect(sqlite3_vtab* vtab) noexcept {
    std::unique_ptr<EngramTable> table(static_cast<EngramTable*>(vtab)); // back from SQLite
    auto it = table->ctx->stores.find(table->name);
    if (it != table->ctx->stores.end() && it->second == table->store) {
        table->ctx->stores.erase(it);
        table->ctx->pending_ids.erase(table->name);
    }
    return SQLITE_OK;
}

int engram_destroy(sqlite3_vtab* vtab) noexcept {
    static_cast<EngramTable*>(vtab)->store->mark_dropped();
    return engram_disconnect(vtab);
}

// ---- reading -------------------------------------------------------------------------------

int engram_best_index(sqlite3_vtab* /*vtab*/, sqlite3_index_info* info) noexcept {
    int id_eq = -1;
    for (int i = 0; i < info->nConstraint; ++i) {
        const auto& c = info->aConstraint[i];
        if (c.usable && c.iColumn == kId && c.op == SQLITE_INDEX_CONSTRAINT_EQ) {
            id_eq = i;
            break;
        }
    }
    if (id_eq >= 0) {
        info->idxNum = 1;
        info->aConstraintUsage[id_eq].argvIndex = 1;
        info->aConstraintUsage[id_eq].omit = 1;
        info->estimatedCost = 10.0;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    } else {
        info->idxNum = 0;
        info->estimatedCost = 1e6;
        info->estimatedRows = 100000;
    }
    // Both plans yield rows in id order.
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == kId && !info->aOrderBy[0].desc) {
        info->orderByConsumed = 1;
    }
    return SQLITE_OK;
}

int engram_open(sqlite3_vtab* /*vtab*/, sqlite3_vtab_cursor** out) noexcept {
    try {
        auto cursor = std::make_unique<EngramCursor>();
        *out = cursor.release(); // owned by SQLite until xClose
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

int engram_close(sqlite3_vtab_cursor* cur) noexcept {
    std::unique_ptr<EngramCursor> cursor(static_cast<EngramCursor*>(cur)); // back from SQLite
    return SQLITE_OK;
}

// Moves a full-scan cursor to the next visible row at or after its current positions.
Status scan_settle(EngramCursor* c) {
    for (;;) {
        const bool have_db = c->committed->valid();
        const bool have_over = c->queued.valid();
        if (!have_db && !have_over) {
            ENGRAM_TRY(c->committed->status());
            c->eof = true;
            return Status::ok();
        }
        int order = 0; // <0: committed row first, >0: overlay first, 0: same id
        if (!have_db) {
            order = 1;
        } else if (!have_over) {
            order = -1;
        } else {
            const std::string_view a = c->committed->id();
            const std::string& b = c->queued.id();
            order = a < b ? -1 : (a == b ? 0 : 1);
        }
        if (order < 0) {
            auto rec = storage::decode_record(c->committed->id(), c->committed->value());
            if (!rec) {
                return rec.status();
            }
            c->row = std::move(rec.value());
            c->pending = false;
            c->eof = false;
            return Status::ok();
        }
        const db::PendingOp& op = c->queued.op();
        if (op.kind == db::PendingOp::Kind::kDelete) {
            if (order == 0) {
                c->committed->next();
            }
            ENGRAM_TRY(c->queued.next());
            continue;
        }
        c->row = engine::EpisodeRecord{};
        c->row.episode = op.episode;
        c->pending = true;
        c->eof = false;
        return Status::ok();
    }
}

int engram_filter(sqlite3_vtab_cursor* cur, int idx_num, const char* /*idx_str*/, int argc,
                  sqlite3_value** argv) noexcept {
    auto* c = static_cast<EngramCursor*>(cur);
    return guard(cur->pVtab, [&]() -> Status {
        c->plan = idx_num;
        c->eof = true;
        EngramTable* t = c->table();
        if (idx_num == 1 && argc == 1) {
            if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
                return Status::ok();
            }
            auto rec = t->visible(read_text(argv[0]), &c->pending);
            if (!rec) {
                return rec.status();
            }
            if (rec->has_value()) {
                c->row = std::move(**rec);
                c->eof = false;
            }
            return Status::ok();
        }
        c->committed = t->store->db().episodes();
        c->committed->seek_first();
        ENGRAM_TRY(c->queued.open(t));
        return scan_settle(c);
    });
}

int engram_next(sqlite3_vtab_cursor* cur) noexcept {
    auto* c = static_cast<EngramCursor*>(cur);
    return guard(cur->pVtab, [&]() -> Status {
        if (c->plan != 0 || !c->committed) {
            c->eof = true;
            return Status::ok();
        }
        // Step past the current row in whichever source(s) produced it.
        const std::string& id = c->row.episode.id;
        if (c->committed->valid() && c->committed->id() == id) {
            c->committed->next();
        }
        if (c->queued.valid() && c->queued.id() == id) {
            ENGRAM_TRY(c->queued.next());
        }
        return scan_settle(c);
    });
}

int engram_eof(sqlite3_vtab_cursor* cur) noexcept {
    return static_cast<EngramCursor*>(cur)->eof ? 1 : 0;
}

int engram_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) noexcept {
    auto* c = static_cast<EngramCursor*>(cur);
    return guard(cur->pVtab, [&]() -> Status {
        if (col != kId && sqlite3_vtab_nochange(ctx)) {
            return Status::ok(); // UPDATE leaves this column as it is: xUpdate sees "no change"
        }
        const engine::Episode& e = c->row.episode;
        switch (col) {
        case kId:
            result_text(ctx, e.id);
            break;
        case kWhat:
            result_text(ctx, e.what);
            break;
        case kEmbedding:
            result_vector(ctx, e.embedding);
            break;
        case kOccurredAt:
            result_text(ctx, engine::format_iso8601(e.occurred_at));
            break;
        case kLocation:
            if (e.location.empty()) {
                sqlite3_result_null(ctx);
            } else {
                result_text(ctx, e.location);
            }
            break;
        case kWho:
            result_text(ctx, who_json(e.who));
            break;
        case kConfidence:
            sqlite3_result_double(ctx, e.confidence);
            break;
        case kVividness:
            sqlite3_result_double(ctx, e.vividness);
            break;
        case kReliability:
            sqlite3_result_double(ctx, e.reliability);
            break;
        case kMetadata:
            result_text(ctx, e.metadata);
            break;
        case kActivation:
            if (c->pending) {
                sqlite3_result_null(ctx);
            } else {
                sqlite3_result_double(ctx, c->row.activation);
            }
            break;
        case kTier:
            sqlite3_result_text(ctx, c->pending ? "pending" : engine::tier_name(c->row.tier), -1,
                                SQLITE_STATIC);
            break;
        case kStoredAt:
            if (c->pending) {
                sqlite3_result_null(ctx);
            } else {
                result_text(ctx, engine::format_iso8601(c->row.stored_at));
            }
            break;
        default:
            break;
        }
        return Status::ok();
    });
}

// ---- writing -------------------------------------------------------------------------------

// Reads the episode columns of an INSERT/UPDATE into `e`. `base` (UPDATE) supplies the values of
// columns SQLite reports as unchanged. `row` names the row in messages.
Status read_episode(sqlite3_value** cols, std::size_t dim, const engine::Episode* base,
                    const std::string& row, engine::Episode* e) {
    auto column = [&](int c) { return row + ", column " + kColumnNames[c]; };
    auto unchanged = [&](int c) { return base != nullptr && sqlite3_value_nochange(cols[c]); };
    for (int c : {kActivation, kTier, kStoredAt}) {
        if (!unchanged(c) && sqlite3_value_type(cols[c]) != SQLITE_NULL && base == nullptr) {
            return Status::invalid(column(c) + ": read-only (set by the store)");
        }
    }
    if (base != nullptr) {
        *e = *base;
    }
    if (!unchanged(kWhat)) {
        e->what = read_text(cols[kWhat]);
    }
    if (!unchanged(kEmbedding)) {
        if (sqlite3_value_type(cols[kEmbedding]) == SQLITE_NULL) {
            return Status::invalid(column(kEmbedding) + ": must not be NULL");
        }
        auto v = read_vector(cols[kEmbedding], column(kEmbedding));
        if (!v) {
            return v.status();
        }
        if (v->size() != dim) {
            return Status::invalid(column(kEmbedding) + ": expected " + std::to_string(dim) +
                                   " dimensions, got " + std::to_string(v->size()));
        }
        e->embedding = std::move(v.value());
    }
    if (!unchanged(kOccurredAt)) {
        if (sqlite3_value_type(cols[kOccurredAt]) == SQLITE_NULL) {
            e->occurred_at = base != nullptr ? base->occurred_at : engine::now_seconds();
        } else {
            auto t = read_time(cols[kOccurredAt], column(kOccurredAt));
            if (!t) {
                return t.status();
            }
            e->occurred_at = t.value();
        }
    }
    if (!unchanged(kLocation)) {
        e->location = read_text(cols[kLocation]);
    }
    if (!unchanged(kWho)) {
        auto who = read_who(cols[kWho], column(kWho));
        if (!who) {
            return who.status();
        }
        e->who = std::move(who.value());
    }
    auto unit = [&](int c, double* out, double fallback) -> Status {
        if (unchanged(c)) {
            return Status::ok();
        }
        if (sqlite3_value_type(cols[c]) == SQLITE_NULL) {
            *out = fallback;
            return Status::ok();
        }
        auto d = read_unit_interval(cols[c], column(c));
        if (!d) {
            return d.status();
        }
        *out = d.value();
        return Status::ok();
    };
    ENGRAM_TRY(unit(kConfidence, &e->confidence, base != nullptr ? base->confidence : 0.9));
    ENGRAM_TRY(unit(kVividness, &e->vividness, base != nullptr ? base->vividness : e->confidence));
    ENGRAM_TRY(
        unit(kReliability, &e->reliability, base != nullptr ? base->reliability : e->confidence));
    if (!unchanged(kMetadata)) {
        auto m = read_metadata(cols[kMetadata], column(kMetadata));
        if (!m) {
            return m.status();
        }
        e->metadata = std::move(m.value());
    }
    return Status::ok();
}

int engram_update(sqlite3_vtab* vtab, int argc, sqlite3_value** argv,
                  sqlite3_int64* /*rowid*/) noexcept {
    auto* t = static_cast<EngramTable*>(vtab);
    return guard(vtab, [&]() -> Status {
        const std::size_t position = t->position() + 1;
        if (argc == 1) { // DELETE
            const std::string id = read_text(argv[0]);
            bool pending = false;
            auto rec = t->visible(id, &pending);
            if (!rec) {
                return rec.status();
            }
            if (!rec->has_value()) {
                return Status::ok();
            }
            db::PendingOp op;
            op.kind = db::PendingOp::Kind::kDelete;
            op.id = id;
            t->queue(std::move(op));
            return t->spill_if_needed();
        }
        sqlite3_value** cols = argv + 2;
        const std::size_t dim = t->store->options().memory.dim;
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) { // INSERT
            if (sqlite3_value_type(cols[kId]) == SQLITE_NULL) {
                return Status::invalid("row " + std::to_string(position) +
                                       " of the transaction: id must not be NULL");
            }
            db::PendingOp op;
            op.kind = db::PendingOp::Kind::kInsert;
            op.id = read_text(cols[kId]);
            if (op.id.empty()) {
                return Status::invalid("row " + std::to_string(position) +
                                       " of the transaction: id must not be empty");
            }
            if (op.id.find('\0') != std::string::npos) {
                return Status::invalid("row " + std::to_string(position) +
                                       " of the transaction: id must not contain a NUL character");
            }
            const std::string row = "row " + quote_text(op.id);
            ENGRAM_TRY(read_episode(cols, dim, nullptr, row, &op.episode));
            op.episode.id = op.id;
            bool pending = false;
            bool touched = false;
            auto existing = t->visible(op.id, &pending, &touched);
            if (!existing) {
                return existing.status();
            }
            if (existing->has_value()) {
                const int mode = sqlite3_vtab_on_conflict(t->ctx->db);
                if (mode == SQLITE_IGNORE) {
                    return Status::ok();
                }
                if (mode != SQLITE_REPLACE) {
                    return Status::exists("duplicate id " + quote_text(op.id) +
                                          ": an episode with this id is already stored");
                }
                op.replace = true;
            } else if (touched) {
                op.replace = true; // re-inserting an id deleted earlier in this transaction
            }
            t->queue(std::move(op));
            return t->spill_if_needed();
        }
        // UPDATE
        const std::string old_id = read_text(argv[0]);
        if (!sqlite3_value_nochange(cols[kId]) && read_text(cols[kId]) != old_id) {
            return Status::invalid("row " + quote_text(old_id) +
                                   ", column id: an episode's id cannot be changed");
        }
        for (int c : {kActivation, kTier, kStoredAt}) {
            if (!sqlite3_value_nochange(cols[c])) {
                return Status::invalid("row " + quote_text(old_id) + ", column " + kColumnNames[c] +
                                       ": read-only (set by the store)");
            }
        }
        bool pending = false;
        auto current = t->visible(old_id, &pending);
        if (!current) {
            return current.status();
        }
        if (!current->has_value()) {
            return Status::ok();
        }
        db::PendingOp op;
        op.id = old_id;
        ENGRAM_TRY(read_episode(cols, dim, &(*current)->episode, "row " + quote_text(old_id),
                                &op.episode));
        op.episode.id = old_id;
        if (pending) {
            // Updating a row inserted in this transaction: rewrite the queued insert in place.
            if (auto it = t->overlay.find(old_id); it != t->overlay.end()) {
                db::PendingOp& queued = t->ops[it->second];
                t->ops_bytes -= std::min(t->ops_bytes, db::op_bytes(queued));
                queued.episode = std::move(op.episode);
                t->ops_bytes += db::op_bytes(queued);
                return Status::ok();
            }
            const db::PendingOp* staged = nullptr;
            db::PendingOp scratch;
            std::uint64_t seq = 0;
            auto found = t->latest_op(old_id, &staged, &scratch, &seq);
            if (!found) {
                return found.status();
            }
            if (!found.value() || staged != &scratch) {
                return Status::internal("queued row " + quote_text(old_id) + " vanished");
            }
            scratch.episode = std::move(op.episode);
            storage::Batch batch = t->store->db().batch();
            batch.put_staged(t->txn, seq, old_id, db::encode_op(scratch),
                             scratch.kind == db::PendingOp::Kind::kInsert && !scratch.replace);
            return t->store->db().write_staging(batch);
        }
        op.kind = db::PendingOp::Kind::kUpdate;
        t->queue(std::move(op));
        return t->spill_if_needed();
    });
}

// ---- transactions --------------------------------------------------------------------------

int engram_begin(sqlite3_vtab* vtab) noexcept {
    return guard(vtab, [&]() {
        auto* t = static_cast<EngramTable*>(vtab);
        t->base_version = t->store->data_version(); // before any row is checked
        return t->reset();
    });
}

int engram_sync(sqlite3_vtab* vtab) noexcept {
    auto* t = static_cast<EngramTable*>(vtab);
    return guard(vtab, [&]() -> Status {
        ENGRAM_TRY(t->store->commit(
            db::TransactionOps{t->txn, t->staged, t->ops, t->ops_bytes, t->base_version}));
        // Committed. Staged rows left behind by a failed drop are cleared at the next open.
        const Status dropped = t->reset();
        static_cast<void>(dropped);
        return Status::ok();
    });
}

int engram_commit(sqlite3_vtab* vtab) noexcept {
    return guard(vtab, [&]() { return static_cast<EngramTable*>(vtab)->reset(); });
}

int engram_rollback(sqlite3_vtab* vtab) noexcept {
    return guard(vtab, [&]() { return static_cast<EngramTable*>(vtab)->reset(); });
}

int engram_rename(sqlite3_vtab* vtab, const char* /*name*/) noexcept {
    // The default store path is derived from the table name, so a renamed table would lose it.
    set_vtab_error(vtab, "renaming an engram table is not supported");
    return SQLITE_ERROR;
}

} // namespace

const sqlite3_module& engram_module() {
    static const sqlite3_module m = [] {
        sqlite3_module mod{};
        mod.iVersion = 2;
        mod.xCreate = engram_init;
        mod.xConnect = engram_init;
        mod.xBestIndex = engram_best_index;
        mod.xDisconnect = engram_disconnect;
        mod.xDestroy = engram_destroy;
        mod.xOpen = engram_open;
        mod.xClose = engram_close;
        mod.xFilter = engram_filter;
        mod.xNext = engram_next;
        mod.xEof = engram_eof;
        mod.xColumn = engram_column;
        mod.xUpdate = engram_update;
        mod.xBegin = engram_begin;
        mod.xSync = engram_sync;
        mod.xCommit = engram_commit;
        mod.xRollback = engram_rollback;
        mod.xRename = engram_rename;
        mod.xSavepoint = savepoint_begin<EngramTable>;
        mod.xRelease = savepoint_release<EngramTable>;
        mod.xRollbackTo = savepoint_rollback_to<EngramTable>;
        return mod;
    }();
    return m;
}

} // namespace engram::vtab
