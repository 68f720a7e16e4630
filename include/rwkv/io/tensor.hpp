#pragma once
// The format-neutral result of every checkpoint reader: named, typed, shaped byte spans that
// point straight into a memory-mapped file (zero copies; see DESIGN.md "maps over foreign memory").

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../weights/format.hpp"

namespace rwkv::io {

// Element types a checkpoint can store: rwkv::dtype (weights/format.hpp). Weight formats
// (f32, f16, bf16, ...) come from weights/list.hpp; the others exist so that a reader can
// describe (and a loader can refuse by name) whatever a file holds.
using rwkv::dtype;

// Bytes per element of a scalar type (1-value blocks); block formats use dtype_bytes().
inline std::size_t dtype_size(dtype t) { return static_cast<std::size_t>(dtype_block_bytes(t)); }

// "[2, 3, 4]": shapes in error messages.
inline std::string shape_string(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

struct tensor_view {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;  // empty = scalar
    // Contiguous C-order little-endian bytes, exactly dtype_bytes(type, numel()), inside one of
    // the owning tensor_file's mappings. Alignment is whatever the file gives (PyTorch pads to
    // 64 bytes, others may not): read through memcpy or check alignment before casting.
    std::span<const std::byte> data;
    // For tensors built in memory (Model<T>::random), inflated from a compressed entry, or
    // converted/gathered by a reader: the buffer behind `data`, so that a weight used in place can
    // keep just its own buffer alive. Empty for tensors used in place in a file mapping.
    std::shared_ptr<const void> owner;

    std::int64_t numel() const {
        std::int64_t n = 1;
        for (std::int64_t d : shape) n *= d;  // readers validated the product against the file
        return n;
    }
};

class mapped_file;

struct tensor_file {
    std::filesystem::path path;
    // Keep-alive for the `data` spans: copies of a tensor_file share the mappings.
    std::vector<std::shared_ptr<const mapped_file>> mappings;
    std::vector<tensor_view> tensors;  // in file order
    // Top-level keys whose value is not a tensor (e.g. ChatRWKV's `_strategy`, `_version`),
    // kept so that a model loader can refuse such files by name.
    std::vector<std::string> other_keys;
    // What the file was ("PyTorch .pth", "safetensors", "GGUF v3", "rwkv.cpp .bin v101", ...) and
    // the reader's notes about it (format metadata, transforms undone, vocabulary source), for
    // tools like rwkv-info. Informational only: nothing downstream depends on them.
    std::string format;
    std::vector<std::pair<std::string, std::string>> metadata;
    // What the reader did beyond reading (converted dtypes, gathered strides, stripped wrapper
    // prefixes, a nested 'state_dict' used): one sentence each, for programs to show the user.
    std::vector<std::string> notes;

    const tensor_view* find(std::string_view name) const {
        for (const tensor_view& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }

    const tensor_view& at(std::string_view name) const {
        if (const tensor_view* t = find(name)) return *t;
        throw rwkv::error(path.string() + ": missing tensor '" + std::string(name) + "'");
    }
};

}  // namespace rwkv::io
