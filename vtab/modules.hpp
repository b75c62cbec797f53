#pragma once
// The registration tables of the extension: every module and function it defines.
#include <string>
#include <vector>

#include "db/shared_store.hpp"
#include "engine/core/status.hpp"
#include "vtab/sqlite.hpp"

namespace engram::db {
struct SpreadSeed;
} // namespace engram::db

namespace engram::vtab {

const sqlite3_module& engram_module();
// engram_edges (client data: the ConnectionContext).
const sqlite3_module& edges_module();

// Table-valued functions (eponymous-only virtual tables).
struct TvfSpec;
const TvfSpec* const* tvf_specs(); // nullptr-terminated
const sqlite3_module& tvf_module();
const char* tvf_name(const TvfSpec* spec);
struct ConnectionContext;
// The client data of one table-valued function's module (freed by destroy_tvf_aux).
void* make_tvf_aux(ConnectionContext* ctx, const TvfSpec* spec);
void destroy_tvf_aux(void* aux);

// Seeds of engram_spread: a JSON array of ids or of {"id", "activation"} objects.
Result<std::vector<db::SpreadSeed>> parse_seeds(const std::string& text);

// Scalar functions; returns the first failing SQLite code or SQLITE_OK.
int register_functions(sqlite3* db, void* ctx);

} // namespace engram::vtab
