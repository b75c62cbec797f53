#include "engine/pool.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <numa.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
    std::size_t (*usable_size)(const void*) = nullptr;
    void (*process_info)(std::size_t*, std::size_t*, std::size_t*, std::size_t*, std::size_t*,
                         std::size_t*, std::size_t*, std::size_t*) = nullptr;
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
        usable_size = reinterpret_cast<std::size_t (*)(const void*)>(dlsym(h, "mi_usable_size"));
        process_info = reinterpret_cast<decltype(process_info)>(dlsym(h, "mi_process_info"));
        const int v = ver != nullptr ? ver() : 0;
        std::snprintf(name, sizeof name, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
    }
};

const Mimalloc& mimalloc() {
    static const Mimalloc m;
    return m;
}

// Bytes of the live aligned_zalloc blocks taken from mimalloc (usable sizes).
std::atomic<std::size_t> mimalloc_live{0};
// glibc's free bytes right after the last malloc_trim (pages it no longer holds resident).
std::atomic<std::size_t> trimmed_free{0};

} // namespace

void* aligned_zalloc(std::size_t bytes, std::size_t align) {
    const Mimalloc& m = mimalloc();
    void* p = nullptr;
    if (m.zalloc_aligned != nullptr) {
        p = m.zalloc_aligned(bytes, align);
        if (p != nullptr && m.usable_size != nullptr) {
            mimalloc_live.fetch_add(m.usable_size(p), std::memory_order_relaxed);
        }
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
        if (m.usable_size != nullptr) {
            mimalloc_live.fetch_sub(m.usable_size(p), std::memory_order_relaxed);
        }
        m.free(p);
    } else {
        std::free(p);
    }
}

const char* allocator_name() noexcept {
    return mimalloc().name;
}

std::size_t process_rss_bytes() noexcept {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) {
        return 0;
    }
    unsigned long long size = 0;
    unsigned long long resident = 0;
    const int got = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    const long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0
               ? static_cast<std::size_t>(resident * static_cast<unsigned long long>(page))
               : 0;
}

std::size_t allocator_free_bytes() noexcept {
    const std::size_t free_chunks = mallinfo2().fordblks;
    const std::size_t released = trimmed_free.load(std::memory_order_relaxed);
    std::size_t n = free_chunks > released ? free_chunks - released : 0;
    const Mimalloc& m = mimalloc();
    if (m.process_info != nullptr) {
        std::size_t elapsed = 0, user = 0, sys = 0, rss = 0, peak_rss = 0, commit = 0,
                    peak_commit = 0, faults = 0;
        m.process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
        const std::size_t live = mimalloc_live.load(std::memory_order_relaxed);
        n += commit > live ? commit - live : 0;
    }
    return n;
}

void release_free_memory() noexcept {
    malloc_trim(0);
    trimmed_free.store(mallinfo2().fordblks, std::memory_order_relaxed);
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
