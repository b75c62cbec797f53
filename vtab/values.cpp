#include "vtab/values.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/core/time.hpp"

namespace engram::vtab {
namespace {

std::string type_name(int t) {
    switch (t) {
    case SQLITE_INTEGER:
        return "INTEGER";
    case SQLITE_FLOAT:
        return "REAL";
    case SQLITE_TEXT:
        return "TEXT";
    case SQLITE_BLOB:
        return "BLOB";
    default:
        return "NULL";
    }
}

std::string_view value_text(sqlite3_value* v) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
    return p == nullptr ? std::string_view() : std::string_view(p, sqlite3_value_bytes(v));
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

std::string quote_text(std::string_view s) {
    std::string out = "'";
    const std::size_t limit = 60;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        out += s[i];
        if (s[i] == '\'') {
            out += '\'';
        }
    }
    if (s.size() > limit) {
        out += "...";
    }
    out += "'";
    return out;
}

std::string read_text(sqlite3_value* v) {
    return std::string(value_text(v));
}

Result<std::vector<float>> parse_json_vector(std::string_view s, std::string_view what) {
    auto bad = [&](std::size_t pos, const char* why) {
        return Status::invalid(std::string(what) + ": malformed JSON vector at offset " +
                               std::to_string(pos) + " (" + why + ") in " + quote_text(s));
    };
    std::vector<float> out;
    std::size_t i = 0;
    auto skip = [&] {
        while (i < s.size() && is_space(s[i])) {
            ++i;
        }
    };
    skip();
    if (i >= s.size() || s[i] != '[') {
        return bad(i, "expected '['");
    }
    ++i;
    skip();
    if (i < s.size() && s[i] == ']') {
        ++i;
    } else {
        for (;;) {
            skip();
            float f = 0;
            const char* first = s.data() + i;
            const char* last = s.data() + s.size();
            if (first < last && *first == '+') {
                return bad(i, "expected a number");
            }
            auto [ptr, ec] = std::from_chars(first, last, f);
            if (ec == std::errc::result_out_of_range) {
                return bad(i, "number out of float range");
            }
            if (ec != std::errc() || ptr == first) {
                return bad(i, "expected a number");
            }
            if (!std::isfinite(f)) {
                return bad(i, "NaN or Inf");
            }
            out.push_back(f);
            i = static_cast<std::size_t>(ptr - s.data());
            skip();
            if (i < s.size() && s[i] == ',') {
                ++i;
                continue;
            }
            if (i < s.size() && s[i] == ']') {
                ++i;
                break;
            }
            return bad(i, "expected ',' or ']'");
        }
    }
    skip();
    if (i != s.size()) {
        return bad(i, "trailing characters");
    }
    return out;
}

Result<std::vector<float>> read_vector(sqlite3_value* v, std::string_view what) {
    const int t = sqlite3_value_type(v);
    if (t == SQLITE_BLOB) {
        const int bytes = sqlite3_value_bytes(v);
        if (bytes % 4 != 0) {
            return Status::invalid(std::string(what) + ": BLOB of " + std::to_string(bytes) +
                                   " bytes is not a float32 vector (size must be a multiple of 4)");
        }
        std::vector<float> out(static_cast<std::size_t>(bytes) / 4);
        if (bytes > 0) {
            std::memcpy(out.data(), sqlite3_value_blob(v), static_cast<std::size_t>(bytes));
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (!std::isfinite(out[i])) {
                return Status::invalid(std::string(what) + ": element " + std::to_string(i) +
                                       " is NaN or Inf");
            }
        }
        return out;
    }
    if (t == SQLITE_TEXT) {
        return parse_json_vector(value_text(v), what);
    }
    return Status::invalid(std::string(what) +
                           ": expected a float32 BLOB or a JSON array text, got " + type_name(t));
}

Result<double> read_time(sqlite3_value* v, std::string_view what) {
    const int t = sqlite3_value_type(v);
    if (t == SQLITE_INTEGER) {
        return static_cast<double>(sqlite3_value_int64(v));
    }
    if (t == SQLITE_FLOAT) {
        const double d = sqlite3_value_double(v);
        if (!std::isfinite(d)) {
            return Status::invalid(std::string(what) + ": time is NaN or Inf");
        }
        return d;
    }
    if (t == SQLITE_TEXT) {
        const std::string_view s = value_text(v);
        double d = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty() && std::isfinite(d)) {
            return d;
        }
        auto parsed = engine::parse_iso8601(s);
        if (!parsed) {
            return Status::invalid(std::string(what) + ": " + parsed.status().message());
        }
        return parsed.value();
    }
    return Status::invalid(std::string(what) + ": expected unix seconds or ISO-8601 text, got " +
                           type_name(t));
}

Result<double> read_unit_interval(sqlite3_value* v, std::string_view what) {
    const int t = sqlite3_value_type(v);
    if (t != SQLITE_INTEGER && t != SQLITE_FLOAT) {
        return Status::invalid(std::string(what) + ": expected a number in [0, 1], got " +
                               type_name(t));
    }
    const double d = sqlite3_value_double(v);
    if (!(d >= 0.0 && d <= 1.0)) {
        return Status::invalid(std::string(what) + ": expected a number in [0, 1], got " +
                               read_text(v));
    }
    return d;
}

Result<std::vector<std::string>> read_who(sqlite3_value* v, std::string_view what) {
    const int t = sqlite3_value_type(v);
    std::vector<std::string> out;
    if (t == SQLITE_NULL) {
        return out;
    }
    const std::string_view s = value_text(v);
    auto bad = [&] {
        return Status::invalid(std::string(what) + ": expected a JSON array of names, got " +
                               quote_text(s));
    };
    if (t != SQLITE_TEXT) {
        return bad();
    }
    const nlohmann::json j = nlohmann::json::parse(s.begin(), s.end(), nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
        return bad();
    }
    for (const auto& e : j) {
        if (!e.is_string()) {
            return bad();
        }
        out.push_back(e.get<std::string>());
    }
    return out;
}

Result<std::string> read_metadata(sqlite3_value* v, std::string_view what) {
    const int t = sqlite3_value_type(v);
    if (t == SQLITE_NULL) {
        return std::string("{}");
    }
    const std::string_view s = value_text(v);
    if (t != SQLITE_TEXT || !nlohmann::json::accept(s.begin(), s.end())) {
        return Status::invalid(std::string(what) + ": malformed JSON " + quote_text(s));
    }
    const nlohmann::json j = nlohmann::json::parse(s.begin(), s.end(), nullptr, false);
    if (!j.is_object()) {
        return Status::invalid(std::string(what) + ": expected a JSON object, got " +
                               quote_text(s));
    }
    return std::string(s);
}

InValue copy_value(sqlite3_value* v) {
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        return sqlite3_value_int64(v);
    case SQLITE_FLOAT:
        return sqlite3_value_double(v);
    case SQLITE_TEXT:
        return InText{read_text(v)};
    case SQLITE_BLOB: {
        const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
        return InBlob{
            std::string(p == nullptr ? "" : p, static_cast<std::size_t>(sqlite3_value_bytes(v)))};
    }
    default:
        return std::monostate{};
    }
}

Result<std::vector<float>> in_vector(const InValue& v, std::string_view what) {
    if (const auto* b = std::get_if<InBlob>(&v)) {
        if (b->bytes.size() % 4 != 0) {
            return Status::invalid(std::string(what) + ": BLOB of " +
                                   std::to_string(b->bytes.size()) +
                                   " bytes is not a float32 vector (size must be a multiple of 4)");
        }
        std::vector<float> out(b->bytes.size() / 4);
        if (!out.empty()) {
            std::memcpy(out.data(), b->bytes.data(), b->bytes.size());
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (!std::isfinite(out[i])) {
                return Status::invalid(std::string(what) + ": element " + std::to_string(i) +
                                       " is NaN or Inf");
            }
        }
        return out;
    }
    if (const auto* s = std::get_if<InText>(&v)) {
        return parse_json_vector(s->text, what);
    }
    return Status::invalid(std::string(what) +
                           ": expected a float32 BLOB or a JSON array text, got " + describe(v));
}

std::string describe(const InValue& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        return std::to_string(*i);
    }
    if (const auto* d = std::get_if<double>(&v)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.15g", *d);
        return buf;
    }
    if (const auto* s = std::get_if<InText>(&v)) {
        return quote_text(s->text);
    }
    if (std::holds_alternative<InBlob>(v)) {
        return "(blob)";
    }
    return "NULL";
}

std::string in_text(const InValue& v) {
    if (const auto* s = std::get_if<InText>(&v)) {
        return s->text;
    }
    if (const auto* b = std::get_if<InBlob>(&v)) {
        return b->bytes;
    }
    if (std::holds_alternative<std::monostate>(v)) {
        return "";
    }
    return describe(v);
}

bool in_number(const InValue& v, double* out) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        *out = static_cast<double>(*i);
        return true;
    }
    if (const auto* d = std::get_if<double>(&v)) {
        *out = *d;
        return std::isfinite(*d);
    }
    return false;
}

std::string vector_json(const float* data, std::size_t n) {
    std::string out = "[";
    char buf[32];
    for (std::size_t i = 0; i < n; ++i) {
        if (i != 0) {
            out += ',';
        }
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, data[i]);
        out.append(buf, ec == std::errc() ? ptr : buf);
    }
    out += ']';
    return out;
}

std::string who_json(const std::vector<std::string>& who) {
    nlohmann::json j = who;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void result_vector(sqlite3_context* ctx, const std::vector<float>& v) {
    sqlite3_result_blob(ctx, v.data(), static_cast<int>(v.size() * sizeof(float)),
                        SQLITE_TRANSIENT);
}

void result_text(sqlite3_context* ctx, const std::string& s) {
    sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

} // namespace engram::vtab
