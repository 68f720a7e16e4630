// WKV kernels (backend/cpu/wkv.hpp, wkv_chunked.hpp): every SIMD step kernel this CPU runs
// against the scalar reference, and the chunked sequence kernel against an fp64 token-by-token
// recurrence over decays from ≈1 (ω = -12) down to exp(-148) per step (ω = 5).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <random>
#include <rwkv/backend/cpu/wkv.hpp>
#include <rwkv/backend/cpu/wkv_chunked.hpp>
#include <string>
#include <vector>

namespace ck = rwkv::backend::cpu;

namespace {

std::vector<float> uniform(std::size_t n, float lo, float hi, std::mt19937& rng) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> x(n);
    for (auto& e : x) e = d(rng);
    return x;
}

double rms(const std::vector<double>& x) {
    double s = 0;
    for (double e : x) s += e * e;
    return std::sqrt(s / static_cast<double>(x.size()));
}

// max |a - b| / rms(b)
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m / rms(b);
}

std::vector<double> widen(const std::vector<float>& x) { return {x.begin(), x.end()}; }

bool all_finite(const std::vector<float>& x) {
    return std::all_of(x.begin(), x.end(), [](float e) { return std::isfinite(e); });
}

const char* isa_name(ck::wkv_isa i) {
    switch (i) {
        case ck::wkv_isa::scalar: return "scalar";
        case ck::wkv_isa::xsimd: return "xsimd";
        case ck::wkv_isa::avx2: return "avx2";
        case ck::wkv_isa::avx512: return "avx512";
    }
    return "?";
}

// A random layer input for T tokens: λ = -exp(ω) computed directly (pitfall 4).
struct Seq {
    int H, N, T;
    std::size_t A;
    std::vector<float> r, k, v, lw, u, S0;
    Seq(int H_, int N_, int T_, float wlo, float whi, unsigned seed, bool static_decay = false)
        : H(H_), N(N_), T(T_), A(static_cast<std::size_t>(H_ * N_)) {
        std::mt19937 rng(seed);
        const std::size_t n = static_cast<std::size_t>(T) * A;
        r = uniform(n, -1, 1, rng);
        k = uniform(n, -1, 1, rng);
        v = uniform(n, -1, 1, rng);
        u = uniform(A, -1, 1, rng);
        S0 = uniform(A * static_cast<std::size_t>(N), -1, 1, rng);
        lw = uniform(static_decay ? A : n, wlo, whi, rng);
        for (auto& e : lw) e = -std::exp(e);
    }
    std::size_t stride(bool static_decay) const { return static_decay ? 0 : A; }
};

// fp64 token-by-token recurrence (spec 4.5) from the same λ.
void recurrence64(const Seq& s, std::size_t lw_stride, std::vector<double>& y, std::vector<double>& S) {
    const std::size_t N = static_cast<std::size_t>(s.N);
    S = widen(s.S0);
    y.assign(static_cast<std::size_t>(s.T) * s.A, 0.0);
    for (std::size_t t = 0; t < static_cast<std::size_t>(s.T); ++t)
        for (std::size_t h = 0; h < static_cast<std::size_t>(s.H); ++h)
            for (std::size_t i = 0; i < N; ++i) {
                const std::size_t c = h * N + i, row = t * s.A;
                const double ri = s.r[row + c], ki = s.k[row + c], ui = s.u[c];
                const double wi = std::exp(double(s.lw[t * lw_stride + c]));
                double* Si = &S[(h * N + i) * N];
                for (std::size_t j = 0; j < N; ++j) {
                    const double vj = s.v[row + h * N + j];
                    y[row + h * N + j] += ri * (Si[j] + ui * ki * vj);
                    Si[j] = wi * Si[j] + ki * vj;
                }
            }
}

void chunked(const Seq& s, bool static_decay, int Q, int t_begin, int t_end, std::vector<float>& S,
             std::vector<float>& y) {
    std::vector<float> scratch(ck::wkv_chunked_scratch_floats(s.N, Q));
    const std::size_t o = static_cast<std::size_t>(t_begin) * s.A;
    const std::size_t lo = static_cast<std::size_t>(t_begin) * s.stride(static_decay);
    ck::wkv_chunked(s.H, s.N, t_end - t_begin, s.r.data() + o, s.k.data() + o, s.v.data() + o, s.lw.data() + lo,
                    s.stride(static_decay), s.u.data(), S.data(), y.data() + o, scratch.data(), Q);
}

}  // namespace

TEST_CASE("every SIMD WKV step kernel matches the scalar reference", "[wkv]") {
    std::mt19937 rng(7);
    CHECK(ck::wkv_isa_supported(ck::wkv_best_isa()));
    for (auto isa : {ck::wkv_isa::scalar, ck::wkv_isa::xsimd, ck::wkv_isa::avx2, ck::wkv_isa::avx512}) {
        if (!ck::wkv_isa_supported(isa)) {
            WARN("kernel " << isa_name(isa) << " not supported here: skipped");
            continue;
        }
        double worst = 0;
        for (int N : {1, 4, 7, 8, 12, 16, 24, 32, 48, 64, 65, 80, 128}) {
            for (int H : {1, 3}) {
                INFO(isa_name(isa) << " N=" << N << " H=" << H);
                const auto A = static_cast<std::size_t>(H * N);
                std::vector<float> S = uniform(A * static_cast<std::size_t>(N), -1, 1, rng);
                std::vector<float> Sref = S, y(A), yref(A);
                const auto u = uniform(A, -1, 1, rng);
                double max_y = 0, max_s = 0;
                for (int t = 0; t < 6; ++t) {
                    const auto r = uniform(A, -1, 1, rng), k = uniform(A, -1, 1, rng), v = uniform(A, -1, 1, rng);
                    auto w = uniform(A, -8, 2, rng);
                    for (auto& e : w) e = std::exp(-std::exp(e));
                    ck::wkv_step_reference(H, N, r.data(), k.data(), v.data(), w.data(), u.data(), Sref.data(),
                                           yref.data());
                    ck::wkv_step_isa(isa, H, N, r.data(), k.data(), v.data(), w.data(), u.data(), S.data(), y.data());
                    max_y = std::max(max_y, rel_err(y, widen(yref)));
                    max_s = std::max(max_s, rel_err(S, widen(Sref)));
                }
                CHECK(max_y < 1e-5);
                CHECK(max_s < 1e-5);
                worst = std::max({worst, max_y, max_s});
            }
        }
        WARN(isa_name(isa) << " vs reference: max error " << worst << " (relative to RMS)");
    }
}

TEST_CASE("wkv_step dispatches to a kernel that matches the reference", "[wkv]") {
    std::mt19937 rng(3);
    const int H = 4, N = 64;
    const auto A = static_cast<std::size_t>(H * N);
    std::vector<float> S = uniform(A * N, -1, 1, rng), Sref = S, y(A), yref(A);
    const auto r = uniform(A, -1, 1, rng), k = uniform(A, -1, 1, rng), v = uniform(A, -1, 1, rng),
               u = uniform(A, -1, 1, rng), w = uniform(A, 0, 1, rng);
    ck::wkv_step(H, N, r.data(), k.data(), v.data(), w.data(), u.data(), S.data(), y.data());
    ck::wkv_step_reference(H, N, r.data(), k.data(), v.data(), w.data(), u.data(), Sref.data(), yref.data());
    CHECK(rel_err(y, widen(yref)) < 2e-6);
    CHECK(rel_err(S, widen(Sref)) < 2e-6);
}

TEST_CASE("chunked WKV matches the fp64 recurrence over decays from 1 to exp(-148)", "[wkv]") {
    struct Range {
        float lo, hi;
    };
    double worst_y = 0, worst_s = 0;
    unsigned seed = 1;
    for (Range w : {Range{-8, 5}, Range{-12, -6}, Range{2, 4}})
        for (int N : {8, 64})
            for (int Q : {16, 24, 32, 64})
                for (int T : {1, 15, 100, 257}) {
                    INFO("omega in [" << w.lo << ", " << w.hi << "] N=" << N << " Q=" << Q << " T=" << T);
                    const Seq s(2, N, T, w.lo, w.hi, seed++);
                    std::vector<double> y64, S64;
                    recurrence64(s, s.A, y64, S64);
                    std::vector<float> S = s.S0, y(y64.size(), 0.0f);
                    chunked(s, false, Q, 0, T, S, y);
                    REQUIRE(all_finite(y));
                    REQUIRE(all_finite(S));
                    const double ey = rel_err(y, y64), es = rel_err(S, S64);
                    CHECK(ey < 1e-4);
                    CHECK(es < 1e-4);
                    worst_y = std::max(worst_y, ey);
                    worst_s = std::max(worst_s, es);
                }
    WARN("chunked vs fp64: max output error " << worst_y << ", max state error " << worst_s << " (relative to RMS)");
}

TEST_CASE("chunked WKV agrees with the fp32 step kernel token by token", "[wkv]") {
    const Seq s(3, 64, 130, -8, 5, 99);
    std::vector<float> S = s.S0, y(static_cast<std::size_t>(s.T) * s.A);
    chunked(s, false, 64, 0, s.T, S, y);
    std::vector<float> Ss = s.S0, ys(y.size()), w(s.lw.size());
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(s.lw[i]);
    for (std::size_t t = 0; t < static_cast<std::size_t>(s.T); ++t)
        ck::wkv_step(s.H, s.N, s.r.data() + t * s.A, s.k.data() + t * s.A, s.v.data() + t * s.A, w.data() + t * s.A,
                     s.u.data(), Ss.data(), ys.data() + t * s.A);
    CHECK(rel_err(y, widen(ys)) < 1e-4);
    CHECK(rel_err(S, widen(Ss)) < 1e-4);
}

TEST_CASE("chunked WKV over T1 then T2 tokens equals T1+T2 at once", "[wkv]") {
    const Seq s(2, 64, 150, -8, 5, 11);
    std::vector<float> S = s.S0, y(static_cast<std::size_t>(s.T) * s.A);
    chunked(s, false, 64, 0, s.T, S, y);
    SECTION("split inside a chunk: equal to rounding") {
        std::vector<float> S2 = s.S0, y2(y.size());
        chunked(s, false, 64, 0, 37, S2, y2);
        chunked(s, false, 64, 37, s.T, S2, y2);
        CHECK(rel_err(y2, widen(y)) < 1e-5);
        CHECK(rel_err(S2, widen(S)) < 1e-5);
    }
    SECTION("split on a chunk boundary: the same arithmetic, bit for bit") {
        std::vector<float> S2 = s.S0, y2(y.size());
        chunked(s, false, 64, 0, 64, S2, y2);
        chunked(s, false, 64, 64, s.T, S2, y2);
        CHECK(y2 == y);
        CHECK(S2 == S);
    }
    SECTION("heads split across calls (threads) give the same result") {
        std::vector<float> S2 = s.S0, y2(y.size());
        std::vector<float> scratch(ck::wkv_chunked_scratch_floats(s.N, 64));
        for (int h = 0; h < s.H; ++h)
            ck::wkv_chunked_heads(h, h + 1, s.H, s.N, s.T, s.r.data(), s.k.data(), s.v.data(), s.lw.data(), s.A,
                                  s.u.data(), S2.data(), y2.data(), scratch.data(), 64);
        CHECK(y2 == y);
        CHECK(S2 == S);
    }
    SECTION("no tokens: nothing changes") {
        std::vector<float> S2 = s.S0, y2(y.size(), 0.0f);
        chunked(s, false, 64, 0, 0, S2, y2);
        CHECK(S2 == s.S0);
    }
}

TEST_CASE("chunked WKV with x052's static decay (λ row stride 0)", "[wkv]") {
    for (int N : {8, 64})
        for (int Q : {16, 40, 64})
            for (int T : {1, 15, 100, 257})
                for (float lo : {-12.0f, -8.0f, 1.0f}) {
                    INFO("N=" << N << " Q=" << Q << " T=" << T << " omega from " << lo);
                    const Seq s(2, N, T, lo, lo + 4, 1000u + static_cast<unsigned>(N * T + Q), true);
                    std::vector<double> y64, S64;
                    recurrence64(s, 0, y64, S64);
                    std::vector<float> S = s.S0, y(y64.size());
                    chunked(s, true, Q, 0, T, S, y);
                    REQUIRE(all_finite(y));
                    REQUIRE(all_finite(S));
                    CHECK(rel_err(y, y64) < 1e-4);
                    CHECK(rel_err(S, S64) < 1e-4);
                    // The tabulated static path does the per-token path's arithmetic.
                    Seq rows = s;
                    rows.lw.clear();
                    for (int t = 0; t < T; ++t) rows.lw.insert(rows.lw.end(), s.lw.begin(), s.lw.end());
                    std::vector<float> S2 = s.S0, y2(y.size());
                    chunked(rows, false, Q, 0, T, S2, y2);
                    CHECK(rel_err(y2, widen(y)) < 1e-6);
                    CHECK(rel_err(S2, widen(S)) < 1e-6);
                }
}
