// Int8 dot-product kernels for the HNSW traversal (see quant.hpp).
//
// Each ISA variant is one function carrying its own `__attribute__((target(...)))`, so this file
// is compiled with the baseline flags like the rest of the engine: no inline function from a
// header is ever compiled with wider ISA flags here (no one-definition-rule hazard), and the wide
// instructions run only after the dispatch below has checked the CPU.
//
// HOW IT WORKS
//   sse4 / avx2 / avx512bw   sign-extend 8/16/32 codes to int16 (pmovsxbw), multiply pairs and
//                            add them into int32 lanes (pmaddwd), two accumulators per 64 bytes.
//   (An AVX-512-VNNI variant, vpdpbusd on a XOR 0x80 with a correction of 128*sum(b), measured
//   slower than avx512bw on Zen 4 and was dropped.)
//   Codes are in [-127, 127]: a pmaddwd pair sum is at most 2*127*127 and an int32 lane holds
//   2^17 such products without overflow.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/hnsw/quant.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine::quant {
namespace {

std::int32_t dot_scalar(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
    std::int32_t s = 0;
    for (std::size_t i = 0; i < n; ++i) {
        s += static_cast<std::int32_t>(a[i]) * static_cast<std::int32_t>(b[i]);
    }
    return s;
}

#if defined(__x86_64__) || defined(__i386__)
#define ENGRAM_QUANT_X86 1

// Horizontal sum of 16 int32 lanes, through memory: GCC 12's lane-extracting intrinsics
// (_mm512_reduce_add_epi32, _mm512_castsi512_si256, ...) trip -Wuninitialized inside `target`
// functions, and the store costs about as much as the shuffles.
__attribute__((target("avx512f"))) std::int32_t reduce_add_512(__m512i v) {
    alignas(64) std::int32_t lanes[16];
    _mm512_store_si512(lanes, v);
    std::int32_t s = 0;
    for (const std::int32_t x : lanes) {
        s += x;
    }
    return s;
}

__attribute__((target("sse4.1"))) std::int32_t dot_sse4(const std::int8_t* a, const std::int8_t* b,
                                                        std::size_t n) {
    __m128i acc0 = _mm_setzero_si128();
    __m128i acc1 = _mm_setzero_si128();
    for (std::size_t i = 0; i < n; i += 16) {
        const __m128i a0 =
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)));
        const __m128i b0 =
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i)));
        const __m128i a1 =
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i + 8)));
        const __m128i b1 =
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i + 8)));
        acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(a0, b0));
        acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(a1, b1));
    }
    __m128i acc = _mm_add_epi32(acc0, acc1);
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4E));
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xB1));
    return _mm_cvtsi128_si32(acc);
}

__attribute__((target("avx2"))) std::int32_t dot_avx2(const std::int8_t* a, const std::int8_t* b,
                                                      std::size_t n) {
    __m256i acc0 = _mm256_setzero_si256();
    __m256i acc1 = _mm256_setzero_si256();
    for (std::size_t i = 0; i < n; i += 32) {
        const __m256i a0 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        const __m256i b0 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
        const __m256i a1 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16)));
        const __m256i b1 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a0, b0));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a1, b1));
    }
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx512f,avx512bw"))) std::int32_t
dot_avx512bw(const std::int8_t* a, const std::int8_t* b, std::size_t n) {
    __m512i acc0 = _mm512_setzero_si512();
    __m512i acc1 = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 64) {
        const __m512i a0 =
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
        const __m512i b0 =
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
        const __m512i a1 =
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 32)));
        const __m512i b1 =
            _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 32)));
        acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(a0, b0));
        acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(a1, b1));
    }
    return reduce_add_512(_mm512_add_epi32(acc0, acc1));
}

#else
#define ENGRAM_QUANT_X86 0
#endif

constexpr QuantKernels kScalar{"scalar", dot_scalar};
#if ENGRAM_QUANT_X86
constexpr QuantKernels kSse4{"sse4", dot_sse4};
constexpr QuantKernels kAvx2{"avx2", dot_avx2};
constexpr QuantKernels kAvx512bw{"avx512bw", dot_avx512bw};
#endif

struct Variants {
    const QuantKernels* list[4] = {};
    std::size_t count = 0;
    const QuantKernels* selected = &kScalar;

    Variants() {
        list[count++] = &kScalar;
#if ENGRAM_QUANT_X86
        __builtin_cpu_init();
        const bool sse4 = __builtin_cpu_supports("sse4.1") != 0;
        const bool avx2 = __builtin_cpu_supports("avx2") != 0;
        // simd::kernels_for() returns a table only when the CPU and the OS support its level.
        const bool avx512 = simd::kernels_for(simd::Level::kAvx512) != nullptr &&
                            __builtin_cpu_supports("avx512bw") != 0;
        if (sse4) {
            list[count++] = &kSse4;
        }
        if (avx2 && simd::kernels_for(simd::Level::kAvx2) != nullptr) {
            list[count++] = &kAvx2;
        }
        if (avx512) {
            list[count++] = &kAvx512bw;
        }
        // Follow the level the float kernels run at, so ENGRAM_SIMD=... forces both.
        switch (simd::kernels().level) {
        case simd::Level::kScalar:
            selected = &kScalar;
            break;
        case simd::Level::kSse4:
            selected = sse4 ? &kSse4 : &kScalar;
            break;
        case simd::Level::kAvx2:
            selected = avx2 ? &kAvx2 : &kScalar;
            break;
        case simd::Level::kAvx512:
            selected = avx512 ? &kAvx512bw : &kAvx2;
            break;
        }
#endif
    }
};

const Variants& variants() noexcept {
    static const Variants v;
    return v;
}

} // namespace

const QuantKernels& quant_kernels() noexcept {
    return *variants().selected;
}

const QuantKernels* const* quant_variants(std::size_t* count) noexcept {
    const Variants& v = variants();
    *count = v.count;
    return v.list;
}

float quantize_i8(const float* x, std::size_t dim, std::int8_t* codes,
                  std::size_t padded) noexcept {
    float max_abs = 0.0F;
    for (std::size_t i = 0; i < dim; ++i) {
        const float a = std::fabs(x[i]);
        max_abs = a > max_abs ? a : max_abs;
    }
    std::memset(codes, 0, padded);
    if (!(max_abs > 0.0F) || !std::isfinite(max_abs)) {
        return 0.0F;
    }
    const float scale = 127.0F / max_abs;
    for (std::size_t i = 0; i < dim; ++i) {
        long c = std::lround(x[i] * scale);
        c = c > 127 ? 127 : (c < -127 ? -127 : c);
        codes[i] = static_cast<std::int8_t>(c);
    }
    return max_abs / 127.0F;
}

} // namespace engram::engine::quant
