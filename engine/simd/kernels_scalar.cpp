// Scalar reference kernels: plain loops, compiled without ISA flags.
//
// dot and squared_norm accumulate in float in index order, the straightforward loop (without
// -ffast-math the compiler keeps that order, so it does not vectorise them). cosine and
// normalize accumulate in double, which makes them the accurate reference the SIMD kernels are
// tested against. dot_many and dot_block are loops over dot.
#include <cmath>
#include <cstddef>

#include "engine/simd/kernels.hpp"

namespace engram::engine::simd {
namespace {

float dot_scalar(const float* a, const float* b, std::size_t n) {
    float s = 0.0F;
    for (std::size_t i = 0; i < n; ++i) {
        s += a[i] * b[i];
    }
    return s;
}

float squared_norm_scalar(const float* a, std::size_t n) {
    float s = 0.0F;
    for (std::size_t i = 0; i < n; ++i) {
        s += a[i] * a[i];
    }
    return s;
}

float cosine_scalar(const float* a, const float* b, std::size_t n) {
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
    const double c = d / (std::sqrt(na) * std::sqrt(nb));
    if (c > 1.0) {
        return 1.0F;
    }
    if (c < -1.0) {
        return -1.0F;
    }
    return static_cast<float>(c);
}

float normalize_scalar(float* a, std::size_t n) {
    double ss = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double x = a[i];
        ss += x * x;
    }
    if (ss == 0.0) {
        return 0.0F;
    }
    const double norm = std::sqrt(ss);
    for (std::size_t i = 0; i < n; ++i) {
        a[i] = static_cast<float>(a[i] / norm);
    }
    return static_cast<float>(norm);
}

void dot_many_scalar(const float* q, const float* rows, std::size_t stride, std::size_t count,
                     std::size_t n, float* out) {
    for (std::size_t r = 0; r < count; ++r) {
        out[r] = dot_scalar(q, rows + r * stride, n);
    }
}

void dot_block_scalar(const float* qs, std::size_t qstride, std::size_t nq, const float* rows,
                      std::size_t rstride, std::size_t nr, std::size_t n, float* out) {
    for (std::size_t i = 0; i < nq; ++i) {
        for (std::size_t j = 0; j < nr; ++j) {
            out[i * nr + j] = dot_scalar(qs + i * qstride, rows + j * rstride, n);
        }
    }
}

constexpr KernelTable kScalarTable{Level::kScalar,       "scalar",         &dot_scalar,
                                   &squared_norm_scalar, &cosine_scalar,   &normalize_scalar,
                                   &dot_many_scalar,     &dot_block_scalar};

} // namespace

const KernelTable& scalar_kernels() noexcept {
    return kScalarTable;
}

} // namespace engram::engine::simd
