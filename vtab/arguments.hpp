#pragma once
// Shared by every table-valued function: arguments are HIDDEN columns after the output columns.
//
// plan_arguments (xBestIndex): hands each argument given as `column = value` to xFilter in
// argument order and sets idxNum to the bitmask of the arguments present. A required argument
// that only an unusable constraint provides (it comes from a join) makes the plan unusable
// (SQLITE_CONSTRAINT); one that is not given at all is an error naming it.
// map_arguments (xFilter): puts argv back at argument positions (nullptr when not given).
#include <cstdint>
#include <string>
#include <variant>

#include "vtab/sqlite.hpp"

namespace engram::vtab {

inline constexpr int kMaxArguments = 8;

struct ArgumentList {
    const char* function;     // for messages
    int first_column;         // column of the first argument (= number of output columns)
    const char* const* names; // nullptr-terminated, at most kMaxArguments
    int required;             // the first `required` arguments must be given
};

int plan_arguments(sqlite3_vtab* vtab, sqlite3_index_info* info, const ArgumentList& args) noexcept;
void map_arguments(const ArgumentList& args, int idx_num, int argc, sqlite3_value** argv,
                   sqlite3_value** out) noexcept;

// One output value of a table-valued function's row.
using SqlValue = std::variant<std::monostate, std::int64_t, double, std::string>;
void result_value(sqlite3_context* ctx, const SqlValue& v) noexcept;

} // namespace engram::vtab
