#include "engine/dedup.hpp"

#include <algorithm>
#include <cmath>

#include "engine/simd/kernels.hpp"

namespace engram::engine {
namespace {

constexpr std::size_t kSketchBits = 64;
constexpr std::size_t kMinCells = 1024;

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// A standard normal value from two counter-based uniforms (Box-Muller): the directions are a
// function of (seed, index) only.
float gaussian(std::uint64_t seed, std::uint64_t index) noexcept {
    const std::uint64_t a = splitmix64(seed ^ (2 * index));
    const std::uint64_t b = splitmix64(seed ^ (2 * index + 1));
    const double u1 = (static_cast<double>(a >> 11) + 1.0) / 9007199254740993.0; // (0, 1]
    const double u2 = static_cast<double>(b >> 11) / 9007199254740992.0;         // [0, 1)
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

} // namespace

void DedupIndex::Table::rehash(std::size_t capacity) {
    std::vector<std::uint64_t> old = std::move(cells);
    cells.assign(capacity, kEmpty);
    mask = capacity - 1;
    used = 0;
    for (const std::uint64_t c : old) {
        if (c != kEmpty && c != kGone) {
            insert(c);
        }
    }
}

void DedupIndex::Table::insert(std::uint64_t cell) {
    if (10 * (used + 1) > 7 * cells.size()) {
        // Past 70% (pairs and removed cells): double, or just drop the removed cells.
        std::size_t live = 0;
        for (const std::uint64_t c : cells) {
            live += c != kEmpty && c != kGone ? 1 : 0;
        }
        rehash(std::max(kMinCells, 10 * (live + 1) > 35 * cells.size() / 10 ? 2 * cells.size()
                                                                            : cells.size()));
    }
    std::size_t p = home(static_cast<std::uint32_t>(cell >> 32));
    while (cells[p] != kEmpty) {
        p = (p + 1) & mask;
    }
    cells[p] = cell;
    ++used;
}

void DedupIndex::Table::erase(std::uint64_t cell) {
    for (std::size_t p = home(static_cast<std::uint32_t>(cell >> 32)); cells[p] != kEmpty;
         p = (p + 1) & mask) {
        if (cells[p] == cell) {
            cells[p] = kGone;
            return;
        }
    }
}

DedupIndex::DedupIndex(const DedupIndexConfig& config) : config_(config) {
    config_.bits = std::clamp<std::size_t>(config_.bits, 8, 31);
    config_.radius = std::min<std::size_t>(config_.radius, 2);
    config_.tables = std::max<std::size_t>(config_.tables, 1);
    planes_ = config_.tables * config_.bits + kSketchBits;
    plane_stride_ = (config_.dim + 15) / 16 * 16;
    directions_.assign(planes_ * plane_stride_, 0.0F);
    for (std::size_t p = 0; p < planes_; ++p) {
        float* u = &directions_[p * plane_stride_];
        for (std::size_t d = 0; d < config_.dim; ++d) {
            u[d] = gaussian(config_.seed, p * config_.dim + d);
        }
    }
    masks_.push_back(0);
    for (std::size_t i = 0; i < config_.bits && config_.radius >= 1; ++i) {
        masks_.push_back(1U << i);
    }
    for (std::size_t i = 0; i < config_.bits && config_.radius >= 2; ++i) {
        for (std::size_t j = i + 1; j < config_.bits; ++j) {
            masks_.push_back((1U << i) | (1U << j));
        }
    }
    tables_.resize(config_.tables);
    for (Table& t : tables_) {
        t.rehash(kMinCells);
    }
}

void DedupIndex::codes(const float* rows, std::size_t stride, std::size_t n, std::uint32_t* out,
                       std::vector<float>* scratch) const {
    constexpr std::size_t kRows = 64; // rows projected per blocked product
    const simd::KernelTable& k = simd::kernels();
    scratch->resize(kRows * planes_);
    const std::size_t w = words();
    for (std::size_t r0 = 0; r0 < n; r0 += kRows) {
        const std::size_t nr = std::min(kRows, n - r0);
        k.dot_block(rows + r0 * stride, stride, nr, directions_.data(), plane_stride_, planes_,
                    config_.dim, scratch->data());
        for (std::size_t i = 0; i < nr; ++i) {
            const float* proj = scratch->data() + i * planes_;
            std::uint32_t* code = out + (r0 + i) * w;
            std::size_t p = 0;
            for (std::size_t t = 0; t < config_.tables; ++t) {
                std::uint32_t key = 0;
                for (std::size_t b = 0; b < config_.bits; ++b, ++p) {
                    key |= static_cast<std::uint32_t>(proj[p] > 0.0F) << b;
                }
                code[t] = key;
            }
            std::uint64_t sketch = 0;
            for (std::size_t b = 0; b < kSketchBits; ++b, ++p) {
                sketch |= static_cast<std::uint64_t>(proj[p] > 0.0F) << b;
            }
            code[config_.tables] = static_cast<std::uint32_t>(sketch);
            code[config_.tables + 1] = static_cast<std::uint32_t>(sketch >> 32);
        }
    }
}

void DedupIndex::add(std::uint32_t slot, const std::uint32_t* code) {
    if (present_.size() <= slot) {
        const std::size_t n = std::max<std::size_t>(slot + 1, present_.size() * 2);
        present_.resize(n, 0);
        sketches_.resize(n, 0);
        keys_.resize(n * config_.tables, 0);
    }
    if (present_[slot] != 0) {
        remove(slot);
    }
    for (std::size_t t = 0; t < config_.tables; ++t) {
        tables_[t].insert(static_cast<std::uint64_t>(code[t]) << 32 | slot);
        keys_[slot * config_.tables + t] = code[t];
    }
    sketches_[slot] = sketch_at(code);
    present_[slot] = 1;
    ++size_;
}

void DedupIndex::remove(std::uint32_t slot) {
    if (!contains(slot)) {
        return;
    }
    for (std::size_t t = 0; t < config_.tables; ++t) {
        tables_[t].erase(static_cast<std::uint64_t>(keys_[slot * config_.tables + t]) << 32 | slot);
    }
    present_[slot] = 0;
    --size_;
}

std::size_t DedupIndex::memory_bytes() const noexcept {
    std::size_t n = directions_.capacity() * sizeof(float) + keys_.capacity() * 4 +
                    sketches_.capacity() * 8 + present_.capacity();
    for (const Table& t : tables_) {
        n += t.cells.capacity() * sizeof(std::uint64_t);
    }
    return n;
}

} // namespace engram::engine
