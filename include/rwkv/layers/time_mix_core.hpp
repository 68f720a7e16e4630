#pragma once
// The part of TimeMix that Eagle (x052) and Finch (x060) share, after each has produced its
// mixed inputs and per-token decay: r k v g projections, the WKV recurrence, GroupNorm ln_x,
// the silu gate and the output projection (spec 4.5-4.6).

#include <cmath>
#include <cstddef>
#include <vector>

#include "../backend.hpp"
#include "../backend/cpu/matmul.hpp"
#include "../backend/cpu/wkv.hpp"
#include "../config.hpp"
#include "../matrix.hpp"
#include "../workspace.hpp"
#include "norm.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMixCore {
    Matrix<T> receptance, key, value, gate, output;  // [A][C] ×4, [C][A]
    std::vector<float> u;                            // bonus time_faaaa [A], used as stored
    GroupNorm ln_x;                                  // H groups, eps 64e-5

    // Inputs: ws.mix[1..4] = zk zv zr zg for n rows; w_rows = per-token decay exp(-exp(ω)) with
    // row stride w_stride (0 for x052's static decay). Adds the layer output to x [n][C].
    void run(const Config& c, int n, detail::Workspace& ws, float* S, const float* w_rows,
             std::size_t w_stride, float* x) const {
        using namespace cpu_kernels;
        const auto A = static_cast<std::size_t>(c.dim_att), C = static_cast<std::size_t>(c.n_embd);
        matmul(receptance, ws.mix[3].data(), n, ws.r.data(), ws.tile);
        matmul(key, ws.mix[1].data(), n, ws.k.data(), ws.tile);
        matmul(value, ws.mix[2].data(), n, ws.v.data(), ws.tile);
        matmul(gate, ws.mix[4].data(), n, ws.g.data(), ws.tile);
        for (std::size_t i = 0; i < n * A; ++i) {
            const float g = ws.g[i];
            ws.g[i] = g / (1.0f + std::exp(-g));  // silu
        }
        // The recurrence is sequential in t; each step reads the state the previous one wrote.
        for (int t = 0; t < n; ++t) {
            const std::size_t o = static_cast<std::size_t>(t) * A;
            wkv_step(c.n_head, c.head_size, ws.r.data() + o, ws.k.data() + o, ws.v.data() + o,
                     w_rows + static_cast<std::size_t>(t) * w_stride, u.data(), S, ws.y.data() + o);
            ln_x(ws.y.data() + o);
            for (std::size_t i = 0; i < A; ++i) ws.y[o + i] *= ws.g[o + i];
        }
        matmul(output, ws.y.data(), n, ws.out.data(), ws.tile);
        for (std::size_t i = 0; i < n * C; ++i) x[i] += ws.out[i];
    }
};

}  // namespace rwkv
