// The extension's entry point: `.load ./build/engram` calls sqlite3_engram_init once per
// connection, which registers every module and function with a fresh ConnectionContext.
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <memory>

#include "vtab/batch_vtab.hpp"
#include "vtab/connection.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"

namespace engram::vtab {

int to_sqlite_code(Code code) noexcept {
    switch (code) {
    case Code::kOk:
        return SQLITE_OK;
    case Code::kAlreadyExists:
        return SQLITE_CONSTRAINT;
    case Code::kBusy:
        return SQLITE_BUSY;
    case Code::kIoError:
        return SQLITE_IOERR;
    case Code::kNoSpace:
        return SQLITE_FULL;
    case Code::kCorruption:
        return SQLITE_CORRUPT;
    case Code::kInternal:
        return SQLITE_INTERNAL;
    default:
        return SQLITE_ERROR;
    }
}

void set_vtab_error(sqlite3_vtab* vtab, const std::string& message) noexcept {
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = sqlite3_mprintf("%s", message.c_str());
}

namespace {

void destroy_context(void* p) noexcept {
    std::unique_ptr<ConnectionContext> ctx(static_cast<ConnectionContext*>(p)); // from init
}

int init(sqlite3* db, char** pz_err) noexcept {
    try {
        auto ctx = std::make_unique<ConnectionContext>();
        ctx->db = db;
        ConnectionContext* raw = ctx.get();
        // The engram module owns the context: SQLite calls destroy_context when the connection
        // closes, after every engram table has been disconnected.
        int rc = sqlite3_create_module_v2(db, "engram", &engram_module(), ctx.release(),
                                          destroy_context);
        if (rc != SQLITE_OK) {
            *pz_err = sqlite3_mprintf("engram: registering module engram failed");
            return rc;
        }
        rc = sqlite3_create_module_v2(db, "engram_edges", &edges_module(), raw, nullptr);
        if (rc != SQLITE_OK) {
            *pz_err = sqlite3_mprintf("engram: registering module engram_edges failed");
            return rc;
        }
        for (const TvfSpec* const* s = tvf_specs(); *s != nullptr; ++s) {
            rc = sqlite3_create_module_v2(db, tvf_name(*s), &tvf_module(), make_tvf_aux(raw, *s),
                                          destroy_tvf_aux);
            if (rc != SQLITE_OK) {
                *pz_err = sqlite3_mprintf("engram: registering %s failed", tvf_name(*s));
                return rc;
            }
        }
        for (const BatchSpec* const* s = batch_specs(); *s != nullptr; ++s) {
            rc = sqlite3_create_module_v2(db, (*s)->name, &batch_module(), make_batch_aux(raw, *s),
                                          destroy_batch_aux);
            if (rc != SQLITE_OK) {
                *pz_err = sqlite3_mprintf("engram: registering %s failed", (*s)->name);
                return rc;
            }
        }
        rc = register_functions(db, raw);
        if (rc != SQLITE_OK) {
            *pz_err = sqlite3_mprintf("engram: registering functions failed");
        }
        return rc;
    } catch (...) {
        return SQLITE_NOMEM;
    }
}

} // namespace
} // namespace engram::vtab

extern "C" __attribute__((visibility("default"))) int
sqlite3_engram_init(sqlite3* db, char** pz_err, const sqlite3_api_routines* api) {
    SQLITE_EXTENSION_INIT2(api);
    return engram::vtab::init(db, pz_err);
}
