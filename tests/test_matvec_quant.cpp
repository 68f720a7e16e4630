// Block-format kernels (backend/cpu/matvec_quant.hpp; every block format, Q2_K, Q3_K and IQ4_NL
// included, has AVX-512 and AVX2 kernels): on every path this CPU supports and for every block
// format, (1) the SIMD dequantization gives bit for bit the reference decoder's values, on blocks
// of random bytes (every bit pattern of the quants and packed scales; only the fp16 scale fields
// are kept finite) and on blocks of extreme bytes (all 0x00 / 0xff / 0x80 / 0x7f codes and
// scales, largest and smallest fp16 scales of both signs); (2) the mat-vec matches the reference decode + a double dot
// within fp32 summation noise, on odd row counts and many blocks, and any row split gives
// identical rows; (3) results do not depend on the thread count; (4) the prefill GEMM matches
// the same reference.

#include <rwkv/backend/cpu/matvec_quant.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <random>
#include <vector>

#include "random_weight.hpp"

using namespace rwkv;
using namespace rwkv::backend::cpu;

namespace {

const Isa all_isas[] = {Isa::generic, Isa::avx2, Isa::avx512};

std::vector<dtype> block_formats() {
    std::vector<dtype> out;
#define RWKV_TEST_BLOCK_FORMAT(name) \
    if (weights::name::block_elems > 1) out.push_back(dtype::name);
    RWKV_WEIGHT_FORMATS(RWKV_TEST_BLOCK_FORMAT)
#undef RWKV_TEST_BLOCK_FORMAT
    return out;
}

using test_support::random_weight;

std::vector<float> random_x(std::size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n + 1);
    for (auto& x : v) x = d(rng);
    return v;  // callers use data() + 1: unaligned on purpose
}

std::vector<float> decoded(const Weight& W) {
    std::vector<float> out(W.size());
    for (int r = 0; r < W.rows; ++r) W.decode_row(r, out.data() + static_cast<std::size_t>(r) * W.cols);
    return out;
}

// Y vs the double product of the reference-decoded weights, within 1e-5 of Σ|w·x| (+ tiny).
void check_product(const std::vector<float>& dec, int rows, int cols, const float* X, int n, const float* Y) {
    for (int t = 0; t < n; ++t)
        for (int o = 0; o < rows; ++o) {
            double s = 0.0, mag = 0.0;
            for (int c = 0; c < cols; ++c) {
                const double p = static_cast<double>(dec[static_cast<std::size_t>(o) * cols + c]) *
                                 static_cast<double>(X[static_cast<std::size_t>(t) * cols + c]);
                s += p;
                mag += std::fabs(p);
            }
            const float y = Y[static_cast<std::size_t>(t) * rows + o];
            INFO("token " << t << " row " << o << " got " << y << " want " << s);
            REQUIRE(std::fabs(static_cast<double>(y) - s) <= 1e-5 * mag + 1e-30);
        }
}

}  // namespace

TEST_CASE("SIMD dequantization equals the reference decoder bit for bit on every path", "[matvec_quant]") {
    std::mt19937 rng(5);
    for (dtype t : block_formats()) {
        const int be = dtype_block_elems(t);
        const Weight W = random_weight(t, 9, 7 * be, rng);
        const auto want = decoded(W);
        for (Isa isa : all_isas) {
            if (!isa_supported(isa)) continue;
            INFO(dtype_name(t) << " on " << isa_name(isa));
            std::vector<float> got(W.size(), NAN);
            qdecode_rows(W, 0, W.rows, got.data(), isa);
            for (std::size_t i = 0; i < got.size(); ++i) {
                INFO("element " << i);
                REQUIRE(std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(want[i]));
            }
        }
    }
}

TEST_CASE("SIMD dequantization equals the reference decoder on extreme blocks", "[matvec_quant]") {
    // Code and packed-scale bytes all equal to one of these, fp16 fields one of these.
    const unsigned char fills[] = {0x00, 0xff, 0x80, 0x7f, 0x55, 0xaa};
    const std::uint16_t scales[] = {0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x3c00, 0xbc00, 0x0000};
    for (dtype t : block_formats()) {
        const int be = dtype_block_elems(t), bb = dtype_block_bytes(t);
        const int nblocks = static_cast<int>(std::size(fills) * std::size(scales));
        std::vector<std::byte> bytes(static_cast<std::size_t>(nblocks) * static_cast<std::size_t>(bb));
        std::size_t k = 0;
        for (unsigned char f : fills)
            for (std::uint16_t h : scales) {
                std::byte* blk = bytes.data() + k++ * static_cast<std::size_t>(bb);
                std::fill(blk, blk + bb, static_cast<std::byte>(f));
                weights::visit_format(t, [&](auto fmt) {
                    using F = decltype(fmt);
                    if constexpr (F::block_elems > 1)
                        for (int at : F::linear_f16_fields) weights::store_u16(blk + at, h);
                });
            }
        const Weight W = Weight::owning(t, std::move(bytes), 1, nblocks * be);
        const auto want = decoded(W);
        for (Isa isa : all_isas) {
            if (!isa_supported(isa)) continue;
            INFO(dtype_name(t) << " on " << isa_name(isa));
            std::vector<float> got(W.size(), NAN);
            qdecode_rows(W, 0, 1, got.data(), isa);
            for (std::size_t i = 0; i < got.size(); ++i) {
                INFO("element " << i << " (block " << i / static_cast<std::size_t>(be) << ")");
                REQUIRE(std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(want[i]));
            }
        }
    }
}

TEST_CASE("block-format mat-vec matches the reference decode on every path, any row split", "[matvec_quant]") {
    std::mt19937 rng(6);
    for (dtype t : block_formats()) {
        const int be = dtype_block_elems(t);
        for (int nb : {1, 3, 9, 40}) {
            for (int rows : {1, 7, 17, 100}) {
                const int cols = nb * be;
                const Weight W = random_weight(t, rows, cols, rng);
                const auto dec = decoded(W);
                const auto xs = random_x(static_cast<std::size_t>(cols), rng);
                const float* x = xs.data() + 1;
                for (Isa isa : all_isas) {
                    if (!isa_supported(isa)) continue;
                    INFO(dtype_name(t) << " on " << isa_name(isa) << ", " << rows << "x" << cols);
                    std::vector<float> y(static_cast<std::size_t>(rows), NAN);
                    qmatvec_rows(W, x, y.data(), 0, rows, isa);
                    check_product(dec, rows, cols, x, 1, y.data());
                    std::vector<float> pieces(y.size(), NAN);
                    for (int b = 0; b < rows;) {
                        const int e = std::min(rows, b + 1 + (b * 7 + 3) % 11);
                        qmatvec_rows(W, x, pieces.data(), b, e, isa);
                        b = e;
                    }
                    REQUIRE(pieces == y);
                }
            }
        }
    }
}

TEST_CASE("block-format mat-vec results do not depend on the thread count", "[matvec_quant]") {
    std::mt19937 rng(7);
    ThreadPool p2(2), p3(3);
    for (dtype t : {dtype::q8_0, dtype::q4_k, dtype::q6_k, dtype::q5_1}) {
        const int be = dtype_block_elems(t);
        const int rows = 1003, cols = (be == 32 ? 40 : 5) * be;  // above the parallel threshold
        const Weight W = random_weight(t, rows, cols, rng), W2 = random_weight(dtype::q4_0, 77, 64, rng);
        const auto xs = random_x(static_cast<std::size_t>(cols), rng), x2 = random_x(64, rng);
        std::vector<float> a(rows), b(rows), c(rows), a2(77), c2(77);
        qmatvec(W, xs.data() + 1, a.data(), nullptr);
        qmatvec(W, xs.data() + 1, b.data(), &p2);
        const QMatvecJob jobs[] = {{&W, xs.data() + 1, c.data()}, {&W2, x2.data() + 1, c2.data()}};
        qmatvec_many(jobs, &p3);
        qmatvec(W2, x2.data() + 1, a2.data(), nullptr);
        INFO(dtype_name(t));
        CHECK(a == b);
        CHECK(a == c);
        CHECK(a2 == c2);
    }
}

TEST_CASE("block-format prefill GEMM matches the reference decode, any thread count", "[matvec_quant]") {
    std::mt19937 rng(8);
    ThreadPool pool(2);
    for (dtype t : block_formats()) {
        const int be = dtype_block_elems(t);
        for (auto [rows, nb, n] : {std::tuple{7, 3, 2}, std::tuple{100, 9, 17}, std::tuple{131, 2, 70}}) {
            const int cols = nb * be;
            const Weight W = random_weight(t, rows, cols, rng);
            const auto dec = decoded(W);
            const auto xs = random_x(static_cast<std::size_t>(n) * cols, rng);
            for (Isa isa : all_isas) {
                if (!isa_supported(isa)) continue;
                INFO(dtype_name(t) << " on " << isa_name(isa) << ", " << rows << "x" << cols << " n " << n);
                std::vector<std::vector<float>> tiles;
                std::vector<float> y1(static_cast<std::size_t>(n) * rows, NAN), y2(y1.size(), NAN);
                qgemm(W, xs.data() + 1, n, y1.data(), nullptr, tiles, isa);
                check_product(dec, rows, cols, xs.data() + 1, n, y1.data());
                qgemm(W, xs.data() + 1, n, y2.data(), &pool, tiles, isa);
                REQUIRE(y1 == y2);
            }
        }
    }
}
