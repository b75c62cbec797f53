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

std::vector<StoreOutcome> store_batch(MemoryEngine& memory, std::span<const BatchItem> items,
                                      const float* units, std::size_t stride,
                                      tbb::task_arena& arena) {
    const std::size_t n = items.size();
    const std::size_t dim = memory.config().dim;
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
    const auto threshold = static_cast<float>(*memory.config().dedup_threshold);
    const float screen = threshold - kScreenSlack;
    const HotTier& hot = memory.hot();
    const simd::KernelTable& k = simd::kernels();

    // 1. Screening, in parallel over blocks of episodes. Candidates are collected per block
    // (allocation per block, not per episode), ordered by item.
    const std::size_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<std::vector<Candidate>> cands(blocks);
    const std::size_t slots = hot.slots();
    parallel_ranges(arena, blocks, 1, [&](const tbb::blocked_range<std::size_t>& range) {
        std::vector<float> scores;
        for (std::size_t b = range.begin(); b != range.end(); ++b) {
            const std::size_t i0 = b * kBlock;
            const std::size_t ni = std::min(kBlock, n - i0);
            const float* q = units + i0 * stride;
            // against the hot tier as it was before the batch, chunk by chunk
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
                            cands[b].push_back({static_cast<std::uint32_t>(i0 + a), slot,
                                                hot.info(slot).serial, exact});
                        }
                    }
                }
            }
            // against earlier episodes of the batch (blocks up to and including this one)
            for (std::size_t j0 = 0; j0 <= i0; j0 += kBlock) {
                const std::size_t nj = std::min(kBlock, n - j0);
                scores.resize(ni * nj);
                k.dot_block(q, stride, ni, units + j0 * stride, stride, nj, dim, scores.data());
                for (std::size_t a = 0; a < ni; ++a) {
                    for (std::size_t r = 0; r < nj && j0 + r < i0 + a; ++r) {
                        if (!(scores[a * nj + r] >= screen)) {
                            continue;
                        }
                        const float exact = std::clamp(
                            k.dot(q + a * stride, units + (j0 + r) * stride, dim), -1.0F, 1.0F);
                        if (exact >= threshold) {
                            cands[b].push_back({static_cast<std::uint32_t>(i0 + a),
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

    // 2. Resolution, in input order.
    std::vector<std::uint32_t> item_slot(n, 0);
    std::vector<std::uint64_t> item_serial(n, 0); // 0: not stored
    std::size_t next = 0;                         // position in the current block's candidates
    for (std::size_t i = 0; i < n; ++i) {
        if (i % kBlock == 0) {
            next = 0;
        }
        std::optional<Duplicate> best;
        auto consider = [&](std::uint32_t slot, float score) {
            if (!best || score > best->score ||
                (score == best->score && hot.info(slot).id < hot.info(best->slot).id)) {
                best = Duplicate{slot, score};
            }
        };
        const std::vector<Candidate>& block = cands[i / kBlock];
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
        out.push_back(memory.store_resolved(id, units + i * stride, Confidence(items[i].confidence),
                                            items[i].occurred_at, best));
        if (out.back().kind != StoreKind::kSkipped) {
            item_slot[i] = *hot.find(id);
            item_serial[i] = hot.info(item_slot[i]).serial;
        }
    }
    return out;
}

} // namespace engram::engine
