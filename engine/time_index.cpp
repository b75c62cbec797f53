// TimeIndex: memories ordered by time (contract and design in time_index.hpp).
#include "engine/time_index.hpp"

#include <algorithm>
#include <cmath>

namespace engram::engine {

void TimeIndex::set(std::uint32_t slot, double t) {
    remove(slot);
    if (time_of_.size() <= slot) {
        time_of_.resize(slot + 1, 0.0);
        has_.resize(slot + 1, 0);
    }
    time_of_[slot] = t;
    has_[slot] = 1;
    ++count_;
    if (std::isnan(t)) {
        return; // recorded, never in a range
    }
    const Entry e{t, slot, 0};
    recent_.insert(std::upper_bound(recent_.begin(), recent_.end(), e, before), e);
    if (recent_.size() > std::max<std::size_t>(4096, main_.size() / 32)) {
        merge();
    }
}

void TimeIndex::remove(std::uint32_t slot) {
    if (slot >= has_.size() || has_[slot] == 0) {
        return;
    }
    has_[slot] = 0;
    --count_;
    const double t = time_of_[slot];
    if (std::isnan(t)) {
        return;
    }
    const Entry e{t, slot, 0};
    auto r = std::lower_bound(recent_.begin(), recent_.end(), e, before);
    if (r != recent_.end() && r->slot == slot && r->t == t) {
        recent_.erase(r);
        return;
    }
    auto m = std::lower_bound(main_.begin(), main_.end(), e, before);
    if (m != main_.end() && m->slot == slot && m->t == t && m->dead == 0) {
        m->dead = 1;
        ++dead_;
    }
    if (dead_ > 1024 && dead_ > main_.size() / 4) {
        merge();
    }
}

void TimeIndex::clear() {
    main_.clear();
    recent_.clear();
    time_of_.clear();
    has_.clear();
    dead_ = 0;
    count_ = 0;
}

void TimeIndex::merge() {
    std::vector<Entry> out;
    out.reserve(main_.size() - dead_ + recent_.size());
    std::size_t j = 0;
    for (const Entry& e : main_) {
        if (e.dead != 0) {
            continue;
        }
        while (j < recent_.size() && before(recent_[j], e)) {
            out.push_back(recent_[j++]);
        }
        out.push_back(e);
    }
    out.insert(out.end(), recent_.begin() + static_cast<std::ptrdiff_t>(j), recent_.end());
    main_ = std::move(out);
    recent_.clear();
    dead_ = 0;
}

std::size_t TimeIndex::count(double lo, double hi) const {
    if (!(lo <= hi)) {
        return 0;
    }
    auto span = [&](const std::vector<Entry>& v) {
        const auto a = std::lower_bound(v.begin(), v.end(), lo,
                                        [](const Entry& x, double t) { return x.t < t; });
        const auto b =
            std::upper_bound(a, v.end(), hi, [](double t, const Entry& x) { return t < x.t; });
        return static_cast<std::size_t>(b - a);
    };
    return span(main_) + span(recent_);
}

std::size_t TimeIndex::memory_bytes() const noexcept {
    return (main_.capacity() + recent_.capacity()) * sizeof(Entry) +
           time_of_.capacity() * sizeof(double) + has_.capacity();
}

} // namespace engram::engine
