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
#include "gemm_amx.hpp"
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
    if constexpr (std::is_same_v<T, bfloat16>) {
        if (ws.bf16_prefill) {  // opt-in: activations rounded to bf16 (Model::set_bf16_prefill)
            if (amx_bf16_available()) {
                const int threads = ws.pool ? ws.pool->size() : 1;
                const std::size_t need = gemm_amx_scratch_floats(n, W.cols);
                if (ws.tiles.size() < static_cast<std::size_t>(threads)) ws.tiles.resize(static_cast<std::size_t>(threads));
                for (auto& s : ws.tiles)
                    if (s.size() < need) s.resize(need);
                parallel(ws.pool, [&](int t, int nt) {
                    constexpr int unit = 32;  // whole 2×16-row tile blocks per thread
                    const int units = (W.rows + unit - 1) / unit;
                    const int rb = units * t / nt * unit, re = std::min(W.rows, units * (t + 1) / nt * unit);
                    if (rb < re) gemm_rows_amx(W, X, n, Y, rb, re, ws.tiles[static_cast<std::size_t>(t)].data());
                });
                return;
            }
            gemm(W, X, n, Y, ws.pool, ws.tiles, GemmPrecision::bf16_activations);
            return;
        }
    }
    gemm(W, X, n, Y, ws.pool, ws.tiles);
}

}  // namespace rwkv::cpu_kernels
