// Run-time selection of the kernel table. Compiled without ISA flags: this file only asks the
// CPU (through libgcc's cpuid cache, which also checks that the OS saves the AVX/AVX-512 state)
// and hands out pointers to the per-ISA tables.
#include <cstddef>
#include <cstdlib>
#include <iterator>

#include "engine/simd/kernels.hpp"

namespace engram::engine::simd {
namespace {

#if defined(__x86_64__) || defined(__i386__)
#define ENGRAM_SIMD_X86 1
#else
#define ENGRAM_SIMD_X86 0
#endif

constexpr Level kAllLevels[] = {Level::kScalar, Level::kSse4, Level::kAvx2, Level::kAvx512};

bool cpu_supports(Level level) noexcept {
#if ENGRAM_SIMD_X86
    __builtin_cpu_init();
    switch (level) {
    case Level::kScalar:
        return true;
    case Level::kSse4:
        return __builtin_cpu_supports("sse4.2") != 0;
    case Level::kAvx2:
        return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
    case Level::kAvx512:
        return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
               __builtin_cpu_supports("avx512dq") != 0 && __builtin_cpu_supports("avx512vl") != 0;
    }
    return false;
#else
    return level == Level::kScalar;
#endif
}

const KernelTable* best_kernels() noexcept {
    // kAllLevels is ordered worst to best; scalar always qualifies.
    for (std::size_t i = std::size(kAllLevels); i-- > 0;) {
        if (const KernelTable* table = kernels_for(kAllLevels[i])) {
            return table;
        }
    }
    return &scalar_kernels();
}

// ENGRAM_SIMD picks a level when the CPU has it; anything else (unset, empty, unknown, or a
// level this CPU lacks) gets the best supported level.
const KernelTable* select_kernels() noexcept {
    const char* forced = std::getenv("ENGRAM_SIMD"); // NOLINT(concurrency-mt-unsafe): read once
    Level level{};
    if (forced != nullptr && parse_level(forced, &level)) {
        if (const KernelTable* table = kernels_for(level)) {
            return table;
        }
    }
    return best_kernels();
}

bool equals_ignore_case(const char* a, const char* b) noexcept {
    for (; *a != '\0' && *b != '\0'; ++a, ++b) {
        char x = *a;
        if (x >= 'A' && x <= 'Z') {
            x = static_cast<char>(x - 'A' + 'a');
        }
        if (x != *b) {
            return false;
        }
    }
    return *a == *b;
}

} // namespace

const KernelTable* kernels_for(Level level) noexcept {
    if (!cpu_supports(level)) {
        return nullptr;
    }
    switch (level) {
    case Level::kScalar:
        return &scalar_kernels();
#if ENGRAM_SIMD_X86
    case Level::kSse4:
        return &sse4_kernels();
    case Level::kAvx2:
        return &avx2_kernels();
    case Level::kAvx512:
        return &avx512_kernels();
#endif
    default:
        return nullptr;
    }
}

const KernelTable& kernels() noexcept {
    // Initialised once, thread-safe (C++11 magic statics); the table itself is immutable.
    static const KernelTable* const selected = select_kernels();
    return *selected;
}

const char* level_name(Level level) noexcept {
    switch (level) {
    case Level::kScalar:
        return "scalar";
    case Level::kSse4:
        return "sse4";
    case Level::kAvx2:
        return "avx2";
    case Level::kAvx512:
        return "avx512";
    }
    return "unknown";
}

// Accepts the names level_name returns, in any letter case.
bool parse_level(const char* name, Level* out) noexcept {
    if (name == nullptr || out == nullptr) {
        return false;
    }
    for (const Level level : kAllLevels) {
        if (equals_ignore_case(name, level_name(level))) {
            *out = level;
            return true;
        }
    }
    return false;
}

} // namespace engram::engine::simd
