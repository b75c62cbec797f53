#pragma once
// Activation spreading (DESIGN §2) over a compressed directed weighted graph.
//
// EdgeGraph: out-edges of dense node indices (uint32), sorted by destination, stored in 64-byte
// (cache-line) blocks. A block holds up to kMaxEdgesPerBlock edges of one node:
//   byte  0      edge count k (1..kMaxEdgesPerBlock)
//   bytes 1..4   first destination (uint32, native byte order)
//   bytes 5..    k float32 weights (unaligned), then k−1 LEB128 varint deltas
//                (dst[i] − dst[i−1] >= 1)
// Blocks are filled greedily: a node whose destinations are close together packs up to 12 edges
// per line (5.3 B/edge vs 8 B for a flat (dst, weight) array); on a random 100K-node graph deltas
// take 2–3 bytes, and blocks are per node, so a low-degree node wastes the tail of its last line.
// Weights are kept as float32: no quantisation, the only rounding is the caller's double → float
// (the worked example of DESIGN §2 is reproduced to ~1e-8). Each node owns a contiguous run of
// blocks in one arena; an edit re-encodes that node's run (in place when it fits, else appended;
// the arena is compacted when more than half of it is garbage).
//
// spread(): level-synchronous and deterministic.
//   - Seeds: activations clamped to [0, 1]; seeds below 0.01 (or NaN) are ignored; duplicate seeds
//     are summed (in input order) and capped at 1. Seeds sit at depth 0; a seed index may lie
//     beyond the graph's nodes (it then has no out-edges).
//   - From level d to d+1 every frontier entry (node, Δ) sends c = Δ × w × e^(−0.7·(d+1)) along
//     each out-edge (w as float widened to double; product evaluated left to right). c is dropped
//     when c < threshold(d+1) (levels 1–2: 0.05, ≥ 3: 0.1; threshold_override replaces both) or
//     c <= 0. Per target the kept contributions of the level are summed in ascending source order
//     (a left fold starting from 0), then new = min(1, old + Σc); the increment new − old, when
//     > 0 and d+1 < max_depth, is the target's frontier entry at level d+1. The frontier at each
//     level is in ascending node order; level-0 entries (the seeds) exist when max_depth > 0.
//   - A node's depth is the first level that reached it (seeds: 0). confidence = activation ×
//     (1.0 at depth 0, 0.95 at depth 1–2, 0.9 at ≥ 3).
//   - Results: every reached node, sorted by activation desc, ties node asc.
// With an arena, large levels are expanded in parallel: frontier chunks of fixed size write their
// contributions to disjoint slots, bucketed by fixed target ranges; each target range then folds
// its buckets in chunk order. Chunks and ranges depend only on the data, never on the thread
// count, and the fold order equals the sequential one: results are bit-identical with no arena,
// a 1-thread arena and any other arena.
//
// Memory: spread() keeps dense per-node state (about 24 B × num_nodes) in a per-thread scratch
// that is reused across calls (reset through the nodes it touched, so a call costs what it
// reaches, not num_nodes) and grows to the largest graph seen on that thread.
// Thread safety: const EdgeGraph methods (and spread) may run concurrently; edits need exclusive
// access and no concurrent spread on that graph. Weights may be any finite float (> 1 and < 0
// are allowed; a negative weight's contribution is always dropped).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include <tbb/task_arena.h>

#include "engine/core/status.hpp"

namespace engram::engine {

struct Edge {
    std::uint32_t src = 0;
    std::uint32_t dst = 0;
    float weight = 0.0F;
};

class EdgeGraph {
public:
    static constexpr std::size_t kBlockBytes = 64;
    static constexpr std::size_t kHeaderBytes = 5;
    static constexpr std::size_t kMaxEdgesPerBlock = 12;    // 5 + 12·4 + 11·1 = 64
    static constexpr std::uint32_t kMaxNodes = 0xFFFFFFFFu; // node indices are < kMaxNodes

    struct alignas(kBlockBytes) Block {
        unsigned char bytes[kBlockBytes];
    };

    EdgeGraph() = default;
    explicit EdgeGraph(std::uint32_t num_nodes) : num_nodes_(num_nodes) {}

    // Builds from triples; duplicates of (src, dst) keep the last weight in input order (as
    // add_edge would). num_nodes is raised to cover every index. Errors: a non-finite weight
    // (the message names the edge).
    static Result<EdgeGraph> build(std::span<const Edge> edges, std::uint32_t num_nodes = 0);

    // Adds src → dst or replaces its weight; grows the node count as needed. Re-encodes src's
    // blocks: O(out-degree(src)). Errors: non-finite weight, index kMaxNodes.
    [[nodiscard]] Status add_edge(std::uint32_t src, std::uint32_t dst, float weight);
    // Removes src → dst; false when there was no such edge.
    bool remove_edge(std::uint32_t src, std::uint32_t dst);
    // Removes every out-edge of node.
    void clear_out_edges(std::uint32_t node);
    // Ensures nodes [0, n) exist (num_nodes() >= n).
    void reserve_nodes(std::uint32_t n) noexcept { num_nodes_ = std::max(num_nodes_, n); }

    // One more than the largest node index seen (source, destination or reserved): spread()
    // keeps dense per-node state of this size.
    [[nodiscard]] std::uint32_t num_nodes() const noexcept { return num_nodes_; }
    [[nodiscard]] std::size_t num_edges() const noexcept { return num_edges_; }
    // 64-byte blocks in use (excluding garbage and reserve).
    [[nodiscard]] std::size_t used_blocks() const noexcept { return blocks_.size() - garbage_; }
    [[nodiscard]] std::uint32_t out_degree(std::uint32_t node) const noexcept {
        return node < nodes_.size() ? nodes_[node].degree : 0;
    }
    // The largest out-edge weight of node (−inf without out-edges): lets spread() skip a frontier
    // entry none of whose edges can pass the threshold.
    [[nodiscard]] float max_out_weight(std::uint32_t node) const noexcept {
        return node < nodes_.size() ? nodes_[node].max_weight
                                    : -std::numeric_limits<float>::infinity();
    }
    // The weight of src → dst, if present.
    [[nodiscard]] std::optional<float> weight(std::uint32_t src, std::uint32_t dst) const;
    // Bytes held by blocks and node table (the arena's capacity, garbage included).
    [[nodiscard]] std::size_t memory_bytes() const noexcept;

    // Calls fn(dst, weight) for each out-edge of node in ascending dst order. A node beyond
    // num_nodes() has none.
    template <typename Fn> void for_each_out(std::uint32_t node, Fn&& fn) const {
        if (node >= nodes_.size()) {
            return;
        }
        const NodeRun& run = nodes_[node];
        const Block* b = blocks_.data() + run.first;
        for (std::uint32_t k = 0; k < run.blocks; ++k) {
            const unsigned char* p = b[k].bytes;
            std::uint32_t dst = 0;
            std::memcpy(&dst, p + 1, 4);
            const std::size_t count = p[0];
            const unsigned char* w = p + kHeaderBytes;
            const unsigned char* v = w + 4 * count;
            float wt = 0.0F;
            std::memcpy(&wt, w, 4);
            fn(dst, wt);
            for (std::size_t i = 1; i < count; ++i) {
                std::uint32_t delta = 0;
                unsigned shift = 0;
                unsigned char byte = 0;
                do {
                    byte = *v++;
                    delta |= static_cast<std::uint32_t>(byte & 0x7Fu) << shift;
                    shift += 7;
                } while ((byte & 0x80u) != 0);
                dst += delta;
                std::memcpy(&wt, w + 4 * i, 4);
                fn(dst, wt);
            }
        }
    }

private:
    struct NodeRun {
        std::uint32_t first = 0;    // first block in blocks_
        std::uint32_t blocks = 0;   // blocks in use
        std::uint32_t capacity = 0; // blocks reserved at first
        std::uint32_t degree = 0;
        float max_weight = -std::numeric_limits<float>::infinity(); // over the out-edges
    };
    struct Out {
        std::uint32_t dst;
        float weight;
    };

    [[nodiscard]] std::vector<Out> decode(std::uint32_t node) const;
    // Replaces node's edges with `out` (sorted by dst, unique).
    void encode(std::uint32_t node, const std::vector<Out>& out);
    static std::size_t count_blocks(const std::vector<Out>& out);
    static float max_weight_of(const std::vector<Out>& out);
    static void write_blocks(const std::vector<Out>& out, Block* dst);
    void compact();

    std::vector<NodeRun> nodes_; // covers the sources only
    std::vector<Block> blocks_;
    std::uint32_t num_nodes_ = 0;
    std::size_t garbage_ = 0; // blocks no node uses
    std::size_t num_edges_ = 0;
};

struct Seed {
    std::uint32_t node = 0;
    double activation = 0.0;
};

struct SpreadResult {
    std::uint32_t node = 0;
    double activation = 0.0;
    std::uint32_t depth = 0;
    double confidence = 0.0;
};

inline constexpr std::size_t kDefaultSpreadDepth = 4;

// Spreads from `seeds` (see the header comment). threshold_override (clamped to >= 0; NaN →
// ignored) replaces the per-depth thresholds. With an arena, large levels run in parallel inside
// it; without one, everything runs on the calling thread. Same result either way.
std::vector<SpreadResult> spread(const EdgeGraph& graph, std::span<const Seed> seeds,
                                 std::size_t max_depth = kDefaultSpreadDepth,
                                 std::optional<double> threshold_override = std::nullopt,
                                 tbb::task_arena* arena = nullptr);

// spread() of every seed set, in parallel over sets inside `arena`; results in set order,
// identical to spread() per set.
std::vector<std::vector<SpreadResult>>
spread_batch(const EdgeGraph& graph, std::span<const std::vector<Seed>> sets, std::size_t max_depth,
             std::optional<double> threshold_override, tbb::task_arena& arena);

} // namespace engram::engine
