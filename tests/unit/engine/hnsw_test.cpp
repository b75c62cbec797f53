#include "engine/hnsw/hnsw.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/hnsw/quant.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

// ThreadSanitizer runs these tests too (tests/tsan/run.sh, filter *Hnsw*), about 10x slower:
// the data sets shrink there; the assertions stay the same.
#if defined(__SANITIZE_THREAD__)
constexpr std::size_t kScale = 5;
#else
constexpr std::size_t kScale = 1;
#endif

using Hits = std::vector<std::pair<std::uint32_t, float>>;

// Low-rank data: `rank` Gaussian factors through a fixed random projection, plus noise, then
// normalised. Deterministic per seed; the projection depends only on (dim, rank).
std::vector<float> low_rank(std::size_t n, std::size_t dim, std::size_t rank, std::uint32_t seed) {
    std::mt19937 proj_rng(7);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> proj(rank * dim);
    for (float& x : proj) {
        x = nd(proj_rng);
    }
    std::vector<float> out(n * dim);
    std::vector<float> z(rank);
    const float noise = 0.1F * std::sqrt(static_cast<float>(rank));
    for (std::size_t i = 0; i < n; ++i) {
        for (float& x : z) {
            x = nd(rng);
        }
        float* row = out.data() + i * dim;
        for (std::size_t d = 0; d < dim; ++d) {
            float v = noise * nd(rng);
            for (std::size_t r = 0; r < rank; ++r) {
                v += z[r] * proj[r * dim + d];
            }
            row[d] = v;
        }
        simd::kernels().normalize(row, dim);
    }
    return out;
}

HnswConfig config(std::size_t dim, std::size_t m = 16, std::size_t ef_construction = 200) {
    HnswConfig c;
    c.dim = dim;
    c.m = m;
    c.ef_construction = ef_construction;
    return c;
}

// Exact top-k over the given labels (rows of `data`), ties by smaller label.
Hits exact(const std::vector<float>& data, std::size_t dim,
           const std::vector<std::uint32_t>& labels, const float* q, std::size_t k) {
    Hits all;
    all.reserve(labels.size());
    for (const std::uint32_t l : labels) {
        all.emplace_back(l, simd::kernels().dot(q, data.data() + std::size_t{l} * dim, dim));
    }
    const auto better = [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    };
    k = std::min(k, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), better);
    all.resize(k);
    return all;
}

double recall_at_10(const HnswIndex& index, const std::vector<float>& data, std::size_t dim,
                    const std::vector<std::uint32_t>& live, const std::vector<float>& queries,
                    std::size_t ef) {
    const std::size_t nq = queries.size() / dim;
    std::size_t hits = 0;
    for (std::size_t q = 0; q < nq; ++q) {
        const float* v = queries.data() + q * dim;
        const Hits truth = exact(data, dim, live, v, 10);
        const Hits got = index.search(v, 10, ef);
        std::unordered_set<std::uint32_t> want;
        for (const auto& h : truth) {
            want.insert(h.first);
        }
        for (const auto& h : got) {
            hits += want.count(h.first);
        }
    }
    return static_cast<double>(hits) / static_cast<double>(nq * 10);
}

std::vector<std::uint32_t> iota_labels(std::size_t n) {
    std::vector<std::uint32_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<std::uint32_t>(i);
    }
    return v;
}

TEST(HnswConfig, ValidateNamesTheCulprit) {
    EXPECT_TRUE(config(64).validate().is_ok());
    const Status no_dim = config(0).validate();
    EXPECT_EQ(no_dim.code(), Code::kInvalidArgument);
    EXPECT_NE(no_dim.message().find("dim"), std::string::npos);
    EXPECT_NE(config(8, 1).validate().message().find("m must be"), std::string::npos);
    EXPECT_NE(config(8, 300).validate().message().find("m must be"), std::string::npos);
    EXPECT_NE(config(8, 16, 0).validate().message().find("ef_construction"), std::string::npos);
    EXPECT_FALSE(config(70000).validate().is_ok());
}

TEST(HnswQuant, EveryKernelMatchesTheScalarReference) {
    std::size_t count = 0;
    const quant::QuantKernels* const* variants = quant::quant_variants(&count);
    ASSERT_GE(count, 1U);
    EXPECT_STREQ(variants[0]->name, "scalar");
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> code(-127, 127);
    for (const std::size_t n : {64U, 128U, 832U, 4096U}) {
        std::vector<std::int8_t> a(n);
        std::vector<std::int8_t> b(n);
        for (int rep = 0; rep < 20; ++rep) {
            for (std::size_t i = 0; i < n; ++i) {
                // Include the extremes: they are where a saturating kernel would go wrong.
                a[i] = static_cast<std::int8_t>(rep == 0 ? 127 : code(rng));
                b[i] = static_cast<std::int8_t>(rep == 0 ? -127 : code(rng));
            }
            const std::int32_t want = variants[0]->dot_i8(a.data(), b.data(), n);
            for (std::size_t v = 1; v < count; ++v) {
                EXPECT_EQ(variants[v]->dot_i8(a.data(), b.data(), n), want)
                    << variants[v]->name << " n=" << n;
            }
        }
    }
}

TEST(HnswQuant, QuantizedDotApproximatesCosine) {
    const std::size_t dim = 100;
    const std::size_t padded = 128;
    const auto v = low_rank(50, dim, 8, 11);
    std::vector<std::int8_t> ca(padded);
    std::vector<std::int8_t> cb(padded);
    for (std::size_t i = 0; i + 1 < 50; ++i) {
        const float* a = v.data() + i * dim;
        const float* b = a + dim;
        const float sa = quant::quantize_i8(a, dim, ca.data(), padded);
        const float sb = quant::quantize_i8(b, dim, cb.data(), padded);
        for (std::size_t p = dim; p < padded; ++p) {
            ASSERT_EQ(ca[p], 0); // padding stays zero
        }
        const float approx =
            static_cast<float>(quant::quant_kernels().dot_i8(ca.data(), cb.data(), padded)) * sa *
            sb;
        EXPECT_NEAR(approx, simd::kernels().dot(a, b, dim), 0.02F);
    }
    const std::vector<float> zero(dim, 0.0F);
    EXPECT_EQ(quant::quantize_i8(zero.data(), dim, ca.data(), padded), 0.0F);
}

TEST(HnswIndex, EmptyAndDegenerateQueries) {
    HnswIndex index(config(13));
    const auto v = low_rank(3, 13, 4, 1);
    EXPECT_TRUE(index.search(v.data(), 5, 10).empty());
    EXPECT_EQ(index.size(), 0U);
    index.insert(42, v.data());
    EXPECT_TRUE(index.search(v.data(), 0, 10).empty()); // k = 0
    const Hits one = index.search(v.data() + 13, 5, 1); // k > size, ef < k
    ASSERT_EQ(one.size(), 1U);
    EXPECT_EQ(one[0].first, 42U);
    index.insert(7, v.data() + 13);
    index.insert(9, v.data() + 26);
    const Hits all = index.search(v.data(), 100, 1);
    ASSERT_EQ(all.size(), 3U);
    EXPECT_EQ(all[0].first, 42U);
    EXPECT_NEAR(all[0].second, 1.0F, 1e-5F);
    EXPECT_GE(all[1].second, all[2].second);
}

TEST(HnswIndex, TiesGoToTheSmallerLabel) {
    HnswIndex index(config(8));
    const auto v = low_rank(2, 8, 4, 5);
    for (const std::uint32_t l : {30U, 10U, 20U}) {
        index.insert(l, v.data()); // three copies of one vector
    }
    index.insert(5, v.data() + 8);
    const Hits h = index.search(v.data(), 4, 16);
    ASSERT_EQ(h.size(), 4U);
    EXPECT_EQ(h[0].first, 10U);
    EXPECT_EQ(h[1].first, 20U);
    EXPECT_EQ(h[2].first, 30U);
    EXPECT_EQ(h[0].second, h[2].second);
    EXPECT_EQ(h[3].first, 5U);
}

TEST(HnswIndex, RecallOnLowRankDataBeforeAndAfterChurn) {
    const std::size_t dim = 96;
    const std::size_t n = 20000 / kScale;
    const std::size_t fresh = n * 3 / 10;
    const auto data = low_rank(n + fresh, dim, 24, 1);
    const auto queries = low_rank(200, dim, 24, 2);
    HnswIndex index(config(dim));
    for (std::size_t i = 0; i < n; ++i) {
        index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
    }
    std::vector<std::uint32_t> live = iota_labels(n);
    EXPECT_EQ(index.size(), n);
    EXPECT_GE(recall_at_10(index, data, dim, live, queries, 64), 0.95);

    // Remove 30% at random: no removed label may come back, recall holds.
    std::mt19937 rng(9);
    std::shuffle(live.begin(), live.end(), rng);
    const std::vector<std::uint32_t> removed(live.begin(), live.begin() + fresh);
    live.erase(live.begin(), live.begin() + fresh);
    for (const std::uint32_t l : removed) {
        ASSERT_TRUE(index.remove(l));
        ASSERT_FALSE(index.remove(l));
    }
    EXPECT_EQ(index.size(), n - fresh);
    const std::set<std::uint32_t> gone(removed.begin(), removed.end());
    for (std::size_t q = 0; q < 50; ++q) {
        for (const auto& h : index.search(queries.data() + q * dim, 50, 64)) {
            ASSERT_EQ(gone.count(h.first), 0U) << h.first;
        }
    }
    const HnswStats mid = index.stats();
    EXPECT_GT(mid.free_slots, 0U);        // batches were purged on the way
    EXPECT_LT(mid.tombstones, fresh / 2); // ... and tombstones stayed few
    EXPECT_GE(recall_at_10(index, data, dim, live, queries, 64), 0.95);

    // New vectors fill the purged slots before the index grows.
    for (std::size_t i = n; i < n + fresh; ++i) {
        index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
        live.push_back(static_cast<std::uint32_t>(i));
    }
    EXPECT_EQ(index.size(), n);
    EXPECT_LE(index.stats().slots, n + mid.tombstones);
    EXPECT_GE(recall_at_10(index, data, dim, live, queries, 64), 0.95);
    index.purge();
    EXPECT_EQ(index.stats().tombstones, 0U);
    EXPECT_GE(recall_at_10(index, data, dim, live, queries, 64), 0.95);
}

// A filter that accepts one label makes the walk exhaust everything reachable from the entry
// point: the label comes back exactly when its node is reachable.
std::size_t unreachable(const HnswIndex& index, const std::vector<float>& data, std::size_t dim,
                        const std::vector<std::uint32_t>& live) {
    std::size_t missing = 0;
    for (const std::uint32_t l : live) {
        const std::function<bool(std::uint32_t)> only = [l](std::uint32_t x) { return x == l; };
        const Hits h = index.search(data.data() + std::size_t{l} * dim, 1, 1, &only);
        missing += (h.size() == 1 && h[0].first == l) ? 0 : 1;
    }
    return missing;
}

TEST(HnswIndex, RepairKeepsEveryNodeReachableUnderHeavyChurn) {
    const std::size_t dim = 32;
    const std::size_t n = 3000 / kScale;
    const auto data = low_rank(n * 4, dim, 8, 3);
    HnswIndex index(config(dim, 8, 64));
    std::vector<std::uint32_t> live;
    std::uint32_t next = 0;
    for (; next < n; ++next) {
        index.insert(next, data.data() + std::size_t{next} * dim);
        live.push_back(next);
    }
    std::mt19937 rng(5);
    for (int round = 0; round < 3; ++round) {
        // Remove 70%, refill: without neighbour repair, hundreds of nodes lose every in-link.
        std::shuffle(live.begin(), live.end(), rng);
        const std::size_t drop = live.size() * 7 / 10;
        for (std::size_t i = 0; i < drop; ++i) {
            ASSERT_TRUE(index.remove(live[i]));
        }
        live.erase(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(drop));
        while (live.size() < n) {
            index.insert(next, data.data() + std::size_t{next} * dim);
            live.push_back(next++);
        }
    }
    index.purge();
    const HnswStats st = index.stats();
    EXPECT_EQ(st.live, n);
    EXPECT_EQ(st.tombstones, 0U);
    EXPECT_LT(st.slots, n + n / 10); // slots were reused
    EXPECT_EQ(unreachable(index, data, dim, live), 0U);
}

TEST(HnswIndex, FilteredSearchReturnsTheExactFilteredTopK) {
    const std::size_t dim = 48;
    const std::size_t n = 2000;
    const auto data = low_rank(n, dim, 12, 4);
    const auto queries = low_rank(30, dim, 12, 5);
    HnswIndex index(config(dim));
    for (std::size_t i = 0; i < n; ++i) {
        index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
    }
    std::vector<std::uint32_t> matching;
    for (std::uint32_t l = 0; l < n; ++l) {
        if (l % 7 == 3) {
            matching.push_back(l);
        }
    }
    const std::function<bool(std::uint32_t)> filter = [](std::uint32_t l) { return l % 7 == 3; };
    for (std::size_t q = 0; q < 30 / kScale; ++q) {
        const float* v = queries.data() + q * dim;
        for (const std::size_t k : {1U, 10U, 50U}) {
            EXPECT_EQ(index.search(v, k, 400, &filter), exact(data, dim, matching, v, k))
                << "q=" << q << " k=" << k;
        }
        // More than there are: every matching node, in exact order.
        EXPECT_EQ(index.search(v, matching.size() + 10, 10, &filter),
                  exact(data, dim, matching, v, matching.size()));
    }
    // A filter as selective as 1 in 97 still yields k results, as they are all reachable.
    const std::function<bool(std::uint32_t)> rare = [](std::uint32_t l) { return l % 97 == 0; };
    EXPECT_EQ(index.search(queries.data(), 15, 15, &rare).size(), 15U);
    const std::function<bool(std::uint32_t)> none = [](std::uint32_t) { return false; };
    EXPECT_TRUE(index.search(queries.data(), 10, 64, &none).empty());
}

TEST(HnswIndex, RemoveReinsertAndReplace) {
    const std::size_t dim = 16;
    const auto v = low_rank(300, dim, 6, 6);
    HnswIndex index(config(dim, 8, 50));
    for (std::uint32_t i = 0; i < 200; ++i) {
        index.insert(i, v.data() + std::size_t{i} * dim);
    }
    EXPECT_TRUE(index.contains(17));
    EXPECT_TRUE(index.remove(17));
    EXPECT_FALSE(index.contains(17));
    EXPECT_FALSE(index.remove(17));
    EXPECT_FALSE(index.remove(12345));
    for (const auto& h : index.search(v.data() + 17 * dim, 200, 200)) {
        EXPECT_NE(h.first, 17U);
    }
    index.insert(17, v.data() + 17 * dim); // a removed label comes back
    EXPECT_TRUE(index.contains(17));
    EXPECT_EQ(index.search(v.data() + 17 * dim, 1, 32)[0].first, 17U);

    // Inserting a present label replaces its vector.
    index.insert(5, v.data() + 250 * dim);
    EXPECT_EQ(index.size(), 200U);
    const Hits at_new = index.search(v.data() + 250 * dim, 1, 32);
    ASSERT_EQ(at_new.size(), 1U);
    EXPECT_EQ(at_new[0].first, 5U);
    EXPECT_NEAR(at_new[0].second, 1.0F, 1e-5F);
    for (const auto& h : index.search(v.data() + 5 * dim, 200, 200)) {
        if (h.first == 5) {
            EXPECT_LT(h.second, 0.999F); // the old vector is gone
        }
    }
    // Remove everything, then start again.
    for (std::uint32_t i = 0; i < 200; ++i) {
        EXPECT_TRUE(index.remove(i));
    }
    EXPECT_EQ(index.size(), 0U);
    EXPECT_TRUE(index.search(v.data(), 5, 10).empty());
    index.insert(1000, v.data());
    index.insert(1001, v.data() + dim);
    const Hits back = index.search(v.data(), 5, 10);
    ASSERT_EQ(back.size(), 2U);
    EXPECT_EQ(back[0].first, 1000U);
}

TEST(HnswIndex, WithoutAutoPurgeOnlyTheOwnerPurges) {
    const std::size_t dim = 16;
    const auto v = low_rank(2000, dim, 6, 8);
    for (const bool automatic : {true, false}) {
        HnswConfig c = config(dim, 8, 40);
        c.auto_purge = automatic;
        HnswIndex index(c);
        for (std::uint32_t i = 0; i < 2000; ++i) {
            index.insert(i, v.data() + std::size_t{i} * dim);
        }
        for (std::uint32_t i = 0; i < 600; ++i) { // far over the threshold (max(64, live/16))
            ASSERT_TRUE(index.remove(i));
        }
        if (automatic) {
            EXPECT_LT(index.stats().tombstones, 600U);
            continue;
        }
        EXPECT_EQ(index.stats().tombstones, 600U); // removals never purged
        EXPECT_TRUE(index.purge_due());
        EXPECT_GT(index.purge_if_due(), 0U);
        EXPECT_LT(index.stats().tombstones, 600U);
        EXPECT_EQ(index.size(), 1400U);
        const Hits hits = index.search(v.data() + 1500 * dim, 1, 64);
        ASSERT_EQ(hits.size(), 1U);
        EXPECT_EQ(hits[0].first, 1500U);
        EXPECT_FALSE(HnswIndex(c).purge_due()); // empty: nothing to purge
    }
}

TEST(HnswIndex, GrowsPastTheGeometricChunks) {
    // 132K slots cross from the doubling chunks (130816 slots) into the fixed 64K ones.
    const std::size_t dim = 4;
    const std::size_t n = 132000 / (kScale * kScale);
    HnswIndex index(config(dim, 4, 8));
    index.reserve(1000); // reserving is only an allocation: nothing is inserted
    EXPECT_EQ(index.size(), 0U);
    EXPECT_EQ(index.stats().slots, 0U);
    std::mt19937 rng(8);
    std::normal_distribution<float> nd;
    std::vector<float> v(n * dim);
    for (std::size_t i = 0; i < n; ++i) {
        float* r = v.data() + i * dim;
        for (std::size_t d = 0; d < dim; ++d) {
            r[d] = nd(rng);
        }
        simd::kernels().normalize(r, dim);
        index.insert(static_cast<std::uint32_t>(i), r);
    }
    EXPECT_EQ(index.size(), n);
    for (const std::size_t i : {std::size_t{0}, n / 2, n - 1}) {
        const Hits h = index.search(v.data() + i * dim, 1, 64);
        ASSERT_EQ(h.size(), 1U);
        EXPECT_NEAR(h[0].second, 1.0F, 1e-5F) << i;
    }
}

// Applies the same operations to an index: inserts, removals, re-inserts (slot reuse).
void churn(HnswIndex& index, const std::vector<float>& data, std::size_t dim, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
    }
    for (std::size_t i = 0; i < n; i += 3) {
        (void)index.remove(static_cast<std::uint32_t>(i));
    }
    for (std::size_t i = 0; i < n / 6; ++i) {
        index.insert(static_cast<std::uint32_t>(n + i), data.data() + (n + i) * dim);
    }
}

TEST(HnswIndex, SameInsertOrderGivesTheSameIndex) {
    const std::size_t dim = 40;
    const std::size_t n = 3000 / kScale;
    const auto data = low_rank(n + n / 6, dim, 10, 7);
    const auto queries = low_rank(50, dim, 10, 8);
    HnswIndex a(config(dim));
    HnswIndex b(config(dim));
    churn(a, data, dim, n);
    churn(b, data, dim, n);
    std::string sa;
    std::string sb;
    a.serialize(&sa);
    b.serialize(&sb);
    EXPECT_EQ(sa, sb);
    for (std::size_t q = 0; q < 50; ++q) {
        EXPECT_EQ(a.search(queries.data() + q * dim, 10, 32),
                  b.search(queries.data() + q * dim, 10, 32));
    }
    // Another seed builds another graph.
    HnswConfig other = config(dim);
    other.seed = 7;
    HnswIndex c(other);
    churn(c, data, dim, n);
    std::string sc;
    c.serialize(&sc);
    EXPECT_NE(sa, sc);
}

TEST(HnswIndex, StreamedSnapshotIsTheSameBytesInBoundedPieces) {
    const std::size_t dim = 40;
    const std::size_t n = 3000 / kScale;
    const auto data = low_rank(n + n / 6, dim, 10, 11);
    HnswIndex index(config(dim));
    churn(index, data, dim, n);
    // Labels churn() left in place: tombstones and pending slots in the snapshot's tail.
    for (std::uint32_t l = 1; l < 30; l += 3) {
        ASSERT_TRUE(index.remove(l));
    }
    std::string whole;
    index.serialize(&whole);
    const std::size_t piece = 4096;
    std::string streamed;
    std::size_t pieces = 0;
    std::size_t largest = 0;
    index.serialize_to(
        [&](std::string_view p) {
            EXPECT_FALSE(p.empty());
            streamed.append(p);
            largest = std::max(largest, p.size());
            ++pieces;
        },
        piece);
    EXPECT_EQ(streamed, whole);
    EXPECT_GT(pieces, whole.size() / (2 * piece));
    EXPECT_LE(largest, piece + 4096); // a piece ends after the slot that filled it
    auto copy = HnswIndex::deserialize(streamed, config(dim));
    ASSERT_TRUE(copy.is_ok()) << copy.status().message();
}

TEST(HnswIndex, SnapshotAnswersExactlyAsTheLiveIndex) {
    const std::size_t dim = 40;
    const std::size_t n = 3000 / kScale;
    const auto data = low_rank(n + n / 6 + 100, dim, 10, 9);
    const auto queries = low_rank(50, dim, 10, 10);
    HnswIndex live(config(dim));
    churn(live, data, dim, n);
    // Leave some tombstones unpurged, so the snapshot must carry them.
    for (std::uint32_t l = 1; l < 40; l += 3) {
        ASSERT_TRUE(live.remove(l));
    }
    ASSERT_GT(live.stats().tombstones, 0U);
    std::string bytes;
    live.serialize(&bytes);
    auto restored = HnswIndex::deserialize(bytes, config(dim));
    ASSERT_TRUE(restored.is_ok()) << restored.status().message();
    HnswIndex& copy = *restored.value();
    EXPECT_EQ(copy.size(), live.size());
    EXPECT_EQ(copy.stats().tombstones, live.stats().tombstones);
    EXPECT_EQ(copy.stats().free_slots, live.stats().free_slots);
    EXPECT_EQ(copy.stats().slots, live.stats().slots);
    const std::function<bool(std::uint32_t)> odd = [](std::uint32_t l) { return l % 2 == 1; };
    for (std::size_t q = 0; q < 50; ++q) {
        const float* v = queries.data() + q * dim;
        EXPECT_EQ(copy.search(v, 10, 64), live.search(v, 10, 64));
        EXPECT_EQ(copy.search(v, 25, 16, &odd), live.search(v, 25, 16, &odd));
    }
    for (std::uint32_t l = 0; l < n + n / 6; ++l) {
        ASSERT_EQ(copy.contains(l), live.contains(l)) << l;
    }
    // Both continue identically: same level sequence, same slot reuse.
    for (std::size_t i = 0; i < 100; ++i) {
        const float* v = data.data() + (n + n / 6 + i) * dim;
        live.insert(static_cast<std::uint32_t>(90000 + i), v);
        copy.insert(static_cast<std::uint32_t>(90000 + i), v);
    }
    std::string again_live;
    std::string again_copy;
    live.serialize(&again_live);
    copy.serialize(&again_copy);
    EXPECT_EQ(again_live, again_copy);

    // An empty index round-trips too.
    HnswIndex empty(config(dim));
    std::string e;
    empty.serialize(&e);
    auto e2 = HnswIndex::deserialize(e, config(dim));
    ASSERT_TRUE(e2.is_ok()) << e2.status().message();
    EXPECT_TRUE(e2.value()->search(queries.data(), 3, 10).empty());
}

std::uint64_t fnv1a(const char* p, std::size_t n) {
    std::uint64_t h = 0xCBF29CE484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
        h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001B3ULL;
    }
    return h;
}

// Re-seals a modified snapshot with a valid checksum, to reach the structural checks.
std::string reseal(std::string s) {
    const std::uint64_t h = fnv1a(s.data(), s.size() - 8);
    std::memcpy(s.data() + s.size() - 8, &h, 8);
    return s;
}

TEST(HnswIndex, CorruptOrTruncatedSnapshotsAreRejected) {
    const std::size_t dim = 12;
    const auto data = low_rank(300, dim, 4, 12);
    HnswIndex index(config(dim, 6, 40));
    for (std::uint32_t i = 0; i < 300; ++i) {
        index.insert(i, data.data() + std::size_t{i} * dim);
    }
    for (std::uint32_t i = 0; i < 300; i += 10) {
        (void)index.remove(i);
    }
    std::string good;
    index.serialize(&good);
    ASSERT_TRUE(HnswIndex::deserialize(good, config(dim, 6, 40)).is_ok());

    // Every prefix, and the whole with a byte too many.
    for (std::size_t len = 0; len < good.size(); len += (len < 200 ? 1 : 97)) {
        const auto r =
            HnswIndex::deserialize(std::string_view(good).substr(0, len), config(dim, 6, 40));
        ASSERT_FALSE(r.is_ok()) << len;
        EXPECT_EQ(r.status().code(), Code::kCorruption) << len;
    }
    EXPECT_FALSE(HnswIndex::deserialize(good + "x", config(dim, 6, 40)).is_ok());
    // Flipped bytes anywhere.
    std::mt19937 rng(13);
    for (int i = 0; i < 200; ++i) {
        std::string bad = good;
        const std::size_t at = rng() % bad.size();
        bad[at] = static_cast<char>(static_cast<unsigned char>(bad[at]) ^ (1 + rng() % 255));
        const auto r = HnswIndex::deserialize(bad, config(dim, 6, 40));
        ASSERT_FALSE(r.is_ok()) << i;
    }
    // A config that does not match the snapshot.
    const auto mismatch = HnswIndex::deserialize(good, config(dim + 1, 6, 40));
    EXPECT_EQ(mismatch.status().code(), Code::kInvalidArgument);
    EXPECT_FALSE(HnswIndex::deserialize(good, config(dim, 8, 40)).is_ok());

    // Structurally wrong content behind a valid checksum. Header: magic(8) version(4) total(8)
    // dim(4) m(4) level_counter(8) slots(4) entry(8), then slot 0: state(1) label(4) level(1).
    {
        std::string s = good;
        s[8] = 9; // version
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
    {
        std::string s = good;
        const std::uint32_t huge = 0x7FFFFFFF;
        std::memcpy(s.data() + 36, &huge, 4); // slot count
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
    {
        std::string s = good;
        const std::uint32_t fewer = 299;
        std::memcpy(s.data() + 36, &fewer, 4); // links now point past the last slot
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
    {
        std::string s = good;
        s[48] = 7; // state of slot 0
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
    {
        std::string s = good;
        s[53] = 100; // level of slot 0
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
    {
        std::string s = good;
        const float nan = std::nanf("");
        std::memcpy(s.data() + 54, &nan, 4); // first vector element of slot 0
        EXPECT_EQ(HnswIndex::deserialize(reseal(s), config(dim, 6, 40)).status().code(),
                  Code::kCorruption);
    }
}

TEST(HnswIndex, ConcurrentInsertsRemovesAndSearches) {
    const std::size_t dim = 32;
    const std::size_t n = 8000 / kScale;
    const auto data = low_rank(n, dim, 8, 14);
    const auto queries = low_rank(100, dim, 8, 15);
    HnswIndex index(config(dim, 12, 100));
    // All chunks now, from this thread: Debian's mimalloc (engine/pool.cpp) is not
    // ThreadSanitizer-clean when called from several threads.
    index.reserve(2 * n);
    constexpr std::size_t kWriters = 3;
    constexpr std::size_t kReaders = 2;
    std::atomic<bool> done{false};
    std::atomic<std::size_t> searches{0};
    std::vector<std::thread> threads;
    threads.reserve(kWriters + kReaders);
    for (std::size_t w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
            // Writer w owns the labels = w (mod kWriters). Each 5th label is removed again 60
            // labels later (the same writer's), every other of those re-inserted: purges and slot
            // reuse happen while the searches run.
            for (std::size_t i = w; i < n; i += kWriters) {
                index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
                if (i % 5 == 0 && i >= 60) {
                    EXPECT_TRUE(index.remove(static_cast<std::uint32_t>(i - 60)));
                    if (i % 10 == 0) {
                        index.insert(static_cast<std::uint32_t>(i - 60),
                                     data.data() + (i - 60) * dim);
                    }
                }
            }
        });
    }
    for (std::size_t r = 0; r < kReaders; ++r) {
        threads.emplace_back([&, r] {
            const std::function<bool(std::uint32_t)> even = [](std::uint32_t l) {
                return l % 2 == 0;
            };
            for (std::size_t q = r; !done.load(); q = (q + 1) % 100) {
                const Hits h =
                    index.search(queries.data() + q * dim, 10, 32, q % 3 == 0 ? &even : nullptr);
                for (std::size_t i = 1; i < h.size(); ++i) {
                    EXPECT_GE(h[i - 1].second, h[i].second);
                }
                (void)index.contains(static_cast<std::uint32_t>(q));
                (void)index.stats();
                searches.fetch_add(1);
            }
        });
    }
    for (std::size_t w = 0; w < kWriters; ++w) {
        threads[w].join();
    }
    done.store(true);
    for (std::size_t r = 0; r < kReaders; ++r) {
        threads[kWriters + r].join();
    }
    EXPECT_GT(searches.load(), 0U);

    std::vector<std::uint32_t> live;
    for (std::uint32_t l = 0; l < n; ++l) {
        const bool removed = l % 10 == 5 && l + 60 < n;
        EXPECT_EQ(index.contains(l), !removed) << l;
        if (!removed) {
            live.push_back(l);
        }
    }
    EXPECT_EQ(index.size(), live.size());
    EXPECT_GE(recall_at_10(index, data, dim, live, queries, 64), 0.95);
    index.purge();
    // Known limitation (seen once in ~100 loaded runs): when a node is inserted while the
    // neighbours it links to are being removed and repaired, it can end up with no in-link. The
    // single-threaded churn test above requires 0; here at most 0.2% may be cut off.
    EXPECT_LE(unreachable(index, data, dim, live), live.size() / 500);
}

TEST(HnswIndex, ConcurrentSnapshotWhileWriting) {
    const std::size_t dim = 16;
    const std::size_t n = 3000 / kScale;
    const auto data = low_rank(n, dim, 6, 16);
    HnswIndex index(config(dim, 8, 50));
    index.reserve(n); // chunks from this thread (see above)
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> writers;
    writers.reserve(2);
    for (int w = 0; w < 2; ++w) {
        writers.emplace_back([&] {
            for (std::size_t i; (i = next.fetch_add(1)) < n;) {
                index.insert(static_cast<std::uint32_t>(i), data.data() + i * dim);
                if (i % 4 == 0) {
                    (void)index.remove(static_cast<std::uint32_t>(i / 2));
                }
            }
        });
    }
    // Each snapshot taken mid-write is a consistent index.
    for (int s = 0; s < 5; ++s) {
        std::string bytes;
        index.serialize(&bytes);
        const auto r = HnswIndex::deserialize(bytes, config(dim, 8, 50));
        ASSERT_TRUE(r.is_ok()) << r.status().message();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& t : writers) {
        t.join();
    }
}

// The owner's rows for the tests below: a flat array of dim floats per label.
struct OwnerRows {
    std::vector<float> data;
    std::size_t dim = 0;

    HnswRowSource source() const {
        HnswRowSource r;
        r.context = this;
        r.row = [](const void* self, std::uint32_t label) noexcept -> const float* {
            const auto* o = static_cast<const OwnerRows*>(self);
            return o->data.data() + std::size_t{label} * o->dim;
        };
        return r;
    }
};

// An index that reads its owner's rows keeps no float row of its own, answers exactly as one
// that copies them (same graph, same scores), writes the same snapshot while it holds no
// tombstone, and loads either kind of snapshot.
TEST(HnswIndex, OwnerRowsAnswerExactlyAsOwnRows) {
    const std::size_t dim = 40;
    const std::size_t n = 3000 / kScale;
    OwnerRows owner{low_rank(n, dim, 8, 11), dim};
    HnswConfig with_rows = config(dim, 8, 60);
    with_rows.rows = owner.source();
    HnswIndex own(config(dim, 8, 60));
    HnswIndex borrowed(with_rows);
    for (std::size_t i = 0; i < n; ++i) {
        own.insert(static_cast<std::uint32_t>(i), owner.data.data() + i * dim);
        borrowed.insert(static_cast<std::uint32_t>(i), owner.data.data() + i * dim);
    }
    EXPECT_EQ(borrowed.memory().rows, 0U);
    EXPECT_GE(own.memory().rows, n * dim * sizeof(float));
    EXPECT_EQ(own.memory().codes, borrowed.memory().codes);
    EXPECT_EQ(own.memory().links, borrowed.memory().links);
    EXPECT_GT(borrowed.memory().codes, n * dim);

    const std::vector<float> queries = low_rank(50, dim, 8, 12);
    const auto same_answers = [&](const HnswIndex& a, const HnswIndex& b) {
        for (std::size_t q = 0; q < 50; ++q) {
            const float* v = queries.data() + q * dim;
            ASSERT_EQ(a.search(v, 10, 40), b.search(v, 10, 40)) << "query " << q;
        }
    };
    same_answers(own, borrowed);
    std::string own_bytes;
    std::string borrowed_bytes;
    own.serialize(&own_bytes);
    borrowed.serialize(&borrowed_bytes);
    EXPECT_EQ(own_bytes, borrowed_bytes);

    // holds(): the vector the node was built from, not a neighbour of it.
    EXPECT_TRUE(borrowed.holds(7, owner.data.data() + 7 * dim));
    EXPECT_FALSE(borrowed.holds(7, owner.data.data() + 8 * dim));
    std::vector<float> moved(owner.data.begin() + 7 * dim, owner.data.begin() + 8 * dim);
    moved[0] = -moved[0];
    EXPECT_FALSE(borrowed.holds(7, moved.data()));

    // Tombstones: both reload to indexes that answer as the live ones.
    for (std::uint32_t l = 0; l < n; l += 5) {
        ASSERT_TRUE(own.remove(l));
        ASSERT_TRUE(borrowed.remove(l));
    }
    same_answers(own, borrowed);
    own_bytes.clear();
    borrowed_bytes.clear();
    own.serialize(&own_bytes);
    borrowed.serialize(&borrowed_bytes);
    auto own_copy = HnswIndex::deserialize(own_bytes, with_rows);
    auto borrowed_copy = HnswIndex::deserialize(borrowed_bytes, with_rows);
    auto borrowed_own_copy = HnswIndex::deserialize(borrowed_bytes, config(dim, 8, 60));
    ASSERT_TRUE(own_copy.is_ok()) << own_copy.status().message();
    ASSERT_TRUE(borrowed_copy.is_ok()) << borrowed_copy.status().message();
    ASSERT_TRUE(borrowed_own_copy.is_ok()) << borrowed_own_copy.status().message();
    EXPECT_EQ((*borrowed_copy)->memory().rows, 0U);
    same_answers(own, **own_copy);
    same_answers(own, **borrowed_copy);
    same_answers(own, **borrowed_own_copy);
    EXPECT_TRUE((*borrowed_copy)->holds(11, owner.data.data() + 11 * dim));
    EXPECT_FALSE((*borrowed_copy)->holds(10, owner.data.data() + 10 * dim)); // removed
}

// The row lifetime rule under concurrent searches: a writer keeps replacing labels' vectors in
// the owner's rows (remove, wait_for_searches, rewrite the row, insert again) while searchers
// run; every score a search returns is the exact cosine of a vector its label held while the
// search ran, never one read from a row rewritten under it (the writer rewrites slowly, so a
// missing wait_for_searches() shows as torn rows scoring as neither vector). Also in the TSan
// run, which checks that no search reads a row while it is rewritten.
TEST(HnswIndex, ConcurrentRowReuseNeverScoresAStaleRow) {
    const std::size_t dim = 24;
    const std::size_t n = 1200 / kScale;
    const auto vector_of = [&](std::uint32_t label, std::uint32_t generation) {
        std::mt19937 rng(label * 7919U + generation * 104729U + 1U);
        std::normal_distribution<float> nd;
        std::vector<float> v(dim);
        for (float& x : v) {
            x = nd(rng);
        }
        simd::kernels().normalize(v.data(), dim);
        return v;
    };
    OwnerRows owner{std::vector<float>(n * dim), dim};
    std::vector<std::atomic<std::uint32_t>> generation(n);
    for (std::uint32_t l = 0; l < n; ++l) {
        const auto v = vector_of(l, 0);
        std::copy(v.begin(), v.end(), owner.data.begin() + std::size_t{l} * dim);
    }
    HnswConfig c = config(dim, 8, 40);
    c.rows = owner.source();
    HnswIndex index(c);
    for (std::uint32_t l = 0; l < n; ++l) {
        index.insert(l, owner.data.data() + std::size_t{l} * dim);
    }
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> checked{0};
    std::atomic<std::size_t> wrong{0};
    const auto searcher = [&](std::uint32_t seed) {
        std::mt19937 rng(seed);
        std::vector<std::uint32_t> before(n);
        const std::function<bool(std::uint32_t)> slow = [](std::uint32_t) {
            std::this_thread::yield();
            return true;
        };
        while (!stop.load()) {
            const auto q = vector_of(static_cast<std::uint32_t>(rng() % n), 1000000U + seed);
            for (std::size_t l = 0; l < n; ++l) {
                before[l] = generation[l].load();
            }
            // A filter that yields makes searches long: many rows are replaced during each.
            const Hits hits = index.search(q.data(), 10, 30, &slow);
            for (const auto& [label, score] : hits) {
                const std::uint32_t after = generation[label].load();
                bool found = false;
                for (std::uint32_t g = before[label]; g <= after && !found; ++g) {
                    const auto v = vector_of(label, g);
                    found = simd::kernels().dot(q.data(), v.data(), dim) == score;
                }
                wrong += found ? 0 : 1;
                ++checked;
            }
        }
    };
    std::thread s1(searcher, 1U);
    std::thread s2(searcher, 2U);
    std::mt19937 rng(5);
    const std::size_t rounds = 1500 / kScale;
    for (std::size_t r = 0; r < rounds; ++r) {
        const auto label = static_cast<std::uint32_t>(rng() % n);
        ASSERT_TRUE(index.remove(label));
        index.wait_for_searches();
        const std::uint32_t g = generation[label].load() + 1;
        const auto v = vector_of(label, g);
        // Element by element, yielding: a search reading the row now would see a torn mix of
        // two vectors, which scores as neither.
        for (std::size_t d = 0; d < dim; ++d) {
            owner.data[std::size_t{label} * dim + d] = v[d];
            std::this_thread::yield();
        }
        generation[label].store(g);
        index.insert(label, owner.data.data() + std::size_t{label} * dim);
    }
    // Searches that overlap the last rounds too, whatever the scheduling.
    while (checked.load() < 1000) {
        std::this_thread::yield();
    }
    stop = true;
    s1.join();
    s2.join();
    EXPECT_EQ(wrong.load(), 0U);
    EXPECT_EQ(index.size(), n);
}

// wait_for_searches() returns at once when no search runs, and waits for one that does (the
// search is held inside its filter until released).
TEST(HnswIndex, ConcurrentWaitForSearchesWaitsForRunningOnes) {
    const std::size_t dim = 16;
    const std::vector<float> data = low_rank(200, dim, 4, 3);
    HnswIndex index(config(dim, 8, 40));
    for (std::uint32_t l = 0; l < 200; ++l) {
        index.insert(l, data.data() + std::size_t{l} * dim);
    }
    index.wait_for_searches();
    std::atomic<bool> inside{false};
    std::atomic<bool> release{false};
    const std::function<bool(std::uint32_t)> hold = [&](std::uint32_t) {
        inside = true;
        while (!release.load()) {
            std::this_thread::yield();
        }
        return true;
    };
    std::thread searcher([&] { (void)index.search(data.data(), 5, 20, &hold); });
    while (!inside.load()) {
        std::this_thread::yield();
    }
    std::atomic<bool> waited{false};
    std::thread waiter([&] {
        index.wait_for_searches();
        waited = true;
    });
    // The waiter cannot finish while the search is held (no timing: it is checked before the
    // release, and after it the waiter must finish).
    for (int i = 0; i < 1000; ++i) {
        std::this_thread::yield();
    }
    EXPECT_FALSE(waited.load());
    release = true;
    searcher.join();
    waiter.join();
    EXPECT_TRUE(waited.load());
}

} // namespace
} // namespace engram::engine
