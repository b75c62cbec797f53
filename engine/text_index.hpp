#pragma once
// TextIndex: candidate lookups over one text per slot (a memory's `what`, or its location), for
// the recall rules of DESIGN §2 that compare texts: "text contains the query", "the query
// contains the text" and "text has this word" — without reading every text.
//
// HOW IT WORKS
//   Texts are seen ASCII-lowered with every byte that is not a word byte (ASCII letters and
//   digits, bytes >= 0x80: recall.hpp's words) mapped to one separator, and padded with one
//   separator before and two after. Each distinct trigram of that form is a 24-bit key with a
//   posting list of slots (unsorted, appended).
//   - containing(q): a text containing q contains every trigram of q's mapped form, so it is in
//     each of their posting lists: the shortest, intersected with the next shortest ones while
//     they are short enough to be worth reading (for a 2-byte q, the union of the lists of its
//     ~165 possible 3-byte extensions; 1-byte queries are not answered).
//   - with_word(w): a text has the word w when its mapped form contains separator, w, separator:
//     the same intersection over the trigrams of that string.
//   - within(q): texts equal to a substring of q, from a hash table of whole lowered texts: each
//     substring of q whose length some text has is hashed (incrementally per start) and looked up.
//   Lists are never edited in place: set() appends the slot's new trigrams, remove() only counts
//   the old ones as garbage, and rebuild is the owner's call when garbage() exceeds live()
//   (needs_rebuild()). Candidates are therefore a superset — stale, freed or duplicate slots
//   included — and the caller checks each against the current text, as recall does anyway.
//
// Cost: set O(|text|) amortised; containing / with_word O(|q| + the lists read); within
// O(|q|²) hash steps (queries up to kMaxWithin bytes). Memory: 4 bytes per distinct trigram of
// each text (plus list slack) and 16-32 bytes per text in the whole-text table.
// Thread safety: none; the owner serialises writers against readers (const members may run
// concurrently with each other).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace engram::engine {

class TextIndex {
public:
    // Queries longer than this are not answered by within() (the caller scans).
    static constexpr std::size_t kMaxWithin = 4096;

    // Indexes slot's text (the slot's previous text becomes garbage). An empty text is only
    // forgotten: no rule matches an empty text through the index.
    void set(std::uint32_t slot, std::string_view text);
    void remove(std::uint32_t slot);
    void clear();

    // Candidate slots (appended to *out) whose lowered text contains `lowered_query`. False when
    // the query is too short to answer from the index (the caller must scan).
    bool containing(std::string_view lowered_query, std::vector<std::uint32_t>* out) const;
    // Candidate slots whose text has `lowered_word` (a run of word bytes) as a whole word.
    void with_word(std::string_view lowered_word, std::vector<std::uint32_t>* out) const;
    // Candidate slots whose lowered text equals a non-empty substring of `lowered_query`. False
    // when the query is longer than kMaxWithin (the caller must scan).
    bool within(std::string_view lowered_query, std::vector<std::uint32_t>* out) const;

    std::size_t live() const noexcept { return live_; }
    std::size_t garbage() const noexcept { return garbage_; }
    // The owner should clear() and set() every live text again (garbage outweighs the index).
    bool needs_rebuild() const noexcept {
        return garbage_ > (std::size_t{1} << 16) && garbage_ > live_;
    }
    std::size_t memory_bytes() const noexcept;

private:
    struct Cell {
        std::uint64_t hash = 0;
        std::uint32_t slot = 0;
        std::uint32_t used = 0;
    };
    // Appends the slots in every posting list of the trigrams of a mapped string (at least 3
    // bytes): the shortest list, intersected with the next shortest while each is at most
    // kIntersectRatio times the candidates left and more than kFewCandidates are left.
    void candidates(std::string_view mapped, std::vector<std::uint32_t>* out) const;
    static constexpr std::size_t kFewCandidates = 32;
    static constexpr std::size_t kIntersectRatio = 16;
    void put_whole(std::uint64_t hash, std::uint32_t slot);

    std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> grams_;
    std::vector<Cell> whole_; // open addressing, power-of-two size, never deleted from
    std::size_t whole_used_ = 0;
    // Per slot: postings of its current text (0: none) and its length (for the length counts).
    std::vector<std::uint32_t> postings_of_;
    std::vector<std::uint32_t> length_of_;
    std::vector<std::uint32_t> lengths_; // live texts per length, lengths up to kMaxWithin
    std::size_t live_ = 0;
    std::size_t garbage_ = 0;
};

} // namespace engram::engine
