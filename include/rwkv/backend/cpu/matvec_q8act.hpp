#pragma once
// Opt-in decode mat-vec with int8 activations for the 32-value block formats (Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, IQ4_NL): Model::set_int8_activations. y[o] = Σ_c W[o][c]·x[c] with x rounded per
// block of 32 to int8 and the weights' integer codes multiplied with it in integers, as
// llama.cpp's quantized dot products do (its Q8_0 / Q8_1 "vec-dot" types). NOT exact: the
// activations carry an int8 rounding (≤ half a step of amax/127 per value), so it is off by
// default; the exact kernels are in matvec_quant.hpp. The K-quants (256-value super-blocks) have
// no kernel here and keep the exact path in this mode.
//
// Why: at 4-5 bits the exact kernel (dequantize to fp32 in registers, fp32 FMAs) is
// compute-bound on Zen 4 below the memory bandwidth; integer dot products (AVX512_VNNI vpdpbusd:
// 64 u8 × s8 products summed by fours into int32 per instruction) do the same work in fewer
// instructions, and Zen 4 decode becomes bandwidth-bound again.
//
// Activations: per block b of 32 values, d_b = amax / 127 in fp32 (not fp16 as in llama.cpp's
// Q8_0: the vector is a few KB in L1 for one call, so there is nothing to save, and fp32 adds no
// second rounding to the block's scale and no range limit), q = round-to-nearest-even(x / d_b)
// clamped to ±127 (the current rounding mode, round-to-nearest by default), and the eight lane
// sums S_b,j = Σ_{k<4} q[4j + k] (for the formats' offsets and minima). Defined behaviour at the
// edges: a block of zeros (or with amax / 127 below the smallest float) gets d = 0 and q = 0 and
// contributes exactly 0; a block holding a NaN or ±Inf gets d = NaN, so every output of the
// product is NaN (the exact path would give NaN or ±Inf there); huge finite values are fine
// (d ≤ FLT_MAX / 127).
//
// Arithmetic (one definition, the plain leaf's; every leaf computes it bit for bit): for block b
// of a row with weight scale dw (and minimum m for Q4_1 / Q5_1), the integer codes w (the true
// signed values: Q8_0 q, Q4_0 q − 8, Q5_0 q − 16, IQ4_NL the table level, Q4_1 / Q5_1 the
// unsigned q) give eight exact int32 lane dot products L_j = Σ_{k<4} w[4j + k]·q[4j + k], and
//   acc[slot] = fma(dw·dx_b, float(L_j), acc[slot])            (dw·dx_b one fp32 product)
//   acc[slot] = fma(m·dx_b, float(S_b,j), acc[slot])           (Q4_1, Q5_1 only)
// into 16 fp32 accumulators, slot = 8·(j ≥ 4) + 4·(b odd) + j mod 4 (the lanes of the AVX-512
// leaf, which takes two blocks per vector), blocks in order; then y = the fixed tree
// ((a_i = acc[i] + acc[i + 8]), (b_i = a_i + a_{i + 4}), (c_i = b_i + b_{i + 2}), c_0 + c_1).
// Integer sums are exact whatever the instruction, so the leaves differ only in how they get
// them:
// - avx512 with AVX512_VNNI: vpdpbusd on two blocks per zmm; weights as u8 (nibbles as they
//   are; Q8_0 and IQ4_NL levels + 128), their offsets taken out exactly by starting the int32
//   accumulator at −offset·S_b,j; fp16 scales of up to 8 blocks converted at once.
// - avx2 (and avx512 without VNNI): vpmaddubsw + vpmaddwd per block (signed weights by the sign
//   trick |w|·sign(x, w), which keeps the int16 pair sums from saturating), two accumulators for
//   even and odd blocks.
// - generic (also aarch64): plain C++, std::fma.
// Each output row is one accumulator set walked over the blocks in order, so results depend on
// neither the thread count nor the row grouping, and a batch of vectors gives each one bit for
// bit its single-vector result.

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "../../error.hpp"
#include "../../weight.hpp"
#include "isa.hpp"
#include "matvec.hpp"
#include "matvec_quant.hpp"
#include "threads.hpp"

namespace rwkv::backend::cpu {

// Formats with an int8-activation kernel (the others keep the exact one in this mode).
template <class F>
inline constexpr bool q8act_format_v =
    std::is_same_v<F, weights::q8_0> || std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::q4_1> ||
    std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1> || std::is_same_v<F, weights::iq4_nl>;

// True when W is a block format (quant_kernel_format) with an int8-activation kernel.
inline bool q8act_kernel_format(const Weight& W) {
    if (!quant_kernel_format(W)) return false;
    bool yes = false;
    weights::visit_format(W.type, [&](auto f) { yes = q8act_format_v<decltype(f)>; });
    return yes;
}

// Quantized activations of `blocks` blocks of 32 (one vector or several vectors' blocks back to
// back) in one byte buffer: q [blocks][32] int8, then d [blocks] fp32, then S [blocks][8] int32.
inline constexpr std::size_t q8act_block_bytes = 32 + 4 + 32;

inline std::size_t q8act_bytes(std::size_t blocks) { return blocks * q8act_block_bytes; }

// Block `first` on of a buffer of `total` blocks.
struct Q8ActView {
    const std::byte* q = nullptr;
    const std::byte* d = nullptr;
    const std::byte* s = nullptr;
};

inline Q8ActView q8act_view(const std::byte* buf, std::size_t total, std::size_t first) {
    return {buf + 32 * first, buf + 32 * total + 4 * first, buf + 36 * total + 32 * first};
}

namespace q8a_detail {

inline float f32_at(const std::byte* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
}
inline std::int32_t i32_at(const std::byte* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// ---- Activation quantization (plain): block b of x into q, d, S (see the header comment).
inline void quantize_block_plain(const float* x, std::byte* q, std::byte* d, std::byte* s) {
    float amax = 0.0f;
    bool finite = true;
    for (int e = 0; e < 32; ++e) {
        const float a = std::fabs(x[e]);
        finite = finite && a <= FLT_MAX;  // false for NaN and ±Inf
        amax = a > amax ? a : amax;
    }
    const float scale = finite ? amax / 127.0f : NAN;
    std::int8_t qi[32] = {};
    if (finite && scale != 0.0f)
        for (int e = 0; e < 32; ++e)
            qi[e] = static_cast<std::int8_t>(std::clamp(static_cast<int>(std::nearbyint(x[e] / scale)), -127, 127));
    std::memcpy(q, qi, 32);
    std::memcpy(d, &scale, 4);
    for (int j = 0; j < 8; ++j) {
        const std::int32_t sum = qi[4 * j] + qi[4 * j + 1] + qi[4 * j + 2] + qi[4 * j + 3];
        std::memcpy(s + 4 * j, &sum, 4);
    }
}

// ---- The weights' integer codes (plain): block → 32 codes (see the header comment), dw, m.
template <class F>
inline void codes_plain(const std::byte* b, int* w, float& dw, float& m) {
    dw = weights::fp16_to_float(weights::load_u16(b));
    m = 0.0f;
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        for (int e = 0; e < 32; ++e) w[e] = static_cast<std::int8_t>(static_cast<unsigned char>(b[2 + e]));
    } else {
        constexpr bool affine = std::is_same_v<F, weights::q4_1> || std::is_same_v<F, weights::q5_1>;
        constexpr bool five = std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>;
        constexpr int qs_at = 2 + (affine ? 2 : 0) + (five ? 4 : 0);
        if constexpr (affine) m = weights::fp16_to_float(weights::load_u16(b + 2));
        const std::uint32_t qh = five ? weights::load_u32(b + qs_at - 4) : 0u;
        for (int j = 0; j < 16; ++j) {
            const unsigned v = static_cast<unsigned>(b[qs_at + j]);
            int lo = static_cast<int>(v & 15u), hi = static_cast<int>(v >> 4);
            if constexpr (five) {
                lo |= static_cast<int>((qh >> j) & 1u) << 4;
                hi |= static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            }
            if constexpr (std::is_same_v<F, weights::iq4_nl>) {
                lo = weights::iq4_nl::level(static_cast<unsigned>(lo));
                hi = weights::iq4_nl::level(static_cast<unsigned>(hi));
            } else if constexpr (!affine) {
                lo -= five ? 16 : 8;
                hi -= five ? 16 : 8;
            }
            w[j] = lo;
            w[j + 16] = hi;
        }
    }
}

template <class F>
inline constexpr bool affine_v = std::is_same_v<F, weights::q4_1> || std::is_same_v<F, weights::q5_1>;

// The fixed final tree over the 16 accumulators.
inline float reduce16(const float* acc) {
    float a[8], b[4];
    for (int i = 0; i < 8; ++i) a[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; ++i) b[i] = a[i] + a[i + 4];
    const float c0 = b[0] + b[2], c1 = b[1] + b[3];
    return c0 + c1;
}

// One row (plain leaf): the definition every leaf reproduces.
template <class F>
float row_plain(const std::byte* row, const Q8ActView& a, std::size_t nb) {
    float acc[16] = {};
    int w[32];
    for (std::size_t b = 0; b < nb; ++b) {
        float dw = 0.0f, m = 0.0f;
        codes_plain<F>(row + b * F::block_bytes, w, dw, m);
        const float dx = f32_at(a.d + 4 * b);
        const float s = dw * dx, sm = m * dx;
        std::int8_t q[32];
        std::memcpy(q, a.q + 32 * b, 32);
        for (int j = 0; j < 8; ++j) {
            std::int32_t L = 0;
            for (int k = 0; k < 4; ++k) L += w[4 * j + k] * q[4 * j + k];
            float& slot = acc[8 * (j >= 4) + 4 * static_cast<int>(b & 1) + (j & 3)];
            slot = std::fma(s, static_cast<float>(L), slot);
            if constexpr (affine_v<F>)
                slot = std::fma(sm, static_cast<float>(i32_at(a.s + 32 * b + 4 * static_cast<std::size_t>(j))), slot);
        }
    }
    return reduce16(acc);
}

#if RWKV_MATVEC_X86
#define RWKV_Q8A_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define RWKV_Q8A_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

// ---- Activation quantization (AVX2; the avx512 leaf uses it too): the plain one bit for bit
// (max, IEEE division and vcvtps2dq's round-to-nearest-even are exact operations).
RWKV_Q8A_AVX2_TARGET inline void quantize_block_avx2(const float* x, std::byte* q, std::byte* d, std::byte* s) {
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(FLT_MAX);
    __m256 v[4], amax = _mm256_setzero_ps();
    int ok = 0xff;
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        const __m256 a = _mm256_andnot_ps(sign, v[i]);
        ok &= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_LE_OQ));
        amax = _mm256_max_ps(amax, a);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float scale = ok == 0xff ? _mm_cvtss_f32(m4) / 127.0f : NAN;
    __m256i bytes = _mm256_setzero_si256();
    if (ok == 0xff && scale != 0.0f) {
        const __m256 dv = _mm256_set1_ps(scale);
        const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
        __m256i qi[4];
        for (int i = 0; i < 4; ++i)
            qi[i] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_div_ps(v[i], dv)), lo), hi);
        // packs interleave 128-bit lanes: dwords come out as x[0-3] x[8-11] x[16-19] x[24-27] x[4-7] ...
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
        bytes = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), bytes);
    std::memcpy(d, &scale, 4);
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes), _mm256_set1_epi16(1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(s), sums);
}

// GCC 12 warns that unmasked AVX-512 intrinsics read an uninitialized value (a false positive):
// the leaf uses their zero-masked forms with every lane kept, as matvec_quant.hpp does.
constexpr __mmask16 k16 = 0xffff;

// ---- AVX-512 VNNI leaf: two blocks (b, b + 1) per zmm, 128-bit chunks [b 0-15, b+1 0-15,
// b 16-31, b+1 16-31] (the slots of the header comment).

// Blocks whose fp16 fields two 64-byte loads hold (even, at most 8).
template <class F>
inline constexpr int vnni_group = std::min(8, ((128 - (affine_v<F> ? 4 : 2)) / F::block_bytes + 1) & ~1);

template <class F>
struct VnniScaleIndex {  // vpermt2w indices: word k = d of block k, word 8 + k = m of block k
    alignas(64) std::uint16_t w[32] = {};
    constexpr VnniScaleIndex() {
        for (int k = 0; k < vnni_group<F>; ++k) {
            w[k] = static_cast<std::uint16_t>(k * F::block_bytes / 2);
            if (affine_v<F>) w[8 + k] = static_cast<std::uint16_t>((k * F::block_bytes + 2) / 2);
        }
    }
};

// The fp16 d (lanes 0-7) and m (lanes 8-15) of blocks 0..count-1 from p, converted to fp32.
template <class F>
RWKV_Q8A_VNNI_TARGET inline __m512 vnni_scales(const std::byte* p, int count) {
    static constexpr VnniScaleIndex<F> index{};
    const int span = (count - 1) * F::block_bytes + (affine_v<F> ? 4 : 2);
    const __mmask64 lo_mask = span >= 64 ? ~__mmask64{0} : (__mmask64{1} << span) - 1;
    const __mmask64 hi_mask = span <= 64 ? 0 : span >= 128 ? ~__mmask64{0} : (__mmask64{1} << (span - 64)) - 1;
    const __m512i lo = _mm512_maskz_loadu_epi8(lo_mask, p);
    const __m512i hi = _mm512_maskz_loadu_epi8(hi_mask, p + 64);
    const __m512i h = _mm512_permutex2var_epi16(lo, _mm512_load_si512(index.w), hi);
    return _mm512_maskz_cvtph_ps(k16, _mm512_maskz_extracti64x4_epi64(0xf, h, 0));
}

// Weight offset taken out of the u8 codes through the accumulator's start (log2), 0: none.
template <class F>
inline constexpr int vnni_offset_shift = std::is_same_v<F, weights::q8_0> || std::is_same_v<F, weights::iq4_nl> ? 7
                                         : std::is_same_v<F, weights::q4_0>                                     ? 3
                                         : std::is_same_v<F, weights::q5_0>                                     ? 4
                                                                                                                : 0;

// The u8 codes of blocks b (at p) and b + 1 (at p + block_bytes; zeros when !two) in chunk order.
template <class F, bool Two>
RWKV_Q8A_VNNI_TARGET inline __m512i vnni_codes(const std::byte* p) {
    constexpr int BB = F::block_bytes;
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
        const __m256i b =
            Two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + BB + 2)) : _mm256_setzero_si256();
        const __m512i v = _mm512_maskz_permutex2var_epi64(
            0xff, _mm512_castsi256_si512(a), _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), _mm512_castsi256_si512(b));
        return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));  // q + 128
    } else {
        constexpr bool five = std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>;
        constexpr int qs_at = 2 + (affine_v<F> ? 2 : 0) + (five ? 4 : 0);
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + qs_at));
        const __m256i v =
            Two ? _mm256_inserti128_si256(_mm256_castsi128_si256(a),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + BB + qs_at)), 1)
                : _mm256_zextsi128_si256(a);
        __m512i z =
            _mm512_and_si512(_mm512_maskz_inserti64x4(0xff, _mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1),
                             _mm512_set1_epi8(15));
        if constexpr (five) {  // bit e of qh: element e's 5th bit
            const std::uint64_t h0 = qmv_detail::u32_at(p + qs_at - 4),
                                h1 = Two ? qmv_detail::u32_at(p + BB + qs_at - 4) : 0;
            const std::uint64_t m = (h0 & 0xffffu) | ((h1 & 0xffffu) << 16) | ((h0 >> 16) << 32) | ((h1 >> 16) << 48);
            z = _mm512_mask_add_epi8(z, static_cast<__mmask64>(m), z, _mm512_set1_epi8(16));
        }
        if constexpr (std::is_same_v<F, weights::iq4_nl>) {  // level + 128 by pshufb
            const __m512i t = _mm512_maskz_broadcast_i32x4(
                k16, _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, -127, -115, -103, -90, -75, -59, -39, -15));
            z = _mm512_shuffle_epi8(t, z);
        }
        return z;
    }
}

RWKV_Q8A_VNNI_TARGET inline float vnni_reduce(__m512 v) {  // reduce16's tree
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(k16, v, v, 0x4e));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(k16, v, v, 0xb1));
    __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class F, int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    constexpr int G = vnni_group<F>, BB = F::block_bytes, shift = vnni_offset_shift<F>;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const __m512i pair_idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    for (std::size_t b0 = 0; b0 < nb; b0 += G) {
        const int count = static_cast<int>(std::min<std::size_t>(G, nb - b0));
        const __m512 dx = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), a.d + 4 * b0);
        __m512 S[R], SM[R];  // per row: dw·dx of the group's blocks in lanes 0-7 (m·dx: SM)
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const __m512 dm = vnni_scales<F>(w[r] + b0 * BB, count);
            S[r] = _mm512_mul_ps(dm, dx);
            if constexpr (affine_v<F>) SM[r] = _mm512_mul_ps(_mm512_maskz_shuffle_f32x4(k16, dm, dm, 0x4e), dx);
        }
        for (int k = 0; k < count; k += 2) {
            const std::size_t b = b0 + static_cast<std::size_t>(k), off = b * BB;
            const bool two = k + 1 < count;
            const __m512i order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);  // [b lo, b+1 lo, b hi, b+1 hi]
            const __m512i xv = _mm512_maskz_permutexvar_epi64(
                0xff, order, two ? _mm512_loadu_si512(a.q + 32 * b) : _mm512_maskz_loadu_epi64(0x0f, a.q + 32 * b));
            const __m512i sl = _mm512_maskz_permutexvar_epi64(
                0xff, order, two ? _mm512_loadu_si512(a.s + 32 * b) : _mm512_maskz_loadu_epi64(0x0f, a.s + 32 * b));
            const __m512i init = shift
                                     ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_slli_epi32(k16, sl, shift))
                                     : _mm512_setzero_si512();
            const __m512 slf = _mm512_maskz_cvtepi32_ps(k16, sl);
            const __m512i idx = _mm512_add_epi32(pair_idx, _mm512_set1_epi32(k));
            const __mmask16 lanes = two ? 0xffff : 0x0f0f;
            RWKV_CPU_UNROLL(8)
            for (int r = 0; r < R; ++r) {
                qmv_detail::prefetch_range(w[r] + off, 2 * BB);
                const __m512i codes = two ? vnni_codes<F, true>(w[r] + off) : vnni_codes<F, false>(w[r] + off);
                const __m512 L = _mm512_maskz_cvtepi32_ps(k16, _mm512_dpbusd_epi32(init, codes, xv));
                acc[r] = _mm512_mask3_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, idx, S[r]), L, acc[r], lanes);
                if constexpr (affine_v<F>)
                    acc[r] = _mm512_mask3_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, idx, SM[r]), slf, acc[r], lanes);
            }
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]);
}

// ---- AVX2 leaf: one block per ymm (elements in order: lanes 0-3 are slots 4·parity + j, lanes
// 4-7 slots 8 + 4·parity + j − 4), accumulators for even and odd blocks.
template <class F>
RWKV_Q8A_AVX2_TARGET inline __m256i avx2_dot(const std::byte* p, __m256i xv, __m256i sl) {
    const __m256i ones = _mm256_set1_epi16(1);
    if constexpr (std::is_same_v<F, weights::q8_0> || std::is_same_v<F, weights::iq4_nl>) {
        __m256i wv;  // signed codes
        if constexpr (std::is_same_v<F, weights::q8_0>) {
            wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
        } else {
            const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)), m4 = _mm_set1_epi8(15);
            const __m128i levels =
                _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
            wv = _mm256_setr_m128i(_mm_shuffle_epi8(levels, _mm_and_si128(qs, m4)),
                                   _mm_shuffle_epi8(levels, _mm_and_si128(_mm_srli_epi16(qs, 4), m4)));
        }
        (void)sl;
        return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones);
    } else {
        constexpr bool five = std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>;
        constexpr int qs_at = 2 + (affine_v<F> ? 2 : 0) + (five ? 4 : 0);
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + qs_at));
        __m256i wv = _mm256_and_si256(_mm256_setr_m128i(qs, _mm_srli_epi16(qs, 4)), _mm256_set1_epi8(15));
        if constexpr (five) {  // byte e gets bit e of qh as 16
            const __m256i h = _mm256_set1_epi32(static_cast<int>(qmv_detail::u32_at(p + qs_at - 4)));
            const __m256i spread =
                _mm256_shuffle_epi8(h, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                                        2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
            const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
            wv = _mm256_or_si256(wv, _mm256_and_si256(set, _mm256_set1_epi8(16)));
        }
        const __m256i L = _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xv), ones);
        constexpr int shift = vnni_offset_shift<F>;
        if constexpr (shift != 0) return _mm256_sub_epi32(L, _mm256_slli_epi32(sl, shift));
        else return L;
    }
}

template <class F, int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    constexpr int BB = F::block_bytes;
    __m256 acc[2][R];
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t off = b * BB;
        const int par = static_cast<int>(b & 1);
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + 32 * b));
        const __m256i sl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.s + 32 * b));
        const float dx = f32_at(a.d + 4 * b);
        const __m256 slf = _mm256_cvtepi32_ps(sl);
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + off;
            if (b % qmv_detail::step_blocks<F> == 0) qmv_detail::prefetch_range(p, qmv_detail::step_blocks<F> * BB);
            const float s = _cvtsh_ss(qmv_detail::u16_at(p)) * dx;
            const __m256 L = _mm256_cvtepi32_ps(avx2_dot<F>(p, xv, sl));
            acc[par][r] = _mm256_fmadd_ps(_mm256_set1_ps(s), L, acc[par][r]);
            if constexpr (affine_v<F>) {
                const float sm = _cvtsh_ss(qmv_detail::u16_at(p + 2)) * dx;
                acc[par][r] = _mm256_fmadd_ps(_mm256_set1_ps(sm), slf, acc[par][r]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {  // reduce16 with acc[0] = slots 0-3, 8-11 and acc[1] = 4-7, 12-15
        const __m256 e = acc[0][r], o = acc[1][r];
        const __m128 ae = _mm_add_ps(_mm256_castps256_ps128(e), _mm256_extractf128_ps(e, 1));
        const __m128 ao = _mm_add_ps(_mm256_castps256_ps128(o), _mm256_extractf128_ps(o, 1));
        __m128 s = _mm_add_ps(ae, ao);
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        *y[r] = _mm_cvtss_f32(s);
    }
}
#endif  // RWKV_MATVEC_X86

// The leaf an Isa gets: 2 = VNNI, 1 = AVX2, 0 = plain.
inline int leaf(Isa isa) {
    isa = qmv_detail::usable(isa);
    if (isa == Isa::avx512 && avx512_vnni_supported()) return 2;
    return isa == Isa::generic ? 0 : 1;
}

template <class F>
void rows_typed(const Weight& W, const Q8ActView& a, float* y, int row_begin, int row_end, int lf) {
    const auto nb = static_cast<std::size_t>(W.cols / F::block_elems);
#if RWKV_MATVEC_X86
    if (lf == 2)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if (n == 8) rows_vnni<F, 8>(w, a, nb, o);
                                              else rows_vnni<F, 1>(w, a, nb, o);
                                          });
    if (lf == 1)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if (n == 8) rows_avx2<F, 8>(w, a, nb, o);
                                              else rows_avx2<F, 1>(w, a, nb, o);
                                          });
#endif
    (void)lf;
    for (int r = row_begin; r < row_end; ++r) y[r] = row_plain<F>(W.row(r), a, nb);
}

}  // namespace q8a_detail

// Quantizes the `blocks` blocks of 32 values of x into blocks [first, first + blocks) of buf, a
// buffer of `total` blocks (q8act_bytes(total) bytes, layout at q8act_view), on the given path;
// every path writes the same bytes.
inline void q8act_quantize(const float* x, std::size_t blocks, std::byte* buf, std::size_t total, std::size_t first,
                           Isa isa = active_isa()) {
    std::byte *q = buf + 32 * first, *d = buf + 32 * total + 4 * first, *s = buf + 36 * total + 32 * first;
#if RWKV_MATVEC_X86
    if (q8a_detail::leaf(isa) > 0) {
        for (std::size_t b = 0; b < blocks; ++b)
            q8a_detail::quantize_block_avx2(x + 32 * b, q + 32 * b, d + 4 * b, s + 32 * b);
        return;
    }
#endif
    (void)isa;
    for (std::size_t b = 0; b < blocks; ++b)
        q8a_detail::quantize_block_plain(x + 32 * b, q + 32 * b, d + 4 * b, s + 32 * b);
}

// y[o] = Σ_c W[o][c]·x[c] for o in [row_begin, row_end) (y indexes the whole output) with x
// quantized (a: W.cols / 32 blocks), W a format with an int8-activation kernel
// (q8act_kernel_format), on the given path (a missing one is replaced by the best one below).
inline void q8act_rows(const Weight& W, const Q8ActView& a, float* y, int row_begin, int row_end,
                       Isa isa = active_isa()) {
    if (row_begin >= row_end) return;
    const int lf = q8a_detail::leaf(isa);
    weights::visit_format(W.type, [&](auto f) {
        using F = decltype(f);
        if constexpr (q8act_format_v<F>) q8a_detail::rows_typed<F>(W, a, y, row_begin, row_end, lf);
    });
}

namespace q8a_detail {

// Quantizes each job's x (formats with a kernel) into buf, back to back; views[i] is job i's.
inline void quantize_jobs(std::span<const QMatvecJob> jobs, std::vector<std::byte>& buf, Q8ActView* views, Isa isa) {
    std::size_t total = 0;
    for (const auto& j : jobs)
        if (q8act_kernel_format(*j.W)) total += static_cast<std::size_t>(j.W->cols / 32);
    if (buf.size() < q8act_bytes(total)) buf.resize(q8act_bytes(total));
    std::size_t first = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (!q8act_kernel_format(*jobs[i].W)) continue;
        const auto nb = static_cast<std::size_t>(jobs[i].W->cols / 32);
        q8act_quantize(jobs[i].x, nb, buf.data(), total, first, isa);
        views[i] = q8act_view(buf.data(), total, first);
        first += nb;
    }
}

// Thread t's share of the jobs' 16-row units, balanced by weight bytes (qmatvec_share's split);
// jobs without an int8 kernel run the exact one (qmatvec_rows).
inline void share(std::span<const QMatvecJob> jobs, const Q8ActView* views, int t, int n, Isa isa) {
    using u64 = std::uint64_t;
    constexpr int U = matvec_row_unit;
    u64 total = 0;
    for (const auto& j : jobs) total += static_cast<u64>((j.W->rows + U - 1) / U) * j.W->row_bytes;
    const u64 lo = total * static_cast<u64>(t) / static_cast<u64>(n);
    const u64 hi = total * static_cast<u64>(t + 1) / static_cast<u64>(n);
    u64 base = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        const Weight& W = *jobs[i].W;
        const u64 units = static_cast<u64>((W.rows + U - 1) / U), cost = W.row_bytes;
        if (cost == 0) {
            if (t == 0) std::fill(jobs[i].y, jobs[i].y + W.rows, 0.0f);
            continue;
        }
        auto first_unit_at = [&](u64 c) { return c <= base ? u64{0} : std::min(units, (c - base + cost - 1) / cost); };
        const u64 ub = first_unit_at(lo), ue = first_unit_at(hi);
        if (ub < ue) {
            const int rb = static_cast<int>(ub) * U, re = std::min(W.rows, static_cast<int>(ue) * U);
            if (q8act_kernel_format(W)) q8act_rows(W, views[i], jobs[i].y, rb, re, isa);
            else qmatvec_rows(W, jobs[i].x, jobs[i].y, rb, re, isa);
        }
        base += units * cost;
    }
}

}  // namespace q8a_detail

// Several independent block-format mat-vecs (formats may differ) in one pool dispatch, as
// qmatvec_many, with int8 activations where the format has a kernel (q8act_kernel_format; the
// others exact). buf: the quantized activations, grown as needed (reused between calls). At most
// 8 jobs.
inline void q8act_many(std::span<const QMatvecJob> jobs, ThreadPool* pool, std::vector<std::byte>& buf,
                       Isa isa = active_isa()) {
    Q8ActView views[8];
    if (jobs.size() > 8) throw error("q8act_many: at most 8 jobs");
    q8a_detail::quantize_jobs(jobs, buf, views, isa);
    std::size_t bytes = 0;
    for (const auto& j : jobs) bytes += j.W->bytes();
    auto work = [jobs, &views, isa](int t, int n) { q8a_detail::share(jobs, views, t, n, isa); };
    if (pool == nullptr || pool->size() == 1 || bytes < matvec_parallel_min_bytes || !pool->try_run(work)) work(0, 1);
}

// y = W·x with int8 activations (exact kernel for formats without one), rows split across the
// pool's threads.
inline void q8act_matvec(const Weight& W, const float* x, float* y, ThreadPool* pool, std::vector<std::byte>& buf,
                         Isa isa = active_isa()) {
    const QMatvecJob job{&W, x, y};
    q8act_many(std::span<const QMatvecJob>(&job, 1), pool, buf, isa);
}

// Y[v][W.rows] = W·X[v] for n vectors with int8 activations (batched decoding), W a format with
// a kernel (q8act_kernel_format): all vectors quantized once, then qmatvec_batch's split (blocks
// of 64 rows per thread, every vector over a block while its weights are in cache). Each Y[v] is
// bit for bit q8act_matvec(W, X[v]).
inline void q8act_matvec_batch(const Weight& W, const float* X, int n, float* Y, ThreadPool* pool,
                               std::vector<std::byte>& buf, Isa isa = active_isa()) {
    if (n == 1) return q8act_matvec(W, X, Y, pool, buf, isa);
    const auto cols = static_cast<std::size_t>(W.cols), rows = static_cast<std::size_t>(W.rows), nb = cols / 32;
    const std::size_t total = nb * static_cast<std::size_t>(n);
    if (buf.size() < q8act_bytes(total)) buf.resize(q8act_bytes(total));
    for (int v = 0; v < n; ++v)
        q8act_quantize(X + static_cast<std::size_t>(v) * cols, nb, buf.data(), total, nb * static_cast<std::size_t>(v),
                       isa);
    constexpr int block = 4 * matvec_row_unit;
    const int blocks = (W.rows + block - 1) / block;
    auto work = [&](int t, int nt) {
        for (int b = blocks * t / nt; b < blocks * (t + 1) / nt; ++b) {
            const int r0 = b * block, r1 = std::min(W.rows, r0 + block);
            for (int v = 0; v < n; ++v)
                q8act_rows(W, q8act_view(buf.data(), total, nb * static_cast<std::size_t>(v)),
                           Y + static_cast<std::size_t>(v) * rows, r0, r1, isa);
        }
    };
    if (pool == nullptr || pool->size() == 1 || !pool->try_run(work)) work(0, 1);
}

#undef RWKV_Q8A_VNNI_TARGET
#undef RWKV_Q8A_AVX2_TARGET

}  // namespace rwkv::backend::cpu
