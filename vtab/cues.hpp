#pragma once
// Parsing of recall cues from SQL values (DESIGN §3): kind 'embedding' (BLOB or JSON vector),
// 'semantic' (text), 'context' (JSON {"from": t, "to": t, "location": s}, any subset),
// 'temporal' (JSON {"before": t} | {"after": t} | {"between": [t1, t2]} | {"recent": seconds});
// times as unix seconds or ISO-8601. Errors name the culprit.
#include <string>

#include "db/shared_store.hpp"
#include "engine/core/episode.hpp"
#include "engine/core/status.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {

// `what` prefixes messages (e.g. "engram_recall" or "cue 7"). NULL threshold / max_results /
// scope take their defaults (0, 10, 'hot').
Result<engine::Cue> parse_cue(const std::string& what, const InValue& kind, const InValue& value,
                              const InValue& threshold, const InValue& max_results,
                              const InValue& scope, std::size_t dim);

// A similarity filter from JSON: {"from": t, "to": t, "location": s, "metadata": {"key": value},
// "ids": [id, ...]} (any subset; an empty object or NULL means no filter → nullopt).
Result<std::optional<db::SearchFilter>> parse_search_filter(const std::string& what,
                                                            const InValue& value);

} // namespace engram::vtab
