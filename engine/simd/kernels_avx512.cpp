// AVX-512 kernels. Compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma only; the
// dispatcher requires all four AVX-512 subsets, although the kernels themselves use F and DQ.
#include "engine/simd/kernels_impl.hpp"

#if !XSIMD_WITH_AVX512F || !XSIMD_WITH_AVX512DQ
#error "kernels_avx512.cpp must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl"
#endif

namespace engram::engine::simd {
namespace {
constexpr KernelTable kAvx512Table = make_table<xsimd::avx512f>(Level::kAvx512, "avx512");
} // namespace

const KernelTable& avx512_kernels() noexcept {
    return kAvx512Table;
}

} // namespace engram::engine::simd
