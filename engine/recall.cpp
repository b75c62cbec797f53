// Cue-based recall: scoring per cue kind, the temporal boost, ranking (contract in recall.hpp).
#include "engine/recall.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <tbb/collaborative_call_once.h>

#include "engine/batch/executor.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

constexpr double kBoostSourceMin = 0.7; // results at or above this spread a temporal boost
constexpr double kBoostWindow = 3600.0; // seconds either side of a source
constexpr double kBoostScale = 0.3;
constexpr double kSubstringOfQuery = 0.7; // lower(query) contains lower(what)
constexpr double kWordScale = 0.5;        // 0.5 × shared / query words
constexpr std::size_t kFewInRange = 1024; // a context range this small names the candidates

using Results = std::vector<RecallResult>;

char lower_ascii(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_word_byte(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}

void lower_into(std::string_view s, std::string& out) {
    out.resize(s.size());
    std::transform(s.begin(), s.end(), out.begin(), lower_ascii);
}

bool contains(std::string_view hay, std::string_view needle) noexcept {
    return hay.find(needle) != std::string_view::npos;
}

// Words of an already lowered text, as views into it.
void split_words(std::string_view s, std::vector<std::string_view>& out) {
    out.clear();
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && !is_word_byte(s[i])) {
            ++i;
        }
        const std::size_t b = i;
        while (i < s.size() && is_word_byte(s[i])) {
            ++i;
        }
        if (i > b) {
            out.push_back(s.substr(b, i - b));
        }
    }
}

// Whether `word` (a run of word bytes) is one of the words of `text`: an occurrence bounded by
// non-word bytes or the ends. Same answer as splitting `text` into words, without the split.
bool has_word(std::string_view text, std::string_view word) noexcept {
    for (std::size_t p = text.find(word); p != std::string_view::npos; p = text.find(word, p + 1)) {
        const std::size_t e = p + word.size();
        if ((p == 0 || !is_word_byte(text[p - 1])) &&
            (e == text.size() || !is_word_byte(text[e]))) {
            return true;
        }
    }
    return false;
}

bool finite(double v) noexcept {
    return std::isfinite(v);
}

Status validate_common(const Cue& cue) {
    if (!(cue.threshold >= 0.0 && cue.threshold <= 1.0)) {
        return Status::invalid("recall: threshold must be in [0, 1], got " +
                               std::to_string(cue.threshold));
    }
    if (cue.max_results == 0) {
        return Status::invalid("recall: max_results must be at least 1, got 0");
    }
    return Status::ok();
}

bool considered(const MemoryView& m, const Cue& cue) noexcept {
    return m.hot || cue.include_cold;
}

// A cue checked and prepared once: what scoring one memory needs.
struct Prepared {
    Prepared() = default;
    Prepared(const Prepared&) = delete;
    Prepared& operator=(const Prepared&) = delete;
    const Cue* cue = nullptr;
    std::size_t dim = 0;
    std::vector<float> unit;              // embedding: the normalised cue
    bool has_range = false;               // context
    bool has_location = false;            // context
    int criteria = 0;                     // context
    std::string lowered;                  // context: location; semantic: query
    std::vector<std::string_view> qwords; // semantic, views into `lowered`
    bool words_can_pass = false;          // semantic
    double lo = 0.0;                      // temporal bounds (per kind)
    double hi = 0.0;
};

Status prepare_embedding(const Cue& cue, std::size_t dim, Prepared* p) {
    if (cue.embedding.size() != dim) {
        return Status::invalid("recall: embedding cue has dimension " +
                               std::to_string(cue.embedding.size()) + ", expected " +
                               std::to_string(dim));
    }
    for (std::size_t i = 0; i < cue.embedding.size(); ++i) {
        if (!std::isfinite(cue.embedding[i])) {
            return Status::invalid("recall: embedding cue element " + std::to_string(i) +
                                   " is not finite");
        }
    }
    p->unit = cue.embedding;
    simd::kernels().normalize(p->unit.data(), p->unit.size()); // zero stays zero: cosines 0
    return Status::ok();
}

Status prepare_context(const Cue& cue, Prepared* p) {
    p->has_range = cue.has_from || cue.has_to;
    p->has_location = cue.has_location || !cue.location.empty();
    p->criteria = (p->has_range ? 1 : 0) + (p->has_location ? 1 : 0);
    if (p->criteria == 0) {
        return Status::invalid(
            "recall: context cue has no criteria (give from, to and/or location)");
    }
    if ((cue.has_from && !finite(cue.from)) || (cue.has_to && !finite(cue.to))) {
        return Status::invalid("recall: context cue time is not finite");
    }
    if (cue.has_from && cue.has_to && cue.from > cue.to) {
        return Status::invalid("recall: context cue range is empty: from " +
                               std::to_string(cue.from) + " > to " + std::to_string(cue.to));
    }
    lower_into(cue.location, p->lowered);
    return Status::ok();
}

Status prepare_temporal(const Cue& cue, double now, Prepared* p) {
    switch (cue.temporal) {
    case TemporalKind::kBefore:
        if (!finite(cue.to)) {
            return Status::invalid("recall: temporal 'before' time is not finite");
        }
        p->hi = cue.to;
        break;
    case TemporalKind::kAfter:
        if (!finite(cue.from)) {
            return Status::invalid("recall: temporal 'after' time is not finite");
        }
        p->lo = cue.from;
        break;
    case TemporalKind::kBetween:
        if (!finite(cue.from) || !finite(cue.to)) {
            return Status::invalid("recall: temporal 'between' time is not finite");
        }
        if (cue.from > cue.to) {
            return Status::invalid("recall: temporal 'between' range is empty: " +
                                   std::to_string(cue.from) + " > " + std::to_string(cue.to));
        }
        p->lo = cue.from;
        p->hi = cue.to;
        break;
    case TemporalKind::kRecent:
        if (!(cue.recent_seconds >= 0.0) || !finite(cue.recent_seconds)) {
            return Status::invalid("recall: temporal 'recent' seconds must be finite and >= 0, "
                                   "got " +
                                   std::to_string(cue.recent_seconds));
        }
        if (!finite(now)) {
            return Status::invalid("recall: current time is not finite");
        }
        p->lo = now - cue.recent_seconds;
        break;
    }
    return Status::ok();
}

Status prepare_semantic(const Cue& cue, Prepared* p) {
    if (cue.text.empty()) {
        return Status::invalid("recall: semantic cue has an empty query");
    }
    lower_into(cue.text, p->lowered);
    split_words(p->lowered, p->qwords);
    // The word rule scores at most 0.5: above that threshold it cannot keep a memory.
    p->words_can_pass = kWordScale >= cue.threshold;
    return Status::ok();
}

// Fills *p in place (p->qwords point into p->lowered: a Prepared is never moved).
Status prepare(const Cue& cue, std::size_t dim, double now, Prepared* p) {
    ENGRAM_TRY(validate_common(cue));
    p->cue = &cue;
    p->dim = dim;
    switch (cue.kind) {
    case CueKind::kEmbedding:
        return prepare_embedding(cue, dim, p);
    case CueKind::kContext:
        return prepare_context(cue, p);
    case CueKind::kTemporal:
        return prepare_temporal(cue, now, p);
    case CueKind::kSemantic:
        return prepare_semantic(cue, p);
    }
    return Status::internal("recall: unknown cue kind");
}

// The score of one considered memory; nullopt when the cue does not keep it (below the
// threshold, or not a temporal match). `buf` is scratch.
std::optional<double> score(const Prepared& p, const MemoryView& m, std::string& buf) {
    const Cue& cue = *p.cue;
    double s = 0.0;
    switch (cue.kind) {
    case CueKind::kEmbedding:
        if (m.unit != nullptr) {
            s = std::clamp(static_cast<double>(simd::kernels().dot(p.unit.data(), m.unit, p.dim)),
                           -1.0, 1.0);
        }
        s = std::max(0.0, s);
        break;
    case CueKind::kContext: {
        int met = 0;
        if (p.has_range) {
            const bool after_from = !cue.has_from || m.occurred_at >= cue.from;
            const bool before_to = !cue.has_to || m.occurred_at <= cue.to;
            met += (after_from && before_to) ? 1 : 0;
        }
        if (p.has_location && !m.location.empty()) {
            lower_into(m.location, buf);
            met += (contains(buf, p.lowered) || contains(p.lowered, buf)) ? 1 : 0;
        }
        s = static_cast<double>(met) / static_cast<double>(p.criteria);
        break;
    }
    case CueKind::kTemporal: {
        const double t = m.occurred_at;
        bool match = false;
        switch (cue.temporal) {
        case TemporalKind::kBefore:
            match = t < p.hi;
            break;
        case TemporalKind::kAfter:
            match = t > p.lo;
            break;
        case TemporalKind::kBetween:
            match = t >= p.lo && t <= p.hi;
            break;
        case TemporalKind::kRecent:
            match = t >= p.lo;
            break;
        }
        if (!match) {
            return std::nullopt;
        }
        return cue.threshold;
    }
    case CueKind::kSemantic:
        if (m.id == cue.text) {
            s = 1.0;
        } else {
            lower_into(m.what, buf);
            if (contains(buf, p.lowered)) {
                s = 1.0;
            } else if (!buf.empty() && contains(p.lowered, buf)) {
                s = kSubstringOfQuery;
            } else if (!p.qwords.empty() && p.words_can_pass) {
                std::size_t shared = 0;
                for (const auto& w : p.qwords) {
                    shared += has_word(buf, w) ? 1 : 0;
                }
                s = kWordScale * static_cast<double>(shared) / static_cast<double>(p.qwords.size());
            }
        }
        break;
    }
    if (s >= cue.threshold) {
        return s;
    }
    return std::nullopt;
}

// Candidate numbers below store.indexed_limit() for the cue, from the store's finders; false
// when the cue must read every memory. `out` is sorted and unique on success.
bool find_candidates(const Prepared& p, const RecallStore& store, std::vector<std::uint32_t>* out) {
    const Cue& cue = *p.cue;
    out->clear();
    constexpr double kInf = std::numeric_limits<double>::infinity();
    bool ok = true;
    switch (cue.kind) {
    case CueKind::kEmbedding: {
        // The nearest memories; more while the farthest of them is still a boost source.
        std::size_t k = std::max<std::size_t>(4 * std::min(cue.max_results, kMaxNearest), 64);
        k = std::min(k, kMaxNearest);
        for (;;) {
            out->clear();
            if (!store.nearest(p.unit.data(), k, out)) {
                return false;
            }
            if (out->size() < k || k >= kMaxNearest) {
                break;
            }
            double worst = 1.0;
            MemoryView m;
            for (const std::uint32_t i : *out) {
                if (store.get(i, &m) && m.unit != nullptr) {
                    worst = std::min(worst, static_cast<double>(
                                                simd::kernels().dot(p.unit.data(), m.unit, p.dim)));
                }
            }
            if (worst < kBoostSourceMin || worst < cue.threshold) {
                break;
            }
            k = std::min(2 * k, kMaxNearest);
        }
        break;
    }
    case CueKind::kContext: {
        // Threshold 0 keeps every memory: the candidates are those scoring above 0, and
        // recall_impl reads every memory when fewer than max_results end above 0.
        const double lo = cue.has_from ? cue.from : -kInf;
        const double hi = cue.has_to ? cue.to : kInf;
        std::vector<std::uint32_t> by_place;
        auto find_place = [&] {
            return p.has_location && !p.lowered.empty() &&
                   store.location_containing(p.lowered, &by_place) &&
                   store.location_within(p.lowered, &by_place);
        };
        if (p.has_range && p.has_location && cue.threshold > 0.5) {
            // Both criteria must hold: the smaller side names the candidates (a short time
            // range is taken without looking up the place).
            const std::size_t in_range = store.count_in_time(lo, hi);
            if (in_range > kFewInRange && find_place() && by_place.size() <= in_range) {
                *out = std::move(by_place);
            } else {
                ok = store.in_time(lo, hi, out);
            }
        } else {
            const bool place_ok = find_place();
            if (p.has_location) {
                ok = place_ok;
                *out = std::move(by_place);
            }
            if (ok && p.has_range) {
                ok = store.in_time(lo, hi, out);
            }
        }
        break;
    }
    case CueKind::kTemporal:
        switch (cue.temporal) {
        case TemporalKind::kBefore:
            ok = store.in_time(-kInf, p.hi, out);
            break;
        case TemporalKind::kAfter:
        case TemporalKind::kRecent:
            ok = store.in_time(p.lo, kInf, out);
            break;
        case TemporalKind::kBetween:
            ok = store.in_time(p.lo, p.hi, out);
            break;
        }
        break;
    case CueKind::kSemantic: // threshold 0: as for context
        ok = store.find_id(cue.text, out) && store.what_containing(p.lowered, out) &&
             (cue.threshold > kSubstringOfQuery || store.what_within(p.lowered, out));
        if (ok && p.words_can_pass) {
            for (const auto& w : p.qwords) {
                ok = ok && store.what_with_word(w, out);
            }
        }
        break;
    }
    if (!ok) {
        return false;
    }
    const std::uint32_t limit = store.indexed_limit();
    out->erase(
        std::remove_if(out->begin(), out->end(), [limit](std::uint32_t i) { return i >= limit; }),
        out->end());
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
    return true;
}

// Scores the candidates (or every memory), in number order.
// Scores the candidates, or every memory when `scan` or when the store cannot name them;
// *indexed says which happened.
Results score_all(const Prepared& p, const RecallStore& store, bool scan, bool* indexed) {
    const Cue& cue = *p.cue;
    Results out;
    std::string buf;
    MemoryView m;
    auto consider = [&](std::uint32_t i) {
        if (!store.get(i, &m) || !considered(m, cue)) {
            return;
        }
        if (const auto s = score(p, m, buf)) {
            out.push_back({i, *s});
        }
    };
    std::vector<std::uint32_t> cands;
    *indexed = !scan && find_candidates(p, store, &cands);
    if (*indexed) {
        for (const std::uint32_t i : cands) {
            consider(i);
        }
        if (cue.include_cold) {
            for (std::uint32_t i = store.indexed_limit(); i < store.limit(); ++i) {
                consider(i);
            }
        }
    } else {
        for (std::uint32_t i = 0; i < store.limit(); ++i) {
            consider(i);
        }
    }
    return out;
}

// Sources in the window of the current target, by rank (= source order): a two-level bitset,
// walked in rank order from the lowest.
class RankSet {
public:
    explicit RankSet(std::size_t n)
        : words_((n + 63) / 64, 0), top_((words_.size() + 63) / 64, 0) {}
    void insert(std::size_t r) {
        words_[r / 64] |= std::uint64_t{1} << (r % 64);
        top_[r / 4096] |= std::uint64_t{1} << ((r / 64) % 64);
    }
    void erase(std::size_t r) {
        std::uint64_t& w = words_[r / 64];
        w &= ~(std::uint64_t{1} << (r % 64));
        if (w == 0) {
            top_[r / 4096] &= ~(std::uint64_t{1} << ((r / 64) % 64));
        }
    }
    // Calls fn(rank) in increasing rank order until it returns false.
    template <class Fn> void for_each(Fn&& fn) const {
        for (std::size_t t = 0; t < top_.size(); ++t) {
            for (std::uint64_t tw = top_[t]; tw != 0; tw &= tw - 1) {
                const std::size_t wi = t * 64 + static_cast<std::size_t>(std::countr_zero(tw));
                for (std::uint64_t w = words_[wi]; w != 0; w &= w - 1) {
                    if (!fn(wi * 64 + static_cast<std::size_t>(std::countr_zero(w)))) {
                        return;
                    }
                }
            }
        }
    }

private:
    std::vector<std::uint64_t> words_;
    std::vector<std::uint64_t> top_;
};

// The temporal boost of DESIGN §2 (see recall.hpp). `results` is in memory-number order.
//
// The reference walks sources (in order) and, per source, its targets. Each target's outcome
// depends only on its own state and on the sources' snapshot confidences, so the same result
// comes from walking targets (each once, in time order) and, per target, the sources within an
// hour of it in source order — which lets a target stop at confidence 1 (min(1, 1 + b) = 1).
void apply_boost(Results& results, const Cue& cue, const RecallStore& store) {
    struct Source {
        std::uint32_t index;
        double confidence;
        double t;
    };
    std::vector<Source> sources; // source order; the snapshot before any boost
    MemoryView m;
    for (const auto& r : results) {
        if (r.confidence >= kBoostSourceMin && store.get(r.index, &m) && finite(m.occurred_at)) {
            sources.push_back({r.index, r.confidence, m.occurred_at});
        }
    }
    if (sources.empty()) {
        return;
    }
    std::vector<std::uint32_t> by_time(sources.size()); // ranks, by (time, rank)
    for (std::size_t r = 0; r < sources.size(); ++r) {
        by_time[r] = static_cast<std::uint32_t>(r);
    }
    std::sort(by_time.begin(), by_time.end(), [&](std::uint32_t a, std::uint32_t b) {
        return sources[a].t != sources[b].t ? sources[a].t < sources[b].t : a < b;
    });
    const double pressure =
        store.pressure() > 0.0 ? std::min(store.pressure(), 1.0) : 0.0; // NaN → 0
    const double pressure_factor = 1.0 - 0.5 * pressure;
    const double admit = 0.5 * cue.threshold;
    std::unordered_map<std::uint32_t, std::uint32_t> position; // number → entry of results
    position.reserve(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        position.emplace(results[i].index, static_cast<std::uint32_t>(i));
    }
    // A slightly wider window than 1 h; the exact |Δt| <= 3600 test is per pair.
    constexpr double kReach = kBoostWindow + 1.0;
    RankSet window(sources.size());
    std::size_t enter = 0; // next of by_time to enter the window
    std::size_t leave = 0; // next of by_time to leave it
    auto boost_target = [&](std::uint32_t j, double tj) {
        while (enter < by_time.size() && sources[by_time[enter]].t <= tj + kReach) {
            window.insert(by_time[enter++]);
        }
        while (leave < enter && sources[by_time[leave]].t < tj - kReach) {
            window.erase(by_time[leave++]);
        }
        const auto at = position.find(j);
        bool in = at != position.end();
        double c = in ? results[at->second].confidence : 0.0;
        if (in && c >= 1.0) {
            return true;
        }
        window.for_each([&](std::size_t r) {
            const Source& src = sources[r];
            if (src.index == j) {
                return true;
            }
            const double dt = std::abs(tj - src.t);
            if (dt > kBoostWindow) {
                return true;
            }
            const double boost =
                (1.0 - dt / kBoostWindow) * src.confidence * pressure_factor * kBoostScale;
            if (in) {
                c = std::min(1.0, c + boost);
                return c < 1.0;
            }
            if (boost > admit) {
                in = true;
                c = boost;
            }
            return true;
        });
        if (at != position.end()) {
            results[at->second].confidence = c;
        } else if (in) {
            results.push_back({j, c});
        }
        return true;
    };
    // The targets: every hot memory within reach of a source, each once (merged windows).
    for (std::size_t a = 0; a < by_time.size();) {
        const double lo = sources[by_time[a]].t - kReach;
        double hi = sources[by_time[a]].t + kReach;
        std::size_t b = a + 1;
        while (b < by_time.size() && sources[by_time[b]].t - kReach <= hi) {
            hi = sources[by_time[b]].t + kReach;
            ++b;
        }
        store.visit_hot_by_time(lo, hi, boost_target);
        a = b;
    }
}

void rank(Results& results, const RecallStore& store, std::size_t max_results) {
    // Ids of the results, once (the comparator needs them on ties).
    std::vector<std::string_view> ids(results.size());
    MemoryView m;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (store.get(results[i].index, &m)) {
            ids[i] = m.id;
        }
    }
    std::vector<std::uint32_t> order(results.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = static_cast<std::uint32_t>(i);
    }
    auto better = [&](std::uint32_t a, std::uint32_t b) {
        const RecallResult& ra = results[a];
        const RecallResult& rb = results[b];
        if (ra.confidence != rb.confidence) {
            return ra.confidence > rb.confidence;
        }
        if (ids[a] != ids[b]) {
            return ids[a] < ids[b];
        }
        return ra.index < rb.index;
    };
    const std::size_t n = std::min(max_results, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                      better);
    Results out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(results[order[i]]);
    }
    results = std::move(out);
}

Result<Results> recall_impl(const Cue& cue, const RecallStore& store) {
    Prepared prepared;
    ENGRAM_TRY(prepare(cue, store.dim(), store.now(), &prepared));
    bool indexed = false;
    Results results = score_all(prepared, store, false, &indexed);
    apply_boost(results, cue, store);
    if (indexed && cue.threshold <= 0.0 &&
        (cue.kind == CueKind::kSemantic || cue.kind == CueKind::kContext)) {
        // Threshold 0 keeps every memory, at 0 when no rule or boost reaches it. The candidates
        // held every memory above 0 (a boost admits any target above 0, and adding to a 0 gives
        // the same sum); when they fill max_results the zeros cannot rank, else read them all.
        const auto positive = static_cast<std::size_t>(
            std::count_if(results.begin(), results.end(),
                          [](const RecallResult& r) { return r.confidence > 0.0; }));
        if (positive < cue.max_results) {
            results = score_all(prepared, store, true, &indexed);
            apply_boost(results, cue, store);
        }
    }
    rank(results, store, cue.max_results);
    return results;
}

// The reference: a view of every memory, read in full by every cue. Its time index is built on
// first use (shared by the cues of a batch) unless the context brings one.
class ViewStore final : public RecallStore {
public:
    explicit ViewStore(const RecallContext& ctx) : ctx_(ctx) {}
    std::uint32_t limit() const override {
        return static_cast<std::uint32_t>(ctx_.memories.size());
    }
    bool get(std::uint32_t i, MemoryView* out) const override {
        *out = ctx_.memories[i];
        return true;
    }
    std::size_t dim() const override { return ctx_.dim; }
    double pressure() const override { return ctx_.pressure; }
    double now() const override { return ctx_.now; }
    void visit_hot_by_time(double lo, double hi,
                           const std::function<bool(std::uint32_t, double)>& fn) const override {
        const std::span<const std::uint32_t> idx = time_index();
        const auto& mems = ctx_.memories;
        auto it = std::lower_bound(idx.begin(), idx.end(), lo, [&](std::uint32_t j, double v) {
            return mems[j].occurred_at < v;
        });
        for (; it != idx.end() && mems[*it].occurred_at <= hi; ++it) {
            assert(*it < mems.size() && "hot_by_time does not match the memories");
            if (!fn(*it, mems[*it].occurred_at)) {
                return;
            }
        }
    }

private:
    std::span<const std::uint32_t> time_index() const {
        if (!ctx_.hot_by_time.empty()) {
            return ctx_.hot_by_time;
        }
        tbb::collaborative_call_once(once_, [&] { built_ = build_time_index(ctx_.memories); });
        return built_;
    }
    const RecallContext& ctx_;
    mutable tbb::collaborative_once_flag once_;
    mutable std::vector<std::uint32_t> built_;
};

} // namespace

std::vector<std::uint32_t> build_time_index(std::span<const MemoryView> memories) {
    std::vector<std::uint32_t> idx;
    for (std::size_t i = 0; i < memories.size(); ++i) {
        if (memories[i].hot && std::isfinite(memories[i].occurred_at)) {
            idx.push_back(static_cast<std::uint32_t>(i));
        }
    }
    std::sort(idx.begin(), idx.end(), [&](std::uint32_t a, std::uint32_t b) {
        const double ta = memories[a].occurred_at;
        const double tb = memories[b].occurred_at;
        return ta != tb ? ta < tb : a < b;
    });
    return idx;
}

Result<std::vector<RecallResult>> recall(const Cue& cue, const RecallContext& context) {
    const ViewStore store(context);
    return recall_impl(cue, store);
}

std::vector<Result<std::vector<RecallResult>>>
recall_batch(std::span<const Cue> cues, const RecallContext& context, tbb::task_arena& arena) {
    const ViewStore store(context);
    return recall_batch(cues, store, arena);
}

Result<std::vector<RecallResult>> recall(const Cue& cue, const RecallStore& store) {
    return recall_impl(cue, store);
}

std::vector<Result<std::vector<RecallResult>>>
recall_batch(std::span<const Cue> cues, const RecallStore& store, tbb::task_arena& arena) {
    std::vector<Result<std::vector<RecallResult>>> out(
        cues.size(), Result<std::vector<RecallResult>>(Status::internal("recall: not computed")));
    parallel_indices(arena, cues.size(),
                     [&](std::size_t i) { out[i] = recall_impl(cues[i], store); });
    return out;
}

Cue embedding_cue(std::vector<float> embedding, double threshold, std::size_t max_results) {
    Cue c;
    c.kind = CueKind::kEmbedding;
    c.embedding = std::move(embedding);
    c.threshold = threshold;
    c.max_results = max_results;
    return c;
}

Cue context_cue(std::optional<double> from, std::optional<double> to,
                std::optional<std::string> location, double threshold, std::size_t max_results) {
    Cue c;
    c.kind = CueKind::kContext;
    c.has_from = from.has_value();
    c.from = from.value_or(0.0);
    c.has_to = to.has_value();
    c.to = to.value_or(0.0);
    c.has_location = location.has_value();
    c.location = std::move(location).value_or(std::string());
    c.threshold = threshold;
    c.max_results = max_results;
    return c;
}

namespace {
Cue temporal(TemporalKind kind, double from, double to, double seconds, double threshold,
             std::size_t max_results) {
    Cue c;
    c.kind = CueKind::kTemporal;
    c.temporal = kind;
    c.from = from;
    c.to = to;
    c.has_from = kind == TemporalKind::kAfter || kind == TemporalKind::kBetween;
    c.has_to = kind == TemporalKind::kBefore || kind == TemporalKind::kBetween;
    c.recent_seconds = seconds;
    c.threshold = threshold;
    c.max_results = max_results;
    return c;
}
} // namespace

Cue temporal_before(double t, double threshold, std::size_t max_results) {
    return temporal(TemporalKind::kBefore, 0.0, t, 0.0, threshold, max_results);
}
Cue temporal_after(double t, double threshold, std::size_t max_results) {
    return temporal(TemporalKind::kAfter, t, 0.0, 0.0, threshold, max_results);
}
Cue temporal_between(double t1, double t2, double threshold, std::size_t max_results) {
    return temporal(TemporalKind::kBetween, t1, t2, 0.0, threshold, max_results);
}
Cue temporal_recent(double seconds, double threshold, std::size_t max_results) {
    return temporal(TemporalKind::kRecent, 0.0, 0.0, seconds, threshold, max_results);
}

Cue semantic_cue(std::string query, double threshold, std::size_t max_results) {
    Cue c;
    c.kind = CueKind::kSemantic;
    c.text = std::move(query);
    c.threshold = threshold;
    c.max_results = max_results;
    return c;
}

} // namespace engram::engine
