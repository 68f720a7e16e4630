// The bf16-activation mat-vec (matvec_bf16.hpp): rounding to bf16 as vcvtneps2bf16 does; every
// path against a double reference on bf16-rounded activations, odd shapes and column tails;
// several vectors bit for bit like one, any row split and thread count alike; fused dispatches.

#include <rwkv/backend/cpu/matvec_bf16.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "reference.hpp"

using namespace rwkv;
using namespace rwkv::backend::cpu;
using test_support::Activations;
using test_support::TestMatrix;

namespace {

std::vector<Bf16DotPath> paths() {
    std::vector<Bf16DotPath> p{Bf16DotPath::emulated};
    if (bf16_dot_path(Isa::avx512) == Bf16DotPath::avx512_bf16) p.push_back(Bf16DotPath::avx512_bf16);
    else WARN("AVX512_BF16 not supported by this CPU: only the emulation is tested");
    return p;
}

const char* path_name(Bf16DotPath p) { return p == Bf16DotPath::avx512_bf16 ? "avx512_bf16" : "emulated"; }

float bf16_value(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

// Round to nearest even in double: the bf16 neighbours of x and the nearer (even on a tie).
float round_reference(float x) {
    const auto u = std::bit_cast<std::uint32_t>(x);
    const float down = std::bit_cast<float>(u & 0xffff0000u);
    const float up = std::bit_cast<float>((u & 0xffff0000u) + 0x10000u);  // away from zero
    const double dd = std::fabs(static_cast<double>(x) - down), du = std::fabs(static_cast<double>(up) - x);
    if (dd < du) return down;
    if (du < dd) return up;
    return ((u >> 16) & 1u) ? up : down;
}

std::vector<std::uint32_t> pack(const float* X, int n, int cols, Bf16DotPath path) {
    std::vector<std::uint32_t> p(bf16_pair_stride(static_cast<std::size_t>(cols)) * static_cast<std::size_t>(n) + 1,
                                 0xdeadbeefu);
    bf16_pack_vectors(X, n, static_cast<std::size_t>(cols), p.data() + 1, path);  // unaligned on purpose
    return p;
}

// X rounded to bf16 and back to fp32, for the double reference.
std::vector<float> rounded(const float* X, int n, int cols) {
    std::vector<float> r(static_cast<std::size_t>(n) * static_cast<std::size_t>(cols));
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = bf16_value(bf16_round_bits(X[i]));
    return r;
}

}  // namespace

TEST_CASE("bf16 rounding: nearest even, NaN stays NaN, subnormals become zero", "[matvec_bf16]") {
    CHECK(bf16_round_bits(1.0f) == 0x3f80);
    CHECK(bf16_round_bits(-2.0f) == 0xc000);
    CHECK(bf16_round_bits(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even below
    CHECK(bf16_round_bits(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, even above
    CHECK(bf16_round_bits(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
    CHECK(bf16_round_bits(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(bf16_round_bits(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up to inf
    CHECK(std::isnan(bf16_value(bf16_round_bits(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isnan(bf16_value(bf16_round_bits(std::bit_cast<float>(0x7f800001u)))));  // low-bit NaN
    CHECK(bf16_round_bits(std::bit_cast<float>(0x00400000u)) == 0x0000);
    CHECK(bf16_round_bits(std::bit_cast<float>(0x80400000u)) == 0x8000);
    std::mt19937 rng(3);
    for (int i = 0; i < 100000; ++i) {
        const std::uint32_t u = (rng() & 0x3fffffffu) | 0x00800000u;  // normal, moderate magnitudes
        const float x = std::bit_cast<float>(u) * (rng() & 1 ? 1.0f : -1.0f);
        INFO(std::hex << u);
        REQUIRE(bf16_value(bf16_round_bits(x)) == round_reference(x));
    }
}

TEST_CASE("packing the vectors gives the same bits on every path", "[matvec_bf16]") {
    std::mt19937 rng(5);
    for (int cols : {1, 2, 15, 16, 17, 31, 32, 33, 100, 1024}) {
        Activations X(3, cols, rng);
        X.p[0] = std::numeric_limits<float>::quiet_NaN();
        if (cols > 1) X.p[1] = std::bit_cast<float>(0x00012345u);  // subnormal
        if (cols > 2) X.p[2] = -std::numeric_limits<float>::infinity();
        const auto ref = pack(X.p, 3, cols, Bf16DotPath::emulated);
        const std::size_t ld = bf16_pair_stride(static_cast<std::size_t>(cols));
        for (int v = 0; v < 3; ++v)
            for (std::size_t p = 0; p < ld; ++p) {
                const std::uint32_t d = ref[1 + static_cast<std::size_t>(v) * ld + p];
                for (int h = 0; h < 2; ++h) {
                    const std::size_t c = 2 * p + static_cast<std::size_t>(h);
                    const auto bits = static_cast<std::uint16_t>(h ? d >> 16 : d & 0xffffu);
                    if (c >= static_cast<std::size_t>(cols)) REQUIRE(bits == 0);  // zero padding
                    else REQUIRE(bits == bf16_round_bits(X.p[static_cast<std::size_t>(v) * cols + c]));
                }
            }
        for (Bf16DotPath path : paths()) {
            INFO(path_name(path) << ", " << cols << " columns");
            CHECK(pack(X.p, 3, cols, path) == ref);
        }
    }
}

TEST_CASE("bf16-activation mat-vec matches a double reference on every path, any number of vectors", "[matvec_bf16]") {
    std::mt19937 rng(42);
    for (Bf16DotPath path : paths()) {
        for (int cols : {1, 2, 7, 31, 32, 33, 63, 64, 65, 1000, 2049}) {
            for (int rows : {1, 3, 17, 100}) {
                for (int n : {1, 2, 3, 4, 5, 7, 16}) {
                    INFO(path_name(path) << ", " << rows << "x" << cols << ", " << n << " vectors");
                    TestMatrix<bfloat16> W(rows, cols, rng);
                    Activations X(n, cols, rng);
                    const auto P = pack(X.p, n, cols, path);
                    std::vector<float> Y(static_cast<std::size_t>(n) * static_cast<std::size_t>(rows), NAN);
                    matvec_bf16_rows(W.m, P.data() + 1, n, Y.data(), 0, rows, path);
                    const auto Xr = rounded(X.p, n, cols);
                    std::vector<double> ref, mag;
                    test_support::reference(W.m, Xr.data(), n, ref, mag);
                    for (std::size_t i = 0; i < Y.size(); ++i)
                        REQUIRE(std::fabs(static_cast<double>(Y[i]) - ref[i]) <= 1e-5 * mag[i] + 1e-30);

                    // Each vector alone, and any split of the rows: the same bits.
                    const std::size_t ld = bf16_pair_stride(static_cast<std::size_t>(cols));
                    for (int v = 0; v < n; ++v) {
                        std::vector<float> y(static_cast<std::size_t>(rows), NAN);
                        for (int b = 0; b < rows;) {
                            const int e = std::min(rows, b + 1 + (b * 7 + 3 + v) % 11);
                            matvec_bf16_rows(W.m, P.data() + 1 + static_cast<std::size_t>(v) * ld, 1, y.data(), b, e,
                                             path);
                            b = e;
                        }
                        REQUIRE(std::memcmp(y.data(), Y.data() + static_cast<std::size_t>(v) * rows,
                                            y.size() * sizeof(float)) == 0);
                    }
                }
            }
        }
    }
}

TEST_CASE("the emulation computes what vdpbf16ps computes", "[matvec_bf16]") {
    if (bf16_dot_path(Isa::avx512) != Bf16DotPath::avx512_bf16) {
        WARN("AVX512_BF16 not supported by this CPU: nothing to compare");
        return;
    }
    // Normal values only (vdpbf16ps flushes subnormal results; the emulation does not).
    std::mt19937 rng(9);
    for (int cols : {1, 33, 1000, 2049}) {
        TestMatrix<bfloat16> W(37, cols, rng);
        Activations X(5, cols, rng);
        const auto P = pack(X.p, 5, cols, Bf16DotPath::emulated);
        std::vector<float> a(5 * 37), b(5 * 37);
        matvec_bf16_rows(W.m, P.data() + 1, 5, a.data(), 0, 37, Bf16DotPath::emulated);
        matvec_bf16_rows(W.m, P.data() + 1, 5, b.data(), 0, 37, Bf16DotPath::avx512_bf16);
        INFO(cols << " columns");
        CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("bf16-activation batches and fused dispatches do not depend on the thread count or the batch",
          "[matvec_bf16][batch]") {
    std::mt19937 rng(7);
    TestMatrix<bfloat16> A(1030, 700, rng), B(300, 1030, rng);
    const int n = 19;
    Activations XA(n, 700, rng), XB(n, 1030, rng);
    for (Bf16DotPath path : paths()) {
        INFO(path_name(path));
        std::vector<std::uint32_t> packed;
        // Reference: every vector alone, single-threaded.
        std::vector<float> ya1(static_cast<std::size_t>(n) * 1030), yb1(static_cast<std::size_t>(n) * 300);
        for (int v = 0; v < n; ++v) {
            matvec_bf16_batch(A.m, XA.p + static_cast<std::size_t>(v) * 700, 1, ya1.data() + v * 1030, nullptr, packed,
                              path);
            matvec_bf16_batch(B.m, XB.p + static_cast<std::size_t>(v) * 1030, 1, yb1.data() + v * 300, nullptr, packed,
                              path);
        }
        for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            for (int m : {1, 2, 5, 16, 19}) {
                INFO(threads << " threads, " << m << " vectors");
                std::vector<float> ya(static_cast<std::size_t>(m) * 1030, NAN),
                    yb(static_cast<std::size_t>(m) * 300, NAN);
                const MatvecBf16Job jobs[] = {{&A.m, XA.p, ya.data(), m}, {&B.m, XB.p, yb.data(), m}};
                matvec_bf16_many(std::span<const MatvecBf16Job>(jobs), &pool, packed, path);
                REQUIRE(std::memcmp(ya.data(), ya1.data(), ya.size() * sizeof(float)) == 0);
                REQUIRE(std::memcmp(yb.data(), yb1.data(), yb.size() * sizeof(float)) == 0);
                std::fill(ya.begin(), ya.end(), NAN);
                matvec_bf16_batch(A.m, XA.p, m, ya.data(), &pool, packed, path);
                REQUIRE(std::memcmp(ya.data(), ya1.data(), ya.size() * sizeof(float)) == 0);
            }
        }
        // Two jobs on one input share its packing.
        TestMatrix<bfloat16> C(64, 700, rng);
        std::vector<float> y1(2 * 1030), y2(2 * 64), r1(2 * 1030), r2(2 * 64);
        const MatvecBf16Job shared[] = {{&A.m, XA.p, y1.data(), 2}, {&C.m, XA.p, y2.data(), 2}};
        matvec_bf16_many(std::span<const MatvecBf16Job>(shared), nullptr, packed, path);
        matvec_bf16_batch(A.m, XA.p, 2, r1.data(), nullptr, packed, path);
        matvec_bf16_batch(C.m, XA.p, 2, r2.data(), nullptr, packed, path);
        CHECK(y1 == r1);
        CHECK(y2 == r2);
    }
}

TEST_CASE("bf16-activation batches of many vectors: every pass split and chunk bit for bit the single product",
          "[matvec_bf16][batch]") {
    // More vectors than one kernel call takes pass over each row group several times, the vectors
    // split evenly between the passes (7: 4 + 3), and in chunks that fit in L2 (7000 columns: 18
    // vectors a chunk); rows not a multiple of the row group. Each vector's result must not
    // depend on the pass, the chunk or the thread count.
    std::mt19937 rng(11);
    for (Bf16DotPath path : paths()) {
        for (int cols : {1024, 7000}) {
            const int rows = cols == 1024 ? 67 : 21;
            TestMatrix<bfloat16> W(rows, cols, rng);
            const int max_n = 64;
            Activations X(max_n, cols, rng);
            std::vector<std::uint32_t> packed;
            std::vector<float> single(static_cast<std::size_t>(max_n) * static_cast<std::size_t>(rows));
            for (int v = 0; v < max_n; ++v)
                matvec_bf16_batch(W.m, X.p + static_cast<std::size_t>(v) * static_cast<std::size_t>(cols), 1,
                                  single.data() + static_cast<std::size_t>(v) * static_cast<std::size_t>(rows), nullptr,
                                  packed, path);
            for (int threads : {1, 2}) {
                ThreadPool pool(threads);
                for (int n : {4, 6, 7, 12, 13, 16, 17, 33, 64}) {
                    INFO(path_name(path) << ", " << rows << "x" << cols << ", " << threads << " threads, " << n
                                         << " vectors");
                    std::vector<float> Y(static_cast<std::size_t>(n) * static_cast<std::size_t>(rows), NAN);
                    matvec_bf16_batch(W.m, X.p, n, Y.data(), &pool, packed, path);
                    REQUIRE(std::memcmp(Y.data(), single.data(), Y.size() * sizeof(float)) == 0);
                }
            }
        }
    }
}
