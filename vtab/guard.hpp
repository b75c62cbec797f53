#pragma once
// The guard: every SQLite callback of Engram is `noexcept` and runs its body through one of these
// functions, which map a Status (or an escaping exception) to an SQLite result code and message.
// No C++ exception ever crosses into SQLite.
#include <exception>
#include <new>
#include <string>

#include "engine/core/status.hpp"
#include "vtab/sqlite.hpp"

namespace engram::vtab {

// The one mapping from Engram codes to SQLite result codes.
int to_sqlite_code(Code code) noexcept;

// Replaces the vtab's error message (freeing the old one).
void set_vtab_error(sqlite3_vtab* vtab, const std::string& message) noexcept;

template <typename F> int guard(sqlite3_vtab* vtab, F&& body) noexcept {
    try {
        const Status s = body();
        if (s.is_ok()) {
            return SQLITE_OK;
        }
        set_vtab_error(vtab, s.message());
        return to_sqlite_code(s.code());
    } catch (const std::bad_alloc&) {
        return SQLITE_NOMEM;
    } catch (const std::exception& e) {
        set_vtab_error(vtab, std::string("engram internal error: ") + e.what());
        return SQLITE_INTERNAL;
    } catch (...) {
        set_vtab_error(vtab, "engram internal error");
        return SQLITE_INTERNAL;
    }
}

// For xCreate/xConnect, whose message goes to *pzErr.
template <typename F> int guard_err(char** pz_err, F&& body) noexcept {
    try {
        const Status s = body();
        if (s.is_ok()) {
            return SQLITE_OK;
        }
        *pz_err = sqlite3_mprintf("%s", s.message().c_str());
        return to_sqlite_code(s.code());
    } catch (const std::bad_alloc&) {
        return SQLITE_NOMEM;
    } catch (const std::exception& e) {
        *pz_err = sqlite3_mprintf("engram internal error: %s", e.what());
        return SQLITE_INTERNAL;
    } catch (...) {
        *pz_err = sqlite3_mprintf("engram internal error");
        return SQLITE_INTERNAL;
    }
}

// For SQL functions: the error becomes the function's result.
template <typename F> void guard_fn(sqlite3_context* ctx, F&& body) noexcept {
    try {
        const Status s = body();
        if (!s.is_ok()) {
            sqlite3_result_error(ctx, s.message().c_str(), -1);
            sqlite3_result_error_code(ctx, to_sqlite_code(s.code()));
        }
    } catch (const std::bad_alloc&) {
        sqlite3_result_error_nomem(ctx);
    } catch (const std::exception& e) {
        sqlite3_result_error(ctx, (std::string("engram internal error: ") + e.what()).c_str(), -1);
    } catch (...) {
        sqlite3_result_error(ctx, "engram internal error", -1);
    }
}

} // namespace engram::vtab
