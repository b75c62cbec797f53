// EdgeGraph encoding and deterministic level-synchronous spreading (contract in spread.hpp).
#include "engine/spread.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/batch/executor.hpp"

namespace engram::engine {

// ---- EdgeGraph ------------------------------------------------------------------------------

namespace {

std::size_t varint_size(std::uint32_t v) noexcept {
    std::size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        ++n;
    }
    return n;
}

unsigned char* put_varint(unsigned char* p, std::uint32_t v) noexcept {
    while (v >= 0x80u) {
        *p++ = static_cast<unsigned char>((v & 0x7Fu) | 0x80u);
        v >>= 7;
    }
    *p++ = static_cast<unsigned char>(v);
    return p;
}

std::string edge_name(std::uint32_t src, std::uint32_t dst) {
    return std::to_string(src) + " -> " + std::to_string(dst);
}

} // namespace

Result<EdgeGraph> EdgeGraph::build(std::span<const Edge> edges, std::uint32_t num_nodes) {
    std::uint32_t n = num_nodes;
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const Edge& e = edges[i];
        if (!std::isfinite(e.weight)) {
            return Status::invalid("edge " + std::to_string(i) + " (" + edge_name(e.src, e.dst) +
                                   "): weight is not finite");
        }
        if (e.src == kMaxNodes || e.dst == kMaxNodes) {
            return Status::invalid("edge " + std::to_string(i) + " (" + edge_name(e.src, e.dst) +
                                   "): node index out of range");
        }
        n = std::max({n, e.src + 1, e.dst + 1});
    }
    std::uint32_t sources = 0;
    for (const Edge& e : edges) {
        sources = std::max(sources, e.src + 1);
    }
    EdgeGraph g(n);
    g.nodes_.resize(sources);
    // Counting sort by source (stable: input order kept per source).
    std::vector<std::size_t> start(static_cast<std::size_t>(sources) + 1, 0);
    for (const Edge& e : edges) {
        ++start[e.src + 1];
    }
    for (std::size_t i = 1; i < start.size(); ++i) {
        start[i] += start[i - 1];
    }
    std::vector<Out> by_src(edges.size());
    {
        std::vector<std::size_t> fill(start.begin(), start.end() - 1);
        for (const Edge& e : edges) {
            by_src[fill[e.src]++] = {e.dst, e.weight};
        }
    }
    // Per node: stable sort by dst, keep the last of equal dsts, then encode.
    std::size_t total_blocks = 0;
    std::vector<Out> out;
    for (std::uint32_t v = 0; v < sources; ++v) {
        out.assign(by_src.begin() + static_cast<std::ptrdiff_t>(start[v]),
                   by_src.begin() + static_cast<std::ptrdiff_t>(start[v + 1]));
        std::stable_sort(out.begin(), out.end(),
                         [](const Out& a, const Out& b) { return a.dst < b.dst; });
        std::size_t w = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (w > 0 && out[w - 1].dst == out[i].dst) {
                out[w - 1] = out[i]; // last wins
            } else {
                out[w++] = out[i];
            }
        }
        out.resize(w);
        const std::size_t nb = count_blocks(out);
        g.nodes_[v] = {static_cast<std::uint32_t>(total_blocks), static_cast<std::uint32_t>(nb),
                       static_cast<std::uint32_t>(nb), static_cast<std::uint32_t>(out.size()),
                       max_weight_of(out)};
        total_blocks += nb;
        g.num_edges_ += out.size();
        g.blocks_.resize(total_blocks);
        write_blocks(out, g.blocks_.data() + g.nodes_[v].first);
    }
    g.blocks_.shrink_to_fit();
    return g;
}

std::size_t EdgeGraph::count_blocks(const std::vector<Out>& out) {
    std::size_t blocks = 0;
    std::size_t i = 0;
    while (i < out.size()) {
        std::size_t used = kHeaderBytes + 4;
        std::size_t k = 1;
        while (i + k < out.size() && k < kMaxEdgesPerBlock) {
            const std::size_t add = 4 + varint_size(out[i + k].dst - out[i + k - 1].dst);
            if (used + add > kBlockBytes) {
                break;
            }
            used += add;
            ++k;
        }
        i += k;
        ++blocks;
    }
    return blocks;
}

void EdgeGraph::write_blocks(const std::vector<Out>& out, Block* dst) {
    std::size_t i = 0;
    while (i < out.size()) {
        std::size_t used = kHeaderBytes + 4;
        std::size_t k = 1;
        while (i + k < out.size() && k < kMaxEdgesPerBlock) {
            const std::size_t add = 4 + varint_size(out[i + k].dst - out[i + k - 1].dst);
            if (used + add > kBlockBytes) {
                break;
            }
            used += add;
            ++k;
        }
        unsigned char* p = dst->bytes;
        std::memset(p, 0, kBlockBytes);
        p[0] = static_cast<unsigned char>(k);
        std::memcpy(p + 1, &out[i].dst, 4);
        unsigned char* w = p + kHeaderBytes;
        for (std::size_t j = 0; j < k; ++j) {
            std::memcpy(w + 4 * j, &out[i + j].weight, 4);
        }
        unsigned char* v = w + 4 * k;
        for (std::size_t j = 1; j < k; ++j) {
            v = put_varint(v, out[i + j].dst - out[i + j - 1].dst);
        }
        i += k;
        ++dst;
    }
}

float EdgeGraph::max_weight_of(const std::vector<Out>& out) {
    float m = -std::numeric_limits<float>::infinity();
    for (const Out& o : out) {
        m = std::max(m, o.weight);
    }
    return m;
}

std::vector<EdgeGraph::Out> EdgeGraph::decode(std::uint32_t node) const {
    std::vector<Out> out;
    out.reserve(out_degree(node));
    for_each_out(node, [&](std::uint32_t d, float w) { out.push_back({d, w}); });
    return out;
}

void EdgeGraph::encode(std::uint32_t node, const std::vector<Out>& out) {
    NodeRun& run = nodes_[node];
    const std::size_t nb = count_blocks(out);
    num_edges_ = num_edges_ - run.degree + out.size();
    run.max_weight = max_weight_of(out);
    if (nb <= run.capacity) {
        garbage_ += run.blocks;
        garbage_ -= nb;
        run.blocks = static_cast<std::uint32_t>(nb);
        run.degree = static_cast<std::uint32_t>(out.size());
        write_blocks(out, blocks_.data() + run.first);
        return;
    }
    garbage_ += run.blocks; // its unused reserve (capacity − blocks) is counted already
    // Room to grow without moving again on the next few inserts.
    const std::size_t cap = nb + nb / 2 + 1;
    if (blocks_.size() + cap > std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("EdgeGraph: block arena full");
    }
    run.first = static_cast<std::uint32_t>(blocks_.size());
    run.capacity = static_cast<std::uint32_t>(cap);
    run.blocks = static_cast<std::uint32_t>(nb);
    run.degree = static_cast<std::uint32_t>(out.size());
    blocks_.resize(blocks_.size() + cap);
    garbage_ += cap - nb;
    write_blocks(out, blocks_.data() + run.first);
    if (garbage_ > 1024 && garbage_ * 2 > blocks_.size()) {
        compact();
    }
}

void EdgeGraph::compact() {
    std::vector<Block> fresh;
    std::size_t used = 0;
    for (const NodeRun& r : nodes_) {
        used += r.blocks;
    }
    fresh.resize(used);
    std::size_t at = 0;
    for (NodeRun& r : nodes_) {
        std::copy_n(blocks_.begin() + r.first, r.blocks,
                    fresh.begin() + static_cast<std::ptrdiff_t>(at));
        r.first = static_cast<std::uint32_t>(at);
        r.capacity = r.blocks;
        at += r.blocks;
    }
    blocks_ = std::move(fresh);
    garbage_ = 0;
}

Status EdgeGraph::add_edge(std::uint32_t src, std::uint32_t dst, float weight) {
    if (!std::isfinite(weight)) {
        return Status::invalid("edge " + edge_name(src, dst) + ": weight is not finite");
    }
    if (src == kMaxNodes || dst == kMaxNodes) {
        return Status::invalid("edge " + edge_name(src, dst) + ": node index out of range");
    }
    reserve_nodes(std::max(src, dst) + 1);
    if (src >= nodes_.size()) {
        nodes_.resize(static_cast<std::size_t>(src) + 1);
    }
    std::vector<Out> out = decode(src);
    auto it = std::lower_bound(out.begin(), out.end(), dst,
                               [](const Out& o, std::uint32_t d) { return o.dst < d; });
    if (it != out.end() && it->dst == dst) {
        it->weight = weight;
    } else {
        out.insert(it, Out{dst, weight});
    }
    encode(src, out);
    return Status::ok();
}

bool EdgeGraph::remove_edge(std::uint32_t src, std::uint32_t dst) {
    if (src >= nodes_.size()) {
        return false;
    }
    std::vector<Out> out = decode(src);
    auto it = std::lower_bound(out.begin(), out.end(), dst,
                               [](const Out& o, std::uint32_t d) { return o.dst < d; });
    if (it == out.end() || it->dst != dst) {
        return false;
    }
    out.erase(it);
    encode(src, out);
    return true;
}

void EdgeGraph::clear_out_edges(std::uint32_t node) {
    if (node < nodes_.size() && nodes_[node].degree > 0) {
        encode(node, {});
    }
}

std::optional<float> EdgeGraph::weight(std::uint32_t src, std::uint32_t dst) const {
    std::optional<float> found;
    for_each_out(src, [&](std::uint32_t d, float w) {
        if (d == dst) {
            found = w;
        }
    });
    return found;
}

std::size_t EdgeGraph::memory_bytes() const noexcept {
    return blocks_.capacity() * sizeof(Block) + nodes_.capacity() * sizeof(NodeRun);
}

// ---- spreading ------------------------------------------------------------------------------

namespace {

constexpr double kMinSeed = 0.01;
constexpr double kDecayRate = 0.7;
constexpr double kNearThreshold = 0.05; // levels 1–2
constexpr double kFarThreshold = 0.1;   // levels >= 3
constexpr std::uint32_t kUnreached = std::numeric_limits<std::uint32_t>::max();
// A level is expanded in parallel (when there is an arena) from this many out-edges on.
constexpr std::size_t kParallelMinEdges = 1u << 14;
// Frontier chunks hold about this many out-edges; target ranges are this many per level.
constexpr std::size_t kChunkEdges = 4096;
constexpr std::size_t kRanges = 64;

struct Entry {
    std::uint32_t node;
    double delta;
};

struct Contribution {
    std::uint32_t target;
    double c;
};

// Dense per-node state of one spread, reset through `reached` (not by clearing n entries).
struct Scratch {
    std::vector<double> act;
    std::vector<double> acc;          // this level's sum per target
    std::vector<std::uint32_t> depth; // kUnreached when not reached
    std::vector<std::uint32_t> stamp; // == epoch: acc holds this level's value
    std::uint32_t epoch = 0;
    std::vector<std::uint32_t> reached;
    bool in_use = false;

    void ensure(std::size_t n) {
        if (act.size() < n) {
            act.resize(n, 0.0);
            acc.resize(n, 0.0);
            depth.resize(n, kUnreached);
            stamp.resize(n, 0);
        }
    }
    std::uint32_t next_epoch() {
        if (++epoch == 0) {
            std::fill(stamp.begin(), stamp.end(), 0);
            epoch = 1;
        }
        return epoch;
    }
    void reset() {
        for (std::uint32_t v : reached) {
            act[v] = 0.0;
            depth[v] = kUnreached;
        }
        reached.clear();
    }
};

double level_threshold(std::size_t level, const std::optional<double>& thr_override) {
    if (thr_override) {
        return *thr_override;
    }
    return level <= 2 ? kNearThreshold : kFarThreshold;
}

double depth_factor(std::uint32_t depth) {
    if (depth == 0) {
        return 1.0;
    }
    return depth <= 2 ? 0.95 : 0.9;
}

// Adds c to target's level sum (the left fold, in call order).
inline void accumulate(Scratch& s, std::uint32_t epoch, std::uint32_t t, double c,
                       std::vector<std::uint32_t>& touched) {
    if (s.stamp[t] != epoch) {
        s.stamp[t] = epoch;
        s.acc[t] = c; // 0 + c
        touched.push_back(t);
    } else {
        s.acc[t] += c;
    }
}

// Applies the level sums of `touched` (sorted) at `level`; appends the next frontier and newly
// reached nodes.
void finalize(Scratch& s, std::span<const std::uint32_t> touched, std::uint32_t level,
              bool expand_next, std::vector<Entry>& next, std::vector<std::uint32_t>& reached) {
    for (std::uint32_t t : touched) {
        const double old = s.act[t];
        const double nw = std::min(1.0, old + s.acc[t]);
        const double inc = nw - old;
        if (s.depth[t] == kUnreached) {
            s.depth[t] = level;
            reached.push_back(t);
        }
        s.act[t] = nw;
        if (inc > 0.0 && expand_next) {
            next.push_back({t, inc});
        }
    }
}

// Emits the contributions of one frontier entry through `emit(target, c)`.
template <typename Emit>
inline void expand(const EdgeGraph& g, const Entry& e, double decay, double thr, Emit&& emit) {
    // Every c is at most Δ × max weight × decay (Δ, decay > 0 and rounding is monotone): when that
    // bound fails the test, so does every edge, and the entry is skipped without decoding.
    const double bound = e.delta * static_cast<double>(g.max_out_weight(e.node)) * decay;
    if (!(bound >= thr && bound > 0.0)) {
        return;
    }
    g.for_each_out(e.node, [&](std::uint32_t dst, float w) {
        const double c = e.delta * static_cast<double>(w) * decay;
        if (c >= thr && c > 0.0) {
            emit(dst, c);
        }
    });
}

void level_sequential(const EdgeGraph& g, Scratch& s, const std::vector<Entry>& frontier,
                      double decay, double thr, std::uint32_t level, bool expand_next,
                      std::vector<Entry>& next) {
    const std::uint32_t epoch = s.next_epoch();
    std::vector<std::uint32_t> touched;
    for (const Entry& e : frontier) {
        expand(g, e, decay, thr,
               [&](std::uint32_t t, double c) { accumulate(s, epoch, t, c, touched); });
    }
    std::sort(touched.begin(), touched.end());
    finalize(s, touched, level, expand_next, next, s.reached);
}

struct Chunk {
    std::size_t begin = 0; // frontier range
    std::size_t end = 0;
    std::vector<Contribution> items; // bucketed by target range, emission order kept per range
    std::array<std::uint32_t, kRanges + 1> offsets{};
};

void level_parallel(const EdgeGraph& g, Scratch& s, const std::vector<Entry>& frontier,
                    double decay, double thr, std::uint32_t level, bool expand_next,
                    std::vector<Entry>& next, tbb::task_arena& arena) {
    // Chunks and ranges depend on the data only (never on the thread count).
    std::vector<Chunk> chunks;
    {
        std::size_t b = 0;
        std::size_t edges = 0;
        for (std::size_t i = 0; i < frontier.size(); ++i) {
            edges += g.out_degree(frontier[i].node);
            if (edges >= kChunkEdges || i + 1 == frontier.size()) {
                chunks.push_back({});
                chunks.back().begin = b;
                chunks.back().end = i + 1;
                b = i + 1;
                edges = 0;
            }
        }
    }
    const std::size_t n = s.act.size();
    const std::size_t width = (n + kRanges - 1) / kRanges;
    const std::uint32_t epoch = s.next_epoch();
    std::array<std::vector<std::uint32_t>, kRanges> touched;
    std::array<std::vector<Entry>, kRanges> next_r;
    std::array<std::vector<std::uint32_t>, kRanges> reached_r;
    // 1. Each chunk writes its own slot: contributions bucketed (stably) by target range.
    parallel_indices(arena, chunks.size(), [&](std::size_t ci) {
        Chunk& ch = chunks[ci];
        std::vector<Contribution> raw;
        for (std::size_t i = ch.begin; i < ch.end; ++i) {
            expand(g, frontier[i], decay, thr, [&](std::uint32_t t, double c) {
                raw.push_back({t, c});
            });
        }
        std::array<std::uint32_t, kRanges + 1> count{};
        for (const auto& x : raw) {
            ++count[x.target / width + 1];
        }
        for (std::size_t k = 1; k <= kRanges; ++k) {
            count[k] += count[k - 1];
        }
        ch.offsets = count;
        ch.items.resize(raw.size());
        for (const auto& x : raw) {
            ch.items[count[x.target / width]++] = x;
        }
    });
    // 2. Each target range folds its buckets in chunk order (= ascending source order) and
    //    applies them; ranges touch disjoint nodes.
    parallel_indices(arena, kRanges, [&](std::size_t k) {
        for (const Chunk& ch : chunks) {
            for (std::uint32_t i = ch.offsets[k]; i < ch.offsets[k + 1]; ++i) {
                accumulate(s, epoch, ch.items[i].target, ch.items[i].c, touched[k]);
            }
        }
        std::sort(touched[k].begin(), touched[k].end());
        finalize(s, touched[k], level, expand_next, next_r[k], reached_r[k]);
    });
    for (std::size_t k = 0; k < kRanges; ++k) {
        next.insert(next.end(), next_r[k].begin(), next_r[k].end());
        s.reached.insert(s.reached.end(), reached_r[k].begin(), reached_r[k].end());
    }
}

std::vector<SpreadResult> spread_with(Scratch& s, const EdgeGraph& g, std::span<const Seed> seeds,
                                      std::size_t max_depth, std::optional<double> thr_override,
                                      tbb::task_arena* arena) {
    if (thr_override && std::isnan(*thr_override)) {
        thr_override.reset();
    } else if (thr_override) {
        thr_override = std::max(0.0, *thr_override);
    }
    std::size_t n = g.num_nodes();
    for (const Seed& sd : seeds) {
        n = std::max<std::size_t>(n, static_cast<std::size_t>(sd.node) + 1);
    }
    s.ensure(n);
    // Level 0: seeds (ignored below 0.01, clamped to 1, duplicates summed and capped).
    for (const Seed& sd : seeds) {
        if (!(sd.activation >= kMinSeed)) {
            continue;
        }
        const double a = std::min(1.0, sd.activation);
        if (s.depth[sd.node] == kUnreached) {
            s.depth[sd.node] = 0;
            s.act[sd.node] = a;
            s.reached.push_back(sd.node);
        } else {
            s.act[sd.node] = std::min(1.0, s.act[sd.node] + a);
        }
    }
    std::vector<Entry> frontier;
    if (max_depth > 0) {
        std::vector<std::uint32_t> seeds_sorted = s.reached;
        std::sort(seeds_sorted.begin(), seeds_sorted.end());
        for (std::uint32_t v : seeds_sorted) {
            frontier.push_back({v, s.act[v]});
        }
    }
    std::vector<Entry> next;
    for (std::size_t d = 0; !frontier.empty(); ++d) {
        const std::size_t level = d + 1;
        const double decay = std::exp(-kDecayRate * static_cast<double>(level));
        const double thr = level_threshold(level, thr_override);
        const bool expand_next = level < max_depth;
        next.clear();
        std::size_t work = 0;
        if (arena != nullptr) {
            for (const Entry& e : frontier) {
                work += g.out_degree(e.node);
            }
        }
        if (arena != nullptr && work >= kParallelMinEdges) {
            level_parallel(g, s, frontier, decay, thr, static_cast<std::uint32_t>(level),
                           expand_next, next, *arena);
        } else {
            level_sequential(g, s, frontier, decay, thr, static_cast<std::uint32_t>(level),
                             expand_next, next);
        }
        std::swap(frontier, next);
    }
    std::vector<SpreadResult> out;
    out.reserve(s.reached.size());
    for (std::uint32_t v : s.reached) {
        out.push_back({v, s.act[v], s.depth[v], s.act[v] * depth_factor(s.depth[v])});
    }
    std::sort(out.begin(), out.end(), [](const SpreadResult& a, const SpreadResult& b) {
        return a.activation != b.activation ? a.activation > b.activation : a.node < b.node;
    });
    s.reset();
    return out;
}

} // namespace

std::vector<SpreadResult> spread(const EdgeGraph& graph, std::span<const Seed> seeds,
                                 std::size_t max_depth, std::optional<double> threshold_override,
                                 tbb::task_arena* arena) {
    // Reuse this thread's scratch unless a spread on this thread is already using it (a nested
    // call from a task stolen while waiting inside the arena).
    thread_local Scratch cached;
    if (cached.in_use) {
        Scratch local;
        return spread_with(local, graph, seeds, max_depth, threshold_override, arena);
    }
    struct Guard {
        Scratch& s;
        bool done = false;
        explicit Guard(Scratch& x) : s(x) { s.in_use = true; }
        ~Guard() {
            if (!done) {
                s = Scratch(); // an exception left it half updated: start afresh
            }
            s.in_use = false;
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
    } guard(cached);
    auto out = spread_with(cached, graph, seeds, max_depth, threshold_override, arena);
    guard.done = true;
    return out;
}

std::vector<std::vector<SpreadResult>>
spread_batch(const EdgeGraph& graph, std::span<const std::vector<Seed>> sets, std::size_t max_depth,
             std::optional<double> threshold_override, tbb::task_arena& arena) {
    std::vector<std::vector<SpreadResult>> out(sets.size());
    parallel_indices(arena, sets.size(), [&](std::size_t i) {
        out[i] = spread(graph, sets[i], max_depth, threshold_override, nullptr);
    });
    return out;
}

} // namespace engram::engine
