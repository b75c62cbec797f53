#include "engine/pool.hpp"

#include <dlfcn.h>
#include <numa.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

namespace engram::engine {
namespace {

constexpr std::size_t kPageBytes = 4096;

struct Mimalloc {
    void* (*zalloc_aligned)(std::size_t, std::size_t) = nullptr;
    void (*free)(void*) = nullptr;
    int (*version)() = nullptr;
    char name[64] = "libc (mimalloc not found)";

    Mimalloc() {
#if defined(__SANITIZE_THREAD__)
        // Uninstrumented mimalloc crashes or hangs under ThreadSanitizer when worker threads
        // allocate: TSan builds use the C library's allocation.
        return;
#endif
        // RTLD_LOCAL: nothing else in the process can bind to this copy's malloc/new.
        void* h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
        if (h == nullptr) {
            return;
        }
        auto* za =
            reinterpret_cast<void* (*)(std::size_t, std::size_t)>(dlsym(h, "mi_zalloc_aligned"));
        auto* fr = reinterpret_cast<void (*)(void*)>(dlsym(h, "mi_free"));
        auto* ver = reinterpret_cast<int (*)()>(dlsym(h, "mi_version"));
        if (za == nullptr || fr == nullptr) {
            return; // the handle stays open: harmless, and the library may still be in use
        }
        zalloc_aligned = za;
        free = fr;
        version = ver;
        const int v = ver != nullptr ? ver() : 0;
        std::snprintf(name, sizeof name, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
    }
};

const Mimalloc& mimalloc() {
    static const Mimalloc m;
    return m;
}

} // namespace

void* aligned_zalloc(std::size_t bytes, std::size_t align) {
    const Mimalloc& m = mimalloc();
    void* p = nullptr;
    if (m.zalloc_aligned != nullptr) {
        p = m.zalloc_aligned(bytes, align);
    } else {
        const std::size_t rounded = (bytes + align - 1) / align * align;
        p = std::aligned_alloc(align, rounded);
        if (p != nullptr) {
            std::memset(p, 0, rounded);
        }
    }
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

void aligned_free(void* p) noexcept {
    if (p == nullptr) {
        return;
    }
    const Mimalloc& m = mimalloc();
    if (m.free != nullptr) {
        m.free(p);
    } else {
        std::free(p);
    }
}

const char* allocator_name() noexcept {
    return mimalloc().name;
}

int numa_nodes() noexcept {
    static const int nodes = numa_available() < 0 ? 1 : std::max(1, numa_num_configured_nodes());
    return nodes;
}

void* chunk_zalloc(std::size_t bytes, std::size_t align, std::size_t index) {
    const int nodes = numa_nodes();
    if (nodes > 1) {
        // Page-aligned, zero-filled pages bound to the node before anything touches them.
        void* p =
            numa_alloc_onnode(bytes, static_cast<int>(index % static_cast<std::size_t>(nodes)));
        if (p == nullptr) {
            throw std::bad_alloc();
        }
        return p;
    }
    if (align > kPageBytes) {
        throw std::bad_alloc(); // chunks are page-aligned; no caller asks for more
    }
    // Fresh pages, zero by definition and populated in one call (cheaper than a page fault per
    // page on first touch, and no memset).
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        throw std::bad_alloc();
    }
    return p;
}

void chunk_free(void* p, std::size_t bytes) noexcept {
    if (p == nullptr) {
        return;
    }
    if (numa_nodes() > 1) {
        numa_free(p, bytes);
    } else {
        munmap(p, bytes);
    }
}

std::string numa_placement() {
    const int nodes = numa_nodes();
    return nodes <= 1 ? std::string("off (1 node)")
                      : "chunks interleaved over " + std::to_string(nodes) + " nodes";
}

} // namespace engram::engine
