// Index upkeep: the background builder that puts new memories into the graph.
//
// HOW IT WORKS
//   The hot tier journals every slot it fills or frees (TierEvent). drain_journal(), called with
//   the store's write lock at the end of each commit chunk, turns the journal into slot states
//   (state_: 0 none, 1 waiting in tail_, 2 indexed), removes replaced or freed slots from the
//   graph (tombstones; a purge is requested when they reach the threshold) and wakes the builder.
//   build_loop() takes up to 16 waiting slots at a time and inserts them in parallel in a
//   low-priority arena while holding the store lock shared; it steps aside whenever a commit
//   waits for the lock (writers_waiting_), putting back the slots it had not begun.
#include "db/shared_store.hpp"

#include <algorithm>
#include <thread>

#include "engine/batch/executor.hpp"

namespace engram::db {
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
    return hc;
}

void SharedStore::reset_index() {
    std::lock_guard<std::mutex> g(tail_mutex_);
    index_ = std::make_unique<engine::HnswIndex>(index_config());
    tail_.clear();
    state_.clear();
    waiting_ = 0;
    indexed_count_ = 0;
    journal_.clear();
    memory_->hot().set_journal(&journal_);
}

void SharedStore::drain_journal() {
    // Called with mutex_ held exclusively: the builder is not indexing now.
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
    journal_.clear();
    if (removed && index_->purge_due()) {
        purge_wanted_ = true;
    }
    if (waiting_ > 0 || purge_wanted_) {
        tail_cv_.notify_one();
    }
}

void SharedStore::build_loop() {
    constexpr std::size_t kChunk = 16; // slots indexed per hold of the shared lock (commits wait)
    std::vector<std::uint32_t> work;
    for (;;) {
        {
            std::unique_lock<std::mutex> g(tail_mutex_);
            tail_cv_.wait(g, [&] { return stop_ || !tail_.empty() || purge_wanted_; });
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
            while (!tail_.empty() && work.size() < kChunk) {
                const std::uint32_t slot = tail_.front();
                tail_.pop_front();
                if (state_[slot] == 1 && std::find(work.begin(), work.end(), slot) == work.end()) {
                    work.push_back(slot);
                }
            }
            building_ = true;
        }
        const engine::HotTier& hot = memory_->hot();
        // A commit that starts waiting for the store lock stops the chunk: the slots not
        // begun yet go back to the front of the tail (one insert per thread at most delays it).
        std::vector<std::uint8_t> done(work.size(), 0);
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
            for (std::size_t i = work.size(); i-- > 0;) {
                if (done[i] != 0) {
                    state_[work[i]] = 2;
                    ++indexed;
                } else {
                    tail_.push_front(work[i]);
                }
            }
            waiting_ -= indexed;
            indexed_count_ += static_cast<std::int64_t>(indexed);
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
