#pragma once
// rwkv.cpp `.bin` model files (spec 8.5), versions 101 and 100, x052 and x060, turned into
// official names and layouts (spec 3): squeezed `.time_*` tensors get their official shapes
// back, the transposed x060 LoRA matrices are transposed back, and x052's stored decay
// w = exp(-exp(d)) is turned back into d. Every other tensor is a zero-copy span that keeps its
// stored type (FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and the K-quants rwkv.cpp can name).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "bytes.hpp"
#include "mapped_file.hpp"
#include "tensor.hpp"
#include "transform.hpp"

namespace rwkv::io {

namespace detail {

// rwkv.cpp's own type numbering (not ggml's); false (with a name for the message) otherwise.
inline bool rwkvcpp_dtype(std::int32_t id, dtype& out, std::string& name) {
    switch (id) {
        case 0: out = dtype::f32; return true;
        case 1: out = dtype::f16; return true;
        case 2: out = dtype::q4_0; return true;
        case 3: out = dtype::q4_1; return true;
        case 7: out = dtype::q5_0; return true;
        case 8: out = dtype::q5_1; return true;
        case 9: out = dtype::q8_0; return true;
        case 11: out = dtype::q2_k; return true;
        case 12: out = dtype::q3_k; return true;
        case 13: out = dtype::q4_k; return true;
        case 14: out = dtype::q5_k; return true;
        case 15: out = dtype::q6_k; return true;
        case 4: name = "Q4_1_O (retired by rwkv.cpp)"; return false;
        case 5: name = "Q4_2 (retired by rwkv.cpp)"; return false;
        case 6: name = "Q4_3 (retired by rwkv.cpp)"; return false;
        case 10: name = "Q8_1"; return false;
        case 16: name = "Q8_K"; return false;
        default: name = "rwkv.cpp type " + std::to_string(id); return false;
    }
}

inline bool ends_with(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

}  // namespace detail

// An rwkv.cpp `.bin` file in official names and layouts. Throws rwkv::error naming the file
// for a bad magic or version, quantized tensors in a version-100 file (an older, incompatible
// block layout), truncation anywhere (header, tensor header, name, data), impossible shapes,
// unknown or retired types (named), byte sizes that disagree with type and shape, duplicates.
//
// x052 decay: the file holds w = exp(-exp(d)) in fp32; d = log(-log(w)) is recovered in double
// and rounded to fp32. The double computation is exact to ~1e-16; rounding d to fp32 moves it by
// at most |d|·2^-24, which changes exp(-exp(d)) by a relative |ln w|·|d|·2^-24: below one fp32
// ulp for the decays near 1 that real models hold (the fixtures' goldens found 643 of 768 values
// exact and the rest within 1 ulp), ~20 ulp for an extreme w = 1e-6. A w that rounded to exactly
// 1.0 gives d = -inf, and exp(-exp(-inf)) = 1 again, which is what the file says.
inline tensor_file load_rwkvcpp(const std::filesystem::path& path) {
    auto file = std::make_shared<const mapped_file>(path);
    const std::string where = path.string();
    detail::cursor c(file->bytes(), where);
    const std::uint32_t magic = c.read<std::uint32_t>("rwkv.cpp magic");
    if (magic != 0x67676d66u) c.fail("not an rwkv.cpp model file (bad magic)");
    const auto version = static_cast<std::int32_t>(c.read<std::uint32_t>("version"));
    if (version != 100 && version != 101)
        c.fail("unsupported rwkv.cpp file version " + std::to_string(version) + " (supported: 100, 101)");
    const auto n_vocab = static_cast<std::int32_t>(c.read<std::uint32_t>("n_vocab"));
    const auto n_embed = static_cast<std::int32_t>(c.read<std::uint32_t>("n_embed"));
    const auto n_layer = static_cast<std::int32_t>(c.read<std::uint32_t>("n_layer"));
    const auto main_type = static_cast<std::int32_t>(c.read<std::uint32_t>("data type"));
    if (n_vocab <= 0 || n_embed <= 0 || n_layer <= 0)
        c.fail("implausible header: n_vocab " + std::to_string(n_vocab) + ", n_embed " + std::to_string(n_embed) +
               ", n_layer " + std::to_string(n_layer));

    std::vector<tensor_view> raw;
    std::set<std::string> names;
    while (!c.at_end()) {
        const auto dims = static_cast<std::int32_t>(c.read<std::uint32_t>("tensor header"));
        const auto key_len = static_cast<std::int32_t>(c.read<std::uint32_t>("tensor header"));
        const auto type_id = static_cast<std::int32_t>(c.read<std::uint32_t>("tensor header"));
        if (dims < 1 || dims > 3)
            c.fail("tensor at offset " + std::to_string(c.pos() - 12) + " has " + std::to_string(dims) +
                   " dimensions (1..3 allowed)");
        std::vector<std::int64_t> ne(static_cast<std::size_t>(dims));
        for (auto& d : ne) {
            const auto v = static_cast<std::int32_t>(c.read<std::uint32_t>("tensor shape"));
            if (v <= 0) c.fail("tensor at offset " + std::to_string(c.pos()) + " has dimension " + std::to_string(v));
            d = v;
        }
        if (key_len <= 0 || key_len > 4096) c.fail("tensor name length " + std::to_string(key_len) + " is implausible");
        tensor_view t;
        t.name = std::string(c.chars(static_cast<std::uint64_t>(key_len), "tensor name"));
        t.shape.assign(ne.rbegin(), ne.rend());
        std::string type_name;
        if (!detail::rwkvcpp_dtype(type_id, t.type, type_name))
            c.fail("tensor '" + t.name + "' is " + type_name + "; supported: " + weight_format_names());
        if (version == 100 && t.type != dtype::f32 && t.type != dtype::f16)
            c.fail("tensor '" + t.name + "' is " + std::string(dtype_name(t.type)) +
                   " in a version-100 file, whose quantized blocks use an older, incompatible layout; "
                   "re-quantize it with a current rwkv.cpp");
        const std::size_t bytes = detail::tensor_bytes(t.type, t.shape, where, t.name);
        t.data = c.bytes(bytes, "data of tensor '" + t.name + "'");
        if (!names.insert(t.name).second) c.fail("duplicate tensor '" + t.name + "'");
        raw.push_back(std::move(t));
    }

    // Generation decides the x052-only decay transform (spec 2.2 / 8.5).
    bool x060 = false;
    for (const auto& t : raw) x060 = x060 || t.name.find(".att.time_maa") != std::string::npos;

    tensor_file f;
    f.path = path;
    f.format = "rwkv.cpp .bin v" + std::to_string(version);
    for (tensor_view& t : raw) {
        const std::string& n = t.name;
        const bool time = n.find(".time_") != std::string::npos;
        if (!time) {
            f.tensors.push_back(std::move(t));
            continue;
        }
        using detail::ends_with;
        std::vector<std::int64_t> sq;  // squeezed shape
        for (auto d : t.shape)
            if (d != 1) sq.push_back(d);
        if (ends_with(n, ".time_maa_w1") || ends_with(n, ".time_decay_w1") || ends_with(n, ".time_decay_w2") ||
            ends_with(n, ".time_maa_w2")) {
            // Stored transposed (last two axes), possibly quantized: back to official, in fp32.
            f.tensors.push_back(detail::transposed_f32(t, n, where));
        } else if (ends_with(n, ".time_decay") || ends_with(n, ".time_faaaa") || ends_with(n, ".time_first")) {
            // Stored (H, N, 1). x052/x060 time_faaaa and x052 time_decay are (H, N); x060 decay (1, 1, A).
            std::vector<std::int64_t> hn = t.shape;
            if (hn.size() == 3 && hn[2] == 1) hn.pop_back();
            const bool decay = ends_with(n, ".time_decay");
            if (decay && x060) {
                f.tensors.push_back(detail::reshaped(t, n, {1, 1, t.numel()}));
            } else if (decay && !x060 && hn.size() == 2) {
                std::vector<float> w = detail::decode_f32(t, where);
                for (float& v : w) {
                    if (!(v > 0.0f && v <= 1.0f))
                        throw rwkv::error(where + ": tensor '" + n + "' holds decay " + std::to_string(v) +
                                          ", outside (0, 1] (an x052 file stores exp(-exp(d)))");
                    v = static_cast<float>(std::log(-std::log(static_cast<double>(v))));
                }
                f.tensors.push_back(detail::owned_f32(n, hn, std::move(w)));
            } else {
                f.tensors.push_back(detail::reshaped(t, n, hn));
            }
        } else if (sq.size() <= 1) {
            // time_mix_* / time_maa_* vectors: official (1, 1, C).
            f.tensors.push_back(detail::reshaped(t, n, {1, 1, t.numel()}));
        } else {
            f.tensors.push_back(std::move(t));  // e.g. time_state (H, N, N): stored as is
        }
    }
    f.mappings.push_back(std::move(file));
    f.metadata.emplace_back("n_vocab", std::to_string(n_vocab));
    f.metadata.emplace_back("n_embed", std::to_string(n_embed));
    f.metadata.emplace_back("n_layer", std::to_string(n_layer));
    dtype mt{};
    std::string mt_name;
    f.metadata.emplace_back("data_type",
                            detail::rwkvcpp_dtype(main_type, mt, mt_name) ? std::string(dtype_name(mt)) : mt_name);
    if (!x060) f.metadata.emplace_back("time_decay", "stored as exp(-exp(d)); d recovered as log(-log(w))");
    return f;
}

}  // namespace rwkv::io
