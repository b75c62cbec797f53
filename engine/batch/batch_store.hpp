#pragma once
// The batch store: many episodes stored with exactly the outcome of storing them one by one in
// order (MemoryEngine::store), at any thread count.
//
// HOW IT WORKS
//   1. Screening (parallel, in the caller's arena): every episode is compared with every hot
//      memory present before the batch and with every earlier episode of the batch, with the
//      blocked many-against-many kernel (dot_block). Pairs scoring within kScreenSlack of the
//      dedup threshold become candidates, rescored with the canonical `dot` kernel. Each block
//      of episodes writes only its own candidate lists (deterministic, lock-free).
//   2. Resolution (sequential, cheap): episodes are stored in order; each one's duplicate is the
//      best candidate still alive at that moment (a hot memory is identified by its serial, so a
//      replaced or evicted memory — or a reused slot — is never mistaken for a live one).
//      Pressure, eviction and replacement then follow MemoryEngine::store_resolved exactly.
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
