#pragma once
// safetensors (spec 8.2): `u64 n`, n bytes of JSON header, then the raw little-endian data.
// A single file, or a sharded set described by `*.index.json` (transformers' `weight_map`).
// Tensors are zero-copy spans into the mapped files; every offset, size and dtype is checked
// against the file before anything is handed out. Names are kept as stored (hf.hpp maps
// Hugging Face names to official ones).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "bytes.hpp"
#include "json.hpp"
#include "mapped_file.hpp"
#include "tensor.hpp"
#include "transform.hpp"

namespace rwkv::io {

namespace detail {

// safetensors dtype names this library can represent; the rest (U16, U32, U64, F8_*) are
// refused by name.
inline bool safetensors_dtype(std::string_view s, dtype& out) {
    static const std::pair<std::string_view, dtype> table[] = {
        {"F32", dtype::f32}, {"F16", dtype::f16}, {"BF16", dtype::bf16}, {"F64", dtype::f64}, {"I64", dtype::i64},
        {"I32", dtype::i32}, {"I16", dtype::i16}, {"I8", dtype::i8},     {"U8", dtype::u8},   {"BOOL", dtype::boolean}};
    for (const auto& [name, t] : table)
        if (s == name) {
            out = t;
            return true;
        }
    return false;
}

// Appends the tensors of one safetensors file to `out` (all of them, or those in `only`).
inline void append_safetensors(tensor_file& out, const std::filesystem::path& path,
                               const std::set<std::string>* only = nullptr) {
    auto file = std::make_shared<const mapped_file>(path);
    const std::string where = path.string();
    auto fail = [&](const std::string& what) { return rwkv::error(where + ": " + what); };
    const std::span<const std::byte> bytes = file->bytes();
    if (bytes.size() < 8)
        throw fail("not a safetensors file (" + std::to_string(bytes.size()) + " bytes, header length needs 8)");
    const std::uint64_t n = load_le<std::uint64_t>(bytes.data());
    if (n > bytes.size() - 8)
        throw fail("truncated or not a safetensors file: header length " + std::to_string(n) + " but only " +
                   std::to_string(bytes.size() - 8) + " bytes follow");
    const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(n));
    if (header.empty() || header.front() != '{') throw fail("not a safetensors file (header is not a JSON object)");
    const nlohmann::json j = parse_json(header, where + " (header)");
    if (!j.is_object()) throw fail("safetensors header is not a JSON object");
    const std::span<const std::byte> data = bytes.subspan(8 + static_cast<std::size_t>(n));

    struct extent {
        std::uint64_t begin, end;
        std::string name;
    };
    std::vector<extent> extents;
    with_json_errors(where, [&] {
        for (const auto& item : j.items()) {
            // Plain names, not a structured binding: clang 14 cannot capture bindings in the lambda below.
            const std::string& name = item.key();
            const nlohmann::json& v = item.value();
            if (name == "__metadata__") {
                if (!v.is_object()) throw fail("'__metadata__' is not an object");
                for (const auto& [k, m] : v.items())
                    if (m.is_string()) out.metadata.emplace_back(k, m.get<std::string>());
                continue;
            }
            auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
            if (!v.is_object()) throw bad("entry is not an object");
            if (!v.contains("dtype") || !v["dtype"].is_string()) throw bad("missing 'dtype'");
            if (!v.contains("shape") || !v["shape"].is_array()) throw bad("missing 'shape'");
            if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
                throw bad("missing 'data_offsets' [begin, end]");
            const std::string ds = v["dtype"].get<std::string>();
            dtype t{};
            if (!safetensors_dtype(ds, t))
                throw fail("tensor '" + name + "' is " + ds + "; supported: " + weight_format_names());
            std::vector<std::int64_t> shape;
            for (const auto& d : v["shape"]) {
                if (!d.is_number_unsigned()) throw bad("shape entries must be non-negative integers");
                const std::uint64_t u = d.get<std::uint64_t>();
                if (u > (std::uint64_t{1} << 48)) throw bad("impossible dimension " + std::to_string(u));
                shape.push_back(static_cast<std::int64_t>(u));
            }
            const auto& off = v["data_offsets"];
            if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                throw bad("data_offsets must be non-negative integers");
            const std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
            const std::size_t size = tensor_bytes(t, shape, where, name);
            if (begin > end || end > data.size())
                throw bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] lie outside the " +
                          std::to_string(data.size()) + "-byte data section (truncated file?)");
            if (end - begin != size)
                throw bad(std::to_string(end - begin) + " bytes stored, but " + ds + " " + dims_string(shape) +
                          " needs " + std::to_string(size));
            extents.push_back({begin, end, name});
            if (only && !only->count(name)) continue;
            tensor_view tv;
            tv.name = name;
            tv.type = t;
            tv.shape = std::move(shape);
            tv.data = data.subspan(static_cast<std::size_t>(begin), size);
            out.tensors.push_back(std::move(tv));
        }
    });
    std::sort(extents.begin(), extents.end(), [](const extent& a, const extent& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < extents.size(); ++i)
        if (extents[i].begin < extents[i - 1].end)
            throw fail("tensors '" + extents[i - 1].name + "' and '" + extents[i].name + "' overlap");
    out.mappings.push_back(std::move(file));
}

// A transformers shard index (`{"weight_map": {tensor: file}}`): the shards in order of first
// mention and the tensors each holds. Shard names must stay inside the index's folder.
struct shard_index {
    std::vector<std::string> order;
    std::map<std::string, std::set<std::string>> by_shard;
};

inline shard_index read_shard_index(const std::filesystem::path& index) {
    const std::string where = index.string();
    auto file = std::make_shared<const mapped_file>(index);
    const auto b = file->bytes();
    const nlohmann::json j = parse_json(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), where);
    shard_index out;
    with_json_errors(where, [&] {
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw rwkv::error(where + ": not a shard index (no 'weight_map' object)");
        for (const auto& item : j["weight_map"].items()) {
            const std::string& name = item.key();
            const nlohmann::json& v = item.value();
            if (!v.is_string()) throw rwkv::error(where + ": weight_map entry '" + name + "' is not a file name");
            const std::string shard = v.get<std::string>();
            const std::filesystem::path sp(shard);
            if (shard.empty() || sp.is_absolute() ||
                std::any_of(sp.begin(), sp.end(), [](const std::filesystem::path& c) { return c == ".."; }))
                throw rwkv::error(where + ": weight_map entry '" + name + "' names shard '" + shard +
                                  "' outside the folder");
            if (!out.by_shard.count(shard)) out.order.push_back(shard);
            out.by_shard[shard].insert(name);
        }
    });
    return out;
}

// Loads every shard of an index through `load_one(path, names)`; a missing shard or a tensor
// absent from its shard is an error naming both.
template <class LoadOne>
tensor_file load_sharded(const std::filesystem::path& index, LoadOne&& load_one) {
    const std::string where = index.string();
    auto [order, by_shard] = read_shard_index(index);
    if (order.empty()) throw rwkv::error(where + ": empty weight_map");
    tensor_file out;
    out.path = index.parent_path();
    for (const std::string& shard : order) {
        const std::filesystem::path sp = index.parent_path() / shard;
        const std::set<std::string>& names = by_shard[shard];
        if (!std::filesystem::exists(sp))
            throw rwkv::error(where + ": missing shard '" + shard + "' (holds " + std::to_string(names.size()) +
                              " tensors, e.g. '" + *names.begin() + "')");
        tensor_file part = load_one(sp, names);
        for (const std::string& n : names)
            if (!part.find(n))
                throw rwkv::error(sp.string() + ": tensor '" + n + "' listed in " + where + " is missing");
        for (auto& t : part.tensors)
            if (names.count(t.name)) out.tensors.push_back(std::move(t));
        for (auto& m : part.mappings) out.mappings.push_back(std::move(m));
        for (auto& m : part.metadata) out.metadata.push_back(std::move(m));
        for (auto& k : part.other_keys) out.other_keys.push_back(std::move(k));
    }
    return out;
}

}  // namespace detail

// One safetensors file; names as stored. Throws rwkv::error naming the file on any
// inconsistency (truncation, offsets outside the data, sizes that disagree with dtype and
// shape, overlapping tensors, unsupported dtypes such as F8_E4M3 or U16).
inline tensor_file load_safetensors(const std::filesystem::path& path) {
    tensor_file out;
    out.path = path;
    out.format = "safetensors";
    detail::append_safetensors(out, path);
    return out;
}

// A sharded safetensors checkpoint given by its `model.safetensors.index.json`; names as stored.
// Throws when a shard is missing or does not hold the tensors the index assigns to it.
inline tensor_file load_safetensors_index(const std::filesystem::path& index) {
    tensor_file out =
        detail::load_sharded(index, [](const std::filesystem::path& p, const std::set<std::string>& names) {
            tensor_file f;
            f.path = p;
            detail::append_safetensors(f, p, &names);
            return f;
        });
    out.format = "safetensors (sharded)";
    return out;
}

}  // namespace rwkv::io
