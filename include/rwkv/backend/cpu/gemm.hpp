#pragma once
// Prefill GEMM for the CPU backend: Y[t][o] = Σ_c W[o][c]·X[t][c] for n rows of activations,
// W stored [rows][cols] as float, bfloat16 or half; X, Y and accumulation in fp32.
//
// Why not Eigen alone: the library is header-only and built with the user's flags, which by
// default means SSE2, where Eigen's GEMM reaches a fraction of what AVX-512 FMA units can do.
// So, as for the mat-vec, the kernels carry their own target attributes and the path is picked
// at run time (Isa, shared with matvec.hpp). Eigen remains the generic path.
//
// Formulation: both operands have the contraction index (c) contiguous, so one must be
// transposed. We transpose X (n×K, small, reused by every row of W) into panels Xᵀ[k][t] and
// leave W in its storage order: the micro-kernel keeps MR rows of W × (NV vectors of t) of
// Yᵀ in registers, and per k broadcasts MR weights and loads NV vectors of Xᵀ. 16-bit weights
// are widened (not transposed) into a small fp32 panel per cache block, which is cheap next to
// the n/16 FMAs each weight feeds. Blocking: the Xᵀ block of kc columns × 64 t stays in L1 while
// a band of mc rows of W streams past it; the Yᵀ band lives in scratch and is transposed into Y
// once per band, after the whole K.
//
// Determinism: every output is one FMA chain over c in order (the accumulators start from the
// partial sums of the previous k block), whatever the row split, so results do not depend on the
// thread count, only on the path.
//
// Opt-in: GemmPrecision::bf16_activations (bfloat16 weights, AVX512_BF16 CPUs) rounds X to bf16
// and uses vdpbf16ps; it changes the numerics, so it is never the default. Measured on the
// Sapphire Rapids-class dev machine it is slower than fp32 (~90 vs ~120-130 GFLOP/s per core at
// n = 64): vdpbf16ps issues there at one zmm per cycle, no more multiplies per cycle than two FMAs.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "eigen.hpp"

#include "../../matrix.hpp"
#include "../../scalar.hpp"
#include "gemm_amx.hpp"
#include "matvec.hpp"
#include "threads.hpp"

#if RWKV_MATVEC_X86
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace rwkv::backend::cpu {

enum class GemmPrecision {
    fp32,              // exact products, fp32 accumulation (the default)
    bf16_activations,  // bfloat16 weights only: X rounded to bf16, products summed in fp32
};

namespace gemm_detail {

// Cache blocking (floats): kc columns of Xᵀ for 64 t = 32 KiB, L1-resident; ks columns = 512 KiB,
// L2-resident; mc rows of W per band (a multiple of the 6-row micro-kernel); t in chunks of up to
// 64 (4 zmm / 2 ymm × 8).
inline constexpr int kc = 128;
inline constexpr int panel_floats = 128;  // per row of the widened weight panel
inline constexpr int mc = 96;
inline constexpr int max_chunk = 64;
inline constexpr int ks = 2048;
inline constexpr std::size_t align_floats = 16;  // 64 bytes

inline std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

inline float* align64(float* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<float*>((a + 63u) & ~std::uintptr_t{63});
}

// Rows per band of the Eigen path, bands starting at multiples of it: Eigen's blocking (and so its
// summation order) depends on the product's shape, so every output row must be computed in the
// same band however the rows are split between threads (gemm() splits at multiples of
// gemm_row_unit, a multiple of this). The widened band stays in L2 up to 5461 columns.
inline constexpr int eigen_band = 48;

// Scratch of the blocked paths: Xᵀ [K][round16(n)], the widened W panel [mc][kc], the Yᵀ band
// [mc][round16(n)], each 64-byte aligned.
inline std::size_t blocked_scratch(int n, int cols) {
    const std::size_t np = round_up(static_cast<std::size_t>(n), 16), k = static_cast<std::size_t>(cols);
    return k * np + static_cast<std::size_t>(mc) * panel_floats + static_cast<std::size_t>(mc) * np + 3 * align_floats;
}

// ---------------------------------------------------------------------------------------------
// Generic path: bands of W widened to fp32 and Eigen's GEMM (whatever the build's flags give).

template <class T>
void gemm_rows_eigen(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end, float* tile) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using ConstMap = Eigen::Map<const RowMajor>;
    using MutMap = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
    constexpr int band = eigen_band;
    const ConstMap x(X, n, W.cols);
    for (int o0 = row_begin; o0 < row_end; o0 = (o0 / band + 1) * band) {
        const int rows = std::min((o0 / band + 1) * band, row_end) - o0;
        MutMap y(Y + o0, n, rows, Eigen::OuterStride<>(W.rows));
        if constexpr (std::is_same_v<T, float>) {
            y.noalias() = x * ConstMap(W.row(o0), rows, W.cols).transpose();
        } else {
            const std::size_t count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(W.cols);
            matvec_detail::widen_block(W.row(o0), tile, count);
            y.noalias() = x * ConstMap(tile, rows, W.cols).transpose();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Blocked driver shared by the SIMD paths. Arch provides:
//   lanes, nv_max, mr                       vector width (floats), vectors of t, rows of W per kernel
//   kernel(mr, nv)                          -> Kernel function pointer
//   widen(const T* src, float* dst, count)  16-bit weights to fp32
// A Kernel computes c[r][t] (+)= Σ_{k<kb} a[r·lda + k]·b[k·ldb + t] for r < mr, t < 16·nv... lanes·nv.
// pf[0..npf) are cache lines to prefetch into L2 while computing, one every 2 k (the driver's
// weights for a later block).
using Kernel = void (*)(const float* a, std::size_t lda, const float* b, std::size_t ldb, int kb, float* c,
                        std::size_t ldc, bool load_c, const char* const* pf, int npf);

#if RWKV_MATVEC_X86
// 8×8 fp32 transpose of src rows (stride ls) into dst rows (stride ld), in AVX registers: the
// scalar version of the Xᵀ packing cost about 5 % of a 64-row GEMM.
__attribute__((target("avx2"))) inline void transpose8(const float* src, std::size_t ls, float* dst, std::size_t ld) {
    __m256 r[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + static_cast<std::size_t>(i) * ls);
    for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
        u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(u[i], u[i + 2], 0x44);      // a0 b0 c0 d0 | a4 b4 c4 d4
        r[i + 1] = _mm256_shuffle_ps(u[i], u[i + 2], 0xee);  // a1 b1 c1 d1 | a5 ...
        r[i + 2] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + static_cast<std::size_t>(i) * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + static_cast<std::size_t>(i + 4) * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}
#endif

// Xᵀ panels: chunk j holds t in [64j, 64j + w), stored [K][round_up(w, lanes)] at offset K·64j, zero
// padded, so a kernel reads whole vectors. `simd`: 8×8 blocks with AVX2 (x86 paths only).
inline void pack_xt(const float* X, int n, int K, int lanes, int chunk, float* xt, bool simd) {
    const auto k_ = static_cast<std::size_t>(K);
    for (int t0 = 0; t0 < n; t0 += chunk) {
        const auto w = static_cast<std::size_t>(std::min(chunk, n - t0));
        const auto wp = round_up(w, static_cast<std::size_t>(lanes));
        float* dst = xt + k_ * static_cast<std::size_t>(t0);
        const float* src = X + static_cast<std::size_t>(t0) * k_;
        std::size_t j8 = 0, k8 = 0;
#if RWKV_MATVEC_X86
        if (simd) {
            j8 = w / 8 * 8;
            k8 = k_ / 8 * 8;
            for (std::size_t k0 = 0; k0 < k8; k0 += 8)
                for (std::size_t j0 = 0; j0 < j8; j0 += 8) transpose8(src + j0 * k_ + k0, k_, dst + k0 * wp + j0, wp);
        }
#else
        (void)simd;
#endif
        // Whatever the 8×8 blocks left: the columns past k8 for all t, then t past j8.
        for (std::size_t j = 0; j < w; ++j)
            for (std::size_t k = (j < j8 ? k8 : 0); k < k_; ++k) dst[k * wp + j] = src[j * k_ + k];
        for (std::size_t k = 0; k < k_; ++k)
            for (std::size_t j = w; j < wp; ++j) dst[k * wp + j] = 0.0f;
    }
}

template <class Arch, class T>
void gemm_rows_blocked(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end,
                       float* scratch) {
    constexpr int lanes = Arch::lanes, chunk = Arch::lanes * Arch::nv_max, MR = Arch::mr;
    // kcols (Arch::kc) columns per block; a panel float holds kstep of them (bf16 pairs, vdpbf16ps).
    constexpr int kcols = Arch::kc, kstep = Arch::kstep, lda = kcols / kstep;
    static_assert(max_chunk % chunk == 0 && mc % MR == 0 && ks % kcols == 0 && lda <= panel_floats);
    const int K = W.cols;
    const auto k_ = static_cast<std::size_t>(K), ldy = static_cast<std::size_t>(W.rows);
    const std::size_t np = round_up(static_cast<std::size_t>(n), 16);
    float* xt = align64(scratch);
    float* wpanel = align64(xt + k_ * np);
    float* cband = align64(wpanel + static_cast<std::size_t>(mc) * panel_floats);
    pack_xt(X, n, K, lanes, chunk, xt, true);
    Arch::finish_xt(xt, n, K, chunk);

    // Blocks in order: super-blocks of ks columns (their Xᵀ stays in L2), bands of mc rows, blocks
    // of kcols columns (their Xᵀ stays in L1). next() steps through them, so the loop can prefetch
    // the weights of the block after the current one.
    struct Block {
        int s0, o0, k0;
    };
    auto next = [&](Block b) {
        const int s1 = std::min(K, b.s0 + ks);
        if (b.k0 + kcols < s1) return Block{b.s0, b.o0, b.k0 + kcols};
        if (b.o0 + mc < row_end) return Block{b.s0, b.o0 + mc, b.s0};
        return Block{s1, row_begin, s1};
    };
    constexpr int max_pf = 128;
    const char* pf_lines[max_pf];
    for (Block blk{0, row_begin, 0}; blk.s0 < K; blk = next(blk)) {
        const int o0 = blk.o0, k0 = blk.k0, m = std::min(mc, row_end - o0);
        const int kb = std::min(kcols, K - k0);
        const bool band_start = k0 == blk.s0, band_end = k0 + kcols >= std::min(K, blk.s0 + ks);
        if (band_start && k0 != 0) {
            // Resume this band's sums from Y, so each output stays one FMA chain over all of K.
            for (int t = 0; t < n; ++t) {
                const float* y = Y + static_cast<std::size_t>(t) * ldy + static_cast<std::size_t>(o0);
                for (int r = 0; r < m; ++r)
                    cband[static_cast<std::size_t>(r) * np + static_cast<std::size_t>(t)] = y[r];
            }
        }
        // The weight block after this one, prefetched into L2 a few rows per kernel call, spread
        // over its k loop: its rows lie far apart (one stream per row), more streams than the
        // hardware prefetchers follow, so without this the widening waits on memory latency; and
        // issued in one burst they fill the line-fill buffers and stall.
        const Block pf = next(next(blk));
        const int pf_m = pf.s0 < K ? std::min(mc, row_end - pf.o0) : 0, pf_kb = std::min(kcols, K - pf.k0);
        // Copy even fp32 weights: rows of W are a multiple of 4 KiB apart for the usual widths, so
        // reading 6 of them in place makes the L1 sets they share (with the Xᵀ block) thrash.
        for (int r = 0; r < m; ++r)
            Arch::widen(W.row(o0 + r) + k0, wpanel + static_cast<std::size_t>(r) * lda, static_cast<std::size_t>(kb));
        for (int t0 = 0; t0 < n; t0 += chunk) {
            const int w = std::min(chunk, n - t0);
            const int nv = (w + lanes - 1) / lanes;
            const auto ldb = static_cast<std::size_t>(nv * lanes);
            const float* b = xt + k_ * static_cast<std::size_t>(t0) + static_cast<std::size_t>(k0 / kstep) * ldb;
            for (int r0 = 0; r0 < m; r0 += MR) {
                const int mr = std::min(MR, m - r0);
                int npf = 0;
                if (t0 == 0) {
                    const std::size_t bytes = static_cast<std::size_t>(pf_kb) * sizeof(T);
                    for (int r = r0; r < std::min(r0 + MR, pf_m); ++r) {
                        const char* row = reinterpret_cast<const char*>(W.row(pf.o0 + r) + pf.k0);
                        for (std::size_t i = 0; i < bytes && npf < max_pf; i += 64) pf_lines[npf++] = row + i;
                    }
                }
                Arch::kernel(mr, nv)(wpanel + static_cast<std::size_t>(r0) * lda, lda, b, ldb, kb,
                                     cband + static_cast<std::size_t>(r0) * np + static_cast<std::size_t>(t0), np,
                                     k0 != 0, pf_lines, std::min(npf, (kb + 2 * kstep - 1) / (2 * kstep)));
            }
        }
        if (band_end) {
            // Yᵀ band -> Y (final once the last super-block is done).
            for (int t = 0; t < n; ++t) {
                float* y = Y + static_cast<std::size_t>(t) * ldy + static_cast<std::size_t>(o0);
                for (int r = 0; r < m; ++r)
                    y[r] = cband[static_cast<std::size_t>(r) * np + static_cast<std::size_t>(t)];
            }
        }
    }
}

#if RWKV_MATVEC_X86
// ---------------------------------------------------------------------------------------------
// AVX-512: 6 rows × 4 zmm of t = 24 accumulators, + 4 loaded vectors of Xᵀ; the broadcasts
// come from memory as FMA operands. Per k: 24 FMAs (12 cycles on two FMA ports) against 10 loads.

#define RWKV_GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

template <int MR, int NV>
RWKV_GEMM_AVX512 void kernel_avx512(const float* a, std::size_t lda, const float* b, std::size_t ldb, int kb, float* c,
                                    std::size_t ldc, bool load_c, const char* const* pf, int npf) {
    __m512 acc[MR][NV];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = load_c ? _mm512_loadu_ps(c + static_cast<std::size_t>(r) * ldc + 16 * v) : _mm512_setzero_ps();
    }
    const float* ar[MR];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) ar[r] = a + static_cast<std::size_t>(r) * lda;
    for (int k = 0; k < kb; ++k) {
        if ((k & 1) == 0 && (k >> 1) < npf) _mm_prefetch(pf[k >> 1], _MM_HINT_T1);
        __m512 bv[NV];
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
        RWKV_CPU_UNROLL(32)
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(ar[r][k]);
            RWKV_CPU_UNROLL(32)
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
        b += ldb;
    }
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + static_cast<std::size_t>(r) * ldc + 16 * v, acc[r][v]);
    }
}

struct Avx512 {
    static constexpr int lanes = 16, nv_max = 4, mr = 6, kc = gemm_detail::kc, kstep = 1;
    static void finish_xt(float*, int, int, int) {}

    template <int MR>
    static Kernel pick_nv(int nv) {
        switch (nv) {
            case 1: return kernel_avx512<MR, 1>;
            case 2: return kernel_avx512<MR, 2>;
            case 3: return kernel_avx512<MR, 3>;
            default: return kernel_avx512<MR, 4>;
        }
    }
    static Kernel kernel(int mr_, int nv) {
        switch (mr_) {
            case 1: return pick_nv<1>(nv);
            case 2: return pick_nv<2>(nv);
            case 3: return pick_nv<3>(nv);
            case 4: return pick_nv<4>(nv);
            case 5: return pick_nv<5>(nv);
            default: return pick_nv<6>(nv);
        }
    }
    template <class T>
    RWKV_GEMM_AVX512 static void widen(const T* src, float* dst, std::size_t count) {
        std::size_t i = 0;
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, matvec_detail::load16(src + i));
        if (i < count) {
            const auto m = static_cast<__mmask16>((1u << (count - i)) - 1u);
            _mm512_mask_storeu_ps(dst + i, m, matvec_detail::load16(src + i, m));
        }
    }
};

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: 6 rows × 2 ymm of t = 12 accumulators + 2 loaded + 1 broadcast of the 16 registers.

#define RWKV_GEMM_AVX2 __attribute__((target("avx2,fma,f16c")))

template <int MR, int NV>
RWKV_GEMM_AVX2 void kernel_avx2(const float* a, std::size_t lda, const float* b, std::size_t ldb, int kb, float* c,
                                std::size_t ldc, bool load_c, const char* const* pf, int npf) {
    __m256 acc[MR][NV];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = load_c ? _mm256_loadu_ps(c + static_cast<std::size_t>(r) * ldc + 8 * v) : _mm256_setzero_ps();
    }
    const float* ar[MR];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) ar[r] = a + static_cast<std::size_t>(r) * lda;
    for (int k = 0; k < kb; ++k) {
        if ((k & 1) == 0 && (k >> 1) < npf) _mm_prefetch(pf[k >> 1], _MM_HINT_T1);
        __m256 bv[NV];
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + 8 * v);
        RWKV_CPU_UNROLL(32)
        for (int r = 0; r < MR; ++r) {
            const __m256 av = _mm256_broadcast_ss(ar[r] + k);
            RWKV_CPU_UNROLL(32)
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
        }
        b += ldb;
    }
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + static_cast<std::size_t>(r) * ldc + 8 * v, acc[r][v]);
    }
}

struct Avx2 {
    static constexpr int lanes = 8, nv_max = 2, mr = 6, kc = gemm_detail::kc, kstep = 1;
    static void finish_xt(float*, int, int, int) {}

    template <int MR>
    static Kernel pick_nv(int nv) {
        return nv == 1 ? kernel_avx2<MR, 1> : kernel_avx2<MR, 2>;
    }
    static Kernel kernel(int mr_, int nv) {
        switch (mr_) {
            case 1: return pick_nv<1>(nv);
            case 2: return pick_nv<2>(nv);
            case 3: return pick_nv<3>(nv);
            case 4: return pick_nv<4>(nv);
            case 5: return pick_nv<5>(nv);
            default: return pick_nv<6>(nv);
        }
    }
    template <class T>
    RWKV_GEMM_AVX2 static void widen(const T* src, float* dst, std::size_t count) {
        std::size_t i = 0;
        for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, matvec_detail::load8(src + i));
        if (i < count) matvec_detail::widen_block(src + i, dst + i, count - i);
    }
};

// ---------------------------------------------------------------------------------------------
// AVX512_BF16 (opt-in, bfloat16 weights): vdpbf16ps multiplies pairs of bf16 and adds both
// products to an fp32 lane, so a panel float holds two consecutive columns: the weights as they
// are stored (a dword broadcast per row), X rounded to bf16 with the same pairs interleaved per t.

#define RWKV_GEMM_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

inline bool bf16_dot_supported() {
    static const bool ok = [] {
        if (!isa_supported(Isa::avx512)) return false;
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
        return (a & (1u << 5)) != 0;  // CPUID.(7,1):EAX.AVX512_BF16
    }();
    return ok;
}

template <int MR, int NV>
RWKV_GEMM_BF16 void kernel_bf16(const float* a, std::size_t lda, const float* b, std::size_t ldb, int kb, float* c,
                                std::size_t ldc, bool load_c, const char* const* pf, int npf) {
    __m512 acc[MR][NV];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = load_c ? _mm512_loadu_ps(c + static_cast<std::size_t>(r) * ldc + 16 * v) : _mm512_setzero_ps();
    }
    const float* ar[MR];
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) ar[r] = a + static_cast<std::size_t>(r) * lda;
    const int pairs = (kb + 1) / 2;
    for (int k = 0; k < pairs; ++k) {
        if ((k & 1) == 0 && (k >> 1) < npf) _mm_prefetch(pf[k >> 1], _MM_HINT_T1);
        __m512bh bv[NV];
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_load_ps(b + 16 * v);
        RWKV_CPU_UNROLL(32)
        for (int r = 0; r < MR; ++r) {
            const __m512bh av = (__m512bh)_mm512_set1_ps(ar[r][k]);  // the pair's bits, broadcast
            RWKV_CPU_UNROLL(32)
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
        }
        b += ldb;
    }
    RWKV_CPU_UNROLL(32)
    for (int r = 0; r < MR; ++r) {
        RWKV_CPU_UNROLL(32)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + static_cast<std::size_t>(r) * ldc + 16 * v, acc[r][v]);
    }
}

struct Bf16Dot {
    static constexpr int lanes = 16, nv_max = 4, mr = 6, kc = 2 * gemm_detail::kc, kstep = 2;

    template <int MR>
    static Kernel pick_nv(int nv) {
        switch (nv) {
            case 1: return kernel_bf16<MR, 1>;
            case 2: return kernel_bf16<MR, 2>;
            case 3: return kernel_bf16<MR, 3>;
            default: return kernel_bf16<MR, 4>;
        }
    }
    static Kernel kernel(int mr_, int nv) {
        switch (mr_) {
            case 1: return pick_nv<1>(nv);
            case 2: return pick_nv<2>(nv);
            case 3: return pick_nv<3>(nv);
            case 4: return pick_nv<4>(nv);
            case 5: return pick_nv<5>(nv);
            default: return pick_nv<6>(nv);
        }
    }
    // Weights: copied as they are, a zero after an odd count (its X partner is zero too, but
    // whatever lies past the row could be a NaN pattern).
    static void widen(const bfloat16* src, float* dst, std::size_t count) {
        std::memcpy(static_cast<void*>(dst), src, count * sizeof(bfloat16));
        if (count % 2) std::memset(reinterpret_cast<char*>(dst) + count * sizeof(bfloat16), 0, sizeof(bfloat16));
    }
    // Xᵀ (fp32, [K][wp] per chunk) -> [ceil(K/2)][wp] dwords of (bf16 x[2p], bf16 x[2p+1]), in
    // place: pair p is written over row p, which pair p/2 has already read.
    RWKV_GEMM_BF16 static void finish_xt(float* xt, int n, int K, int chunk) {
        const auto k_ = static_cast<std::size_t>(K);
        for (int t0 = 0; t0 < n; t0 += chunk) {
            const auto wp = round_up(static_cast<std::size_t>(std::min(chunk, n - t0)), 16);
            float* base = xt + k_ * static_cast<std::size_t>(t0);
            for (std::size_t p = 0; 2 * p < k_; ++p) {
                for (std::size_t j = 0; j < wp; j += 16) {
                    const __m512 even = _mm512_load_ps(base + 2 * p * wp + j);
                    const __m512 odd =
                        2 * p + 1 < k_ ? _mm512_load_ps(base + (2 * p + 1) * wp + j) : _mm512_setzero_ps();
                    // Round to nearest even (vcvtneps2bf16), then (odd << 16) | even per dword.
                    const __m512i lo =
                        _mm512_maskz_cvtepu16_epi32(matvec_detail::all16, (__m256i)_mm512_cvtneps_pbh(even));
                    const __m512i hi =
                        _mm512_maskz_cvtepu16_epi32(matvec_detail::all16, (__m256i)_mm512_cvtneps_pbh(odd));
                    _mm512_store_si512(base + p * wp + j,
                                       _mm512_or_si512(lo, _mm512_maskz_slli_epi32(matvec_detail::all16, hi, 16)));
                }
            }
        }
    }
};

#undef RWKV_GEMM_BF16
#endif  // RWKV_MATVEC_X86

}  // namespace gemm_detail

// Floats of scratch one thread needs for gemm_rows with n activation rows of `cols` columns,
// on any path.
inline std::size_t gemm_scratch_floats(int n, int cols) {
    const std::size_t eigen = static_cast<std::size_t>(gemm_detail::eigen_band) * static_cast<std::size_t>(cols);
    return std::max({eigen, gemm_detail::blocked_scratch(n, cols), gemm_amx_scratch_floats(n, cols)});
}

// Whether gemm_rows/gemm honour GemmPrecision::bf16_activations for weights of type T on this CPU
// (bfloat16 weights and AVX512_BF16); elsewhere that request computes in fp32.
template <class T>
bool gemm_bf16_supported() {
#if RWKV_MATVEC_X86
    return std::is_same_v<T, bfloat16> && gemm_detail::bf16_dot_supported();
#else
    return false;
#endif
}

// Y[t][o] = Σ_c W[o][c]·X[t][c] for t < n and o in [row_begin, row_end); X is [n][W.cols], Y is
// [n][W.rows] (only the given columns are written). `scratch` holds gemm_scratch_floats(n, W.cols)
// floats, private to the caller. A path the CPU lacks is replaced by the best one below it;
// bf16_activations applies on the avx512 path when gemm_bf16_supported<T>().
template <class T>
void gemm_rows(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end, float* scratch, Isa isa,
               GemmPrecision precision = GemmPrecision::fp32) {
    static_assert(is_weight_scalar_v<T>, "GEMM weights must be float, bfloat16 or half");
    if (n <= 0 || row_begin >= row_end) return;
    if (W.cols == 0) {
        for (int t = 0; t < n; ++t)
            std::fill(Y + static_cast<std::size_t>(t) * static_cast<std::size_t>(W.rows) + row_begin,
                      Y + static_cast<std::size_t>(t) * static_cast<std::size_t>(W.rows) + row_end, 0.0f);
        return;
    }
#if RWKV_MATVEC_X86
    if (isa == Isa::avx512 && !isa_supported(Isa::avx512)) isa = Isa::avx2;
    if (isa == Isa::avx2 && !isa_supported(Isa::avx2)) isa = Isa::generic;
    if constexpr (std::is_same_v<T, bfloat16>) {
        // bf16 activations: AMX tiles where the CPU (and OS) allow them, else vdpbf16ps.
        if (isa == Isa::avx512 && precision == GemmPrecision::bf16_activations && amx_bf16_available())
            return gemm_rows_amx(W, X, n, Y, row_begin, row_end, scratch);
        if (isa == Isa::avx512 && precision == GemmPrecision::bf16_activations && gemm_detail::bf16_dot_supported())
            return gemm_detail::gemm_rows_blocked<gemm_detail::Bf16Dot>(W, X, n, Y, row_begin, row_end, scratch);
    }
    if (isa == Isa::avx512)
        return gemm_detail::gemm_rows_blocked<gemm_detail::Avx512>(W, X, n, Y, row_begin, row_end, scratch);
    if (isa == Isa::avx2)
        return gemm_detail::gemm_rows_blocked<gemm_detail::Avx2>(W, X, n, Y, row_begin, row_end, scratch);
#else
    (void)isa;
#endif
    (void)precision;
    gemm_detail::gemm_rows_eigen(W, X, n, Y, row_begin, row_end, scratch);
}

template <class T>
void gemm_rows(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end, float* scratch,
               GemmPrecision precision = GemmPrecision::fp32) {
    gemm_rows(W, X, n, Y, row_begin, row_end, scratch, active_isa(), precision);
}

// Rows of W go to threads in units of this many (a multiple of every micro-kernel's rows and a
// whole 64-byte line of each Y row).
inline constexpr int gemm_row_unit = 48;
static_assert(gemm_row_unit % gemm_detail::eigen_band == 0,
              "thread splits must fall on the Eigen path's band boundaries");

// Y[n][W.rows] = X[n][W.cols] · Wᵀ, rows split across the pool's threads (pool may be null; when
// another thread holds it, the caller does all the work). per_thread_scratch grows (only) to
// the pool's size and gemm_scratch_floats each, so steady-state calls allocate nothing.
template <class T>
void gemm(const Matrix<T>& W, const float* X, int n, float* Y, ThreadPool* pool,
          std::vector<std::vector<float>>& per_thread_scratch, Isa isa, GemmPrecision precision = GemmPrecision::fp32) {
    if (n <= 0 || W.rows == 0) return;
    const int threads = pool ? pool->size() : 1;
    const std::size_t need = gemm_scratch_floats(n, W.cols);
    if (per_thread_scratch.size() < static_cast<std::size_t>(threads))
        per_thread_scratch.resize(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i) {
        auto& s = per_thread_scratch[static_cast<std::size_t>(i)];
        if (s.size() < need) s.resize(need);
    }
    auto work = [&](int t, int nt) {
        const int units = (W.rows + gemm_row_unit - 1) / gemm_row_unit;
        const int u0 = units * t / nt, u1 = units * (t + 1) / nt;
        const int rb = u0 * gemm_row_unit, re = std::min(W.rows, u1 * gemm_row_unit);
        if (rb < re)
            gemm_rows(W, X, n, Y, rb, re, per_thread_scratch[static_cast<std::size_t>(t)].data(), isa, precision);
    };
    // Tiny products are not worth waking the workers for.
    const bool tiny = static_cast<std::size_t>(n) * W.size() < (std::size_t{1} << 16);
    if (tiny || pool == nullptr || pool->size() == 1 || !pool->try_run(work)) work(0, 1);
}

template <class T>
void gemm(const Matrix<T>& W, const float* X, int n, float* Y, ThreadPool* pool,
          std::vector<std::vector<float>>& per_thread_scratch, GemmPrecision precision = GemmPrecision::fp32) {
    gemm(W, X, n, Y, pool, per_thread_scratch, active_isa(), precision);
}

}  // namespace rwkv::backend::cpu

#undef RWKV_GEMM_AVX512
#undef RWKV_GEMM_AVX2
