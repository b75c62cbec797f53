// engram_hnsw_bench: Engram's HnswIndex against hnswlib (Debian libhnswlib-dev) in one run, same
// M, ef_construction and threads, cosine similarity (unit vectors; hnswlib in inner-product
// space).
//
// Data sets: Fashion-MNIST (Debian dataset-fashion-mnist: train images as the base set, test
// images as queries, 784-d) and a synthetic low-rank 768-d set (rank 48 Gaussian factors through
// a fixed random projection, plus isotropic noise).
//
// Measured, per data set:
//   build throughput      vectors/s with 1 thread and with 2 threads (each a fresh index; the
//                         two libraries build in alternating slices of 1/16); with
//                         --parallel-build-only, only the 2-thread build
//   recall@10 vs QPS      single-thread queries for ef in {16, 32, 64, 128, 256, 512}
//   latency               single-query p50 / p99 for k=10 (ef=64) and k=100 (ef=100), the
//                         best of 3 passes
//   batch throughput      QPS with every hardware thread querying (k=10, ef=64)
//   summary               build ratios, the QPS of each library at recall@10 = 0.95 (interpolated
//                         in the sweep) and their ratio, k=100 p99
// The searches run against the 1-thread builds (deterministic for Engram), or the 2-thread builds
// with --parallel-build-only. Every measurement alternates between the libraries (throughputs:
// best of two rounds), so that a background load on the machine weighs on both alike.
//
// Usage: engram_hnsw_bench [--n N] [--queries Q] [--m M] [--ef-construction EF] [--threads T]
//                          [--fashion-dir DIR] [--skip-fashion] [--skip-synthetic]
//                          [--parallel-build-only] [--data-out DIR]
// --data-out DIR writes the ef sweep of each data set to
// DIR/recall_qps_<data set>_n<N>_<hnswlib ISA>.dat (whitespace-separated: ef, Engram recall@10,
// Engram QPS, hnswlib recall@10, hnswlib QPS; '#' comment lines) for bench/plot_recall_qps.gp,
// and prints a `<!-- plot: recall_qps_<data set>_n<N> -->` line under each sweep table, which
// scripts/bench.sh replaces with the image.
//
// Fairness: hnswlib is header-only, so its distance code is compiled with this file's flags.
// engram_hnsw_bench compiles this file without ISA flags (like the rest of Engram): hnswlib takes
// its SSE path. engram_hnsw_bench_native compiles this file alone with -march=native (hnswlib
// then takes its AVX / AVX-512 path, chosen by __AVX__ / __AVX512F__ in hnswlib.h); that is the
// fair comparison. Engram's engine library is the same in both and picks its kernels at run time
// (shown in the report). Both get exactly the same vectors, queries and parameters.
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hnswlib/hnswlib.h>

#include "bench/idx_images.hpp"
#include "engine/hnsw/hnsw.hpp"
#include "engine/simd/kernels.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using engram::bench::read_idx_images;
using engram::engine::HnswConfig;
using engram::engine::HnswIndex;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
    std::size_t n = 20000;
    std::size_t queries = 500;
    std::size_t m = 16;
    std::size_t ef_construction = 200;
    std::size_t threads = 0; // 0: hardware concurrency
    std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
    bool fashion = true;
    bool synthetic = true;
    bool serial_build = true; // false: only the 2-thread build (--parallel-build-only)
    std::string data_out;     // empty: no data files
};

// The distance path hnswlib was compiled with in this translation unit (hnswlib.h defines
// USE_SSE / USE_AVX / USE_AVX512 from the compiler's __SSE__ / __AVX__ / __AVX512F__). With
// USE_AVX512 it still checks the CPU at run time (AVX512Capable()) and falls back to AVX.
#if defined(USE_AVX512)
constexpr const char* kHnswlibIsa = "avx512";
#elif defined(USE_AVX)
constexpr const char* kHnswlibIsa = "avx";
#elif defined(USE_SSE)
constexpr const char* kHnswlibIsa = "sse";
#else
constexpr const char* kHnswlibIsa = "scalar";
#endif

#ifdef ENGRAM_BENCH_NATIVE
constexpr const char* kCompiledWith = "this file compiled with `-march=native`";
#else
constexpr const char* kCompiledWith = "this file compiled without ISA flags";
#endif

// What hnswlib actually runs here: its compile-time path, narrowed by its own CPU check.
std::string hnswlib_path() {
#if defined(USE_AVX512)
    return AVX512Capable() ? "AVX-512" : "AVX (no AVX-512 on this CPU)";
#elif defined(USE_AVX)
    return "AVX";
#elif defined(USE_SSE)
    return "SSE";
#else
    return "scalar";
#endif
}

struct DataSet {
    std::string name;
    std::size_t dim = 0;
    std::vector<float> base;    // n x dim, unit rows
    std::vector<float> queries; // q x dim, unit rows
    [[nodiscard]] std::size_t n() const { return base.size() / dim; }
    [[nodiscard]] std::size_t q() const { return queries.size() / dim; }
};

void normalize_rows(std::vector<float>& v, std::size_t dim) {
    const auto& k = engram::engine::simd::kernels();
    for (std::size_t i = 0; i + dim <= v.size(); i += dim) {
        k.normalize(v.data() + i, dim);
    }
}

bool load_fashion(const Options& o, DataSet* ds) {
    ds->name = "Fashion-MNIST-784";
    std::size_t d1 = 0;
    std::size_t d2 = 0;
    if (!read_idx_images(o.fashion_dir + "/train-images-idx3-ubyte.gz", o.n, &ds->base, &d1) ||
        !read_idx_images(o.fashion_dir + "/t10k-images-idx3-ubyte.gz", o.queries, &ds->queries,
                         &d2) ||
        d1 != d2) {
        return false;
    }
    ds->dim = d1;
    normalize_rows(ds->base, ds->dim);
    normalize_rows(ds->queries, ds->dim);
    return true;
}

void make_synthetic(const Options& o, DataSet* ds) {
    constexpr std::size_t kDim = 768;
    constexpr std::size_t kRank = 48;
    ds->name = "synthetic-lowrank-768";
    ds->dim = kDim;
    std::mt19937_64 rng(20240601);
    std::normal_distribution<float> nd;
    std::vector<float> proj(kRank * kDim);
    for (float& x : proj) {
        x = nd(rng);
    }
    const auto fill = [&](std::size_t count, std::vector<float>* out) {
        out->assign(count * kDim, 0.0F);
        std::vector<float> z(kRank);
        for (std::size_t i = 0; i < count; ++i) {
            for (float& x : z) {
                x = nd(rng);
            }
            float* row = out->data() + i * kDim;
            for (std::size_t r = 0; r < kRank; ++r) {
                for (std::size_t d = 0; d < kDim; ++d) {
                    row[d] += z[r] * proj[r * kDim + d];
                }
            }
            for (std::size_t d = 0; d < kDim; ++d) {
                row[d] += 0.25F * std::sqrt(static_cast<float>(kRank)) * nd(rng);
            }
        }
        normalize_rows(*out, kDim);
    };
    fill(o.n, &ds->base);
    fill(o.queries, &ds->queries);
}

// Exact top-k labels per query (blocked matrix product).
std::vector<std::vector<std::uint32_t>> ground_truth(const DataSet& ds, std::size_t k) {
    const auto& kt = engram::engine::simd::kernels();
    const std::size_t n = ds.n();
    std::vector<std::vector<std::uint32_t>> truth(ds.q());
    constexpr std::size_t kBlockQ = 32;
    std::vector<float> scores(kBlockQ * n);
    for (std::size_t q0 = 0; q0 < ds.q(); q0 += kBlockQ) {
        const std::size_t nq = std::min(kBlockQ, ds.q() - q0);
        kt.dot_block(ds.queries.data() + q0 * ds.dim, ds.dim, nq, ds.base.data(), ds.dim, n, ds.dim,
                     scores.data());
        for (std::size_t i = 0; i < nq; ++i) {
            std::vector<std::uint32_t> ids(n);
            for (std::size_t j = 0; j < n; ++j) {
                ids[j] = static_cast<std::uint32_t>(j);
            }
            const float* s = scores.data() + i * n;
            std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                              [&](std::uint32_t a, std::uint32_t b) {
                                  return s[a] != s[b] ? s[a] > s[b] : a < b;
                              });
            ids.resize(k);
            truth[q0 + i] = std::move(ids);
        }
    }
    return truth;
}

void parallel_for(std::size_t n, std::size_t threads, const std::function<void(std::size_t)>& f) {
    std::atomic<std::size_t> next{0};
    const auto work = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) {
            f(i);
        }
    };
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t) {
        pool.emplace_back(work);
    }
    work();
    for (auto& t : pool) {
        t.join();
    }
}

// One library behind a common face.
class Engine {
public:
    virtual ~Engine() = default;
    virtual void add(std::uint32_t label, const float* v) = 0;
    // Labels of the k best, best first.
    virtual void search(const float* q, std::size_t k, std::size_t ef,
                        std::vector<std::uint32_t>* out) = 0;
};

class EngramEngine final : public Engine {
public:
    EngramEngine(std::size_t dim, const Options& o) {
        HnswConfig c;
        c.dim = dim;
        c.m = o.m;
        c.ef_construction = o.ef_construction;
        index_ = std::make_unique<HnswIndex>(c);
    }
    void add(std::uint32_t label, const float* v) override { index_->insert(label, v); }
    void search(const float* q, std::size_t k, std::size_t ef,
                std::vector<std::uint32_t>* out) override {
        out->clear();
        for (const auto& [label, score] : index_->search(q, k, ef)) {
            out->push_back(label);
        }
    }

private:
    std::unique_ptr<HnswIndex> index_;
};

class HnswlibEngine final : public Engine {
public:
    HnswlibEngine(std::size_t dim, std::size_t n, const Options& o)
        : space_(dim), index_(&space_, n, o.m, o.ef_construction) {}
    void add(std::uint32_t label, const float* v) override { index_.addPoint(v, label); }
    // hnswlib 0.6 keeps ef in the index (setEf), so searches at different ef cannot share an
    // index concurrently; every phase here uses one ef at a time.
    void set_ef(std::size_t ef) { index_.setEf(ef); }
    void search(const float* q, std::size_t k, std::size_t ef,
                std::vector<std::uint32_t>* out) override {
        (void)ef;
        auto pq = index_.searchKnn(q, k);
        out->resize(pq.size());
        for (std::size_t i = pq.size(); i-- > 0;) {
            (*out)[i] = static_cast<std::uint32_t>(pq.top().second);
            pq.pop();
        }
    }

private:
    hnswlib::InnerProductSpace space_;
    hnswlib::HierarchicalNSW<float> index_;
};

struct Side {
    double build1 = 0; // vectors/s, 1 thread (0: not measured)
    double build2 = 0; // vectors/s, 2 threads
    std::vector<double> recall, qps;
    double p50_10 = 0, p99_10 = 0, p50_100 = 0, p99_100 = 0; // microseconds
    double batch_qps = 0;
};

constexpr std::size_t kEfs[] = {16, 32, 64, 128, 256, 512};

// Builds both indexes in alternating slices, so that both see the same background load.
void build_pair(Engine& e, Engine& h, const DataSet& ds, std::size_t threads, double* e_rate,
                double* h_rate) {
    constexpr std::size_t kSlices = 16;
    double te = 0;
    double th = 0;
    for (std::size_t s = 0; s < kSlices; ++s) {
        const std::size_t lo = ds.n() * s / kSlices;
        const std::size_t hi = ds.n() * (s + 1) / kSlices;
        for (Engine* x : {&e, &h}) {
            const Clock::time_point t0 = Clock::now();
            parallel_for(hi - lo, threads, [&](std::size_t i) {
                x->add(static_cast<std::uint32_t>(lo + i), ds.base.data() + (lo + i) * ds.dim);
            });
            (x == &e ? te : th) += seconds_since(t0);
        }
    }
    *e_rate = static_cast<double>(ds.n()) / te;
    *h_rate = static_cast<double>(ds.n()) / th;
}

// Queries per second of one pass over the queries; adds recall@10 hits to *hits.
double sweep(Engine& x, const DataSet& ds, const std::vector<std::vector<std::uint32_t>>& truth,
             std::size_t ef, std::size_t* hits) {
    std::vector<std::uint32_t> got;
    const Clock::time_point t0 = Clock::now();
    for (std::size_t q = 0; q < ds.q(); ++q) {
        x.search(ds.queries.data() + q * ds.dim, 10, ef, &got);
        for (const std::uint32_t l : got) {
            *hits += std::count(truth[q].begin(), truth[q].end(), l);
        }
    }
    return static_cast<double>(ds.q()) / seconds_since(t0);
}

double batch(Engine& x, const DataSet& ds, std::size_t threads) {
    const std::size_t total = ds.q() * 4; // every query 4 times over, spread over all threads
    const Clock::time_point t0 = Clock::now();
    parallel_for(total, threads, [&](std::size_t i) {
        thread_local std::vector<std::uint32_t> out;
        x.search(ds.queries.data() + (i % ds.q()) * ds.dim, 10, 64, &out);
    });
    return static_cast<double>(total) / seconds_since(t0);
}

// Every measurement alternates between the two (best of two rounds for throughputs, query by
// query for latencies), so a background load hits both alike.
void measure_search(EngramEngine& e, HnswlibEngine& h, const DataSet& ds,
                    const std::vector<std::vector<std::uint32_t>>& truth, std::size_t threads,
                    Side* es, Side* hs) {
    for (const std::size_t ef : kEfs) {
        h.set_ef(ef);
        double qe = 0;
        double qh = 0;
        std::size_t he = 0;
        std::size_t hh = 0;
        for (int round = 0; round < 2; ++round) {
            he = 0;
            hh = 0;
            qe = std::max(qe, sweep(e, ds, truth, ef, &he));
            qh = std::max(qh, sweep(h, ds, truth, ef, &hh));
        }
        const auto total = static_cast<double>(ds.q() * 10);
        es->qps.push_back(qe);
        hs->qps.push_back(qh);
        es->recall.push_back(static_cast<double>(he) / total);
        hs->recall.push_back(static_cast<double>(hh) / total);
    }
    // Percentiles: the lowest of kLatencyRounds passes over the queries, per library. On 2
    // shared cores one preemption (a scheduler slice is milliseconds) lands in the 1% tail of a
    // 500-query pass; the best pass shows the index rather than the neighbours' load.
    constexpr int kLatencyRounds = 3;
    const auto latency = [&](std::size_t k, std::size_t ef, double* e50, double* e99, double* h50,
                             double* h99) {
        h.set_ef(ef);
        std::vector<double> ue;
        std::vector<double> uh;
        std::vector<std::uint32_t> got;
        const auto pct = [](std::vector<double>& us, double* p50, double* p99) {
            std::sort(us.begin(), us.end());
            *p50 = std::min(*p50, us[us.size() / 2]);
            *p99 = std::min(*p99, us[std::min(us.size() - 1, us.size() * 99 / 100)]);
        };
        *e50 = *e99 = *h50 = *h99 = HUGE_VAL;
        for (int round = 0; round < kLatencyRounds; ++round) {
            ue.clear();
            uh.clear();
            for (std::size_t q = 0; q < ds.q(); ++q) {
                const float* v = ds.queries.data() + q * ds.dim;
                Clock::time_point t0 = Clock::now();
                e.search(v, k, ef, &got);
                ue.push_back(seconds_since(t0) * 1e6);
                t0 = Clock::now();
                h.search(v, k, ef, &got);
                uh.push_back(seconds_since(t0) * 1e6);
            }
            pct(ue, e50, e99);
            pct(uh, h50, h99);
        }
    };
    latency(10, 64, &es->p50_10, &es->p99_10, &hs->p50_10, &hs->p99_10);
    latency(100, 100, &es->p50_100, &es->p99_100, &hs->p50_100, &hs->p99_100);
    h.set_ef(64);
    for (int round = 0; round < 2; ++round) {
        es->batch_qps = std::max(es->batch_qps, batch(e, ds, threads));
        hs->batch_qps = std::max(hs->batch_qps, batch(h, ds, threads));
    }
}

// QPS at recall@10 = kTargetRecall, log(QPS) interpolated linearly in recall between the two
// sweep points around it (the first point at or above the target and the one before), so that
// two libraries landing just either side of the target at the same ef are not an ef step
// apart. When the first ef is already above, its QPS (*above = true); 0 when no ef reaches it.
constexpr double kTargetRecall = 0.95;
double qps_at_target(const Side& s, bool* above) {
    *above = false;
    for (std::size_t i = 0; i < std::size(kEfs); ++i) {
        if (s.recall[i] < kTargetRecall) {
            continue;
        }
        if (i == 0) {
            *above = s.recall[0] > kTargetRecall;
            return s.qps[0];
        }
        const double span = s.recall[i] - s.recall[i - 1];
        const double t = span > 0 ? (kTargetRecall - s.recall[i - 1]) / span : 1.0;
        return std::exp(std::log(s.qps[i - 1]) + t * (std::log(s.qps[i]) - std::log(s.qps[i - 1])));
    }
    return 0;
}

std::string plot_stem(const DataSet& ds) {
    return "recall_qps_" + ds.name + "_n" + std::to_string(ds.n());
}

// Writes the ef sweep for bench/plot_recall_qps.gp; false (with a message) on an I/O error.
bool write_sweep(const DataSet& ds, const Options& o, const Side& e, const Side& h) {
    const std::string path = o.data_out + "/" + plot_stem(ds) + "_" + kHnswlibIsa + ".dat";
    std::ofstream f(path);
    f << "# " << ds.name << " n=" << ds.n() << " queries=" << ds.q() << " dim=" << ds.dim
      << " M=" << o.m << " ef_construction=" << o.ef_construction << "; hnswlib " << kHnswlibIsa
      << "\n# ef engram_recall engram_qps hnswlib_recall hnswlib_qps\n";
    for (std::size_t i = 0; i < std::size(kEfs); ++i) {
        f << kEfs[i] << ' ' << e.recall[i] << ' ' << e.qps[i] << ' ' << h.recall[i] << ' '
          << h.qps[i] << '\n';
    }
    f.close();
    if (!f) {
        std::fprintf(stderr, "engram_hnsw_bench: cannot write %s\n", path.c_str());
        return false;
    }
    return true;
}

void report(const DataSet& ds, const Options& o, std::size_t threads, const Side& e,
            const Side& h) {
    std::printf("\n#### %s: n=%zu, queries=%zu, dim=%zu, M=%zu, ef_construction=%zu\n\n",
                ds.name.c_str(), ds.n(), ds.q(), ds.dim, o.m, o.ef_construction);
    bool above_e = false;
    bool above_h = false;
    const double qe = qps_at_target(e, &above_e);
    const double qh = qps_at_target(h, &above_h);
    std::printf("Summary vs hnswlib %s:", hnswlib_path().c_str());
    if (e.build1 > 0) {
        std::printf(" build (1 thread) %.2fx,", e.build1 / h.build1);
    }
    std::printf(" build (2 threads) %.2fx,", e.build2 / h.build2);
    if (qe > 0 && qh > 0) {
        std::printf(" QPS at recall@10 = %.2f %.2fx (Engram %.0f, hnswlib %.0f%s),", kTargetRecall,
                    qe / qh, qe, qh,
                    above_e || above_h ? "; QPS at the smallest ef, whose recall is above"
                                       : "; log-interpolated between sweep points");
    } else {
        std::printf(" recall@10 %.2f not reached by both in the sweep,", kTargetRecall);
    }
    std::printf(" k=100 p99 %.0f us (hnswlib %.0f us).\n\n", e.p99_100, h.p99_100);
    std::printf("| metric | Engram | hnswlib | Engram / hnswlib |\n|---|---:|---:|---:|\n");
    if (e.build1 > 0) {
        std::printf("| build, 1 thread (vectors/s) | %.0f | %.0f | %.2fx |\n", e.build1, h.build1,
                    e.build1 / h.build1);
    }
    std::printf("| build, 2 threads (vectors/s) | %.0f | %.0f | %.2fx |\n", e.build2, h.build2,
                e.build2 / h.build2);
    std::printf("| k=10 ef=64 latency p50 (us) | %.1f | %.1f | %.2fx faster |\n", e.p50_10,
                h.p50_10, h.p50_10 / e.p50_10);
    std::printf("| k=10 ef=64 latency p99 (us) | %.1f | %.1f | %.2fx faster |\n", e.p99_10,
                h.p99_10, h.p99_10 / e.p99_10);
    std::printf("| k=100 ef=100 latency p50 (us) | %.1f | %.1f | %.2fx faster |\n", e.p50_100,
                h.p50_100, h.p50_100 / e.p50_100);
    std::printf("| k=100 ef=100 latency p99 (us) | %.1f | %.1f | %.2fx faster |\n", e.p99_100,
                h.p99_100, h.p99_100 / e.p99_100);
    std::printf("| batch QPS, %zu threads (k=10 ef=64) | %.0f | %.0f | %.2fx |\n", threads,
                e.batch_qps, h.batch_qps, e.batch_qps / h.batch_qps);
    std::printf("\n| ef | Engram recall@10 | Engram QPS | hnswlib recall@10 | hnswlib QPS | QPS "
                "ratio |\n|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t i = 0; i < std::size(kEfs); ++i) {
        std::printf("| %zu | %.4f | %.0f | %.4f | %.0f | %.2fx |\n", kEfs[i], e.recall[i], e.qps[i],
                    h.recall[i], h.qps[i], e.qps[i] / h.qps[i]);
    }
    if (!o.data_out.empty()) {
        std::printf("\n<!-- plot: %s -->\n", plot_stem(ds).c_str());
    }
    std::fflush(stdout);
}

void run(const DataSet& ds, const Options& o, std::size_t threads) {
    const Clock::time_point t0 = Clock::now();
    const auto truth = ground_truth(ds, 10);
    Side es;
    Side hs;
    auto e2 = std::make_unique<EngramEngine>(ds.dim, o);
    auto h2 = std::make_unique<HnswlibEngine>(ds.dim, ds.n(), o);
    build_pair(*e2, *h2, ds, 2, &es.build2, &hs.build2);
    if (o.serial_build) {
        // The 2-thread pair goes before the 1-thread pair is built: one pair in memory at a time.
        e2.reset();
        h2.reset();
        EngramEngine e1(ds.dim, o);
        HnswlibEngine h1(ds.dim, ds.n(), o);
        build_pair(e1, h1, ds, 1, &es.build1, &hs.build1);
        measure_search(e1, h1, ds, truth, threads, &es, &hs);
    } else {
        measure_search(*e2, *h2, ds, truth, threads, &es, &hs);
    }
    report(ds, o, threads, es, hs);
    std::printf("\n(%s took %.1f s%s)\n", ds.name.c_str(), seconds_since(t0),
                o.serial_build ? "" : "; 2-thread builds only, the searches ran against them");
    if (!o.data_out.empty() && !write_sweep(ds, o, es, hs)) {
        throw std::runtime_error("cannot write the sweep data");
    }
}

bool parse(int argc, char** argv, Options* o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&](std::size_t* v) {
            if (i + 1 >= argc) {
                return false;
            }
            *v = std::strtoull(argv[++i], nullptr, 10);
            return *v > 0;
        };
        bool ok = true;
        if (a == "--n") {
            ok = value(&o->n);
        } else if (a == "--queries") {
            ok = value(&o->queries);
        } else if (a == "--m") {
            ok = value(&o->m);
        } else if (a == "--ef-construction") {
            ok = value(&o->ef_construction);
        } else if (a == "--threads") {
            ok = value(&o->threads);
        } else if (a == "--fashion-dir" && i + 1 < argc) {
            o->fashion_dir = argv[++i];
        } else if (a == "--skip-fashion") {
            o->fashion = false;
        } else if (a == "--skip-synthetic") {
            o->synthetic = false;
        } else if (a == "--parallel-build-only") {
            o->serial_build = false;
        } else if (a == "--data-out" && i + 1 < argc) {
            o->data_out = argv[++i];
        } else {
            ok = false;
        }
        if (!ok) {
            std::fprintf(stderr,
                         "usage: %s [--n N] [--queries Q] [--m M] [--ef-construction EF] "
                         "[--threads T] [--fashion-dir DIR] [--skip-fashion] "
                         "[--skip-synthetic] [--parallel-build-only] [--data-out DIR]\n",
                         argv[0]);
            return false;
        }
    }
    return true;
}

int run_all(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) {
        return 2;
    }
    const std::size_t threads =
        o.threads != 0 ? o.threads : std::max(1U, std::thread::hardware_concurrency());
    std::printf("### Engram vs hnswlib 0.6 (Debian libhnswlib-dev), hnswlib path: %s\n\n",
                hnswlib_path().c_str());
    std::printf("hnswlib is header-only and %s, so it runs its %s distance code; Engram's "
                "engine library is compiled without ISA flags and dispatches at run time: float "
                "kernels `%s`, int8 kernels `%s`. %zu hardware threads.\n",
                kCompiledWith, hnswlib_path().c_str(), engram::engine::simd::kernels().name,
                HnswIndex::kernel_name(), threads);
    if (o.fashion) {
        DataSet ds;
        if (load_fashion(o, &ds)) {
            run(ds, o, threads);
        } else {
            std::printf("\n(Fashion-MNIST not found under %s: skipped)\n", o.fashion_dir.c_str());
        }
    }
    if (o.synthetic) {
        DataSet ds;
        make_synthetic(o, &ds);
        run(ds, o, threads);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run_all(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engram_hnsw_bench: %s\n", e.what());
        return 1;
    }
}
