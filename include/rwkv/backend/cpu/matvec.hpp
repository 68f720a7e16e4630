#pragma once
// Decode mat-vec for the CPU backend: y[o] = Σ_c W[o][c]·x[c] with W stored as float, bfloat16 or
// half and x, y, accumulation in fp32; and its multi-vector form Y[v][o] = Σ_c W[o][c]·X[v][c] for
// NB vectors (batched decoding: one token of each of B sequences), weights streamed once for all.
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
// Determinism: every output (row, vector) is computed by one thread, with one accumulator walked
// over the columns in order, whatever the grouping of rows and vectors: the single mat-vec is the
// NB = 1 instance of the same row kernel. So results do not depend on the thread count, on how
// rows are split, or on how many vectors share a pass: a batched product gives, for each vector,
// bit for bit the single mat-vec's result (on the same path, Isa).

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
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace rwkv::backend::cpu {

namespace matvec_detail {

// ---------------------------------------------------------------------------------------------
// Row layout, all paths: R rows at a time, taken from R equal slices of the row range (rows
// b, b+n/R, b+2n/R, ... then b+1, ...), so that each thread reads R sequential streams far apart
// in memory, as the bandwidth probe does; R·NB independent FMA chains also hide the FMA latency.
// Measured on this machine (one thread, bf16 2048x2048, single vector, R = 8): 8 adjacent rows
// (4 KiB apart) reached 77 % of the 8-stream probe, 8 slices 82 %, 8 slices + software prefetch
// 95-100 % (fp32 was at 95 % either way); adjacent rows stayed slower than slices at R = 4 too
// (issue 9), where the AVX-512 path now takes 4 slices for one vector (see matvec_rows_avx512). The prefetch runs
// `prefetch_cols` ahead in each row and spills into the row's successor, which is that stream's next row.
//
// Several vectors (NB > 1): all NB vectors pass over a group of rows while its weights are in
// registers (each weight load feeds NB FMAs); with more vectors than one kernel takes, the next
// kernel call over the same rows finds them in L1/L2, so every weight comes from DRAM once per
// product (Vectors of a call are taken in chunks that fit in L2, see vector_chunk).

// Prefetch distance: 64 to 256 columns measured alike (bf16, one thread, 64 MiB matrices, shared
// machine); 512 and 1024 were 20-30 % slower.
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

// The operands of one kernel call: R weight rows, NB vectors of x (x + v·ldx) and the outputs
// (y[r] + v·ldy is row r's result for vector v).
template <class T, int R>
struct RowGroup {
    const T* w[R];
    float* y[R];
};

// Calls kernel(group, count) for groups of R rows laid out as described above (count = R), then
// for the leftover rows one at a time (count = 1, only w[0], y[0] set).
template <int R, class T, class Kernel>
inline void for_row_groups(const Matrix<T>& W, float* y, int row_begin, int row_end, Kernel kernel) {
    const int per = (row_end - row_begin) / R;
    RowGroup<T, R> g;
    for (int i = 0; i < per; ++i) {
        RWKV_CPU_UNROLL(8)
        for (int k = 0; k < R; ++k) {
            const int o = row_begin + k * per + i;
            g.w[k] = W.row(o);
            g.y[k] = y + o;
        }
        kernel(g, R);
    }
    for (int o = row_begin + R * per; o < row_end; ++o) {
        g.w[0] = W.row(o);
        g.y[0] = y + o;
        kernel(g, 1);
    }
}

// Vectors per chunk of a multi-vector product: as many as fit in 256 KiB (half of the smallest
// L2 we target) together, a multiple of NB, at least NB.
template <int NB>
inline int vector_chunk(std::size_t cols) {
    const std::size_t fit = (std::size_t{256} << 10) / (cols * sizeof(float) + 1);
    return static_cast<int>(std::max<std::size_t>(NB, fit - fit % NB));
}

// The driver shared by the paths: rows [row_begin, row_end) of Y[v] = W·X[v] for n vectors,
// leaf.run<R', NB'>(w, x, ldx, cols, y, ldy) computing R' rows for NB' vectors. One vector runs
// as R1 rows (the single mat-vec's row group); up to NBF vectors as R1 rows × NBF (as many
// streams as one vector, each weight load feeding NBF FMAs); more as R rows × NB vectors.
template <class T, int R1, int NBF, int R, int NB, class Leaf>
inline void rows_driver(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end, Leaf leaf) {
    const auto cols = static_cast<std::size_t>(W.cols);
    const auto ldy = static_cast<std::size_t>(W.rows);
    if (n <= NBF) {
        for_row_groups<R1>(W, Y, row_begin, row_end, [&](const RowGroup<T, R1>& g, int count) {
            if (count == R1) leaf.template run_n<R1, NBF>(n, g.w, X, cols, cols, g.y, ldy);
            else leaf.template run_n<1, NBF>(n, g.w, X, cols, cols, g.y, ldy);
        });
        return;
    }
    const int chunk = vector_chunk<NB>(cols);
    for (int v0 = 0; v0 < n; v0 += chunk) {
        const int v1 = std::min(n, v0 + chunk);
        for_row_groups<R>(W, Y + static_cast<std::size_t>(v0) * ldy, row_begin, row_end,
                          [&](const RowGroup<T, R>& g, int count) {
                              for (int v = v0; v < v1; v += NB) {
                                  const float* x = X + static_cast<std::size_t>(v) * cols;
                                  float* ys[R];
                                  for (int r = 0; r < count; ++r)
                                      ys[r] = g.y[r] + static_cast<std::size_t>(v - v0) * ldy;
                                  const int nb = std::min(NB, v1 - v);
                                  if (count == R) leaf.template run_n<R, NB>(nb, g.w, x, cols, cols, ys, ldy);
                                  else leaf.template run_n<1, NB>(nb, g.w, x, cols, cols, ys, ldy);
                              }
                          });
    }
}

// Dispatches a run time vector count 1 <= nb <= NB to leaf.run<R, nb>.
template <int R, int NB, class Leaf, class... Args>
inline void run_vectors(const Leaf& leaf, int nb, Args... args) {
    if constexpr (NB > 1) {
        if (nb < NB) return run_vectors<R, NB - 1>(leaf, nb, args...);
    }
    leaf.template run<R, NB>(args...);
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

#if defined(__aarch64__) && defined(__ARM_NEON)
// 8 values per step with explicit NEON: the scalar loops below are vectorised by -O3 only (GCC 12's
// -O2 cost model leaves a loop of unknown trip count scalar), and the generic leaf is the ARM path.
inline void widen8(const bfloat16* s, float* d) {
    const uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(reinterpret_cast<const std::uint8_t*>(s)));
    vst1q_f32(d, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(d + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
}
inline void widen8(const half* s, float* d) {
    const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(reinterpret_cast<const std::uint8_t*>(s)));
    vst1q_f32(d, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(d + 4, vcvt_high_f32_f16(h));
}
#define RWKV_WIDEN8 1
#elif RWKV_MATVEC_X86 && defined(__SSE2__)
// SSE2 (the x86 baseline; the generic leaf runs on x86 CPUs without AVX2): bf16 by interleaving
// with zeros, fp16 by half_bits_to_float's branch-free arithmetic on 4 lanes.
inline __m128 half4_to_float(__m128i h) {  // h: 4 fp16 bit patterns in 32-bit lanes
    const __m128i em = _mm_and_si128(h, _mm_set1_epi32(0x7fff));
    const __m128i special = _mm_cmpgt_epi32(em, _mm_set1_epi32(0x7bff));
    const __m128i normal = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(em, 13), _mm_set1_epi32(0x38000000)),
                                         _mm_and_si128(special, _mm_set1_epi32(0x38000000)));
    const __m128i subnormal = _mm_castps_si128(_mm_mul_ps(_mm_cvtepi32_ps(em), _mm_set1_ps(0x1p-24f)));
    const __m128i is_sub = _mm_cmplt_epi32(em, _mm_set1_epi32(0x0400));
    const __m128i mag = _mm_or_si128(_mm_and_si128(subnormal, is_sub), _mm_andnot_si128(is_sub, normal));
    return _mm_castsi128_ps(_mm_or_si128(mag, _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16)));
}
inline void widen8(const bfloat16* s, float* d) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)), z = _mm_setzero_si128();
    _mm_storeu_ps(d, _mm_castsi128_ps(_mm_unpacklo_epi16(z, h)));
    _mm_storeu_ps(d + 4, _mm_castsi128_ps(_mm_unpackhi_epi16(z, h)));
}
inline void widen8(const half* s, float* d) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)), z = _mm_setzero_si128();
    _mm_storeu_ps(d, half4_to_float(_mm_unpacklo_epi16(h, z)));
    _mm_storeu_ps(d + 4, half4_to_float(_mm_unpackhi_epi16(h, z)));
}
#define RWKV_WIDEN8 1
#endif

template <class T>
inline void widen_block(const T* src, float* dst, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
        std::memcpy(dst, src, n * sizeof(float));
    } else {
        std::size_t i = 0;
#if defined(RWKV_WIDEN8)
        RWKV_CPU_UNROLL(8)
        for (; i + 8 <= n; i += 8) widen8(src + i, dst + i);
#endif
        for (; i < n; ++i) {
            if constexpr (std::is_same_v<T, bfloat16>) {
                dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(src[i].bits) << 16);
            } else {
#if defined(__aarch64__)
                dst[i] = static_cast<float>(std::bit_cast<__fp16>(src[i].bits));  // AArch64 converts natively
#else
                dst[i] = half_bits_to_float(src[i].bits);
#endif
            }
        }
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

// y[r][v·ldy] = w[r]·x[v·ldx] for R rows and NB vectors: one accumulator per (row, vector),
// columns in order. 16-bit weights are widened in blocks of 64 columns into a stack buffer that
// stays in L1.
template <class T>
struct GenericLeaf {
    template <int R, int NB>
    void run(const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
             std::size_t ldy) const {
        constexpr std::size_t S = gvec_size;
        constexpr std::size_t K = S > 64 ? S : 64;
        GVec acc[R][NB];
        float tail[R][NB];
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) {
            acc[r][v] = gvec_zero();
            tail[r][v] = 0.0f;
        }
        const std::size_t full = cols - cols % S;
        for (std::size_t c0 = 0; c0 < full; c0 += K) {
            const std::size_t kb = std::min(K, full - c0);
            RWKV_CPU_UNROLL(64)
            for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c0);
            if constexpr (std::is_same_v<T, float>) {
                RWKV_CPU_UNROLL(4)
                for (std::size_t c = 0; c < kb; c += S) RWKV_CPU_UNROLL(64)
                for (int v = 0; v < NB; ++v) {
                    const GVec xv = gvec_load(x + v * ldx + c0 + c);
                    RWKV_CPU_UNROLL(64)
                    for (int r = 0; r < R; ++r) acc[r][v] = gvec_fma(gvec_load(w[r] + c0 + c), xv, acc[r][v]);
                }
            } else {
                float buf[R][K];
                RWKV_CPU_UNROLL(64)
                for (int r = 0; r < R; ++r) widen_block(w[r] + c0, buf[r], kb);
                RWKV_CPU_UNROLL(4)
                for (std::size_t c = 0; c < kb; c += S) RWKV_CPU_UNROLL(64)
                for (int v = 0; v < NB; ++v) {
                    const GVec xv = gvec_load(x + v * ldx + c0 + c);
                    RWKV_CPU_UNROLL(64)
                    for (int r = 0; r < R; ++r) acc[r][v] = gvec_fma(gvec_load(buf[r] + c), xv, acc[r][v]);
                }
            }
        }
        for (std::size_t c = full; c < cols; ++c) RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) {
            const float wc = widen_one(w[r][c]);
            RWKV_CPU_UNROLL(64)
            for (int v = 0; v < NB; ++v) tail[r][v] += wc * x[v * ldx + c];
        }
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) y[r][v * ldy] = gvec_sum(acc[r][v]) + tail[r][v];
    }
    template <int R, int NB>
    void run_n(int nb, const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
               std::size_t ldy) const {
        run_vectors<R, NB>(*this, nb, w, x, ldx, cols, y, ldy);
    }
};

// Generic kernel calls: 8 rows for one vector, 4 rows × 2 vectors for several (16 SSE/NEON
// registers).
template <class T>
void matvec_rows_generic(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end) {
    rows_driver<T, 8, 1, 4, 2>(W, X, n, Y, row_begin, row_end, GenericLeaf<T>{});
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

// One step of 16 columns at s: the NB x vectors stay in registers while each row's weights are
// widened once and multiplied into its NB accumulators.
template <class T, int R, int NB>
RWKV_AVX512_TARGET __attribute__((always_inline)) inline void step16(const T* const* w, const float* x, std::size_t ldx,
                                                                     std::size_t s, __m512 (&acc)[R][NB]) {
    __m512 xv[NB];
    RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) xv[v] = _mm512_loadu_ps(x + v * ldx + s);
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) {
        const __m512 wv = load16(w[r] + s);
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
    }
}

// y[r][v·ldy] = w[r]·x[v·ldx] for R rows and NB vectors: one accumulator per (row, vector),
// columns in order, 16 at a time.
template <class T, int R, int NB>
RWKV_AVX512_TARGET void rows_avx512(const T* const* w, const float* x, std::size_t ldx, std::size_t cols,
                                    float* const* y, std::size_t ldy) {
    constexpr std::size_t line = 64 / sizeof(T);  // columns per cache line of weights
    __m512 acc[R][NB];
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_setzero_ps();
    std::size_t c = 0;
    for (; c + line <= cols; c += line) {
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c);
        // A constant trip count (line / 16) that -O3 unrolls and -O2 does not: the pragma makes them alike.
        RWKV_CPU_UNROLL(4)
        for (std::size_t s = c; s < c + line; s += 16) step16<T, R, NB>(w, x, ldx, s, acc);
    }
    for (; c + 16 <= cols; c += 16) step16<T, R, NB>(w, x, ldx, c, acc);
    if (c < cols) {
        const auto m = static_cast<__mmask16>((1u << (cols - c)) - 1u);
        __m512 xv[NB];
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) xv[v] = _mm512_maskz_loadu_ps(m, x + v * ldx + c);
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) {
            const __m512 wv = load16(w[r] + c, m);
            RWKV_CPU_UNROLL(64)
            for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
        }
    }
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) y[r][v * ldy] = hsum16(acc[r][v]);
}

template <class T>
struct Avx512Leaf {
    template <int R, int NB>
    void run(const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
             std::size_t ldy) const {
        rows_avx512<T, R, NB>(w, x, ldx, cols, y, ldy);
    }
    template <int R, int NB>
    void run_n(int nb, const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
               std::size_t ldy) const {
        run_vectors<R, NB>(*this, nb, w, x, ldx, cols, y, ldy);
    }
};

// 32 zmm registers: one to three vectors over 4 rows (4 streams per thread, up to 12
// accumulators), more vectors 4 at a time over 6 rows (24 accumulators). Measured (bf16, one
// thread, CPU time, with 8 rows for one to three vectors then): a pass over a 64 MiB matrix costs
// 1.0 / 1.04 / 1.05 / 1.2 times the single vector's for 2 / 3 / 4 vectors (weights from DRAM
// once), and from 8 vectors on the kernel runs at 88-95 % of the core's FMA peak; 4 rows x 6
// vectors was 10 % slower at 4 vectors and alike elsewhere.
// Single vector, 4 slices against 8 (issue 9; this Zen 4 VM, 2 threads, 1 GiB of bf16 matrices
// per pass, 3-5 interleaved rounds, but only at load average 7-10 from other jobs): 4 slices
// streamed 10-25 % more at 1024x1024, 2048x2048, 2048x7168, 7168x2048 and 65536x1024 (the head), and
// alike at 1024x3584; 2 and 16 slices were slower than both. To be re-checked on an idle machine.
// Results do not depend on R (one accumulator per output, columns in order).
template <class T>
void matvec_rows_avx512(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end) {
    rows_driver<T, 4, 3, 6, 4>(W, X, n, Y, row_begin, row_end, Avx512Leaf<T>{});
}

// ---- AVX2 + FMA + F16C: 8 columns per step (16 ymm registers: 8 accumulators for one vector,
// 4 rows × 3 vectors for several; measured on the AVX2 path of this Zen 4, bf16, one thread:
// 4 x 3 beat 4 x 2 and 6 x 2 by 10-20 % at 3, 4 and 16 vectors). AVX2 has no masked 16-bit
// loads, so the column tail goes through small zero-padded copies.

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

template <class T, int R, int NB>
RWKV_AVX2_TARGET __attribute__((always_inline)) inline void step8(const T* const* w, const float* x, std::size_t ldx,
                                                                  std::size_t s, __m256 (&acc)[R][NB]) {
    __m256 xv[NB];
    RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) xv[v] = _mm256_loadu_ps(x + v * ldx + s);
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) {
        const __m256 wv = load8(w[r] + s);
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
    }
}

template <class T, int R, int NB>
RWKV_AVX2_TARGET void rows_avx2(const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
                                std::size_t ldy) {
    constexpr std::size_t line = 64 / sizeof(T);
    __m256 acc[R][NB];
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm256_setzero_ps();
    std::size_t c = 0;
    for (; c + line <= cols; c += line) {
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) prefetch_ahead(w[r], c);
        RWKV_CPU_UNROLL(8)  // line / 8 steps, unrolled at -O2 too (-O2 otherwise ran 10 % more instructions)
        for (std::size_t s = c; s < c + line; s += 8) step8<T, R, NB>(w, x, ldx, s, acc);
    }
    for (; c + 8 <= cols; c += 8) step8<T, R, NB>(w, x, ldx, c, acc);
    if (c < cols) {
        const std::size_t n = cols - c;
        __m256 xv[NB];
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) {
            float xt[8] = {};
            std::memcpy(xt, x + v * ldx + c, n * sizeof(float));
            xv[v] = _mm256_loadu_ps(xt);
        }
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) {
            T wt[8] = {};
            std::memcpy(static_cast<void*>(wt), w[r] + c, n * sizeof(T));
            const __m256 wv = load8(wt);
            RWKV_CPU_UNROLL(64)
            for (int v = 0; v < NB; ++v) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
        }
    }
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) y[r][v * ldy] = hsum8(acc[r][v]);
}

template <class T>
struct Avx2Leaf {
    template <int R, int NB>
    void run(const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
             std::size_t ldy) const {
        rows_avx2<T, R, NB>(w, x, ldx, cols, y, ldy);
    }
    template <int R, int NB>
    void run_n(int nb, const T* const* w, const float* x, std::size_t ldx, std::size_t cols, float* const* y,
               std::size_t ldy) const {
        run_vectors<R, NB>(*this, nb, w, x, ldx, cols, y, ldy);
    }
};

template <class T>
void matvec_rows_avx2(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end) {
    rows_driver<T, 8, 1, 4, 3>(W, X, n, Y, row_begin, row_end, Avx2Leaf<T>{});
}

#undef RWKV_AVX512_TARGET
#undef RWKV_AVX2_TARGET
#endif  // RWKV_MATVEC_X86

}  // namespace matvec_detail

// Y[v][o] = Σ_c W[o][c]·X[v][c] for n vectors (X: [n][W.cols], Y: [n][W.rows], row-major) and
// o in [row_begin, row_end) (Y indexes whole output rows), on the given path. A path the CPU
// lacks is replaced by the best one it has below it. Each Y[v] is bit for bit what the single
// mat-vec (n = 1) gives for X[v].
template <class T>
void matvec_rows(const Matrix<T>& W, const float* X, int n, float* Y, int row_begin, int row_end, Isa isa) {
    static_assert(is_weight_scalar_v<T>, "mat-vec weights must be float, bfloat16 or half");
    if (row_begin >= row_end || n <= 0) return;
#if RWKV_MATVEC_X86
    if (isa == Isa::avx512 && !isa_supported(Isa::avx512)) isa = Isa::avx2;
    if (isa == Isa::avx2 && !isa_supported(Isa::avx2)) isa = Isa::generic;
    if (isa == Isa::avx512) return matvec_detail::matvec_rows_avx512(W, X, n, Y, row_begin, row_end);
    if (isa == Isa::avx2) return matvec_detail::matvec_rows_avx2(W, X, n, Y, row_begin, row_end);
#else
    (void)isa;
#endif
    matvec_detail::matvec_rows_generic(W, X, n, Y, row_begin, row_end);
}

// y[o] = Σ_c W[o][c]·x[c] for o in [row_begin, row_end) (y indexes the whole output), on the
// given path (the n = 1 case above).
template <class T>
void matvec_rows(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end, Isa isa) {
    matvec_rows(W, x, 1, y, row_begin, row_end, isa);
}

// As above on active_isa() (already validated: no CPU check).
template <class T>
void matvec_rows(const Matrix<T>& W, const float* x, float* y, int row_begin, int row_end) {
    matvec_rows(W, x, 1, y, row_begin, row_end, active_isa());
}

// One product of a fused dispatch: Y = W·X for n vectors (X [n][W.cols], Y [n][W.rows]; n = 1:
// y = W·x). Y must not overlap any job's X; jobs must not write to each other's inputs.
template <class T>
struct MatvecJob {
    const Matrix<T>* W = nullptr;
    const float* x = nullptr;
    float* y = nullptr;
    int n = 1;
};

// Rows go to threads in units of this many rows, so that threads' shares of y meet on 64-byte
// line boundaries (when y is aligned) and no two threads write the same cache line.
inline constexpr int matvec_row_unit = 16;
// Below this many bytes of weights (times vectors), waking the workers costs more than it saves.
inline constexpr std::size_t matvec_parallel_min_bytes = std::size_t{64} << 10;

namespace matvec_detail {

// Thread t's share of the concatenated row units of all jobs, balanced by weight count: unit u of
// job j belongs to the thread whose cost window [t·total/n, (t+1)·total/n) holds the unit's
// starting cost. Consecutive windows meet, so each unit is computed exactly once. (Vectors per
// job scale a job's cost; every row's result is the same whichever thread computes it.) Calls
// rows(job index, first row, end row) for each piece of t's share; a job without columns or
// vectors costs nothing, and thread 0 writes its zeros. Job: W (->rows, ->cols), n, y. Shared by
// the fp32-activation mat-vecs here and the bf16-activation ones (matvec_bf16.hpp).
template <class Job, class Rows>
void share_rows(std::span<const Job> jobs, int t, int n, Rows&& rows) {
    using u64 = std::uint64_t;
    constexpr int U = matvec_row_unit;
    auto cols_cost = [](const Job& j) { return static_cast<u64>(j.W->cols) * static_cast<u64>(std::max(j.n, 0)); };
    u64 total = 0;
    for (const auto& j : jobs) total += static_cast<u64>((j.W->rows + U - 1) / U) * cols_cost(j);
    const u64 lo = total * static_cast<u64>(t) / static_cast<u64>(n);
    const u64 hi = total * static_cast<u64>(t + 1) / static_cast<u64>(n);
    u64 base = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        const Job& j = jobs[i];
        const int R = j.W->rows;
        const u64 units = static_cast<u64>((R + U - 1) / U);
        const u64 cols = cols_cost(j);
        if (cols == 0) {
            if (t == 0 && j.n > 0)
                std::fill(j.y, j.y + static_cast<std::size_t>(R) * static_cast<std::size_t>(j.n), 0.0f);
            continue;
        }
        auto first_unit_at = [&](u64 cost) {  // first unit whose start cost is >= cost
            if (cost <= base) return u64{0};
            return std::min(units, (cost - base + cols - 1) / cols);
        };
        const u64 ub = first_unit_at(lo), ue = first_unit_at(hi);
        if (ub < ue) rows(i, static_cast<int>(ub) * U, std::min(R, static_cast<int>(ue) * U));
        base += units * cols;
    }
}

template <class T>
void matvec_share(std::span<const MatvecJob<T>> jobs, int t, int n, Isa isa) {
    share_rows(jobs, t, n, [&](std::size_t i, int rb, int re) {
        const auto& j = jobs[i];
        matvec_rows(*j.W, j.x, j.n, j.y, rb, re, isa);
    });
}

}  // namespace matvec_detail

// Several independent mat-vecs (each of one or more vectors) in one pool dispatch (one wake-up,
// one barrier), rows split across the pool's threads. pool may be null (single-threaded). Small
// totals run on the caller. If another thread is using the pool, the work runs on the caller
// instead of waiting. Results do not depend on the thread count.
template <class T>
void matvec_many(std::span<const MatvecJob<T>> jobs, ThreadPool* pool) {
    static_assert(is_weight_scalar_v<T>, "mat-vec weights must be float, bfloat16 or half");
    const Isa isa = active_isa();
    std::size_t bytes = 0;
    for (const auto& j : jobs) bytes += j.W->size() * sizeof(T) * static_cast<std::size_t>(std::max(j.n, 0));
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

// Y[v] = W·X[v] for n vectors (X [n][W.cols], Y [n][W.rows]), each weight read from memory once
// for all of them; Y[v] is bit for bit matvec(W, X[v]). Rows split across the pool's threads.
template <class T>
void matvec_batch(const Matrix<T>& W, const float* X, int n, float* Y, ThreadPool* pool) {
    const MatvecJob<T> job{&W, X, Y, n};
    matvec_many(std::span<const MatvecJob<T>>(&job, 1), pool);
}

}  // namespace rwkv::backend::cpu
