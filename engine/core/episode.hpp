#pragma once
// Episode (one remembered event), its stored record, and the cue kinds of recall (DESIGN §2).
#include <cstdint>
#include <string>
#include <vector>

namespace engram::engine {

struct Episode {
    std::string id;               // caller's text, unique within a store
    std::string what;             // free text
    std::vector<float> embedding; // as given by the caller (not normalised)
    double occurred_at = 0.0;     // unix seconds
    std::string location;
    std::vector<std::string> who;
    double confidence = 0.9;     // encoding confidence
    double vividness = 0.9;      // defaults to the encoding confidence
    double reliability = 0.9;    // defaults to the encoding confidence
    std::string metadata = "{}"; // JSON object text
};

enum class Tier : std::uint8_t { kHot = 0, kCold = 1 };

inline const char* tier_name(Tier t) noexcept {
    return t == Tier::kHot ? "hot" : "cold";
}

// What the store keeps per episode: the episode and the outcome of storing it.
struct EpisodeRecord {
    Episode episode;
    double activation = 0.0; // store-time activation
    Tier tier = Tier::kHot;
    double stored_at = 0.0; // unix seconds of the commit
};

enum class CueKind : std::uint8_t { kEmbedding, kContext, kTemporal, kSemantic };

// The pattern of a kTemporal cue (engine/recall.hpp gives the exact comparisons).
enum class TemporalKind : std::uint8_t {
    kBefore,  // occurred_at < to
    kAfter,   // occurred_at > from
    kBetween, // from <= occurred_at <= to
    kRecent,  // occurred_at >= now - recent_seconds
};

// A typed, already parsed cue (the SQL layer parses JSON/ISO-8601 into these fields).
// engine/recall.hpp has factory functions that fill the fields of each kind.
struct Cue {
    CueKind kind = CueKind::kSemantic;
    std::vector<float> embedding; // kEmbedding: dim floats, need not be normalised
    std::string text;             // kSemantic: the query
    double from = 0, to = 0;      // kContext range (when has_from/has_to); kTemporal bounds
    bool has_from = false, has_to = false;
    std::string location;      // kContext: a criterion when has_location or non-empty
    bool has_location = false; // kContext: lets an empty location be given explicitly
    TemporalKind temporal = TemporalKind::kBetween; // kTemporal
    double recent_seconds = 0.0;                    // kTemporal kRecent
    double threshold = 0.0;
    std::size_t max_results = 10;
    bool include_cold = false;
};

} // namespace engram::engine
