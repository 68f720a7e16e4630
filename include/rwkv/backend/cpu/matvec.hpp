#pragma once
// Decode mat-vec for the CPU backend: y[o] = Σ_c W[o][c]·x[c] with W stored as float, bfloat16 or
// half and x, y, accumulation in fp32.
//
// Decode reads every weight exactly once per token, so this is bound by memory bandwidth, not
// arithmetic. What matters: (1) widen 16-bit weights in registers, never through memory;
// (2) process several rows at once, sharing each load of x and giving every thread several
// interleaved sequential streams, which the hardware prefetchers serve faster than one stream;
// (3) split rows across a persistent thread pool with one dispatch (one barrier) for several
// independent products (r, k, v, g).
//
// Paths, picked at run time once (the library is header-only, so we cannot rely on the user's
// -m flags): AVX-512 (F+BW+VL), AVX2+FMA+F16C, and a generic path written over xsimd's default
// batch for the build (SSE2, NEON, or whatever -march enables; plain loops where xsimd has no
// architecture). The x86 kernels carry their own target attributes.
//
// Determinism: every output row is computed by one thread, with one accumulator walked over the
// columns in order, whatever the row grouping; so results do not depend on the thread count or
// on how rows are split, only on the path (Isa).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string_view>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../matrix.hpp"
#include "../../scalar.hpp"
#include "isa.hpp"
#include "threads.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RWKV_MATVEC_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define RWKV_MATVEC_X86 0
#endif

namespace rwkv::backend::cpu {

namespace matvec_detail {

// ---------------------------------------------------------------------------------------------
// Row layout, all paths: 8 rows at a time, taken from 8 equal slices of the row range (rows
// b, b+n/8, b+2n/8, ... then b+1, ...), so that each thread reads 8 sequential streams far apart
// in memory, as the bandwidth probe does; 8 independent FMA chains also hide the FMA latency.
// Measured on this machine (one thread, bf16 2048x2048): 8 adjacent rows (4 KiB apart)
// reached 77 % of the 8-stream probe, 8 slices 82 %, 8 slices + software prefetch 95-100 %
// (fp32 was at 95 % either way). The prefetch runs `prefetch_cols` ahead in each row and
// spills into the row's successor, which is that stream's next row.

inline constexpr std::size_t prefetch_cols = 256;

template <class T>
inline void prefetch_ahead(const T* row, std::size_t c) {
    // Integer arithmetic: the address may lie past the matrix (prefetches never fault).
    const auto addr = reinterpret_cast<std::uintptr_t>(row) + (c + prefetch_cols) * sizeof(T);
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(reinterpret_cast<const void*>(addr), 0, 3);
#else
    (void)addr;
#endif
}

// Calls kernel(rows, ys, count) for groups of 8 rows laid out as described above, then for the
// leftover rows one at a time.
template <class T, class Kernel>
inline void for_row_groups(const Matrix<T>& W, float* y, int row_begin, int row_end, Kernel kernel) {
    const int per = (row_end - row_begin) / 8;
    const T* w[8];
    float* out[8];
    for (int i = 0; i < per; ++i) {
        for (int k = 0; k < 8; ++k) {
            const int o = row_begin + k * per + i;
            w[k] = W.row(o);
            out[k] = y + o;
        }
        kernel(w, out, 8);
    }
    for (int o = row_begin + 8 * per; o < row_end; ++o) {
        w[0] = W.row(o);
        out[0] = y + o;
        kernel(w, out, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Generic path.

// Exact half -> float without branches, so the compiler can vectorise the widening loop:
// normals and inf/nan by rebiasing the exponent, subnormals as an exact int * 2^-24.
inline float half_bits_to_float(std::uint16_t h) {
    // Signed 32-bit lanes (SSE2 has only signed compares and int -> float conversions) and
    // selects by masks: with ternaries GCC sinks the float multiply into a branch and gives up.
    const std::int32_t em = h & 0x7fff;
    const std::int32_t special = -static_cast<std::int32_t>(em >= 0x7c00);         // all ones for inf/nan
    const std::int32_t normal = (em << 13) + 0x38000000 + (special & 0x38000000);  // rebias 112 (+128)
    const std::int32_t subnormal = std::bit_cast<std::int32_t>(static_cast<float>(em) * 0x1p-24f);
    const std::int32_t is_sub = -static_cast<std::int32_t>(em < 0x0400);
    const std::int32_t mag = (subnormal & is_sub) | (normal & ~is_sub);  // masks, not branches
    return std::bit_cast<float>(static_cast<std::uint32_t>(mag) | (static_cast<std::uint32_t>(h & 0x8000) << 16));
}

template <class T>
inline void widen_block(const T* src, float* dst, std::size_t n) {
    if constexpr (std::is_same_v<T, bfloat16>) {
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(src[i].bits) << 16);
    } else if constexpr (std::is_same_v<T, half>) {
#if defined(__aarch64__)
        // AArch64 converts __fp16 natively (and vectorised: fcvtl).
        for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(std::bit_cast<__fp16>(src[i].bits));
#else
        for (std::size_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i].bits);
#endif
    } else {
        std::memcpy(dst, src, n * sizeof(float));
    }
}

template <class T>
inline float widen_one(T v) {
    float f;
    widen_block(&v, &f, 1);
    return f;
}

#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
using GVec = xsimd::batch<float>;
inline GVec gvec_zero() { return GVec(0.0f); }
inline GVec gvec_load(const float* p) { return GVec::load_unaligned(p); }
inline GVec gvec_fma(GVec a, GVec b, GVec c) { return xsimd::fma(a, b, c); }
inline float gvec_sum(GVec a) {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::reduce_add(a);
#else
    return xsimd::hadd(a);
#endif
}
constexpr std::size_t gvec_size = GVec::size;
#else
// No SIMD architecture known to xsimd: four independent scalar lanes, which compilers can
// still vectorise.
struct GVec {
    float v[4];
};
inline GVec gvec_zero() { return GVec{{0.0f, 0.0f, 0.0f, 0.0f}}; }
inline GVec gvec_load(const float* p) { return GVec{{p[0], p[1], p[2], p[3]}}; }
inline GVec gvec_fma(GVec a, GVec b, GVec c) {
    for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
}
inline float gvec_sum(GVec a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
constexpr std::size_t gvec_size = 4;
#endif

// *y[r] = w[r]·x for R rows: one accumulator per row, columns in order. 16-bit weights are
// widened in blocks of 64 columns into a stack buffer that stays in L1.
template <class T, int R>
inline void rows_generic(const T* const* w, const float* x, std::size_t cols, float* const* y) {
    constexpr std::size_t S = gvec_size;
    constexpr std::size_t K = S > 64 ? S : 64;
    GVec acc[R];
    float tail[R];
    for (int r = 0; r < R; ++r) {
        acc[r] = gvec_zero();
        tail[r] = 0.0f;
    }
    const std::size_t full = cols - cols % S;
    for (std::size_t c0 = 0; c0 < full; c0 += K) {
        const std::size_t kb = std::min(K, full - c0);
        for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c0);
        if constexpr (std::is_same_v<T, float>) {
            for (std::size_t c = 0; c < kb; c += S) {
                const GVec xv = gvec_load(x + c0 + c);
                for (int r = 0; r < R; ++r) acc[r] = gvec_fma(gvec_load(w[r] + c0 + c), xv, acc[r]);
            }
        } else {
            float buf[R][K];
            for (int r = 0; r < R; ++r) widen_block(w[r] + c0, buf[r], kb);
            for (std::size_t c = 0; c < kb; c += S) {
                const GVec xv = gvec_load(x + c0 + c);
                for (int r = 0; r < R; ++r) acc[r] = gvec_fma(gvec_load(buf[r] + c), xv, acc[r]);
            }
        }
    }
    for (std::size_t c = full; c < cols; ++c)
        for (int r = 0; r < R; ++r) tail[r] += widen_one(w[r][c]) * x[c];
    for (int r = 0; r < R; ++r) *y[r] = gvec_sum(acc[r]) + tail[r];
}

template <class T>
void matvec_rows_generic(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end) {
    const auto cols = static_cast<std::size_t>(W.cols);
    for_row_groups(W, y, row_begin, row_end, [&](const T* const* w, float* const* out, int n) {
        if (n == 8) rows_generic<T, 8>(w, x, cols, out);
        else rows_generic<T, 1>(w, x, cols, out);
    });
}

#if RWKV_MATVEC_X86
// ---- AVX-512: 16 columns per step; column tails use masked loads, which do not fault on the
// masked-out bytes, so rows need no padding.

#define RWKV_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

// The all-ones "maskz" forms compile to the plain instructions; GCC 12 warns (falsely) about the
// undefined pass-through register inside the unmasked intrinsics when they are inlined.
constexpr __mmask16 all16 = 0xffff;

RWKV_AVX512_TARGET inline __m512 widen16(__m256i bf16) {  // bf16 = top half of an fp32
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all16, _mm512_maskz_cvtepu16_epi32(all16, bf16), 16));
}
RWKV_AVX512_TARGET inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
RWKV_AVX512_TARGET inline __m512 load16(const bfloat16* p) {
    return widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
RWKV_AVX512_TARGET inline __m512 load16(const half* p) {
    return _mm512_maskz_cvtph_ps(all16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
RWKV_AVX512_TARGET inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
RWKV_AVX512_TARGET inline __m512 load16(const bfloat16* p, __mmask16 m) {
    return widen16(_mm256_maskz_loadu_epi16(m, p));
}
RWKV_AVX512_TARGET inline __m512 load16(const half* p, __mmask16 m) {
    return _mm512_maskz_cvtph_ps(all16, _mm256_maskz_loadu_epi16(m, p));
}

// Horizontal sum in a fixed order (halves, then quarters, ...).
RWKV_AVX512_TARGET inline float hsum16(__m512 v) {
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all16, v, v, 0x4e));  // + the other 256-bit half
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all16, v, v, 0xb1));  // + the neighbouring 128-bit lane
    __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// *y[r] = w[r]·x for R rows: one accumulator per row, columns in order.
template <class T, int R>
RWKV_AVX512_TARGET void rows_avx512(const T* const* w, const float* x, std::size_t cols, float* const* y) {
    constexpr std::size_t line = 64 / sizeof(T);  // columns per cache line of weights
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    std::size_t c = 0;
    for (; c + line <= cols; c += line) {
        for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c);
        for (std::size_t s = c; s < c + line; s += 16) {
            const __m512 xv = _mm512_loadu_ps(x + s);
            for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(load16(w[r] + s), xv, acc[r]);
        }
    }
    for (; c + 16 <= cols; c += 16) {
        const __m512 xv = _mm512_loadu_ps(x + c);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(load16(w[r] + c), xv, acc[r]);
    }
    if (c < cols) {
        const auto m = static_cast<__mmask16>((1u << (cols - c)) - 1u);
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(load16(w[r] + c, m), xv, acc[r]);
    }
    for (int r = 0; r < R; ++r) *y[r] = hsum16(acc[r]);
}

template <class T>
void matvec_rows_avx512(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end) {
    const auto cols = static_cast<std::size_t>(W.cols);
    for_row_groups(W, y, row_begin, row_end, [&](const T* const* w, float* const* out, int n) {
        if (n == 8) rows_avx512<T, 8>(w, x, cols, out);
        else rows_avx512<T, 1>(w, x, cols, out);
    });
}

// ---- AVX2 + FMA + F16C: 8 columns per step (8 accumulators + x + temporaries fit the 16 ymm
// registers). AVX2 has no masked 16-bit loads, so the column tail goes through small
// zero-padded copies.

#define RWKV_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

RWKV_AVX2_TARGET inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
RWKV_AVX2_TARGET inline __m256 load8(const bfloat16* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
RWKV_AVX2_TARGET inline __m256 load8(const half* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

RWKV_AVX2_TARGET inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class T, int R>
RWKV_AVX2_TARGET void rows_avx2(const T* const* w, const float* x, std::size_t cols, float* const* y) {
    constexpr std::size_t line = 64 / sizeof(T);
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    std::size_t c = 0;
    for (; c + line <= cols; c += line) {
        for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c);
        for (std::size_t s = c; s < c + line; s += 8) {
            const __m256 xv = _mm256_loadu_ps(x + s);
            for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(load8(w[r] + s), xv, acc[r]);
        }
    }
    for (; c + 8 <= cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(load8(w[r] + c), xv, acc[r]);
    }
    if (c < cols) {
        const std::size_t n = cols - c;
        float xt[8] = {};
        std::memcpy(xt, x + c, n * sizeof(float));
        const __m256 xv = _mm256_loadu_ps(xt);
        for (int r = 0; r < R; ++r) {
            T wt[8] = {};
            std::memcpy(static_cast<void*>(wt), w[r] + c, n * sizeof(T));
            acc[r] = _mm256_fmadd_ps(load8(wt), xv, acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = hsum8(acc[r]);
}

template <class T>
void matvec_rows_avx2(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end) {
    const auto cols = static_cast<std::size_t>(W.cols);
    for_row_groups(W, y, row_begin, row_end, [&](const T* const* w, float* const* out, int n) {
        if (n == 8) rows_avx2<T, 8>(w, x, cols, out);
        else rows_avx2<T, 1>(w, x, cols, out);
    });
}

#undef RWKV_AVX512_TARGET
#undef RWKV_AVX2_TARGET
#endif  // RWKV_MATVEC_X86

}  // namespace matvec_detail

// y[o] = Σ_c W[o][c]·x[c] for o in [row_begin, row_end) (y indexes the whole output), on the
// given path. A path the CPU lacks is replaced by the best one it has below it.
template <class T>
void matvec_rows(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end, Isa isa) {
    static_assert(is_weight_scalar_v<T>, "mat-vec weights must be float, bfloat16 or half");
    if (row_begin >= row_end) return;
#if RWKV_MATVEC_X86
    if (isa == Isa::avx512 && !isa_supported(Isa::avx512)) isa = Isa::avx2;
    if (isa == Isa::avx2 && !isa_supported(Isa::avx2)) isa = Isa::generic;
    if (isa == Isa::avx512) return matvec_detail::matvec_rows_avx512(W, x, y, row_begin, row_end);
    if (isa == Isa::avx2) return matvec_detail::matvec_rows_avx2(W, x, y, row_begin, row_end);
#else
    (void)isa;
#endif
    matvec_detail::matvec_rows_generic(W, x, y, row_begin, row_end);
}

// As above on active_isa().
template <class T>
void matvec_rows(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end) {
    static_assert(is_weight_scalar_v<T>, "mat-vec weights must be float, bfloat16 or half");
    if (row_begin >= row_end) return;
#if RWKV_MATVEC_X86
    // active_isa() is already validated, so dispatch without re-checking the CPU.
    switch (active_isa()) {
        case Isa::avx512: return matvec_detail::matvec_rows_avx512(W, x, y, row_begin, row_end);
        case Isa::avx2: return matvec_detail::matvec_rows_avx2(W, x, y, row_begin, row_end);
        default: break;
    }
#endif
    matvec_detail::matvec_rows_generic(W, x, y, row_begin, row_end);
}

// One product of a fused dispatch: y = W·x (y must not overlap any job's x). Jobs must not write
// to each other's inputs.
template <class T>
struct MatvecJob {
    const Matrix<T>* W = nullptr;
    const float* x = nullptr;
    float* y = nullptr;
};

// Rows go to threads in units of this many rows, so that threads' shares of y meet on 64-byte
// line boundaries (when y is aligned) and no two threads write the same cache line.
inline constexpr int matvec_row_unit = 16;
// Below this many bytes of weights, waking the workers costs more than it saves.
inline constexpr std::size_t matvec_parallel_min_bytes = std::size_t{64} << 10;

namespace matvec_detail {

// Thread t's share of the concatenated row units of all jobs, balanced by weight count: unit u of
// job j belongs to the thread whose cost window [t·total/n, (t+1)·total/n) holds the unit's
// starting cost. Consecutive windows meet, so each unit is computed exactly once.
template <class T>
void matvec_share(std::span<const MatvecJob<T>> jobs, int t, int n, Isa isa) {
    using u64 = std::uint64_t;
    constexpr int U = matvec_row_unit;
    u64 total = 0;
    for (const auto& j : jobs) total += static_cast<u64>((j.W->rows + U - 1) / U) * static_cast<u64>(j.W->cols);
    const u64 lo = total * static_cast<u64>(t) / static_cast<u64>(n);
    const u64 hi = total * static_cast<u64>(t + 1) / static_cast<u64>(n);
    u64 base = 0;
    for (const auto& j : jobs) {
        const Matrix<T>& W = *j.W;
        const u64 units = static_cast<u64>((W.rows + U - 1) / U);
        const u64 cols = static_cast<u64>(W.cols);
        if (cols == 0) {  // no cost to balance: thread 0 writes the zeros
            if (t == 0) std::fill(j.y, j.y + W.rows, 0.0f);
            continue;
        }
        auto first_unit_at = [&](u64 cost) {  // first unit whose start cost is >= cost
            if (cost <= base) return u64{0};
            return std::min(units, (cost - base + cols - 1) / cols);
        };
        const u64 ub = first_unit_at(lo), ue = first_unit_at(hi);
        if (ub < ue) {
            const int rb = static_cast<int>(ub) * U;
            const int re = std::min(W.rows, static_cast<int>(ue) * U);
            matvec_rows(W, j.x, j.y, rb, re, isa);
        }
        base += units * cols;
    }
}

}  // namespace matvec_detail

// Several independent mat-vecs in one pool dispatch (one wake-up, one barrier), rows split
// across the pool's threads. pool may be null (single-threaded). Small totals run on the caller.
// If another thread is using the pool, the work runs on the caller instead of waiting.
template <class T>
void matvec_many(std::span<const MatvecJob<T>> jobs, ThreadPool* pool) {
    static_assert(is_weight_scalar_v<T>, "mat-vec weights must be float, bfloat16 or half");
    const Isa isa = active_isa();
    std::size_t bytes = 0;
    for (const auto& j : jobs) bytes += j.W->size() * sizeof(T);
    auto work = [jobs, isa](int t, int n) { matvec_detail::matvec_share(jobs, t, n, isa); };
    if (pool == nullptr || pool->size() == 1 || bytes < matvec_parallel_min_bytes || !pool->try_run(work)) work(0, 1);
}

template <class T>
void matvec_many(std::initializer_list<MatvecJob<T>> jobs, ThreadPool* pool) {
    matvec_many(std::span<const MatvecJob<T>>(jobs.begin(), jobs.size()), pool);
}

// y = W·x, rows split across the pool's threads (pool may be null).
template <class T>
void matvec(const Matrix<T>& W, const float* x, float* y, ThreadPool* pool) {
    const MatvecJob<T> job{&W, x, y};
    matvec_many(std::span<const MatvecJob<T>>(&job, 1), pool);
}

}  // namespace rwkv::backend::cpu
