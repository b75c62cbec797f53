#pragma once
// The registration tables of the extension: every module and function it defines.
#include <string>
#include <vector>

#include "engine/core/status.hpp"
#include "vtab/sqlite.hpp"
#include "vtab/store_handle.hpp"

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

struct SpreadSeed;
// Seeds of engram_spread: a JSON array of ids or of {"id", "activation"} objects.
Result<std::vector<SpreadSeed>> parse_seeds(const std::string& text);

// Scalar functions; returns the first failing SQLite code or SQLITE_OK.
int register_functions(sqlite3* db, void* ctx);

} // namespace engram::vtab
