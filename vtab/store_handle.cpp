#include "vtab/store_handle.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <string_view>
#include <unordered_map>

#include "engine/batch/batch_store.hpp"
#include "engine/batch/executor.hpp"
#include "engine/core/time.hpp"
#include "engine/recall.hpp"
#include "engine/simd/kernels.hpp"
#include "storage/codec.hpp"

namespace engram::vtab {
namespace {

constexpr std::size_t kMaxBatchReports = 10000;
// Write-batch buffers up to this size are kept for the next commit.
constexpr std::size_t kKeepBatchBytes = 256U << 20;
// A transaction at least this large is published like one in several writes (its data skips
// the WAL, see commit), even when it fits one: the WAL would otherwise hold a second copy.
constexpr std::size_t kUnloggedBytes = 16U << 20;

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::string, std::weak_ptr<SharedStore>>& registry() {
    static std::map<std::string, std::weak_ptr<SharedStore>> r;
    return r;
}

std::string ascii_lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
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
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        stop_ = true;
    }
    tail_cv_.notify_all();
    if (builder_.joinable()) {
        builder_.join();
    }
    if (!dropped_ && !options_.in_memory && db_) {
        save_snapshot(); // best effort: a missing or stale snapshot only means a rebuild
    }
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
    fresh->reset_index();
    auto restored = fresh->load_snapshot();
    if (!restored) {
        return restored.status();
    }
    if (!restored.value()) {
        ENGRAM_TRY(fresh->load());
    }
    ENGRAM_TRY(fresh->load_edges());
    fresh->drain_journal();
    fresh->builder_ = std::thread([s = fresh.get()] { s->build_loop(); });
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
    auto version = db_->get_meta("version");
    if (!version) {
        return version.status();
    }
    version_ = version->has_value() ? std::stoull(**version) : 0;
    storage::Batch b = db_->batch();
    b.put_meta("format", "1");
    b.put_meta("dim", std::to_string(options_.memory.dim));
    b.put_meta("capacity", std::to_string(options_.memory.capacity));
    b.put_meta("m", std::to_string(options_.m));
    b.put_meta("ef_construction", std::to_string(options_.ef_construction));
    b.put_meta("ef_search", std::to_string(options_.ef_search));
    return db_->write(b, storage::SyncMode::kFull);
}

Result<bool>
SharedStore::scan_records(const std::function<Result<bool>(const engine::EpisodeRecord&)>& hot) {
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
        auto go_on = hot(rec.value());
        if (!go_on || !go_on.value()) {
            return go_on;
        }
    }
    ENGRAM_TRY(cursor->status());
    return true;
}

void SharedStore::restore_hot(const engine::EpisodeRecord& rec) {
    const engine::Episode& e = rec.episode;
    const auto unit = unit_vector(e.embedding);
    memory_->restore(e.id, unit.data(), rec.activation, e.confidence, e.occurred_at);
    set_text(e);
}

Status SharedStore::load() {
    auto scanned = scan_records([&](const engine::EpisodeRecord& rec) -> Result<bool> {
        restore_hot(rec);
        return true;
    });
    hot_count_ = static_cast<std::int64_t>(memory_->hot().count());
    cold_count_ = static_cast<std::int64_t>(cold_);
    return scanned.status();
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
    Status s = db_->get_episode_latest(id, &value);
    if (s.is_ok()) {
        return true;
    }
    if (s.code() == Code::kNotFound) {
        return false;
    }
    return s;
}

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

namespace {

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

std::size_t SharedStore::unindexed() {
    std::lock_guard<std::mutex> g(tail_mutex_);
    return waiting_ + journal_.size();
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
    commit_started_ = steady_seconds();
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
                memory_->hot().remove(op.id);
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
                    memory_->hot().update(op.id, &units[i * stride],
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

std::vector<Result<std::vector<std::pair<std::string, double>>>>
SharedStore::recall(std::span<const engine::Cue> cues) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const engine::HotTier& hot = memory_->hot();
    std::vector<engine::MemoryView> views;
    views.reserve(hot.count());
    for (std::uint32_t slot = 0; slot < hot.slots(); ++slot) {
        const engine::SlotInfo& info = hot.info(slot);
        if (!info.live) {
            continue;
        }
        static const SlotText kNone;
        const SlotText& t = slot < texts_.size() ? texts_[slot] : kNone;
        views.push_back({info.id, t.what, t.location, info.occurred_at, hot.row(slot), true});
    }
    // Cold memories are read from storage only when a cue asks for them.
    std::deque<engine::EpisodeRecord> cold;
    std::deque<std::vector<float>> cold_units;
    const bool want_cold =
        std::any_of(cues.begin(), cues.end(), [](const engine::Cue& c) { return c.include_cold; });
    std::vector<Result<std::vector<std::pair<std::string, double>>>> out;
    if (want_cold) {
        auto cursor = db_->episodes();
        for (cursor->seek_first(); cursor->valid(); cursor->next()) {
            auto rec = storage::decode_record(cursor->id(), cursor->value());
            if (!rec) {
                out.assign(cues.size(), rec.status());
                return out;
            }
            if (rec->tier != engine::Tier::kCold) {
                continue;
            }
            cold.push_back(std::move(rec.value()));
            cold_units.push_back(unit_vector(cold.back().episode.embedding));
            const engine::Episode& e = cold.back().episode;
            views.push_back(
                {e.id, e.what, e.location, e.occurred_at, cold_units.back().data(), false});
        }
    }
    const std::vector<std::uint32_t> by_time = engine::build_time_index(views);
    engine::RecallContext ctx;
    ctx.memories = views;
    ctx.dim = options_.memory.dim;
    ctx.pressure = memory_->pressure();
    ctx.now = engine::now_seconds();
    ctx.hot_by_time = by_time;
    auto results = engine::recall_batch(cues, ctx, engine::default_arena());
    out.reserve(results.size());
    for (auto& r : results) {
        if (!r) {
            out.emplace_back(r.status());
            continue;
        }
        std::vector<std::pair<std::string, double>> rows;
        rows.reserve(r->size());
        for (const engine::RecallResult& x : r.value()) {
            rows.emplace_back(std::string(views[x.index].id), x.confidence);
        }
        out.emplace_back(std::move(rows));
    }
    return out;
}

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

// Snapshot layout in the `index` family:
//   "snapshot.meta"  u32 format (1) | u64 data version | u64 slots | per slot: u8 state (0 free,
//                    1 hot not indexed, 2 hot indexed), and when hot u32 id length + id |
//                    u64 graph bytes | u32 chunks
//   "snapshot.NNNN"  the graph (HnswIndex::serialize) in chunks of kSnapshotChunk bytes
// It is written when the store closes, and used on open only when
// its data version equals the store's (every commit bumps the version): labels are hot slots,
// so the hot tier is rebuilt with exactly the saved slot layout.
namespace {
constexpr std::size_t kSnapshotChunk = 64U << 20;
template <typename T> void put_pod(std::string* out, T v) {
    out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T> bool get_pod(std::string_view* in, T* v) {
    if (in->size() < sizeof(T)) {
        return false;
    }
    std::memcpy(v, in->data(), sizeof(T));
    in->remove_prefix(sizeof(T));
    return true;
}
} // namespace

void SharedStore::save_snapshot() {
    // The builder has stopped: state_ is stable. Memories not indexed yet are saved as such and
    // go back to the builder's queue on open.
    const engine::HotTier& hot = memory_->hot();
    std::string meta;
    put_pod<std::uint32_t>(&meta, 1);
    put_pod<std::uint64_t>(&meta, version_.load());
    put_pod<std::uint64_t>(&meta, hot.slots());
    for (std::uint32_t s = 0; s < hot.slots(); ++s) {
        const engine::SlotInfo& info = hot.info(s);
        const bool indexed = s < state_.size() && state_[s] == 2;
        put_pod<std::uint8_t>(&meta, info.live ? (indexed ? 2 : 1) : 0);
        if (info.live) {
            put_pod<std::uint32_t>(&meta, static_cast<std::uint32_t>(info.id.size()));
            meta += info.id;
        }
    }
    // Streamed one chunk per write (never a copy of the whole graph in memory): the old meta
    // goes first and the new one last, so a crash in between leaves no snapshot (a rebuild),
    // never a mix of two.
    storage::Batch b = db_->batch();
    b.delete_index("snapshot.meta");
    if (!db_->write(b, storage::SyncMode::kNormal).is_ok()) {
        return;
    }
    std::string chunk;
    std::uint64_t graph_bytes = 0;
    std::uint32_t chunks = 0;
    bool ok = true;
    auto write_chunk = [&](std::string_view bytes) {
        char key[32];
        std::snprintf(key, sizeof key, "snapshot.%06u", chunks);
        b.clear();
        b.put_index(key, bytes);
        ok = ok && db_->write(b, storage::SyncMode::kNormal).is_ok();
        ++chunks;
    };
    index_->serialize_to(
        [&](std::string_view piece) {
            graph_bytes += piece.size();
            chunk.append(piece);
            if (chunk.size() >= kSnapshotChunk) {
                write_chunk(std::string_view(chunk).substr(0, kSnapshotChunk));
                chunk.erase(0, kSnapshotChunk);
            }
        },
        1U << 20);
    if (!chunk.empty()) {
        write_chunk(chunk);
    }
    if (!ok) {
        return;
    }
    put_pod<std::uint64_t>(&meta, graph_bytes);
    put_pod<std::uint32_t>(&meta, chunks);
    b.clear();
    b.put_index("snapshot.meta", meta);
    (void)db_->write(b, storage::SyncMode::kFull);
}

Result<bool> SharedStore::load_snapshot() {
    auto meta = db_->get_index("snapshot.meta");
    if (!meta) {
        return meta.status();
    }
    if (!meta->has_value()) {
        index_source_ = "built (no snapshot)";
        return false;
    }
    index_source_ = "rebuilt (the snapshot did not match the data)";
    std::string_view in(**meta);
    std::uint32_t format = 0;
    std::uint64_t version = 0, slots = 0;
    if (!get_pod(&in, &format) || format != 1 || !get_pod(&in, &version) || !get_pod(&in, &slots) ||
        slots > (1ULL << 32)) {
        return false; // foreign: rebuild
    }
    // Commits after the snapshot (a crash before the next close): reconcile, re-indexing only
    // the memories that changed.
    const bool stale = version != version_;
    std::unordered_map<std::string, std::uint32_t> layout;
    std::vector<std::uint8_t> saved_state(slots, 0);
    for (std::uint64_t s = 0; s < slots; ++s) {
        std::uint8_t live = 0;
        if (!get_pod(&in, &live) || live > 2) {
            return false;
        }
        saved_state[s] = live;
        if (live != 0) {
            std::uint32_t n = 0;
            if (!get_pod(&in, &n) || in.size() < n) {
                return false;
            }
            layout.emplace(std::string(in.substr(0, n)), static_cast<std::uint32_t>(s));
            in.remove_prefix(n);
        }
    }
    std::uint64_t graph_bytes = 0;
    std::uint32_t chunks = 0;
    if (!get_pod(&in, &graph_bytes) || !get_pod(&in, &chunks)) {
        return false;
    }
    std::string graph;
    graph.reserve(graph_bytes);
    for (std::uint32_t c = 0; c < chunks; ++c) {
        char key[32];
        std::snprintf(key, sizeof key, "snapshot.%06u", c);
        auto part = db_->get_index(key);
        if (!part) {
            return part.status();
        }
        if (!part->has_value()) {
            return false;
        }
        graph += **part;
    }
    if (graph.size() != graph_bytes) {
        return false;
    }
    auto index = engine::HnswIndex::deserialize(graph, index_config());
    if (!index) {
        return false;
    }
    graph = std::string();
    auto give_up = [&]() {
        memory_ = std::make_unique<engine::MemoryEngine>(options_.memory);
        reset_index();
        return false; // the data and the snapshot disagree: rebuild
    };
    // Rebuild the hot tier in the saved slot layout.
    engine::HotTier& hot = memory_->hot();
    hot.prepare_slots(slots);
    std::vector<std::uint8_t> placed(slots, 0);
    std::vector<std::string> unplaced; // hot memories the snapshot does not know (stale only)
    std::size_t reindexed = 0;
    auto scanned = scan_records([&](const engine::EpisodeRecord& rec) -> Result<bool> {
        const engine::Episode& e = rec.episode;
        auto it = layout.find(e.id);
        if (it == layout.end()) {
            unplaced.push_back(e.id);
            return stale; // a fresh snapshot must know every hot memory
        }
        const std::uint32_t slot = it->second;
        const auto unit = unit_vector(e.embedding);
        hot.insert_at(slot, e.id, unit.data(), static_cast<float>(rec.activation),
                      static_cast<float>(e.confidence), e.occurred_at);
        set_text(e);
        placed[slot] = 1;
        if (stale && saved_state[slot] == 2 && !(*index)->holds(slot, unit.data())) {
            saved_state[slot] = 1; // changed since the snapshot: index it again
            ++reindexed;
        }
        return true;
    });
    if (!scanned) {
        return scanned.status();
    }
    if (!scanned.value()) {
        return give_up();
    }
    for (std::uint32_t s = 0; s < slots; ++s) {
        if (saved_state[s] != 0 && placed[s] == 0) {
            if (!stale) {
                return give_up();
            }
            if (saved_state[s] == 2) {
                (*index)->remove(s); // gone (deleted or evicted) since the snapshot
            }
            saved_state[s] = 0;
        }
    }
    hot.finish_layout();
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        index_ = std::move(index.value());
        journal_.clear();
        state_ = std::move(saved_state);
        tail_.clear();
        waiting_ = 0;
        std::int64_t indexed = 0;
        for (std::uint32_t s = 0; s < state_.size(); ++s) {
            if (state_[s] == 1) {
                tail_.push_back(s);
                ++waiting_;
            } else if (state_[s] == 2) {
                ++indexed;
            }
        }
        indexed_count_ = indexed;
    }
    // Memories stored after the snapshot: into free slots; the journal queues them for the
    // builder.
    for (const std::string& id : unplaced) {
        std::string value;
        ENGRAM_TRY(db_->get_episode(id, &value));
        auto rec = storage::decode_record(id, value);
        if (!rec) {
            return rec.status();
        }
        restore_hot(rec.value());
    }
    reindexed += unplaced.size();
    index_source_ = stale ? "snapshot, " + std::to_string(reindexed) + " re-indexed" : "snapshot";
    hot_count_ = static_cast<std::int64_t>(hot.count());
    cold_count_ = static_cast<std::int64_t>(cold_);
    return true;
}

engine::HnswConfig SharedStore::index_config() const {
    engine::HnswConfig hc;
    hc.dim = options_.memory.dim;
    hc.m = static_cast<std::size_t>(options_.m);
    hc.ef_construction = static_cast<std::size_t>(options_.ef_construction);
    hc.auto_purge = false; // the builder purges, so that commits never do
    return hc;
}

void SharedStore::reset_index() {
    std::lock_guard<std::mutex> g(tail_mutex_);
    index_ = std::make_unique<engine::HnswIndex>(index_config());
    tail_.clear();
    state_.clear();
    waiting_ = 0;
    indexed_count_ = 0;
    journal_.clear();
    memory_->hot().set_journal(&journal_);
}

void SharedStore::drain_journal() {
    // Called with mutex_ held exclusively: the builder is not indexing now.
    std::lock_guard<std::mutex> g(tail_mutex_);
    bool removed = false;
    for (const engine::TierEvent& ev : journal_) {
        if (state_.size() <= ev.slot) {
            state_.resize(ev.slot + 1, 0);
        }
        std::uint8_t& st = state_[ev.slot];
        if (ev.kind != engine::TierEvent::Kind::kAdd && st == 2) {
            index_->remove(ev.slot);
            --indexed_count_;
            removed = true;
        }
        if (st == 1) {
            --waiting_;
        }
        st = 0;
        if (ev.kind != engine::TierEvent::Kind::kRemove) {
            st = 1;
            ++waiting_;
            tail_.push_back(ev.slot);
        }
    }
    journal_.clear();
    if (removed && index_->purge_due()) {
        purge_wanted_ = true;
    }
    if (waiting_ > 0 || purge_wanted_) {
        tail_cv_.notify_one();
    }
}

void SharedStore::build_loop() {
    constexpr std::size_t kChunk = 16; // slots indexed per hold of the shared lock (commits wait)
    std::vector<std::uint32_t> work;
    for (;;) {
        {
            std::unique_lock<std::mutex> g(tail_mutex_);
            tail_cv_.wait(g, [&] { return stop_ || !tail_.empty() || purge_wanted_; });
            if (stop_) {
                return;
            }
        }
        if (purge_wanted_.exchange(false)) {
            // Tombstones from removals and replacements: repaired here, off the commit path.
            while (writers_waiting_.load() > 0) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            std::shared_lock<std::shared_mutex> lock(mutex_);
            (void)index_->purge_if_due();
            continue;
        }
        // Commits come first: the builder steps aside while one waits for the store lock
        // (a shared_mutex may otherwise let this loop of readers starve the writer).
        while (writers_waiting_.load() > 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        std::shared_lock<std::shared_mutex> lock(mutex_);
        work.clear();
        {
            std::lock_guard<std::mutex> g(tail_mutex_);
            while (!tail_.empty() && work.size() < kChunk) {
                const std::uint32_t slot = tail_.front();
                tail_.pop_front();
                if (state_[slot] == 1 && std::find(work.begin(), work.end(), slot) == work.end()) {
                    work.push_back(slot);
                }
            }
            building_ = true;
        }
        const engine::HotTier& hot = memory_->hot();
        // A commit that starts waiting for the store lock stops the chunk: the slots not
        // begun yet go back to the front of the tail (one insert per thread at most delays it).
        std::vector<std::uint8_t> done(work.size(), 0);
        engine::parallel_indices(engine::background_arena(), work.size(), [&](std::size_t i) {
            if (writers_waiting_.load(std::memory_order_relaxed) > 0) {
                return;
            }
            index_->insert(work[i], hot.row(work[i]));
            done[i] = 1;
        });
        {
            std::lock_guard<std::mutex> g(tail_mutex_);
            std::size_t indexed = 0;
            for (std::size_t i = work.size(); i-- > 0;) {
                if (done[i] != 0) {
                    state_[work[i]] = 2;
                    ++indexed;
                } else {
                    tail_.push_front(work[i]);
                }
            }
            waiting_ -= indexed;
            indexed_count_ += static_cast<std::int64_t>(indexed);
            building_ = false;
        }
        idle_cv_.notify_all();
    }
}

void SharedStore::wait_indexed() {
    std::unique_lock<std::mutex> g(tail_mutex_);
    idle_cv_.wait(g, [&] { return stop_ || (waiting_ == 0 && !building_); });
}

std::vector<std::pair<std::string, float>> SharedStore::search(const float* unit, std::size_t k,
                                                               float threshold, std::size_t ef,
                                                               const SearchFilter* filter) {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const engine::HotTier& hot = memory_->hot();
    std::vector<engine::Match> found;
    if (k == 0 || hot.count() == 0) {
        return {};
    }
    std::string location;
    nlohmann::json wanted;
    if (filter != nullptr && filter->location) {
        location = ascii_lower(*filter->location);
    }
    if (filter != nullptr && filter->metadata_key) {
        wanted = nlohmann::json::parse(filter->metadata_value, nullptr, false);
    }
    auto accept_slot = [&](std::uint32_t slot) {
        const engine::SlotInfo& info = hot.info(slot);
        if (filter->from && info.occurred_at < *filter->from) {
            return false;
        }
        if (filter->to && info.occurred_at > *filter->to) {
            return false;
        }
        if (filter->ids && filter->ids->count(info.id) == 0) {
            return false;
        }
        static const SlotText kNone;
        const SlotText& t = slot < texts_.size() ? texts_[slot] : kNone;
        if (filter->location && ascii_lower(t.location).find(location) == std::string::npos) {
            return false;
        }
        if (filter->metadata_key) {
            const nlohmann::json m = nlohmann::json::parse(t.metadata, nullptr, false);
            if (!m.is_object() || !m.contains(*filter->metadata_key) ||
                m[*filter->metadata_key] != wanted) {
                return false;
            }
        }
        return true;
    };
    // Exact part: memories not in the graph yet.
    std::vector<std::uint32_t> pending;
    {
        std::lock_guard<std::mutex> g(tail_mutex_);
        pending.reserve(waiting_);
        for (std::uint32_t slot = 0; slot < state_.size(); ++slot) {
            if (state_[slot] == 1) {
                pending.push_back(slot);
            }
        }
    }
    const engine::simd::KernelTable& kt = engine::simd::kernels();
    for (std::uint32_t slot : pending) {
        const engine::SlotInfo& info = hot.info(slot);
        if (!info.live || (filter != nullptr && !accept_slot(slot))) {
            continue;
        }
        const float score = std::clamp(kt.dot(unit, hot.row(slot), hot.dim()), -1.0F, 1.0F);
        if (score >= threshold) {
            found.push_back({slot, score});
        }
    }
    // Graph part.
    std::function<bool(std::uint32_t)> accept;
    if (filter != nullptr) {
        accept = accept_slot;
    }
    for (const auto& [slot, raw] :
         index_->search(unit, k, ef, filter != nullptr ? &accept : nullptr)) {
        const float score = std::clamp(raw, -1.0F, 1.0F);
        if (score >= threshold) {
            found.push_back({slot, score});
        }
    }
    // A slot the builder is indexing right now can come from both parts: keep it once.
    std::sort(found.begin(), found.end(), [](const engine::Match& a, const engine::Match& b) {
        return a.slot != b.slot ? a.slot < b.slot : a.score > b.score;
    });
    found.erase(std::unique(found.begin(), found.end(),
                            [](const engine::Match& a, const engine::Match& b) {
                                return a.slot == b.slot;
                            }),
                found.end());
    std::sort(found.begin(), found.end(), [&](const engine::Match& a, const engine::Match& b) {
        if (a.score != b.score) {
            return a.score > b.score;
        }
        return hot.info(a.slot).id < hot.info(b.slot).id;
    });
    if (found.size() > k) {
        found.resize(k);
    }
    std::vector<std::pair<std::string, float>> out;
    out.reserve(found.size());
    for (const auto& m : found) {
        out.emplace_back(hot.info(m.slot).id, m.score);
    }
    return out;
}

StoreStats SharedStore::stats() {
    // No store lock: a running commit holds it, and watching that commit is the point.
    StoreStats s;
    s.hot = static_cast<std::size_t>(hot_count_.load());
    s.indexed = static_cast<std::size_t>(indexed_count_.load());
    s.cold = static_cast<std::size_t>(cold_count_.load());
    s.pressure =
        std::min(1.0, static_cast<double>(s.hot) / static_cast<double>(options_.memory.capacity));
    s.committing_rows = committing_rows_.load();
    s.staged_rows = staged_rows_.load();
    s.index_source = index_source_;
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
