#pragma once
// rwkv::Weight — a read-only [rows][cols] weight matrix whose element format is known only at
// run time (PyTorch nn.Linear layout: [out][in]). Files mix formats per tensor (rwkv.cpp keeps
// emb/head in F16 next to Q8_0 blocks; llama.cpp's K-quant mixes put the head in Q6_K), so the
// format travels with each matrix and a product switches on it once (gemma.cpp's MatPtr idea).
// The bytes either point into a memory-mapped checkpoint (zero copy) or into an owned buffer;
// either way they never move after construction.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "error.hpp"
#include "matrix.hpp"
#include "scalar.hpp"
#include "weights/format.hpp"

namespace rwkv {

// The dtype of a weight scalar type (float → f32, bfloat16 → bf16, half → f16).
template <class T>
constexpr dtype dtype_of() {
    static_assert(is_weight_scalar_v<T>, "float, rwkv::bfloat16 or rwkv::half");
    if constexpr (std::is_same_v<T, float>) return dtype::f32;
    else if constexpr (std::is_same_v<T, bfloat16>) return dtype::bf16;
    else return dtype::f16;
}

struct Weight {
    dtype type = dtype::f32;
    const std::byte* data = nullptr;
    int rows = 0;
    int cols = 0;
    std::size_t row_bytes = 0;          // stride between rows (a whole number of blocks)
    std::shared_ptr<const void> owner;  // the mapping or the owned buffer keeping `data` alive
    bool mapped = false;                // true when `data` points into the model file

    const std::byte* row(int r) const { return data + static_cast<std::size_t>(r) * row_bytes; }
    std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes; }
    std::size_t size() const { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }

    // Decodes row r to fp32 (exact: the format's reference decoder); out holds cols floats.
    void decode_row(int r, float* out) const { weights::decode_row(type, row(r), out, cols); }

    // A typed view for the scalar formats (F32 / BF16 / F16), for the kernels written per type.
    // Throws rwkv::error when the format is not T or the rows are not contiguous T values.
    template <class T>
    Matrix<T> as() const {
        if (type != dtype_of<T>() || row_bytes != static_cast<std::size_t>(cols) * sizeof(T) ||
            reinterpret_cast<std::uintptr_t>(data) % alignof(T) != 0)
            throw error("weight of type " + std::string(dtype_name(type)) + " viewed as " + scalar_name<T>());
        Matrix<T> m;
        m.data = reinterpret_cast<const T*>(data);
        m.rows = rows;
        m.cols = cols;
        m.owner = owner;
        m.mapped = mapped;
        return m;
    }

    // Owns `bytes` (rows × row_bytes of format `t`).
    static Weight owning(dtype t, std::vector<std::byte> bytes, int rows, int cols) {
        auto buf = std::make_shared<std::vector<std::byte>>(std::move(bytes));
        Weight w;
        w.type = t;
        w.data = buf->data();
        w.rows = rows;
        w.cols = cols;
        w.row_bytes = dtype_bytes(t, cols, "weight row");
        if (buf->size() != w.row_bytes * static_cast<std::size_t>(rows))
            throw error("weight buffer of " + std::to_string(buf->size()) + " bytes for " + std::to_string(rows) +
                        " rows of " + std::to_string(w.row_bytes));
        w.owner = std::move(buf);
        return w;
    }

    // Encodes fp32 values [rows][cols] into format `t` (exact for F32; the format's reference
    // encoder otherwise: round to nearest even for BF16 / F16, block quantisation for others).
    static Weight encode(dtype t, const float* values, int rows, int cols) {
        const std::size_t rb = dtype_bytes(t, cols, "weight row");
        // std::byte has no padding: vector<byte> is 1-aligned in theory, but every allocator
        // used here returns at least 16-byte alignment, which the typed views check anyway.
        std::vector<std::byte> bytes(rb * static_cast<std::size_t>(rows));
        for (int r = 0; r < rows; ++r)
            weights::encode_row(t, values + static_cast<std::size_t>(r) * static_cast<std::size_t>(cols),
                                bytes.data() + static_cast<std::size_t>(r) * rb, cols);
        return owning(t, std::move(bytes), rows, cols);
    }

    // The same for rows made one at a time: row_values(r, out) writes row r's cols fp32 values to
    // `out` (one reused row), each row is encoded straight into the weight's buffer, and no fp32
    // copy of the whole matrix is ever held (a loader converting a checkpoint uses this).
    template <class RowValues>
    static Weight encode_rows(dtype t, int rows, int cols, RowValues&& row_values) {
        const std::size_t rb = dtype_bytes(t, cols, "weight row");
        std::vector<std::byte> bytes(rb * static_cast<std::size_t>(rows));
        std::vector<float> values(static_cast<std::size_t>(cols));
        for (int r = 0; r < rows; ++r) {
            row_values(r, values.data());
            weights::encode_row(t, values.data(), bytes.data() + static_cast<std::size_t>(r) * rb, cols);
        }
        return owning(t, std::move(bytes), rows, cols);
    }
};

}  // namespace rwkv
