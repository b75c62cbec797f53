// Tests for engine/simd: every kernel of every level this CPU supports against double-precision
// references and against the scalar table, over all dimensions 1..1030, unaligned pointers,
// strided rows whose padding holds NaN (a kernel that reads it produces NaN and fails), and
// guard values after every output (a kernel that writes past its output fails).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/simd/kernels.hpp"

namespace engram::engine::simd {
namespace {

constexpr std::size_t kMaxDim = 1030;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kGuard = -12345.0F;
// dot: |error| <= kDotRelTol * sum |a_i b_i| (the natural scale of the rounding error).
constexpr double kDotRelTol = 1e-5;
constexpr double kCosineAbsTol = 1e-6;

constexpr Level kAllLevels[] = {Level::kScalar, Level::kSse4, Level::kAvx2, Level::kAvx512};

// Buffer whose usable part starts `offset` floats past a 64-byte boundary, so that offset 1
// or 3 makes every SIMD load unaligned. Everything outside the usable part is NaN.
class Buffer {
public:
    Buffer(std::size_t size, std::size_t offset)
        : storage_(size + offset + 32, kNaN), offset_(offset) {
        auto addr = reinterpret_cast<std::uintptr_t>(storage_.data());
        const std::size_t skip = ((64 - addr % 64) % 64) / sizeof(float);
        data_ = storage_.data() + skip + offset_;
        size_ = size;
    }
    float* data() { return data_; }
    float& operator[](std::size_t i) { return data_[i]; }
    std::size_t size() const { return size_; }

private:
    std::vector<float> storage_;
    std::size_t offset_;
    float* data_ = nullptr;
    std::size_t size_ = 0;
};

void fill_random(std::mt19937& rng, float* p, std::size_t n) {
    std::uniform_real_distribution<float> dist(-1.0F, 1.0F);
    for (std::size_t i = 0; i < n; ++i) {
        p[i] = dist(rng);
    }
}

struct DotRef {
    double value;
    double scale; // sum |a_i b_i|
};

DotRef dot_ref(const float* a, const float* b, std::size_t n) {
    DotRef r{0.0, 0.0};
    for (std::size_t i = 0; i < n; ++i) {
        const double p = static_cast<double>(a[i]) * b[i];
        r.value += p;
        r.scale += std::fabs(p);
    }
    return r;
}

double cosine_ref(const float* a, const float* b, std::size_t n) {
    double d = 0.0;
    double na = 0.0;
    double nb = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        d += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
    }
    if (na == 0.0 || nb == 0.0) {
        return 0.0;
    }
    return d / std::sqrt(na * nb);
}

double norm_ref(const float* a, std::size_t n) {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        s += static_cast<double>(a[i]) * a[i];
    }
    return std::sqrt(s);
}

void expect_dot_near(float got, const DotRef& ref, const std::string& what) {
    ASSERT_FALSE(std::isnan(got)) << what;
    EXPECT_LE(std::fabs(got - ref.value), kDotRelTol * ref.scale + 1e-30)
        << what << " got " << got << " want " << ref.value;
}

// Dimensions for the (more expensive) many/block kernels: every small size, then the sizes
// around each power of two and common embedding widths.
std::vector<std::size_t> block_dims() {
    std::vector<std::size_t> dims;
    for (std::size_t n = 0; n <= 40; ++n) {
        dims.push_back(n);
    }
    for (const std::size_t n : {63,  64,  65,  127, 128, 129, 255, 256,  257,  383,  384,
                                385, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 1030}) {
        dims.push_back(n);
    }
    return dims;
}

class SimdLevelTest : public ::testing::TestWithParam<Level> {
protected:
    void SetUp() override {
        table_ = kernels_for(GetParam());
        if (table_ == nullptr) {
            GTEST_SKIP() << level_name(GetParam()) << " is not supported on this CPU";
        }
    }
    const KernelTable& t() const { return *table_; }
    const KernelTable& ref() const { return scalar_kernels(); }

    const KernelTable* table_ = nullptr;
    std::mt19937 rng_{12345};
};

TEST_P(SimdLevelTest, TableIsComplete) {
    EXPECT_EQ(t().level, GetParam());
    EXPECT_STREQ(t().name, level_name(GetParam()));
    EXPECT_NE(t().dot, nullptr);
    EXPECT_NE(t().squared_norm, nullptr);
    EXPECT_NE(t().cosine, nullptr);
    EXPECT_NE(t().normalize, nullptr);
    EXPECT_NE(t().dot_many, nullptr);
    EXPECT_NE(t().dot_block, nullptr);
}

TEST_P(SimdLevelTest, DotAndSquaredNormAllDims) {
    for (const std::size_t offset : {0, 1, 3}) {
        Buffer a(kMaxDim, offset);
        Buffer b(kMaxDim, (offset + 2) % 4);
        fill_random(rng_, a.data(), kMaxDim);
        fill_random(rng_, b.data(), kMaxDim);
        for (std::size_t n = 0; n <= kMaxDim; ++n) {
            // The element after the vector is NaN: reading it would poison the sum.
            const float saved_a = n < kMaxDim ? a[n] : 0.0F;
            const float saved_b = n < kMaxDim ? b[n] : 0.0F;
            if (n < kMaxDim) {
                a[n] = kNaN;
                b[n] = kNaN;
            }
            const std::string what = "n=" + std::to_string(n) + " offset=" + std::to_string(offset);
            const DotRef d = dot_ref(a.data(), b.data(), n);
            expect_dot_near(t().dot(a.data(), b.data(), n), d, "dot " + what);
            const float scalar = ref().dot(a.data(), b.data(), n);
            EXPECT_LE(std::fabs(t().dot(a.data(), b.data(), n) - scalar),
                      2 * kDotRelTol * d.scale + 1e-30)
                << "dot vs scalar " << what;
            const DotRef s = dot_ref(a.data(), a.data(), n);
            expect_dot_near(t().squared_norm(a.data(), n), s, "squared_norm " + what);
            if (n < kMaxDim) {
                a[n] = saved_a;
                b[n] = saved_b;
            }
        }
    }
}

TEST_P(SimdLevelTest, DotOfEmptyIsZero) {
    const float x = 1.0F;
    EXPECT_EQ(t().dot(&x, &x, 0), 0.0F);
    EXPECT_EQ(t().squared_norm(&x, 0), 0.0F);
    EXPECT_EQ(t().cosine(&x, &x, 0), 0.0F);
}

TEST_P(SimdLevelTest, CosineAllDims) {
    Buffer a(kMaxDim, 1);
    Buffer b(kMaxDim, 3);
    fill_random(rng_, a.data(), kMaxDim);
    fill_random(rng_, b.data(), kMaxDim);
    for (std::size_t n = 1; n <= kMaxDim; ++n) {
        const float got = t().cosine(a.data(), b.data(), n);
        const double want = cosine_ref(a.data(), b.data(), n);
        EXPECT_NEAR(got, want, kCosineAbsTol) << "n=" << n;
        EXPECT_NEAR(got, ref().cosine(a.data(), b.data(), n), kCosineAbsTol) << "n=" << n;
    }
}

TEST_P(SimdLevelTest, CosineOfCorrelatedVectors) {
    // Cosines near +-1 and near 0.5, where a wrong normalisation shows clearly.
    Buffer a(kMaxDim, 1);
    Buffer b(kMaxDim, 2);
    std::normal_distribution<float> noise(0.0F, 0.3F);
    fill_random(rng_, a.data(), kMaxDim);
    for (std::size_t i = 0; i < kMaxDim; ++i) {
        b[i] = a[i] + noise(rng_);
    }
    for (std::size_t n = 1; n <= kMaxDim; ++n) {
        EXPECT_NEAR(t().cosine(a.data(), b.data(), n), cosine_ref(a.data(), b.data(), n),
                    kCosineAbsTol)
            << "n=" << n;
    }
}

TEST_P(SimdLevelTest, CosineIsClampedToUnitRange) {
    // b = 3a and b = -3a: the exact cosine is +-1, the float sums are rounded differently, so an
    // unclamped result lands on either side of 1.
    Buffer a(kMaxDim, 1);
    Buffer b(kMaxDim, 0);
    Buffer c(kMaxDim, 3);
    fill_random(rng_, a.data(), kMaxDim);
    for (std::size_t i = 0; i < kMaxDim; ++i) {
        b[i] = 3.0F * a[i];
        c[i] = -3.0F * a[i];
    }
    for (std::size_t n = 1; n <= kMaxDim; ++n) {
        const float same = t().cosine(a.data(), b.data(), n);
        EXPECT_LE(same, 1.0F) << "n=" << n;
        EXPECT_GE(same, 1.0F - 1e-6F) << "n=" << n;
        const float opposite = t().cosine(a.data(), c.data(), n);
        EXPECT_GE(opposite, -1.0F) << "n=" << n;
        EXPECT_LE(opposite, -1.0F + 1e-6F) << "n=" << n;
        EXPECT_LE(t().cosine(a.data(), a.data(), n), 1.0F) << "n=" << n;
    }
}

TEST_P(SimdLevelTest, CosineWithZeroNormIsZero) {
    Buffer a(kMaxDim, 1);
    Buffer z(kMaxDim, 2);
    fill_random(rng_, a.data(), kMaxDim);
    for (std::size_t i = 0; i < kMaxDim; ++i) {
        z[i] = 0.0F;
    }
    for (const std::size_t n : {1, 7, 16, 33, 768, 1030}) {
        EXPECT_EQ(t().cosine(a.data(), z.data(), n), 0.0F) << "n=" << n;
        EXPECT_EQ(t().cosine(z.data(), a.data(), n), 0.0F) << "n=" << n;
        EXPECT_EQ(t().cosine(z.data(), z.data(), n), 0.0F) << "n=" << n;
    }
}

TEST_P(SimdLevelTest, CosineOfTinyAndHugeVectors) {
    // Float sums of squares underflow (1e-25^2) or overflow (1e25^2); the kernels must still
    // give the exact cosine.
    for (const float scale : {1e-25F, 1e-40F, 1e25F, 3e38F}) {
        for (const std::size_t n : {1, 5, 16, 100, 768}) {
            Buffer a(n, 1);
            Buffer b(n, 2);
            fill_random(rng_, a.data(), n);
            fill_random(rng_, b.data(), n);
            for (std::size_t i = 0; i < n; ++i) {
                a[i] *= scale;
                b[i] = b[i] * 0.5F * scale + a[i] * 0.5F;
            }
            EXPECT_NEAR(t().cosine(a.data(), b.data(), n), cosine_ref(a.data(), b.data(), n),
                        kCosineAbsTol)
                << "scale=" << scale << " n=" << n;
        }
    }
}

TEST_P(SimdLevelTest, NormalizeAllDims) {
    for (std::size_t n = 1; n <= kMaxDim; ++n) {
        Buffer a(n, n % 4);
        fill_random(rng_, a.data(), n);
        const std::vector<float> original(a.data(), a.data() + n);
        const double want = norm_ref(a.data(), n);
        const float got = t().normalize(a.data(), n);
        EXPECT_NEAR(got, want, 1e-6 * want) << "n=" << n;
        EXPECT_NEAR(norm_ref(a.data(), n), 1.0, 1e-6) << "n=" << n;
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_NEAR(a[i], original[i] / want, 1e-6) << "n=" << n << " i=" << i;
        }
    }
}

TEST_P(SimdLevelTest, NormalizeZeroVectorIsLeftAsIs) {
    for (const std::size_t n : {1, 3, 16, 17, 768}) {
        Buffer a(n, 1);
        for (std::size_t i = 0; i < n; ++i) {
            a[i] = 0.0F;
        }
        EXPECT_EQ(t().normalize(a.data(), n), 0.0F);
        for (std::size_t i = 0; i < n; ++i) {
            EXPECT_EQ(a[i], 0.0F);
        }
    }
    float x = 5.0F;
    EXPECT_EQ(t().normalize(&x, 0), 0.0F);
    EXPECT_EQ(x, 5.0F);
}

TEST_P(SimdLevelTest, NormalizeTinyAndHugeVectors) {
    for (const float scale : {1e-25F, 1e-40F, 1e25F, 1e30F}) {
        for (const std::size_t n : {1, 5, 16, 100, 768}) {
            Buffer a(n, 3);
            fill_random(rng_, a.data(), n);
            for (std::size_t i = 0; i < n; ++i) {
                a[i] *= scale;
            }
            const double want = norm_ref(a.data(), n);
            const float got = t().normalize(a.data(), n);
            // A norm below FLT_MIN is returned as a subnormal float, exact only to its ulp.
            const double ulp = std::numeric_limits<float>::denorm_min();
            EXPECT_NEAR(got, want, 1e-6 * want + ulp) << "scale=" << scale << " n=" << n;
            EXPECT_NEAR(norm_ref(a.data(), n), 1.0, 1e-6) << "scale=" << scale << " n=" << n;
        }
    }
}

TEST_P(SimdLevelTest, DotMany) {
    for (const std::size_t n : block_dims()) {
        for (const std::size_t pad : {0, 1, 7, 16}) {
            const std::size_t stride = n + pad;
            for (const std::size_t count : {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33}) {
                Buffer q(n, 1);
                Buffer rows(count * stride, 3);
                fill_random(rng_, q.data(), n);
                for (std::size_t r = 0; r < count; ++r) {
                    fill_random(rng_, rows.data() + r * stride, n); // padding stays NaN
                }
                std::vector<float> out(count + 1, kGuard);
                t().dot_many(q.data(), rows.data(), stride, count, n, out.data());
                std::vector<float> want(count + 1, kGuard);
                ref().dot_many(q.data(), rows.data(), stride, count, n, want.data());
                for (std::size_t r = 0; r < count; ++r) {
                    const std::string what =
                        "dot_many n=" + std::to_string(n) + " stride=" + std::to_string(stride) +
                        " count=" + std::to_string(count) + " r=" + std::to_string(r);
                    const DotRef d = dot_ref(q.data(), rows.data() + r * stride, n);
                    expect_dot_near(out[r], d, what);
                    expect_dot_near(want[r], d, "scalar " + what);
                }
                EXPECT_EQ(out[count], kGuard) << "dot_many wrote past count=" << count;
            }
        }
    }
}

void check_block(const KernelTable& t, std::mt19937& rng, std::size_t nq, std::size_t nr,
                 std::size_t n, std::size_t qpad, std::size_t rpad) {
    const std::size_t qstride = n + qpad;
    const std::size_t rstride = n + rpad;
    Buffer qs(nq * qstride, 1);
    Buffer rows(nr * rstride, 2);
    for (std::size_t i = 0; i < nq; ++i) {
        fill_random(rng, qs.data() + i * qstride, n);
    }
    for (std::size_t j = 0; j < nr; ++j) {
        fill_random(rng, rows.data() + j * rstride, n);
    }
    std::vector<float> out(nq * nr + 1, kGuard);
    t.dot_block(qs.data(), qstride, nq, rows.data(), rstride, nr, n, out.data());
    for (std::size_t i = 0; i < nq; ++i) {
        for (std::size_t j = 0; j < nr; ++j) {
            const DotRef d = dot_ref(qs.data() + i * qstride, rows.data() + j * rstride, n);
            expect_dot_near(out[i * nr + j], d,
                            "dot_block nq=" + std::to_string(nq) + " nr=" + std::to_string(nr) +
                                " n=" + std::to_string(n) + " i=" + std::to_string(i) +
                                " j=" + std::to_string(j));
            if (::testing::Test::HasFailure()) {
                return;
            }
        }
    }
    EXPECT_EQ(out[nq * nr], kGuard) << "dot_block wrote past nq*nr";
}

TEST_P(SimdLevelTest, DotBlockSmallShapes) {
    for (const std::size_t n : block_dims()) {
        for (const std::size_t nq : {0, 1, 2, 3, 4, 5, 7, 9}) {
            for (const std::size_t nr : {0, 1, 3, 4, 5, 8, 13}) {
                check_block(t(), rng_, nq, nr, n, n % 3, 16 - n % 5);
                if (HasFailure()) {
                    return;
                }
            }
        }
    }
}

TEST_P(SimdLevelTest, DotBlockLargeShapes) {
    // More data rows than one L2 block, and dimensions longer than one k-slice (2048 floats).
    check_block(t(), rng_, 13, 700, 768, 0, 16);
    check_block(t(), rng_, 6, 150, 1030, 5, 1);
    check_block(t(), rng_, 5, 37, 2048, 0, 0);
    check_block(t(), rng_, 7, 41, 2049, 3, 3);
    check_block(t(), rng_, 3, 9, 5000, 1, 17);
}

TEST_P(SimdLevelTest, DotBlockMatchesScalarTable) {
    const std::size_t nq = 11;
    const std::size_t nr = 29;
    const std::size_t n = 300;
    Buffer qs(nq * n, 1);
    Buffer rows(nr * n, 3);
    fill_random(rng_, qs.data(), nq * n);
    fill_random(rng_, rows.data(), nr * n);
    std::vector<float> got(nq * nr);
    std::vector<float> want(nq * nr);
    t().dot_block(qs.data(), n, nq, rows.data(), n, nr, n, got.data());
    ref().dot_block(qs.data(), n, nq, rows.data(), n, nr, n, want.data());
    for (std::size_t i = 0; i < nq * nr; ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-4) << "i=" << i;
    }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, SimdLevelTest, ::testing::ValuesIn(kAllLevels),
                         [](const ::testing::TestParamInfo<Level>& info) {
                             return std::string(level_name(info.param));
                         });

// ---- dispatch ----

Level best_level() {
    Level best = Level::kScalar;
    for (const Level level : kAllLevels) {
        if (kernels_for(level) != nullptr) {
            best = level;
        }
    }
    return best;
}

TEST(SimdDispatchTest, ParseLevel) {
    Level level = Level::kAvx512;
    EXPECT_TRUE(parse_level("scalar", &level));
    EXPECT_EQ(level, Level::kScalar);
    EXPECT_TRUE(parse_level("sse4", &level));
    EXPECT_EQ(level, Level::kSse4);
    EXPECT_TRUE(parse_level("avx2", &level));
    EXPECT_EQ(level, Level::kAvx2);
    EXPECT_TRUE(parse_level("AVX512", &level));
    EXPECT_EQ(level, Level::kAvx512);

    level = Level::kSse4;
    for (const char* bad : {"", "avx", "avx5", "avx5120", "scalar ", "sse4.2", "neon"}) {
        EXPECT_FALSE(parse_level(bad, &level)) << '"' << bad << '"';
        EXPECT_EQ(level, Level::kSse4) << "parse_level changed *out on failure for " << bad;
    }
    EXPECT_FALSE(parse_level(nullptr, &level));
    EXPECT_FALSE(parse_level("scalar", nullptr));
}

TEST(SimdDispatchTest, LevelNamesRoundTrip) {
    for (const Level level : kAllLevels) {
        Level parsed{};
        ASSERT_TRUE(parse_level(level_name(level), &parsed)) << level_name(level);
        EXPECT_EQ(parsed, level);
    }
    EXPECT_STREQ(level_name(Level::kScalar), "scalar");
    EXPECT_STREQ(level_name(Level::kSse4), "sse4");
    EXPECT_STREQ(level_name(Level::kAvx2), "avx2");
    EXPECT_STREQ(level_name(Level::kAvx512), "avx512");
}

TEST(SimdDispatchTest, KernelsForMatchesCpu) {
    ASSERT_NE(kernels_for(Level::kScalar), nullptr);
    EXPECT_EQ(kernels_for(Level::kScalar), &scalar_kernels());
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool sse4 = __builtin_cpu_supports("sse4.2") != 0;
    const bool avx2 = __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
    const bool avx512 =
        __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
        __builtin_cpu_supports("avx512dq") != 0 && __builtin_cpu_supports("avx512vl") != 0;
    EXPECT_EQ(kernels_for(Level::kSse4) != nullptr, sse4);
    EXPECT_EQ(kernels_for(Level::kAvx2) != nullptr, avx2);
    EXPECT_EQ(kernels_for(Level::kAvx512) != nullptr, avx512);
    if (sse4) {
        EXPECT_EQ(kernels_for(Level::kSse4), &sse4_kernels());
    }
    if (avx2) {
        EXPECT_EQ(kernels_for(Level::kAvx2), &avx2_kernels());
    }
    if (avx512) {
        EXPECT_EQ(kernels_for(Level::kAvx512), &avx512_kernels());
    }
#endif
    EXPECT_EQ(kernels_for(static_cast<Level>(42)), nullptr);
}

// kernels() selects once per process, so each ENGRAM_SIMD case runs in a fresh process: the
// "threadsafe" death-test style re-executes this binary for the statement, after the setenv.
class SimdEnvTest : public ::testing::Test {
protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
    void TearDown() override { unsetenv("ENGRAM_SIMD"); }
};

[[noreturn]] void exit_with_selected_level() {
    const KernelTable& table = kernels();
    // Also prove the table works: a wrong table would not compute 1*2 + 3*4 correctly.
    const float a[2] = {1.0F, 3.0F};
    const float b[2] = {2.0F, 4.0F};
    if (table.dot(a, b, 2) != 14.0F || &table != kernels_for(table.level)) {
        std::exit(100);
    }
    std::exit(static_cast<int>(table.level));
}

void expect_selected(const char* env, Level want) {
    if (env == nullptr) {
        unsetenv("ENGRAM_SIMD");
    } else {
        setenv("ENGRAM_SIMD", env, 1);
    }
    EXPECT_EXIT(exit_with_selected_level(), ::testing::ExitedWithCode(static_cast<int>(want)), "")
        << "ENGRAM_SIMD=" << (env == nullptr ? "(unset)" : env);
}

TEST_F(SimdEnvTest, UnsetPicksBest) {
    expect_selected(nullptr, best_level());
}

TEST_F(SimdEnvTest, ForcedSupportedLevelIsUsed) {
    for (const Level level : kAllLevels) {
        if (kernels_for(level) != nullptr) {
            expect_selected(level_name(level), level);
        }
    }
    expect_selected("Scalar", Level::kScalar);
}

TEST_F(SimdEnvTest, UnknownOrUnsupportedFallsBackToBest) {
    expect_selected("", best_level());
    expect_selected("bogus", best_level());
    expect_selected("avx1024", best_level());
    for (const Level level : kAllLevels) {
        if (kernels_for(level) == nullptr) {
            expect_selected(level_name(level), best_level());
        }
    }
}

} // namespace
} // namespace engram::engine::simd
