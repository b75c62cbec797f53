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

struct Cue {
    CueKind kind = CueKind::kSemantic;
    std::vector<float> embedding; // kEmbedding
    std::string text;             // kSemantic
    double from = 0, to = 0;      // kContext / kTemporal ranges (unix seconds)
    bool has_from = false, has_to = false;
    std::string location; // kContext
    double threshold = 0.0;
    std::size_t max_results = 10;
    bool include_cold = false;
};

} // namespace engram::engine
