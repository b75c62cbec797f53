// Edges and spreading activation.
//
// USAGE
//   CREATE VIRTUAL TABLE mem_links USING engram_edges(store=mem);   -- columns src, dst, weight
//   INSERT INTO mem_links VALUES ('e1', 'e2', 0.8);
//   SELECT id, activation, depth, confidence FROM engram_spread('mem', json_array('e1'), 3);
//   SELECT * FROM engram_spread_batch('mem', 'SELECT set_id, id, activation FROM seeds', 3);
//
// HOW IT WORKS
//   engram_edges stores directed weighted edges (weight in (0, 1]) in the store's `edges` column
//   family; writes are queued per transaction and committed atomically at xSync, like episodes.
//   Both ends must be stored memories (or written earlier in the same transaction, in the
//   store's table on this connection); otherwise the write fails naming the missing id. Rows
//   get rowids as scans produce them; UPDATE/DELETE map those rowids back to (src, dst).
//   Spreading runs on the store's in-memory compressed graph (engine/spread.hpp): level-
//   synchronous and deterministic at any thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vtab/batch_vtab.hpp"
#include "vtab/connection.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"
#include "vtab/savepoints.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {
namespace {

struct EdgesTable : sqlite3_vtab {
    ConnectionContext* ctx = nullptr;
    std::string store_name;
    std::vector<db::EdgeOp> ops;                                        // this transaction's writes
    std::map<std::pair<std::string, std::string>, std::size_t> overlay; // → latest op
    std::vector<std::size_t> savepoints;
    // rowid ↔ edge for the rows scans have produced in this transaction / statement
    std::vector<std::pair<std::string, std::string>> rowids;

    std::size_t position() const { return ops.size(); }
    Status truncate_to(std::size_t mark) {
        ops.resize(std::min(mark, ops.size()));
        overlay.clear();
        for (std::size_t i = 0; i < ops.size(); ++i) {
            overlay[{ops[i].src, ops[i].dst}] = i;
        }
        return Status::ok();
    }
};

struct EdgeRow {
    std::string src, dst;
    double weight;
};

struct EdgesCursor : sqlite3_vtab_cursor {
    std::vector<EdgeRow> rows;
    std::size_t pos = 0;
    sqlite3_int64 first_rowid = 0;
};

Result<std::shared_ptr<db::SharedStore>> edges_store(EdgesTable* t) {
    return resolve_store(t->ctx, t->store_name);
}

int edges_init(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
               char** pz_err) noexcept {
    return guard_err(pz_err, [&]() -> Status {
        std::string store;
        for (int i = 3; i < argc; ++i) {
            std::string a = argv[i];
            const auto eq = a.find('=');
            std::string key = eq == std::string::npos ? a : a.substr(0, eq);
            key.erase(0, key.find_first_not_of(" \t"));
            key.erase(key.find_last_not_of(" \t") + 1);
            if (eq == std::string::npos || lower(key) != "store") {
                return Status::invalid("unknown engram_edges option " + quote_text(key) +
                                       " (expected store=<engram table>)");
            }
            store = a.substr(eq + 1);
            store.erase(0, store.find_first_not_of(" \t'\""));
            store.erase(store.find_last_not_of(" \t'\"") + 1);
        }
        if (store.empty()) {
            return Status::invalid("engram_edges: missing option store=<engram table>");
        }
        if (sqlite3_declare_vtab(db, "CREATE TABLE x(src TEXT, dst TEXT, weight REAL)") !=
            SQLITE_OK) {
            return Status::internal("declaring engram_edges failed");
        }
        auto table = std::make_unique<EdgesTable>();
        table->ctx = static_cast<ConnectionContext*>(aux);
        table->store_name = store;
        *out = table.release(); // owned by SQLite until xDisconnect/xDestroy
        return Status::ok();
    });
}

int edges_disconnect(sqlite3_vtab* vtab) noexcept {
    std::unique_ptr<EdgesTable> table(static_cast<EdgesTable*>(vtab)); // back from SQLite
    return SQLITE_OK;
}

int edges_best_index(sqlite3_vtab*, sqlite3_index_info* info) noexcept {
    // 1: src = ?   0: full scan
    for (int i = 0; i < info->nConstraint; ++i) {
        const auto& c = info->aConstraint[i];
        if (c.usable && c.iColumn == 0 && c.op == SQLITE_INDEX_CONSTRAINT_EQ) {
            info->idxNum = 1;
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->estimatedCost = 10;
            return SQLITE_OK;
        }
    }
    info->idxNum = 0;
    info->estimatedCost = 1e6;
    return SQLITE_OK;
}

int edges_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) noexcept {
    try {
        auto cursor = std::make_unique<EdgesCursor>();
        *out = cursor.release(); // owned by SQLite until xClose
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

int edges_close(sqlite3_vtab_cursor* cur) noexcept {
    std::unique_ptr<EdgesCursor> cursor(static_cast<EdgesCursor*>(cur)); // back from SQLite
    return SQLITE_OK;
}

int edges_filter(sqlite3_vtab_cursor* cur, int idx_num, const char*, int argc,
                 sqlite3_value** argv) noexcept {
    auto* c = static_cast<EdgesCursor*>(cur);
    auto* t = static_cast<EdgesTable*>(cur->pVtab);
    return guard(cur->pVtab, [&]() -> Status {
        auto store = edges_store(t);
        if (!store) {
            return store.status();
        }
        const bool by_src = idx_num == 1 && argc == 1;
        const std::string src = by_src ? read_text(argv[0]) : std::string();
        std::map<std::pair<std::string, std::string>, double> rows;
        auto cursor = (*store)->db().edges();
        if (by_src) {
            cursor->seek(src + std::string(1, '\0'));
        } else {
            cursor->seek_first();
        }
        for (; cursor->valid(); cursor->next()) {
            const std::string_view key = cursor->id();
            const auto zero = key.find('\0');
            if (by_src && key.substr(0, zero) != src) {
                break;
            }
            double w = 0.0;
            std::memcpy(&w, cursor->value().data(), std::min(sizeof w, cursor->value().size()));
            rows[{std::string(key.substr(0, zero)), std::string(key.substr(zero + 1))}] = w;
        }
        ENGRAM_TRY(cursor->status());
        for (const auto& [edge, index] : t->overlay) { // this transaction's own writes
            if (by_src && edge.first != src) {
                continue;
            }
            const db::EdgeOp& op = t->ops[index];
            if (op.remove) {
                rows.erase(edge);
            } else {
                rows[edge] = op.weight;
            }
        }
        c->rows.clear();
        c->pos = 0;
        if (t->rowids.size() > 1000000) {
            t->rowids.clear(); // rowids only need to live for one statement
        }
        c->first_rowid = static_cast<sqlite3_int64>(t->rowids.size()) + 1;
        for (const auto& [edge, w] : rows) {
            c->rows.push_back({edge.first, edge.second, w});
            t->rowids.push_back(edge);
        }
        return Status::ok();
    });
}

int edges_next(sqlite3_vtab_cursor* cur) noexcept {
    ++static_cast<EdgesCursor*>(cur)->pos;
    return SQLITE_OK;
}

int edges_eof(sqlite3_vtab_cursor* cur) noexcept {
    const auto* c = static_cast<EdgesCursor*>(cur);
    return c->pos >= c->rows.size() ? 1 : 0;
}

int edges_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) noexcept {
    const auto* c = static_cast<EdgesCursor*>(cur);
    const EdgeRow& r = c->rows[c->pos];
    if (col == 0) {
        result_text(ctx, r.src);
    } else if (col == 1) {
        result_text(ctx, r.dst);
    } else {
        sqlite3_result_double(ctx, r.weight);
    }
    return SQLITE_OK;
}

int edges_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
    const auto* c = static_cast<EdgesCursor*>(cur);
    *rowid = c->first_rowid + static_cast<sqlite3_int64>(c->pos);
    return SQLITE_OK;
}

Status queue(EdgesTable* t, db::EdgeOp op) {
    t->ops.push_back(op);
    t->overlay[{op.src, op.dst}] = t->ops.size() - 1;
    return Status::ok();
}

int edges_update(sqlite3_vtab* vtab, int argc, sqlite3_value** argv,
                 sqlite3_int64* /*rowid*/) noexcept {
    auto* t = static_cast<EdgesTable*>(vtab);
    return guard(vtab, [&]() -> Status {
        auto old_edge = [&]() -> Result<std::pair<std::string, std::string>> {
            const sqlite3_int64 r = sqlite3_value_int64(argv[0]);
            if (r < 1 || static_cast<std::size_t>(r) > t->rowids.size()) {
                return Status::internal("engram_edges: unknown rowid");
            }
            return t->rowids[static_cast<std::size_t>(r - 1)];
        };
        if (argc == 1) { // DELETE
            auto e = old_edge();
            if (!e) {
                return e.status();
            }
            return queue(t, db::EdgeOp{true, e->first, e->second, 0.0});
        }
        if (sqlite3_value_type(argv[2]) != SQLITE_TEXT ||
            sqlite3_value_type(argv[3]) != SQLITE_TEXT) {
            return Status::invalid("engram_edges: src and dst must be memory ids (TEXT)");
        }
        db::EdgeOp op{false, read_text(argv[2]), read_text(argv[3]), 0.0};
        const std::string name = "edge " + op.src + " -> " + op.dst;
        const int wt = sqlite3_value_type(argv[4]);
        const double w = wt == SQLITE_NULL ? 1.0 : sqlite3_value_double(argv[4]);
        if ((wt != SQLITE_NULL && wt != SQLITE_INTEGER && wt != SQLITE_FLOAT) || !(w > 0.0) ||
            w > 1.0) {
            return Status::invalid(name + ", weight: expected a number in (0, 1], got " +
                                   quote_text(read_text(argv[4])));
        }
        op.weight = w;
        auto store = edges_store(t);
        if (!store) {
            return store.status();
        }
        const auto pending = t->ctx->pending_ids.find(lower(t->store_name));
        for (const std::string* id : {&op.src, &op.dst}) {
            auto e = (*store)->exists(*id);
            if (!e) {
                return e.status();
            }
            const bool queued = pending != t->ctx->pending_ids.end() && pending->second(*id);
            if (!e.value() && !queued) {
                return Status::invalid(name + ": no memory '" + *id + "' in store " +
                                       quote_text(t->store_name));
            }
        }
        if (sqlite3_value_type(argv[0]) != SQLITE_NULL) { // UPDATE: delete the old edge first
            auto e = old_edge();
            if (!e) {
                return e.status();
            }
            if (*e != std::make_pair(op.src, op.dst)) {
                ENGRAM_TRY(queue(t, db::EdgeOp{true, e->first, e->second, 0.0}));
            }
        }
        return queue(t, op);
    });
}

void edges_reset(EdgesTable* t) {
    t->ops.clear();
    t->overlay.clear();
    t->savepoints.clear();
    t->rowids.clear();
}

int edges_begin(sqlite3_vtab* vtab) noexcept {
    edges_reset(static_cast<EdgesTable*>(vtab));
    return SQLITE_OK;
}

int edges_sync(sqlite3_vtab* vtab) noexcept {
    auto* t = static_cast<EdgesTable*>(vtab);
    return guard(vtab, [&]() -> Status {
        if (t->ops.empty()) {
            return Status::ok();
        }
        auto store = edges_store(t);
        if (!store) {
            return store.status();
        }
        return (*store)->commit_edges(t->ops);
    });
}

int edges_commit(sqlite3_vtab* vtab) noexcept {
    edges_reset(static_cast<EdgesTable*>(vtab));
    return SQLITE_OK;
}

// ---- engram_spread_batch -------------------------------------------------------------------

Status spread_bind(sqlite3_value** args, BatchArgs* out) {
    if (sqlite3_value_type(args[2]) != SQLITE_INTEGER || sqlite3_value_int64(args[2]) < 0 ||
        sqlite3_value_int64(args[2]) > 64) {
        return Status::invalid("engram_spread_batch argument max_depth: expected an integer in "
                               "0..64, got " +
                               quote_text(read_text(args[2])));
    }
    out->max_depth = static_cast<std::size_t>(sqlite3_value_int64(args[2]));
    return Status::ok();
}

Status spread_process(const BatchArgs& a, std::vector<InRow>& inputs, std::vector<OutRow>* out) {
    // Consecutive rows with the same set id form one seed set.
    std::vector<std::vector<db::SpreadSeed>> sets;
    std::vector<std::size_t> first_row;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const InRow& r = inputs[i];
        if (i == 0 || describe(r[0]) != describe(inputs[i - 1][0])) {
            sets.emplace_back();
            first_row.push_back(i);
        }
        double act = 1.0;
        if (!std::holds_alternative<std::monostate>(r[2]) && !in_number(r[2], &act)) {
            return Status::invalid("engram_spread_batch set " + describe(r[0]) +
                                   ", activation: expected a number, got " + describe(r[2]));
        }
        if (!std::holds_alternative<InText>(r[1])) {
            return Status::invalid("engram_spread_batch set " + describe(r[0]) +
                                   ", id: expected a memory id, got " + describe(r[1]));
        }
        sets.back().push_back({in_text(r[1]), act});
    }
    const auto results = a.store->spread(sets, a.max_depth, std::nullopt);
    for (std::size_t s = 0; s < sets.size(); ++s) {
        const OutValue set_id = to_out(inputs[first_row[s]][0]);
        if (!results[s]) {
            return Status::invalid("engram_spread_batch set " + describe(inputs[first_row[s]][0]) +
                                   ": " + results[s].status().message());
        }
        for (const db::SpreadRow& row : results[s].value()) {
            out->push_back(OutRow{set_id, row.id, row.activation,
                                  static_cast<std::int64_t>(row.depth), row.confidence});
        }
    }
    return Status::ok();
}

} // namespace

const BatchSpec kSpreadBatch = {
    "engram_spread_batch",
    "CREATE TABLE x(set_id, id TEXT, activation REAL, depth INTEGER, confidence REAL, "
    "store HIDDEN, sql HIDDEN, max_depth HIDDEN)",
    5,
    {"store", "sql", "max_depth", nullptr},
    3,
    3,
    "set id, memory id, activation",
    spread_bind,
    spread_process,
    0,
};

// Seeds of engram_spread: a JSON array of ids or of {"id": ..., "activation": ...} objects.
Result<std::vector<db::SpreadSeed>> parse_seeds(const std::string& text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    auto bad = [&] {
        return Status::invalid("engram_spread argument seeds: expected a JSON array of ids or of "
                               "{\"id\": ..., \"activation\": ...} objects, got " +
                               quote_text(text));
    };
    if (j.is_discarded() || !j.is_array()) {
        return bad();
    }
    std::vector<db::SpreadSeed> seeds;
    for (const auto& e : j) {
        if (e.is_string()) {
            seeds.push_back({e.get<std::string>(), 1.0});
        } else if (e.is_object() && e.contains("id") && e["id"].is_string()) {
            double act = 1.0;
            if (e.contains("activation")) {
                if (!e["activation"].is_number()) {
                    return bad();
                }
                act = e["activation"].get<double>();
            }
            seeds.push_back({e["id"].get<std::string>(), act});
        } else {
            return bad();
        }
    }
    return seeds;
}

const sqlite3_module& edges_module() {
    static const sqlite3_module m = [] {
        sqlite3_module mod{};
        mod.iVersion = 2;
        mod.xCreate = edges_init;
        mod.xConnect = edges_init;
        mod.xBestIndex = edges_best_index;
        mod.xDisconnect = edges_disconnect;
        mod.xDestroy = edges_disconnect;
        mod.xOpen = edges_open;
        mod.xClose = edges_close;
        mod.xFilter = edges_filter;
        mod.xNext = edges_next;
        mod.xEof = edges_eof;
        mod.xColumn = edges_column;
        mod.xRowid = edges_rowid;
        mod.xUpdate = edges_update;
        mod.xBegin = edges_begin;
        mod.xSync = edges_sync;
        mod.xCommit = edges_commit;
        mod.xRollback = edges_commit;
        mod.xSavepoint = savepoint_begin<EdgesTable>;
        mod.xRelease = savepoint_release<EdgesTable>;
        mod.xRollbackTo = savepoint_rollback_to<EdgesTable>;
        return mod;
    }();
    return m;
}

} // namespace engram::vtab
