#include "engine/core/time.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace engram::engine {
namespace {

// Days since 1970-01-01 of a civil date (proleptic Gregorian), after H. Hinnant's algorithm.
long long days_from_civil(long long y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const long long era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<long long>(doe) - 719468;
}

void civil_from_days(long long z, long long* y, unsigned* m, unsigned* d) noexcept {
    z += 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = static_cast<long long>(yoe) + era * 400 + (*m <= 2 ? 1 : 0);
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int* out) noexcept {
    if (pos + n > s.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

bool leap(int y) noexcept {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

} // namespace

Result<double> parse_iso8601(std::string_view s) {
    auto bad = [&] {
        return Status::invalid("malformed time '" + std::string(s) +
                               "': expected unix seconds or ISO-8601 like 2024-05-01T10:00:00Z");
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, &month) ||
        s[7] != '-' || !digits(s, 8, 2, &day)) {
        return bad();
    }
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 ||
        day > kDays[month - 1] + (month == 2 && leap(year) ? 1 : 0)) {
        return bad();
    }
    std::size_t pos = 10;
    double frac = 0.0;
    if (pos < s.size() && (s[pos] == 'T' || s[pos] == 't' || s[pos] == ' ')) {
        if (!digits(s, pos + 1, 2, &hour) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, &minute)) {
            return bad();
        }
        pos += 6;
        if (pos < s.size() && s[pos] == ':') {
            if (!digits(s, pos + 1, 2, &second)) {
                return bad();
            }
            pos += 3;
            if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
                ++pos;
                double scale = 0.1;
                const std::size_t start = pos;
                while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
                    frac += (s[pos] - '0') * scale;
                    scale /= 10;
                    ++pos;
                }
                if (pos == start) {
                    return bad();
                }
            }
        }
        if (hour > 23 || minute > 59 || second > 60) {
            return bad();
        }
    }
    long long offset = 0;
    if (pos < s.size()) {
        if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
            pos += 1;
        } else if (s[pos] == '+' || s[pos] == '-') {
            int oh = 0, om = 0;
            const bool colon = pos + 3 < s.size() && s[pos + 3] == ':';
            if (!digits(s, pos + 1, 2, &oh) || !digits(s, pos + (colon ? 4 : 3), 2, &om) ||
                oh > 23 || om > 59) {
                return bad();
            }
            offset = (oh * 3600LL + om * 60LL) * (s[pos] == '-' ? -1 : 1);
            pos += colon ? 6 : 5;
        }
    }
    if (pos != s.size()) {
        return bad();
    }
    const long long days =
        days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    const double secs =
        static_cast<double>(days * 86400LL + hour * 3600LL + minute * 60LL + second - offset);
    return secs + frac;
}

std::string format_iso8601(double t) {
    const double whole = std::floor(t);
    long long ms = std::llround((t - whole) * 1000.0);
    auto secs = static_cast<long long>(whole);
    if (ms == 1000) {
        ms = 0;
        ++secs;
    }
    long long days = secs / 86400;
    long long rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        --days;
    }
    long long y = 0;
    unsigned m = 0, d = 0;
    civil_from_days(days, &y, &m, &d);
    char buf[64];
    if (ms != 0) {
        std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", y, m, d,
                      rem / 3600, rem / 60 % 60, rem % 60, ms);
    } else {
        std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", y, m, d,
                      rem / 3600, rem / 60 % 60, rem % 60);
    }
    return buf;
}

double now_seconds() noexcept {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

} // namespace engram::engine
