#pragma once
// Random models for researchers and benchmarks: the official RWKV-LM initialisation (spec
// appendix B) as a set of tensors with official names, so a random model goes through exactly
// the same loader checks as a checkpoint. Deterministic for a seed on every platform (own RNG).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/eigen.hpp"

#include "config.hpp"
#include "io/tensor.hpp"
#include "scalar.hpp"
#include "tensor_table.hpp"
#include "weight.hpp"

namespace rwkv {

enum class Init : std::uint8_t {
    official,  // appendix B: orthogonal matrices with the official gains (slow for > 1B params)
    fast,      // same shapes and gains, scaled uniform matrices instead of orthogonal ones:
               // for benchmarks at released sizes, where the QR factorisations would take minutes
};

namespace detail {

// splitmix64: tiny, fast, and the same sequence everywhere (std distributions are not).
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    float uniform(float a, float b) { return a + (b - a) * static_cast<float>(uniform01()); }
    double normal() {  // Box-Muller
        const double u1 = 1.0 - uniform01(), u2 = uniform01();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

class TensorSetBuilder {
public:
    explicit TensorSetBuilder(std::string label) { file_.path = std::move(label); }

    template <class T = float>
    void add(const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& values) {
        auto buf = std::make_shared<std::vector<T>>(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) (*buf)[i] = from_float<T>(values[i]);
        io::tensor_view t;
        t.name = name;
        t.type = rwkv::dtype_of<T>();
        t.shape = std::move(shape);
        t.data = std::as_bytes(std::span<const T>(*buf));
        t.owner = buf;
        file_.tensors.push_back(std::move(t));
    }

    io::tensor_file take() { return std::move(file_); }

private:
    io::tensor_file file_;
};

// PyTorch's orthogonal_ on an [out][in] matrix, times gain; `fast` swaps the QR for a uniform
// matrix with the same per-entry variance (gain² / max(out, in)).
inline std::vector<float> orthogonal(Rng& rng, int rows, int cols, float gain, Init init) {
    std::vector<float> out(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), 0.0f);
    if (gain == 0.0f) return out;
    if (init == Init::fast) {
        const float a = gain * std::sqrt(3.0f / static_cast<float>(std::max(rows, cols)));
        for (auto& v : out) v = rng.uniform(-a, a);
        return out;
    }
    const int big = std::max(rows, cols), small = std::min(rows, cols);
    Eigen::MatrixXd g(big, small);
    for (int j = 0; j < small; ++j)
        for (int i = 0; i < big; ++i) g(i, j) = rng.normal();
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(big, small);
    const Eigen::MatrixXd r = qr.matrixQR().topRows(small).triangularView<Eigen::Upper>();
    for (int j = 0; j < small; ++j)
        if (r(j, j) < 0) q.col(j) *= -1.0;
    for (int o = 0; o < rows; ++o)
        for (int i = 0; i < cols; ++i)
            out[static_cast<std::size_t>(o) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(i)] =
                static_cast<float>(gain * (rows >= cols ? q(o, i) : q(i, o)));
    return out;
}

// The official tensors of a fresh model of shape `c` (every entry of tensor_table.hpp, in its
// order); big matrices and the LoRAs stored as T. The values follow RWKV-LM's init (spec appendix B).
template <class T>
io::tensor_file random_tensors(Config c, std::uint64_t seed, Init init) {
    c.finalize();
    Rng rng{seed};
    TensorSetBuilder b("random " + std::string(c.version == Version::x052 ? "x052" : "x060") + " model (seed " +
                       std::to_string(seed) + ")");
    const int L = c.n_layer, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size;
    auto vec = [](int n, auto f) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(f(i));
        return v;
    };
    auto filled = [](std::size_t n, float v) { return std::vector<float>(n, v); };
    auto uniform = [&](std::size_t n, float a) {
        std::vector<float> v(n);
        for (auto& x : v) x = rng.uniform(-a, a);
        return v;
    };
    auto one_minus = [](std::vector<float> v) {
        for (auto& x : v) x = 1.0f - x;
        return v;
    };
    for (const tensor_spec& t : official_tensors(c)) {
        std::size_t count = 1;
        for (auto d : t.shape) count *= static_cast<std::size_t>(d);
        const int l = std::max(t.layer, 0);
        const double r0 = L > 1 ? static_cast<double>(l) / (L - 1) : 0.0;  // 0 -> 1 over depth
        const double r1 = 1.0 - static_cast<double>(l) / L;                // 1 -> ~0
        auto phi_pow = [&](double e) { return vec(C, [&](int i) { return std::pow(static_cast<double>(i) / C, e); }); };
        auto mix_v = [&] {
            auto v = phi_pow(r1);
            for (auto& x : v) x += static_cast<float>(0.3 * r0);
            return v;
        };
        auto matrix = [&](int rows, int cols, float gain) {
            b.add<T>(t.name, t.shape, orthogonal(rng, rows, cols, gain, init));
        };
        using R = tensor_role;
        switch (t.role) {
            case R::emb: b.add<T>(t.name, t.shape, uniform(count, 1e-4f)); break;
            case R::head:
                matrix(V, C, V > C ? 0.5f * std::sqrt(static_cast<float>(V) / static_cast<float>(C)) : 0.5f);
                break;
            case R::ln0_weight:
            case R::ln1_weight:
            case R::ln2_weight:
            case R::ln_out_weight: b.add(t.name, t.shape, filled(count, 1.0f)); break;
            case R::ln0_bias:
            case R::ln1_bias:
            case R::ln2_bias:
            case R::ln_out_bias:
            case R::att_ln_x_bias: b.add(t.name, t.shape, filled(count, 0.0f)); break;
            case R::att_mix_k:
            case R::ffn_mix_k:
            case R::ffn_mix_r: b.add(t.name, t.shape, phi_pow(r1)); break;
            case R::att_mix_v: b.add(t.name, t.shape, mix_v()); break;
            case R::att_mix_r:
            case R::att_mix_g: b.add(t.name, t.shape, phi_pow(0.5 * r1)); break;
            case R::att_maa_x:
            case R::att_maa_w:
            case R::att_maa_k: b.add(t.name, t.shape, one_minus(phi_pow(r1))); break;
            case R::att_maa_v: b.add(t.name, t.shape, one_minus(mix_v())); break;
            case R::att_maa_r:
            case R::att_maa_g: b.add(t.name, t.shape, one_minus(phi_pow(0.5 * r1))); break;
            case R::ffn_maa_k:
            case R::ffn_maa_r: b.add(t.name, t.shape, one_minus(phi_pow(r1 * r1 * r1))); break;
            // The LoRA matrices in T as well, as official checkpoints hold every tensor in bf16.
            case R::att_maa_w1:
            case R::att_decay_w1: b.add<T>(t.name, t.shape, filled(count, 0.0f)); break;
            case R::att_maa_w2:
            case R::att_decay_w2: b.add<T>(t.name, t.shape, uniform(count, 0.01f)); break;
            case R::att_decay:
                b.add(t.name, t.shape, vec(A, [&](int n) {
                          return -6.0 + 5.0 * std::pow(static_cast<double>(n) / std::max(1, A - 1), 0.7 + 1.3 * r0);
                      }));
                break;
            case R::att_faaaa:
                b.add(t.name, t.shape, vec(A, [&](int n) {
                          return r0 * (1.0 - static_cast<double>(n) / std::max(1, A - 1)) + 0.1 * (((n + 1) % 3) - 1);
                      }));
                break;
            case R::att_ln_x_weight:
                b.add(t.name, t.shape, filled(count, static_cast<float>(std::pow((1.0 + l) / L, 0.7))));
                break;
            case R::att_receptance: matrix(A, C, 1.0f); break;
            case R::att_key: matrix(A, C, 0.1f); break;
            case R::att_value: matrix(A, C, 1.0f); break;
            case R::att_gate: matrix(A, C, 0.1f); break;
            case R::att_output: matrix(C, A, 0.0f); break;
            case R::ffn_key: matrix(F, C, 1.0f); break;
            case R::ffn_receptance: matrix(C, C, 0.0f); break;
            case R::ffn_value: matrix(C, F, 0.0f); break;
        }
    }
    return b.take();
}

}  // namespace detail
}  // namespace rwkv
