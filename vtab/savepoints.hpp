#pragma once
// Statement savepoints over a table's queue of writes, shared by the writable modules.
// Table provides `ops` (the queued writes, a vector), `savepoints` (ops.size() at each
// savepoint level, a std::vector<std::size_t>) and `rebuild_overlay()` (re-derives its index of
// the latest write per key from `ops`). Rolling back to a level drops the writes queued since.
#include <algorithm>
#include <cstddef>

#include "vtab/sqlite.hpp"

namespace engram::vtab {

template <typename Table> int savepoint_begin(sqlite3_vtab* vtab, int level) noexcept {
    auto* t = static_cast<Table*>(vtab);
    try {
        t->savepoints.resize(static_cast<std::size_t>(level) + 1, t->ops.size());
        t->savepoints[static_cast<std::size_t>(level)] = t->ops.size();
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

template <typename Table> int savepoint_release(sqlite3_vtab* vtab, int level) noexcept {
    auto* t = static_cast<Table*>(vtab);
    if (static_cast<std::size_t>(level) < t->savepoints.size()) {
        t->savepoints.resize(static_cast<std::size_t>(level));
    }
    return SQLITE_OK;
}

template <typename Table> int savepoint_rollback_to(sqlite3_vtab* vtab, int level) noexcept {
    auto* t = static_cast<Table*>(vtab);
    try {
        if (static_cast<std::size_t>(level) < t->savepoints.size()) {
            const std::size_t mark = t->savepoints[static_cast<std::size_t>(level)];
            t->ops.resize(std::min(mark, t->ops.size()));
            t->savepoints.resize(static_cast<std::size_t>(level) + 1);
            t->rebuild_overlay();
        }
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

} // namespace engram::vtab
