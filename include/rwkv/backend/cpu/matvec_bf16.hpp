#pragma once
// Opt-in decode mat-vec with bf16 activations (Model::set_bf16_activations): Y[v][o] =
// Σ_c W[o][c]·bf16(X[v][c]) for bfloat16 weights, the vectors rounded to bf16 (round to nearest
// even, as the bf16 GEMM path does), products summed in fp32.
//
// Why: exact batched decoding (matvec.hpp) turns compute-bound from a few vectors on, at the
// fp32 FMA ceiling (16 multiply-adds per zmm instruction after widening every weight). AVX512_BF16's
// vdpbf16ps does 32 multiply-adds per zmm instruction on the weights as stored (no widening), so
// the ceiling doubles. It changes the numerics (activations lose 16 mantissa bits: logits move by
// ~1e-2), hence opt-in.
//
// Layout: the vectors are converted once per call into dwords of bf16 pairs (x[2p], x[2p+1]),
// each vector zero-padded to a multiple of 32 columns. The kernel walks 32 columns (one cache
// line of weights) per step: lane j of a (row, vector) accumulator takes the pair (2j, 2j+1) of
// each step, and the 16 lanes are summed at the end in a fixed order. Rows are grouped as in
// matvec.hpp (R slices of the row range, software prefetch), R rows × NB vectors per kernel call.
//
// Determinism: every output (row, vector) is one accumulator walked over the columns in order,
// whatever the grouping: the single mat-vec is the NB = 1 instance of the multi-vector kernel, so
// a batched product gives each vector bit for bit the single product's result, for any thread
// count, on one path. Paths: vdpbf16ps (AVX512_BF16 CPUs on the avx512 path), and a plain-C++
// emulation of it for every other CPU (the same pairs, lanes, order of the two products of a
// pair as Intel documents, and final sum; inputs: subnormal bf16 weights read as zero, as
// vdpbf16ps does), so the mode gives the same kind of results everywhere; bitwise equality is
// promised only within one path (vdpbf16ps flushes subnormal results, the emulation does not).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <vector>

#include "../../matrix.hpp"
#include "../../scalar.hpp"
#include "isa.hpp"
#include "matvec.hpp"
#include "threads.hpp"

namespace rwkv::backend::cpu {

// The two ways to compute the bf16-activation mat-vec.
enum class Bf16DotPath { emulated, avx512_bf16 };

// The path used on this CPU for a given Isa: vdpbf16ps when the avx512 path is chosen and the CPU
// has AVX512_BF16 (so RWKV_ISA=avx2|generic also selects the emulation).
inline Bf16DotPath bf16_dot_path(Isa isa) {
    return isa == Isa::avx512 && isa_supported(Isa::avx512) && avx512_bf16_supported() ? Bf16DotPath::avx512_bf16
                                                                                       : Bf16DotPath::emulated;
}
inline Bf16DotPath bf16_dot_path() { return bf16_dot_path(active_isa()); }

// Dwords of bf16 pairs per converted vector of `cols` columns (a multiple of 16: 32 columns).
inline std::size_t bf16_pair_stride(std::size_t cols) { return (cols + 31) / 32 * 16; }

// fp32 -> bf16 bits as vcvtneps2bf16 does: round to nearest even; NaN stays NaN (quieted);
// subnormal inputs become (signed) zero.
inline std::uint16_t bf16_round_bits(float f) {
    const auto u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

namespace bf16dot_detail {

// ---- Emulation: 16 fp32 lanes per (row, vector), one step per 32 columns.

inline float bf16_operand(std::uint16_t bits) {  // as vdpbf16ps reads it: subnormals are zero
    return (bits & 0x7f80u) == 0 ? 0.0f : std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// hsum16's order (matvec.hpp): halves, quarters, pairs, then the two left. a + b is commutative
// in IEEE arithmetic, so this is bit for bit the vector reduction.
inline float lanes_sum(const float* a) {
    float h[8], q[4];
    for (int i = 0; i < 8; ++i) h[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; ++i) q[i] = h[i] + h[i + 4];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

template <int R, int NB>
void rows_emulated(const bfloat16* const* w, const std::uint32_t* x, std::size_t ldx, std::size_t cols, float* const* y,
                   std::size_t ldy, bool) {
    float acc[R][NB][16] = {};
    for (std::size_t c = 0; c < cols; c += 32) {
        const std::size_t nc = std::min<std::size_t>(32, cols - c);
        float wf[R][32], xf[NB][32];
        for (int r = 0; r < R; ++r) {
            matvec_detail::prefetch_ahead(w[r], c);
            for (std::size_t i = 0; i < 32; ++i) wf[r][i] = i < nc ? bf16_operand(w[r][c + i].bits) : 0.0f;
        }
        for (int v = 0; v < NB; ++v) {
            const std::uint32_t* p = x + static_cast<std::size_t>(v) * ldx + c / 2;
            for (std::size_t j = 0; j < 16; ++j) {
                xf[v][2 * j] = bf16_operand(static_cast<std::uint16_t>(p[j] & 0xffffu));
                xf[v][2 * j + 1] = bf16_operand(static_cast<std::uint16_t>(p[j] >> 16));
            }
        }
        // Each product of two bf16 is exact in fp32, so a contracted multiply-add rounds the same.
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < NB; ++v)
                for (std::size_t j = 0; j < 16; ++j) {
                    acc[r][v][j] += wf[r][2 * j + 1] * xf[v][2 * j + 1];
                    acc[r][v][j] += wf[r][2 * j] * xf[v][2 * j];
                }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NB; ++v) y[r][static_cast<std::size_t>(v) * ldy] = lanes_sum(acc[r][v]);
}

inline void pack_emulated(const float* X, int n, std::size_t cols, std::uint32_t* out) {
    const std::size_t ld = bf16_pair_stride(cols);
    for (int v = 0; v < n; ++v) {
        const float* x = X + static_cast<std::size_t>(v) * cols;
        std::uint32_t* o = out + static_cast<std::size_t>(v) * ld;
        for (std::size_t p = 0; p < ld; ++p) {
            const std::uint32_t lo = 2 * p < cols ? bf16_round_bits(x[2 * p]) : 0u;
            const std::uint32_t hi = 2 * p + 1 < cols ? bf16_round_bits(x[2 * p + 1]) : 0u;
            o[p] = lo | (hi << 16);
        }
    }
}

struct EmulatedLeaf {
    template <int R, int NB>
    void run(const bfloat16* const* w, const std::uint32_t* x, std::size_t ldx, std::size_t cols, float* const* y,
             std::size_t ldy, bool far) const {
        rows_emulated<R, NB>(w, x, ldx, cols, y, ldy, far);
    }
};

#if RWKV_MATVEC_X86
// ---- AVX512_BF16.

#define RWKV_BF16DOT_TARGET __attribute__((target("avx512bf16,avx512bw,avx512vl,avx512f,avx2,fma,f16c")))

// The horizontal sums of R·NB accumulators, 16 at a time by a transposing tree: the same pairs of
// lanes added in the same order as hsum16 (halves, quarters, pairs, then the last two; IEEE
// addition is commutative), so each result is bit for bit hsum16 of its accumulator, in about a
// third of the instructions (they cost ~20 % of a 1024-column row otherwise). Result lane 4j + t
// of a group holds accumulator 4t + j.
template <int R, int NB>
RWKV_BF16DOT_TARGET __attribute__((always_inline)) inline void reduce_store(__m512 (&acc)[R][NB], float* const* y,
                                                                            std::size_t ldy) {
    constexpr int count = R * NB, groups = (count + 15) / 16;
    RWKV_CPU_UNROLL(64)
    for (int g = 0; g < groups; ++g) {
        __m512 a[16];
        RWKV_CPU_UNROLL(64)
        for (int i = 0; i < 16; ++i) {
            const int k = g * 16 + i;
            a[i] = k < count ? acc[k / NB][k % NB] : _mm512_setzero_ps();
        }
        __m512 t[8], u[4], w[2];
        RWKV_CPU_UNROLL(64)
        for (int k = 0; k < 8; ++k)  // [a0+a2, a1+a3 | b0+b2, b1+b3] (128-bit blocks): a[i] + a[i+8]
            t[k] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(matvec_detail::all16, a[2 * k], a[2 * k + 1], 0x44),
                                 _mm512_maskz_shuffle_f32x4(matvec_detail::all16, a[2 * k], a[2 * k + 1], 0xee));
        RWKV_CPU_UNROLL(64)
        for (int m = 0; m < 4; ++m)  // block j: accumulator 4m + j's h[i] + h[i+4]
            u[m] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(matvec_detail::all16, t[2 * m], t[2 * m + 1], 0x88),
                                 _mm512_maskz_shuffle_f32x4(matvec_detail::all16, t[2 * m], t[2 * m + 1], 0xdd));
        RWKV_CPU_UNROLL(64)
        for (int m = 0; m < 2; ++m)  // per block: q0 + q2, q1 + q3 of two accumulators
            w[m] = _mm512_add_ps(
                _mm512_maskz_shuffle_ps(matvec_detail::all16, u[2 * m], u[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                _mm512_maskz_shuffle_ps(matvec_detail::all16, u[2 * m], u[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
        const __m512 r =
            _mm512_add_ps(_mm512_maskz_shuffle_ps(matvec_detail::all16, w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_maskz_shuffle_ps(matvec_detail::all16, w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
        alignas(64) float out[16];
        _mm512_store_ps(out, r);
        RWKV_CPU_UNROLL(64)
        for (int i = 0; i < 16; ++i) {
            const int k = g * 16 + i;
            if (k < count) y[k / NB][static_cast<std::size_t>(k % NB) * ldy] = out[4 * (i % 4) + i / 4];
        }
    }
}

template <int R, int NB>
RWKV_BF16DOT_TARGET __attribute__((always_inline)) inline void step32(const bfloat16* const* w, const std::uint32_t* x,
                                                                      std::size_t ldx, std::size_t c,
                                                                      __m512 (&acc)[R][NB]) {
    __m512bh xv[NB];
    RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) xv[v] = (__m512bh)_mm512_loadu_si512(x + static_cast<std::size_t>(v) * ldx + c / 2);
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) {
        const __m512bh wv = (__m512bh)_mm512_loadu_si512(w[r] + c);
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], wv, xv[v]);
    }
}

template <int R, int NB>
RWKV_BF16DOT_TARGET void rows_avx512_bf16(const bfloat16* const* w, const std::uint32_t* x, std::size_t ldx,
                                          std::size_t cols, float* const* y, std::size_t ldy, bool far) {
    // Software prefetch, a hint only (results do not depend on it). Up to NBF vectors (the single
    // mat-vec's path): matvec.hpp's distance, into L1. More (far): those run at twice the fp32
    // rate, compute-bound from ~8 vectors on, and every pass prefetches the next row group (the
    // same column of the stream's next row, a row ahead: at least 1024 columns, 2 KB) into L2
    // only, so that DRAM streams while the later passes compute. Measured (16 vectors, ~160 MB of
    // matrices, CPU time, A/B interleaved) against the former 1024 columns ahead into L1: rows of
    // 2048 / 3584 / 7168 columns +20 / +35 / +30 %, 1024 alike (one thread); into L2 alone gained
    // ~10 % at a fixed distance, a row ahead the rest (1024 columns fell inside the long rows,
    // which pass 0 fetches anyway). A single pass of 4-6 vectors gains too (2 threads, 4: +10 %,
    // 6: +40 %, 6 taking two passes before).
    const std::size_t ahead =
        (far ? std::max<std::size_t>(1024, cols) : matvec_detail::prefetch_cols) * sizeof(bfloat16);
    __m512 acc[R][NB];
    RWKV_CPU_UNROLL(64)
    for (int r = 0; r < R; ++r) RWKV_CPU_UNROLL(64)
    for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_setzero_ps();
    std::size_t c = 0;
    for (; c + 32 <= cols; c += 32) {  // one cache line of weights per row and step
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) {
            // Integer arithmetic: the address may lie past the matrix (prefetches never fault).
            const auto addr = reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(w[r] + c) + ahead);
            if (far) _mm_prefetch(addr, _MM_HINT_T1);
            else _mm_prefetch(addr, _MM_HINT_T0);
        }
        step32<R, NB>(w, x, ldx, c, acc);
    }
    if (c < cols) {  // masked weights (no fault past the row); the vectors are zero-padded
        const auto m = static_cast<__mmask32>((std::uint64_t{1} << (cols - c)) - 1u);
        __m512bh xv[NB];
        RWKV_CPU_UNROLL(64)
        for (int v = 0; v < NB; ++v)
            xv[v] = (__m512bh)_mm512_loadu_si512(x + static_cast<std::size_t>(v) * ldx + c / 2);
        RWKV_CPU_UNROLL(64)
        for (int r = 0; r < R; ++r) {
            const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w[r] + c);
            RWKV_CPU_UNROLL(64)
            for (int v = 0; v < NB; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], wv, xv[v]);
        }
    }
    reduce_store<R, NB>(acc, y, ldy);
}

// vcvtne2ps2bf16: 32 floats -> 32 bf16 in column order (round to nearest even).
RWKV_BF16DOT_TARGET inline void pack_avx512_bf16(const float* X, int n, std::size_t cols, std::uint32_t* out) {
    const std::size_t ld = bf16_pair_stride(cols);
    for (int v = 0; v < n; ++v) {
        const float* x = X + static_cast<std::size_t>(v) * cols;
        std::uint32_t* o = out + static_cast<std::size_t>(v) * ld;
        for (std::size_t c = 0; c < cols; c += 32) {
            const std::size_t nc = std::min<std::size_t>(32, cols - c);
            const auto mlo = static_cast<__mmask16>(nc >= 16 ? 0xffffu : (1u << nc) - 1u);
            const auto mhi = static_cast<__mmask16>(nc >= 32 ? 0xffffu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
            const __m512 lo = _mm512_maskz_loadu_ps(mlo, x + c);
            const __m512 hi = _mm512_maskz_loadu_ps(mhi, x + c + 16);
            _mm512_storeu_si512(o + c / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

struct Avx512Bf16Leaf {
    template <int R, int NB>
    void run(const bfloat16* const* w, const std::uint32_t* x, std::size_t ldx, std::size_t cols, float* const* y,
             std::size_t ldy, bool far) const {
        rows_avx512_bf16<R, NB>(w, x, ldx, cols, y, ldy, far);
    }
};

#undef RWKV_BF16DOT_TARGET
#endif  // RWKV_MATVEC_X86

// Rows [row_begin, row_end) of Y[v] = W·Xp[v] for n packed vectors. Up to NBF vectors: R1 rows ×
// n (the single mat-vec's row group); more: R rows × up to NB vectors, vectors taken in chunks
// that fit in L2 so each weight comes from DRAM once per product. A chunk passes over each row
// group in as few calls as NB allows, its vectors split evenly between them (7 vectors: 4 + 3,
// not 6 + 1: a call of few vectors has too few accumulators to hide vdpbf16ps's latency and
// loads a weight line per multiply-add or two); which call takes a vector does not change its
// result.
template <int R1, int NBF, int R, int NB, class Leaf>
void rows_driver(const Matrix<bfloat16>& W, const std::uint32_t* Xp, int n, float* Y, int row_begin, int row_end,
                 Leaf leaf) {
    const auto cols = static_cast<std::size_t>(W.cols);
    const std::size_t ldx = bf16_pair_stride(cols);
    const auto ldy = static_cast<std::size_t>(W.rows);
    if (n <= NBF) {
        matvec_detail::for_row_groups<R1>(
            W, Y, row_begin, row_end, [&](const matvec_detail::RowGroup<bfloat16, R1>& g, int count) {
                if (count == R1) matvec_detail::run_vectors<R1, NBF>(leaf, n, g.w, Xp, ldx, cols, g.y, ldy, false);
                else matvec_detail::run_vectors<1, NBF>(leaf, n, g.w, Xp, ldx, cols, g.y, ldy, false);
            });
        return;
    }
    const std::size_t fit = (std::size_t{256} << 10) / (ldx * sizeof(std::uint32_t) + 1);
    const int chunk = static_cast<int>(std::max<std::size_t>(NB, fit - fit % NB));
    for (int v0 = 0; v0 < n; v0 += chunk) {
        const int v1 = std::min(n, v0 + chunk);
        matvec_detail::for_row_groups<R>(
            W, Y + static_cast<std::size_t>(v0) * ldy, row_begin, row_end,
            [&](const matvec_detail::RowGroup<bfloat16, R>& g, int count) {
                const int len = v1 - v0, passes = (len + NB - 1) / NB;
                for (int p = 0, v = v0; p < passes; ++p) {
                    const int nb = len / passes + (p < len % passes ? 1 : 0);
                    const std::uint32_t* x = Xp + static_cast<std::size_t>(v) * ldx;
                    float* ys[R];
                    for (int r = 0; r < count; ++r) ys[r] = g.y[r] + static_cast<std::size_t>(v - v0) * ldy;
                    if (count == R) matvec_detail::run_vectors<R, NB>(leaf, nb, g.w, x, ldx, cols, ys, ldy, true);
                    else matvec_detail::run_vectors<1, NB>(leaf, nb, g.w, x, ldx, cols, ys, ldy, true);
                    v += nb;
                }
            });
    }
}

}  // namespace bf16dot_detail

// Converts n vectors X [n][cols] to bf16 pairs (round to nearest even), out [n][bf16_pair_stride(cols)]
// dwords, zero-padded. The same bits on every path.
inline void bf16_pack_vectors(const float* X, int n, std::size_t cols, std::uint32_t* out, Bf16DotPath path) {
#if RWKV_MATVEC_X86
    if (path == Bf16DotPath::avx512_bf16 && avx512_bf16_supported())
        return bf16dot_detail::pack_avx512_bf16(X, n, cols, out);
#else
    (void)path;
#endif
    bf16dot_detail::pack_emulated(X, n, cols, out);
}

// Y[v][o] = Σ_c W[o][c]·bf16(X[v][c]) for o in [row_begin, row_end) and n vectors, given packed
// (bf16_pack_vectors), on the given path (vdpbf16ps falls back to the emulation where the CPU
// lacks it). Y is [n][W.rows]. Each Y[v] is bit for bit the n = 1 result for Xp[v].
inline void matvec_bf16_rows(const Matrix<bfloat16>& W, const std::uint32_t* Xp, int n, float* Y, int row_begin,
                             int row_end, Bf16DotPath path) {
    if (row_begin >= row_end || n <= 0) return;
#if RWKV_MATVEC_X86
    // 32 zmm: up to 3 vectors over 8 rows (24 accumulators), more up to 6 at a time over 4 rows
    // (24 accumulators, 6 vectors and a weight line in registers). 4 × 6 over 6 × 4: the same
    // loads per vdpbf16ps, but one pass fewer over each row group (16 vectors: 3 instead of 4)
    // and 4 weight streams instead of 6; measured +10-20 % (16 and 32 vectors, 2 threads, the
    // 0.4B and 1.6B layer matrices, CPU time, A/B interleaved).
    if (path == Bf16DotPath::avx512_bf16 && avx512_bf16_supported())
        return bf16dot_detail::rows_driver<8, 3, 4, 6>(W, Xp, n, Y, row_begin, row_end,
                                                       bf16dot_detail::Avx512Bf16Leaf{});
#else
    (void)path;
#endif
    bf16dot_detail::rows_driver<4, 2, 4, 2>(W, Xp, n, Y, row_begin, row_end, bf16dot_detail::EmulatedLeaf{});
}

// One product of a fused dispatch (as MatvecJob): Y = W·bf16(X) for n vectors.
struct MatvecBf16Job {
    const Matrix<bfloat16>* W = nullptr;
    const float* x = nullptr;
    float* y = nullptr;
    int n = 1;
};

// Several independent products in one pool dispatch, rows split across threads as matvec_many
// does (balanced by weight count, in units of matvec_row_unit rows). The vectors are packed once
// on the caller (jobs sharing an input share its packing) into `packed`, which grows only.
// Results do not depend on the thread count.
inline void matvec_bf16_many(std::span<const MatvecBf16Job> jobs, ThreadPool* pool, std::vector<std::uint32_t>& packed,
                             Bf16DotPath path) {
    constexpr std::size_t max_jobs = 16;
    if (jobs.empty()) return;
    if (jobs.size() > max_jobs) {
        matvec_bf16_many(jobs.first(max_jobs), pool, packed, path);
        return matvec_bf16_many(jobs.subspan(max_jobs), pool, packed, path);
    }
    std::size_t offset[max_jobs], owner[max_jobs], total = 0, bytes = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        const auto& j = jobs[i];
        owner[i] = i;
        for (std::size_t k = 0; k < i; ++k)  // the same input, packed already
            if (owner[k] == k && jobs[k].x == j.x && jobs[k].n >= j.n && jobs[k].W->cols == j.W->cols) {
                owner[i] = k;
                break;
            }
        offset[i] = owner[i] == i ? total : offset[owner[i]];
        if (owner[i] == i)
            total += bf16_pair_stride(static_cast<std::size_t>(j.W->cols)) * static_cast<std::size_t>(std::max(j.n, 0));
        bytes += j.W->size() * sizeof(bfloat16) * static_cast<std::size_t>(std::max(j.n, 0));
    }
    if (packed.size() < total) packed.resize(total);
    for (std::size_t i = 0; i < jobs.size(); ++i)
        if (owner[i] == i && jobs[i].n > 0)
            bf16_pack_vectors(jobs[i].x, jobs[i].n, static_cast<std::size_t>(jobs[i].W->cols),
                              packed.data() + offset[i], path);
    const std::uint32_t* base_ptr = packed.data();
    auto work = [&](int t, int nt) {
        matvec_detail::share_rows(jobs, t, nt, [&](std::size_t i, int rb, int re) {
            const auto& j = jobs[i];
            matvec_bf16_rows(*j.W, base_ptr + offset[i], j.n, j.y, rb, re, path);
        });
    };
    if (pool == nullptr || pool->size() == 1 || bytes < matvec_parallel_min_bytes || !pool->try_run(work)) work(0, 1);
}

inline void matvec_bf16_many(std::span<const MatvecBf16Job> jobs, ThreadPool* pool,
                             std::vector<std::uint32_t>& packed) {
    matvec_bf16_many(jobs, pool, packed, bf16_dot_path());
}

// Y[v] = W·bf16(X[v]) for n vectors (X [n][W.cols], Y [n][W.rows]); Y[v] is bit for bit the
// n = 1 product of X[v]. Rows split across the pool's threads (pool may be null).
inline void matvec_bf16_batch(const Matrix<bfloat16>& W, const float* X, int n, float* Y, ThreadPool* pool,
                              std::vector<std::uint32_t>& packed, Bf16DotPath path) {
    const MatvecBf16Job job{&W, X, Y, n};
    matvec_bf16_many(std::span<const MatvecBf16Job>(&job, 1), pool, packed, path);
}

inline void matvec_bf16_batch(const Matrix<bfloat16>& W, const float* X, int n, float* Y, ThreadPool* pool,
                              std::vector<std::uint32_t>& packed) {
    matvec_bf16_batch(W, X, n, Y, pool, packed, bf16_dot_path());
}

}  // namespace rwkv::backend::cpu
