#pragma once
// PyTorch `.pth` checkpoints (torch.save, zip format; spec 8.1): memory-map the file, locate
// the zip records, run the pickle to learn names/dtypes/shapes, and point every tensor at its
// bytes inside the mapping. Nothing is copied.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rwkv/error.hpp"
#include "rwkv/io/mapped_file.hpp"
#include "rwkv/io/pickle.hpp"
#include "rwkv/io/tensor.hpp"
#include "rwkv/io/zip.hpp"

namespace rwkv::io {

// Tensor bytes are handed out exactly as stored (little-endian).
static_assert(std::endian::native == std::endian::little,
              "rwkv::io readers expose little-endian file bytes directly");

namespace detail {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.remove_suffix(1);
    return s;
}

}  // namespace detail

inline tensor_file load_pth(const std::filesystem::path& path) {
    auto file = std::make_shared<const mapped_file>(path);
    const std::string where = path.string();
    auto fail = [&](const std::string& what) { return rwkv::error(where + ": " + what); };
    const std::span<const std::byte> bytes = file->bytes();

    // Zip checkpoints start with a local file header; say plainly what anything else is.
    if (bytes.size() < 4 || bytes[0] != std::byte{'P'} || bytes[1] != std::byte{'K'} ||
        bytes[2] != std::byte{3} || bytes[3] != std::byte{4}) {
        std::string why =
            bytes.empty() ? " (empty file)"
            : bytes[0] == std::byte{0x80}
                ? " (legacy pre-1.6 pickle format; re-save it with a newer torch.save)"
                : "";
        throw fail("not a PyTorch zip checkpoint" + why);
    }
    const zip_archive zip = read_zip(bytes, where);

    // The record folder is named after the file at save time: find it, never assume it.
    const zip_entry* pkl = nullptr;
    for (const zip_entry& e : zip.entries) {
        const std::string_view n = e.name;
        constexpr std::string_view suffix = "/data.pkl";
        if (n.size() > suffix.size() && n.ends_with(suffix) &&
            n.substr(0, n.size() - suffix.size()).find('/') == std::string_view::npos) {
            if (pkl)
                throw fail("several '<archive>/data.pkl' records ('" + pkl->name + "', '" + e.name +
                           "')");
            pkl = &e;
        }
    }
    if (!pkl) throw fail("not a PyTorch zip checkpoint (no '<archive>/data.pkl' record)");
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // keeps the '/'

    if (const zip_entry* bo = zip.find(prefix + "byteorder")) {
        const std::string_view order = detail::trim(
            std::string_view(reinterpret_cast<const char*>(bo->data.data()), bo->data.size()));
        if (order == "big")
            throw fail("big-endian checkpoints are not supported ('" + bo->name + "')");
        if (order != "little")
            throw fail("record '" + bo->name + "' is neither 'little' nor 'big'");
    }

    const pickle::document doc = pickle::load(pkl->data, where + ": " + pkl->name);

    std::unordered_map<std::string_view, const zip_entry*> records;
    const std::string data_dir = prefix + "data/";
    for (const zip_entry& e : zip.entries)
        if (e.name.size() > data_dir.size() && e.name.starts_with(data_dir))
            records.emplace(std::string_view(e.name).substr(data_dir.size()), &e);

    if (doc.root.type != pickle::kind::dict)
        throw fail("top-level object in '" + pkl->name + "' is not a dict of tensors");

    tensor_file out;
    out.path = path;
    out.mappings.push_back(file);
    std::unordered_set<std::string> seen;
    for (const auto& [k, v] : doc.dict(doc.root).items) {
        if (k.type != pickle::kind::string) throw fail("top-level key is not a string");
        const std::string& name = doc.str(k);
        if (!seen.insert(name).second) throw fail("duplicate key '" + name + "'");
        if (v.type != pickle::kind::tensor) {
            out.other_keys.push_back(name);
            continue;
        }
        auto tfail = [&](const std::string& what) {
            return fail("tensor '" + name + "': " + what);
        };
        const pickle::tensor_ref& t = doc.tensor(v);
        const pickle::storage_ref& s = doc.storages[t.storage];

        std::int64_t numel = 1;
        for (std::int64_t d : t.shape) {
            if (d != 0 && numel > std::numeric_limits<std::int64_t>::max() / d)
                throw tfail("shape " + shape_string(t.shape) + " is too large");
            numel *= d;
        }
        // Row-major check; size-1 dimensions may carry any stride (PyTorch does the same).
        if (numel != 0) {
            std::int64_t expect = 1;
            for (std::size_t i = t.shape.size(); i-- > 0;) {
                if (t.shape[i] != 1 && t.stride[i] != expect)
                    throw tfail("not contiguous (shape " + shape_string(t.shape) +
                                ", stride " + shape_string(t.stride) + ")");
                expect *= t.shape[i];
            }
        }

        auto rec = records.find(s.key);
        if (rec == records.end())
            throw tfail("storage record '" + data_dir + s.key + "' is missing");
        const std::span<const std::byte> storage = rec->second->data;
        const std::uint64_t es = dtype_size(s.type);
        const std::uint64_t capacity = storage.size() / es;  // whole elements in the record
        const auto off = static_cast<std::uint64_t>(t.storage_offset);
        const auto n = static_cast<std::uint64_t>(numel);
        if (off > capacity || n > capacity - off)
            throw tfail("storage offset " + std::to_string(off) + " + " + std::to_string(n) +
                        " elements of " + std::string(rwkv::dtype_name(s.type)) + " exceed record '" +
                        rec->second->name + "' of " + std::to_string(storage.size()) + " bytes");

        tensor_view view;
        view.name = name;
        view.type = s.type;
        view.shape = t.shape;
        view.data =
            storage.subspan(static_cast<std::size_t>(off * es), static_cast<std::size_t>(n * es));
        out.tensors.push_back(std::move(view));
    }
    return out;
}

}  // namespace rwkv::io
