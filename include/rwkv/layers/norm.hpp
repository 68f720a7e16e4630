#pragma once
// LayerNorm (ln0, ln1, ln2, ln_out; eps 1e-5) and the per-head GroupNorm ln_x (eps 64e-5,
// spec 4.6), both with biased variance like PyTorch (two passes: mean, then squared deviations).

#include <cmath>
#include <cstddef>
#include <vector>

namespace rwkv {

struct LayerNorm {
    std::vector<float> weight, bias;
    float eps = 1e-5f;

    // out[0..n) = LN(x[0..n)); out may alias x.
    void operator()(const float* x, float* out) const {
        const std::size_t n = weight.size();
        const double mean = sum8(x, n, 0.0f) / static_cast<double>(n);
        const float m = static_cast<float>(mean);
        const double var = sum8_sq(x, n, m) / static_cast<double>(n);
        const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
        for (std::size_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * weight[i] + bias[i];
    }

    // Sums in 8 fp32 lanes (vectorisable, and pairwise enough that the error stays ~1e-7
    // relative at C = 4096), combined in double.
    static double sum8(const float* x, std::size_t n, float shift) {
        float acc[8] = {};
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (std::size_t l = 0; l < 8; ++l) acc[l] += x[i + l] - shift;
        double total = 0.0;
        for (; i < n; ++i) total += x[i] - shift;
        for (float a : acc) total += a;
        return total;
    }
    static double sum8_sq(const float* x, std::size_t n, float mean) {
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

    void rows(const float* x, float* out, int n_rows) const {
        const std::size_t n = weight.size();
        for (int t = 0; t < n_rows; ++t) (*this)(x + t * n, out + t * n);
    }
};

struct GroupNorm {
    std::vector<float> weight, bias;  // [A]
    int groups = 1;
    float eps = 64e-5f;

    // In place over one token's A values, H groups of N consecutive channels.
    void operator()(float* y) const {
        const std::size_t A = weight.size(), N = A / static_cast<std::size_t>(groups);
        for (int g = 0; g < groups; ++g) {
            float* p = y + static_cast<std::size_t>(g) * N;
            const float* gw = weight.data() + static_cast<std::size_t>(g) * N;
            const float* gb = bias.data() + static_cast<std::size_t>(g) * N;
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
};

}  // namespace rwkv
