// Server metrics in the Prometheus text format (exposition format 0.0.4).
//
// HOW IT WORKS
//   Counters and histograms are kept per table (and per route for HTTP requests) in maps
//   guarded by one mutex; the hot paths take it once per request or commit, not per row.
//   Histograms have fixed latency buckets (1 ms .. 10 s). Gauges (episodes, hot, cold, indexed,
//   pressure, dedup, commit progress) are not kept here: render() receives them from
//   engram_stats at scrape time, so /metrics never disagrees with SQL.
//
// Thread safety: every member function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace engram::server {

struct Histogram {
    static constexpr std::array<double, 13> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
    std::array<std::uint64_t, kBounds.size()> buckets{}; // non-cumulative
    std::uint64_t count = 0;
    double sum = 0;
    void observe(double seconds);
};

// One row of engram_stats, as gauges.
struct TableGauges {
    std::string table;
    double episodes = 0, hot = 0, cold = 0, indexed = 0, pressure = 0, deduplicated = 0;
    double committing = 0, applied = 0, rate = 0, staged = 0;
};

class Metrics {
public:
    void request(const std::string& route, int status);
    void commit(const std::string& table, double seconds, std::uint64_t stored,
                std::uint64_t failed);
    // kind: "similarity" or "recall"; `queries` counted, the latency observed once.
    void query(const std::string& table, const std::string& kind, double seconds,
               std::uint64_t queries, std::uint64_t failed);
    void sse_event(std::uint64_t n = 1);
    void job_paused();
    std::string render(const std::vector<TableGauges>& gauges, std::uint64_t jobs_running,
                       std::uint64_t job_log_bytes, std::uint64_t connections) const;

private:
    struct TableMetrics {
        Histogram commit;
        std::map<std::string, Histogram> query; // by kind
        std::uint64_t stores_ok = 0, stores_failed = 0, commits = 0;
        std::map<std::string, std::uint64_t> queries_ok, queries_failed; // by kind
    };
    mutable std::mutex mutex_;
    std::map<std::string, TableMetrics> tables_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
    std::uint64_t sse_events_ = 0;
    std::uint64_t job_pauses_ = 0;
};

} // namespace engram::server
