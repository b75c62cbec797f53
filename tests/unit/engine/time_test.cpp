#include "engine/core/time.hpp"

#include <gtest/gtest.h>

namespace engram::engine {
namespace {

TEST(Time, ParsesIso8601Forms) {
    EXPECT_DOUBLE_EQ(parse_iso8601("1970-01-01").value(), 0.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-05-01T10:00:00Z").value(), 1714557600.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-05-01 10:00:00").value(), 1714557600.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-05-01T10:00").value(), 1714557600.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-05-01T12:00:00+02:00").value(), 1714557600.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-05-01T05:30:00-0430").value(), 1714557600.0);
    EXPECT_NEAR(parse_iso8601("2024-05-01T10:00:00.250Z").value(), 1714557600.25, 1e-9);
    EXPECT_DOUBLE_EQ(parse_iso8601("2024-02-29").value(), 1709164800.0);
    EXPECT_DOUBLE_EQ(parse_iso8601("1969-12-31T23:59:59Z").value(), -1.0);
}

TEST(Time, RejectsMalformedText) {
    for (const char* bad : {"", "2024", "2024-13-01", "2023-02-29", "2024-05-01T25:00",
                            "2024-05-01T10:00:00Zjunk", "yesterday", "2024-05-01T10:00:00.Z"}) {
        auto r = parse_iso8601(bad);
        ASSERT_FALSE(r.is_ok()) << bad;
        EXPECT_NE(r.status().message().find("malformed time"), std::string::npos);
        EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos);
    }
}

TEST(Time, FormatsUtcAndRoundTrips) {
    EXPECT_EQ(format_iso8601(0.0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_iso8601(1714557600.0), "2024-05-01T10:00:00Z");
    EXPECT_EQ(format_iso8601(1714557600.25), "2024-05-01T10:00:00.250Z");
    EXPECT_EQ(format_iso8601(-1.0), "1969-12-31T23:59:59Z");
    for (double t : {0.0, 951782400.0, 1709164800.0, 4102444800.0, -86400.0 * 400}) {
        EXPECT_DOUBLE_EQ(parse_iso8601(format_iso8601(t)).value(), t);
    }
}

} // namespace
} // namespace engram::engine
