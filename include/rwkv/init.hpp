#pragma once
// Random models for researchers and benchmarks: the official RWKV-LM initialisation (spec
// appendix B) as a set of tensors with official names, so a random model goes through exactly
// the same loader checks as a checkpoint. Deterministic for a seed on every platform (own RNG).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/QR>

#include "config.hpp"
#include "io/tensor.hpp"
#include "scalar.hpp"

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

template <class T>
constexpr io::dtype dtype_of() {
    if constexpr (std::is_same_v<T, float>) return io::dtype::f32;
    else if constexpr (std::is_same_v<T, bfloat16>) return io::dtype::bf16;
    else return io::dtype::f16;
}

class TensorSetBuilder {
public:
    explicit TensorSetBuilder(std::string label) { file_.path = std::move(label); }

    template <class T = float>
    void add(const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& values) {
        auto buf = std::make_shared<std::vector<T>>(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) (*buf)[i] = from_float<T>(values[i]);
        io::tensor_view t;
        t.name = name;
        t.type = dtype_of<T>();
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

// The official tensors of a fresh model of shape `c`; big matrices stored as T.
template <class T>
io::tensor_file random_tensors(Config c, std::uint64_t seed, Init init) {
    c.finalize();
    Rng rng{seed};
    TensorSetBuilder b("random " + std::string(c.version == Version::x052 ? "x052" : "x060") + " model (seed " +
                       std::to_string(seed) + ")");
    const int L = c.n_layer, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size, H = c.n_head,
              N = c.head_size, Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
    const bool v6 = c.version == Version::x060;
    auto filled = [](std::size_t n, float v) { return std::vector<float>(n, v); };
    auto uniform = [&](std::size_t n, float a) {
        std::vector<float> v(n);
        for (auto& x : v) x = rng.uniform(-a, a);
        return v;
    };
    auto vec = [](int n, auto f) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(f(i));
        return v;
    };
    const auto uC = static_cast<std::size_t>(C);
    const std::int64_t C64 = C;

    b.add<T>("emb.weight", {V, C}, uniform(static_cast<std::size_t>(V) * uC, 1e-4f));
    b.add("blocks.0.ln0.weight", {C}, filled(uC, 1.0f));
    b.add("blocks.0.ln0.bias", {C}, filled(uC, 0.0f));
    for (int l = 0; l < L; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".";
        const double r0 = L > 1 ? static_cast<double>(l) / (L - 1) : 0.0;  // 0 -> 1 over depth
        const double r1 = 1.0 - static_cast<double>(l) / L;                 // 1 -> ~0
        auto phi_pow = [&](double e) { return vec(C, [&](int i) { return std::pow(static_cast<double>(i) / C, e); }); };
        auto one_minus = [](std::vector<float> v) {
            for (auto& x : v) x = 1.0f - x;
            return v;
        };
        for (const char* ln : {"ln1", "ln2"}) {
            b.add(p + ln + ".weight", {C}, filled(uC, 1.0f));
            b.add(p + ln + ".bias", {C}, filled(uC, 0.0f));
        }
        auto mix_v = phi_pow(r1);
        for (auto& x : mix_v) x += static_cast<float>(0.3 * r0);
        if (v6) {
            b.add(p + "att.time_maa_x", {1, 1, C64}, one_minus(phi_pow(r1)));
            b.add(p + "att.time_maa_w", {1, 1, C64}, one_minus(phi_pow(r1)));
            b.add(p + "att.time_maa_k", {1, 1, C64}, one_minus(phi_pow(r1)));
            b.add(p + "att.time_maa_v", {1, 1, C64}, one_minus(mix_v));
            b.add(p + "att.time_maa_r", {1, 1, C64}, one_minus(phi_pow(0.5 * r1)));
            b.add(p + "att.time_maa_g", {1, 1, C64}, one_minus(phi_pow(0.5 * r1)));
            b.add(p + "att.time_maa_w1", {C, 5 * Dm}, filled(uC * 5 * static_cast<std::size_t>(Dm), 0.0f));
            b.add(p + "att.time_maa_w2", {5, Dm, C}, uniform(5 * static_cast<std::size_t>(Dm) * uC, 0.01f));
            b.add(p + "att.time_decay_w1", {C, Dw}, filled(uC * static_cast<std::size_t>(Dw), 0.0f));
            b.add(p + "att.time_decay_w2", {Dw, A}, uniform(static_cast<std::size_t>(Dw) * static_cast<std::size_t>(A), 0.01f));
        } else {
            b.add(p + "att.time_mix_k", {1, 1, C64}, phi_pow(r1));
            b.add(p + "att.time_mix_v", {1, 1, C64}, mix_v);
            b.add(p + "att.time_mix_r", {1, 1, C64}, phi_pow(0.5 * r1));
            b.add(p + "att.time_mix_g", {1, 1, C64}, phi_pow(0.5 * r1));
        }
        const auto decay = vec(A, [&](int n) { return -6.0 + 5.0 * std::pow(static_cast<double>(n) / std::max(1, A - 1), 0.7 + 1.3 * r0); });
        const auto bonus = vec(A, [&](int n) { return r0 * (1.0 - static_cast<double>(n) / std::max(1, A - 1)) + 0.1 * (((n + 1) % 3) - 1); });
        if (v6) b.add(p + "att.time_decay", {1, 1, A}, decay);
        else b.add(p + "att.time_decay", {H, N}, decay);
        b.add(p + "att.time_faaaa", {H, N}, bonus);
        b.add<T>(p + "att.receptance.weight", {A, C}, orthogonal(rng, A, C, 1.0f, init));
        b.add<T>(p + "att.key.weight", {A, C}, orthogonal(rng, A, C, 0.1f, init));
        b.add<T>(p + "att.value.weight", {A, C}, orthogonal(rng, A, C, 1.0f, init));
        b.add<T>(p + "att.gate.weight", {A, C}, orthogonal(rng, A, C, 0.1f, init));
        b.add<T>(p + "att.output.weight", {C, A}, orthogonal(rng, C, A, 0.0f, init));
        b.add(p + "att.ln_x.weight", {A}, filled(static_cast<std::size_t>(A), static_cast<float>(std::pow((1.0 + l) / L, 0.7))));
        b.add(p + "att.ln_x.bias", {A}, filled(static_cast<std::size_t>(A), 0.0f));
        if (v6) {
            b.add(p + "ffn.time_maa_k", {1, 1, C64}, one_minus(phi_pow(r1 * r1 * r1)));
            b.add(p + "ffn.time_maa_r", {1, 1, C64}, one_minus(phi_pow(r1 * r1 * r1)));
        } else {
            b.add(p + "ffn.time_mix_k", {1, 1, C64}, phi_pow(r1));
            b.add(p + "ffn.time_mix_r", {1, 1, C64}, phi_pow(r1));
        }
        b.add<T>(p + "ffn.key.weight", {F, C}, orthogonal(rng, F, C, 1.0f, init));
        b.add<T>(p + "ffn.receptance.weight", {C, C}, orthogonal(rng, C, C, 0.0f, init));
        b.add<T>(p + "ffn.value.weight", {C, F}, orthogonal(rng, C, F, 0.0f, init));
    }
    b.add("ln_out.weight", {C}, filled(uC, 1.0f));
    b.add("ln_out.bias", {C}, filled(uC, 0.0f));
    const float head_gain = V > C ? 0.5f * std::sqrt(static_cast<float>(V) / static_cast<float>(C)) : 0.5f;
    b.add<T>("head.weight", {V, C}, orthogonal(rng, V, C, head_gain, init));
    return b.take();
}

}  // namespace detail
}  // namespace rwkv
