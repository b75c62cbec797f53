#include "engine/memory.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/batch/executor.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {

Status MemoryConfig::validate() const {
    if (dim < 1 || dim > 4096) {
        return Status::invalid("dim must be between 1 and 4096, got " + std::to_string(dim));
    }
    if (capacity < 1) {
        return Status::invalid("capacity must be at least 1, got " + std::to_string(capacity));
    }
    if (dedup_threshold && !(*dedup_threshold > 0.0 && *dedup_threshold <= 1.0)) {
        return Status::invalid("dedup must be 'off' or a cosine in (0, 1], got " +
                               std::to_string(*dedup_threshold));
    }
    return Status::ok();
}

MemoryEngine::MemoryEngine(const MemoryConfig& config) : config_(config), hot_(config.dim) {}

double MemoryEngine::pressure() const noexcept {
    return std::min(1.0, static_cast<double>(hot_.count()) / static_cast<double>(config_.capacity));
}

float MemoryEngine::score(const float* unit, std::uint32_t slot) const noexcept {
    return std::clamp(simd::kernels().dot(unit, hot_.row(slot), config_.dim), -1.0F, 1.0F);
}

std::size_t MemoryEngine::exact_window() const noexcept {
    if (dedup_ || !config_.dedup_threshold) {
        return 0;
    }
    if (config_.dedup_exact) {
        return static_cast<std::size_t>(-1);
    }
    return hot_.count() < kIndexAfter ? kIndexAfter - hot_.count() : 1;
}

std::optional<Duplicate> MemoryEngine::find_duplicate(const float* unit) const {
    if (!config_.dedup_threshold || hot_.count() == 0) {
        return std::nullopt;
    }
    const auto threshold = static_cast<float>(*config_.dedup_threshold);
    std::optional<Duplicate> best;
    auto consider = [&](std::uint32_t s, float exact) {
        if (!(exact >= threshold)) {
            return;
        }
        if (!best || exact > best->score ||
            (exact == best->score && hot_.info(s).id < hot_.info(best->slot).id)) {
            best = Duplicate{s, exact};
        }
    };
    if (dedup_) {
        std::vector<std::uint32_t> code(dedup_->words());
        std::vector<float> scratch;
        dedup_->codes(unit, config_.dim, 1, code.data(), &scratch);
        std::vector<std::uint32_t> cands;
        std::vector<std::size_t> positions;
        dedup_->candidates(code.data(), &positions, &cands);
        for (const std::uint32_t s : cands) {
            consider(s, score(unit, s));
        }
        return best;
    }
    std::vector<float> screen(hot_.slots());
    hot_.score_all(unit, screen.data());
    for (std::uint32_t s = 0; s < screen.size(); ++s) {
        if (hot_.info(s).live && screen[s] >= threshold - kScreenSlack) {
            consider(s, score(unit, s));
        }
    }
    return best;
}

StoreOutcome MemoryEngine::store(const std::string& id, const float* unit, Confidence encoding,
                                 double occurred_at) {
    return store_resolved(id, unit, encoding, occurred_at, find_duplicate(unit));
}

StoreOutcome MemoryEngine::store_resolved(const std::string& id, const float* unit,
                                          Confidence encoding, double occurred_at,
                                          std::optional<Duplicate> dup, const std::uint32_t* code) {
    StoreOutcome out;
    out.pressure = pressure();
    out.activation = store_activation(encoding, out.pressure);
    const auto activation = static_cast<float>(out.activation.value());
    const auto confidence = static_cast<float>(encoding.value());

    if (dup) {
        const SlotInfo& old = hot_.info(dup->slot);
        out.duplicate_of = old.id;
        if (confidence > old.confidence) {
            // Replace: the old memory goes, the new one takes its place; count unchanged.
            out.kind = StoreKind::kReplaced;
            remove_hot(out.duplicate_of);
            index_add(hot_.insert(id, unit, activation, confidence, occurred_at), unit, code);
        } else {
            out.kind = StoreKind::kSkipped;
            out.activation = Activation(out.activation.value() * 0.9);
        }
        return out;
    }
    if (hot_.count() >= config_.capacity) {
        if (const auto victim = hot_.eviction_candidate()) {
            out.evicted_id = hot_.info(*victim).id;
            remove_hot(out.evicted_id);
        }
    }
    index_add(hot_.insert(id, unit, activation, confidence, occurred_at), unit, code);
    maybe_start_index();
    return out;
}

bool MemoryEngine::remove(std::string_view id) {
    if (!remove_hot(id)) {
        return false;
    }
    // Below kIndexAfter the exact scan takes over again: which of the two finds candidates is a
    // function of the hot tier alone, whatever happened before.
    if (dedup_ && hot_.count() < kIndexAfter) {
        dedup_.reset();
    }
    return true;
}

bool MemoryEngine::remove_hot(std::string_view id) {
    const auto slot = hot_.find(id);
    if (!slot) {
        return false;
    }
    if (dedup_) {
        dedup_->remove(*slot);
    }
    return hot_.remove(id);
}

bool MemoryEngine::update(std::string_view id, const float* unit, float confidence,
                          double occurred_at) {
    const auto slot = hot_.find(id);
    if (!slot) {
        return false;
    }
    if (dedup_) {
        dedup_->remove(*slot);
    }
    hot_.update(id, unit, confidence, occurred_at);
    index_add(*slot, unit, nullptr);
    return true;
}

void MemoryEngine::index_add(std::uint32_t slot, const float* unit, const std::uint32_t* code) {
    if (!dedup_) {
        return;
    }
    if (code == nullptr) {
        code_scratch_.resize(dedup_->words());
        dedup_->codes(unit, config_.dim, 1, code_scratch_.data(), &proj_scratch_);
        code = code_scratch_.data();
    }
    dedup_->add(slot, code);
}

void MemoryEngine::maybe_start_index() {
    if (dedup_ || !config_.dedup_threshold || config_.dedup_exact || hot_.count() < kIndexAfter) {
        return;
    }
    rebuild_dedup(default_arena());
}

void MemoryEngine::restore(const std::string& id, const float* unit, double activation,
                           double confidence, double occurred_at) {
    hot_.insert(id, unit, static_cast<float>(activation), static_cast<float>(confidence),
                occurred_at);
}

void MemoryEngine::rebuild_dedup(tbb::task_arena& arena) {
    dedup_.reset();
    if (!config_.dedup_threshold || config_.dedup_exact || hot_.count() < kIndexAfter) {
        return; // the exact scan
    }
    DedupIndexConfig dc;
    dc.dim = config_.dim;
    auto index = std::make_unique<DedupIndex>(dc);
    // Codes of every slot, 64 consecutive slots (contiguous rows of one chunk) per task.
    constexpr std::size_t kRun = 64;
    static_assert(HotTier::kChunkRows % kRun == 0, "runs never cross a chunk");
    const std::size_t slots = hot_.slots();
    const std::size_t w = index->words();
    std::vector<std::uint32_t> codes(slots * w);
    parallel_ranges(
        arena, (slots + kRun - 1) / kRun, 1, [&](const tbb::blocked_range<std::size_t>& range) {
            std::vector<float> scratch;
            for (std::size_t b = range.begin(); b != range.end(); ++b) {
                const auto first = static_cast<std::uint32_t>(b * kRun);
                const std::size_t n = std::min(kRun, slots - first);
                index->codes(hot_.row(first), hot_.stride(), n, &codes[first * w], &scratch);
            }
        });
    for (std::uint32_t s = 0; s < slots; ++s) {
        if (hot_.info(s).live) {
            index->add(s, &codes[s * w]);
        }
    }
    dedup_ = std::move(index);
}

} // namespace engram::engine
