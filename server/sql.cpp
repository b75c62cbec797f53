// SQLite connections, statements and the connection pool (see sql.hpp).
#include "server/sql.hpp"

#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <filesystem>

namespace engram::server {

Statement::Statement(sqlite3* db, const std::string& sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) {
        throw SqlError(rc, sqlite3_errmsg(db));
    }
    if (raw == nullptr) {
        throw SqlError(SQLITE_MISUSE, "empty SQL statement");
    }
}

namespace {
void check_bind(sqlite3* db, int rc) {
    if (rc != SQLITE_OK) {
        throw SqlError(rc, sqlite3_errmsg(db));
    }
}
} // namespace

void Statement::bind_null(int i) {
    check_bind(db_, sqlite3_bind_null(stmt_.get(), i));
}
void Statement::bind_int(int i, std::int64_t v) {
    check_bind(db_, sqlite3_bind_int64(stmt_.get(), i, v));
}
void Statement::bind_double(int i, double v) {
    check_bind(db_, sqlite3_bind_double(stmt_.get(), i, v));
}
void Statement::bind_text(int i, const std::string& v) {
    check_bind(db_, sqlite3_bind_text64(stmt_.get(), i, v.data(), v.size(), SQLITE_TRANSIENT,
                                        SQLITE_UTF8));
}
void Statement::bind_blob(int i, const void* data, std::size_t n) {
    check_bind(db_, sqlite3_bind_blob64(stmt_.get(), i, data, n, SQLITE_TRANSIENT));
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_.get());
    throw SqlError(rc, msg);
}

void Statement::reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
}

int Statement::columns() const noexcept {
    return sqlite3_column_count(stmt_.get());
}
std::string Statement::column_name(int i) const {
    const char* n = sqlite3_column_name(stmt_.get(), i);
    return n == nullptr ? std::string() : std::string(n);
}
bool Statement::is_null(int i) const {
    return sqlite3_column_type(stmt_.get(), i) == SQLITE_NULL;
}
int Statement::column_type(int i) const {
    return sqlite3_column_type(stmt_.get(), i);
}
std::int64_t Statement::int_at(int i) const {
    return sqlite3_column_int64(stmt_.get(), i);
}
double Statement::double_at(int i) const {
    return sqlite3_column_double(stmt_.get(), i);
}
std::string Statement::text_at(int i) const {
    const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), i));
    return t == nullptr
               ? std::string()
               : std::string(t, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), i)));
}

Connection::Connection(const std::string& db_path, const std::string& extension_path) {
    const int rc =
        sqlite3_open_v2(db_path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        const std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw SqlError(rc, "cannot open database '" + db_path + "': " + msg);
    }
    sqlite3_busy_timeout(db_, 30000);
    // Extension loading through the C API only (load_extension() stays off in SQL).
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, nullptr);
    char* err = nullptr;
    if (sqlite3_load_extension(db_, extension_path.c_str(), nullptr, &err) != SQLITE_OK) {
        const std::string msg = err != nullptr ? err : "unknown error";
        sqlite3_free(err);
        sqlite3_close(db_);
        db_ = nullptr;
        throw SqlError(SQLITE_ERROR,
                       "cannot load the engram extension '" + extension_path + "': " + msg);
    }
    sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
}

Connection::~Connection() {
    sqlite3_close_v2(db_); // statements are finalized by their owners first
}

void Connection::exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        const std::string msg = err != nullptr ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw SqlError(rc, msg);
    }
}

std::vector<std::string> Connection::engram_tables() {
    // `USING engram(` exactly: engram_edges tables are not stores.
    Statement s(db_, "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                     "sql LIKE 'CREATE VIRTUAL TABLE%USING engram(%' ORDER BY name");
    std::vector<std::string> out;
    while (s.step()) {
        out.push_back(s.text_at(0));
    }
    return out;
}

bool Connection::in_transaction() const noexcept {
    return sqlite3_get_autocommit(db_) == 0;
}

void Connection::rollback_quietly() noexcept {
    if (in_transaction()) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

std::string default_extension_path() {
    if (const char* env = std::getenv("ENGRAM_EXTENSION"); env != nullptr && *env != '\0') {
        return env;
    }
    char buf[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) {
        return "engram.so";
    }
    return (std::filesystem::path(std::string(buf, static_cast<std::size_t>(n))).parent_path() /
            "engram.so")
        .string();
}

bool is_identifier(const std::string& s) {
    if (s.empty() || s.size() > 128 || std::isdigit(static_cast<unsigned char>(s[0])) != 0) {
        return false;
    }
    for (const char c : s) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
            return false;
        }
    }
    return true;
}

std::string sql_quote(const std::string& s) {
    std::string out = "'";
    for (const char c : s) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    out += '\'';
    return out;
}

ConnectionPool::ConnectionPool(std::string db_path, std::string extension_path)
    : db_path_(std::move(db_path)), extension_path_(std::move(extension_path)) {}

ConnectionPool::Lease::~Lease() {
    if (pool_ != nullptr && conn_) {
        pool_->give_back(std::move(conn_));
    }
}

ConnectionPool::Lease ConnectionPool::acquire() {
    {
        std::lock_guard<std::mutex> g(mutex_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            return Lease(this, std::move(c));
        }
    }
    auto c = std::make_unique<Connection>(db_path_, extension_path_); // outside the lock: slow
    std::lock_guard<std::mutex> g(mutex_);
    ++opened_;
    return Lease(this, std::move(c));
}

std::size_t ConnectionPool::opened() const {
    std::lock_guard<std::mutex> g(mutex_);
    return opened_;
}

void ConnectionPool::give_back(std::unique_ptr<Connection> c) noexcept {
    c->rollback_quietly(); // a lease never hands on an open transaction
    std::lock_guard<std::mutex> g(mutex_);
    idle_.push_back(std::move(c));
}

} // namespace engram::server
