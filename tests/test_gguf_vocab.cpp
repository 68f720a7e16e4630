// rwkv/io/gguf_vocab.hpp: the World tokenizer from a GGUF's tokenizer.ggml.* keys — escapes
// undone like llama.cpp, ids 0 / CONTROL / UNUSED left out — and the fixtures' vocabularies.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <rwkv/io/gguf_vocab.hpp>
#include <rwkv/tokenizer.hpp>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using test_support::error_of;
using test_support::gguf_builder;
using test_support::temp_dir;

TEST_CASE("gguf_unescape undoes repr(bytes)[2:-1] like llama.cpp", "[gguf_vocab]") {
    using rwkv::io::detail::gguf_unescape;
    CHECK(gguf_unescape("a\\nb") == "a\nb");
    CHECK(gguf_unescape("\\t\\r") == "\t\r");
    CHECK(gguf_unescape("\\xe4\\xbd\\xa0") == "\xe4\xbd\xa0");
    CHECK(gguf_unescape("\\\\") == "\\");
    CHECK(gguf_unescape("\\'") == "'");
    CHECK(gguf_unescape("end\\") == "end\\");
}

TEST_CASE("gguf_tokenizer: a hand-built vocabulary", "[gguf_vocab]") {
    gguf_builder g;
    g.rwkv6().add_string("tokenizer.ggml.model", "rwkv");
    g.add_strings("tokenizer.ggml.tokens", {"<s>", "a", "b", "ab", "\\n\\n", "\\xff", "[PAD6]"});
    g.add_i32s("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1, 5});
    temp_dir dir("rwkv-vocab");
    const auto tok = rwkv::io::gguf_tokenizer(dir.write("v.gguf", g.build()));
    CHECK(tok.encode("abba\n\n\xff") == std::vector<rwkv::token>{3, 2, 1, 4, 5});
    CHECK(tok.token_bytes(4) == "\n\n");
    CHECK_FALSE(tok.contains(6));  // UNUSED rows are not tokens
    CHECK(tok.token_bytes(0).empty());
}

TEST_CASE("gguf_tokenizer errors", "[gguf_vocab]") {
    temp_dir dir("rwkv-vocab");
    auto err = [&](const gguf_builder& g) {
        const auto p = dir.write("v.gguf", g.build());
        return error_of([&] { rwkv::io::gguf_tokenizer(p); });
    };
    gguf_builder none;
    none.rwkv6();
    CHECK_THAT(err(none), Catch::Contains("v.gguf") && Catch::Contains("no vocabulary"));
    gguf_builder gpt2;
    gpt2.rwkv6().add_string("tokenizer.ggml.model", "gpt2").add_strings("tokenizer.ggml.tokens", {"a"});
    CHECK_THAT(err(gpt2), Catch::Contains("'gpt2'") && Catch::Contains("only the RWKV World"));
    gguf_builder mismatch;
    mismatch.rwkv6().add_string("tokenizer.ggml.model", "rwkv").add_strings("tokenizer.ggml.tokens", {"<s>", "a"});
    mismatch.add_i32s("tokenizer.ggml.token_type", {3});
    CHECK_THAT(err(mismatch), Catch::Contains("token_type has 1 entries for 2 tokens"));
}

TEST_CASE("gguf_tokenizer: fixture vocabularies agree with the vocabulary file", "[gguf_vocab]") {
    RWKV_REQUIRE_FIXTURES();
    // Byte-level tiny model: GGUF token t is byte t.
    const auto tiny = rwkv::io::gguf_tokenizer(fixtures::dir() / "formats/gguf/tiny-rwkv-6v0-1m-Q4_0.gguf");
    CHECK(tiny.encode("hi\n") == std::vector<rwkv::token>{104, 105, 10});
    // The random model holds the first 999 lines of the World vocabulary: same bytes per id.
    const auto g = rwkv::io::gguf_tokenizer(fixtures::dir() / "formats/gguf/rand-x060-L2-D128-H64-V1000-F32.gguf");
    const rwkv::WorldTokenizer world(fixtures::dir() / "rwkv_vocab_v20230424.txt");
    for (rwkv::token id = 1; id < 1000; ++id) {
        INFO("id " << id);
        REQUIRE(g.token_bytes(id) == world.token_bytes(id));
    }
    CHECK(g.encode("\n\n") == world.encode("\n\n"));
}
