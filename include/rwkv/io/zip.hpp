#pragma once
// Central-directory reader for zip archives, the container of PyTorch checkpoints. Stored
// (uncompressed) entries, what torch.save writes, are located in place with zero copies;
// deflate-compressed entries (checkpoints re-zipped by other tools) are inflated with zlib into an
// owned buffer that the entry's `owner` keeps alive. It never trusts a header: every offset and
// size is checked against the file before use, and an inflated entry must match its recorded size
// and CRC-32 exactly.

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "bytes.hpp"

namespace rwkv::io {

struct zip_entry {
    std::string name;
    std::uint64_t local_header_offset = 0;
    std::uint64_t data_offset = 0;  // first byte of the entry's (compressed) data in the file
    std::uint16_t method = 0;       // 0 stored, 8 deflate
    // The entry's uncompressed bytes: inside the file span for stored entries, inside `owner`
    // (the inflated copy) for deflated ones.
    std::span<const std::byte> data;
    std::shared_ptr<const void> owner;  // empty for stored entries
};

struct zip_archive {
    std::vector<zip_entry> entries;  // central-directory order

    const zip_entry* find(std::string_view name) const {
        for (const zip_entry& e : entries)
            if (e.name == name) return &e;
        return nullptr;
    }
};

namespace detail {

constexpr std::uint32_t zip_local_sig = 0x04034b50;
constexpr std::uint32_t zip_central_sig = 0x02014b50;
constexpr std::uint32_t zip_eocd_sig = 0x06054b50;
constexpr std::uint32_t zip64_locator_sig = 0x07064b50;
constexpr std::uint32_t zip64_eocd_sig = 0x06064b50;
constexpr std::size_t zip_eocd_size = 22;
constexpr std::size_t zip_max_comment = 0xFFFF;
constexpr std::size_t zip_central_size = 46;
constexpr std::size_t zip_local_size = 30;
constexpr std::size_t zip64_locator_size = 20;
constexpr std::size_t zip64_eocd_size = 56;
constexpr std::uint32_t zip_sat32 = 0xFFFFFFFF;
constexpr std::uint16_t zip_sat16 = 0xFFFF;

// True when [off, off + len) lies inside a buffer of `size` bytes, without overflowing.
inline bool zip_fits(std::uint64_t off, std::uint64_t len, std::uint64_t size) noexcept {
    return off <= size && len <= size - off;
}

// Deflate cannot expand data more than ~1032:1; a larger claimed size is a corrupt (or hostile)
// header, refused before allocating for it.
constexpr std::uint64_t zip_max_deflate_ratio = 1032;

// Raw-deflate `in` into exactly `size` bytes; the error text (or empty on success) says why not.
inline std::string zip_inflate(std::span<const std::byte> in, std::byte* out, std::uint64_t size, std::uint32_t crc) {
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return "zlib inflateInit2 failed";
    // zlib counts in 32-bit uInt: feed and drain in chunks so entries over 4 GiB work.
    constexpr std::uint64_t chunk = std::uint64_t{1} << 30;
    std::uint64_t in_pos = 0, out_pos = 0;
    std::string why;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in.size()) {
            const std::uint64_t n = std::min<std::uint64_t>(chunk, in.size() - in_pos);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data() + in_pos));
            zs.avail_in = static_cast<uInt>(n);
            in_pos += n;
        }
        if (zs.avail_out == 0 && out_pos < size) {
            const std::uint64_t n = std::min<std::uint64_t>(chunk, size - out_pos);
            zs.next_out = reinterpret_cast<Bytef*>(out + out_pos);
            zs.avail_out = static_cast<uInt>(n);
            out_pos += n;
        }
        if (zs.avail_out == 0) {  // all `size` bytes written: the stream must end right here
            unsigned char probe;
            zs.next_out = &probe;
            zs.avail_out = 1;
            const int rc = inflate(&zs, Z_FINISH);
            if (rc == Z_STREAM_END && zs.avail_out == 1) break;
            why = rc == Z_DATA_ERROR  ? "corrupt deflate data"
                  : zs.avail_out == 0 ? "inflates to more than its recorded " + std::to_string(size) + " bytes"
                                      : "deflate data is truncated";
            break;
        }
        const int rc = inflate(&zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            const std::uint64_t written = out_pos - zs.avail_out;
            if (written == size) break;
            why = "inflates to " + std::to_string(written) + " bytes, fewer than its recorded " + std::to_string(size);
            break;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == in.size()) {
            why = "deflate data is truncated";
            break;
        }
        if (rc == Z_BUF_ERROR) continue;  // no progress this round: the refills above make room
        why = rc == Z_DATA_ERROR ? "corrupt deflate data" : "zlib error " + std::to_string(rc);
        break;
    }
    inflateEnd(&zs);
    if (!why.empty()) return why;
    // CRC-32 in 1 GiB pieces for the same 32-bit reason.
    uLong c = crc32(0L, Z_NULL, 0);
    for (std::uint64_t p = 0; p < size; p += chunk)
        c = crc32(c, reinterpret_cast<const Bytef*>(out + p), static_cast<uInt>(std::min(chunk, size - p)));
    if (static_cast<std::uint32_t>(c) != crc) return "CRC-32 mismatch after inflating (corrupt entry)";
    return {};
}

}  // namespace detail

// `where` (usually the file path) starts every error message.
inline zip_archive read_zip(std::span<const std::byte> file, std::string_view where) {
    using detail::load_le;
    const std::byte* base = file.data();
    const std::uint64_t size = file.size();
    auto fail = [&](const std::string& what) -> rwkv::error { return rwkv::error(std::string(where) + ": " + what); };
    auto u16 = [&](std::uint64_t off) { return load_le<std::uint16_t>(base + off); };
    auto u32 = [&](std::uint64_t off) { return load_le<std::uint32_t>(base + off); };
    auto u64 = [&](std::uint64_t off) { return load_le<std::uint64_t>(base + off); };

    // --- End of central directory: the last 22-byte record, possibly followed by a comment.
    if (size < detail::zip_eocd_size) throw fail("not a zip file (too small for an end-of-central-directory record)");
    const std::uint64_t lowest = size > detail::zip_eocd_size + detail::zip_max_comment
                                     ? size - detail::zip_eocd_size - detail::zip_max_comment
                                     : 0;
    std::uint64_t eocd = 0;
    bool found = false;
    for (std::uint64_t pos = size - detail::zip_eocd_size + 1; pos-- > lowest;) {
        // The comment length must fit the file, which rejects most stray signature bytes.
        if (u32(pos) == detail::zip_eocd_sig && u16(pos + 20) <= size - pos - detail::zip_eocd_size) {
            eocd = pos;
            found = true;
            break;
        }
    }
    if (!found) throw fail("not a zip file or truncated (no end-of-central-directory record)");
    if (u16(eocd + 4) != 0 || u16(eocd + 6) != 0) throw fail("multi-disk zip archives are not supported");
    std::uint64_t count = u16(eocd + 10);
    std::uint64_t cd_size = u32(eocd + 12);
    std::uint64_t cd_offset = u32(eocd + 16);

    // --- Zip64: needed past 4 GiB or 65535 entries (every bf16 checkpoint of 3B and up).
    const bool saturated = count == detail::zip_sat16 || cd_size == detail::zip_sat32 || cd_offset == detail::zip_sat32;
    if (eocd >= detail::zip64_locator_size && u32(eocd - detail::zip64_locator_size) == detail::zip64_locator_sig) {
        const std::uint64_t loc = eocd - detail::zip64_locator_size;
        const std::uint64_t rec = u64(loc + 8);
        if (!detail::zip_fits(rec, detail::zip64_eocd_size, size))
            throw fail("zip64 end-of-central-directory offset " + std::to_string(rec) +
                       " is outside the file (truncated?)");
        if (u32(rec) != detail::zip64_eocd_sig)
            throw fail("bad zip64 end-of-central-directory signature at offset " + std::to_string(rec));
        count = u64(rec + 32);
        cd_size = u64(rec + 40);
        cd_offset = u64(rec + 48);
    } else if (saturated) {
        throw fail("zip64 archive without a zip64 end-of-central-directory locator");
    }
    if (!detail::zip_fits(cd_offset, cd_size, size))
        throw fail("central directory (offset " + std::to_string(cd_offset) + ", size " + std::to_string(cd_size) +
                   ") is outside the file (truncated?)");
    // Every entry takes at least 46 bytes, which also caps the allocation below.
    if (count > cd_size / detail::zip_central_size)
        throw fail("central directory claims " + std::to_string(count) + " entries but holds only " +
                   std::to_string(cd_size) + " bytes");

    zip_archive out;
    out.entries.reserve(static_cast<std::size_t>(count));
    struct pending {
        std::size_t entry;
        std::uint64_t usize;
        std::uint32_t crc;
    };
    std::vector<pending> deflated;
    const std::uint64_t cd_end = cd_offset + cd_size;
    std::uint64_t p = cd_offset;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (!detail::zip_fits(p, detail::zip_central_size, cd_end) || u32(p) != detail::zip_central_sig)
            throw fail("bad central directory entry #" + std::to_string(i) + " at offset " + std::to_string(p));
        const std::uint16_t flags = u16(p + 8);
        const std::uint16_t method = u16(p + 10);
        std::uint64_t csize = u32(p + 20);
        std::uint64_t usize = u32(p + 24);
        const std::uint64_t name_len = u16(p + 28);
        const std::uint64_t extra_len = u16(p + 30);
        const std::uint64_t comment_len = u16(p + 32);
        std::uint64_t lho = u32(p + 42);
        const std::uint64_t var_len = name_len + extra_len + comment_len;
        if (!detail::zip_fits(p + detail::zip_central_size, var_len, cd_end))
            throw fail("central directory entry #" + std::to_string(i) + " runs past the directory end");
        const std::uint64_t name_at = p + detail::zip_central_size;
        std::string name(reinterpret_cast<const char*>(base + name_at), static_cast<std::size_t>(name_len));
        auto entry_fail = [&](const std::string& what) { return fail("zip entry '" + name + "': " + what); };

        // Zip64 extra field: replaces, in this order, each saturated 32-bit field.
        const bool need64 = usize == detail::zip_sat32 || csize == detail::zip_sat32 || lho == detail::zip_sat32;
        bool have64 = false;
        std::uint64_t q = name_at + name_len;
        const std::uint64_t extra_end = q + extra_len;
        while (extra_end - q >= 4) {
            const std::uint16_t id = u16(q);
            const std::uint64_t len = u16(q + 2);
            q += 4;
            if (len > extra_end - q) throw entry_fail("malformed extra field");
            if (id == 0x0001 && need64) {
                std::uint64_t r = q;
                auto take = [&](std::uint64_t& field) {
                    if (field != detail::zip_sat32) return;
                    if (q + len - r < 8) throw entry_fail("zip64 extra field too short");
                    field = u64(r);
                    r += 8;
                };
                take(usize);
                take(csize);
                take(lho);
                have64 = true;
            }
            q += len;
        }
        if (need64 && !have64) throw entry_fail("saturated sizes but no zip64 extra field");
        if (flags & 0x0001) throw entry_fail("encrypted entries are not supported");
        if (method != 0 && method != 8)
            throw entry_fail("compression method " + std::to_string(method) +
                             " is not supported (only stored and deflate entries)");
        if (method == 0 && csize != usize)
            throw entry_fail("stored entry with compressed size " + std::to_string(csize) + " != uncompressed size " +
                             std::to_string(usize));
        if (method == 8 && usize > csize * detail::zip_max_deflate_ratio + 64)
            throw entry_fail("deflated entry claims " + std::to_string(usize) + " bytes from " + std::to_string(csize) +
                             " compressed bytes, more than deflate can expand to (corrupt header)");

        // The data offset comes from the LOCAL header: its extra field (PyTorch's alignment
        // padding) may differ in length from the central one.
        if (!detail::zip_fits(lho, detail::zip_local_size, size))
            throw entry_fail("local header offset " + std::to_string(lho) + " is outside the file (truncated?)");
        if (u32(lho) != detail::zip_local_sig)
            throw entry_fail("bad local header signature at offset " + std::to_string(lho));
        const std::uint64_t local_name_len = u16(lho + 26);
        const std::uint64_t local_extra_len = u16(lho + 28);
        const std::uint64_t after_header = lho + detail::zip_local_size;
        if (!detail::zip_fits(after_header, local_name_len + local_extra_len, size))
            throw entry_fail("local header at offset " + std::to_string(lho) + " runs past the end of the file");
        if (local_name_len != name_len || std::string_view(reinterpret_cast<const char*>(base + after_header),
                                                           static_cast<std::size_t>(local_name_len)) != name)
            throw entry_fail("local header name does not match the central directory");
        const std::uint64_t data_offset = after_header + local_name_len + local_extra_len;
        if (!detail::zip_fits(data_offset, csize, size))
            throw entry_fail("data (offset " + std::to_string(data_offset) + ", size " + std::to_string(csize) +
                             ") runs past the end of the file (" + std::to_string(size) + " bytes; truncated?)");

        zip_entry e;
        e.local_header_offset = lho;
        e.data_offset = data_offset;
        e.method = method;
        const std::span<const std::byte> stored =
            file.subspan(static_cast<std::size_t>(data_offset), static_cast<std::size_t>(csize));
        if (method == 0) {
            e.data = stored;
        } else {
            if (usize > std::numeric_limits<std::size_t>::max()) throw entry_fail("too large to inflate");
            e.data = stored;  // compressed bytes until the inflate pass below
            deflated.push_back({out.entries.size(), usize, u32(p + 16)});
        }
        e.name = std::move(name);
        out.entries.push_back(std::move(e));
        p = name_at + var_len;
    }

    // Deflated entries may not share compressed bytes: overlapping entries are how a small zip
    // inflates to terabytes ("zip bomb"); no zip writer produces them. Checked before inflating.
    if (!deflated.empty()) {
        std::vector<const zip_entry*> by_offset;
        for (const pending& d : deflated) by_offset.push_back(&out.entries[d.entry]);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const zip_entry* a, const zip_entry* b) { return a->data_offset < b->data_offset; });
        for (std::size_t i = 1; i < by_offset.size(); ++i)
            if (by_offset[i]->data_offset < by_offset[i - 1]->data_offset + by_offset[i - 1]->data.size())
                throw fail("zip entries '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                           "' share compressed data (overlapping entries)");
    }
    for (const pending& d : deflated) {
        zip_entry& e = out.entries[d.entry];
        // Not zero-filled: pages are committed only as inflate writes real data.
        std::shared_ptr<std::byte[]> buf(new std::byte[static_cast<std::size_t>(d.usize)]);
        const std::string why = detail::zip_inflate(e.data, buf.get(), d.usize, d.crc);
        if (!why.empty()) throw fail("zip entry '" + e.name + "': " + why);
        e.data = std::span<const std::byte>(buf.get(), static_cast<std::size_t>(d.usize));
        e.owner = std::move(buf);
    }
    return out;
}

}  // namespace rwkv::io
