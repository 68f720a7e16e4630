#pragma once
// LayerNorm and GroupNorm kernels of the CPU backend: biased variance like PyTorch, two passes
// (mean, then squared deviations) so large offsets do not cancel.

#include <cmath>
#include <cstddef>

namespace rwkv::backend::cpu {

// Sums in 8 fp32 lanes (vectorisable, and pairwise enough that the error stays ~1e-7 relative
// at C = 4096), combined in double.
inline double sum8(const float* x, std::size_t n, float shift) {
    float acc[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (std::size_t l = 0; l < 8; ++l) acc[l] += x[i + l] - shift;
    double total = 0.0;
    for (; i < n; ++i) total += x[i] - shift;
    for (float a : acc) total += a;
    return total;
}

inline double sum8_sq(const float* x, std::size_t n, float mean) {
    float acc[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (std::size_t l = 0; l < 8; ++l) {
            const float d = x[i + l] - mean;
            acc[l] += d * d;
        }
    double total = 0.0;
    for (; i < n; ++i) {
        const double d = x[i] - mean;
        total += d * d;
    }
    for (float a : acc) total += a;
    return total;
}

// out[0..n) = (x - mean) / sqrt(var + eps) · weight + bias; out may alias x.
inline void layer_norm_row(const float* x, float* out, std::size_t n, const float* weight, const float* bias,
                           float eps) {
    const double mean = sum8(x, n, 0.0f) / static_cast<double>(n);
    const float m = static_cast<float>(mean);
    const double var = sum8_sq(x, n, m) / static_cast<double>(n);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    for (std::size_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * weight[i] + bias[i];
}

// In place over one token's A values: `groups` groups of A / groups consecutive channels.
inline void group_norm_row(float* y, std::size_t A, int groups, const float* weight, const float* bias, float eps) {
    const std::size_t N = A / static_cast<std::size_t>(groups);
    for (int g = 0; g < groups; ++g) {
        float* p = y + static_cast<std::size_t>(g) * N;
        const float* gw = weight + static_cast<std::size_t>(g) * N;
        const float* gb = bias + static_cast<std::size_t>(g) * N;
        double mean = 0.0;
        for (std::size_t i = 0; i < N; ++i) mean += p[i];
        mean /= static_cast<double>(N);
        double var = 0.0;
        for (std::size_t i = 0; i < N; ++i) {
            const double d = p[i] - mean;
            var += d * d;
        }
        var /= static_cast<double>(N);
        const float m = static_cast<float>(mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
        for (std::size_t i = 0; i < N; ++i) p[i] = (p[i] - m) * inv * gw[i] + gb[i];
    }
}

}  // namespace rwkv::backend::cpu
