#pragma once
// The part of TimeMix that Eagle (x052) and Finch (x060) share, after each has produced its
// mixed inputs and per-token decay: r k v g projections, the WKV recurrence, GroupNorm ln_x
// times the silu gate, and the output projection (spec 4.5-4.6).

#include <cstddef>
#include <span>
#include <vector>

#include "../backend.hpp"
#include "../backend/workspace.hpp"
#include "../config.hpp"
#include "../weight.hpp"
#include "norm.hpp"

namespace rwkv {

template <class T, class Backend = cpu>
struct TimeMixCore {
    using ops = backend_ops<Backend>;

    Weight receptance, key, value, gate;  // [A][C]
    Weight output;                        // [C][A]
    std::vector<float> u;                 // bonus time_faaaa [A], used as stored (no exp)
    GroupNorm ln_x;                       // H groups, eps 64e-5

    // zr zk zv zg: the mixed inputs [n][C]; w / log_w: decay exp(λ) and λ, rows of A with stride
    // w_stride (0 for x052's static decay); seqs: the sequences the n rows belong to, with their
    // WKV states (updated); x [n][C]: the residual stream, the layer's output is added to it.
    void forward(detail::Workspace& ws, const Config& c, int n, const float* zr, const float* zk, const float* zv,
                 const float* zg, const float* w, const float* log_w, std::size_t w_stride,
                 std::span<const sequence_rows> seqs, float* x) const {
        const auto nA = static_cast<std::size_t>(n) * static_cast<std::size_t>(c.dim_att);
        float *r = ws.r.data(), *k = ws.k.data(), *v = ws.v.data(), *g = ws.g.data(), *y = ws.y.data();
        ops::project_many(ws, {{&receptance, zr, r}, {&key, zk, k}, {&value, zv, v}, {&gate, zg, g}}, n);
        ops::silu(ws, g, nA);                                                                   // g = silu(zg·Wg)
        ops::wkv(ws, {c.n_head, c.head_size, r, k, v, w, log_w, w_stride, u.data(), y, seqs});  // spec 4.5
        ops::group_norm_gate(ws, ln_x, y, g, n);                                                // y = ln_x(y)·g
        ops::project(ws, output, y, n, ws.out.data());
        ops::residual_add(ws, x, ws.out.data(), static_cast<std::size_t>(n) * static_cast<std::size_t>(c.n_embd));
    }
};

}  // namespace rwkv
