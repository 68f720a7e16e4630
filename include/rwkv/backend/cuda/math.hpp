#pragma once
// The per-element math of the CUDA backend's kernels, as __host__ __device__ functions (plain
// inline functions under a host compiler). Each kernel in kernels.cuh is a loop over threads
// that calls these; tests/test_cuda_math.cpp (an ordinary g++ test that runs without a GPU)
// composes the same functions into whole ops and checks them against backend/reference.hpp.
// So the arithmetic of every GPU op is tested on every CI run; only the thread mapping, the
// reductions and the memory movement need a GPU to be checked (tests/cuda/test_cuda.cu).
//
// Nothing here includes a CUDA header: the file compiles with g++ and clang++ as well.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../../weights/block.hpp"  // RWKV_HOST_DEVICE, bf16_to_float, fp16_to_float, bit casts

#if defined(__CUDA_ARCH__)
#define RWKV_UNROLL _Pragma("unroll")
#else
#define RWKV_UNROLL
#endif

namespace rwkv::backend::gpu {

// ---- the activation functions and mixes of spec 4.3-4.7 (same expressions as backend/cpu/ops.hpp)

// x052 static mix: z·μ + prev·(1-μ) (μ weighs the current token).
RWKV_HOST_DEVICE inline float lerp_mix(float z, float prev, float mu) { return z * mu + prev * (1.0f - mu); }

// x060 difference mix: z + (prev - z)·m.
RWKV_HOST_DEVICE inline float diff_mix(float z, float prev, float m) { return z + (prev - z) * m; }

// x060 ddlerp output of slot s: z + δ·(m_s + lora_s), δ = prev - z.
RWKV_HOST_DEVICE inline float ddlerp_out(float z, float prev, float m, float lora) {
    return z + (prev - z) * (m + lora);
}

// x060 decay: λ = -exp(d + lora), w = exp(λ); both fp32 (pitfall 3: never rounded lower).
RWKV_HOST_DEVICE inline void decay_of(float d, float lora, float& w, float& log_w) {
    const float lambda = -::expf(d + lora);
    log_w = lambda;
    w = ::expf(lambda);
}

RWKV_HOST_DEVICE inline float silu(float x) { return x / (1.0f + ::expf(-x)); }
RWKV_HOST_DEVICE inline float relu_sq(float x) {
    const float k = x > 0.0f ? x : 0.0f;
    return k * k;
}
// Channel-mix output: x + sigmoid(r)·v.
RWKV_HOST_DEVICE inline float sigmoid_gate_add(float x, float r, float v) { return x + v / (1.0f + ::expf(-r)); }

// LayerNorm / GroupNorm of one value once the statistics are known (biased variance).
RWKV_HOST_DEVICE inline float inv_std(float var, float eps) { return 1.0f / ::sqrtf(var + eps); }
RWKV_HOST_DEVICE inline float norm_apply(float x, float mean, float inv, float w, float b) {
    return (x - mean) * inv * w + b;
}

// ---- what a product does with each dot product it computes (fused into the mat-vec kernel;
// an elementwise pass after a cuBLAS GEMM). `t` is the activation row, `o` the output index.
enum class epilogue : int {
    none,      // Y = dot
    add,       // Y += dot                          (residual add after the output projection)
    tanh,      // Y = tanh(dot)                     (LoRA hidden layers)
    silu,      // Y = silu(dot)                     (the gate)
    relu_sq,   // Y = relu(dot)²                    (channel-mix key)
    gate_add,  // Y += sigmoid(a[t][o])·dot         (channel-mix value, a = receptance)
    ddlerp,    // Y = a + (b - a)·(c[o] + dot)       (x060 token-shift LoRA output, a = z, b = prev)
    decay,     // λ = -exp(c[o] + dot): Y = exp(λ), y2 = λ   (x060 decay LoRA output, c = d)
};

struct epilogue_args {
    const float* a = nullptr;  // [rows][ld]
    const float* b = nullptr;  // [rows][ld]
    const float* c = nullptr;  // [outputs]
    float* y2 = nullptr;       // [rows][ld]
    std::size_t ld = 0;        // row stride of a, b, y2 (and of Y)
};

// Writes the result of output o of activation row t, whose dot product is `dot`, to *y.
RWKV_HOST_DEVICE inline void apply_epilogue(epilogue e, const epilogue_args& p, std::size_t t, std::size_t o, float dot,
                                            float* y) {
    const std::size_t i = t * p.ld + o;
    switch (e) {
        case epilogue::none: *y = dot; break;
        case epilogue::add: *y += dot; break;
        case epilogue::tanh: *y = ::tanhf(dot); break;
        case epilogue::silu: *y = silu(dot); break;
        case epilogue::relu_sq: *y = relu_sq(dot); break;
        case epilogue::gate_add: *y = sigmoid_gate_add(*y, p.a[i], dot); break;
        case epilogue::ddlerp: *y = ddlerp_out(p.a[i], p.b[i], p.c[o], dot); break;
        case epilogue::decay: decay_of(p.c[o], dot, *y, p.y2[i]); break;
    }
}

// ---- weight widening: 16 bytes of a row (four little-endian 32-bit words) to fp32, exact.
// Elements per 16 bytes: 8 for bf16 / fp16, 4 for fp32.
enum class wtype : int { f32, bf16, f16 };

template <wtype W>
inline constexpr int elems_per_16 = W == wtype::f32 ? 4 : 8;

template <wtype W>
RWKV_HOST_DEVICE inline void widen16(const std::uint32_t (&q)[4], float* out) {
    if constexpr (W == wtype::f32) {
        for (int i = 0; i < 4; ++i) out[i] = weights::bits_to_float(q[i]);
    } else if constexpr (W == wtype::bf16) {
        for (int i = 0; i < 4; ++i) {  // element 2i is the low half (little-endian)
            out[2 * i] = weights::bits_to_float(q[i] << 16);
            out[2 * i + 1] = weights::bits_to_float(q[i] & 0xffff0000u);
        }
    } else {
        for (int i = 0; i < 4; ++i) {
            out[2 * i] = weights::fp16_to_float(static_cast<std::uint16_t>(q[i] & 0xffffu));
            out[2 * i + 1] = weights::fp16_to_float(static_cast<std::uint16_t>(q[i] >> 16));
        }
    }
}

// One element of a row, exact.
template <wtype W>
RWKV_HOST_DEVICE inline float widen1(const void* row, std::size_t i) {
    if constexpr (W == wtype::f32) {
        return static_cast<const float*>(row)[i];
    } else if constexpr (W == wtype::bf16) {
        return weights::bf16_to_float(static_cast<const std::uint16_t*>(row)[i]);
    } else {
        return weights::fp16_to_float(static_cast<const std::uint16_t*>(row)[i]);
    }
}

// fp32 → bf16 bits, round to nearest even, NaN kept quiet (= rwkv::bfloat16::from_float). Used
// by the opt-in fast prefill, which rounds activations for tensor-core GEMMs.
RWKV_HOST_DEVICE inline std::uint16_t round_bf16(float f) {
    std::uint32_t u = weights::float_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}

// fp32 → IEEE binary16 bits, round to nearest even, overflow to inf, gradual underflow
// (= rwkv::half::from_float).
RWKV_HOST_DEVICE inline std::uint16_t round_fp16(float f) {
    const std::uint32_t u = weights::float_to_bits(f);
    const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);
    if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (a >= 0x38800000u) {
        std::uint32_t r = a - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return static_cast<std::uint16_t>(sign | (r >> 13));
    }
    if (a < 0x33000000u) return sign;
    const std::uint32_t exp = a >> 23;
    const std::uint32_t man = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exp;
    std::uint32_t q = man >> shift;
    const std::uint32_t rem = man & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
}

// ---- WKV, token by token (spec 4.5), as one thread of the decode kernel computes it: the
// thread owns value column j of one head, s[i] = S[i][j] for i < N (in registers when NMAX is
// a compile-time bound). `bonus` = Σ_i r[i]·u[i]·k[i] (hoisted out of the column loop, as the
// CPU kernels do). Returns y[j] (read from the old state) and updates the column.
RWKV_HOST_DEVICE inline float wkv_bonus(int N, const float* r, const float* u, const float* k) {
    float c = 0.0f;
    for (int i = 0; i < N; ++i) c += r[i] * u[i] * k[i];
    return c;
}

template <int NMAX>
RWKV_HOST_DEVICE inline float wkv_column_step(int N, const float* r, const float* k, const float* w, float bonus,
                                              float vj, float (&s)[NMAX]) {
    float y = 0.0f;
    RWKV_UNROLL
    for (int i = 0; i < NMAX; ++i) {
        if (i < N) {
            y += r[i] * s[i];
            s[i] = s[i] * w[i] + k[i] * vj;
        }
    }
    return y + bonus * vj;
}

// The same step on a column that stays in memory (head sizes above the register bound):
// s[i·lds] = S[i][j].
RWKV_HOST_DEVICE inline float wkv_column_step_mem(int N, const float* r, const float* k, const float* w, float bonus,
                                                  float vj, float* s, std::size_t lds) {
    float y = 0.0f;
    for (int i = 0; i < N; ++i) {
        const float si = s[static_cast<std::size_t>(i) * lds];
        y += r[i] * si;
        s[static_cast<std::size_t>(i) * lds] = si * w[i] + k[i] * vj;
    }
    return y + bonus * vj;
}

// ---- chunked WKV (spec 5.4): one head, one chunk of n ≤ Q tokens, inputs as [Q][N] rows
// (r, k, λ) and the chunk's value columns V [Q][ldv]. The chunk is a single sub-block (Q = 16,
// the CPU version's sub-block length), so every factor is exp of a sum of λ ≤ 0 over tokens
// that lie between the two tokens it connects: no exponent is ever positive (spec 5.5), and
// inside the chunk the decay between two tokens is a running product of w = exp(λ), never the
// difference of two cumulative sums (which would lose the small decays of channels that also
// see huge ones).
inline constexpr int wkv_chunk_len = 16;

// Channel i: Rt[a][i] = r[a][i]·exp(Σ_{m<a} λ[m][i]), W[a][i] = exp(λ[a][i]),
// Kb[b][i] = k[b][i]·exp(Σ_{m>b} λ[m][i]), eG[i] = exp(Σ_m λ[m][i]) (the chunk's total decay).
RWKV_HOST_DEVICE inline void wkv_chunk_channel(int i, int n, int N, const float* r, const float* k, const float* lam,
                                               float* Rt, float* Kb, float* W, float* eG) {
    float run = 0.0f;
    for (int a = 0; a < n; ++a) {
        const int o = a * N + i;
        Rt[o] = r[o] * ::expf(run);
        W[o] = ::expf(lam[o]);
        run += lam[o];
    }
    eG[i] = ::expf(run);
    run = 0.0f;
    for (int b = n - 1; b >= 0; --b) {
        const int o = b * N + i;
        Kb[o] = k[o] * ::expf(run);
        run += lam[o];
    }
}

// The intra-chunk weight of value row b in output row a: 0 above the diagonal, the bonus
// Σ_i r[a][i]·u[i]·k[a][i] on it, Σ_i r[a][i]·k[b][i]·Π_{b<m<a} W[m][i] below it.
RWKV_HOST_DEVICE inline float wkv_chunk_pair(int a, int b, int N, const float* r, const float* k, const float* u,
                                             const float* W) {
    if (b > a) return 0.0f;
    float acc = 0.0f;
    if (a == b) {
        for (int i = 0; i < N; ++i) acc += r[a * N + i] * u[i] * k[a * N + i];
        return acc;
    }
    for (int i = 0; i < N; ++i) {
        float kd = k[b * N + i];
        for (int m = b + 1; m < a; ++m) kd *= W[m * N + i];
        acc += r[a * N + i] * kd;
    }
    return acc;
}

// Output row a, value column jj: Σ_i Rt[a][i]·S[i][jj] + Σ_{b≤a} Am[a][b]·V[b][jj]
// (S [N][lds] is the state entering the chunk, Am [Q][Q]).
RWKV_HOST_DEVICE inline float wkv_chunk_out(int a, int jj, int N, const float* Rt, const float* S, int lds,
                                            const float* Am, const float* V, int ldv) {
    float y = 0.0f;
    for (int i = 0; i < N; ++i) y += Rt[a * N + i] * S[i * lds + jj];
    for (int b = 0; b <= a; ++b) y += Am[a * wkv_chunk_len + b] * V[b * ldv + jj];
    return y;
}

// The state after the chunk, key i, value column jj: eG[i]·S[i][jj] + Σ_{b<n} Kb[b][i]·V[b][jj].
RWKV_HOST_DEVICE inline float wkv_chunk_state(int i, int jj, int n, int N, const float* eG, const float* S, int lds,
                                              const float* Kb, const float* V, int ldv) {
    float s = eG[i] * S[i * lds + jj];
    for (int b = 0; b < n; ++b) s += Kb[b * N + i] * V[b * ldv + jj];
    return s;
}

}  // namespace rwkv::backend::gpu
