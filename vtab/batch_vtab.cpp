// Batch table-valued functions: many queries, cues or seed sets in one statement.
//
// USAGE
//   SELECT query_id, rank, id, confidence
//     FROM engram_similar_batch('mem', 'SELECT qid, embedding FROM queries', 10, 0.0 [, ef]);
//   SELECT cue_id, rank, id, confidence, status, error
//     FROM engram_recall_batch('mem', 'SELECT cue_id, kind, value, threshold, max_results FROM
//     cues');
//
// HOW IT WORKS
//   One module serves every batch function, parameterised by a BatchSpec: its schema, its
//   arguments, how many columns its input query yields, and a `process` function. xFilter
//   validates the arguments and prepares the SQL text on this connection; the cursor reads the
//   query kChunk rows at a time (copying each row's values, since SQLite reuses them), hands the
//   chunk to `process` — which works in parallel in the extension's arena, never calling SQLite
//   from a worker — and yields the chunk's output rows in input order before reading the next
//   chunk. Memory is bounded by the chunk, not by the number of inputs. These functions run SQL
//   text, so they are DIRECTONLY: not usable from triggers, views or the schema.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/batch/executor.hpp"
#include "engine/simd/kernels.hpp"
#include "vtab/arguments.hpp"
#include "vtab/batch_vtab.hpp"
#include "vtab/connection.hpp"
#include "vtab/cues.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {
namespace {

constexpr std::size_t kChunk = 256;

struct StmtDeleter {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

struct BatchTable : sqlite3_vtab {
    ConnectionContext* ctx = nullptr;
    const BatchSpec* spec = nullptr;
};

struct BatchCursor : sqlite3_vtab_cursor {
    BatchArgs args;
    std::unique_ptr<sqlite3_stmt, StmtDeleter> stmt;
    bool input_done = false;
    std::optional<InRow> carry; // first row of the next group (group_column specs)
    std::vector<OutRow> rows;
    std::size_t pos = 0;
    std::int64_t rowid = 0;
};

std::string arg_name(const BatchSpec* s, int a) {
    return std::string(s->name) + " argument " + s->args[a];
}

// Copies the current row of the input query.
InRow copy_row(sqlite3_stmt* stmt, int columns) {
    InRow row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int i = 0; i < columns; ++i) {
        row.push_back(copy_value(sqlite3_column_value(stmt, i)));
    }
    return row;
}

Status next_chunk(BatchCursor* c, const BatchSpec* spec) {
    c->rows.clear();
    c->pos = 0;
    while (c->rows.empty() && (!c->input_done || c->carry)) {
        std::vector<InRow> inputs;
        if (c->carry) {
            inputs.push_back(std::move(*c->carry));
            c->carry.reset();
        }
        const int g = spec->group_column;
        for (;;) {
            const int rc = sqlite3_step(c->stmt.get());
            if (rc == SQLITE_DONE) {
                c->input_done = true;
                break;
            }
            if (rc != SQLITE_ROW) {
                return Status::invalid(std::string(spec->name) + ": the query failed: " +
                                       sqlite3_errmsg(sqlite3_db_handle(c->stmt.get())));
            }
            InRow row = copy_row(c->stmt.get(), spec->input_columns);
            if (inputs.size() >= kChunk &&
                (g < 0 || describe(row[static_cast<std::size_t>(g)]) !=
                              describe(inputs.back()[static_cast<std::size_t>(g)]))) {
                c->carry = std::move(row); // starts the next chunk
                break;
            }
            inputs.push_back(std::move(row));
        }
        if (!inputs.empty()) {
            ENGRAM_TRY(spec->process(c->args, inputs, &c->rows));
        }
    }
    return Status::ok();
}

int batch_connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out,
                  char** pz_err) noexcept {
    return guard_err(pz_err, [&]() -> Status {
        const auto* a = static_cast<const BatchAux*>(aux);
        if (sqlite3_declare_vtab(db, a->spec->schema) != SQLITE_OK) {
            return Status::internal(std::string("declaring ") + a->spec->name + " failed");
        }
        // It runs SQL text: never from triggers, views or the schema.
        sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
        auto table = std::make_unique<BatchTable>();
        table->ctx = a->ctx;
        table->spec = a->spec;
        *out = table.release(); // owned by SQLite until xDisconnect
        return Status::ok();
    });
}

int batch_disconnect(sqlite3_vtab* vtab) noexcept {
    std::unique_ptr<BatchTable> table(static_cast<BatchTable*>(vtab)); // back from SQLite
    return SQLITE_OK;
}

ArgumentList arguments_of(const BatchSpec* spec) {
    return {spec->name, spec->n_out, spec->args, spec->n_required};
}

int batch_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
    const int rc = plan_arguments(vtab, info, arguments_of(static_cast<BatchTable*>(vtab)->spec));
    info->estimatedCost = 1e5;
    return rc;
}

int batch_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) noexcept {
    try {
        auto cursor = std::make_unique<BatchCursor>();
        *out = cursor.release(); // owned by SQLite until xClose
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

int batch_close(sqlite3_vtab_cursor* cur) noexcept {
    std::unique_ptr<BatchCursor> cursor(static_cast<BatchCursor*>(cur)); // back from SQLite
    return SQLITE_OK;
}

int batch_filter(sqlite3_vtab_cursor* cur, int idx_num, const char*, int argc,
                 sqlite3_value** argv) noexcept {
    auto* c = static_cast<BatchCursor*>(cur);
    auto* t = static_cast<BatchTable*>(cur->pVtab);
    const BatchSpec* spec = t->spec;
    return guard(cur->pVtab, [&]() -> Status {
        sqlite3_value* args[kMaxArguments] = {};
        map_arguments(arguments_of(spec), idx_num, argc, argv, args);
        if (sqlite3_value_type(args[0]) != SQLITE_TEXT) {
            return Status::invalid(arg_name(spec, 0) + ": expected the name of an engram table");
        }
        auto store = resolve_store(t->ctx, read_text(args[0]));
        if (!store) {
            return store.status();
        }
        c->args = BatchArgs{};
        c->args.store = std::move(store.value());
        ENGRAM_TRY(spec->bind(args, &c->args));
        if (sqlite3_value_type(args[1]) != SQLITE_TEXT) {
            return Status::invalid(arg_name(spec, 1) + ": expected SQL text");
        }
        sqlite3_stmt* raw = nullptr;
        const std::string sql = read_text(args[1]);
        if (sqlite3_prepare_v2(t->ctx->db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
            const std::string msg = sqlite3_errmsg(t->ctx->db);
            sqlite3_finalize(raw);
            return Status::invalid(arg_name(spec, 1) + ": " + msg);
        }
        c->stmt.reset(raw);
        if (raw == nullptr || sqlite3_column_count(raw) != spec->input_columns) {
            return Status::invalid(arg_name(spec, 1) + ": the query must return " +
                                   std::to_string(spec->input_columns) + " columns (" +
                                   spec->input_names + ")");
        }
        c->input_done = false;
        c->carry.reset();
        c->rowid = 0;
        return next_chunk(c, spec);
    });
}

int batch_next(sqlite3_vtab_cursor* cur) noexcept {
    auto* c = static_cast<BatchCursor*>(cur);
    return guard(cur->pVtab, [&]() -> Status {
        ++c->rowid;
        if (++c->pos < c->rows.size()) {
            return Status::ok();
        }
        return next_chunk(c, static_cast<BatchTable*>(cur->pVtab)->spec);
    });
}

int batch_eof(sqlite3_vtab_cursor* cur) noexcept {
    const auto* c = static_cast<BatchCursor*>(cur);
    return c->pos >= c->rows.size() ? 1 : 0;
}

int batch_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) noexcept {
    const auto* c = static_cast<BatchCursor*>(cur);
    const OutRow& row = c->rows[c->pos];
    if (col < 0 || static_cast<std::size_t>(col) >= row.size()) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    result_value(ctx, row[static_cast<std::size_t>(col)]);
    return SQLITE_OK;
}

int batch_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
    *rowid = static_cast<BatchCursor*>(cur)->rowid;
    return SQLITE_OK;
}

// ---- engram_similar_batch ------------------------------------------------------------------

Status similar_bind(sqlite3_value** args, BatchArgs* out) {
    if (sqlite3_value_type(args[2]) != SQLITE_INTEGER || sqlite3_value_int64(args[2]) < 0) {
        return Status::invalid("engram_similar_batch argument k: expected an integer >= 0, got " +
                               quote_text(read_text(args[2])));
    }
    out->k = static_cast<std::size_t>(sqlite3_value_int64(args[2]));
    if (args[3] != nullptr) {
        const int ty = sqlite3_value_type(args[3]);
        const double d = sqlite3_value_double(args[3]);
        if ((ty != SQLITE_INTEGER && ty != SQLITE_FLOAT) || !std::isfinite(d)) {
            return Status::invalid(
                "engram_similar_batch argument threshold: expected a number, got " +
                quote_text(read_text(args[3])));
        }
        out->threshold = d;
    }
    out->ef = static_cast<std::size_t>(out->store->options().ef_search);
    if (args[4] != nullptr) {
        if (sqlite3_value_type(args[4]) != SQLITE_INTEGER || sqlite3_value_int64(args[4]) < 1) {
            return Status::invalid("engram_similar_batch argument ef: expected an integer >= 1, "
                                   "got " +
                                   quote_text(read_text(args[4])));
        }
        out->ef = static_cast<std::size_t>(sqlite3_value_int64(args[4]));
    }
    auto filter = parse_search_filter("engram_similar_batch argument filter",
                                      args[5] == nullptr ? InValue() : copy_value(args[5]));
    if (!filter) {
        return filter.status();
    }
    out->filter = std::move(filter.value());
    return Status::ok();
}

Status similar_process(const BatchArgs& a, std::vector<InRow>& inputs, std::vector<OutRow>* out) {
    const std::size_t dim = a.store->options().memory.dim;
    // One contiguous block of unit vectors: the store scores its unindexed tail for many
    // queries at once.
    std::vector<float> units(inputs.size() * dim);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const std::string name = "engram_similar_batch query " + describe(inputs[i][0]);
        auto v = in_vector(inputs[i][1], name + ", embedding");
        if (!v) {
            return v.status();
        }
        if (v->size() != dim) {
            return Status::invalid(name + ", embedding: expected " + std::to_string(dim) +
                                   " dimensions, got " + std::to_string(v->size()));
        }
        float* u = units.data() + i * dim;
        std::copy(v->begin(), v->end(), u);
        engine::simd::kernels().normalize(u, dim);
    }
    std::vector<db::SharedStore::Hits> results;
    a.store->search_batch(units.data(), inputs.size(), dim, a.k, static_cast<float>(a.threshold),
                          a.ef, a.filter ? &*a.filter : nullptr, &results);
    for (std::size_t q = 0; q < results.size(); ++q) {
        std::int64_t rank = 0;
        for (auto& [id, score] : results[q]) {
            out->push_back(OutRow{to_out(inputs[q][0]), ++rank, std::move(id),
                                  static_cast<double>(std::max(0.0F, score))});
        }
    }
    return Status::ok();
}

// ---- engram_recall_batch -------------------------------------------------------------------

Status recall_bind(sqlite3_value** /*args*/, BatchArgs* /*out*/) {
    return Status::ok();
}

Status recall_process(const BatchArgs& a, std::vector<InRow>& inputs, std::vector<OutRow>* out) {
    const std::size_t dim = a.store->options().memory.dim;
    // Parse every cue; a cue that does not parse gets an error row, the others still run.
    std::vector<engine::Cue> cues;
    std::vector<std::size_t> cue_row;
    std::vector<std::string> parse_error(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const InRow& r = inputs[i];
        auto cue = parse_cue("cue " + describe(r[0]), r[1], r[2], r[3], r[4], InValue(), dim);
        if (!cue) {
            parse_error[i] = cue.status().message();
            continue;
        }
        cues.push_back(std::move(cue.value()));
        cue_row.push_back(i);
    }
    auto results = a.store->recall(cues);
    std::vector<const Result<std::vector<std::pair<std::string, double>>>*> by_row(inputs.size(),
                                                                                   nullptr);
    for (std::size_t c = 0; c < cues.size(); ++c) {
        by_row[cue_row[c]] = &results[c];
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const OutValue id = to_out(inputs[i][0]);
        if (by_row[i] == nullptr || !*by_row[i]) {
            const std::string msg = by_row[i] == nullptr ? parse_error[i]
                                                         : "cue " + describe(inputs[i][0]) + ": " +
                                                               by_row[i]->status().message();
            out->push_back(OutRow{id, std::monostate{}, std::monostate{}, std::monostate{},
                                  std::string("error"), msg});
            continue;
        }
        std::int64_t rank = 0;
        for (const auto& [mid, conf] : by_row[i]->value()) {
            out->push_back(OutRow{id, ++rank, mid, conf, std::string("ok"), std::monostate{}});
        }
    }
    return Status::ok();
}

const BatchSpec kSimilarBatch = {
    "engram_similar_batch",
    "CREATE TABLE x(query_id, rank INTEGER, id TEXT, confidence REAL, store HIDDEN, sql HIDDEN, "
    "k HIDDEN, threshold HIDDEN, ef HIDDEN, filter HIDDEN)",
    4,
    {"store", "sql", "k", "threshold", "ef", "filter", nullptr},
    3,
    2,
    "query id, embedding",
    similar_bind,
    similar_process,
    -1,
};

const BatchSpec kRecallBatch = {
    "engram_recall_batch",
    "CREATE TABLE x(cue_id, rank INTEGER, id TEXT, confidence REAL, status TEXT, error TEXT, "
    "store HIDDEN, sql HIDDEN)",
    6,
    {"store", "sql", nullptr},
    2,
    5,
    "cue id, kind, value, threshold, max_results",
    recall_bind,
    recall_process,
    -1,
};

} // namespace

OutValue to_out(const InValue& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        return *i;
    }
    if (const auto* d = std::get_if<double>(&v)) {
        return *d;
    }
    if (const auto* t = std::get_if<InText>(&v)) {
        return t->text;
    }
    if (const auto* b = std::get_if<InBlob>(&v)) {
        return b->bytes;
    }
    return std::monostate{};
}

const BatchSpec* const* batch_specs() {
    static const BatchSpec* const specs[] = {&kSimilarBatch, &kRecallBatch, &kSpreadBatch, nullptr};
    return specs;
}

void* make_batch_aux(ConnectionContext* ctx, const BatchSpec* spec) {
    return std::make_unique<BatchAux>(BatchAux{ctx, spec}).release(); // freed by destroy_batch_aux
}

void destroy_batch_aux(void* aux) {
    std::unique_ptr<BatchAux> owned(static_cast<BatchAux*>(aux)); // from make_batch_aux
}

const sqlite3_module& batch_module() {
    static const sqlite3_module m = [] {
        sqlite3_module mod{};
        mod.xConnect = batch_connect;
        mod.xBestIndex = batch_best_index;
        mod.xDisconnect = batch_disconnect;
        mod.xDestroy = batch_disconnect;
        mod.xOpen = batch_open;
        mod.xClose = batch_close;
        mod.xFilter = batch_filter;
        mod.xNext = batch_next;
        mod.xEof = batch_eof;
        mod.xColumn = batch_column;
        mod.xRowid = batch_rowid;
        return mod;
    }();
    return m;
}

} // namespace engram::vtab
