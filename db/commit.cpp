// The commit protocol: one SQL transaction = one batch, applied in order, all or nothing.
//
// HOW IT WORKS
//   commit() takes the store's write lock (after backpressure may have waited for the index
//   builder), re-checks the ids of plain inserts when another commit came in between, then reads
//   the transaction's operations in chunks (staged ones from disk first, then the in-memory
//   tail; OpReader) as the pacer sizes them. apply_chunk() normalises the embeddings in
//   parallel, applies the ops in order to the engine (runs of plain inserts through the batch
//   engine: parallel screening, sequential resolution, so batch ≡ sequential) and encodes the
//   records into write batches.
//   A transaction that fits one chunk (and is under kUnloggedBytes) is one atomic RocksDB write
//   with the data version. A larger or staged one is published in several writes behind a
//   pinned read view: each chunk's undo records go first (WAL, fsynced), its data without the
//   WAL, in parallel parts; the episodes family is flushed, then the end mark and the version.
//   A crash in between is undone at open (storage/). On any error the storage is undone and the
//   engine rebuilt from what is committed, so nothing changes.
#include "db/shared_store.hpp"

#include <algorithm>
#include <deque>
#include <string_view>
#include <unordered_map>

#include "db/util.hpp"
#include "engine/batch/batch_store.hpp"
#include "engine/batch/executor.hpp"
#include "engine/core/time.hpp"
#include "engine/simd/kernels.hpp"
#include "storage/codec.hpp"

namespace engram::db {
namespace {

constexpr std::size_t kMaxBatchReports = 10000;
// Write-batch buffers up to this size are kept for the next commit.
constexpr std::size_t kKeepBatchBytes = 256U << 20;
// A transaction at least this large is published like one in several writes (its data skips
// the WAL, see commit), even when it fits one: the WAL would otherwise hold a second copy.
constexpr std::size_t kUnloggedBytes = 16U << 20;

// Reads a transaction's operations in chunks: the staged ones (decoded from disk), then those
// in memory (without copying).
class OpReader {
public:
    OpReader(const storage::Store& db, const TransactionOps& tx)
        : tx_(tx), cursor_(tx.staged > 0 ? db.staged_ops(tx.txn, 0) : nullptr) {}

    Result<std::span<const PendingOp>> next(std::size_t rows) {
        if (staged_read_ < tx_.staged) {
            buffer_.clear();
            while (buffer_.size() < rows && staged_read_ < tx_.staged) {
                if (!cursor_->valid()) {
                    ENGRAM_TRY(cursor_->status());
                    return Status::corruption("rows staged by this transaction are missing");
                }
                auto op = decode_op(cursor_->value());
                if (!op) {
                    return op.status();
                }
                buffer_.push_back(std::move(op.value()));
                cursor_->next();
                ++staged_read_;
            }
            return std::span<const PendingOp>(buffer_);
        }
        const std::size_t n = std::min(rows, tx_.tail.size() - tail_read_);
        const auto chunk = tx_.tail.subspan(tail_read_, n);
        tail_read_ += n;
        return chunk;
    }

private:
    const TransactionOps& tx_;
    std::unique_ptr<storage::EpisodeCursor> cursor_;
    std::vector<PendingOp> buffer_;
    std::size_t staged_read_ = 0;
    std::size_t tail_read_ = 0;
};

} // namespace

engine::PacerConfig SharedStore::pacer_config() const {
    engine::PacerConfig c;
    c.strategy = options_.backpressure;
    // Half of the budget holds the queued rows (the vtab spills beyond it), half the chunk
    // being applied: its decoded rows, normalised copies and write batch.
    c.budget_bytes = options_.batch_memory / 2;
    const std::size_t dim = options_.memory.dim;
    c.row_bytes = 2 * dim * sizeof(float) + memory_->hot().stride() * sizeof(float) + 512;
    c.max_unindexed = options_.max_unindexed;
    c.min_free_bytes = std::max<std::size_t>(256U << 20, 2 * options_.batch_memory);
    return c;
}

Status SharedStore::check_ids(const TransactionOps& tx) {
    // Another connection may have committed one of the ids this transaction inserts since it
    // queued it. A plain insert's id was absent from everything the transaction saw (else it
    // would be a replace), so it must still be absent. Nothing is modified here. Nothing to
    // check when no commit came between the transaction's start and now (under the lock).
    if (tx.base_version == version_.load()) {
        return Status::ok();
    }
    auto check = [&](const std::string& id) -> Status {
        auto e = exists_locked(id);
        if (!e) {
            return e.status();
        }
        if (e.value()) {
            return Status::exists("duplicate id '" + id + "': already stored");
        }
        return Status::ok();
    };
    if (tx.staged > 0) {
        auto ids = db_->staged_ids(tx.txn);
        for (; ids->valid(); ids->next()) {
            const std::string_view v = ids->value();
            if (v.size() == 9 && v[8] != '\0') {
                ENGRAM_TRY(check(std::string(ids->id())));
            }
        }
        ENGRAM_TRY(ids->status());
    }
    for (const PendingOp& op : tx.tail) {
        if (op.kind == PendingOp::Kind::kInsert && !op.replace) {
            ENGRAM_TRY(check(op.id));
        }
    }
    return Status::ok();
}

Status SharedStore::commit(const TransactionOps& tx) {
    const std::size_t total = tx.staged + tx.tail.size();
    if (total == 0) {
        return Status::ok();
    }
    const auto t0 = std::chrono::steady_clock::now();
    engine::Pacer pacer(pacer_config());
    BatchReport report;
    report.simd = engine::simd::kernels().name;
    report.staged = static_cast<std::int64_t>(tx.staged);
    // Backpressure (block): wait for the builder before taking the store.
    if (pacer.should_wait({unindexed(), engine::available_memory_bytes()})) {
        std::unique_lock<std::mutex> g(tail_mutex_);
        idle_cv_.wait(g, [&] {
            return stop_ ||
                   !pacer.should_wait({waiting_ + journal_.size(), static_cast<std::size_t>(-1)});
        });
        report.waited_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
    }
    writers_waiting_.fetch_add(1);
    std::unique_lock<std::shared_mutex> lock(mutex_);
    writers_waiting_.fetch_sub(1);
    committing_rows_ = static_cast<std::int64_t>(total);
    applied_rows_ = 0;
    commit_started_ = detail::steady_seconds();
    struct ProgressReset {
        SharedStore* s;
        ~ProgressReset() {
            s->committing_rows_ = 0;
            s->applied_rows_ = 0;
            s->commit_started_ = 0.0;
            s->hot_count_ = static_cast<std::int64_t>(s->memory_->hot().count());
            s->cold_count_ = static_cast<std::int64_t>(s->cold_);
            s->db_->hold_view(false);
        }
    } progress_reset{this};

    ENGRAM_TRY(check_ids(tx));

    OpReader reader(*db_, tx);
    std::size_t done = 0;
    bool multi = false; // published in several writes (undo log, pinned read view)
    std::uint64_t undo_seq = 0;
    std::size_t cold = cold_;
    const double stored_at = engine::now_seconds();
    Status failed;
    while (done < total && failed.is_ok()) {
        const engine::Step step =
            pacer.next({unindexed(), engine::available_memory_bytes()}, total - done);
        if (!multi && (step.rows < total || tx.staged > 0 || tx.tail_bytes >= kUnloggedBytes)) {
            multi = true;
            db_->hold_view(true); // readers keep the state before this commit until it ends
        }
        auto chunk = reader.next(step.rows);
        if (!chunk) {
            failed = chunk.status();
            break;
        }
        const auto c0 = std::chrono::steady_clock::now();
        failed = apply_chunk(chunk.value(), step.mode, multi, stored_at, &cold, &report);
        if (failed.is_ok()) {
            const std::span<storage::Batch> parts(write_batches_.data(), write_parts_);
            if (multi) {
                // The chunk's undo records go first, through the WAL and fsynced (even with
                // sync=off: a power cut must not leave part of a publish without them); its
                // data then skips the WAL, and the flush before end_publish makes it durable.
                // The data is written once (to table files) instead of twice (WAL, then
                // table files), its parts concurrently (RocksDB inserts them into the
                // memtable in parallel).
                storage::Batch undo = db_->batch();
                if (report.chunks == 0) {
                    undo.begin_publish();
                }
                for (const auto& [id, before] : chunk_before_) {
                    undo.put_undo(undo_seq++, id,
                                  before ? std::optional<std::string_view>(*before) : std::nullopt);
                }
                failed = db_->write(undo, storage::SyncMode::kFull);
                if (failed.is_ok()) {
                    std::vector<Status> written(parts.size());
                    engine::parallel_indices(
                        engine::default_arena(), parts.size(),
                        [&](std::size_t k) { written[k] = db_->write_unlogged(parts[k]); });
                    for (Status& w : written) {
                        if (failed.is_ok() && !w.is_ok()) {
                            failed = std::move(w);
                        }
                    }
                }
            } else {
                // One atomic write. The data version tells a graph snapshot whether it still
                // matches (see save_snapshot).
                parts[0].put_meta("version", std::to_string(version_.load() + 1));
                failed = db_->write(parts[0], options_.sync);
            }
            for (storage::Batch& b : parts) {
                if (b.byte_size() > kKeepBatchBytes) {
                    b = db_->batch(); // do not keep a huge buffer around
                }
            }
        }
        chunk_before_.clear();
        ++report.chunks;
        done += chunk->size();
        applied_rows_ = static_cast<std::int64_t>(done);
        drain_journal();
        pacer.record(chunk->size(), std::chrono::duration<double, std::milli>(
                                        std::chrono::steady_clock::now() - c0)
                                        .count());
    }
    if (failed.is_ok() && multi) {
        failed = db_->flush_episodes(); // the unlogged chunks are on disk before the end mark
    }
    if (failed.is_ok() && multi) {
        storage::Batch end = db_->batch();
        end.end_publish();
        end.put_meta("version", std::to_string(version_.load() + 1));
        failed = db_->write(end, options_.sync);
    }
    if (!failed.is_ok()) {
        // Storage first (a publish in several writes is undone), then the engine, which
        // already holds part of the batch: rebuild it from what is committed.
        Status undo = multi ? db_->undo_unfinished_publish() : Status::ok();
        memory_ = std::make_unique<engine::MemoryEngine>(options_.memory);
        reset_index();
        Status reload = undo.is_ok() ? load() : undo;
        drain_journal();
        rebuild_recall_indexes();
        if (!reload.is_ok()) {
            return Status(failed.code(), failed.message() + "; restoring the store also failed: " +
                                             reload.message());
        }
        return failed;
    }
    // Readers see the published state before the version says it is there: a transaction
    // that starts at the new version (TransactionOps::base_version) checks its ids against it.
    db_->hold_view(false);
    ++version_;
    cold_ = cold;
    if (units_.size() * sizeof(float) > kKeepBatchBytes) {
        units_ = std::vector<float>(); // do not keep a huge scratch buffer around
    }
    if (pacer.single()) {
        report.mode = "single";
    }
    report.ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    last_rate_ = report.ms > 0.0 ? static_cast<double>(total) * 1000.0 / report.ms : 0.0;
    std::lock_guard<std::mutex> g(batches_mutex_);
    report.seq = ++batch_seq_;
    batches_.push_back(std::move(report));
    if (batches_.size() > kMaxBatchReports) {
        batches_.pop_front();
    }
    return Status::ok();
}

Status SharedStore::apply_chunk(std::span<const PendingOp> ops, engine::ApplyMode mode, bool undo,
                                double stored_at, std::size_t* cold_count, BatchReport* report) {
    // Final state of every id the chunk touches. Records are not copied: `episode` points into
    // `ops` or into `loaded` (records read back from storage); nullptr means "deleted".
    struct Final {
        const engine::Episode* episode = nullptr;
        double activation = 0.0;
        engine::Tier tier = engine::Tier::kHot;
        double stored_at = 0.0;
    };
    std::unordered_map<std::string_view, Final> touched;
    std::deque<engine::EpisodeRecord> loaded;
    // Stored values read back, by id (the undo log of a publish in several writes).
    std::unordered_map<std::string_view, std::string> before;
    // The current state of `id`: nullopt when it is not stored.
    auto current = [&](std::string_view id) -> Result<std::optional<Final>> {
        if (auto it = touched.find(id); it != touched.end()) {
            return it->second.episode == nullptr ? std::optional<Final>()
                                                 : std::optional<Final>(it->second);
        }
        std::string value;
        Status s = db_->get_episode_latest(id, &value);
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
        before.try_emplace(r.episode.id, std::move(value));
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

    // Normalise every embedding, in parallel (each op writes its own row).
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

    // Apply in order to the engine, collecting the records to write. Runs of plain inserts go
    // through the batch engine (parallel screening, sequential resolution) unless the
    // backpressure strategy asked for single-op mode.
    std::size_t& cold = *cold_count;
    auto remove_existing = [&](const PendingOp& op) -> Status {
        auto cur = current(op.id);
        if (!cur) {
            return cur.status();
        }
        if (cur->has_value()) {
            if ((*cur)->tier == engine::Tier::kCold) {
                --cold;
            } else {
                memory_->remove(op.id);
            }
        }
        touched[op.id] = Final{};
        return Status::ok();
    };
    auto record_outcome = [&](const PendingOp& op, const engine::StoreOutcome& out) -> Status {
        ++report->size;
        report->peak_pressure = std::max(report->peak_pressure, out.pressure);
        report->successful += out.activation.successful() ? 1 : 0;
        report->degraded += out.activation.degraded() ? 1 : 0;
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
            ++report->evicted;
        }
        if (out.kind == engine::StoreKind::kSkipped) {
            ++report->deduplicated;
            return Status::ok();
        }
        if (out.kind == engine::StoreKind::kReplaced) {
            ++report->deduplicated;
            auto old = current(out.duplicate_of); // makes sure the key has storage
            if (!old) {
                return old.status();
            }
            touched[key_of(out.duplicate_of)] = Final{};
        }
        touched[op.id] = Final{&op.episode, out.activation.value(), engine::Tier::kHot, stored_at};
        set_text(op.episode);
        return Status::ok();
    };
    auto store_one = [&](std::size_t i) {
        const PendingOp& op = ops[i];
        return record_outcome(op, memory_->store(op.id, &units[i * stride],
                                                 engine::Confidence(op.episode.confidence),
                                                 op.episode.occurred_at));
    };
    Status failed;
    for (std::size_t i = 0; i < ops.size() && failed.is_ok();) {
        const PendingOp& op = ops[i];
        if (op.kind == PendingOp::Kind::kDelete) {
            failed = remove_existing(op);
            ++report->deleted;
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
                    memory_->update(op.id, &units[i * stride],
                                    static_cast<float>(op.episode.confidence),
                                    op.episode.occurred_at);
                    set_text(op.episode);
                }
                touched[op.id] = f;
                ++report->updated;
            }
            ++i;
            continue;
        }
        if (op.replace) {
            failed = remove_existing(op);
            if (failed.is_ok()) {
                failed = store_one(i);
            }
            ++i;
            continue;
        }
        if (mode == engine::ApplyMode::kSingle) {
            failed = store_one(i);
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
    }
    ENGRAM_TRY(failed);

    // Encode the records in parallel, then collect them in the (reused) write batch.
    std::vector<std::pair<std::string_view, const Final*>> all;
    all.reserve(touched.size());
    for (const auto& [id, f] : touched) {
        all.emplace_back(id, &f);
    }
    // Only the small headers are encoded separately; the embeddings go straight from the
    // queued episodes into the write batch.
    std::vector<std::string> headers(all.size());
    engine::parallel_indices(arena, all.size(), [&](std::size_t i) {
        const Final& f = *all[i].second;
        if (f.episode != nullptr) {
            headers[i] = storage::encode_header(*f.episode, f.activation, f.tier, f.stored_at);
        }
    });
    // One batch for a one-write commit (atomic); for a chunk of a publish in several writes
    // (undo-protected, see commit) one per thread, filled and written in parallel.
    const std::size_t parts =
        undo ? std::clamp<std::size_t>(all.size() / 256, 1,
                                       static_cast<std::size_t>(engine::default_arena_threads()))
             : 1;
    while (write_batches_.size() < parts) {
        write_batches_.push_back(db_->batch());
    }
    write_parts_ = parts;
    engine::parallel_indices(arena, parts, [&](std::size_t k) {
        storage::Batch& batch = write_batches_[k];
        batch.clear();
        const std::size_t end = all.size() * (k + 1) / parts;
        for (std::size_t i = all.size() * k / parts; i < end; ++i) {
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
    });
    chunk_before_.clear();
    if (undo) {
        for (std::size_t i = 0; i < all.size(); ++i) {
            const auto b = before.find(all[i].first);
            chunk_before_.emplace_back(std::string(all[i].first),
                                       b == before.end() ? std::nullopt
                                                         : std::optional<std::string>(b->second));
        }
    }
    return Status::ok();
}

void SharedStore::set_text(const engine::Episode& e) {
    const auto slot = memory_->hot().find(e.id);
    if (!slot) {
        return; // not hot (skipped, or removed again later in the same batch)
    }
    if (texts_.size() <= *slot) {
        texts_.resize(*slot + 1);
    }
    texts_[*slot].what = e.what;
    texts_[*slot].location = e.location;
    texts_[*slot].metadata = e.metadata;
}

} // namespace engram::db
