#pragma once
// The exact layout transforms readers apply to turn foreign tensors into official ones (spec 3):
// owned tensors, overflow-checked sizes, exact fp32 decoding, transposes, and exact scaling by
// powers of two (GGUF's pre-divided matrices, spec 4.11). Nothing here knows a file format.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "tensor.hpp"
#include "../weights/format.hpp"

namespace rwkv::io::detail {

inline std::string dims_string(const std::vector<std::int64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

// Element count of a shape read from a file, refusing negative dims and products past 2^48
// (far beyond any model, far below any overflow of byte sizes computed from it).
inline std::int64_t checked_numel(const std::vector<std::int64_t>& shape, const std::string& where,
                                  const std::string& name) {
    constexpr std::int64_t limit = std::int64_t{1} << 48;
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
        if (d < 0 || d > limit || (d != 0 && n > limit / d))
            throw rwkv::error(where + ": tensor '" + name + "' has an impossible shape " + dims_string(shape));
        n *= d;
    }
    return n;
}

// Bytes of a tensor of `type` and `shape`; throws (naming the tensor) when the innermost
// dimension is not a whole number of blocks.
inline std::size_t tensor_bytes(dtype type, const std::vector<std::int64_t>& shape, const std::string& where,
                                const std::string& name) {
    const std::int64_t n = checked_numel(shape, where, name);
    const std::int64_t be = dtype_block_elems(type);
    if (be > 1 && (shape.empty() || shape.back() % be != 0))
        throw rwkv::error(where + ": tensor '" + name + "' of type " + std::string(dtype_name(type)) + " has shape " +
                          dims_string(shape) + ": rows must be a whole number of blocks of " + std::to_string(be));
    return dtype_bytes(type, n, where + ": tensor '" + name + "'");
}

// A tensor backed by its own buffer (the result of a transform).
inline tensor_view owned_f32(std::string name, std::vector<std::int64_t> shape, std::vector<float> values) {
    auto buf = std::make_shared<std::vector<float>>(std::move(values));
    tensor_view t;
    t.name = std::move(name);
    t.type = dtype::f32;
    t.shape = std::move(shape);
    t.data = {reinterpret_cast<const std::byte*>(buf->data()), buf->size() * sizeof(float)};
    t.owner = std::move(buf);
    return t;
}

inline tensor_view owned_bytes(std::string name, dtype type, std::vector<std::int64_t> shape,
                               std::vector<std::byte> bytes) {
    auto buf = std::make_shared<std::vector<std::byte>>(std::move(bytes));
    tensor_view t;
    t.name = std::move(name);
    t.type = type;
    t.shape = std::move(shape);
    t.data = {buf->data(), buf->size()};
    t.owner = std::move(buf);
    return t;
}

// Exact fp32 values of any weight-format tensor; other types are refused by name.
inline std::vector<float> decode_f32(const tensor_view& t, const std::string& where) {
    if (!weights::is_weight_format(t.type))
        throw rwkv::error(where + ": tensor '" + t.name + "' is " + std::string(dtype_name(t.type)) +
                          "; supported: " + weight_format_names());
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    weights::decode_row(t.type, t.data.data(), out.data(), t.numel());
    return out;
}

// Swaps the last two axes of `t` (leading axes are batch), as fp32: [.., r, c] → [.., c, r].
inline tensor_view transposed_f32(const tensor_view& t, std::string name, const std::string& where) {
    if (t.shape.size() < 2)
        throw rwkv::error(where + ": tensor '" + t.name + "' should have at least 2 dimensions, has shape " +
                          dims_string(t.shape));
    const std::vector<float> v = decode_f32(t, where);
    const std::int64_t r = t.shape[t.shape.size() - 2], c = t.shape.back();
    const std::int64_t batch = r * c == 0 ? 0 : t.numel() / (r * c);
    std::vector<float> out(v.size());
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t i = 0; i < r; ++i)
            for (std::int64_t j = 0; j < c; ++j)
                out[static_cast<std::size_t>(b * r * c + j * r + i)] =
                    v[static_cast<std::size_t>(b * r * c + i * c + j)];
    std::vector<std::int64_t> shape = t.shape;
    std::swap(shape[shape.size() - 2], shape[shape.size() - 1]);
    return owned_f32(std::move(name), std::move(shape), std::move(out));
}

// `t` with every value multiplied by 2^k, exactly. Kept in its own type where that is exact
// (f16/bf16 values, or a block format's fp16 scale fields, all of which every value is linear
// in); otherwise (a field would overflow or lose bits) widened to fp32, where it is exact.
inline tensor_view scaled_pow2(const tensor_view& t, int k, const std::string& where) {
    if (k == 0) return t;
    const float f = std::ldexp(1.0f, k);
    bool exact = true;
    std::vector<std::byte> bytes(t.data.begin(), t.data.end());
    auto scale_f16 = [&](std::byte* p) {
        const float v = weights::fp16_to_float(weights::load_u16(p));
        const std::uint16_t h = half::from_float(v * f).bits;
        if (!(weights::fp16_to_float(h) == v * f) && !std::isnan(v)) exact = false;
        weights::store_u16(p, h);
    };
    if (t.type == dtype::f16) {
        for (std::size_t i = 0; i + 2 <= bytes.size(); i += 2) scale_f16(bytes.data() + i);
    } else if (t.type == dtype::bf16) {
        for (std::size_t i = 0; i + 2 <= bytes.size(); i += 2) {
            const float v = weights::bf16_to_float(weights::load_u16(bytes.data() + i));
            const std::uint16_t h = bfloat16::from_float(v * f).bits;
            if (!(weights::bf16_to_float(h) == v * f) && !std::isnan(v)) exact = false;
            weights::store_u16(bytes.data() + i, h);
        }
    } else if (t.type != dtype::f32 && weights::is_weight_format(t.type)) {
        weights::visit_format(t.type, [&](auto fmt) {
            using F = decltype(fmt);
            if constexpr (requires { F::linear_f16_fields; }) {
                for (std::size_t b = 0; b + F::block_bytes <= bytes.size(); b += F::block_bytes)
                    for (int at : F::linear_f16_fields) scale_f16(bytes.data() + b + at);
            } else {
                exact = false;
            }
        });
    } else {
        exact = false;
    }
    if (exact) return owned_bytes(t.name, t.type, t.shape, std::move(bytes));
    std::vector<float> v = decode_f32(t, where);
    for (float& x : v) x *= f;
    return owned_f32(t.name, t.shape, std::move(v));
}

// `t` under another name and shape with the same element count (squeeze / unsqueeze / split).
inline tensor_view reshaped(const tensor_view& t, std::string name, std::vector<std::int64_t> shape) {
    tensor_view r = t;
    r.name = std::move(name);
    r.shape = std::move(shape);
    return r;
}

}  // namespace rwkv::io::detail
