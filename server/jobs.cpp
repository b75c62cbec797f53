// Job logs on disk, SSE streaming with resume, backpressure (see jobs.hpp).
#include "server/jobs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <stdexcept>
#include <vector>

namespace engram::server {

using Clock = std::chrono::steady_clock;

namespace {

bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

std::string sse(const std::string& event, std::optional<std::int64_t> id, const std::string& data) {
    std::string out = "event: " + event + "\n";
    if (id) {
        out += "id: " + std::to_string(*id) + "\n";
    }
    out += "data: " + data + "\n\n";
    return out;
}

std::string random_id() {
    std::random_device rd;
    std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    static const char* hex = "0123456789abcdef";
    std::string s;
    std::uint64_t v = rng();
    for (int i = 0; i < 16; ++i) {
        s += hex[v & 15];
        v >>= 4;
    }
    return s;
}

} // namespace

Job::Job(std::string id, std::filesystem::path path, std::string table, std::size_t operations,
         std::uint64_t memory_limit_bytes, std::size_t queue_events)
    : id_(std::move(id)), path_(std::move(path)), table_(std::move(table)), operations_(operations),
      memory_limit_bytes_(memory_limit_bytes), queue_events_(queue_events) {}

Job::~Job() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool Job::append(const char* event, std::int64_t event_id, const std::string& data) {
    std::string line = std::to_string(event_id) + "\t" + event + "\t" + data + "\n";
    if (fd_ < 0 || !write_all(fd_, line)) {
        return false;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    bytes_ += line.size();
    next_event_ = event_id + 1;
    progress_ = nullptr; // a result ends the phase the progress described
    cv_.notify_all();
    // Backpressure: wait while an attached reader lags too far behind.
    auto lagging = [&] {
        for (const auto& [rid, r] : readers_) {
            if (next_event_ - r.events > static_cast<std::int64_t>(queue_events_) ||
                bytes_ - r.bytes > memory_limit_bytes_) {
                return true;
            }
        }
        return false;
    };
    if (lagging()) {
        paused_ = true;
        ++pauses_;
        cv_.wait(lock, [&] { return !lagging(); });
        paused_ = false;
    }
    return true;
}

void Job::set_progress(const Json& progress) {
    std::lock_guard<std::mutex> g(mutex_);
    progress_ = progress;
    ++progress_seq_;
    cv_.notify_all();
}

void Job::finish(const Json& report) {
    const std::string line = std::to_string(operations_) + "\tdone\t" + report.dump() + "\n";
    const bool ok = fd_ >= 0 && write_all(fd_, line);
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    std::lock_guard<std::mutex> g(mutex_);
    if (ok) {
        bytes_ += line.size();
    }
    report_ = report;
    done_ = true;
    finished_at_ = Clock::now();
    cv_.notify_all();
}

std::size_t Job::stream(std::int64_t last_event_id,
                        const std::function<bool(const std::string&)>& write) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    std::uint64_t reader_id = 0;
    {
        std::lock_guard<std::mutex> g(mutex_);
        reader_id = next_reader_++;
        readers_[reader_id] = Reader{last_event_id + 1, 0};
    }
    auto detach = [&] {
        std::lock_guard<std::mutex> g(mutex_);
        readers_.erase(reader_id);
        cv_.notify_all();
    };
    std::size_t sent = 0;
    std::uint64_t offset = 0;
    std::string pending; // a partial line carried to the next read
    std::vector<char> buf(64 * 1024);
    std::uint64_t progress_seen = 0;
    auto last_progress = Clock::now();
    bool header_seen = false;
    for (;;) {
        std::uint64_t avail = 0;
        bool finished = false;
        {
            std::lock_guard<std::mutex> g(mutex_);
            avail = bytes_;
            finished = done_;
        }
        if (offset < avail) {
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), avail - offset));
            const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
            if (n <= 0) {
                break;
            }
            offset += static_cast<std::uint64_t>(n);
            pending.append(buf.data(), static_cast<std::size_t>(n));
            std::size_t start = 0;
            for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos;
                 start = nl + 1) {
                const std::string line = pending.substr(start, nl - start);
                if (!header_seen && line.rfind("#\t", 0) == 0) {
                    header_seen = true;
                    continue;
                }
                const auto t1 = line.find('\t');
                const auto t2 = line.find('\t', t1 + 1);
                if (t1 == std::string::npos || t2 == std::string::npos) {
                    continue;
                }
                const std::int64_t id = std::stoll(line.substr(0, t1));
                if (id <= last_event_id) {
                    continue;
                }
                if (!write(sse(line.substr(t1 + 1, t2 - t1 - 1), id, line.substr(t2 + 1)))) {
                    detach();
                    return sent;
                }
                ++sent;
                std::lock_guard<std::mutex> g(mutex_);
                readers_[reader_id] = Reader{id + 1, offset - (pending.size() - nl - 1)};
                cv_.notify_all();
            }
            pending.erase(0, start);
            {
                std::lock_guard<std::mutex> g(mutex_);
                readers_[reader_id].bytes = offset - pending.size();
                cv_.notify_all();
            }
            continue;
        }
        if (finished) {
            break;
        }
        // At the end of the log: wait for more, sending progress meanwhile.
        std::string progress;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait_for(lock, std::chrono::milliseconds(100), [&] {
                return bytes_ > offset || done_ || progress_seq_ != progress_seen;
            });
            const bool fresh = progress_seq_ != progress_seen;
            if (!progress_.is_null() && bytes_ == offset && !done_ &&
                (fresh || Clock::now() - last_progress >= std::chrono::milliseconds(200))) {
                progress_seen = progress_seq_;
                progress = progress_.dump();
                last_progress = Clock::now();
            }
        }
        if (!progress.empty() && !write(sse("progress", std::nullopt, progress))) {
            detach();
            return sent;
        }
    }
    detach();
    return sent;
}

std::uint64_t Job::unsent_locked() const {
    std::uint64_t worst = 0;
    for (const auto& [rid, r] : readers_) {
        worst = std::max(worst, bytes_ - r.bytes);
    }
    return worst;
}

Json Job::status() const {
    std::lock_guard<std::mutex> g(mutex_);
    Json s = {{"job", id_},
              {"table", table_},
              {"state", done_ ? "done" : "running"},
              {"operations", operations_},
              {"events_written", next_event_},
              {"readers", readers_.size()},
              {"paused", paused_},
              {"pauses", pauses_},
              {"log_bytes", bytes_},
              {"unsent_bytes", unsent_locked()}};
    if (!readers_.empty()) {
        std::int64_t slowest = next_event_;
        for (const auto& [rid, r] : readers_) {
            slowest = std::min(slowest, r.events);
        }
        s["slowest_reader_events"] = slowest;
    }
    if (done_) {
        s["report"] = report_;
    }
    return s;
}

bool Job::done() const {
    std::lock_guard<std::mutex> g(mutex_);
    return done_;
}

std::uint64_t Job::log_bytes() const {
    std::lock_guard<std::mutex> g(mutex_);
    return bytes_;
}

std::chrono::steady_clock::time_point Job::finished_at() const {
    std::lock_guard<std::mutex> g(mutex_);
    return finished_at_;
}

std::uint64_t Job::pauses() const {
    std::lock_guard<std::mutex> g(mutex_);
    return pauses_;
}

std::shared_ptr<Job> Job::reopen(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string header;
    if (!std::getline(in, header) || header.rfind("#\t", 0) != 0) {
        return nullptr;
    }
    Json h = Json::parse(header.substr(2), nullptr, false);
    if (!h.is_object() || !h.contains("job") || !h.contains("operations")) {
        return nullptr;
    }
    auto job =
        std::make_shared<Job>(h["job"].get<std::string>(), path, h.value("table", std::string()),
                              h["operations"].get<std::size_t>(), 1ULL << 30, 1024);
    std::string line;
    std::string last;
    std::uint64_t bytes = header.size() + 1;
    std::int64_t next = 0;
    while (std::getline(in, line)) {
        if (in.eof()) {
            break; // a partial last line (the job died mid-write): not counted
        }
        bytes += line.size() + 1;
        last = line;
        const auto t1 = line.find('\t');
        if (t1 != std::string::npos) {
            next = std::max<std::int64_t>(next, std::stoll(line.substr(0, t1)) + 1);
        }
    }
    in.close();
    std::error_code ec;
    std::filesystem::resize_file(path, bytes, ec); // drop a partial last line
    {
        std::lock_guard<std::mutex> g(job->mutex_);
        job->bytes_ = bytes;
        job->next_event_ = next;
    }
    const auto t1 = last.find('\t');
    const auto t2 = t1 == std::string::npos ? t1 : last.find('\t', t1 + 1);
    if (t2 != std::string::npos && last.substr(t1 + 1, t2 - t1 - 1) == "done") {
        std::lock_guard<std::mutex> g(job->mutex_);
        job->report_ = Json::parse(last.substr(t2 + 1), nullptr, false);
        job->done_ = true;
        job->finished_at_ = Clock::now();
        job->next_event_ = static_cast<std::int64_t>(job->operations_);
        return job;
    }
    // The server stopped while the job ran: committed results are in the log; close it.
    job->fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    job->finish(Json{{"status", "interrupted"},
                     {"message", "the server stopped while this job ran; results before this "
                                 "event were logged, later operations may not have run"}});
    return job;
}

JobRegistry::JobRegistry(JobOptions options) : options_(std::move(options)) {
    std::filesystem::create_directories(options_.dir);
    for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
        if (entry.path().extension() != ".log") {
            continue;
        }
        try {
            if (auto job = Job::reopen(entry.path())) {
                jobs_[job->id()] = job;
            }
        } catch (const std::exception&) {
            // An unreadable log is left alone (and not resumable).
        }
    }
}

std::shared_ptr<Job> JobRegistry::create(const std::string& table, std::size_t operations,
                                         std::uint64_t memory_limit_bytes) {
    std::lock_guard<std::mutex> g(mutex_);
    sweep_locked(0);
    std::uint64_t total = 0;
    for (const auto& [id, job] : jobs_) {
        total += job->log_bytes();
    }
    if (total >= options_.budget_bytes) {
        throw std::runtime_error("the job log budget (" +
                                 std::to_string(options_.budget_bytes >> 20) +
                                 " MB) is full of running jobs; retry later");
    }
    std::string id = random_id();
    while (jobs_.count(id) != 0) {
        id = random_id();
    }
    const auto path = options_.dir / (id + ".log");
    auto job = std::make_shared<Job>(id, path, table, operations, memory_limit_bytes,
                                     options_.queue_events);
    job->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (job->fd_ < 0) {
        throw std::runtime_error("cannot create the job log " + path.string());
    }
    const std::string header =
        "#\t" + Json{{"job", id}, {"table", table}, {"operations", operations}}.dump() + "\n";
    if (!write_all(job->fd_, header)) {
        throw std::runtime_error("cannot write the job log " + path.string());
    }
    job->bytes_ = header.size();
    jobs_[id] = job;
    return job;
}

std::shared_ptr<Job> JobRegistry::find(const std::string& id) {
    std::lock_guard<std::mutex> g(mutex_);
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second;
}

void JobRegistry::sweep() {
    std::lock_guard<std::mutex> g(mutex_);
    sweep_locked(0);
}

void JobRegistry::sweep_locked(std::uint64_t need) {
    const auto now = Clock::now();
    std::uint64_t total = 0;
    std::vector<std::pair<Clock::time_point, std::string>> finished;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        const auto& job = it->second;
        if (job->done() && now - job->finished_at() > options_.ttl) {
            std::error_code ec;
            std::filesystem::remove(job->path(), ec);
            it = jobs_.erase(it);
            continue;
        }
        total += job->log_bytes();
        if (job->done()) {
            finished.emplace_back(job->finished_at(), it->first);
        }
        ++it;
    }
    std::sort(finished.begin(), finished.end());
    for (const auto& [t, id] : finished) {
        if (total + need < options_.budget_bytes) {
            break;
        }
        auto it = jobs_.find(id);
        total -= it->second->log_bytes();
        std::error_code ec;
        std::filesystem::remove(it->second->path(), ec);
        jobs_.erase(it);
    }
}

std::uint64_t JobRegistry::log_bytes() {
    std::lock_guard<std::mutex> g(mutex_);
    std::uint64_t total = 0;
    for (const auto& [id, job] : jobs_) {
        total += job->log_bytes();
    }
    return total;
}

std::size_t JobRegistry::running() {
    std::lock_guard<std::mutex> g(mutex_);
    std::size_t n = 0;
    for (const auto& [id, job] : jobs_) {
        n += job->done() ? 0 : 1;
    }
    return n;
}

} // namespace engram::server
