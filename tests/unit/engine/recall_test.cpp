#include "engine/recall.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

// A store owning the text and vectors that MemoryViews point into.
struct TestStore {
    struct Row {
        std::string id, what, location;
        double t = 0.0;
        std::vector<float> unit; // empty: no vector
        bool hot = true;
    };
    std::vector<Row> rows;
    std::vector<MemoryView> views;
    std::size_t dim = 4;
    double pressure = 0.0;
    double now = 0.0;

    TestStore& add(std::string id, std::string what, double t, std::string location = "",
                   bool hot = true, std::vector<float> v = {}) {
        if (!v.empty()) {
            simd::kernels().normalize(v.data(), v.size());
        }
        rows.push_back({std::move(id), std::move(what), std::move(location), t, std::move(v), hot});
        return *this;
    }
    RecallContext context() {
        views.clear();
        for (const Row& r : rows) {
            views.push_back(
                {r.id, r.what, r.location, r.t, r.unit.empty() ? nullptr : r.unit.data(), r.hot});
        }
        return RecallContext{views, dim, pressure, now};
    }
};

// Results as id → confidence, in result order.
std::vector<std::pair<std::string, double>> named(const TestStore& s,
                                                  const std::vector<RecallResult>& rs) {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& r : rs) {
        out.emplace_back(s.rows[r.index].id, r.confidence);
    }
    return out;
}

std::vector<std::pair<std::string, double>> run(TestStore& s, const Cue& c) {
    auto r = recall(c, s.context());
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (!r.is_ok()) {
        return {};
    }
    return named(s, r.value());
}

std::string error_of(TestStore& s, const Cue& c) {
    auto r = recall(c, s.context());
    EXPECT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    return r.status().message();
}

using Named = std::vector<std::pair<std::string, double>>;

// Times far apart (> 1 h) so that no temporal boost interferes.
constexpr double kDay = 86400.0;

// ---- common validation --------------------------------------------------------------------

TEST(Recall, ThresholdAndMaxResultsAreValidated) {
    TestStore s;
    s.add("a", "x", 0);
    EXPECT_NE(error_of(s, semantic_cue("x", 1.5, 10)).find("threshold"), std::string::npos);
    EXPECT_NE(error_of(s, semantic_cue("x", -0.1, 10)).find("threshold"), std::string::npos);
    EXPECT_NE(error_of(s, semantic_cue("x", std::nan(""), 10)).find("threshold"),
              std::string::npos);
    EXPECT_NE(error_of(s, semantic_cue("x", 0.5, 0)).find("max_results"), std::string::npos);
}

// ---- embedding ----------------------------------------------------------------------------

TEST(RecallEmbedding, ScoresClampedCosineAgainstThreshold) {
    TestStore s;
    s.add("same", "", 0 * kDay, "", true, {1, 0, 0, 0});
    s.add("half", "", 1 * kDay, "", true, {1, 1.7320508F, 0, 0}); // cos 0.5
    s.add("orth", "", 2 * kDay, "", true, {0, 0, 1, 0});
    s.add("opp", "", 3 * kDay, "", true, {-1, 0, 0, 0});
    s.add("novec", "", 4 * kDay);
    // The cue is normalised here: scale must not matter.
    const auto all = run(s, embedding_cue({3, 0, 0, 0}, 0.0, 10));
    ASSERT_EQ(all.size(), 5U);
    EXPECT_EQ(all[0].first, "same");
    EXPECT_NEAR(all[0].second, 1.0, 1e-6);
    EXPECT_EQ(all[1].first, "half");
    EXPECT_NEAR(all[1].second, 0.5, 1e-6);
    // orth, opp (negative cosine → 0) and novec (no vector → 0) tie at 0, ordered by id.
    EXPECT_EQ(all[2], (std::pair<std::string, double>("novec", 0.0)));
    EXPECT_EQ(all[3], (std::pair<std::string, double>("opp", 0.0)));
    EXPECT_EQ(all[4].first, "orth");
    EXPECT_NEAR(all[4].second, 0.0, 1e-7);

    const auto some = run(s, embedding_cue({1, 0, 0, 0}, 0.49, 10));
    ASSERT_EQ(some.size(), 2U); // cos ≈ 0.5 >= 0.49
    EXPECT_EQ(some[0].first, "same");
    EXPECT_EQ(run(s, embedding_cue({1, 0, 0, 0}, 0.51, 10)).size(), 1U);
}

TEST(RecallEmbedding, ZeroCueScoresZeroAndErrorsNameTheProblem) {
    TestStore s;
    s.add("a", "", 0, "", true, {1, 0, 0, 0});
    EXPECT_EQ(run(s, embedding_cue({0, 0, 0, 0}, 0.0, 10)), (Named{{"a", 0.0}}));
    EXPECT_TRUE(run(s, embedding_cue({0, 0, 0, 0}, 0.01, 10)).empty());
    const auto dim = error_of(s, embedding_cue({1, 0, 0}, 0.0, 10));
    EXPECT_NE(dim.find("dimension 3"), std::string::npos) << dim;
    EXPECT_NE(dim.find("expected 4"), std::string::npos) << dim;
    EXPECT_NE(error_of(s, embedding_cue({1, std::nanf(""), 0, 0}, 0.0, 10)).find("element 1"),
              std::string::npos);
}

TEST(RecallEmbedding, ColdOnlyWhenAsked) {
    TestStore s;
    s.add("hot", "", 0, "", true, {1, 0, 0, 0});
    s.add("cold", "", kDay, "", false, {1, 0, 0, 0});
    Cue c = embedding_cue({1, 0, 0, 0}, 0.5, 10);
    EXPECT_EQ(run(s, c).size(), 1U);
    c.include_cold = true;
    const auto both = run(s, c);
    ASSERT_EQ(both.size(), 2U);
    EXPECT_EQ(both[0].first, "cold"); // equal confidence: id order
}

// ---- context ------------------------------------------------------------------------------

TEST(RecallContext, TimeRangeInclusiveAndOpenEnded) {
    TestStore s;
    s.add("t0", "", 0).add("t1", "", kDay).add("t2", "", 2 * kDay).add("t3", "", 3 * kDay);
    EXPECT_EQ(run(s, context_cue(kDay, 2 * kDay, std::nullopt, 1.0, 10)),
              (Named{{"t1", 1.0}, {"t2", 1.0}}));
    EXPECT_EQ(run(s, context_cue(2 * kDay, std::nullopt, std::nullopt, 1.0, 10)),
              (Named{{"t2", 1.0}, {"t3", 1.0}}));
    EXPECT_EQ(run(s, context_cue(std::nullopt, kDay, std::nullopt, 1.0, 10)),
              (Named{{"t0", 1.0}, {"t1", 1.0}}));
    // Threshold 0 keeps the non-matching memories too, at score 0.
    const auto all = run(s, context_cue(kDay, kDay, std::nullopt, 0.0, 10));
    ASSERT_EQ(all.size(), 4U);
    EXPECT_EQ(all[0], (std::pair<std::string, double>("t1", 1.0)));
    EXPECT_EQ(all[1], (std::pair<std::string, double>("t0", 0.0)));
}

TEST(RecallContext, LocationSubstringEitherWayCaseInsensitive) {
    TestStore s;
    s.add("cafe", "", 0, "Blue Bottle Cafe, Oakland")
        .add("city", "", kDay, "oakland")
        .add("other", "", 2 * kDay, "Berlin")
        .add("none", "", 3 * kDay, "");
    // "OAKLAND" is inside "Blue Bottle Cafe, Oakland"; "oakland" is inside "Oakland, CA".
    EXPECT_EQ(run(s, context_cue(std::nullopt, std::nullopt, "OAKLAND", 1.0, 10)),
              (Named{{"cafe", 1.0}, {"city", 1.0}}));
    EXPECT_EQ(run(s, context_cue(std::nullopt, std::nullopt, "Oakland, CA", 1.0, 10)),
              (Named{{"city", 1.0}}));
    // A memory without a location never matches a location criterion.
    const auto r = run(s, context_cue(std::nullopt, std::nullopt, "x", 0.0, 10));
    EXPECT_EQ(r.size(), 4U);
    for (const auto& [id, c] : r) {
        EXPECT_EQ(c, 0.0) << id;
    }
}

TEST(RecallContext, FractionOfCriteriaMet) {
    TestStore s;
    // More than 1 h apart, so that "both" (1.0) boosts nobody.
    s.add("both", "", kDay, "Kitchen").add("time", "", 0.5 * kDay, "garage");
    s.add("place", "", 5 * kDay, "kitchen");
    s.add("neither", "", 5 * kDay, "garage");
    const auto r = run(s, context_cue(0.0, 2 * kDay, "kitchen", 0.5, 10));
    EXPECT_EQ(r, (Named{{"both", 1.0}, {"place", 0.5}, {"time", 0.5}}));
    EXPECT_EQ(run(s, context_cue(0.0, 2 * kDay, "kitchen", 0.6, 10)), (Named{{"both", 1.0}}));
}

TEST(RecallContext, ErrorsNameTheProblem) {
    TestStore s;
    s.add("a", "", 0, "x");
    EXPECT_NE(error_of(s, context_cue(std::nullopt, std::nullopt, std::nullopt, 0.5, 10))
                  .find("no criteria"),
              std::string::npos);
    EXPECT_NE(error_of(s, context_cue(10.0, 5.0, std::nullopt, 0.5, 10)).find("from"),
              std::string::npos);
    EXPECT_NE(
        error_of(s, context_cue(INFINITY, std::nullopt, std::nullopt, 0.5, 10)).find("not finite"),
        std::string::npos);
}

// ---- temporal -----------------------------------------------------------------------------

TEST(RecallTemporal, PatternsAndScoreIsTheThreshold) {
    TestStore s;
    s.add("t0", "", 0).add("t1", "", kDay).add("t2", "", 2 * kDay).add("t3", "", 3 * kDay);
    s.now = 3 * kDay + 10;
    EXPECT_EQ(run(s, temporal_before(kDay, 0.4, 10)), (Named{{"t0", 0.4}}));    // strict
    EXPECT_EQ(run(s, temporal_after(2 * kDay, 0.4, 10)), (Named{{"t3", 0.4}})); // strict
    EXPECT_EQ(run(s, temporal_between(kDay, 2 * kDay, 0.3, 10)),
              (Named{{"t1", 0.3}, {"t2", 0.3}})); // inclusive
    EXPECT_EQ(run(s, temporal_recent(kDay + 10, 0.2, 10)),
              (Named{{"t2", 0.2}, {"t3", 0.2}})); // t >= now − seconds, inclusive
    EXPECT_EQ(run(s, temporal_recent(5, 0.2, 10)), Named{});
    // All matches at the threshold: id order; max_results cuts.
    EXPECT_EQ(run(s, temporal_after(-1.0, 0.1, 2)), (Named{{"t0", 0.1}, {"t1", 0.1}}));
}

TEST(RecallTemporal, ErrorsNameTheProblem) {
    TestStore s;
    s.add("a", "", 0);
    EXPECT_NE(error_of(s, temporal_between(5, 1, 0.5, 10)).find("between"), std::string::npos);
    EXPECT_NE(error_of(s, temporal_recent(-1, 0.5, 10)).find("recent"), std::string::npos);
    EXPECT_NE(error_of(s, temporal_before(NAN, 0.5, 10)).find("before"), std::string::npos);
}

// ---- semantic -----------------------------------------------------------------------------

TEST(RecallSemantic, ScoringRules) {
    TestStore s;
    s.add("coffee with Ana", "unrelated text", 0 * kDay)     // id equal → 1.0
        .add("m1", "Had COFFEE with ana at noon", 1 * kDay)  // contains query → 1.0
        .add("m2", "coffee", 2 * kDay)                       // query contains what → 0.7
        .add("m3", "Ana likes tea; never coffee!", 3 * kDay) // words: ana, coffee → 0.5·2/3
        .add("m4", "tea", 4 * kDay)                          // nothing shared → 0
        .add("m5", "", 5 * kDay);                            // empty what: not 0.7, 0 words
    const auto r = run(s, semantic_cue("coffee with Ana", 0.0, 10));
    ASSERT_EQ(r.size(), 6U);
    EXPECT_EQ(r[0], (std::pair<std::string, double>("coffee with Ana", 1.0)));
    EXPECT_EQ(r[1], (std::pair<std::string, double>("m1", 1.0)));
    EXPECT_EQ(r[2], (std::pair<std::string, double>("m2", 0.7)));
    EXPECT_EQ(r[3].first, "m3");
    EXPECT_DOUBLE_EQ(r[3].second, 0.5 * 2.0 / 3.0);
    EXPECT_EQ(r[4], (std::pair<std::string, double>("m4", 0.0)));
    EXPECT_EQ(r[5], (std::pair<std::string, double>("m5", 0.0)));
    // The id rule is exact (case-sensitive); the others are not.
    const auto upper = run(s, semantic_cue("COFFEE WITH ANA", 0.9, 10));
    EXPECT_EQ(upper, (Named{{"m1", 1.0}}));
}

TEST(RecallSemantic, WordsSplitOnNonAlphanumericsAndCountPerQueryWord) {
    TestStore s;
    s.add("m", "red-apple, green_pear", 0);
    // query words: apple, apple, kiwi (3); what words: red, apple, green, pear.
    const auto r = run(s, semantic_cue("apple apple kiwi", 0.0, 10));
    ASSERT_EQ(r.size(), 1U);
    EXPECT_DOUBLE_EQ(r[0].second, 0.5 * 2.0 / 3.0);
    // A query without any word (and not a substring) scores 0.
    EXPECT_EQ(run(s, semantic_cue("!!", 0.0, 10)), (Named{{"m", 0.0}}));
    EXPECT_TRUE(run(s, semantic_cue("Pear kiwi", 0.26, 10)).empty()); // 0.25 < 0.26
    EXPECT_EQ(run(s, semantic_cue("Pear kiwi", 0.25, 10)), (Named{{"m", 0.25}}));
    // Whole words only: "tea" inside "steak"/"teapot" is not the word "tea".
    TestStore t;
    t.add("w1", "steak teapot", 0).add("w2", "steak, green TEA", kDay);
    EXPECT_EQ(run(t, semantic_cue("tea kiwi", 0.0, 10)), (Named{{"w2", 0.25}, {"w1", 0.0}}));
}

TEST(RecallSemantic, EmptyQueryIsAnError) {
    TestStore s;
    s.add("a", "x", 0);
    EXPECT_NE(error_of(s, semantic_cue("", 0.5, 10)).find("empty query"), std::string::npos);
}

// ---- temporal boost -----------------------------------------------------------------------

TEST(RecallBoost, NeighboursWithinAnHourAreBoostedOrAdded) {
    TestStore s;
    s.pressure = 0.5;                                  // factor 1 − 0.25 = 0.75
    s.add("src", "espresso", 10000);                   // semantic 1.0: a boost source
    s.add("near", "shop", 10000 + 900);                // query contains what → 0.7; boosted
    s.add("mid", "unrelated", 10000 + 1800);           // not a result; added when boost > 0.5·thr
    s.add("edge", "unrelated", 10000 + 3600);          // Δt = 1 h → boost 0
    s.add("far", "unrelated", 10000 + 3601);           // outside the window
    s.add("cold", "unrelated", 10000 + 60, "", false); // cold: never boosted
    const Cue c = semantic_cue("espresso shop", 0.2, 10);
    // Base results: src and near score 0.7 each (the query contains their what); both are
    // boost sources (>= 0.7 in the snapshot). mid, edge, far score 0; cold is not considered.
    const double f = 0.75 * 0.3;
    const double src_from_near = (1 - 900.0 / 3600) * 0.7 * f;
    const double near_from_src = (1 - 900.0 / 3600) * 0.7 * f;
    const double mid_from_src = (1 - 1800.0 / 3600) * 0.7 * f;   // 0.07875 <= 0.1: no
    const double mid_from_near = (1 - 900.0 / 3600) * 0.7 * f;   // 0.118 > 0.1: added
    const double edge_from_near = (1 - 2700.0 / 3600) * 0.7 * f; // 0.039: no
    ASSERT_LT(mid_from_src, 0.1);
    ASSERT_GT(mid_from_near, 0.1);
    ASSERT_LT(edge_from_near, 0.1);
    const auto r = run(s, c);
    ASSERT_EQ(r.size(), 3U);
    EXPECT_EQ(r[0].first, "near");
    EXPECT_DOUBLE_EQ(r[0].second, 0.7 + near_from_src);
    EXPECT_EQ(r[1].first, "src");
    EXPECT_DOUBLE_EQ(r[1].second, 0.7 + src_from_near);
    EXPECT_EQ(r[2].first, "mid");
    EXPECT_DOUBLE_EQ(r[2].second, mid_from_near);
}

TEST(RecallBoost, SnapshotCapAndSourceOrder) {
    TestStore s;
    s.pressure = 0.0;
    // Two strong sources 10 min apart boost each other from their pre-boost confidences.
    s.add("a", "alpha", 0);
    s.add("b", "alpha", 600);
    // t: reached first (source a, index 0) with a small boost (not admitted), then by b with a
    // larger one (admitted). Source order a, b gives conf = boost_b only; the reverse order would
    // give boost_b + boost_a.
    s.add("t", "zzz", 1000);
    const Cue c = semantic_cue("alpha", 0.45, 10);          // admit when boost > 0.225
    const double boost_a = (1 - 1000.0 / 3600) * 1.0 * 0.3; // 0.2167: not admitted
    const double boost_b = (1 - 400.0 / 3600) * 1.0 * 0.3;  // 0.2667: admitted
    ASSERT_LT(boost_a, 0.225);
    ASSERT_GT(boost_b, 0.225);
    const auto r = run(s, c);
    ASSERT_EQ(r.size(), 3U);
    EXPECT_EQ(r[0], (std::pair<std::string, double>("a", 1.0))); // capped at 1
    EXPECT_EQ(r[1], (std::pair<std::string, double>("b", 1.0)));
    EXPECT_EQ(r[2].first, "t");
    EXPECT_DOUBLE_EQ(r[2].second, boost_b);
    EXPECT_NE(r[2].second, boost_a + boost_b);
}

TEST(RecallBoost, PressureScalesAndIsClamped) {
    TestStore s;
    s.add("a", "alpha", 0).add("n", "zzz", 0);
    s.pressure = 1.0;
    const auto r1 = run(s, semantic_cue("alpha", 0.1, 10));
    ASSERT_EQ(r1.size(), 2U);
    EXPECT_DOUBLE_EQ(r1[1].second, 1.0 * 0.5 * 0.3);
    s.pressure = 7.0; // clamped to 1
    EXPECT_EQ(run(s, semantic_cue("alpha", 0.1, 10)), r1);
    s.pressure = 0.0;
    EXPECT_DOUBLE_EQ(run(s, semantic_cue("alpha", 0.1, 10))[1].second, 0.3);
}

TEST(RecallBoost, AdmitsOnlyAboveHalfTheThreshold) {
    TestStore s;
    s.add("a", "alpha", 0).add("n", "zzz", 0);
    // Δt = 0, pressure 0: boost = 0.3 exactly; 0.5 × 0.6 = 0.3 is not exceeded.
    EXPECT_EQ(run(s, semantic_cue("alpha", 0.6, 10)), (Named{{"a", 1.0}}));
    EXPECT_EQ(run(s, semantic_cue("alpha", 0.59, 10)), (Named{{"a", 1.0}, {"n", 0.3}}));
}

TEST(RecallBoost, OnlyFromStrongResults) {
    TestStore s;
    s.add("a", "alpha beta", 0).add("n", "zzz", 10);
    // "alpha gamma": a scores 0.5·1/2 = 0.25 < 0.7: no boost for n.
    EXPECT_EQ(run(s, semantic_cue("alpha gamma", 0.1, 10)), (Named{{"a", 0.25}}));
}

TEST(RecallBoost, PrecomputedTimeIndexGivesTheSameResults) {
    TestStore s;
    for (int i = 0; i < 50; ++i) {
        s.add("m" + std::to_string(i), i % 3 == 0 ? "alpha" : "beta", (i * 7919) % 20000, "",
              i % 5 != 0);
    }
    auto ctx = s.context();
    const auto idx = build_time_index(ctx.memories);
    EXPECT_EQ(idx.size(), 40U); // hot only
    RecallContext with = ctx;
    with.hot_by_time = idx;
    for (double thr : {0.0, 0.1, 0.5}) {
        const Cue c = semantic_cue("alpha", thr, 100);
        auto a = recall(c, ctx);
        auto b = recall(c, with);
        ASSERT_TRUE(a.is_ok() && b.is_ok());
        ASSERT_EQ(a->size(), b->size());
        for (std::size_t i = 0; i < a->size(); ++i) {
            EXPECT_EQ((*a)[i].index, (*b)[i].index);
            EXPECT_EQ((*a)[i].confidence, (*b)[i].confidence);
        }
    }
}

// ---- a straightforward reference implementation (quadratic), for differential tests ---------

std::string lower(std::string_view s) {
    std::string o(s);
    for (char& ch : o) {
        if (ch >= 'A' && ch <= 'Z') {
            ch = static_cast<char>(ch - 'A' + 'a');
        }
    }
    return o;
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (std::isalnum(u) != 0 || u >= 0x80) {
            cur += ch;
        } else if (!cur.empty()) {
            out.push_back(cur);
            cur.clear();
        }
    }
    if (!cur.empty()) {
        out.push_back(cur);
    }
    return out;
}

std::vector<RecallResult> reference_recall(const Cue& c, const RecallContext& ctx) {
    std::map<std::uint32_t, double> res;
    std::vector<float> q = c.embedding;
    if (c.kind == CueKind::kEmbedding) {
        simd::kernels().normalize(q.data(), q.size());
    }
    for (std::uint32_t i = 0; i < ctx.memories.size(); ++i) {
        const MemoryView& m = ctx.memories[i];
        if (!m.hot && !c.include_cold) {
            continue;
        }
        double s = 0;
        bool keep = true;
        switch (c.kind) {
        case CueKind::kEmbedding:
            s = m.unit ? std::max(0.0,
                                  std::clamp(double(simd::kernels().dot(q.data(), m.unit, ctx.dim)),
                                             -1.0, 1.0))
                       : 0.0;
            break;
        case CueKind::kContext: {
            int n = 0, met = 0;
            if (c.has_from || c.has_to) {
                ++n;
                met += ((!c.has_from || m.occurred_at >= c.from) &&
                        (!c.has_to || m.occurred_at <= c.to));
            }
            if (c.has_location || !c.location.empty()) {
                ++n;
                const auto a = lower(m.location), b = lower(c.location);
                met += !a.empty() &&
                       (a.find(b) != std::string::npos || b.find(a) != std::string::npos);
            }
            s = double(met) / n;
            break;
        }
        case CueKind::kTemporal:
            switch (c.temporal) {
            case TemporalKind::kBefore:
                keep = m.occurred_at < c.to;
                break;
            case TemporalKind::kAfter:
                keep = m.occurred_at > c.from;
                break;
            case TemporalKind::kBetween:
                keep = m.occurred_at >= c.from && m.occurred_at <= c.to;
                break;
            case TemporalKind::kRecent:
                keep = m.occurred_at >= ctx.now - c.recent_seconds;
                break;
            }
            s = c.threshold;
            break;
        case CueKind::kSemantic: {
            const auto w = lower(m.what), qq = lower(c.text);
            if (m.id == c.text || w.find(qq) != std::string::npos) {
                s = 1.0;
            } else if (!w.empty() && qq.find(w) != std::string::npos) {
                s = 0.7;
            } else {
                const auto qw = words(qq), ww = words(w);
                std::size_t shared = 0;
                for (const auto& x : qw) {
                    shared += std::count(ww.begin(), ww.end(), x) > 0;
                }
                s = qw.empty() ? 0.0 : 0.5 * double(shared) / double(qw.size());
            }
            break;
        }
        }
        if (keep && s >= c.threshold) {
            res[i] = s;
        }
    }
    std::vector<std::pair<std::uint32_t, double>> sources;
    for (auto [i, s] : res) {
        if (s >= 0.7) {
            sources.emplace_back(i, s);
        }
    }
    const double p = std::clamp(ctx.pressure, 0.0, 1.0);
    for (auto [si, sc] : sources) {
        for (std::uint32_t j = 0; j < ctx.memories.size(); ++j) { // target index order
            if (j == si || !ctx.memories[j].hot) {
                continue;
            }
            const double dt = std::abs(ctx.memories[j].occurred_at - ctx.memories[si].occurred_at);
            if (dt > 3600) {
                continue;
            }
            const double b = (1 - dt / 3600) * sc * (1 - 0.5 * p) * 0.3;
            if (auto it = res.find(j); it != res.end()) {
                it->second = std::min(1.0, it->second + b);
            } else if (b > 0.5 * c.threshold) {
                res[j] = b;
            }
        }
    }
    std::vector<RecallResult> out;
    for (auto [i, s] : res) {
        out.push_back({i, s});
    }
    std::sort(out.begin(), out.end(), [&](const RecallResult& a, const RecallResult& b) {
        if (a.confidence != b.confidence) {
            return a.confidence > b.confidence;
        }
        return ctx.memories[a.index].id < ctx.memories[b.index].id;
    });
    if (out.size() > c.max_results) {
        out.resize(c.max_results);
    }
    return out;
}

struct RandomWorld {
    TestStore store;
    std::vector<Cue> cues;
};

RandomWorld random_world(std::uint32_t seed, std::size_t n, std::size_t ncues, double span) {
    std::mt19937 rng(seed);
    const char* vocab[] = {"coffee", "Ana", "tea", "park", "rain", "Berlin", "bike", "book"};
    const char* places[] = {"", "Berlin Mitte", "berlin", "Park Cafe", "Home"};
    std::uniform_real_distribution<double> u(0, 1);
    RandomWorld w;
    w.store.dim = 8;
    w.store.pressure = u(rng);
    w.store.now = span;
    auto text = [&](int maxw) {
        std::string t;
        const int k = static_cast<int>(rng() % (maxw + 1));
        for (int i = 0; i < k; ++i) {
            t += (i ? (rng() % 2 ? " " : ", ") : "");
            t += vocab[rng() % 8];
        }
        return t;
    };
    auto vec = [&] {
        std::vector<float> v(8);
        for (auto& x : v) {
            x = static_cast<float>(u(rng) * 2 - 1);
        }
        return v;
    };
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<float> v;
        if (rng() % 10 != 0) {
            v = vec();
        }
        w.store.add("m" + std::to_string(rng() % (n * 4)) + "_" + std::to_string(i), text(4),
                    std::floor(u(rng) * span), places[rng() % 5], rng() % 6 != 0, v);
    }
    for (std::size_t i = 0; i < ncues; ++i) {
        const double thr = std::floor(u(rng) * 10) / 10;
        const std::size_t k = 1 + rng() % 30;
        Cue c;
        switch (rng() % 7) {
        case 0:
            c = embedding_cue(vec(), thr, k);
            break;
        case 1:
            c = context_cue(u(rng) * span * 0.5,
                            rng() % 2 ? std::optional<double>(span * (0.5 + u(rng))) : std::nullopt,
                            rng() % 2 ? std::optional<std::string>(places[1 + rng() % 4])
                                      : std::nullopt,
                            thr, k);
            break;
        case 2:
            c = temporal_before(u(rng) * span, thr, k);
            break;
        case 3:
            c = temporal_after(u(rng) * span, thr, k);
            break;
        case 4:
            c = temporal_recent(u(rng) * span * 0.3, thr, k);
            break;
        default: {
            std::string q = text(3);
            c = semantic_cue(q.empty() ? "coffee" : q, thr, k);
            break;
        }
        }
        c.include_cold = rng() % 4 == 0;
        w.cues.push_back(c);
    }
    return w;
}

void expect_same(const std::vector<RecallResult>& a, const std::vector<RecallResult>& b,
                 const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].index, b[i].index) << what << " rank " << i;
        EXPECT_EQ(a[i].confidence, b[i].confidence) << what << " rank " << i; // bit-identical
    }
}

TEST(RecallDifferential, MatchesQuadraticReference) {
    for (std::uint32_t seed = 1; seed <= 6; ++seed) {
        // A 6 h span: dense enough that boosts chain through many neighbours.
        auto w = random_world(seed, 300, 60, 6 * 3600.0);
        const auto ctx = w.store.context();
        for (std::size_t i = 0; i < w.cues.size(); ++i) {
            auto got = recall(w.cues[i], ctx);
            ASSERT_TRUE(got.is_ok()) << got.status().message();
            expect_same(got.value(), reference_recall(w.cues[i], ctx),
                        "seed " + std::to_string(seed) + " cue " + std::to_string(i));
        }
    }
}

TEST(RecallDifferential, BatchEqualsSingleAtOneAndAllThreads) {
    auto w = random_world(42, 2000, 200, 48 * 3600.0);
    w.cues.push_back(semantic_cue("", 0.5, 3)); // an error inside the batch stays in its slot
    const auto ctx = w.store.context();
    std::vector<Result<std::vector<RecallResult>>> single;
    for (const Cue& c : w.cues) {
        single.push_back(recall(c, ctx));
    }
    tbb::task_arena one(1);
    tbb::task_arena all;
    for (tbb::task_arena* arena : {&one, &all}) {
        const auto batch = recall_batch(w.cues, ctx, *arena);
        ASSERT_EQ(batch.size(), single.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            ASSERT_EQ(batch[i].is_ok(), single[i].is_ok()) << i;
            if (!batch[i].is_ok()) {
                EXPECT_EQ(batch[i].status().message(), single[i].status().message());
                continue;
            }
            expect_same(batch[i].value(), single[i].value(), "cue " + std::to_string(i));
        }
    }
    EXPECT_FALSE(single.back().is_ok());
}

TEST(RecallScale, HundredThousandMemoriesWithManyBoostSources) {
    // 100K memories over ~11.5 days (one every 10 s): a temporal cue at threshold 0.8 makes
    // every match a boost source with ~720 neighbours in its 2 h window. Quadratic neighbour
    // search would need 10^10 steps; the time index keeps it to the boost pairs.
    TestStore s;
    s.rows.reserve(100000);
    for (int i = 0; i < 100000; ++i) {
        s.add("m" + std::to_string(i), "note", i * 10.0);
    }
    const auto ctx = s.context();
    const auto idx = build_time_index(ctx.memories);
    RecallContext with = ctx;
    with.hot_by_time = idx;
    auto r = recall(temporal_between(500000, 510000, 0.8, 10), with); // 1001 sources
    auto r2 = recall(semantic_cue("nothing matches", 0.3, 10), with);
    ASSERT_TRUE(r.is_ok() && r2.is_ok());
    ASSERT_EQ(r->size(), 10U);
    EXPECT_EQ((*r)[0].confidence, 1.0); // boosted to the cap
    EXPECT_TRUE(r2->empty());           // its time: bench/recall_bench.py, engram_spread_bench
}

} // namespace
} // namespace engram::engine
