// Batch operations over HTTP, turned into SQL on the engram tables.
//
// HOW IT WORKS
//   parse_operations_request() checks the request's shape (table name, a list of operations,
//   each an object with exactly one of store / recall / similarity) and throws ApiError (4xx,
//   naming the field and the operation index) before anything runs. execute_operations() then
//   runs it on leased connections:
//     1. every store operation of the request is one INSERT inside one transaction (BEGIN ..
//        COMMIT = one batch, so batch ≡ sequential holds as in SQL); a row the extension
//        rejects fails alone (SQLite rolls back that statement only) and becomes that
//        operation's error result — partial success, never a failed request. The server holds
//        its writer lock around the transaction (SQLite has one writer per database file).
//        During COMMIT a watcher polls engram_stats on another connection for progress.
//     2. results are emitted in operation order: a store's outcome (activation and tier read
//        back by id; absent = skipped as a duplicate) and, after the commit, each recall or
//        similarity query run through engram_recall / engram_similar, so reads see the request's
//        own stores.
//   similarity_batch() and recall_batch() feed many queries to engram_similar_batch /
//   engram_recall_batch: the queries travel as a JSON literal read by json_each in the SQL text
//   the batch function runs, so no temporary table is needed and the connection stays stateless.
//
// Thread safety: the functions are reentrant; state shared between requests is the pool, the
// writer mutex and the metrics, all thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/metrics.hpp"
#include "server/sql.hpp"

namespace engram::server {

using Json = nlohmann::json;

// An error reply: HTTP status and {"error": {"code", "message", "operation", "field"}}.
struct ApiError : std::runtime_error {
    int status;
    std::string code;
    std::optional<std::size_t> operation;
    std::string field;
    ApiError(int st, std::string c, const std::string& message,
             std::optional<std::size_t> op = std::nullopt, std::string f = {})
        : std::runtime_error(message), status(st), code(std::move(c)), operation(op),
          field(std::move(f)) {}
    Json to_json() const;
};

// An error of one field of one operation (or one input row), found before its SQL runs.
struct FieldError : std::runtime_error {
    std::string field;
    FieldError(std::string f, const std::string& message)
        : std::runtime_error(f + ": " + message), field(std::move(f)) {}
};

// INSERTs episodes given as JSON objects (the fields of a store operation) into one table,
// keeping one prepared statement per (conflict clause, column set). Used inside a transaction
// the caller opens. insert() returns the episode's id; throws FieldError (a field of the wrong
// JSON type, an unknown field, no id) or SqlError (the extension rejected the row; nothing of
// the row is kept, the transaction goes on).
class EpisodeInserter {
public:
    EpisodeInserter(Connection& conn, std::string table);
    ~EpisodeInserter();
    std::string insert(const Json& episode, const std::string& field_prefix);
    // An episode with only an id and a float32 embedding (npy / fvecs rows).
    void insert_vector(const std::string& id, const float* v, std::size_t dim);

private:
    Connection& conn_;
    std::string table_;
    std::map<std::string, std::unique_ptr<Statement>> cache_;
    std::unique_ptr<Statement> vector_stmt_;
};

enum class OpKind { Store, Recall, Similarity };

struct Operation {
    OpKind kind;
    Json body; // the object under "store" / "recall" / "similarity"
};

struct OperationsRequest {
    std::string table;
    std::vector<Operation> operations;
    bool stream = false; // stream_response
    bool detach = false; // reply 202 with a job id at once; follow with GET /batch/stream
    // Most memory the server may hold for this request's results: the size of a one-document
    // reply, or the unsent events of a stream before its job pauses. Default: 64.
    std::size_t memory_limit_mb = 64;
};

// Parses and checks a POST /batch/operations body. Throws ApiError.
OperationsRequest parse_operations_request(Json body);

// Throws ApiError 404 when `table` is not an engram table of the database, 400 when it is not
// a plain identifier; `field` names where it came from.
void check_table(Connection& conn, const std::string& table, const std::string& field);

// Where execute_operations() sends its output, in order.
struct ResultSink {
    virtual ~ResultSink() = default;
    // One operation's result, in operation order.
    virtual void result(std::size_t index, const Json& result) = 0;
    // Commit progress (rows applied, rate); called about every 100 ms during a COMMIT.
    virtual void progress(const Json& progress) = 0;
};

struct ServerState {
    ConnectionPool* pool = nullptr;
    Metrics* metrics = nullptr;
    std::mutex* writer = nullptr; // one write transaction at a time (SQLite's own rule)
};

// Runs the operations; returns the batch report. Per-operation failures are results.
Json execute_operations(ServerState& state, const OperationsRequest& req, ResultSink& sink);

// POST /batch/similarity and POST /batch/recall bodies → {"results": [...]} in query order.
Json similarity_batch(ServerState& state, const Json& body);
Json recall_batch(ServerState& state, const Json& body);

// A parsed JSON body, or ApiError 400 naming the position of the syntax error.
Json parse_body(const std::string& body);

} // namespace engram::server
