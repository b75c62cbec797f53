// HnswIndex search (declared in hnsw.hpp; shared layout and accessors in hnsw_internal.hpp).
//
// HOW IT WORKS
//   search() quantises the query to int8 (quant.hpp) and descends from the entry point: greedy()
//   moves to the best neighbour at each upper level until none scores higher. At level 0,
//   search_level() runs a beam of width ef: candidates in a max-heap, results in a min-heap of the
//   ef best accepted nodes (live, and passing the filter if any); tombstones and rejected nodes
//   are still expanded, so they never cut the graph. Scores are int8 dot products (the screen);
//   the ef survivors are re-ranked with exact float dot products (simd::kernels()) against their
//   float rows (the owner's, by label, or the index's own). Visited marks
//   and heaps live in a per-thread Scratch. insert_slot() (hnsw.cpp) reuses greedy/search_level.
#include "engine/hnsw/hnsw.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "engine/hnsw/hnsw_internal.hpp"
#include "engine/hnsw/quant.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {

namespace {

inline void prefetch(const void* p) noexcept {
    __builtin_prefetch(p, 0, 3);
}

} // namespace

namespace hnsw_detail {

// Best first: a max-heap on score.
struct WorseScore {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
        return a.score < b.score;
    }
};
// Worst on top: a min-heap on score.
struct BetterScore {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
        return a.score > b.score;
    }
};

} // namespace hnsw_detail

// ---- search -----------------------------------------------------------------------------------

void HnswIndex::greedy(const Query& q, std::size_t level, Candidate* cur) const {
    for (bool changed = true; changed;) {
        changed = false;
        const std::uint32_t* list = links(cur->slot, level);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), m_);
        for (std::uint32_t i = 0; i < n; ++i) {
            prefetch(codes(load(list[1 + i])));
        }
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            const float s = score(q, id);
            if (s > cur->score) {
                *cur = {s, id};
                changed = true;
            }
        }
    }
}

void HnswIndex::search_level(const Query& q, std::size_t ef, std::size_t level,
                             const std::function<bool(std::uint32_t)>* filter, Scratch& s) const {
    s.begin(next_slot_.load(std::memory_order_acquire));
    auto& cands = s.candidates;
    auto& results = s.results;
    cands.clear();
    results.clear();
    const auto accepted = [&](std::uint32_t slot) {
        return state(slot) == kLive && (filter == nullptr || (*filter)(node(slot).label));
    };
    const auto add_result = [&](const Candidate& c) {
        results.push_back(c);
        std::push_heap(results.begin(), results.end(), hnsw_detail::BetterScore{});
        if (results.size() > ef) {
            std::pop_heap(results.begin(), results.end(), hnsw_detail::BetterScore{});
            results.pop_back();
        }
    };
    for (const Candidate& e : s.entries) {
        if (!s.visit(e.slot)) {
            continue;
        }
        cands.push_back(e);
        std::push_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
        if (accepted(e.slot)) {
            add_result(e);
        }
    }
    const std::size_t limit = max_links(level);
    const std::size_t lines = code_len_ / kAlign;
    auto& ids = s.ids;
    ids.resize(limit);
    while (!cands.empty()) {
        const Candidate c = cands.front();
        if (results.size() >= ef && c.score < results.front().score) {
            break;
        }
        std::pop_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
        cands.pop_back();
        if (!cands.empty()) {
            prefetch(links(cands.front().slot, level)); // likely the next one expanded
        }

        const std::uint32_t* list = links(c.slot, level);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), limit);
        std::size_t fresh = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (s.visit(id)) {
                ids[fresh++] = id;
                prefetch(codes(id));
            }
        }
        for (std::size_t i = 0; i < fresh; ++i) {
            const std::uint32_t id = ids[i];
            if (i + 1 < fresh) {
                // The first line of the next row is already on its way; ask for the rest.
                const std::int8_t* next = codes(ids[i + 1]);
                for (std::size_t l = 1; l < lines; ++l) {
                    prefetch(next + l * kAlign);
                }
            }
            const float sc = score(q, id);
            if (results.size() < ef || sc > results.front().score) {
                cands.push_back({sc, id});
                std::push_heap(cands.begin(), cands.end(), hnsw_detail::WorseScore{});
                if (accepted(id)) {
                    add_result({sc, id});
                }
            }
        }
    }
}

std::vector<std::pair<std::uint32_t, float>>
HnswIndex::search(const float* unit, std::size_t k, std::size_t ef,
                  const std::function<bool(std::uint32_t)>* filter) const {
    std::vector<std::pair<std::uint32_t, float>> out;
    search_into(unit, k, ef, filter, &out);
    return out;
}

void HnswIndex::search_into(const float* unit, std::size_t k, std::size_t ef,
                            const std::function<bool(std::uint32_t)>* filter,
                            std::vector<std::pair<std::uint32_t, float>>* result) const {
    std::vector<std::pair<std::uint32_t, float>>& out = *result;
    out.clear();
    if (k == 0) {
        return;
    }
    ef = std::max(ef, k);
    hnsw_detail::ScratchLease lease;
    Scratch& s = lease.get();
    hnsw_detail::EpochGuard guard(*epochs_);
    const std::uint64_t entry = entry_.load(std::memory_order_acquire);
    if (entry == kNoEntry) {
        return;
    }
    s.query_codes.resize(code_len_);
    const Query q{s.query_codes.data(),
                  quant::quantize_i8(unit, config_.dim, s.query_codes.data(), code_len_)};
    Candidate cur{0.0F, static_cast<std::uint32_t>(entry)};
    cur.score = score(q, cur.slot);
    for (auto level = static_cast<std::size_t>(entry >> 32); level > 0; --level) {
        greedy(q, level, &cur);
    }
    s.entries.assign(1, cur);
    search_level(q, ef, 0, filter, s);

    // Exact re-rank of the ef survivors of the int8 walk. The rows are located first (the
    // label loads of an owner's rows overlap) and each is prefetched while the one before it is
    // scored.
    const simd::KernelTable& kt = simd::kernels();
    out.reserve(s.results.size());
    s.rows.clear();
    for (const Candidate& c : s.results) {
        out.emplace_back(node(c.slot).label, 0.0F);
        s.rows.push_back(row(c.slot));
    }
    const std::size_t row_bytes = config_.dim * sizeof(float);
    const auto prefetch_row = [&](const float* r) {
        const char* p = reinterpret_cast<const char*>(r);
        for (std::size_t b = 0; b < row_bytes; b += kAlign) {
            prefetch(p + b);
        }
    };
    if (!s.rows.empty()) {
        prefetch_row(s.rows[0]);
    }
    for (std::size_t i = 0; i < s.rows.size(); ++i) {
        if (i + 1 < s.rows.size()) {
            prefetch_row(s.rows[i + 1]);
        }
        out[i].second = kt.dot(unit, s.rows[i], config_.dim);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (out.size() > k) {
        out.resize(k);
    }
}

} // namespace engram::engine
