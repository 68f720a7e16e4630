// Tests for <rwkv/utf8.hpp>: split characters are held, invalid bytes are released (as
// U+FFFD per maximal subpart, or raw), nothing is lost or reordered, flush ends the stream.

#include <rwkv/tokenizer.hpp>
#include <rwkv/utf8.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fixtures.hpp"

using rwkv::token;
using rwkv::utf8_invalid;
using rwkv::Utf8Stream;

namespace {

const std::string fffd = "\xEF\xBF\xBD";

std::string from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

// Independent reference for "replace" (written from code-point arithmetic, not from the
// lead-byte table the library uses): at each position take the longest prefix that can
// still be completed to a well-formed character; complete -> copy, else -> one U+FFFD.
std::size_t seq_len(unsigned char b) {
    return b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
}
bool completable(const std::string& s, std::size_t i, std::size_t k, std::size_t n) {
    // Smallest and largest code point any completion of s[i..i+k) (length n) could have.
    const auto lead = static_cast<unsigned char>(s[i]);
    std::uint32_t lo = lead & (0x7F >> n), hi = lo;
    for (std::size_t j = 1; j < n; ++j) {
        std::uint32_t c_lo = 0, c_hi = 0x3F;
        if (j < k) {
            const auto c = static_cast<unsigned char>(s[i + j]);
            if ((c & 0xC0) != 0x80) return false;
            c_lo = c_hi = c & 0x3Fu;
        }
        lo = lo << 6 | c_lo;
        hi = hi << 6 | c_hi;
    }
    const std::uint32_t min_cp = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    const bool fits = hi >= min_cp && lo <= 0x10FFFF;
    const bool all_surrogate = lo >= 0xD800 && hi <= 0xDFFF;
    return fits && !all_surrogate;
}
std::string reference_replace(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = seq_len(static_cast<unsigned char>(s[i]));
        if (n == 1) {
            out += s[i++];
            continue;
        }
        std::size_t k = 0;
        while (n && k < n && i + k < s.size() && completable(s, i, k + 1, n)) ++k;
        if (n && k == n) {
            out += s.substr(i, n);
            i += n;
        } else {
            out += fffd;
            i += std::max<std::size_t>(k, 1);
        }
    }
    return out;
}

bool valid_utf8(const std::string& s) { return reference_replace(s) == s; }

// Feeds `s` in the given chunk sizes (cycled) and returns everything released.
std::string stream(const std::string& s, utf8_invalid policy, const std::vector<std::size_t>& sizes) {
    Utf8Stream u(policy);
    std::string out;
    std::size_t at = 0, k = 0;
    while (at < s.size()) {
        const std::size_t n = std::min(sizes[k++ % sizes.size()], s.size() - at);
        out += u.push(std::string_view(s).substr(at, n));
        at += n;
    }
    out += u.flush();
    CHECK(u.pending() == 0);
    return out;
}

}  // namespace

TEST_CASE("append_utf8: each length boundary, and every encoding decodes back to its code point", "[utf8]") {
    const std::vector<std::pair<std::uint32_t, std::string>> known = {
        {0x00, std::string(1, '\0')},
        {0x7F, "\x7F"},
        {0x80, "\xC2\x80"},
        {0x7FF, "\xDF\xBF"},
        {0x800, "\xE0\xA0\x80"},
        {0xFFFF, "\xEF\xBF\xBF"},
        {0x10000, "\xF0\x90\x80\x80"},
        {0x10FFFF, "\xF4\x8F\xBF\xBF"},
        {0x4E2D, "\xE4\xB8\xAD"},
    };
    for (const auto& [cp, bytes] : known) {
        std::string out = "x";
        rwkv::append_utf8(out, cp);
        CHECK(out == "x" + bytes);
    }
    // Every scalar value (surrogates excluded) goes through Utf8Stream unchanged: well-formed.
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        std::string s;
        rwkv::append_utf8(s, cp);
        Utf8Stream u;
        std::string back(u.push(s));
        back += u.flush();
        REQUIRE(back == s);
    }
}

TEST_CASE("Utf8Stream: a CJK character split byte by byte is held until complete", "[utf8]") {
    Utf8Stream u;
    CHECK(u.push("\xE4").empty());
    CHECK(u.pending() == 1);
    CHECK(u.push("\xB8").empty());
    CHECK(u.push("\xAD").size() == 3);  // 中
    CHECK(u.pending() == 0);
    CHECK(u.push("a\xE6\x96") == "a");
    CHECK(u.push("\x87z") == "\xE6\x96\x87z");  // 文
    CHECK(u.flush().empty());
}

TEST_CASE("Utf8Stream: an emoji split across pushes", "[utf8]") {
    const std::string smile = "\xF0\x9F\x98\x80";
    Utf8Stream u;
    CHECK(u.push(smile.substr(0, 2)).empty());
    CHECK(u.push(smile.substr(2, 1)).empty());
    CHECK(u.pending() == 3);
    CHECK(u.push(smile.substr(3) + "!") == smile + "!");
}

TEST_CASE("Utf8Stream: invalid bytes are released at once, one U+FFFD per subpart", "[utf8]") {
    // Expected values are Python's bytes.decode('utf-8', 'replace').
    struct Case {
        const char* hex;
        const char* out_hex;
    };
    const Case cases[] = {
        {"80", "efbfbd"},
        {"c080", "efbfbdefbfbd"},                  // overlong
        {"eda080", "efbfbdefbfbdefbfbd"},          // CESU surrogate
        {"f4908080", "efbfbdefbfbdefbfbdefbfbd"},  // above U+10FFFF
        {"f8888080", "efbfbdefbfbdefbfbdefbfbd"},  // 5-byte form
        {"e4b861", "efbfbd61"},                    // truncated, then ASCII
        {"fffe", "efbfbdefbfbd"},
        {"e080", "efbfbdefbfbd"},
        {"ed9fbf", "ed9fbf"},          // last code point before surrogates
        {"f48fbfbf", "f48fbfbf"},      // U+10FFFF
        {"e4b8ade6", "e4b8adefbfbd"},  // held tail, then flushed
    };
    for (const auto& c : cases) {
        INFO(c.hex);
        const std::string in = from_hex(c.hex), expected = from_hex(c.out_hex);
        CHECK(stream(in, utf8_invalid::replace, {1}) == expected);
        CHECK(stream(in, utf8_invalid::replace, {64}) == expected);
        CHECK(stream(in, utf8_invalid::keep, {1}) == in);
        CHECK(reference_replace(in) == expected);
    }
    // Released as soon as they cannot start or continue a sequence, not at flush.
    Utf8Stream u;
    CHECK(u.push("\x80") == fffd);
    CHECK(u.push("\xE4\xB8").empty());
    CHECK(u.push("a") == fffd + "a");
    CHECK(u.push("\xC0") == fffd);
    Utf8Stream raw(utf8_invalid::keep);
    CHECK(raw.push("\xE4\xB8").empty());
    CHECK(raw.push("\x41") == "\xE4\xB8\x41");
}

TEST_CASE("Utf8Stream: end of stream releases what is held", "[utf8]") {
    Utf8Stream u;
    CHECK(u.push("ok\xF0\x9F\x98").empty() == false);
    CHECK(u.pending() == 3);
    CHECK(u.flush() == fffd);  // one maximal subpart -> one replacement
    CHECK(u.pending() == 0);
    CHECK(u.flush().empty());
    Utf8Stream raw(utf8_invalid::keep);
    CHECK(raw.push("\xE4\xB8") == "");
    CHECK(raw.flush() == "\xE4\xB8");
    // A stream is reusable after flush.
    CHECK(u.push("\xE4\xB8\xAD") == "\xE4\xB8\xAD");
}

TEST_CASE("Utf8Stream: random bytes in random chunks lose and reorder nothing", "[utf8]") {
    std::mt19937 rng(15);  // fixed seed
    std::uniform_int_distribution<int> byte(0, 255), len(0, 200), chunk(1, 7), kind(0, 2);
    const std::string pieces[] = {"\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xC3\xA9",    "a", " ",
                                  "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF", "\xE0\xA0\x80"};
    for (int iter = 0; iter < 3000; ++iter) {
        std::string s;
        const int n = len(rng);
        const int k = kind(rng);
        while (static_cast<int>(s.size()) < n) {
            if (k == 0 || byte(rng) < 40) s += static_cast<char>(byte(rng));  // arbitrary byte
            else {
                std::string p = pieces[static_cast<std::size_t>(byte(rng)) % 8];
                if (k == 2 && byte(rng) < 64) p.resize(p.size() - 1);  // truncated character
                s += p;
            }
        }
        std::vector<std::size_t> sizes;
        for (int i = 0; i < 8; ++i) sizes.push_back(static_cast<std::size_t>(chunk(rng)));
        const std::string expected = reference_replace(s);
        const std::string got = stream(s, utf8_invalid::replace, sizes);
        REQUIRE(got == expected);
        REQUIRE(valid_utf8(got));
        REQUIRE(stream(s, utf8_invalid::keep, sizes) == s);
    }
}

TEST_CASE("Utf8Stream: World tokens that split characters", "[utf8]") {
    RWKV_REQUIRE_FIXTURES();
    const rwkv::WorldTokenizer tok(fixtures::dir() / "rwkv_vocab_v20230424.txt");

    // 龘 (U+9F98) is two tokens: E9 BE + 98.  🫠 (U+1FAE0) is F0 9F + AB + A0.
    const std::string split_chars[] = {"\xE9\xBE\x98", "\xF0\x9F\xAB\xA0"};
    for (const std::string& ch : split_chars) {
        const auto ids = tok.encode(ch);
        REQUIRE(ids.size() >= 2);
        Utf8Stream u;
        for (std::size_t i = 0; i + 1 < ids.size(); ++i) CHECK(u.push_token(tok, ids[i]).empty());
        CHECK(u.push_token(tok, ids.back()) == ch);
    }

    // The whole multilingual text (it holds invalid UTF-8) token by token.
    const std::string text = fixtures::read_text(fixtures::dir() / "tokenizer/tok_text1.bin");
    const auto ids = tok.encode(text);
    Utf8Stream u, raw(utf8_invalid::keep);
    std::string out, out_raw;
    std::size_t held = 0;
    for (token id : ids) {
        const std::string_view piece = u.push_token(tok, id);
        CHECK(valid_utf8(std::string(piece)));
        out += piece;
        out_raw += raw.push_token(tok, id);
        held += u.pending() != 0;
    }
    out += u.flush();
    out_raw += raw.flush();
    CHECK(held > 0);  // the text does split characters across tokens
    CHECK(out == reference_replace(text));
    CHECK(out_raw == text);
    CHECK(u.push_token(tok, 0).empty());  // end of text has no bytes
    CHECK_THROWS_AS(u.push_token(tok, 65530), rwkv::error);
}
