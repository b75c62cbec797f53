#include "engine/spread.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <tbb/task_arena.h>

namespace engram::engine {
namespace {

std::vector<std::pair<std::uint32_t, float>> out_edges(const EdgeGraph& g, std::uint32_t v) {
    std::vector<std::pair<std::uint32_t, float>> out;
    g.for_each_out(v, [&](std::uint32_t d, float w) { out.emplace_back(d, w); });
    return out;
}

EdgeGraph must_build(const std::vector<Edge>& edges, std::uint32_t n = 0) {
    auto g = EdgeGraph::build(edges, n);
    EXPECT_TRUE(g.is_ok()) << g.status().message();
    return std::move(g).value();
}

const SpreadResult* find(const std::vector<SpreadResult>& rs, std::uint32_t node) {
    for (const auto& r : rs) {
        if (r.node == node) {
            return &r;
        }
    }
    return nullptr;
}

// ---- EdgeGraph ----------------------------------------------------------------------------

TEST(EdgeGraph, BuildSortsByDestinationAndLastDuplicateWins) {
    const auto g =
        must_build({{0, 5, 0.5F}, {0, 2, 0.25F}, {1, 0, 1.0F}, {0, 5, 0.75F}, {0, 9, 2.0F}});
    EXPECT_EQ(g.num_nodes(), 10U);
    EXPECT_EQ(g.num_edges(), 4U);
    EXPECT_EQ(g.out_degree(0), 3U);
    using V = std::vector<std::pair<std::uint32_t, float>>;
    EXPECT_EQ(out_edges(g, 0), (V{{2, 0.25F}, {5, 0.75F}, {9, 2.0F}}));
    EXPECT_EQ(out_edges(g, 1), (V{{0, 1.0F}}));
    EXPECT_TRUE(out_edges(g, 2).empty());
    EXPECT_TRUE(out_edges(g, 12345).empty()); // beyond the graph: no edges
    EXPECT_EQ(g.weight(0, 5), 0.75F);
    EXPECT_FALSE(g.weight(0, 4).has_value());
    EXPECT_EQ(must_build({}, 7).num_nodes(), 7U);
}

TEST(EdgeGraph, VarintDeltasOfEverySizeRoundTrip) {
    // Deltas of 1..5 varint bytes, up to the largest allowed index.
    const std::vector<std::uint32_t> dst = {
        0,        1,          127,         128,        255, 16383, 16384, 16385, (1U << 21) - 1,
        1U << 21, (1U << 28), 0xF0000000U, 0xFFFFFFFEU};
    std::vector<Edge> edges;
    for (std::size_t i = 0; i < dst.size(); ++i) {
        edges.push_back({3, dst[i], static_cast<float>(i) / 8});
    }
    std::reverse(edges.begin(), edges.end());
    const auto g = must_build(edges);
    const auto out = out_edges(g, 3);
    ASSERT_EQ(out.size(), dst.size());
    for (std::size_t i = 0; i < dst.size(); ++i) {
        EXPECT_EQ(out[i].first, dst[i]);
        EXPECT_EQ(out[i].second, static_cast<float>(i) / 8);
    }
    EXPECT_EQ(g.num_nodes(), 0xFFFFFFFFU);
}

TEST(EdgeGraph, PacksSmallDeltasIntoCacheLineBlocks) {
    static_assert(sizeof(EdgeGraph::Block) == 64 && alignof(EdgeGraph::Block) == 64);
    std::vector<Edge> edges;
    for (std::uint32_t i = 0; i < 120; ++i) {
        edges.push_back({0, 1000 + i, 0.5F});
    }
    const auto g = must_build(edges);
    EXPECT_EQ(g.used_blocks(), 10U); // 12 edges per 64-byte block (5 B header, 4 B + 1 B each)
    EXPECT_EQ(out_edges(g, 0).size(), 120U);
}

TEST(EdgeGraph, RejectsNonFiniteWeightsNamingTheEdge) {
    auto g = EdgeGraph::build(std::vector<Edge>{{0, 1, 0.5F}, {4, 2, NAN}});
    ASSERT_FALSE(g.is_ok());
    EXPECT_NE(g.status().message().find("edge 1 (4 -> 2)"), std::string::npos)
        << g.status().message();
    EdgeGraph e;
    const Status s = e.add_edge(1, 2, INFINITY);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("1 -> 2"), std::string::npos);
    EXPECT_EQ(e.add_edge(EdgeGraph::kMaxNodes, 2, 1.0F).code(), Code::kInvalidArgument);
    EXPECT_EQ(e.num_edges(), 0U);
}

TEST(EdgeGraph, GrowingAndShrinkingANodeKeepsExactBlockAccounting) {
    // 3-byte deltas (8 edges per block): the node's run grows, shrinks within its reserve, then
    // grows past it again; the blocks in use always equal those of a fresh build.
    EdgeGraph g;
    std::map<std::uint32_t, float> ref;
    auto check = [&](int step) {
        std::vector<Edge> edges;
        for (const auto& [d, w] : ref) {
            edges.push_back({0, d, w});
        }
        ASSERT_EQ(g.used_blocks(), must_build(edges).used_blocks()) << "step " << step;
        ASSERT_EQ(g.num_edges(), ref.size());
    };
    int step = 0;
    for (std::uint32_t i = 0; i < 100; ++i, ++step) {
        ASSERT_TRUE(g.add_edge(0, i * 100000U, 0.5F).is_ok());
        ref[i * 100000U] = 0.5F;
        check(step);
    }
    for (std::uint32_t i = 0; i < 90; ++i, ++step) {
        ASSERT_TRUE(g.remove_edge(0, i * 100000U));
        ref.erase(i * 100000U);
        check(step);
    }
    for (std::uint32_t i = 100; i < 400; ++i, ++step) {
        ASSERT_TRUE(g.add_edge(0, i * 100000U, 0.25F).is_ok());
        ref[i * 100000U] = 0.25F;
        check(step);
    }
    EXPECT_EQ(out_edges(g, 0).size(), 310U);
}

TEST(EdgeGraph, IncrementalEditsMatchAReferenceMap) {
    std::mt19937 rng(7);
    EdgeGraph g;
    std::map<std::pair<std::uint32_t, std::uint32_t>, float> ref;
    for (int op = 0; op < 40000; ++op) {
        const std::uint32_t src = rng() % 50;
        // Mostly clustered destinations (1-byte deltas), sometimes far ones.
        const std::uint32_t dst = rng() % 4 == 0 ? rng() % 3000000 : rng() % 400;
        const int kind = static_cast<int>(rng() % 10);
        if (kind < 6) {
            const float w = static_cast<float>(rng() % 1000) / 1000;
            ASSERT_TRUE(g.add_edge(src, dst, w).is_ok());
            ref[{src, dst}] = w;
        } else if (kind < 9) {
            EXPECT_EQ(g.remove_edge(src, dst), ref.erase({src, dst}) == 1);
        } else if (rng() % 20 == 0) {
            g.clear_out_edges(src);
            for (auto it = ref.begin(); it != ref.end();) {
                it = it->first.first == src ? ref.erase(it) : std::next(it);
            }
        }
    }
    EXPECT_EQ(g.num_edges(), ref.size());
    for (std::uint32_t v = 0; v < 50; ++v) {
        std::vector<std::pair<std::uint32_t, float>> want;
        for (const auto& [k, w] : ref) {
            if (k.first == v) {
                want.emplace_back(k.second, w);
            }
        }
        EXPECT_EQ(out_edges(g, v), want) << "node " << v;
        EXPECT_EQ(g.out_degree(v), want.size());
    }
    EXPECT_FALSE(g.remove_edge(1000, 1));
    // The same encoding as a fresh build of the surviving edges; block accounting is exact.
    std::vector<Edge> survivors;
    for (const auto& [k, w] : ref) {
        survivors.push_back({k.first, k.second, w});
    }
    const auto fresh = must_build(survivors);
    EXPECT_EQ(g.used_blocks(), fresh.used_blocks());
    for (std::uint32_t v = 0; v < 50; ++v) {
        EXPECT_EQ(g.max_out_weight(v), fresh.max_out_weight(v));
    }
    // Compaction keeps the arena within a small factor of what is used.
    EXPECT_LE(g.memory_bytes(), 8 * 64 * (g.used_blocks() + 1200));
}

// ---- spreading: a straightforward reference of DESIGN §2 -------------------------------------

using Adjacency = std::vector<std::vector<std::pair<std::uint32_t, float>>>;

Adjacency adjacency(const std::vector<Edge>& edges) {
    std::map<std::pair<std::uint32_t, std::uint32_t>, float> m;
    std::uint32_t n = 0;
    for (const Edge& e : edges) {
        m[{e.src, e.dst}] = e.weight; // last wins
        n = std::max(n, e.src + 1);
    }
    Adjacency adj(n);
    for (const auto& [k, w] : m) {
        adj[k.first].emplace_back(k.second, w);
    }
    return adj;
}

std::vector<SpreadResult> reference_spread(const Adjacency& adj, const std::vector<Seed>& seeds,
                                           std::size_t max_depth, std::optional<double> thr_o) {
    std::map<std::uint32_t, double> act;
    std::map<std::uint32_t, std::uint32_t> depth;
    for (const Seed& s : seeds) {
        if (!(s.activation >= 0.01)) {
            continue;
        }
        const double a = std::min(1.0, s.activation);
        if (act.count(s.node) != 0) {
            act[s.node] = std::min(1.0, act[s.node] + a);
        } else {
            act[s.node] = a;
            depth[s.node] = 0;
        }
    }
    std::vector<std::pair<std::uint32_t, double>> frontier;
    if (max_depth > 0) {
        frontier.assign(act.begin(), act.end());
    }
    for (std::size_t d = 0; !frontier.empty(); ++d) {
        const std::size_t level = d + 1;
        const double decay = std::exp(-0.7 * static_cast<double>(level));
        const double thr = thr_o ? std::max(0.0, *thr_o) : (level <= 2 ? 0.05 : 0.1);
        std::vector<std::tuple<std::uint32_t, std::uint32_t, double>> cs; // target, source, c
        for (auto [node, delta] : frontier) {
            if (node >= adj.size()) {
                continue;
            }
            for (auto [dst, w] : adj[node]) {
                const double c = delta * static_cast<double>(w) * decay;
                if (c >= thr && c > 0) {
                    cs.emplace_back(dst, node, c);
                }
            }
        }
        std::sort(cs.begin(), cs.end());
        std::vector<std::pair<std::uint32_t, double>> next;
        for (std::size_t i = 0; i < cs.size();) {
            const std::uint32_t t = std::get<0>(cs[i]);
            double sum = 0.0;
            for (; i < cs.size() && std::get<0>(cs[i]) == t; ++i) {
                sum += std::get<2>(cs[i]);
            }
            const double old = act.count(t) != 0 ? act[t] : 0.0;
            const double nw = std::min(1.0, old + sum);
            if (depth.count(t) == 0) {
                depth[t] = static_cast<std::uint32_t>(level);
            }
            act[t] = nw;
            if (nw - old > 0 && level < max_depth) {
                next.emplace_back(t, nw - old);
            }
        }
        frontier = std::move(next);
    }
    std::vector<SpreadResult> out;
    for (auto [v, a] : act) {
        const std::uint32_t dp = depth[v];
        out.push_back({v, a, dp, a * (dp == 0 ? 1.0 : dp <= 2 ? 0.95 : 0.9)});
    }
    std::sort(out.begin(), out.end(), [](const SpreadResult& a, const SpreadResult& b) {
        return a.activation != b.activation ? a.activation > b.activation : a.node < b.node;
    });
    return out;
}

void expect_identical(const std::vector<SpreadResult>& a, const std::vector<SpreadResult>& b,
                      const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].node, b[i].node) << what << " rank " << i;
        ASSERT_EQ(a[i].activation, b[i].activation) << what << " rank " << i; // bit-identical
        ASSERT_EQ(a[i].depth, b[i].depth) << what << " rank " << i;
        ASSERT_EQ(a[i].confidence, b[i].confidence) << what << " rank " << i;
    }
}

// ---- spreading: DESIGN §2 worked example and the rules ---------------------------------------

constexpr std::uint32_t kA = 0, kB = 1, kC = 2;

TEST(Spread, DesignWorkedExample) {
    // Edges A→B 0.8, B→C 0.6, A→C 0.4; seed A = 1.0; max depth 4.
    // Level 0: frontier {A: 1.0}.
    // Level 1 (decay e^−0.7, threshold 0.05): A sends 1.0·0.8·e^−0.7 = 0.3973 to B and
    //   1.0·0.4·e^−0.7 = 0.1986 to C; both are first reached here (depth 1) and their increments
    //   form the level-1 frontier {B: 0.3973, C: 0.1986} (1 < 4).
    // Level 2 (decay e^−1.4, threshold 0.05): B sends 0.3973·0.6·e^−1.4 = 0.0588 >= 0.05 to C,
    //   so C = 0.1986 + 0.0588 = 0.2574 (depth stays 1); C has no out-edges. Level 3 gets the
    //   frontier {C: 0.0588}, which sends nothing: spreading stops.
    // Confidence: × 0.95 at depth 1 → B 0.3774, C 0.2445; A stays 1.0 at depth 0.
    const auto g = must_build({{kA, kB, 0.8F}, {kB, kC, 0.6F}, {kA, kC, 0.4F}});
    const std::vector<Seed> seeds = {{kA, 1.0}};
    const auto r = spread(g, seeds, 4);
    ASSERT_EQ(r.size(), 3U);
    EXPECT_EQ(r[0].node, kA);
    EXPECT_EQ(r[0].activation, 1.0);
    EXPECT_EQ(r[0].depth, 0U);
    EXPECT_EQ(r[0].confidence, 1.0);
    EXPECT_EQ(r[1].node, kB);
    EXPECT_NEAR(r[1].activation, 0.3973, 1e-4);
    EXPECT_EQ(r[1].depth, 1U);
    EXPECT_NEAR(r[1].confidence, 0.3774, 1e-4);
    EXPECT_EQ(r[2].node, kC);
    EXPECT_NEAR(r[2].activation, 0.2574, 1e-4);
    EXPECT_EQ(r[2].depth, 1U);
    EXPECT_NEAR(r[2].confidence, 0.2445, 1e-4);
    // The same numbers from the formulas (float weights widened to double).
    const double b = 1.0 * double(0.8F) * std::exp(-0.7);
    const double c = 1.0 * double(0.4F) * std::exp(-0.7) + b * double(0.6F) * std::exp(-1.4);
    EXPECT_DOUBLE_EQ(r[1].activation, b);
    EXPECT_DOUBLE_EQ(r[2].activation, c);
    EXPECT_DOUBLE_EQ(r[2].confidence, c * 0.95);
    // One hop only: C lacks B's level-2 contribution.
    const auto one = spread(g, seeds, 1);
    EXPECT_NEAR(find(one, kC)->activation, 0.1986, 1e-4);
    EXPECT_NEAR(find(spread(g, seeds, 2), kC)->activation, 0.2574, 1e-4);
    // Depth 0: the seeds only.
    const auto zero = spread(g, seeds, 0);
    ASSERT_EQ(zero.size(), 1U);
    EXPECT_EQ(zero[0].node, kA);
}

TEST(Spread, ThresholdsPerLevelAndOverride) {
    // Level 1: c = w·e^−0.7 = 0.4966·w: 0.1 → 0.0497 (dropped), 0.11 → 0.0546 (kept).
    const auto g1 = must_build({{0, 1, 0.1F}, {0, 2, 0.11F}});
    const auto r1 = spread(g1, std::vector<Seed>{{0, 1.0}});
    EXPECT_EQ(find(r1, 1), nullptr);
    ASSERT_NE(find(r1, 2), nullptr);
    EXPECT_NE(find(spread(g1, std::vector<Seed>{{0, 1.0}}, 4, 0.04), 1), nullptr);
    // Chain 0→1→2→3: level 2 delivers e^−2.1 = 0.1225 to node 2; level 3 sends
    // 0.1225·5·e^−2.1 = 0.075 to node 3: kept at threshold 0.05, dropped at level 3's 0.1.
    const auto g2 = must_build({{0, 1, 1.0F}, {1, 2, 1.0F}, {2, 3, 5.0F}});
    const std::vector<Seed> s = {{0, 1.0}};
    EXPECT_EQ(find(spread(g2, s), 3), nullptr);
    const auto r2 = spread(g2, s, 4, 0.05);
    const SpreadResult* n3 = find(r2, 3);
    ASSERT_NE(n3, nullptr);
    EXPECT_EQ(n3->depth, 3U);
    EXPECT_NEAR(n3->activation, std::exp(-2.1) * 5 * std::exp(-2.1), 1e-12);
    EXPECT_DOUBLE_EQ(n3->confidence, n3->activation * 0.9);
    EXPECT_DOUBLE_EQ(find(r2, 2)->confidence, find(r2, 2)->activation * 0.95);
    // max depth 3 still reaches depth 3; max depth 2 does not.
    EXPECT_NE(find(spread(g2, s, 3, 0.05), 3), nullptr);
    EXPECT_EQ(find(spread(g2, s, 2, 0.05), 3), nullptr);
}

TEST(Spread, SeedRules) {
    const auto g = must_build({{0, 1, 1.0F}});
    // Below 0.01 and NaN are ignored; above 1 is clamped.
    EXPECT_TRUE(spread(g, std::vector<Seed>{{0, 0.009}, {1, NAN}}).empty());
    const auto big = spread(g, std::vector<Seed>{{0, 7.0}});
    EXPECT_EQ(find(big, 0)->activation, 1.0);
    EXPECT_DOUBLE_EQ(find(big, 1)->activation, std::exp(-0.7));
    // Duplicates are summed, then capped at 1.
    EXPECT_DOUBLE_EQ(find(spread(g, std::vector<Seed>{{0, 0.3}, {0, 0.4}}), 0)->activation, 0.7);
    EXPECT_EQ(find(spread(g, std::vector<Seed>{{0, 0.8}, {0, 0.8}}), 0)->activation, 1.0);
    // A seed beyond the graph is a result without edges.
    const auto out = spread(g, std::vector<Seed>{{500, 0.5}});
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].node, 500U);
    EXPECT_EQ(out[0].depth, 0U);
    EXPECT_TRUE(spread(g, std::vector<Seed>{}).empty());
}

TEST(Spread, DepthIsFirstReachCapAndCycles) {
    // 0→1 and 0→2 at level 1; 2→1 adds to 1 at level 2: depth stays 1.
    const auto g =
        must_build({{0, 1, 0.5F}, {0, 2, 1.0F}, {2, 1, 1.0F}, {3, 4, 3.0F}, {5, 4, 3.0F}});
    const auto r = spread(g, std::vector<Seed>{{0, 1.0}});
    const double e1 = std::exp(-0.7), e2 = std::exp(-1.4);
    EXPECT_EQ(find(r, 1)->depth, 1U);
    EXPECT_DOUBLE_EQ(find(r, 1)->activation, 0.5 * e1 + e1 * e2);
    // Two strong contributions are summed and capped at 1.
    const auto cap = spread(g, std::vector<Seed>{{3, 1.0}, {5, 1.0}});
    EXPECT_EQ(find(cap, 4)->activation, 1.0);
    // A cycle returns activation to the seed (its depth stays 0).
    const auto cyc = must_build({{0, 1, 1.0F}, {1, 0, 1.0F}});
    const auto rc = spread(cyc, std::vector<Seed>{{0, 0.5}});
    EXPECT_EQ(find(rc, 0)->depth, 0U);
    EXPECT_DOUBLE_EQ(find(rc, 0)->activation, 0.5 + 0.5 * e1 * e2);
    EXPECT_DOUBLE_EQ(find(rc, 1)->activation, 0.5 * e1);
}

TEST(Spread, CappedIncrementIsTheNextFrontier) {
    // Node 1 holds 0.9 (a seed) and receives 2·e^−0.7 ≈ 0.99 at level 1: new = 1, increment
    // 0.1, so at level 2 node 2 receives 0.1·0.5·e^−1.4 (not 0.99·0.5·e^−1.4).
    const auto g = must_build({{0, 1, 2.0F}, {1, 2, 0.5F}});
    const auto r = spread(g, std::vector<Seed>{{0, 1.0}, {1, 0.9}}, 4, 0.001);
    EXPECT_EQ(find(r, 1)->activation, 1.0);
    const double seed_push = 0.9 * 0.5 * std::exp(-0.7);        // node 1 as a seed, level 1
    const double inc_push = (1.0 - 0.9) * 0.5 * std::exp(-1.4); // its increment, level 2
    EXPECT_DOUBLE_EQ(find(r, 2)->activation, seed_push + inc_push);
    EXPECT_GT(seed_push + inc_push, 0.2);
    EXPECT_LT(seed_push + inc_push, 0.25);
    EXPECT_EQ(find(r, 2)->depth, 1U);
}

TEST(Spread, ResultsSortedByActivationThenNode) {
    const auto g = must_build({{0, 3, 0.5F}, {0, 1, 0.5F}, {0, 2, 0.5F}});
    const auto r = spread(g, std::vector<Seed>{{0, 1.0}});
    ASSERT_EQ(r.size(), 4U);
    EXPECT_EQ(r[1].node, 1U);
    EXPECT_EQ(r[2].node, 2U);
    EXPECT_EQ(r[3].node, 3U);
}

// ---- differential: reference, thread counts, batch ------------------------------------------

std::vector<Edge> random_edges(std::mt19937& rng, std::uint32_t n, std::size_t m, float wlo,
                               float whi) {
    std::uniform_real_distribution<float> w(wlo, whi);
    std::vector<Edge> edges(m);
    for (auto& e : edges) {
        e = {static_cast<std::uint32_t>(rng() % n), static_cast<std::uint32_t>(rng() % n), w(rng)};
    }
    return edges;
}

std::vector<Seed> random_seeds(std::mt19937& rng, std::uint32_t n, std::size_t k) {
    std::uniform_real_distribution<double> a(0.0, 1.2);
    std::vector<Seed> seeds(k);
    for (auto& s : seeds) {
        s = {static_cast<std::uint32_t>(rng() % (n + 3)), a(rng)};
    }
    return seeds;
}

TEST(SpreadDifferential, MatchesReferenceOnRandomGraphs) {
    std::mt19937 rng(11);
    for (int round = 0; round < 40; ++round) {
        const std::uint32_t n = 5 + rng() % 200;
        const auto edges = random_edges(rng, n, rng() % (n * 8), 0.0F, 1.5F);
        const auto g = must_build(edges);
        const auto adj = adjacency(edges);
        const auto seeds = random_seeds(rng, n, 1 + rng() % 6);
        const std::size_t depth = rng() % 7;
        const std::optional<double> thr =
            round % 3 == 0 ? std::optional<double>(0.02 * (rng() % 5)) : std::nullopt;
        expect_identical(spread(g, seeds, depth, thr), reference_spread(adj, seeds, depth, thr),
                         "round " + std::to_string(round));
    }
}

TEST(SpreadDifferential, ParallelLevelsAreBitIdenticalAtAnyThreadCount) {
    // Big frontiers: 1500 seeds × 30 out-edges per level, well above the parallel cut-off.
    std::mt19937 rng(5);
    const std::uint32_t n = 20000;
    const auto edges = random_edges(rng, n, 600000, 0.3F, 1.0F);
    const auto g = must_build(edges);
    std::vector<Seed> seeds(1500);
    for (auto& s : seeds) {
        s = {static_cast<std::uint32_t>(rng() % n), 1.0};
    }
    tbb::task_arena one(1);
    tbb::task_arena all;
    const auto plain = spread(g, seeds, 4);
    const auto r1 = spread(g, seeds, 4, std::nullopt, &one);
    const auto rn = spread(g, seeds, 4, std::nullopt, &all);
    EXPECT_GT(plain.size(), 10000U);
    expect_identical(plain, r1, "no arena vs 1 thread");
    expect_identical(plain, rn, "no arena vs all threads");
    expect_identical(plain, reference_spread(adjacency(edges), seeds, 4, std::nullopt),
                     "reference");
    // Lower threshold: deeper, larger levels.
    expect_identical(spread(g, seeds, 5, 0.01, &one), spread(g, seeds, 5, 0.01, &all),
                     "override 0.01");
}

TEST(SpreadDifferential, BatchEqualsSingleAtOneAndAllThreads) {
    std::mt19937 rng(9);
    const std::uint32_t n = 5000;
    const auto g = must_build(random_edges(rng, n, 50000, 0.2F, 1.0F));
    std::vector<std::vector<Seed>> sets;
    for (int i = 0; i < 300; ++i) {
        sets.push_back(random_seeds(rng, n, rng() % 12));
    }
    sets[17].clear();
    tbb::task_arena one(1);
    tbb::task_arena all;
    for (tbb::task_arena* arena : {&one, &all}) {
        const auto batch = spread_batch(g, sets, 3, std::nullopt, *arena);
        ASSERT_EQ(batch.size(), sets.size());
        for (std::size_t i = 0; i < sets.size(); ++i) {
            expect_identical(batch[i], spread(g, sets[i], 3), "set " + std::to_string(i));
        }
    }
}

TEST(SpreadScale, HundredThousandNodesMillionEdgesThreeHops) {
    std::mt19937 rng(2024);
    const std::uint32_t n = 100000;
    const auto edges = random_edges(rng, n, 1000000, 0.5F, 1.0F);
    const auto g = must_build(edges, n);
    EXPECT_EQ(g.num_nodes(), n);
    EXPECT_GT(g.num_edges(), 999000U);
    // Random destinations: 2–3 byte deltas and per-node lines; bounded bytes per edge.
    EXPECT_LT(g.used_blocks() * 64, g.num_edges() * 12);
    std::vector<Seed> seeds;
    for (int i = 0; i < 10; ++i) {
        seeds.push_back({static_cast<std::uint32_t>(rng() % n), 1.0});
    }
    tbb::task_arena all;
    const auto r = spread(g, seeds, 3, std::nullopt, &all);
    ASSERT_GT(r.size(), 50U);
    for (const auto& x : r) {
        ASSERT_LE(x.depth, 3U);
        ASSERT_GT(x.activation, 0.0);
        ASSERT_LE(x.activation, 1.0);
    }
    EXPECT_EQ(r[0].activation, 1.0);
    expect_identical(r, spread(g, seeds, 3), "no arena"); // its time: engram_spread_bench
}

} // namespace
} // namespace engram::engine
