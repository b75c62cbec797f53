#pragma once
// The batch store: many episodes stored with exactly the outcome of storing them one by one in
// order (MemoryEngine::store), at any thread count.
//
// HOW IT WORKS
//   1. Screening (parallel, in the caller's arena; each block of 64 episodes writes only its own
//      candidate lists: deterministic, lock-free). Which memories an episode is compared with
//      is what MemoryEngine::find_duplicate would consider at its turn:
//      - while the hot tier is under kIndexAfter (or with dedup_exact): every hot memory and
//        every earlier episode, with the blocked kernel (dot_block); pairs within kScreenSlack of
//        the threshold are candidates. Only as many episodes as can be stored before the tier
//        reaches kIndexAfter are screened this way at a time;
//      - with the DedupIndex: the hot memories it returns for the episode's code, and the
//        earlier episodes it would return if they were in it (the batch's own codes in
//        open-addressing tables, probed with the same masks and sketch test).
//      Candidates are rescored with the canonical `dot` kernel.
//   2. Resolution (sequential, cheap): episodes are stored in order; each one's duplicate is the
//      best candidate still alive at that moment (a hot memory is identified by its serial, so a
//      replaced or evicted memory — or a reused slot — is never mistaken for a live one).
//      Pressure, eviction and replacement then follow MemoryEngine::store_resolved exactly. When
//      a store starts the DedupIndex, the episodes after it are screened again through it.
//
// Thread safety: the MemoryEngine must not be used by anyone else during the call.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "engine/memory.hpp"

namespace engram::engine {

struct BatchItem {
    const std::string* id; // not in the hot tier, unique within the batch
    double confidence;
    double occurred_at;
};

// `units` holds items.size() L2-normalised embeddings, row i at units + i * stride.
std::vector<StoreOutcome> store_batch(MemoryEngine& memory, std::span<const BatchItem> items,
                                      const float* units, std::size_t stride,
                                      tbb::task_arena& arena);

} // namespace engram::engine
