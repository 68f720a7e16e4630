// Mat-vec kernels: every dtype and every path this CPU supports against a double-precision
// reference on odd shapes and unaligned pointers; row ranges; results independent of the thread
// count and of the row split; fused dispatch of several products; several vectors per pass bit for bit like one.

#include <rwkv/backend/cpu/matvec.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "reference.hpp"

using namespace rwkv;
using namespace rwkv::backend::cpu;
using test_support::TestMatrix;
using test_support::TestVector;

namespace {

const Isa all_isas[] = {Isa::generic, Isa::avx2, Isa::avx512};

template <class T>
void check_against_reference(const Matrix<T>& W, const float* x, const float* y) {
    std::vector<double> ref, mag;
    test_support::reference(W, x, 1, ref, mag);
    for (int o = 0; o < W.rows; ++o) {
        const auto i = static_cast<std::size_t>(o);
        INFO("row " << o << " of " << W.rows << "x" << W.cols);
        REQUIRE(std::fabs(static_cast<double>(y[o]) - ref[i]) <= 1e-5 * mag[i] + 1e-30);
    }
}

template <class T>
void check_dtype() {
    std::mt19937 rng(42);
    for (Isa isa : all_isas) {
        if (!isa_supported(isa)) {
            WARN("path " << isa_name(isa) << " not supported by this CPU: not tested");
            continue;
        }
        for (int cols : {1, 7, 31, 65, 1000, 2049}) {
            for (int rows : {1, 3, 17, 100}) {
                INFO(scalar_name<T>() << " on " << isa_name(isa) << ", " << rows << "x" << cols);
                TestMatrix<T> W(rows, cols, rng);
                TestVector x(cols, rng);
                std::vector<float> y(static_cast<std::size_t>(rows), NAN);
                matvec_rows(W.m, x.p, y.data(), 0, rows, isa);
                check_against_reference(W.m, x.p, y.data());

                // Any split of the rows gives bit-identical rows (the grouping only shares loads).
                std::vector<float> pieces(static_cast<std::size_t>(rows), NAN);
                for (int b = 0; b < rows;) {
                    const int e = std::min(rows, b + 1 + (b * 7 + 3) % 11);
                    matvec_rows(W.m, x.p, pieces.data(), b, e, isa);
                    b = e;
                }
                REQUIRE(pieces == y);
            }
        }
    }
}

}  // namespace

TEST_CASE("the exact branch-free half conversion matches half::to_float on all 65536 values", "[matvec]") {
    for (std::uint32_t b = 0; b < 65536; ++b) {
        const auto h = half::from_bits(static_cast<std::uint16_t>(b));
        const float want = h.to_float(), got = matvec_detail::half_bits_to_float(h.bits);
        INFO("bits " << b);
        REQUIRE(std::bit_cast<std::uint32_t>(got) == std::bit_cast<std::uint32_t>(want));
    }
}

TEST_CASE(
    "the generic leaf's block widening (8 at a time: NEON / SSE2) matches the scalar conversion on all 65536 values",
    "[matvec]") {
    std::vector<half> h(65536 + 5);  // + 5: a tail the vector loop leaves to the scalar one
    std::vector<bfloat16> b(h.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
        h[i] = half::from_bits(static_cast<std::uint16_t>(i * 40503u));  // every pattern, shuffled
        b[i] = bfloat16::from_bits(static_cast<std::uint16_t>(i * 40503u));
    }
    std::vector<float> fh(h.size()), fb(b.size());
    matvec_detail::widen_block(h.data(), fh.data(), h.size());
    matvec_detail::widen_block(b.data(), fb.data(), b.size());
    for (std::size_t i = 0; i < h.size(); ++i) {
        INFO("index " << i << ", bits " << h[i].bits);
        const float want_h = h[i].to_float(), want_b = b[i].to_float();
        // NaNs may come back quieted (AArch64's fcvtl sets the quiet bit); everything else exactly.
        if (std::isnan(want_h)) REQUIRE(std::isnan(fh[i]));
        else REQUIRE(std::bit_cast<std::uint32_t>(fh[i]) == std::bit_cast<std::uint32_t>(want_h));
        if (std::isnan(want_b)) REQUIRE(std::isnan(fb[i]));
        else REQUIRE(std::bit_cast<std::uint32_t>(fb[i]) == std::bit_cast<std::uint32_t>(want_b));
    }
}

TEST_CASE("the active path is one the CPU supports", "[matvec]") {
    CHECK(isa_supported(Isa::generic));
    CHECK(isa_supported(detect_isa()));
    CHECK(active_isa() <= detect_isa());
    CHECK(isa_supported(active_isa()));
    WARN("mat-vec path: " << isa_name(active_isa()) << " (best supported: " << isa_name(detect_isa()) << ")");
}

TEST_CASE("float32 mat-vec matches a double reference on every path", "[matvec]") { check_dtype<float>(); }
TEST_CASE("bfloat16 mat-vec matches a double reference on every path", "[matvec]") { check_dtype<bfloat16>(); }
TEST_CASE("float16 mat-vec matches a double reference on every path", "[matvec]") { check_dtype<half>(); }

TEST_CASE("matvec_rows writes only its row range", "[matvec]") {
    std::mt19937 rng(7);
    TestMatrix<bfloat16> W(40, 33, rng);
    TestVector x(33, rng);
    for (Isa isa : all_isas) {
        std::vector<float> y(40, -7.0f);
        matvec_rows(W.m, x.p, y.data(), 5, 29, isa);
        for (int o = 0; o < 40; ++o)
            if (o < 5 || o >= 29) REQUIRE(y[static_cast<std::size_t>(o)] == -7.0f);
        matvec_rows(W.m, x.p, y.data(), 3, 3, isa);  // empty range: nothing written
        REQUIRE(y[3] == -7.0f);
    }
}

TEST_CASE("the default-path overload equals the explicit active path", "[matvec]") {
    std::mt19937 rng(9);
    TestMatrix<half> W(21, 130, rng);
    TestVector x(130, rng);
    std::vector<float> a(21), b(21);
    matvec_rows(W.m, x.p, a.data(), 0, 21);
    matvec_rows(W.m, x.p, b.data(), 0, 21, active_isa());
    CHECK(a == b);
}

namespace {
template <class T>
void check_threads_identical() {
    std::mt19937 rng(11);
    // Big enough to be split across threads (above matvec_parallel_min_bytes), with a row
    // count that is not a multiple of the 16-row unit.
    for (auto [rows, cols] : {std::pair{1000, 257}, std::pair{37, 2049}, std::pair{3, 7}}) {
        TestMatrix<T> W(rows, cols, rng);
        TestVector x(cols, rng);
        std::vector<float> ref(static_cast<std::size_t>(rows));
        matvec_rows(W.m, x.p, ref.data(), 0, rows);
        std::vector<float> y(static_cast<std::size_t>(rows), NAN);
        matvec(W.m, x.p, y.data(), nullptr);
        REQUIRE(y == ref);
        for (int n : {1, 2, 3}) {
            ThreadPool pool(n);
            std::fill(y.begin(), y.end(), NAN);
            matvec(W.m, x.p, y.data(), &pool);
            INFO(scalar_name<T>() << " " << rows << "x" << cols << " with " << n << " threads");
            REQUIRE(y == ref);
        }
    }
}
}  // namespace

TEST_CASE("1, 2 and 3 threads give bit-identical results", "[matvec]") {
    check_threads_identical<float>();
    check_threads_identical<bfloat16>();
    check_threads_identical<half>();
}

TEST_CASE("matvec_many computes several products in one dispatch", "[matvec]") {
    std::mt19937 rng(13);
    // Mixed shapes, as in r/k/v/g (square) plus an empty and a zero-width product.
    TestMatrix<bfloat16> A(512, 512, rng), B(512, 512, rng), C(300, 1000, rng), D(0, 64, rng), E(5, 0, rng);
    TestVector xa(512, rng), xb(512, rng), xc(1000, rng), xd(64, rng), xe(1, rng);
    std::vector<float> ra(512), rb(512), rc(300);
    matvec_rows(A.m, xa.p, ra.data(), 0, 512);
    matvec_rows(B.m, xb.p, rb.data(), 0, 512);
    matvec_rows(C.m, xc.p, rc.data(), 0, 300);
    for (int n : {1, 2, 3}) {
        ThreadPool pool(n);
        for (ThreadPool* p : {&pool, static_cast<ThreadPool*>(nullptr)}) {
            std::vector<float> ya(512, NAN), yb(512, NAN), yc(300, NAN), yd(1, -1.0f), ye(5, NAN);
            const MatvecJob<bfloat16> jobs[] = {{&A.m, xa.p, ya.data()},
                                                {&B.m, xb.p, yb.data()},
                                                {&D.m, xd.p, yd.data()},
                                                {&C.m, xc.p, yc.data()},
                                                {&E.m, xe.p, ye.data()}};
            matvec_many(std::span<const MatvecJob<bfloat16>>(jobs), p);
            INFO(n << " threads, pool " << (p ? "yes" : "no"));
            REQUIRE(ya == ra);
            REQUIRE(yb == rb);
            REQUIRE(yc == rc);
            REQUIRE(yd[0] == -1.0f);                     // zero rows: untouched
            REQUIRE(ye == std::vector<float>(5, 0.0f));  // zero columns: empty sums
        }
        std::vector<float> ya(512, NAN), yb(512, NAN);
        matvec_many<bfloat16>({{&A.m, xa.p, ya.data()}, {&B.m, xb.p, yb.data()}}, &pool);
        REQUIRE(ya == ra);
        REQUIRE(yb == rb);
    }
}

TEST_CASE("a busy pool makes matvec run on the caller instead of waiting", "[matvec]") {
    std::mt19937 rng(17);
    TestMatrix<float> W(256, 256, rng);
    TestVector x(256, rng);
    std::vector<float> ref(256), y(256, NAN);
    matvec_rows(W.m, x.p, ref.data(), 0, 256);
    ThreadPool pool(2);
    // Called from inside a run, the pool is busy: try_run fails and the caller does it all.
    pool.run([&](int i, int) {
        if (i == 0) matvec(W.m, x.p, y.data(), &pool);
    });
    CHECK(y == ref);
}

namespace {
// Y[v] = W·X[v] for n vectors at once must be, for every v, bit for bit the single mat-vec of
// X[v] on the same path (batched decoding relies on it), for any row range and vector count.
template <class T>
void check_batch_dtype() {
    std::mt19937 rng(23);
    for (Isa isa : all_isas) {
        if (!isa_supported(isa)) continue;
        // 20000 columns: more vectors than one L2-sized chunk (vector_chunk) holds.
        for (auto [rows, cols] : {std::pair{1, 7}, std::pair{3, 31}, std::pair{17, 65}, std::pair{100, 1000},
                                  std::pair{9, 2049}, std::pair{5, 20000}}) {
            for (int n : {1, 2, 3, 4, 5, 7, 13, 64}) {
                INFO(scalar_name<T>() << " on " << isa_name(isa) << ", " << rows << "x" << cols << ", " << n
                                      << " vectors");
                TestMatrix<T> W(rows, cols, rng);
                std::vector<float> X(static_cast<std::size_t>(n) * static_cast<std::size_t>(cols));
                std::uniform_real_distribution<float> d(-1.0f, 1.0f);
                for (auto& v : X) v = d(rng);
                std::vector<float> Y(static_cast<std::size_t>(n) * static_cast<std::size_t>(rows), NAN);
                matvec_rows(W.m, X.data(), n, Y.data(), 0, rows, isa);
                std::vector<float> one(static_cast<std::size_t>(rows));
                for (int v = 0; v < n; ++v) {
                    matvec_rows(W.m, X.data() + static_cast<std::size_t>(v) * static_cast<std::size_t>(cols),
                                one.data(), 0, rows, isa);
                    for (int o = 0; o < rows; ++o)
                        REQUIRE(std::bit_cast<std::uint32_t>(Y[static_cast<std::size_t>(v * rows + o)]) ==
                                std::bit_cast<std::uint32_t>(one[static_cast<std::size_t>(o)]));
                }
                // Any split of the rows gives the same bits.
                std::vector<float> pieces(Y.size(), NAN);
                for (int b = 0; b < rows;) {
                    const int e = std::min(rows, b + 1 + (b * 5 + 2) % 9);
                    matvec_rows(W.m, X.data(), n, pieces.data(), b, e, isa);
                    b = e;
                }
                REQUIRE(std::memcmp(pieces.data(), Y.data(), Y.size() * sizeof(float)) == 0);
            }
        }
    }
}
}  // namespace

TEST_CASE("float32 mat-vec of several vectors is bit for bit the single one", "[matvec][batch]") {
    check_batch_dtype<float>();
}
TEST_CASE("bfloat16 mat-vec of several vectors is bit for bit the single one", "[matvec][batch]") {
    check_batch_dtype<bfloat16>();
}
TEST_CASE("float16 mat-vec of several vectors is bit for bit the single one", "[matvec][batch]") {
    check_batch_dtype<half>();
}

TEST_CASE("matvec_batch and batched matvec_many jobs do not depend on the thread count", "[matvec][batch]") {
    std::mt19937 rng(29);
    TestMatrix<bfloat16> A(1000, 257, rng), B(300, 1024, rng), E(5, 0, rng);
    const int n = 11;
    std::vector<float> XA(static_cast<std::size_t>(n) * 257), XB(static_cast<std::size_t>(n) * 1024);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (auto& v : XA) v = d(rng);
    for (auto& v : XB) v = d(rng);
    std::vector<float> ra(static_cast<std::size_t>(n) * 1000), rb(static_cast<std::size_t>(n) * 300);
    matvec_rows(A.m, XA.data(), n, ra.data(), 0, 1000, active_isa());
    matvec_rows(B.m, XB.data(), n, rb.data(), 0, 300, active_isa());
    for (int t : {1, 2, 3}) {
        ThreadPool pool(t);
        INFO(t << " threads");
        std::vector<float> ya(ra.size(), NAN), yb(rb.size(), NAN), ye(static_cast<std::size_t>(n) * 5, NAN);
        matvec_batch(A.m, XA.data(), n, ya.data(), &pool);
        REQUIRE(ya == ra);
        std::fill(ya.begin(), ya.end(), NAN);
        const MatvecJob<bfloat16> jobs[] = {
            {&A.m, XA.data(), ya.data(), n}, {&E.m, XA.data(), ye.data(), n}, {&B.m, XB.data(), yb.data(), n}};
        matvec_many(std::span<const MatvecJob<bfloat16>>(jobs), &pool);
        REQUIRE(ya == ra);
        REQUIRE(yb == rb);
        REQUIRE(ye == std::vector<float>(ye.size(), 0.0f));  // zero columns: empty sums, every vector
    }
}
