// The `engram` virtual table: a store of episodes.
//
// USAGE
//   CREATE VIRTUAL TABLE mem USING engram(dim=768, capacity=1000000, path='mem.engram',
//                                         dedup=0.95, sync=full, m=16, ef_construction=200,
//                                         ef_search=64);
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

struct EngramTable : sqlite3_vtab {
    ConnectionContext* ctx = nullptr;
    std::string name; // lower-case
    std::shared_ptr<SharedStore> store;
    std::vector<PendingOp> ops;                 // this transaction's writes, in order
    std::map<std::string, std::size_t> overlay; // id → index of its latest op
    std::vector<std::size_t> savepoints;        // ops.size() at each savepoint level

    // The row this transaction sees for `id`: nullopt = absent.
    Result<std::optional<engine::EpisodeRecord>> visible(const std::string& id, bool* pending);
    void rebuild_overlay();
};

struct EngramCursor : sqlite3_vtab_cursor {
    int plan = 0;
    bool eof = true;
    engine::EpisodeRecord row;
    bool pending = false;
    // full scan: committed rows merged with the overlay
    std::unique_ptr<storage::EpisodeCursor> committed;
    std::map<std::string, std::size_t>::const_iterator over;
    std::map<std::string, std::size_t>::const_iterator over_end;
    EngramTable* table() const { return static_cast<EngramTable*>(pVtab); }
};

Result<std::optional<engine::EpisodeRecord>> EngramTable::visible(const std::string& id,
                                                                  bool* pending) {
    *pending = false;
    if (auto it = overlay.find(id); it != overlay.end()) {
        const PendingOp& op = ops[it->second];
        if (op.kind == PendingOp::Kind::kDelete) {
            return std::optional<engine::EpisodeRecord>();
        }
        engine::EpisodeRecord r;
        r.episode = op.episode;
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

void EngramTable::rebuild_overlay() {
    overlay.clear();
    for (std::size_t i = 0; i < ops.size(); ++i) {
        overlay[ops[i].id] = i;
    }
}

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

Status parse_options(sqlite3* db, int argc, const char* const* argv, StoreOptions* o) {
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
        } else {
            return Status::invalid("unknown engram option " + quote_text(key) +
                                   " (expected dim, capacity, path, dedup, sync, m, "
                                   "ef_construction or ef_search)");
        }
    }
    const char* file = sqlite3_db_filename(db, schema.c_str());
    if (!has_path) {
        if (file == nullptr || file[0] == '\0') {
            o->in_memory = true;
            char buf[64];
            std::snprintf(buf, sizeof buf, "%p", static_cast<void*>(db));
            // A name in the store's private in-memory file system (which wants absolute paths).
            o->path = "/engram-memory/" + std::string(buf) + "/" + schema + "." + table;
        } else {
            o->path = std::string(file) + "-" + table + ".engram";
        }
    }
    return o->memory.validate();
}

// ---- lifecycle -----------------------------------------------------------------------------

int engram_init(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
                char** pz_err) noexcept {
    return guard_err(pz_err, [&]() -> Status {
        StoreOptions options;
        ENGRAM_TRY(parse_options(db, argc, argv, &options));
        auto store = SharedStore::acquire(options);
        if (!store) {
            return store.status();
        }
        if (sqlite3_declare_vtab(db, kSchema) != SQLITE_OK) {
            return Status::internal("declaring the engram table failed");
        }
        sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
        auto table = std::make_unique<EngramTable>();
        table->ctx = static_cast<ConnectionContext*>(aux);
        table->name = lower(argv[2]);
        table->store = std::move(store.value());
        table->ctx->stores[table->name] = table->store;
        EngramTable* raw = table.get();
        table->ctx->pending_ids[table->name] = [raw](const std::string& id) {
            auto it = raw->overlay.find(id);
            return it != raw->overlay.end() &&
                   raw->ops[it->second].kind != PendingOp::Kind::kDelete;
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
    EngramTable* t = c->table();
    for (;;) {
        const bool have_db = c->committed->valid();
        const bool have_over = c->over != c->over_end;
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
            const std::string& b = c->over->first;
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
        const PendingOp& op = t->ops[c->over->second];
        if (op.kind == PendingOp::Kind::kDelete) {
            if (order == 0) {
                c->committed->next();
            }
            ++c->over;
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
        c->over = t->overlay.cbegin();
        c->over_end = t->overlay.cend();
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
        if (c->over != c->over_end && c->over->first == id) {
            ++c->over;
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
        const std::size_t position = t->ops.size() + 1;
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
            PendingOp op;
            op.kind = PendingOp::Kind::kDelete;
            op.id = id;
            t->ops.push_back(std::move(op));
            t->overlay[id] = t->ops.size() - 1;
            return Status::ok();
        }
        sqlite3_value** cols = argv + 2;
        const std::size_t dim = t->store->options().memory.dim;
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) { // INSERT
            if (sqlite3_value_type(cols[kId]) == SQLITE_NULL) {
                return Status::invalid("row " + std::to_string(position) +
                                       " of the transaction: id must not be NULL");
            }
            PendingOp op;
            op.kind = PendingOp::Kind::kInsert;
            op.id = read_text(cols[kId]);
            if (op.id.empty()) {
                return Status::invalid("row " + std::to_string(position) +
                                       " of the transaction: id must not be empty");
            }
            const std::string row = "row " + quote_text(op.id);
            ENGRAM_TRY(read_episode(cols, dim, nullptr, row, &op.episode));
            op.episode.id = op.id;
            bool pending = false;
            auto existing = t->visible(op.id, &pending);
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
            } else if (pending || t->overlay.count(op.id) != 0) {
                op.replace = true; // re-inserting an id deleted earlier in this transaction
            }
            t->ops.push_back(std::move(op));
            t->overlay[t->ops.back().id] = t->ops.size() - 1;
            return Status::ok();
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
        PendingOp op;
        op.id = old_id;
        ENGRAM_TRY(read_episode(cols, dim, &(*current)->episode, "row " + quote_text(old_id),
                                &op.episode));
        op.episode.id = old_id;
        if (pending) {
            // Updating a row inserted in this transaction: rewrite the queued insert in place.
            PendingOp& queued = t->ops[t->overlay[old_id]];
            queued.episode = std::move(op.episode);
            return Status::ok();
        }
        op.kind = PendingOp::Kind::kUpdate;
        t->ops.push_back(std::move(op));
        t->overlay[old_id] = t->ops.size() - 1;
        return Status::ok();
    });
}

// ---- transactions --------------------------------------------------------------------------

void reset(EngramTable* t) {
    t->ops.clear();
    t->overlay.clear();
    t->savepoints.clear();
}

int engram_begin(sqlite3_vtab* vtab) noexcept {
    reset(static_cast<EngramTable*>(vtab));
    return SQLITE_OK;
}

int engram_sync(sqlite3_vtab* vtab) noexcept {
    auto* t = static_cast<EngramTable*>(vtab);
    return guard(vtab, [&]() -> Status {
        Status s = t->store->commit(t->ops);
        if (s.is_ok()) {
            reset(t);
        }
        return s;
    });
}

int engram_commit(sqlite3_vtab* vtab) noexcept {
    reset(static_cast<EngramTable*>(vtab));
    return SQLITE_OK;
}

int engram_rollback(sqlite3_vtab* vtab) noexcept {
    reset(static_cast<EngramTable*>(vtab));
    return SQLITE_OK;
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
