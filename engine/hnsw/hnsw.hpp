#pragma once
// HnswIndex: an approximate nearest-neighbour index over unit vectors (cosine = dot), after
// Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
// Navigable Small World graphs" (TPAMI 2018).
//
// HOW IT WORKS
//   Graph        each node gets a random level l = floor(-ln(U) / ln(m)) (U uniform in (0, 1],
//                from a counter-based generator seeded by HnswConfig::seed, so a fixed
//                single-threaded insert order gives the same graph every time). Level 0 keeps up
//                to 2*m links per node, the upper levels m. New nodes search top-down (greedy
//                above their level, a beam of ef_construction below) and pick neighbours with the
//                paper's heuristic (Algorithm 4): a candidate is kept only when it is closer to the
//                new node than to every neighbour already kept. A neighbour whose list overflows
//                re-selects with the same heuristic.
//   Distances    the walk scores int8 codes of the vectors (quant.hpp: per-vector scale,
//                runtime-dispatched kernels); the ef best of a search are then re-ranked with exact
//                float dot products (simd::kernels()), so scores returned are exact cosines.
//                Construction uses the int8 scores throughout.
//   Storage      slots live in chunks that never move (256 slots, doubling up to 65536, then
//                65536 each); per chunk one array each of level-0 link lists, int8 code rows
//                (64-byte aligned, strides padded to 64 bytes), and dense per-slot scales and
//                states. Upper-level links are a small per-node allocation (about one node in m
//                has any). The float rows that the re-rank reads are either the owner's
//                (HnswConfig::rows: one copy of each vector in the process, e.g. the hot tier's
//                rows, looked up by label) or, without one, a float row per slot in the chunk.
//   Row lifetime an owner that keeps the rows changes the row of a label only once the index
//                can no longer read it for that label's old node: after remove(label) (or
//                before a replacing insert(label), remove first) AND wait_for_searches() (or
//                any exclusion of its own that keeps searches from running meanwhile, as the
//                store's lock does). Searches read a node's row only while they may return it
//                (the re-rank of live nodes); construction and purges read codes only.
//   Deletes      remove() tombstones the node at once: searches still walk through it but never
//                return it, and no new link ever points at it (construction picks live nodes
//                only; when nothing live is reachable, the new node becomes the entry point).
//                When tombstones reach max(64, live/16) (or on purge()), they are purged as one
//                batch: every node linking to a batch member re-selects its neighbours with the
//                heuristic from its surviving links plus the live links of the purged neighbours
//                (two steps through purged nodes); the entry point moves off the batch; a live node
//                left without any level-0 in-link gets one from its best out-neighbour; the
//                members' slots are reused after a grace period (below).
//
// Thread safety
//   insert(), remove(), search(), contains(), size(), stats(), reserve(), purge() and
//   serialize() may run concurrently from any number of threads; the index never starts
//   threads.
//   - search() takes no lock. Link entries are atomics (atomic_ref); a node is fully written
//     before any link to it is published.
//   - Inserts and purges take per-node spin locks, one at a time, each held only while one link
//     list is rewritten.
//   - Epochs (counters striped per thread) tell when a tombstone may join a purge batch (every
//     insert and search that might have seen it live has finished) and when a purged slot may
//     be reused (every operation that might still hold it has finished).
//   - A purge runs on the thread of the remove() or insert() that reaches the threshold (or of
//     purge()), alongside inserts and searches; one at a time. It scans every slot
//     (about 10 ms per 100K nodes) and re-selects neighbours for each node that linked to the
//     batch (about 0.2 ms per purged node at M=16): latency for that one call only.
//   - serialize() waits for running inserts, removes and purges and holds new ones off while
//     it copies (a writer-preferring gate); searches continue meanwhile.
//   A filter runs on the searching thread, under no lock of the index.
//
// Errors: HnswConfig::validate() and deserialize() return a Status; everything else fails only
// by std::bad_alloc (a failed insert may leave its node partly linked, never a lock held).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/status.hpp"

namespace engram::engine {

namespace hnsw_detail {
struct Candidate;
struct Query;
struct Scratch;
struct Node;
struct Chunk;
class LabelMap;
class Epochs;
class Gate;
} // namespace hnsw_detail

// The owner's float rows, when it keeps them (see "Row lifetime" above): row(context, label)
// returns the dim floats (L2-normalised) that were passed to insert() for `label`, at least
// 16-byte aligned. Called from searching threads concurrently, under no lock of the index.
struct HnswRowSource {
    const float* (*row)(const void* context, std::uint32_t label) noexcept = nullptr;
    const void* context = nullptr;

    bool set() const noexcept { return row != nullptr; }
};

struct HnswConfig {
    // Dimension of the vectors, 1..65536.
    // Default: none (must be set).
    std::size_t dim = 0;
    // Links per node on the upper levels; level 0 keeps 2*m. More links raise recall at a given
    // ef and cost memory and build time. 2..256.
    // Default: 16
    std::size_t m = 16;
    // Beam width while inserting: larger builds a better graph, more slowly. 1..65536 (values
    // below m behave as m).
    // Default: 200
    std::size_t ef_construction = 200;
    // Seed of the level generator.
    // Default: 42
    std::uint64_t seed = 42;
    // true: the remove() or insert() that brings the tombstones to the purge threshold runs the
    // purge on its own thread. false: only purge() and purge_if_due() purge (an owner that
    // purges on a background thread, so that its writers never pay for one).
    // Default: true
    bool auto_purge = true;
    // Where the re-rank reads float rows. Set: the owner's rows (the index keeps no float copy;
    // its owner keeps the row lifetime rule above). Unset: the index copies every inserted vector
    // into its own rows (dim * 4 bytes per node, padded to 64).
    // Default: unset
    HnswRowSource rows;

    Status validate() const;
};

struct HnswStats {
    std::size_t live = 0;       // searchable nodes (= size())
    std::size_t tombstones = 0; // removed, still in the graph, waiting for a purge
    std::size_t free_slots = 0; // purged slots awaiting reuse (some still in their grace period)
    std::size_t slots = 0;      // slots ever allocated (the high-water mark)
    std::size_t max_level = 0;  // level of the entry point
};

// Resident bytes of an index, by part (capacity of what is allocated, not only what is used).
struct HnswMemory {
    std::size_t links = 0;  // level-0 link lists, upper-level lists, node records
    std::size_t codes = 0;  // int8 code rows and their scales and states
    std::size_t rows = 0;   // float rows (0 when the owner keeps them)
    std::size_t labels = 0; // the label -> slot map (estimated from its entry count)
    std::size_t total() const noexcept { return links + codes + rows + labels; }
};

class HnswIndex {
public:
    // The config must be valid (validate() is ok); an invalid one is a bug (assert) and is
    // clamped into range in release builds.
    explicit HnswIndex(const HnswConfig& config);
    ~HnswIndex();
    HnswIndex(const HnswIndex&) = delete;
    HnswIndex& operator=(const HnswIndex&) = delete;

    const HnswConfig& config() const noexcept { return config_; }

    // Adds `unit` (dim floats, L2-normalised; copied) under `label`; it is searchable when this
    // returns (possibly a little before). A label that is present is replaced: its old node is
    // tombstoned. A removed label may be inserted again. May run a purge. Thread-safe.
    void insert(std::uint32_t label, const float* unit);
    // Tombstones `label`: no search that starts after this returns finds it. false when absent.
    // May run a purge on the calling thread. Thread-safe.
    bool remove(std::uint32_t label);
    // The k best live nodes by cosine (exact float re-rank of the ef best found by the int8
    // walk), best first, ties by smaller label. ef = max(ef, k); k has no limit. A filter, when
    // given, is asked (with the label) during the walk: rejected nodes are still walked through
    // but never returned, so k results come back whenever k accepted nodes are reachable; the
    // walk goes on until it has ef accepted nodes or runs out, so a very selective filter costs
    // up to a scan of the graph. Thread-safe; once the thread's scratch is warm, the returned
    // vector is the only allocation.
    std::vector<std::pair<std::uint32_t, float>>
    search(const float* unit, std::size_t k, std::size_t ef,
           const std::function<bool(std::uint32_t)>* filter = nullptr) const;
    // search() into *out (cleared first): with a warm thread scratch and a reused `out`, no
    // allocation at all.
    void search_into(const float* unit, std::size_t k, std::size_t ef,
                     const std::function<bool(std::uint32_t)>* filter,
                     std::vector<std::pair<std::uint32_t, float>>* out) const;

    // Allocates the storage of the first `slots` slots now, so inserts up to there allocate no
    // chunk (bulk loads; or to keep chunk allocation on one thread). Thread-safe.
    void reserve(std::size_t slots);

    std::size_t size() const noexcept;
    bool contains(std::uint32_t label) const;
    // True when `label` is live and its node was built from exactly `unit` (dim floats), e.g. to
    // tell which nodes of a loaded snapshot still match the data: its own float row compared
    // byte for byte, or, when the owner keeps the rows, its int8 code and scale compared with
    // those of `unit` (the node walks and links exactly as one built from `unit` would, and the
    // re-rank reads the owner's row). Not for concurrent use with writers.
    bool holds(std::uint32_t label, const float* unit) const;
    HnswStats stats() const;
    HnswMemory memory() const;

    // Returns once every search that was running when it was called has finished (searches
    // that start later are not waited for). An owner that keeps the rows calls it after
    // remove(label) and before it rewrites or reuses label's row (see "Row lifetime").
    // Thread-safe; never call it from inside a search's filter.
    void wait_for_searches() const;

    // Purges the tombstones now, whatever the threshold; returns how many. Tombstones that a
    // running operation may still have seen live are waited for briefly (the epoch advances as
    // operations finish) and are otherwise left to the next purge. Thread-safe.
    std::size_t purge();
    // Purges when the tombstones have reached the threshold (the auto_purge rule), else does
    // nothing; returns how many were purged. Thread-safe.
    std::size_t purge_if_due();
    bool purge_due() const noexcept;

    // Appends a versioned, checksummed snapshot (little-endian) to *out: the graph, float
    // vectors, tombstones and free slots, so the copy answers every search exactly as this index
    // does. When the owner keeps the rows, live nodes are written with the owner's rows and
    // tombstones with their dequantised codes (re-quantised on load to the same codes; the scale
    // may move by an ulp, which only a walk through a tombstone can notice).
    // Waits for running inserts/removes and blocks new ones while it copies.
    void serialize(std::string* out) const;
    // The same bytes, streamed: sink() gets them in order, in pieces of about `piece` bytes
    // (never a copy of the whole snapshot in memory).
    void serialize_to(const std::function<void(std::string_view)>& sink, std::size_t piece) const;
    // Rebuilds an index from serialize()'s bytes. config.dim and config.m must match the
    // snapshot's; ef_construction, seed and rows are taken from config (with rows set, the
    // snapshot's vectors only give the codes and are not kept: the owner's rows must hold the
    // same vectors under the same labels before the index is searched). A truncated, corrupted or
    // inconsistent snapshot returns kCorruption; a config mismatch kInvalidArgument. Never reads
    // outside `bytes`.
    static Result<std::unique_ptr<HnswIndex>> deserialize(std::string_view bytes,
                                                          const HnswConfig& config);

    // Name of the int8 kernel in use ("avx512bw", ...), for diagnostics.
    static const char* kernel_name() noexcept;

private:
    using Candidate = hnsw_detail::Candidate;
    using Query = hnsw_detail::Query;
    using Scratch = hnsw_detail::Scratch;
    using Node = hnsw_detail::Node;
    using Chunk = hnsw_detail::Chunk;

    // -- storage (inline, defined in hnsw_internal.hpp for the files of the index)
    // --------------------------------------------------------------------------------
    inline Node& node(std::uint32_t slot) const noexcept;
    inline const std::int8_t* codes(std::uint32_t slot) const noexcept;
    inline float inv_scale(std::uint32_t slot) const noexcept;
    inline bool allocated(std::uint32_t slot) const noexcept;     // its chunk exists
    inline std::uint8_t state(std::uint32_t slot) const noexcept; // kFree / kLive / kRemoved
    inline void set_state(std::uint32_t slot, std::uint8_t state) noexcept;
    // The float row of a node: the owner's (by label) or the index's own.
    inline const float* row(std::uint32_t slot) const noexcept;
    // The link list of slot at a level: [0] = count, then the ids.
    inline std::uint32_t* links(std::uint32_t slot, std::size_t level) const noexcept;
    std::size_t max_links(std::size_t level) const noexcept { return level == 0 ? m0_ : m_; }
    std::uint32_t allocate_slot();
    void ensure_chunk(std::size_t chunk);
    void init_node(std::uint32_t slot, std::uint32_t label, std::uint8_t level, const float* unit);
    std::uint8_t random_level();

    // -- graph ----------------------------------------------------------------------------------
    inline float score(const Query& q, std::uint32_t slot) const noexcept;
    inline float score(std::uint32_t a, std::uint32_t b) const noexcept;
    void greedy(const Query& q, std::size_t level, Candidate* cur) const;
    // Beam search at one level from s.entries: the ef best live nodes that pass the filter (if
    // any) end in s.results (a heap, worst on top).
    void search_level(const Query& q, std::size_t ef, std::size_t level,
                      const std::function<bool(std::uint32_t)>* filter, Scratch& s) const;
    // Paper's Algorithm 4 on candidates sorted best first (scores relative to `base`); keeps at
    // most `limit` of them in place.
    void select_neighbors(std::vector<Candidate>& sorted, std::size_t limit) const;
    void write_links(std::uint32_t slot, std::size_t level, const std::vector<Candidate>& list);
    void link_to(std::uint32_t from, std::uint32_t to, std::size_t level, Scratch& s);
    void insert_slot(std::uint32_t slot, std::uint8_t level, Scratch& s);
    void mark_removed(std::uint32_t slot);
    std::size_t maybe_purge();
    std::size_t purge_batch(bool force);
    void adopt_orphans(std::uint32_t slots, std::uint32_t entry, Scratch& s);
    void repair(std::uint32_t slot, std::size_t level, const std::vector<std::uint8_t>& in_batch,
                Scratch& s);

    class NodeLock;
    void lock_node(std::uint32_t slot) const noexcept;
    void unlock_node(std::uint32_t slot) const noexcept;

    HnswConfig config_;
    std::size_t m_ = 0;            // max links, upper levels
    std::size_t m0_ = 0;           // max links, level 0
    std::size_t ef_build_ = 0;     // max(ef_construction, m)
    double level_mult_ = 0;        // 1 / ln(m)
    std::size_t code_len_ = 0;     // bytes per code row (dim rounded up to 64)
    std::size_t row_stride_ = 0;   // floats per float row (dim rounded up to 16)
    std::size_t link0_stride_ = 0; // uint32 per level-0 list (1 + 2m rounded up to 16)
    std::int32_t (*dot_i8_)(const std::int8_t*, const std::int8_t*, std::size_t) = nullptr;

    std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
    std::mutex grow_mutex_;
    std::atomic<std::uint32_t> next_slot_{0};
    std::atomic<std::uint64_t> level_counter_{0};

    // Entry point: slot | level << 32, or kNoEntry.
    std::atomic<std::uint64_t> entry_;
    std::mutex entry_mutex_;

    std::unique_ptr<hnsw_detail::LabelMap> labels_;
    std::unique_ptr<hnsw_detail::Epochs> epochs_;
    // Inserts, removes and purges pass it shared; serialize() exclusive (writer-preferring).
    std::unique_ptr<hnsw_detail::Gate> gate_;
    std::atomic<std::size_t> live_{0};

    // Tombstones waiting for a purge and purged slots waiting for reuse, each with the epoch tag
    // of its removal / purge, oldest first (limbo from limbo_head_).
    mutable std::mutex free_mutex_;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> pending_;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> limbo_;
    std::size_t limbo_head_ = 0;
    std::atomic<std::size_t> pending_count_{0};
    std::atomic<std::size_t> limbo_count_{0};
    std::mutex purge_mutex_; // one purge at a time
};

} // namespace engram::engine
