#pragma once
// Prefill GEMM on AMX-BF16 tiles (opt-in, bfloat16 weights): Y[t][o] = Σ_c W[o][c]·X[t][c] with
// X rounded to bf16 (round to nearest even) and products summed in fp32 tile accumulators.
//
// Mapping onto _tile_dpbf16ps (C[M][N] += Σ_k A[M][k]·B[k][N], B stored as VNNI pairs [K/2][N][2]):
//   A = W, 16 rows of weights × 32 columns: W is row-major with c contiguous, so a tile is 16
//       row segments; per block of 32 rows they are copied into contiguous 1 KiB tiles (zero
//       padded past K and past the row range), then reused by every block of activations.
//   B = X rounded to bf16 and packed per 16 activation rows t as [Kp/2][16 t][2] (a dword per
//       pair of columns), zero padded to Kp = round_up(K, 32) and to whole tiles of 16 t.
//   C = Yᵀ [16 o][16 t], fp32 tiles kept in a staging buffer between K blocks and transposed into
//       Y after the last one.
// Blocking: 2 weight tiles × 2 activation tiles → 4 accumulators (tmm0-3), each loaded A (tmm4-5)
// and B (tmm6-7) tile feeds two multiplies. Rows go in bands (C of a band ≈ 256 KiB), K in chunks
// of 1024 columns (packed X of 128 activation rows: 256 KiB, in L2 for the whole band), and per
// block of 32 weight rows in steps of 512 columns (32 KiB of weight tiles, in L1 while every
// block of 32 activation rows passes). Measured on the Sapphire Rapids-class dev machine (one
// core, n = 128, Finch 1.6B shapes): ~390-580 GFLOP/s (noisy) against ~100-125 for the fp32 gemm_rows.
//
// Numerics: X is rounded to bf16, so this is an opt-in path (like GemmPrecision::bf16_activations);
// each output sums the K products in fp32 in a fixed order, whatever the row range or split.
//
// Availability: CPUID.(7,0):EDX.AMX-BF16[22] and AMX-TILE[24], plus AVX512-BF16 for the packing,
// plus the Linux permission to use tile data (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)),
// requested once per process. Anything else (non-x86, non-Linux) reports false.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../matrix.hpp"
#include "../../scalar.hpp"
#include "matvec.hpp"

#if RWKV_MATVEC_X86 && defined(__linux__)
#define RWKV_GEMM_AMX_POSSIBLE 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define RWKV_GEMM_AMX_POSSIBLE 0
#endif

namespace rwkv::backend::cpu {

namespace gemm_amx_detail {

inline constexpr int tile_rows = 16;  // rows of every tile
inline constexpr int tile_k = 32;     // bf16 columns per A tile (64 bytes)
inline constexpr int kc_steps = 16;   // steps of 32 columns per K block (2 weight tiles: 32 KiB)
inline constexpr int ks_steps = 32;   // steps per K chunk (packed X of 128 rows: 256 KiB, in L2)

// Weight rows per band: their fp32 C tiles (band × n) about 256 KiB, a multiple of 32 rows.
inline int super_rows(int n) {
    const int np2 = (std::max(n, 1) + 31) / 32 * 32;
    return std::clamp(65536 / np2 / 32 * 32, 32, 1024);
}

inline std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

inline float* align64(float* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<float*>((a + 63u) & ~std::uintptr_t{63});
}

#if RWKV_GEMM_AMX_POSSIBLE
inline bool detect_amx_bf16() {
    if (!isa_supported(Isa::avx512)) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_bf16 = (d & (1u << 22)) != 0, amx_tile = (d & (1u << 24)) != 0;
    if (!amx_bf16 || !amx_tile) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    if ((a & (1u << 5)) == 0) return false;  // AVX512_BF16 (vcvtneps2bf16 for the packing)
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}
#endif

}  // namespace gemm_amx_detail

// Whether gemm_rows_amx can run here (checked, and the OS permission requested, once).
inline bool amx_bf16_available() {
#if RWKV_GEMM_AMX_POSSIBLE
    static const bool ok = gemm_amx_detail::detect_amx_bf16();
    return ok;
#else
    return false;
#endif
}

// Floats of scratch gemm_rows_amx needs for n activation rows of `cols` columns.
inline std::size_t gemm_amx_scratch_floats(int n, int cols) {
    using namespace gemm_amx_detail;
    const std::size_t kp = round_up(static_cast<std::size_t>(std::max(cols, 1)), tile_k);
    const std::size_t np = round_up(static_cast<std::size_t>(std::max(n, 1)), tile_rows);
    const std::size_t xpack = np * kp / 2;                                                        // bf16 X, VNNI pairs
    const std::size_t panel = std::min<std::size_t>(kp / tile_k, ks_steps) * tile_rows * tile_k;  // 2 weight tiles
    const std::size_t cstage = static_cast<std::size_t>(super_rows(n)) * round_up(np, 2 * tile_rows);  // C of a band
    return xpack + panel + cstage + 3 * 16;  // + 64-byte alignment of each
}

#if RWKV_GEMM_AMX_POSSIBLE
namespace gemm_amx_detail {

#define RWKV_GEMM_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

// Palette-1 tile configuration: byte 0 palette, 16..47 bytes per row of each tile, 48..63 rows.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// 16×16 dword transpose in registers: at each level h (8, 4, 2, 1) the off-diagonal h×h blocks of
// every 2h×2h block swap places.
RWKV_GEMM_AMX inline void transpose16(__m512i r[16]) {
    for (int h = 8; h >= 1; h /= 2) {
        alignas(64) std::int32_t lo_idx[16], hi_idx[16];
        for (int j = 0; j < 16; ++j) {
            lo_idx[j] = (j & h) ? 16 + j - h : j;
            hi_idx[j] = (j & h) ? 16 + j : j + h;
        }
        const __m512i il = _mm512_load_si512(lo_idx), ih = _mm512_load_si512(hi_idx);
        for (int i = 0; i < 16; ++i) {
            if (i & h) continue;
            const __m512i a = r[i], b = r[i + h];
            r[i] = _mm512_permutex2var_epi32(a, il, b);
            r[i + h] = _mm512_permutex2var_epi32(a, ih, b);
        }
    }
}

// X [n][K] fp32 -> per tile of 16 t: [Kp/2][16][2] bf16 (round to nearest even), zeros past K and n.
// Per tile and step of 32 columns: 16 rows of 16 bf16 pairs, transposed to 16 pairs × 16 t.
RWKV_GEMM_AMX inline void pack_x(const float* X, int n, int K, std::uint32_t* xp) {
    const std::size_t k_ = static_cast<std::size_t>(K), kp = round_up(k_, tile_k), pairs = kp / 2;
    const int t_tiles = (n + tile_rows - 1) / tile_rows, steps = static_cast<int>(kp) / tile_k;
    for (int j = 0; j < t_tiles; ++j) {
        std::uint32_t* dst = xp + static_cast<std::size_t>(j) * pairs * tile_rows;
        const int tv = std::min(tile_rows, n - j * tile_rows);
        for (int s = 0; s < steps; ++s) {
            const std::size_t c0 = static_cast<std::size_t>(s) * tile_k;
            const std::size_t left = k_ - c0;
            const auto mlo = static_cast<__mmask16>(left >= 16 ? 0xffffu : (1u << left) - 1u);
            const auto mhi = static_cast<__mmask16>(left >= 32 ? 0xffffu : left <= 16 ? 0u : (1u << (left - 16)) - 1u);
            __m512i r[16];
            for (int t = 0; t < tile_rows; ++t) {
                if (t >= tv) {
                    r[t] = _mm512_setzero_si512();
                    continue;
                }
                const float* src = X + static_cast<std::size_t>(j * tile_rows + t) * k_ + c0;
                const __m512 lo = _mm512_maskz_loadu_ps(mlo, src), hi = _mm512_maskz_loadu_ps(mhi, src + 16);
                r[t] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // dword p = (bf16 c0+2p, bf16 c0+2p+1)
            }
            transpose16(r);
            for (int p = 0; p < tile_rows; ++p)
                _mm512_store_si512(dst + (c0 / 2 + static_cast<std::size_t>(p)) * tile_rows, r[p]);
        }
    }
}

// C tiles (tmm 2·i + j for weight tile i, activation tile j) over all `steps` of 32 columns for MO
// weight tiles and MT activation tiles; a[i]: packed weight tile i (1 KiB per step), b[j]: the
// packed X of activation tile j (1 KiB per step). Stored to cstage, tile after tile.
template <int MO, int MT>
RWKV_GEMM_AMX void block(const std::uint16_t* const* a, const std::uint32_t* const* b, int steps, float* cstage,
                         bool load_c) {
    constexpr std::size_t c_floats = tile_rows * tile_rows;
    if (load_c) {
        _tile_loadd(0, cstage, 64);
        if constexpr (MT > 1) _tile_loadd(1, cstage + c_floats, 64);
        if constexpr (MO > 1) _tile_loadd(2, cstage + 2 * c_floats, 64);
        if constexpr (MO > 1 && MT > 1) _tile_loadd(3, cstage + 3 * c_floats, 64);
    } else {
        _tile_zero(0);
        if constexpr (MT > 1) _tile_zero(1);
        if constexpr (MO > 1) _tile_zero(2);
        if constexpr (MO > 1 && MT > 1) _tile_zero(3);
    }
    const std::uint16_t* a0 = a[0];
    const std::uint16_t* a1 = a[1];
    const std::uint32_t* b0 = b[0];
    const std::uint32_t* b1 = b[1];
    constexpr std::size_t a_step = tile_rows * tile_k, b_step = tile_rows * tile_rows;
    for (int s = 0; s < steps; ++s) {
        _tile_loadd(6, b0, 64);
        _tile_loadd(4, a0, 64);
        _tile_dpbf16ps(0, 4, 6);
        if constexpr (MT > 1) {
            _tile_loadd(7, b1, 64);
            _tile_dpbf16ps(1, 4, 7);
        }
        if constexpr (MO > 1) {
            _tile_loadd(5, a1, 64);
            _tile_dpbf16ps(2, 5, 6);
            if constexpr (MT > 1) _tile_dpbf16ps(3, 5, 7);
        }
        a0 += a_step;
        a1 += a_step;
        b0 += b_step;
        b1 += b_step;
    }
    _tile_stored(0, cstage, 64);
    if constexpr (MT > 1) _tile_stored(1, cstage + c_floats, 64);
    if constexpr (MO > 1) _tile_stored(2, cstage + 2 * c_floats, 64);
    if constexpr (MO > 1 && MT > 1) _tile_stored(3, cstage + 3 * c_floats, 64);
}

RWKV_GEMM_AMX inline void gemm_rows_amx_impl(const Matrix<bfloat16>& W, const float* X, int n, float* Y, int row_begin,
                                             int row_end, float* scratch) {
    const int K = W.cols;
    const std::size_t k_ = static_cast<std::size_t>(K), kp = round_up(k_, tile_k), pairs = kp / 2;
    const std::size_t np = round_up(static_cast<std::size_t>(n), tile_rows), ldy = static_cast<std::size_t>(W.rows);
    const std::size_t np2 = round_up(np, 2 * tile_rows);  // C floats per weight row in cstage
    const int steps = static_cast<int>(kp) / tile_k, full_steps = K / tile_k, k_tail = K % tile_k;
    const int chunk_steps = std::min(steps, ks_steps), band = super_rows(n);
    auto* xp = reinterpret_cast<std::uint32_t*>(align64(scratch));
    auto* panel = reinterpret_cast<std::uint16_t*>(align64(reinterpret_cast<float*>(xp) + np * pairs));
    float* cstage =
        align64(reinterpret_cast<float*>(panel) + static_cast<std::size_t>(chunk_steps) * tile_rows * tile_k);

    pack_x(X, n, K, xp);

    TileConfig cfg;
    for (int i = 0; i < 8; ++i) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = tile_rows;
    }
    _tile_loadconfig(&cfg);

    const int t_tiles = static_cast<int>(np) / tile_rows;
    constexpr std::size_t a_tile = tile_rows * tile_k;  // bf16 per packed weight tile
    // Bands of `band` rows; per band, chunks of ks_steps·32 columns (their packed X stays in L2
    // while every block of 32 rows of the band passes); the band's C tiles wait in cstage
    // ([32-row block][t pair][4 tiles]) between chunks and go to Y after the last.
    for (int ob = row_begin; ob < row_end; ob += band) {
        const int oe = std::min(row_end, ob + band);
        for (int c0 = 0; c0 < steps; c0 += chunk_steps) {
            const int cs_n = std::min(chunk_steps, steps - c0);
            for (int o0 = ob; o0 < oe; o0 += 2 * tile_rows) {
                const int mo = std::min(2, (oe - o0 + tile_rows - 1) / tile_rows);
                // The (up to) 32 rows of W in this chunk as whole tiles, [tile i][step][16 rows][32
                // columns] (1 KiB each, contiguous: W's rows are often a multiple of 4 KiB apart,
                // and 16 of them read in place would share one L1 set), zero past K and past oe.
                const std::uint16_t* a[2] = {panel, panel + static_cast<std::size_t>(cs_n) * a_tile};
                for (int i = 0; i < mo; ++i) {
                    const int r0 = o0 + i * tile_rows, valid = std::min(tile_rows, oe - r0);
                    std::uint16_t* d = panel + static_cast<std::size_t>(i) * static_cast<std::size_t>(cs_n) * a_tile;
                    for (int r = 0; r < tile_rows; ++r) {
                        std::uint16_t* dr = d + static_cast<std::size_t>(r) * tile_k;
                        if (r >= valid) {
                            for (int s = 0; s < cs_n; ++s) _mm512_store_si512(dr + s * a_tile, _mm512_setzero_si512());
                            continue;
                        }
                        const bfloat16* src = W.row(r0 + r);
                        for (int s = 0; s < cs_n; ++s) {
                            const int gs = c0 + s;
                            if (gs < full_steps) {
                                _mm512_store_si512(dr + s * a_tile, _mm512_loadu_si512(src + gs * tile_k));
                            } else {
                                const auto m = static_cast<__mmask32>((std::uint64_t{1} << k_tail) - 1u);
                                _mm512_store_si512(dr + s * a_tile, _mm512_maskz_loadu_epi16(m, src + gs * tile_k));
                            }
                        }
                    }
                }
                float* cblock = cstage + static_cast<std::size_t>(o0 - ob) * np2;
                // Blocks of kc steps: their weight tiles (32 KiB) stay in L1 while every block of
                // activations passes; the C tiles go through cstage between blocks.
                for (int s0 = 0; s0 < cs_n; s0 += kc_steps) {
                    const int ns = std::min(kc_steps, cs_n - s0);
                    const std::uint16_t* ak[2] = {a[0] + static_cast<std::size_t>(s0) * a_tile,
                                                  a[1] + static_cast<std::size_t>(s0) * a_tile};
                    const std::size_t boff = static_cast<std::size_t>(c0 + s0) * tile_rows * tile_rows;
                    const bool load_c = c0 + s0 != 0;
                    for (int j0 = 0; j0 < t_tiles; j0 += 2) {
                        const int mt = std::min(2, t_tiles - j0);
                        const std::uint32_t* b[2] = {xp + static_cast<std::size_t>(j0) * pairs * tile_rows + boff,
                                                     xp + static_cast<std::size_t>(j0 + 1) * pairs * tile_rows + boff};
                        float* cs = cblock + static_cast<std::size_t>(j0 / 2) * 4 * tile_rows * tile_rows;
                        if (mo == 2 && mt == 2) block<2, 2>(ak, b, ns, cs, load_c);
                        else if (mo == 2) block<2, 1>(ak, b, ns, cs, load_c);
                        else if (mt == 2) block<1, 2>(ak, b, ns, cs, load_c);
                        else block<1, 1>(ak, b, ns, cs, load_c);
                    }
                }
            }
        }
        for (int o0 = ob; o0 < oe; o0 += 2 * tile_rows) {
            const int mo = std::min(2, (oe - o0 + tile_rows - 1) / tile_rows);
            const float* cblock = cstage + static_cast<std::size_t>(o0 - ob) * np2;
            for (int j0 = 0; j0 < t_tiles; j0 += 2) {
                const int mt = std::min(2, t_tiles - j0);
                const float* cs = cblock + static_cast<std::size_t>(j0 / 2) * 4 * tile_rows * tile_rows;
                // Tile (2·i + j) holds Yᵀ[o0 + 16i + r][16(j0 + j) + c].
                for (int i = 0; i < mo; ++i) {
                    const int r0 = o0 + i * tile_rows, rv = std::min(tile_rows, oe - r0);
                    for (int j = 0; j < mt; ++j) {
                        const int t0 = (j0 + j) * tile_rows, tv = std::min(tile_rows, n - t0);
                        const float* c = cs + static_cast<std::size_t>(2 * i + j) * tile_rows * tile_rows;
                        for (int t = 0; t < tv; ++t) {
                            float* y = Y + static_cast<std::size_t>(t0 + t) * ldy + static_cast<std::size_t>(r0);
                            for (int r = 0; r < rv; ++r) y[r] = c[r * tile_rows + t];
                        }
                    }
                }
            }
        }
    }
    _tile_release();
}

#undef RWKV_GEMM_AMX

}  // namespace gemm_amx_detail
#endif  // RWKV_GEMM_AMX_POSSIBLE

// Y[t][o] = Σ_c W[o][c]·bf16(X[t][c]) for t < n and o in [row_begin, row_end), on AMX tiles. X is
// [n][W.cols] fp32, Y is [n][W.rows] (only the given columns are written); `scratch` holds
// gemm_amx_scratch_floats(n, W.cols) floats, private to the caller. Requires amx_bf16_available().
inline void gemm_rows_amx(const Matrix<bfloat16>& W, const float* X, int n, float* Y, int row_begin, int row_end,
                          float* scratch) {
    if (n <= 0 || row_begin >= row_end) return;
    if (W.cols == 0) {
        for (int t = 0; t < n; ++t)
            std::fill(Y + static_cast<std::size_t>(t) * static_cast<std::size_t>(W.rows) + row_begin,
                      Y + static_cast<std::size_t>(t) * static_cast<std::size_t>(W.rows) + row_end, 0.0f);
        return;
    }
#if RWKV_GEMM_AMX_POSSIBLE
    gemm_amx_detail::gemm_rows_amx_impl(W, X, n, Y, row_begin, row_end, scratch);
#else
    (void)X;
    (void)scratch;
#endif
}

}  // namespace rwkv::backend::cpu

#undef RWKV_GEMM_AMX_POSSIBLE
