#pragma once
// Int8 scalar-quantised vectors for the HNSW traversal: the codes, and a runtime-dispatched dot
// product over them.
//
// A unit vector x is stored as codes c[i] = round(x[i] * 127 / max|x|) in [-127, 127] plus one
// float `inv_scale` = max|x| / 127, so x[i] ~ c[i] * inv_scale and
//     dot(x, y) ~ dot_i8(cx, cy) * inv_scale_x * inv_scale_y.
// The scale is per vector, so no training pass is needed and vectors can arrive one at a time.
// Code rows are zero-padded to a multiple of kQuantBlock bytes; the kernels require n to be such a
// multiple and so have no tail loop.
//
// The kernels live in quant_i8.cpp: one scalar reference and SSE4.1 / AVX2 / AVX-512BW variants,
// each a function with its own `target` attribute (so the file needs no ISA flags and nothing else
// is compiled with them). The variant is picked once, at the level the float kernels run at
// (simd::kernels(), which honours ENGRAM_SIMD).
//
// Thread safety: the table is immutable after selection; the kernels are reentrant.
#include <cstddef>
#include <cstdint>

namespace engram::engine::quant {

// Code rows are padded to this many bytes (one cache line).
constexpr std::size_t kQuantBlock = 64;

struct QuantKernels {
    const char* name; // "scalar", "sse4", "avx2", "avx512bw"
    // sum a[i]*b[i] over int8 codes in [-127, 127]; n % kQuantBlock == 0, n <= 2^17 (no overflow).
    std::int32_t (*dot_i8)(const std::int8_t* a, const std::int8_t* b, std::size_t n);
};

// The table in use (selected once, thread-safe).
const QuantKernels& quant_kernels() noexcept;
// Every variant this CPU can run, scalar first (for tests); `count` receives the number.
const QuantKernels* const* quant_variants(std::size_t* count) noexcept;

// Writes the codes of x (dim floats) into codes[0, padded) (padded >= dim, zero beyond dim) and
// returns inv_scale (0 for a zero vector). Portable; not on the hot path of a search.
float quantize_i8(const float* x, std::size_t dim, std::int8_t* codes, std::size_t padded) noexcept;

} // namespace engram::engine::quant
