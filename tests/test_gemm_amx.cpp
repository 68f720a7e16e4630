// AMX-BF16 prefill GEMM: against a double-precision reference computed from the bf16-rounded
// activations and the bf16 weights, on odd shapes (tails in n, rows and K), full and partial row
// ranges (only the range is written), unaligned operands. Skipped where AMX is unavailable.

#include <rwkv/backend/cpu/gemm_amx.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "reference.hpp"

using namespace rwkv;
using namespace rwkv::backend::cpu;
using test_support::Activations;
using test_support::reference;
using test_support::TestMatrix;

namespace {

constexpr float sentinel = 12345.0f;

// Worst |y - ref| / Σ|w·x| over rows [rb, re) of every t; also false when a column outside the
// range was touched.
double check_output(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& mag, int n,
                    int rows, int rb, int re, bool& outside_ok) {
    double worst = 0.0;
    outside_ok = true;
    for (int t = 0; t < n; ++t) {
        for (int o = 0; o < rows; ++o) {
            const std::size_t i = static_cast<std::size_t>(t) * rows + o;
            if (o < rb || o >= re) {
                if (y[i] != sentinel) outside_ok = false;
                continue;
            }
            const double e = std::fabs(static_cast<double>(y[i]) - ref[i]);
            if (!(e <= 1e30)) return INFINITY;
            if (e > 0) worst = std::max(worst, e / (mag[i] + 1e-300));
        }
    }
    return worst;
}

}  // namespace

TEST_CASE("gemm_rows_amx matches a bf16-rounded fp64 reference", "[gemm_amx]") {
    if (!amx_bf16_available()) {
        WARN("AMX-BF16 not available on this CPU/OS: skipped");
        return;
    }
    std::mt19937 rng(7);
    std::vector<double> ref, mag;
    for (int cols : {1, 31, 32, 64, 100, 2048}) {
        for (int rows : {1, 16, 33, 100}) {
            for (int n : {1, 5, 16, 64, 128}) {
                TestMatrix<bfloat16> W(rows, cols, rng);
                Activations X(n, cols, rng);
                // The reference sees X as the kernel does: rounded to bf16 (nearest even).
                std::vector<float> xr(X.p, X.p + static_cast<std::size_t>(n) * cols);
                for (auto& v : xr) v = bfloat16::from_float(v).to_float();
                reference(W.m, xr.data(), n, ref, mag);
                std::vector<float> scratch(gemm_amx_scratch_floats(n, cols) + 1);
                struct Range {
                    int b, e;
                };
                const Range ranges[] = {{0, rows}, {rows / 3, rows - rows / 4}, {rows - 1, rows}};
                for (const Range rg : ranges) {
                    if (rg.b >= rg.e) continue;
                    INFO("n " << n << ", " << rows << "x" << cols << ", rows [" << rg.b << ", " << rg.e << ")");
                    std::vector<float> y(static_cast<std::size_t>(n) * rows + 1, sentinel);
                    // Unaligned output and scratch.
                    gemm_rows_amx(W.m, X.p, n, y.data() + 1, rg.b, rg.e, scratch.data() + 1);
                    const std::vector<float> yv(y.begin() + 1, y.end());
                    bool outside_ok = true;
                    const double err = check_output(yv, ref, mag, n, rows, rg.b, rg.e, outside_ok);
                    CHECK(outside_ok);
                    CHECK(err <= 1e-5);
                }
            }
        }
    }
}

TEST_CASE("gemm_rows_amx: several row bands and K chunks", "[gemm_amx]") {
    if (!amx_bf16_available()) {
        WARN("AMX-BF16 not available on this CPU/OS: skipped");
        return;
    }
    std::mt19937 rng(3);
    std::vector<double> ref, mag;
    struct Shape {
        int n, rows, cols, rb, re;
    };
    // Bands of 1024 rows for n <= 32 and 512 for n = 128; K chunks of 1024 columns.
    for (const Shape sh : {Shape{20, 1100, 2100, 0, 1100}, Shape{20, 1100, 2100, 17, 1091},
                           Shape{128, 600, 1030, 0, 600}, Shape{97, 530, 3073, 5, 529}}) {
        INFO("n " << sh.n << ", " << sh.rows << "x" << sh.cols << ", rows [" << sh.rb << ", " << sh.re << ")");
        TestMatrix<bfloat16> W(sh.rows, sh.cols, rng);
        Activations X(sh.n, sh.cols, rng);
        std::vector<float> xr(X.p, X.p + static_cast<std::size_t>(sh.n) * sh.cols);
        for (auto& v : xr) v = bfloat16::from_float(v).to_float();
        reference(W.m, xr.data(), sh.n, ref, mag);
        std::vector<float> scratch(gemm_amx_scratch_floats(sh.n, sh.cols));
        std::vector<float> y(static_cast<std::size_t>(sh.n) * sh.rows, sentinel);
        gemm_rows_amx(W.m, X.p, sh.n, y.data(), sh.rb, sh.re, scratch.data());
        bool outside_ok = true;
        const double err = check_output(y, ref, mag, sh.n, sh.rows, sh.rb, sh.re, outside_ok);
        CHECK(outside_ok);
        CHECK(err <= 1e-5);
    }
}

TEST_CASE("gemm_rows_amx: repeated calls give identical results", "[gemm_amx]") {
    if (!amx_bf16_available()) {
        WARN("AMX-BF16 not available on this CPU/OS: skipped");
        return;
    }
    std::mt19937 rng(11);
    const int n = 37, rows = 70, cols = 333;
    TestMatrix<bfloat16> W(rows, cols, rng);
    Activations X(n, cols, rng);
    std::vector<float> scratch(gemm_amx_scratch_floats(n, cols));
    std::vector<float> a(static_cast<std::size_t>(n) * rows), b(a.size()), c(a.size());
    gemm_rows_amx(W.m, X.p, n, a.data(), 0, rows, scratch.data());
    gemm_rows_amx(W.m, X.p, n, b.data(), 0, rows, scratch.data());
    // Split in two row ranges: the same values.
    gemm_rows_amx(W.m, X.p, n, c.data(), 0, 32, scratch.data());
    gemm_rows_amx(W.m, X.p, n, c.data(), 32, rows, scratch.data());
    CHECK(a == b);
    CHECK(a == c);
}
