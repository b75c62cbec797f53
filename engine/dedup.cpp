#include "engine/dedup.hpp"

#include <algorithm>

namespace engram::engine {
namespace {

constexpr std::size_t kSketchBits = 64;
constexpr std::size_t kRounds = 3; // sign flips and Hadamard transforms of the rotation
constexpr std::size_t kMinCells = 1024;

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// In-place fast Walsh-Hadamard transform of n (a power of two) values, unnormalised: the
// same additions in the same order for every row, whatever else is computed.
void hadamard(float* v, std::size_t n) noexcept {
    for (std::size_t h = 1; h < n; h *= 2) {
        for (std::size_t i = 0; i < n; i += 2 * h) {
            for (std::size_t j = i; j < i + h; ++j) {
                const float a = v[j];
                const float b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
        }
    }
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
    width_ = 1;
    while (width_ < std::max(config_.dim, planes_)) {
        width_ *= 2;
    }
    // The random signs of the rotation's diagonals, from (seed, index) only.
    signs_.resize(kRounds * width_);
    for (std::size_t i = 0; i < signs_.size(); ++i) {
        signs_[i] =
            (splitmix64(config_.seed ^ (i * 0x9E3779B97F4A7C15ULL)) >> 63) != 0 ? -1.0F : 1.0F;
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
    scratch->resize(width_);
    float* v = scratch->data();
    const std::size_t w = words();
    for (std::size_t r = 0; r < n; ++r) {
        // y = H D3 H D2 H D1 x: a pseudo-random rotation (Ailon-Chazelle; three rounds, as in
        // Andoni et al. 2015), whose first planes_ coordinates stand for projections on random
        // directions. Only the signs are used, so the scale of H does not matter.
        std::copy_n(rows + r * stride, config_.dim, v);
        std::fill(v + config_.dim, v + width_, 0.0F);
        for (std::size_t round = 0; round < kRounds; ++round) {
            const float* sign = &signs_[round * width_];
            for (std::size_t i = 0; i < width_; ++i) {
                v[i] *= sign[i];
            }
            hadamard(v, width_);
        }
        std::uint32_t* code = out + r * w;
        std::size_t p = 0;
        for (std::size_t t = 0; t < config_.tables; ++t) {
            std::uint32_t key = 0;
            for (std::size_t b = 0; b < config_.bits; ++b, ++p) {
                key |= static_cast<std::uint32_t>(v[p] > 0.0F) << b;
            }
            code[t] = key;
        }
        std::uint64_t sketch = 0;
        for (std::size_t b = 0; b < kSketchBits; ++b, ++p) {
            sketch |= static_cast<std::uint64_t>(v[p] > 0.0F) << b;
        }
        code[config_.tables] = static_cast<std::uint32_t>(sketch);
        code[config_.tables + 1] = static_cast<std::uint32_t>(sketch >> 32);
    }
}

void DedupIndex::candidates(const std::uint32_t* code, std::vector<std::size_t>* positions,
                            std::vector<std::uint32_t>* out) const {
    const std::uint64_t sketch = sketch_at(code);
    // The home cells of every probe first (prefetched), then the runs from them.
    positions->clear();
    for (std::size_t t = 0; t < config_.tables; ++t) {
        for (const std::uint32_t mask : masks_) {
            const std::size_t p = tables_[t].home(code[t] ^ mask);
            positions->push_back(p);
            __builtin_prefetch(&tables_[t].cells[p]);
        }
    }
    out->clear();
    std::size_t i = 0;
    for (std::size_t t = 0; t < config_.tables; ++t) {
        const Table& table = tables_[t];
        for (const std::uint32_t mask : masks_) {
            const std::uint32_t key = code[t] ^ mask;
            for (std::size_t p = (*positions)[i++];; p = (p + 1) & table.mask) {
                const std::uint64_t cell = table.cells[p];
                if (cell == kEmpty) {
                    break;
                }
                if (static_cast<std::uint32_t>(cell >> 32) != key) {
                    continue;
                }
                const auto slot = static_cast<std::uint32_t>(cell);
                if (static_cast<std::size_t>(__builtin_popcountll(sketch ^ sketches_[slot])) <=
                    config_.sketch_max) {
                    out->push_back(slot);
                }
            }
        }
    }
    // A slot can share keys in several tables.
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
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
    std::size_t n = signs_.capacity() * sizeof(float) + keys_.capacity() * 4 +
                    sketches_.capacity() * 8 + present_.capacity();
    for (const Table& t : tables_) {
        n += t.cells.capacity() * sizeof(std::uint64_t);
    }
    return n;
}

} // namespace engram::engine
