#pragma once
// The CPU backend's elementwise kernels (tanh, silu, relu², the sigmoid gate, residual add, the
// token mixes, the x060 decay) and the row statistics of LayerNorm / GroupNorm, in explicit SIMD
// so that their speed does not depend on the flags the user compiles with: a header-only library
// is built with the user's -O level and -m flags, and the auto-vectoriser gives these loops SSE2
// at -O3, nothing at -O2 (the default of CMake's RelWithDebInfo, Debian's and Fedora's packages)
// and no exp/tanh ever (libm is called per element).
//
// One set of formulas (elementwise_leaf.inc: exp within 2 ulp, tanh within 2 ulp, the norms'
// 16-lane sums) is compiled per instruction-set leaf: AVX-512 and AVX2+FMA with target
// attributes, and a generic leaf over xsimd's default batch for the build (SSE2, NEON, ...; one
// scalar lane where xsimd knows no architecture). The leaf is picked at run time by Isa
// (active_isa(): the best the CPU has, capped by RWKV_ISA). Results do not depend on the thread
// count (these run on the calling thread), only on the leaf.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "isa.hpp"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#if RWKV_ISA_X86
#include <immintrin.h>
#endif

// Whether the build itself targets FMA, so that the compiler contracts the reference backend's
// plain a·b + c loops into FMAs (see the mixes in elementwise_leaf.inc).
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define RWKV_EW_BUILD_FMA 1
#else
#define RWKV_EW_BUILD_FMA 0
#endif

namespace rwkv::backend::cpu {

namespace ew_generic {
#define RWKV_EW_TARGET
#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
struct V {
    using f = xsimd::batch<float>;
    using i32 = xsimd::batch<std::int32_t>;
    static constexpr std::size_t lanes = f::size;
    static f load(const float* p) { return f::load_unaligned(p); }
    static f load_n(const float* p, std::size_t n) {
        float b[lanes] = {};
        std::memcpy(b, p, n * sizeof(float));
        return f::load_unaligned(b);
    }
    static void store(float* p, f v) { v.store_unaligned(p); }
    static void store_n(float* p, f v, std::size_t n) {
        float b[lanes];
        v.store_unaligned(b);
        std::memcpy(p, b, n * sizeof(float));
    }
    static f set(float x) { return f(x); }
    static f add(f a, f b) { return a + b; }
    static f sub(f a, f b) { return a - b; }
    static f mul(f a, f b) { return a * b; }
#if defined(__aarch64__)
    // xsimd (Debian 12's) divides float batches on ARM by a reciprocal estimate and two Newton
    // steps, up to about 1 ulp off; AArch64 has an exact, correctly rounded vector divide (found by
    // test_elementwise's silu bound under qemu: 2.7 ulp against 2).
    static f div(f a, f b) { return vdivq_f32(a, b); }
#else
    static f div(f a, f b) { return a / b; }
#endif
    static f fma(f a, f b, f c) { return xsimd::fma(a, b, c); }
    static f min(f a, f b) { return xsimd::select(a < b, a, b); }
    static f max(f a, f b) { return xsimd::select(a > b, a, b); }
#if defined(__AVX512F__)
    // A build for AVX-512 (-march=native): xsimd's AVX-512 nearbyint and float->int conversion
    // pass GCC 12 an undefined operand it warns about (an error under -Werror), so these two go
    // lane by lane; this leaf only runs there when RWKV_ISA=generic asks for it.
    static f round(f x) {
        float b[lanes];
        x.store_unaligned(b);
        for (float& v : b) v = std::nearbyint(v);
        return f::load_unaligned(b);
    }
    static f pow2(f n) {
        float b[lanes];
        n.store_unaligned(b);
        for (float& v : b) {
            const auto e = static_cast<std::uint32_t>(static_cast<std::int32_t>(v) + 127) << 23;
            std::memcpy(&v, &e, sizeof v);
        }
        return f::load_unaligned(b);
    }
#else
    static f round(f x) { return xsimd::nearbyint(x); }
    static f pow2(f n) {
        const i32 e = (xsimd::to_int(n) + i32(127)) << 23;
#if XSIMD_VERSION_MAJOR >= 9
        return xsimd::bitwise_cast<float>(e);
#else
        return xsimd::bitwise_cast<f>(e);
#endif
    }
#endif
    static f abs(f x) { return xsimd::abs(x); }
    static f copysign(f mag, f sign) { return xsimd::copysign(mag, sign); }
    static f select_lt(f a, f b, f then_, f else_) { return xsimd::select(a < b, then_, else_); }
    static f unfused(f x) { return x; }  // unused: the generic mixes are plain loops (elementwise::lerp)
};
#else
struct V {  // one scalar lane
    using f = float;
    static constexpr std::size_t lanes = 1;
    static f load(const float* p) { return *p; }
    static f load_n(const float* p, std::size_t) { return *p; }
    static void store(float* p, f v) { *p = v; }
    static void store_n(float* p, f v, std::size_t) { *p = v; }
    static f set(float x) { return x; }
    static f add(f a, f b) { return a + b; }
    static f sub(f a, f b) { return a - b; }
    static f mul(f a, f b) { return a * b; }
    static f div(f a, f b) { return a / b; }
    static f fma(f a, f b, f c) { return std::fma(a, b, c); }
    static f min(f a, f b) { return a < b ? a : b; }
    static f max(f a, f b) { return a > b ? a : b; }
    static f round(f x) { return std::nearbyint(x); }
    static f pow2(f n) {
        const auto e = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
        float r;
        std::memcpy(&r, &e, sizeof r);
        return r;
    }
    static f abs(f x) { return std::fabs(x); }
    static f copysign(f mag, f sign) { return std::copysign(mag, sign); }
    static f select_lt(f a, f b, f then_, f else_) { return a < b ? then_ : else_; }
    static f unfused(f x) { return x; }
};
#endif
#include "elementwise_leaf.inc"
#undef RWKV_EW_TARGET
}  // namespace ew_generic

#if RWKV_ISA_X86
namespace ew_avx2 {
#define RWKV_EW_TARGET __attribute__((target("avx2,fma,f16c")))
struct V {
    using f = __m256;
    static constexpr std::size_t lanes = 8;
    RWKV_EW_TARGET static __m256i mask(std::size_t n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    RWKV_EW_TARGET static f load(const float* p) { return _mm256_loadu_ps(p); }
    RWKV_EW_TARGET static f load_n(const float* p, std::size_t n) { return _mm256_maskload_ps(p, mask(n)); }
    RWKV_EW_TARGET static void store(float* p, f v) { _mm256_storeu_ps(p, v); }
    RWKV_EW_TARGET static void store_n(float* p, f v, std::size_t n) { _mm256_maskstore_ps(p, mask(n), v); }
    RWKV_EW_TARGET static f set(float x) { return _mm256_set1_ps(x); }
    RWKV_EW_TARGET static f add(f a, f b) { return _mm256_add_ps(a, b); }
    RWKV_EW_TARGET static f sub(f a, f b) { return _mm256_sub_ps(a, b); }
    RWKV_EW_TARGET static f mul(f a, f b) { return _mm256_mul_ps(a, b); }
    RWKV_EW_TARGET static f div(f a, f b) { return _mm256_div_ps(a, b); }
    RWKV_EW_TARGET static f fma(f a, f b, f c) { return _mm256_fmadd_ps(a, b, c); }
    RWKV_EW_TARGET static f min(f a, f b) { return _mm256_min_ps(a, b); }
    RWKV_EW_TARGET static f max(f a, f b) { return _mm256_max_ps(a, b); }
    RWKV_EW_TARGET static f round(f x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    RWKV_EW_TARGET static f pow2(f n) {
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    }
    RWKV_EW_TARGET static f abs(f x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
    RWKV_EW_TARGET static f copysign(f mag, f sign) {
        const f s = _mm256_set1_ps(-0.0f);
        return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sign));
    }
    RWKV_EW_TARGET static f select_lt(f a, f b, f then_, f else_) {
        return _mm256_blendv_ps(else_, then_, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
    }
    // An empty asm the value must pass through: the compiler cannot fuse the product into a
    // following add (GCC contracts even intrinsics under its default -ffp-contract=fast).
    RWKV_EW_TARGET static f unfused(f x) {
        __asm__("" : "+x"(x));
        return x;
    }
};
#include "elementwise_leaf.inc"
#undef RWKV_EW_TARGET
}  // namespace ew_avx2

namespace ew_avx512 {
#define RWKV_EW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
struct V {
    using f = __m512;
    static constexpr std::size_t lanes = 16;
    static constexpr __mmask16 all = 0xFFFF;  // the masked forms: GCC 12 warns on the unmasked ones'
                                              // undefined pass-through operand
    RWKV_EW_TARGET static __mmask16 mask(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
    RWKV_EW_TARGET static f load(const float* p) { return _mm512_loadu_ps(p); }
    RWKV_EW_TARGET static f load_n(const float* p, std::size_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
    RWKV_EW_TARGET static void store(float* p, f v) { _mm512_storeu_ps(p, v); }
    RWKV_EW_TARGET static void store_n(float* p, f v, std::size_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }
    RWKV_EW_TARGET static f set(float x) { return _mm512_set1_ps(x); }
    RWKV_EW_TARGET static f add(f a, f b) { return _mm512_add_ps(a, b); }
    RWKV_EW_TARGET static f sub(f a, f b) { return _mm512_sub_ps(a, b); }
    RWKV_EW_TARGET static f mul(f a, f b) { return _mm512_mul_ps(a, b); }
    RWKV_EW_TARGET static f div(f a, f b) { return _mm512_div_ps(a, b); }
    RWKV_EW_TARGET static f fma(f a, f b, f c) { return _mm512_fmadd_ps(a, b, c); }
    RWKV_EW_TARGET static f min(f a, f b) { return _mm512_maskz_min_ps(all, a, b); }
    RWKV_EW_TARGET static f max(f a, f b) { return _mm512_maskz_max_ps(all, a, b); }
    RWKV_EW_TARGET static f round(f x) {
        return _mm512_maskz_roundscale_ps(all, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    RWKV_EW_TARGET static f pow2(f n) {
        const __m512i e = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(all, n), _mm512_set1_epi32(127));
        return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, e, 23));
    }
    RWKV_EW_TARGET static f abs(f x) {
        return _mm512_castsi512_ps(_mm512_maskz_and_epi32(all, _mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
    }
    RWKV_EW_TARGET static f copysign(f mag, f sign) {
        const __m512i s = _mm512_set1_epi32(static_cast<int>(0x80000000u));
        return _mm512_castsi512_ps(_mm512_maskz_or_epi32(all,
                                                         _mm512_maskz_andnot_epi32(all, s, _mm512_castps_si512(mag)),
                                                         _mm512_maskz_and_epi32(all, s, _mm512_castps_si512(sign))));
    }
    RWKV_EW_TARGET static f select_lt(f a, f b, f then_, f else_) {
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), else_, then_);
    }
    RWKV_EW_TARGET static f unfused(f x) {  // see ew_avx2::V::unfused
        __asm__("" : "+v"(x));
        return x;
    }
};
#include "elementwise_leaf.inc"
#undef RWKV_EW_TARGET
}  // namespace ew_avx512
#endif  // RWKV_ISA_X86

// The public kernels. Each takes the path explicitly (tests compare them) and defaults to
// active_isa(); a path the CPU lacks falls back to the best one below it.
namespace elementwise {

inline Isa usable(Isa isa) {
    while (isa != Isa::generic && !isa_supported(isa)) isa = static_cast<Isa>(static_cast<int>(isa) - 1);
    return isa;
}

#if RWKV_ISA_X86
// `call` is written once and resolved inside each leaf's namespace.
#define RWKV_EW_DISPATCH(isa, call)     \
    switch (usable(isa)) {              \
        case Isa::avx512: {             \
            using namespace ew_avx512;  \
            return call;                \
        }                               \
        case Isa::avx2: {               \
            using namespace ew_avx2;    \
            return call;                \
        }                               \
        default: {                      \
            using namespace ew_generic; \
            return call;                \
        }                               \
    }
#else
#define RWKV_EW_DISPATCH(isa, call) \
    {                               \
        (void)(isa);                \
        using namespace ew_generic; \
        return call;                \
    }
#endif

// x[i] = tanh(x[i]) for n values.
inline void tanh(float* x, std::size_t n, Isa isa = active_isa()) { RWKV_EW_DISPATCH(isa, map1<TanhOp>(x, n)) }

// x[i] = x[i] / (1 + e^{-x[i]}) (SiLU) for n values.
inline void silu(float* x, std::size_t n, Isa isa = active_isa()) { RWKV_EW_DISPATCH(isa, map1<SiluOp>(x, n)) }

// x[i] = max(x[i], 0)² for n values.
inline void relu_sq(float* x, std::size_t n, Isa isa = active_isa()) { RWKV_EW_DISPATCH(isa, map1<ReluSqOp>(x, n)) }

// x[i] += y[i] for n values.
inline void add(float* x, const float* y, std::size_t n, Isa isa = active_isa()) {
    RWKV_EW_DISPATCH(isa, map2<AddOp>(x, y, n))
}

// x[i] += v[i] / (1 + e^{-r[i]}) (a sigmoid-gated residual) for n values.
inline void sigmoid_gate_add(float* x, const float* r, const float* v, std::size_t n, Isa isa = active_isa()) {
    RWKV_EW_DISPATCH(isa, map3<SigmoidGateAddOp>(x, r, v, n))
}

// x060 decay (spec 4.4) for `rows` rows of A: log_w = λ = -exp(d + w), then w = exp(λ); d is [A].
inline void decay(const float* d, std::size_t rows, std::size_t A, float* w, float* log_w, Isa isa = active_isa()) {
    RWKV_EW_DISPATCH(isa, decay_rows(d, rows, A, w, log_w))
}

// The token mixes over `rows` rows of C, bit for bit the reference backend's plain loops as the
// compiler builds them (products unfused, or contracted the compilers' default way where the
// build targets FMA; the generic path is the same plain loop as the reference). z, prev, out: [rows][C]; the column
// vector: [C].
//   lerp:     out = z·μ + prev·(1 - μ)
//   mix:      out = z + (prev - z)·m
//   mix_lora: out = z + (prev - z)·(m + out)      (x060's ddlerp, out holding the LoRA term)
inline void lerp(const float* z, const float* prev, const float* mu, std::size_t rows, std::size_t C, float* out,
                 Isa isa = active_isa()) {
#if RWKV_ISA_X86
    if (usable(isa) == Isa::avx512) return ew_avx512::mix_rows<ew_avx512::LerpOp, false>(z, prev, mu, rows, C, out);
    if (usable(isa) == Isa::avx2) return ew_avx2::mix_rows<ew_avx2::LerpOp, false>(z, prev, mu, rows, C, out);
#endif
    (void)isa;
    for (std::size_t t = 0; t < rows; ++t)
        for (std::size_t i = 0; i < C; ++i) out[t * C + i] = z[t * C + i] * mu[i] + prev[t * C + i] * (1.0f - mu[i]);
}

inline void mix(const float* z, const float* prev, const float* m, std::size_t rows, std::size_t C, float* out,
                Isa isa = active_isa()) {
#if RWKV_ISA_X86
    if (usable(isa) == Isa::avx512) return ew_avx512::mix_rows<ew_avx512::MixOp, false>(z, prev, m, rows, C, out);
    if (usable(isa) == Isa::avx2) return ew_avx2::mix_rows<ew_avx2::MixOp, false>(z, prev, m, rows, C, out);
#endif
    (void)isa;
    for (std::size_t t = 0; t < rows; ++t)
        for (std::size_t i = 0; i < C; ++i) {
            const std::size_t o = t * C + i;
            out[o] = z[o] + (prev[o] - z[o]) * m[i];
        }
}

inline void mix_lora(const float* z, const float* prev, const float* m, std::size_t rows, std::size_t C, float* out,
                     Isa isa = active_isa()) {
#if RWKV_ISA_X86
    if (usable(isa) == Isa::avx512) return ew_avx512::mix_rows<ew_avx512::MixLoraOp, true>(z, prev, m, rows, C, out);
    if (usable(isa) == Isa::avx2) return ew_avx2::mix_rows<ew_avx2::MixLoraOp, true>(z, prev, m, rows, C, out);
#endif
    (void)isa;
    for (std::size_t t = 0; t < rows; ++t)
        for (std::size_t i = 0; i < C; ++i) {
            const std::size_t o = t * C + i;
            out[o] = z[o] + (prev[o] - z[o]) * (m[i] + out[o]);
        }
}

// out[0..n) = ((x - mean) / sqrt(var + eps)·weight + bias)·gate (gate null: none), biased
// variance, mean and variance in two passes; out may alias x.
inline void norm_row(const float* x, float* out, std::size_t n, const float* weight, const float* bias, float eps,
                     const float* gate, Isa isa = active_isa()) {
    RWKV_EW_DISPATCH(isa, norm_row_leaf(x, out, n, weight, bias, eps, gate))
}

#undef RWKV_EW_DISPATCH

}  // namespace elementwise

}  // namespace rwkv::backend::cpu

#undef RWKV_EW_BUILD_FMA
