// Prometheus text rendering of the server's counters and histograms (see metrics.hpp).
#include "server/metrics.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

namespace engram::server {

void Histogram::observe(double seconds) {
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
        if (seconds <= kBounds[i]) {
            ++buckets[i];
            break;
        }
    }
    ++count;
    sum += seconds;
}

void Metrics::request(const std::string& route, int status) {
    std::lock_guard<std::mutex> g(mutex_);
    ++requests_[{route, status}];
}

void Metrics::commit(const std::string& table, double seconds, std::uint64_t stored,
                     std::uint64_t failed) {
    std::lock_guard<std::mutex> g(mutex_);
    auto& t = tables_[table];
    t.commit.observe(seconds);
    ++t.commits;
    t.stores_ok += stored;
    t.stores_failed += failed;
}

void Metrics::query(const std::string& table, const std::string& kind, double seconds,
                    std::uint64_t queries, std::uint64_t failed) {
    std::lock_guard<std::mutex> g(mutex_);
    auto& t = tables_[table];
    t.query[kind].observe(seconds);
    t.queries_ok[kind] += queries - failed;
    t.queries_failed[kind] += failed;
}

void Metrics::sse_event(std::uint64_t n) {
    std::lock_guard<std::mutex> g(mutex_);
    sse_events_ += n;
}

void Metrics::job_paused() {
    std::lock_guard<std::mutex> g(mutex_);
    ++job_pauses_;
}

namespace {

std::string num(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v); // shortest exact form
    return std::string(buf, r.ptr);
}

void histogram(std::ostringstream& o, const std::string& name, const std::string& labels,
               const Histogram& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        cumulative += h.buckets[i];
        o << name << "_bucket{" << labels << ",le=\"" << num(Histogram::kBounds[i]) << "\"} "
          << cumulative << "\n";
    }
    o << name << "_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    o << name << "_sum{" << labels << "} " << num(h.sum) << "\n";
    o << name << "_count{" << labels << "} " << h.count << "\n";
}

} // namespace

std::string Metrics::render(const std::vector<TableGauges>& gauges, std::uint64_t jobs_running,
                            std::uint64_t job_log_bytes, std::uint64_t connections) const {
    std::ostringstream o;
    std::lock_guard<std::mutex> g(mutex_);
    o << "# HELP engram_http_requests_total HTTP requests by route and status.\n"
         "# TYPE engram_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
        o << "engram_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second
          << "\"} " << n << "\n";
    }
    o << "# HELP engram_commit_seconds Latency of store transactions (BEGIN to COMMIT).\n"
         "# TYPE engram_commit_seconds histogram\n";
    for (const auto& [table, t] : tables_) {
        if (t.commits > 0) {
            histogram(o, "engram_commit_seconds", "table=\"" + table + "\"", t.commit);
        }
    }
    o << "# HELP engram_query_seconds Latency of similarity and recall requests.\n"
         "# TYPE engram_query_seconds histogram\n";
    for (const auto& [table, t] : tables_) {
        for (const auto& [kind, h] : t.query) {
            histogram(o, "engram_query_seconds", "table=\"" + table + "\",kind=\"" + kind + "\"",
                      h);
        }
    }
    o << "# HELP engram_store_operations_total Store operations by outcome.\n"
         "# TYPE engram_store_operations_total counter\n";
    for (const auto& [table, t] : tables_) {
        o << "engram_store_operations_total{table=\"" << table << "\",outcome=\"ok\"} "
          << t.stores_ok << "\n";
        o << "engram_store_operations_total{table=\"" << table << "\",outcome=\"error\"} "
          << t.stores_failed << "\n";
    }
    o << "# HELP engram_queries_total Similarity and recall queries by outcome.\n"
         "# TYPE engram_queries_total counter\n";
    for (const auto& [table, t] : tables_) {
        for (const auto& [kind, n] : t.queries_ok) {
            o << "engram_queries_total{table=\"" << table << "\",kind=\"" << kind
              << "\",outcome=\"ok\"} " << n << "\n";
            o << "engram_queries_total{table=\"" << table << "\",kind=\"" << kind
              << "\",outcome=\"error\"} " << t.queries_failed.at(kind) << "\n";
        }
    }
    struct Gauge {
        const char* name;
        const char* help;
        double TableGauges::*field;
    };
    static const Gauge kGauges[] = {
        {"engram_episodes", "Stored episodes (hot + cold).", &TableGauges::episodes},
        {"engram_hot", "Episodes in the hot tier (searched).", &TableGauges::hot},
        {"engram_cold", "Evicted episodes (cold tier).", &TableGauges::cold},
        {"engram_indexed", "Hot episodes in the graph index.", &TableGauges::indexed},
        {"engram_pressure", "Hot count / capacity.", &TableGauges::pressure},
        {"engram_deduplicated", "Episodes merged as duplicates since the store was opened.",
         &TableGauges::deduplicated},
        {"engram_commit_rows", "Rows of the commit running now (0 when none).",
         &TableGauges::committing},
        {"engram_commit_applied_rows", "Rows of the running commit applied so far.",
         &TableGauges::applied},
        {"engram_commit_rate", "Rows/s of the running (else the last) commit.", &TableGauges::rate},
        {"engram_staged_rows", "Rows open transactions have staged on disk.", &TableGauges::staged},
    };
    for (const Gauge& gauge : kGauges) {
        o << "# HELP " << gauge.name << " " << gauge.help << "\n# TYPE " << gauge.name
          << " gauge\n";
        for (const TableGauges& t : gauges) {
            o << gauge.name << "{table=\"" << t.table << "\"} " << num(t.*gauge.field) << "\n";
        }
    }
    o << "# HELP engram_sse_events_total Server-sent events written to clients.\n"
         "# TYPE engram_sse_events_total counter\nengram_sse_events_total "
      << sse_events_ << "\n";
    o << "# HELP engram_job_pauses_total Times a job paused for a slow stream reader.\n"
         "# TYPE engram_job_pauses_total counter\nengram_job_pauses_total "
      << job_pauses_ << "\n";
    o << "# HELP engram_jobs_running Batch jobs running now.\n"
         "# TYPE engram_jobs_running gauge\nengram_jobs_running "
      << jobs_running << "\n";
    o << "# HELP engram_job_log_bytes Bytes of job logs kept on disk.\n"
         "# TYPE engram_job_log_bytes gauge\nengram_job_log_bytes "
      << job_log_bytes << "\n";
    o << "# HELP engram_sqlite_connections SQLite connections opened by the server.\n"
         "# TYPE engram_sqlite_connections gauge\nengram_sqlite_connections "
      << connections << "\n";
    return o.str();
}

} // namespace engram::server
