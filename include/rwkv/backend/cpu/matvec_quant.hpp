#pragma once
// Decode mat-vec and prefill GEMM for the block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q5_K, Q6_K with SIMD leaves; every other block format through its reference decoder):
// y[o] = Σ_c W[o][c]·x[c] with W a rwkv::Weight in a block format, x, y and accumulation in fp32.
//
// Exactness: each block is dequantized in registers to exactly the values of the format's
// reference decoder (weights/<format>.hpp) — the same products and the same single rounding —
// and then multiplied with x by fp32 FMAs. So the result differs from the reference decode +
// dot only by summation order (~1e-6 relative), never by a rounded weight or a rounded
// activation. (Where the reference computes q·d + m or dl·q − ml, q·d and dl·q are exact in
// fp32, so an FMA rounds exactly once, like the reference.)
//
// Speed: decode reads every weight byte once per token, so this is bandwidth-bound like the
// 16-bit mat-vec (matvec.hpp), with the same row layout (8 rows at a time from 8 slices of the
// row range: 8 sequential streams per thread), software prefetch, and the same thread split
// (units of 16 rows balanced by bytes, one pool dispatch for several products).
//
// Prefill (n > 1): a band of rows is dequantized to fp32 once per call into the thread's tile
// (the same SIMD leaves storing instead of multiplying) and the band goes through the fp32 GEMM
// (gemm.hpp), so each weight is decoded once, not once per token.
//
// Paths: AVX-512 (F+BW+VL) and AVX2+FMA+F16C leaves with their own target attributes (the library
// is header-only and built with the user's flags), picked at run time through active_isa()
// (RWKV_ISA caps it); the generic path decodes each block with the reference decoder into an
// L1 buffer and runs xsimd FMAs (or four scalar lanes).
//
// Determinism: every output row is one thread's, one accumulator walked over the blocks in order
// whatever the row grouping, so results depend only on the path, never on the thread count.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "../../matrix.hpp"
#include "../../weight.hpp"
#include "gemm.hpp"
#include "isa.hpp"
#include "matvec.hpp"
#include "threads.hpp"

namespace rwkv::backend::cpu {

// Formats with SIMD leaves (the others run the generic block path on every ISA).
template <class F>
inline constexpr bool quant_simd_format_v =
    std::is_same_v<F, weights::q8_0> || std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::q4_1> ||
    std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1> || std::is_same_v<F, weights::q4_k> ||
    std::is_same_v<F, weights::q5_k> || std::is_same_v<F, weights::q6_k>;

// True when W is a block format (block_elems > 1) this file computes: rows are whole blocks.
inline bool quant_kernel_format(const Weight& W) {
    return weights::is_weight_format(W.type) && dtype_block_elems(W.type) > 1 &&
           W.row_bytes == dtype_bytes(W.type, W.cols, "weight row");
}

namespace qmv_detail {

inline std::uint16_t u16_at(const std::byte* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline std::uint32_t u32_at(const std::byte* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Bytes ahead of the current block that each row stream prefetches.
inline constexpr std::size_t prefetch_bytes = 512;

inline void prefetch_range(const std::byte* p, std::size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
    // Integer arithmetic: the address may lie past the matrix (prefetches never fault).
    const auto a = reinterpret_cast<std::uintptr_t>(p) + prefetch_bytes;
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(reinterpret_cast<const void*>(a + o), 0, 3);
#else
    (void)p, (void)bytes;
#endif
}

// Blocks per step of the row kernels: at least one 64-byte line of each row, so one prefetch
// per line suffices.
template <class F>
inline constexpr int step_blocks = F::block_bytes >= 64 ? 1 : (64 + F::block_bytes - 1) / F::block_bytes;

// Calls kernel(rows, ys, count) for groups of 8 rows from 8 slices of [row_begin, row_end), then
// the leftover rows one at a time (matvec.hpp's layout).
template <class Kernel>
inline void for_row_groups(const Weight& W, float* y, int row_begin, int row_end, Kernel kernel) {
    const int per = (row_end - row_begin) / 8;
    const std::byte* w[8];
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

// ---- Generic path: the reference decoder into an L1 buffer, then vector FMAs.
template <class F, int R>
void rows_generic(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    using namespace matvec_detail;
    constexpr std::size_t BE = F::block_elems, S = gvec_size;
    static_assert(BE % S == 0, "blocks hold whole vectors");
    GVec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = gvec_zero();
    alignas(64) float buf[BE];
    for (std::size_t b = 0; b < nblocks; ++b) {
        const float* xb = x + b * BE;
        const std::size_t off = b * F::block_bytes;
        for (int r = 0; r < R; ++r) {
            if (b % step_blocks<F> == 0) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
            F::decode(w[r] + off, buf);
            for (std::size_t c = 0; c < BE; c += S) acc[r] = gvec_fma(gvec_load(buf + c), gvec_load(xb + c), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = gvec_sum(acc[r]);
}

template <class F>
void decode_rows_generic(const Weight& W, int row_begin, int row_end, float* out) {
    const auto cols = static_cast<std::size_t>(W.cols);
    for (int r = row_begin; r < row_end; ++r) W.decode_row(r, out + static_cast<std::size_t>(r - row_begin) * cols);
}

#if RWKV_MATVEC_X86
#define RWKV_QAVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RWKV_QAVX2_TARGET __attribute__((target("avx2,fma,f16c")))

// ---- AVX-512 leaves. block512<F>(block, sink) dequantizes one block and hands sink(offset, w)
// 16 consecutive values starting at element `offset` of the block. Sinks: FMA into an
// accumulator (mat-vec) or store (prefill decode). Masked ("maskz") forms with all lanes set
// compile to the plain instructions; GCC 12 warns falsely about the plain forms' undefined
// pass-through operand when inlined (see matvec.hpp).
constexpr __mmask16 q_all16 = 0xffff;

RWKV_QAVX512_TARGET inline float f16_at(const std::byte* p) { return _cvtsh_ss(u16_at(p)); }
RWKV_QAVX512_TARGET inline __m512i u8x16(const std::byte* p) {  // 16 bytes → 16 u32 lanes
    return _mm512_maskz_cvtepu8_epi32(q_all16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
RWKV_QAVX512_TARGET inline __m512 to_ps(__m512i v) { return _mm512_maskz_cvtepi32_ps(q_all16, v); }
RWKV_QAVX512_TARGET inline __m512i lo4(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi32(15)); }
RWKV_QAVX512_TARGET inline __m512i hi4(__m512i v) { return _mm512_maskz_srli_epi32(q_all16, v, 4); }

struct FmaSink512 {
    const float* x;
    __m512 acc;
    RWKV_QAVX512_TARGET void operator()(int off, __m512 w) { acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + off), acc); }
};
struct StoreSink512 {
    float* out;
    RWKV_QAVX512_TARGET void operator()(int off, __m512 w) { _mm512_storeu_ps(out + off, w); }
};

template <class F, class Sink>
RWKV_QAVX512_TARGET inline void block512(const std::byte* b, Sink& sink) {
    if constexpr (std::is_same_v<F, weights::q8_0>) {  // qs·d
        const __m512 d = _mm512_set1_ps(f16_at(b));
        for (int h = 0; h < 2; ++h) {
            const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + 16 * h));
            sink(16 * h, _mm512_mul_ps(to_ps(_mm512_maskz_cvtepi8_epi32(q_all16, q)), d));
        }
    } else if constexpr (std::is_same_v<F, weights::q4_0>) {  // (q − 8)·d
        const __m512 d = _mm512_set1_ps(f16_at(b));
        const __m512i q = u8x16(b + 2), eight = _mm512_set1_epi32(8);
        sink(0, _mm512_mul_ps(to_ps(_mm512_sub_epi32(lo4(q), eight)), d));
        sink(16, _mm512_mul_ps(to_ps(_mm512_sub_epi32(hi4(q), eight)), d));
    } else if constexpr (std::is_same_v<F, weights::q4_1>) {  // q·d + m
        const __m512 d = _mm512_set1_ps(f16_at(b)), m = _mm512_set1_ps(f16_at(b + 2));
        const __m512i q = u8x16(b + 4);
        sink(0, _mm512_fmadd_ps(to_ps(lo4(q)), d, m));
        sink(16, _mm512_fmadd_ps(to_ps(hi4(q)), d, m));
    } else if constexpr (std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>) {
        constexpr bool affine = std::is_same_v<F, weights::q5_1>;
        constexpr int qh_at = affine ? 4 : 2;
        const __m512 d = _mm512_set1_ps(f16_at(b));
        const std::uint32_t qh = u32_at(b + qh_at);
        const __m512i q = u8x16(b + qh_at + 4), sixteen = _mm512_set1_epi32(16);
        // The 5th bit of element e is bit e of qh: a lane mask.
        __m512i q0 = _mm512_mask_or_epi32(lo4(q), static_cast<__mmask16>(qh & 0xffffu), lo4(q), sixteen);
        __m512i q1 = _mm512_mask_or_epi32(hi4(q), static_cast<__mmask16>(qh >> 16), hi4(q), sixteen);
        if constexpr (affine) {  // q·d + m
            const __m512 m = _mm512_set1_ps(f16_at(b + 2));
            sink(0, _mm512_fmadd_ps(to_ps(q0), d, m));
            sink(16, _mm512_fmadd_ps(to_ps(q1), d, m));
        } else {  // (q − 16)·d
            q0 = _mm512_sub_epi32(q0, sixteen);
            q1 = _mm512_sub_epi32(q1, sixteen);
            sink(0, _mm512_mul_ps(to_ps(q0), d));
            sink(16, _mm512_mul_ps(to_ps(q1), d));
        }
    } else if constexpr (std::is_same_v<F, weights::q4_k> || std::is_same_v<F, weights::q5_k>) {
        // d·sc·q − dmin·m per sub-block of 32; sub-blocks 2c and 2c+1 share 32 bytes of nibbles.
        constexpr bool five = std::is_same_v<F, weights::q5_k>;
        constexpr int qs_at = five ? 48 : 16;
        const float d = f16_at(b), dmin = f16_at(b + 2);
        const __m256i qh = five ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m512i n0 = u8x16(b + qs_at + 32 * c), n1 = u8x16(b + qs_at + 32 * c + 16);
            for (int half = 0; half < 2; ++half) {
                const int s = 2 * c + half;
                unsigned sc = 0, m = 0;
                weights::detail::k4_scale_min(b + 4, s, sc, m);
                const __m512 dl = _mm512_set1_ps(d * static_cast<float>(sc));
                const __m512 ml = _mm512_set1_ps(dmin * static_cast<float>(m));
                __m512i q0 = half ? hi4(n0) : lo4(n0), q1 = half ? hi4(n1) : lo4(n1);
                if constexpr (five) {  // bit s of qh[l]
                    const __mmask32 hb = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << s)));
                    const __m512i sixteen = _mm512_set1_epi32(16);
                    q0 = _mm512_mask_or_epi32(q0, static_cast<__mmask16>(hb & 0xffffu), q0, sixteen);
                    q1 = _mm512_mask_or_epi32(q1, static_cast<__mmask16>(hb >> 16), q1, sixteen);
                }
                sink(32 * s, _mm512_fmsub_ps(dl, to_ps(q0), ml));
                sink(32 * s + 16, _mm512_fmsub_ps(dl, to_ps(q1), ml));
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q6_k>) {
        // Group (h, g) of 32 elements 128h + 32g + l: low nibble (g < 2) or high nibble of
        // ql[64h + 32(g&1) + l], bits 2g.. of qh[32h + l]; scale per 16 elements.
        const float d = f16_at(b + 208);
        const __m512i three = _mm512_set1_epi32(3), k32 = _mm512_set1_epi32(32);
        for (int h = 0; h < 2; ++h)
            for (int g = 0; g < 4; ++g)
                for (int half = 0; half < 2; ++half) {
                    const int e = 128 * h + 32 * g + 16 * half;
                    const __m512i lb = u8x16(b + 64 * h + 32 * (g & 1) + 16 * half);
                    const __m512i hb = u8x16(b + 128 + 32 * h + 16 * half);
                    const __m512i lo = g < 2 ? lo4(lb) : hi4(lb);
                    const __m512i hi =
                        _mm512_and_si512(_mm512_maskz_srlv_epi32(q_all16, hb, _mm512_set1_epi32(2 * g)), three);
                    const __m512i q =
                        _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_maskz_slli_epi32(q_all16, hi, 4)), k32);
                    const auto sc = static_cast<signed char>(static_cast<unsigned char>(b[192 + e / 16]));
                    sink(e, _mm512_mul_ps(_mm512_set1_ps(d * static_cast<float>(sc)), to_ps(q)));
                }
    }
}

RWKV_QAVX512_TARGET inline float qhsum16(__m512 v) {
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(q_all16, v, v, 0x4e));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(q_all16, v, v, 0xb1));
    __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class F, int R>
RWKV_QAVX512_TARGET void rows_avx512(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    FmaSink512 s[R];
    for (int r = 0; r < R; ++r) s[r].acc = _mm512_setzero_ps();
    for (std::size_t b = 0; b < nblocks; ++b) {
        const std::size_t off = b * F::block_bytes;
        const bool pf = b % step_blocks<F> == 0;
        for (int r = 0; r < R; ++r) {
            if (pf) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
            s[r].x = x + b * F::block_elems;
            block512<F>(w[r] + off, s[r]);
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = qhsum16(s[r].acc);
}

template <class F>
RWKV_QAVX512_TARGET void decode_rows_avx512(const Weight& W, int row_begin, int row_end, float* out) {
    const auto cols = static_cast<std::size_t>(W.cols), nb = cols / F::block_elems;
    for (int r = row_begin; r < row_end; ++r) {
        const std::byte* row = W.row(r);
        StoreSink512 s{out + static_cast<std::size_t>(r - row_begin) * cols};
        for (std::size_t b = 0; b < nb; ++b, s.out += F::block_elems) block512<F>(row + b * F::block_bytes, s);
    }
}

// ---- AVX2 leaves: as above with 8 lanes; the 5th bits come from variable shifts (no masks).
RWKV_QAVX2_TARGET inline float f16_at2(const std::byte* p) { return _cvtsh_ss(u16_at(p)); }
RWKV_QAVX2_TARGET inline __m256i u8x8(const std::byte* p) {  // 8 bytes → 8 u32 lanes
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
RWKV_QAVX2_TARGET inline __m256i lo4x8(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(15)); }
RWKV_QAVX2_TARGET inline __m256 to_ps8(__m256i v) { return _mm256_cvtepi32_ps(v); }
// ((bits >> (first + lane)) & 1) << 4 for lanes 0..7.
RWKV_QAVX2_TARGET inline __m256i bit5x8(std::uint32_t bits, int first) {
    const __m256i sh = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(first));
    const __m256i one = _mm256_set1_epi32(1);
    return _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(bits)), sh), one),
                             4);
}

struct FmaSink256 {
    const float* x;
    __m256 acc;
    RWKV_QAVX2_TARGET void operator()(int off, __m256 w) { acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + off), acc); }
};
struct StoreSink256 {
    float* out;
    RWKV_QAVX2_TARGET void operator()(int off, __m256 w) { _mm256_storeu_ps(out + off, w); }
};

template <class F, class Sink>
RWKV_QAVX2_TARGET inline void block256(const std::byte* b, Sink& sink) {
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        const __m256 d = _mm256_set1_ps(f16_at2(b));
        for (int i = 0; i < 4; ++i) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * i)));
            sink(8 * i, _mm256_mul_ps(to_ps8(q), d));
        }
    } else if constexpr (std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::q4_1> ||
                         std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>) {
        constexpr bool affine = std::is_same_v<F, weights::q4_1> || std::is_same_v<F, weights::q5_1>;
        constexpr bool five = std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>;
        constexpr int qs_at = 2 + (affine ? 2 : 0) + (five ? 4 : 0);
        const __m256 d = _mm256_set1_ps(f16_at2(b));
        const __m256 m = affine ? _mm256_set1_ps(f16_at2(b + 2)) : _mm256_setzero_ps();
        const std::uint32_t qh = five ? u32_at(b + qs_at - 4) : 0u;
        const __m256i bias = _mm256_set1_epi32(affine ? 0 : (five ? 16 : 8));
        for (int i = 0; i < 2; ++i) {
            const __m256i n = u8x8(b + qs_at + 8 * i);
            for (int half = 0; half < 2; ++half) {
                const int e = 16 * half + 8 * i;
                __m256i q = half ? _mm256_srli_epi32(n, 4) : lo4x8(n);
                if constexpr (five) q = _mm256_or_si256(q, bit5x8(qh, e));
                if constexpr (affine) sink(e, _mm256_fmadd_ps(to_ps8(q), d, m));
                else sink(e, _mm256_mul_ps(to_ps8(_mm256_sub_epi32(q, bias)), d));
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q4_k> || std::is_same_v<F, weights::q5_k>) {
        constexpr bool five = std::is_same_v<F, weights::q5_k>;
        constexpr int qs_at = five ? 48 : 16;
        const float d = f16_at2(b), dmin = f16_at2(b + 2);
        for (int s = 0; s < 8; ++s) {
            unsigned sc = 0, m = 0;
            weights::detail::k4_scale_min(b + 4, s, sc, m);
            const __m256 dl = _mm256_set1_ps(d * static_cast<float>(sc));
            const __m256 ml = _mm256_set1_ps(dmin * static_cast<float>(m));
            const int c = s / 2;
            for (int i = 0; i < 4; ++i) {
                const __m256i n = u8x8(b + qs_at + 32 * c + 8 * i);
                __m256i q = s % 2 ? _mm256_srli_epi32(n, 4) : lo4x8(n);
                if constexpr (five) {
                    const __m256i h = _mm256_srli_epi32(u8x8(b + 16 + 8 * i), s);
                    q = _mm256_or_si256(q, _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(1)), 4));
                }
                sink(32 * s + 8 * i, _mm256_fmsub_ps(dl, to_ps8(q), ml));
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q6_k>) {
        const float d = f16_at2(b + 208);
        const __m256i three = _mm256_set1_epi32(3), k32 = _mm256_set1_epi32(32);
        for (int h = 0; h < 2; ++h)
            for (int g = 0; g < 4; ++g)
                for (int i = 0; i < 4; ++i) {
                    const int e = 128 * h + 32 * g + 8 * i;
                    const __m256i lb = u8x8(b + 64 * h + 32 * (g & 1) + 8 * i);
                    const __m256i hb = u8x8(b + 128 + 32 * h + 8 * i);
                    const __m256i lo = g < 2 ? lo4x8(lb) : _mm256_srli_epi32(lb, 4);
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(hb, 2 * g), three);
                    const __m256i q = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), k32);
                    const auto sc = static_cast<signed char>(static_cast<unsigned char>(b[192 + e / 16]));
                    sink(e, _mm256_mul_ps(_mm256_set1_ps(d * static_cast<float>(sc)), to_ps8(q)));
                }
    }
}

RWKV_QAVX2_TARGET inline float qhsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class F, int R>
RWKV_QAVX2_TARGET void rows_avx2(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    FmaSink256 s[R];
    for (int r = 0; r < R; ++r) s[r].acc = _mm256_setzero_ps();
    for (std::size_t b = 0; b < nblocks; ++b) {
        const std::size_t off = b * F::block_bytes;
        const bool pf = b % step_blocks<F> == 0;
        for (int r = 0; r < R; ++r) {
            if (pf) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
            s[r].x = x + b * F::block_elems;
            block256<F>(w[r] + off, s[r]);
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = qhsum8(s[r].acc);
}

template <class F>
RWKV_QAVX2_TARGET void decode_rows_avx2(const Weight& W, int row_begin, int row_end, float* out) {
    const auto cols = static_cast<std::size_t>(W.cols), nb = cols / F::block_elems;
    for (int r = row_begin; r < row_end; ++r) {
        const std::byte* row = W.row(r);
        StoreSink256 s{out + static_cast<std::size_t>(r - row_begin) * cols};
        for (std::size_t b = 0; b < nb; ++b, s.out += F::block_elems) block256<F>(row + b * F::block_bytes, s);
    }
}
#endif  // RWKV_MATVEC_X86

inline Isa usable(Isa isa) {
#if RWKV_MATVEC_X86
    if (isa == Isa::avx512 && !isa_supported(Isa::avx512)) isa = Isa::avx2;
    if (isa == Isa::avx2 && !isa_supported(Isa::avx2)) isa = Isa::generic;
    return isa;
#else
    (void)isa;
    return Isa::generic;
#endif
}

template <class F>
void qmatvec_rows_typed(const Weight& W, const float* x, float* y, int row_begin, int row_end, Isa isa) {
    const auto nb = static_cast<std::size_t>(W.cols / F::block_elems);
#if RWKV_MATVEC_X86
    if constexpr (quant_simd_format_v<F>) {
        if (isa == Isa::avx512)
            return for_row_groups(W, y, row_begin, row_end, [&](const std::byte* const* w, float* const* o, int n) {
                if (n == 8) rows_avx512<F, 8>(w, x, nb, o);
                else rows_avx512<F, 1>(w, x, nb, o);
            });
        if (isa == Isa::avx2)
            return for_row_groups(W, y, row_begin, row_end, [&](const std::byte* const* w, float* const* o, int n) {
                if (n == 8) rows_avx2<F, 8>(w, x, nb, o);
                else rows_avx2<F, 1>(w, x, nb, o);
            });
    }
#endif
    (void)isa;
    for_row_groups(W, y, row_begin, row_end, [&](const std::byte* const* w, float* const* o, int n) {
        if (n == 8) rows_generic<F, 8>(w, x, nb, o);
        else rows_generic<F, 1>(w, x, nb, o);
    });
}

}  // namespace qmv_detail

// y[o] = Σ_c W[o][c]·x[c] for o in [row_begin, row_end) (y indexes the whole output), W in a
// block format (quant_kernel_format(W)), on the given path (a path the CPU lacks is replaced by
// the best one below it). Throws rwkv::error for a non-weight format.
inline void qmatvec_rows(const Weight& W, const float* x, float* y, int row_begin, int row_end, Isa isa) {
    if (row_begin >= row_end) return;
    isa = qmv_detail::usable(isa);
    weights::visit_format(W.type, [&](auto f) {
        using F = decltype(f);
        if constexpr (F::block_elems > 1) qmv_detail::qmatvec_rows_typed<F>(W, x, y, row_begin, row_end, isa);
    });
}

// Rows [row_begin, row_end) of W decoded to fp32 into out ([row_end - row_begin][W.cols]): the
// reference decoder's values, by the SIMD leaves where the format has them.
inline void qdecode_rows(const Weight& W, int row_begin, int row_end, float* out, Isa isa) {
    isa = qmv_detail::usable(isa);
    weights::visit_format(W.type, [&](auto f) {
        using F = decltype(f);
#if RWKV_MATVEC_X86
        if constexpr (quant_simd_format_v<F>) {
            if (isa == Isa::avx512) return qmv_detail::decode_rows_avx512<F>(W, row_begin, row_end, out);
            if (isa == Isa::avx2) return qmv_detail::decode_rows_avx2<F>(W, row_begin, row_end, out);
        }
#endif
        qmv_detail::decode_rows_generic<F>(W, row_begin, row_end, out);
    });
}

// One product of a fused dispatch: y = W·x, W in a block format.
struct QMatvecJob {
    const Weight* W = nullptr;
    const float* x = nullptr;
    float* y = nullptr;
};

namespace qmv_detail {

// Thread t's share of the concatenated 16-row units of all jobs, balanced by weight bytes
// (matvec.hpp's matvec_share, with bytes instead of columns so mixed formats balance too).
inline void qmatvec_share(std::span<const QMatvecJob> jobs, int t, int n, Isa isa) {
    using u64 = std::uint64_t;
    constexpr int U = matvec_row_unit;
    u64 total = 0;
    for (const auto& j : jobs) total += static_cast<u64>((j.W->rows + U - 1) / U) * j.W->row_bytes;
    const u64 lo = total * static_cast<u64>(t) / static_cast<u64>(n);
    const u64 hi = total * static_cast<u64>(t + 1) / static_cast<u64>(n);
    u64 base = 0;
    for (const auto& j : jobs) {
        const Weight& W = *j.W;
        const u64 units = static_cast<u64>((W.rows + U - 1) / U);
        const u64 cost = W.row_bytes;
        if (cost == 0) {
            if (t == 0) std::fill(j.y, j.y + W.rows, 0.0f);
            continue;
        }
        auto first_unit_at = [&](u64 c) {
            if (c <= base) return u64{0};
            return std::min(units, (c - base + cost - 1) / cost);
        };
        const u64 ub = first_unit_at(lo), ue = first_unit_at(hi);
        if (ub < ue)
            qmatvec_rows(W, j.x, j.y, static_cast<int>(ub) * U, std::min(W.rows, static_cast<int>(ue) * U), isa);
        base += units * cost;
    }
}

}  // namespace qmv_detail

// Several independent block-format mat-vecs (formats may differ) in one pool dispatch, rows
// split across the pool's threads (pool may be null). Small totals run on the caller; so does
// everything when another thread holds the pool.
inline void qmatvec_many(std::span<const QMatvecJob> jobs, ThreadPool* pool, Isa isa = active_isa()) {
    std::size_t bytes = 0;
    for (const auto& j : jobs) bytes += j.W->bytes();
    auto work = [jobs, isa](int t, int n) { qmv_detail::qmatvec_share(jobs, t, n, isa); };
    if (pool == nullptr || pool->size() == 1 || bytes < matvec_parallel_min_bytes || !pool->try_run(work)) work(0, 1);
}

// y = W·x for W in a block format, rows split across the pool's threads.
inline void qmatvec(const Weight& W, const float* x, float* y, ThreadPool* pool, Isa isa = active_isa()) {
    const QMatvecJob job{&W, x, y};
    qmatvec_many(std::span<const QMatvecJob>(&job, 1), pool, isa);
}

// Rows of W per prefill band: decoded once to fp32, then one fp32 GEMM call.
inline constexpr int qgemm_band = gemm_row_unit;

// Floats of per-thread tile qgemm needs for n activation rows of `cols` columns.
inline std::size_t qgemm_tile_floats(int n, int cols) {
    const auto band = static_cast<std::size_t>(qgemm_band);
    return gemm_scratch_floats(n, cols) + band * static_cast<std::size_t>(cols) + band * static_cast<std::size_t>(n) +
           2 * gemm_detail::align_floats;
}

// Y[n][W.rows] = X[n][W.cols]·Wᵀ for W in a block format: per band of qgemm_band rows, the rows
// are dequantized to fp32 (exact) into the thread's tile and multiplied by the fp32 GEMM
// (gemm_rows), whose outputs are each one FMA chain in column order — so results do not depend
// on the thread count. per_thread grows (only) to the pool's size and qgemm_tile_floats each.
inline void qgemm(const Weight& W, const float* X, int n, float* Y, ThreadPool* pool,
                  std::vector<std::vector<float>>& per_thread, Isa isa = active_isa()) {
    if (n <= 0 || W.rows == 0) return;
    const int threads = pool ? pool->size() : 1;
    const std::size_t need = qgemm_tile_floats(n, W.cols);
    if (per_thread.size() < static_cast<std::size_t>(threads)) per_thread.resize(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i) {
        auto& s = per_thread[static_cast<std::size_t>(i)];
        if (s.size() < need) s.resize(need);
    }
    const auto cols = static_cast<std::size_t>(W.cols), rows = static_cast<std::size_t>(W.rows);
    auto work = [&](int t, int nt) {
        float* tile = per_thread[static_cast<std::size_t>(t)].data();
        float* dec = gemm_detail::align64(tile);
        float* ytmp = gemm_detail::align64(dec + static_cast<std::size_t>(qgemm_band) * cols);
        float* scratch = ytmp + static_cast<std::size_t>(qgemm_band) * static_cast<std::size_t>(n);
        const int units = (W.rows + qgemm_band - 1) / qgemm_band;
        for (int u = units * t / nt; u < units * (t + 1) / nt; ++u) {
            const int rb = u * qgemm_band, re = std::min(W.rows, rb + qgemm_band), bn = re - rb;
            qdecode_rows(W, rb, re, dec, isa);
            Matrix<float> M;
            M.data = dec;
            M.rows = bn;
            M.cols = W.cols;
            gemm_rows(M, X, n, ytmp, 0, bn, scratch, isa);
            for (int i = 0; i < n; ++i)
                std::copy_n(ytmp + static_cast<std::size_t>(i) * static_cast<std::size_t>(bn), bn,
                            Y + static_cast<std::size_t>(i) * rows + static_cast<std::size_t>(rb));
        }
    };
    const bool tiny = static_cast<std::size_t>(n) * W.size() < (std::size_t{1} << 16);
    if (tiny || pool == nullptr || pool->size() == 1 || !pool->try_run(work)) work(0, 1);
}

#undef RWKV_QAVX512_TARGET
#undef RWKV_QAVX2_TARGET

}  // namespace rwkv::backend::cpu
