// Cue-based recall: scoring per cue kind, the temporal boost, ranking (contract in recall.hpp).
#include "engine/recall.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <functional>
#include <string>
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

using Results = std::vector<RecallResult>;
// Returns the time index on first use (recall builds it lazily, recall_batch shares one).
using TimeIndexFn = std::function<std::span<const std::uint32_t>()>;

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

Result<Results> score_embedding(const Cue& cue, const RecallContext& ctx) {
    if (cue.embedding.size() != ctx.dim) {
        return Status::invalid("recall: embedding cue has dimension " +
                               std::to_string(cue.embedding.size()) + ", expected " +
                               std::to_string(ctx.dim));
    }
    for (std::size_t i = 0; i < cue.embedding.size(); ++i) {
        if (!std::isfinite(cue.embedding[i])) {
            return Status::invalid("recall: embedding cue element " + std::to_string(i) +
                                   " is not finite");
        }
    }
    const auto& k = simd::kernels();
    std::vector<float> q = cue.embedding;
    k.normalize(q.data(), q.size()); // a zero vector stays zero: every cosine is then 0
    Results out;
    const auto& mems = ctx.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const MemoryView& m = mems[i];
        if (!considered(m, cue)) {
            continue;
        }
        double s = 0.0;
        if (m.unit != nullptr) {
            s = std::clamp(static_cast<double>(k.dot(q.data(), m.unit, ctx.dim)), -1.0, 1.0);
        }
        s = std::max(0.0, s);
        if (s >= cue.threshold) {
            out.push_back({static_cast<std::uint32_t>(i), s});
        }
    }
    return out;
}

Result<Results> score_context(const Cue& cue, const RecallContext& ctx) {
    const bool has_range = cue.has_from || cue.has_to;
    const bool has_location = cue.has_location || !cue.location.empty();
    const int criteria = (has_range ? 1 : 0) + (has_location ? 1 : 0);
    if (criteria == 0) {
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
    std::string loc;
    lower_into(cue.location, loc);
    std::string buf;
    Results out;
    const auto& mems = ctx.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const MemoryView& m = mems[i];
        if (!considered(m, cue)) {
            continue;
        }
        int met = 0;
        if (has_range) {
            const bool after_from = !cue.has_from || m.occurred_at >= cue.from;
            const bool before_to = !cue.has_to || m.occurred_at <= cue.to;
            met += (after_from && before_to) ? 1 : 0;
        }
        if (has_location && !m.location.empty()) {
            lower_into(m.location, buf);
            met += (contains(buf, loc) || contains(loc, buf)) ? 1 : 0;
        }
        const double s = static_cast<double>(met) / static_cast<double>(criteria);
        if (s >= cue.threshold) {
            out.push_back({static_cast<std::uint32_t>(i), s});
        }
    }
    return out;
}

Result<Results> score_temporal(const Cue& cue, const RecallContext& ctx) {
    double lo = 0.0; // the matching test below per kind
    double hi = 0.0;
    switch (cue.temporal) {
    case TemporalKind::kBefore:
        if (!finite(cue.to)) {
            return Status::invalid("recall: temporal 'before' time is not finite");
        }
        hi = cue.to;
        break;
    case TemporalKind::kAfter:
        if (!finite(cue.from)) {
            return Status::invalid("recall: temporal 'after' time is not finite");
        }
        lo = cue.from;
        break;
    case TemporalKind::kBetween:
        if (!finite(cue.from) || !finite(cue.to)) {
            return Status::invalid("recall: temporal 'between' time is not finite");
        }
        if (cue.from > cue.to) {
            return Status::invalid("recall: temporal 'between' range is empty: " +
                                   std::to_string(cue.from) + " > " + std::to_string(cue.to));
        }
        lo = cue.from;
        hi = cue.to;
        break;
    case TemporalKind::kRecent:
        if (!(cue.recent_seconds >= 0.0) || !finite(cue.recent_seconds)) {
            return Status::invalid("recall: temporal 'recent' seconds must be finite and >= 0, "
                                   "got " +
                                   std::to_string(cue.recent_seconds));
        }
        if (!finite(ctx.now)) {
            return Status::invalid("recall: current time is not finite");
        }
        lo = ctx.now - cue.recent_seconds;
        break;
    }
    Results out;
    const auto& mems = ctx.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const MemoryView& m = mems[i];
        if (!considered(m, cue)) {
            continue;
        }
        const double t = m.occurred_at;
        bool match = false;
        switch (cue.temporal) {
        case TemporalKind::kBefore:
            match = t < hi;
            break;
        case TemporalKind::kAfter:
            match = t > lo;
            break;
        case TemporalKind::kBetween:
            match = t >= lo && t <= hi;
            break;
        case TemporalKind::kRecent:
            match = t >= lo;
            break;
        }
        if (match) {
            out.push_back({static_cast<std::uint32_t>(i), cue.threshold});
        }
    }
    return out;
}

Result<Results> score_semantic(const Cue& cue, const RecallContext& ctx) {
    if (cue.text.empty()) {
        return Status::invalid("recall: semantic cue has an empty query");
    }
    std::string query;
    lower_into(cue.text, query);
    std::vector<std::string_view> qwords;
    split_words(query, qwords);
    // The word rule scores at most 0.5: above that threshold it cannot keep a memory.
    const bool words_can_pass = kWordScale >= cue.threshold;
    std::string what;
    Results out;
    const auto& mems = ctx.memories;
    for (std::size_t i = 0; i < mems.size(); ++i) {
        const MemoryView& m = mems[i];
        if (!considered(m, cue)) {
            continue;
        }
        double s = 0.0;
        if (m.id == cue.text) {
            s = 1.0;
        } else {
            lower_into(m.what, what);
            if (contains(what, query)) {
                s = 1.0;
            } else if (!what.empty() && contains(query, what)) {
                s = kSubstringOfQuery;
            } else if (!qwords.empty() && words_can_pass) {
                std::size_t shared = 0;
                for (const auto& w : qwords) {
                    shared += has_word(what, w) ? 1 : 0;
                }
                s = kWordScale * static_cast<double>(shared) / static_cast<double>(qwords.size());
            }
        }
        if (s >= cue.threshold) {
            out.push_back({static_cast<std::uint32_t>(i), s});
        }
    }
    return out;
}

// The temporal boost of DESIGN §2 (see recall.hpp). `results` is in memory-index order.
void apply_boost(Results& results, const Cue& cue, const RecallContext& ctx,
                 const TimeIndexFn& time_index) {
    std::vector<RecallResult> sources;
    for (const auto& r : results) {
        if (r.confidence >= kBoostSourceMin) {
            sources.push_back(r); // snapshot before any boost
        }
    }
    if (sources.empty()) {
        return;
    }
    const std::span<const std::uint32_t> idx = time_index();
    if (idx.empty()) {
        return;
    }
    const auto& mems = ctx.memories;
    const double pressure = ctx.pressure > 0.0 ? std::min(ctx.pressure, 1.0) : 0.0; // NaN → 0
    const double pressure_factor = 1.0 - 0.5 * pressure;
    const double admit = 0.5 * cue.threshold;
    std::vector<std::int32_t> slot(mems.size(), -1);
    for (std::size_t i = 0; i < results.size(); ++i) {
        slot[results[i].index] = static_cast<std::int32_t>(i);
    }
    auto time_of = [&](std::uint32_t j) { return mems[j].occurred_at; };
    for (const auto& src : sources) {
        const double t = mems[src.index].occurred_at;
        if (!finite(t)) {
            continue;
        }
        // A slightly wider window than 1 h; the exact |Δt| <= 3600 test is below.
        auto lo = std::lower_bound(idx.begin(), idx.end(), t - kBoostWindow - 1.0,
                                   [&](std::uint32_t j, double v) { return time_of(j) < v; });
        auto hi = std::upper_bound(lo, idx.end(), t + kBoostWindow + 1.0,
                                   [&](double v, std::uint32_t j) { return v < time_of(j); });
        for (auto it = lo; it != hi; ++it) {
            const std::uint32_t j = *it;
            assert(j < mems.size() && "hot_by_time does not match the memories");
            if (j == src.index) {
                continue;
            }
            const double dt = std::abs(mems[j].occurred_at - t);
            if (dt > kBoostWindow) {
                continue;
            }
            const double boost =
                (1.0 - dt / kBoostWindow) * src.confidence * pressure_factor * kBoostScale;
            if (slot[j] >= 0) {
                double& c = results[static_cast<std::size_t>(slot[j])].confidence;
                c = std::min(1.0, c + boost);
            } else if (boost > admit) {
                slot[j] = static_cast<std::int32_t>(results.size());
                results.push_back({j, boost});
            }
        }
    }
}

void rank(Results& results, const RecallContext& ctx, std::size_t max_results) {
    const auto& mems = ctx.memories;
    auto better = [&](const RecallResult& a, const RecallResult& b) {
        if (a.confidence != b.confidence) {
            return a.confidence > b.confidence;
        }
        const auto& ia = mems[a.index].id;
        const auto& ib = mems[b.index].id;
        if (ia != ib) {
            return ia < ib;
        }
        return a.index < b.index;
    };
    if (results.size() > max_results) {
        std::partial_sort(results.begin(),
                          results.begin() + static_cast<std::ptrdiff_t>(max_results), results.end(),
                          better);
        results.resize(max_results);
    } else {
        std::sort(results.begin(), results.end(), better);
    }
}

Result<Results> recall_impl(const Cue& cue, const RecallContext& ctx,
                            const TimeIndexFn& time_index) {
    ENGRAM_TRY(validate_common(cue));
    Result<Results> scored = Status::internal("recall: unknown cue kind");
    switch (cue.kind) {
    case CueKind::kEmbedding:
        scored = score_embedding(cue, ctx);
        break;
    case CueKind::kContext:
        scored = score_context(cue, ctx);
        break;
    case CueKind::kTemporal:
        scored = score_temporal(cue, ctx);
        break;
    case CueKind::kSemantic:
        scored = score_semantic(cue, ctx);
        break;
    }
    if (!scored.is_ok()) {
        return scored;
    }
    Results results = std::move(scored).value();
    apply_boost(results, cue, ctx, time_index);
    rank(results, ctx, cue.max_results);
    return results;
}

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
    std::vector<std::uint32_t> local;
    bool built = false;
    const TimeIndexFn time_index = [&]() -> std::span<const std::uint32_t> {
        if (!context.hot_by_time.empty()) {
            return context.hot_by_time;
        }
        if (!built) {
            local = build_time_index(context.memories);
            built = true;
        }
        return local;
    };
    return recall_impl(cue, context, time_index);
}

std::vector<Result<std::vector<RecallResult>>>
recall_batch(std::span<const Cue> cues, const RecallContext& context, tbb::task_arena& arena) {
    // One time index for all cues, built by the first cue that needs it (the others wait for
    // it, helping with its construction).
    std::vector<std::uint32_t> shared;
    tbb::collaborative_once_flag once;
    const TimeIndexFn time_index = [&]() -> std::span<const std::uint32_t> {
        if (!context.hot_by_time.empty()) {
            return context.hot_by_time;
        }
        tbb::collaborative_call_once(once, [&] { shared = build_time_index(context.memories); });
        return shared;
    };
    std::vector<Result<std::vector<RecallResult>>> out(
        cues.size(), Result<std::vector<RecallResult>>(Status::internal("recall: not computed")));
    parallel_indices(arena, cues.size(),
                     [&](std::size_t i) { out[i] = recall_impl(cues[i], context, time_index); });
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
