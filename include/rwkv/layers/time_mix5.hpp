#pragma once
// TimeMix5 — the Eagle (x052) attention replacement: static per-channel interpolation with the
// previous token (time_mix_*: weight of the CURRENT token), static per-channel decay (spec 4.3).

#include <cstddef>
#include <vector>

#include "time_mix_core.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMix5 {
    std::vector<float> mix_k, mix_v, mix_r, mix_g;  // μ [C]
    std::vector<float> w;                           // exp(-exp(time_decay)) [A], fp32 (pitfall 3)
    std::vector<float> log_w;                       // -exp(time_decay) [A], for chunked prefill
    TimeMixCore<T, Backend> core;

    // z: LN1 output rows [n][C]; shift: the previous token's LN1 output (state, updated);
    // S: this layer's WKV matrices (state, updated); x: residual rows, the output is added.
    void forward(const Config& c, const float* z, int n, float* shift, float* S,
                 detail::Workspace& ws, float* x) const {
        const auto C = static_cast<std::size_t>(c.n_embd);
        for (int t = 0; t < n; ++t) {
            const float* zt = z + t * C;
            const float* p = t == 0 ? shift : zt - C;
            float* k = ws.mix[1].data() + t * C;
            float* v = ws.mix[2].data() + t * C;
            float* r = ws.mix[3].data() + t * C;
            float* g = ws.mix[4].data() + t * C;
            for (std::size_t i = 0; i < C; ++i) {
                k[i] = zt[i] * mix_k[i] + p[i] * (1.0f - mix_k[i]);
                v[i] = zt[i] * mix_v[i] + p[i] * (1.0f - mix_v[i]);
                r[i] = zt[i] * mix_r[i] + p[i] * (1.0f - mix_r[i]);
                g[i] = zt[i] * mix_g[i] + p[i] * (1.0f - mix_g[i]);
            }
        }
        std::copy(z + (n - 1) * C, z + n * C, shift);
        core.run(c, n, ws, S, w.data(), log_w.data(), 0, x);
    }
};

}  // namespace rwkv
