#include "engine/memory.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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

std::optional<Duplicate> MemoryEngine::find_duplicate(const float* unit) const {
    if (!config_.dedup_threshold || hot_.count() == 0) {
        return std::nullopt;
    }
    const auto threshold = static_cast<float>(*config_.dedup_threshold);
    std::vector<float> screen(hot_.slots());
    hot_.score_all(unit, screen.data());
    std::optional<Duplicate> best;
    for (std::uint32_t s = 0; s < screen.size(); ++s) {
        if (!hot_.info(s).live || !(screen[s] >= threshold - kScreenSlack)) {
            continue;
        }
        const float exact = score(unit, s);
        if (!(exact >= threshold)) {
            continue;
        }
        if (!best || exact > best->score ||
            (exact == best->score && hot_.info(s).id < hot_.info(best->slot).id)) {
            best = Duplicate{s, exact};
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
                                          std::optional<Duplicate> dup) {
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
            hot_.remove(out.duplicate_of);
            hot_.insert(id, unit, activation, confidence, occurred_at);
        } else {
            out.kind = StoreKind::kSkipped;
            out.activation = Activation(out.activation.value() * 0.9);
        }
        return out;
    }
    if (hot_.count() >= config_.capacity) {
        if (const auto victim = hot_.eviction_candidate()) {
            out.evicted_id = hot_.info(*victim).id;
            hot_.remove(out.evicted_id);
        }
    }
    hot_.insert(id, unit, activation, confidence, occurred_at);
    return out;
}

void MemoryEngine::restore(const std::string& id, const float* unit, double activation,
                           double confidence, double occurred_at) {
    hot_.insert(id, unit, static_cast<float>(activation), static_cast<float>(confidence),
                occurred_at);
}

} // namespace engram::engine
