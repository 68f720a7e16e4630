#pragma once
// ChannelMix — the feed-forward block: token shift, relu² key, sigmoid receptance (spec 4.7).
// x052 stores time_mix_k/r (weight of the current token), x060 time_maa_k/r (weight of the
// previous-minus-current difference); each is computed in its own form, as the reference does.

#include <cmath>
#include <cstddef>
#include <vector>

#include "../backend.hpp"
#include "../backend/cpu/matmul.hpp"
#include "../config.hpp"
#include "../matrix.hpp"
#include "../workspace.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct ChannelMix {
    bool difference_form = true;     // x060 maa (true) or x052 mix (false)
    std::vector<float> mix_k, mix_r;  // [C]
    Matrix<T> key;                    // [F][C]
    Matrix<T> receptance;             // [C][C]
    Matrix<T> value;                  // [C][F]

    void forward(const Config& c, const float* z, int n, float* shift, detail::Workspace& ws,
                 float* x) const {
        using namespace cpu_kernels;
        const auto C = static_cast<std::size_t>(c.n_embd), F = static_cast<std::size_t>(c.dim_ffn);
        float* zk = ws.mix[0].data();
        float* zr = ws.mix[1].data();
        for (int t = 0; t < n; ++t) {
            const float* zt = z + t * C;
            const float* p = t == 0 ? shift : zt - C;
            for (std::size_t i = 0; i < C; ++i) {
                if (difference_form) {
                    const float d = p[i] - zt[i];
                    zk[t * C + i] = zt[i] + d * mix_k[i];
                    zr[t * C + i] = zt[i] + d * mix_r[i];
                } else {
                    zk[t * C + i] = zt[i] * mix_k[i] + p[i] * (1.0f - mix_k[i]);
                    zr[t * C + i] = zt[i] * mix_r[i] + p[i] * (1.0f - mix_r[i]);
                }
            }
        }
        std::copy(z + (n - 1) * C, z + n * C, shift);

        float* r = ws.mix[2].data();
        if (n == 1) {  // both input products in one dispatch
            matvec_many<T>({{&key, zk, ws.ffn.data()}, {&receptance, zr, r}}, ws.pool);
        } else {
            matmul(key, zk, n, ws.ffn.data(), ws);
            matmul(receptance, zr, n, r, ws);
        }
        for (std::size_t i = 0; i < n * F; ++i) {
            const float k = ws.ffn[i] > 0.0f ? ws.ffn[i] : 0.0f;
            ws.ffn[i] = k * k;
        }
        matmul(value, ws.ffn.data(), n, ws.out.data(), ws);
        for (std::size_t i = 0; i < n * C; ++i) x[i] += ws.out[i] / (1.0f + std::exp(-r[i]));
    }
};

}  // namespace rwkv
