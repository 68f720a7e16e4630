#pragma once
// io::open(path): any supported checkpoint, the reader picked by the file's content (magic
// bytes), never by its extension; a folder is a Hugging Face folder. Every reader returns
// official tensor names and layouts (spec 3), so Model<T>::from_tensors takes any of them.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "../error.hpp"
#include "gguf.hpp"
#include "hf.hpp"
#include "pth.hpp"
#include "rwkvcpp.hpp"
#include "safetensors.hpp"
#include "tensor.hpp"

namespace rwkv::io {

enum class file_kind { pth, safetensors, safetensors_index, gguf, rwkvcpp, hf_folder, unknown };

// What `path` holds, from its first bytes (or: a folder → HF). Never throws for unknown content.
inline file_kind detect_kind(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) return file_kind::hf_folder;
    std::array<unsigned char, 16> h{};
    std::ifstream in(path, std::ios::binary);
    if (!in) return file_kind::unknown;
    in.read(reinterpret_cast<char*>(h.data()), h.size());
    const std::size_t n = static_cast<std::size_t>(in.gcount());
    if (n >= 4 && h[0] == 'P' && h[1] == 'K' && h[2] == 3 && h[3] == 4) return file_kind::pth;
    if (n >= 4 && h[0] == 'G' && h[1] == 'G' && h[2] == 'U' && h[3] == 'F') return file_kind::gguf;
    if (n >= 4 && h[0] == 0x66 && h[1] == 0x6d && h[2] == 0x67 && h[3] == 0x67) return file_kind::rwkvcpp;
    // safetensors: u64 header length, then the JSON header's '{'.
    if (n >= 9 && h[8] == '{' && h[7] == 0 && h[6] == 0) return file_kind::safetensors;
    // A shard index (JSON text starting with '{'), e.g. model.safetensors.index.json.
    std::size_t i = 0;
    while (i < n && (h[i] == ' ' || h[i] == '\n' || h[i] == '\r' || h[i] == '\t')) ++i;
    if (i < n && h[i] == '{') return file_kind::safetensors_index;
    return file_kind::unknown;
}

// Opens any supported checkpoint: PyTorch .pth, safetensors (single file with official or HF
// names, or a shard index .json), GGUF (rwkv6, rwkv5), rwkv.cpp .bin, or a Hugging Face folder.
// Throws rwkv::error naming the file; for content no reader recognises the message lists what
// is supported.
inline tensor_file open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw rwkv::error(path.string() + ": no such file or folder");
    switch (detect_kind(path)) {
        case file_kind::hf_folder: return load_hf(path);
        case file_kind::pth: {
            tensor_file f = load_pth(path);
            if (f.format.empty()) f.format = "PyTorch .pth";
            if (has_hf_names(f)) rename_hf_to_official(f);
            return f;
        }
        case file_kind::gguf: return load_gguf(path);
        case file_kind::rwkvcpp: return load_rwkvcpp(path);
        case file_kind::safetensors: {
            tensor_file f = load_safetensors(path);
            if (has_hf_names(f)) rename_hf_to_official(f);
            return f;
        }
        case file_kind::safetensors_index: {
            tensor_file f = load_safetensors_index(path);
            if (has_hf_names(f)) rename_hf_to_official(f);
            return f;
        }
        case file_kind::unknown: break;
    }
    throw rwkv::error(path.string() +
                      ": unrecognised file content; supported: PyTorch .pth (zip), safetensors (or its "
                      "model.safetensors.index.json), GGUF v2/v3 (rwkv6, rwkv5), rwkv.cpp .bin (v100/v101), or a "
                      "Hugging Face folder");
}

}  // namespace rwkv::io
