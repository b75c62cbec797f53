// SQLite connections for the server and the CLI: every request becomes SQL on one of these.
//
// HOW IT WORKS
//   open_connection() opens the database file, enables extension loading only for the C API,
//   loads engram.so with sqlite3_load_extension and sets a busy timeout; nothing of Engram is
//   linked, so the SQL surface is the only contract. A Connection is used by one thread at a
//   time: the ConnectionPool leases connections to request and job threads (a lease returns the
//   connection on destruction) and opens a new one when none is idle. The extension shares one
//   open store per path between all connections of the process (its registry), so every
//   connection sees every committed transaction.
//
// Thread safety: Connection and Statement are not thread-safe; ConnectionPool is.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace engram::server {

// A failed SQLite call: the result code and sqlite3_errmsg at the time.
struct SqlError : std::runtime_error {
    int code;
    SqlError(int rc, const std::string& message) : std::runtime_error(message), code(rc) {}
};

struct StmtDeleter {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

// One prepared statement. step() returns true on a row, false when done, throws SqlError.
class Statement {
public:
    Statement(sqlite3* db, const std::string& sql);
    void bind_null(int i);
    void bind_int(int i, std::int64_t v);
    void bind_double(int i, double v);
    void bind_text(int i, const std::string& v);
    void bind_blob(int i, const void* data, std::size_t n);
    bool step();
    void reset(); // resets and clears the bindings
    int columns() const noexcept;
    std::string column_name(int i) const;
    bool is_null(int i) const;
    int column_type(int i) const;
    std::int64_t int_at(int i) const;
    double double_at(int i) const;
    std::string text_at(int i) const;
    sqlite3_stmt* get() const noexcept { return stmt_.get(); }

private:
    sqlite3* db_;
    std::unique_ptr<sqlite3_stmt, StmtDeleter> stmt_;
};

class Connection {
public:
    // Opens `db_path` (created when missing) and loads the extension at `extension_path`.
    // Throws SqlError naming the file when either fails.
    Connection(const std::string& db_path, const std::string& extension_path);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    sqlite3* get() const noexcept { return db_; }
    void exec(const std::string& sql); // throws SqlError
    // The engram tables of the main schema, in name order.
    std::vector<std::string> engram_tables();
    bool in_transaction() const noexcept;
    // Rolls back an open transaction, ignoring errors (cleanup after a failure).
    void rollback_quietly() noexcept;

private:
    sqlite3* db_ = nullptr;
};

// The extension beside the running binary (build/engram → build/engram.so), or $ENGRAM_EXTENSION.
std::string default_extension_path();

// True for a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 128 characters): table names
// from requests are checked with it before they are spliced into SQL text.
bool is_identifier(const std::string& s);

// A single-quoted SQL string literal.
std::string sql_quote(const std::string& s);

class ConnectionPool {
public:
    ConnectionPool(std::string db_path, std::string extension_path);

    class Lease {
    public:
        Lease(ConnectionPool* pool, std::unique_ptr<Connection> c)
            : pool_(pool), conn_(std::move(c)) {}
        Lease(Lease&&) = default;
        Lease& operator=(Lease&&) = delete;
        Lease(const Lease&) = delete;
        ~Lease();
        Connection& operator*() const noexcept { return *conn_; }
        Connection* operator->() const noexcept { return conn_.get(); }

    private:
        ConnectionPool* pool_;
        std::unique_ptr<Connection> conn_;
    };

    // A connection for this thread's exclusive use until the lease ends.
    Lease acquire();
    std::size_t opened() const;

private:
    void give_back(std::unique_ptr<Connection> c) noexcept;
    std::string db_path_;
    std::string extension_path_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::size_t opened_ = 0;
};

} // namespace engram::server
