// Queries over the hot memories: similarity search and recall.
//
// HOW IT WORKS
//   search() merges two parts under the store's shared lock: the graph index's answer (HNSW,
//   beam ef, the filter applied during the walk) and an exact scan of the memories the builder
//   has not indexed yet, so a memory is searchable as soon as its commit returns. Scores are
//   clamped cosines; ties go to the smallest id.
//   recall() builds a view of every hot memory (and of the cold ones when a cue asks for them,
//   read from storage) and runs the cues in parallel with engine/recall (DESIGN §2 scores).
#include "db/shared_store.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <deque>
#include <functional>

#include "db/util.hpp"
#include "engine/batch/executor.hpp"
#include "engine/core/time.hpp"
#include "engine/recall.hpp"
#include "engine/simd/kernels.hpp"
#include "storage/codec.hpp"

namespace engram::db {

std::vector<std::pair<std::string, float>> SharedStore::search(const float* unit, std::size_t k,
                                                               float threshold, std::size_t ef,
                                                               const SearchFilter* filter) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const engine::HotTier& hot = memory_->hot();
    std::vector<engine::Match> found;
    if (k == 0 || hot.count() == 0) {
        return {};
    }
    std::string location;
    nlohmann::json wanted;
    if (filter != nullptr && filter->location) {
        location = detail::ascii_lower(*filter->location);
    }
    if (filter != nullptr && filter->metadata_key) {
        wanted = nlohmann::json::parse(filter->metadata_value, nullptr, false);
    }
    auto accept_slot = [&](std::uint32_t slot) {
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
        const SlotText& t = slot < texts_.size() ? texts_[slot] : kNone;
        if (filter->location && detail::ascii_lower(t.location).find(location) == std::string::npos) {
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
    };
    // Exact part: memories not in the graph yet.
    std::vector<std::uint32_t> pending;
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        pending.reserve(waiting_);
        for (std::uint32_t slot = 0; slot < state_.size(); ++slot) {
            if (state_[slot] == 1) {
                pending.push_back(slot);
            }
        }
    }
    const engine::simd::KernelTable& kt = engine::simd::kernels();
    for (std::uint32_t slot : pending) {
        const engine::SlotInfo& info = hot.info(slot);
        if (!info.live || (filter != nullptr && !accept_slot(slot))) {
            continue;
        }
        const float score = std::clamp(kt.dot(unit, hot.row(slot), hot.dim()), -1.0F, 1.0F);
        if (score >= threshold) {
            found.push_back({slot, score});
        }
    }
    // Graph part.
    std::function<bool(std::uint32_t)> accept;
    if (filter != nullptr) {
        accept = accept_slot;
    }
    for (const auto& [slot, raw] :
         index_->search(unit, k, ef, filter != nullptr ? &accept : nullptr)) {
        const float score = std::clamp(raw, -1.0F, 1.0F);
        if (score >= threshold) {
            found.push_back({slot, score});
        }
    }
    // A slot the builder is indexing right now can come from both parts: keep it once.
    std::sort(found.begin(), found.end(), [](const engine::Match& a, const engine::Match& b) {
        return a.slot != b.slot ? a.slot < b.slot : a.score > b.score;
    });
    found.erase(std::unique(found.begin(), found.end(),
                            [](const engine::Match& a, const engine::Match& b) {
                                return a.slot == b.slot;
                            }),
                found.end());
    std::sort(found.begin(), found.end(), [&](const engine::Match& a, const engine::Match& b) {
        if (a.score != b.score) {
            return a.score > b.score;
        }
        return hot.info(a.slot).id < hot.info(b.slot).id;
    });
    if (found.size() > k) {
        found.resize(k);
    }
    std::vector<std::pair<std::string, float>> out;
    out.reserve(found.size());
    for (const auto& m : found) {
        out.emplace_back(hot.info(m.slot).id, m.score);
    }
    return out;
}

std::vector<Result<std::vector<std::pair<std::string, double>>>>
SharedStore::recall(std::span<const engine::Cue> cues) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const engine::HotTier& hot = memory_->hot();
    std::vector<engine::MemoryView> views;
    views.reserve(hot.count());
    for (std::uint32_t slot = 0; slot < hot.slots(); ++slot) {
        const engine::SlotInfo& info = hot.info(slot);
        if (!info.live) {
            continue;
        }
        static const SlotText kNone;
        const SlotText& t = slot < texts_.size() ? texts_[slot] : kNone;
        views.push_back({info.id, t.what, t.location, info.occurred_at, hot.row(slot), true});
    }
    // Cold memories are read from storage only when a cue asks for them.
    std::deque<engine::EpisodeRecord> cold;
    std::deque<std::vector<float>> cold_units;
    const bool want_cold =
        std::any_of(cues.begin(), cues.end(), [](const engine::Cue& c) { return c.include_cold; });
    std::vector<Result<std::vector<std::pair<std::string, double>>>> out;
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
            cold.push_back(std::move(rec.value()));
            cold_units.push_back(detail::unit_vector(cold.back().episode.embedding));
            const engine::Episode& e = cold.back().episode;
            views.push_back(
                {e.id, e.what, e.location, e.occurred_at, cold_units.back().data(), false});
        }
    }
    const std::vector<std::uint32_t> by_time = engine::build_time_index(views);
    engine::RecallContext ctx;
    ctx.memories = views;
    ctx.dim = options_.memory.dim;
    ctx.pressure = memory_->pressure();
    ctx.now = engine::now_seconds();
    ctx.hot_by_time = by_time;
    auto results = engine::recall_batch(cues, ctx, engine::default_arena());
    out.reserve(results.size());
    for (auto& r : results) {
        if (!r) {
            out.emplace_back(r.status());
            continue;
        }
        std::vector<std::pair<std::string, double>> rows;
        rows.reserve(r->size());
        for (const engine::RecallResult& x : r.value()) {
            rows.emplace_back(std::string(views[x.index].id), x.confidence);
        }
        out.emplace_back(std::move(rows));
    }
    return out;
}

} // namespace engram::db
