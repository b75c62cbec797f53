// Batch jobs: results logged on disk, streamed as Server-Sent Events, resumable by event id.
//
// HOW IT WORKS
//   A job is one POST /batch/operations run in its own thread. Each operation result is
//   appended to the job's log file (<jobs dir>/<id>.log, one line per event: "<id>\t<event>\t
//   <json>") and ends with a `done` line whose id is the number of operations. The header line
//   ("#\t<json>") names the table and the operation count, so logs found at start-up are
//   registered again and stay resumable across restarts (a log without its done line gets a
//   `done` saying the job was interrupted).
//   A stream reader (Job::stream) reads the log from the start, skips events up to the
//   client's Last-Event-ID and writes the rest, waiting on the job's condition variable at the
//   end of the log: it never holds more than one read buffer, so a reader costs the same
//   memory whether it is fast or slow. Progress events are not logged: the job keeps only the
//   latest, and a reader waiting at the end of the log sends it at least every 200 ms.
//   Backpressure: an attached reader reports how far it has written; when the job runs more
//   than `queue_events` events (or memory_limit_mb bytes) ahead of its slowest attached reader,
//   the job thread waits — a slow reader pauses the job instead of growing anything. A reader
//   that disconnects detaches; the job then runs on and its results stay on disk for
//   `ttl`, resumable with Last-Event-ID.
//   Budget: logs of finished jobs are deleted after `ttl`, or oldest first when the logs
//   together exceed `budget_bytes`; a new job is refused (503) when even that cannot make
//   room. Running jobs are never deleted.
//
// Thread safety: Job and JobRegistry are thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace engram::server {

using Json = nlohmann::json;

struct JobOptions {
    // Where job logs live. Default: "<database>.jobs" beside the database.
    std::filesystem::path dir;
    // Disk space the logs of finished jobs may use together. Default: 256 MB.
    std::uint64_t budget_bytes = 256ULL << 20;
    // How long a finished job stays resumable. Default: 600 s.
    std::chrono::seconds ttl{600};
    // Events a job may run ahead of its slowest attached stream reader before it pauses.
    // Small values pause sooner (less disk written ahead), large ones let a job finish while
    // a client lags. Default: 1024.
    std::size_t queue_events = 1024;
};

class Job {
public:
    Job(std::string id, std::filesystem::path path, std::string table, std::size_t operations,
        std::uint64_t memory_limit_bytes, std::size_t queue_events);
    ~Job();
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    const std::string& id() const noexcept { return id_; }
    const std::string& table() const noexcept { return table_; }
    std::size_t operations() const noexcept { return operations_; }

    // Producer side (the job thread). append() may block while a reader lags (backpressure).
    // Returns false when the log cannot be written (disk full).
    bool append(const char* event, std::int64_t event_id, const std::string& data);
    void set_progress(const Json& progress);
    void finish(const Json& report);

    // Writes the events after `last_event_id` (-1: all) as SSE through `write` until the job
    // is done and its log fully sent, or `write` fails (returns false: the client left).
    // Returns the number of events written. `on_event` is told about each (metrics).
    std::size_t stream(std::int64_t last_event_id,
                       const std::function<bool(const std::string&)>& write);

    Json status() const;
    bool done() const;
    std::uint64_t log_bytes() const;
    std::chrono::steady_clock::time_point finished_at() const;
    const std::filesystem::path& path() const noexcept { return path_; }
    std::uint64_t pauses() const;

    // Opens an existing log (start-up): reads its header and whether it is done.
    static std::shared_ptr<Job> reopen(const std::filesystem::path& path);

private:
    friend class JobRegistry;
    std::uint64_t unsent_locked() const;
    std::string id_;
    std::filesystem::path path_;
    std::string table_;
    std::size_t operations_;
    std::uint64_t memory_limit_bytes_;
    std::size_t queue_events_;
    int fd_ = -1; // append-only log, written by the job thread

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::uint64_t bytes_ = 0;     // bytes of complete lines in the log
    std::int64_t next_event_ = 0; // events appended (operation results)
    bool done_ = false;
    Json report_;
    Json progress_;
    std::uint64_t progress_seq_ = 0;
    bool paused_ = false;
    std::uint64_t pauses_ = 0;
    std::chrono::steady_clock::time_point finished_at_{};
    // Attached readers: how many events and bytes each has written to its client.
    struct Reader {
        std::int64_t events = 0;
        std::uint64_t bytes = 0;
    };
    std::map<std::uint64_t, Reader> readers_;
    std::uint64_t next_reader_ = 0;
};

class JobRegistry {
public:
    // Creates the directory; registers the logs already there (finished, resumable).
    explicit JobRegistry(JobOptions options);

    // A new job; throws std::runtime_error when the log budget is full.
    std::shared_ptr<Job> create(const std::string& table, std::size_t operations,
                                std::uint64_t memory_limit_bytes);
    std::shared_ptr<Job> find(const std::string& id);
    // Deletes finished logs past their TTL, then the oldest while over budget.
    void sweep();
    std::uint64_t log_bytes();
    std::size_t running();
    const JobOptions& options() const noexcept { return options_; }

private:
    void sweep_locked(std::uint64_t need);
    JobOptions options_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Job>> jobs_;
};

} // namespace engram::server
