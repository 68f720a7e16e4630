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
#include "../backend/cpu/wkv_chunked.hpp"
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

    // Inputs: ws.mix[1..4] = zk zv zr zg for n rows; w_rows = per-token decay exp(-exp(ω)) and,
    // for the chunked WKV, log_w_rows = λ = -exp(ω), both with row stride w_stride (0 for
    // x052's static decay). Adds the layer output to x [n][C]; updates the WKV state S.
    void run(const Config& c, int n, detail::Workspace& ws, float* S, const float* w_rows,
             const float* log_w_rows, std::size_t w_stride, float* x) const {
        using namespace cpu_kernels;
        const auto A = static_cast<std::size_t>(c.dim_att), C = static_cast<std::size_t>(c.n_embd);
        const std::size_t N = static_cast<std::size_t>(c.head_size);
        if (n == 1) {  // one dispatch, one barrier for the four products
            matvec_many<T>({{&receptance, ws.mix[3].data(), ws.r.data()},
                            {&key, ws.mix[1].data(), ws.k.data()},
                            {&value, ws.mix[2].data(), ws.v.data()},
                            {&gate, ws.mix[4].data(), ws.g.data()}},
                           ws.pool);
        } else {
            matmul(receptance, ws.mix[3].data(), n, ws.r.data(), ws);
            matmul(key, ws.mix[1].data(), n, ws.k.data(), ws);
            matmul(value, ws.mix[2].data(), n, ws.v.data(), ws);
            matmul(gate, ws.mix[4].data(), n, ws.g.data(), ws);
        }
        for (std::size_t i = 0; i < n * A; ++i) {
            const float g = ws.g[i];
            ws.g[i] = g / (1.0f + std::exp(-g));  // silu
        }
        if (n == 1) {
            // One token: the fused SIMD step over all heads (a few µs; not worth a dispatch).
            wkv_step(c.n_head, c.head_size, ws.r.data(), ws.k.data(), ws.v.data(), w_rows, u.data(), S,
                     ws.y.data());
        } else {
            // Heads are independent: each thread takes a range of heads through all n tokens.
            const int threads = ws.pool ? ws.pool->size() : 1;
            if (ws.chunked_wkv && ws.wkv_scratch.size() < static_cast<std::size_t>(threads))
                ws.wkv_scratch.resize(static_cast<std::size_t>(threads));
            parallel(ws.pool, [&](int t, int nt) {
                const int h0 = c.n_head * t / nt, h1 = c.n_head * (t + 1) / nt;
                if (h0 == h1) return;
                if (ws.chunked_wkv) {
                    auto& scratch = ws.wkv_scratch[static_cast<std::size_t>(t)];
                    const std::size_t need = wkv_chunked_scratch_floats(c.head_size);
                    if (scratch.size() < need) scratch.resize(need);
                    wkv_chunked_heads(h0, h1, c.n_head, c.head_size, n, ws.r.data(), ws.k.data(), ws.v.data(),
                                      log_w_rows, w_stride, u.data(), S, ws.y.data(), scratch.data());
                    return;
                }
                const std::size_t off = static_cast<std::size_t>(h0) * N;
                for (int tok = 0; tok < n; ++tok) {
                    const std::size_t o = static_cast<std::size_t>(tok) * A + off;
                    wkv_step(h1 - h0, c.head_size, ws.r.data() + o, ws.k.data() + o, ws.v.data() + o,
                             w_rows + static_cast<std::size_t>(tok) * w_stride + off, u.data() + off, S + off * N,
                             ws.y.data() + o);
                }
            });
        }
        for (int t = 0; t < n; ++t) {
            const std::size_t o = static_cast<std::size_t>(t) * A;
            ln_x(ws.y.data() + o);
            for (std::size_t i = 0; i < A; ++i) ws.y[o + i] *= ws.g[o + i];
        }
        matmul(output, ws.y.data(), n, ws.out.data(), ws);
        for (std::size_t i = 0; i < n * C; ++i) x[i] += ws.out[i];
    }
};

}  // namespace rwkv
