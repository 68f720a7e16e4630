// Tests for <rwkv/tokenizer.hpp>: golden ids from the official tokenizer, spec 6.2 vectors,
// an independent reference encoder, round trips over random bytes, and bad vocabularies.

#include <rwkv/tokenizer.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "fixtures.hpp"
#include "temp_files.hpp"

namespace fs = std::filesystem;
using rwkv::token;
using test_support::temp_dir;

namespace {

std::filesystem::path vocab_path() { return fixtures::dir() / "rwkv_vocab_v20230424.txt"; }

// Loaded once: every test case would otherwise re-parse the vocabulary.
const rwkv::WorldTokenizer& world() {
    static const rwkv::WorldTokenizer tok(vocab_path());
    return tok;
}

std::string from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::vector<token> golden_ids(const test_json::value& v) { return v.ints<token>(); }

// Spec 6.2 written the slow, obvious way: at each position the longest prefix that is a
// token. Independent of the trie (a hash map of all token byte strings); the longest token
// per first two bytes only bounds how many lengths are tried.
struct ReferenceEncoder {
    std::unordered_map<std::string_view, token> map;  // views into the tokenizer's storage
    std::vector<std::size_t> longest_from;            // by first two bytes
    explicit ReferenceEncoder(const rwkv::WorldTokenizer& t) : longest_from(65536, 1) {
        for (token id = 1; id <= t.max_token_id(); ++id) {
            if (!t.contains(id)) continue;
            const std::string_view b = t.token_bytes(id);
            map.emplace(b, id);
            if (b.size() >= 2) {
                auto& m = longest_from[key(b)];
                m = std::max(m, b.size());
            }
        }
    }
    static std::size_t key(std::string_view b) {
        return std::size_t{static_cast<unsigned char>(b[0])} << 8 | static_cast<unsigned char>(b[1]);
    }
    std::vector<token> encode(std::string_view s) const {
        std::vector<token> out;
        for (std::size_t pos = 0; pos < s.size();) {
            const std::string_view rest = s.substr(pos);
            std::size_t len = rest.size() >= 2 ? std::min(longest_from[key(rest)], rest.size()) : 1;
            for (; len > 0; --len) {
                auto it = map.find(rest.substr(0, len));
                if (it != map.end()) {
                    out.push_back(it->second);
                    break;
                }
            }
            REQUIRE(len > 0);
            pos += len;
        }
        return out;
    }
};

// Every single byte, so that any input encodes; ids 1..256 = byte + 1 as in the World file.
std::string byte_lines() {
    std::string s;
    for (int b = 0; b < 256; ++b) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%d b'\\x%02x' 1\n", b + 1, b);
        s += buf;
    }
    return s;
}

std::string error_message_of(const fs::path& p) {
    try {
        rwkv::WorldTokenizer t(p);
    } catch (const rwkv::error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST_CASE("World tokenizer: vocabulary facts", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    CHECK(t.vocab_size() == 65536);
    CHECK(t.token_count() == 65529);
    CHECK(t.max_token_id() == 65529);
    CHECK(t.token_bytes(0).empty());  // end of text
    CHECK(t.token_bytes(1) == std::string_view("\0", 1));
    CHECK(t.token_bytes(256) == "\xFF");
    CHECK(t.token_bytes(129) == "\x80");       // b'\x80': one byte
    CHECK(t.token_bytes(2423) == "\xC2\x80");  // '\x80': U+0080, two bytes (spec 6.1 trap)
    CHECK(t.token_bytes(11) == "\n");
    CHECK(t.token_bytes(261) == "\n\n");
    CHECK(t.token_bytes(33) == " ");
    CHECK(t.token_bytes(59) == ":");
    CHECK(t.token_bytes(65529) == std::string(128, ' '));
    for (int b = 0; b < 256; ++b) CHECK(t.token_bytes(b + 1) == std::string(1, static_cast<char>(b)));
    CHECK(t.trie_memory_bytes() <= 16u << 20);
}

TEST_CASE("World tokenizer: golden text 1", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    const std::string text = fixtures::read_text(fixtures::dir() / "tokenizer/tok_text1.bin");
    const auto json = fixtures::read_json(fixtures::dir() / "tokenizer/tok_text1.json");
    REQUIRE(text.size() == static_cast<std::size_t>(json["n_bytes"].num()));
    const auto expected = golden_ids(json["ids"]);
    REQUIRE(expected.size() == 1470);
    const auto ids = t.encode(text);
    CHECK(ids == expected);
    CHECK(t.decode(ids) == text);
    const auto lengths = json["token_byte_lengths"].ints<std::size_t>();
    REQUIRE(lengths.size() == ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(t.token_bytes(ids[i]).size() == lengths[i]);

    // Every suffix and prefix crosses the bulk / bounds-checked boundary somewhere.
    ReferenceEncoder ref(t);
    for (std::size_t cut = 0; cut <= 300; ++cut) {
        CHECK(t.encode(text.substr(cut)) == ref.encode(text.substr(cut)));
        CHECK(t.encode(text.substr(0, cut)) == ref.encode(text.substr(0, cut)));
    }
}

TEST_CASE("World tokenizer: golden edge cases", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    const auto json = fixtures::read_json(fixtures::dir() / "tokenizer/tok_edge_cases.json");
    const auto& cases = json["cases"].arr();
    REQUIRE(cases.size() == 37);
    for (const auto& c : cases) {
        const std::string bytes = from_hex(c["bytes_hex"].str());
        INFO("bytes_hex = " << c["bytes_hex"].str());
        const auto ids = t.encode(bytes);
        CHECK(ids == golden_ids(c["ids"]));
        CHECK(t.decode(ids) == bytes);
    }
}

TEST_CASE("World tokenizer: spec 6.2 test vectors", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    using V = std::vector<token>;
    CHECK(t.encode("The Eiffel tower is in the city of") ==
          V{6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706});
    CHECK(t.encode("\nElon Musk has") == V{11, 994, 2098, 29435, 21800});
    CHECK(t.encode("User: hi\n\nAssistant:") == V{24281, 59, 4571, 261, 5585, 41693, 59});
    CHECK(t.encode("\xE6\x88\x91\xE4\xBB\xAC\xE5\x8F\x91\xE7\x8E\xB0") ==  // 我们发现
          V{12605, 10402, 10997, 14446});
    CHECK(t.encode(std::string_view("\0\xC3\xBF", 3)) == V{1, 2525});  // U+0000 U+00FF
    CHECK(t.encode("  hello   world") == V{267, 34550, 3340, 36017});
    CHECK(t.encode("1234567") == V{632, 654, 676, 56});
    // No special-token parsing, no BOS/EOS.
    const std::string eot = "<|endoftext|>";
    CHECK(t.decode(t.encode(eot)) == eot);
    CHECK(t.encode("").empty());
}

TEST_CASE("World tokenizer: encode appends", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    std::vector<token> out{7, 8};
    t.encode("User: hi", out);
    CHECK(out == std::vector<token>{7, 8, 24281, 59, 4571});
    std::string s = "x";
    t.decode(std::vector<token>{24281, 59}, s);
    CHECK(s == "xUser:");
}

TEST_CASE("World tokenizer: round trip and reference over random bytes", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    ReferenceEncoder ref(t);
    std::mt19937 rng(20230424);  // fixed seed: failures reproduce
    const std::string text = fixtures::read_text(fixtures::dir() / "tokenizer/tok_text1.bin");
    std::uniform_int_distribution<int> byte(0, 255), kind(0, 3), len(0, 400);
    std::uniform_int_distribution<token> any_id(1, 65529);
    std::size_t total = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        std::string s;
        const int n = len(rng);
        switch (kind(rng)) {
            case 0:  // uniform random bytes: mostly invalid UTF-8
                for (int i = 0; i < n; ++i) s += static_cast<char>(byte(rng));
                break;
            case 1:  // whole tokens glued together: long matches and near-misses
                while (static_cast<int>(s.size()) < n) s += t.token_bytes(any_id(rng));
                break;
            case 2: {  // slices of the multilingual text, sometimes cut mid-character
                std::size_t at = static_cast<std::size_t>(byte(rng)) * 16 % text.size();
                s = text.substr(at, static_cast<std::size_t>(n));
                break;
            }
            default:  // runs of few symbols (spaces, newlines, digits, high bytes)
                for (int i = 0; i < n; ++i) s += " \n0a\x80\xE4"[byte(rng) % 6];
        }
        total += s.size();
        const auto ids = t.encode(s);
        REQUIRE(t.decode(ids) == s);
        REQUIRE(ids == ref.encode(s));
    }
    CHECK(total > 100000);
}

TEST_CASE("World tokenizer: invalid ids", "[tokenizer]") {
    RWKV_REQUIRE_FIXTURES();
    const auto& t = world();
    CHECK(t.decode(std::vector<token>{0}).empty());
    CHECK(t.decode(std::vector<token>{24281, 0, 59}) == "User:");
    for (token bad : {65530, 65535, 65536, 1 << 30, -1}) {
        INFO("id " << bad);
        CHECK_THROWS_AS(t.decode(std::vector<token>{33, bad}), rwkv::error);
        CHECK_THROWS_WITH(t.decode(std::vector<token>{bad}), Catch::Contains(std::to_string(bad)));
        CHECK_THROWS_AS(t.token_bytes(bad), rwkv::error);
        CHECK_FALSE(t.contains(bad));
    }
    // A failed decode leaves the caller's string as it was.
    std::string s = "keep";
    CHECK_THROWS_AS(t.decode(std::vector<token>{33, 70000}, s), rwkv::error);
    CHECK(s == "keep");
}

TEST_CASE("World tokenizer: literal semantics of a hand-written vocabulary", "[tokenizer]") {
    temp_dir dir("rwkv-tok-test");
    const std::string extra =
        "257 '\\x80' 2\n"            // text literal: U+0080 -> C2 80
        "258 b'\\x80\\x81' 2\n"      // bytes literal: raw bytes
        "259 '\\u00e9t\\u00e9' 5\n"  // été
        "260 'a b' 3\n"              // spaces inside: split at first and last space only
        "261 \"it's\" 4\n"
        "262 '\\\\' 1\n"
        "263 '\\'' 1\n"
        "264 '\\101\\0' 2\n"  // octal: 'A' and NUL
        "265 b'\\n\\t\\r' 3\n"
        "266 '\\U0001F600' 4\n"
        "267 '\xE4\xB8\xAD' 3\n"  // unescaped UTF-8 in the file
        "268 '  ' 2\n"
        "269 '\\q' 2\n"  // unknown escape kept verbatim, as Python does
        "270 '\\a\\b\\f\\v' 4\n";
    const auto p = dir.write("v.txt", byte_lines() + extra);
    rwkv::WorldTokenizer t(p);
    CHECK(t.token_bytes(257) == "\xC2\x80");
    CHECK(t.token_bytes(258) == "\x80\x81");
    CHECK(t.token_bytes(259) == "\xC3\xA9t\xC3\xA9");
    CHECK(t.token_bytes(260) == "a b");
    CHECK(t.token_bytes(261) == "it's");
    CHECK(t.token_bytes(262) == "\\");
    CHECK(t.token_bytes(263) == "'");
    CHECK(t.token_bytes(264) == std::string("A\0", 2));
    CHECK(t.token_bytes(265) == "\n\t\r");
    CHECK(t.token_bytes(266) == "\xF0\x9F\x98\x80");
    CHECK(t.token_bytes(267) == "\xE4\xB8\xAD");
    CHECK(t.token_bytes(268) == "  ");
    CHECK(t.token_bytes(269) == "\\q");
    CHECK(t.token_bytes(270) == "\a\b\f\v");
    CHECK(t.vocab_size() == 320);  // 271 rounded up to a multiple of 64
    CHECK(t.encode("a b\xC2\x80") == std::vector<token>{260, 257});
    CHECK(t.encode("\xE4\xB8\xAD\xE4\xB8") == std::vector<token>{267, 229, 185});

    // The same file with CRLF line endings (RWKV-LM's copy) loads identically.
    std::string crlf;
    for (char c : byte_lines() + extra) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    rwkv::WorldTokenizer t2(dir.write("crlf.txt", crlf));
    for (token id = 0; id <= 270; ++id) CHECK(t2.token_bytes(id) == t.token_bytes(id));

    // In-memory loading names the source in errors.
    auto m = rwkv::WorldTokenizer::from_text("1 'a' 1\n2 'ab' 2\n", "mem");
    CHECK(m.encode("aba") == std::vector<token>{2, 1});
    CHECK_THROWS_WITH(m.encode("abc"), Catch::Contains("0x63"));  // no token for 'c'
    CHECK_THROWS_AS(rwkv::WorldTokenizer::from_text("1 'a' 2\n", "mem"), rwkv::error);
    CHECK_THROWS_WITH(rwkv::WorldTokenizer::from_text("1 'a' 2\n", "mem"), Catch::StartsWith("mem:1:"));
}

TEST_CASE("World tokenizer: bad vocabulary files name the line", "[tokenizer]") {
    temp_dir dir("rwkv-tok-test");
    struct Case {
        const char* name;
        std::string line;
        const char* says;
    };
    const std::vector<Case> cases = {
        {"unterminated", "257 'ab 2", "quoted"},
        {"no_spaces", "257", "expected"},
        {"one_space", "257 'ab'", "expected"},
        {"bad_id", "25x 'ab' 2", "bad id"},
        {"bad_length", "257 'ab' two", "bad byte length"},
        {"wrong_length", "257 'ab' 3", "length column says 3 but the literal has 2 bytes"},
        {"x80_as_one_byte", "257 '\\x80' 1", "length column says 1 but the literal has 2"},
        {"duplicate", "256 'zz' 2", "duplicate id 256"},
        {"id_zero", "0 'ab' 2", "id 0"},
        {"bad_hex", "257 '\\xZZ' 1", "hex"},
        {"bytes_non_ascii", "257 b'\xC3\xA9' 2", "non-ASCII"},
        {"surrogate", "257 '\\ud800' 3", "surrogate"},
        {"inner_quote", "257 'a'b' 3", "quote"},
        {"empty_token", "257 '' 0", "empty"},
        {"blank_line", "", "expected"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        // Bad line at line 258 (after the 256 byte lines and one good line).
        const auto p =
            dir.write(std::string(c.name) + ".txt", byte_lines() + "300 'ok' 2\n" + c.line + "\n999 'end' 3\n");
        const std::string msg = error_message_of(p);
        CHECK_THAT(msg, Catch::Contains(p.string() + ":258:"));
        CHECK_THAT(msg, Catch::Contains(c.says));
        CHECK_THROWS_AS(rwkv::WorldTokenizer(p), rwkv::error);
    }
    const auto missing = dir.path / "no_such_vocab.txt";
    CHECK_THROWS_AS(rwkv::WorldTokenizer(missing), rwkv::error);
    CHECK_THAT(error_message_of(missing), Catch::Contains("no_such_vocab.txt"));
    CHECK_THAT(error_message_of(dir.write("empty.txt", "")), Catch::Contains("no tokens"));
}

TEST_CASE("Byte tokenizer", "[tokenizer]") {
    rwkv::ByteTokenizer t;
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    const auto ids = t.encode(all);
    REQUIRE(ids.size() == 256);
    for (int b = 0; b < 256; ++b) CHECK(ids[static_cast<std::size_t>(b)] == b);
    CHECK(t.decode(ids) == all);
    CHECK(t.vocab_size() == 256);
    CHECK(t.token_bytes(0x41) == "A");
    CHECK(t.token_bytes(0) == std::string_view("\0", 1));
    CHECK_THROWS_AS(t.decode(std::vector<token>{65, 256}), rwkv::error);
    CHECK_THROWS_WITH(t.token_bytes(-3), Catch::Contains("-3"));
    std::vector<token> out{1};
    t.encode("hi", out);
    CHECK(out == std::vector<token>{1, 'h', 'i'});
}
