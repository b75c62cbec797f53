// The indexes behind recall: TimeIndex (ordered times) and TextIndex (candidate texts), each
// against a brute-force model under random sets, replacements and removals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/text_index.hpp"
#include "engine/time_index.hpp"

namespace engram::engine {
namespace {

TEST(TimeIndex, VisitsEveryLiveSlotOfARangeOnceInOrder) {
    std::mt19937 rng(5);
    TimeIndex idx;
    std::map<std::uint32_t, double> model;
    for (int step = 0; step < 40000; ++step) {
        const auto slot = static_cast<std::uint32_t>(rng() % 3000);
        if (rng() % 4 == 0) {
            idx.remove(slot);
            model.erase(slot);
        } else {
            // Many equal times (ties go by slot), a few NaN and infinite ones.
            double t = static_cast<double>(rng() % 500);
            if (rng() % 200 == 0) {
                t = std::numeric_limits<double>::quiet_NaN();
            } else if (rng() % 200 == 0) {
                t = -std::numeric_limits<double>::infinity();
            }
            idx.set(slot, t);
            model[slot] = t;
        }
        if (step % 997 == 0) {
            const double lo = static_cast<double>(rng() % 500) - 50.0;
            const double hi = lo + static_cast<double>(rng() % 200);
            for (const auto& [a, b] :
                 {std::pair{lo, hi}, std::pair{-std::numeric_limits<double>::infinity(), hi}}) {
                std::vector<std::pair<double, std::uint32_t>> want;
                for (const auto& [s, t] : model) {
                    if (t >= a && t <= b) {
                        want.emplace_back(t, s);
                    }
                }
                std::sort(want.begin(), want.end());
                std::vector<std::pair<double, std::uint32_t>> got;
                idx.visit(a, b, [&](std::uint32_t s, double t) {
                    got.emplace_back(t, s);
                    return true;
                });
                ASSERT_EQ(got, want) << "step " << step;
                EXPECT_GE(idx.count(a, b), want.size());
            }
            EXPECT_EQ(idx.size(), model.size());
        }
    }
}

TEST(TimeIndex, VisitStopsWhenAsked) {
    TimeIndex idx;
    for (std::uint32_t s = 0; s < 10; ++s) {
        idx.set(s, 1.0);
    }
    int seen = 0;
    idx.visit(0.0, 2.0, [&](std::uint32_t, double) { return ++seen < 3; });
    EXPECT_EQ(seen, 3);
    idx.visit(3.0, 2.0, [&](std::uint32_t, double) { return ++seen > 0; }); // empty range
    EXPECT_EQ(seen, 3);
}

std::string lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

bool word_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || u >= 0x80;
}

bool has_word(const std::string& text, std::string_view w) {
    for (std::size_t p = text.find(w); p != std::string::npos; p = text.find(w, p + 1)) {
        const std::size_t e = p + w.size();
        if ((p == 0 || !word_byte(text[p - 1])) && (e == text.size() || !word_byte(text[e]))) {
            return true;
        }
    }
    return false;
}

// Every slot a rule matches is a candidate (candidates may hold more), through rebuilds.
TEST(TextIndex, CandidatesCoverEveryMatch) {
    std::mt19937 rng(9);
    const std::vector<std::string> parts = {"Coffee", "ana",  "na", " ",      "-", "7",
                                            "77",     "café", "x",  "NUMBER", ".", "ber"};
    auto text = [&] {
        std::string t;
        const std::size_t n = rng() % 5;
        for (std::size_t i = 0; i < n; ++i) {
            t += parts[rng() % parts.size()];
        }
        return t;
    };
    TextIndex idx;
    std::map<std::uint32_t, std::string> model; // lowered texts
    std::size_t rebuilds = 0;
    for (int step = 0; step < 30000; ++step) {
        const auto slot = static_cast<std::uint32_t>(rng() % 400);
        if (rng() % 3 == 0) {
            idx.remove(slot);
            model.erase(slot);
        } else {
            const std::string t = text();
            idx.set(slot, t);
            if (t.empty()) {
                model.erase(slot);
            } else {
                model[slot] = lower(t);
            }
        }
        if (idx.garbage() > 2000 && idx.garbage() > idx.live()) {
            idx.clear(); // what the owner does on needs_rebuild(), sooner
            for (const auto& [s, t] : model) {
                idx.set(s, t);
            }
            ++rebuilds;
        }
        if (step % 301 != 0) {
            continue;
        }
        const std::string q = lower(text());
        std::vector<std::uint32_t> got;
        if (idx.containing(q, &got)) {
            const std::set<std::uint32_t> have(got.begin(), got.end());
            for (const auto& [s, t] : model) {
                if (t.find(q) != std::string::npos) {
                    ASSERT_TRUE(have.count(s)) << "containing '" << q << "' misses '" << t << "'";
                }
            }
        } else {
            EXPECT_LT(q.size(), 2U);
        }
        got.clear();
        ASSERT_TRUE(idx.within(q, &got));
        {
            const std::set<std::uint32_t> have(got.begin(), got.end());
            for (const auto& [s, t] : model) {
                if (q.find(t) != std::string::npos) {
                    ASSERT_TRUE(have.count(s)) << "within '" << q << "' misses '" << t << "'";
                }
            }
        }
        for (const std::string_view w : {"na", "77", "café", "x", "coffee", "7"}) {
            got.clear();
            idx.with_word(w, &got);
            const std::set<std::uint32_t> have(got.begin(), got.end());
            for (const auto& [s, t] : model) {
                if (has_word(t, w)) {
                    ASSERT_TRUE(have.count(s)) << "word '" << w << "' misses '" << t << "'";
                }
            }
        }
    }
    EXPECT_GT(rebuilds, 0U);
}

TEST(TextIndex, NamesFewCandidatesForASelectiveQuery) {
    TextIndex idx;
    for (std::uint32_t s = 0; s < 5000; ++s) {
        idx.set(s, "word number " + std::to_string(s));
    }
    std::vector<std::uint32_t> got;
    ASSERT_TRUE(idx.containing("number 4321", &got));
    EXPECT_LE(got.size(), 60U); // texts with a word starting "432" or so, not all 5000
    got.clear();
    idx.with_word("4321", &got);
    EXPECT_LE(got.size(), 60U);
    got.clear();
    ASSERT_TRUE(idx.within("a word number 12 here", &got));
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::uint32_t>{1, 12})); // "word number 1" is in it too
    got.clear();
    EXPECT_FALSE(idx.containing("x", &got)); // one byte: the caller scans
    EXPECT_FALSE(idx.within(std::string(TextIndex::kMaxWithin + 1, 'a'), &got));
    EXPECT_GT(idx.memory_bytes(), 0U);
}

} // namespace
} // namespace engram::engine
