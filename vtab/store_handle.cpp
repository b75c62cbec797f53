#include "vtab/store_handle.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <string_view>
#include <unordered_map>

#include "engine/batch/batch_store.hpp"
#include "engine/batch/executor.hpp"
#include "engine/core/time.hpp"
#include "engine/simd/kernels.hpp"
#include "storage/codec.hpp"

namespace engram::vtab {
namespace {

constexpr std::size_t kMaxBatchReports = 10000;
// Write-batch buffers up to this size are kept for the next commit.
constexpr std::size_t kKeepBatchBytes = 256U << 20;

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, std::weak_ptr<SharedStore>>& registry() {
    static std::map<std::string, std::weak_ptr<SharedStore>> r;
    return r;
}

double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::vector<float> unit_vector(const std::vector<float>& v) {
    std::vector<float> u(v);
    engine::simd::kernels().normalize(u.data(), u.size());
    return u;
}

} // namespace

std::string store_key(const StoreOptions& options) {
    if (options.in_memory) {
        return "memory:" + options.path;
    }
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(options.path, ec), ec);
    return ec ? options.path : p.string();
}

SharedStore::SharedStore(const StoreOptions& options)
    : options_(options), memory_(std::make_unique<engine::MemoryEngine>(options.memory)) {}

SharedStore::~SharedStore() {
    // Called with registry_mutex() held by release (see acquire's deleter).
    db_.reset();
    if (dropped_ && !options_.in_memory) {
        storage::Store::destroy(options_.path).message(); // best effort: the table is gone
        std::error_code ec;
        std::filesystem::remove_all(options_.path, ec);
    }
}

Result<std::shared_ptr<SharedStore>> SharedStore::acquire(const StoreOptions& options) {
    ENGRAM_TRY(options.memory.validate());
    const std::string key = store_key(options);
    std::lock_guard<std::mutex> lock(registry_mutex());
    if (auto it = registry().find(key); it != registry().end()) {
        if (auto existing = it->second.lock()) {
            if (existing->options_.memory.dim != options.memory.dim) {
                return Status::invalid(
                    "engram store '" + options.path +
                    "' has dim=" + std::to_string(existing->options_.memory.dim) +
                    ", but the table declares dim=" + std::to_string(options.memory.dim));
            }
            return existing;
        }
    }
    std::unique_ptr<SharedStore> fresh(new SharedStore(options)); // private constructor
    auto opened = storage::Store::open(options.path, options.in_memory);
    if (!opened) {
        return opened.status();
    }
    fresh->db_ = std::move(opened.value());
    ENGRAM_TRY(fresh->check_and_persist_options());
    ENGRAM_TRY(fresh->load());
    // The deleter takes the registry lock so that closing and re-opening the same path never race.
    std::shared_ptr<SharedStore> shared(fresh.release(), [key](SharedStore* s) {
        std::lock_guard<std::mutex> guard(registry_mutex());
        if (auto it = registry().find(key); it != registry().end() && it->second.expired()) {
            registry().erase(it);
        }
        delete s; // owned here since acquire released it to this shared_ptr
    });
    registry()[key] = shared;
    return shared;
}

Status SharedStore::check_and_persist_options() {
    auto format = db_->get_meta("format");
    if (!format) {
        return format.status();
    }
    auto dim = db_->get_meta("dim");
    if (!dim) {
        return dim.status();
    }
    if (format->has_value() && **format != "1") {
        return Status::corruption("engram store '" + options_.path + "' has format " + **format +
                                  ", this build reads format 1");
    }
    if (dim->has_value() && **dim != std::to_string(options_.memory.dim)) {
        return Status::invalid(
            "engram store '" + options_.path + "' was created with dim=" + **dim +
            ", but the table declares dim=" + std::to_string(options_.memory.dim));
    }
    storage::Batch b = db_->batch();
    b.put_meta("format", "1");
    b.put_meta("dim", std::to_string(options_.memory.dim));
    b.put_meta("capacity", std::to_string(options_.memory.capacity));
    b.put_meta("m", std::to_string(options_.m));
    b.put_meta("ef_construction", std::to_string(options_.ef_construction));
    b.put_meta("ef_search", std::to_string(options_.ef_search));
    return db_->write(b, storage::SyncMode::kFull);
}

Status SharedStore::load() {
    cold_ = 0;
    auto cursor = db_->episodes();
    for (cursor->seek_first(); cursor->valid(); cursor->next()) {
        auto rec = storage::decode_record(cursor->id(), cursor->value());
        if (!rec) {
            return rec.status();
        }
        if (rec->tier == engine::Tier::kCold) {
            ++cold_;
            continue;
        }
        const engine::Episode& e = rec->episode;
        if (e.embedding.size() != options_.memory.dim) {
            return Status::corruption(
                "episode '" + e.id + "' has " + std::to_string(e.embedding.size()) +
                " dimensions, the store has " + std::to_string(options_.memory.dim));
        }
        const auto unit = unit_vector(e.embedding);
        memory_->restore(e.id, unit.data(), rec->activation, e.confidence, e.occurred_at);
    }
    hot_count_ = static_cast<std::int64_t>(memory_->hot().count());
    cold_count_ = static_cast<std::int64_t>(cold_);
    return cursor->status();
}

Result<bool> SharedStore::exists(const std::string& id) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return exists_locked(id);
}

Result<bool> SharedStore::exists_locked(const std::string& id) const {
    if (memory_->hot().find(id)) {
        return true;
    }
    std::string value;
    Status s = db_->get_episode(id, &value);
    if (s.is_ok()) {
        return true;
    }
    if (s.code() == Code::kNotFound) {
        return false;
    }
    return s;
}

Status SharedStore::commit(const std::vector<PendingOp>& ops) {
    if (ops.empty()) {
        return Status::ok();
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::shared_mutex> lock(mutex_);
    committing_rows_ = static_cast<std::int64_t>(ops.size());
    applied_rows_ = 0;
    commit_started_ = steady_seconds();
    struct ProgressReset {
        SharedStore* s;
        ~ProgressReset() {
            s->committing_rows_ = 0;
            s->applied_rows_ = 0;
            s->commit_started_ = 0.0;
            s->hot_count_ = static_cast<std::int64_t>(s->memory_->hot().count());
            s->cold_count_ = static_cast<std::int64_t>(s->cold_);
        }
    } progress_reset{this};

    // Final state of every id the batch touches. Records are not copied: `episode` points into
    // `ops` or into `loaded` (records read back from storage); nullptr means "deleted".
    struct Final {
        const engine::Episode* episode = nullptr;
        double activation = 0.0;
        engine::Tier tier = engine::Tier::kHot;
        double stored_at = 0.0;
    };
    std::unordered_map<std::string_view, Final> touched;
    std::deque<engine::EpisodeRecord> loaded;
    // The current state of `id`: nullopt when it is not stored.
    auto current = [&](std::string_view id) -> Result<std::optional<Final>> {
        if (auto it = touched.find(id); it != touched.end()) {
            return it->second.episode == nullptr ? std::optional<Final>()
                                                 : std::optional<Final>(it->second);
        }
        std::string value;
        Status s = db_->get_episode(id, &value);
        if (s.code() == Code::kNotFound) {
            return std::optional<Final>();
        }
        ENGRAM_TRY(s);
        auto rec = storage::decode_record(id, value);
        if (!rec) {
            return rec.status();
        }
        loaded.push_back(std::move(rec.value()));
        const engine::EpisodeRecord& r = loaded.back();
        return std::optional<Final>(Final{&r.episode, r.activation, r.tier, r.stored_at});
    };
    // Map keys must outlive the map: ids of ops and of loaded records do.
    auto key_of = [&](const std::string& id) -> std::string_view {
        if (auto it = touched.find(id); it != touched.end()) {
            return it->first;
        }
        for (auto it = loaded.rbegin(); it != loaded.rend(); ++it) {
            if (it->episode.id == id) {
                return it->episode.id;
            }
        }
        return {};
    };

    // Pass 1: check ids against the committed state (another connection may have committed the
    // same id since this transaction queued it). Nothing is modified yet.
    {
        std::unordered_map<std::string_view, bool> present;
        for (const PendingOp& op : ops) {
            auto it = present.find(op.id);
            bool here = false;
            if (it != present.end()) {
                here = it->second;
            } else {
                auto e = exists_locked(op.id);
                if (!e) {
                    return e.status();
                }
                here = e.value();
            }
            switch (op.kind) {
            case PendingOp::Kind::kInsert:
                if (here && !op.replace) {
                    return Status::exists("duplicate id '" + op.id + "': already stored");
                }
                present[op.id] = true;
                break;
            case PendingOp::Kind::kUpdate:
                present[op.id] = here;
                break;
            case PendingOp::Kind::kDelete:
                present[op.id] = false;
                break;
            }
        }
    }

    // Pass 2: normalise every embedding, in parallel (each op writes its own row).
    const std::size_t dim = options_.memory.dim;
    const std::size_t stride = memory_->hot().stride();
    // Reused between commits: fresh pages cost more than the copies themselves.
    if (units_.size() < ops.size() * stride) {
        units_.resize(ops.size() * stride);
    }
    float* const units = units_.data();
    tbb::task_arena& arena = engine::default_arena();
    engine::parallel_indices(arena, ops.size(), [&](std::size_t i) {
        float* u = &units[i * stride];
        if (ops[i].kind == PendingOp::Kind::kDelete) {
            std::fill_n(u, stride, 0.0F);
            return;
        }
        std::copy_n(ops[i].episode.embedding.data(), dim, u);
        std::fill(u + dim, u + stride, 0.0F);
        engine::simd::kernels().normalize(u, dim);
    });

    // Pass 3: apply in order to the engine, collecting the records to write. Runs of plain
    // inserts go through the batch engine (parallel screening, sequential resolution).
    BatchReport report;
    report.simd = engine::simd::kernels().name;
    const double stored_at = engine::now_seconds();
    std::size_t cold = cold_;
    Status failed;
    auto remove_existing = [&](const PendingOp& op) -> Status {
        auto cur = current(op.id);
        if (!cur) {
            return cur.status();
        }
        if (cur->has_value()) {
            if ((*cur)->tier == engine::Tier::kCold) {
                --cold;
            } else {
                memory_->hot().remove(op.id);
            }
        }
        touched[op.id] = Final{};
        return Status::ok();
    };
    auto record_outcome = [&](const PendingOp& op, const engine::StoreOutcome& out) -> Status {
        ++report.size;
        report.peak_pressure = std::max(report.peak_pressure, out.pressure);
        report.successful += out.activation.successful() ? 1 : 0;
        report.degraded += out.activation.degraded() ? 1 : 0;
        if (!out.evicted_id.empty()) {
            auto victim = current(out.evicted_id);
            if (!victim) {
                return victim.status();
            }
            if (victim->has_value()) {
                Final f = **victim;
                f.tier = engine::Tier::kCold;
                touched[key_of(out.evicted_id)] = f;
                ++cold;
            }
            ++report.evicted;
        }
        if (out.kind == engine::StoreKind::kSkipped) {
            ++report.deduplicated;
            return Status::ok();
        }
        if (out.kind == engine::StoreKind::kReplaced) {
            ++report.deduplicated;
            auto old = current(out.duplicate_of); // makes sure the key has storage
            if (!old) {
                return old.status();
            }
            touched[key_of(out.duplicate_of)] = Final{};
        }
        touched[op.id] = Final{&op.episode, out.activation.value(), engine::Tier::kHot, stored_at};
        return Status::ok();
    };
    for (std::size_t i = 0; i < ops.size() && failed.is_ok();) {
        const PendingOp& op = ops[i];
        if (op.kind == PendingOp::Kind::kDelete) {
            failed = remove_existing(op);
            ++report.deleted;
            ++i;
            continue;
        }
        if (op.kind == PendingOp::Kind::kUpdate) {
            auto cur = current(op.id);
            if (!cur) {
                failed = cur.status();
                break;
            }
            if (cur->has_value()) { // else deleted by another connection meanwhile
                Final f = **cur;
                f.episode = &op.episode;
                if (f.tier == engine::Tier::kHot) {
                    memory_->hot().update(op.id, &units[i * stride],
                                          static_cast<float>(op.episode.confidence),
                                          op.episode.occurred_at);
                }
                touched[op.id] = f;
                ++report.updated;
            }
            ++i;
            continue;
        }
        if (op.replace) {
            failed = remove_existing(op);
            if (failed.is_ok()) {
                failed =
                    record_outcome(op, memory_->store(op.id, &units[i * stride],
                                                      engine::Confidence(op.episode.confidence),
                                                      op.episode.occurred_at));
            }
            ++i;
            continue;
        }
        // A run of plain inserts [i, j).
        std::size_t j = i;
        std::vector<engine::BatchItem> items;
        while (j < ops.size() && ops[j].kind == PendingOp::Kind::kInsert && !ops[j].replace) {
            items.push_back({&ops[j].id, ops[j].episode.confidence, ops[j].episode.occurred_at});
            ++j;
        }
        const auto outs = engine::store_batch(*memory_, items, &units[i * stride], stride, arena);
        for (std::size_t k = 0; k < outs.size() && failed.is_ok(); ++k) {
            failed = record_outcome(ops[i + k], outs[k]);
        }
        i = j;
        applied_rows_ = static_cast<std::int64_t>(i);
    }

    if (failed.is_ok()) {
        // Encode the records in parallel, then write them as one atomic batch.
        std::vector<std::pair<std::string_view, const Final*>> all;
        all.reserve(touched.size());
        for (const auto& [id, f] : touched) {
            all.emplace_back(id, &f);
        }
        // Only the small headers are encoded separately; the embeddings go straight from the
        // queued episodes into the (reused) write batch.
        std::vector<std::string> headers(all.size());
        engine::parallel_indices(arena, all.size(), [&](std::size_t i) {
            const Final& f = *all[i].second;
            if (f.episode != nullptr) {
                headers[i] = storage::encode_header(*f.episode, f.activation, f.tier, f.stored_at);
            }
        });
        if (!write_batch_) {
            write_batch_ = std::make_unique<storage::Batch>(db_->batch());
        }
        storage::Batch& batch = *write_batch_;
        batch.clear();
        for (std::size_t i = 0; i < all.size(); ++i) {
            const engine::Episode* e = all[i].second->episode;
            if (e != nullptr) {
                batch.put_episode(
                    all[i].first, headers[i],
                    std::string_view(reinterpret_cast<const char*>(e->embedding.data()),
                                     e->embedding.size() * sizeof(float)));
            } else {
                batch.delete_episode(all[i].first);
            }
        }
        failed = db_->write(batch, options_.sync);
        if (batch.byte_size() > kKeepBatchBytes) {
            write_batch_.reset(); // do not keep a huge buffer around
        }
    }
    if (!failed.is_ok()) {
        // The engine already holds part of the batch: rebuild it from what is committed.
        memory_ = std::make_unique<engine::MemoryEngine>(options_.memory);
        Status reload = load();
        if (!reload.is_ok()) {
            return Status(failed.code(), failed.message() + "; reloading the store also failed: " +
                                             reload.message());
        }
        return failed;
    }
    cold_ = cold;
    report.ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    last_rate_ = report.ms > 0.0 ? static_cast<double>(ops.size()) * 1000.0 / report.ms : 0.0;
    std::lock_guard<std::mutex> g(batches_mutex_);
    report.seq = ++batch_seq_;
    batches_.push_back(std::move(report));
    if (batches_.size() > kMaxBatchReports) {
        batches_.pop_front();
    }
    return Status::ok();
}

StoreStats SharedStore::stats() {
    // No store lock: a running commit holds it, and watching that commit is the point.
    StoreStats s;
    s.hot = static_cast<std::size_t>(hot_count_.load());
    s.cold = static_cast<std::size_t>(cold_count_.load());
    s.pressure =
        std::min(1.0, static_cast<double>(s.hot) / static_cast<double>(options_.memory.capacity));
    s.committing_rows = committing_rows_.load();
    s.applied_rows = applied_rows_.load();
    const double started = commit_started_.load();
    if (started > 0.0) {
        const double elapsed = steady_seconds() - started;
        s.rate = elapsed > 0.0 ? static_cast<double>(s.applied_rows) / elapsed : 0.0;
    } else {
        s.rate = last_rate_.load();
    }
    std::lock_guard<std::mutex> g(batches_mutex_);
    s.batches = batch_seq_;
    return s;
}

std::vector<BatchReport> SharedStore::batches() {
    std::lock_guard<std::mutex> g(batches_mutex_);
    return {batches_.begin(), batches_.end()};
}

} // namespace engram::vtab
