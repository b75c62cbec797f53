// Index upkeep: the background builder that puts new memories into the graph.
//
// HOW IT WORKS
//   The hot tier journals every slot it fills or frees (TierEvent). drain_journal(), called with
//   the store's write lock at the end of each commit chunk, turns the journal into slot states
//   (state_: 0 none, 1 waiting, 2 indexed) and appends new slots to tail_, removes replaced or
//   freed slots from the graph (tombstones; a purge is requested when they reach the threshold),
//   compacts tail_ to the slots still waiting, and wakes the builder.
//   build_loop() takes the next waiting slots from tail_head_ on (8 per core) and inserts them in
//   parallel in a low-priority arena as wide as the machine while holding the store lock shared;
//   it steps aside whenever a commit waits for the lock (writers_waiting_), leaving the slots it
//   had not begun waiting. A slot becomes state 2 only once it is in the graph, and tail_head_
//   only moves past slots that are not waiting, so a search that lists the waiting slots from
//   tail_head_ (collect_unindexed) and walks the graph misses none: it needs no lock but the
//   store's shared one, and its cost is the tail's, not the store's.
//   The same drain keeps recall's indexes (what_index_, place_index_, time_index_): each slot the
//   chunk touched is indexed again from its final state, or forgotten when it is free. After a
//   load (or a failed commit's reload) they are rebuilt whole, and again whenever a text index's
//   garbage (lists are appended to, never edited) outweighs its live entries.
//   The graph keeps no float rows: its re-rank reads the hot tier's (index_config()), and the
//   store lock ties their lifetimes (a slot changes only under the exclusive lock, in the same
//   hold that tombstones its node).
//   When the builder runs dry after indexing at least kReleaseAfter slots, it hands the C
//   library's free pages back (engine::release_free_memory): the operations and records of the
//   transactions it indexed are freed by then, and would otherwise stay resident.
#include "db/shared_store.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "engine/batch/executor.hpp"
#include "engine/pool.hpp"

namespace engram::db {
namespace {
// Indexed slots after which an idle builder hands the allocator's free pages back.
constexpr std::size_t kReleaseAfter = 8192;
} // namespace

std::size_t SharedStore::unindexed() {
    std::lock_guard<std::mutex> g(tail_mutex_);
    return waiting_ + journal_.size();
}

engine::HnswConfig SharedStore::index_config() const {
    engine::HnswConfig hc;
    hc.dim = options_.memory.dim;
    hc.m = static_cast<std::size_t>(options_.m);
    hc.ef_construction = static_cast<std::size_t>(options_.ef_construction);
    hc.auto_purge = false; // the builder purges, so that commits never do
    // One copy of each vector: the graph re-ranks with the hot tier's rows (label = slot). The
    // row lifetime rule holds through the store lock: the tier frees, reuses or rewrites a slot
    // only in a commit (mutex_ exclusive), which also tombstones the slot's node
    // (drain_journal) before releasing the lock, while every search runs under mutex_ shared.
    hc.rows.context = this;
    hc.rows.row = [](const void* self, std::uint32_t label) noexcept {
        return static_cast<const SharedStore*>(self)->memory_->hot().row(label);
    };
    return hc;
}

void SharedStore::reset_index() {
    what_index_.clear();
    place_index_.clear();
    time_index_.clear();
    recall_indexed_ = false; // until rebuild_recall_indexes()
    std::lock_guard<std::mutex> g(tail_mutex_);
    index_ = std::make_unique<engine::HnswIndex>(index_config());
    tail_.clear();
    tail_head_ = 0;
    state_.clear();
    waiting_ = 0;
    indexed_count_ = 0;
    journal_.clear();
    memory_->hot().set_journal(&journal_);
}

namespace {
std::uint8_t load_state(const std::vector<std::uint8_t>& state, std::uint32_t slot) noexcept {
    // Written by the builder under the store's shared lock while searches read it.
    return std::atomic_ref<const std::uint8_t>(state[slot]).load(std::memory_order_acquire);
}
} // namespace

void SharedStore::collect_unindexed(std::vector<std::uint32_t>* out) const {
    out->clear();
    const std::size_t end = tail_.size();
    for (std::size_t p = tail_head_.load(std::memory_order_acquire); p < end; ++p) {
        if (load_state(state_, tail_[p]) == 1) {
            out->push_back(tail_[p]);
        }
    }
    // A slot freed and filled again may be listed twice (its old entry and its new one).
    if (out->size() > 1 && !std::is_sorted(out->begin(), out->end())) {
        std::sort(out->begin(), out->end());
    }
    out->erase(std::unique(out->begin(), out->end()), out->end());
}

void SharedStore::drain_journal() {
    // Called with mutex_ held exclusively: the builder is not indexing now, no search runs.
    std::lock_guard<std::mutex> g(tail_mutex_);
    bool removed = false;
    for (const engine::TierEvent& ev : journal_) {
        if (state_.size() <= ev.slot) {
            state_.resize(ev.slot + 1, 0);
        }
        std::uint8_t& st = state_[ev.slot];
        if (ev.kind != engine::TierEvent::Kind::kAdd && st == 2) {
            index_->remove(ev.slot);
            --indexed_count_;
            removed = true;
        }
        if (st == 1) {
            --waiting_;
        }
        st = 0;
        if (ev.kind != engine::TierEvent::Kind::kRemove) {
            st = 1;
            ++waiting_;
            tail_.push_back(ev.slot);
        }
    }
    if (recall_indexed_) {
        // One update per slot, from its state after the chunk.
        thread_local std::vector<std::uint32_t> slots;
        slots.clear();
        for (const engine::TierEvent& ev : journal_) {
            slots.push_back(ev.slot);
        }
        std::sort(slots.begin(), slots.end());
        slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
        for (const std::uint32_t slot : slots) {
            index_for_recall(slot);
        }
        if (what_index_.needs_rebuild() || place_index_.needs_rebuild()) {
            rebuild_recall_indexes();
        }
    }
    journal_.clear();
    // Compact: drop the entries the builder has taken and the stale ones, so that the list
    // searches walk is the unindexed tail (plus what the builder indexes until the next commit).
    const std::size_t head = tail_head_.load();
    if (head > 0 || tail_.size() > 2 * waiting_ + 1024) {
        std::size_t w = 0;
        for (std::size_t p = head; p < tail_.size(); ++p) {
            if (state_[tail_[p]] == 1) {
                tail_[w++] = tail_[p];
            }
        }
        tail_.resize(w);
        tail_head_ = 0;
        if (tail_.capacity() > 4 * (tail_.size() + 1024)) {
            tail_.shrink_to_fit();
        }
    }
    if (removed && index_->purge_due()) {
        purge_wanted_ = true;
    }
    if (waiting_ > 0 || purge_wanted_) {
        tail_cv_.notify_one();
    }
}

void SharedStore::index_for_recall(std::uint32_t slot) {
    const engine::HotTier& hot = memory_->hot();
    if (slot >= hot.slots() || !hot.info(slot).live) {
        what_index_.remove(slot);
        place_index_.remove(slot);
        time_index_.remove(slot);
        return;
    }
    static const SlotText kNone;
    const SlotText& t = slot < texts_.size() ? texts_[slot] : kNone;
    what_index_.set(slot, t.what);
    place_index_.set(slot, t.location);
    time_index_.set(slot, hot.info(slot).occurred_at);
}

void SharedStore::rebuild_recall_indexes() {
    what_index_.clear();
    place_index_.clear();
    time_index_.clear();
    const engine::HotTier& hot = memory_->hot();
    for (std::uint32_t slot = 0; slot < hot.slots(); ++slot) {
        if (hot.info(slot).live) {
            index_for_recall(slot);
        }
    }
    recall_indexed_ = true;
}

void SharedStore::build_loop() {
    // Slots indexed per hold of the shared lock (a waiting commit stops a chunk early).
    const std::size_t chunk =
        std::max<std::size_t>(16, 8 * static_cast<std::size_t>(engine::default_arena_threads()));
    std::vector<std::uint32_t> work;
    std::vector<std::uint8_t> done;
    std::size_t since_release = 0; // slots indexed since the last release_free_memory()
    for (;;) {
        {
            std::unique_lock<std::mutex> g(tail_mutex_);
            tail_cv_.wait(g, [&] { return stop_ || waiting_ > 0 || purge_wanted_; });
            if (stop_) {
                return;
            }
        }
        if (purge_wanted_.exchange(false)) {
            // Tombstones from removals and replacements: repaired here, off the commit path.
            while (writers_waiting_.load() > 0) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            std::shared_lock<std::shared_mutex> lock(mutex_);
            (void)index_->purge_if_due();
            continue;
        }
        // Commits come first: the builder steps aside while one waits for the store lock
        // (a shared_mutex may otherwise let this loop of readers starve the writer).
        while (writers_waiting_.load() > 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        std::shared_lock<std::shared_mutex> lock(mutex_);
        work.clear();
        {
            std::lock_guard<std::mutex> g(tail_mutex_);
            // Skip the taken prefix, then take the next waiting slots (slots a yielded chunk
            // did not begin are still in state 1 and are taken again).
            std::size_t head = tail_head_.load();
            while (head < tail_.size() && load_state(state_, tail_[head]) != 1) {
                ++head;
            }
            tail_head_.store(head, std::memory_order_release);
            for (std::size_t p = head; p < tail_.size() && work.size() < chunk; ++p) {
                const std::uint32_t slot = tail_[p];
                if (load_state(state_, slot) == 1 &&
                    std::find(work.begin(), work.end(), slot) == work.end()) {
                    work.push_back(slot);
                }
            }
            building_ = true;
        }
        const engine::HotTier& hot = memory_->hot();
        bool release = false;
        // A commit that starts waiting for the store lock stops the chunk: the slots not
        // begun yet stay waiting (one insert per thread at most delays it).
        done.assign(work.size(), 0);
        engine::parallel_indices(engine::background_arena(), work.size(), [&](std::size_t i) {
            if (writers_waiting_.load(std::memory_order_relaxed) > 0) {
                return;
            }
            index_->insert(work[i], hot.row(work[i]));
            done[i] = 1;
        });
        {
            std::lock_guard<std::mutex> g(tail_mutex_);
            std::size_t indexed = 0;
            for (std::size_t i = 0; i < work.size(); ++i) {
                if (done[i] != 0) {
                    // In the graph before searches stop scanning it exactly.
                    std::atomic_ref<std::uint8_t>(state_[work[i]])
                        .store(2, std::memory_order_release);
                    ++indexed;
                }
            }
            std::size_t head = tail_head_.load();
            while (head < tail_.size() && load_state(state_, tail_[head]) != 1) {
                ++head;
            }
            tail_head_.store(head, std::memory_order_release);
            waiting_ -= indexed;
            indexed_count_ += static_cast<std::int64_t>(indexed);
            since_release += indexed;
            release = waiting_ == 0 && since_release >= kReleaseAfter;
            building_ = release; // wait_indexed() returns after the release
        }
        if (release) {
            // The transactions behind this tail are over, their operations and records freed:
            // hand those pages back before anyone waits on the index (not per commit: a walk of
            // the allocator's free chunks).
            lock.unlock();
            engine::release_free_memory();
            since_release = 0;
            std::lock_guard<std::mutex> g(tail_mutex_);
            building_ = false;
        }
        idle_cv_.notify_all();
    }
}

void SharedStore::wait_indexed() {
    std::unique_lock<std::mutex> g(tail_mutex_);
    idle_cv_.wait(g, [&] { return stop_ || (waiting_ == 0 && !building_); });
}

} // namespace engram::db
