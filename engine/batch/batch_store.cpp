#include "engine/batch/batch_store.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <optional>

#include "engine/batch/executor.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

constexpr std::size_t kBlock = 64; // episodes per screening task

// A possible duplicate of batch item `item`: hot slot `target` as it was before the batch
// (serial = its serial then), or, with serial = 0, the earlier batch item `target`.
struct Candidate {
    std::uint32_t item;
    std::uint32_t target;
    std::uint64_t serial;
    float score;
};

} // namespace

namespace {

// Resolution (sequential, in input order) of items [i0, i1) from their candidate lists, grouped
// by block of kBlock items (cands[b] holds the candidates of items [i0 + b*kBlock, ...), ordered
// by item). Stops early, after the item whose store started the DedupIndex: the candidates of
// the items after it came from the exact scan and are recomputed. Returns the next item.
std::size_t resolve(MemoryEngine& memory, std::span<const BatchItem> items, const float* units,
                    std::size_t stride, std::size_t i0, std::size_t i1,
                    const std::vector<std::vector<Candidate>>& cands, const std::uint32_t* codes,
                    std::size_t code_words, std::vector<std::uint32_t>& item_slot,
                    std::vector<std::uint64_t>& item_serial, std::vector<StoreOutcome>* out) {
    const HotTier& hot = memory.hot();
    const bool exact = memory.dedup_index() == nullptr;
    std::size_t next = 0; // position in the current block's candidates
    for (std::size_t i = i0; i < i1; ++i) {
        if ((i - i0) % kBlock == 0) {
            next = 0;
        }
        std::optional<Duplicate> best;
        auto consider = [&](std::uint32_t slot, float score) {
            if (!best || score > best->score ||
                (score == best->score && hot.info(slot).id < hot.info(best->slot).id)) {
                best = Duplicate{slot, score};
            }
        };
        const std::vector<Candidate>& block = cands[(i - i0) / kBlock];
        for (; next < block.size() && block[next].item == i; ++next) {
            const Candidate& c = block[next];
            if (c.serial != 0) { // a hot memory: still the same one?
                if (hot.info(c.target).live && hot.info(c.target).serial == c.serial) {
                    consider(c.target, c.score);
                }
                continue;
            }
            const std::uint32_t slot = item_slot[c.target]; // an earlier item, if it was stored
            if (item_serial[c.target] != 0 && hot.info(slot).live &&
                hot.info(slot).serial == item_serial[c.target]) {
                consider(slot, c.score);
            }
        }
        const std::string& id = *items[i].id;
        out->push_back(memory.store_resolved(
            id, units + i * stride, Confidence(items[i].confidence), items[i].occurred_at, best,
            codes != nullptr ? codes + (i - i0) * code_words : nullptr));
        if (out->back().kind != StoreKind::kSkipped) {
            item_slot[i] = *hot.find(id);
            item_serial[i] = hot.info(item_slot[i]).serial;
        }
        if (exact && memory.dedup_index() != nullptr) {
            return i + 1;
        }
    }
    return i1;
}

// Screening of items [i0, i1) by exact scan: against every hot memory and every earlier item of
// the range, with the blocked kernel; pairs within kScreenSlack of the threshold are rescored
// with the canonical `dot`.
void screen_exact(const MemoryEngine& memory, const float* units, std::size_t stride,
                  std::size_t i0, std::size_t i1, tbb::task_arena& arena,
                  std::vector<std::vector<Candidate>>* out) {
    const std::size_t n = i1 - i0;
    const std::size_t dim = memory.config().dim;
    const auto threshold = static_cast<float>(*memory.config().dedup_threshold);
    const float screen = threshold - kScreenSlack;
    const HotTier& hot = memory.hot();
    const simd::KernelTable& k = simd::kernels();
    const std::size_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<std::vector<Candidate>>& cands = *out;
    cands.assign(blocks, {});
    const std::size_t slots = hot.slots();
    parallel_ranges(arena, blocks, 1, [&](const tbb::blocked_range<std::size_t>& range) {
        std::vector<float> scores;
        for (std::size_t b = range.begin(); b != range.end(); ++b) {
            const std::size_t a0 = i0 + b * kBlock; // first item of the block
            const std::size_t ni = std::min(kBlock, i1 - a0);
            const float* q = units + a0 * stride;
            // against the hot tier as it is now, chunk by chunk
            for (std::size_t c0 = 0; c0 < slots; c0 += HotTier::kChunkRows) {
                const std::size_t nr = std::min(HotTier::kChunkRows, slots - c0);
                scores.resize(ni * nr);
                const auto first = static_cast<std::uint32_t>(c0);
                k.dot_block(q, stride, ni, hot.row(first), hot.stride(), nr, dim, scores.data());
                for (std::size_t a = 0; a < ni; ++a) {
                    for (std::size_t r = 0; r < nr; ++r) {
                        const auto slot = static_cast<std::uint32_t>(c0 + r);
                        if (!(scores[a * nr + r] >= screen) || !hot.info(slot).live) {
                            continue;
                        }
                        const float exact =
                            std::clamp(k.dot(q + a * stride, hot.row(slot), dim), -1.0F, 1.0F);
                        if (exact >= threshold) {
                            cands[b].push_back({static_cast<std::uint32_t>(a0 + a), slot,
                                                hot.info(slot).serial, exact});
                        }
                    }
                }
            }
            // against earlier items of the range (blocks up to and including this one)
            for (std::size_t j0 = i0; j0 <= a0; j0 += kBlock) {
                const std::size_t nj = std::min(kBlock, i1 - j0);
                scores.resize(ni * nj);
                k.dot_block(q, stride, ni, units + j0 * stride, stride, nj, dim, scores.data());
                for (std::size_t a = 0; a < ni; ++a) {
                    for (std::size_t r = 0; r < nj && j0 + r < a0 + a; ++r) {
                        if (!(scores[a * nj + r] >= screen)) {
                            continue;
                        }
                        const float exact = std::clamp(
                            k.dot(q + a * stride, units + (j0 + r) * stride, dim), -1.0F, 1.0F);
                        if (exact >= threshold) {
                            cands[b].push_back({static_cast<std::uint32_t>(a0 + a),
                                                static_cast<std::uint32_t>(j0 + r), 0, exact});
                        }
                    }
                }
            }
            std::stable_sort(
                cands[b].begin(), cands[b].end(),
                [](const Candidate& x, const Candidate& y) { return x.item < y.item; });
        }
    });
}

// Per-thread buffers of the indexed screening, reused across batches (no allocation per block).
struct ProbeScratch {
    std::vector<float> projections;
    std::vector<std::uint32_t> found;
    std::vector<std::size_t> positions;
};
ProbeScratch& probe_scratch() {
    thread_local ProbeScratch s;
    return s;
}

// Screening of items [i0, i1) through the DedupIndex: an item's candidates are the hot memories
// the index returns for its code, and the earlier items of the range that the index would
// return if they were in it (same buckets, probes and sketch test, from a table of the range's
// own codes), rescored with the canonical `dot` — exactly what storing the items one by one
// would consider. codes[i - i0] receives each item's code.
void screen_indexed(const MemoryEngine& memory, const float* units, std::size_t stride,
                    std::size_t i0, std::size_t i1, tbb::task_arena& arena,
                    std::vector<std::uint32_t>* codes_out,
                    std::vector<std::vector<Candidate>>* out) {
    const DedupIndex& index = *memory.dedup_index();
    const std::size_t n = i1 - i0;
    const std::size_t dim = memory.config().dim;
    const auto threshold = static_cast<float>(*memory.config().dedup_threshold);
    const HotTier& hot = memory.hot();
    const simd::KernelTable& k = simd::kernels();
    const std::size_t w = index.words();
    const std::size_t tables = index.config().tables;
    const std::size_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<std::uint32_t>& codes = *codes_out;
    codes.resize(n * w);
    parallel_ranges(arena, blocks, 1, [&](const tbb::blocked_range<std::size_t>& range) {
        std::vector<float>& scratch = probe_scratch().projections;
        for (std::size_t b = range.begin(); b != range.end(); ++b) {
            const std::size_t a0 = b * kBlock;
            index.codes(units + (i0 + a0) * stride, stride, std::min(kBlock, n - a0),
                        &codes[a0 * w], &scratch);
        }
    });
    // The range's own tables: per table, an open-addressing multimap key -> item (key << 32 |
    // item, linear probing, at most half full).
    constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    std::size_t cap = 64;
    while (cap < 2 * n) {
        cap *= 2;
    }
    const std::size_t cmask = cap - 1;
    auto home = [cmask](std::uint32_t key) {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) & cmask;
    };
    std::vector<std::vector<std::uint64_t>> local(tables);
    parallel_ranges(arena, tables, 1, [&](const tbb::blocked_range<std::size_t>& range) {
        for (std::size_t t = range.begin(); t != range.end(); ++t) {
            local[t].assign(cap, kEmpty);
            for (std::size_t a = 0; a < n; ++a) {
                const std::uint32_t key = codes[a * w + t];
                std::size_t p = home(key);
                while (local[t][p] != kEmpty) {
                    p = (p + 1) & cmask;
                }
                local[t][p] = static_cast<std::uint64_t>(key) << 32 | a;
            }
        }
    });
    std::vector<std::vector<Candidate>>& cands = *out;
    cands.assign(blocks, {});
    parallel_ranges(arena, blocks, 1, [&](const tbb::blocked_range<std::size_t>& range) {
        std::vector<std::uint32_t>& found = probe_scratch().found;
        std::vector<std::size_t>& positions = probe_scratch().positions;
        for (std::size_t b = range.begin(); b != range.end(); ++b) {
            const std::size_t a0 = b * kBlock;
            for (std::size_t a = a0; a < std::min(n, a0 + kBlock); ++a) {
                const std::uint32_t* code = &codes[a * w];
                const float* q = units + (i0 + a) * stride;
                const auto item = static_cast<std::uint32_t>(i0 + a);
                index.candidates(code, &positions, &found);
                for (const std::uint32_t slot : found) {
                    const float exact = std::clamp(k.dot(q, hot.row(slot), dim), -1.0F, 1.0F);
                    if (exact >= threshold) {
                        cands[b].push_back({item, slot, hot.info(slot).serial, exact});
                    }
                }
                found.clear();
                for (std::size_t t = 0; t < tables; ++t) {
                    const std::vector<std::uint64_t>& cells = local[t];
                    for (const std::uint32_t mask : index.masks()) {
                        const std::uint32_t key = code[t] ^ mask;
                        for (std::size_t p = home(key); cells[p] != kEmpty; p = (p + 1) & cmask) {
                            const auto j = static_cast<std::uint32_t>(cells[p]);
                            if (static_cast<std::uint32_t>(cells[p] >> 32) == key && j < a &&
                                index.sketch_near(code, &codes[j * w])) {
                                found.push_back(j);
                            }
                        }
                    }
                }
                std::sort(found.begin(), found.end());
                found.erase(std::unique(found.begin(), found.end()), found.end());
                for (const std::uint32_t j : found) {
                    const float exact =
                        std::clamp(k.dot(q, units + (i0 + j) * stride, dim), -1.0F, 1.0F);
                    if (exact >= threshold) {
                        cands[b].push_back({item, static_cast<std::uint32_t>(i0 + j), 0, exact});
                    }
                }
            }
        }
    });
}

} // namespace

std::vector<StoreOutcome> store_batch(MemoryEngine& memory, std::span<const BatchItem> items,
                                      const float* units, std::size_t stride,
                                      tbb::task_arena& arena) {
    const std::size_t n = items.size();
    std::vector<StoreOutcome> out;
    out.reserve(n);
    if (!memory.config().dedup_threshold) {
        for (std::size_t i = 0; i < n; ++i) {
            out.push_back(memory.store_resolved(*items[i].id, units + i * stride,
                                                Confidence(items[i].confidence),
                                                items[i].occurred_at, std::nullopt));
        }
        return out;
    }
    std::vector<std::uint32_t> item_slot(n, 0);
    std::vector<std::uint64_t> item_serial(n, 0); // 0: not stored
    std::vector<std::vector<Candidate>> cands;
    std::vector<std::uint32_t> codes;
    // Exact scans while the store is small (for at most the items that can be stored before the
    // DedupIndex starts), then the DedupIndex for the rest.
    for (std::size_t i0 = 0; i0 < n;) {
        if (memory.dedup_index() != nullptr) {
            screen_indexed(memory, units, stride, i0, n, arena, &codes, &cands);
            i0 = resolve(memory, items, units, stride, i0, n, cands, codes.data(),
                         memory.dedup_index()->words(), item_slot, item_serial, &out);
        } else {
            const std::size_t window = memory.exact_window();
            const std::size_t i1 = n - i0 > window ? i0 + window : n;
            screen_exact(memory, units, stride, i0, i1, arena, &cands);
            i0 = resolve(memory, items, units, stride, i0, i1, cands, nullptr, 0, item_slot,
                         item_serial, &out);
        }
    }
    return out;
}

} // namespace engram::engine
