#pragma once
// Projections for the CPU backend: Y[t][o] = Σ_c W[o][c]·X[t][c] for n rows of activations.
// One row is the decode mat-vec (matvec.hpp: SIMD, threaded, bandwidth-bound); several rows
// are a GEMM (gemm.hpp: blocked SIMD kernels, prefill), both with rows split across the pool.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../../matrix.hpp"
#include "../../scalar.hpp"
#include "../../workspace.hpp"
#include "gemm.hpp"
#include "matvec.hpp"
#include "threads.hpp"

namespace rwkv::cpu_kernels {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
using MutMap = Eigen::Map<RowMajor>;

// Widen n weights to fp32 (exact for bf16 and fp16).
template <class T>
inline void widen(const T* src, float* dst, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
        std::copy(src, src + n, dst);
    } else {
        for (std::size_t i = 0; i < n; ++i) dst[i] = to_float(src[i]);
    }
}

// Runs f(thread, n_threads) on the pool, or on the caller alone when there is no pool or it is
// busy (another state's forward holds it): results never depend on which happened.
template <class F>
void parallel(ThreadPool* pool, F&& f) {
    if (pool == nullptr || pool->size() == 1 || !pool->try_run(f)) f(0, 1);
}

// Y[n][W.rows] = X[n][W.cols] · Wᵀ.
template <class T>
void matmul(const Matrix<T>& W, const float* X, int n, float* Y, ::rwkv::detail::Workspace& ws) {
    if (n == 1) {
        matvec(W, X, Y, ws.pool);
        return;
    }
    // bf16_prefill (Model::set_bf16_prefill, opt-in) rounds activations to bf16 for bf16 weights.
    gemm(W, X, n, Y, ws.pool, ws.tiles, ws.bf16_prefill ? GemmPrecision::bf16_activations : GemmPrecision::fp32);
}

}  // namespace rwkv::cpu_kernels
