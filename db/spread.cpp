// Edges between memories and activation spreading over them.
//
// HOW IT WORKS
//   Edges are persisted in the `edges` family (src \0 dst -> weight) and held in memory as a
//   compressed graph over dense node numbers (node_of_ / id_of_), loaded at open and updated by
//   commit_edges() after each atomic write. spread() maps the seed ids to nodes (seeds without
//   edges get numbers past the graph) and runs engine/spread's level-synchronous, deterministic
//   spreading for every seed set in parallel; memories deleted since are not reported.
#include "db/shared_store.hpp"

#include <cstring>
#include <unordered_map>

#include "engine/batch/executor.hpp"

namespace engram::db {
std::uint32_t SharedStore::node_for(const std::string& id) {
    auto [it, inserted] = node_of_.emplace(id, static_cast<std::uint32_t>(id_of_.size()));
    if (inserted) {
        id_of_.push_back(id);
        graph_.reserve_nodes(static_cast<std::uint32_t>(id_of_.size()));
    }
    return it->second;
}

Status SharedStore::load_edges() {
    std::vector<engine::Edge> edges;
    auto cursor = db_->edges();
    for (cursor->seek_first(); cursor->valid(); cursor->next()) {
        const std::string_view key = cursor->id();
        const auto zero = key.find('\0');
        if (zero == std::string_view::npos || cursor->value().size() != sizeof(double)) {
            return Status::corruption("engram store '" + options_.path + "': corrupt edge record");
        }
        double w = 0.0;
        std::memcpy(&w, cursor->value().data(), sizeof w);
        const std::uint32_t a = node_for(std::string(key.substr(0, zero)));
        const std::uint32_t b = node_for(std::string(key.substr(zero + 1)));
        edges.push_back({a, b, static_cast<float>(w)});
    }
    ENGRAM_TRY(cursor->status());
    auto graph = engine::EdgeGraph::build(edges, static_cast<std::uint32_t>(id_of_.size()));
    if (!graph) {
        return graph.status();
    }
    graph_ = std::move(graph.value());
    return Status::ok();
}

Status SharedStore::commit_edges(const std::vector<EdgeOp>& ops) {
    if (ops.empty()) {
        return Status::ok();
    }
    writers_waiting_.fetch_add(1);
    std::unique_lock<std::shared_mutex> lock(mutex_);
    writers_waiting_.fetch_sub(1);
    for (const EdgeOp& op : ops) {
        if (op.remove) {
            continue;
        }
        for (const std::string* id : {&op.src, &op.dst}) {
            auto e = exists_locked(*id);
            if (!e) {
                return e.status();
            }
            if (!e.value()) {
                return Status::invalid("edge " + op.src + " -> " + op.dst + ": no memory '" + *id +
                                       "' in this store");
            }
        }
    }
    storage::Batch batch = db_->batch();
    for (const EdgeOp& op : ops) {
        if (op.remove) {
            batch.delete_edge(op.src, op.dst);
        } else {
            batch.put_edge(op.src, op.dst, op.weight);
        }
    }
    ENGRAM_TRY(db_->write(batch, options_.sync));
    for (const EdgeOp& op : ops) {
        if (op.remove) {
            auto a = node_of_.find(op.src);
            auto b = node_of_.find(op.dst);
            if (a != node_of_.end() && b != node_of_.end()) {
                graph_.remove_edge(a->second, b->second);
            }
            continue;
        }
        const std::uint32_t a = node_for(op.src);
        const std::uint32_t b = node_for(op.dst);
        graph_.remove_edge(a, b); // a re-put replaces the weight
        Status s = graph_.add_edge(a, b, static_cast<float>(op.weight));
        if (!s.is_ok()) {
            return Status::internal("applying committed edge: " + s.message());
        }
    }
    return Status::ok();
}

std::vector<Result<std::vector<SpreadRow>>>
SharedStore::spread(std::span<const std::vector<SpreadSeed>> sets, std::size_t max_depth,
                    std::optional<double> threshold) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<Result<std::vector<SpreadRow>>> out(
        sets.size(), Result<std::vector<SpreadRow>>(Status::internal("spread: not computed")));
    // Seeds without edges have no node: they get numbers past the graph, which spread() allows.
    std::unordered_map<std::string, std::uint32_t> extra;
    std::vector<std::string> extra_ids;
    std::vector<std::vector<engine::Seed>> seeds(sets.size());
    std::vector<bool> ok(sets.size(), true);
    for (std::size_t s = 0; s < sets.size(); ++s) {
        for (const SpreadSeed& seed : sets[s]) {
            auto e = exists_locked(seed.id);
            if (!e || !e.value()) {
                out[s] =
                    e ? Status::invalid("no memory '" + seed.id + "' in this store") : e.status();
                ok[s] = false;
                break;
            }
            std::uint32_t node = 0;
            if (auto it = node_of_.find(seed.id); it != node_of_.end()) {
                node = it->second;
            } else {
                auto [x, inserted] = extra.emplace(
                    seed.id, static_cast<std::uint32_t>(id_of_.size() + extra_ids.size()));
                if (inserted) {
                    extra_ids.push_back(seed.id);
                }
                node = x->second;
            }
            seeds[s].push_back({node, seed.activation});
        }
    }
    std::vector<std::vector<engine::Seed>> runnable;
    std::vector<std::size_t> where;
    for (std::size_t s = 0; s < sets.size(); ++s) {
        if (ok[s]) {
            runnable.push_back(std::move(seeds[s]));
            where.push_back(s);
        }
    }
    const auto results =
        engine::spread_batch(graph_, runnable, max_depth, threshold, engine::default_arena());
    for (std::size_t r = 0; r < results.size(); ++r) {
        std::vector<SpreadRow> rows;
        rows.reserve(results[r].size());
        for (const engine::SpreadResult& x : results[r]) {
            const std::string& id =
                x.node < id_of_.size() ? id_of_[x.node] : extra_ids[x.node - id_of_.size()];
            // Edges outlive deleted memories; a deleted memory is not reported.
            if (auto e = exists_locked(id); e && e.value()) {
                rows.push_back({id, x.activation, x.depth, x.confidence});
            }
        }
        out[where[r]] = std::move(rows);
    }
    return out;
}

} // namespace engram::db
