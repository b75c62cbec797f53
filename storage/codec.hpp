#pragma once
// Versioned binary codec for episode records (the values of the `episodes` column family).
//
// Layout, little-endian: u8 version (1) | f64 occurred_at | f64 confidence | f64 vividness |
// f64 reliability | f64 activation | f64 stored_at | u8 tier | str what | str location |
// u32 who count, str each | str metadata | u32 dim | dim × f32 embedding.  str = u32 length +
// bytes. The id is the key and is not repeated in the value. Decoding checks every length against
// the buffer and fails with kCorruption instead of reading past it.
#include <string>
#include <string_view>

#include "engine/core/episode.hpp"
#include "engine/core/status.hpp"

namespace engram::storage {

inline constexpr unsigned char kRecordVersion = 1;

std::string encode_record(const engine::EpisodeRecord& record);
std::string encode_record(const engine::Episode& episode, double activation, engine::Tier tier,
                          double stored_at);
// Everything before the embedding's floats: a record is encode_header(...) followed by the
// raw float32 bytes of episode.embedding (lets writers avoid copying the embedding twice).
std::string encode_header(const engine::Episode& episode, double activation, engine::Tier tier,
                          double stored_at);
// `id` is the key the value was stored under; it becomes record.episode.id.
Result<engine::EpisodeRecord> decode_record(std::string_view id, std::string_view bytes);

} // namespace engram::storage
