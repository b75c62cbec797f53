#include "engine/memory.hpp"

#include <algorithm>
#include <cmath>

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

StoreOutcome MemoryEngine::store(const std::string& id, const float* unit, Confidence encoding,
                                 double occurred_at) {
    StoreOutcome out;
    out.pressure = pressure();
    out.activation = store_activation(encoding, out.pressure);
    const auto activation = static_cast<float>(out.activation.value());
    const auto confidence = static_cast<float>(encoding.value());

    if (config_.dedup_threshold) {
        const auto best = hot_.best_match(unit);
        if (best && best->score >= *config_.dedup_threshold) {
            const SlotInfo& old = hot_.info(best->slot);
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
