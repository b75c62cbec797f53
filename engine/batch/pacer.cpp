#include "engine/batch/pacer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace engram::engine {

std::string_view backpressure_name(Backpressure b) noexcept {
    switch (b) {
    case Backpressure::kBlock:
        return "block";
    case Backpressure::kAdaptiveResize:
        return "adaptive_resize";
    case Backpressure::kFallback:
        return "fallback";
    }
    return "block";
}

std::optional<Backpressure> parse_backpressure(std::string_view s) noexcept {
    for (Backpressure b :
         {Backpressure::kBlock, Backpressure::kAdaptiveResize, Backpressure::kFallback}) {
        if (s == backpressure_name(b)) {
            return b;
        }
    }
    return std::nullopt;
}

Pacer::Pacer(const PacerConfig& config) noexcept
    : config_(config),
      budget_rows_(std::max<std::size_t>(kMinRows, config.budget_bytes /
                                                       std::max<std::size_t>(1, config.row_bytes))),
      rows_(budget_rows_) {}

bool Pacer::memory_short(const Pressure& p) const noexcept {
    return p.available_bytes < config_.min_free_bytes;
}

bool Pacer::tail_over(const Pressure& p) const noexcept {
    return p.unindexed > config_.max_unindexed;
}

bool Pacer::should_wait(const Pressure& p) const noexcept {
    return config_.strategy == Backpressure::kBlock && tail_over(p);
}

Step Pacer::next(const Pressure& p, std::size_t remaining) noexcept {
    Step s;
    switch (config_.strategy) {
    case Backpressure::kBlock:
        rows_ = budget_rows_;
        break;
    case Backpressure::kAdaptiveResize:
        if (memory_short(p)) {
            rows_ = kMinRows;
        }
        break;
    case Backpressure::kFallback:
        if (!single_ && (tail_over(p) || memory_short(p))) {
            single_ = true; // for the rest of this commit
        }
        rows_ = single_ ? kMinRows : budget_rows_;
        s.mode = single_ ? ApplyMode::kSingle : ApplyMode::kBatch;
        break;
    }
    s.rows = std::max<std::size_t>(1, std::min(rows_, remaining));
    return s;
}

void Pacer::record(std::size_t rows, double ms) noexcept {
    if (config_.strategy != Backpressure::kAdaptiveResize || rows < rows_) {
        return; // only full chunks say something about the chunk size
    }
    if (ms > config_.target_ms) {
        rows_ = std::max(kMinRows, rows_ / 2);
    } else if (ms < config_.target_ms / 2) {
        rows_ = std::min(budget_rows_, rows_ + std::max<std::size_t>(1, rows_ / 2));
    }
}

std::size_t available_memory_bytes() noexcept {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (f == nullptr) {
        return static_cast<std::size_t>(-1);
    }
    char line[256];
    std::size_t result = static_cast<std::size_t>(-1);
    while (std::fgets(line, sizeof line, f) != nullptr) {
        unsigned long long kb = 0;
        if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            result = static_cast<std::size_t>(kb) * 1024U;
            break;
        }
    }
    std::fclose(f);
    return result;
}

} // namespace engram::engine
