// Table-valued functions over a store: engram_similar, engram_stats, engram_batches.
//
// USAGE
//   SELECT rank, id, confidence FROM engram_similar('mem', :vector, 10, 0.0);
//   SELECT * FROM engram_stats('mem');
//   SELECT * FROM engram_batches('mem');
//
// HOW IT WORKS
//   Each function is an eponymous-only virtual table whose arguments are HIDDEN columns. One
//   module serves all of them, parameterised by a TvfSpec (its schema, argument count and run
//   function). xBestIndex hands every argument to xFilter (idxNum = bitmask of the arguments
//   present; a required argument that is missing makes the plan unusable), and xFilter runs the
//   spec's function once, which validates the arguments and fills the cursor's rows. Results
//   reflect committed data (a transaction's own uncommitted rows are not searched).
#include <cmath>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "engine/simd/kernels.hpp"
#include "vtab/arguments.hpp"
#include "vtab/connection.hpp"
#include "vtab/cues.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {

using Value = SqlValue;
using Row = std::vector<Value>;

struct TvfSpec {
    const char* name;
    const char* schema;                  // output columns, then the HIDDEN argument columns
    int n_out;                           // output columns
    const char* args[kMaxArguments + 1]; // argument names, nullptr-terminated
    int n_required;                      // the first n_required arguments must be given
    Status (*run)(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows);
};

namespace {

std::string arg_name(const TvfSpec* s, int i) {
    return std::string(s->name) + " argument " + s->args[i];
}

Result<std::shared_ptr<db::SharedStore>> store_arg(ConnectionContext* ctx, const TvfSpec* spec,
                                                   sqlite3_value* v) {
    if (v == nullptr || sqlite3_value_type(v) != SQLITE_TEXT) {
        return Status::invalid(arg_name(spec, 0) + ": expected the name of an engram table");
    }
    return resolve_store(ctx, read_text(v));
}

Result<std::int64_t> int_arg(const TvfSpec* spec, int i, sqlite3_value* v, std::int64_t lo) {
    if (sqlite3_value_type(v) != SQLITE_INTEGER || sqlite3_value_int64(v) < lo) {
        return Status::invalid(arg_name(spec, i) + ": expected an integer >= " +
                               std::to_string(lo) + ", got " + quote_text(read_text(v)));
    }
    return sqlite3_value_int64(v);
}

Result<double> real_arg(const TvfSpec* spec, int i, sqlite3_value* v) {
    const int t = sqlite3_value_type(v);
    const double d = sqlite3_value_double(v);
    if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !std::isfinite(d)) {
        return Status::invalid(arg_name(spec, i) + ": expected a number, got " +
                               quote_text(read_text(v)));
    }
    return d;
}

extern const TvfSpec kSimilar;
extern const TvfSpec kRecall;
extern const TvfSpec kSpread;
extern const TvfSpec kStats;
extern const TvfSpec kBatches;

Status run_similar(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows) {
    auto store = store_arg(ctx, &kSimilar, args[0]);
    if (!store) {
        return store.status();
    }
    auto query = read_vector(args[1], arg_name(&kSimilar, 1));
    if (!query) {
        return query.status();
    }
    const std::size_t dim = (*store)->options().memory.dim;
    if (query->size() != dim) {
        return Status::invalid(arg_name(&kSimilar, 1) + ": expected " + std::to_string(dim) +
                               " dimensions, got " + std::to_string(query->size()));
    }
    auto k = int_arg(&kSimilar, 2, args[2], 0);
    if (!k) {
        return k.status();
    }
    double threshold = 0.0;
    if (args[3] != nullptr) {
        auto t = real_arg(&kSimilar, 3, args[3]);
        if (!t) {
            return t.status();
        }
        threshold = t.value();
    }
    db::SharedStore& s = **store;
    std::size_t ef = static_cast<std::size_t>(s.options().ef_search);
    if (args[4] != nullptr) {
        auto e = int_arg(&kSimilar, 4, args[4], 1);
        if (!e) {
            return e.status();
        }
        ef = static_cast<std::size_t>(e.value());
    }
    std::vector<float> unit = std::move(query.value());
    engine::simd::kernels().normalize(unit.data(), unit.size());
    auto filter = parse_search_filter("engram_similar argument filter",
                                      args[5] == nullptr ? InValue() : copy_value(args[5]));
    if (!filter) {
        return filter.status();
    }
    const auto matches =
        s.search(unit.data(), static_cast<std::size_t>(k.value()), static_cast<float>(threshold),
                 ef, filter->has_value() ? &**filter : nullptr);
    rows->reserve(matches.size());
    std::int64_t rank = 0;
    for (const auto& [id, score] : matches) {
        rows->push_back(Row{++rank, id, static_cast<double>(std::max(0.0F, score))});
    }
    return Status::ok();
}

Status run_recall(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows) {
    auto store = store_arg(ctx, &kRecall, args[0]);
    if (!store) {
        return store.status();
    }
    auto in = [&](int i) { return args[i] == nullptr ? InValue() : copy_value(args[i]); };
    auto cue = parse_cue("engram_recall", in(1), in(2), in(3), in(4), in(5),
                         (*store)->options().memory.dim);
    if (!cue) {
        return cue.status();
    }
    auto results = (*store)->recall(std::span<const engine::Cue>(&cue.value(), 1));
    if (!results[0]) {
        return Status(results[0].status().code(),
                      "engram_recall: " + results[0].status().message());
    }
    std::int64_t rank = 0;
    for (auto& [id, confidence] : results[0].value()) {
        rows->push_back(Row{++rank, std::move(id), confidence});
    }
    return Status::ok();
}

Status run_spread(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows) {
    auto store = store_arg(ctx, &kSpread, args[0]);
    if (!store) {
        return store.status();
    }
    auto seeds = parse_seeds(read_text(args[1]));
    if (!seeds) {
        return seeds.status();
    }
    std::size_t depth = 4;
    if (args[2] != nullptr) {
        auto d = int_arg(&kSpread, 2, args[2], 0);
        if (!d) {
            return d.status();
        }
        depth = static_cast<std::size_t>(std::min<std::int64_t>(d.value(), 64));
    }
    std::optional<double> threshold;
    if (args[3] != nullptr) {
        auto t = real_arg(&kSpread, 3, args[3]);
        if (!t) {
            return t.status();
        }
        threshold = t.value();
    }
    auto results = (*store)->spread(std::span<const std::vector<db::SpreadSeed>>(&seeds.value(), 1),
                                    depth, threshold);
    if (!results[0]) {
        return Status(results[0].status().code(),
                      "engram_spread: " + results[0].status().message());
    }
    for (const db::SpreadRow& r : results[0].value()) {
        rows->push_back(Row{r.id, r.activation, static_cast<std::int64_t>(r.depth), r.confidence});
    }
    return Status::ok();
}

const char* sync_name(storage::SyncMode m) {
    switch (m) {
    case storage::SyncMode::kFull:
        return "full";
    case storage::SyncMode::kNormal:
        return "normal";
    default:
        return "off";
    }
}

Status run_stats(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows) {
    auto store = store_arg(ctx, &kStats, args[0]);
    if (!store) {
        return store.status();
    }
    db::SharedStore& s = **store;
    const db::StoreStats st = s.stats();
    const db::StoreOptions& o = s.options();
    const auto dedup = o.memory.dedup_threshold;
    rows->push_back(Row{
        o.in_memory ? std::string(":memory:") : o.path,
        static_cast<std::int64_t>(o.memory.dim),
        static_cast<std::int64_t>(o.memory.capacity),
        static_cast<std::int64_t>(st.hot + st.cold),
        static_cast<std::int64_t>(st.hot),
        static_cast<std::int64_t>(st.cold),
        static_cast<std::int64_t>(st.indexed),
        st.pressure,
        st.batches,
        dedup ? Value(*dedup) : Value(std::string("off")),
        std::string(sync_name(o.sync)),
        std::string(engine::simd::kernels().name),
        st.committing_rows,
        st.applied_rows,
        st.rate,
        st.staged_rows,
        std::string(engine::backpressure_name(o.backpressure)),
        static_cast<std::int64_t>(o.batch_memory),
        static_cast<std::int64_t>(o.max_unindexed),
        o.in_memory ? std::string("in memory (no snapshot)") : st.index_source,
    });
    return Status::ok();
}

Status run_batches(ConnectionContext* ctx, sqlite3_value** args, std::vector<Row>* rows) {
    auto store = store_arg(ctx, &kBatches, args[0]);
    if (!store) {
        return store.status();
    }
    for (const db::BatchReport& b : (*store)->batches()) {
        rows->push_back(Row{b.seq, b.size, b.successful, b.degraded, b.deduplicated, b.evicted,
                            b.updated, b.deleted, b.ms, b.peak_pressure, b.simd, b.staged, b.chunks,
                            b.mode, b.waited_ms});
    }
    return Status::ok();
}

const TvfSpec kSimilar = {
    "engram_similar",
    "CREATE TABLE x(rank INTEGER, id TEXT, confidence REAL, store HIDDEN, vector HIDDEN, "
    "k HIDDEN, threshold HIDDEN, ef HIDDEN, filter HIDDEN)",
    3,
    {"store", "vector", "k", "threshold", "ef", "filter", nullptr},
    3,
    run_similar,
};

const TvfSpec kRecall = {
    "engram_recall",
    "CREATE TABLE x(rank INTEGER, id TEXT, confidence REAL, store HIDDEN, kind HIDDEN, "
    "value HIDDEN, threshold HIDDEN, max_results HIDDEN, scope HIDDEN)",
    3,
    {"store", "kind", "value", "threshold", "max_results", "scope"},
    3,
    run_recall,
};

const TvfSpec kSpread = {
    "engram_spread",
    "CREATE TABLE x(id TEXT, activation REAL, depth INTEGER, confidence REAL, store HIDDEN, "
    "seeds HIDDEN, max_depth HIDDEN, threshold HIDDEN)",
    4,
    {"store", "seeds", "max_depth", "threshold", nullptr},
    2,
    run_spread,
};

const TvfSpec kStats = {
    "engram_stats",
    "CREATE TABLE x(path TEXT, dim INTEGER, capacity INTEGER, episodes INTEGER, hot INTEGER, "
    "cold INTEGER, indexed INTEGER, pressure REAL, batches INTEGER, dedup, sync TEXT, "
    "simd TEXT, committing INTEGER, applied INTEGER, rate REAL, staged INTEGER, "
    "backpressure TEXT, batch_memory INTEGER, max_unindexed INTEGER, index_source TEXT, "
    "store HIDDEN)",
    20,
    {"store", nullptr},
    1,
    run_stats,
};

const TvfSpec kBatches = {
    "engram_batches",
    "CREATE TABLE x(batch INTEGER, size INTEGER, successful INTEGER, degraded INTEGER, "
    "deduplicated INTEGER, evicted INTEGER, updated INTEGER, deleted INTEGER, ms REAL, "
    "peak_pressure REAL, simd TEXT, staged INTEGER, chunks INTEGER, mode TEXT, "
    "waited_ms REAL, store HIDDEN)",
    15,
    {"store", nullptr},
    1,
    run_batches,
};

const TvfSpec* const kSpecs[] = {&kSimilar, &kRecall, &kSpread, &kStats, &kBatches, nullptr};

struct TvfAux {
    ConnectionContext* ctx;
    const TvfSpec* spec;
};

struct TvfTable : sqlite3_vtab {
    ConnectionContext* ctx = nullptr;
    const TvfSpec* spec = nullptr;
};

struct TvfCursor : sqlite3_vtab_cursor {
    std::vector<Row> rows;
    std::size_t pos = 0;
};

int tvf_connect(sqlite3* db, void* aux, int /*argc*/, const char* const* /*argv*/,
                sqlite3_vtab** out, char** pz_err) noexcept {
    return guard_err(pz_err, [&]() -> Status {
        const auto* a = static_cast<const TvfAux*>(aux);
        if (sqlite3_declare_vtab(db, a->spec->schema) != SQLITE_OK) {
            return Status::internal(std::string("declaring ") + a->spec->name + " failed");
        }
        auto table = std::make_unique<TvfTable>();
        table->ctx = a->ctx;
        table->spec = a->spec;
        *out = table.release(); // owned by SQLite until xDisconnect
        return Status::ok();
    });
}

int tvf_disconnect(sqlite3_vtab* vtab) noexcept {
    std::unique_ptr<TvfTable> table(static_cast<TvfTable*>(vtab)); // back from SQLite
    return SQLITE_OK;
}

ArgumentList arguments_of(const TvfSpec* spec) {
    return {spec->name, spec->n_out, spec->args, spec->n_required};
}

int tvf_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
    return plan_arguments(vtab, info, arguments_of(static_cast<TvfTable*>(vtab)->spec));
}

int tvf_open(sqlite3_vtab* /*vtab*/, sqlite3_vtab_cursor** out) noexcept {
    try {
        auto cursor = std::make_unique<TvfCursor>();
        *out = cursor.release(); // owned by SQLite until xClose
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

int tvf_close(sqlite3_vtab_cursor* cur) noexcept {
    std::unique_ptr<TvfCursor> cursor(static_cast<TvfCursor*>(cur)); // back from SQLite
    return SQLITE_OK;
}

int tvf_filter(sqlite3_vtab_cursor* cur, int idx_num, const char* /*idx_str*/, int argc,
               sqlite3_value** argv) noexcept {
    auto* c = static_cast<TvfCursor*>(cur);
    const auto* t = static_cast<TvfTable*>(cur->pVtab);
    return guard(cur->pVtab, [&]() -> Status {
        c->rows.clear();
        c->pos = 0;
        sqlite3_value* args[kMaxArguments] = {};
        map_arguments(arguments_of(t->spec), idx_num, argc, argv, args);
        return t->spec->run(t->ctx, args, &c->rows);
    });
}

int tvf_next(sqlite3_vtab_cursor* cur) noexcept {
    ++static_cast<TvfCursor*>(cur)->pos;
    return SQLITE_OK;
}

int tvf_eof(sqlite3_vtab_cursor* cur) noexcept {
    const auto* c = static_cast<TvfCursor*>(cur);
    return c->pos >= c->rows.size() ? 1 : 0;
}

int tvf_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) noexcept {
    const auto* c = static_cast<TvfCursor*>(cur);
    const Row& row = c->rows[c->pos];
    if (col < 0 || static_cast<std::size_t>(col) >= row.size()) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    result_value(ctx, row[static_cast<std::size_t>(col)]);
    return SQLITE_OK;
}

int tvf_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
    *rowid = static_cast<sqlite3_int64>(static_cast<TvfCursor*>(cur)->pos);
    return SQLITE_OK;
}

} // namespace

const TvfSpec* const* tvf_specs() {
    return kSpecs;
}
const char* tvf_name(const TvfSpec* spec) {
    return spec->name;
}

void* make_tvf_aux(ConnectionContext* ctx, const TvfSpec* spec) {
    return std::make_unique<TvfAux>(TvfAux{ctx, spec}).release(); // freed by destroy_tvf_aux
}
void destroy_tvf_aux(void* aux) {
    std::unique_ptr<TvfAux> owned(static_cast<TvfAux*>(aux)); // from make_tvf_aux
}

const sqlite3_module& tvf_module() {
    static const sqlite3_module m = [] {
        sqlite3_module mod{};
        mod.iVersion = 1;
        mod.xCreate = nullptr; // eponymous-only
        mod.xConnect = tvf_connect;
        mod.xBestIndex = tvf_best_index;
        mod.xDisconnect = tvf_disconnect;
        mod.xDestroy = tvf_disconnect;
        mod.xOpen = tvf_open;
        mod.xClose = tvf_close;
        mod.xFilter = tvf_filter;
        mod.xNext = tvf_next;
        mod.xEof = tvf_eof;
        mod.xColumn = tvf_column;
        mod.xRowid = tvf_rowid;
        return mod;
    }();
    return m;
}

} // namespace engram::vtab
