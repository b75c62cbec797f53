#pragma once
// Cue-based recall (DESIGN §2) over a read-only view of a store's memories.
//
// Scoring, per cue kind (the threshold is always the cue's own, a value in [0, 1]):
//   embedding  score = max(0, cos(cue, memory)); a memory without a vector (unit == nullptr)
//              scores 0. The cue vector is normalised here; a zero cue vector scores 0 everywhere.
//   context    score = criteria met / criteria given, where the criteria are
//                - the time range (one criterion when from and/or to is given; inclusive,
//                  a missing bound is open): from <= occurred_at <= to;
//                - the location (when has_location or location is non-empty): ASCII-case-
//                  insensitive substring either way (memory location contains the cue's or the
//                  cue's contains the memory's); a memory without a location never matches.
//              No criteria, or from > to, is an error.
//   temporal   kBefore: occurred_at < to; kAfter: occurred_at > from; kBetween:
//              from <= occurred_at <= to (from > to is an error); kRecent: occurred_at >=
//              now - recent_seconds (recent_seconds >= 0). Every match scores the cue threshold.
//   semantic   id == query (exact) → 1.0; lower(what) contains lower(query) → 1.0;
//              lower(query) contains lower(what), what non-empty → 0.7; otherwise
//              0.5 × shared / query words, where words are maximal runs of ASCII letters and
//              digits and bytes >= 0x80 (so UTF-8 words stay whole), compared after ASCII
//              lowering, and "shared" counts each query word occurrence found among the words of
//              what. "lower" is ASCII lowering. An empty query is an error.
// A memory is kept when its score >= threshold (so threshold 0 keeps every considered memory).
// Cold memories (hot == false) are considered only when cue.include_cold.
//
// Temporal boost, after scoring: take the snapshot S of the results with confidence >= 0.7, in
// memory-index order (a cold result of an include_cold cue can be a source). For each source s
// in S, in that order, and each other hot memory t with |Δt| = |occurred_at(t) −
// occurred_at(s)| <= 3600 s (finite times only):
//   boost = (1 − |Δt|/3600) × conf(s) × (1 − 0.5·pressure) × 0.3   (conf(s) from the snapshot)
//   - t already a result (also one added by an earlier boost): conf(t) = min(1, conf(t) + boost)
//   - otherwise, when boost > 0.5 × threshold: t becomes a result with confidence = boost.
// Boosts are applied by source order, then by target index (a target is reached at most once
// per source, so this order fixes the result bit for bit). Pressure is clamped to [0, 1].
// Boost cost: O(|S| log |S| + targets × sources read per target), where targets are the hot
// memories within an hour of a source and a target stops reading sources once it reaches 1.
//
// Finally results are sorted by confidence desc (ties: id asc, then index asc) and cut to
// max_results (which must be >= 1).
//
// Two ways in, one scoring code:
//   - a RecallContext: a view of every memory; each cue reads all of them (the reference).
//   - a RecallStore: the memories by number plus indexes that name candidates (a superset of
//     what a rule can match); only candidates are read and scored, with the same code, so the
//     results are the reference's bit for bit — except for embedding cues, whose candidates
//     come from an approximate nearest-neighbour search (RecallStore::nearest): the
//     max(4 × max_results, 64) nearest memories, doubled while the farthest of them still
//     scores >= 0.7 (a boost source), up to kMaxNearest. Where a finder cannot answer (a
//     1-byte query, threshold 0 — which keeps every memory —, a store without that index) the
//     cue reads every memory, as the reference does.
//
// Thread safety: recall() and recall_batch() only read the context or store; the memories (and
// their vectors) must stay alive and unchanged during the call. recall_batch() runs inside the
// caller's arena and returns exactly what recall() returns per cue, at any thread count.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tbb/task_arena.h>

#include "engine/core/episode.hpp"
#include "engine/core/status.hpp"

namespace engram::engine {

// One memory as recall sees it. The views point into the caller's storage.
struct MemoryView {
    std::string_view id;
    std::string_view what;
    std::string_view location;   // empty: no location
    double occurred_at = 0.0;    // unix seconds
    const float* unit = nullptr; // L2-normalised embedding of RecallContext::dim floats, or null
    bool hot = true;
};

struct RecallContext {
    std::span<const MemoryView> memories;
    std::size_t dim = 0;   // length of every unit vector and of embedding cues
    double pressure = 0.0; // hot count / capacity of the store (clamped to [0, 1]; NaN → 0)
    double now = 0.0;      // current unix time, for kRecent
    // Optional precomputed time index: build_time_index(memories). Empty → recall builds one
    // per call when the boost needs it (recall_batch builds it once for all cues). When given it
    // must match `memories` exactly.
    std::span<const std::uint32_t> hot_by_time = {};
};

struct RecallResult {
    std::uint32_t index = 0; // into RecallContext::memories
    double confidence = 0.0;
};

// A store recall reads through indexes. Memories are numbered [0, limit()); the numbers are the
// "memory-index order" above (sources, ties). Numbers below indexed_limit() are covered by the
// finders; numbers from indexed_limit() on (cold memories, say) are read one by one when a cue
// considers them. Each finder appends candidate numbers (duplicates, stale and empty numbers
// allowed) and returns false when it cannot answer (the cue then reads every memory).
class RecallStore {
public:
    virtual ~RecallStore() = default;
    virtual std::uint32_t limit() const = 0;
    virtual std::uint32_t indexed_limit() const { return 0; }
    // The memory numbered i; false when there is none.
    virtual bool get(std::uint32_t i, MemoryView* out) const = 0;
    virtual std::size_t dim() const = 0;
    virtual double pressure() const = 0;
    virtual double now() const = 0;

    // Hot memories with a finite time in [lo, hi], in (time, number) order: the boost's
    // neighbours. fn returns false to stop.
    virtual void visit_hot_by_time(double lo, double hi,
                                   const std::function<bool(std::uint32_t, double)>& fn) const = 0;

    // Memory whose id is `id`.
    virtual bool find_id(std::string_view /*id*/, std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    // Memories whose ASCII-lowered `what` contains / is a substring of / has the word...
    virtual bool what_containing(std::string_view /*lowered*/,
                                 std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    virtual bool what_within(std::string_view /*lowered*/,
                             std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    virtual bool what_with_word(std::string_view /*lowered_word*/,
                                std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    // ... and the same for the location.
    virtual bool location_containing(std::string_view /*lowered*/,
                                     std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    virtual bool location_within(std::string_view /*lowered*/,
                                 std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    // Memories with lo <= occurred_at <= hi (infinite bounds allowed), and an upper bound of
    // their count (SIZE_MAX: unknown).
    virtual bool in_time(double /*lo*/, double /*hi*/, std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
    virtual std::size_t count_in_time(double /*lo*/, double /*hi*/) const { return SIZE_MAX; }
    // Up to k memories nearest to `unit` (approximate; the k best it found).
    virtual bool nearest(const float* /*unit*/, std::size_t /*k*/,
                         std::vector<std::uint32_t>* /*out*/) const {
        return false;
    }
};

// Embedding cues through RecallStore::nearest ask for at most this many memories.
inline constexpr std::size_t kMaxNearest = std::size_t{1} << 16;

// Indices of the hot memories sorted by (occurred_at, index): the temporal boost's neighbour
// index. O(n log n); build once per store version and pass it in RecallContext::hot_by_time.
std::vector<std::uint32_t> build_time_index(std::span<const MemoryView> memories);

// Recall for one cue. Errors (kInvalidArgument, message naming the problem): bad threshold
// (NaN or outside [0, 1]), max_results 0, embedding of the wrong dimension or with NaN/Inf,
// context without criteria or with from > to, temporal between with from > to or a negative
// or non-finite recent_seconds, empty semantic query, non-finite times.
Result<std::vector<RecallResult>> recall(const Cue& cue, const RecallContext& context);

// recall() of every cue, in parallel inside `arena`; one Result per cue, in cue order.
std::vector<Result<std::vector<RecallResult>>>
recall_batch(std::span<const Cue> cues, const RecallContext& context, tbb::task_arena& arena);

// The same through a store's indexes (see RecallStore); RecallResult::index is the memory's
// number in the store.
Result<std::vector<RecallResult>> recall(const Cue& cue, const RecallStore& store);
std::vector<Result<std::vector<RecallResult>>>
recall_batch(std::span<const Cue> cues, const RecallStore& store, tbb::task_arena& arena);

// Cue factories: fill the fields of one kind (the other fields keep their defaults).
Cue embedding_cue(std::vector<float> embedding, double threshold, std::size_t max_results);
Cue context_cue(std::optional<double> from, std::optional<double> to,
                std::optional<std::string> location, double threshold, std::size_t max_results);
Cue temporal_before(double t, double threshold, std::size_t max_results);
Cue temporal_after(double t, double threshold, std::size_t max_results);
Cue temporal_between(double t1, double t2, double threshold, std::size_t max_results);
Cue temporal_recent(double seconds, double threshold, std::size_t max_results);
Cue semantic_cue(std::string query, double threshold, std::size_t max_results);

} // namespace engram::engine
