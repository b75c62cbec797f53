#pragma once
// The shared machinery of the batch table-valued functions (batch_vtab.cpp): a BatchSpec per
// function, the arguments bound once per statement, and copied input / output rows.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "db/shared_store.hpp"
#include "engine/core/status.hpp"
#include "vtab/arguments.hpp"
#include "vtab/sqlite.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {

struct ConnectionContext;

using InRow = std::vector<InValue>;
using OutValue = SqlValue;
using OutRow = std::vector<OutValue>;

OutValue to_out(const InValue& v);

// Validated arguments of one statement (immutable while the cursor runs).
struct BatchArgs {
    std::shared_ptr<db::SharedStore> store;
    std::size_t k = 10;
    double threshold = 0.0;
    std::size_t ef = 64;
    std::size_t max_depth = 4;
    std::optional<db::SearchFilter> filter;
};

struct BatchSpec {
    const char* name;
    const char* schema; // output columns, then HIDDEN store, sql and the other arguments
    int n_out;
    const char* args[kMaxArguments + 1]; // nullptr-terminated; args[0] store, args[1] sql
    int n_required;
    int input_columns; // columns the SQL text must yield
    const char* input_names;
    // Validates the arguments after store and sql (args[a] is nullptr when not given).
    Status (*bind)(sqlite3_value** args, BatchArgs* out);
    // Turns one chunk of input rows into output rows, in input order.
    Status (*process)(const BatchArgs& args, std::vector<InRow>& inputs, std::vector<OutRow>* out);
    // When >= 0: consecutive rows with equal values in this column stay in one chunk.
    int group_column;
};

struct BatchAux {
    ConnectionContext* ctx;
    const BatchSpec* spec;
};

extern const BatchSpec kSpreadBatch; // spread_vtab.cpp

const BatchSpec* const* batch_specs(); // nullptr-terminated
const sqlite3_module& batch_module();
void* make_batch_aux(ConnectionContext* ctx, const BatchSpec* spec);
void destroy_batch_aux(void* aux);

} // namespace engram::vtab
