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

namespace engram::engine {

// Returns zeroed memory of `bytes` aligned to `align` (a power of two); throws std::bad_alloc.
void* aligned_zalloc(std::size_t bytes, std::size_t align);
// Frees memory from aligned_zalloc (nullptr allowed).
void aligned_free(void* p) noexcept;
// "mimalloc 2.0.9" or "libc (mimalloc not found)".
const char* allocator_name() noexcept;

} // namespace engram::engine
