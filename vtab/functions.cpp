// Scalar SQL functions: engram_version(), engram_debug(), engram_vector(json_or_blob),
// engram_vector_json(blob), engram_cosine(a, b), engram_random_vector(dim, seed).
// All are deterministic except engram_debug; all take vectors as float32 BLOBs or JSON arrays.
//
// engram_debug() ends with a `memory: {...}` line, one JSON object: the resident bytes of every
// store open in the process, summed by part (db/memory.cpp lists the parts; none when no store
// is open), "allocator_free"
// (what malloc and mimalloc hold without live allocations), "total" (their sum), "rss" (the
// process's resident set) and "stores" (how many are open). The total tracks the process's
// RSS growth as stores fill; the difference is code, SQLite, the host's own data and stacks.
#include <rocksdb/version.h>
#include <tbb/info.h>
#include <tbb/version.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/pool.hpp"
#include "engine/simd/kernels.hpp"
#include "vtab/connection.hpp"
#include "vtab/guard.hpp"
#include "vtab/modules.hpp"
#include "vtab/values.hpp"

#ifndef ENGRAM_VERSION
#define ENGRAM_VERSION "0.0.0"
#endif
#ifndef ENGRAM_BUILD_TYPE
#define ENGRAM_BUILD_TYPE "unknown"
#endif

namespace engram::vtab {
namespace {

void fn_version(sqlite3_context* ctx, int /*argc*/, sqlite3_value** /*argv*/) noexcept {
    sqlite3_result_text(ctx, ENGRAM_VERSION, -1, SQLITE_STATIC);
}

std::string memory_json() {
    db::SharedStore::MemoryParts sum;
    const auto stores = db::SharedStore::open_stores();
    for (const auto& store : stores) {
        const db::SharedStore::MemoryParts parts = store->memory_usage();
        if (sum.empty()) {
            sum = parts;
        } else {
            for (std::size_t i = 0; i < parts.size() && i < sum.size(); ++i) {
                sum[i].second += parts[i].second;
            }
        }
    }
    sum.emplace_back("allocator_free", engine::allocator_free_bytes());
    std::size_t total = 0;
    std::string out = "{";
    for (const auto& [name, bytes] : sum) {
        out += "\"" + std::string(name) + "\": " + std::to_string(bytes) + ", ";
        total += bytes;
    }
    out += "\"total\": " + std::to_string(total) +
           ", \"rss\": " + std::to_string(engine::process_rss_bytes()) +
           ", \"stores\": " + std::to_string(stores.size()) + "}";
    return out;
}

std::string debug_text() {
    using engine::simd::Level;
    std::string levels;
    for (Level l : {Level::kScalar, Level::kSse4, Level::kAvx2, Level::kAvx512}) {
        if (engine::simd::kernels_for(l) != nullptr) {
            levels += levels.empty() ? "" : ",";
            levels += engine::simd::level_name(l);
        }
    }
    std::string s = "engram " ENGRAM_VERSION;
    s += "\nbuild: " ENGRAM_BUILD_TYPE ", g++ " __VERSION__;
    s += "\nsimd: " + std::string(engine::simd::kernels().name) + " (available: " + levels + ")";
    s += "\ntbb: " + std::to_string(TBB_VERSION_MAJOR) + "." + std::to_string(TBB_VERSION_MINOR) +
         ", threads: " + std::to_string(tbb::info::default_concurrency());
    s += "\nnuma nodes: " + std::to_string(engine::numa_nodes()) +
         ", placement: " + engine::numa_placement();
    s += "\nrocksdb: " + std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) + "." +
         std::to_string(ROCKSDB_PATCH);
    s += "\nallocator: " + std::string(engine::allocator_name());
    s += "\nsqlite: " + std::string(sqlite3_libversion());
    s += "\nmemory: " + memory_json();
    return s;
}

void fn_debug(sqlite3_context* ctx, int /*argc*/, sqlite3_value** /*argv*/) noexcept {
    guard_fn(ctx, [&]() -> Status {
        result_text(ctx, debug_text());
        return Status::ok();
    });
}

void fn_vector(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
    guard_fn(ctx, [&]() -> Status {
        auto v = read_vector(argv[0], "engram_vector argument");
        if (!v) {
            return v.status();
        }
        result_vector(ctx, v.value());
        return Status::ok();
    });
}

void fn_vector_json(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
    guard_fn(ctx, [&]() -> Status {
        auto v = read_vector(argv[0], "engram_vector_json argument");
        if (!v) {
            return v.status();
        }
        result_text(ctx, vector_json(v->data(), v->size()));
        return Status::ok();
    });
}

void fn_cosine(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
    guard_fn(ctx, [&]() -> Status {
        auto a = read_vector(argv[0], "engram_cosine argument 1");
        if (!a) {
            return a.status();
        }
        auto b = read_vector(argv[1], "engram_cosine argument 2");
        if (!b) {
            return b.status();
        }
        if (a->size() != b->size()) {
            return Status::invalid("engram_cosine: dimensions differ (" +
                                   std::to_string(a->size()) + " vs " + std::to_string(b->size()) +
                                   ")");
        }
        sqlite3_result_double(ctx, engine::simd::kernels().cosine(a->data(), b->data(), a->size()));
        return Status::ok();
    });
}

// splitmix64: a tiny, well-mixed deterministic generator (same output on every platform).
std::uint64_t splitmix64(std::uint64_t* state) {
    std::uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void fn_random_vector(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
    guard_fn(ctx, [&]() -> Status {
        if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || sqlite3_value_int64(argv[0]) < 1 ||
            sqlite3_value_int64(argv[0]) > 4096) {
            return Status::invalid("engram_random_vector: dim must be an integer in 1..4096, got " +
                                   quote_text(read_text(argv[0])));
        }
        if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER) {
            return Status::invalid("engram_random_vector: seed must be an integer, got " +
                                   quote_text(read_text(argv[1])));
        }
        const auto dim = static_cast<std::size_t>(sqlite3_value_int64(argv[0]));
        auto state = static_cast<std::uint64_t>(sqlite3_value_int64(argv[1]));
        std::vector<float> v(dim);
        for (float& x : v) {
            // uniform in [-1, 1) from the top 24 bits
            x = static_cast<float>(splitmix64(&state) >> 40) / 8388608.0F - 1.0F;
        }
        result_vector(ctx, v);
        return Status::ok();
    });
}

// engram_index_wait(store): blocks until every hot memory of the store is in the graph index
// (the background builder has caught up) and returns how many are indexed.
void fn_index_wait(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) noexcept {
    guard_fn(ctx, [&]() -> Status {
        auto* conn = static_cast<ConnectionContext*>(sqlite3_user_data(ctx));
        if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
            return Status::invalid("engram_index_wait: expected the name of an engram table");
        }
        auto store = resolve_store(conn, read_text(argv[0]));
        if (!store) {
            return store.status();
        }
        (*store)->wait_indexed();
        sqlite3_result_int64(ctx, static_cast<sqlite3_int64>((*store)->stats().indexed));
        return Status::ok();
    });
}

} // namespace

int register_functions(sqlite3* db, void* ctx) {
    struct Fn {
        const char* name;
        int argc;
        void (*fn)(sqlite3_context*, int, sqlite3_value**);
        int flags;
    };
    const int det = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    const Fn fns[] = {
        {"engram_version", 0, fn_version, det},
        {"engram_debug", 0, fn_debug, SQLITE_UTF8},
        {"engram_vector", 1, fn_vector, det},
        {"engram_vector_json", 1, fn_vector_json, det},
        {"engram_cosine", 2, fn_cosine, det},
        {"engram_random_vector", 2, fn_random_vector, det},
        {"engram_index_wait", 1, fn_index_wait, SQLITE_UTF8 | SQLITE_DIRECTONLY},
    };
    for (const Fn& f : fns) {
        const int rc = sqlite3_create_function_v2(db, f.name, f.argc, f.flags, ctx, f.fn, nullptr,
                                                  nullptr, nullptr);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    return SQLITE_OK;
}

} // namespace engram::vtab
