#pragma once
// Aligned memory for the engine, from mimalloc — without letting mimalloc become the host's
// allocator.
//
// Debian's libmimalloc.so exports malloc/free/operator new as well as its mi_* API. Linked as a
// normal dependency of a dlopen'ed extension, it can bind `operator new` for other libraries
// in the extension's scope (seen with Python: RocksDB's blocks were allocated by mimalloc and
// sized by glibc → crash). So the library is opened here with dlopen(RTLD_LOCAL), which makes
// none of its symbols visible to anyone else, and only mi_* functions are taken from it. When it
// is not installed, the engine falls back to the C library's aligned allocation.
//
// Thread safety: all functions may be called from any thread.
#include <cstddef>
#include <string>

namespace engram::engine {

// Returns zeroed memory of `bytes` aligned to `align` (a power of two); throws std::bad_alloc.
void* aligned_zalloc(std::size_t bytes, std::size_t align);
// Frees memory from aligned_zalloc (nullptr allowed).
void aligned_free(void* p) noexcept;
// "mimalloc 2.0.9" or "libc (mimalloc not found)".
const char* allocator_name() noexcept;

// The process's resident set size (Linux /proc/self/statm; 0 where unavailable).
std::size_t process_rss_bytes() noexcept;
// Memory the allocators hold resident without any live allocation in it (an estimate): the C
// library's free chunks (mallinfo2's fordblks, every arena) beyond those that the last
// release_free_memory() handed back, plus what mimalloc has committed beyond the live
// aligned_zalloc blocks.
std::size_t allocator_free_bytes() noexcept;
// Hands the C library's free pages back to the system (malloc_trim): after a large transaction
// its operations and records are freed, and glibc would keep them resident. Costs a walk of
// the free chunks (milliseconds for hundreds of MB): call it after large work, not per row.
void release_free_memory() noexcept;

// NUMA placement (libnuma). On a machine with more than one node, embedding chunks are placed
// round-robin over the nodes (chunk i on node i mod nodes), so that parallel scans read from
// every node's memory; with one node (or without NUMA support) they are anonymous mappings
// populated at allocation (MAP_POPULATE).
int numa_nodes() noexcept;
// Zeroed, `align`-aligned (≤ 4096) memory for chunk number `index`; throws std::bad_alloc.
void* chunk_zalloc(std::size_t bytes, std::size_t align, std::size_t index);
// Frees chunk_zalloc memory of the same size.
void chunk_free(void* p, std::size_t bytes) noexcept;
// "off (1 node)" or "chunks interleaved over N nodes".
std::string numa_placement();

} // namespace engram::engine
