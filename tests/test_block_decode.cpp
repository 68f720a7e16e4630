// The generic path's block decoders (backend/cpu/block_decode.hpp): for every block format,
// decode_block<F> gives bit for bit F::decode's values — on aarch64 this checks the NEON
// decoders, on x86 the SSE2 Q8_0 decoder (the other formats call the reference there) — on
// blocks of random bytes with every kind of fp16 scale (random bit patterns, ±0, subnormal,
// largest, ±Inf, NaN) in every fp16 field, and on blocks whose code and packed-scale bytes are
// all one fill byte (0x00, 0xff, 0x80, 0x7f, 0x55, 0xaa).

#include <rwkv/backend/cpu/block_decode.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace rwkv;

namespace {

template <class F>
void check_block(const std::byte* block, const char* what) {
    std::vector<float> want(F::block_elems), got(F::block_elems, 12345.0f);
    F::decode(block, want.data());
    backend::cpu::decode_block<F>(block, got.data());
    for (int e = 0; e < F::block_elems; ++e) {
        INFO(F::ggml_name << ", " << what << ", element " << e << ": want " << want[e] << " got " << got[e]);
        if (std::isnan(want[e])) REQUIRE(std::isnan(got[e]));
        else REQUIRE(std::bit_cast<std::uint32_t>(got[e]) == std::bit_cast<std::uint32_t>(want[e]));
    }
}

// fn(Format{}) for every weight format (weights/list.hpp).
template <class Fn>
void for_each_format(Fn&& fn) {
#define RWKV_TEST_EACH_FORMAT(name) fn(weights::name{});
    RWKV_WEIGHT_FORMATS(RWKV_TEST_EACH_FORMAT)
#undef RWKV_TEST_EACH_FORMAT
}

void store_f16(std::byte* p, std::uint16_t h) {
    p[0] = static_cast<std::byte>(h & 0xff);
    p[1] = static_cast<std::byte>(h >> 8);
}

}  // namespace

TEST_CASE("decode_block equals the reference decoder bit for bit, random blocks and every kind of scale",
          "[block_decode]") {
    std::mt19937 rng(29);
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<std::uint16_t> scales = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00,
                                         0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00};
    for (int i = 0; i < 300; ++i) scales.push_back(static_cast<std::uint16_t>(byte(rng) << 8 | byte(rng)));
    for_each_format([&](auto f) {
        using F = decltype(f);
        if constexpr (F::block_elems > 1) {
            std::vector<std::byte> block(F::block_bytes);
            for (std::size_t i = 0; i < scales.size(); ++i) {
                for (auto& b : block) b = static_cast<std::byte>(byte(rng));
                int k = 0;
                for (int at : F::linear_f16_fields)  // a second field (m, dmin) takes another scale
                    store_f16(block.data() + at, scales[(i + 7 * k++) % scales.size()]);
                check_block<F>(block.data(), "random codes");
            }
        }
    });
}

TEST_CASE("decode_block equals the reference decoder on blocks of one fill byte", "[block_decode]") {
    const unsigned char fills[] = {0x00, 0xff, 0x80, 0x7f, 0x55, 0xaa};
    const std::uint16_t scales[] = {0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x3c00, 0xbc00, 0x0000};
    for_each_format([&](auto f) {
        using F = decltype(f);
        if constexpr (F::block_elems > 1) {
            std::vector<std::byte> block(F::block_bytes);
            for (unsigned char fill : fills)
                for (std::uint16_t h : scales) {
                    std::fill(block.begin(), block.end(), static_cast<std::byte>(fill));
                    for (int at : F::linear_f16_fields) store_f16(block.data() + at, h);
                    check_block<F>(block.data(), "fill block");
                }
        }
    });
}
