#include "storage/codec.hpp"

#include <cstdint>
#include <cstring>

namespace engram::storage {
namespace {

class Writer {
public:
    explicit Writer(std::string* out) : out_(out) {}
    template <typename T> void pod(T v) {
        char buf[sizeof(T)];
        std::memcpy(buf, &v, sizeof(T));
        out_->append(buf, sizeof(T));
    }
    void str(std::string_view s) {
        pod(static_cast<std::uint32_t>(s.size()));
        out_->append(s.data(), s.size());
    }

private:
    std::string* out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    template <typename T> bool pod(T* v) {
        if (in_.size() < sizeof(T)) {
            return false;
        }
        std::memcpy(v, in_.data(), sizeof(T));
        in_.remove_prefix(sizeof(T));
        return true;
    }
    bool str(std::string* s) {
        std::uint32_t n = 0;
        if (!pod(&n) || in_.size() < n) {
            return false;
        }
        s->assign(in_.data(), n);
        in_.remove_prefix(n);
        return true;
    }
    bool floats(std::size_t n, std::vector<float>* v) {
        if (in_.size() / sizeof(float) < n) {
            return false;
        }
        v->resize(n);
        std::memcpy(v->data(), in_.data(), n * sizeof(float));
        in_.remove_prefix(n * sizeof(float));
        return true;
    }
    bool done() const { return in_.empty(); }

private:
    std::string_view in_;
};

} // namespace

std::string encode_record(const engine::EpisodeRecord& r) {
    return encode_record(r.episode, r.activation, r.tier, r.stored_at);
}

std::string encode_record(const engine::Episode& e, double activation, engine::Tier tier,
                          double stored_at) {
    std::string out = encode_header(e, activation, tier, stored_at);
    out.append(reinterpret_cast<const char*>(e.embedding.data()),
               e.embedding.size() * sizeof(float));
    return out;
}

std::string encode_header(const engine::Episode& e, double activation, engine::Tier tier,
                          double stored_at) {
    std::string out;
    out.reserve(80 + e.what.size() + e.location.size() + e.metadata.size());
    Writer w(&out);
    w.pod(kRecordVersion);
    w.pod(e.occurred_at);
    w.pod(e.confidence);
    w.pod(e.vividness);
    w.pod(e.reliability);
    w.pod(activation);
    w.pod(stored_at);
    w.pod(static_cast<std::uint8_t>(tier));
    w.str(e.what);
    w.str(e.location);
    w.pod(static_cast<std::uint32_t>(e.who.size()));
    for (const auto& name : e.who) {
        w.str(name);
    }
    w.str(e.metadata);
    w.pod(static_cast<std::uint32_t>(e.embedding.size()));
    return out;
}

Result<engine::EpisodeRecord> decode_record(std::string_view id, std::string_view bytes) {
    auto corrupt = [&](const char* what) {
        return Status::corruption("episode '" + std::string(id) + "': corrupt record (" + what +
                                  ")");
    };
    Reader rd(bytes);
    std::uint8_t version = 0;
    if (!rd.pod(&version)) {
        return corrupt("empty");
    }
    if (version != kRecordVersion) {
        return corrupt("unknown record version");
    }
    engine::EpisodeRecord r;
    engine::Episode& e = r.episode;
    e.id.assign(id);
    std::uint8_t tier = 0;
    std::uint32_t who = 0;
    std::uint32_t dim = 0;
    if (!rd.pod(&e.occurred_at) || !rd.pod(&e.confidence) || !rd.pod(&e.vividness) ||
        !rd.pod(&e.reliability) || !rd.pod(&r.activation) || !rd.pod(&r.stored_at) ||
        !rd.pod(&tier) || !rd.str(&e.what) || !rd.str(&e.location) || !rd.pod(&who)) {
        return corrupt("truncated header");
    }
    if (tier > 1) {
        return corrupt("bad tier");
    }
    r.tier = static_cast<engine::Tier>(tier);
    if (who > bytes.size()) {
        return corrupt("bad who count");
    }
    e.who.resize(who);
    for (auto& name : e.who) {
        if (!rd.str(&name)) {
            return corrupt("truncated who");
        }
    }
    if (!rd.str(&e.metadata) || !rd.pod(&dim) || !rd.floats(dim, &e.embedding)) {
        return corrupt("truncated body");
    }
    if (!rd.done()) {
        return corrupt("trailing bytes");
    }
    return r;
}

} // namespace engram::storage
