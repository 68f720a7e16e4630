// The CPU backend's SIMD elementwise kernels (backend/cpu/elementwise.hpp) on every instruction-
// set leaf this CPU has: exp-based ops and tanh within 2 ulp of the exact value (computed in
// double), edge values (±0, overflow, subnormal results, ±inf, NaN), every length around the
// vector widths (the partial-vector tails), the token mixes bit for bit equal to the plain
// formulas, the norms against a double-precision two-pass norm.

#include <rwkv/backend/cpu/elementwise.hpp>
#include <rwkv/backend/cpu/norm.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define RWKV_TEST_BUILD_FMA true
#else
#define RWKV_TEST_BUILD_FMA false
#endif

namespace {

using rwkv::backend::cpu::Isa;
namespace ew = rwkv::backend::cpu::elementwise;

std::vector<Isa> leaves() {
    std::vector<Isa> out{Isa::generic};
    for (Isa i : {Isa::avx2, Isa::avx512})
        if (rwkv::backend::cpu::isa_supported(i)) out.push_back(i);
    return out;
}

// Distance in units in the last place of `want` (rounded to fp32) from `got`.
double ulps(float got, double want) {
    if (std::isnan(want)) return std::isnan(got) ? 0.0 : 1e9;
    if (std::isinf(want)) return got == static_cast<float>(want) ? 0.0 : 1e9;
    const float w = static_cast<float>(want);
    if (std::isinf(w)) return got == w ? 0.0 : 1e9;
    const double spacing = std::nextafter(std::fabs(w), std::numeric_limits<float>::infinity()) - std::fabs(w);
    return std::fabs(static_cast<double>(got) - want) / spacing;
}

std::vector<float> inputs(float lo, float hi, std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

// Worst ulp error of a unary kernel against its double-precision definition.
template <class Kernel, class Exact>
double worst_ulps(Kernel kernel, Exact exact, const std::vector<float>& x, Isa isa) {
    auto y = x;
    kernel(y.data(), y.size(), isa);
    double worst = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulps(y[i], exact(static_cast<double>(x[i]))));
    return worst;
}

}  // namespace

TEST_CASE("tanh, silu and the decay are within 2 ulp on every leaf, edge values included", "[elementwise]") {
    auto tanh_k = [](float* x, std::size_t n, Isa isa) { ew::tanh(x, n, isa); };
    auto silu_k = [](float* x, std::size_t n, Isa isa) { ew::silu(x, n, isa); };
    const auto silu_exact = [](double x) { return x / (1.0 + std::exp(-x)); };
    const auto tanh_exact = [](double x) { return std::tanh(x); };
    for (Isa isa : leaves()) {
        INFO("leaf " << rwkv::backend::cpu::isa_name(isa));
        for (auto [lo, hi] : {std::pair{-0.7f, 0.7f}, std::pair{-6.0f, 6.0f}, std::pair{-60.0f, 60.0f}}) {
            INFO("range " << lo << " .. " << hi);
            const auto x = inputs(lo, hi, 20000, 7);
            CHECK(worst_ulps(tanh_k, tanh_exact, x, isa) <= 2.0);
            CHECK(worst_ulps(silu_k, silu_exact, x, isa) <= 2.0);
        }
        // Around the switch between tanh's two formulas, and tiny arguments.
        std::vector<float> near;
        for (float v = 0.6f; v < 0.65f; v = std::nextafter(v, 1.0f)) near.push_back(v), near.push_back(-v);
        for (float v = 1e-30f; v < 1e-2f; v *= 1.01f) near.push_back(v);
        CHECK(worst_ulps(tanh_k, tanh_exact, near, isa) <= 2.0);

        // Edge values: signs of zero, saturation, overflow of e^{-x}, infinities, NaN.
        const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> e{0.0f, -0.0f, 30.0f, -30.0f, 1e4f, -1e4f, inf, -inf, nan};
        auto t = e;
        ew::tanh(t.data(), t.size(), isa);
        CHECK((t[0] == 0.0f && !std::signbit(t[0]) && t[1] == 0.0f && std::signbit(t[1])));
        CHECK((t[2] == 1.0f && t[3] == -1.0f && t[4] == 1.0f && t[5] == -1.0f && t[6] == 1.0f && t[7] == -1.0f));
        CHECK(std::isnan(t[8]));
        auto s = e;
        ew::silu(s.data(), s.size(), isa);
        CHECK((s[0] == 0.0f && s[2] == 30.0f && s[4] == 1e4f && s[6] == inf));
        CHECK(s[5] == 0.0f);                            // -x / e^{x} underflows to -0, not NaN
        CHECK((std::isnan(s[7]) && std::isnan(s[8])));  // -inf / inf, as the plain formula

        // decay: λ = -exp(d + ω) and w = exp(λ), including λ whose exp is subnormal or zero.
        std::vector<float> d{-8.0f, -1.0f, 0.0f, 1.5f, 2.0f, 4.4f, 4.6f, 4.64f, 5.0f, 12.0f};
        const auto om = inputs(-2.0f, 2.0f, d.size() * 37, 3);
        auto w = om;
        std::vector<float> lw(om.size());
        ew::decay(d.data(), 37, d.size(), w.data(), lw.data(), isa);
        double worst_l = 0.0, worst_w = 0.0;
        for (std::size_t i = 0; i < om.size(); ++i) {
            const double arg = static_cast<double>(d[i % d.size()] + om[i]);  // the fp32 sum, as the kernel
            worst_l = std::max(worst_l, ulps(lw[i], -std::exp(arg)));
            worst_w = std::max(worst_w, ulps(w[i], std::exp(static_cast<double>(lw[i]))));
        }
        CHECK(worst_l <= 2.0);
        CHECK(worst_w <= 2.0);
    }
}

TEST_CASE("every length around the vector widths: tails equal whole vectors", "[elementwise]") {
    for (Isa isa : leaves()) {
        INFO("leaf " << rwkv::backend::cpu::isa_name(isa));
        const auto base = inputs(-5.0f, 5.0f, 64, 11), r = inputs(-6.0f, 6.0f, 64, 12), v = inputs(-1.0f, 1.0f, 64, 13);
        auto full_t = base, full_s = base, full_g = base, full_q = base, full_a = base;
        ew::tanh(full_t.data(), 64, isa);
        ew::silu(full_s.data(), 64, isa);
        ew::sigmoid_gate_add(full_g.data(), r.data(), v.data(), 64, isa);
        ew::relu_sq(full_q.data(), 64, isa);
        ew::add(full_a.data(), v.data(), 64, isa);
        for (std::size_t n = 0; n <= 40; ++n) {
            INFO("n " << n);
            // n values followed by a guard that must stay untouched
            auto t = base, s = base, g = base, q = base, a = base;
            ew::tanh(t.data(), n, isa);
            ew::silu(s.data(), n, isa);
            ew::sigmoid_gate_add(g.data(), r.data(), v.data(), n, isa);
            ew::relu_sq(q.data(), n, isa);
            ew::add(a.data(), v.data(), n, isa);
            for (std::size_t i = 0; i < 64; ++i) {
                const bool in = i < n;
                CHECK(t[i] == (in ? full_t[i] : base[i]));
                CHECK(s[i] == (in ? full_s[i] : base[i]));
                CHECK(g[i] == (in ? full_g[i] : base[i]));
                CHECK(q[i] == (in ? full_q[i] : base[i]));
                CHECK(a[i] == (in ? full_a[i] : base[i]));
            }
        }
    }
}

TEST_CASE("the token mixes are the plain formulas bit for bit on every leaf", "[elementwise]") {
    for (Isa isa : leaves()) {
        INFO("leaf " << rwkv::backend::cpu::isa_name(isa));
        for (std::size_t C : {1u, 7u, 16u, 33u, 100u}) {
            const std::size_t rows = 3, N = rows * C;
            const auto z = inputs(-3.0f, 3.0f, N, 1), prev = inputs(-3.0f, 3.0f, N, 2);
            const auto mu = inputs(0.0f, 1.0f, C, 3), lora = inputs(-1.0f, 1.0f, N, 4);
            std::vector<float> out(N), want(N);
            // The plain formulas as the compiler builds the reference's loops: volatile products
            // (no contraction) where the build has no FMA, else the add's first product fused.
            constexpr bool fused = RWKV_TEST_BUILD_FMA;
            auto plain = [&](int which) {
                for (std::size_t t = 0; t < rows; ++t)
                    for (std::size_t i = 0; i < C; ++i) {
                        const std::size_t o = t * C + i;
                        if (which == 0) {
                            volatile float a = z[o] * mu[i], b = prev[o] * (1.0f - mu[i]);
                            want[o] = fused ? std::fma(z[o], mu[i], b) : a + b;
                        } else {
                            const float m = which == 1 ? mu[i] : mu[i] + lora[o];
                            volatile float a = (prev[o] - z[o]) * m;
                            want[o] = fused ? std::fma(prev[o] - z[o], m, z[o]) : z[o] + a;
                        }
                    }
            };
            ew::lerp(z.data(), prev.data(), mu.data(), rows, C, out.data(), isa);
            plain(0);
            CHECK(out == want);
            ew::mix(z.data(), prev.data(), mu.data(), rows, C, out.data(), isa);
            plain(1);
            CHECK(out == want);
            out = lora;
            ew::mix_lora(z.data(), prev.data(), mu.data(), rows, C, out.data(), isa);
            plain(2);
            CHECK(out == want);
        }
    }
}

TEST_CASE("LayerNorm / GroupNorm rows match a double-precision norm on every leaf", "[elementwise]") {
    for (Isa isa : leaves()) {
        INFO("leaf " << rwkv::backend::cpu::isa_name(isa));
        for (std::size_t n : {1u, 3u, 16u, 17u, 64u, 100u, 1024u, 4099u}) {
            INFO("n " << n);
            auto x = inputs(-2.0f, 2.0f, n, 21);
            for (auto& v : x) v += 300.0f;  // a large offset: the two passes must not cancel
            const auto w = inputs(-1.0f, 1.0f, n, 22), b = inputs(-1.0f, 1.0f, n, 23),
                       gate = inputs(-2.0f, 2.0f, n, 24);
            double mean = 0.0, var = 0.0;
            for (float v : x) mean += v;
            mean /= static_cast<double>(n);
            for (float v : x) var += (v - mean) * (v - mean);
            var /= static_cast<double>(n);
            const double inv = 1.0 / std::sqrt(var + 1e-5);
            std::vector<float> out(n), gated(n);
            ew::norm_row(x.data(), out.data(), n, w.data(), b.data(), 1e-5f, nullptr, isa);
            ew::norm_row(x.data(), gated.data(), n, w.data(), b.data(), 1e-5f, gate.data(), isa);
            for (std::size_t i = 0; i < n; ++i) {
                const double want = (x[i] - mean) * inv * w[i] + b[i];
                // the inputs carry fp32 rounding of 300 + O(1): ~3e-5 of the deviations
                CHECK(std::fabs(out[i] - want) <= 1e-4 * (1.0 + std::fabs(want)));
                CHECK(gated[i] == out[i] * gate[i]);
            }
        }
    }
}

TEST_CASE("the leaves agree with each other to rounding", "[elementwise]") {
    const auto all = leaves();
    const auto x = inputs(-9.0f, 9.0f, 999, 5);
    for (std::size_t l = 1; l < all.size(); ++l) {
        auto a = x, b = x;
        ew::silu(a.data(), a.size(), all[0]);
        ew::silu(b.data(), b.size(), all[l]);
        for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::fabs(a[i] - b[i]) <= 4e-7f * (1.0f + std::fabs(a[i])));
    }
}
