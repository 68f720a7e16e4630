#pragma once
// ChannelMix — the feed-forward block: token shift, relu² key, sigmoid receptance (spec 4.7).
// x052 stores time_mix_k/r (weight of the current token), x060 time_maa_k/r (weight of the
// previous-minus-current difference); each is computed in its own form, as the reference does.

#include <cstddef>
#include <span>
#include <vector>

#include "../backend.hpp"
#include "../backend/workspace.hpp"
#include "../config.hpp"
#include "../weight.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct ChannelMix {
    using ops = backend_ops<Backend>;

    bool difference_form = true;      // x060 maa (true) or x052 mix (false)
    std::vector<float> mix_k, mix_r;  // [C]
    Weight key;                       // [F][C]
    Weight receptance;                // [C][C]
    Weight value;                     // [C][F]

    // z: LN2 output rows [n][C] of the sequences `seqs` (each: its rows and its token shift = the
    // previous token's LN2 output, updated); x: residual rows, the output is added.
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, std::span<const sequence_rows> seqs,
                 float* x) const {
        const int C = c.n_embd;
        const auto nC = static_cast<std::size_t>(n) * static_cast<std::size_t>(C);
        const auto nF = static_cast<std::size_t>(n) * static_cast<std::size_t>(c.dim_ffn);
        float *prev = ws.prev.data(), *zk = ws.mix[0].data(), *zr = ws.mix[1].data();
        float *k = ws.ffn_k.data(), *r = ws.ffn_r.data(), *v = ws.out.data();
        ops::token_shift(ws, z, C, seqs, prev);
        if (difference_form) {  // z_k = z + (prev - z)·m_k
            ops::mix(ws, z, prev, mix_k.data(), n, C, zk);
            ops::mix(ws, z, prev, mix_r.data(), n, C, zr);
        } else {  // z_k = z·μ_k + prev·(1-μ_k)
            ops::lerp(ws, z, prev, mix_k.data(), n, C, zk);
            ops::lerp(ws, z, prev, mix_r.data(), n, C, zr);
        }
        ops::project_many(ws, {{&key, zk, k}, {&receptance, zr, r}}, n);
        ops::relu_sq(ws, k, nF);                 // k = relu(z_k·Wk)²
        ops::project(ws, value, k, n, v);        // v = k·Wv
        ops::sigmoid_gate_add(ws, x, r, v, nC);  // x += sigmoid(z_r·Wr)·v
    }

    // One sequence of n rows with token-shift state `shift` [C] (updated).
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, float* shift, float* x) const {
        const sequence_rows one{n, shift, nullptr};
        forward(ws, c, z, n, std::span<const sequence_rows>(&one, 1), x);
    }
};

}  // namespace rwkv
