// The `engram` command: serve | load | stats, all through SQL on engram.so.
//
// USAGE
//   engram serve --db FILE [--listen 127.0.0.1:7687] [--token T] [--max-body 64MB] ...
//   engram load  --db FILE --table T [--create 'dim=128, dedup=off'] FILE.{jsonl,csv,npy,fvecs}
//   engram stats --db FILE [--table T]
// Every subcommand opens the database with SQLite and loads the extension (default: engram.so
// beside this binary; --extension PATH or $ENGRAM_EXTENSION otherwise).
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "server/http_server.hpp"
#include "server/load.hpp"
#include "server/sql.hpp"

namespace {

using engram::server::Connection;
using engram::server::SqlError;
using engram::server::Statement;

const char* kUsage =
    "usage:\n"
    "  engram serve --db FILE [--listen HOST:PORT] [--token T] [--max-body SIZE]\n"
    "               [--threads N] [--jobs-dir DIR] [--jobs-budget SIZE] [--job-ttl SECONDS]\n"
    "               [--queue-events N] [--extension PATH]\n"
    "  engram load --db FILE --table T [--create OPTIONS] [--batch N] [--id-prefix P]\n"
    "              [--extension PATH] FILE.{jsonl,csv,npy,fvecs}\n"
    "  engram stats --db FILE [--table T] [--extension PATH]\n";

struct Args {
    std::map<std::string, std::string> flags;
    std::vector<std::string> positional;
};

// --name value pairs and positional arguments; throws on a flag without its value.
Args parse_args(int argc, char** argv, int first) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            const auto eq = s.find('=');
            if (eq != std::string::npos) {
                a.flags[s.substr(2, eq - 2)] = s.substr(eq + 1);
                continue;
            }
            if (i + 1 >= argc) {
                throw std::invalid_argument(s + ": missing its value");
            }
            a.flags[s.substr(2)] = argv[++i];
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

void only_flags(const Args& a, std::initializer_list<const char*> known) {
    for (const auto& [k, v] : a.flags) {
        bool ok = false;
        for (const char* n : known) {
            ok = ok || k == n;
        }
        if (!ok) {
            throw std::invalid_argument("unknown option --" + k);
        }
    }
}

// "64MB", "1GB", "512KB" or bytes.
std::uint64_t parse_size(const std::string& flag, const std::string& s) {
    std::size_t used = 0;
    unsigned long long v = 0;
    try {
        v = std::stoull(s, &used);
    } catch (const std::exception&) {
        throw std::invalid_argument("--" + flag + ": expected a size like 64MB, got '" + s + "'");
    }
    const std::string unit = s.substr(used);
    if (unit.empty() || unit == "B") {
        return v;
    }
    if (unit == "KB" || unit == "K") {
        return v << 10;
    }
    if (unit == "MB" || unit == "M") {
        return v << 20;
    }
    if (unit == "GB" || unit == "G") {
        return v << 30;
    }
    throw std::invalid_argument("--" + flag + ": expected a size like 64MB, got '" + s + "'");
}

long parse_int(const std::string& flag, const std::string& s, long lo, long hi) {
    std::size_t used = 0;
    long v = 0;
    try {
        v = std::stol(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != s.size() || s.empty() || v < lo || v > hi) {
        throw std::invalid_argument("--" + flag + ": expected an integer in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                                    s + "'");
    }
    return v;
}

std::string require(const Args& a, const char* flag) {
    auto it = a.flags.find(flag);
    if (it == a.flags.end() || it->second.empty()) {
        throw std::invalid_argument(std::string("--") + flag + " is required");
    }
    return it->second;
}

std::string extension_of(const Args& a) {
    auto it = a.flags.find("extension");
    return it != a.flags.end() ? it->second : engram::server::default_extension_path();
}

int cmd_serve(const Args& a) {
    only_flags(a, {"db", "listen", "token", "max-body", "threads", "jobs-dir", "jobs-budget",
                   "job-ttl", "queue-events", "extension", "port-file", "write-timeout"});
    if (!a.positional.empty()) {
        throw std::invalid_argument("unexpected argument '" + a.positional[0] + "'");
    }
    engram::server::ServeOptions o;
    o.db = require(a, "db");
    o.extension = extension_of(a);
    if (auto it = a.flags.find("listen"); it != a.flags.end()) {
        const auto colon = it->second.rfind(':');
        if (colon == std::string::npos) {
            throw std::invalid_argument("--listen: expected HOST:PORT, got '" + it->second + "'");
        }
        o.host = it->second.substr(0, colon);
        o.port = static_cast<int>(parse_int("listen", it->second.substr(colon + 1), 0, 65535));
    }
    if (auto it = a.flags.find("token"); it != a.flags.end()) {
        if (it->second.empty()) {
            throw std::invalid_argument("--token: must not be empty");
        }
        o.token = it->second;
    }
    if (auto it = a.flags.find("max-body"); it != a.flags.end()) {
        o.max_body_bytes = parse_size("max-body", it->second);
    }
    if (auto it = a.flags.find("threads"); it != a.flags.end()) {
        o.threads = static_cast<int>(parse_int("threads", it->second, 2, 1024));
    }
    if (auto it = a.flags.find("jobs-dir"); it != a.flags.end()) {
        o.jobs_dir = it->second;
    }
    if (auto it = a.flags.find("jobs-budget"); it != a.flags.end()) {
        o.jobs_budget_bytes = parse_size("jobs-budget", it->second);
    }
    if (auto it = a.flags.find("job-ttl"); it != a.flags.end()) {
        o.job_ttl = std::chrono::seconds(parse_int("job-ttl", it->second, 1, 86400 * 30));
    }
    if (auto it = a.flags.find("queue-events"); it != a.flags.end()) {
        o.queue_events =
            static_cast<std::size_t>(parse_int("queue-events", it->second, 1, 1 << 24));
    }
    if (auto it = a.flags.find("write-timeout"); it != a.flags.end()) {
        o.write_timeout_s = static_cast<int>(parse_int("write-timeout", it->second, 1, 3600));
    }
    if (auto it = a.flags.find("port-file"); it != a.flags.end()) {
        o.port_file = it->second;
    }
    return engram::server::run_serve(o);
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    std::ostringstream o;
    o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << b << " " << units[u];
    return o.str();
}

int cmd_stats(const Args& a) {
    only_flags(a, {"db", "table", "extension"});
    Connection conn(require(a, "db"), extension_of(a));
    std::vector<std::string> tables = conn.engram_tables();
    if (auto it = a.flags.find("table"); it != a.flags.end()) {
        bool found = false;
        for (const auto& t : tables) {
            found = found || t == it->second;
        }
        if (!found) {
            std::cerr << "engram stats: no such engram table: '" << it->second << "'\n";
            return 1;
        }
        tables = {it->second};
    }
    if (tables.empty()) {
        std::cout << "no engram tables in " << require(a, "db") << "\n";
        return 0;
    }
    bool first = true;
    for (const std::string& t : tables) {
        Statement s(conn.get(), "SELECT * FROM engram_stats(?1)");
        s.bind_text(1, t);
        if (!s.step()) {
            continue;
        }
        if (!first) {
            std::cout << "\n";
        }
        first = false;
        std::cout << "table " << t << "\n";
        for (int c = 0; c < s.columns(); ++c) {
            const std::string name = s.column_name(c);
            std::string value;
            if (s.is_null(c)) {
                value = "-";
            } else if (name == "pressure") {
                std::ostringstream o;
                o << std::fixed << std::setprecision(4) << s.double_at(c) * 100 << " %";
                value = o.str();
            } else if (name == "rate") {
                std::ostringstream o;
                o << std::fixed << std::setprecision(0) << s.double_at(c) << " rows/s";
                value = o.str();
            } else if (name == "batch_memory") {
                value = human_bytes(s.double_at(c));
            } else {
                value = s.text_at(c);
            }
            std::cout << "  " << std::left << std::setw(14) << name << " " << value << "\n";
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cerr << kUsage;
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    try {
        const Args a = parse_args(argc, argv, 2);
        if (cmd == "serve") {
            return cmd_serve(a);
        }
        if (cmd == "load") {
            return engram::server::run_load(a.flags, a.positional);
        }
        if (cmd == "stats") {
            return cmd_stats(a);
        }
        std::cerr << "engram: unknown command '" << cmd << "'\n" << kUsage;
        return 2;
    } catch (const std::invalid_argument& e) {
        std::cerr << "engram " << cmd << ": " << e.what() << "\n" << kUsage;
        return 2;
    } catch (const SqlError& e) {
        std::cerr << "engram " << cmd << ": " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "engram " << cmd << ": " << e.what() << "\n";
        return 1;
    }
}
