// Batch operations as SQL: store transactions, recall and similarity (see operations.hpp).
#include "server/operations.hpp"

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string_view>
#include <thread>

namespace engram::server {

using Clock = std::chrono::steady_clock;

Json ApiError::to_json() const {
    Json e = {{"code", code}, {"message", what()}};
    e["operation"] = operation ? Json(*operation) : Json(nullptr);
    if (!field.empty()) {
        e["field"] = field;
    }
    return Json{{"error", e}};
}

Json parse_body(const std::string& body) {
    try {
        return Json::parse(body);
    } catch (const Json::parse_error& e) {
        throw ApiError(400, "invalid_json",
                       "the request body is not valid JSON (at byte " + std::to_string(e.byte) +
                           ")");
    }
}

namespace {

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string op_field(std::size_t i) {
    return "operations[" + std::to_string(i) + "]";
}

const char* kind_name(OpKind k) {
    switch (k) {
    case OpKind::Store:
        return "store";
    case OpKind::Recall:
        return "recall";
    case OpKind::Similarity:
        return "similarity";
    }
    return "?";
}

std::string type_name(const Json& v) {
    return v.type_name();
}

// The per-operation error code of a failed SQLite call.
std::string sql_code(int rc) {
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return "constraint";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return "busy";
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
        return "storage";
    case SQLITE_NOMEM:
        return "out_of_memory";
    default:
        return "invalid";
    }
}

// The field an extension message names ("column confidence", "argument k"), under `base`.
std::string field_of_message(const std::string& base, const std::string& message) {
    static const std::regex re("(?:column|argument) ([a-z_]+)");
    std::smatch m;
    if (std::regex_search(message, m, re)) {
        return base + "." + m[1].str();
    }
    return base;
}

Json error_result(std::size_t index, const std::string& code, const std::string& message,
                  const std::string& field) {
    Json e = {{"code", code}, {"message", message}, {"operation", index}};
    if (!field.empty()) {
        e["field"] = field;
    }
    return Json{{"operation", index}, {"status", "error"}, {"error", e}};
}

} // namespace

OperationsRequest parse_operations_request(Json body) {
    if (!body.is_object()) {
        throw ApiError(400, "invalid_request",
                       "the request body must be a JSON object, got " + type_name(body));
    }
    static const std::set<std::string> kFields = {"table", "operations", "stream_response",
                                                  "detach", "memory_limit_mb"};
    for (const auto& [k, v] : body.items()) {
        if (kFields.count(k) == 0) {
            throw ApiError(400, "unknown_field",
                           "unknown field '" + k +
                               "' (expected table, operations, stream_response, detach, "
                               "memory_limit_mb)",
                           std::nullopt, k);
        }
    }
    OperationsRequest req;
    if (!body.contains("table") || !body["table"].is_string()) {
        throw ApiError(400, "invalid_field",
                       "table: expected the name of an engram table (a string)", std::nullopt,
                       "table");
    }
    req.table = body["table"].get<std::string>();
    if (!body.contains("operations") || !body["operations"].is_array()) {
        throw ApiError(400, "invalid_field", "operations: expected a list of operations",
                       std::nullopt, "operations");
    }
    Json& ops = body["operations"];
    req.operations.reserve(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
        Json& op = ops[i];
        const std::string f = op_field(i);
        if (!op.is_object() || op.size() != 1) {
            throw ApiError(400, "invalid_operation",
                           f + ": expected an object with one of store, recall, similarity", i, f);
        }
        const std::string key = op.begin().key();
        Json& value = op.begin().value();
        Operation o{};
        if (key == "store") {
            o.kind = OpKind::Store;
        } else if (key == "recall") {
            o.kind = OpKind::Recall;
        } else if (key == "similarity") {
            o.kind = OpKind::Similarity;
        } else {
            throw ApiError(400, "invalid_operation",
                           f + ": unknown operation '" + key +
                               "' (expected store, recall or similarity)",
                           i, f);
        }
        if (!value.is_object()) {
            throw ApiError(400, "invalid_operation",
                           f + "." + key + ": expected an object, got " + type_name(value), i,
                           f + "." + key);
        }
        o.body = std::move(value); // 1000-store requests: no copy of the vectors
        req.operations.push_back(std::move(o));
    }
    if (body.contains("stream_response")) {
        if (!body["stream_response"].is_boolean()) {
            throw ApiError(400, "invalid_field", "stream_response: expected true or false",
                           std::nullopt, "stream_response");
        }
        req.stream = body["stream_response"].get<bool>();
    }
    if (body.contains("detach")) {
        if (!body["detach"].is_boolean()) {
            throw ApiError(400, "invalid_field", "detach: expected true or false", std::nullopt,
                           "detach");
        }
        req.detach = body["detach"].get<bool>();
    }
    if (body.contains("memory_limit_mb")) {
        const Json& m = body["memory_limit_mb"];
        if (!m.is_number_integer() || m.get<std::int64_t>() < 1 || m.get<std::int64_t>() > 65536) {
            throw ApiError(400, "invalid_field",
                           "memory_limit_mb: expected an integer in [1, 65536], got " + m.dump(),
                           std::nullopt, "memory_limit_mb");
        }
        req.memory_limit_mb = m.get<std::size_t>();
    }
    return req;
}

void check_table(Connection& conn, const std::string& table, const std::string& field) {
    if (!is_identifier(table)) {
        throw ApiError(400, "invalid_field", field + ": '" + table + "' is not a valid table name",
                       std::nullopt, field);
    }
    for (const std::string& t : conn.engram_tables()) {
        if (t == table) {
            return;
        }
    }
    throw ApiError(404, "unknown_table", field + ": no such engram table: '" + table + "'",
                   std::nullopt, field);
}

namespace {

// ---- store ---------------------------------------------------------------------------------

enum class FieldType { Text, Number, JsonText, Time };

struct StoreField {
    const char* name;
    FieldType type;
};

constexpr StoreField kStoreFields[] = {
    {"id", FieldType::Text},
    {"what", FieldType::Text},
    {"embedding", FieldType::JsonText},
    {"occurred_at", FieldType::Time},
    {"location", FieldType::Text},
    {"who", FieldType::JsonText},
    {"confidence", FieldType::Number},
    {"vividness", FieldType::Number},
    {"reliability", FieldType::Number},
    {"metadata", FieldType::JsonText},
};

// Binds one JSON value for a column; throws FieldError when its JSON type does not fit.
void bind_field(Statement& s, int slot, const StoreField& f, const Json& v,
                const std::string& field) {
    if (v.is_null()) {
        s.bind_null(slot);
        return;
    }
    switch (f.type) {
    case FieldType::Text:
        if (!v.is_string()) {
            throw FieldError(field, "expected a string, got " + type_name(v));
        }
        s.bind_text(slot, v.get<std::string>());
        return;
    case FieldType::Number:
        if (!v.is_number()) {
            throw FieldError(field, "expected a number, got " + type_name(v));
        }
        if (v.is_number_integer()) {
            s.bind_int(slot, v.get<std::int64_t>());
        } else {
            s.bind_double(slot, v.get<double>());
        }
        return;
    case FieldType::Time:
        if (v.is_number_integer()) {
            s.bind_int(slot, v.get<std::int64_t>());
        } else if (v.is_number()) {
            s.bind_double(slot, v.get<double>());
        } else if (v.is_string()) {
            s.bind_text(slot, v.get<std::string>());
        } else {
            throw FieldError(field,
                             "expected unix seconds or an ISO-8601 string, got " + type_name(v));
        }
        return;
    case FieldType::JsonText:
        // An embedding of numbers travels as a float32 blob (no JSON text to write and parse
        // again); anything else goes as JSON text and the extension judges it.
        if (f.name == std::string_view("embedding") && v.is_array() && !v.empty()) {
            std::vector<float> blob;
            blob.reserve(v.size());
            for (const Json& x : v) {
                if (!x.is_number()) {
                    blob.clear();
                    break;
                }
                blob.push_back(x.get<float>());
            }
            if (blob.size() == v.size()) {
                s.bind_blob(slot, blob.data(), blob.size() * sizeof(float));
                return;
            }
        }
        // Arrays and objects go to the extension as JSON text, which it validates; a string
        // is taken as JSON text already.
        if (v.is_string()) {
            s.bind_text(slot, v.get<std::string>());
        } else if (v.is_array() || v.is_object()) {
            s.bind_text(slot, v.dump());
        } else {
            throw FieldError(field, "expected a JSON array or object, got " + type_name(v));
        }
        return;
    }
}

} // namespace

EpisodeInserter::EpisodeInserter(Connection& conn, std::string table)
    : conn_(conn), table_(std::move(table)) {}

EpisodeInserter::~EpisodeInserter() = default;

std::string EpisodeInserter::insert(const Json& store, const std::string& base) {
    std::string conflict;
    std::vector<const StoreField*> cols;
    std::string key;
    for (const auto& [k, v] : store.items()) {
        if (k == "on_conflict") {
            if (!v.is_string() || (v != "abort" && v != "replace" && v != "ignore")) {
                throw FieldError(base + ".on_conflict",
                                 "expected \"abort\", \"replace\" or \"ignore\", got " + v.dump());
            }
            conflict = v == "abort" ? "" : v.get<std::string>();
            continue;
        }
        const StoreField* f = nullptr;
        for (const StoreField& sf : kStoreFields) {
            if (k == sf.name) {
                f = &sf;
            }
        }
        if (f == nullptr) {
            throw FieldError(base + "." + k,
                             "unknown field (expected id, what, embedding, occurred_at, "
                             "location, who, confidence, vividness, reliability, metadata, "
                             "on_conflict)");
        }
        cols.push_back(f);
    }
    if (!store.contains("id")) {
        throw FieldError(base + ".id", "missing (every episode needs an id)");
    }
    if (!store["id"].is_string()) {
        throw FieldError(base + ".id", "expected a string, got " + type_name(store["id"]));
    }
    key = conflict + ":";
    for (const StoreField* f : cols) {
        key += f->name;
        key += ',';
    }
    auto& stmt = cache_[key];
    if (!stmt) {
        std::string sql = "INSERT ";
        if (!conflict.empty()) {
            sql += conflict == "replace" ? "OR REPLACE " : "OR IGNORE ";
        }
        sql += "INTO \"" + table_ + "\"(";
        std::string params;
        for (std::size_t i = 0; i < cols.size(); ++i) {
            sql += (i ? ", " : "") + std::string(cols[i]->name);
            params += (i ? ", ?" : "?") + std::to_string(i + 1);
        }
        sql += ") VALUES (" + params + ")";
        stmt = std::make_unique<Statement>(conn_.get(), sql);
    }
    stmt->reset();
    for (std::size_t i = 0; i < cols.size(); ++i) {
        bind_field(*stmt, static_cast<int>(i + 1), *cols[i], store[cols[i]->name],
                   base + "." + cols[i]->name);
    }
    stmt->step();
    stmt->reset();
    return store["id"].get<std::string>();
}

void EpisodeInserter::insert_vector(const std::string& id, const float* v, std::size_t dim) {
    if (!vector_stmt_) {
        vector_stmt_ = std::make_unique<Statement>(
            conn_.get(), "INSERT INTO \"" + table_ + "\"(id, embedding) VALUES (?1, ?2)");
    }
    vector_stmt_->reset();
    vector_stmt_->bind_text(1, id);
    vector_stmt_->bind_blob(2, v, dim * sizeof(float)); // float32, little-endian on x86-64
    vector_stmt_->step();
    vector_stmt_->reset();
}

namespace {

// Polls engram_stats on its own connection while a COMMIT runs, reporting its progress.
class CommitWatcher {
public:
    CommitWatcher(ServerState& state, const std::string& table, ResultSink& sink, std::size_t rows)
        : thread_([this, &state, table, &sink, rows] {
              try {
                  auto conn = state.pool->acquire();
                  Statement s(conn->get(),
                              "SELECT committing, applied, rate FROM engram_stats(?1)");
                  const auto t0 = Clock::now();
                  std::unique_lock<std::mutex> lock(mutex_);
                  while (!stop_) {
                      cv_.wait_for(lock, std::chrono::milliseconds(100));
                      if (stop_) {
                          break;
                      }
                      s.reset();
                      s.bind_text(1, table);
                      if (s.step()) {
                          sink.progress(Json{{"phase", "commit"},
                                             {"rows", rows},
                                             {"committing", s.int_at(0)},
                                             {"applied", s.int_at(1)},
                                             {"rate", s.double_at(2)},
                                             {"elapsed_ms", seconds_since(t0) * 1000}});
                      }
                      s.reset();
                  }
              } catch (const std::exception&) {
                  // Progress is advisory: a failed poll only means fewer progress events.
              }
          }) {}
    ~CommitWatcher() {
        {
            std::lock_guard<std::mutex> g(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    CommitWatcher(const CommitWatcher&) = delete;
    CommitWatcher& operator=(const CommitWatcher&) = delete;

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_; // last: starts after the members it uses
};

struct StoreState {
    std::vector<Json> results; // by operation index (only stores filled)
    std::vector<std::string> ids;
    std::vector<bool> inserted;
};

Json run_stores(ServerState& state, const OperationsRequest& req, ResultSink& sink, StoreState* out,
                bool want_progress) {
    const std::size_t n = req.operations.size();
    out->results.assign(n, Json());
    out->ids.assign(n, std::string());
    out->inserted.assign(n, false);
    std::size_t stores = 0;
    for (const Operation& op : req.operations) {
        stores += op.kind == OpKind::Store ? 1 : 0;
    }
    Json report = {{"stores", stores}, {"stored", 0}, {"skipped", 0}, {"failed", 0}};
    if (stores == 0) {
        return report;
    }
    std::lock_guard<std::mutex> writer(*state.writer);
    auto conn = state.pool->acquire();
    const auto t0 = Clock::now();
    std::int64_t batch_before = 0;
    {
        Statement s(conn->get(), "SELECT coalesce(max(batch), 0) FROM engram_batches(?1)");
        s.bind_text(1, req.table);
        if (s.step()) {
            batch_before = s.int_at(0);
        }
    }
    conn->exec("BEGIN");
    EpisodeInserter inserts(*conn, req.table);
    std::size_t done = 0;
    std::size_t ok = 0;
    auto last_progress = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        const Operation& op = req.operations[i];
        if (op.kind != OpKind::Store) {
            continue;
        }
        const std::string base = op_field(i) + ".store";
        try {
            out->ids[i] = inserts.insert(op.body, base);
            out->inserted[i] = true;
            ++ok;
        } catch (const FieldError& e) {
            out->results[i] = error_result(i, "invalid_field", e.what(), e.field);
        } catch (const SqlError& e) {
            out->results[i] =
                error_result(i, sql_code(e.code), e.what(), field_of_message(base, e.what()));
        }
        ++done;
        if (want_progress && Clock::now() - last_progress > std::chrono::milliseconds(100)) {
            last_progress = Clock::now();
            sink.progress(Json{{"phase", "insert"}, {"rows", stores}, {"inserted", done}});
        }
    }
    std::string commit_error;
    const auto tc = Clock::now();
    try {
        if (want_progress) {
            CommitWatcher watcher(state, req.table, sink, ok);
            conn->exec("COMMIT");
        } else {
            conn->exec("COMMIT");
        }
    } catch (const SqlError& e) {
        commit_error = e.what();
        conn->rollback_quietly();
    }
    const double commit_s = seconds_since(tc);
    const double total_s = seconds_since(t0);
    std::size_t stored = 0, skipped = 0, failed = 0;
    // Read back what each stored episode became; absent = skipped as a duplicate.
    std::map<std::string, std::pair<double, std::string>> found;
    if (commit_error.empty() && ok > 0) {
        std::vector<std::string> ids;
        for (std::size_t i = 0; i < n; ++i) {
            if (out->inserted[i]) {
                ids.push_back(out->ids[i]);
            }
        }
        constexpr std::size_t kIn = 256;
        std::string sql = "SELECT id, activation, tier FROM \"" + req.table + "\" WHERE id IN (";
        for (std::size_t j = 0; j < kIn; ++j) {
            sql += j ? ",?" : "?";
        }
        sql += ")";
        Statement s(conn->get(), sql);
        for (std::size_t start = 0; start < ids.size(); start += kIn) {
            s.reset();
            for (std::size_t j = 0; j < kIn; ++j) {
                // Unused slots repeat the first id of the chunk.
                const std::size_t k = start + j < ids.size() ? start + j : start;
                s.bind_text(static_cast<int>(j + 1), ids[k]);
            }
            while (s.step()) {
                found[s.text_at(0)] = {s.double_at(1), s.text_at(2)};
            }
        }
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (req.operations[i].kind != OpKind::Store) {
            continue;
        }
        if (!out->inserted[i]) {
            ++failed;
            continue;
        }
        if (!commit_error.empty()) {
            out->results[i] =
                error_result(i, "commit_failed", "COMMIT failed: " + commit_error, op_field(i));
            ++failed;
            continue;
        }
        Json r = {{"id", out->ids[i]}};
        auto it = found.find(out->ids[i]);
        if (it == found.end()) {
            r["outcome"] = "skipped";
            ++skipped;
        } else {
            r["outcome"] = "stored";
            r["activation"] = it->second.first;
            r["tier"] = it->second.second;
            ++stored;
        }
        out->results[i] = Json{{"operation", i}, {"status", "ok"}, {"store", r}};
    }
    report["stored"] = stored;
    report["skipped"] = skipped;
    report["failed"] = failed;
    report["commit_ms"] = commit_s * 1000;
    report["transaction_ms"] = total_s * 1000;
    if (!commit_error.empty()) {
        report["commit_error"] = commit_error;
    } else {
        Statement s(conn->get(),
                    "SELECT batch, size, successful, degraded, deduplicated, evicted, ms, "
                    "peak_pressure FROM engram_batches(?1) WHERE batch > ?2 ORDER BY batch");
        s.bind_text(1, req.table);
        s.bind_int(2, batch_before);
        if (s.step()) {
            report["batch"] =
                Json{{"batch", s.int_at(0)},        {"size", s.int_at(1)},
                     {"successful", s.int_at(2)},   {"degraded", s.int_at(3)},
                     {"deduplicated", s.int_at(4)}, {"evicted", s.int_at(5)},
                     {"ms", s.double_at(6)},        {"peak_pressure", s.double_at(7)}};
        }
    }
    state.metrics->commit(req.table, total_s, stored + skipped, failed);
    return report;
}

// ---- reads ---------------------------------------------------------------------------------

void bind_value_text(Statement& s, int slot, const Json& v) {
    if (v.is_string()) {
        s.bind_text(slot, v.get<std::string>());
    } else {
        s.bind_text(slot, v.dump());
    }
}

void check_fields(const Json& body, const std::string& base,
                  std::initializer_list<const char*> allowed) {
    for (const auto& [k, v] : body.items()) {
        bool known = false;
        for (const char* a : allowed) {
            known = known || k == a;
        }
        if (!known) {
            std::string list;
            for (const char* a : allowed) {
                list += (list.empty() ? "" : ", ") + std::string(a);
            }
            throw FieldError(base + "." + k, "unknown field (expected " + list + ")");
        }
    }
}

std::int64_t int_field(const Json& body, const char* name, const std::string& base,
                       std::int64_t dflt, std::int64_t lo) {
    if (!body.contains(name) || body[name].is_null()) {
        return dflt;
    }
    const Json& v = body[name];
    if (!v.is_number_integer() || v.get<std::int64_t>() < lo) {
        throw FieldError(base + "." + name,
                         "expected an integer >= " + std::to_string(lo) + ", got " + v.dump());
    }
    return v.get<std::int64_t>();
}

double number_field(const Json& body, const char* name, const std::string& base, double dflt) {
    if (!body.contains(name) || body[name].is_null()) {
        return dflt;
    }
    const Json& v = body[name];
    if (!v.is_number()) {
        throw FieldError(base + "." + name, "expected a number, got " + v.dump());
    }
    return v.get<double>();
}

Json hits(Statement& s) {
    Json out = Json::array();
    while (s.step()) {
        out.push_back(
            Json{{"rank", s.int_at(0)}, {"id", s.text_at(1)}, {"confidence", s.double_at(2)}});
    }
    return out;
}

// The table's ef_search option from its CREATE statement (64 when not set).
std::int64_t table_ef(Connection& conn, const std::string& table) {
    Statement s(conn.get(), "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1");
    s.bind_text(1, table);
    if (s.step()) {
        static const std::regex re("ef_search\\s*=\\s*'?([0-9]+)");
        std::smatch m;
        const std::string sql = s.text_at(0);
        if (std::regex_search(sql, m, re)) {
            return std::stoll(m[1].str());
        }
    }
    return 64;
}

Json run_read(Connection& conn, const std::string& table, const Operation& op, std::size_t i) {
    const std::string base = op_field(i) + "." + kind_name(op.kind);
    const Json& b = op.body;
    if (op.kind == OpKind::Recall) {
        check_fields(b, base, {"kind", "value", "threshold", "max_results", "tiers"});
        if (!b.contains("kind") || !b["kind"].is_string()) {
            throw FieldError(base + ".kind",
                             "expected one of \"embedding\", \"semantic\", \"context\", "
                             "\"temporal\"");
        }
        if (!b.contains("value") || b["value"].is_null()) {
            throw FieldError(base + ".value", "missing (the cue)");
        }
        const double threshold = number_field(b, "threshold", base, 0.0);
        const std::int64_t max_results = int_field(b, "max_results", base, 10, 0);
        std::string tiers = "hot";
        if (b.contains("tiers")) {
            if (!b["tiers"].is_string() || (b["tiers"] != "hot" && b["tiers"] != "all")) {
                throw FieldError(base + ".tiers",
                                 "expected \"hot\" or \"all\", got " + b["tiers"].dump());
            }
            tiers = b["tiers"].get<std::string>();
        }
        Statement s(conn.get(), "SELECT rank, id, confidence FROM engram_recall(?1, ?2, ?3, ?4, "
                                "?5, ?6)");
        s.bind_text(1, table);
        s.bind_text(2, b["kind"].get<std::string>());
        bind_value_text(s, 3, b["value"]);
        s.bind_double(4, threshold);
        s.bind_int(5, max_results);
        s.bind_text(6, tiers);
        return Json{{"operation", i}, {"status", "ok"}, {"results", hits(s)}};
    }
    check_fields(b, base, {"embedding", "k", "threshold", "ef", "filter"});
    if (!b.contains("embedding") || !(b["embedding"].is_array() || b["embedding"].is_string())) {
        throw FieldError(base + ".embedding", "expected a JSON array of numbers");
    }
    const std::int64_t k = int_field(b, "k", base, 10, 0);
    const double threshold = number_field(b, "threshold", base, 0.0);
    const bool has_filter = b.contains("filter") && !b["filter"].is_null();
    if (has_filter && !(b["filter"].is_object() || b["filter"].is_string())) {
        throw FieldError(base + ".filter", "expected a JSON object, got " + b["filter"].dump());
    }
    const std::int64_t ef = int_field(b, "ef", base, has_filter ? table_ef(conn, table) : 0, 1);
    std::string sql = "SELECT rank, id, confidence FROM engram_similar(?1, ?2, ?3, ?4";
    sql += ef > 0 ? ", ?5" : "";
    sql += has_filter ? ", ?6)" : ")";
    Statement s(conn.get(), sql);
    s.bind_text(1, table);
    bind_value_text(s, 2, b["embedding"]);
    s.bind_int(3, k);
    s.bind_double(4, threshold);
    if (ef > 0) {
        s.bind_int(5, ef);
    }
    if (has_filter) {
        bind_value_text(s, 6, b["filter"]);
    }
    return Json{{"operation", i}, {"status", "ok"}, {"results", hits(s)}};
}

} // namespace

Json execute_operations(ServerState& state, const OperationsRequest& req, ResultSink& sink) {
    const auto t0 = Clock::now();
    {
        auto conn = state.pool->acquire();
        check_table(*conn, req.table, "table");
    }
    StoreState stores;
    Json store_report = run_stores(state, req, sink, &stores, req.stream || req.detach);
    std::size_t succeeded = 0;
    std::size_t failed = 0;
    std::map<std::string, std::pair<std::size_t, std::size_t>> per_kind; // ok, failed
    std::optional<ConnectionPool::Lease> reader;
    for (std::size_t i = 0; i < req.operations.size(); ++i) {
        const Operation& op = req.operations[i];
        Json r;
        if (op.kind == OpKind::Store) {
            r = std::move(stores.results[i]);
        } else {
            if (!reader) {
                reader.emplace(state.pool->acquire());
            }
            const auto tq = Clock::now();
            const std::string base = op_field(i) + "." + kind_name(op.kind);
            try {
                r = run_read(**reader, req.table, op, i);
            } catch (const FieldError& e) {
                r = error_result(i, "invalid_field", e.what(), e.field);
            } catch (const SqlError& e) {
                r = error_result(i, sql_code(e.code), e.what(), field_of_message(base, e.what()));
            }
            const bool ok = r["status"] == "ok";
            state.metrics->query(req.table, kind_name(op.kind), seconds_since(tq), 1, ok ? 0 : 1);
        }
        auto& k = per_kind[kind_name(op.kind)];
        if (r["status"] == "ok") {
            ++succeeded;
            ++k.first;
        } else {
            ++failed;
            ++k.second;
        }
        sink.result(i, r);
    }
    Json report = {{"table", req.table},     {"operations", req.operations.size()},
                   {"succeeded", succeeded}, {"failed", failed},
                   {"store", store_report},  {"elapsed_ms", seconds_since(t0) * 1000}};
    return report;
}

// ---- batch endpoints -----------------------------------------------------------------------

namespace {

void check_body_fields(const Json& body, std::initializer_list<const char*> allowed) {
    if (!body.is_object()) {
        throw ApiError(400, "invalid_request",
                       "the request body must be a JSON object, got " + type_name(body));
    }
    for (const auto& [k, v] : body.items()) {
        bool known = false;
        std::string list;
        for (const char* a : allowed) {
            known = known || k == a;
            list += (list.empty() ? "" : ", ") + std::string(a);
        }
        if (!known) {
            throw ApiError(400, "unknown_field",
                           "unknown field '" + k + "' (expected " + list + ")", std::nullopt, k);
        }
    }
}

std::string body_table(const Json& body) {
    if (!body.contains("table") || !body["table"].is_string()) {
        throw ApiError(400, "invalid_field",
                       "table: expected the name of an engram table (a string)", std::nullopt,
                       "table");
    }
    return body["table"].get<std::string>();
}

// The index in "… query 12, …" / "cue 12: …" messages of the batch functions.
std::optional<std::size_t> index_in_message(const std::string& message, const char* word) {
    const std::regex re(std::string(word) + " ([0-9]+)");
    std::smatch m;
    if (std::regex_search(message, m, re)) {
        return static_cast<std::size_t>(std::stoull(m[1].str()));
    }
    return std::nullopt;
}

template <typename F> auto api_field(F&& f) {
    try {
        return f();
    } catch (const FieldError& e) {
        throw ApiError(400, "invalid_field", e.what(), std::nullopt, e.field);
    }
}

} // namespace

Json similarity_batch(ServerState& state, const Json& body) {
    check_body_fields(body, {"table", "queries", "k", "threshold", "ef", "filter"});
    const std::string table = body_table(body);
    if (!body.contains("queries") || !body["queries"].is_array()) {
        throw ApiError(400, "invalid_field", "queries: expected a list of embeddings", std::nullopt,
                       "queries");
    }
    Json embeddings = Json::array();
    const Json& qs = body["queries"];
    for (std::size_t i = 0; i < qs.size(); ++i) {
        const Json& q = qs[i];
        const std::string f = "queries[" + std::to_string(i) + "]";
        if (q.is_array() || q.is_string()) {
            embeddings.push_back(q);
        } else if (q.is_object() && q.contains("embedding") &&
                   (q["embedding"].is_array() || q["embedding"].is_string()) && q.size() == 1) {
            embeddings.push_back(q["embedding"]);
        } else {
            throw ApiError(400, "invalid_field",
                           f + ": expected an embedding (a JSON array of numbers) or "
                               "{\"embedding\": [...]}",
                           i, f);
        }
    }
    auto conn = state.pool->acquire();
    check_table(*conn, table, "table");
    const bool has_filter = body.contains("filter") && !body["filter"].is_null();
    const std::int64_t k = api_field([&] { return int_field(body, "k", "", 10, 0); });
    const double threshold = api_field([&] { return number_field(body, "threshold", "", 0.0); });
    const std::int64_t ef = api_field(
        [&] { return int_field(body, "ef", "", has_filter ? table_ef(*conn, table) : 0, 1); });
    if (has_filter && !(body["filter"].is_object() || body["filter"].is_string())) {
        throw ApiError(400, "invalid_field", "filter: expected a JSON object", std::nullopt,
                       "filter");
    }
    std::string sql = "SELECT query_id, rank, id, confidence FROM engram_similar_batch(?1, ?2, "
                      "?3, ?4";
    sql += ef > 0 ? ", ?5" : "";
    sql += has_filter ? ", ?6)" : ")";
    const auto t0 = Clock::now();
    Json results = Json::array();
    for (std::size_t i = 0; i < embeddings.size(); ++i) {
        results.push_back(Json{{"query", i}, {"results", Json::array()}});
    }
    try {
        Statement s(conn->get(), sql);
        s.bind_text(1, table);
        s.bind_text(2, "SELECT key, value FROM json_each(" + sql_quote(embeddings.dump()) + ")");
        s.bind_int(3, k);
        s.bind_double(4, threshold);
        if (ef > 0) {
            s.bind_int(5, ef);
        }
        if (has_filter) {
            bind_value_text(s, 6, body["filter"]);
        }
        while (s.step()) {
            const auto q = static_cast<std::size_t>(s.int_at(0));
            results.at(q)["results"].push_back(
                Json{{"rank", s.int_at(1)}, {"id", s.text_at(2)}, {"confidence", s.double_at(3)}});
        }
    } catch (const SqlError& e) {
        state.metrics->query(table, "similarity", seconds_since(t0), embeddings.size(),
                             embeddings.size());
        const auto q = index_in_message(e.what(), "query");
        throw ApiError(400, sql_code(e.code), e.what(), q,
                       q ? "queries[" + std::to_string(*q) + "]" : std::string("queries"));
    }
    state.metrics->query(table, "similarity", seconds_since(t0), embeddings.size(), 0);
    return Json{{"table", table}, {"results", results}};
}

Json recall_batch(ServerState& state, const Json& body) {
    check_body_fields(body, {"table", "cues"});
    const std::string table = body_table(body);
    if (!body.contains("cues") || !body["cues"].is_array()) {
        throw ApiError(400, "invalid_field", "cues: expected a list of cues", std::nullopt, "cues");
    }
    const Json& cues = body["cues"];
    for (std::size_t i = 0; i < cues.size(); ++i) {
        const std::string f = "cues[" + std::to_string(i) + "]";
        if (!cues[i].is_object()) {
            throw ApiError(400, "invalid_field",
                           f + ": expected {\"kind\", \"value\", \"threshold\", \"max_results\"}",
                           i, f);
        }
        for (const auto& [k, v] : cues[i].items()) {
            if (k != "kind" && k != "value" && k != "threshold" && k != "max_results") {
                throw ApiError(400, "unknown_field",
                               f + "." + k +
                                   ": unknown field (expected kind, value, threshold, "
                                   "max_results)",
                               i, f + "." + k);
            }
        }
    }
    auto conn = state.pool->acquire();
    check_table(*conn, table, "table");
    const auto t0 = Clock::now();
    Json results = Json::array();
    for (std::size_t i = 0; i < cues.size(); ++i) {
        results.push_back(Json{{"cue", i}, {"status", "ok"}, {"results", Json::array()}});
    }
    std::size_t failed = 0;
    try {
        Statement s(conn->get(), "SELECT cue_id, rank, id, confidence, status, error FROM "
                                 "engram_recall_batch(?1, ?2)");
        s.bind_text(1, table);
        s.bind_text(2, "SELECT key, json_extract(value, '$.kind'), json_extract(value, '$.value'), "
                       "coalesce(json_extract(value, '$.threshold'), 0.0), "
                       "coalesce(json_extract(value, '$.max_results'), 10) FROM json_each(" +
                           sql_quote(cues.dump()) + ")");
        while (s.step()) {
            const auto c = static_cast<std::size_t>(s.int_at(0));
            Json& r = results.at(c);
            if (s.text_at(4) == "error") {
                ++failed;
                const std::string f = "cues[" + std::to_string(c) + "]";
                r = Json{{"cue", c},
                         {"status", "error"},
                         {"error", Json{{"code", "invalid"},
                                        {"message", s.text_at(5)},
                                        {"operation", c},
                                        {"field", field_of_message(f, s.text_at(5))}}}};
                continue;
            }
            r["results"].push_back(
                Json{{"rank", s.int_at(1)}, {"id", s.text_at(2)}, {"confidence", s.double_at(3)}});
        }
    } catch (const SqlError& e) {
        state.metrics->query(table, "recall", seconds_since(t0), cues.size(), cues.size());
        const auto c = index_in_message(e.what(), "cue");
        throw ApiError(400, sql_code(e.code), e.what(), c,
                       c ? "cues[" + std::to_string(*c) + "]" : std::string("cues"));
    }
    state.metrics->query(table, "recall", seconds_since(t0), cues.size(), failed);
    return Json{{"table", table}, {"results", results}};
}

} // namespace engram::server
