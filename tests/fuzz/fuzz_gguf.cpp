// Fuzz target: GGUF parsing, the rwkv6 / rwkv5 → official transforms and the embedded vocabulary.
// Any input must either load or throw rwkv::error — never crash or read past the mapping.

#include <rwkv/io/gguf.hpp>
#include <rwkv/io/gguf_vocab.hpp>

#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = rwkv_fuzz::write_input("gguf", data, size);
    try {
        const auto g = rwkv::io::read_gguf(path);
        try {
            (void)rwkv::io::gguf_tokenizer(g);
        } catch (const rwkv::error&) {}
        (void)rwkv::io::load_gguf(path);
    } catch (const rwkv::error&) {}
    return 0;
}
