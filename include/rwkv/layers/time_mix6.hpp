#pragma once
// TimeMix6 — the Finch (x060) attention replacement: data-dependent token shift (a 5-slot
// LoRA, slots w k v r g) and data-dependent decay (a second LoRA) (spec 4.4). The mixing
// weights time_maa_* weigh the previous-minus-current difference.

#include <cstddef>
#include <vector>

#include "time_mix_core.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMix6 {
    using ops = backend_ops<Backend>;

    std::vector<float> maa_x;   // m_x [C]
    std::vector<float> maa[5];  // m_w m_k m_v m_r m_g [C]
    // The LoRA matrices, stored in the checkpoint as [in][out] (used as z·M), are kept
    // transposed to [out][in] like every other weight, so they run through the same products.
    Weight maa_w1;             // [5 Dm][C]   time_maa_w1ᵀ
    Weight maa_w2[5];          // [C][Dm]     time_maa_w2[s]ᵀ
    std::vector<float> decay;  // d [A]
    Weight decay_w1;           // [Dw][C]     time_decay_w1ᵀ
    Weight decay_w2;           // [A][Dw]     time_decay_w2ᵀ
    TimeMixCore<T, Backend> core;

    // Arguments as TimeMix5::forward.
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, std::span<const sequence_rows> seqs,
                 float* x) const {
        const int C = c.n_embd, A = c.dim_att;
        const auto nDw = static_cast<std::size_t>(n) * static_cast<std::size_t>(c.dim_lora_decay);
        float* prev = ws.prev.data();
        float *zw = ws.mix[0].data(), *zk = ws.mix[1].data(), *zv = ws.mix[2].data(), *zr = ws.mix[3].data(),
              *zg = ws.mix[4].data();
        float *w = ws.w.data(), *lambda = ws.log_w.data(), *q = ws.lora_decay.data();
        float* const slots[5] = {zw, zk, zv, zr, zg};
        ops::token_shift(ws, z, C, seqs, prev);  // prev = z of the previous token
        // z_s = z + δ·(m_s + tanh((z + δ·m_x)·W1)_s·W2_s), δ = prev - z
        ops::ddlerp(ws, z, prev, n, C, maa_x.data(), maa_w1, maa_w2, maa, slots);
        // ω = d + tanh(z_w·Wd1)·Wd2; λ = -exp(ω); w = exp(λ)
        ops::project(ws, decay_w1, zw, n, q);
        ops::tanh(ws, q, nDw);
        ops::project(ws, decay_w2, q, n, w);
        ops::decay(ws, decay.data(), n, A, w, lambda);
        core.forward(ws, c, n, zr, zk, zv, zg, w, lambda, static_cast<std::size_t>(A), seqs, x);
    }

    // One sequence of n rows with token-shift state `shift` [C] and WKV state S (both updated).
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, float* shift, float* S,
                 float* x) const {
        const sequence_rows one{n, shift, S};
        forward(ws, c, z, n, std::span<const sequence_rows>(&one, 1), x);
    }
};

}  // namespace rwkv
