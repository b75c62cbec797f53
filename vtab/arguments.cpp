#include "vtab/arguments.hpp"

#include "vtab/guard.hpp"

namespace engram::vtab {
namespace {
int count(const ArgumentList& args) noexcept {
    int n = 0;
    while (n < kMaxArguments && args.names[n] != nullptr) {
        ++n;
    }
    return n;
}
} // namespace

int plan_arguments(sqlite3_vtab* vtab, sqlite3_index_info* info,
                   const ArgumentList& args) noexcept {
    const int n = count(args);
    int usable[kMaxArguments];
    bool unusable[kMaxArguments] = {};
    for (int& u : usable) {
        u = -1;
    }
    for (int i = 0; i < info->nConstraint; ++i) {
        const auto& c = info->aConstraint[i];
        const int a = c.iColumn - args.first_column;
        if (a < 0 || a >= n || c.op != SQLITE_INDEX_CONSTRAINT_EQ) {
            continue;
        }
        if (!c.usable) {
            unusable[a] = true;
        } else if (usable[a] < 0) {
            usable[a] = i;
        }
    }
    int mask = 0;
    int next = 1;
    for (int a = 0; a < n; ++a) {
        if (usable[a] >= 0) {
            mask |= 1 << a;
            info->aConstraintUsage[usable[a]].argvIndex = next++;
            info->aConstraintUsage[usable[a]].omit = 1;
        } else if (a < args.required) {
            if (unusable[a]) {
                return SQLITE_CONSTRAINT; // try another plan: the argument comes from a join
            }
            set_vtab_error(vtab,
                           std::string(args.function) + ": missing argument " + args.names[a]);
            return SQLITE_ERROR;
        }
    }
    info->idxNum = mask;
    info->estimatedCost = 100.0;
    info->estimatedRows = 100;
    return SQLITE_OK;
}

void map_arguments(const ArgumentList& args, int idx_num, int argc, sqlite3_value** argv,
                   sqlite3_value** out) noexcept {
    int k = 0;
    for (int a = 0; a < count(args); ++a) {
        out[a] = (idx_num & (1 << a)) != 0 && k < argc ? argv[k++] : nullptr;
    }
}

void result_value(sqlite3_context* ctx, const SqlValue& v) noexcept {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        sqlite3_result_int64(ctx, *i);
    } else if (const auto* d = std::get_if<double>(&v)) {
        sqlite3_result_double(ctx, *d);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
        sqlite3_result_text(ctx, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    } else {
        sqlite3_result_null(ctx);
    }
}

} // namespace engram::vtab
