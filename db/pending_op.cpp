// A transaction's queued operations, and their staged (on-disk) form.
//
// HOW IT WORKS
//   Connections queue their writes as PendingOps (vtab/engram_vtab.cpp). Beyond half of
//   batch_memory, the queue is staged: each op is encoded with encode_op() (kind, replace flag,
//   id, and the storage codec's record) into the transaction's spill file, and decoded again by
//   the commit (db/commit.cpp). op_bytes() is the memory an op holds while queued.
#include "db/types.hpp"

#include <cstring>

#include "storage/codec.hpp"

namespace engram::db {
std::string encode_op(const PendingOp& op) {
    std::string out;
    out.push_back(static_cast<char>(op.kind));
    out.push_back(op.replace ? '\1' : '\0');
    const auto n = static_cast<std::uint32_t>(op.id.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(op.id);
    if (op.kind != PendingOp::Kind::kDelete) {
        out.append(storage::encode_record(op.episode, 0.0, engine::Tier::kHot, 0.0));
    }
    return out;
}

Result<PendingOp> decode_op(std::string_view bytes) {
    std::uint32_t n = 0;
    if (bytes.size() < 2 + sizeof n) {
        return Status::corruption("a staged row is truncated");
    }
    std::memcpy(&n, bytes.data() + 2, sizeof n);
    if (bytes.size() < 2 + sizeof n + n || static_cast<unsigned char>(bytes[0]) > 2) {
        return Status::corruption("a staged row is malformed");
    }
    PendingOp op;
    op.kind = static_cast<PendingOp::Kind>(bytes[0]);
    op.replace = bytes[1] != '\0';
    op.id.assign(bytes.data() + 2 + sizeof n, n);
    if (op.kind != PendingOp::Kind::kDelete) {
        auto rec = storage::decode_record(op.id, bytes.substr(2 + sizeof n + n));
        if (!rec) {
            return rec.status();
        }
        op.episode = std::move(rec->episode);
    }
    return op;
}

std::size_t op_bytes(const PendingOp& op) noexcept {
    const engine::Episode& e = op.episode;
    std::size_t n = sizeof(PendingOp) + 2 * op.id.size() + e.what.size() + e.location.size() +
                    e.metadata.size() + e.embedding.size() * sizeof(float);
    for (const std::string& w : e.who) {
        n += sizeof(std::string) + w.size();
    }
    return n + 96; // the overlay entry
}

} // namespace engram::db
