#pragma once
// LayerNorm and GroupNorm rows of the CPU backend: biased variance like PyTorch, two passes
// (mean, then squared deviations) so large offsets do not cancel, sums in 16 fp32 lanes combined
// in double (~1e-7 relative at C = 4096). The SIMD work is elementwise.hpp's norm_row, one leaf
// per instruction set, so its speed does not depend on the user's flags.

#include <cstddef>

#include "elementwise.hpp"

namespace rwkv::backend::cpu {

// out[0..n) = (x - mean) / sqrt(var + eps) · weight + bias; out may alias x.
inline void layer_norm_row(const float* x, float* out, std::size_t n, const float* weight, const float* bias,
                           float eps) {
    elementwise::norm_row(x, out, n, weight, bias, eps, nullptr);
}

// In place over one token's A values: `groups` groups of A / groups consecutive channels, each
// normalised on its own with its slice of weight and bias, then multiplied by gate[0..A) (gate
// null: no gate; x060's output gate is fused here to save a pass over y).
inline void group_norm_row(float* y, std::size_t A, int groups, const float* weight, const float* bias, float eps,
                           const float* gate = nullptr) {
    const std::size_t N = A / static_cast<std::size_t>(groups);
    for (std::size_t g = 0; g < static_cast<std::size_t>(groups); ++g)
        elementwise::norm_row(y + g * N, y + g * N, N, weight + g * N, bias + g * N, eps,
                              gate ? gate + g * N : nullptr);
}

}  // namespace rwkv::backend::cpu
