#pragma once
// TimeIndex: the memories of a store ordered by occurred_at, kept up to date one slot at a time,
// so that recall finds the memories of a time range (temporal and context cues, the temporal
// boost's neighbours) without looking at the others.
//
// HOW IT WORKS
//   Entries are (time, slot) pairs in (time, slot) order, in two sorted arrays: a large `main_`
//   and a small `recent_`. set() inserts into recent_ (a memmove of recent_ only); when recent_
//   outgrows max(4096, main_/32) the two are merged (O(n) once per n/32 inserts). remove()
//   finds the slot's entry from the time recorded for it (binary search on (time, slot)) and
//   erases it from recent_ or marks it dead in main_ (dead entries keep their place); dead entries
//   are dropped at the next merge, or at once when they reach a quarter of main_. A visit walks
//   both arrays in step, so it sees the live entries of a range in (time, slot) order, each once.
//   NaN times are recorded (a slot has a time) but not ordered: no range contains them, as no
//   comparison holds for them.
//
// Cost: set O(log n + |recent_|) amortised, remove O(log n), a visit O(log n + entries in range).
// Memory: 16 bytes per entry plus 9 per slot.
// Thread safety: none; the owner serialises writers against readers (const members may run
// concurrently with each other).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace engram::engine {

class TimeIndex {
public:
    // Records slot at time t (replacing the slot's previous time, if any).
    void set(std::uint32_t slot, double t);
    // Forgets slot (no-op when it has no time).
    void remove(std::uint32_t slot);
    void clear();
    // Slots recorded (NaN times included).
    std::size_t size() const noexcept { return count_; }

    // Calls fn(slot, time) for every slot with lo <= time <= hi, in (time, slot) order. fn returns
    // false to stop early.
    template <class Fn> void visit(double lo, double hi, Fn&& fn) const;
    // Slots with lo <= time <= hi; dead entries of main_ may be counted (an upper bound).
    std::size_t count(double lo, double hi) const;

    std::size_t memory_bytes() const noexcept;

private:
    struct Entry {
        double t;
        std::uint32_t slot;
        std::uint32_t dead = 0; // removed, waiting for the next merge (main_ only)
    };
    static bool before(const Entry& a, const Entry& b) noexcept {
        return a.t != b.t ? a.t < b.t : a.slot < b.slot;
    }
    void merge();

    std::vector<Entry> main_;
    std::vector<Entry> recent_;
    std::size_t dead_ = 0; // dead entries in main_
    std::vector<double> time_of_;
    std::vector<std::uint8_t> has_;
    std::size_t count_ = 0;
};

template <class Fn> void TimeIndex::visit(double lo, double hi, Fn&& fn) const {
    if (!(lo <= hi)) {
        return;
    }
    auto first = [lo](const std::vector<Entry>& v) {
        std::size_t a = 0;
        std::size_t b = v.size();
        while (a < b) {
            const std::size_t m = (a + b) / 2;
            if (v[m].t < lo) {
                a = m + 1;
            } else {
                b = m;
            }
        }
        return a;
    };
    std::size_t i = first(main_);
    std::size_t j = first(recent_);
    for (;;) {
        while (i < main_.size() && main_[i].dead != 0) {
            ++i;
        }
        const bool has_main = i < main_.size() && main_[i].t <= hi;
        const bool has_recent = j < recent_.size() && recent_[j].t <= hi;
        if (!has_main && !has_recent) {
            return;
        }
        const Entry& e =
            (has_main && (!has_recent || before(main_[i], recent_[j]))) ? main_[i++] : recent_[j++];
        if (!fn(e.slot, e.t)) {
            return;
        }
    }
}

} // namespace engram::engine
