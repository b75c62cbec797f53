#pragma once
// Small helpers shared by the db/ files (internal: not part of the layer's interface).
#include <chrono>
#include <string>
#include <vector>

#include "engine/simd/kernels.hpp"

namespace engram::db::detail {

inline std::string ascii_lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

inline double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The L2-normalised copy of an embedding (the hot tier and the index hold unit vectors).
inline std::vector<float> unit_vector(const std::vector<float>& v) {
    std::vector<float> u(v);
    engine::simd::kernels().normalize(u.data(), u.size());
    return u;
}

} // namespace engram::db::detail
