// Fuzz target: safetensors headers (JSON through nlohmann/json) and their offsets and sizes.
// Any input must either load or throw rwkv::error — never crash or read past the mapping.

#include <rwkv/io/hf.hpp>
#include <rwkv/io/safetensors.hpp>

#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = rwkv_fuzz::write_input("safetensors", data, size);
    try {
        auto f = rwkv::io::load_safetensors(path);
        if (rwkv::io::has_hf_names(f)) rwkv::io::rename_hf_to_official(f);
    } catch (const rwkv::error&) {}
    return 0;
}
