// `engram serve`: routes, authentication, limits, job threads and the stats sampler.
//
// HOW IT WORKS
//   cpp-httplib runs each connection on a worker of a fixed pool (--threads). Every handler
//   leases a SQLite connection from the pool (one per thread at a time), so reads run in
//   parallel with each other and with a commit (the database is in WAL mode and the store is
//   shared by all connections of the process); write transactions take the server's writer
//   mutex, as SQLite allows one writer per file. A streamed or detached batch runs in its own
//   thread as a Job (jobs.hpp) and the response streams its log; GET /batch/stream attaches to
//   a job again. A sampler thread reads engram_stats every second for the status page's
//   history and /stats/stream, and sweeps old job logs.
//   Errors are {"error": {"code", "message", "operation", "field"}} with a 4xx/5xx status;
//   httplib's own errors (413 for a body over --max-body, 404 for unknown paths) get the same
//   shape from the error handler.
#include "server/http_server.hpp"

#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <thread>

#include "server/jobs.hpp"
#include "server/metrics.hpp"
#include "server/operations.hpp"
#include "server/sql.hpp"
#include "server/status_page.hpp"

namespace engram::server {
namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
    double t = 0; // unix seconds
    TableGauges g;
    double ingest_rate = 0; // episodes/s since the previous sample
};

// Samples engram_stats every second for every table (status page, /stats/stream).
class Sampler {
public:
    Sampler(ConnectionPool& pool, JobRegistry& jobs) : pool_(pool), jobs_(jobs) {}
    ~Sampler() { stop(); }
    void start() {
        thread_ = std::thread([this] { loop(); });
    }
    void stop() {
        {
            std::lock_guard<std::mutex> g(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    // {"tables": [{"name", "latest", "history": [...]}]}
    Json snapshot(bool with_history) {
        std::lock_guard<std::mutex> g(mutex_);
        Json tables = Json::array();
        for (const auto& [name, hist] : history_) {
            Json t = {{"name", name}};
            if (!hist.empty()) {
                t["latest"] = to_json(hist.back());
            }
            if (with_history) {
                Json h = Json::array();
                for (const Sample& s : hist) {
                    h.push_back(to_json(s));
                }
                t["history"] = h;
            }
            tables.push_back(t);
        }
        return Json{{"tables", tables}, {"seq", seq_}};
    }
    std::uint64_t seq() {
        std::lock_guard<std::mutex> g(mutex_);
        return seq_;
    }
    // Waits up to `timeout` for a sample newer than `seen`.
    void wait_newer(std::uint64_t seen, std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, timeout, [&] { return seq_ != seen || stop_; });
    }

private:
    static Json to_json(const Sample& s) {
        return Json{{"t", s.t},
                    {"episodes", s.g.episodes},
                    {"hot", s.g.hot},
                    {"cold", s.g.cold},
                    {"indexed", s.g.indexed},
                    {"pressure", s.g.pressure},
                    {"ingest_rate", s.ingest_rate},
                    {"committing", s.g.committing},
                    {"applied", s.g.applied},
                    {"commit_rate", s.g.rate}};
    }
    void loop() {
        int ticks = 0;
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stop_) {
            lock.unlock();
            sample_once();
            if (++ticks % 10 == 0) {
                jobs_.sweep();
            }
            lock.lock();
            cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
        }
    }
    void sample_once() {
        std::vector<Sample> samples;
        try {
            auto conn = pool_.acquire();
            for (const std::string& t : conn->engram_tables()) {
                Statement s(conn->get(), "SELECT episodes, hot, cold, indexed, pressure, "
                                         "committing, applied, rate FROM engram_stats(?1)");
                s.bind_text(1, t);
                if (!s.step()) {
                    continue;
                }
                Sample smp;
                smp.t = std::chrono::duration<double>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
                smp.g.table = t;
                smp.g.episodes = s.double_at(0);
                smp.g.hot = s.double_at(1);
                smp.g.cold = s.double_at(2);
                smp.g.indexed = s.double_at(3);
                smp.g.pressure = s.double_at(4);
                smp.g.committing = s.double_at(5);
                smp.g.applied = s.double_at(6);
                smp.g.rate = s.double_at(7);
                samples.push_back(smp);
            }
        } catch (const std::exception&) {
            return; // the next tick tries again
        }
        std::lock_guard<std::mutex> g(mutex_);
        for (Sample& s : samples) {
            auto& hist = history_[s.g.table];
            if (!hist.empty() && s.t > hist.back().t) {
                s.ingest_rate =
                    std::max(0.0, (s.g.episodes - hist.back().g.episodes) / (s.t - hist.back().t));
            }
            hist.push_back(s);
            if (hist.size() > 300) {
                hist.pop_front();
            }
        }
        ++seq_;
        cv_.notify_all();
    }

    ConnectionPool& pool_;
    JobRegistry& jobs_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::uint64_t seq_ = 0;
    std::map<std::string, std::deque<Sample>> history_;
    std::thread thread_;
};

// Job results into the job's log.
class JobSink : public ResultSink {
public:
    explicit JobSink(Job& job) : job_(job) {}
    void result(std::size_t index, const Json& r) override {
        if (!job_.append("batch_result", static_cast<std::int64_t>(index), r.dump())) {
            throw std::runtime_error("cannot write the job log (disk full?)");
        }
    }
    void progress(const Json& p) override { job_.set_progress(p); }

private:
    Job& job_;
};

// A one-document reply: results in operation order, capped at memory_limit_mb.
class CollectSink : public ResultSink {
public:
    explicit CollectSink(std::uint64_t limit) : limit_(limit) {}
    void result(std::size_t index, const Json& r) override {
        const std::size_t size = r.dump().size();
        if (bytes_ + size > limit_) {
            Json e = {{"operation", index},
                      {"status", "error"},
                      {"error",
                       {{"code", "memory_limit"},
                        {"message", "operations[" + std::to_string(index) +
                                        "]: the reply would exceed memory_limit_mb (" +
                                        std::to_string(limit_ >> 20) +
                                        " MB); ask for stream_response: true"},
                        {"operation", index}}}};
            bytes_ += e.dump().size();
            results_.push_back(e);
            return;
        }
        bytes_ += size;
        results_.push_back(r);
    }
    void progress(const Json&) override {}
    Json take() { return std::move(results_); }

private:
    std::uint64_t limit_;
    std::uint64_t bytes_ = 0;
    Json results_ = Json::array();
};

bool constant_time_equal(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
    }
    return diff == 0 && !b.empty();
}

std::string route_of(const std::string& path) {
    static const char* kRoutes[] = {"/",
                                    "/health",
                                    "/metrics",
                                    "/tables",
                                    "/stats",
                                    "/stats/stream",
                                    "/batch/operations",
                                    "/batch/stream",
                                    "/batch/similarity",
                                    "/batch/recall"};
    for (const char* r : kRoutes) {
        if (path == r) {
            return r;
        }
    }
    if (path.rfind("/batch/jobs/", 0) == 0) {
        return "/batch/jobs/{id}";
    }
    return "other";
}

void reply_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
}

void reply_error(httplib::Response& res, const ApiError& e) {
    reply_json(res, e.status, e.to_json());
}

// Runs a handler body, mapping exceptions to error replies.
template <typename F> void guarded(httplib::Response& res, F&& f) {
    try {
        f();
    } catch (const ApiError& e) {
        reply_error(res, e);
    } catch (const SqlError& e) {
        reply_error(res,
                    ApiError((e.code & 0xff) == SQLITE_BUSY ? 503 : 500, "sql_error", e.what()));
    } catch (const std::bad_alloc&) {
        reply_error(res, ApiError(507, "out_of_memory", "the server ran out of memory"));
    } catch (const std::exception& e) {
        reply_error(res, ApiError(500, "internal", e.what()));
    }
}

const char* const kEventStream = "text/event-stream";

class HttpServer {
public:
    explicit HttpServer(const ServeOptions& o)
        : opt_(o), pool_(o.db, o.extension.empty() ? default_extension_path() : o.extension),
          jobs_(JobOptions{o.jobs_dir.empty() ? o.db + ".jobs" : o.jobs_dir, o.jobs_budget_bytes,
                           o.job_ttl, o.queue_events}),
          sampler_(pool_, jobs_) {
        state_.pool = &pool_;
        state_.metrics = &metrics_;
        state_.writer = &writer_;
        {
            auto conn = pool_.acquire(); // fails early: bad database or extension
            conn->exec("PRAGMA journal_mode=WAL");
            Statement v(conn->get(), "SELECT engram_version()");
            version_ = v.step() ? v.text_at(0) : "?";
        }
        routes();
    }

    int run() {
        const int threads = opt_.threads;
        http_.new_task_queue = [threads] {
            return new httplib::ThreadPool(static_cast<std::size_t>(threads));
        };
        http_.set_payload_max_length(opt_.max_body_bytes);
        http_.set_tcp_nodelay(true); // SSE events are small writes: no Nagle delay
        http_.set_read_timeout(30, 0);
        http_.set_write_timeout(opt_.write_timeout_s, 0);
        http_.set_keep_alive_timeout(30);
        int port = opt_.port;
        if (port == 0) {
            port = http_.bind_to_any_port(opt_.host);
            if (port < 0) {
                std::cerr << "engram serve: cannot bind " << opt_.host << "\n";
                return 1;
            }
        } else if (!http_.bind_to_port(opt_.host, port)) {
            std::cerr << "engram serve: cannot listen on " << opt_.host << ":" << port
                      << " (in use, or not an address of this machine)\n";
            return 1;
        }
        if (!opt_.port_file.empty()) {
            std::ofstream(opt_.port_file) << port << "\n";
        }
        std::cerr << "engram serve: listening on http://" << opt_.host << ":" << port
                  << " (database " << opt_.db << ", engram " << version_
                  << (opt_.token.empty() ? ", no token" : ", bearer token required") << ")\n";
        sampler_.start();
        // SIGINT/SIGTERM are blocked in every thread (main) and taken here.
        std::thread signals([this] {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGTERM);
            sigaddset(&set, SIGUSR1);
            int sig = 0;
            sigwait(&set, &sig);
            if (sig != SIGUSR1) {
                std::cerr << "engram serve: stopping\n";
            }
            stopping_ = true;
            http_.stop();
        });
        http_.listen_after_bind();
        if (!stopping_) {
            pthread_kill(signals.native_handle(), SIGUSR1);
        }
        signals.join();
        sampler_.stop();
        wait_jobs();
        return 0;
    }

private:
    void wait_jobs() {
        std::unique_lock<std::mutex> lock(jobs_mutex_);
        jobs_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return jobs_running_ == 0; });
    }

    bool authorized(const httplib::Request& req) const {
        if (opt_.token.empty()) {
            return true;
        }
        const std::string auth = req.get_header_value("Authorization");
        if (auth.rfind("Bearer ", 0) == 0 && constant_time_equal(auth.substr(7), opt_.token)) {
            return true;
        }
        // EventSource and a browser's first page load cannot send headers: ?token= as well.
        return req.has_param("token") &&
               constant_time_equal(req.get_param_value("token"), opt_.token);
    }

    void start_job(const std::shared_ptr<Job>& job, OperationsRequest req) {
        {
            std::lock_guard<std::mutex> g(jobs_mutex_);
            ++jobs_running_;
        }
        std::thread([this, job, req = std::move(req)] {
            JobSink sink(*job);
            Json report;
            const std::uint64_t pauses0 = job->pauses();
            try {
                report = execute_operations(state_, req, sink);
                report["status"] = "ok";
            } catch (const ApiError& e) {
                report = e.to_json();
                report["status"] = "error";
            } catch (const std::exception& e) {
                report = ApiError(500, "internal", e.what()).to_json();
                report["status"] = "error";
            }
            report["job"] = job->id();
            job->finish(report);
            for (std::uint64_t p = pauses0; p < job->pauses(); ++p) {
                metrics_.job_paused();
            }
            std::lock_guard<std::mutex> g(jobs_mutex_);
            --jobs_running_;
            jobs_cv_.notify_all();
        }).detach();
    }

    // Streams a job's events after `last` as the response body.
    void stream_job(httplib::Response& res, const std::shared_ptr<Job>& job, std::int64_t last) {
        res.status = 200;
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Engram-Job", job->id());
        res.set_header("X-Accel-Buffering", "no");
        res.set_chunked_content_provider(
            kEventStream, [this, job, last](std::size_t, httplib::DataSink& sink) {
                auto write = [&](const std::string& s) {
                    if (stopping_) {
                        return false;
                    }
                    return sink.write(s.data(), s.size());
                };
                const Json hello = {{"job", job->id()},
                                    {"table", job->table()},
                                    {"operations", job->operations()},
                                    {"last_event_id", last}};
                if (!write("retry: 1000\nevent: job\ndata: " + hello.dump() + "\n\n")) {
                    return false;
                }
                const std::size_t n = job->stream(last, write);
                metrics_.sse_event(n);
                if (!job->done() || stopping_) {
                    return false; // the client left (or the server stops): drop the stream
                }
                sink.done();
                return true;
            });
    }

    std::vector<TableGauges> gauges() {
        std::vector<TableGauges> out;
        auto conn = pool_.acquire();
        for (const std::string& t : conn->engram_tables()) {
            Statement s(conn->get(), "SELECT episodes, hot, cold, indexed, pressure, committing, "
                                     "applied, rate, staged FROM engram_stats(?1)");
            s.bind_text(1, t);
            if (!s.step()) {
                continue;
            }
            TableGauges g;
            g.table = t;
            g.episodes = s.double_at(0);
            g.hot = s.double_at(1);
            g.cold = s.double_at(2);
            g.indexed = s.double_at(3);
            g.pressure = s.double_at(4);
            g.committing = s.double_at(5);
            g.applied = s.double_at(6);
            g.rate = s.double_at(7);
            g.staged = s.double_at(8);
            Statement d(conn->get(),
                        "SELECT coalesce(sum(deduplicated), 0) FROM engram_batches(?1)");
            d.bind_text(1, t);
            if (d.step()) {
                g.deduplicated = d.double_at(0);
            }
            out.push_back(g);
        }
        return out;
    }

    void routes() {
        http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (authorized(req)) {
                return httplib::Server::HandlerResponse::Unhandled;
            }
            res.set_header("WWW-Authenticate", "Bearer realm=\"engram\"");
            reply_error(res, ApiError(401, "unauthorized",
                                      "missing or wrong bearer token: send 'Authorization: "
                                      "Bearer <token>' (the token given to engram serve "
                                      "--token)"));
            return httplib::Server::HandlerResponse::Handled;
        });
        http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) {
                return;
            }
            if (res.status == 413) {
                reply_error(res, ApiError(413, "payload_too_large",
                                          "the request body exceeds the limit of " +
                                              std::to_string(opt_.max_body_bytes) +
                                              " bytes (engram serve --max-body)"));
            } else if (res.status == 404) {
                reply_error(res, ApiError(404, "not_found",
                                          "no such endpoint: " + req.method + " " + req.path));
            } else {
                reply_error(res, ApiError(res.status, "http_error",
                                          "HTTP error " + std::to_string(res.status)));
            }
        });
        http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            metrics_.request(route_of(req.path), res.status);
        });

        http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(status_page_html(), "text/html; charset=utf-8");
        });
        http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            guarded(res, [&] {
                auto conn = pool_.acquire();
                Json tables = conn->engram_tables();
                reply_json(res, 200,
                           Json{{"status", "ok"},
                                {"version", version_},
                                {"tables", tables},
                                {"jobs_running", jobs_.running()},
                                {"uptime_s",
                                 std::chrono::duration<double>(Clock::now() - started_).count()}});
            });
        });
        http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            guarded(res, [&] {
                res.set_content(
                    metrics_.render(gauges(), jobs_.running(), jobs_.log_bytes(), pool_.opened()),
                    "text/plain; version=0.0.4; charset=utf-8");
            });
        });
        http_.Get("/tables", [this](const httplib::Request&, httplib::Response& res) {
            guarded(res, [&] {
                auto conn = pool_.acquire();
                Json out = Json::array();
                for (const std::string& t : conn->engram_tables()) {
                    Statement s(conn->get(), "SELECT * FROM engram_stats(?1)");
                    s.bind_text(1, t);
                    Json row = {{"name", t}};
                    if (s.step()) {
                        for (int c = 0; c < s.columns(); ++c) {
                            switch (s.column_type(c)) {
                            case SQLITE_INTEGER:
                                row[s.column_name(c)] = s.int_at(c);
                                break;
                            case SQLITE_FLOAT:
                                row[s.column_name(c)] = s.double_at(c);
                                break;
                            case SQLITE_NULL:
                                row[s.column_name(c)] = nullptr;
                                break;
                            default:
                                row[s.column_name(c)] = s.text_at(c);
                            }
                        }
                    }
                    out.push_back(row);
                }
                reply_json(res, 200, Json{{"tables", out}});
            });
        });
        http_.Post("/tables", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&] { create_table(req, res); });
        });
        http_.Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
            reply_json(res, 200, sampler_.snapshot(true));
        });
        http_.Get("/stats/stream", [this](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-cache");
            res.set_chunked_content_provider(
                "text/event-stream", [this](std::size_t, httplib::DataSink& sink) {
                    std::uint64_t seen = ~0ULL;
                    while (!stopping_) {
                        const std::uint64_t now = sampler_.seq();
                        if (now != seen) {
                            seen = now;
                            const std::string ev =
                                "event: stats\ndata: " + sampler_.snapshot(false).dump() + "\n\n";
                            if (!sink.write(ev.data(), ev.size())) {
                                return false;
                            }
                        }
                        sampler_.wait_newer(seen, std::chrono::milliseconds(1500));
                    }
                    return false;
                });
        });
        http_.Post("/batch/operations",
                   [this](const httplib::Request& req, httplib::Response& res) {
                       guarded(res, [&] { batch_operations(req, res); });
                   });
        http_.Get("/batch/stream", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&] {
                if (!req.has_param("job")) {
                    throw ApiError(400, "invalid_field", "job: missing (GET /batch/stream?job=ID)",
                                   std::nullopt, "job");
                }
                auto job = jobs_.find(req.get_param_value("job"));
                if (!job) {
                    throw ApiError(404, "unknown_job",
                                   "job: no such job '" + req.get_param_value("job") +
                                       "' (unknown, or its log expired)",
                                   std::nullopt, "job");
                }
                std::string last = req.get_header_value("Last-Event-ID");
                if (last.empty() && req.has_param("last_event_id")) {
                    last = req.get_param_value("last_event_id");
                }
                std::int64_t last_id = -1;
                if (!last.empty()) {
                    try {
                        std::size_t used = 0;
                        last_id = std::stoll(last, &used);
                        if (used != last.size() || last_id < -1) {
                            throw std::invalid_argument(last);
                        }
                    } catch (const std::exception&) {
                        throw ApiError(400, "invalid_field",
                                       "Last-Event-ID: expected an event id (an integer), got '" +
                                           last + "'",
                                       std::nullopt, "Last-Event-ID");
                    }
                }
                stream_job(res, job, last_id);
            });
        });
        http_.Get(R"(/batch/jobs/([0-9a-f]+))",
                  [this](const httplib::Request& req, httplib::Response& res) {
                      guarded(res, [&] {
                          auto job = jobs_.find(req.matches[1]);
                          if (!job) {
                              throw ApiError(404, "unknown_job",
                                             "no such job '" + req.matches[1].str() + "'");
                          }
                          reply_json(res, 200, job->status());
                      });
                  });
        http_.Post("/batch/similarity",
                   [this](const httplib::Request& req, httplib::Response& res) {
                       guarded(res, [&] {
                           reply_json(res, 200, similarity_batch(state_, parse_body(req.body)));
                       });
                   });
        http_.Post("/batch/recall", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&] { reply_json(res, 200, recall_batch(state_, parse_body(req.body))); });
        });
    }

    void create_table(const httplib::Request& req, httplib::Response& res) {
        const Json body = parse_body(req.body);
        if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) {
            throw ApiError(400, "invalid_field", "name: expected the new table's name",
                           std::nullopt, "name");
        }
        const std::string name = body["name"].get<std::string>();
        if (!is_identifier(name)) {
            throw ApiError(400, "invalid_field", "name: '" + name + "' is not a valid table name",
                           std::nullopt, "name");
        }
        std::string args;
        if (body.contains("options")) {
            if (!body["options"].is_object()) {
                throw ApiError(400, "invalid_field", "options: expected an object", std::nullopt,
                               "options");
            }
            for (const auto& [k, v] : body["options"].items()) {
                if (!is_identifier(k)) {
                    throw ApiError(400, "invalid_field", "options." + k + ": not an option name",
                                   std::nullopt, "options." + k);
                }
                std::string value;
                if (v.is_number()) {
                    value = v.dump();
                } else if (v.is_string()) {
                    value = sql_quote(v.get<std::string>());
                } else {
                    throw ApiError(400, "invalid_field",
                                   "options." + k + ": expected a number or a string", std::nullopt,
                                   "options." + k);
                }
                args += (args.empty() ? "" : ", ") + k + "=" + value;
            }
        }
        std::lock_guard<std::mutex> writer(writer_);
        auto conn = pool_.acquire();
        for (const std::string& t : conn->engram_tables()) {
            if (t == name) {
                reply_json(res, 200, Json{{"table", name}, {"created", false}});
                return;
            }
        }
        try {
            conn->exec("CREATE VIRTUAL TABLE \"" + name + "\" USING engram(" + args + ")");
        } catch (const SqlError& e) {
            throw ApiError(400, "invalid_option", e.what(), std::nullopt, "options");
        }
        reply_json(res, 201, Json{{"table", name}, {"created", true}});
    }

    void batch_operations(const httplib::Request& req, httplib::Response& res) {
        OperationsRequest op = parse_operations_request(parse_body(req.body));
        {
            auto conn = pool_.acquire();
            check_table(*conn, op.table, "table");
        }
        const std::uint64_t limit = static_cast<std::uint64_t>(op.memory_limit_mb) << 20;
        if (!op.stream && !op.detach) {
            CollectSink sink(limit);
            Json report = execute_operations(state_, op, sink);
            reply_json(res, 200, Json{{"results", sink.take()}, {"report", report}});
            return;
        }
        std::shared_ptr<Job> job;
        try {
            job = jobs_.create(op.table, op.operations.size(), limit);
        } catch (const std::runtime_error& e) {
            throw ApiError(503, "job_log_full", e.what());
        }
        const bool stream = op.stream;
        start_job(job, std::move(op));
        if (!stream) {
            res.set_header("Location", "/batch/stream?job=" + job->id());
            reply_json(res, 202,
                       Json{{"job", job->id()},
                            {"stream", "/batch/stream?job=" + job->id()},
                            {"status", "/batch/jobs/" + job->id()}});
            return;
        }
        stream_job(res, job, -1);
    }

    ServeOptions opt_;
    ConnectionPool pool_;
    Metrics metrics_;
    std::mutex writer_;
    ServerState state_;
    JobRegistry jobs_;
    Sampler sampler_;
    httplib::Server http_;
    std::string version_;
    std::atomic<bool> stopping_{false};
    Clock::time_point started_ = Clock::now();
    std::mutex jobs_mutex_;
    std::condition_variable jobs_cv_;
    std::size_t jobs_running_ = 0;
};

} // namespace

int run_serve(const ServeOptions& options) {
    // Block the stop signals in every thread; run() takes them with sigwait.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    try {
        HttpServer server(options);
        return server.run();
    } catch (const std::exception& e) {
        std::cerr << "engram serve: " << e.what() << "\n";
        return 1;
    }
}

} // namespace engram::server
