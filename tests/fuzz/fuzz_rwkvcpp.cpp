// Fuzz target: rwkv.cpp `.bin` headers, tensor records and the official-layout transforms.
// Any input must either load or throw rwkv::error — never crash or read past the mapping.

#include <rwkv/io/rwkvcpp.hpp>

#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = rwkv_fuzz::write_input("rwkvcpp", data, size);
    try {
        (void)rwkv::io::load_rwkvcpp(path);
    } catch (const rwkv::error&) {}
    return 0;
}
