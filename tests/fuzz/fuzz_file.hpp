#pragma once
// Shared by the reader fuzz targets: the readers take paths (they memory-map), so each input
// is written to one scratch file per process and read back through the reader under test.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace rwkv_fuzz {

inline std::filesystem::path write_input(const char* name, const std::uint8_t* data, std::size_t size) {
    static const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("rwkv-fuzz-" + std::string(name) + "-" + std::to_string(::getpid()));
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) __builtin_trap();
    if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
    std::fclose(f);
    return path;
}

}  // namespace rwkv_fuzz
