#pragma once
// Opt-in decode mat-vec with int8 activations for the 32-value block formats (Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, IQ4_NL) and the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): Model::set_int8_activations.
// y[o] = Σ_c W[o][c]·x[c] with x rounded per block of 32 to int8 and the weights' integer codes
// multiplied with it in integers, as llama.cpp's quantized dot products do (its Q8_0 / Q8_1
// "vec-dot" types). NOT exact: the activations carry an int8 rounding (≤ half a step of amax/127
// per value), so it is off by default; the exact kernels are in matvec_quant.hpp.
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
// unsigned q) give exact int32 lane dot products L_j — Q8_0: 8 lanes of 4 values
// (elements 4j..4j+3), into slots 8·(b odd) + j; the 4- and 5-bit formats: 4 lanes of 8 values
// (elements 4j..4j+3 and 16+4j..16+4j+3, the low and high nibbles of the same bytes), into slots
// 4·(b mod 4) + j — and 16 fp32 accumulators take, block after block,
//   acc[slot] = fma(dw·dx_b, float(L_j), acc[slot])            (dw·dx_b one fp32 product)
//   acc[slot] = fma(m·dx_b, float(S'_b,j), acc[slot])          (Q4_1, Q5_1: S' the lane's Σ q)
// then y = the fixed tree (a_i = acc[i] + acc[i + 8], b_i = a_i + a_{i + 4},
// c_i = b_i + b_{i + 2}, c_0 + c_1). The slots are the lanes of the AVX-512 leaf, which takes
// two Q8_0 blocks or four 4/5-bit blocks per vector. Integer sums are exact whatever the
// instruction, so the leaves differ only in how they get them:
// - avx512 with AVX512_VNNI: vpdpbusd (64 u8 × s8 products summed by fours into int32), weights
//   as u8 (nibbles as they are; Q8_0 and IQ4_NL levels + 128), the offsets (8, 16, 128) taken out
//   exactly by starting the int32 accumulator at −offset·(activation lane sums); for the 4/5-bit
//   formats the low nibbles of 4 blocks in one vector and the high nibbles in another, both
//   vpdpbusd into one accumulator; fp16 scales of 4-8 blocks converted at once.
// - avx2 (and avx512 without VNNI): vpmaddubsw + vpmaddwd (signed weights by the sign trick
//   |w|·sign(x, w), which keeps the int16 pair sums below saturation).
// - generic: plain C++, std::fma; on aarch64 the 32-value formats have NEON leaves (SDOT where
//   the CPU has it, else vmull + pairwise adds), the K-quants too (vmull).
// K-quants (256-value super-blocks B of a row, activation blocks b = 8B + 0..7; same activation
// quantization; products of an fp16 with a 6- or 8-bit integer are exact in fp32):
// - Q4_K / Q5_K: sub-block s (elements 32s..32s+31, activation block 8B + s) has ds = d·sc_s and
//   dm = dmin·m_s (exact) and unsigned codes q (4 or 5 bits); exact int32 lane dots
//   L_s,j = Σ_{k<4} q[32s + 4j + k]·x[4j + k] (j < 8), and, for s = 0..7 in order,
//     acc[8·((s >> 1) & 1) + j] = fma(ds·dx_b, float(L_s,j), acc[...])  (ds·dx_b one fp32 product)
//     mn[s] = fma(dm, T_b, mn[s])     T_b = dx_b·float(Σ_j S_b,j), one fp32 product
//   y = reduce16(acc) − (m2_0 + m2_1), m4_i = mn[i] + mn[i + 4], m2_i = m4_i + m4_{i + 2}.
// - Q6_K: 16-value sub-blocks s with ds = d·scales[s] (exact), codes q − 32; for the quarters
//   v = 0..3 of the super-block (elements 64v..64v+63) in order and slots i = 0..15, the exact lane
//   dot L = Σ_{k<4} (q[e] − 32)·x[e] over e = 64v + 4i + k, sub-block 4v + i/4, activation block
//   8B + 2v + i/8: acc[i] = fma(ds·dx_b, float(L), acc[i]); y = reduce16(acc).
// - Q2_K: as Q6_K with unsigned 2-bit codes and ds = d·(scales[s] & 15), plus the mins
//   dm = dmin·(scales[s] >> 4) (exact): per sub-block s (activation block b = 8B + s/2, half
//   u = s mod 2), mn[s] = fma(dm, T, mn[s]) with T = dx_b·float(S_b,4u + S_b,4u+1 + S_b,4u+2 +
//   S_b,4u+3) (one fp32 product); y = reduce16(acc) − reduce16(mn).
// - Q3_K: as Q6_K with the codes q − 4 (q = 2 low bits | hmask bit << 2) and ds = d·S, S the
//   signed 6-bit scale (exact).
//   Leaves: VNNI takes Q4_K / Q5_K per half super-block as a zmm of low nibbles (sub-blocks 4h,
//   4h + 2) and one of high nibbles (4h + 1, 4h + 3), Q6_K, Q3_K and Q2_K per quarter (one zmm;
//   the −32 / −4 offsets through the accumulator's start at −offset·lane sums); AVX2 one ymm per
//   sub-block (Q4_K / Q5_K) or per activation block (the others); 6-bit scales unpacked with pshufb.
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
    std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1> || std::is_same_v<F, weights::iq4_nl> ||
    std::is_same_v<F, weights::q2_k> || std::is_same_v<F, weights::q3_k> || std::is_same_v<F, weights::q4_k> ||
    std::is_same_v<F, weights::q5_k> || std::is_same_v<F, weights::q6_k>;

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

// Q8_0 gives 8 lane sums per block (4 values each) into slots 8·(b odd) + j; the 4- and 5-bit
// formats give 4 lane sums of 8 values (elements 4j..4j+3 and 16+4j..16+4j+3: the low and high
// nibbles of the same 4 bytes) into slots 4·(b mod 4) + j.
template <class F>
inline constexpr bool wide_lanes_v = std::is_same_v<F, weights::q8_0>;

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
        std::int32_t S[8];
        std::memcpy(S, a.s + 32 * b, 32);
        if constexpr (wide_lanes_v<F>) {
            for (int j = 0; j < 8; ++j) {
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) L += w[4 * j + k] * q[4 * j + k];
                float& slot = acc[8 * static_cast<int>(b & 1) + j];
                slot = std::fma(s, static_cast<float>(L), slot);
            }
        } else {
            for (int j = 0; j < 4; ++j) {
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) L += w[4 * j + k] * q[4 * j + k] + w[16 + 4 * j + k] * q[16 + 4 * j + k];
                float& slot = acc[4 * static_cast<int>(b & 3) + j];
                slot = std::fma(s, static_cast<float>(L), slot);
                if constexpr (affine_v<F>) slot = std::fma(sm, static_cast<float>(S[j] + S[j + 4]), slot);
            }
        }
    }
    return reduce16(acc);
}

// ---- K-quants (256-value super-blocks; see the header comment for the arithmetic).
template <class F>
inline constexpr bool k4_v = std::is_same_v<F, weights::q4_k> || std::is_same_v<F, weights::q5_k>;
template <class F>
inline constexpr bool kquant_v =
    k4_v<F> || std::is_same_v<F, weights::q6_k> || std::is_same_v<F, weights::q2_k> || std::is_same_v<F, weights::q3_k>;

// The fixed tree over the 8 min accumulators of Q4_K / Q5_K.
inline float reduce8(const float* mn) {
    float a[4];
    for (int i = 0; i < 4; ++i) a[i] = mn[i] + mn[i + 4];
    const float b0 = a[0] + a[2], b1 = a[1] + a[3];
    return b0 + b1;
}

// One row of Q4_K / Q5_K (plain leaf).
template <class F>
float row_plain_k4(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    constexpr bool five = std::is_same_v<F, weights::q5_k>;
    constexpr int qs = five ? 48 : 16;
    float acc[16] = {}, mn[8] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * F::block_bytes;
        const float d = weights::fp16_to_float(weights::load_u16(blk));
        const float dmin = weights::fp16_to_float(weights::load_u16(blk + 2));
        for (int s = 0; s < 8; ++s) {
            unsigned sc = 0, m = 0;
            weights::detail::k4_scale_min(blk + 4, s, sc, m);
            const std::size_t b = 8 * sb + static_cast<std::size_t>(s);
            const float dx = f32_at(a.d + 4 * b);
            const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);  // exact
            const float scale = ds * dx;
            std::int8_t q[32];
            std::memcpy(q, a.q + 32 * b, 32);
            std::int32_t S[8];
            std::memcpy(S, a.s + 32 * b, 32);
            for (int j = 0; j < 8; ++j) {
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) {
                    const int l = 4 * j + k;
                    int code =
                        static_cast<int>((static_cast<unsigned>(blk[qs + 32 * (s / 2) + l]) >> (4 * (s % 2))) & 15u);
                    if constexpr (five) code |= static_cast<int>((static_cast<unsigned>(blk[16 + l]) >> s) & 1u) << 4;
                    L += code * q[l];
                }
                float& slot = acc[8 * ((s >> 1) & 1) + j];
                slot = std::fma(scale, static_cast<float>(L), slot);
            }
            std::int32_t total = 0;
            for (int j = 0; j < 8; ++j) total += S[j];
            const float T = dx * static_cast<float>(total);
            mn[s] = std::fma(dm, T, mn[s]);
        }
    }
    return reduce16(acc) - reduce8(mn);
}

// One row of Q6_K (plain leaf).
inline float row_plain_q6k(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    float acc[16] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * weights::q6_k::block_bytes;
        const float d = weights::fp16_to_float(weights::load_u16(blk + 208));
        for (int v = 0; v < 4; ++v) {
            for (int i = 0; i < 16; ++i) {
                const int s = 4 * v + i / 4;
                const std::size_t b = 8 * sb + static_cast<std::size_t>(2 * v + i / 8);
                const float ds =
                    d * static_cast<float>(static_cast<signed char>(static_cast<unsigned char>(blk[192 + s])));
                const float scale = ds * f32_at(a.d + 4 * b);
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) {
                    const int e = 64 * v + 4 * i + k, h = e / 128, g = (e % 128) / 32, l = e % 32;
                    const unsigned byte = static_cast<unsigned>(blk[64 * h + l + 32 * (g & 1)]);
                    const unsigned lo = g < 2 ? byte & 15u : byte >> 4;
                    const unsigned hi = (static_cast<unsigned>(blk[128 + 32 * h + l]) >> (2 * g)) & 3u;
                    L += (static_cast<int>(lo | (hi << 4)) - 32) *
                         static_cast<int>(static_cast<std::int8_t>(
                             static_cast<unsigned char>(a.q[32 * b + static_cast<std::size_t>(l)])));
                }
                acc[i] = std::fma(scale, static_cast<float>(L), acc[i]);
            }
        }
    }
    return reduce16(acc);
}

// One row of Q2_K (plain leaf).
inline float row_plain_q2k(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    float acc[16] = {}, mn[16] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * weights::q2_k::block_bytes;
        const float d = weights::fp16_to_float(weights::load_u16(blk + 80));
        const float dmin = weights::fp16_to_float(weights::load_u16(blk + 82));
        for (int v = 0; v < 4; ++v) {
            for (int i = 0; i < 16; ++i) {
                const int s = 4 * v + i / 4;
                const std::size_t b = 8 * sb + static_cast<std::size_t>(2 * v + i / 8);
                const float ds = d * static_cast<float>(static_cast<unsigned>(blk[s]) & 15u);  // exact
                const float scale = ds * f32_at(a.d + 4 * b);
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) {
                    const int e = 64 * v + 4 * i + k, h = e / 128, j = (e % 128) / 32, l = e % 32;
                    const int code = static_cast<int>((static_cast<unsigned>(blk[16 + 32 * h + l]) >> (2 * j)) & 3u);
                    L += code * static_cast<int>(static_cast<std::int8_t>(
                                    static_cast<unsigned char>(a.q[32 * b + static_cast<std::size_t>(l)])));
                }
                acc[i] = std::fma(scale, static_cast<float>(L), acc[i]);
            }
        }
        for (int s = 0; s < 16; ++s) {
            const std::size_t b = 8 * sb + static_cast<std::size_t>(s / 2);
            std::int32_t S[8];
            std::memcpy(S, a.s + 32 * b, 32);
            const int o = 4 * (s & 1);
            const std::int32_t half = S[o] + S[o + 1] + S[o + 2] + S[o + 3];
            const float T = f32_at(a.d + 4 * b) * static_cast<float>(half);
            const float dm = dmin * static_cast<float>(static_cast<unsigned>(blk[s]) >> 4);  // exact
            mn[s] = std::fma(dm, T, mn[s]);
        }
    }
    return reduce16(acc) - reduce16(mn);
}

// One row of Q3_K (plain leaf): Q6_K's arithmetic with the codes q − 4 (q = 2 low bits | hmask
// bit << 2) and ds = d·S (S the signed 6-bit scale).
inline float row_plain_q3k(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    float acc[16] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * weights::q3_k::block_bytes;
        const float d = weights::fp16_to_float(weights::load_u16(blk + 108));
        for (int v = 0; v < 4; ++v) {
            for (int i = 0; i < 16; ++i) {
                const int s = 4 * v + i / 4;
                const std::size_t b = 8 * sb + static_cast<std::size_t>(2 * v + i / 8);
                const float ds = d * static_cast<float>(weights::q3_k::scale(blk, s));  // exact
                const float scale = ds * f32_at(a.d + 4 * b);
                std::int32_t L = 0;
                for (int k = 0; k < 4; ++k) {
                    const int e = 64 * v + 4 * i + k, h = e / 128, j = (e % 128) / 32, l = e % 32;
                    const int low = static_cast<int>((static_cast<unsigned>(blk[32 + 32 * h + l]) >> (2 * j)) & 3u);
                    const int high = static_cast<int>((static_cast<unsigned>(blk[l]) >> (4 * h + j)) & 1u);
                    L += (low + 4 * high - 4) * static_cast<int>(static_cast<std::int8_t>(static_cast<unsigned char>(
                                                    a.q[32 * b + static_cast<std::size_t>(l)])));
                }
                acc[i] = std::fma(scale, static_cast<float>(L), acc[i]);
            }
        }
    }
    return reduce16(acc);
}

#if RWKV_MATVEC_X86
#define RWKV_Q8A_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define RWKV_Q8A_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
// Helpers always inlined and innermost fixed-count loops unrolled, as in matvec_quant.hpp (the
// same code at -O2 as at -O3).
#define RWKV_Q8A_VNNI_INLINE RWKV_Q8A_VNNI_TARGET __attribute__((always_inline)) inline
#define RWKV_Q8A_AVX2_INLINE RWKV_Q8A_AVX2_TARGET __attribute__((always_inline)) inline

// ---- Activation quantization (AVX2; the avx512 leaf uses it too): the plain one bit for bit
// (max, IEEE division and vcvtps2dq's round-to-nearest-even are exact operations).
RWKV_Q8A_AVX2_TARGET inline void quantize_block_avx2(const float* x, std::byte* q, std::byte* d, std::byte* s) {
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(FLT_MAX);
    __m256 v[4], amax = _mm256_setzero_ps();
    int ok = 0xff;
    RWKV_CPU_UNROLL(4)
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
        RWKV_CPU_UNROLL(4)
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
constexpr __mmask64 k64 = ~__mmask64{0};

// ---- AVX-512 VNNI leaf. Q8_0: two blocks per zmm (lanes 8·(b odd) + j); the 4- and 5-bit
// formats: four blocks per zmm, their low nibbles in one vector and high nibbles in another
// against the matching activations, both vpdpbusd into one int32 accumulator (lanes
// 4·(b mod 4) + j). Weights go in as u8 (nibbles as they are; Q8_0 and IQ4_NL levels + 128), the
// offsets taken out exactly by starting the accumulator at −offset·(activation lane sums).

// Blocks whose fp16 scales are converted at once (their fields within two 64-byte loads).
template <class F>
inline constexpr int vnni_group = std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::iq4_nl> ? 8 : 4;

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
RWKV_Q8A_VNNI_INLINE __m512 vnni_scales(const std::byte* p, int count) {
    static constexpr VnniScaleIndex<F> index{};
    const int span = (count - 1) * F::block_bytes + (affine_v<F> ? 4 : 2);
    const __mmask64 lo_mask = span >= 64 ? k64 : (__mmask64{1} << span) - 1;
    const __mmask64 hi_mask = span <= 64 ? 0 : span >= 128 ? k64 : (__mmask64{1} << (span - 64)) - 1;
    const __m512i lo = _mm512_maskz_loadu_epi8(lo_mask, p);
    const __m512i hi = _mm512_maskz_loadu_epi8(hi_mask, p + 64);
    const __m512i h = _mm512_permutex2var_epi16(lo, _mm512_load_si512(index.w), hi);
    return _mm512_maskz_cvtph_ps(k16, _mm512_maskz_extracti64x4_epi64(0xf, h, 0));
}

// log2 of the weight offset taken out through the accumulator's start; 0: none.
template <class F>
inline constexpr int offset_shift = std::is_same_v<F, weights::q8_0> || std::is_same_v<F, weights::iq4_nl> ? 7
                                    : std::is_same_v<F, weights::q4_0>                                     ? 3
                                    : std::is_same_v<F, weights::q5_0>                                     ? 4
                                                                                                           : 0;

template <class F>
inline constexpr int qs_at = 2 + (affine_v<F> ? 2 : 0) +
                             (std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1> ? 4 : 0);

template <class F>
inline constexpr bool five_v = std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>;

RWKV_Q8A_VNNI_INLINE float vnni_reduce(__m512 v) {  // reduce16's tree
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(k16, v, v, 0x4e));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(k16, v, v, 0xb1));
    __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Q8_0 blocks b (block k of the scale group) and b + 1 (Two; else only b) of R rows.
template <int R, bool Two>
RWKV_Q8A_VNNI_TARGET __attribute__((always_inline)) inline void vnni_pair_q8(const std::byte* const* w,
                                                                             const Q8ActView& a, std::size_t b, int k,
                                                                             const __m512* S, __m512* acc) {
    constexpr int BB = weights::q8_0::block_bytes;
    const __mmask64 bytes = Two ? k64 : 0xffffffffull;
    const __m512i xv = _mm512_maskz_loadu_epi8(bytes, a.q + 32 * b);
    const __m512i sl = _mm512_maskz_loadu_epi8(bytes, a.s + 32 * b);
    const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_slli_epi32(k16, sl, 7));
    const __m512i idx =
        _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_set1_epi32(k));
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) {
        const std::byte* p = w[r] + b * BB;
        qmv_detail::prefetch_range(p, 2 * BB);
        __m512i v = _mm512_maskz_loadu_epi8(0xffffffffull, p + 2);
        if constexpr (Two)
            v = _mm512_maskz_inserti64x4(0xff, v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + BB + 2)), 1);
        const __m512i i = _mm512_dpbusd_epi32(init, _mm512_xor_si512(v, flip), xv);  // q + 128
        const __m512 L = _mm512_maskz_cvtepi32_ps(k16, i), s = _mm512_maskz_permutexvar_ps(k16, idx, S[r]);
        if constexpr (Two) acc[r] = _mm512_fmadd_ps(s, L, acc[r]);
        else acc[r] = _mm512_mask3_fmadd_ps(s, L, acc[r], 0x00ff);
    }
}

template <int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni_q8(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    using F = weights::q8_0;
    constexpr int G = vnni_group<F>, BB = F::block_bytes;
    __m512 acc[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (std::size_t b0 = 0; b0 < nb; b0 += G) {
        const int count = static_cast<int>(std::min<std::size_t>(G, nb - b0));
        const __m512 dx = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), a.d + 4 * b0);
        __m512 S[R];  // per row: dw·dx of the group's blocks in lanes 0-3
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) S[r] = _mm512_mul_ps(vnni_scales<F>(w[r] + b0 * BB, count), dx);
        int k = 0;
        RWKV_CPU_UNROLL(2)
        for (; k + 2 <= count; k += 2) vnni_pair_q8<R, true>(w, a, b0 + static_cast<std::size_t>(k), k, S, acc);
        if (k < count) vnni_pair_q8<R, false>(w, a, b0 + static_cast<std::size_t>(k), k, S, acc);
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]);
}

// The low and high nibbles (+ 5th bits; IQ4_NL: level + 128) of n ≤ 4 blocks from p (Full: 4),
// block i in 128-bit chunk i (zeros past n).
template <class F, bool Full>
RWKV_Q8A_VNNI_TARGET __attribute__((always_inline)) inline void vnni_codes4(const std::byte* p, int n, __m512i& lo,
                                                                            __m512i& hi) {
    constexpr int BB = F::block_bytes, at = qs_at<F>;
    __m512i v;
    if constexpr (Full) {
        (void)n;
        v = _mm512_maskz_loadu_epi8(0xffff, p + at);
        v = _mm512_maskz_inserti32x4(k16, v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + BB + at)), 1);
        v = _mm512_maskz_inserti32x4(k16, v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * BB + at)), 2);
        v = _mm512_maskz_inserti32x4(k16, v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 3 * BB + at)), 3);
    } else {
        alignas(64) std::byte buf[64] = {};
        for (int i = 0; i < n; ++i) std::memcpy(buf + 16 * i, p + i * BB + at, 16);
        v = _mm512_load_si512(buf);
    }
    const __m512i m4 = _mm512_set1_epi8(15);
    lo = _mm512_and_si512(v, m4);
    hi = _mm512_and_si512(_mm512_maskz_srli_epi16(k64 >> 32, v, 4), m4);
    if constexpr (five_v<F>) {  // bit e of qh: element e's 5th bit
        std::uint64_t ml = 0, mh = 0;
        RWKV_CPU_UNROLL(4)
        for (int i = 0; i < 4; ++i)
            if (Full || i < n) {
                const std::uint64_t qh = qmv_detail::u32_at(p + i * BB + at - 4);
                ml |= (qh & 0xffffu) << (16 * i);
                mh |= (qh >> 16) << (16 * i);
            }
        const __m512i sixteen = _mm512_set1_epi8(16);
        lo = _mm512_mask_add_epi8(lo, ml, lo, sixteen);
        hi = _mm512_mask_add_epi8(hi, mh, hi, sixteen);
    }
    if constexpr (std::is_same_v<F, weights::iq4_nl>) {  // level + 128 by pshufb
        const __m512i t = _mm512_maskz_broadcast_i32x4(
            k16, _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, -127, -115, -103, -90, -75, -59, -39, -15));
        lo = _mm512_shuffle_epi8(t, lo);
        hi = _mm512_shuffle_epi8(t, hi);
    }
}

// Blocks b..b+n-1 (n ≤ 4; Full: 4) of R rows, block b being block k of the scale group.
template <class F, int R, bool Full>
RWKV_Q8A_VNNI_TARGET __attribute__((always_inline)) inline void vnni_quad(const std::byte* const* w, const Q8ActView& a,
                                                                          std::size_t b, int k, int n, const __m512* S,
                                                                          const __m512* SM, __m512* acc) {
    constexpr int BB = F::block_bytes, shift = offset_shift<F>;
    // Activations: natural [b lo, b hi, b+1 lo, ...] → the lows of the 4 blocks, and the highs.
    const __mmask64 m1 = Full || n >= 2 ? k64 : 0xffffffffull, m2 = Full || n == 4 ? k64 : n == 3 ? 0xffffffffull : 0;
    const __m512i n1 = _mm512_maskz_loadu_epi8(m1, a.q + 32 * b), n2 = _mm512_maskz_loadu_epi8(m2, a.q + 32 * b + 64);
    const __m512i x_lo = _mm512_maskz_shuffle_i64x2(0xff, n1, n2, 0x88);
    const __m512i x_hi = _mm512_maskz_shuffle_i64x2(0xff, n1, n2, 0xdd);
    const __m512i t1 = _mm512_maskz_loadu_epi8(m1, a.s + 32 * b), t2 = _mm512_maskz_loadu_epi8(m2, a.s + 32 * b + 64);
    const __m512i s4 = _mm512_add_epi32(_mm512_maskz_shuffle_i64x2(0xff, t1, t2, 0x88),
                                        _mm512_maskz_shuffle_i64x2(0xff, t1, t2, 0xdd));
    const __m512i init = shift ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_slli_epi32(k16, s4, shift))
                               : _mm512_setzero_si512();
    const __m512 s4f = _mm512_maskz_cvtepi32_ps(k16, s4);
    const __m512i idx =
        _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(k));
    const auto lanes = static_cast<__mmask16>(Full || n == 4 ? 0xffffu : (1u << (4 * n)) - 1);
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) {
        const std::byte* p = w[r] + b * BB;
        qmv_detail::prefetch_range(p, 4 * BB);
        __m512i lo, hi;
        vnni_codes4<F, Full>(p, n, lo, hi);
        const __m512i i = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, lo, x_lo), hi, x_hi);
        const __m512 L = _mm512_maskz_cvtepi32_ps(k16, i), s = _mm512_maskz_permutexvar_ps(k16, idx, S[r]);
        if constexpr (Full) acc[r] = _mm512_fmadd_ps(s, L, acc[r]);
        else acc[r] = _mm512_mask3_fmadd_ps(s, L, acc[r], lanes);
        if constexpr (affine_v<F>) {
            const __m512 sm = _mm512_maskz_permutexvar_ps(k16, idx, SM[r]);
            if constexpr (Full) acc[r] = _mm512_fmadd_ps(sm, s4f, acc[r]);
            else acc[r] = _mm512_mask3_fmadd_ps(sm, s4f, acc[r], lanes);
        } else {
            (void)SM, (void)s4f;
        }
    }
}

template <class F, int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni4(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    constexpr int G = vnni_group<F>, BB = F::block_bytes;
    __m512 acc[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (std::size_t b0 = 0; b0 < nb; b0 += G) {
        const int count = static_cast<int>(std::min<std::size_t>(G, nb - b0));
        const __m512 dx = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), a.d + 4 * b0);
        __m512 S[R], SM[R];  // per row: dw·dx of the group's blocks in lanes 0-7 (m·dx: SM)
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const __m512 dm = vnni_scales<F>(w[r] + b0 * BB, count);
            S[r] = _mm512_mul_ps(dm, dx);
            SM[r] = affine_v<F> ? _mm512_mul_ps(_mm512_maskz_shuffle_f32x4(k16, dm, dm, 0x4e), dx) : dx;
        }
        if (count == G) {
            RWKV_CPU_UNROLL(2)
            for (int k = 0; k < G; k += 4)
                vnni_quad<F, R, true>(w, a, b0 + static_cast<std::size_t>(k), k, 4, S, SM, acc);
        } else {
            for (int k = 0; k < count; k += 4)
                vnni_quad<F, R, false>(w, a, b0 + static_cast<std::size_t>(k), k, std::min(4, count - k), S, SM, acc);
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]);
}

// ---- AVX2 leaf: vpmaddubsw + vpmaddwd (signed weights by the sign trick |w|·sign(x, w), which
// keeps the int16 pair sums below saturation). Two ymm accumulators hold slots 0-7 and 8-15:
// Q8_0 one block per ymm (by parity), the 4- and 5-bit formats two blocks per ymm (blocks
// 4i, 4i+1 in the first, 4i+2, 4i+3 in the second).
RWKV_Q8A_AVX2_INLINE float avx2_reduce(__m256 a0, __m256 a1) {  // reduce16's tree
    const __m256 a = _mm256_add_ps(a0, a1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

RWKV_Q8A_AVX2_INLINE __m256i load(const std::byte* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

RWKV_Q8A_AVX2_INLINE __m256i signed_dot(__m256i w, __m256i x) {  // Σ w·x by fours, w and x int8
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
}

template <int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_q8(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    using F = weights::q8_0;
    constexpr int BB = F::block_bytes;
    __m256 acc[2][R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    for (std::size_t b = 0; b < nb; ++b) {
        const int par = static_cast<int>(b & 1);
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + 32 * b));
        const float dx = f32_at(a.d + 4 * b);
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + b * BB;
            if (b % qmv_detail::step_blocks<F> == 0) qmv_detail::prefetch_range(p, qmv_detail::step_blocks<F> * BB);
            const float s = _cvtsh_ss(qmv_detail::u16_at(p)) * dx;
            const __m256i i = signed_dot(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)), xv);
            acc[par][r] = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(i), acc[par][r]);
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]);
}

// 32 bits → 32 bytes of 16 where the bit is set.
RWKV_Q8A_AVX2_INLINE __m256i bits_to_16s(std::uint32_t m) {
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(m)),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                                                2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

template <class F, int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_4(const std::byte* const* w, const Q8ActView& a, std::size_t nb, float* const* y) {
    constexpr int BB = F::block_bytes, at = qs_at<F>, shift = offset_shift<F>;
    __m256 acc[2][R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    for (std::size_t b = 0; b < nb; b += 2) {
        const bool two = b + 1 < nb;
        const int half = static_cast<int>((b >> 1) & 1);
        const __m256i n1 = load(a.q + 32 * b), n2 = two ? load(a.q + 32 * b + 32) : _mm256_setzero_si256();
        const __m256i x_lo = _mm256_permute2x128_si256(n1, n2, 0x20), x_hi = _mm256_permute2x128_si256(n1, n2, 0x31);
        const __m256i t1 = load(a.s + 32 * b), t2 = two ? load(a.s + 32 * b + 32) : _mm256_setzero_si256();
        const __m256i s4 =
            _mm256_add_epi32(_mm256_permute2x128_si256(t1, t2, 0x20), _mm256_permute2x128_si256(t1, t2, 0x31));
        const __m256 s4f = _mm256_cvtepi32_ps(s4);
        const float dx0 = f32_at(a.d + 4 * b), dx1 = two ? f32_at(a.d + 4 * b + 4) : 0.0f;
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + b * BB;
            if (b % (2 * qmv_detail::step_blocks<F>) == 0)
                qmv_detail::prefetch_range(p, 2 * qmv_detail::step_blocks<F> * BB);
            const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
            const __m256i v =
                two ? _mm256_setr_m128i(q0, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + BB + at)))
                    : _mm256_zextsi128_si256(q0);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if constexpr (five_v<F>) {
                const std::uint32_t h0 = qmv_detail::u32_at(p + at - 4),
                                    h1 = two ? qmv_detail::u32_at(p + BB + at - 4) : 0u;
                lo = _mm256_or_si256(lo, bits_to_16s((h0 & 0xffffu) | (h1 << 16)));
                hi = _mm256_or_si256(hi, bits_to_16s((h0 >> 16) | (h1 & 0xffff0000u)));
            }
            __m256i i;
            if constexpr (std::is_same_v<F, weights::iq4_nl>) {
                const __m256i levels =
                    _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113, -127,
                                     -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
                i = _mm256_add_epi32(signed_dot(_mm256_shuffle_epi8(levels, lo), x_lo),
                                     signed_dot(_mm256_shuffle_epi8(levels, hi), x_hi));
            } else {
                i = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x_lo), ones),
                                     _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x_hi), ones));
                if constexpr (shift != 0) i = _mm256_sub_epi32(i, _mm256_slli_epi32(s4, shift));
            }
            const float s0 = _cvtsh_ss(qmv_detail::u16_at(p)) * dx0;
            const float s1 = two ? _cvtsh_ss(qmv_detail::u16_at(p + BB)) * dx1 : 0.0f;  // a missing block adds +0
            acc[half][r] = _mm256_fmadd_ps(_mm256_setr_m128(_mm_set1_ps(s0), _mm_set1_ps(s1)), _mm256_cvtepi32_ps(i),
                                           acc[half][r]);
            if constexpr (affine_v<F>) {
                const float m0 = _cvtsh_ss(qmv_detail::u16_at(p + 2)) * dx0;
                const float m1 = two ? _cvtsh_ss(qmv_detail::u16_at(p + BB + 2)) * dx1 : 0.0f;
                acc[half][r] = _mm256_fmadd_ps(_mm256_setr_m128(_mm_set1_ps(m0), _mm_set1_ps(m1)), s4f, acc[half][r]);
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]);
}

// ---- K-quant leaves (the arithmetic of row_plain_k4 / row_plain_q6k).

// Q4_K / Q5_K: the 6-bit scales (bytes 0-7) and mins (bytes 8-15) of a super-block, as u8.
RWKV_Q8A_AVX2_INLINE __m128i k4_scales_u8(const std::byte* blk) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4));  // 12 bytes + 4 of qh / qs
    const __m128i p = _mm_shuffle_epi8(b, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i t = _mm_shuffle_epi8(b, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i p_hi = _mm_and_si128(_mm_srli_epi16(p, 4), _mm_set1_epi8(15));
    const __m128i low = _mm_and_si128(_mm_blend_epi32(p, p_hi, 0x8),
                                      _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
    return _mm_or_si128(low, _mm_and_si128(_mm_srli_epi16(t, 2), _mm_set1_epi8(0x30)));
}

// The 8 activation blocks' code totals Σ_j S_b,j from their lane sums s (8 blocks × 8 int32).
RWKV_Q8A_AVX2_INLINE __m256i block_totals_avx2(const std::byte* s) {
    __m256i v[8];
    RWKV_CPU_UNROLL(8)
    for (int i = 0; i < 8; ++i) v[i] = load(s + 32 * i);
    const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i g03 = _mm256_hadd_epi32(h01, h23), g47 = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(g03, g47, 0x20), _mm256_permute2x128_si256(g03, g47, 0x31));
}

RWKV_Q8A_AVX2_INLINE float avx2_reduce8(__m256 m) {  // reduce8's tree
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

RWKV_Q8A_AVX2_INLINE __m256 lane_bcast(__m256 v, int i) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(i)); }

// AVX2, Q4_K / Q5_K: one sub-block per ymm (slots 8·((s >> 1) & 1) + j: acc[(s >> 1) & 1]).
template <class F, int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_k4(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                       float* const* y) {
    constexpr int BB = F::block_bytes;
    constexpr bool five = std::is_same_v<F, weights::q5_k>;
    constexpr int qs = five ? 48 : 16;
    __m256 acc[2][R], mn[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = mn[r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi8(16);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        const __m256 dx = _mm256_loadu_ps(reinterpret_cast<const float*>(a.d + 4 * b0));
        const __m256 T = _mm256_mul_ps(dx, _mm256_cvtepi32_ps(block_totals_avx2(a.s + 32 * b0)));
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m128i u = k4_scales_u8(p);
            const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(qmv_detail::u32_at(p))));
            const __m256 ds = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u)), _mm256_broadcastss_ps(dd));
            const __m256 dm = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(u, 8))),
                                            _mm256_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(dd))));
            const __m256 P = _mm256_mul_ps(ds, dx);
            mn[r] = _mm256_fmadd_ps(dm, T, mn[r]);
            const __m256i qh = five ? load(p + 16) : _mm256_setzero_si256();
            RWKV_CPU_UNROLL(4)
            for (int c = 0; c < 4; ++c) {
                const __m256i v = load(p + qs + 32 * c);
                __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if constexpr (five) {
                    const __m256i bl = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
                    const __m256i bh = _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1)));
                    lo =
                        _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), sixteen));
                    hi =
                        _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), sixteen));
                }
                const std::size_t b = b0 + 2 * static_cast<std::size_t>(c);
                const __m256i il = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(a.q + 32 * b)), ones);
                const __m256i ih = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(a.q + 32 * b + 32)), ones);
                acc[c & 1][r] = _mm256_fmadd_ps(lane_bcast(P, 2 * c), _mm256_cvtepi32_ps(il), acc[c & 1][r]);
                acc[c & 1][r] = _mm256_fmadd_ps(lane_bcast(P, 2 * c + 1), _mm256_cvtepi32_ps(ih), acc[c & 1][r]);
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]) - avx2_reduce8(mn[r]);
}

// AVX2, Q6_K / Q2_K / Q3_K (sub-blocks of 16): the super-block's 8 activation-block scales dx,
// block 4h + k's in lanes 2k and 2k + 1 of dx2[h] (one lane per sub-block).
RWKV_Q8A_AVX2_INLINE void avx2_sub_block_dx(const Q8ActView& a, std::size_t b0, __m256 (&dx2)[2]) {
    const __m256 dx = _mm256_loadu_ps(reinterpret_cast<const float*>(a.d + 4 * b0));
    dx2[0] = _mm256_permutevar8x32_ps(dx, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    dx2[1] = _mm256_permutevar8x32_ps(dx, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
}

// P[h] lane i = (float(sc[8h + i]) · d) · dx of that sub-block: the fp32 scale products of the 16
// sub-blocks (sc: 16 int8 scales, or uint8 when !Signed).
template <bool Signed>
RWKV_Q8A_AVX2_INLINE __m256 avx2_scales8(__m128i sc) {  // the low 8 bytes as fp32
    return _mm256_cvtepi32_ps(Signed ? _mm256_cvtepi8_epi32(sc) : _mm256_cvtepu8_epi32(sc));
}
template <bool Signed>
RWKV_Q8A_AVX2_INLINE void avx2_scale_products(__m128i sc, __m256 d, const __m256 (&dx2)[2], __m256 (&P)[2]) {
    P[0] = _mm256_mul_ps(_mm256_mul_ps(avx2_scales8<Signed>(sc), d), dx2[0]);
    P[1] = _mm256_mul_ps(_mm256_mul_ps(avx2_scales8<Signed>(_mm_srli_si128(sc, 8)), d), dx2[1]);
}

// One activation block b against its 32 codes (uint8): acc + P_h[2j or 2j + 1] · L per lane, L the
// lane's integer dot product minus 2^OffsetLog2 · the lane's activation sum (the codes' offset,
// Q6_K's 32, Q3_K's 4; OffsetLog2 < 0: none), j the block's index within half h.
template <int OffsetLog2>
RWKV_Q8A_AVX2_INLINE __m256 avx2_block_step(__m256i codes, const Q8ActView& a, std::size_t b, __m256 Ph, int j,
                                            __m256 acc) {
    __m256i i = _mm256_madd_epi16(_mm256_maddubs_epi16(codes, load(a.q + 32 * b)), _mm256_set1_epi16(1));
    if constexpr (OffsetLog2 >= 0) i = _mm256_sub_epi32(i, _mm256_slli_epi32(load(a.s + 32 * b), OffsetLog2));
    const __m256 s = _mm256_permutevar8x32_ps(
        Ph, _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1));
    return _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(i), acc);
}

// AVX2, Q6_K: one activation block (two sub-blocks of 16) per ymm; elements 64v + 32t + l go to
// acc[t].
template <int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_q6k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q6_k::block_bytes;
    __m256 acc[2][R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        __m256 dx2[2];
        avx2_sub_block_dx(a, b0, dx2);
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            __m256 P[2];
            avx2_scale_products<true>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192)),
                                      _mm256_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 208))), dx2, P);
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m256i ql0 = load(p + 64 * h), ql1 = load(p + 64 * h + 32), qh = load(p + 128 + 32 * h);
                const __m256i codes[4] = {
                    _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                    _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30))};
                RWKV_CPU_UNROLL(4)
                for (int g = 0; g < 4; ++g) {
                    const std::size_t b = b0 + static_cast<std::size_t>(4 * h + g);
                    acc[g & 1][r] = avx2_block_step<5>(codes[g], a, b, P[h], g, acc[g & 1][r]);  // codes − 32
                }
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]);
}

// Lane k: c[2k] + c[2k + 1] of the 32 lanes c = u, v.
RWKV_Q8A_VNNI_INLINE __m512i pair_sums(__m512i u, __m512i v) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_maskz_permutex2var_epi32(k16, u, ev, v),
                            _mm512_maskz_permutex2var_epi32(k16, u, od, v));
}

// VNNI: the 8 activation blocks' code totals (lanes 0-7) from their lane sums s.
RWKV_Q8A_VNNI_INLINE __m512i block_totals_vnni(const std::byte* s) {
    const __m512i s0 = _mm512_maskz_loadu_epi32(k16, s), s1 = _mm512_maskz_loadu_epi32(k16, s + 64);
    const __m512i s2 = _mm512_maskz_loadu_epi32(k16, s + 128), s3 = _mm512_maskz_loadu_epi32(k16, s + 192);
    const __m512i z = pair_sums(pair_sums(s0, s1), pair_sums(s2, s3));
    return pair_sums(z, z);
}

// The Q6_K, Q2_K and Q3_K VNNI leaves walk a super-block in quarters v = 0..3 (elements
// 64v..64v + 63, activation blocks 2v and 2v + 1, one per 256-bit half; 4 int32 lanes per sub-block
// of 16). sidx[v]: lane → sub-block 4v + lane / 4, to pick each lane's scale product.
RWKV_Q8A_VNNI_INLINE void quarter_sub_blocks(__m512i (&sidx)[4]) {
    RWKV_CPU_UNROLL(4)
    for (int v = 0; v < 4; ++v)
        sidx[v] = _mm512_add_epi32(_mm512_set1_epi32(4 * v),
                                   _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
}

// The activations of the super-block whose first activation block is b0, per quarter: x[v] the 64
// int8 values; with OffsetLog2 ≥ 0, init[v] = −2^OffsetLog2 · (lane sums), the integer
// accumulator's start that takes a code offset (Q6_K's −32, Q3_K's −4) out of the dot products.
// Returns the 8 blocks' scales, block k's in lanes 2k and 2k + 1.
template <int OffsetLog2>
RWKV_Q8A_VNNI_INLINE __m512 quarter_activations(const Q8ActView& a, std::size_t b0, __m512i (&x)[4],
                                                __m512i (&init)[4]) {
    RWKV_CPU_UNROLL(4)
    for (int v = 0; v < 4; ++v) {
        const std::size_t b = b0 + 2 * static_cast<std::size_t>(v);
        x[v] = _mm512_maskz_loadu_epi8(k64, a.q + 32 * b);
        if constexpr (OffsetLog2 >= 0)
            init[v] =
                _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_maskz_slli_epi32(k16, _mm512_maskz_loadu_epi32(k16, a.s + 32 * b), OffsetLog2));
        else init[v] = _mm512_setzero_si512();
    }
    const __m512i dx_idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_maskz_permutexvar_ps(k16, dx_idx, _mm512_maskz_loadu_ps(0x00ff, a.d + 4 * b0));
}

// VNNI, Q4_K / Q5_K: per half h of the super-block, the low nibbles (sub-blocks 4h, 4h + 2) in one
// zmm and the high nibbles (4h + 1, 4h + 3) in another, slots 8·((s >> 1) & 1) + j.
template <class F, int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni_k4(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                       float* const* y) {
    constexpr int BB = F::block_bytes;
    constexpr bool five = std::is_same_v<F, weights::q5_k>;
    constexpr int qs = five ? 48 : 16;
    __m512 acc[R], mn[R];  // mn: lanes 8-15
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = mn[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(15), sixteen = _mm512_set1_epi8(16);
    const __m512i dd_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512i sidx[4];  // the scale lanes of vector (h, nibble): sub-blocks 4h + nibble, 4h + 2 + nibble
    RWKV_CPU_UNROLL(4)
    for (int v = 0; v < 4; ++v) {
        const int s = 4 * (v >> 1) + (v & 1);
        sidx[v] = _mm512_setr_epi32(s, s, s, s, s, s, s, s, s + 2, s + 2, s + 2, s + 2, s + 2, s + 2, s + 2, s + 2);
    }
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        __m512i x[4];
        RWKV_CPU_UNROLL(2)
        for (int h = 0; h < 2; ++h) {
            const __m512i n1 = _mm512_maskz_loadu_epi8(k64, a.q + 32 * (b0 + 4 * h));
            const __m512i n2 = _mm512_maskz_loadu_epi8(k64, a.q + 32 * (b0 + 4 * h + 2));
            x[2 * h] = _mm512_maskz_shuffle_i64x2(0xff, n1, n2, 0x44);
            x[2 * h + 1] = _mm512_maskz_shuffle_i64x2(0xff, n1, n2, 0xee);
        }
        const __m512 dx = _mm512_maskz_loadu_ps(0x00ff, a.d + 4 * b0);
        const __m512 tot = _mm512_maskz_cvtepi32_ps(k16, block_totals_vnni(a.s + 32 * b0));
        // [dx_0..7, T_0..7] with T = dx·total
        const __m512 dxt = _mm512_mask_mul_ps(dx, 0xff00, _mm512_maskz_shuffle_f32x4(k16, dx, dx, 0x44),
                                              _mm512_maskz_shuffle_f32x4(k16, tot, tot, 0x44));
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(qmv_detail::u32_at(p))));
            const __m512 ddv = _mm512_maskz_permutexvar_ps(k16, dd_idx, _mm512_maskz_broadcast_f32x4(k16, dd));
            const __m512 dsm =
                _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(k16, _mm512_maskz_cvtepu8_epi32(k16, k4_scales_u8(p))), ddv);
            const __m512 P = _mm512_mul_ps(dsm, dxt);  // lanes 0-7: ds·dx
            mn[r] = _mm512_mask3_fmadd_ps(dsm, dxt, mn[r], 0xff00);
            __m512i qh = _mm512_setzero_si512();
            if constexpr (five)
                qh = _mm512_maskz_broadcast_i64x4(0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m512i v = _mm512_maskz_loadu_epi8(k64, p + qs + 64 * h);
                __m512i lo = _mm512_and_si512(v, m4),
                        hi = _mm512_and_si512(_mm512_maskz_srli_epi16(k64 >> 32, v, 4), m4);
                if constexpr (five) {
                    const int s = 4 * h;
                    const __m512i bl = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi8(static_cast<char>(1 << s)),
                                                                _mm256_set1_epi8(static_cast<char>(1 << (s + 2))), 1);
                    const __m512i bh = _mm512_add_epi8(bl, bl);  // bits s + 1, s + 3
                    lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, bl), lo, sixteen);
                    hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, bh), hi, sixteen);
                }
                const __m512i il = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, x[2 * h]);
                const __m512i ih = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, x[2 * h + 1]);
                acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[2 * h], P),
                                         _mm512_maskz_cvtepi32_ps(k16, il), acc[r]);
                acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[2 * h + 1], P),
                                         _mm512_maskz_cvtepi32_ps(k16, ih), acc[r]);
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r)
        *y[r] = vnni_reduce(acc[r]) -
                avx2_reduce8(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, _mm512_castps_pd(mn[r]), 1)));
}

// VNNI, Q6_K: quarter v of the super-block (elements 64v..64v + 63, activation blocks 2v, 2v + 1)
// per zmm, slot = lane; the −32 offset taken out by starting the accumulator at −32·(lane sums).
template <int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni_q6k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q6_k::block_bytes;
    __m512 acc[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl_a = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);  // bits 2g → 4
    const __m512i shr_b = _mm512_maskz_inserti64x4(0xff, _mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i sidx[4];
    quarter_sub_blocks(sidx);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        __m512i x[4], init[4];
        const __m512 dx = quarter_activations<5>(a, 8 * sb, x, init);  // codes − 32
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 208)));
            const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192));
            const __m512 P =
                _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(k16, _mm512_maskz_cvtepi8_epi32(k16, sc)), d), dx);
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m512i ql = _mm512_maskz_loadu_epi8(k64, p + 64 * h);
                const __m512i qh = _mm512_maskz_broadcast_i64x4(
                    0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h)));
                const __m512i ca = _mm512_or_si512(
                    _mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_maskz_sllv_epi16(k64 >> 32, qh, shl_a), m30));
                const __m512i cb =
                    _mm512_or_si512(_mm512_and_si512(_mm512_maskz_srli_epi16(k64 >> 32, ql, 4), m4),
                                    _mm512_and_si512(_mm512_maskz_srlv_epi16(k64 >> 32, qh, shr_b), m30));
                const __m512i ia = _mm512_dpbusd_epi32(init[2 * h], ca, x[2 * h]);
                const __m512i ib = _mm512_dpbusd_epi32(init[2 * h + 1], cb, x[2 * h + 1]);
                acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[2 * h], P),
                                         _mm512_maskz_cvtepi32_ps(k16, ia), acc[r]);
                acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[2 * h + 1], P),
                                         _mm512_maskz_cvtepi32_ps(k16, ib), acc[r]);
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]);
}

// AVX2, Q2_K: one activation block per ymm as Q6_K (elements 64v + 32t + l into acc[t]); the mins
// against the activations' half-block sums into mn[0] (sub-blocks 0-7) and mn[1] (8-15).
template <int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_q2k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q2_k::block_bytes;
    __m256 acc[2][R], mn[2][R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = mn[0][r] = mn[1][r] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i inter = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        __m256 dx2[2];
        avx2_sub_block_dx(a, b0, dx2);
        // Half-block sums of the activation codes, sub-block order (block b's halves: 2b, 2b + 1).
        __m256i v[8];
        RWKV_CPU_UNROLL(8)
        for (int i = 0; i < 8; ++i) v[i] = load(a.s + 32 * (b0 + static_cast<std::size_t>(i)));
        const __m256i g03 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        const __m256i g47 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        const __m256 T[2] = {_mm256_mul_ps(dx2[0], _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(g03, inter))),
                             _mm256_mul_ps(dx2[1], _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(g47, inter)))};
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m256 d = _mm256_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 80)));
            const __m256 dmin = _mm256_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 82)));
            const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i scl = _mm_and_si128(sc, _mm_set1_epi8(15));
            const __m128i mnl = _mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(15));
            __m256 P[2];
            avx2_scale_products<false>(scl, d, dx2, P);
            const __m256 DM[2] = {
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mnl)), dmin),
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(mnl, 8))), dmin)};
            mn[0][r] = _mm256_fmadd_ps(DM[0], T[0], mn[0][r]);
            mn[1][r] = _mm256_fmadd_ps(DM[1], T[1], mn[1][r]);
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m256i q = load(p + 16 + 32 * h);
                RWKV_CPU_UNROLL(4)
                for (int j = 0; j < 4; ++j) {
                    const std::size_t b = b0 + static_cast<std::size_t>(4 * h + j);
                    const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                    acc[j & 1][r] = avx2_block_step<-1>(codes, a, b, P[h], j, acc[j & 1][r]);
                }
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]) - avx2_reduce(mn[0][r], mn[1][r]);
}

// VNNI, Q2_K: quarter v per zmm as Q6_K (its 32 code bytes in both halves, shifted by 2j); the
// mins against the activations' half-block sums (lane s) into mn.
template <int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni_q2k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q2_k::block_bytes;
    __m512 acc[R], mn[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = mn[r] = _mm512_setzero_ps();
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i shift[2];  // quarter 2h + u: bits 4u (elements 0-31), 4u + 2 (32-63)
    RWKV_CPU_UNROLL(2)
    for (int u = 0; u < 2; ++u)
        shift[u] = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi16(static_cast<short>(4 * u)),
                                            _mm256_set1_epi16(static_cast<short>(4 * u + 2)), 1);
    __m512i sidx[4];
    quarter_sub_blocks(sidx);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        __m512i x[4], zero[4];
        const __m512 dx = quarter_activations<-1>(a, b0, x, zero);  // codes 0..3: no offset
        const std::byte* s = a.s + 32 * b0;
        const __m512i halves =
            pair_sums(pair_sums(_mm512_maskz_loadu_epi32(k16, s), _mm512_maskz_loadu_epi32(k16, s + 64)),
                      pair_sums(_mm512_maskz_loadu_epi32(k16, s + 128), _mm512_maskz_loadu_epi32(k16, s + 192)));
        const __m512 T = _mm512_mul_ps(dx, _mm512_maskz_cvtepi32_ps(k16, halves));
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 80)));
            const __m512 dmin = _mm512_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 82)));
            const __m512i sc = _mm512_maskz_cvtepu8_epi32(k16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
            const __m512 P = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(k16, _mm512_and_si512(sc, _mm512_set1_epi32(15))), d), dx);
            const __m512 DM = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(k16, _mm512_maskz_srli_epi32(k16, sc, 4)), dmin);
            mn[r] = _mm512_fmadd_ps(DM, T, mn[r]);
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m512i q = _mm512_maskz_broadcast_i64x4(
                    0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16 + 32 * h)));
                RWKV_CPU_UNROLL(2)
                for (int u = 0; u < 2; ++u) {
                    const int v = 2 * h + u;
                    const __m512i codes = _mm512_and_si512(_mm512_maskz_srlv_epi16(k64 >> 32, q, shift[u]), m3);
                    const __m512i i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, x[v]);
                    acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[v], P),
                                             _mm512_maskz_cvtepi32_ps(k16, i), acc[r]);
                }
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]) - vnni_reduce(mn[r]);
}

// Q3_K: the 16 signed 6-bit scales of a super-block, as int8.
RWKV_Q8A_AVX2_INLINE __m128i q3k_scales_i8(const std::byte* blk) {
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 94));  // bytes 96.. at 2..
    const __m128i m4 = _mm_set1_epi8(15), m3 = _mm_set1_epi8(3);
    const __m128i b = _mm_srli_si128(sc, 2);  // scales[0..11] in bytes 0..11
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
    const __m128i t = _mm_shuffle_epi8(b, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11));
    const __m128i a0 = _mm_and_si128(t, m3), a1 = _mm_and_si128(_mm_srli_epi16(t, 2), m3);
    const __m128i a2 = _mm_and_si128(_mm_srli_epi16(t, 4), m3), a3 = _mm_and_si128(_mm_srli_epi16(t, 6), m3);
    const __m128i hi = _mm_blend_epi32(_mm_blend_epi32(a0, a1, 0x2), _mm_blend_epi32(a2, a3, 0x8), 0xc);
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
}

// AVX2, Q3_K: as Q6_K (one activation block per ymm), codes = 2 low bits | hmask bit << 2, the
// −4 through −4·lane sums.
template <int R>
RWKV_Q8A_AVX2_TARGET void rows_avx2_q3k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q3_k::block_bytes;
    __m256 acc[2][R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::size_t b0 = 8 * sb;
        __m256 dx2[2];
        avx2_sub_block_dx(a, b0, dx2);
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            __m256 P[2];
            avx2_scale_products<true>(q3k_scales_i8(p), _mm256_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 108))), dx2, P);
            const __m256i hm = load(p);
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m256i q = load(p + 32 + 32 * h);
                RWKV_CPU_UNROLL(4)
                for (int j = 0; j < 4; ++j) {
                    const std::size_t b = b0 + static_cast<std::size_t>(4 * h + j);
                    const __m256i bit = _mm256_set1_epi8(static_cast<char>(1 << (4 * h + j)));
                    const __m256i codes =
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3),
                                        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four));
                    acc[j & 1][r] = avx2_block_step<2>(codes, a, b, P[h], j, acc[j & 1][r]);  // codes − 4
                }
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = avx2_reduce(acc[0][r], acc[1][r]);
}

// VNNI, Q3_K: quarter v per zmm as Q2_K, the hmask bits added as 4, the −4 through the
// accumulator's start at −4·lane sums.
template <int R>
RWKV_Q8A_VNNI_TARGET void rows_vnni_q3k(const std::byte* const* w, const Q8ActView& a, std::size_t nsb,
                                        float* const* y) {
    constexpr int BB = weights::q3_k::block_bytes;
    __m512 acc[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    __m512i shift[2];  // quarter 2h + u: bits 4u (elements 0-31), 4u + 2 (32-63)
    RWKV_CPU_UNROLL(2)
    for (int u = 0; u < 2; ++u)
        shift[u] = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi16(static_cast<short>(4 * u)),
                                            _mm256_set1_epi16(static_cast<short>(4 * u + 2)), 1);
    __m512i hbit[4];  // quarter v = 2h + u: hmask bits 4h + 2u, 4h + 2u + 1
    RWKV_CPU_UNROLL(4)
    for (int v = 0; v < 4; ++v) {
        const int bitn = 4 * (v >> 1) + 2 * (v & 1);
        hbit[v] = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi8(static_cast<char>(1 << bitn)),
                                           _mm256_set1_epi8(static_cast<char>(1 << (bitn + 1))), 1);
    }
    __m512i sidx[4];
    quarter_sub_blocks(sidx);
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        __m512i x[4], init[4];
        const __m512 dx = quarter_activations<2>(a, 8 * sb, x, init);  // codes − 4
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            const std::byte* p = w[r] + sb * BB;
            qmv_detail::prefetch_range(p, BB);
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(qmv_detail::u16_at(p + 108)));
            const __m512 P = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(k16, _mm512_maskz_cvtepi8_epi32(k16, q3k_scales_i8(p))), d), dx);
            const __m512i hm =
                _mm512_maskz_broadcast_i64x4(0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
            RWKV_CPU_UNROLL(2)
            for (int h = 0; h < 2; ++h) {
                const __m512i q = _mm512_maskz_broadcast_i64x4(
                    0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 + 32 * h)));
                RWKV_CPU_UNROLL(2)
                for (int u = 0; u < 2; ++u) {
                    const int v = 2 * h + u;
                    __m512i codes = _mm512_and_si512(_mm512_maskz_srlv_epi16(k64 >> 32, q, shift[u]), m3);
                    codes = _mm512_mask_add_epi8(codes, _mm512_test_epi8_mask(hm, hbit[v]), codes, four);
                    const __m512i i = _mm512_dpbusd_epi32(init[v], codes, x[v]);
                    acc[r] = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(k16, sidx[v], P),
                                             _mm512_maskz_cvtepi32_ps(k16, i), acc[r]);
                }
            }
        }
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = vnni_reduce(acc[r]);
}
#endif  // RWKV_MATVEC_X86

#if RWKV_BLOCK_DECODE_NEON
// ---- NEON leaves (aarch64, the generic path there) for the 32-value formats: row_plain bit for
// bit. The codes come as two int8x16 (elements 0..15, 16..31; nibbles by masks and shifts, fifth
// bits by vtst, IQ4_NL levels by a table: block_decode.hpp's unpacking); the exact 4-value lane
// sums by SDOT where the CPU has it (ARMv8.2 dotprod), else int8 × int8 products widened to int16
// (|w·q| ≤ 128·127 fits) and pairwise adds; and the
// 16 fp32 slots are four float32x4 (slot i in vector i / 4, lane i % 4), so the fp32 steps are
// row_plain's: the same fused products in the same order, then reduce16's tree.

// The 32 integer codes of a block as two int8x16 (block_decode.hpp's codes32), and dw (and m).
template <class F>
RWKV_NEON_INLINE void codes_neon(const std::byte* blk, int8x16_t& w0, int8x16_t& w1, float& dw, float& m) {
    block_decode_detail::codes32<F>(block_decode_detail::u8(blk), w0, w1);
    dw = weights::fp16_to_float(weights::load_u16(blk));
    m = affine_v<F> ? weights::fp16_to_float(weights::load_u16(blk + 2)) : 0.0f;
}

// The four exact lane sums Σ_{k<4} w[4j + k]·q[4j + k], j = 0..3, of 16 codes and 16 activations.
RWKV_NEON_INLINE int32x4_t lane_dots(int8x16_t w, int8x16_t q) {
    const int16x8_t p0 = vmull_s8(vget_low_s8(w), vget_low_s8(q)), p1 = vmull_high_s8(w, q);
    return vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1));
}

// The same sums by ARMv8.2's SDOT (arm_dotprod_supported()), one instruction.
#if defined(__clang__)
#define RWKV_NEON_DOTPROD_TARGET __attribute__((target("dotprod")))
#else
#define RWKV_NEON_DOTPROD_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
RWKV_NEON_DOTPROD_TARGET RWKV_NEON_INLINE int32x4_t lane_dots_sdot(int8x16_t w, int8x16_t q) {
    return vdotq_s32(vdupq_n_s32(0), w, q);
}

// Block b's fp32 steps from its lane sums L0 (elements 0..15) and L1 (16..31), as row_plain.
template <class F>
RWKV_NEON_INLINE void accumulate_neon(float32x4_t* acc, std::size_t b, int32x4_t L0, int32x4_t L1, float dw, float m,
                                      const Q8ActView& a) {
    const float dx = f32_at(a.d + 4 * b);
    const float32x4_t s = vdupq_n_f32(dw * dx);
    if constexpr (wide_lanes_v<F>) {
        // Slots 8·(b odd) + j: j = 0..3 from elements 0..15, j = 4..7 from 16..31.
        float32x4_t& a0 = acc[2 * (b & 1)];
        float32x4_t& a1 = acc[2 * (b & 1) + 1];
        a0 = vfmaq_f32(a0, s, vcvtq_f32_s32(L0));
        a1 = vfmaq_f32(a1, s, vcvtq_f32_s32(L1));
    } else {
        // Slots 4·(b mod 4) + j: lane j sums elements 4j.. and 16 + 4j.. (low and high nibbles).
        float32x4_t& slot = acc[b & 3];
        slot = vfmaq_f32(slot, s, vcvtq_f32_s32(vaddq_s32(L0, L1)));
        if constexpr (affine_v<F>) {
            const auto* S = reinterpret_cast<const std::int32_t*>(a.s + 32 * b);
            const int32x4_t St = vaddq_s32(vld1q_s32(S), vld1q_s32(S + 4));
            slot = vfmaq_f32(slot, vdupq_n_f32(m * dx), vcvtq_f32_s32(St));
        }
    }
}

// reduce16's tree: a_i = acc[i] + acc[i + 8], b_i = a_i + a_{i + 4}, c_i = b_i + b_{i + 2}, c_0 + c_1.
RWKV_NEON_INLINE float reduce16_neon(const float32x4_t* acc) {
    const float32x4_t b4 = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
    const float32x2_t c = vadd_f32(vget_low_f32(b4), vget_high_f32(b4));
    return vget_lane_f32(c, 0) + vget_lane_f32(c, 1);
}

// One row, products by vmull (every ARMv8-A).
template <class F>
float row_neon(const std::byte* row, const Q8ActView& a, std::size_t nb) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (std::size_t b = 0; b < nb; ++b) {
        int8x16_t w0, w1;
        float dw = 0.0f, m = 0.0f;
        codes_neon<F>(row + b * F::block_bytes, w0, w1, dw, m);
        const auto* q = reinterpret_cast<const std::int8_t*>(a.q + 32 * b);
        accumulate_neon<F>(acc, b, lane_dots(w0, vld1q_s8(q)), lane_dots(w1, vld1q_s8(q + 16)), dw, m, a);
    }
    return reduce16_neon(acc);
}

// One row, products by SDOT (arm_dotprod_supported()); the same bits as row_neon.
template <class F>
RWKV_NEON_DOTPROD_TARGET float row_neon_sdot(const std::byte* row, const Q8ActView& a, std::size_t nb) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (std::size_t b = 0; b < nb; ++b) {
        int8x16_t w0, w1;
        float dw = 0.0f, m = 0.0f;
        codes_neon<F>(row + b * F::block_bytes, w0, w1, dw, m);
        const auto* q = reinterpret_cast<const std::int8_t*>(a.q + 32 * b);
        accumulate_neon<F>(acc, b, lane_dots_sdot(w0, vld1q_s8(q)), lane_dots_sdot(w1, vld1q_s8(q + 16)), dw, m, a);
    }
    return reduce16_neon(acc);
}
// ---- NEON leaves for the K-quants (vmull products; row_plain_k4 / _q6k / _q2k / _q3k bit for bit).
// Q6_K, Q3_K, Q2_K: 32-value group G = 4h + g of a super-block (activation block 8·sb + G) is
// plain's slots i = 8·(G mod 2) + 0..7: elements 0..15 of the group are slot vector 2·(G mod 2)
// with sub-block 2G, elements 16..31 vector 2·(G mod 2) + 1 with sub-block 2G + 1.

// Sub-block s's scale ds = d·S_s (exact), as the plain leaves compute it.
template <class F>
RWKV_NEON_INLINE float k16_scale(const std::byte* blk, float d, int s) {
    if constexpr (std::is_same_v<F, weights::q6_k>)
        return d * static_cast<float>(static_cast<signed char>(static_cast<unsigned char>(blk[192 + s])));
    else if constexpr (std::is_same_v<F, weights::q3_k>) return d * static_cast<float>(weights::q3_k::scale(blk, s));
    else return d * static_cast<float>(static_cast<unsigned>(blk[s]) & 15u);
}

template <class F>
float row_neon_k16(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    constexpr bool two = std::is_same_v<F, weights::q2_k>;
    constexpr int d_at = std::is_same_v<F, weights::q6_k> ? 208 : std::is_same_v<F, weights::q3_k> ? 108 : 80;
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    float mn[16] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * F::block_bytes;
        const float d = weights::fp16_to_float(weights::load_u16(blk + d_at));
        for (int G = 0; G < 8; ++G) {
            int8x16_t c0, c1;
            block_decode_detail::k16_codes<F>(block_decode_detail::u8(blk), G, c0, c1);
            const std::size_t b = 8 * sb + static_cast<std::size_t>(G);
            const float dx = f32_at(a.d + 4 * b);
            const auto* q = reinterpret_cast<const std::int8_t*>(a.q + 32 * b);
            float32x4_t& a0 = acc[2 * (G % 2)];
            float32x4_t& a1 = acc[2 * (G % 2) + 1];
            a0 =
                vfmaq_f32(a0, vdupq_n_f32(k16_scale<F>(blk, d, 2 * G) * dx), vcvtq_f32_s32(lane_dots(c0, vld1q_s8(q))));
            a1 = vfmaq_f32(a1, vdupq_n_f32(k16_scale<F>(blk, d, 2 * G + 1) * dx),
                           vcvtq_f32_s32(lane_dots(c1, vld1q_s8(q + 16))));
        }
        if constexpr (two) {  // the minima: row_plain_q2k's scalar steps
            const float dmin = weights::fp16_to_float(weights::load_u16(blk + 82));
            for (int s = 0; s < 16; ++s) {
                const std::size_t b = 8 * sb + static_cast<std::size_t>(s / 2);
                const int o = 4 * (s & 1);
                const std::int32_t half = i32_at(a.s + 32 * b + 4 * o) + i32_at(a.s + 32 * b + 4 * o + 4) +
                                          i32_at(a.s + 32 * b + 4 * o + 8) + i32_at(a.s + 32 * b + 4 * o + 12);
                const float T = f32_at(a.d + 4 * b) * static_cast<float>(half);
                const float dm = dmin * static_cast<float>(static_cast<unsigned>(blk[s]) >> 4);  // exact
                mn[s] = std::fma(dm, T, mn[s]);
            }
        }
    }
    if constexpr (two) return reduce16_neon(acc) - reduce16(mn);
    else return reduce16_neon(acc);
}

// Q4_K / Q5_K: sub-block s (activation block 8·sb + s) is plain's slots 8·((s >> 1) & 1) + j:
// j = 0..3 (elements 0..15) in vector 2·((s >> 1) & 1), j = 4..7 in the next; minima as plain.
template <class F>
float row_neon_k4(const std::byte* row, const Q8ActView& a, std::size_t nsb) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    float mn[8] = {};
    for (std::size_t sb = 0; sb < nsb; ++sb) {
        const std::byte* blk = row + sb * F::block_bytes;
        const std::uint8_t* ub = block_decode_detail::u8(blk);
        const float d = weights::fp16_to_float(weights::load_u16(blk));
        const float dmin = weights::fp16_to_float(weights::load_u16(blk + 2));
        for (int s = 0; s < 8; ++s) {
            unsigned sc = 0, m = 0;
            weights::detail::k4_scale_min(blk + 4, s, sc, m);
            const std::size_t b = 8 * sb + static_cast<std::size_t>(s);
            const float dx = f32_at(a.d + 4 * b);
            const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(m);  // exact
            uint8x16_t v0, v1;
            block_decode_detail::k4_codes<F>(ub, s, v0, v1);
            const auto* q = reinterpret_cast<const std::int8_t*>(a.q + 32 * b);
            const float32x4_t scale = vdupq_n_f32(ds * dx);
            float32x4_t& a0 = acc[2 * ((s >> 1) & 1)];
            float32x4_t& a1 = acc[2 * ((s >> 1) & 1) + 1];
            a0 = vfmaq_f32(a0, scale, vcvtq_f32_s32(lane_dots(vreinterpretq_s8_u8(v0), vld1q_s8(q))));
            a1 = vfmaq_f32(a1, scale, vcvtq_f32_s32(lane_dots(vreinterpretq_s8_u8(v1), vld1q_s8(q + 16))));
            const auto* S = reinterpret_cast<const std::int32_t*>(a.s + 32 * b);
            const std::int32_t total = vaddvq_s32(vaddq_s32(vld1q_s32(S), vld1q_s32(S + 4)));
            const float T = dx * static_cast<float>(total);
            mn[s] = std::fma(dm, T, mn[s]);
        }
    }
    return reduce16_neon(acc) - reduce8(mn);
}
#endif  // RWKV_BLOCK_DECODE_NEON

// The leaf an Isa gets: 2 = VNNI, 1 = AVX2, 0 = plain.
inline int leaf(Isa isa) {
    isa = qmv_detail::usable(isa);
    if (isa == Isa::avx512 && avx512_vnni_supported()) return 2;
    return isa == Isa::generic ? 0 : 1;
}

template <class F>
void rows_typed_k(const Weight& W, const Q8ActView& a, float* y, int row_begin, int row_end, int lf) {
    const auto nsb = static_cast<std::size_t>(W.cols / F::block_elems);
    constexpr bool six = std::is_same_v<F, weights::q6_k>, two = std::is_same_v<F, weights::q2_k>,
                   three = std::is_same_v<F, weights::q3_k>;
#if RWKV_MATVEC_X86
    if (lf == 2)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if constexpr (six) {
                                                  if (n == 8) rows_vnni_q6k<8>(w, a, nsb, o);
                                                  else rows_vnni_q6k<1>(w, a, nsb, o);
                                              } else if constexpr (two) {
                                                  if (n == 8) rows_vnni_q2k<8>(w, a, nsb, o);
                                                  else rows_vnni_q2k<1>(w, a, nsb, o);
                                              } else if constexpr (three) {
                                                  if (n == 8) rows_vnni_q3k<8>(w, a, nsb, o);
                                                  else rows_vnni_q3k<1>(w, a, nsb, o);
                                              } else {
                                                  if (n == 8) rows_vnni_k4<F, 8>(w, a, nsb, o);
                                                  else rows_vnni_k4<F, 1>(w, a, nsb, o);
                                              }
                                          });
    if (lf == 1)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if constexpr (six) {
                                                  if (n == 8) rows_avx2_q6k<8>(w, a, nsb, o);
                                                  else rows_avx2_q6k<1>(w, a, nsb, o);
                                              } else if constexpr (two) {
                                                  if (n == 8) rows_avx2_q2k<8>(w, a, nsb, o);
                                                  else rows_avx2_q2k<1>(w, a, nsb, o);
                                              } else if constexpr (three) {
                                                  if (n == 8) rows_avx2_q3k<8>(w, a, nsb, o);
                                                  else rows_avx2_q3k<1>(w, a, nsb, o);
                                              } else {
                                                  if (n == 8) rows_avx2_k4<F, 8>(w, a, nsb, o);
                                                  else rows_avx2_k4<F, 1>(w, a, nsb, o);
                                              }
                                          });
#endif
    (void)lf;
#if RWKV_BLOCK_DECODE_NEON
    for (int r = row_begin; r < row_end; ++r) {
        if constexpr (six || two || three) y[r] = row_neon_k16<F>(W.row(r), a, nsb);
        else y[r] = row_neon_k4<F>(W.row(r), a, nsb);
    }
    return;
#endif
    for (int r = row_begin; r < row_end; ++r) {
        if constexpr (six) y[r] = row_plain_q6k(W.row(r), a, nsb);
        else if constexpr (two) y[r] = row_plain_q2k(W.row(r), a, nsb);
        else if constexpr (three) y[r] = row_plain_q3k(W.row(r), a, nsb);
        else y[r] = row_plain_k4<F>(W.row(r), a, nsb);
    }
}

template <class F>
void rows_typed(const Weight& W, const Q8ActView& a, float* y, int row_begin, int row_end, int lf) {
    const auto nb = static_cast<std::size_t>(W.cols / F::block_elems);
#if RWKV_MATVEC_X86
    if (lf == 2)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if constexpr (wide_lanes_v<F>) {
                                                  if (n == 8) rows_vnni_q8<8>(w, a, nb, o);
                                                  else rows_vnni_q8<1>(w, a, nb, o);
                                              } else {
                                                  if (n == 8) rows_vnni4<F, 8>(w, a, nb, o);
                                                  else rows_vnni4<F, 1>(w, a, nb, o);
                                              }
                                          });
    if (lf == 1)
        return qmv_detail::for_row_groups(W, y, row_begin, row_end,
                                          [&](const std::byte* const* w, float* const* o, int n) {
                                              if constexpr (wide_lanes_v<F>) {
                                                  if (n == 8) rows_avx2_q8<8>(w, a, nb, o);
                                                  else rows_avx2_q8<1>(w, a, nb, o);
                                              } else {
                                                  if (n == 8) rows_avx2_4<F, 8>(w, a, nb, o);
                                                  else rows_avx2_4<F, 1>(w, a, nb, o);
                                              }
                                          });
#endif
    (void)lf;
#if RWKV_BLOCK_DECODE_NEON
    if (arm_dotprod_supported())
        for (int r = row_begin; r < row_end; ++r) y[r] = row_neon_sdot<F>(W.row(r), a, nb);
    else
        for (int r = row_begin; r < row_end; ++r) y[r] = row_neon<F>(W.row(r), a, nb);
#else
    for (int r = row_begin; r < row_end; ++r) y[r] = row_plain<F>(W.row(r), a, nb);
#endif
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
        if constexpr (q8a_detail::kquant_v<F>) q8a_detail::rows_typed_k<F>(W, a, y, row_begin, row_end, lf);
        else if constexpr (q8act_format_v<F>) q8a_detail::rows_typed<F>(W, a, y, row_begin, row_end, lf);
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
