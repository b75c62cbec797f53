#pragma once
// SIMD kernels for float32 vectors, one implementation per instruction set, chosen once at run
// time.
//
// Every ISA's kernels live in their own translation unit (kernels_scalar.cpp, kernels_sse4.cpp,
// kernels_avx2.cpp, kernels_avx512.cpp), compiled with that ISA's flags only; nothing else in the
// build uses ISA flags. `kernels()` returns the table picked at first use: the best level the CPU
// supports, or the level forced by the environment variable ENGRAM_SIMD=scalar|sse4|avx2|avx512
// (a level the CPU lacks, or an unknown name, falls back to the best supported level).
//
// Thread safety: tables are immutable after selection; every kernel is reentrant.
// Contracts: pointers may be unaligned; n may be any size (0 allowed); no kernel allocates.
#include <cstddef>

namespace engram::engine::simd {

enum class Level { kScalar = 0, kSse4 = 1, kAvx2 = 2, kAvx512 = 3 };

struct KernelTable {
    Level level;
    const char* name; // "scalar", "sse4", "avx2", "avx512"
    // sum a[i]*b[i]
    float (*dot)(const float* a, const float* b, std::size_t n);
    // sum a[i]*a[i]
    float (*squared_norm)(const float* a, std::size_t n);
    // dot / (|a||b|), 0 when either norm is 0, clamped to [-1, 1]
    float (*cosine)(const float* a, const float* b, std::size_t n);
    // scales a to unit length in place and returns its original L2 norm; a zero vector is left as
    // is
    float (*normalize)(float* a, std::size_t n);
    // out[r] = dot(q, rows + r*stride) for r in [0, count); stride in floats, stride >= n
    void (*dot_many)(const float* q, const float* rows, std::size_t stride, std::size_t count,
                     std::size_t n, float* out);
    // out[i*nr + j] = dot(qs + i*qstride, rows + j*rstride): blocked many-against-many
    void (*dot_block)(const float* qs, std::size_t qstride, std::size_t nq, const float* rows,
                      std::size_t rstride, std::size_t nr, std::size_t n, float* out);
};

// The table in use (selected once, thread-safe).
const KernelTable& kernels() noexcept;
// The table of one level, or nullptr when this CPU (or this build) cannot run it.
const KernelTable* kernels_for(Level level) noexcept;
// Name of a level ("scalar", ...); parse_level returns false for unknown names.
const char* level_name(Level level) noexcept;
bool parse_level(const char* name, Level* out) noexcept;

// Per-ISA tables, defined in their own translation units.
const KernelTable& scalar_kernels() noexcept;
const KernelTable& sse4_kernels() noexcept;
const KernelTable& avx2_kernels() noexcept;
const KernelTable& avx512_kernels() noexcept;

} // namespace engram::engine::simd
