// rwkv/weights/*: every weight format's reference decode against hand-built blocks with
// hand-computed values (spec 8.4, formats/gguf-kquant/README.md), odd scales (negative zero,
// largest fp16, subnormal, infinity), and encode → decode error bounds and round trips.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "rwkv/weights/format.hpp"

using rwkv::dtype;
namespace w = rwkv::weights;

namespace {

using block_t = std::vector<std::byte>;

template <class F>
block_t zero_block() {
    return block_t(F::block_bytes, std::byte{0});
}

void set_u8(block_t& b, int at, unsigned v) { b[static_cast<std::size_t>(at)] = static_cast<std::byte>(v & 0xffu); }
void set_u16(block_t& b, int at, unsigned v) {
    set_u8(b, at, v);
    set_u8(b, at + 1, v >> 8);
}
void set_u32(block_t& b, int at, std::uint32_t v) {
    set_u16(b, at, v & 0xffffu);
    set_u16(b, at + 2, v >> 16);
}

template <class F>
std::vector<float> decode(const block_t& b) {
    std::vector<float> out(F::block_elems);
    F::decode(b.data(), out.data());
    return out;
}

// fp16 bit patterns used below.
constexpr unsigned h_one = 0x3C00, h_half = 0x3800, h_quarter = 0x3400, h_two = 0x4000, h_minus_one = 0xBC00;
constexpr unsigned h_neg_zero = 0x8000, h_max = 0x7BFF, h_min_sub = 0x0001, h_inf = 0x7C00;

}  // namespace

TEST_CASE("the format list: names, ggml ids and block sizes agree with ggml", "[weights]") {
    struct row {
        dtype t;
        const char* name;
        int elems, bytes;
    };
    const row rows[] = {
        {dtype::f32, "F32", 1, 4},       {dtype::f16, "F16", 1, 2},        {dtype::bf16, "BF16", 1, 2},
        {dtype::q8_0, "Q8_0", 32, 34},   {dtype::q4_0, "Q4_0", 32, 18},    {dtype::q4_1, "Q4_1", 32, 20},
        {dtype::q5_0, "Q5_0", 32, 22},   {dtype::q5_1, "Q5_1", 32, 24},    {dtype::q2_k, "Q2_K", 256, 84},
        {dtype::q3_k, "Q3_K", 256, 110}, {dtype::q4_k, "Q4_K", 256, 144},  {dtype::q5_k, "Q5_K", 256, 176},
        {dtype::q6_k, "Q6_K", 256, 210}, {dtype::iq4_nl, "IQ4_NL", 32, 18}};
    for (const row& r : rows) {
        INFO(r.name);
        CHECK(rwkv::dtype_name(r.t) == r.name);
        CHECK(rwkv::dtype_block_elems(r.t) == r.elems);
        CHECK(rwkv::dtype_block_bytes(r.t) == r.bytes);
        CHECK(w::is_weight_format(r.t));
        CHECK(rwkv::weight_format_names().find(r.name) != std::string::npos);
    }
    const int ids[] = {w::q8_0::ggml_type, w::q4_0::ggml_type, w::q4_1::ggml_type,  w::q5_0::ggml_type,
                       w::q5_1::ggml_type, w::q2_k::ggml_type, w::q3_k::ggml_type,  w::q4_k::ggml_type,
                       w::q5_k::ggml_type, w::q6_k::ggml_type, w::iq4_nl::ggml_type};
    const int expected[] = {8, 2, 3, 6, 7, 10, 11, 12, 13, 14, 20};
    for (int i = 0; i < 11; ++i) CHECK(ids[i] == expected[i]);
    CHECK(rwkv::dtype_bytes(dtype::q6_k, 512) == 420);
    CHECK_THROWS_WITH(rwkv::dtype_bytes(dtype::q4_k, 100, "tensor 'x'"),
                      Catch::Contains("tensor 'x'") && Catch::Contains("Q4_K blocks of 256"));
}

TEST_CASE("32-value formats decode hand-built blocks", "[weights]") {
    SECTION("Q8_0") {
        auto b = zero_block<w::q8_0>();
        set_u16(b, 0, h_half);
        set_u8(b, 2, 0x80);   // -128
        set_u8(b, 33, 0x7f);  // 127
        set_u8(b, 3, 0xff);   // -1
        const auto v = decode<w::q8_0>(b);
        CHECK(v[0] == -64.0f);
        CHECK(v[1] == -0.5f);
        CHECK(v[31] == 63.5f);
        CHECK(v[2] == 0.0f);
    }
    SECTION("Q4_0") {
        auto b = zero_block<w::q4_0>();
        set_u16(b, 0, h_half);
        set_u8(b, 2, 0x1F);   // e0: 15, e16: 1
        set_u8(b, 17, 0x80);  // e15: 0, e31: 8
        const auto v = decode<w::q4_0>(b);
        CHECK(v[0] == 3.5f);
        CHECK(v[16] == -3.5f);
        CHECK(v[15] == -4.0f);
        CHECK(v[31] == 0.0f);
        CHECK(v[5] == -4.0f);
    }
    SECTION("Q4_1") {
        auto b = zero_block<w::q4_1>();
        set_u16(b, 0, h_half);
        set_u16(b, 2, h_one);
        set_u8(b, 4, 0x3F);
        const auto v = decode<w::q4_1>(b);
        CHECK(v[0] == 8.5f);
        CHECK(v[16] == 2.5f);
        CHECK(v[1] == 1.0f);
    }
    SECTION("Q5_0") {
        auto b = zero_block<w::q5_0>();
        set_u16(b, 0, h_one);
        set_u32(b, 2, 0x00000001u | 0x80000000u);  // 5th bit of e0 and e31
        set_u8(b, 6, 0x21);                        // e0 low 1, e16 low 2
        set_u8(b, 21, 0xF0);                       // e15 low 0, e31 low 15
        const auto v = decode<w::q5_0>(b);
        CHECK(v[0] == 1.0f);     // (1 | 16) - 16
        CHECK(v[16] == -14.0f);  // 2 - 16
        CHECK(v[15] == -16.0f);
        CHECK(v[31] == 15.0f);  // (15 | 16) - 16
    }
    SECTION("Q5_1") {
        auto b = zero_block<w::q5_1>();
        set_u16(b, 0, h_half);
        set_u16(b, 2, h_minus_one);
        set_u32(b, 4, 1u << 16);  // 5th bit of e16
        set_u8(b, 8, 0x21);
        const auto v = decode<w::q5_1>(b);
        CHECK(v[0] == -0.5f);  // 1·0.5 − 1
        CHECK(v[16] == 8.0f);  // 18·0.5 − 1
        CHECK(v[1] == -1.0f);
    }
    SECTION("IQ4_NL") {
        auto b = zero_block<w::iq4_nl>();
        set_u16(b, 0, h_two);
        set_u8(b, 2, 0xF0);
        set_u8(b, 3, 0x78);
        const auto v = decode<w::iq4_nl>(b);
        CHECK(v[0] == -254.0f);  // 2·K[0]
        CHECK(v[16] == 226.0f);  // 2·K[15]
        CHECK(v[1] == 2.0f);     // 2·K[8] = 2·1
        CHECK(v[17] == -20.0f);  // 2·K[7]
    }
}

TEST_CASE("K-quant formats decode hand-built super-blocks", "[weights]") {
    SECTION("Q2_K") {
        auto b = zero_block<w::q2_k>();
        for (int s = 0; s < 16; ++s) set_u8(b, s, 0x23);  // scale 3, min 2
        set_u8(b, 16 + 0, 0xE4);                          // q for j = 0..3: 0, 1, 2, 3
        set_u8(b, 16 + 32, 0x03);                         // e = 128: q 3
        set_u16(b, 80, h_one);
        set_u16(b, 82, h_half);
        const auto v = decode<w::q2_k>(b);
        CHECK(v[0] == -1.0f);  // 1·3·0 − 0.5·2
        CHECK(v[32] == 2.0f);
        CHECK(v[64] == 5.0f);
        CHECK(v[96] == 8.0f);
        CHECK(v[128] == 8.0f);
        CHECK(v[17] == -1.0f);
    }
    SECTION("Q3_K") {
        auto b = zero_block<w::q3_k>();
        // Sub-block 0: S = 5 → u = 37 = 0b10'0101 (low nibble 5 in scales[0], high bits 2 in scales[8]).
        set_u8(b, 96 + 0, 0x05);
        set_u8(b, 96 + 8, 0x02);
        // Sub-block 9: S = −32 → u = 0 (all zero already). Sub-block 4: S = 31 → u = 63.
        set_u8(b, 96 + 4, 0x0F);
        set_u8(b, 96 + 8, 0x02 | (3u << 2));  // s = 4: s % 4 = 0, bits 2..3
        set_u8(b, 32 + 0, 0x03);              // e0: low bits 3
        set_u8(b, 0, 0x01);                   // hmask[0] bit 0: e0 has no −4
        set_u8(b, 32 + 32 + 16, 0x01);        // e = 144 (h 1, j 0, l 16): low bits 1, hmask bit 4 clear
        set_u16(b, 108, h_quarter);
        const auto v = decode<w::q3_k>(b);
        CHECK(v[0] == 3.75f);    // 0.25·5·3
        CHECK(v[1] == -5.0f);    // 0.25·5·(0 − 4)
        CHECK(v[144] == 24.0f);  // 0.25·(−32)·(1 − 4)
        CHECK(v[64] == -31.0f);  // sub-block 4, q = −4: 0.25·31·(−4)
        CHECK(w::q3_k::scale(b.data(), 9) == -32);
        CHECK(w::q3_k::scale(b.data(), 4) == 31);
    }
    SECTION("Q4_K and Q5_K") {
        auto b4 = zero_block<w::q4_k>();
        set_u16(b4, 0, h_one);
        set_u16(b4, 2, h_two);
        set_u8(b4, 4 + 0, 10);          // s0 scale 10
        set_u8(b4, 4 + 4, 3);           // s0 min 3
        set_u8(b4, 4 + 9, 0x45);        // s5: scale low nibble 5, min low nibble 4
        set_u8(b4, 4 + 1, 2u << 6);     // s5 scale top bits 2 → 37
        set_u8(b4, 4 + 5, 1u << 6);     // s5 min top bits 1 → 20
        set_u8(b4, 16 + 0, 0x07);       // e0: q 7
        set_u8(b4, 16 + 64 + 3, 0xA0);  // e = 163 (s5, c 2, high nibble): q 10
        const auto v4 = decode<w::q4_k>(b4);
        CHECK(v4[0] == 64.0f);  // 1·10·7 − 2·3
        CHECK(v4[1] == -6.0f);
        CHECK(v4[163] == 330.0f);  // 37·10 − 2·20
        CHECK(v4[32] == 0.0f);     // s1: scale 0 (top bits of byte 1 belong to s5), min bits 0

        auto b5 = zero_block<w::q5_k>();
        for (int i = 0; i < 16; ++i) b5[static_cast<std::size_t>(i)] = b4[static_cast<std::size_t>(i)];
        set_u8(b5, 48 + 0, 0x07);
        set_u8(b5, 48 + 64 + 3, 0xA0);
        set_u8(b5, 16 + 3, 1u << 5);  // 5th bit of e = 5·32 + 3
        const auto v5 = decode<w::q5_k>(b5);
        CHECK(v5[0] == 64.0f);
        CHECK(v5[163] == 922.0f);  // 37·26 − 40
        CHECK(v5[3] == -6.0f);     // qh[3] bit 0 clear
    }
    SECTION("Q6_K") {
        auto b = zero_block<w::q6_k>();
        set_u16(b, 208, h_half);
        set_u8(b, 192 + 0, 0xFD);  // −3
        set_u8(b, 192 + 9, 7);
        set_u8(b, 192 + 14, 0x80);  // −128
        set_u8(b, 0, 0x05);         // e0 low nibble 5
        set_u8(b, 128 + 0, 0x02);   // e0 high bits 2 → q = (5 | 32) − 32 = 5
        set_u8(b, 64 + 32, 0xF0);   // e = 224 (h 1, g 3, l 0): high nibble 15
        set_u8(b, 128 + 32, 0xC0);  // its high bits 3 → q = 63 − 32 = 31
        const auto v = decode<w::q6_k>(b);
        CHECK(v[0] == -7.5f);       // 0.5·(−3)·5
        CHECK(v[144] == -112.0f);   // 0.5·7·(−32)
        CHECK(v[224] == -1984.0f);  // 0.5·(−128)·31
    }
}

TEST_CASE("odd scales: negative zero, largest fp16, subnormal, infinity", "[weights]") {
    SECTION("negative zero scale gives zeros for every format") {
        auto check = [](auto f) {
            using F = decltype(f);
            block_t b(F::block_bytes, std::byte{0x5A});
            for (int at : F::linear_f16_fields) set_u16(b, at, h_neg_zero);
            const auto v = decode<F>(b);
            for (float x : v) REQUIRE(x == 0.0f);
        };
        check(w::q8_0{});
        check(w::q4_0{});
        check(w::q4_1{});
        check(w::q5_0{});
        check(w::q5_1{});
        check(w::q2_k{});
        check(w::q3_k{});
        check(w::q4_k{});
        check(w::q5_k{});
        check(w::q6_k{});
        check(w::iq4_nl{});
    }
    SECTION("largest and smallest fp16 scales stay exact") {
        auto b = zero_block<w::q8_0>();
        set_u16(b, 0, h_max);
        set_u8(b, 2, 0x80);
        set_u8(b, 3, 0x7f);
        auto v = decode<w::q8_0>(b);
        CHECK(v[0] == -128.0f * 65504.0f);
        CHECK(v[1] == 127.0f * 65504.0f);
        set_u16(b, 0, h_min_sub);
        v = decode<w::q8_0>(b);
        CHECK(v[1] == std::ldexp(127.0f, -24));
        auto k = zero_block<w::q6_k>();
        set_u16(k, 208, h_max);
        set_u8(k, 192, 0x80);  // −128, q = −32 for e0
        CHECK(decode<w::q6_k>(k)[0] == 65504.0f * -128.0f * -32.0f);
    }
    SECTION("an infinite scale gives inf, and NaN where q = 0, as ggml does") {
        auto b = zero_block<w::q4_0>();
        set_u16(b, 0, h_inf);
        set_u8(b, 2, 0x09);  // e0: q − 8 = 1, e16: q − 8 = −8
        set_u8(b, 3, 0x08);  // e1: 0
        const auto v = decode<w::q4_0>(b);
        CHECK(std::isinf(v[0]));
        CHECK(v[0] > 0);
        CHECK(std::isinf(v[16]));
        CHECK(v[16] < 0);
        CHECK(std::isnan(v[1]));
    }
}

namespace {

// Max |decode(encode(x)) − x| relative to the block's largest magnitude.
template <class F>
double relative_error(const std::vector<float>& x, std::vector<float>* out = nullptr) {
    block_t b(F::block_bytes);
    std::vector<float> y(F::block_elems);
    double worst = 0.0;
    for (std::size_t at = 0; at < x.size(); at += F::block_elems) {
        F::encode(x.data() + at, b.data());
        F::decode(b.data(), y.data());
        double amax = 0.0, err = 0.0;
        for (int i = 0; i < F::block_elems; ++i) {
            amax = std::max(amax, std::fabs(static_cast<double>(x[at + i])));
            err = std::max(err, std::fabs(static_cast<double>(y[i]) - x[at + i]));
        }
        if (amax > 0) worst = std::max(worst, err / amax);
        if (out) std::copy(y.begin(), y.end(), out->begin() + static_cast<std::ptrdiff_t>(at));
    }
    return worst;
}

template <class F>
void check_codec(double bound) {
    INFO(F::ggml_name);
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(F::block_elems) * 64);
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = normal(rng) * (i < x.size() / 2 ? 0.02f : 3.0f);  // small and large blocks
        if (i % 97 == 5) x[i] *= 8.0f;                           // outliers
    }
    for (int i = 0; i < F::block_elems; ++i) x[static_cast<std::size_t>(i)] = 0.0f;  // an all-zero block
    for (int i = 0; i < F::block_elems; ++i) x[static_cast<std::size_t>(F::block_elems + i)] = -1.5f;  // constant
    std::vector<float> y(x.size());
    const double e1 = relative_error<F>(x, &y);
    CHECK(e1 <= bound);
    for (int i = 0; i < F::block_elems; ++i) CHECK(y[static_cast<std::size_t>(i)] == 0.0f);
    // Round trip: re-encoding decoded values stays within the same bound of them.
    std::vector<float> z(x.size());
    CHECK(relative_error<F>(y, &z) <= bound);
}

}  // namespace

TEST_CASE("encode then decode stays within each format's error bound", "[weights]") {
    check_codec<w::f32>(0.0);
    check_codec<w::f16>(1e-3);
    check_codec<w::bf16>(8e-3);
    check_codec<w::q8_0>(1.0 / 127 * 0.51 + 1e-3);
    check_codec<w::q4_0>(1.0 / 8 + 1e-3);  // the side opposite the max clips at q = 15
    check_codec<w::q4_1>(2.0 / 15 * 0.51 + 1e-3);
    check_codec<w::q5_0>(1.0 / 16 + 1e-3);
    check_codec<w::q5_1>(2.0 / 31 * 0.51 + 1e-3);
    check_codec<w::iq4_nl>(0.1);
    check_codec<w::q6_k>(0.03);
    check_codec<w::q5_k>(0.06);
    check_codec<w::q4_k>(0.12);
    check_codec<w::q3_k>(0.35);
    check_codec<w::q2_k>(0.6);
}

TEST_CASE("grid values survive the 32-value quantizers exactly", "[weights]") {
    // Values q·d with a fp16 d and the extreme q present are exactly representable: ggml's
    // reference quantizers must give them back bit for bit.
    std::vector<float> x(32);
    const float d = 0.015625f;
    for (int i = 0; i < 32; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>((i * 37) % 255 - 127) * d;
    x[0] = 127 * d;
    block_t b(w::q8_0::block_bytes);
    std::vector<float> y(32);
    w::q8_0::encode(x.data(), b.data());
    w::q8_0::decode(b.data(), y.data());
    CHECK(y == x);
    for (int i = 0; i < 32; ++i)
        x[static_cast<std::size_t>(i)] = static_cast<float>(i % 16 - 8) * d;  // −8·d is the max
    block_t b4(w::q4_0::block_bytes);
    w::q4_0::encode(x.data(), b4.data());
    w::q4_0::decode(b4.data(), y.data());
    CHECK(y == x);
}

TEST_CASE("encoders never misbehave on NaN, infinity or huge values", "[weights]") {
    auto run = [](auto f) {
        using F = decltype(f);
        std::vector<float> x(F::block_elems, 1.0f);
        x[1] = NAN;
        x[2] = INFINITY;
        x[3] = -1e30f;
        block_t b(F::block_bytes);
        F::encode(x.data(), b.data());  // defined behaviour (UBSan build checks the casts)
        std::vector<float> y(F::block_elems);
        F::decode(b.data(), y.data());
        SUCCEED();
    };
    run(w::q8_0{});
    run(w::q4_0{});
    run(w::q4_1{});
    run(w::q5_0{});
    run(w::q5_1{});
    run(w::q2_k{});
    run(w::q3_k{});
    run(w::q4_k{});
    run(w::q5_k{});
    run(w::q6_k{});
    run(w::iq4_nl{});
}

TEST_CASE("decode_row / encode_row walk whole blocks", "[weights]") {
    std::vector<float> x(512);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.1f);
    for (dtype t : {dtype::q8_0, dtype::q4_k, dtype::q6_k, dtype::iq4_nl}) {
        INFO(rwkv::dtype_name(t));
        std::vector<std::byte> row(rwkv::dtype_bytes(t, 512));
        w::encode_row(t, x.data(), row.data(), 512);
        std::vector<float> y(512), z(512);
        w::decode_row(t, row.data(), y.data(), 512);
        const int be = rwkv::dtype_block_elems(t), bb = rwkv::dtype_block_bytes(t);
        for (int b = 0; b < 512 / be; ++b)
            w::visit_format(t, [&](auto f) { decltype(f)::decode(row.data() + b * bb, z.data() + b * be); });
        CHECK(y == z);
    }
}
