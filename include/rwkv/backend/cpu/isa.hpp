#pragma once
// The CPU feature probe every CPU kernel honours: which SIMD path this CPU and OS can run
// (cpuid + xgetbv), and the path in use — the best one, capped by the environment variable
// RWKV_ISA=generic|avx2|avx512 so that any path can be forced for tests, comparisons or to work
// around a bad one without rebuilding. "generic" is the xsimd / plain-loop code compiled for the
// build's own architecture (SSE2, NEON, ...).

#include <algorithm>
#include <cstdlib>
#include <string_view>

// RWKV_CPU_UNROLL(n): fully unroll the next short loop over a kernel's accumulator array, so the
// accumulators live in registers whatever the user's flags (GCC 12 at -O2 neither unrolls such loops
// nor keeps the arrays in registers: a load and a store around every FMA, kernels up to 3x slower).
// A header-only library is compiled with the user's flags, so hot loops must not depend on them.
// nvcc's front end rejects GCC's spelling and its own would reach the host compiler unknown: CUDA
// programs get plain loops here (the CPU kernels are not their hot path).
#define RWKV_CPU_PRAGMA(text) _Pragma(#text)
#if defined(__CUDACC__)
#define RWKV_CPU_UNROLL(n)
#elif defined(__clang__)
#define RWKV_CPU_UNROLL(n) RWKV_CPU_PRAGMA(unroll n)
#elif defined(__GNUC__)
#define RWKV_CPU_UNROLL(n) RWKV_CPU_PRAGMA(GCC unroll n)
#else
#define RWKV_CPU_UNROLL(n)
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RWKV_ISA_X86 1
#include <cpuid.h>
#else
#define RWKV_ISA_X86 0
#endif

namespace rwkv::backend::cpu {

// Instruction-set paths of the CPU kernels, in increasing order of capability.
enum class Isa { generic, avx2, avx512 };

inline const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "generic";
    }
}

namespace isa_detail {
#if RWKV_ISA_X86
// CPU features read once with cpuid, plus xgetbv for whether the OS saves the AVX / AVX-512
// registers across context switches (without that, the instructions exist but are unusable).
// Not __builtin_cpu_supports: clang 14 does not know "f16c" there.
struct X86Features {
    bool avx2_fma_f16c = false;
    bool avx512_f_bw_vl = false;
    bool avx512_bf16 = false;  // vdpbf16ps / vcvtne2ps2bf16 (with F+BW+VL usable)
    bool avx512_vnni = false;  // vpdpbusd on zmm/ymm (with F+BW+VL usable)
    bool avx_vnni = false;     // VEX-encoded vpdpbusd on ymm (with AVX2+FMA+F16C usable)
};

inline X86Features read_x86_features() {
    X86Features f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(osxsave && avx)) return f;
    unsigned xcr0[2] = {0, 0};  // xgetbv writes both halves; only the low one is tested
    __asm__("xgetbv" : "=a"(xcr0[0]), "=d"(xcr0[1]) : "c"(0));
    const bool os_avx = (xcr0[0] & 0x6u) == 0x6u;       // XMM and YMM state
    const bool os_avx512 = (xcr0[0] & 0xe6u) == 0xe6u;  // + opmask and both ZMM halves
    if (!os_avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
    f.avx2_fma_f16c = avx2 && fma && f16c;
    f.avx512_f_bw_vl = f.avx2_fma_f16c && os_avx512 && avx512f && avx512bw && avx512vl;
    f.avx512_vnni = f.avx512_f_bw_vl && (c & (1u << 11)) != 0;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        f.avx512_bf16 = f.avx512_f_bw_vl && (a & (1u << 5)) != 0;
        f.avx_vnni = f.avx2_fma_f16c && (a & (1u << 4)) != 0;
    }
    return f;
}

inline const X86Features& x86_features() {
    static const X86Features f = read_x86_features();
    return f;
}
#endif
}  // namespace isa_detail

// Whether this CPU and OS can run a path.
inline bool isa_supported(Isa isa) {
#if RWKV_ISA_X86
    switch (isa) {
        case Isa::avx512: return isa_detail::x86_features().avx512_f_bw_vl;
        case Isa::avx2: return isa_detail::x86_features().avx2_fma_f16c;
        default: return true;
    }
#else
    return isa == Isa::generic;
#endif
}

// Whether this CPU and OS can run AVX512_BF16 (vdpbf16ps) alongside the avx512 path's F+BW+VL.
inline bool avx512_bf16_supported() {
#if RWKV_ISA_X86
    return isa_detail::x86_features().avx512_bf16;
#else
    return false;
#endif
}

// Whether this CPU and OS can run AVX512_VNNI (vpdpbusd: u8 x s8 dot products of 4 into int32)
// alongside the avx512 path's F+BW+VL (the int8-activation decode, matvec_q8act.hpp).
inline bool avx512_vnni_supported() {
#if RWKV_ISA_X86
    return isa_detail::x86_features().avx512_vnni;
#else
    return false;
#endif
}

// Whether this CPU and OS can run AVX-VNNI (the VEX-encoded 256-bit vpdpbusd of CPUs without
// AVX-512, e.g. Alder Lake) alongside the avx2 path's AVX2+FMA+F16C. Detected for reports; the
// kernels do not use it yet (matvec_q8act.hpp's avx2 leaf uses vpmaddubsw / vpmaddwd).
inline bool avx_vnni_supported() {
#if RWKV_ISA_X86
    return isa_detail::x86_features().avx_vnni;
#else
    return false;
#endif
}

// Whether this ARM CPU can run ARMv8.2's SDOT (int8 dot products of 4 into int32; the int8-activation
// decode's NEON leaf uses it where present): always when the build targets it, else Linux's
// HWCAP_ASIMDDP; false elsewhere and off ARM. RWKV_ISA=generic does not turn it off (the NEON
// leaf gives the same bits either way); tests call both leaves directly.
inline bool arm_dotprod_supported() {
#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
    return true;
#elif defined(__aarch64__) && defined(__linux__)
    static const bool yes = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;  // HWCAP_ASIMDDP
    return yes;
#else
    return false;
#endif
}

// The best path this CPU supports.
inline Isa detect_isa() {
    if (isa_supported(Isa::avx512)) return Isa::avx512;
    if (isa_supported(Isa::avx2)) return Isa::avx2;
    return Isa::generic;
}

// The path used by matvec_rows/matvec/matvec_many without an explicit Isa: detect_isa(), capped
// by the environment variable RWKV_ISA=generic|avx2|avx512 (to compare paths or work around a
// bad one without rebuilding). Decided once per process.
inline Isa active_isa() {
    static const Isa isa = [] {
        Isa best = detect_isa();
        if (const char* env = std::getenv("RWKV_ISA")) {
            const std::string_view s(env);
            Isa want = best;
            if (s == "generic" || s == "scalar") want = Isa::generic;
            else if (s == "avx2") want = Isa::avx2;
            else if (s == "avx512") want = Isa::avx512;
            best = std::min(want, best);
        }
        return best;
    }();
    return isa;
}

}  // namespace rwkv::backend::cpu
