// Resident memory of an open store, by part: engram_debug()'s memory section.
//
// HOW IT WORKS
//   memory_usage() asks each owner for the capacity it has allocated (not only what is used),
//   under the store's shared lock. The parts, in order:
//     hot_tier       the embedding rows (the one float copy of each vector: the graph reads them)
//     ids            per hot memory: id, facts, id table, eviction heap, free list
//     texts          what / location / metadata of each hot slot (recall)
//     graph_links    level-0 and upper link lists, node records
//     graph_codes    int8 codes, scales and states of the graph's nodes
//     graph_rows     the graph's own float rows (0: it reads the hot tier's)
//     graph_labels   the graph's label -> node map
//     index_queue    the builder's slot states, tail and journal
//     dedup_index    the near-duplicate hash tables and per-slot keys
//     edges          the edge graph and its id <-> node maps
//     commit_scratch buffers a commit keeps between commits (records, units, undo values)
//     memtables      RocksDB memtables (episodes, edges, meta, index)
//     staging        RocksDB's staging memtables (transactions larger than batch_memory)
//     block_cache    RocksDB's block caches
//     table_readers  RocksDB's index and filter blocks outside the caches
//   Heap bookkeeping (malloc headers, hash-map nodes) is estimated where the containers hide it.
#include "db/shared_store.hpp"

#include <mutex>
#include <shared_mutex>

namespace engram::db {
namespace {

template <typename T> std::size_t capacity_bytes(const std::vector<T>& v) noexcept {
    return v.capacity() * sizeof(T);
}

std::size_t string_heap(const std::string& s) noexcept {
    return s.capacity() > std::string().capacity() ? s.capacity() + 1 : 0;
}

} // namespace

SharedStore::MemoryParts SharedStore::memory_usage() {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const engine::HotTierMemory hot = memory_->hot().memory();
    std::size_t texts = capacity_bytes(texts_);
    for (const SlotText& t : texts_) {
        texts += string_heap(t.what) + string_heap(t.location) + string_heap(t.metadata);
    }
    engine::HnswMemory graph;
    std::size_t queue = 0;
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        if (index_ != nullptr) {
            graph = index_->memory();
        }
        queue = capacity_bytes(state_) + capacity_bytes(tail_) + capacity_bytes(journal_);
    }
    const engine::DedupIndex* dedup = memory_->dedup_index();
    // An unordered_map node: the pair, a next pointer, the hash, malloc's header; plus a bucket.
    std::size_t edges = graph_.memory_bytes() + capacity_bytes(id_of_) +
                        node_of_.size() * (sizeof(std::string) + 4 + 8 + 8 + 16) +
                        node_of_.bucket_count() * sizeof(void*);
    for (const std::string& id : id_of_) {
        edges += 2 * string_heap(id); // the id in id_of_ and as node_of_'s key
    }
    std::size_t scratch = capacity_bytes(units_) + capacity_bytes(chunk_before_);
    for (const storage::Batch& b : write_batches_) {
        scratch += b.byte_size();
    }
    const storage::StoreMemory rocks = db_->memory();
    return {
        {"hot_tier", hot.rows},
        {"ids", hot.ids},
        {"texts", texts},
        {"graph_links", graph.links},
        {"graph_codes", graph.codes},
        {"graph_rows", graph.rows},
        {"graph_labels", graph.labels},
        {"index_queue", queue},
        {"dedup_index", dedup != nullptr ? dedup->memory_bytes() : 0},
        {"recall_indexes",
         what_index_.memory_bytes() + place_index_.memory_bytes() + time_index_.memory_bytes()},
        {"edges", edges},
        {"commit_scratch", scratch},
        {"memtables", rocks.memtables},
        {"staging", rocks.staging},
        {"block_cache", rocks.block_cache},
        {"table_readers", rocks.table_readers},
    };
}

} // namespace engram::db
