#pragma once
// The one include of sqlite3ext.h for every vtab/ translation unit but extension.cpp (which
// defines the API pointer with SQLITE_EXTENSION_INIT1).
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
