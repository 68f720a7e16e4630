#pragma once
// Shared by the reader fuzz targets: the readers take paths (they memory-map), so each input
// is written to one scratch file per process and read back through the reader under test.
//
// The scratch file lives alone in a private folder made for this process (mkdtemp), not in the
// shared temp folder: an input may name other files relative to itself (a safetensors shard
// index names its shards), and in the shared folder those names could reach whatever else is
// there: other fuzzers' scratch files being rewritten at that moment (a mapping of a file that
// another process truncates faults with SIGBUS), test outputs, FIFOs. Results must depend on the
// input alone, or a campaign's findings cannot be replayed.

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

namespace rwkv_fuzz {

// The private folder (created on first use, removed with its contents at exit).
struct scratch_dir {
    std::filesystem::path path;
    explicit scratch_dir(const char* name) {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / ("rwkv-fuzz-" + std::string(name) + "-XXXXXX")).string();
        if (::mkdtemp(tmpl.data()) == nullptr) __builtin_trap();
        path = tmpl;
    }
    ~scratch_dir() {
        std::error_code ec;  // best effort
        std::filesystem::remove_all(path, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
};

// Writes the input to `<private folder>/input` and returns that path.
inline std::filesystem::path write_input(const char* name, const std::uint8_t* data, std::size_t size) {
    static const scratch_dir dir(name);
    static const std::filesystem::path path = dir.path / "input";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) __builtin_trap();
    if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
    std::fclose(f);
    return path;
}

}  // namespace rwkv_fuzz
