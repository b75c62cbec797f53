#pragma once
// ConnectionContext: what the extension keeps per SQLite connection — the engram tables this
// connection has connected, by name, so that table-valued functions naming a store can find it.
// Created in sqlite3_engram_init, destroyed with the connection (module destructor).
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "db/shared_store.hpp"
#include "engine/core/status.hpp"
#include "vtab/sqlite.hpp"

namespace engram::vtab {

struct ConnectionContext {
    sqlite3* db = nullptr;
    // lower-case table name → store (filled by xCreate/xConnect, emptied by xDisconnect/xDestroy)
    std::map<std::string, std::shared_ptr<db::SharedStore>> stores;
    // lower-case table name → "is this id written (not deleted) in the open transaction?"
    std::map<std::string, std::function<bool(const std::string&)>> pending_ids;
};

std::string lower(std::string s);

// The store behind an engram table named `name` ("mem" or "schema.mem"). When this connection
// has not connected the table yet, preparing a statement on it makes SQLite do so.
// Fails with a message naming `name` when there is no such engram table.
Result<std::shared_ptr<db::SharedStore>> resolve_store(ConnectionContext* ctx,
                                                       const std::string& name);

} // namespace engram::vtab
