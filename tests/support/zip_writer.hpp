#pragma once
// A minimal zip writer (stored entries, and deflated ones through zlib), enough to build good and
// deliberately broken archives and PyTorch-style checkpoints: the offsets it returns let a test
// corrupt one field.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "byte_string.hpp"

namespace test_support {

struct zip_in {
    std::string name;
    std::string data;
    std::uint16_t method = 0;  // written as given; the data is stored as is unless `deflate`
    bool deflate = false;      // compress the data (raw deflate, method 8, with its CRC-32)
};

// Raw deflate (no zlib header), as zip method 8 stores it.
inline std::string deflate_raw(const std::string& in, int level = 6) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
    out.resize(zs.total_out);
    return out;
}

inline std::uint32_t crc32_of(const std::string& s) {
    return static_cast<std::uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

struct zip_out {
    std::string bytes;
    std::vector<std::size_t> local;    // local header offsets
    std::vector<std::size_t> central;  // central entry offsets
    std::size_t eocd = 0;
};

// Pads each local header's extra field (an 'FB' block, as PyTorch does) so data starts on a
// multiple of `align`; zip64 saturates every size/offset and writes the zip64 records. CRCs
// and versions are not checked by the reader, so they are 0 and fixed.
inline zip_out make_zip(const std::vector<zip_in>& entries, bool zip64 = false, std::size_t align = 64,
                        const std::string& comment = "") {
    auto put16 = [](std::string& s, std::uint64_t v) { put_le(s, v, 2); };
    auto put32 = [](std::string& s, std::uint64_t v) { put_le(s, v, 4); };
    auto put64 = [](std::string& s, std::uint64_t v) { put_le(s, v, 8); };
    zip_out z;
    std::string& s = z.bytes;
    // What each entry stores: its data, or the data deflated (then method 8, a CRC, two sizes).
    std::vector<std::string> stored;
    std::vector<std::uint32_t> crcs;
    for (const zip_in& e : entries) {
        stored.push_back(e.deflate ? deflate_raw(e.data) : e.data);
        crcs.push_back(e.deflate ? crc32_of(e.data) : 0);
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const zip_in& e = entries[i];
        z.local.push_back(s.size());
        std::size_t pad = 0;
        if (align > 1) {
            std::size_t after = s.size() + 30 + e.name.size();
            pad = (align - (after + 4) % align) % align + 4;
        }
        put32(s, 0x04034b50);
        put16(s, 20);
        put16(s, 0);
        put16(s, e.deflate ? 8 : e.method);
        put32(s, 0);        // time, date
        put32(s, crcs[i]);  // crc (checked by the reader for deflated entries only)
        put32(s, stored[i].size());
        put32(s, e.data.size());
        put16(s, e.name.size());
        put16(s, pad);
        s += e.name;
        if (pad) {
            s += "FB";
            put16(s, pad - 4);
            s.append(pad - 4, 'Z');
        }
        s += stored[i];
    }
    const std::size_t cd = s.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const zip_in& e = entries[i];
        z.central.push_back(s.size());
        put32(s, 0x02014b50);
        put16(s, 45);
        put16(s, 45);
        put16(s, 0);
        put16(s, e.deflate ? 8 : e.method);
        put32(s, 0);
        put32(s, crcs[i]);
        put32(s, zip64 ? 0xFFFFFFFF : stored[i].size());
        put32(s, zip64 ? 0xFFFFFFFF : e.data.size());
        put16(s, e.name.size());
        put16(s, zip64 ? 28 : 0);
        put16(s, 0);  // comment
        put16(s, 0);  // disk
        put16(s, 0);  // internal attributes
        put32(s, 0);  // external attributes
        put32(s, zip64 ? 0xFFFFFFFF : z.local[i]);
        s += e.name;
        if (zip64) {
            put16(s, 1);
            put16(s, 24);
            put64(s, e.data.size());
            put64(s, stored[i].size());
            put64(s, z.local[i]);
        }
    }
    const std::size_t cd_size = s.size() - cd;
    if (zip64) {
        const std::size_t rec = s.size();
        put32(s, 0x06064b50);
        put64(s, 44);
        put16(s, 45);
        put16(s, 45);
        put32(s, 0);
        put32(s, 0);
        put64(s, entries.size());
        put64(s, entries.size());
        put64(s, cd_size);
        put64(s, cd);
        put32(s, 0x07064b50);
        put32(s, 0);
        put64(s, rec);
        put32(s, 1);
    }
    z.eocd = s.size();
    put32(s, 0x06054b50);
    put16(s, 0);
    put16(s, 0);
    put16(s, zip64 ? 0xFFFF : entries.size());
    put16(s, zip64 ? 0xFFFF : entries.size());
    put32(s, zip64 ? 0xFFFFFFFF : cd_size);
    put32(s, zip64 ? 0xFFFFFFFF : cd);
    put16(s, comment.size());
    s += comment;
    return z;
}

}  // namespace test_support
