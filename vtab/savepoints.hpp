#pragma once
// Statement savepoints over a table's queue of writes, shared by the writable modules.
// Table provides `savepoints` (a std::vector<std::size_t>: the queue position at each savepoint
// level), `position()` (how many writes are queued) and `truncate_to(mark)` (drops the writes
// queued after the first `mark`, returning a Status). Rolling back to a level drops the writes
// queued since.
#include <cstddef>

#include "vtab/guard.hpp"
#include "vtab/sqlite.hpp"

namespace engram::vtab {

template <typename Table> int savepoint_begin(sqlite3_vtab* vtab, int level) noexcept {
    auto* t = static_cast<Table*>(vtab);
    try {
        t->savepoints.resize(static_cast<std::size_t>(level) + 1, t->position());
        t->savepoints[static_cast<std::size_t>(level)] = t->position();
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
    return guard(vtab, [&]() -> Status {
        if (static_cast<std::size_t>(level) >= t->savepoints.size()) {
            return Status::ok();
        }
        const std::size_t mark = t->savepoints[static_cast<std::size_t>(level)];
        t->savepoints.resize(static_cast<std::size_t>(level) + 1);
        return t->truncate_to(mark);
    });
}

} // namespace engram::vtab
