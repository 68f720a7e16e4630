// rwkv::io::read_zip: central directory, zip64, local-header data offsets, and refusal of
// anything malformed (never reading out of bounds).

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "errors.hpp"
#include "rwkv/io/zip.hpp"
#include "zip_writer.hpp"

using rwkv::io::read_zip;
using test_support::error_of;
using test_support::make_zip;
using test_support::set_le;
using test_support::span_of;
using test_support::str_of;
using test_support::zip_in;
using test_support::zip_out;

namespace {

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
        for (const auto& e : read_zip(span_of(z.bytes), "x").entries) CHECK(e.data_offset % 64 == 0);
    }
    SECTION("no alignment padding") { check_sample(make_zip(sample, false, 1).bytes); }
    SECTION("zip64 records and extra fields") { check_sample(make_zip(sample, true).bytes); }
    SECTION("archive comment after the end record") {
        check_sample(make_zip(sample, false, 64, "a comment PK\x05\x06 with a fake signature").bytes);
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
        set_le(s, z.central[2] + 42, static_cast<std::uint32_t>(s.size() + 10), 4);
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/empty'"));
        CHECK_THAT(msg, Catch::Contains("outside the file"));
    }
    SECTION("local header offset just below the end") {
        set_le(s, z.central[2] + 42, static_cast<std::uint32_t>(s.size() - 10), 4);
        CHECK_THAT(err(), Catch::Contains("'archive/empty'"));
    }
    SECTION("data runs past the end of the file") {
        set_le(s, z.central[1] + 20, 0x7FFFFFF0, 4);
        set_le(s, z.central[1] + 24, 0x7FFFFFF0, 4);
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/data/0'"));
        CHECK_THAT(msg, Catch::Contains("runs past the end of the file"));
    }
    SECTION("unsupported compression method") {
        set_le(s, z.central[1] + 10, 14, 2);  // LZMA
        const std::string msg = err();
        CHECK_THAT(msg, Catch::Contains("'archive/data/0'"));
        CHECK_THAT(msg, Catch::Contains("compression method 14 is not supported (only stored and deflate entries)"));
    }
    SECTION("stored data marked as deflated") {
        set_le(s, z.central[1] + 10, 8, 2);
        CHECK_THAT(err(), Catch::Contains("zip entry 'archive/data/0': corrupt deflate data"));
    }
    SECTION("compressed and uncompressed sizes disagree") {
        set_le(s, z.central[3] + 20, 1, 4);
        CHECK_THAT(err(), Catch::Contains("'archive/version'"));
    }
    SECTION("encrypted entry") {
        set_le(s, z.central[0] + 8, 1, 2);
        CHECK_THAT(err(), Catch::Contains("encrypted"));
    }
    SECTION("local name differs from the central name") {
        s[z.local[3] + 30] = 'b';
        CHECK_THAT(err(), Catch::Contains("does not match"));
    }
    SECTION("central directory outside the file") {
        set_le(s, z.eocd + 16, 0xFFFFFF00, 4);
        CHECK_THAT(err(), Catch::Contains("central directory"));
    }
    SECTION("entry count larger than the directory can hold") {
        set_le(s, z.eocd + 10, 0xFFFE, 2);
        CHECK_THAT(err(), Catch::Contains("entries"));
    }
    SECTION("bad central signature") {
        s[z.central[2]] = 'Q';
        CHECK_THAT(err(), Catch::Contains("bad central directory entry #2"));
    }
    SECTION("name length runs past the directory") {
        set_le(s, z.central[3] + 28, 0xFFFF, 2);
        CHECK_THAT(err(), Catch::Contains("runs past the directory end"));
    }
    SECTION("saturated fields without zip64 records") {
        set_le(s, z.eocd + 16, 0xFFFFFFFF, 4);
        CHECK_THAT(err(), Catch::Contains("zip64"));
    }
    SECTION("saturated entry sizes without a zip64 extra field") {
        set_le(s, z.central[1] + 24, 0xFFFFFFFF, 4);
        CHECK_THAT(err(), Catch::Contains("zip64 extra field"));
    }
    SECTION("multi-disk") {
        set_le(s, z.eocd + 4, 1, 2);
        CHECK_THAT(err(), Catch::Contains("multi-disk"));
    }
}

TEST_CASE("read_zip refuses broken zip64 records", "[zip]") {
    zip_out z = make_zip(sample, true);
    std::string& s = z.bytes;
    auto err = [&] { return error_of([&] { read_zip(span_of(s), "big.pth"); }); };
    const std::size_t locator = z.eocd - 20;
    SECTION("zip64 end record offset outside the file") {
        set_le(s, locator + 8, 0xFFFFFFF0, 4);
        CHECK_THAT(err(), Catch::Contains("zip64 end-of-central-directory offset"));
    }
    SECTION("zip64 end record signature") {
        s[locator - 56] = 'x';
        CHECK_THAT(err(), Catch::Contains("bad zip64 end-of-central-directory signature"));
    }
    SECTION("zip64 extra field too short") {
        set_le(s, z.central[1] + 46 + sample[1].name.size() + 2, 8, 2);  // claims 8 of 24 bytes
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
                } catch (const rwkv::error&) {}
            }
        }
    }
}

TEST_CASE("read_zip inflates deflated entries into owned buffers, checking size and CRC", "[zip]") {
    std::vector<zip_in> entries = sample;
    entries[1].data = std::string(5000, 'a') + "tail";
    entries[3].data = std::string("0123456789abcdef") + std::string(3000, '\x01');
    for (auto& e : entries) e.deflate = true;
    for (bool zip64 : {false, true}) {
        const zip_out z = make_zip(entries, zip64);
        const std::string& bytes = z.bytes;
        const rwkv::io::zip_archive a = read_zip(span_of(bytes), "d.zip");
        REQUIRE(a.entries.size() == entries.size());
        for (std::size_t i = 0; i < entries.size(); ++i) {
            CHECK(a.entries[i].method == 8);
            CHECK(str_of(a.entries[i].data) == entries[i].data);
            CHECK(a.entries[i].owner != nullptr);
        }
    }
    // Mixed archives keep stored entries in place.
    entries[1].deflate = false;
    const zip_out mixed = make_zip(entries);
    const rwkv::io::zip_archive m = read_zip(span_of(mixed.bytes), "m.zip");
    CHECK(m.entries[1].owner == nullptr);
    CHECK(m.entries[1].data.data() == span_of(mixed.bytes).data() + m.entries[1].data_offset);
    CHECK(str_of(m.entries[3].data) == entries[3].data);
}

TEST_CASE("read_zip refuses deflated entries whose data disagrees with the directory", "[zip]") {
    std::vector<zip_in> entries = {{"a/data/0", std::string(4000, 'x') + "end", 0, true}};
    zip_out z = make_zip(entries);
    std::string& s = z.bytes;
    auto err = [&] { return error_of([&] { read_zip(span_of(s), "d.zip"); }); };
    const std::size_t usize = 4003;
    SECTION("CRC mismatch") {
        set_le(s, z.central[0] + 16, 0x12345678, 4);
        CHECK_THAT(err(), Catch::Contains("zip entry 'a/data/0': CRC-32 mismatch"));
    }
    SECTION("recorded size larger than the stream") {
        set_le(s, z.central[0] + 24, usize + 1, 4);
        CHECK_THAT(err(), Catch::Contains("inflates to 4003 bytes, fewer than its recorded 4004"));
    }
    SECTION("recorded size smaller than the stream") {
        set_le(s, z.central[0] + 24, usize - 1, 4);
        CHECK_THAT(err(), Catch::Contains("inflates to more than its recorded 4002 bytes"));
    }
    SECTION("compressed size cut short") {
        const std::uint64_t csize = test_support::deflate_raw(entries[0].data).size();
        set_le(s, z.central[0] + 20, csize - 3, 4);
        CHECK_THAT(err(), Catch::Contains("zip entry 'a/data/0': deflate data is truncated"));
    }
    SECTION("a size no deflate stream can expand to") {
        set_le(s, z.central[0] + 24, 0x7FFFFFFF, 4);
        CHECK_THAT(err(), Catch::Contains("more than deflate can expand to"));
    }
}

TEST_CASE("read_zip refuses deflated entries that share compressed bytes", "[zip]") {
    // Two central entries pointing at one local header: the overlapping-entries zip bomb.
    std::vector<zip_in> entries = {{"a/x", std::string(3000, 'z'), 0, true}, {"a/x", std::string(3000, 'z'), 0, true}};
    zip_out z = make_zip(entries);
    set_le(z.bytes, z.central[1] + 42, z.local[0], 4);
    CHECK_THAT(error_of([&] { read_zip(span_of(z.bytes), "bomb.zip"); }),
               Catch::Contains("bomb.zip: zip entries 'a/x' and 'a/x' share compressed data"));
}
