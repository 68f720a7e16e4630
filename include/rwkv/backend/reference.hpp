#pragma once
// backend_ops<rwkv::reference>: every op of the vocabulary (backend.hpp) as the plainest loop
// that follows the spec's equation, with double accumulators for sums. It is the yardstick:
// tests/test_backend_ops.cpp runs each op of every backend (and each CPU ISA path) against it,
// and Model<T, rwkv::reference> runs a whole model on it (slow, but obviously right).

#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <vector>

#include "../backend.hpp"
#include "../layers/norm.hpp"
#include "../token.hpp"
#include "../weight.hpp"
#include "workspace.hpp"

namespace rwkv {

template <>
struct backend_ops<reference> {
    using Workspace = detail::Workspace;

    static void embed(Workspace&, const Weight& emb, std::span<const token> tokens, float* x) {
        for (std::size_t t = 0; t < tokens.size(); ++t)
            emb.decode_row(tokens[t], x + t * static_cast<std::size_t>(emb.cols));
    }

    static void layer_norm(Workspace&, const LayerNorm& ln, const float* x, float* out, int n) {
        const std::size_t C = ln.weight.size();
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            norm(x + t * C, out + t * C, C, ln.weight.data(), ln.bias.data(), ln.eps);
    }

    static void token_shift(Workspace&, const float* z, int C, std::span<const sequence_rows> seqs, float* prev) {
        const auto c = static_cast<std::size_t>(C);
        std::size_t row = 0;
        for (const auto& q : seqs) {
            for (std::size_t t = 0; t < static_cast<std::size_t>(q.rows); ++t)
                for (std::size_t i = 0; i < c; ++i)
                    prev[(row + t) * c + i] = t == 0 ? q.shift[i] : z[(row + t - 1) * c + i];
            row += static_cast<std::size_t>(q.rows);
            for (std::size_t i = 0; i < c; ++i) q.shift[i] = z[(row - 1) * c + i];
        }
    }

    static void lerp(Workspace&, const float* z, const float* prev, const float* mu, int n, int C, float* out) {
        const auto c = static_cast<std::size_t>(C);
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            for (std::size_t i = 0; i < c; ++i)
                out[t * c + i] = z[t * c + i] * mu[i] + prev[t * c + i] * (1.0f - mu[i]);
    }

    static void mix(Workspace&, const float* z, const float* prev, const float* m, int n, int C, float* out) {
        const auto c = static_cast<std::size_t>(C);
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            for (std::size_t i = 0; i < c; ++i) out[t * c + i] = z[t * c + i] + (prev[t * c + i] - z[t * c + i]) * m[i];
    }

    static void ddlerp(Workspace& ws, const float* z, const float* prev, int n, int C, const float* maa_x,
                       const Weight& W1, const Weight* W2, const std::vector<float>* maa, float* const* out) {
        const auto c = static_cast<std::size_t>(C);
        const auto Dm = static_cast<std::size_t>(W2[0].cols);
        std::vector<float> zx(static_cast<std::size_t>(n) * c), q(static_cast<std::size_t>(n) * 5 * Dm);
        mix(ws, z, prev, maa_x, n, C, zx.data());
        project(ws, W1, zx.data(), n, q.data());
        tanh(ws, q.data(), q.size());
        std::vector<float> qs(Dm), e(c);
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            for (std::size_t s = 0; s < 5; ++s) {
                for (std::size_t j = 0; j < Dm; ++j) qs[j] = q[t * 5 * Dm + s * Dm + j];
                project(ws, W2[s], qs.data(), 1, e.data());
                for (std::size_t i = 0; i < c; ++i) {
                    const std::size_t o = t * c + i;
                    out[s][o] = z[o] + (prev[o] - z[o]) * (maa[s][i] + e[i]);
                }
            }
    }

    static void decay(Workspace&, const float* d, int n, int A, float* w, float* log_w) {
        const auto a = static_cast<std::size_t>(A);
        for (std::size_t o = 0; o < static_cast<std::size_t>(n) * a; ++o) {
            log_w[o] = -std::exp(d[o % a] + w[o]);
            w[o] = std::exp(log_w[o]);
        }
    }

    // Y[t][o] = Σ_c decode(W)[o][c]·X[t][c], summed in double.
    static void project(Workspace&, const Weight& W, const float* X, int n, float* Y) {
        const auto cols = static_cast<std::size_t>(W.cols), rows = static_cast<std::size_t>(W.rows);
        std::vector<float> row(cols);
        for (std::size_t o = 0; o < rows; ++o) {
            W.decode_row(static_cast<int>(o), row.data());
            for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t) {
                double acc = 0.0;
                for (std::size_t c = 0; c < cols; ++c) acc += static_cast<double>(row[c]) * X[t * cols + c];
                Y[t * rows + o] = static_cast<float>(acc);
            }
        }
    }

    struct product {
        const Weight* W;
        const float* X;
        float* Y;
    };

    static void project_many(Workspace& ws, std::initializer_list<product> jobs, int n) {
        for (const auto& j : jobs) project(ws, *j.W, j.X, n, j.Y);
    }

    static void tanh(Workspace&, float* x, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) x[i] = std::tanh(x[i]);
    }

    static void silu(Workspace&, float* x, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i)
            x[i] = static_cast<float>(x[i] / (1.0 + std::exp(-static_cast<double>(x[i]))));
    }

    static void relu_sq(Workspace&, float* x, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) x[i] = x[i] > 0.0f ? x[i] * x[i] : 0.0f;
    }

    struct wkv_args {
        int n_head, head_size;
        const float *r, *k, *v, *w, *log_w;
        std::size_t w_stride;
        const float* u;
        float* y;
        std::span<const sequence_rows> seqs;
    };

    // Spec 4.5, token by token: y[j] = Σ_i r[i]·(S[i][j] + u[i]·k[i]·v[j]); S[i][j] = w[i]·S[i][j] + k[i]·v[j].
    static void wkv(Workspace&, const wkv_args& a) {
        const auto N = static_cast<std::size_t>(a.head_size), A = static_cast<std::size_t>(a.n_head) * N;
        std::size_t t = 0;
        for (const auto& q : a.seqs)
            for (int row = 0; row < q.rows; ++row, ++t)
                for (std::size_t h = 0; h < static_cast<std::size_t>(a.n_head); ++h) {
                    const std::size_t o = t * A + h * N;
                    const float* w = a.w + t * a.w_stride + h * N;
                    float* S = q.S + h * N * N;
                    for (std::size_t j = 0; j < N; ++j) {
                        double acc = 0.0;
                        for (std::size_t i = 0; i < N; ++i)
                            acc += static_cast<double>(a.r[o + i]) *
                                   (S[i * N + j] + a.u[h * N + i] * a.k[o + i] * a.v[o + j]);
                        a.y[o + j] = static_cast<float>(acc);
                    }
                    for (std::size_t i = 0; i < N; ++i)
                        for (std::size_t j = 0; j < N; ++j)
                            S[i * N + j] = w[i] * S[i * N + j] + a.k[o + i] * a.v[o + j];
                }
    }

    static void group_norm_gate(Workspace&, const GroupNorm& gn, float* y, const float* g, int n) {
        const std::size_t A = gn.weight.size(), N = A / static_cast<std::size_t>(gn.groups);
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            for (std::size_t h = 0; h < static_cast<std::size_t>(gn.groups); ++h) {
                float* p = y + t * A + h * N;
                norm(p, p, N, gn.weight.data() + h * N, gn.bias.data() + h * N, gn.eps);
                for (std::size_t i = 0; i < N; ++i) p[i] *= g[t * A + h * N + i];
            }
    }

    static void sigmoid_gate_add(Workspace&, float* x, const float* r, const float* v, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i)
            x[i] += static_cast<float>(v[i] / (1.0 + std::exp(-static_cast<double>(r[i]))));
    }

    static void residual_add(Workspace&, float* x, const float* y, std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) x[i] += y[i];
    }

    static void head(Workspace& ws, const LayerNorm& ln_out, const Weight& head_w, const float* x, int n, float* z,
                     float* logits) {
        layer_norm(ws, ln_out, x, z, n);
        project(ws, head_w, z, n, logits);
    }

private:
    // (x - mean) / sqrt(var + eps)·weight + bias over n values, statistics in double.
    static void norm(const float* x, float* out, std::size_t n, const float* weight, const float* bias, float eps) {
        double mean = 0.0, var = 0.0;
        for (std::size_t i = 0; i < n; ++i) mean += x[i];
        mean /= static_cast<double>(n);
        for (std::size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
        var /= static_cast<double>(n);
        const double inv = 1.0 / std::sqrt(var + eps);
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>((x[i] - mean) * inv * weight[i] + bias[i]);
    }
};

}  // namespace rwkv
