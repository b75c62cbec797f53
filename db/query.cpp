// Queries over the hot memories: similarity search and recall.
//
// HOW IT WORKS
//   search() merges two parts under the store's shared lock (and no other lock): the graph
//   index's answer (HNSW, beam ef, the filter applied during the walk) and an exact scan of the
//   memories the builder has not indexed yet (the tail list of db/index.cpp, not a walk over
//   the store), so a memory is searchable as soon as its commit returns. The tail is scored
//   with the blocked kernel (dot_block), for up to 32 queries at a time in search_batch(), and
//   the rows that can be in the top k are rescored with the canonical `dot`: single and batch
//   searches report the same scores. Scores are clamped cosines; ties go to the smallest id.
//   Buffers are per thread and reused: a warm search allocates its result only.
//   recall() runs the cues in parallel with engine/recall (DESIGN §2 scores) over RecallSource:
//   the hot slots by number, with the indexes db/index.cpp keeps (words and substrings of what
//   and location, time order) and the graph for embedding cues, so a cue reads its candidates
//   only. Cold memories are read from storage when a cue asks for them (not indexed).
#include "db/shared_store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <span>

#include "db/util.hpp"
#include "engine/batch/executor.hpp"
#include "engine/core/time.hpp"
#include "engine/recall.hpp"
#include "engine/simd/kernels.hpp"
#include "storage/codec.hpp"

namespace engram::db {

namespace {

// Scores a tail row must reach to be rescored: the exact `dot` rescoring decides, so blocked
// kernels (another summation order) only screen, with this margin (far above rounding).
constexpr float kSlack = 1e-3F;
constexpr std::size_t kQueryBlock = 32; // queries scored together against the tail

// Reused per thread (SQL callers and arena workers): a warm search allocates only its result.
struct SearchScratch {
    std::vector<std::uint32_t> pending;           // the unindexed tail, filtered
    std::vector<float> scores;                    // a block of blocked-kernel scores
    std::vector<std::vector<engine::Match>> tail; // per query of a block: tail candidates
    std::vector<engine::Match> found;
};
SearchScratch& scratch() {
    thread_local SearchScratch s;
    return s;
}

// Keeps the candidates of one query that can still be among its k best: those within kSlack of
// the k-th best screening score.
void prune(std::vector<engine::Match>* c, std::size_t k) {
    if (c->size() <= k) {
        return;
    }
    auto by_score = [](const engine::Match& a, const engine::Match& b) {
        return a.score > b.score;
    };
    std::nth_element(c->begin(), c->begin() + static_cast<std::ptrdiff_t>(k - 1), c->end(),
                     by_score);
    const float floor = (*c)[k - 1].score - kSlack;
    c->erase(std::remove_if(c->begin() + static_cast<std::ptrdiff_t>(k), c->end(),
                            [&](const engine::Match& m) { return m.score < floor; }),
             c->end());
}

} // namespace

// The filter of one search call, prepared once (lower-cased location, parsed metadata value).
struct SharedStore::FilterContext {
    const SharedStore* store = nullptr;
    const SearchFilter* filter = nullptr;
    std::string location;
    nlohmann::json wanted;

    bool accept(std::uint32_t slot) const {
        const engine::HotTier& hot = store->memory_->hot();
        const engine::SlotInfo& info = hot.info(slot);
        if (filter->from && info.occurred_at < *filter->from) {
            return false;
        }
        if (filter->to && info.occurred_at > *filter->to) {
            return false;
        }
        if (filter->ids && filter->ids->count(info.id) == 0) {
            return false;
        }
        static const SlotText kNone;
        const SlotText& t = slot < store->texts_.size() ? store->texts_[slot] : kNone;
        if (filter->location &&
            detail::ascii_lower(t.location).find(location) == std::string::npos) {
            return false;
        }
        if (filter->metadata_key) {
            const nlohmann::json m = nlohmann::json::parse(t.metadata, nullptr, false);
            if (!m.is_object() || !m.contains(*filter->metadata_key) ||
                m[*filter->metadata_key] != wanted) {
                return false;
            }
        }
        return true;
    }
};

void SharedStore::score_tail(const float* qs, std::size_t qstride, std::size_t nq,
                             std::span<const std::uint32_t> pending, float threshold, std::size_t k,
                             std::vector<float>* scores, std::vector<engine::Match>* cands) const {
    const engine::HotTier& hot = memory_->hot();
    const engine::simd::KernelTable& kt = engine::simd::kernels();
    const std::size_t dim = hot.dim();
    const float screen = threshold - kSlack;
    const std::size_t keep = std::max<std::size_t>(4 * k, 256);
    for (std::size_t a = 0; a < nq; ++a) {
        cands[a].clear();
    }
    // Runs of consecutive slots inside one hot-tier chunk are contiguous rows: one blocked
    // product per run (a bulk commit's tail is mostly one run per chunk).
    for (std::size_t p = 0; p < pending.size();) {
        const std::uint32_t first = pending[p];
        std::size_t nr = 1;
        while (p + nr < pending.size() && pending[p + nr] == first + nr &&
               (first + nr) % engine::HotTier::kChunkRows != 0 && nr < 256) {
            ++nr;
        }
        scores->resize(nq * nr);
        kt.dot_block(qs, qstride, nq, hot.row(first), hot.stride(), nr, dim, scores->data());
        for (std::size_t a = 0; a < nq; ++a) {
            const float* row = scores->data() + a * nr;
            for (std::size_t r = 0; r < nr; ++r) {
                if (row[r] >= screen) {
                    cands[a].push_back({static_cast<std::uint32_t>(first + r), row[r]});
                }
            }
            if (cands[a].size() > 2 * keep) {
                prune(&cands[a], k);
            }
        }
        p += nr;
    }
    // The survivors are rescored with the canonical kernel (what a single search reports).
    for (std::size_t a = 0; a < nq; ++a) {
        prune(&cands[a], k);
        const float* q = qs + a * qstride;
        std::size_t w = 0;
        for (const engine::Match& m : cands[a]) {
            const float score = std::clamp(kt.dot(q, hot.row(m.slot), dim), -1.0F, 1.0F);
            if (score >= threshold) {
                cands[a][w++] = {m.slot, score};
            }
        }
        cands[a].resize(w);
    }
}

void SharedStore::pending_slots(const FilterContext* fc, std::vector<std::uint32_t>* out) const {
    collect_unindexed(out);
    const engine::HotTier& hot = memory_->hot();
    std::size_t w = 0;
    for (const std::uint32_t slot : *out) {
        if (hot.info(slot).live && (fc == nullptr || fc->accept(slot))) {
            (*out)[w++] = slot;
        }
    }
    out->resize(w);
}

SharedStore::Hits SharedStore::finish_search(const float* unit, std::size_t k, float threshold,
                                             std::size_t ef, const FilterContext* fc,
                                             std::vector<engine::Match>* found) const {
    const engine::HotTier& hot = memory_->hot();
    // Graph part. The filter is a pointer-sized capture: no allocation for the std::function.
    std::function<bool(std::uint32_t)> accept;
    if (fc != nullptr) {
        accept = [fc](std::uint32_t slot) { return fc->accept(slot); };
    }
    thread_local std::vector<std::pair<std::uint32_t, float>> graph;
    index_->search_into(unit, k, ef, fc != nullptr ? &accept : nullptr, &graph);
    for (const auto& [slot, raw] : graph) {
        const float score = std::clamp(raw, -1.0F, 1.0F);
        if (score >= threshold) {
            found->push_back({slot, score});
        }
    }
    // A slot the builder is indexing right now can come from both parts: keep it once.
    std::sort(found->begin(), found->end(), [](const engine::Match& a, const engine::Match& b) {
        return a.slot != b.slot ? a.slot < b.slot : a.score > b.score;
    });
    found->erase(std::unique(found->begin(), found->end(),
                             [](const engine::Match& a, const engine::Match& b) {
                                 return a.slot == b.slot;
                             }),
                 found->end());
    auto better = [&](const engine::Match& a, const engine::Match& b) {
        if (a.score != b.score) {
            return a.score > b.score;
        }
        return hot.info(a.slot).id < hot.info(b.slot).id;
    };
    const std::size_t n = std::min(k, found->size());
    std::partial_sort(found->begin(), found->begin() + static_cast<std::ptrdiff_t>(n), found->end(),
                      better);
    Hits out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.emplace_back(hot.info((*found)[i].slot).id, (*found)[i].score);
    }
    return out;
}

std::unique_ptr<SharedStore::FilterContext>
SharedStore::make_filter_context(const SearchFilter* filter) const {
    if (filter == nullptr) {
        return nullptr;
    }
    auto fc = std::make_unique<FilterContext>();
    fc->store = this;
    fc->filter = filter;
    if (filter->location) {
        fc->location = detail::ascii_lower(*filter->location);
    }
    if (filter->metadata_key) {
        fc->wanted = nlohmann::json::parse(filter->metadata_value, nullptr, false);
    }
    return fc;
}

SharedStore::Hits SharedStore::search(const float* unit, std::size_t k, float threshold,
                                      std::size_t ef, const SearchFilter* filter) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (k == 0 || memory_->hot().count() == 0) {
        return {};
    }
    const auto fc = make_filter_context(filter);
    SearchScratch& s = scratch();
    pending_slots(fc.get(), &s.pending);
    s.tail.resize(1);
    score_tail(unit, 0, 1, s.pending, threshold, k, &s.scores, s.tail.data());
    s.found.assign(s.tail[0].begin(), s.tail[0].end());
    return finish_search(unit, k, threshold, ef, fc.get(), &s.found);
}

void SharedStore::search_batch(const float* units, std::size_t n, std::size_t stride, std::size_t k,
                               float threshold, std::size_t ef, const SearchFilter* filter,
                               std::vector<Hits>* out) {
    out->assign(n, Hits());
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (k == 0 || n == 0 || memory_->hot().count() == 0) {
        return;
    }
    const auto fc = make_filter_context(filter);
    // The tail (and the filter on it) is worked out once for the whole batch.
    std::vector<std::uint32_t>& pending = scratch().pending;
    pending_slots(fc.get(), &pending);
    const std::size_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
    engine::parallel_indices(engine::default_arena(), blocks, [&](std::size_t b) {
        SearchScratch& s = scratch();
        const std::size_t q0 = b * kQueryBlock;
        const std::size_t nq = std::min(kQueryBlock, n - q0);
        s.tail.resize(kQueryBlock);
        score_tail(units + q0 * stride, stride, nq, pending, threshold, k, &s.scores,
                   s.tail.data());
        for (std::size_t a = 0; a < nq; ++a) {
            s.found.assign(s.tail[a].begin(), s.tail[a].end());
            (*out)[q0 + a] =
                finish_search(units + (q0 + a) * stride, k, threshold, ef, fc.get(), &s.found);
        }
    });
}

void SharedStore::nearest_slots(const float* unit, std::size_t k,
                                std::vector<std::uint32_t>* out) const {
    SearchScratch& s = scratch();
    pending_slots(nullptr, &s.pending);
    s.tail.resize(1);
    score_tail(unit, 0, 1, s.pending, -2.0F, k, &s.scores, s.tail.data());
    std::vector<engine::Match>& found = s.found;
    found.assign(s.tail[0].begin(), s.tail[0].end());
    thread_local std::vector<std::pair<std::uint32_t, float>> graph;
    const std::size_t ef = std::max(k, static_cast<std::size_t>(options_.ef_search));
    index_->search_into(unit, k, ef, nullptr, &graph);
    for (const auto& [slot, score] : graph) {
        found.push_back({slot, score});
    }
    const std::size_t n = std::min(k, found.size());
    std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(),
                      [](const engine::Match& a, const engine::Match& b) {
                          return a.score != b.score ? a.score > b.score : a.slot < b.slot;
                      });
    for (std::size_t i = 0; i < n; ++i) {
        out->push_back(found[i].slot);
    }
}

// engine::RecallStore over the store, under its shared lock: hot slot s is memory number s;
// cold memories (read from storage when a cue asks for them) come after the last slot.
class SharedStore::RecallSource final : public engine::RecallStore {
public:
    explicit RecallSource(const SharedStore& store)
        : store_(store), hot_(store.memory_->hot()),
          slots_(static_cast<std::uint32_t>(hot_.slots())), pressure_(store.memory_->pressure()),
          now_(engine::now_seconds()) {}

    // Cold memories, numbered from the last slot on.
    std::deque<engine::EpisodeRecord> cold;
    std::deque<std::vector<float>> cold_units;

    std::uint32_t limit() const override {
        return slots_ + static_cast<std::uint32_t>(cold.size());
    }
    std::uint32_t indexed_limit() const override { return slots_; }
    bool get(std::uint32_t i, engine::MemoryView* out) const override {
        if (i >= slots_) {
            const engine::Episode& e = cold[i - slots_].episode;
            *out = {e.id, e.what, e.location, e.occurred_at, cold_units[i - slots_].data(), false};
            return true;
        }
        const engine::SlotInfo& info = hot_.info(i);
        if (!info.live) {
            return false;
        }
        static const SlotText kNone;
        const SlotText& t = i < store_.texts_.size() ? store_.texts_[i] : kNone;
        *out = {info.id, t.what, t.location, info.occurred_at, hot_.row(i), true};
        return true;
    }
    std::size_t dim() const override { return store_.options_.memory.dim; }
    double pressure() const override { return pressure_; }
    double now() const override { return now_; }
    void visit_hot_by_time(double lo, double hi,
                           const std::function<bool(std::uint32_t, double)>& fn) const override {
        store_.time_index_.visit(lo, hi, fn);
    }
    bool find_id(std::string_view id, std::vector<std::uint32_t>* out) const override {
        if (const auto slot = hot_.find(id)) {
            out->push_back(*slot);
        }
        return true;
    }
    bool what_containing(std::string_view q, std::vector<std::uint32_t>* out) const override {
        return store_.what_index_.containing(q, out);
    }
    bool what_within(std::string_view q, std::vector<std::uint32_t>* out) const override {
        return store_.what_index_.within(q, out);
    }
    bool what_with_word(std::string_view w, std::vector<std::uint32_t>* out) const override {
        store_.what_index_.with_word(w, out);
        return true;
    }
    bool location_containing(std::string_view q, std::vector<std::uint32_t>* out) const override {
        return store_.place_index_.containing(q, out);
    }
    bool location_within(std::string_view q, std::vector<std::uint32_t>* out) const override {
        return store_.place_index_.within(q, out);
    }
    bool in_time(double lo, double hi, std::vector<std::uint32_t>* out) const override {
        store_.time_index_.visit(lo, hi, [out](std::uint32_t slot, double) {
            out->push_back(slot);
            return true;
        });
        return true;
    }
    std::size_t count_in_time(double lo, double hi) const override {
        return store_.time_index_.count(lo, hi);
    }
    bool nearest(const float* unit, std::size_t k, std::vector<std::uint32_t>* out) const override {
        store_.nearest_slots(unit, k, out);
        return true;
    }

private:
    const SharedStore& store_;
    const engine::HotTier& hot_;
    std::uint32_t slots_;
    double pressure_;
    double now_;
};

std::vector<Result<std::vector<std::pair<std::string, double>>>>
SharedStore::recall(std::span<const engine::Cue> cues, bool scan) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    RecallSource source(*this);
    std::vector<Result<std::vector<std::pair<std::string, double>>>> out;
    // Cold memories are not indexed: they are read from storage when a cue asks for them.
    const bool want_cold =
        std::any_of(cues.begin(), cues.end(), [](const engine::Cue& c) { return c.include_cold; });
    if (want_cold) {
        auto cursor = db_->episodes();
        for (cursor->seek_first(); cursor->valid(); cursor->next()) {
            auto rec = storage::decode_record(cursor->id(), cursor->value());
            if (!rec) {
                out.assign(cues.size(), rec.status());
                return out;
            }
            if (rec->tier != engine::Tier::kCold) {
                continue;
            }
            source.cold.push_back(std::move(rec.value()));
            source.cold_units.push_back(detail::unit_vector(source.cold.back().episode.embedding));
        }
    }
    std::vector<engine::MemoryView> views; // the reference's: every memory, in number order
    std::vector<std::uint32_t> number;     // of each view
    if (scan) {
        engine::MemoryView v;
        for (std::uint32_t i = 0; i < source.limit(); ++i) {
            if (source.get(i, &v)) {
                views.push_back(v);
                number.push_back(i);
            }
        }
    }
    engine::RecallContext ctx;
    ctx.memories = views;
    ctx.dim = source.dim();
    ctx.pressure = source.pressure();
    ctx.now = source.now();
    auto results = scan ? engine::recall_batch(cues, ctx, engine::default_arena())
                        : engine::recall_batch(cues, source, engine::default_arena());
    out.reserve(results.size());
    engine::MemoryView view;
    for (auto& r : results) {
        if (!r) {
            out.emplace_back(r.status());
            continue;
        }
        std::vector<std::pair<std::string, double>> rows;
        rows.reserve(r->size());
        for (const engine::RecallResult& x : r.value()) {
            source.get(scan ? number[x.index] : x.index, &view);
            rows.emplace_back(std::string(view.id), x.confidence);
        }
        out.emplace_back(std::move(rows));
    }
    return out;
}

} // namespace engram::db
