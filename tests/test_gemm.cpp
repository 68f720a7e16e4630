// Prefill GEMM: every dtype on every path this CPU supports against a double-precision reference
// on odd shapes and unaligned pointers; row ranges; results independent of the thread count.

#include <rwkv/backend/cpu/gemm.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "reference.hpp"

using namespace rwkv;
using namespace rwkv::backend::cpu;
using test_support::Activations;
using test_support::reference;
using test_support::TestMatrix;

namespace {

const Isa all_isas[] = {Isa::generic, Isa::avx2, Isa::avx512};

// Returns the worst |y - ref| / Σ|w·x|.
double worst_error(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& mag) {
    double worst = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        const double e = std::fabs(static_cast<double>(y[i]) - ref[i]);
        if (!(e <= 1e30)) return INFINITY;  // NaN or inf
        if (e > 0) worst = std::max(worst, e / (mag[i] + 1e-300));
    }
    return worst;
}

template <class T>
void check_dtype() {
    std::mt19937 rng(42);
    std::vector<double> ref, mag;
    for (int cols : {1, 7, 64, 100, 1000, 2049}) {
        for (int rows : {1, 15, 33, 100, 257}) {
            for (int n : {1, 2, 7, 64, 65}) {
                TestMatrix<T> W(rows, cols, rng);
                Activations X(n, cols, rng);
                reference(W.m, X.p, n, ref, mag);
                std::vector<float> scratch(gemm_scratch_floats(n, cols) + 1);
                for (Isa isa : all_isas) {
                    if (!isa_supported(isa)) continue;
                    INFO(scalar_name<T>() << " on " << isa_name(isa) << ": n " << n << ", " << rows << "x" << cols);
                    // Unaligned scratch and output as well.
                    std::vector<float> ystore(static_cast<std::size_t>(n) * rows + 1, NAN);
                    float* y = ystore.data() + 1;
                    gemm_rows(W.m, X.p, n, y, 0, rows, scratch.data() + 1, isa);
                    std::vector<float> got(y, y + static_cast<std::size_t>(n) * rows);
                    REQUIRE(worst_error(got, ref, mag) <= 1e-5);

                    // Any split of the rows gives bit-identical results on the SIMD paths.
                    if (isa != Isa::generic) {
                        std::vector<float> pieces(got.size(), NAN);
                        for (int b = 0; b < rows;) {
                            const int e = std::min(rows, b + 1 + (b * 7 + 3) % 50);
                            gemm_rows(W.m, X.p, n, pieces.data(), b, e, scratch.data(), isa);
                            b = e;
                        }
                        REQUIRE(pieces == got);
                    }
                }
            }
        }
    }
}

}  // namespace

TEST_CASE("float32 GEMM matches a double reference on every path", "[gemm]") {
    for (Isa isa : all_isas)
        if (!isa_supported(isa)) WARN("path " << isa_name(isa) << " not supported by this CPU: not tested");
    check_dtype<float>();
}
TEST_CASE("bfloat16 GEMM matches a double reference on every path", "[gemm]") { check_dtype<bfloat16>(); }
TEST_CASE("float16 GEMM matches a double reference on every path", "[gemm]") { check_dtype<half>(); }

TEST_CASE("gemm_rows writes only its row range, and nothing for empty inputs", "[gemm]") {
    std::mt19937 rng(7);
    TestMatrix<bfloat16> W(40, 33, rng);
    Activations X(3, 33, rng);
    std::vector<float> scratch(gemm_scratch_floats(3, 33));
    for (Isa isa : all_isas) {
        std::vector<float> y(3 * 40, -7.0f);
        gemm_rows(W.m, X.p, 3, y.data(), 5, 29, scratch.data(), isa);
        for (int t = 0; t < 3; ++t)
            for (int o = 0; o < 40; ++o) {
                const float v = y[static_cast<std::size_t>(t) * 40 + o];
                if (o < 5 || o >= 29) REQUIRE(v == -7.0f);
                else REQUIRE(v != -7.0f);
            }
        std::vector<float> z(3 * 40, -7.0f);
        gemm_rows(W.m, X.p, 3, z.data(), 3, 3, scratch.data(), isa);   // empty range
        gemm_rows(W.m, X.p, 0, z.data(), 0, 40, scratch.data(), isa);  // no activations
        REQUIRE(z == std::vector<float>(3 * 40, -7.0f));
    }
    // Zero columns: empty sums.
    TestMatrix<half> E(5, 0, rng);
    std::vector<float> e(2 * 5, NAN);
    gemm_rows(E.m, X.p, 2, e.data(), 0, 5, scratch.data());
    REQUIRE(e == std::vector<float>(10, 0.0f));
}

TEST_CASE("the default-path overload equals the explicit active path", "[gemm]") {
    std::mt19937 rng(9);
    TestMatrix<half> W(21, 130, rng);
    Activations X(5, 130, rng);
    std::vector<float> scratch(gemm_scratch_floats(5, 130));
    std::vector<float> a(5 * 21), b(5 * 21);
    gemm_rows(W.m, X.p, 5, a.data(), 0, 21, scratch.data());
    gemm_rows(W.m, X.p, 5, b.data(), 0, 21, scratch.data(), active_isa());
    CHECK(a == b);
}

namespace {
template <class T>
void check_threads_identical() {
    std::mt19937 rng(11);
    // Split across threads, with row counts that are not multiples of the row unit.
    for (auto [n, rows, cols] : {std::tuple{64, 1000, 257}, std::tuple{65, 37, 2049}, std::tuple{2, 3, 7}}) {
        TestMatrix<T> W(rows, cols, rng);
        Activations X(n, cols, rng);
        for (Isa isa : all_isas) {
            if (!isa_supported(isa)) continue;
            std::vector<std::vector<float>> scratch;
            std::vector<float> ref(static_cast<std::size_t>(n) * rows, NAN);
            gemm(W.m, X.p, n, ref.data(), nullptr, scratch, isa);
            for (int threads : {1, 2, 3}) {
                ThreadPool pool(threads);
                std::vector<float> y(ref.size(), NAN);
                gemm(W.m, X.p, n, y.data(), &pool, scratch, isa);
                INFO(scalar_name<T>() << " on " << isa_name(isa) << ", n " << n << ", " << rows << "x" << cols
                                      << " with " << threads << " threads");
                REQUIRE(y == ref);
            }
        }
    }
}
}  // namespace

TEST_CASE("1, 2 and 3 threads give bit-identical results", "[gemm]") {
    check_threads_identical<float>();
    check_threads_identical<bfloat16>();
    check_threads_identical<half>();
}

TEST_CASE("the generic path is accurate with several threads too", "[gemm]") {
    std::mt19937 rng(12);
    TestMatrix<bfloat16> W(1000, 257, rng);
    Activations X(64, 257, rng);
    std::vector<double> ref, mag;
    reference(W.m, X.p, 64, ref, mag);
    std::vector<std::vector<float>> scratch;
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> y(ref.size(), NAN);
        gemm(W.m, X.p, 64, y.data(), &pool, scratch, Isa::generic);
        REQUIRE(worst_error(y, ref, mag) <= 1e-5);
    }
}

TEST_CASE("opt-in bf16 activations: within bf16 rounding of X, exact for bf16-rounded X", "[gemm]") {
    if (!gemm_bf16_supported<bfloat16>()) {
        WARN("no AVX512_BF16 on this CPU: bf16_activations computes in fp32, checked below");
    }
    std::mt19937 rng(21);
    std::vector<double> ref, mag, ref_rounded, mag_rounded;
    for (int cols : {1, 7, 64, 100, 1000, 2049}) {
        for (int rows : {1, 15, 100, 257}) {
            for (int n : {1, 7, 64, 65}) {
                TestMatrix<bfloat16> W(rows, cols, rng);
                Activations X(n, cols, rng);
                Activations Xr = X;  // X rounded to bf16, as the kernel sees it
                Xr.p = Xr.storage.data() + 1;
                for (auto& v : Xr.storage) v = bfloat16::from_float(v).to_float();
                reference(W.m, X.p, n, ref, mag);
                reference(W.m, Xr.p, n, ref_rounded, mag_rounded);
                std::vector<float> scratch(gemm_scratch_floats(n, cols) + 1);
                std::vector<float> y(static_cast<std::size_t>(n) * rows, NAN);
                gemm_rows(W.m, X.p, n, y.data(), 0, rows, scratch.data() + 1, GemmPrecision::bf16_activations);
                INFO("n " << n << ", " << rows << "x" << cols);
                // bf16 keeps 8 significant bits: |x - bf16(x)| <= 2^-8 |x|, so each product moves
                // by at most 2^-8 of its size.
                REQUIRE(worst_error(y, ref, mag) <= 0x1p-8 + 1e-5);
                if (gemm_bf16_supported<bfloat16>()) {
                    REQUIRE(worst_error(y, ref_rounded, mag_rounded) <= 1e-5);
                    std::vector<float> pieces(y.size(), NAN);
                    for (int b = 0; b < rows;) {
                        const int e = std::min(rows, b + 1 + (b * 7 + 3) % 50);
                        gemm_rows(W.m, X.p, n, pieces.data(), b, e, scratch.data(), GemmPrecision::bf16_activations);
                        b = e;
                    }
                    REQUIRE(pieces == y);
                } else {
                    REQUIRE(worst_error(y, ref, mag) <= 1e-5);
                }
            }
        }
    }
}

TEST_CASE("bf16 activations: thread-count independent; other dtypes and paths stay fp32", "[gemm]") {
    std::mt19937 rng(22);
    TestMatrix<bfloat16> W(1000, 257, rng);
    Activations X(64, 257, rng);
    std::vector<std::vector<float>> scratch;
    std::vector<float> ref(64 * 1000);
    gemm(W.m, X.p, 64, ref.data(), nullptr, scratch, GemmPrecision::bf16_activations);
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<float> y(ref.size(), NAN);
        gemm(W.m, X.p, 64, y.data(), &pool, scratch, GemmPrecision::bf16_activations);
        REQUIRE(y == ref);
    }
    // Not honoured (half weights; the avx2 path): the fp32 result.
    TestMatrix<half> H(100, 257, rng);
    std::vector<float> a(64 * 100), b(64 * 100);
    gemm(H.m, X.p, 64, a.data(), nullptr, scratch);
    gemm(H.m, X.p, 64, b.data(), nullptr, scratch, GemmPrecision::bf16_activations);
    REQUIRE(a == b);
    if (isa_supported(Isa::avx2)) {
        std::vector<float> c(64 * 1000), d(64 * 1000);
        gemm(W.m, X.p, 64, c.data(), nullptr, scratch, Isa::avx2);
        gemm(W.m, X.p, 64, d.data(), nullptr, scratch, Isa::avx2, GemmPrecision::bf16_activations);
        REQUIRE(c == d);
    }
}
