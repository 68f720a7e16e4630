#pragma once
// rwkv::dtype — every element type a file can hold — and the run-time switch over weight
// formats. The weight formats come from weights/list.hpp (one header each); the others
// (f64, integers, bool) exist so readers can describe, and loaders refuse by name, whatever a
// file holds. A weight matrix carries its dtype at run time; code that needs the typed layout
// calls visit_format() once and gets the format's struct (gemma.cpp's CallUpcasted idea).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "../error.hpp"
#include "list.hpp"

namespace rwkv {

#define RWKV_DTYPE_ENUMERATOR(name) name,
enum class dtype : std::uint8_t {
    RWKV_WEIGHT_FORMATS(RWKV_DTYPE_ENUMERATOR)  // weight formats first
    f64,
    i64,
    i32,
    i16,
    i8,
    u8,
    boolean,
};
#undef RWKV_DTYPE_ENUMERATOR

namespace weights {

// True for the types a weight matrix may be kept in (everything in weights/list.hpp).
constexpr bool is_weight_format(dtype t) { return t < dtype::f64; }

// Calls fn(Format{}) with the format struct for `t` (one of weights/list.hpp); throws
// rwkv::error for a non-weight type. The one switch between a run-time type and typed code.
template <class Fn>
decltype(auto) visit_format(dtype t, Fn&& fn) {
    switch (t) {
#define RWKV_VISIT_CASE(name) \
    case dtype::name: return fn(name{});
        RWKV_WEIGHT_FORMATS(RWKV_VISIT_CASE)
#undef RWKV_VISIT_CASE
        default: break;
    }
    throw error("dtype " + std::to_string(static_cast<int>(t)) + " is not a weight format");
}

}  // namespace weights

// The dtype of a weight format struct (weights::q8_0 → dtype::q8_0).
template <class F>
constexpr dtype format_dtype() {
#define RWKV_FORMAT_DTYPE(name) \
    if constexpr (std::is_same_v<F, weights::name>) return dtype::name;
    RWKV_WEIGHT_FORMATS(RWKV_FORMAT_DTYPE)
#undef RWKV_FORMAT_DTYPE
    throw error("not a weight format");
}

template <class F>
inline constexpr bool is_weight_format_v = false;
#define RWKV_IS_FORMAT(name) \
    template <>              \
    inline constexpr bool is_weight_format_v<weights::name> = true;
RWKV_WEIGHT_FORMATS(RWKV_IS_FORMAT)
#undef RWKV_IS_FORMAT

// The format structs are also Model policies: Model<rwkv::q8_0> quantizes on load.
#define RWKV_EXPORT_FORMAT(name) using weights::name;
RWKV_WEIGHT_FORMATS(RWKV_EXPORT_FORMAT)
#undef RWKV_EXPORT_FORMAT

// Values per block and bytes per block (1 and the element size for scalar types).
constexpr int dtype_block_elems(dtype t) {
    switch (t) {
#define RWKV_BLOCK_ELEMS_CASE(name) \
    case dtype::name: return weights::name::block_elems;
        RWKV_WEIGHT_FORMATS(RWKV_BLOCK_ELEMS_CASE)
#undef RWKV_BLOCK_ELEMS_CASE
        default: return 1;
    }
}

constexpr int dtype_block_bytes(dtype t) {
    switch (t) {
#define RWKV_BLOCK_BYTES_CASE(name) \
    case dtype::name: return weights::name::block_bytes;
        RWKV_WEIGHT_FORMATS(RWKV_BLOCK_BYTES_CASE)
#undef RWKV_BLOCK_BYTES_CASE
        case dtype::f64:
        case dtype::i64: return 8;
        case dtype::i32: return 4;
        case dtype::i16: return 2;
        default: return 1;
    }
}

// ggml's name for weight formats ("F32", "BF16", "Q8_0", ...), PyTorch-like names otherwise.
constexpr std::string_view dtype_name(dtype t) {
    switch (t) {
#define RWKV_NAME_CASE(name) \
    case dtype::name: return weights::name::ggml_name;
        RWKV_WEIGHT_FORMATS(RWKV_NAME_CASE)
#undef RWKV_NAME_CASE
        case dtype::f64: return "F64";
        case dtype::i64: return "I64";
        case dtype::i32: return "I32";
        case dtype::i16: return "I16";
        case dtype::i8: return "I8";
        case dtype::u8: return "U8";
        case dtype::boolean: return "BOOL";
    }
    return "?";
}

// Names of every weight format, for error messages ("supported: F32, F16, ...").
inline std::string weight_format_names() {
    std::string out;
#define RWKV_NAME_LIST(name) out += (out.empty() ? "" : ", ") + std::string(weights::name::ggml_name);
    RWKV_WEIGHT_FORMATS(RWKV_NAME_LIST)
#undef RWKV_NAME_LIST
    return out;
}

// Bytes of `n` consecutive values of type t; throws when n is not a whole number of blocks.
inline std::size_t dtype_bytes(dtype t, std::int64_t n, std::string_view what = "tensor") {
    const std::int64_t be = dtype_block_elems(t);
    if (n < 0 || n % be != 0)
        throw error(std::string(what) + ": " + std::to_string(n) + " values are not a whole number of " +
                    std::string(dtype_name(t)) + " blocks of " + std::to_string(be));
    return static_cast<std::size_t>(n / be) * static_cast<std::size_t>(dtype_block_bytes(t));
}

namespace weights {

// Reference decode of n values (a whole number of blocks) to fp32: the yardstick every SIMD /
// CUDA path is tested against, and the loader's conversion.
inline void decode_row(dtype t, const std::byte* src, float* out, std::int64_t n) {
    visit_format(t, [&](auto f) {
        using F = decltype(f);
        for (std::int64_t b = 0; b < n / F::block_elems; ++b)
            F::decode(src + b * F::block_bytes, out + b * F::block_elems);
    });
}

// Reference encode (quantize) of n values (a whole number of blocks).
inline void encode_row(dtype t, const float* in, std::byte* dst, std::int64_t n) {
    visit_format(t, [&](auto f) {
        using F = decltype(f);
        for (std::int64_t b = 0; b < n / F::block_elems; ++b)
            F::encode(in + b * F::block_elems, dst + b * F::block_bytes);
    });
}

}  // namespace weights
}  // namespace rwkv
