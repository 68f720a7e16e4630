#pragma once
// Projections for the CPU backend. Y[t][o] = Σ_c W[o][c]·X[t][c] for n rows of activations:
// one row is a mat-vec (decode), several rows a GEMM (prefill). Weights stay in their storage
// type; they are widened to fp32 in registers (mat-vec) or per tile (GEMM). Accumulation is fp32.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../../matrix.hpp"
#include "../../scalar.hpp"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace rwkv::cpu_kernels {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
using MutMap = Eigen::Map<RowMajor>;

// Widen n weights to fp32. The bf16 case is a shift, which compilers vectorise; fp16 uses F16C
// when the build enables it and the exact software conversion otherwise.
template <class T>
inline void widen(const T* src, float* dst, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
        std::copy(src, src + n, dst);
    } else {
        std::size_t i = 0;
#if defined(__F16C__)
        if constexpr (std::is_same_v<T, half>) {
            for (; i + 8 <= n; i += 8) {
                __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
                _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
            }
        }
#endif
        for (; i < n; ++i) dst[i] = to_float(src[i]);
    }
}

// Dot product of one weight row with fp32 activations; 8 independent accumulators so that the
// compiler can keep a full vector of partial sums and the sum does not depend on one long chain.
template <class T>
inline float dot(const T* w, const float* x, std::size_t n) {
    float acc[8] = {};
    std::size_t i = 0;
    if constexpr (std::is_same_v<T, half>) {
        float buf[64];
        for (; i + 64 <= n; i += 64) {
            widen(w + i, buf, 64);
            for (std::size_t j = 0; j < 64; j += 8)
                for (std::size_t l = 0; l < 8; ++l) acc[l] += buf[j + l] * x[i + j + l];
        }
    }
    for (; i + 8 <= n; i += 8)
        for (std::size_t l = 0; l < 8; ++l) acc[l] += to_float(w[i + l]) * x[i + l];
    float tail = 0.0f;
    for (; i < n; ++i) tail += to_float(w[i]) * x[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// Y[n][W.rows] = X[n][W.cols] · Wᵀ.  `tile` is scratch for widened weights (grown if needed).
template <class T>
void matmul(const Matrix<T>& W, const float* X, int n, float* Y, std::vector<float>& tile) {
    const auto cols = static_cast<std::size_t>(W.cols);
    if (n == 1) {
        for (int o = 0; o < W.rows; ++o) Y[o] = dot(W.row(o), X, cols);
        return;
    }
    ConstMap x(X, n, W.cols);
    MutMap y(Y, n, W.rows);
    if constexpr (std::is_same_v<T, float>) {
        y.noalias() = x * ConstMap(W.data, W.rows, W.cols).transpose();
    } else {
        // Widen a band of rows at a time: big enough for an efficient GEMM, small enough for L2.
        const int band = std::max(1, static_cast<int>(16384 / std::max<std::size_t>(cols, 1)));
        if (tile.size() < static_cast<std::size_t>(band) * cols) tile.resize(static_cast<std::size_t>(band) * cols);
        for (int o0 = 0; o0 < W.rows; o0 += band) {
            const int rows = std::min(band, W.rows - o0);
            widen(W.row(o0), tile.data(), static_cast<std::size_t>(rows) * cols);
            y.middleCols(o0, rows).noalias() = x * ConstMap(tile.data(), rows, W.cols).transpose();
        }
    }
}

// LoRA products use the [in][out] layout (z·M): Y[n][out] = X[n][in] · M.
inline void matmul_in_out(const float* M, int in, int out, const float* X, int n, float* Y) {
    MutMap(Y, n, out).noalias() = ConstMap(X, n, in) * ConstMap(M, in, out);
}

}  // namespace rwkv::cpu_kernels
