#pragma once
// TimeMix6 — the Finch (x060) attention replacement: data-dependent token shift (a 5-slot
// LoRA, slots w k v r g) and data-dependent decay (a second LoRA) (spec 4.4). The mixing
// weights time_maa_* weigh the previous-minus-current difference.

#include <cmath>
#include <cstddef>
#include <vector>

#include "time_mix_core.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMix6 {
    std::vector<float> maa_x;   // m_x [C]
    std::vector<float> maa[5];  // m_w m_k m_v m_r m_g [C]
    // The LoRA matrices, stored in the checkpoint as [in][out] (used as z·M), are kept
    // transposed to [out][in] and in T like every other weight, so that they run through the
    // same threaded mat-vec / GEMM (widening a bf16 file's values is exact, as the reference's
    // fp32 upcast is).
    Matrix<T> maa_w1;     // [5 Dm][C]   (time_maa_w1ᵀ)
    Matrix<T> maa_w2[5];  // [C][Dm] per slot (time_maa_w2[s]ᵀ)
    std::vector<float> decay;  // d [A]
    Matrix<T> decay_w1;   // [Dw][C]    (time_decay_w1ᵀ)
    Matrix<T> decay_w2;   // [A][Dw]    (time_decay_w2ᵀ)
    TimeMixCore<T, Backend> core;

    void forward(const Config& c, const float* z, int n, float* shift, float* S,
                 detail::Workspace& ws, float* x) const {
        using namespace cpu_kernels;
        const auto C = static_cast<std::size_t>(c.n_embd), A = static_cast<std::size_t>(c.dim_att);
        const std::size_t Dm = static_cast<std::size_t>(c.dim_lora_mix), Dw = static_cast<std::size_t>(c.dim_lora_decay);
        float* zx = ws.out.data();  // free until core.run() writes the output projection
        for (int t = 0; t < n; ++t) {
            const float* zt = z + t * C;
            const float* p = t == 0 ? shift : zt - C;
            float* d = ws.dx.data() + t * C;
            for (std::size_t i = 0; i < C; ++i) {
                d[i] = p[i] - zt[i];
                zx[t * C + i] = zt[i] + d[i] * maa_x[i];
            }
        }
        std::copy(z + (n - 1) * C, z + n * C, shift);

        // q = tanh(zx·W1); e_s = q_s·W2[s]; z_s = z + δ⊙(m_s + e_s)
        matmul(maa_w1, zx, n, ws.lora.data(), ws);
        const std::size_t q_width = 5 * Dm;
        for (std::size_t i = 0; i < n * q_width; ++i) ws.lora[i] = std::tanh(ws.lora[i]);
        if (n == 1) {
            matvec_many<T>({{&maa_w2[0], ws.lora.data(), ws.mix[0].data()},
                            {&maa_w2[1], ws.lora.data() + Dm, ws.mix[1].data()},
                            {&maa_w2[2], ws.lora.data() + 2 * Dm, ws.mix[2].data()},
                            {&maa_w2[3], ws.lora.data() + 3 * Dm, ws.mix[3].data()},
                            {&maa_w2[4], ws.lora.data() + 4 * Dm, ws.mix[4].data()}},
                           ws.pool);
        } else {
            // Each slot's q_s is a column slice of q: gather it into rows for the GEMM (ws.y is
            // free until the WKV writes it).
            float* qs = ws.y.data();
            for (int s = 0; s < 5; ++s) {
                for (int t = 0; t < n; ++t)
                    std::copy_n(ws.lora.data() + t * q_width + s * Dm, Dm, qs + t * Dm);
                matmul(maa_w2[s], qs, n, ws.mix[s].data(), ws);
            }
        }
        for (int s = 0; s < 5; ++s) {
            float* m = ws.mix[s].data();
            for (int t = 0; t < n; ++t)
                for (std::size_t i = 0; i < C; ++i) {
                    const std::size_t o = t * C + i;
                    m[o] = z[o] + ws.dx[o] * (maa[s][i] + m[o]);
                }
        }

        // ω = d + tanh(zw·Wd1)·Wd2;  w = exp(-exp(ω)) in fp32 (and λ = -exp(ω) for the chunked WKV)
        matmul(decay_w1, ws.mix[0].data(), n, ws.lora.data(), ws);
        for (std::size_t i = 0; i < n * Dw; ++i) ws.lora[i] = std::tanh(ws.lora[i]);
        matmul(decay_w2, ws.lora.data(), n, ws.w.data(), ws);
        for (int t = 0; t < n; ++t)
            for (std::size_t i = 0; i < A; ++i) {
                const std::size_t o = t * A + i;
                const float lambda = -std::exp(decay[i] + ws.w[o]);
                ws.log_w[o] = lambda;
                ws.w[o] = std::exp(lambda);
            }
        core.run(c, n, ws, S, ws.w.data(), ws.log_w.data(), A, x);
    }
};

}  // namespace rwkv
