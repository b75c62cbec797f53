#pragma once
// The registration tables of the extension: every module and function it defines.
#include "vtab/sqlite.hpp"

namespace engram::vtab {

const sqlite3_module& engram_module();

// Table-valued functions (eponymous-only virtual tables).
struct TvfSpec;
const TvfSpec* const* tvf_specs(); // nullptr-terminated
const sqlite3_module& tvf_module();
const char* tvf_name(const TvfSpec* spec);
struct ConnectionContext;
// The client data of one table-valued function's module (freed by destroy_tvf_aux).
void* make_tvf_aux(ConnectionContext* ctx, const TvfSpec* spec);
void destroy_tvf_aux(void* aux);

// Scalar functions; returns the first failing SQLite code or SQLITE_OK.
int register_functions(sqlite3* db, void* ctx);

} // namespace engram::vtab
