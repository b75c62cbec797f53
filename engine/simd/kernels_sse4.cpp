// SSE4.2 kernels. Compiled with -msse4.2 only (no FMA: multiply and add are separate).
#include "engine/simd/kernels_impl.hpp"

#if !XSIMD_WITH_SSE4_2
#error "kernels_sse4.cpp must be compiled with -msse4.2"
#endif

namespace engram::engine::simd {
namespace {
constexpr KernelTable kSse4Table = make_table<xsimd::sse4_2>(Level::kSse4, "sse4");
} // namespace

const KernelTable& sse4_kernels() noexcept {
    return kSse4Table;
}

} // namespace engram::engine::simd
