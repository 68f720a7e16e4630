#pragma once
// Decode mat-vec and prefill GEMM for the block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, IQ4_NL), with AVX-512, AVX2 and generic leaves:
// y[o] = Σ_c W[o][c]·x[c] with W a rwkv::Weight in a block format, x, y and accumulation in fp32.
//
// Exactness: each block is dequantized in registers to exactly the values of the format's
// reference decoder (weights/<format>.hpp) — the same products and the same single rounding —
// and then multiplied with x by fp32 FMAs. So the result differs from the reference decode +
// dot only by summation order (~1e-6 relative), never by a rounded weight or a rounded
// activation. (Where the reference computes q·d + m or dl·q − ml, q·d and dl·q are exact in
// fp32, so an FMA rounds exactly once, like the reference. The AVX-512 Q8_0 kernel sums q·x over
// a block and multiplies by d once: the same exact weights, a different summation rounding.)
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
// (RWKV_ISA caps it). The generic path: on aarch64 block_decode.hpp's NEON decoders feed each
// block's values straight into two FMA chains per row (rows_neon); elsewhere each block is decoded
// (reference decoder; Q8_0 with SSE2) into an L1 buffer and multiplied by xsimd FMAs (or four
// scalar lanes).
//
// Determinism: every output row is one thread's, one accumulator walked over the blocks in order
// whatever the row grouping, so results depend only on the path, never on the thread count.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../matrix.hpp"
#include "../../weight.hpp"
#include "block_decode.hpp"
#include "gemm.hpp"
#include "isa.hpp"
#include "matvec.hpp"
#include "threads.hpp"

namespace rwkv::backend::cpu {

// Formats with SIMD leaves: every block format (the others run the generic block path).
template <class F>
inline constexpr bool quant_simd_format_v = F::block_elems > 1;

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
        RWKV_CPU_UNROLL(8)
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

// ---- Generic path: decode_block (block_decode.hpp) into an L1 buffer, then vector FMAs (off
// aarch64; rows_neon below is ARM's).

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
            decode_block<F>(w[r] + off, buf);
            RWKV_CPU_UNROLL(8)
            for (std::size_t c = 0; c < BE; c += S) acc[r] = gvec_fma(gvec_load(buf + c), gvec_load(xb + c), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = gvec_sum(acc[r]);
}

#if RWKV_BLOCK_DECODE_NEON
// NEON: each block decoded in registers straight into the row's FMAs (block_decode.hpp's
// DotSink), the same row layout and prefetch as rows_generic.
template <class F, int R>
void rows_neon(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    using block_decode_detail::DotSink;
    float32x4_t acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
    for (std::size_t b = 0; b < nblocks; ++b) {
        const std::size_t off = b * F::block_bytes;
        for (int r = 0; r < R; ++r) {
            if (b % step_blocks<F> == 0) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
            DotSink s{x + b * F::block_elems, {acc[r][0], acc[r][1]}};
            block_decode_detail::decode_block_neon<F>(w[r] + off, s);
            acc[r][0] = s.acc[0];
            acc[r][1] = s.acc[1];
        }
    }
    for (int r = 0; r < R; ++r) *y[r] = vaddvq_f32(vaddq_f32(acc[r][0], acc[r][1]));
}
#endif

template <class F>
void decode_rows_generic(const Weight& W, int row_begin, int row_end, float* out) {
    const auto cols = static_cast<std::size_t>(W.cols);
    if constexpr (F::block_elems > 1) {
        const std::size_t nb = cols / F::block_elems;
        for (int r = row_begin; r < row_end; ++r) {
            const std::byte* row = W.row(r);
            float* o = out + static_cast<std::size_t>(r - row_begin) * cols;
            for (std::size_t b = 0; b < nb; ++b) decode_block<F>(row + b * F::block_bytes, o + b * F::block_elems);
        }
    } else {
        for (int r = row_begin; r < row_end; ++r) W.decode_row(r, out + static_cast<std::size_t>(r - row_begin) * cols);
    }
}

#if RWKV_MATVEC_X86
#define RWKV_QAVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RWKV_QAVX2_TARGET __attribute__((target("avx2,fma,f16c")))
// The leaves' helpers are always inlined and their innermost fixed-count loops carry unroll
// pragmas: at -O2 GCC otherwise called block_rows512 out of line (accumulators in memory) and
// kept per-row loops rolled (Q5_0 / Q5_1 / Q8_0 ran 15-22 % slower than at -O3 in cache).
#define RWKV_QAVX512_INLINE RWKV_QAVX512_TARGET __attribute__((always_inline)) inline
#define RWKV_QAVX2_INLINE RWKV_QAVX2_TARGET __attribute__((always_inline)) inline

// ---- AVX-512 leaves. Per format, prep512<F>(block, st) converts a block's scales once (per block
// and row) into a State, and group512<F>(block, st, g, w) gives the 32 values of group g of the
// block (groups512<F> groups per block) in two vectors of 16. The values are the reference
// decoder's bit for bit, except that the Q8_0 mat-vec multiplies each block's integer-valued
// partial sum by d once (q·d is exact, so only the rounding of the sum changes). Cheap decoding
// is the point (at 4-6 bits the kernel, not the memory, was the limit):
// - 4-bit codes (Q4_0, Q4_1, IQ4_NL, the K-quants' nibbles) index a 16-entry table of the block's
//   fp32 values (vpermps reads only the low 4 bits of each index lane, so no masking), made once
//   per (sub-)block by one multiply or FMA of a constant table with the exact single rounding of
//   the reference: one table lookup per 16 values instead of mask, subtract, convert, multiply;
// - 5-bit codes (Q5_0, Q5_1, Q5_K) index a 32-entry table (two-table vpermt2ps), the 5th bit
//   OR-ed into the nibble under a lane mask;
// - Q2_K's 2-bit codes index a table that repeats its 4 values (bits 2-3 need no mask), Q3_K's
//   3-bit codes (2 low bits and the hmask bit, merged by one vpternlogd) one that repeats 8;
// - Q6_K builds its 6-bit codes 64 at a time in bytes, then widens 16 at a time;
// - K-quant scales are unpacked with 64-bit integer arithmetic and converted in one vector into a
//   small array, so each sub-block's scale is a broadcast load.
// The row kernels load each group's activations once for 8 rows. (Tried and dropped, slower on
// this Zen 4: fp16 scales of 8 rows gathered into one vcvtph2ps; codes from a 16-byte broadcast
// load and per-lane shifts with the activations permuted to match, instead of vpmovzxbd.)
constexpr __mmask16 q_all16 = 0xffff;

RWKV_QAVX512_INLINE __m512 bcast_f16(const std::byte* p) { return _mm512_set1_ps(_cvtsh_ss(u16_at(p))); }
// As bcast_f16 with the conversion reading memory directly (8 bytes from p: only for fields with 6
// more bytes of the block after them).
RWKV_QAVX512_INLINE __m512 bcast_f16_mem(const std::byte* p) {
    return _mm512_maskz_broadcastss_ps(q_all16, _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
RWKV_QAVX512_INLINE __m512i u8x16(const std::byte* p) {  // 16 bytes → 16 u32 lanes
    return _mm512_maskz_cvtepu8_epi32(q_all16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
RWKV_QAVX512_INLINE __m512i i8x16(const void* p) {  // 16 bytes → 16 i32 lanes
    return _mm512_maskz_cvtepi8_epi32(q_all16, _mm_loadu_si128(static_cast<const __m128i*>(p)));
}
RWKV_QAVX512_INLINE __m512 to_ps(__m512i v) { return _mm512_maskz_cvtepi32_ps(q_all16, v); }
RWKV_QAVX512_INLINE __m512i srl(__m512i v, unsigned n) { return _mm512_maskz_srli_epi32(q_all16, v, n); }
RWKV_QAVX512_INLINE __m512 lut(__m512i idx, __m512 table) {  // table[idx & 15]
    return _mm512_maskz_permutexvar_ps(q_all16, idx, table);
}
// (t0 ++ t1)[nib + 16·hi] for nib in 0..15 (one two-table vpermt2ps instead of two lookups).
RWKV_QAVX512_INLINE __m512 lut5(__m512i nib, __m512 t0, __m512 t1, __mmask16 hi) {
    const __m512i idx = _mm512_mask_or_epi32(nib, hi, nib, _mm512_set1_epi32(16));
    return _mm512_maskz_permutex2var_ps(q_all16, t0, idx, t1);
}
template <int... V>
RWKV_QAVX512_INLINE __m512 consts16() {
    alignas(64) static constexpr float v[16] = {static_cast<float>(V)...};
    return _mm512_load_ps(v);
}
RWKV_QAVX512_INLINE __m512 ramp16(int first) {  // first, first + 1, ..., first + 15
    return _mm512_add_ps(consts16<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15>(),
                         _mm512_set1_ps(static_cast<float>(first)));
}

// Q4_K/Q5_K's 12 packed scale bytes (weights/q4_k.hpp) as 16 bytes [sc0..sc7, m0..m7]: bytes 0-3
// hold sc0-3 (low 6 bits) and the top 2 bits of sc4-7, bytes 4-7 m0-3 and the top bits of m4-7,
// bytes 8-11 the low 4 bits of sc4-7 (low nibbles) and of m4-7 (high nibbles).
inline __m128i k4_unpack_scales(const std::byte* s) {
    std::uint64_t ab;
    std::memcpy(&ab, s, 8);
    const std::uint64_t c = u32_at(s + 8);
    const std::uint64_t x = ab & 0x3f3f3f3f3f3f3f3full;  // [sc0-3, m0-3]
    const std::uint64_t z = ((c & 0x0f0f0f0fu) | ((c << 28) & 0x0f0f0f0f00000000ull)) |
                            ((ab >> 2) & 0x3030303030303030ull);  // [sc4-7, m4-7]
    return _mm_unpacklo_epi32(_mm_cvtsi64_si128(static_cast<long long>(x)),
                              _mm_cvtsi64_si128(static_cast<long long>(z)));
}

// Q3_K's 16 scales + 32 as bytes (weights/q3_k.hpp): low 4 bits in the low (s < 8) or high
// (s ≥ 8) nibbles of bytes 0-7, top 2 bits in bytes 8-11 at bit 2·(s/4).
inline __m128i k3_unpack_scales(const std::byte* s) {
    std::uint64_t ab;
    std::memcpy(&ab, s, 8);
    const std::uint64_t h = u32_at(s + 8), n = 0x0f0f0f0f0f0f0f0full;
    const std::uint64_t lo = (ab & n) | ((h << 4) & 0x30303030u) | (((h << 2) & 0x30303030u) << 32);  // s 0-7
    const std::uint64_t hi = ((ab >> 4) & n) | (h & 0x30303030u) | (((h >> 2) & 0x30303030u) << 32);  // s 8-15
    return _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
}

template <class F>
struct State512 {  // 32-value formats: the block's table(s) and 5th bits
    __m512 t0, t1;
    std::uint32_t qh;
};
template <>
struct State512<weights::q8_0> {
    __m512 d;
};
template <>
struct State512<weights::q2_k> {
    alignas(64) float dl[16], ml[16];
};
template <>
struct State512<weights::q3_k> {
    alignas(64) float dl[16];
    __m512i hm0, hm1;  // hmask[l] for l < 16 and l ≥ 16, one per lane
};
template <>
struct State512<weights::q4_k> {
    alignas(64) float dlml[16];  // d·sc for 8 sub-blocks, then dmin·m
};
template <>
struct State512<weights::q5_k> {
    alignas(64) float dlml[16];
    __m256i qh;
};
template <>
struct State512<weights::q6_k> {
    alignas(64) std::int8_t q[256];  // q − 32 per value
    alignas(64) float dl[16];
};

template <class F>
inline constexpr int groups512 = F::block_elems / 32;

template <class F>
RWKV_QAVX512_INLINE void prep512(const std::byte* b, State512<F>& st) {
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        st.d = bcast_f16_mem(b);
    } else if constexpr (std::is_same_v<F, weights::q4_0>) {  // (q − 8)·d
        st.t0 = _mm512_mul_ps(ramp16(-8), bcast_f16_mem(b));
    } else if constexpr (std::is_same_v<F, weights::iq4_nl>) {  // d·K[q]
        st.t0 = _mm512_mul_ps(consts16<-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113>(),
                              bcast_f16_mem(b));
    } else if constexpr (std::is_same_v<F, weights::q4_1>) {  // q·d + m (q·d exact: one rounding)
        st.t0 = _mm512_fmadd_ps(ramp16(0), bcast_f16_mem(b), bcast_f16_mem(b + 2));
    } else if constexpr (std::is_same_v<F, weights::q5_0>) {  // (q − 16)·d, q = nibble + 16·bit
        const __m512 d = bcast_f16_mem(b);
        st.t0 = _mm512_mul_ps(ramp16(-16), d);
        st.t1 = _mm512_mul_ps(ramp16(0), d);
        st.qh = u32_at(b + 2);
    } else if constexpr (std::is_same_v<F, weights::q5_1>) {  // q·d + m
        const __m512 d = bcast_f16_mem(b), m = bcast_f16_mem(b + 2);
        st.t0 = _mm512_fmadd_ps(ramp16(0), d, m);
        st.t1 = _mm512_fmadd_ps(ramp16(16), d, m);
        st.qh = u32_at(b + 4);
    } else if constexpr (std::is_same_v<F, weights::q4_k> || std::is_same_v<F, weights::q5_k>) {
        const __m512 dd = _mm512_mask_blend_ps(0xff00, bcast_f16(b), bcast_f16(b + 2));
        const __m512i sm = _mm512_maskz_cvtepu8_epi32(q_all16, k4_unpack_scales(b + 4));
        _mm512_store_ps(st.dlml, _mm512_mul_ps(to_ps(sm), dd));
        if constexpr (std::is_same_v<F, weights::q5_k>)
            st.qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
    } else if constexpr (std::is_same_v<F, weights::q2_k>) {  // scales[s]: sc low nibble, m high
        const __m512i s = u8x16(b);
        _mm512_store_ps(st.dl, _mm512_mul_ps(to_ps(_mm512_and_si512(s, _mm512_set1_epi32(15))), bcast_f16(b + 80)));
        _mm512_store_ps(st.ml, _mm512_mul_ps(to_ps(srl(s, 4)), bcast_f16(b + 82)));
    } else if constexpr (std::is_same_v<F, weights::q3_k>) {
        const __m512i s =
            _mm512_sub_epi32(_mm512_maskz_cvtepu8_epi32(q_all16, k3_unpack_scales(b + 96)), _mm512_set1_epi32(32));
        _mm512_store_ps(st.dl, _mm512_mul_ps(to_ps(s), bcast_f16(b + 108)));
        st.hm0 = u8x16(b);
        st.hm1 = u8x16(b + 16);
    } else if constexpr (std::is_same_v<F, weights::q6_k>) {
        // Codes 64 at a time. Half h (values 128h..) has ql = 64 bytes and qh = 32 bytes: value
        // 128h + i (i < 64) is the low nibble of ql[i] with bits 2·(i/32).. of qh[i % 32] on top,
        // value 128h + 64 + i the high nibble with bits 4 + 2·(i/32)... The 16-bit shifts also
        // move bits between the two bytes of a lane; the masks drop them.
        const __m512i lo4 = _mm512_set1_epi8(0x0f), b45 = _mm512_set1_epi8(0x30), k32 = _mm512_set1_epi8(32);
        const __m512i up = _mm512_maskz_inserti64x4(0xff, _mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i down = _mm512_maskz_inserti64x4(0xff, _mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        RWKV_CPU_UNROLL(2)
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = _mm512_loadu_si512(b + 64 * h);
            const __m512i qh = _mm512_maskz_broadcast_i64x4(
                0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h)));
            const __m512i ha = _mm512_and_si512(_mm512_sllv_epi16(qh, up), b45);
            const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(qh, down), b45);
            const __m512i qa = _mm512_ternarylogic_epi32(ql, lo4, ha, 0xea);  // (ql & 15) | ha
            const __m512i qb = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), lo4, hb, 0xea);
            _mm512_store_si512(st.q + 128 * h, _mm512_sub_epi8(qa, k32));
            _mm512_store_si512(st.q + 128 * h + 64, _mm512_sub_epi8(qb, k32));
        }
        const __m512 sc = to_ps(i8x16(b + 192));
        _mm512_store_ps(st.dl, _mm512_mul_ps(sc, bcast_f16(b + 208)));
    }
}

// The 32 values of group g (Q8_0: q, not yet times d).
template <class F>
RWKV_QAVX512_INLINE void group512(const std::byte* b, const State512<F>& st, int g, __m512& w0, __m512& w1) {
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        (void)st, (void)g;
        w0 = to_ps(i8x16(b + 2));
        w1 = to_ps(i8x16(b + 18));
    } else if constexpr (std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::q4_1> ||
                         std::is_same_v<F, weights::iq4_nl>) {
        (void)g;
        const __m512i v = u8x16(b + (std::is_same_v<F, weights::q4_1> ? 4 : 2));
        w0 = lut(v, st.t0);
        w1 = lut(srl(v, 4), st.t0);
    } else if constexpr (std::is_same_v<F, weights::q5_0> || std::is_same_v<F, weights::q5_1>) {
        (void)g;
        const __m512i v = u8x16(b + (std::is_same_v<F, weights::q5_1> ? 8 : 6));
        w0 = lut5(_mm512_and_si512(v, _mm512_set1_epi32(15)), st.t0, st.t1, static_cast<__mmask16>(st.qh & 0xffffu));
        w1 = lut5(srl(v, 4), st.t0, st.t1, static_cast<__mmask16>(st.qh >> 16));
    } else if constexpr (std::is_same_v<F, weights::q4_k> || std::is_same_v<F, weights::q5_k>) {
        // Sub-block g: nibbles (low for even g, high for odd) of qs[32·(g/2) + l].
        constexpr int qs_at = std::is_same_v<F, weights::q5_k> ? 48 : 16;
        __m512i v0 = u8x16(b + qs_at + 32 * (g / 2)), v1 = u8x16(b + qs_at + 32 * (g / 2) + 16);
        if (g & 1) {
            v0 = srl(v0, 4);
            v1 = srl(v1, 4);
        }
        const __m512 dl = _mm512_set1_ps(st.dlml[g]), ml = _mm512_set1_ps(st.dlml[8 + g]);
        const __m512 t0 = _mm512_fmsub_ps(ramp16(0), dl, ml);  // dl·q − ml, q·dl exact
        if constexpr (std::is_same_v<F, weights::q5_k>) {      // 5th bit: bit g of qh[l]
            const __mmask32 hb = _mm256_test_epi8_mask(st.qh, _mm256_set1_epi8(static_cast<char>(1 << g)));
            const __m512 t1 = _mm512_fmsub_ps(ramp16(16), dl, ml);
            if (!(g & 1)) {
                v0 = _mm512_and_si512(v0, _mm512_set1_epi32(15));
                v1 = _mm512_and_si512(v1, _mm512_set1_epi32(15));
            }
            w0 = lut5(v0, t0, t1, static_cast<__mmask16>(hb & 0xffffu));
            w1 = lut5(v1, t0, t1, static_cast<__mmask16>(hb >> 16));
        } else {
            w0 = lut(v0, t0);
            w1 = lut(v1, t0);
        }
    } else if constexpr (std::is_same_v<F, weights::q2_k>) {
        // Group g = 4h + j: (qs[32h + l] >> 2j) & 3; sub-blocks 2g (l < 16) and 2g + 1.
        const int h = g / 4, j = g % 4;
        const __m512i v0 = srl(u8x16(b + 16 + 32 * h), 2u * static_cast<unsigned>(j));
        const __m512i v1 = srl(u8x16(b + 32 + 32 * h), 2u * static_cast<unsigned>(j));
        const __m512 k = consts16<0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3>();
        w0 = lut(v0, _mm512_fmsub_ps(k, _mm512_set1_ps(st.dl[2 * g]), _mm512_set1_ps(st.ml[2 * g])));
        w1 = lut(v1, _mm512_fmsub_ps(k, _mm512_set1_ps(st.dl[2 * g + 1]), _mm512_set1_ps(st.ml[2 * g + 1])));
    } else if constexpr (std::is_same_v<F, weights::q3_k>) {
        // Group g = 4h + j: index = (qs[32h + l] >> 2j) & 3 | (bit 4h + j of hmask[l]) << 2, and
        // the table (repeating every 8) holds dl·(low − 4) for index < 4, dl·low above.
        const int h = g / 4, j = g % 4, hbit = 4 * h + j;
        const __m512i v0 = srl(u8x16(b + 32 + 32 * h), 2u * static_cast<unsigned>(j));
        const __m512i v1 = srl(u8x16(b + 48 + 32 * h), 2u * static_cast<unsigned>(j));
        __m512i h0 = st.hm0, h1 = st.hm1;  // bit hbit → bit 2
        if (hbit >= 2) {
            h0 = srl(h0, static_cast<unsigned>(hbit - 2));
            h1 = srl(h1, static_cast<unsigned>(hbit - 2));
        } else {
            h0 = _mm512_maskz_slli_epi32(q_all16, h0, static_cast<unsigned>(2 - hbit));
            h1 = _mm512_maskz_slli_epi32(q_all16, h1, static_cast<unsigned>(2 - hbit));
        }
        const __m512i three = _mm512_set1_epi32(3);
        const __m512i i0 = _mm512_ternarylogic_epi32(three, v0, h0, 0xca);  // three ? v : h
        const __m512i i1 = _mm512_ternarylogic_epi32(three, v1, h1, 0xca);
        const __m512 k = consts16<-4, -3, -2, -1, 0, 1, 2, 3, -4, -3, -2, -1, 0, 1, 2, 3>();
        w0 = lut(i0, _mm512_mul_ps(k, _mm512_set1_ps(st.dl[2 * g])));
        w1 = lut(i1, _mm512_mul_ps(k, _mm512_set1_ps(st.dl[2 * g + 1])));
    } else if constexpr (std::is_same_v<F, weights::q6_k>) {
        (void)b;
        w0 = _mm512_mul_ps(to_ps(i8x16(st.q + 32 * g)), _mm512_set1_ps(st.dl[2 * g]));
        w1 = _mm512_mul_ps(to_ps(i8x16(st.q + 32 * g + 16)), _mm512_set1_ps(st.dl[2 * g + 1]));
    }
}

RWKV_QAVX512_INLINE float qhsum16(__m512 v) {
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(q_all16, v, v, 0x4e));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(q_all16, v, v, 0xb1));
    __m128 s = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---- Scales of several blocks at once (the 32-value formats). Converting each block's fp16 scale
// on its own (a load, vcvtph2ps, a broadcast: per block and row) was a large part of the decode
// cost: here the fp16 fields of scale_group<F> consecutive blocks of a row come out of two masked
// 64-byte loads by one vpermt2w and are converted by one vcvtph2ps into a small fp32 array
// (d of block k at [k], Q4_1's m at [8 + k]), which the block step then reads as broadcast
// memory operands. The values are the same fp32 numbers, so results are bit for bit unchanged.
// (Measured on the Zen 4 dev VM, 512 x 2048 in L2, one thread: Q4_0 and IQ4_NL +11 %, Q4_1 +6 %;
// Q8_0 unchanged and Q5_0 / Q5_1 slower, so those keep the per-block conversion.)
template <class F>
inline constexpr bool gathered_scales_v =
    std::is_same_v<F, weights::q4_0> || std::is_same_v<F, weights::iq4_nl> || std::is_same_v<F, weights::q4_1>;

template <class F>
inline constexpr bool two_scales_v = std::is_same_v<F, weights::q4_1>;

// Blocks per gather: the fields of all of them within the two 64-byte loads (at most 8).
template <class F>
inline constexpr int scale_group = std::min(8, (128 - (two_scales_v<F> ? 4 : 2)) / F::block_bytes + 1);

// Bytes of the two loads that hold the fields (the rest is masked off: no read past them).
template <class F>
inline constexpr int scale_span = (scale_group<F> - 1) * F::block_bytes + (two_scales_v<F> ? 4 : 2);

template <class F>
struct ScaleIndex {  // vpermt2w indices: word k = d of block k, word 8 + k = m of block k
    alignas(64) std::uint16_t w[32] = {};
    constexpr ScaleIndex() {
        for (int k = 0; k < scale_group<F>; ++k) {
            w[k] = static_cast<std::uint16_t>(k * F::block_bytes / 2);
            if (two_scales_v<F>) w[8 + k] = static_cast<std::uint16_t>((k * F::block_bytes + 2) / 2);
        }
    }
};

template <class F>
RWKV_QAVX512_INLINE void gather_scales(const std::byte* p, float* out) {
    static constexpr ScaleIndex<F> index{};
    constexpr int span = scale_span<F>;
    constexpr __mmask64 lo_mask = span >= 64 ? ~__mmask64{0} : (__mmask64{1} << span) - 1;
    constexpr __mmask64 hi_mask = span <= 64 ? 0 : span >= 128 ? ~__mmask64{0} : (__mmask64{1} << (span - 64)) - 1;
    const __m512i lo = _mm512_maskz_loadu_epi8(lo_mask, p);
    const __m512i hi = _mm512_maskz_loadu_epi8(hi_mask, p + 64);
    const __m512i h = _mm512_permutex2var_epi16(lo, _mm512_load_si512(index.w), hi);
    _mm512_store_ps(out, _mm512_maskz_cvtph_ps(q_all16, _mm512_maskz_extracti64x4_epi64(0xf, h, 0)));
}

// prep512 with the block's scales already in fp32 (d; m for Q4_1).
template <class F>
RWKV_QAVX512_INLINE void prep512_scaled(const float* d, const float* m, State512<F>& st) {
    if constexpr (std::is_same_v<F, weights::q4_0>) {  // (q − 8)·d
        (void)m;
        st.t0 = _mm512_mul_ps(ramp16(-8), _mm512_set1_ps(*d));
    } else if constexpr (std::is_same_v<F, weights::iq4_nl>) {  // d·K[q]
        (void)m;
        st.t0 = _mm512_mul_ps(consts16<-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113>(),
                              _mm512_set1_ps(*d));
    } else if constexpr (std::is_same_v<F, weights::q4_1>) {  // q·d + m
        st.t0 = _mm512_fmadd_ps(ramp16(0), _mm512_set1_ps(*d), _mm512_set1_ps(*m));
    }
}

// The groups of one block for R rows whose States are ready, into their accumulators.
template <class F, int R>
RWKV_QAVX512_INLINE void block_rows512(const std::byte* const* w, std::size_t off, const float* xb,
                                       const State512<F>* st, __m512* acc) {
    if constexpr (std::is_same_v<F, weights::q4_k>) {
        // Sub-blocks 2c and 2c + 1 are the low and high nibbles of the same 32 bytes: widen them
        // once for both (same values and FMA order as one group at a time).
        for (int c = 0; c < 4; ++c) {
            const float* xc = xb + 64 * c;
            const __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16);
            const __m512 x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
            RWKV_CPU_UNROLL(8)
            for (int r = 0; r < R; ++r) {
                const std::byte* q = w[r] + off + 16 + 32 * c;
                const __m512i v0 = u8x16(q), v1 = u8x16(q + 16);
                const float* dlml = st[r].dlml;
                const __m512 te =
                    _mm512_fmsub_ps(ramp16(0), _mm512_set1_ps(dlml[2 * c]), _mm512_set1_ps(dlml[8 + 2 * c]));
                const __m512 to =
                    _mm512_fmsub_ps(ramp16(0), _mm512_set1_ps(dlml[2 * c + 1]), _mm512_set1_ps(dlml[9 + 2 * c]));
                acc[r] = _mm512_fmadd_ps(lut(v0, te), x0, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut(v1, te), x1, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut(srl(v0, 4), to), x2, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut(srl(v1, 4), to), x3, acc[r]);
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q5_k>) {  // as Q4_K, plus the 5th bits (bit g of qh[l])
        for (int c = 0; c < 4; ++c) {
            const float* xc = xb + 64 * c;
            const __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16);
            const __m512 x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
            const __m256i bit_e = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
            const __m256i bit_o = _mm256_set1_epi8(static_cast<char>(2 << (2 * c)));
            RWKV_CPU_UNROLL(8)
            for (int r = 0; r < R; ++r) {
                const std::byte* q = w[r] + off + 48 + 32 * c;
                const __m512i v0 = u8x16(q), v1 = u8x16(q + 16);
                const float* dlml = st[r].dlml;
                const __m512 dle = _mm512_set1_ps(dlml[2 * c]), mle = _mm512_set1_ps(dlml[8 + 2 * c]);
                const __m512 dlo = _mm512_set1_ps(dlml[2 * c + 1]), mlo = _mm512_set1_ps(dlml[9 + 2 * c]);
                const __mmask32 he = _mm256_test_epi8_mask(st[r].qh, bit_e),
                                ho = _mm256_test_epi8_mask(st[r].qh, bit_o);
                const __m512 t0e = _mm512_fmsub_ps(ramp16(0), dle, mle), t1e = _mm512_fmsub_ps(ramp16(16), dle, mle);
                const __m512 t0o = _mm512_fmsub_ps(ramp16(0), dlo, mlo), t1o = _mm512_fmsub_ps(ramp16(16), dlo, mlo);
                const __m512i m15 = _mm512_set1_epi32(15);
                acc[r] = _mm512_fmadd_ps(
                    lut5(_mm512_and_si512(v0, m15), t0e, t1e, static_cast<__mmask16>(he & 0xffffu)), x0, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut5(_mm512_and_si512(v1, m15), t0e, t1e, static_cast<__mmask16>(he >> 16)),
                                         x1, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut5(srl(v0, 4), t0o, t1o, static_cast<__mmask16>(ho & 0xffffu)), x2, acc[r]);
                acc[r] = _mm512_fmadd_ps(lut5(srl(v1, 4), t0o, t1o, static_cast<__mmask16>(ho >> 16)), x3, acc[r]);
            }
        }
    } else {  // one branch per format: nvcc flags code after a constexpr-taken return as unreachable
        for (int g = 0; g < groups512<F>; ++g) {
            const __m512 x0 = _mm512_loadu_ps(xb + 32 * g), x1 = _mm512_loadu_ps(xb + 32 * g + 16);
            RWKV_CPU_UNROLL(8)
            for (int r = 0; r < R; ++r) {
                __m512 w0, w1;
                group512<F>(w[r] + off, st[r], g, w0, w1);
                if constexpr (std::is_same_v<F, weights::q8_0>) {  // d · Σ q·x
                    acc[r] = _mm512_fmadd_ps(_mm512_fmadd_ps(w1, x1, _mm512_mul_ps(w0, x0)), st[r].d, acc[r]);
                } else {
                    acc[r] = _mm512_fmadd_ps(w0, x0, acc[r]);
                    acc[r] = _mm512_fmadd_ps(w1, x1, acc[r]);
                }
            }
        }
    }
}

// *y[r] = w[r]·x for R rows: per block, each row's State, then per group of 32 values the
// activations once and each row's values into its accumulator.
template <class F, int R>
RWKV_QAVX512_TARGET void rows_avx512(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    __m512 acc[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    State512<F> st[R];
    std::size_t b = 0;
    if constexpr (gathered_scales_v<F>) {
        constexpr int G = scale_group<F>;
        alignas(64) float sc[R][16];
        for (; b + G <= nblocks; b += G) {
            RWKV_CPU_UNROLL(8)
            for (int r = 0; r < R; ++r) gather_scales<F>(w[r] + b * F::block_bytes, sc[r]);
            for (int k = 0; k < G; ++k) {
                const std::size_t bk = b + static_cast<std::size_t>(k), off = bk * F::block_bytes;
                if (bk % step_blocks<F> == 0) RWKV_CPU_UNROLL(8)
                for (int r = 0; r < R; ++r) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
                // One group per block (32 values): each row's State lives only for its two FMAs.
                static_assert(groups512<F> == 1);
                const float* xb = x + bk * F::block_elems;
                const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
                RWKV_CPU_UNROLL(8)
                for (int r = 0; r < R; ++r) {
                    State512<F> s;
                    prep512_scaled<F>(sc[r] + k, sc[r] + 8 + k, s);
                    __m512 w0, w1;
                    group512<F>(w[r] + off, s, 0, w0, w1);
                    acc[r] = _mm512_fmadd_ps(w0, x0, acc[r]);
                    acc[r] = _mm512_fmadd_ps(w1, x1, acc[r]);
                }
            }
        }
    }
    for (; b < nblocks; ++b) {
        const std::size_t off = b * F::block_bytes;
        if (b % step_blocks<F> == 0) RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) prep512<F>(w[r] + off, st[r]);
        block_rows512<F, R>(w, off, x + b * F::block_elems, st, acc);
    }
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) *y[r] = qhsum16(acc[r]);
}

template <class F>
RWKV_QAVX512_TARGET void decode_rows_avx512(const Weight& W, int row_begin, int row_end, float* out) {
    const auto cols = static_cast<std::size_t>(W.cols), nb = cols / F::block_elems;
    State512<F> st;
    for (int r = row_begin; r < row_end; ++r) {
        const std::byte* row = W.row(r);
        float* o = out + static_cast<std::size_t>(r - row_begin) * cols;
        for (std::size_t b = 0; b < nb; ++b, o += F::block_elems) {
            const std::byte* blk = row + b * F::block_bytes;
            prep512<F>(blk, st);
            for (int g = 0; g < groups512<F>; ++g) {
                __m512 w0, w1;
                group512<F>(blk, st, g, w0, w1);
                if constexpr (std::is_same_v<F, weights::q8_0>) {
                    w0 = _mm512_mul_ps(w0, st.d);
                    w1 = _mm512_mul_ps(w1, st.d);
                }
                _mm512_storeu_ps(o + 32 * g, w0);
                _mm512_storeu_ps(o + 32 * g + 16, w1);
            }
        }
    }
}

// ---- AVX2 leaves: as above with 8 lanes; the 5th bits come from variable shifts (no masks).
RWKV_QAVX2_INLINE float f16_at2(const std::byte* p) { return _cvtsh_ss(u16_at(p)); }
RWKV_QAVX2_INLINE __m256i u8x8(const std::byte* p) {  // 8 bytes → 8 u32 lanes
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
RWKV_QAVX2_INLINE __m256i lo4x8(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(15)); }
RWKV_QAVX2_INLINE __m256 to_ps8(__m256i v) { return _mm256_cvtepi32_ps(v); }
// ((bits >> (first + lane)) & 1) << 4 for lanes 0..7.
RWKV_QAVX2_INLINE __m256i bit5x8(std::uint32_t bits, int first) {
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
RWKV_QAVX2_INLINE void block256(const std::byte* b, Sink& sink) {
    if constexpr (std::is_same_v<F, weights::q8_0>) {
        const __m256 d = _mm256_set1_ps(f16_at2(b));
        RWKV_CPU_UNROLL(4)
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
            RWKV_CPU_UNROLL(2)
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
            RWKV_CPU_UNROLL(4)
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
    } else if constexpr (std::is_same_v<F, weights::iq4_nl>) {  // d·K[q]: levels by pshufb, exact products
        const __m256 d = _mm256_set1_ps(f16_at2(b));
        const __m128i levels = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)), m4 = _mm_set1_epi8(15);
        const __m128i k[2] = {_mm_shuffle_epi8(levels, _mm_and_si128(qs, m4)),
                              _mm_shuffle_epi8(levels, _mm_and_si128(_mm_srli_epi16(qs, 4), m4))};
        RWKV_CPU_UNROLL(2)
        for (int h = 0; h < 2; ++h) {
            sink(16 * h, _mm256_mul_ps(to_ps8(_mm256_cvtepi8_epi32(k[h])), d));
            sink(16 * h + 8, _mm256_mul_ps(to_ps8(_mm256_cvtepi8_epi32(_mm_srli_si128(k[h], 8))), d));
        }
    } else if constexpr (std::is_same_v<F, weights::q2_k>) {  // d·sc·q − dmin·m: fmsub rounds once
        const float d = f16_at2(b + 80), dmin = f16_at2(b + 82);
        const __m256i three = _mm256_set1_epi32(3);
        for (int s = 0; s < 16; ++s) {
            const unsigned sc = static_cast<unsigned>(b[s]);
            const __m256 dl = _mm256_set1_ps(d * static_cast<float>(sc & 15u));
            const __m256 ml = _mm256_set1_ps(dmin * static_cast<float>(sc >> 4));
            const int h = s / 8, j = (s % 8) / 2, l0 = 16 * (s % 2);
            RWKV_CPU_UNROLL(2)
            for (int i = 0; i < 2; ++i) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi32(u8x8(b + 16 + 32 * h + l0 + 8 * i), 2 * j), three);
                sink(16 * s + 8 * i, _mm256_fmsub_ps(dl, to_ps8(q), ml));
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q3_k>) {  // d·S·(low − 4·!hbit): exact products
        const float d = f16_at2(b + 108);
        const __m256i three = _mm256_set1_epi32(3), one = _mm256_set1_epi32(1);
        for (int s = 0; s < 16; ++s) {
            const __m256 dl = _mm256_set1_ps(d * static_cast<float>(weights::q3_k::scale(b, s)));
            const int h = s / 8, j = (s % 8) / 2, l0 = 16 * (s % 2);
            RWKV_CPU_UNROLL(2)
            for (int i = 0; i < 2; ++i) {
                const int l = l0 + 8 * i;
                const __m256i low = _mm256_and_si256(_mm256_srli_epi32(u8x8(b + 32 + 32 * h + l), 2 * j), three);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi32(u8x8(b + l), 4 * h + j), one);
                const __m256i q = _mm256_sub_epi32(low, _mm256_slli_epi32(_mm256_xor_si256(hb, one), 2));
                sink(16 * s + 8 * i, _mm256_mul_ps(dl, to_ps8(q)));
            }
        }
    } else if constexpr (std::is_same_v<F, weights::q6_k>) {
        const float d = f16_at2(b + 208);
        const __m256i three = _mm256_set1_epi32(3), k32 = _mm256_set1_epi32(32);
        for (int h = 0; h < 2; ++h)
            for (int g = 0; g < 4; ++g) RWKV_CPU_UNROLL(4)
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

RWKV_QAVX2_INLINE float qhsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <class F, int R>
RWKV_QAVX2_TARGET void rows_avx2(const std::byte* const* w, const float* x, std::size_t nblocks, float* const* y) {
    FmaSink256 s[R];
    RWKV_CPU_UNROLL(8)
    for (int r = 0; r < R; ++r) s[r].acc = _mm256_setzero_ps();
    for (std::size_t b = 0; b < nblocks; ++b) {
        const std::size_t off = b * F::block_bytes;
        const bool pf = b % step_blocks<F> == 0;
        RWKV_CPU_UNROLL(8)
        for (int r = 0; r < R; ++r) {
            if (pf) prefetch_range(w[r] + off, step_blocks<F> * F::block_bytes);
            s[r].x = x + b * F::block_elems;
            block256<F>(w[r] + off, s[r]);
        }
    }
    RWKV_CPU_UNROLL(8)
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
#if RWKV_BLOCK_DECODE_NEON
        if (n == 8) rows_neon<F, 8>(w, x, nb, o);
        else rows_neon<F, 1>(w, x, nb, o);
#else
        if (n == 8) rows_generic<F, 8>(w, x, nb, o);
        else rows_generic<F, 1>(w, x, nb, o);
#endif
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
