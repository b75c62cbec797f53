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
    return s;
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
    index_.emplace(info.id, s);
    by_activation_.emplace(activation, info.id);
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kAdd, s});
    }
    return s;
}

bool HotTier::remove(std::string_view id) {
    auto it = index_.find(std::string(id));
    if (it == index_.end()) {
        return false;
    }
    const std::uint32_t s = it->second;
    index_.erase(it);
    SlotInfo& info = infos_[s];
    by_activation_.erase({info.activation, info.id});
    info = SlotInfo{};
    std::memset(mutable_row(s), 0, stride_ * sizeof(float));
    free_.push_back(s);
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kRemove, s});
    }
    return true;
}

bool HotTier::update(std::string_view id, const float* unit, float confidence, double occurred_at) {
    auto it = index_.find(std::string(id));
    if (it == index_.end()) {
        return false;
    }
    std::memcpy(mutable_row(it->second), unit, dim_ * sizeof(float));
    SlotInfo& info = infos_[it->second];
    info.confidence = confidence;
    info.occurred_at = occurred_at;
    if (journal_ != nullptr) {
        journal_->push_back({TierEvent::Kind::kUpdate, it->second});
    }
    return true;
}

std::optional<std::uint32_t> HotTier::find(std::string_view id) const {
    auto it = index_.find(std::string(id));
    if (it == index_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<std::uint32_t> HotTier::eviction_candidate() const {
    if (by_activation_.empty()) {
        return std::nullopt;
    }
    return index_.at(by_activation_.begin()->second);
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
    if (k == 0 || index_.empty()) {
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

} // namespace engram::engine
