#pragma once
// Time values: unix seconds (double) in, ISO-8601 UTC text out.
#include <string>
#include <string_view>

#include "engine/core/status.hpp"

namespace engram::engine {

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" (also with a space for 'T'), with an optional
// "Z" or "±HH:MM" offset (no offset means UTC). Fails with a message quoting the text.
Result<double> parse_iso8601(std::string_view text);
// "YYYY-MM-DDTHH:MM:SSZ", with ".mmm" when the value has a fractional part.
std::string format_iso8601(double unix_seconds);
// Current time as unix seconds.
double now_seconds() noexcept;

} // namespace engram::engine
