#pragma once
// PyTorch `.pth` checkpoints (torch.save, zip format; spec 8.1): memory-map the file, locate
// the zip records, run the pickle to learn names/dtypes/shapes, and point every tensor at its
// bytes inside the mapping. Nothing is copied for what torch.save writes from a plain model;
// the other files PyTorch loads are accepted with a copy and a note in tensor_file::notes:
// deflate-compressed entries (inflated, see zip.hpp), float64 tensors (converted to float32 here,
// at read), non-contiguous tensors (gathered into a contiguous copy), a training checkpoint
// {'state_dict': ...} (its state dict is used) and wrapper-prefixed names (io/prefix.hpp).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../error.hpp"
#include "mapped_file.hpp"
#include "pickle.hpp"
#include "prefix.hpp"
#include "tensor.hpp"
#include "zip.hpp"

namespace rwkv::io {

// Tensor bytes are handed out exactly as stored (little-endian).
static_assert(std::endian::native == std::endian::little, "rwkv::io readers expose little-endian file bytes directly");

namespace detail {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
    return s;
}

// Copies the strided view (shape, stride, in elements of `es` bytes, starting at `base`) into a
// contiguous C-order buffer. The caller checked that every index it reaches lies in `base`.
inline std::vector<std::byte> gather_strided(const std::byte* base, const std::vector<std::int64_t>& shape,
                                             const std::vector<std::int64_t>& stride, std::size_t es,
                                             std::uint64_t numel) {
    std::vector<std::byte> out(static_cast<std::size_t>(numel) * es);
    if (numel == 0) return out;
    std::vector<std::int64_t> idx(shape.size(), 0);
    for (std::uint64_t i = 0; i < numel; ++i) {
        std::int64_t at = 0;
        for (std::size_t d = 0; d < shape.size(); ++d) at += idx[d] * stride[d];
        std::memcpy(out.data() + i * es, base + static_cast<std::size_t>(at) * es, es);
        for (std::size_t d = shape.size(); d-- > 0;) {  // odometer, last dimension fastest
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

// float64 -> float32 as torch's .float() does (round to nearest; beyond the float range: +-inf).
inline std::vector<std::byte> f64_to_f32(std::span<const std::byte> in) {
    const std::size_t n = in.size() / 8;
    std::vector<std::byte> out(n * 4);
    for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, in.data() + 8 * i, 8);
        // Converting an out-of-range finite double is undefined behaviour: saturate to inf first.
        const float f = std::isfinite(d) && std::abs(d) > static_cast<double>(std::numeric_limits<float>::max())
                            ? std::copysign(std::numeric_limits<float>::infinity(), static_cast<float>(d > 0 ? 1 : -1))
                            : static_cast<float>(d);
        std::memcpy(out.data() + 4 * i, &f, 4);
    }
    return out;
}

}  // namespace detail

inline tensor_file load_pth(const std::filesystem::path& path) {
    auto file = std::make_shared<const mapped_file>(path);
    const std::string where = path.string();
    auto fail = [&](const std::string& what) { return rwkv::error(where + ": " + what); };
    const std::span<const std::byte> bytes = file->bytes();

    // Zip checkpoints start with a local file header; say plainly what anything else is.
    if (bytes.size() < 4 || bytes[0] != std::byte{'P'} || bytes[1] != std::byte{'K'} || bytes[2] != std::byte{3} ||
        bytes[3] != std::byte{4}) {
        std::string why = bytes.empty() ? " (empty file)"
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
            if (pkl) throw fail("several '<archive>/data.pkl' records ('" + pkl->name + "', '" + e.name + "')");
            pkl = &e;
        }
    }
    if (!pkl) throw fail("not a PyTorch zip checkpoint (no '<archive>/data.pkl' record)");
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // keeps the '/'

    if (const zip_entry* bo = zip.find(prefix + "byteorder")) {
        const std::string_view order =
            detail::trim(std::string_view(reinterpret_cast<const char*>(bo->data.data()), bo->data.size()));
        if (order == "big") throw fail("big-endian checkpoints are not supported ('" + bo->name + "')");
        if (order != "little") throw fail("record '" + bo->name + "' is neither 'little' nor 'big'");
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

    // A training checkpoint ({'epoch': .., 'state_dict': {...}, 'optimizer_states': ..}, or
    // DeepSpeed's {'module': {...}, ..}) holds no tensors at the top: use its state dict.
    pickle::value root = doc.root;
    {
        bool top_tensors = false;
        const pickle::value* nested = nullptr;
        std::string nested_key;
        for (const auto& [k, v] : doc.dict(root).items) {
            top_tensors |= v.type == pickle::kind::tensor;
            if (k.type == pickle::kind::string && v.type == pickle::kind::dict && !nested &&
                (doc.str(k) == "state_dict" || doc.str(k) == "module")) {
                nested = &v;
                nested_key = doc.str(k);
            }
        }
        if (!top_tensors && nested) {
            root = *nested;
            out.notes.push_back("using the '" + nested_key +
                                "' entry of a training checkpoint (its other keys are ignored)");
        }
    }

    std::size_t n_converted = 0, n_gathered = 0;
    std::string first_converted, first_gathered;
    std::unordered_set<std::string> seen;
    for (const auto& [k, v] : doc.dict(root).items) {
        if (k.type != pickle::kind::string) throw fail("top-level key is not a string");
        const std::string& name = doc.str(k);
        if (!seen.insert(name).second) throw fail("duplicate key '" + name + "'");
        if (v.type != pickle::kind::tensor) {
            out.other_keys.push_back(name);
            continue;
        }
        auto tfail = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
        const pickle::tensor_ref& t = doc.tensor(v);
        const pickle::storage_ref& s = doc.storages[t.storage];

        std::int64_t numel = 1;
        for (std::int64_t d : t.shape) {
            if (d != 0 && numel > std::numeric_limits<std::int64_t>::max() / d)
                throw tfail("shape " + shape_string(t.shape) + " is too large");
            numel *= d;
        }
        // Row-major check; size-1 dimensions may carry any stride (PyTorch does the same).
        bool contiguous = true;
        if (numel != 0) {
            std::int64_t expect = 1;
            for (std::size_t i = t.shape.size(); i-- > 0;) {
                if (t.stride[i] < 0) throw tfail("negative stride " + shape_string(t.stride) + " is not supported");
                if (t.shape[i] != 1 && t.stride[i] != expect) contiguous = false;
                expect *= t.shape[i];
            }
        }

        auto rec = records.find(s.key);
        if (rec == records.end()) throw tfail("storage record '" + data_dir + s.key + "' is missing");
        const std::span<const std::byte> storage = rec->second->data;
        const std::uint64_t es = dtype_size(s.type);
        const std::uint64_t capacity = storage.size() / es;  // whole elements in the record
        const auto off = static_cast<std::uint64_t>(t.storage_offset);
        const auto n = static_cast<std::uint64_t>(numel);
        auto exceed = [&](std::uint64_t count) {
            return tfail("storage offset " + std::to_string(off) + " + " + std::to_string(count) + " elements of " +
                         std::string(rwkv::dtype_name(s.type)) + " exceed record '" + rec->second->name + "' of " +
                         std::to_string(storage.size()) + " bytes");
        };
        if (off > capacity || n > capacity - off) {
            // A view may not span more elements than its storage holds past the offset: that also
            // refuses broadcast (stride 0) views, whose copy could be arbitrarily large.
            if (contiguous || off > capacity) throw exceed(n);
            throw tfail("shape " + shape_string(t.shape) + " with stride " + shape_string(t.stride) +
                        " overlaps itself (more elements than its storage holds); broadcast views are not supported");
        }

        tensor_view view;
        view.name = name;
        view.type = s.type;
        view.shape = t.shape;
        view.owner = rec->second->owner;  // the inflated record, for a deflated entry
        if (contiguous) {
            view.data = storage.subspan(static_cast<std::size_t>(off * es), static_cast<std::size_t>(n * es));
        } else {
            // The furthest element the view reaches must lie in the record (with no overflow).
            std::uint64_t last = 0;
            for (std::size_t i = 0; i < t.shape.size(); ++i) {
                if (t.shape[i] == 0) continue;
                const auto reach = static_cast<std::uint64_t>(t.shape[i] - 1);
                const auto st = static_cast<std::uint64_t>(t.stride[i]);
                // capacity - off >= n >= 1 here, and last stays <= capacity - off - 1.
                if (st != 0 && reach > (capacity - off - 1 - last) / st) throw exceed(last + reach * st + 1);
                last += reach * st;
            }
            auto copy = std::make_shared<std::vector<std::byte>>(
                detail::gather_strided(storage.data() + off * es, t.shape, t.stride, static_cast<std::size_t>(es), n));
            view.data = std::span<const std::byte>(copy->data(), copy->size());
            view.owner = std::move(copy);
            if (n_gathered++ == 0) first_gathered = name;
        }
        if (view.type == dtype::f64) {
            auto f32 = std::make_shared<std::vector<std::byte>>(detail::f64_to_f32(view.data));
            view.type = dtype::f32;
            view.data = std::span<const std::byte>(f32->data(), f32->size());
            view.owner = std::move(f32);
            if (n_converted++ == 0) first_converted = name;
        }
        out.tensors.push_back(std::move(view));
    }
    if (n_converted)
        out.notes.push_back("converted " + std::to_string(n_converted) + " float64 tensor" +
                            (n_converted > 1 ? "s" : "") + " to float32 (first: '" + first_converted + "')");
    if (n_gathered)
        out.notes.push_back("copied " + std::to_string(n_gathered) + " non-contiguous tensor" +
                            (n_gathered > 1 ? "s" : "") + " into contiguous memory (first: '" + first_gathered + "')");
    if (std::any_of(zip.entries.begin(), zip.entries.end(), [](const zip_entry& e) { return e.method != 0; }))
        out.notes.push_back(
            "inflated deflate-compressed zip entries into memory (torch.save stores them uncompressed)");
    strip_wrapper_prefixes(out);
    return out;
}

}  // namespace rwkv::io
