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
    std::vector<float> maa_x;                // m_x [C]
    std::vector<float> maa[5];               // m_w m_k m_v m_r m_g [C]
    std::vector<float> maa_w1;               // [C][5 Dm]  (used as z·M)
    std::vector<float> maa_w2;               // [5][Dm][C]
    std::vector<float> decay;                // d [A]
    std::vector<float> decay_w1;             // [C][Dw]
    std::vector<float> decay_w2;             // [Dw][A]
    TimeMixCore<T, Backend> core;

    void forward(const Config& c, const float* z, int n, float* shift, float* S,
                 detail::Workspace& ws, float* x) const {
        using namespace cpu_kernels;
        const auto C = static_cast<std::size_t>(c.n_embd), A = static_cast<std::size_t>(c.dim_att);
        const int Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
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
        matmul_in_out(maa_w1.data(), c.n_embd, 5 * Dm, zx, n, ws.lora.data());
        for (std::size_t i = 0; i < static_cast<std::size_t>(n) * 5 * Dm; ++i) ws.lora[i] = std::tanh(ws.lora[i]);
        for (int s = 0; s < 5; ++s) {
            MutMap(ws.mix[s].data(), n, c.n_embd).noalias() =
                ConstMap(ws.lora.data(), n, 5 * Dm).middleCols(s * Dm, Dm) *
                ConstMap(maa_w2.data() + static_cast<std::size_t>(s) * Dm * C, Dm, c.n_embd);
            float* m = ws.mix[s].data();
            for (int t = 0; t < n; ++t)
                for (std::size_t i = 0; i < C; ++i) {
                    const std::size_t o = t * C + i;
                    m[o] = z[o] + ws.dx[o] * (maa[s][i] + m[o]);
                }
        }

        // ω = d + tanh(zw·Wd1)·Wd2;  w = exp(-exp(ω)) in fp32
        matmul_in_out(decay_w1.data(), c.n_embd, Dw, ws.mix[0].data(), n, ws.lora.data());
        for (std::size_t i = 0; i < static_cast<std::size_t>(n) * Dw; ++i) ws.lora[i] = std::tanh(ws.lora[i]);
        matmul_in_out(decay_w2.data(), Dw, c.dim_att, ws.lora.data(), n, ws.w.data());
        for (int t = 0; t < n; ++t)
            for (std::size_t i = 0; i < A; ++i) {
                float& w = ws.w[t * A + i];
                w = std::exp(-std::exp(decay[i] + w));
            }
        core.run(c, n, ws, S, ws.w.data(), A, x);
    }
};

}  // namespace rwkv
