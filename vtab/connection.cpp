#include "vtab/connection.hpp"

#include <algorithm>
#include <cctype>

#include "vtab/values.hpp"

namespace engram::vtab {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

namespace {
std::string bare_name(const std::string& name) {
    const auto dot = name.find('.');
    return lower(dot == std::string::npos ? name : name.substr(dot + 1));
}
} // namespace

Result<std::shared_ptr<db::SharedStore>> resolve_store(ConnectionContext* ctx,
                                                       const std::string& name) {
    const std::string key = bare_name(name);
    if (auto it = ctx->stores.find(key); it != ctx->stores.end()) {
        return it->second;
    }
    // Not connected yet: let SQLite connect it by preparing a statement that names it.
    std::string sql = "SELECT 1 FROM ";
    const auto dot = name.find('.');
    auto ident = [](const std::string& s) {
        std::string q = "\"";
        for (char c : s) {
            q += c;
            if (c == '"') {
                q += '"';
            }
        }
        return q + "\"";
    };
    sql += dot == std::string::npos
               ? ident(name)
               : ident(name.substr(0, dot)) + "." + ident(name.substr(dot + 1));
    sql += " LIMIT 0";
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(ctx->db, sql.c_str(), -1, &stmt, nullptr);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) {
        return Status::invalid("no such engram store: " + quote_text(name));
    }
    if (auto it = ctx->stores.find(key); it != ctx->stores.end()) {
        return it->second;
    }
    return Status::invalid(quote_text(name) + " is not an engram table");
}

} // namespace engram::vtab
