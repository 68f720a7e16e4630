#pragma once
// Hugging Face RWKV-5/6 folders (spec 8.2): `config.json` plus weights as `model.safetensors`,
// sharded safetensors with `model.safetensors.index.json`, or `pytorch_model.bin` (the .pth
// container, possibly sharded with `pytorch_model.bin.index.json`). HF's names are a pure
// renaming of the official ones (no shape or value change), undone here.

#include <cctype>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "json.hpp"
#include "mapped_file.hpp"
#include "pth.hpp"
#include "safetensors.hpp"
#include "tensor.hpp"

namespace rwkv::io {

// The official name of a Hugging Face RWKV-5/6 tensor name (spec 8.2, formats/README.md):
// drop `rwkv.`, `embeddings.` → `emb.`, `blocks.0.pre_ln` → `blocks.0.ln0`, `attention` →
// `att`, `feed_forward` → `ffn`, and x052's `time_mix_key/value/receptance/gate` → `_k/_v/_r/_g`.
// Names that are not HF names come back unchanged.
inline std::string hf_to_official_name(std::string_view hf) {
    std::string s(hf);
    if (s.rfind("rwkv.", 0) == 0) s.erase(0, 5);
    if (s.rfind("embeddings.", 0) == 0) return "emb." + s.substr(11);
    if (s.rfind("blocks.", 0) != 0) return s;
    // blocks.<i>.<part>.<rest>
    const std::size_t a = s.find('.', 7);
    if (a == std::string::npos) return s;
    std::string head = s.substr(0, a + 1), rest = s.substr(a + 1);
    const std::size_t b = rest.find('.');
    std::string part = rest.substr(0, b), tail = b == std::string::npos ? "" : rest.substr(b);
    if (part == "pre_ln") part = "ln0";
    else if (part == "attention") part = "att";
    else if (part == "feed_forward") part = "ffn";
    if (part == "att" || part == "ffn") {
        static const std::pair<std::string_view, std::string_view> mix[] = {{".time_mix_key", ".time_mix_k"},
                                                                            {".time_mix_value", ".time_mix_v"},
                                                                            {".time_mix_receptance", ".time_mix_r"},
                                                                            {".time_mix_gate", ".time_mix_g"}};
        for (const auto& [from, to] : mix)
            if (tail == from) tail = to;
    }
    return head + part + tail;
}

// True when the tensors carry HF names (every HF RWKV checkpoint prefixes `rwkv.`).
inline bool has_hf_names(const tensor_file& f) {
    for (const tensor_view& t : f.tensors)
        if (t.name.rfind("rwkv.", 0) == 0) return true;
    return false;
}

// Renames HF tensors to official names in place; throws if two names collide.
inline void rename_hf_to_official(tensor_file& f) {
    std::set<std::string> seen;
    for (tensor_view& t : f.tensors) {
        std::string n = hf_to_official_name(t.name);
        if (!seen.insert(n).second)
            throw rwkv::error(f.path.string() + ": tensors '" + t.name +
                              "' and another map to the same official name '" + n + "'");
        t.name = std::move(n);
    }
    f.metadata.emplace_back("names", "Hugging Face names mapped to official ones");
}

// A Hugging Face folder (spec 8.2). Throws rwkv::error when the folder holds none of the known
// weight files (naming what was looked for), when config.json is unreadable or names another
// model type, or from the underlying readers.
inline tensor_file load_hf(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    const std::string where = dir.string();
    if (!fs::is_directory(dir)) throw rwkv::error(where + ": not a folder");
    std::vector<std::pair<std::string, std::string>> notes;
    const fs::path config = dir / "config.json";
    if (fs::exists(config)) {
        auto cf = std::make_shared<const mapped_file>(config);
        const auto b = cf->bytes();
        const auto j =
            detail::parse_json(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), config.string());
        detail::with_json_errors(config.string(), [&] {
            if (!j.is_object()) throw rwkv::error(config.string() + ": not a JSON object");
            if (j.contains("model_type") && j["model_type"].is_string()) {
                const std::string mt = j["model_type"].get<std::string>();
                if (mt != "rwkv5" && mt != "rwkv6" && mt != "rwkv")
                    throw rwkv::error(config.string() + ": model_type '" + mt +
                                      "' is not supported; this library reads RWKV-5/6 ('rwkv5', 'rwkv6')");
                notes.emplace_back("model_type", mt);
            }
            if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                j["architectures"][0].is_string())
                notes.emplace_back("architectures", j["architectures"][0].get<std::string>());
        });
    }
    tensor_file f;
    if (fs::exists(dir / "model.safetensors.index.json")) {
        f = load_safetensors_index(dir / "model.safetensors.index.json");
    } else if (fs::exists(dir / "model.safetensors")) {
        f = load_safetensors(dir / "model.safetensors");
    } else if (fs::exists(dir / "pytorch_model.bin.index.json")) {
        f = detail::load_sharded(dir / "pytorch_model.bin.index.json",
                                 [](const fs::path& p, const std::set<std::string>&) { return load_pth(p); });
        f.format = "PyTorch .bin (sharded)";
    } else if (fs::exists(dir / "pytorch_model.bin")) {
        f = load_pth(dir / "pytorch_model.bin");
        f.format = "PyTorch .bin";
    } else {
        throw rwkv::error(where +
                          ": no weights found; a Hugging Face folder holds model.safetensors, "
                          "model.safetensors.index.json (+ shards), pytorch_model.bin or pytorch_model.bin.index.json");
    }
    f.path = dir;
    f.format = "Hugging Face folder (" + f.format + ")";
    for (auto& n : notes) f.metadata.push_back(std::move(n));
    if (has_hf_names(f)) rename_hf_to_official(f);
    return f;
}

}  // namespace rwkv::io
