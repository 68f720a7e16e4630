// Fuzz target: io::open's content detection and whichever reader it picks (.pth, safetensors,
// GGUF, rwkv.cpp). Any input must either load or throw rwkv::error.

#include <rwkv/io/open.hpp>

#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = rwkv_fuzz::write_input("open", data, size);
    try {
        (void)rwkv::io::open(path);
    } catch (const rwkv::error&) {}
    return 0;
}
