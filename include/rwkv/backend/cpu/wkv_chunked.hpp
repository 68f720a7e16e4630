#pragma once
// Chunked parallel WKV over a sequence of T tokens (spec 5.3-5.5, 5.7): the same outputs and final
// state as T calls of wkv_step, with the O(T·N²) work done as GEMMs.
//
// Per head and chunk of n ≤ Q tokens, with λ = log-decay (≤ 0), the chunk is cut into sub-blocks
// of P = 16 tokens and every decay factor is built from sums of λ over a span that lies between
// the two tokens it connects, so every exponent is ≤ 0 (spec 5.5: exp(-Λ) of a whole chunk
// overflows for data-dependent decays). Each factor is a product of pieces:
//   query  a in block q:  r_a · exp(Σ λ from q's start to a-1)          (Rt, per token)
//   key    b in block c:  k_b · exp(Σ λ from b+1 to c's end)            (Kb, per token)
//   between blocks c < q: exp(Σ of the block totals strictly between)  (one vector per pair)
//   inside one block:     running products of w = exp(λ) (pair-wise, no cancellation)
// All sums run over λ's of one sign, so nothing is the difference of two large cumulative sums,
// which would lose the small decays of channels that also see huge ones (ω from -12 to +5).
//   Y  = R̂·S + A·V,   R̂ = Rt ⊙ exp(Σ totals before q)
//   S' = diag(exp(G))·S + K̂ᵀ·V,   K̂ = Kb ⊙ exp(Σ totals after c),  G = Σ all totals

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "eigen.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define RWKV_WKV_MXCSR 1
#else
#define RWKV_WKV_MXCSR 0
#endif

namespace rwkv::backend::cpu {

// Sub-block length of the reference-point scheme (spec 5.4; fla uses the same).
inline constexpr int wkv_sub_block = 16;
// Any chunk length is correct. On the development CPU (AVX-512, Eigen GEMMs, N = 64) 16 was the
// fastest of 16/32/64: the O(Q²N) intra-chunk part grows with Q and the small GEMMs gain little.
inline constexpr int wkv_default_chunk = 16;

// Floats of scratch one wkv_chunked / wkv_chunked_heads call needs (one buffer per concurrent
// call).
inline std::size_t wkv_chunked_scratch_floats(int head_size, int chunk = wkv_default_chunk) {
    const auto N = static_cast<std::size_t>(head_size), Q = static_cast<std::size_t>(chunk);
    const std::size_t P = static_cast<std::size_t>(wkv_sub_block);
    const std::size_t blocks = (Q + P - 1) / P;
    return 4 * Q * N + Q * Q + (blocks + P + 4) * N + 16;  // + 16: alignment slack
}

namespace detail {

// Factors below 1e-38 stand for contributions below fp32's range (spec 5.5); flushing them avoids
// the microcode assists denormals cost inside the GEMMs when decays are large. Restored on exit.
struct wkv_flush_denormals {
#if RWKV_WKV_MXCSR
    unsigned saved = _mm_getcsr();
    wkv_flush_denormals() { _mm_setcsr(saved | 0x8040u); }  // FTZ | DAZ
    ~wkv_flush_denormals() { _mm_setcsr(saved); }
#endif
    wkv_flush_denormals(const wkv_flush_denormals&) = delete;
    wkv_flush_denormals& operator=(const wkv_flush_denormals&) = delete;
#if !RWKV_WKV_MXCSR
    wkv_flush_denormals() = default;
#endif
};

inline void wkv_prefetch([[maybe_unused]] const float* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#endif
}

}  // namespace detail

// Heads [h_begin, h_end) of a layer for T tokens; heads are independent, so threads may split
// them, each with its own scratch.
//   r, k, v, y:  T rows of A = n_head·head_size floats (row t at t·A); y is overwritten.
//   log_w:       λ = -exp(ω) per token and channel (compute it directly, never as log(w)),
//                row t at t·log_w_stride; stride A for x060, 0 for x052's static decay.
//   u:           bonus [A].   S: [n_head][head_size][head_size], updated in place.
//   scratch:     wkv_chunked_scratch_floats(head_size, chunk) floats.
inline void wkv_chunked_heads(int h_begin, int h_end, int n_head, int head_size, int T, const float* r, const float* k,
                              const float* v, const float* log_w, std::size_t log_w_stride, const float* u, float* S,
                              float* y, float* scratch, int chunk = wkv_default_chunk) {
    using Eigen::Index;
    using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Row = Eigen::Matrix<float, 1, Eigen::Dynamic>;
    using MatMap = Eigen::Map<Mat>;
    using RowMap = Eigen::Map<Row>;
    using CRowMap = Eigen::Map<const Row>;
    using Strided = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
    using StridedOut = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
    if (T <= 0 || h_begin >= h_end) return;
    [[maybe_unused]] detail::wkv_flush_denormals flush;  // a no-op off x86 (no MXCSR)

    const Index N = head_size, Q = chunk, P = std::min<Index>(wkv_sub_block, Q);
    const Index A_ = static_cast<Index>(n_head) * N;
    const Index blocks_max = (Q + P - 1) / P;
    const bool static_decay = log_w_stride == 0;

    // Rows of 64-byte aligned matrices let Eigen's vectorised loops (exp included) start
    // without a scalar prologue.
    const std::uintptr_t misalign = reinterpret_cast<std::uintptr_t>(scratch) % 64;
    float* p = scratch + (64 - misalign) % 64 / sizeof(float);
    MatMap Rt(p, Q, N), Kb(p += Q * N, Q, N), Kt(p += Q * N, Q, N), Wd(p += Q * N, Q, N);
    MatMap Am(p += Q * N, Q, Q);
    MatMap Tot(p += Q * Q, blocks_max, N);
    MatMap Pw(p += blocks_max * N, P, N);  // x052: exp(m·λ) for m < P, shared by all blocks
    RowMap run(p += P * N, N), kd(p += N, N), fac(p += N, N), eG(p += N, N);

    const auto lam = [&](Index t) {  // λ row of token t (add the head's offset)
        return log_w + static_cast<std::size_t>(t) * log_w_stride;
    };

    const auto prefetch = [&](Index t0, Index o) {
        const Index n = std::min<Index>(Q, T - t0);
        for (Index a = 0; a < n; ++a) {
            const Index row = (t0 + a) * A_ + o;
            for (Index j = 0; j < N; j += 16) {
                detail::wkv_prefetch(r + row + j);
                detail::wkv_prefetch(k + row + j);
                detail::wkv_prefetch(v + row + j);
                detail::wkv_prefetch(y + row + j);
                if (!static_decay) detail::wkv_prefetch(lam(t0 + a) + o + j);
            }
        }
    };
    prefetch(0, static_cast<Index>(h_begin) * N);

    for (int h = h_begin; h < h_end; ++h) {
        const Index o = static_cast<Index>(h) * N;
        MatMap Sh(S + o * N, N, N);
        const CRowMap uh(u + o, N);
        if (static_decay) {
            // Same running sums as the per-token path below, tabulated once per head.
            const CRowMap l(log_w + o, N);
            run.setZero();
            for (Index m = 0; m < P; ++m) {
                Pw.row(m) = run.array().exp();
                run += l;
            }
            Wd.row(0) = l.array().exp();
        }
        for (Index t0 = 0; t0 < T; t0 += Q) {
            const Index n = std::min<Index>(Q, T - t0), nb = (n + P - 1) / P;
            // Each head reads N floats from rows A floats apart, a pattern the hardware
            // prefetchers miss; fetch the next chunk's rows (or the next head's first) while this
            // chunk computes.
            if (t0 + Q < T) prefetch(t0 + Q, o);
            else if (h + 1 < h_end) prefetch(0, o + N);
            const Strided R(r + t0 * A_ + o, n, N, Eigen::OuterStride<>(A_));
            const Strided K(k + t0 * A_ + o, n, N, Eigen::OuterStride<>(A_));
            const Strided V(v + t0 * A_ + o, n, N, Eigen::OuterStride<>(A_));
            StridedOut Y(y + t0 * A_ + o, n, N, Eigen::OuterStride<>(A_));

            // Per-token factors inside each sub-block (exponents: exclusive local sums ≤ 0).
            for (Index q = 0; q < nb; ++q) {
                const Index a0 = q * P, a1 = std::min(a0 + P, n);
                if (static_decay) {
                    const CRowMap l(log_w + o, N);
                    Tot.row(q).setZero();
                    for (Index a = a0; a < a1; ++a) {
                        Rt.row(a) = R.row(a).cwiseProduct(Pw.row(a - a0));
                        Kb.row(a) = K.row(a).cwiseProduct(Pw.row(a1 - 1 - a));
                        Tot.row(q) += l;
                    }
                    continue;
                }
                run.setZero();
                for (Index a = a0; a < a1; ++a) {
                    const CRowMap l(lam(t0 + a) + o, N);
                    Rt.row(a) = R.row(a).array() * run.array().exp();
                    Wd.row(a) = l.array().exp();
                    run += l;
                }
                Tot.row(q) = run;
                run.setZero();
                for (Index b = a1 - 1; b >= a0; --b) {
                    Kb.row(b) = K.row(b).array() * run.array().exp();
                    run += CRowMap(lam(t0 + b) + o, N);
                }
            }

            // Intra-chunk matrix A, one query sub-block (rows a0..a1) at a time.
            for (Index q = 0; q < nb; ++q) {
                const Index a0 = q * P, a1 = std::min(a0 + P, n), pq = a1 - a0;
                if (q > 0) {
                    // Earlier key blocks, scaled to this block's start: one GEMM.
                    run.setZero();
                    for (Index c = q - 1; c >= 0; --c) {
                        fac = run.array().exp();
                        for (Index b = c * P; b < (c + 1) * P; ++b) Kt.row(b) = Kb.row(b).cwiseProduct(fac);
                        run += Tot.row(c);
                    }
                    Am.block(a0, 0, pq, a0).noalias() = Rt.middleRows(a0, pq) * Kt.topRows(a0).transpose();
                }
                // Diagonal block, pair-wise: kd carries k_b ⊙ Π_{b<m<a} w_m.
                for (Index b = a0; b < a1; ++b) {
                    Am(b, b) = R.row(b).cwiseProduct(uh).dot(K.row(b));
                    for (Index a = a0; a < b; ++a) Am(a, b) = 0.0f;
                    if (b + 1 == a1) break;
                    kd = K.row(b);
                    for (Index a = b + 1; a < a1; ++a) {
                        Am(a, b) = R.row(a).dot(kd);
                        if (a + 1 < a1) kd.array() *= Wd.row(static_decay ? 0 : a).array();
                    }
                }
            }

            // R̂ = Rt ⊙ exp(Σ totals before the block); K̂ = Kb ⊙ exp(Σ totals after it).
            run.setZero();
            for (Index q = 0; q < nb; ++q) {
                const Index a0 = q * P, pq = std::min(a0 + P, n) - a0;
                if (q > 0) {
                    fac = run.array().exp();
                    for (Index a = a0; a < a0 + pq; ++a) Rt.row(a).array() *= fac.array();
                }
                run += Tot.row(q);
            }
            eG = run.array().exp();  // total decay of the chunk, for the state
            run.setZero();
            for (Index c = nb - 1; c >= 0; --c) {
                const Index b0 = c * P, pc = std::min(b0 + P, n) - b0;
                if (c < nb - 1) {
                    fac = run.array().exp();
                    for (Index b = b0; b < b0 + pc; ++b) Kb.row(b).array() *= fac.array();
                }
                run += Tot.row(c);
            }

            // Outputs read the state entering the chunk, then the state moves past it.
            Y.noalias() = Rt.topRows(n) * Sh;
            for (Index q = 0; q < nb; ++q) {
                const Index a0 = q * P, a1 = std::min(a0 + P, n);
                Y.middleRows(a0, a1 - a0).noalias() += Am.block(a0, 0, a1 - a0, a1) * V.topRows(a1);
            }
            Sh.array().colwise() *= eG.transpose().array();
            Sh.noalias() += Kb.topRows(n).transpose() * V;
        }
    }
}

// All heads of a layer; see wkv_chunked_heads for the arguments.
inline void wkv_chunked(int n_head, int head_size, int T, const float* r, const float* k, const float* v,
                        const float* log_w, std::size_t log_w_stride, const float* u, float* S, float* y,
                        float* scratch, int chunk = wkv_default_chunk) {
    wkv_chunked_heads(0, n_head, n_head, head_size, T, r, k, v, log_w, log_w_stride, u, S, y, scratch, chunk);
}

}  // namespace rwkv::backend::cpu
