#include "storage/codec.hpp"

#include <gtest/gtest.h>

namespace engram::storage {
namespace {

engine::EpisodeRecord sample() {
    engine::EpisodeRecord r;
    r.episode.id = "e/1 ünïcode";
    r.episode.what = "coffee with Ana";
    r.episode.embedding = {0.25F, -1.5F, 3.0F, 0.0F, 1e-7F};
    r.episode.occurred_at = 1714557600.5;
    r.episode.location = "Lisbon";
    r.episode.who = {"Ana", "", "Bo \"B\""};
    r.episode.confidence = 0.7;
    r.episode.vividness = 0.6;
    r.episode.reliability = 0.5;
    r.episode.metadata = R"({"k":[1,2]})";
    r.activation = 0.63;
    r.tier = engine::Tier::kCold;
    r.stored_at = 1714557700.25;
    return r;
}

TEST(Codec, RoundTripsEveryField) {
    const auto r = sample();
    const std::string bytes = encode_record(r);
    EXPECT_EQ(static_cast<unsigned char>(bytes[0]), kRecordVersion);
    auto back = decode_record(r.episode.id, bytes);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    const auto& e = back->episode;
    EXPECT_EQ(e.id, r.episode.id);
    EXPECT_EQ(e.what, r.episode.what);
    EXPECT_EQ(e.embedding, r.episode.embedding);
    EXPECT_EQ(e.occurred_at, r.episode.occurred_at);
    EXPECT_EQ(e.location, r.episode.location);
    EXPECT_EQ(e.who, r.episode.who);
    EXPECT_EQ(e.confidence, 0.7);
    EXPECT_EQ(e.vividness, 0.6);
    EXPECT_EQ(e.reliability, 0.5);
    EXPECT_EQ(e.metadata, r.episode.metadata);
    EXPECT_EQ(back->activation, 0.63);
    EXPECT_EQ(back->tier, engine::Tier::kCold);
    EXPECT_EQ(back->stored_at, r.stored_at);
}

TEST(Codec, EmptyFieldsRoundTrip) {
    engine::EpisodeRecord r;
    auto back = decode_record("x", encode_record(r));
    ASSERT_TRUE(back.is_ok());
    EXPECT_TRUE(back->episode.embedding.empty());
    EXPECT_TRUE(back->episode.who.empty());
    EXPECT_EQ(back->tier, engine::Tier::kHot);
}

TEST(Codec, DetectsCorruptionInsteadOfOverreading) {
    const std::string bytes = encode_record(sample());
    // Every truncation is an error, never a crash or a partial record.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        auto r = decode_record("e1", std::string_view(bytes.data(), n));
        ASSERT_FALSE(r.is_ok()) << n;
        EXPECT_EQ(r.status().code(), Code::kCorruption);
        EXPECT_NE(r.status().message().find("'e1'"), std::string::npos);
    }
    std::string bad_version = bytes;
    bad_version[0] = 9;
    EXPECT_NE(decode_record("e1", bad_version).status().message().find("version"),
              std::string::npos);
    EXPECT_FALSE(decode_record("e1", bytes + "x").is_ok());
}

} // namespace
} // namespace engram::storage
