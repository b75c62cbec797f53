// Benchmarks of the engine/simd kernels, for every level this CPU supports (scalar included):
//
//   cosine_pair_768      one cosine of two 768-d vectors                  items = pairs
//   one_vs_n_768x10000   dot_many of one unit query against 10000 unit    items = rows scored
//                        rows (cosine of pre-normalised vectors)
//   block_256x4096x768   dot_block, 256 queries against 4096 rows         items = pairs scored
//   dot_loop_256x4096x768  the same product as a loop over dot (the       items = pairs scored
//                        baseline dot_block must beat)
//
// Rows are 64-byte aligned with the stride padded to 16 floats, as the hot tier stores them.
// After the usual Google Benchmark output, a markdown table gives items/s per level and the
// ratio to the scalar level of the same benchmark.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/simd/kernels.hpp"

namespace {

using engram::engine::simd::KernelTable;
using engram::engine::simd::Level;

constexpr std::size_t kDim = 768;
constexpr std::size_t kStride = (kDim + 15) / 16 * 16;
constexpr std::size_t kRows = 10000;
constexpr std::size_t kBlockQueries = 256;
constexpr std::size_t kBlockRows = 4096;
constexpr std::size_t kAlign = 64;

struct AlignedDelete {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{kAlign}); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedDelete>;

AlignedFloats make_aligned(std::size_t count) {
    return AlignedFloats(new (std::align_val_t{kAlign}) float[count]());
}

// count unit rows of kDim floats, kStride apart.
AlignedFloats make_unit_rows(std::size_t count, std::uint32_t seed) {
    AlignedFloats rows = make_aligned(count * kStride);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0F, 1.0F);
    const KernelTable& scalar = engram::engine::simd::scalar_kernels();
    for (std::size_t r = 0; r < count; ++r) {
        float* row = rows.get() + r * kStride;
        for (std::size_t i = 0; i < kDim; ++i) {
            row[i] = dist(rng);
        }
        scalar.normalize(row, kDim);
    }
    return rows;
}

struct Data {
    AlignedFloats query = make_unit_rows(1, 1);
    AlignedFloats other = make_unit_rows(1, 2);
    AlignedFloats rows = make_unit_rows(kRows, 3);
    AlignedFloats block_queries = make_unit_rows(kBlockQueries, 4);
    std::vector<float> out = std::vector<float>(kBlockQueries * kBlockRows);
};

Data& data() {
    static Data d;
    return d;
}

void bm_cosine_pair(benchmark::State& state, const KernelTable* t) {
    Data& d = data();
    for (auto _ : state) {
        float c = t->cosine(d.query.get(), d.other.get(), kDim);
        benchmark::DoNotOptimize(c);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void bm_one_vs_n(benchmark::State& state, const KernelTable* t) {
    Data& d = data();
    for (auto _ : state) {
        t->dot_many(d.query.get(), d.rows.get(), kStride, kRows, kDim, d.out.data());
        benchmark::DoNotOptimize(d.out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

void bm_block(benchmark::State& state, const KernelTable* t) {
    Data& d = data();
    for (auto _ : state) {
        t->dot_block(d.block_queries.get(), kStride, kBlockQueries, d.rows.get(), kStride,
                     kBlockRows, kDim, d.out.data());
        benchmark::DoNotOptimize(d.out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(
        static_cast<std::int64_t>(state.iterations() * kBlockQueries * kBlockRows));
}

void bm_dot_loop(benchmark::State& state, const KernelTable* t) {
    Data& d = data();
    for (auto _ : state) {
        for (std::size_t i = 0; i < kBlockQueries; ++i) {
            const float* q = d.block_queries.get() + i * kStride;
            for (std::size_t j = 0; j < kBlockRows; ++j) {
                d.out[i * kBlockRows + j] = t->dot(q, d.rows.get() + j * kStride, kDim);
            }
        }
        benchmark::DoNotOptimize(d.out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(
        static_cast<std::int64_t>(state.iterations() * kBlockQueries * kBlockRows));
}

// Console output as usual, then a markdown table of items/s with ratios to scalar.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            if (run.error_occurred || run.run_type != Run::RT_Iteration) {
                continue;
            }
            const auto it = run.counters.find("items_per_second");
            if (it == run.counters.end()) {
                continue;
            }
            const std::string name = run.benchmark_name();
            const std::size_t slash = name.rfind('/');
            if (slash == std::string::npos) {
                continue;
            }
            const std::string kernel = name.substr(0, slash);
            if (results_.find(kernel) == results_.end()) {
                order_.push_back(kernel);
            }
            results_[kernel].emplace_back(name.substr(slash + 1), it->second.value);
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        std::FILE* out = stdout;
        std::fprintf(out, "\n| benchmark | level | items/s | vs scalar |\n");
        std::fprintf(out, "|---|---|---:|---:|\n");
        for (const std::string& kernel : order_) {
            double scalar = 0.0;
            for (const auto& [level, rate] : results_[kernel]) {
                if (level == "scalar") {
                    scalar = rate;
                }
            }
            for (const auto& [level, rate] : results_[kernel]) {
                if (scalar > 0.0) {
                    std::fprintf(out, "| %s | %s | %.4g | %.2fx |\n", kernel.c_str(), level.c_str(),
                                 rate, rate / scalar);
                } else {
                    std::fprintf(out, "| %s | %s | %.4g | - |\n", kernel.c_str(), level.c_str(),
                                 rate);
                }
            }
        }
        std::fflush(out);
    }

private:
    std::vector<std::string> order_;
    std::map<std::string, std::vector<std::pair<std::string, double>>> results_;
};

void register_all() {
    const Level levels[] = {Level::kScalar, Level::kSse4, Level::kAvx2, Level::kAvx512};
    struct Case {
        const char* name;
        void (*fn)(benchmark::State&, const KernelTable*);
    };
    const Case cases[] = {
        {"cosine_pair_768", &bm_cosine_pair},
        {"one_vs_n_768x10000", &bm_one_vs_n},
        {"block_256x4096x768", &bm_block},
        {"dot_loop_256x4096x768", &bm_dot_loop},
    };
    for (const Case& c : cases) {
        for (const Level level : levels) {
            const KernelTable* t = engram::engine::simd::kernels_for(level);
            if (t == nullptr) {
                continue;
            }
            const std::string name = std::string(c.name) + "/" + t->name;
            auto* bench = benchmark::RegisterBenchmark(name.c_str(), c.fn, t);
            bench->Unit(benchmark::kMicrosecond);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    register_all();
    data(); // build the inputs before timing starts
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
