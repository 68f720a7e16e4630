#pragma once
// TimeMix5 — the Eagle (x052) attention replacement: static per-channel interpolation with the
// previous token (time_mix_*: weight of the CURRENT token), static per-channel decay (spec 4.3).

#include <vector>

#include "time_mix_core.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMix5 {
    using ops = backend_ops<Backend>;

    std::vector<float> mix_k, mix_v, mix_r, mix_g;  // μ [C]
    std::vector<float> w;                           // exp(-exp(time_decay)) [A], fp32 (pitfall 3)
    std::vector<float> log_w;                       // λ = -exp(time_decay) [A], for chunked prefill
    TimeMixCore<T, Backend> core;

    // z: LN1 output rows [n][C] of the sequences `seqs` (each: its rows, its token shift = the
    // previous token's LN1 output, its WKV matrices; states updated); x: residual rows, the
    // output is added.
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, std::span<const sequence_rows> seqs,
                 float* x) const {
        const int C = c.n_embd;
        float* prev = ws.prev.data();
        float *zk = ws.mix[1].data(), *zv = ws.mix[2].data(), *zr = ws.mix[3].data(), *zg = ws.mix[4].data();
        ops::token_shift(ws, z, C, seqs, prev);          // prev = z of the previous token
        ops::lerp(ws, z, prev, mix_k.data(), n, C, zk);  // z_k = z·μ_k + prev·(1-μ_k), same for v r g
        ops::lerp(ws, z, prev, mix_v.data(), n, C, zv);
        ops::lerp(ws, z, prev, mix_r.data(), n, C, zr);
        ops::lerp(ws, z, prev, mix_g.data(), n, C, zg);
        core.forward(ws, c, n, zr, zk, zv, zg, w.data(), log_w.data(), 0, seqs, x);
    }

    // One sequence of n rows with token-shift state `shift` [C] and WKV state S (both updated).
    void forward(detail::Workspace& ws, const Config& c, const float* z, int n, float* shift, float* S,
                 float* x) const {
        const sequence_rows one{n, shift, S};
        forward(ws, c, z, n, std::span<const sequence_rows>(&one, 1), x);
    }
};

}  // namespace rwkv
