// rwkv::io::read_zip: central directory, zip64, local-header data offsets, and refusal of
// anything malformed (never reading out of bounds).

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "rwkv/io/zip.hpp"

using rwkv::io::read_zip;

namespace {

// --- A minimal zip writer (stored entries only), enough to build good and broken archives.
struct zip_in {
    std::string name;
    std::string data;
    std::uint16_t method = 0;
};

struct zip_out {
    std::string bytes;
    std::vector<std::size_t> local;    // local header offsets
    std::vector<std::size_t> central;  // central entry offsets
    std::size_t eocd = 0;
};

void put16(std::string& s, std::uint64_t v) {
    for (int i = 0; i < 2; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put32(std::string& s, std::uint64_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put64(std::string& s, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void set32(std::string& s, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void set16(std::string& s, std::size_t at, std::uint16_t v) {
    for (int i = 0; i < 2; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Pads each local header's extra field (an 'FB' block, as PyTorch does) so data starts on a
// multiple of `align`; zip64 saturates every size/offset and writes the zip64 records.
zip_out make_zip(const std::vector<zip_in>& entries, bool zip64 = false, std::size_t align = 64,
                 const std::string& comment = "") {
    zip_out z;
    std::string& s = z.bytes;
    for (const zip_in& e : entries) {
        z.local.push_back(s.size());
        std::size_t pad = 0;
        if (align > 1) {
            std::size_t after = s.size() + 30 + e.name.size();
            pad = (align - (after + 4) % align) % align + 4;
        }
        put32(s, 0x04034b50);
        put16(s, 20);
        put16(s, 0);
        put16(s, e.method);
        put32(s, 0);  // time, date
        put32(s, 0);  // crc (the reader does not check it)
        put32(s, e.data.size());
        put32(s, e.data.size());
        put16(s, e.name.size());
        put16(s, pad);
        s += e.name;
        if (pad) {
            s += "FB";
            put16(s, pad - 4);
            s.append(pad - 4, 'Z');
        }
        s += e.data;
    }
    const std::size_t cd = s.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const zip_in& e = entries[i];
        z.central.push_back(s.size());
        put32(s, 0x02014b50);
        put16(s, 45);
        put16(s, 45);
        put16(s, 0);
        put16(s, e.method);
        put32(s, 0);
        put32(s, 0);
        put32(s, zip64 ? 0xFFFFFFFF : e.data.size());
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
            put64(s, e.data.size());
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

std::span<const std::byte> span_of(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string str_of(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const rwkv::error& e) {
        return e.what();
    }
    FAIL("expected rwkv::error");
    return {};
}

const std::vector<zip_in> sample = {
    {"archive/data.pkl", std::string("\x80\x02}q\x00.", 6)},
    {"archive/data/0", std::string(100, 'a')},
    {"archive/empty", ""},
    {"archive/version", "3\n"},
};

void check_sample(const std::string& bytes) {
    const rwkv::io::zip_archive z = read_zip(span_of(bytes), "x.zip");
    REQUIRE(z.entries.size() == sample.size());
    for (std::size_t i = 0; i < sample.size(); ++i) {
        CHECK(z.entries[i].name == sample[i].name);
        CHECK(str_of(z.entries[i].data) == sample[i].data);
        CHECK(z.entries[i].data.data() == span_of(bytes).data() + z.entries[i].data_offset);
    }
    REQUIRE(z.find("archive/data/0") != nullptr);
    CHECK(z.find("archive/data/0")->data.size() == 100);
    CHECK(z.find("archive/data/1") == nullptr);
}

}  // namespace

TEST_CASE("read_zip lists stored entries with their data", "[zip]") {
    SECTION("plain, 64-byte aligned like PyTorch") {
        const zip_out z = make_zip(sample);
        check_sample(z.bytes);
        for (const auto& e : read_zip(span_of(z.bytes), "x").entries)
            CHECK(e.data_offset % 64 == 0);
    }
    SECTION("no alignment padding") {
        check_sample(make_zip(sample, false, 1).bytes);
    }
    SECTION("zip64 records and extra fields") {
        check_sample(make_zip(sample, true).bytes);
    }
    SECTION("archive comment after the end record") {
        check_sample(
            make_zip(sample, false, 64, "a comment PK\x05\x06 with a fake signature").bytes);
    }
    SECTION("empty archive") {
        const zip_out z = make_zip({});
        CHECK(read_zip(span_of(z.bytes), "x").entries.empty());
    }
}

TEST_CASE("read_zip uses the local header's extra length for the data offset", "[zip]") {
    // Central and local extra lengths differ in PyTorch files; the local one is authoritative.
    const zip_out z = make_zip(sample, false, 64);
    const auto entries = read_zip(span_of(z.bytes), "x").entries;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        CHECK(entries[i].local_header_offset == z.local[i]);
        CHECK(entries[i].data_offset > z.local[i] + 30 + sample[i].name.size());
    }
}

TEST_CASE("read_zip refuses malformed archives with messages naming the file and entry", "[zip]") {
    zip_out z = make_zip(sample);
    std::string& s = z.bytes;
    auto err = [&] { return error_of([&] { read_zip(span_of(s), "model.pth"); }); };

    SECTION("too small") {
        s = "PK";
        const std::string msg = err();
        CHECK(msg.rfind("model.pth: ", 0) == 0);
        CHECK_THAT(msg, Catch::Contains("not a zip file"));
    }
    SECTION("no end record") {
        s = std::string(1000, 'x');
        CHECK_THAT(err(), Catch::Contains("no end-of-central-directory record"));
    }
    SECTION("corrupted local header signature") {
        s[z.local[1]] = 'X';
        const std::string msg = err();
        CHECK(msg.rfind("model.pth: ", 0) == 0);
        CHECK_THAT(msg, Catch::Contains("'archive/data/0'"));
        CHECK_THAT(msg, Catch::Contains("bad local header signature"));
    }
    SECTION("local header offset past the end") {
        set32(s, z.central[2] + 42, static_cast<std::uint32_t>(s.size() + 10));
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/empty'"));
        CHECK_THAT(msg, Catch::Contains("outside the file"));
    }
    SECTION("local header offset just below the end") {
        set32(s, z.central[2] + 42, static_cast<std::uint32_t>(s.size() - 10));
        CHECK_THAT(err(), Catch::Contains("'archive/empty'"));
    }
    SECTION("data runs past the end of the file") {
        set32(s, z.central[1] + 20, 0x7FFFFFF0);
        set32(s, z.central[1] + 24, 0x7FFFFFF0);
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/data/0'"));
        CHECK_THAT(msg, Catch::Contains("runs past the end of the file"));
    }
    SECTION("unsupported compression method") {
        set16(s, z.central[1] + 10, 8);
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/data/0'"));
        CHECK_THAT(msg, Catch::Contains("compression method 8"));
    }
    SECTION("compressed and uncompressed sizes disagree") {
        set32(s, z.central[3] + 20, 1);
        CHECK_THAT(err(), Catch::Contains("'archive/version'"));
    }
    SECTION("encrypted entry") {
        set16(s, z.central[0] + 8, 1);
        CHECK_THAT(err(), Catch::Contains("encrypted"));
    }
    SECTION("local name differs from the central name") {
        s[z.local[3] + 30] = 'b';
        CHECK_THAT(err(), Catch::Contains("does not match"));
    }
    SECTION("central directory outside the file") {
        set32(s, z.eocd + 16, 0xFFFFFF00);
        CHECK_THAT(err(), Catch::Contains("central directory"));
    }
    SECTION("entry count larger than the directory can hold") {
        set16(s, z.eocd + 10, 0xFFFE);
        CHECK_THAT(err(), Catch::Contains("entries"));
    }
    SECTION("bad central signature") {
        s[z.central[2]] = 'Q';
        CHECK_THAT(err(), Catch::Contains("bad central directory entry #2"));
    }
    SECTION("name length runs past the directory") {
        set16(s, z.central[3] + 28, 0xFFFF);
        CHECK_THAT(err(), Catch::Contains("runs past the directory end"));
    }
    SECTION("saturated fields without zip64 records") {
        set32(s, z.eocd + 16, 0xFFFFFFFF);
        CHECK_THAT(err(), Catch::Contains("zip64"));
    }
    SECTION("saturated entry sizes without a zip64 extra field") {
        set32(s, z.central[1] + 24, 0xFFFFFFFF);
        CHECK_THAT(err(), Catch::Contains("zip64 extra field"));
    }
    SECTION("multi-disk") {
        set16(s, z.eocd + 4, 1);
        CHECK_THAT(err(), Catch::Contains("multi-disk"));
    }
}

TEST_CASE("read_zip refuses broken zip64 records", "[zip]") {
    zip_out z = make_zip(sample, true);
    std::string& s = z.bytes;
    auto err = [&] { return error_of([&] { read_zip(span_of(s), "big.pth"); }); };
    const std::size_t locator = z.eocd - 20;
    SECTION("zip64 end record offset outside the file") {
        set32(s, locator + 8, 0xFFFFFFF0);
        CHECK_THAT(err(), Catch::Contains("zip64 end-of-central-directory offset"));
    }
    SECTION("zip64 end record signature") {
        s[locator - 56] = 'x';
        CHECK_THAT(err(), Catch::Contains("bad zip64 end-of-central-directory signature"));
    }
    SECTION("zip64 extra field too short") {
        set16(s, z.central[1] + 46 + sample[1].name.size() + 2, 8);  // claims 8 of 24 bytes
        CHECK_THAT(err(), Catch::Contains("'archive/data/0'"));
    }
    SECTION("huge 64-bit offsets do not overflow") {
        const std::size_t extra = z.central[1] + 46 + sample[1].name.size() + 4;
        for (int i = 0; i < 8; ++i) s[extra + 16 + i] = '\xff';  // local header offset 2^64-1
        CHECK_THAT(err(), Catch::Contains("outside the file"));
        for (int i = 0; i < 8; ++i) s[extra + i] = '\xff';  // and the size
        CHECK_THAT(err(), Catch::Contains("'archive/data/0'"));
    }
}

TEST_CASE("read_zip: every truncation throws rwkv::error", "[zip]") {
    for (bool zip64 : {false, true}) {
        const std::string full = make_zip(sample, zip64).bytes;
        for (std::size_t n = 0; n < full.size(); ++n) {
            const std::string cut = full.substr(0, n);
            INFO("zip64 " << zip64 << ", truncated to " << n << " bytes");
            CHECK_THROWS_AS(read_zip(span_of(cut), "t"), rwkv::error);
        }
    }
}

TEST_CASE("read_zip: single-byte corruptions never read out of bounds", "[zip]") {
    // Either a clean error or entries whose data lies inside the buffer (checked by ASan too).
    std::mt19937 rng(1234);
    for (bool zip64 : {false, true}) {
        const std::string full = make_zip(sample, zip64).bytes;
        for (std::size_t i = 0; i < full.size(); ++i) {
            for (int k = 0; k < 3; ++k) {
                std::string s = full;
                s[i] = static_cast<char>(k == 0 ? 0xFF : k == 1 ? 0x00 : rng() & 0xFF);
                const auto buf = span_of(s);
                try {
                    const auto z = read_zip(buf, "f");
                    for (const auto& e : z.entries) {
                        CHECK(e.data.data() >= buf.data());
                        CHECK(e.data.data() + e.data.size() <= buf.data() + buf.size());
                    }
                } catch (const rwkv::error&) {
                }
            }
        }
    }
}
