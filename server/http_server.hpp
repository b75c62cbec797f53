// `engram serve`: the HTTP server (batch operations, SSE job streams, metrics, status page).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace engram::server {

struct ServeOptions {
    std::string db;                             // the SQLite database file (required)
    std::string extension;                      // engram.so; default: beside the binary
    std::string host = "127.0.0.1";             // loopback unless asked otherwise
    int port = 7687;                            // 0: any free port (printed at start)
    std::string token;                          // when set, every request needs "Bearer <token>"
    std::uint64_t max_body_bytes = 64ULL << 20; // larger request bodies get 413
    int threads = 32;                           // HTTP worker threads (each SSE stream holds one)
    std::string jobs_dir;                       // default: "<db>.jobs"
    std::uint64_t jobs_budget_bytes = 256ULL << 20;
    std::chrono::seconds job_ttl{600};
    std::size_t queue_events = 1024;
    int write_timeout_s = 30; // a stream whose client reads nothing for this long is dropped
    std::string port_file;    // when set, the bound port is written there (tests)
};

// Runs until SIGINT or SIGTERM; returns the process exit status.
int run_serve(const ServeOptions& options);

} // namespace engram::server
