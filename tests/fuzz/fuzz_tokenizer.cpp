// World tokenizer round trip: decode(encode(bytes)) == bytes for any bytes (spec 6.2: every
// single byte is a token), with the real vocabulary when the fixtures are present and a small
// built-in one otherwise. Also decodes the input read as ids.
#include <rwkv/tokenizer.hpp>

#include <cstring>
#include <filesystem>
#include <memory>

#include "fuzz_support.hpp"

namespace {

const rwkv::WorldTokenizer& tokenizer() {
    static const std::unique_ptr<rwkv::WorldTokenizer> tok = [] {
        const std::filesystem::path world = std::filesystem::path(RWKV_FIXTURES_DIR) / "rwkv_vocab_v20230424.txt";
        if (std::filesystem::exists(world)) return std::make_unique<rwkv::WorldTokenizer>(world);
        // Fallback: all 256 bytes (ids 1..256, as in the World vocabulary) plus a few merges.
        std::string v;
        for (int b = 0; b < 256; ++b) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", b);
            v += std::to_string(b + 1) + " b'" + hex + "' 1\n";
        }
        v += "257 'the' 3\n258 ' the' 4\n259 '\\u4e2d' 3\n260 '\\n\\n' 2\n";
        return std::make_unique<rwkv::WorldTokenizer>(rwkv::WorldTokenizer::from_text(v, "fallback"));
    }();
    return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)tokenizer();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const rwkv::WorldTokenizer& tok = tokenizer();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::vector<rwkv::token> ids = tok.encode(text);
    if (ids.size() > size) fuzz::finding("tokenizer: more tokens than bytes");
    for (rwkv::token id : ids)
        if (!tok.contains(id)) fuzz::finding("tokenizer: encode produced undefined id " + std::to_string(id));
    if (tok.decode(ids) != text) fuzz::finding("tokenizer: decode(encode(x)) != x");
    // The same bytes as little-endian u16 ids: unknown ids must throw, known ones decode.
    std::vector<rwkv::token> raw(size / 2);
    for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = data[2 * i] | (data[2 * i + 1] << 8);
    try {
        std::string out = tok.decode(raw);
        std::size_t expect = 0;
        for (rwkv::token id : raw) expect += tok.token_bytes(id).size();
        if (out.size() != expect) fuzz::finding("tokenizer: decode length differs from token_bytes");
    } catch (const rwkv::error&) {
        bool any_bad = false;
        for (rwkv::token id : raw) any_bad |= !tok.contains(id);
        if (!any_bad) fuzz::finding("tokenizer: decode threw on valid ids");
    }
    return 0;
}
