// Zip central-directory reader (rwkv::io::read_zip): any bytes either give entries whose spans
// lie inside the input (or inside an owned inflated buffer) or an rwkv::error.
#include <rwkv/io/zip.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const rwkv::io::zip_archive z = rwkv::io::read_zip(fuzz::bytes_of(data, size), "fuzz.zip");
        unsigned sum = 0;
        for (const auto& e : z.entries) {
            sum += fuzz::touch(e.data);
            (void)z.find(e.name);
        }
        (void)sum;
    } catch (const rwkv::error&) {}
    return 0;
}
