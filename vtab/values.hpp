#pragma once
// Conversions between SQLite values and Engram's types, with messages that name the culprit.
// `what` in each reader names the value in messages (e.g. "column embedding").
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/core/status.hpp"
#include "vtab/sqlite.hpp"

namespace engram::vtab {

// A float32 vector from a BLOB (little-endian float32) or a JSON array text. Rejects NaN/Inf.
Result<std::vector<float>> read_vector(sqlite3_value* v, std::string_view what);
// Parses "[1, 2.5, -3e-2]".
Result<std::vector<float>> parse_json_vector(std::string_view text, std::string_view what);
// Unix seconds from an INTEGER/REAL, or ISO-8601 / numeric TEXT.
Result<double> read_time(sqlite3_value* v, std::string_view what);
// A number in [0, 1].
Result<double> read_unit_interval(sqlite3_value* v, std::string_view what);
// JSON array of strings (NULL → empty).
Result<std::vector<std::string>> read_who(sqlite3_value* v, std::string_view what);
// JSON object text (NULL → "{}").
Result<std::string> read_metadata(sqlite3_value* v, std::string_view what);
// Any value as text (NULL → "").
std::string read_text(sqlite3_value* v);

std::string vector_json(const float* data, std::size_t n);
std::string who_json(const std::vector<std::string>& who);
void result_vector(sqlite3_context* ctx, const std::vector<float>& v);
void result_text(sqlite3_context* ctx, const std::string& s);

// A value copied out of SQLite (SQLite reuses its own between rows).
struct InText {
    std::string text;
};
struct InBlob {
    std::string bytes;
};
using InValue = std::variant<std::monostate, std::int64_t, double, InText, InBlob>;
InValue copy_value(sqlite3_value* v);
// A float32 vector from a copied BLOB or JSON text (same rules as read_vector).
Result<std::vector<float>> in_vector(const InValue& v, std::string_view what);
// The value as text for messages: 7, 'abc', (blob), NULL.
std::string describe(const InValue& v);
// Text of a TEXT/number value ("" for NULL); numbers formatted as SQLite would.
std::string in_text(const InValue& v);
bool in_number(const InValue& v, double* out);

// "'" + s + "'" with embedded quotes doubled, cut to a readable length.
std::string quote_text(std::string_view s);

} // namespace engram::vtab
