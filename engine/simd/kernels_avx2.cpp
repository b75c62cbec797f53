// AVX2 + FMA kernels. Compiled with -mavx2 -mfma only.
#include "engine/simd/kernels_impl.hpp"

#if !XSIMD_WITH_FMA3_AVX2
#error "kernels_avx2.cpp must be compiled with -mavx2 -mfma"
#endif

namespace engram::engine::simd {
namespace {
constexpr KernelTable kAvx2Table = make_table<xsimd::fma3<xsimd::avx2>>(Level::kAvx2, "avx2");
} // namespace

const KernelTable& avx2_kernels() noexcept {
    return kAvx2Table;
}

} // namespace engram::engine::simd
