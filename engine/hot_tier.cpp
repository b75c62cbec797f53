#include "engine/hot_tier.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <queue>

#include "engine/pool.hpp"
#include "engine/simd/kernels.hpp"

namespace engram::engine {

HotTier::HotTier(std::size_t dim) : dim_(dim), stride_((dim + 15) / 16 * 16) {}

HotTier::~HotTier() {
    for (float* c : chunks_) {
        chunk_free(c, kChunkRows * stride_ * sizeof(float));
    }
}

std::uint32_t HotTier::allocate_slot() {
    if (!free_.empty()) {
        const std::uint32_t s = free_.back();
        free_.pop_back();
        return s;
    }
    const auto s = static_cast<std::uint32_t>(infos_.size());
    if (s % kChunkRows == 0) {
        const std::size_t bytes = kChunkRows * stride_ * sizeof(float);
        chunks_.reserve(chunks_.size() + 1);
        chunks_.push_back(static_cast<float*>(chunk_zalloc(bytes, kAlign, chunks_.size())));
    }
    infos_.emplace_back();
    heap_pos_.push_back(kNoPos);
    return s;
}

std::size_t HotTier::probe(std::string_view id) const noexcept {
    if (table_.empty()) {
        return std::string_view::npos;
    }
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = std::hash<std::string_view>()(id) & mask;; i = (i + 1) & mask) {
        const std::uint32_t e = table_[i];
        if (e == 0) {
            return std::string_view::npos;
        }
        if (e != kTombstone && infos_[e - 1].id == id) {
            return i;
        }
    }
}

void HotTier::table_grow() {
    std::size_t size = 16;
    while (size < 4 * (live_ + 1)) {
        size *= 2;
    }
    std::vector<std::uint32_t> old(size, 0);
    old.swap(table_);
    table_used_ = 0;
    const std::size_t mask = table_.size() - 1;
    for (const std::uint32_t e : old) {
        if (e != 0 && e != kTombstone) {
            std::size_t i = std::hash<std::string_view>()(infos_[e - 1].id) & mask;
            while (table_[i] != 0) {
                i = (i + 1) & mask;
            }
            table_[i] = e;
            ++table_used_;
        }
    }
}

void HotTier::table_insert(std::uint32_t slot) {
    if (2 * (table_used_ + 1) > table_.size()) { // load (live + tombstones) at most 1/2
        table_grow();
    }
    const std::size_t mask = table_.size() - 1;
    std::size_t i = std::hash<std::string_view>()(infos_[slot].id) & mask;
    while (table_[i] != 0 && table_[i] != kTombstone) {
        i = (i + 1) & mask;
    }
    table_used_ += table_[i] == 0 ? 1 : 0;
    table_[i] = slot + 1;
}

bool HotTier::evicts_before(std::uint32_t a, std::uint32_t b) const noexcept {
    const SlotInfo& x = infos_[a];
    const SlotInfo& y = infos_[b];
    if (x.activation != y.activation) {
        return x.activation < y.activation;
    }
    return x.id < y.id;
}

void HotTier::heap_swap(std::size_t i, std::size_t j) noexcept {
    std::swap(heap_[i], heap_[j]);
    heap_pos_[heap_[i]] = static_cast<std::uint32_t>(i);
    heap_pos_[heap_[j]] = static_cast<std::uint32_t>(j);
}

void HotTier::heap_up(std::size_t i) noexcept {
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!evicts_before(heap_[i], heap_[parent])) {
            return;
        }
        heap_swap(i, parent);
        i = parent;
    }
}

void HotTier::heap_down(std::size_t i) noexcept {
    for (;;) {
        std::size_t best = i;
        for (const std::size_t c : {2 * i + 1, 2 * i + 2}) {
            if (c < heap_.size() && evicts_before(heap_[c], heap_[best])) {
                best = c;
            }
        }
        if (best == i) {
            return;
        }
        heap_swap(i, best);
        i = best;
    }
}

void HotTier::heap_push(std::uint32_t slot) {
    heap_pos_[slot] = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(slot);
    heap_up(heap_.size() - 1);
}

void HotTier::heap_erase(std::uint32_t slot) {
    const std::size_t i = heap_pos_[slot];
    heap_pos_[slot] = kNoPos;
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
        heap_[i] = heap_[last];
        heap_pos_[heap_[i]] = static_cast<std::uint32_t>(i);
    }
    heap_.pop_back();
    if (i < heap_.size()) {
        const std::uint32_t moved = heap_[i];
        heap_up(i);
        heap_down(heap_pos_[moved]);
    }
}

void HotTier::prepare_slots(std::size_t n) {
    while (infos_.size() < n) {
        free_.clear();
        allocate_slot();
    }
    free_.clear();
}

void HotTier::insert_at(std::uint32_t slot, std::string_view id, const float* unit,
                        float activation, float confidence, double occurred_at) {
    free_.assign(1, slot); // insert() takes its slot from the free list
    insert(id, unit, activation, confidence, occurred_at);
}

void HotTier::finish_layout() {
    free_.clear();
    for (std::uint32_t s = static_cast<std::uint32_t>(infos_.size()); s-- > 0;) {
        if (!infos_[s].live) {
            free_.push_back(s);
        }
    }
}

std::uint32_t HotTier::insert(std::string_view id, const float* unit, float activation,
                              float confidence, double occurred_at) {
    const std::uint32_t s = allocate_slot();
    float* r = mutable_row(s);
    std::memcpy(r, unit, dim_ * sizeof(float));
    SlotInfo& info = infos_[s];
    info.id.assign(id);
    info.serial = next_serial_++;
    info.activation = activation;
    info.confidence = confidence;
    info.occurred_at = occurred_at;
    info.live = true;
    ++live_;
    table_insert(s);
    heap_push(s);
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kAdd, s});
    }
    return s;
}

bool HotTier::remove(std::string_view id) {
    const std::size_t at = probe(id);
    if (at == std::string_view::npos) {
        return false;
    }
    const std::uint32_t s = table_[at] - 1;
    table_[at] = kTombstone;
    --live_;
    heap_erase(s);
    SlotInfo& info = infos_[s];
    info.id.clear(); // keeps its capacity for the slot's next id
    info.serial = 0;
    info.activation = 0.0F;
    info.confidence = 0.0F;
    info.occurred_at = 0.0;
    info.live = false;
    std::memset(mutable_row(s), 0, stride_ * sizeof(float));
    free_.push_back(s);
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kRemove, s});
    }
    return true;
}

bool HotTier::update(std::string_view id, const float* unit, float confidence, double occurred_at) {
    const auto slot = find(id);
    if (!slot) {
        return false;
    }
    std::memcpy(mutable_row(*slot), unit, dim_ * sizeof(float));
    SlotInfo& info = infos_[*slot];
    info.confidence = confidence;
    info.occurred_at = occurred_at;
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kUpdate, *slot});
    }
    return true;
}

std::optional<std::uint32_t> HotTier::find(std::string_view id) const {
    const std::size_t at = probe(id);
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    return table_[at] - 1;
}

std::optional<std::uint32_t> HotTier::eviction_candidate() const {
    if (heap_.empty()) {
        return std::nullopt;
    }
    return heap_.front();
}

void HotTier::score_all(const float* unit, float* out) const {
    const simd::KernelTable& k = simd::kernels();
    const std::size_t n = infos_.size();
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
        const std::size_t first = c * kChunkRows;
        const std::size_t rows = std::min(kChunkRows, n - first);
        k.dot_many(unit, chunks_[c], stride_, rows, dim_, out + first);
    }
}

namespace {
// Strict "better than" for results: higher score, then smaller id.
struct Better {
    const std::vector<SlotInfo>* infos;
    bool operator()(const Match& a, const Match& b) const {
        if (a.score != b.score) {
            return a.score > b.score;
        }
        return (*infos)[a.slot].id < (*infos)[b.slot].id;
    }
};
} // namespace

std::optional<Match> HotTier::best_match(const float* unit) const {
    auto r = top_k(unit, 1, -2.0F);
    if (r.empty()) {
        return std::nullopt;
    }
    return r.front();
}

std::vector<Match> HotTier::top_k(const float* unit, std::size_t k, float threshold) const {
    std::vector<Match> out;
    if (k == 0 || live_ == 0) {
        return out;
    }
    std::vector<float> scores(infos_.size());
    score_all(unit, scores.data());
    const Better better{&infos_};
    // Max-heap on "worse" keeps the k best seen so far at the cost of log k per candidate.
    std::priority_queue<Match, std::vector<Match>, Better> heap(better);
    for (std::uint32_t s = 0; s < infos_.size(); ++s) {
        if (!infos_[s].live) {
            continue;
        }
        const float score = std::clamp(scores[s], -1.0F, 1.0F);
        if (!(score >= threshold)) {
            continue;
        }
        const Match m{s, score};
        if (heap.size() < k) {
            heap.push(m);
        } else if (better(m, heap.top())) {
            heap.pop();
            heap.push(m);
        }
    }
    out.reserve(heap.size());
    while (!heap.empty()) {
        out.push_back(heap.top());
        heap.pop();
    }
    std::reverse(out.begin(), out.end());
    return out;
}

HotTierMemory HotTier::memory() const {
    HotTierMemory m;
    m.rows = chunks_.size() * kChunkRows * stride_ * sizeof(float);
    m.ids = infos_.capacity() * sizeof(SlotInfo) + chunks_.capacity() * sizeof(float*) +
            (free_.capacity() + table_.capacity() + heap_.capacity() + heap_pos_.capacity()) *
                sizeof(std::uint32_t);
    for (const SlotInfo& info : infos_) {
        if (info.id.capacity() > std::string().capacity()) { // beyond the inline buffer
            m.ids += info.id.capacity() + 1;
        }
    }
    return m;
}

} // namespace engram::engine
