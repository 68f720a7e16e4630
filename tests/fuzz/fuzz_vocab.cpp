// World vocabulary parser (WorldTokenizer::from_text): any text gives a tokenizer that encodes
// and decodes without reading out of bounds, or an rwkv::error.
#include <rwkv/tokenizer.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const rwkv::WorldTokenizer tok = rwkv::WorldTokenizer::from_text(text, "fuzz-vocab");
        // Every id the vocabulary defines decodes; what it encodes decodes back exactly.
        for (rwkv::token id = 0; id <= std::min<rwkv::token>(tok.max_token_id(), 1 << 16); ++id)
            if (tok.contains(id)) (void)tok.token_bytes(id);
        const std::string_view sample = text.substr(0, std::min<std::size_t>(text.size(), 256));
        try {
            const std::vector<rwkv::token> ids = tok.encode(sample);
            if (tok.decode(ids) != sample) fuzz::finding("vocab: encode/decode round trip differs");
        } catch (const rwkv::error&) {
            // A vocabulary without every single byte cannot encode everything: a clean refusal.
        }
    } catch (const rwkv::error&) {}
    return 0;
}
