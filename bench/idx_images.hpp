#pragma once
// Reading Fashion-MNIST's idx3-ubyte.gz files (Debian dataset-fashion-mnist) for the benches.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace engram::bench {

// An idx3-ubyte.gz image file: big-endian header (magic 0x803, count, rows, cols), then bytes.
// Appends at most `limit` images (rows x cols floats each) to *out; *dim = rows x cols.
inline bool read_idx_images(const std::string& path, std::size_t limit, std::vector<float>* out,
                            std::size_t* dim) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr) {
        return false;
    }
    unsigned char h[16];
    bool ok = gzread(f, h, sizeof h) == static_cast<int>(sizeof h);
    const auto be = [&](int i) {
        return (std::uint32_t{h[i]} << 24) | (std::uint32_t{h[i + 1]} << 16) |
               (std::uint32_t{h[i + 2]} << 8) | std::uint32_t{h[i + 3]};
    };
    if (ok && be(0) == 0x803) {
        const std::size_t count = std::min<std::size_t>(be(4), limit);
        *dim = std::size_t{be(8)} * be(12);
        std::vector<unsigned char> bytes(count * *dim);
        ok = gzread(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
             static_cast<int>(bytes.size());
        out->insert(out->end(), bytes.begin(), bytes.end());
    } else {
        ok = false;
    }
    gzclose(f);
    return ok;
}

} // namespace engram::bench
