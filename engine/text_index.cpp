// TextIndex: trigram and whole-text candidate lookups (contract and design in text_index.hpp).
#include "engine/text_index.hpp"

#include <algorithm>
#include <string>

namespace engram::engine {
namespace {

constexpr unsigned char kSep = 0;

// The mapped form of one byte: lowered word bytes, the separator for every other byte.
unsigned char map_byte(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 'A' && u <= 'Z') {
        return static_cast<unsigned char>(u - 'A' + 'a');
    }
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || u >= 0x80) {
        return u;
    }
    return kSep;
}

std::uint32_t key_of(unsigned char a, unsigned char b, unsigned char c) noexcept {
    return (static_cast<std::uint32_t>(a) << 16) | (static_cast<std::uint32_t>(b) << 8) | c;
}

// The bytes a mapped string can hold: the separator, digits, lower-case letters, bytes >= 0x80.
const std::vector<unsigned char>& alphabet() {
    static const std::vector<unsigned char> all = [] {
        std::vector<unsigned char> v{kSep};
        for (int c = '0'; c <= '9'; ++c) {
            v.push_back(static_cast<unsigned char>(c));
        }
        for (int c = 'a'; c <= 'z'; ++c) {
            v.push_back(static_cast<unsigned char>(c));
        }
        for (int c = 0x80; c <= 0xFF; ++c) {
            v.push_back(static_cast<unsigned char>(c));
        }
        return v;
    }();
    return all;
}

constexpr std::uint64_t kFnvBasis = 1469598103934665603ULL;
constexpr std::uint64_t kFnvPrime = 1099511628211ULL;

std::uint64_t fnv_step(std::uint64_t h, char c) noexcept {
    const char lowered = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return (h ^ static_cast<unsigned char>(lowered)) * kFnvPrime;
}

std::string mapped(std::string_view s) {
    std::string out(s.size(), '\0');
    std::transform(s.begin(), s.end(), out.begin(),
                   [](char c) { return static_cast<char>(map_byte(c)); });
    return out;
}

} // namespace

void TextIndex::set(std::uint32_t slot, std::string_view text) {
    remove(slot);
    if (text.empty()) {
        return;
    }
    if (postings_of_.size() <= slot) {
        postings_of_.resize(slot + 1, 0);
        length_of_.resize(slot + 1, 0);
    }
    // The padded mapped form, its distinct trigrams, one posting each.
    std::string p;
    p.reserve(text.size() + 3);
    p.push_back(static_cast<char>(kSep));
    p += mapped(text);
    p.push_back(static_cast<char>(kSep));
    p.push_back(static_cast<char>(kSep));
    thread_local std::vector<std::uint32_t> keys;
    keys.clear();
    for (std::size_t i = 0; i + 3 <= p.size(); ++i) {
        keys.push_back(key_of(static_cast<unsigned char>(p[i]),
                              static_cast<unsigned char>(p[i + 1]),
                              static_cast<unsigned char>(p[i + 2])));
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::uint32_t k : keys) {
        grams_[k].push_back(slot);
    }
    postings_of_[slot] = static_cast<std::uint32_t>(keys.size());
    live_ += keys.size();
    // The whole lowered text, for within().
    std::uint64_t h = kFnvBasis;
    for (const char c : text) {
        h = fnv_step(h, c);
    }
    put_whole(h, slot);
    length_of_[slot] = static_cast<std::uint32_t>(std::min(text.size(), kMaxWithin + 1));
    if (text.size() <= kMaxWithin) {
        if (lengths_.size() <= text.size()) {
            lengths_.resize(text.size() + 1, 0);
        }
        ++lengths_[text.size()];
    }
}

void TextIndex::put_whole(std::uint64_t hash, std::uint32_t slot) {
    if (2 * (whole_used_ + 1) > whole_.size()) {
        std::vector<Cell> old = std::move(whole_);
        whole_.assign(std::max<std::size_t>(64, 2 * old.size()), Cell{});
        whole_used_ = 0;
        for (const Cell& c : old) {
            if (c.used != 0) {
                put_whole(c.hash, c.slot);
            }
        }
    }
    const std::size_t mask = whole_.size() - 1;
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    while (whole_[i].used != 0) {
        i = (i + 1) & mask;
    }
    whole_[i] = Cell{hash, slot, 1};
    ++whole_used_;
}

void TextIndex::remove(std::uint32_t slot) {
    if (slot >= postings_of_.size() || postings_of_[slot] == 0) {
        return;
    }
    live_ -= postings_of_[slot];
    garbage_ += postings_of_[slot] + 1; // + its whole-text cell
    postings_of_[slot] = 0;
    const std::uint32_t len = length_of_[slot];
    if (len <= kMaxWithin) {
        --lengths_[len];
    }
}

void TextIndex::clear() {
    grams_.clear();
    whole_.clear();
    whole_used_ = 0;
    postings_of_.clear();
    length_of_.clear();
    lengths_.clear();
    live_ = 0;
    garbage_ = 0;
}

void TextIndex::candidates(std::string_view m, std::vector<std::uint32_t>* out) const {
    thread_local std::vector<const std::vector<std::uint32_t>*> lists;
    lists.clear();
    for (std::size_t i = 0; i + 3 <= m.size(); ++i) {
        const auto it = grams_.find(key_of(static_cast<unsigned char>(m[i]),
                                           static_cast<unsigned char>(m[i + 1]),
                                           static_cast<unsigned char>(m[i + 2])));
        if (it == grams_.end()) {
            return; // a trigram no text has: no candidate
        }
        lists.push_back(&it->second);
    }
    std::sort(lists.begin(), lists.end(), [](const auto* a, const auto* b) {
        return a->size() != b->size() ? a->size() < b->size() : a < b;
    });
    lists.erase(std::unique(lists.begin(), lists.end()), lists.end());
    const std::vector<std::uint32_t>& first = *lists.front();
    if (lists.size() == 1 || first.size() <= kFewCandidates) {
        out->insert(out->end(), first.begin(), first.end());
        return;
    }
    // Intersect the shortest list with the next ones while they are cheap to read next to
    // what checking the candidates would cost.
    thread_local std::vector<std::uint32_t> cand;
    thread_local std::vector<std::uint8_t> hit;
    cand.assign(first.begin(), first.end());
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    for (std::size_t l = 1; l < lists.size() && cand.size() > kFewCandidates; ++l) {
        const std::vector<std::uint32_t>& next = *lists[l];
        if (next.size() > kIntersectRatio * cand.size()) {
            break; // sorted by size: the rest are longer still
        }
        hit.assign(cand.size(), 0);
        for (const std::uint32_t slot : next) {
            const auto at = std::lower_bound(cand.begin(), cand.end(), slot);
            if (at != cand.end() && *at == slot) {
                hit[static_cast<std::size_t>(at - cand.begin())] = 1;
            }
        }
        std::size_t w = 0;
        for (std::size_t i = 0; i < cand.size(); ++i) {
            if (hit[i] != 0) {
                cand[w++] = cand[i];
            }
        }
        cand.resize(w);
    }
    out->insert(out->end(), cand.begin(), cand.end());
}

bool TextIndex::containing(std::string_view q, std::vector<std::uint32_t>* out) const {
    const std::string m = mapped(q);
    if (m.size() < 2) {
        return false;
    }
    if (m.size() == 2) {
        // Every position of a text starts a trigram (two separators pad the end).
        for (const unsigned char c : alphabet()) {
            const auto it = grams_.find(
                key_of(static_cast<unsigned char>(m[0]), static_cast<unsigned char>(m[1]), c));
            if (it != grams_.end()) {
                out->insert(out->end(), it->second.begin(), it->second.end());
            }
        }
        return true;
    }
    candidates(m, out);
    return true;
}

void TextIndex::with_word(std::string_view word, std::vector<std::uint32_t>* out) const {
    std::string m;
    m.reserve(word.size() + 2);
    m.push_back(static_cast<char>(kSep));
    m += mapped(word);
    m.push_back(static_cast<char>(kSep));
    candidates(m, out);
}

bool TextIndex::within(std::string_view q, std::vector<std::uint32_t>* out) const {
    if (q.size() > kMaxWithin) {
        return false;
    }
    if (whole_.empty() || q.empty()) {
        return true;
    }
    const std::size_t mask = whole_.size() - 1;
    const std::size_t longest = std::min(q.size(), lengths_.empty() ? 0 : lengths_.size() - 1);
    for (std::size_t i = 0; i < q.size(); ++i) {
        std::uint64_t h = kFnvBasis;
        for (std::size_t len = 1; len <= longest && i + len <= q.size(); ++len) {
            h = fnv_step(h, q[i + len - 1]);
            if (lengths_[len] == 0) {
                continue;
            }
            for (std::size_t c = static_cast<std::size_t>(h) & mask; whole_[c].used != 0;
                 c = (c + 1) & mask) {
                if (whole_[c].hash == h) {
                    out->push_back(whole_[c].slot);
                }
            }
        }
    }
    return true;
}

std::size_t TextIndex::memory_bytes() const noexcept {
    std::size_t bytes = whole_.capacity() * sizeof(Cell) +
                        (postings_of_.capacity() + length_of_.capacity() + lengths_.capacity()) *
                            sizeof(std::uint32_t);
    // Hash nodes: key, vector header and next pointer, plus the bucket array.
    bytes += grams_.bucket_count() * sizeof(void*) +
             grams_.size() *
                 (sizeof(std::uint32_t) + sizeof(std::vector<std::uint32_t>) + 2 * sizeof(void*));
    for (const auto& [key, list] : grams_) {
        bytes += list.capacity() * sizeof(std::uint32_t);
    }
    return bytes;
}

} // namespace engram::engine
