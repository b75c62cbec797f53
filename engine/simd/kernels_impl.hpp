#pragma once
// One implementation of the KernelTable kernels, templated on an xsimd architecture.
//
// Include this header ONLY from the per-ISA translation units (kernels_sse4.cpp,
// kernels_avx2.cpp, kernels_avx512.cpp), each compiled with its own ISA flags and instantiating
// `make_table<Arch>()` for exactly one Arch.
//
// HOW IT WORKS
//   dot / squared_norm / cosine   several independent accumulators per call so that the loop is
//                                 bound by load/FMA throughput rather than FMA latency; the lanes
//                                 are summed once at the end; a scalar loop handles n % width.
//   dot_many                      one query against a strided run of rows, kRowsMany rows at a
//                                 time: each query load is shared by several rows.
//   dot_block                     a blocked matrix product out = Q * R^T. The innermost kernel
//                                 computes a register-blocked tile of kTileQ query rows by kTileR
//                                 data rows (kTileQ * kTileR accumulators, kTileQ + kTileR loads
//                                 per kTileQ * kTileR FMAs). Around it, data rows are taken in
//                                 blocks that fit in L2 and the dimension is cut into slices of
//                                 kSliceFloats, so the queries of one tile stay in L1 and each
//                                 data block is read from memory once per slice.
//   cosine / normalize            combine the float sums in double. When a sum is zero, tiny
//                                 (subnormal squares lose precision) or not finite (overflow),
//                                 the kernel recomputes in double, as the scalar reference does.
//
// One definition rule: every function here has internal linkage (anonymous namespace), so the
// copies compiled with different ISA flags never merge at link time. For the same reason the
// code avoids out-of-line std:: helpers (std::min, std::sqrt, std::isfinite) whose AVX-compiled
// copy the linker could pick for a caller in a non-AVX translation unit; it uses compiler
// builtins and intrinsics instead. xsimd's own templates are instantiated per Arch, and no
// other translation unit instantiates them with these Arch types.
#include <immintrin.h>

#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "engine/simd/kernels.hpp"

namespace engram::engine::simd {
namespace {

// Below this a float sum of squares may consist of subnormal squares and has lost precision.
constexpr float kTinySquaredNorm = 1e-28F;
// Slice of the dimension processed per pass of dot_block (multiple of every SIMD width).
constexpr std::size_t kSliceFloats = 2048;
// Bytes of data rows that dot_block keeps resident (about half of a typical 1 MiB L2).
constexpr std::size_t kRowBlockBytes = std::size_t{512} * 1024;

constexpr std::size_t min_size(std::size_t a, std::size_t b) {
    return a < b ? a : b;
}

constexpr bool is_finite(float x) {
    return __builtin_isfinite(x);
}

float clamp_unit(double c) {
    if (c > 1.0) {
        return 1.0F;
    }
    if (c < -1.0) {
        return -1.0F;
    }
    return static_cast<float>(c);
}

// Per-architecture primitives: the only place that distinguishes the ISAs.
template <class Arch> struct Ops {
    using Batch = xsimd::batch<float, Arch>;
    static constexpr std::size_t kWidth = Batch::size;
    static constexpr bool kIsAvx512 = std::is_same_v<Arch, xsimd::avx512f>;
    // Register tile of dot_block: 4 x 4 needs 16 accumulators + 8 operands, which fits the 32
    // zmm registers of AVX-512; with 16 registers (SSE, AVX2) 3 x 4 fits without spilling.
    static constexpr std::size_t kTileQ = kIsAvx512 ? 4 : 3;
    static constexpr std::size_t kTileR = 4;
    // dot_many rows in flight: 8 independent accumulators cover the FMA latency, and 8 row
    // streams measured faster than 4 or 16 at every width.
    static constexpr std::size_t kRowsMany = 8;

    static Batch load(const float* p) { return Batch::load_unaligned(p); }
    static Batch zero() { return Batch(0.0F); }
    // a * b + c, fused where the ISA has FMA. xsimd 8.1 has no AVX-512 fma overload (its
    // generic one is a separate multiply and add), so AVX-512 calls the intrinsic directly.
    static Batch madd(const Batch& a, const Batch& b, const Batch& c) {
        if constexpr (kIsAvx512) {
            return Batch(_mm512_fmadd_ps(a, b, c));
        } else {
            return xsimd::fma(a, b, c);
        }
    }
    // Sum of the lanes. xsimd 8.1's AVX-512 hadd goes through its AVX2 kernel, which would
    // instantiate AVX2 templates in the AVX-512 translation unit, and GCC 12's
    // _mm512_reduce_add_ps trips -Wuninitialized; fold the halves by hand instead.
    static float sum(const Batch& v) {
        if constexpr (kIsAvx512) {
            const __m256 h =
                _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
            const __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            const __m128 y = _mm_add_ps(x, _mm_movehl_ps(x, x));
            return _mm_cvtss_f32(_mm_add_ss(y, _mm_shuffle_ps(y, y, 1)));
        } else {
            return xsimd::hadd(v);
        }
    }
};

// Double-precision recomputation for the rare inputs whose float sums are unusable.
float cosine_double(const float* a, const float* b, std::size_t n) {
    double d = 0.0;
    double na = 0.0;
    double nb = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = a[i];
        const double y = b[i];
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    if (na == 0.0 || nb == 0.0) {
        return 0.0F;
    }
    return clamp_unit(d / (__builtin_sqrt(na) * __builtin_sqrt(nb)));
}

float normalize_double(float* a, std::size_t n) {
    double ss = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = a[i];
        ss += x * x;
    }
    if (ss == 0.0) {
        return 0.0F;
    }
    const double norm = __builtin_sqrt(ss);
    for (std::size_t i = 0; i < n; ++i) {
        a[i] = static_cast<float>(a[i] / norm);
    }
    return static_cast<float>(norm);
}

template <class Arch> float dot_impl(const float* a, const float* b, std::size_t n) {
    using O = Ops<Arch>;
    constexpr std::size_t w = O::kWidth;
    auto acc0 = O::zero();
    auto acc1 = O::zero();
    auto acc2 = O::zero();
    auto acc3 = O::zero();
    std::size_t i = 0;
    for (; i + 4 * w <= n; i += 4 * w) {
        acc0 = O::madd(O::load(a + i), O::load(b + i), acc0);
        acc1 = O::madd(O::load(a + i + w), O::load(b + i + w), acc1);
        acc2 = O::madd(O::load(a + i + 2 * w), O::load(b + i + 2 * w), acc2);
        acc3 = O::madd(O::load(a + i + 3 * w), O::load(b + i + 3 * w), acc3);
    }
    for (; i + w <= n; i += w) {
        acc0 = O::madd(O::load(a + i), O::load(b + i), acc0);
    }
    float s = O::sum((acc0 + acc1) + (acc2 + acc3));
    for (; i < n; ++i) {
        s += a[i] * b[i];
    }
    return s;
}

template <class Arch> float squared_norm_impl(const float* a, std::size_t n) {
    return dot_impl<Arch>(a, a, n);
}

template <class Arch> float cosine_impl(const float* a, const float* b, std::size_t n) {
    using O = Ops<Arch>;
    constexpr std::size_t w = O::kWidth;
    auto d0 = O::zero();
    auto d1 = O::zero();
    auto na0 = O::zero();
    auto na1 = O::zero();
    auto nb0 = O::zero();
    auto nb1 = O::zero();
    std::size_t i = 0;
    for (; i + 2 * w <= n; i += 2 * w) {
        const auto x0 = O::load(a + i);
        const auto y0 = O::load(b + i);
        const auto x1 = O::load(a + i + w);
        const auto y1 = O::load(b + i + w);
        d0 = O::madd(x0, y0, d0);
        na0 = O::madd(x0, x0, na0);
        nb0 = O::madd(y0, y0, nb0);
        d1 = O::madd(x1, y1, d1);
        na1 = O::madd(x1, x1, na1);
        nb1 = O::madd(y1, y1, nb1);
    }
    for (; i + w <= n; i += w) {
        const auto x = O::load(a + i);
        const auto y = O::load(b + i);
        d0 = O::madd(x, y, d0);
        na0 = O::madd(x, x, na0);
        nb0 = O::madd(y, y, nb0);
    }
    float d = O::sum(d0 + d1);
    float na = O::sum(na0 + na1);
    float nb = O::sum(nb0 + nb1);
    for (; i < n; ++i) {
        d += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    const bool usable = na >= kTinySquaredNorm && nb >= kTinySquaredNorm && is_finite(na) &&
                        is_finite(nb) && is_finite(d);
    if (!usable) {
        return cosine_double(a, b, n);
    }
    return clamp_unit(static_cast<double>(d) / __builtin_sqrt(static_cast<double>(na) * nb));
}

template <class Arch> float normalize_impl(float* a, std::size_t n) {
    using O = Ops<Arch>;
    constexpr std::size_t w = O::kWidth;
    const float ss = dot_impl<Arch>(a, a, n);
    if (!(ss >= kTinySquaredNorm && is_finite(ss))) {
        return normalize_double(a, n);
    }
    const double norm = __builtin_sqrt(static_cast<double>(ss));
    const float scale = static_cast<float>(1.0 / norm);
    const auto vscale = typename O::Batch(scale);
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        (O::load(a + i) * vscale).store_unaligned(a + i);
    }
    for (; i < n; ++i) {
        a[i] *= scale;
    }
    return static_cast<float>(norm);
}

// res[q][r] = sum over k in [k0, k1) of qs[q * qstride + k] * rows[r * rstride + k].
// The fixed Q x R accumulators live in registers; the unroll pragmas make sure of it at -O2.
template <class Arch, std::size_t Q, std::size_t R>
void tile_dots(const float* qs, std::size_t qstride, const float* rows, std::size_t rstride,
               std::size_t k0, std::size_t k1, float (&res)[Q][R]) {
    using O = Ops<Arch>;
    using Batch = typename O::Batch;
    constexpr std::size_t w = O::kWidth;
    Batch acc[Q][R];
#pragma GCC unroll 16
    for (std::size_t q = 0; q < Q; ++q) {
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r) {
            acc[q][r] = O::zero();
        }
    }
    std::size_t k = k0;
    for (; k + w <= k1; k += w) {
        Batch qv[Q];
#pragma GCC unroll 16
        for (std::size_t q = 0; q < Q; ++q) {
            qv[q] = O::load(qs + q * qstride + k);
        }
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r) {
            const Batch rv = O::load(rows + r * rstride + k);
#pragma GCC unroll 16
            for (std::size_t q = 0; q < Q; ++q) {
                acc[q][r] = O::madd(qv[q], rv, acc[q][r]);
            }
        }
    }
#pragma GCC unroll 16
    for (std::size_t q = 0; q < Q; ++q) {
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r) {
            res[q][r] = O::sum(acc[q][r]);
        }
    }
    for (; k < k1; ++k) {
        for (std::size_t q = 0; q < Q; ++q) {
            for (std::size_t r = 0; r < R; ++r) {
                res[q][r] += qs[q * qstride + k] * rows[r * rstride + k];
            }
        }
    }
}

// Computes one Q x R tile over the slice [k0, k1) and stores it into out (row pitch ldo), or
// adds it when an earlier slice already stored there.
template <class Arch, std::size_t Q, std::size_t R>
void tile_to_out(const float* qs, std::size_t qstride, const float* rows, std::size_t rstride,
                 std::size_t k0, std::size_t k1, bool accumulate, float* out, std::size_t ldo) {
    float res[Q][R];
    tile_dots<Arch, Q, R>(qs, qstride, rows, rstride, k0, k1, res);
    for (std::size_t q = 0; q < Q; ++q) {
        for (std::size_t r = 0; r < R; ++r) {
            if (accumulate) {
                out[q * ldo + r] += res[q][r];
            } else {
                out[q * ldo + r] = res[q][r];
            }
        }
    }
}

// Picks the tile of rn data rows (1 <= rn <= kTileR) at compile time.
template <class Arch, std::size_t Q>
void tile_rows(std::size_t rn, const float* qs, std::size_t qstride, const float* rows,
               std::size_t rstride, std::size_t k0, std::size_t k1, bool accumulate, float* out,
               std::size_t ldo) {
    static_assert(Ops<Arch>::kTileR == 4, "tile_rows handles up to 4 data rows");
    switch (rn) {
    case 4:
        tile_to_out<Arch, Q, 4>(qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    case 3:
        tile_to_out<Arch, Q, 3>(qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    case 2:
        tile_to_out<Arch, Q, 2>(qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    default:
        tile_to_out<Arch, Q, 1>(qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    }
}

// Picks the tile of qn query rows (1 <= qn <= kTileQ) at compile time.
template <class Arch>
void tile_any(std::size_t qn, std::size_t rn, const float* qs, std::size_t qstride,
              const float* rows, std::size_t rstride, std::size_t k0, std::size_t k1,
              bool accumulate, float* out, std::size_t ldo) {
    static_assert(Ops<Arch>::kTileQ >= 3 && Ops<Arch>::kTileQ <= 4,
                  "tile_any handles tiles of 3 or 4 query rows");
    if constexpr (Ops<Arch>::kTileQ == 4) {
        if (qn == 4) {
            tile_rows<Arch, 4>(rn, qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
            return;
        }
    }
    switch (qn) {
    case 3:
        tile_rows<Arch, 3>(rn, qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    case 2:
        tile_rows<Arch, 2>(rn, qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    default:
        tile_rows<Arch, 1>(rn, qs, qstride, rows, rstride, k0, k1, accumulate, out, ldo);
        break;
    }
}

template <class Arch>
void dot_many_impl(const float* q, const float* rows, std::size_t stride, std::size_t count,
                   std::size_t n, float* out) {
    constexpr std::size_t kRows = Ops<Arch>::kRowsMany;
    std::size_t r = 0;
    for (; r + kRows <= count; r += kRows) {
        float res[1][kRows];
        tile_dots<Arch, 1, kRows>(q, 0, rows + r * stride, stride, 0, n, res);
        for (std::size_t j = 0; j < kRows; ++j) {
            out[r + j] = res[0][j];
        }
    }
    for (; r < count; ++r) {
        out[r] = dot_impl<Arch>(q, rows + r * stride, n);
    }
}

template <class Arch>
void dot_block_impl(const float* qs, std::size_t qstride, std::size_t nq, const float* rows,
                    std::size_t rstride, std::size_t nr, std::size_t n, float* out) {
    using O = Ops<Arch>;
    constexpr std::size_t tq = O::kTileQ;
    constexpr std::size_t tr = O::kTileR;
    static_assert(kSliceFloats % O::kWidth == 0, "slices must not split a SIMD step");
    if (nq == 0 || nr == 0) {
        return;
    }
    if (n == 0) {
        for (std::size_t i = 0; i < nq * nr; ++i) {
            out[i] = 0.0F;
        }
        return;
    }
    for (std::size_t k0 = 0; k0 < n; k0 += kSliceFloats) {
        const std::size_t k1 = min_size(n, k0 + kSliceFloats);
        const bool accumulate = k0 != 0;
        // Data rows per block: as many whole tiles as fit in kRowBlockBytes for this slice.
        const std::size_t slice_bytes = (k1 - k0) * sizeof(float);
        std::size_t block_rows = (kRowBlockBytes / slice_bytes) / tr * tr;
        if (block_rows < tr) {
            block_rows = tr;
        }
        for (std::size_t r0 = 0; r0 < nr; r0 += block_rows) {
            const std::size_t r1 = min_size(nr, r0 + block_rows);
            for (std::size_t q0 = 0; q0 < nq; q0 += tq) {
                const std::size_t qn = min_size(tq, nq - q0);
                const float* qp = qs + q0 * qstride;
                for (std::size_t r = r0; r < r1; r += tr) {
                    const std::size_t rn = min_size(tr, r1 - r);
                    tile_any<Arch>(qn, rn, qp, qstride, rows + r * rstride, rstride, k0, k1,
                                   accumulate, out + q0 * nr + r, nr);
                }
            }
        }
    }
}

template <class Arch> constexpr KernelTable make_table(Level level, const char* name) {
    return KernelTable{level,
                       name,
                       &dot_impl<Arch>,
                       &squared_norm_impl<Arch>,
                       &cosine_impl<Arch>,
                       &normalize_impl<Arch>,
                       &dot_many_impl<Arch>,
                       &dot_block_impl<Arch>};
}

} // namespace
} // namespace engram::engine::simd
