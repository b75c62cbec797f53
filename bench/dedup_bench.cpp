// engram_dedup_bench: the DedupIndex (engine/dedup.hpp) against the exact scan it replaces, on
// planted near-duplicates.
//
// Data sets: Fashion-MNIST (Debian dataset-fashion-mnist, train + test: 70K × 784), Gaussian
// 768-d and the benchmark's low-rank 768-d set (rank 48 factors + isotropic noise), n rows each
// (--n, default 100000), unit-normalised. Each data set is the store; every plant takes a stored
// row x and asks for y at cosine c from x, c uniform in [threshold, 1] (default 0.95), the rest
// of y isotropic. The exact scan scores y against every stored row: E = the rows with
// cos ≥ threshold. The index's candidates, rescored exactly, give F ⊆ E.
// Reported per data set: duplicates found (Σ|F| / Σ|E|), outcomes kept (the best duplicate of
// F equals the best of E: what decides the store's outcome), the mean candidates rescored per
// plant, time per plant (index: code + probe + rescoring; exact: a scan of the store), and the
// index's bytes per memory. Plants at exactly cos = threshold give the worst case.
//
// Usage: engram_dedup_bench [--n N] [--plants P] [--threshold T] [--fashion-dir DIR]
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/idx_images.hpp"
#include "engine/batch/executor.hpp"
#include "engine/dedup.hpp"
#include "engine/simd/kernels.hpp"

namespace {

using engram::bench::read_idx_images;
using engram::engine::DedupIndex;
using engram::engine::DedupIndexConfig;

struct Options {
    std::size_t n = 100000;
    std::size_t plants = 4000;
    double threshold = 0.95;
    std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
};

struct Data {
    std::string name;
    std::size_t dim = 0;
    std::vector<float> rows; // n x dim, unit
    std::size_t n() const { return rows.size() / dim; }
};

void normalize_rows(Data* d) {
    for (std::size_t i = 0; i < d->n(); ++i) {
        engram::engine::simd::kernels().normalize(&d->rows[i * d->dim], d->dim);
    }
}

bool fashion(const Options& o, Data* d) {
    d->name = "Fashion-MNIST (70K x 784)";
    std::size_t d1 = 0, d2 = 0;
    if (!read_idx_images(o.fashion_dir + "/train-images-idx3-ubyte.gz", 1U << 20, &d->rows, &d1) ||
        !read_idx_images(o.fashion_dir + "/t10k-images-idx3-ubyte.gz", 1U << 20, &d->rows, &d2) ||
        d1 != d2) {
        return false;
    }
    d->dim = d1;
    normalize_rows(d);
    return true;
}

void gaussian(const Options& o, Data* d) {
    d->name = "Gaussian " + std::to_string(o.n / 1000) + "K x 768";
    d->dim = 768;
    std::mt19937_64 rng(11);
    std::normal_distribution<float> nd;
    d->rows.resize(o.n * d->dim);
    for (float& x : d->rows) {
        x = nd(rng);
    }
    normalize_rows(d);
}

void lowrank(const Options& o, Data* d) {
    constexpr std::size_t kRank = 48;
    d->name = "low-rank " + std::to_string(o.n / 1000) + "K x 768";
    d->dim = 768;
    std::mt19937_64 rng(20240601);
    std::normal_distribution<float> nd;
    std::vector<float> proj(kRank * d->dim);
    for (float& x : proj) {
        x = nd(rng);
    }
    d->rows.assign(o.n * d->dim, 0.0F);
    std::vector<float> z(kRank);
    for (std::size_t i = 0; i < o.n; ++i) {
        for (float& x : z) {
            x = nd(rng);
        }
        float* row = &d->rows[i * d->dim];
        for (std::size_t r = 0; r < kRank; ++r) {
            for (std::size_t k = 0; k < d->dim; ++k) {
                row[k] += z[r] * proj[r * d->dim + k];
            }
        }
        for (std::size_t k = 0; k < d->dim; ++k) {
            row[k] += 0.25F * std::sqrt(static_cast<float>(kRank)) * nd(rng);
        }
    }
    normalize_rows(d);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void run(const Options& o, const Data& d, bool worst) {
    const auto& k = engram::engine::simd::kernels();
    const std::size_t dim = d.dim;
    const std::size_t n = d.n();
    DedupIndexConfig config;
    config.dim = dim;
    DedupIndex index(config);
    const std::size_t w = index.words();
    std::vector<std::uint32_t> codes(n * w);
    const auto t0 = std::chrono::steady_clock::now();
    engram::engine::parallel_ranges(engram::engine::default_arena(), (n + 255) / 256, 1,
                                    [&](const tbb::blocked_range<std::size_t>& r) {
                                        std::vector<float> scratch;
                                        for (std::size_t b = r.begin(); b != r.end(); ++b) {
                                            const std::size_t first = b * 256;
                                            index.codes(&d.rows[first * dim], dim,
                                                        std::min<std::size_t>(256, n - first),
                                                        &codes[first * w], &scratch);
                                        }
                                    });
    for (std::size_t i = 0; i < n; ++i) {
        index.add(static_cast<std::uint32_t>(i), &codes[i * w]);
    }
    const double build = seconds_since(t0);

    std::mt19937_64 rng(worst ? 7 : 5);
    std::normal_distribution<float> nd;
    std::uniform_real_distribution<double> cosine(o.threshold, 1.0);
    const auto threshold = static_cast<float>(o.threshold);
    std::vector<float> y(dim), r(dim), scores(n);
    std::vector<std::uint32_t> code(w), cands;
    std::vector<std::size_t> positions;
    std::vector<float> scratch;
    std::size_t exact_dups = 0, found_dups = 0, outcomes = 0, kept = 0, rescored = 0;
    double t_index = 0, t_exact = 0;
    for (std::size_t p = 0; p < o.plants; ++p) {
        const float* x = &d.rows[(rng() % n) * dim];
        for (float& v : r) {
            v = nd(rng);
        }
        const float along = k.dot(r.data(), x, dim);
        for (std::size_t i = 0; i < dim; ++i) {
            r[i] -= along * x[i];
        }
        k.normalize(r.data(), dim);
        const double c = worst ? o.threshold + 1e-6 : cosine(rng);
        for (std::size_t i = 0; i < dim; ++i) {
            y[i] = static_cast<float>(c * x[i] + std::sqrt(1.0 - c * c) * r[i]);
        }
        k.normalize(y.data(), dim);
        // exact scan
        auto t = std::chrono::steady_clock::now();
        k.dot_many(y.data(), d.rows.data(), dim, n, dim, scores.data());
        std::size_t best_e = n;
        float best_es = -2;
        for (std::size_t i = 0; i < n; ++i) {
            if (scores[i] >= threshold - 1e-3F) {
                const float s = std::clamp(k.dot(y.data(), &d.rows[i * dim], dim), -1.0F, 1.0F);
                if (s >= threshold) {
                    ++exact_dups;
                    if (s > best_es) {
                        best_es = s;
                        best_e = i;
                    }
                }
            }
        }
        t_exact += seconds_since(t);
        // index
        t = std::chrono::steady_clock::now();
        index.codes(y.data(), dim, 1, code.data(), &scratch);
        index.candidates(code.data(), &positions, &cands);
        std::size_t best_f = n;
        float best_fs = -2;
        for (const std::uint32_t s : cands) {
            const float v = std::clamp(k.dot(y.data(), &d.rows[s * dim], dim), -1.0F, 1.0F);
            if (v >= threshold) {
                ++found_dups;
                if (v > best_fs) {
                    best_fs = v;
                    best_f = s;
                }
            }
        }
        rescored += cands.size();
        t_index += seconds_since(t);
        if (best_e != n) {
            ++outcomes;
            kept += best_f == best_e ? 1 : 0;
        }
    }
    std::printf("| %s | %s | %zu | %.3f%% (%zu / %zu) | %.3f%% | %.0f | %.1f | %.0f | %.0fx | %.0f "
                "| %.1f |\n",
                d.name.c_str(), worst ? "= threshold" : "U[threshold, 1]", o.plants,
                100.0 * static_cast<double>(found_dups) / static_cast<double>(exact_dups),
                found_dups, exact_dups,
                100.0 * static_cast<double>(kept) /
                    static_cast<double>(std::max<std::size_t>(1, outcomes)),
                static_cast<double>(rescored) / static_cast<double>(o.plants),
                1e6 * t_index / static_cast<double>(o.plants),
                1e6 * t_exact / static_cast<double>(o.plants), t_exact / t_index,
                static_cast<double>(index.memory_bytes()) / static_cast<double>(n), build);
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--n") {
            o.n = std::stoul(next());
        } else if (a == "--plants") {
            o.plants = std::stoul(next());
        } else if (a == "--threshold") {
            o.threshold = std::stod(next());
        } else if (a == "--fashion-dir") {
            o.fashion_dir = next();
        } else {
            std::fprintf(stderr, "usage: engram_dedup_bench [--n N] [--plants P] [--threshold T] "
                                 "[--fashion-dir DIR]\n");
            return 2;
        }
    }
    const DedupIndexConfig c;
    std::printf("## Deduplication: DedupIndex vs the exact scan\n\n");
    std::printf("Planted near-duplicates (cosine to a stored row uniform in [%.2f, 1], and at "
                "exactly %.2f for the worst case); dedup threshold %.2f. DedupIndex: %zu tables "
                "of %zu-bit keys, multi-probe radius %zu, 64-bit sketch within %zu bits. "
                "\"found\": duplicates (cos >= threshold) the index returns, of those the exact "
                "scan finds; \"outcome kept\": the best duplicate is the exact scan's (what "
                "decides replace/skip). Times per plant on one thread.\n\n",
                o.threshold, o.threshold, o.threshold, c.tables, c.bits, c.radius, c.sketch_max);
    std::printf("| data | plants at cos | plants | found | outcome kept | rescored / plant | "
                "index µs | exact µs | speed-up | index bytes / memory | build s |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    Data d;
    if (fashion(o, &d)) {
        run(o, d, false);
        run(o, d, true);
    } else {
        std::printf("| Fashion-MNIST | not found in %s | | | | | | | | | |\n",
                    o.fashion_dir.c_str());
    }
    gaussian(o, &d);
    run(o, d, false);
    run(o, d, true);
    lowrank(o, &d);
    run(o, d, false);
    run(o, d, true);
    return 0;
}
