#include "db/shared_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/recall.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::db {
namespace {

constexpr std::size_t kDim = 24;

std::vector<float> random_vector(std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    for (float& x : v) {
        x = g(rng);
    }
    return v;
}

std::shared_ptr<SharedStore> open_store(const std::string& name, bool dedup) {
    StoreOptions o;
    o.path = "/engram-memory/unit/" + name; // the in-memory file system wants absolute paths
    o.in_memory = true;
    o.memory.dim = kDim;
    if (!dedup) {
        o.memory.dedup_threshold.reset();
    }
    auto s = SharedStore::acquire(o);
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    return s.value();
}

// The exact k best ids by cosine over `rows` (the unit vectors stored).
std::vector<std::string> brute(const std::vector<std::vector<float>>& rows, const float* q,
                               std::size_t k) {
    std::vector<std::pair<float, std::size_t>> all;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        all.emplace_back(engine::simd::kernels().dot(q, rows[i].data(), kDim), i);
    }
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < k; ++i) {
        out.push_back("m" + std::to_string(all[i].second));
    }
    return out;
}

// Searches run on several threads while the builder indexes a bulk commit's tail (the tail list
// read under the store's shared lock only, states flipping under the readers): every answer is
// the exact one (a beam wider than the store), single and batch alike. Also in the TSan run.
TEST(SharedStore, SearchesDuringIndexingAreExact) {
    auto store = open_store("search-during-indexing", false);
    std::mt19937 rng(3);
    constexpr std::size_t kRows = 2500;
    std::vector<PendingOp> ops(kRows);
    std::vector<std::vector<float>> units;
    for (std::size_t i = 0; i < kRows; ++i) {
        ops[i].id = "m" + std::to_string(i);
        ops[i].episode.id = ops[i].id;
        ops[i].episode.embedding = random_vector(rng);
        units.push_back(ops[i].episode.embedding);
        engine::simd::kernels().normalize(units.back().data(), kDim);
    }
    ASSERT_TRUE(store->commit(ops).is_ok());
    std::vector<std::vector<float>> queries;
    for (int q = 0; q < 32; ++q) {
        queries.push_back(random_vector(rng));
        engine::simd::kernels().normalize(queries.back().data(), kDim);
    }
    std::atomic<int> wrong{0};
    std::atomic<int> done{0};
    auto searcher = [&](int t) {
        for (std::size_t q = static_cast<std::size_t>(t); q < queries.size(); q += 2) {
            const auto hits = store->search(queries[q].data(), 5, 0.0F, 100000, nullptr);
            std::vector<std::string> ids;
            for (const auto& h : hits) {
                ids.push_back(h.first);
            }
            wrong += ids == brute(units, queries[q].data(), 5) ? 0 : 1;
            ++done;
        }
    };
    std::thread a(searcher, 0);
    std::thread b(searcher, 1);
    std::vector<float> block;
    for (const auto& q : queries) {
        block.insert(block.end(), q.begin(), q.end());
    }
    std::vector<SharedStore::Hits> batch;
    store->search_batch(block.data(), queries.size(), kDim, 5, 0.0F, 100000, nullptr, &batch);
    a.join();
    b.join();
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(done.load(), static_cast<int>(queries.size()));
    ASSERT_EQ(batch.size(), queries.size());
    for (std::size_t q = 0; q < queries.size(); ++q) {
        std::vector<std::string> ids;
        for (const auto& h : batch[q]) {
            ids.push_back(h.first);
        }
        EXPECT_EQ(ids, brute(units, queries[q].data(), 5)) << "query " << q;
    }
    store->wait_indexed();
    EXPECT_EQ(store->stats().indexed, kRows);
}

// A store that reaches the DedupIndex's size deduplicates a re-stored row after it, and a
// transaction of copies is merged whether it arrives in one commit or row by row.
TEST(SharedStore, DeduplicatesThroughTheIndexAtAnyBatchSize) {
    std::mt19937 rng(8);
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < 3000; ++i) {
        rows.push_back(random_vector(rng));
    }
    auto make = [&](std::size_t i, const std::string& id) {
        PendingOp op;
        op.id = id;
        op.episode.id = id;
        op.episode.embedding = rows[i];
        op.episode.confidence = 0.5;
        return op;
    };
    std::vector<std::int64_t> dedups;
    for (const bool one_commit : {true, false}) {
        auto store = open_store(one_commit ? "dedup-one" : "dedup-many", true);
        std::vector<PendingOp> base;
        for (std::size_t i = 0; i < 2000; ++i) {
            base.push_back(make(i, "b" + std::to_string(i)));
        }
        ASSERT_TRUE(store->commit(base).is_ok());
        std::vector<PendingOp> copies;
        for (std::size_t i = 0; i < 150; ++i) {
            copies.push_back(make(i * 4, "c" + std::to_string(i)));    // copies of stored rows
            copies.push_back(make(2000 + i, "n" + std::to_string(i))); // new rows
        }
        if (one_commit) {
            ASSERT_TRUE(store->commit(copies).is_ok());
        } else {
            for (const PendingOp& op : copies) {
                ASSERT_TRUE(store->commit(std::vector<PendingOp>{op}).is_ok());
            }
        }
        std::int64_t d = 0;
        for (const BatchReport& r : store->batches()) {
            d += r.deduplicated;
        }
        dedups.push_back(d);
        EXPECT_EQ(store->stats().hot, 2150U);
    }
    EXPECT_EQ(dedups[0], 150);
    EXPECT_EQ(dedups[1], 150);
}

// Recall through the store's indexes (words, substrings, locations, time order, the graph)
// returns what reading every memory returns, bit for bit, after inserts, updates, deletes,
// replacements and evictions that free and reuse slots — for every cue kind, with the boost.
TEST(SharedStoreRecall, IndexedEqualsScan) {
    StoreOptions o;
    o.path = "/engram-memory/unit/recall-indexed";
    o.in_memory = true;
    o.memory.dim = kDim;
    o.memory.dedup_threshold.reset();
    o.memory.capacity = 450; // evictions to the cold tier
    auto opened = SharedStore::acquire(o);
    ASSERT_TRUE(opened.is_ok()) << opened.status().message();
    auto store = opened.value();
    std::mt19937 rng(21);
    const std::vector<std::string> words = {"coffee", "Ana",  "kitchen", "tea", "ber",
                                            "number", "77",   "café",    "x",   "na",
                                            "rain",   "walk", "park",    "7",   "e"};
    const std::vector<std::string> places = {
        "", "Kitchen", "the kitchen table", "Park", "park bench", "Office", "o"};
    auto text = [&](std::size_t n) {
        std::string t;
        for (std::size_t i = 0; i < n; ++i) {
            t += (i == 0 ? "" : (rng() % 5 == 0 ? "-" : " "));
            t += words[rng() % words.size()];
        }
        return t;
    };
    const double t0 = 1.7e9;
    auto insert = [&](const std::string& id, bool replace) {
        PendingOp op;
        op.id = id;
        op.replace = replace;
        op.episode.id = id;
        op.episode.embedding = random_vector(rng);
        op.episode.what = text(rng() % 4);
        op.episode.location = places[rng() % places.size()];
        op.episode.occurred_at = t0 + static_cast<double>(rng() % 20000); // ~5.5 h: boosts
        op.episode.confidence = 0.5;
        return op;
    };
    int next = 0;
    for (int round = 0; round < 6; ++round) {
        std::vector<PendingOp> ops;
        for (int i = 0; i < 120; ++i) {
            ops.push_back(insert("m" + std::to_string(next++), false));
        }
        for (int i = 0; i < 25 && next > 200; ++i) {
            const std::string id = "m" + std::to_string(rng() % static_cast<unsigned>(next - 120));
            const int what = static_cast<int>(rng() % 3);
            if (what == 0) {
                PendingOp del;
                del.kind = PendingOp::Kind::kDelete;
                del.id = id;
                ops.push_back(del);
            } else if (what == 1) {
                PendingOp up = insert(id, false);
                up.kind = PendingOp::Kind::kUpdate;
                ops.push_back(up);
            } else {
                ops.push_back(insert(id, true));
            }
        }
        ASSERT_TRUE(store->commit(ops).is_ok());
    }
    ASSERT_GT(store->stats().cold, 0U);
    std::vector<engine::Cue> cues;
    for (const double thr : {0.0, 0.2, 0.5, 0.7, 0.75}) {
        for (const char* q : {"coffee", "Ana kitchen", "number 77", "na", "e", "ber 7", "x",
                              "coffee with Ana in the kitchen", "café-rain", "m12", "zzz"}) {
            cues.push_back(engine::semantic_cue(q, thr, 40));
        }
        cues.push_back(engine::context_cue(t0 + 1000, t0 + 4000, std::nullopt, thr, 40));
        cues.push_back(engine::context_cue(std::nullopt, std::nullopt, "kitchen", thr, 40));
        cues.push_back(engine::context_cue(t0, t0 + 9000, "park", thr, 40));
        cues.push_back(engine::context_cue(std::nullopt, t0 + 500, "the kitchen table x", thr, 40));
        cues.push_back(engine::context_cue(std::nullopt, std::nullopt, "", thr, 40));
        cues.push_back(engine::temporal_before(t0 + 3000, thr, 40));
        cues.push_back(engine::temporal_after(t0 + 18000, thr, 40));
        cues.push_back(engine::temporal_between(t0 + 5000, t0 + 5600, thr, 40));
        cues.push_back(engine::temporal_recent(1e12, thr, 40));
        cues.push_back(engine::embedding_cue(random_vector(rng), thr, 200));
    }
    const std::size_t hot_only = cues.size();
    for (std::size_t i = 0; i < hot_only; i += 3) {
        engine::Cue c = cues[i];
        c.include_cold = true;
        cues.push_back(c);
    }
    const auto indexed = store->recall(cues);
    const auto scanned = store->recall(cues, true);
    ASSERT_EQ(indexed.size(), cues.size());
    std::size_t rows = 0;
    for (std::size_t i = 0; i < cues.size(); ++i) {
        ASSERT_TRUE(indexed[i].is_ok()) << i << ": " << indexed[i].status().message();
        ASSERT_TRUE(scanned[i].is_ok()) << i;
        EXPECT_EQ(indexed[i].value(), scanned[i].value()) << "cue " << i;
        rows += indexed[i]->size();
    }
    EXPECT_GT(rows, 1000U); // the cues do find memories
}

// Hot-tier slots freed by deletes are reused by the next commit's rows while searches run on
// other threads: the graph reads the tier's rows (it keeps no copy), so a search that re-ranked
// an old node with the new occupant's row would return a wrong score under the old id. Every
// hit must score the exact cosine of its own id's vector. Also in the TSan run.
TEST(SharedStore, ConcurrentSlotReuseScoresTheCurrentVector) {
    auto store = open_store("slot-reuse-under-search", false);
    const auto unit_of = [](std::size_t n) {
        std::mt19937 rng(static_cast<std::uint32_t>(n) + 17U);
        auto v = random_vector(rng);
        engine::simd::kernels().normalize(v.data(), kDim);
        return v;
    };
    const auto insert_op = [&](std::size_t n) {
        PendingOp op;
        op.id = "r" + std::to_string(n);
        op.episode.id = op.id;
        op.episode.embedding = unit_of(n);
        return op;
    };
    constexpr std::size_t kLive = 600;
    std::vector<PendingOp> first;
    for (std::size_t i = 0; i < kLive; ++i) {
        first.push_back(insert_op(i));
    }
    ASSERT_TRUE(store->commit(first).is_ok());
    store->wait_indexed();
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> checked{0};
    std::atomic<std::size_t> wrong{0};
    const auto searcher = [&](std::uint32_t seed) {
        std::mt19937 rng(seed);
        while (!stop.load()) {
            auto q = random_vector(rng);
            engine::simd::kernels().normalize(q.data(), kDim);
            for (const auto& [id, score] : store->search(q.data(), 10, -1.0F, 20, nullptr)) {
                const auto v = unit_of(std::stoul(id.substr(1)));
                const float want = engine::simd::kernels().dot(q.data(), v.data(), kDim);
                wrong += std::abs(want - score) <= 1e-5F ? 0 : 1;
                ++checked;
            }
        }
    };
    std::thread a(searcher, 1U);
    std::thread b(searcher, 2U);
    // Each round deletes 50 of the oldest ids and stores 50 new ones into the freed slots.
    std::size_t oldest = 0;
    std::size_t next = kLive;
    for (int round = 0; round < 40; ++round) {
        std::vector<PendingOp> ops;
        for (int i = 0; i < 50; ++i) {
            PendingOp del;
            del.kind = PendingOp::Kind::kDelete;
            del.id = "r" + std::to_string(oldest++);
            ops.push_back(del);
        }
        for (int i = 0; i < 50; ++i) {
            ops.push_back(insert_op(next++));
        }
        ASSERT_TRUE(store->commit(ops).is_ok());
        if (round % 8 == 7) {
            store->wait_indexed(); // some rounds replace indexed nodes, others unindexed ones
        }
    }
    while (checked.load() < 2000) {
        std::this_thread::yield();
    }
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(wrong.load(), 0U);
    store->wait_indexed();
    EXPECT_EQ(store->stats().indexed, kLive);
    EXPECT_EQ(store->memory().hot().slots(), kLive); // freed slots were reused
}

} // namespace
} // namespace engram::db
