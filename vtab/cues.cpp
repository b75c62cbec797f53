#include "vtab/cues.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/core/time.hpp"
#include "engine/recall.hpp"
#include "vtab/connection.hpp"
#include "vtab/values.hpp"

namespace engram::vtab {
namespace {

Result<double> json_time(const std::string& what, const std::string& key, const nlohmann::json& v) {
    if (v.is_number()) {
        const double d = v.get<double>();
        if (std::isfinite(d)) {
            return d;
        }
    }
    if (v.is_string()) {
        auto t = engine::parse_iso8601(v.get<std::string>());
        if (!t) {
            return Status::invalid(what + ", \"" + key + "\": " + t.status().message());
        }
        return t.value();
    }
    return Status::invalid(what + ", \"" + key +
                           "\": expected unix seconds or ISO-8601 text, got " +
                           v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Result<nlohmann::json> json_object(const std::string& what, const InValue& value) {
    const std::string text = in_text(value);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return Status::invalid(what + ": expected a JSON object, got " + quote_text(text));
    }
    return j;
}

} // namespace

Result<engine::Cue> parse_cue(const std::string& what, const InValue& kind, const InValue& value,
                              const InValue& threshold, const InValue& max_results,
                              const InValue& scope, std::size_t dim) {
    auto is_null = [](const InValue& v) { return std::holds_alternative<std::monostate>(v); };
    double thr = 0.0;
    if (!is_null(threshold) && !(in_number(threshold, &thr) && thr >= 0.0 && thr <= 1.0)) {
        return Status::invalid(what + ", threshold: expected a number in [0, 1], got " +
                               describe(threshold));
    }
    std::size_t max = 10;
    if (!is_null(max_results)) {
        const auto* n = std::get_if<std::int64_t>(&max_results);
        if (n == nullptr || *n < 1) {
            return Status::invalid(what + ", max_results: expected an integer >= 1, got " +
                                   describe(max_results));
        }
        max = static_cast<std::size_t>(*n);
    }
    bool all = false;
    if (!is_null(scope)) {
        const std::string s = lower(in_text(scope));
        if (s == "all") {
            all = true;
        } else if (s != "hot") {
            return Status::invalid(what + ", scope: expected 'all' or 'hot', got " + quote_text(s));
        }
    }
    const std::string k = lower(in_text(kind));
    if (is_null(value)) {
        return Status::invalid(what + ": the cue value must not be NULL");
    }
    engine::Cue cue;
    if (k == "embedding") {
        auto v = in_vector(value, what + ", embedding");
        if (!v) {
            return v.status();
        }
        if (v->size() != dim) {
            return Status::invalid(what + ", embedding: expected " + std::to_string(dim) +
                                   " dimensions, got " + std::to_string(v->size()));
        }
        cue = engine::embedding_cue(std::move(v.value()), thr, max);
    } else if (k == "semantic") {
        cue = engine::semantic_cue(in_text(value), thr, max);
    } else if (k == "context") {
        auto j = json_object(what + ", context", value);
        if (!j) {
            return j.status();
        }
        std::optional<double> from, to;
        std::optional<std::string> location;
        for (auto it = j->begin(); it != j->end(); ++it) {
            if (it.key() == "from" || it.key() == "to") {
                auto t = json_time(what + ", context", it.key(), it.value());
                if (!t) {
                    return t.status();
                }
                (it.key() == "from" ? from : to) = t.value();
            } else if (it.key() == "location") {
                if (!it.value().is_string()) {
                    return Status::invalid(what + ", context \"location\": expected text");
                }
                location = it.value().get<std::string>();
            } else {
                return Status::invalid(what + ", context: unknown key \"" + it.key() +
                                       "\" (expected from, to, location)");
            }
        }
        cue = engine::context_cue(from, to, location, thr, max);
    } else if (k == "temporal") {
        auto j = json_object(what + ", temporal", value);
        if (!j) {
            return j.status();
        }
        if (j->size() != 1) {
            return Status::invalid(what + ", temporal: expected exactly one of before, after, "
                                          "between, recent");
        }
        const auto it = j->begin();
        const std::string key = it.key();
        if (key == "before" || key == "after") {
            auto t = json_time(what + ", temporal", key, it.value());
            if (!t) {
                return t.status();
            }
            cue = key == "before" ? engine::temporal_before(t.value(), thr, max)
                                  : engine::temporal_after(t.value(), thr, max);
        } else if (key == "between") {
            if (!it.value().is_array() || it.value().size() != 2) {
                return Status::invalid(what + ", temporal \"between\": expected [t1, t2]");
            }
            auto a = json_time(what + ", temporal", key, it.value()[0]);
            if (!a) {
                return a.status();
            }
            auto b = json_time(what + ", temporal", key, it.value()[1]);
            if (!b) {
                return b.status();
            }
            cue = engine::temporal_between(a.value(), b.value(), thr, max);
        } else if (key == "recent") {
            if (!it.value().is_number() || !(it.value().get<double>() >= 0)) {
                return Status::invalid(what + ", temporal \"recent\": expected seconds >= 0");
            }
            cue = engine::temporal_recent(it.value().get<double>(), thr, max);
        } else {
            return Status::invalid(what + ", temporal: unknown key \"" + key +
                                   "\" (expected before, after, between or recent)");
        }
    } else {
        return Status::invalid(what + ": unknown cue kind " + quote_text(k) +
                               " (expected embedding, context, temporal or semantic)");
    }
    cue.include_cold = all;
    return cue;
}

Result<std::optional<db::SearchFilter>> parse_search_filter(const std::string& what,
                                                            const InValue& value) {
    if (std::holds_alternative<std::monostate>(value)) {
        return std::optional<db::SearchFilter>();
    }
    auto j = json_object(what, value);
    if (!j) {
        return j.status();
    }
    if (j->empty()) {
        return std::optional<db::SearchFilter>();
    }
    db::SearchFilter f;
    for (auto it = j->begin(); it != j->end(); ++it) {
        const std::string& key = it.key();
        if (key == "from" || key == "to") {
            auto t = json_time(what, key, it.value());
            if (!t) {
                return t.status();
            }
            (key == "from" ? f.from : f.to) = t.value();
        } else if (key == "location") {
            if (!it.value().is_string()) {
                return Status::invalid(what + ", \"location\": expected text");
            }
            f.location = it.value().get<std::string>();
        } else if (key == "metadata") {
            if (!it.value().is_object() || it.value().size() != 1) {
                return Status::invalid(what + ", \"metadata\": expected one {\"key\": value}");
            }
            f.metadata_key = it.value().begin().key();
            f.metadata_value = it.value().begin().value().dump();
        } else if (key == "ids") {
            if (!it.value().is_array()) {
                return Status::invalid(what + ", \"ids\": expected a JSON array of ids");
            }
            f.ids.emplace();
            for (const auto& id : it.value()) {
                if (!id.is_string()) {
                    return Status::invalid(what + ", \"ids\": expected a JSON array of ids");
                }
                f.ids->insert(id.get<std::string>());
            }
        } else {
            return Status::invalid(what + ": unknown key \"" + key +
                                   "\" (expected from, to, location, metadata, ids)");
        }
    }
    return std::optional<db::SearchFilter>(std::move(f));
}

} // namespace engram::vtab
