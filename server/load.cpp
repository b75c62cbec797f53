// `engram load`: bulk import through large transactions, resumable, with progress.
//
// USAGE
//   engram load --db my.db --table mem [--create 'dim=128, dedup=off'] episodes.jsonl
//   engram load --db my.db --table mem vectors.npy          # ids: <file stem>-<row>
//
// HOW IT WORKS
//   A reader per format yields rows: jsonl (one episode object per line, the fields of a store
//   operation), csv (a header naming the columns; embedding, who and metadata as JSON text),
//   npy (a 2-D little-endian float32/float64 array) and fvecs (int32 dim + dim float32 per
//   row). Rows are gathered into batches of --batch rows (default 10000); for each batch the
//   ids already stored are looked up (`WHERE id IN (…)`) and skipped — so a load that was
//   interrupted resumes where its last COMMIT ended — and the rest are inserted in one
//   transaction (BEGIN … INSERT … COMMIT: one batch of the engine). A row the extension
//   rejects stops the load with its file position and the extension's message; batches
//   committed before it stay. Progress goes to stderr: a bar redrawn in place on a terminal
//   (rows, rows/s, ETA), one plain line per second otherwise.
#include "server/load.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "server/operations.hpp"
#include "server/sql.hpp"

namespace engram::server {
namespace {

using Clock = std::chrono::steady_clock;

// One input row: a JSON episode (jsonl, csv) or an id and a vector (npy, fvecs).
struct Row {
    std::string where; // "file:line" for messages
    std::string id;
    Json episode;              // when not a vector row
    std::vector<float> vector; // npy / fvecs
};

class Reader {
public:
    virtual ~Reader() = default;
    virtual bool next(Row* row) = 0; // false at the end; throws std::runtime_error
    virtual std::optional<std::uint64_t> total() const = 0;
    virtual std::optional<std::size_t> dim() const { return std::nullopt; }
};

std::uint64_t count_lines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    std::uint64_t n = 0;
    char last = '\n';
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto got = static_cast<std::size_t>(in.gcount());
        for (std::size_t i = 0; i < got; ++i) {
            n += buf[i] == '\n' ? 1 : 0;
        }
        if (got > 0) {
            last = buf[got - 1];
        }
    }
    return n + (last != '\n' ? 1 : 0);
}

class JsonlReader : public Reader {
public:
    explicit JsonlReader(const std::string& path) : path_(path), in_(path) {
        total_ = count_lines(path);
    }
    bool next(Row* row) override {
        std::string line;
        while (std::getline(in_, line)) {
            ++line_no_;
            if (line.find_first_not_of(" \t\r") == std::string::npos) {
                continue;
            }
            row->where = path_ + ":" + std::to_string(line_no_);
            Json j = Json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.is_object()) {
                throw std::runtime_error(row->where + ": expected a JSON object (one episode)");
            }
            if (!j.contains("id") || !j["id"].is_string()) {
                throw std::runtime_error(row->where + ": id: expected a string");
            }
            row->id = j["id"].get<std::string>();
            row->episode = std::move(j);
            row->vector.clear();
            return true;
        }
        return false;
    }
    std::optional<std::uint64_t> total() const override { return total_; }

private:
    std::string path_;
    std::ifstream in_;
    std::uint64_t line_no_ = 0;
    std::uint64_t total_ = 0;
};

// RFC 4180: fields separated by commas, optionally double-quoted ("" inside quotes is ").
class CsvReader : public Reader {
public:
    explicit CsvReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
        const std::uint64_t lines = count_lines(path);
        total_ = lines > 0 ? lines - 1 : 0;
        if (!record(&header_)) {
            throw std::runtime_error(path + ": empty file (expected a header line)");
        }
        static const std::set<std::string> kColumns = {
            "id",  "what",       "embedding", "occurred_at", "location",
            "who", "confidence", "vividness", "reliability", "metadata"};
        for (std::size_t i = 0; i < header_.size(); ++i) {
            if (kColumns.count(header_[i]) == 0) {
                throw std::runtime_error(path + ":1: unknown column '" + header_[i] +
                                         "' (expected id, what, embedding, occurred_at, "
                                         "location, who, confidence, vividness, reliability, "
                                         "metadata)");
            }
        }
        if (std::find(header_.begin(), header_.end(), "id") == header_.end()) {
            throw std::runtime_error(path + ":1: the header has no id column");
        }
    }
    bool next(Row* row) override {
        std::vector<std::string> f;
        for (;;) {
            const std::uint64_t line = line_no_ + 1;
            if (!record(&f)) {
                return false;
            }
            if (f.size() == 1 && f[0].empty()) {
                continue; // blank line
            }
            row->where = path_ + ":" + std::to_string(line);
            break;
        }
        if (f.size() != header_.size()) {
            throw std::runtime_error(row->where + ": expected " + std::to_string(header_.size()) +
                                     " fields (as the header), got " + std::to_string(f.size()));
        }
        static const std::regex number(R"(^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$)");
        Json j = Json::object();
        for (std::size_t i = 0; i < f.size(); ++i) {
            const std::string& col = header_[i];
            if (f[i].empty() && col != "id") {
                continue; // an empty field: the column's default
            }
            const bool numeric = col == "confidence" || col == "vividness" ||
                                 col == "reliability" || col == "occurred_at";
            if (numeric && std::regex_match(f[i], number)) {
                j[col] = std::stod(f[i]);
                if (col == "occurred_at" && f[i].find_first_of(".eE") == std::string::npos) {
                    j[col] = std::stoll(f[i]);
                }
            } else {
                j[col] = f[i];
            }
        }
        row->id = j["id"].get<std::string>();
        row->episode = std::move(j);
        row->vector.clear();
        return true;
    }
    std::optional<std::uint64_t> total() const override { return total_; }

private:
    // One record (which may span lines inside quotes); false at the end of the file.
    bool record(std::vector<std::string>* out) {
        out->clear();
        if (in_.peek() == EOF) {
            return false;
        }
        std::string field;
        bool quoted = false;
        bool was_quoted = false;
        for (;;) {
            const int c = in_.get();
            if (c == EOF) {
                if (quoted) {
                    throw std::runtime_error(path_ + ":" + std::to_string(line_no_ + 1) +
                                             ": unterminated quoted field");
                }
                out->push_back(field);
                ++line_no_;
                return true;
            }
            if (quoted) {
                if (c == '"') {
                    if (in_.peek() == '"') {
                        in_.get();
                        field += '"';
                    } else {
                        quoted = false;
                    }
                } else {
                    if (c == '\n') {
                        ++line_no_;
                    }
                    field += static_cast<char>(c);
                }
                continue;
            }
            if (c == '"' && field.empty() && !was_quoted) {
                quoted = true;
                was_quoted = true;
            } else if (c == ',') {
                out->push_back(field);
                field.clear();
                was_quoted = false;
            } else if (c == '\n') {
                if (!field.empty() && field.back() == '\r') {
                    field.pop_back();
                }
                out->push_back(field);
                ++line_no_;
                return true;
            } else {
                field += static_cast<char>(c);
            }
        }
    }

    std::string path_;
    std::ifstream in_;
    std::vector<std::string> header_;
    std::uint64_t line_no_ = 0;
    std::uint64_t total_ = 0;
};

// A 2-D array of float32 or float64 (little-endian, C order), version 1.0–3.0 headers.
class NpyReader : public Reader {
public:
    NpyReader(const std::string& path, std::string prefix)
        : path_(path), prefix_(std::move(prefix)), in_(path, std::ios::binary) {
        char magic[8];
        if (!in_.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
            throw std::runtime_error(path + ": not a .npy file (bad magic)");
        }
        std::uint32_t hlen = 0;
        if (magic[6] == 1) {
            unsigned char b[2];
            in_.read(reinterpret_cast<char*>(b), 2);
            hlen = b[0] | (b[1] << 8);
        } else {
            unsigned char b[4];
            in_.read(reinterpret_cast<char*>(b), 4);
            hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
        }
        std::string header(hlen, '\0');
        if (!in_.read(header.data(), hlen)) {
            throw std::runtime_error(path + ": truncated .npy header");
        }
        std::smatch m;
        if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([^']*)')"))) {
            throw std::runtime_error(path + ": .npy header without descr");
        }
        const std::string descr = m[1].str();
        if (descr == "<f4") {
            width_ = 4;
        } else if (descr == "<f8") {
            width_ = 8;
        } else {
            throw std::runtime_error(path + ": unsupported dtype '" + descr +
                                     "' (expected little-endian float32 '<f4' or float64 '<f8')");
        }
        if (std::regex_search(header, m, std::regex(R"('fortran_order':\s*True)"))) {
            throw std::runtime_error(path + ": Fortran-order arrays are not supported");
        }
        if (!std::regex_search(
                header, m, std::regex(R"('shape':\s*\(\s*([0-9]+)\s*,\s*([0-9]+)\s*,?\s*\))"))) {
            throw std::runtime_error(path + ": expected a 2-D array (rows, dim)");
        }
        rows_ = std::stoull(m[1].str());
        dim_ = std::stoull(m[2].str());
        if (dim_ == 0) {
            throw std::runtime_error(path + ": the array has 0 columns");
        }
    }
    bool next(Row* row) override {
        if (index_ >= rows_) {
            return false;
        }
        row->where = path_ + " row " + std::to_string(index_);
        row->id = prefix_ + std::to_string(index_);
        row->vector.resize(dim_);
        if (width_ == 4) {
            if (!in_.read(reinterpret_cast<char*>(row->vector.data()),
                          static_cast<std::streamsize>(dim_ * 4))) {
                throw std::runtime_error(row->where + ": the file ends early");
            }
        } else {
            std::vector<double> d(dim_);
            if (!in_.read(reinterpret_cast<char*>(d.data()),
                          static_cast<std::streamsize>(dim_ * 8))) {
                throw std::runtime_error(row->where + ": the file ends early");
            }
            for (std::size_t i = 0; i < dim_; ++i) {
                row->vector[i] = static_cast<float>(d[i]);
            }
        }
        ++index_;
        return true;
    }
    std::optional<std::uint64_t> total() const override { return rows_; }
    std::optional<std::size_t> dim() const override { return dim_; }

private:
    std::string path_, prefix_;
    std::ifstream in_;
    int width_ = 4;
    std::uint64_t rows_ = 0, index_ = 0;
    std::size_t dim_ = 0;
};

class FvecsReader : public Reader {
public:
    FvecsReader(const std::string& path, std::string prefix)
        : path_(path), prefix_(std::move(prefix)), in_(path, std::ios::binary) {
        std::int32_t d = 0;
        if (!in_.read(reinterpret_cast<char*>(&d), 4) || d <= 0) {
            throw std::runtime_error(path + ": not an .fvecs file (no positive dimension first)");
        }
        dim_ = static_cast<std::size_t>(d);
        in_.seekg(0);
        const auto size = std::filesystem::file_size(path);
        if (size % (4 + 4 * dim_) != 0) {
            throw std::runtime_error(path + ": size is not a multiple of a " +
                                     std::to_string(dim_) + "-d record");
        }
        rows_ = size / (4 + 4 * dim_);
    }
    bool next(Row* row) override {
        std::int32_t d = 0;
        if (!in_.read(reinterpret_cast<char*>(&d), 4)) {
            return false;
        }
        row->where = path_ + " row " + std::to_string(index_);
        if (static_cast<std::size_t>(d) != dim_) {
            throw std::runtime_error(row->where + ": dimension " + std::to_string(d) +
                                     ", expected " + std::to_string(dim_) + " as the first row");
        }
        row->id = prefix_ + std::to_string(index_);
        row->vector.resize(dim_);
        if (!in_.read(reinterpret_cast<char*>(row->vector.data()),
                      static_cast<std::streamsize>(dim_ * 4))) {
            throw std::runtime_error(row->where + ": the file ends early");
        }
        ++index_;
        return true;
    }
    std::optional<std::uint64_t> total() const override { return rows_; }
    std::optional<std::size_t> dim() const override { return dim_; }

private:
    std::string path_, prefix_;
    std::ifstream in_;
    std::size_t dim_ = 0;
    std::uint64_t rows_ = 0, index_ = 0;
};

std::string hms(double s) {
    if (!(s >= 0) || s > 1e7) {
        return "?";
    }
    const auto t = static_cast<long>(s + 0.5);
    std::ostringstream o;
    o << t / 3600 << ":" << std::setw(2) << std::setfill('0') << (t / 60) % 60 << ":"
      << std::setw(2) << std::setfill('0') << t % 60;
    return o.str();
}

class Progress {
public:
    Progress(std::optional<std::uint64_t> total, bool tty, bool quiet)
        : total_(total), tty_(tty), quiet_(quiet) {}
    void update(std::uint64_t done, bool force) {
        const auto now = Clock::now();
        if (quiet_ || (!force && now - last_ < (tty_ ? std::chrono::milliseconds(100)
                                                     : std::chrono::milliseconds(1000)))) {
            return;
        }
        last_ = now;
        const double secs = std::chrono::duration<double>(now - t0_).count();
        const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
        std::ostringstream o;
        if (total_ && *total_ > 0) {
            const double frac = std::min(1.0, static_cast<double>(done) / *total_);
            const double eta =
                rate > 0 ? static_cast<double>(*total_ - std::min(done, *total_)) / rate : -1;
            if (tty_) {
                const int width = 30;
                const int fill = static_cast<int>(frac * width);
                o << "\r" << std::setw(3) << static_cast<int>(frac * 100) << "% ["
                  << std::string(fill, '#') << std::string(width - fill, ' ') << "] " << done << "/"
                  << *total_ << " rows  " << static_cast<long>(rate) << " rows/s  ETA " << hms(eta)
                  << "   ";
            } else {
                o << "engram load: " << done << "/" << *total_ << " rows (" << std::fixed
                  << std::setprecision(1) << frac * 100 << "%), " << static_cast<long>(rate)
                  << " rows/s, ETA " << hms(eta) << "\n";
            }
        } else {
            o << (tty_ ? "\r" : "engram load: ") << done << " rows, " << static_cast<long>(rate)
              << " rows/s" << (tty_ ? "   " : "\n");
        }
        std::cerr << o.str() << std::flush;
    }
    void finish() {
        if (tty_ && !quiet_) {
            std::cerr << "\n";
        }
    }

private:
    std::optional<std::uint64_t> total_;
    bool tty_;
    bool quiet_;
    Clock::time_point t0_ = Clock::now();
    Clock::time_point last_{};
};

std::string flag(const std::map<std::string, std::string>& f, const char* name,
                 const std::string& dflt = {}) {
    auto it = f.find(name);
    return it == f.end() ? dflt : it->second;
}

} // namespace

int run_load(const std::map<std::string, std::string>& flags,
             const std::vector<std::string>& positional) {
    for (const auto& [k, v] : flags) {
        static const std::set<std::string> kKnown = {
            "db", "table", "create", "batch", "id-prefix", "extension", "format", "progress"};
        if (kKnown.count(k) == 0) {
            throw std::invalid_argument("unknown option --" + k);
        }
    }
    const std::string db = flag(flags, "db");
    const std::string table = flag(flags, "table");
    if (db.empty()) {
        throw std::invalid_argument("--db is required");
    }
    if (table.empty()) {
        throw std::invalid_argument("--table is required");
    }
    if (!is_identifier(table)) {
        throw std::invalid_argument("--table: '" + table + "' is not a valid table name");
    }
    if (positional.size() != 1) {
        throw std::invalid_argument("expected exactly one input file");
    }
    const std::string path = positional[0];
    if (!std::filesystem::exists(path)) {
        std::cerr << "engram load: " << path << ": no such file\n";
        return 1;
    }
    std::size_t batch = 10000;
    if (const std::string b = flag(flags, "batch"); !b.empty()) {
        std::size_t used = 0;
        long v = 0;
        try {
            v = std::stol(b, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != b.size() || v < 1 || v > 10000000) {
            throw std::invalid_argument("--batch: expected an integer in [1, 10000000], got '" + b +
                                        "'");
        }
        batch = static_cast<std::size_t>(v);
    }
    std::string format = flag(flags, "format");
    if (format.empty()) {
        format = std::filesystem::path(path).extension().string();
        if (!format.empty()) {
            format.erase(0, 1);
        }
    }
    const std::string prefix =
        flag(flags, "id-prefix", std::filesystem::path(path).stem().string() + "-");
    std::unique_ptr<Reader> reader;
    if (format == "jsonl" || format == "ndjson") {
        reader = std::make_unique<JsonlReader>(path);
    } else if (format == "csv") {
        reader = std::make_unique<CsvReader>(path);
    } else if (format == "npy") {
        reader = std::make_unique<NpyReader>(path, prefix);
    } else if (format == "fvecs") {
        reader = std::make_unique<FvecsReader>(path, prefix);
    } else {
        throw std::invalid_argument(path + ": unknown format '" + format +
                                    "' (expected jsonl, csv, npy or fvecs; or --format)");
    }
    const std::string progress_mode = flag(flags, "progress", "auto");
    if (progress_mode != "auto" && progress_mode != "bar" && progress_mode != "plain" &&
        progress_mode != "none") {
        throw std::invalid_argument("--progress: expected auto, bar, plain or none");
    }

    const std::string ext = flag(flags, "extension", default_extension_path());
    Connection conn(db, ext);
    bool exists = false;
    for (const std::string& t : conn.engram_tables()) {
        exists = exists || t == table;
    }
    if (!exists) {
        std::string create = flag(flags, "create");
        if (create.empty() && !flags.count("create")) {
            std::cerr << "engram load: no such engram table: '" << table
                      << "' (create it first, or pass --create 'dim=N, …')\n";
            return 1;
        }
        if (reader->dim() && create.find("dim") == std::string::npos) {
            create =
                "dim=" + std::to_string(*reader->dim()) + (create.empty() ? "" : ", ") + create;
        }
        conn.exec("CREATE VIRTUAL TABLE \"" + table + "\" USING engram(" + create + ")");
        std::cerr << "engram load: created table " << table << " (" << create << ")\n";
    }

    const bool tty = progress_mode == "bar" || (progress_mode == "auto" && isatty(2) != 0);
    Progress progress(reader->total(), tty, progress_mode == "none");
    const auto t0 = Clock::now();
    std::uint64_t seen = 0, inserted = 0, skipped = 0;
    std::vector<Row> rows;
    bool more = true;
    constexpr std::size_t kIn = 256;
    std::string in_sql = "SELECT id FROM \"" + table + "\" WHERE id IN (";
    for (std::size_t j = 0; j < kIn; ++j) {
        in_sql += j ? ",?" : "?";
    }
    in_sql += ")";
    Statement lookup(conn.get(), in_sql);
    while (more) {
        rows.clear();
        while (rows.size() < batch) {
            Row r;
            if (!reader->next(&r)) {
                more = false;
                break;
            }
            rows.push_back(std::move(r));
        }
        if (rows.empty()) {
            break;
        }
        // Resume: skip the rows whose id is already stored.
        std::set<std::string> stored;
        for (std::size_t start = 0; start < rows.size(); start += kIn) {
            lookup.reset();
            for (std::size_t j = 0; j < kIn; ++j) {
                const std::size_t k = start + j < rows.size() ? start + j : start;
                lookup.bind_text(static_cast<int>(j + 1), rows[k].id);
            }
            while (lookup.step()) {
                stored.insert(lookup.text_at(0));
            }
        }
        lookup.reset();
        conn.exec("BEGIN");
        EpisodeInserter inserter(conn, table);
        std::set<std::string> in_batch;
        for (const Row& r : rows) {
            ++seen;
            if (stored.count(r.id) != 0) {
                ++skipped;
                continue;
            }
            try {
                if (r.episode.is_object()) {
                    inserter.insert(r.episode, r.where);
                } else {
                    inserter.insert_vector(r.id, r.vector.data(), r.vector.size());
                }
            } catch (const std::exception& e) {
                conn.rollback_quietly();
                progress.finish();
                const std::string msg = e.what();
                std::cerr << "engram load: " << (msg.rfind(r.where, 0) == 0 ? "" : r.where + ": ")
                          << msg << "\nengram load: stopped; " << inserted
                          << " rows were committed before this batch (run the same command "
                             "again to resume after fixing the row)\n";
                return 1;
            }
        }
        conn.exec("COMMIT");
        inserted += rows.size() - static_cast<std::size_t>(
                                      std::count_if(rows.begin(), rows.end(), [&](const Row& r) {
                                          return stored.count(r.id) != 0;
                                      }));
        progress.update(seen, !more);
    }
    progress.finish();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cerr << "engram load: " << inserted << " rows inserted, " << skipped
              << " already stored (skipped), " << std::fixed << std::setprecision(2) << secs
              << " s, " << static_cast<long>(secs > 0 ? inserted / secs : 0) << " rows/s\n";
    return 0;
}

} // namespace engram::server
