// HnswIndex removal: tombstones and the purges that reclaim them (declared in hnsw.hpp; shared
// layout and accessors in hnsw_internal.hpp).
//
// HOW IT WORKS
//   remove() only tombstones: the label leaves the label map, the slot becomes kRemoved (searches
//   walk through it but never return it) and joins pending_ with the current epoch tag. When
//   max(64, live/16) tombstones wait, or on purge(), purge_batch() takes those that no running
//   operation can still see live, rewrites every list that links to them (repair: re-selection
//   among the surviving links and the live nodes up to two purged steps away), moves the entry
//   point off them, gives orphaned live nodes an in-link (adopt_orphans), and sends the slots to
//   limbo, from which allocate_slot() reuses them after a grace period.
#include "engine/hnsw/hnsw.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "engine/hnsw/hnsw_internal.hpp"

namespace engram::engine {

// ---- removal ----------------------------------------------------------------------------------

void HnswIndex::mark_removed(std::uint32_t slot) {
    set_state(slot, kRemoved);
    live_.fetch_sub(1, std::memory_order_relaxed);
    // Tagged after the state is stored: an operation that enters a later epoch sees it removed.
    const std::uint64_t tag = epochs_->tag();
    std::lock_guard<std::mutex> lock(free_mutex_);
    pending_.emplace_back(slot, tag);
    pending_count_.store(pending_.size(), std::memory_order_release);
}

bool HnswIndex::remove(std::uint32_t label) {
    {
        std::shared_lock<hnsw_detail::Gate> writer(*gate_);
        const std::uint32_t slot = labels_->erase(label);
        if (slot == kNone) {
            return false;
        }
        mark_removed(slot);
    }
    if (config_.auto_purge) {
        (void)maybe_purge();
    }
    return true;
}

bool HnswIndex::purge_due() const noexcept {
    // A batch of at least 1/16 of the live nodes (and 64) keeps the full scan cheap per removal
    // while tombstones stay a small fraction of what searches walk through.
    const std::size_t threshold =
        std::max<std::size_t>(64, live_.load(std::memory_order_relaxed) / 16);
    return pending_count_.load(std::memory_order_acquire) >= threshold;
}

std::size_t HnswIndex::purge_if_due() {
    return maybe_purge();
}

std::size_t HnswIndex::maybe_purge() {
    if (!purge_due()) {
        return 0;
    }
    std::unique_lock<std::mutex> one(purge_mutex_, std::try_to_lock);
    if (!one.owns_lock()) {
        return 0; // another thread is purging
    }
    std::shared_lock<hnsw_detail::Gate> writer(*gate_);
    return purge_batch(false);
}

std::size_t HnswIndex::purge() {
    std::lock_guard<std::mutex> one(purge_mutex_);
    std::shared_lock<hnsw_detail::Gate> writer(*gate_);
    return purge_batch(true);
}

void HnswIndex::repair(std::uint32_t slot, std::size_t level,
                       const std::vector<std::uint8_t>& in_batch, Scratch& s) {
    const std::size_t scanned = in_batch.size();
    const auto purged = [&](std::uint32_t id) { return id < scanned && in_batch[id] != 0; };
    std::uint32_t* list = links(slot, level);
    const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), max_links(level));
    auto& ids = s.ids;
    ids.clear();
    if (state(slot) != kLive) {
        // A tombstone of a later batch: only unlink the purged nodes (their slots will be
        // reused, and searches still walk this list).
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (!purged(id)) {
                ids.push_back(id);
            }
        }
        for (std::size_t i = 0; i < ids.size(); ++i) {
            store(list[1 + i], ids[i]);
        }
        store(list[0], static_cast<std::uint32_t>(ids.size()));
        return;
    }
    // Candidates: the surviving links (tombstones of later batches included, as in link_to),
    // and the live nodes among the links of purged neighbours and, one step further, of their
    // purged neighbours.
    const auto take = [&](std::uint32_t id) {
        if (id != slot && !purged(id) && state(id) == kLive) {
            ids.push_back(id);
        }
    };
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t id = load(list[1 + i]);
        if (!purged(id)) {
            ids.push_back(id);
            continue;
        }
        // A purged node's lists no longer change: nothing links to tombstones any more.
        const std::uint32_t* hop = links(id, level);
        const std::uint32_t hn = std::min<std::uint32_t>(load(hop[0]), max_links(level));
        for (std::uint32_t j = 0; j < hn; ++j) {
            const std::uint32_t id2 = load(hop[1 + j]);
            if (!purged(id2)) {
                take(id2);
                continue;
            }
            const std::uint32_t* hop2 = links(id2, level);
            const std::uint32_t hn2 = std::min<std::uint32_t>(load(hop2[0]), max_links(level));
            for (std::uint32_t k = 0; k < hn2; ++k) {
                take(load(hop2[1 + k]));
            }
        }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    auto& cands = s.work;
    cands.clear();
    for (const std::uint32_t id : ids) {
        cands.push_back({score(slot, id), id});
    }
    sort_best_first(cands);
    select_neighbors(cands, max_links(level));
    write_links(slot, level, cands);
}

// Heuristic pruning (in link_to and in repairs) can drop a node's last level-0 in-link, and a
// node nothing links to is never found. The purge has just walked every list, so it also counts
// in-links at level 0 and gives each such orphan one: a link from its best live out-neighbour,
// in place of that neighbour's weakest link whose target keeps another in-link.
void HnswIndex::adopt_orphans(std::uint32_t slots, std::uint32_t entry, Scratch& s) {
    std::vector<std::uint16_t> in(slots, 0);
    const auto live = [&](std::uint32_t id) {
        return id < slots && allocated(id) && state(id) == kLive;
    };
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
        if (!live(slot)) {
            continue;
        }
        const std::uint32_t* list = links(slot, 0);
        const std::uint32_t n = std::min<std::uint32_t>(load(list[0]), m0_);
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (id < slots && in[id] < std::numeric_limits<std::uint16_t>::max()) {
                ++in[id];
            }
        }
    }
    for (std::uint32_t y = 0; y < slots; ++y) {
        if (in[y] != 0 || y == entry || !live(y)) {
            continue;
        }
        const std::uint32_t* out = links(y, 0);
        const std::uint32_t n = std::min<std::uint32_t>(load(out[0]), m0_);
        Candidate parent{0.0F, kNone};
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t x = load(out[1 + i]);
            const float sc = live(x) ? score(x, y) : -2.0F;
            if (sc > -2.0F && (parent.slot == kNone || sc > parent.score)) {
                parent = {sc, x};
            }
        }
        if (parent.slot == kNone) {
            continue; // no live out-link either: nothing to hang it on
        }
        const NodeLock lock(*this, parent.slot);
        std::uint32_t* list = links(parent.slot, 0);
        const std::uint32_t cnt = std::min<std::uint32_t>(load(list[0]), m0_);
        if (cnt < m0_) {
            store(list[1 + cnt], y);
            store(list[0], cnt + 1);
            ++in[y];
            continue;
        }
        auto& victims = s.work;
        victims.clear();
        for (std::uint32_t i = 0; i < cnt; ++i) {
            const std::uint32_t id = load(list[1 + i]);
            if (id == y) {
                victims.clear(); // linked meanwhile
                break;
            }
            if (id < slots && in[id] >= 2) { // newer nodes were not counted: keep them
                victims.push_back({score(parent.slot, id), i}); // .slot = position in the list
            }
        }
        if (victims.empty()) {
            continue;
        }
        const Candidate weakest = *std::min_element(
            victims.begin(), victims.end(),
            [](const Candidate& a, const Candidate& b) { return a.score < b.score; });
        const std::uint32_t dropped = load(list[1 + weakest.slot]);
        store(list[1 + weakest.slot], y);
        --in[dropped];
        ++in[y];
    }
}

// HOW A PURGE RUNS ALONGSIDE INSERTS AND SEARCHES
//   A tombstone joins a batch only once the epoch has passed its tag by two: every insert or
//   search that might have seen it live has finished, and every later one sees it removed. No
//   insert selects a removed node as a neighbour (construction accepts live nodes only), and
//   re-selection in link_to drops them, so from then on no new link to a batch member appears.
//   The scan then rewrites every list that links to the batch, each under its node's lock (so
//   it serialises with link_to), and moves the entry point off the batch. The members' slots go
//   to limbo, reused only when every operation that started before the scan ended is done.
std::size_t HnswIndex::purge_batch(bool force) {
    // The ready tombstones form the batch. When forced, wait a little (yielding) for running
    // operations to let the epoch pass the rest; whatever is still not ready waits for the next
    // purge.
    constexpr int kForcedAttempts = 200;
    std::vector<std::uint32_t> batch;
    for (int attempt = 1;; ++attempt) {
        epochs_->try_advance();
        const std::uint64_t now = epochs_->try_advance();
        {
            std::lock_guard<std::mutex> lock(free_mutex_);
            std::size_t ready = 0;
            while (ready < pending_.size() && pending_[ready].second + 2 <= now) {
                ++ready;
            }
            if (!force || ready == pending_.size() || attempt == kForcedAttempts) {
                for (std::size_t i = 0; i < ready; ++i) {
                    batch.push_back(pending_[i].first);
                }
                pending_.erase(pending_.begin(),
                               pending_.begin() + static_cast<std::ptrdiff_t>(ready));
                pending_count_.store(pending_.size(), std::memory_order_release);
                break;
            }
        }
        std::this_thread::yield();
    }
    if (batch.empty()) {
        return 0;
    }
    hnsw_detail::ScratchLease lease;
    Scratch& s = lease.get();
    std::uint32_t best = kNone;
    std::size_t best_level = 0;
    {
        const hnsw_detail::EpochGuard guard(*epochs_); // the scan reads the graph
        const std::uint32_t slots = next_slot_.load(std::memory_order_acquire);
        std::vector<std::uint8_t> in_batch(slots, 0);
        for (const std::uint32_t b : batch) {
            in_batch[b] = 1;
        }
        for (std::uint32_t slot = 0; slot < slots; ++slot) {
            // A slot handed out by allocate_slot() may still wait for its chunk; such a slot
            // belongs to an insert that began after the batch closed and cannot link to it.
            if (in_batch[slot] != 0 || !allocated(slot)) {
                continue;
            }
            const std::uint8_t st = state(slot);
            if (st == kFree) {
                continue;
            }
            const Node& n = node(slot);
            if (st == kLive && (best == kNone || n.level > best_level)) {
                best = slot;
                best_level = n.level;
            }
            for (std::size_t l = 0; l <= n.level; ++l) {
                const std::uint32_t* list = links(slot, l);
                const std::uint32_t cnt = std::min<std::uint32_t>(load(list[0]), max_links(l));
                bool touched = false;
                for (std::uint32_t i = 0; i < cnt && !touched; ++i) {
                    const std::uint32_t id = load(list[1 + i]);
                    touched = id < slots && in_batch[id] != 0;
                }
                if (touched) {
                    const NodeLock lock(*this, slot);
                    repair(slot, l, in_batch, s);
                }
            }
        }
        std::uint64_t entry = 0;
        {
            std::lock_guard<std::mutex> lock(entry_mutex_);
            entry = entry_.load(std::memory_order_acquire);
            if (entry != kNoEntry && in_batch[static_cast<std::uint32_t>(entry)] != 0) {
                entry = best == kNone ? kNoEntry
                                      : pack_entry(best, static_cast<std::uint32_t>(best_level));
                entry_.store(entry, std::memory_order_release);
            }
        }
        adopt_orphans(slots, static_cast<std::uint32_t>(entry), s);
    }
    for (const std::uint32_t b : batch) {
        set_state(b, kFree);
    }
    const std::uint64_t tag = epochs_->tag();
    std::lock_guard<std::mutex> lock(free_mutex_);
    for (const std::uint32_t b : batch) {
        limbo_.emplace_back(b, tag);
    }
    limbo_count_.store(limbo_.size() - limbo_head_, std::memory_order_release);
    return batch.size();
}

} // namespace engram::engine
