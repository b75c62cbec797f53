// Statistics: engram_stats and engram_batches.
//
// HOW IT WORKS
//   stats() reads atomics only (no store lock): a running commit holds the lock, and watching
//   that commit from another connection is the point. The batch reports are kept in a bounded
//   deque under their own mutex.
#include "db/shared_store.hpp"

#include <algorithm>

#include "db/util.hpp"

namespace engram::db {
StoreStats SharedStore::stats() {
    // No store lock: a running commit holds it, and watching that commit is the point.
    StoreStats s;
    s.hot = static_cast<std::size_t>(hot_count_.load());
    s.indexed = static_cast<std::size_t>(indexed_count_.load());
    s.cold = static_cast<std::size_t>(cold_count_.load());
    s.pressure =
        std::min(1.0, static_cast<double>(s.hot) / static_cast<double>(options_.memory.capacity));
    s.committing_rows = committing_rows_.load();
    s.staged_rows = staged_rows_.load();
    s.index_source = index_source_;
    s.applied_rows = applied_rows_.load();
    const double started = commit_started_.load();
    if (started > 0.0) {
        const double elapsed = detail::steady_seconds() - started;
        s.rate = elapsed > 0.0 ? static_cast<double>(s.applied_rows) / elapsed : 0.0;
    } else {
        s.rate = last_rate_.load();
    }
    std::lock_guard<std::mutex> g(batches_mutex_);
    s.batches = batch_seq_;
    return s;
}

std::vector<BatchReport> SharedStore::batches() {
    std::lock_guard<std::mutex> g(batches_mutex_);
    return {batches_.begin(), batches_.end()};
}

} // namespace engram::db
