#pragma once
// The WKV recurrence for one token (spec 4.5), per head h with state S[i key][j value]:
//   y[j] = Σ_i r[i]·(S[i][j] + u[i]·k[i]·v[j])      (reads the old state)
//   S[i][j] ← w[i]·S[i][j] + k[i]·v[j]             (decay on the key axis, after the read)
//
// wkv_step_reference is the plain loop the fast kernels are tested against. wkv_step picks, once
// per process, the best kernel this CPU runs: AVX-512 or AVX2+FMA through functions compiled
// with a target attribute (a header-only library cannot assume the user's -march), otherwise
// xsimd at the build's own architecture (SSE2, NEON, ...), otherwise the reference.
//
// The fast kernels make one pass over each head's state: for a strip of value columns held in
// registers, each key row i is loaded once, feeds the output (y += r[i]·S[i]) and is written back
// updated. The bonus term is hoisted: Σ_i r[i]·u[i]·k[i]·v[j] = (Σ_i r[i]·u[i]·k[i])·v[j].

#include <cstddef>
#include <cstdint>
#include <xsimd/xsimd.hpp>

#include "isa.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define RWKV_WKV_X86 1
#include <immintrin.h>
#else
#define RWKV_WKV_X86 0
#endif

namespace rwkv::backend::cpu {

inline void wkv_step_reference(int n_head, int head_size, const float* r, const float* k, const float* v,
                               const float* w, const float* u, float* S, float* y) {
    const std::size_t N = static_cast<std::size_t>(head_size);
    for (int h = 0; h < n_head; ++h) {
        const std::size_t base = static_cast<std::size_t>(h) * N;
        float* Sh = S + base * N;
        const float* vh = v + base;
        float* yh = y + base;
        for (std::size_t j = 0; j < N; ++j) yh[j] = 0.0f;
        for (std::size_t i = 0; i < N; ++i) {
            const float ri = r[base + i], ki = k[base + i], wi = w[base + i];
            const float rui = ri * u[base + i] * ki;
            float* Si = Sh + i * N;
            for (std::size_t j = 0; j < N; ++j) {
                const float s = Si[j];
                yh[j] += ri * s + rui * vh[j];
                Si[j] = s * wi + ki * vh[j];
            }
        }
    }
}

// The kernels wkv_step can run; `xsimd` means xsimd::default_arch of this build.
enum class wkv_isa { scalar, xsimd, avx2, avx512 };

namespace detail {

// Value columns [j0, j1) of one head, scalar; used for the tails the vector strips leave.
// `c` is the hoisted bonus Σ_i r[i]·u[i]·k[i].
inline void wkv_cols_scalar(std::size_t N, std::size_t j0, std::size_t j1, const float* r, const float* k,
                            const float* v, const float* w, float c, float* S, float* y) {
    for (std::size_t j = j0; j < j1; ++j) y[j] = 0.0f;
    for (std::size_t i = 0; i < N; ++i) {
        float* Si = S + i * N;
        for (std::size_t j = j0; j < j1; ++j) {
            const float s = Si[j];
            y[j] += r[i] * s;
            Si[j] = s * w[i] + k[i] * v[j];
        }
    }
    for (std::size_t j = j0; j < j1; ++j) y[j] += c * v[j];
}

#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
using wkv_batch = xsimd::batch<float>;

// NB registers of value columns starting at j0. With few registers one accumulator chain per
// register would be latency-bound, so even and odd key rows then accumulate separately.
template <std::size_t NB>
inline void wkv_strip_xsimd(std::size_t N, std::size_t j0, const float* r, const float* k, const float* v,
                            const float* w, float c, float* S, float* y) {
    using B = wkv_batch;
    constexpr std::size_t L = B::size, U = NB <= 2 ? 2 : 1;
    B vb[NB], acc[U][NB];
    RWKV_CPU_UNROLL(4)
    for (std::size_t b = 0; b < NB; ++b) {
        vb[b] = B::load_unaligned(v + j0 + b * L);
        RWKV_CPU_UNROLL(4)
        for (std::size_t q = 0; q < U; ++q) acc[q][b] = B(0.0f);
    }
    std::size_t i = 0;
    for (; i + U <= N; i += U) {
        RWKV_CPU_UNROLL(4)
        for (std::size_t q = 0; q < U; ++q) {
            const B ri(r[i + q]), ki(k[i + q]), wi(w[i + q]);
            float* Si = S + (i + q) * N + j0;
            RWKV_CPU_UNROLL(4)
            for (std::size_t b = 0; b < NB; ++b) {
                const B s = B::load_unaligned(Si + b * L);
                acc[q][b] = xsimd::fma(ri, s, acc[q][b]);
                xsimd::fma(s, wi, ki * vb[b]).store_unaligned(Si + b * L);
            }
        }
    }
    for (; i < N; ++i) {
        const B ri(r[i]), ki(k[i]), wi(w[i]);
        float* Si = S + i * N + j0;
        RWKV_CPU_UNROLL(4)
        for (std::size_t b = 0; b < NB; ++b) {
            const B s = B::load_unaligned(Si + b * L);
            acc[0][b] = xsimd::fma(ri, s, acc[0][b]);
            xsimd::fma(s, wi, ki * vb[b]).store_unaligned(Si + b * L);
        }
    }
    const B cb(c);
    RWKV_CPU_UNROLL(4)
    for (std::size_t b = 0; b < NB; ++b) {
        B sum = acc[0][b];
        RWKV_CPU_UNROLL(4)
        for (std::size_t q = 1; q < U; ++q) sum += acc[q][b];
        xsimd::fma(cb, vb[b], sum).store_unaligned(y + j0 + b * L);
    }
}

inline void wkv_step_xsimd(int n_head, int head_size, const float* r, const float* k, const float* v, const float* w,
                           const float* u, float* S, float* y) {
    using B = wkv_batch;
    constexpr std::size_t L = B::size;
    const std::size_t N = static_cast<std::size_t>(head_size);
    for (int h = 0; h < n_head; ++h) {
        const std::size_t o = static_cast<std::size_t>(h) * N;
        const float *rh = r + o, *kh = k + o, *vh = v + o, *wh = w + o, *uh = u + o;
        float *Sh = S + o * N, *yh = y + o;
        B cv(0.0f);
        std::size_t i = 0;
        for (; i + L <= N; i += L)
            cv = xsimd::fma(B::load_unaligned(rh + i) * B::load_unaligned(uh + i), B::load_unaligned(kh + i), cv);
        float c = xsimd::hadd(cv);
        for (; i < N; ++i) c += rh[i] * uh[i] * kh[i];
        // Strips of 4 registers, then one strip of the remaining whole registers, then the
        // columns that fill no register.
        const std::size_t wide = N / (4 * L), rest = N % (4 * L) / L, j1 = N - N % L;
        for (std::size_t s = 0; s < wide; ++s) wkv_strip_xsimd<4>(N, s * 4 * L, rh, kh, vh, wh, c, Sh, yh);
        const std::size_t j0 = wide * 4 * L;
        if (rest == 3) wkv_strip_xsimd<3>(N, j0, rh, kh, vh, wh, c, Sh, yh);
        if (rest == 2) wkv_strip_xsimd<2>(N, j0, rh, kh, vh, wh, c, Sh, yh);
        if (rest == 1) wkv_strip_xsimd<1>(N, j0, rh, kh, vh, wh, c, Sh, yh);
        if (j1 < N) wkv_cols_scalar(N, j1, N, rh, kh, vh, wh, c, Sh, yh);
    }
}
#endif

#if RWKV_WKV_X86
// AVX-512: strips of up to 4 registers = 64 columns, so a 64-wide head is one strip whose rows
// are contiguous. Only a strip that ends in a partial register uses masked loads/stores (`last`
// masks its final register): masked stores measured slower than plain ones on full strips.
template <int NB, bool Tail>
__attribute__((target("avx512f"), always_inline)) inline __m512 wkv_load_avx512(const float* p, __mmask16 m) {
    if constexpr (Tail) return _mm512_maskz_loadu_ps(m, p);
    else return _mm512_loadu_ps(p);
}

template <int NB, bool Tail>
__attribute__((target("avx512f"), always_inline)) inline void wkv_store_avx512(float* p, __mmask16 m, __m512 x) {
    if constexpr (Tail) _mm512_mask_storeu_ps(p, m, x);
    else _mm512_storeu_ps(p, x);
}

template <int NB, bool Tail>
__attribute__((target("avx512f"))) inline void wkv_strip_avx512(std::size_t N, std::size_t j0, __mmask16 last,
                                                                const float* r, const float* k, const float* v,
                                                                const float* w, float c, float* S, float* y) {
    constexpr int U = NB <= 2 ? 2 : 1;
    __mmask16 m[NB];
    __m512 vb[NB], acc[U][NB];
    RWKV_CPU_UNROLL(4)
    for (int b = 0; b < NB; ++b) {
        m[b] = b == NB - 1 ? last : static_cast<__mmask16>(0xFFFF);
        vb[b] = wkv_load_avx512<NB, Tail>(v + j0 + 16 * b, m[b]);
        RWKV_CPU_UNROLL(4)
        for (int q = 0; q < U; ++q) acc[q][b] = _mm512_setzero_ps();
    }
    std::size_t i = 0;
    for (; i < N; i += U) {
        // With U = 2 an odd N leaves one row: the second half of the last step is skipped.
        for (int q = 0; q < U && i + q < N; ++q) {
            const __m512 ri = _mm512_set1_ps(r[i + q]), ki = _mm512_set1_ps(k[i + q]), wi = _mm512_set1_ps(w[i + q]);
            float* Si = S + (i + q) * N + j0;
            RWKV_CPU_UNROLL(4)
            for (int b = 0; b < NB; ++b) {
                const __m512 s = wkv_load_avx512<NB, Tail>(Si + 16 * b, m[b]);
                acc[q][b] = _mm512_fmadd_ps(ri, s, acc[q][b]);
                wkv_store_avx512<NB, Tail>(Si + 16 * b, m[b], _mm512_fmadd_ps(s, wi, _mm512_mul_ps(ki, vb[b])));
            }
        }
    }
    const __m512 cb = _mm512_set1_ps(c);
    RWKV_CPU_UNROLL(4)
    for (int b = 0; b < NB; ++b) {
        __m512 sum = acc[0][b];
        RWKV_CPU_UNROLL(4)
        for (int q = 1; q < U; ++q) sum = _mm512_add_ps(sum, acc[q][b]);
        wkv_store_avx512<NB, Tail>(y + j0 + 16 * b, m[b], _mm512_fmadd_ps(cb, vb[b], sum));
    }
}

__attribute__((target("avx512f"))) inline void wkv_step_avx512(int n_head, int head_size, const float* r,
                                                               const float* k, const float* v, const float* w,
                                                               const float* u, float* S, float* y) {
    const std::size_t N = static_cast<std::size_t>(head_size);
    for (int h = 0; h < n_head; ++h) {
        const std::size_t o = static_cast<std::size_t>(h) * N;
        const float *rh = r + o, *kh = k + o, *vh = v + o, *wh = w + o, *uh = u + o;
        float *Sh = S + o * N, *yh = y + o;
        __m512 cv = _mm512_setzero_ps();
        for (std::size_t i = 0; i < N; i += 16) {
            const std::size_t n = N - i < 16 ? N - i : 16;
            const auto mi = static_cast<__mmask16>((1u << n) - 1u);
            cv = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mi, rh + i), _mm512_maskz_loadu_ps(mi, uh + i)),
                                 _mm512_maskz_loadu_ps(mi, kh + i), cv);
        }
        // Horizontal sum by lane swaps. The masked forms take an explicit source register: GCC 12's
        // unmasked ones (and _mm512_reduce_add_ps) pass an undefined one and warn about it.
        cv = _mm512_add_ps(cv, _mm512_mask_shuffle_f32x4(cv, 0xFFFF, cv, cv, 0x4E));
        cv = _mm512_add_ps(cv, _mm512_mask_shuffle_f32x4(cv, 0xFFFF, cv, cv, 0xB1));
        __m128 c4 = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xF, cv, 0);
        c4 = _mm_add_ps(c4, _mm_movehl_ps(c4, c4));
        const float c = _mm_cvtss_f32(_mm_add_ss(c4, _mm_movehdup_ps(c4)));
        for (std::size_t j0 = 0; j0 < N; j0 += 64) {
            const std::size_t width = N - j0 < 64 ? N - j0 : 64;
            const std::size_t nb = (width + 15) / 16, tail = width - 16 * (nb - 1);
            const auto last = static_cast<__mmask16>((1u << tail) - 1u);
            if (width == 64) {  // the common head size 64 takes only this branch
                wkv_strip_avx512<4, false>(N, j0, last, rh, kh, vh, wh, c, Sh, yh);
                continue;
            }
            switch (nb) {
                case 4: wkv_strip_avx512<4, true>(N, j0, last, rh, kh, vh, wh, c, Sh, yh); break;
                case 3: wkv_strip_avx512<3, true>(N, j0, last, rh, kh, vh, wh, c, Sh, yh); break;
                case 2: wkv_strip_avx512<2, true>(N, j0, last, rh, kh, vh, wh, c, Sh, yh); break;
                default: wkv_strip_avx512<1, true>(N, j0, last, rh, kh, vh, wh, c, Sh, yh); break;
            }
        }
    }
}

// AVX2 has 16 registers: strips of up to 4 × 8 = 32 columns keep v and the sums resident.
__attribute__((target("avx2,fma"))) inline __m256i wkv_mask_avx2(std::size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// One key row of a strip: full registers use plain loads/stores, the last one is masked
// (its tail may be all 8 lanes).
template <int NB>
__attribute__((target("avx2,fma"), always_inline)) inline void wkv_row_avx2(float* Si, __m256i lm, float ri_, float ki_,
                                                                            float wi_, const __m256* vb, __m256* a) {
    const __m256 ri = _mm256_set1_ps(ri_), ki = _mm256_set1_ps(ki_), wi = _mm256_set1_ps(wi_);
    RWKV_CPU_UNROLL(4)
    for (int b = 0; b < NB - 1; ++b) {
        const __m256 s = _mm256_loadu_ps(Si + 8 * b);
        a[b] = _mm256_fmadd_ps(ri, s, a[b]);
        _mm256_storeu_ps(Si + 8 * b, _mm256_fmadd_ps(s, wi, _mm256_mul_ps(ki, vb[b])));
    }
    float* St = Si + 8 * (NB - 1);
    const __m256 s = _mm256_maskload_ps(St, lm);
    a[NB - 1] = _mm256_fmadd_ps(ri, s, a[NB - 1]);
    _mm256_maskstore_ps(St, lm, _mm256_fmadd_ps(s, wi, _mm256_mul_ps(ki, vb[NB - 1])));
}

template <int NB>
__attribute__((target("avx2,fma"))) inline void wkv_strip_avx2(std::size_t N, std::size_t j0, std::size_t tail,
                                                               const float* r, const float* k, const float* v,
                                                               const float* w, float c, float* S, float* y) {
    constexpr int U = NB <= 2 ? 2 : 1;
    const __m256i lm = wkv_mask_avx2(tail);
    __m256 vb[NB], acc[U][NB];
    RWKV_CPU_UNROLL(4)
    for (int b = 0; b < NB; ++b) {
        vb[b] = b == NB - 1 ? _mm256_maskload_ps(v + j0 + 8 * b, lm) : _mm256_loadu_ps(v + j0 + 8 * b);
        RWKV_CPU_UNROLL(4)
        for (int q = 0; q < U; ++q) acc[q][b] = _mm256_setzero_ps();
    }
    std::size_t i = 0;
    for (; i + U <= N; i += U) RWKV_CPU_UNROLL(4)
    for (int q = 0; q < U; ++q) wkv_row_avx2<NB>(S + (i + q) * N + j0, lm, r[i + q], k[i + q], w[i + q], vb, acc[q]);
    for (; i < N; ++i) wkv_row_avx2<NB>(S + i * N + j0, lm, r[i], k[i], w[i], vb, acc[0]);
    const __m256 cb = _mm256_set1_ps(c);
    RWKV_CPU_UNROLL(4)
    for (int b = 0; b < NB; ++b) {
        __m256 sum = acc[0][b];
        RWKV_CPU_UNROLL(4)
        for (int q = 1; q < U; ++q) sum = _mm256_add_ps(sum, acc[q][b]);
        sum = _mm256_fmadd_ps(cb, vb[b], sum);
        if (b == NB - 1) _mm256_maskstore_ps(y + j0 + 8 * b, lm, sum);
        else _mm256_storeu_ps(y + j0 + 8 * b, sum);
    }
}

__attribute__((target("avx2,fma"))) inline void wkv_step_avx2(int n_head, int head_size, const float* r, const float* k,
                                                              const float* v, const float* w, const float* u, float* S,
                                                              float* y) {
    const std::size_t N = static_cast<std::size_t>(head_size);
    for (int h = 0; h < n_head; ++h) {
        const std::size_t o = static_cast<std::size_t>(h) * N;
        const float *rh = r + o, *kh = k + o, *vh = v + o, *wh = w + o, *uh = u + o;
        float *Sh = S + o * N, *yh = y + o;
        __m256 cv = _mm256_setzero_ps();
        std::size_t i = 0;
        for (; i + 8 <= N; i += 8)
            cv = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(rh + i), _mm256_loadu_ps(uh + i)),
                                 _mm256_loadu_ps(kh + i), cv);
        const __m128 c4 = _mm_add_ps(_mm256_castps256_ps128(cv), _mm256_extractf128_ps(cv, 1));
        const __m128 c2 = _mm_add_ps(c4, _mm_movehl_ps(c4, c4));
        float c = _mm_cvtss_f32(_mm_add_ss(c2, _mm_movehdup_ps(c2)));
        for (; i < N; ++i) c += rh[i] * uh[i] * kh[i];
        for (std::size_t j0 = 0; j0 < N; j0 += 32) {
            const std::size_t width = N - j0 < 32 ? N - j0 : 32;
            const std::size_t nb = (width + 7) / 8, tail = width - 8 * (nb - 1);
            switch (nb) {
                case 4: wkv_strip_avx2<4>(N, j0, tail, rh, kh, vh, wh, c, Sh, yh); break;
                case 3: wkv_strip_avx2<3>(N, j0, tail, rh, kh, vh, wh, c, Sh, yh); break;
                case 2: wkv_strip_avx2<2>(N, j0, tail, rh, kh, vh, wh, c, Sh, yh); break;
                default: wkv_strip_avx2<1>(N, j0, tail, rh, kh, vh, wh, c, Sh, yh); break;
            }
        }
    }
}
#endif

}  // namespace detail

// Whether this CPU (and this build) can run the given kernel.
inline bool wkv_isa_supported(wkv_isa isa) {
    switch (isa) {
        case wkv_isa::scalar: return true;
        case wkv_isa::xsimd:
#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
            return true;
#else
            return false;
#endif
        case wkv_isa::avx2:
#if RWKV_WKV_X86
            __builtin_cpu_init();  // may run before the constructor that normally does it
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
            return false;
#endif
        case wkv_isa::avx512:
#if RWKV_WKV_X86
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx512f");
#else
            return false;
#endif
    }
    return false;
}

// The kernel wkv_step uses: detected once per process.
// Capped by active_isa() (RWKV_ISA), like every CPU kernel: generic means xsimd (or the
// reference where xsimd has no architecture).
inline wkv_isa wkv_best_isa() {
    static const wkv_isa best = [] {
        const Isa cap = active_isa();
        for (wkv_isa isa : {wkv_isa::avx512, wkv_isa::avx2, wkv_isa::xsimd}) {
            if (isa == wkv_isa::avx512 && cap < Isa::avx512) continue;
            if (isa == wkv_isa::avx2 && cap < Isa::avx2) continue;
            if (wkv_isa_supported(isa)) return isa;
        }
        return wkv_isa::scalar;
    }();
    return best;
}

// One token with an explicit kernel (tests and benchmarks compare them); the caller checks
// wkv_isa_supported. An unsupported choice runs the reference rather than faulting.
inline void wkv_step_isa(wkv_isa isa, int n_head, int head_size, const float* r, const float* k, const float* v,
                         const float* w, const float* u, float* S, float* y) {
    switch (wkv_isa_supported(isa) ? isa : wkv_isa::scalar) {
#if RWKV_WKV_X86
        case wkv_isa::avx512: return detail::wkv_step_avx512(n_head, head_size, r, k, v, w, u, S, y);
        case wkv_isa::avx2: return detail::wkv_step_avx2(n_head, head_size, r, k, v, w, u, S, y);
#endif
#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
        case wkv_isa::xsimd: return detail::wkv_step_xsimd(n_head, head_size, r, k, v, w, u, S, y);
#endif
        default: return wkv_step_reference(n_head, head_size, r, k, v, w, u, S, y);
    }
}

// One token for all heads: r, k, v, w (decay exp(-exp(ω)), not its log), u are [n_head·head_size],
// S is [n_head][head_size][head_size] and is updated in place, y [n_head·head_size] is written.
inline void wkv_step(int n_head, int head_size, const float* r, const float* k, const float* v, const float* w,
                     const float* u, float* S, float* y) {
    wkv_step_isa(wkv_best_isa(), n_head, head_size, r, k, v, w, u, S, y);
}

}  // namespace rwkv::backend::cpu
