// Benchmarks of engine/spread and engine/recall, plain std::chrono timing, markdown output.
//
//   spread    3-hop spreading (max_depth 3, default thresholds) on a synthetic random graph of
//             100K nodes and 1M edges (uniform endpoints, weights uniform in [0.5, 1], like an
//             HNSW neighbour graph with weight = cos >= 0.5); a seed set is 10 random nodes at
//             activation 1.0. Reports ms per seed set (median of many single calls, without and
//             with an arena), and a batch of 1000 seed sets at 1 thread and at all threads.
//   recall    100K synthetic memories (128-d unit vectors, times over one year, short texts,
//             a few locations); per cue kind: ms per cue (median of single calls) and a batch of
//             cues at 1 thread and at all threads. The time index is built once and shared.
//
// Usage: engram_spread_bench [--quick]   (--quick: fewer repetitions)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <tbb/info.h>
#include <tbb/task_arena.h>

#include "engine/recall.hpp"
#include "engine/simd/kernels.hpp"
#include "engine/spread.hpp"

namespace {

using namespace engram::engine;
using Clock = std::chrono::steady_clock;

template <typename Fn> double time_ms(Fn&& fn) {
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

template <typename Fn> double median_ms(int reps, Fn&& fn) {
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        t.push_back(time_ms(fn));
    }
    return median(t);
}

std::size_t g_sink = 0; // keeps results observable

void bench_spread(bool quick, tbb::task_arena& one, tbb::task_arena& all) {
    constexpr std::uint32_t kNodes = 100000;
    constexpr std::size_t kEdges = 1000000;
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> w(0.5F, 1.0F);
    std::vector<Edge> edges(kEdges);
    for (auto& e : edges) {
        e = {static_cast<std::uint32_t>(rng() % kNodes), static_cast<std::uint32_t>(rng() % kNodes),
             w(rng)};
    }
    EdgeGraph g;
    const double build_ms =
        time_ms([&] { g = std::move(EdgeGraph::build(edges, kNodes)).value(); });
    auto seed_set = [&] {
        std::vector<Seed> s;
        for (int i = 0; i < 10; ++i) {
            s.push_back({static_cast<std::uint32_t>(rng() % kNodes), 1.0});
        }
        return s;
    };
    const int singles = quick ? 50 : 300;
    std::vector<std::vector<Seed>> sets;
    for (int i = 0; i < 1000; ++i) {
        sets.push_back(seed_set());
    }
    std::size_t reached = 0;
    for (int i = 0; i < 100; ++i) {
        reached += spread(g, sets[static_cast<std::size_t>(i)], 3).size(); // also warms up
    }
    // Each call on a seed set not used just before (caches hold other nodes' lines).
    std::vector<double> plain, arena;
    for (int i = 0; i < singles; ++i) {
        const auto& s = sets[static_cast<std::size_t>(i) % sets.size()];
        plain.push_back(time_ms([&] { g_sink += spread(g, s, 3).size(); }));
    }
    for (int i = 0; i < singles; ++i) {
        const auto& s = sets[static_cast<std::size_t>(i + singles) % sets.size()];
        arena.push_back(time_ms([&] { g_sink += spread(g, s, 3, std::nullopt, &all).size(); }));
    }
    const int reps = quick ? 3 : 7;
    const double b1 = median_ms(reps, [&] { g_sink += spread_batch(g, sets, 3, {}, one).size(); });
    const double bn = median_ms(reps, [&] { g_sink += spread_batch(g, sets, 3, {}, all).size(); });
    // A wider spread (lower threshold) to exercise large, parallel-expanded levels.
    const auto big = [&] {
        std::vector<Seed> s;
        for (int i = 0; i < 2000; ++i) {
            s.push_back({static_cast<std::uint32_t>(rng() % kNodes), 1.0});
        }
        return s;
    }();
    const std::size_t big_n = spread(g, big, 4, 0.01).size();
    const double w_plain = median_ms(reps, [&] { g_sink += spread(g, big, 4, 0.01).size(); });
    const double w_one = median_ms(reps, [&] { g_sink += spread(g, big, 4, 0.01, &one).size(); });
    const double w_all = median_ms(reps, [&] { g_sink += spread(g, big, 4, 0.01, &all).size(); });

    std::printf("## Activation spreading: 100K nodes, 1M edges, 3 hops\n\n");
    std::printf("graph build: %.1f ms; %zu blocks of 64 B = %.2f B/edge; %.1f nodes reached per "
                "seed set (10 seeds)\n\n",
                build_ms, g.used_blocks(),
                static_cast<double>(g.used_blocks() * 64) / static_cast<double>(g.num_edges()),
                static_cast<double>(reached) / 100.0);
    std::printf("| what | time | per seed set | ratio |\n|---|---|---|---|\n");
    std::printf("| single spread(), no arena (median of %d) | %.4f ms | %.4f ms | |\n", singles,
                median(plain), median(plain));
    std::printf("| single spread(), arena of %d threads | %.4f ms | %.4f ms | |\n",
                all.max_concurrency(), median(arena), median(arena));
    std::printf("| spread_batch 1000 sets, 1 thread | %.2f ms | %.4f ms | 1.00 |\n", b1, b1 / 1000);
    std::printf("| spread_batch 1000 sets, %d threads | %.2f ms | %.4f ms | %.2f× |\n",
                all.max_concurrency(), bn, bn / 1000, b1 / bn);
    std::printf("| wide: 2000 seeds, depth 4, threshold 0.01 (%zu reached), no arena | %.2f ms | "
                "| |\n",
                big_n, w_plain);
    std::printf("| wide, arena 1 thread | %.2f ms | | %.2f× |\n", w_one, w_plain / w_one);
    std::printf("| wide, arena %d threads | %.2f ms | | %.2f× |\n\n", all.max_concurrency(), w_all,
                w_plain / w_all);
    std::printf("target (DESIGN §6): < 10 ms per seed set for 3-hop spreading\n\n");
}

struct Memories {
    std::vector<std::string> ids, whats, locations;
    std::vector<float> vectors;
    std::vector<MemoryView> views;
};

void bench_recall(bool quick, tbb::task_arena& one, tbb::task_arena& all) {
    constexpr std::size_t kN = 100000;
    constexpr std::size_t kDim = 128;
    constexpr double kYear = 365.0 * 86400.0;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.0F, 1.0F);
    std::uniform_real_distribution<double> t(0.0, kYear);
    const char* vocab[] = {"coffee", "Ana",  "tea",   "park",   "rain",    "Berlin",
                           "bike",   "book", "train", "dinner", "meeting", "music"};
    const char* places[] = {"", "Berlin Mitte", "Home", "Park Cafe", "Office", "Oakland"};
    Memories m;
    m.vectors.resize(kN * kDim);
    for (std::size_t i = 0; i < kN; ++i) {
        m.ids.push_back("m" + std::to_string(i));
        std::string what;
        for (int k = 0; k < 5; ++k) {
            what += (k ? " " : "") + std::string(vocab[rng() % 12]);
        }
        m.whats.push_back(what);
        m.locations.emplace_back(places[rng() % 6]);
        float* v = &m.vectors[i * kDim];
        for (std::size_t d = 0; d < kDim; ++d) {
            v[d] = u(rng);
        }
        simd::kernels().normalize(v, kDim);
    }
    for (std::size_t i = 0; i < kN; ++i) {
        m.views.push_back(
            {m.ids[i], m.whats[i], m.locations[i], t(rng), &m.vectors[i * kDim], rng() % 20 != 0});
    }
    const auto index = build_time_index(m.views);
    RecallContext ctx{m.views, kDim, 0.4, kYear, index};
    auto vec = [&] {
        std::vector<float> v(kDim);
        for (auto& x : v) {
            x = u(rng);
        }
        return v;
    };
    struct Kind {
        const char* name;
        std::vector<Cue> cues;
    };
    const std::size_t batch = quick ? 64 : 256;
    std::vector<Kind> kinds = {{"embedding (thr 0.3)", {}},
                               {"context (range + location, thr 0.5)", {}},
                               {"temporal between 1 day (thr 0.8: all boost)", {}},
                               {"temporal recent 7 days (thr 0.5)", {}},
                               {"semantic 2 words (thr 0.3)", {}}};
    for (std::size_t i = 0; i < batch; ++i) {
        kinds[0].cues.push_back(embedding_cue(vec(), 0.3, 10));
        const double from = t(rng);
        kinds[1].cues.push_back(
            context_cue(from, from + 30 * 86400.0, std::string(places[1 + rng() % 5]), 0.5, 10));
        kinds[2].cues.push_back(temporal_between(from, from + 86400.0, 0.8, 10));
        kinds[3].cues.push_back(temporal_recent(7 * 86400.0, 0.5, 10));
        kinds[4].cues.push_back(
            semantic_cue(std::string(vocab[rng() % 12]) + " " + vocab[rng() % 12], 0.3, 10));
    }
    std::printf("## Recall: 100K memories (128-d), time index shared\n\n");
    std::printf("| cue kind | single: ms per cue (median) | batch %zu, 1 thread: cues/s | batch, "
                "%d threads: cues/s | ratio |\n|---|---|---|---|---|\n",
                batch, all.max_concurrency());
    const int reps = quick ? 2 : 3;
    for (const Kind& k : kinds) {
        std::vector<double> singles;
        const std::size_t ns = std::min<std::size_t>(k.cues.size(), quick ? 16 : 48);
        for (std::size_t i = 0; i < ns; ++i) {
            singles.push_back(time_ms([&] { g_sink += recall(k.cues[i], ctx)->size(); }));
        }
        const double b1 = median_ms(reps, [&] { g_sink += recall_batch(k.cues, ctx, one).size(); });
        const double bn = median_ms(reps, [&] { g_sink += recall_batch(k.cues, ctx, all).size(); });
        const double n = static_cast<double>(k.cues.size());
        std::printf("| %s | %.3f | %.0f | %.0f | %.2f× |\n", k.name, median(singles), n / b1 * 1000,
                    n / bn * 1000, b1 / bn);
    }
    std::printf("\nbuild_time_index (100K): %.2f ms\n\n",
                median_ms(5, [&] { g_sink += build_time_index(m.views).size(); }));
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    tbb::task_arena one(1);
    tbb::task_arena all; // default concurrency: every core
    std::printf("# engram_spread_bench (SIMD %s, %d threads)\n\n", simd::kernels().name,
                all.max_concurrency());
    bench_spread(quick, one, all);
    bench_recall(quick, one, all);
    return g_sink == 42 ? 1 : 0;
}
