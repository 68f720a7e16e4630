#pragma once
// Random block-format matrices for the quantized kernel tests (test_matvec_quant,
// test_matvec_q8act): random code bytes, and each fp16 scale field a random finite value of
// magnitude 2^-14..2^-6 (normal fp16) or, now and then, a subnormal or zero, either sign — so the
// kernels see every kind of scale the reference decoder handles, without inf/NaN.

#include <rwkv/weight.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace test_support {

// rows × cols of block format t (cols a whole number of its blocks).
inline rwkv::Weight random_weight(rwkv::dtype t, int rows, int cols, std::mt19937& rng) {
    const std::size_t rb = rwkv::dtype_bytes(t, cols);
    std::vector<std::byte> bytes(rb * static_cast<std::size_t>(rows));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : bytes) b = static_cast<std::byte>(byte(rng));
    rwkv::weights::visit_format(t, [&](auto f) {
        using F = decltype(f);
        if constexpr (F::block_elems > 1) {
            std::uniform_int_distribution<int> exp(1, 9), man(0, 1023), kind(0, 19), sign(0, 1);
            for (std::size_t b = 0; b < bytes.size(); b += F::block_bytes)
                for (int at : F::linear_f16_fields) {
                    const int k = kind(rng);
                    std::uint16_t h = static_cast<std::uint16_t>((exp(rng) << 10) | man(rng));
                    if (k == 0) h = static_cast<std::uint16_t>(man(rng));  // subnormal
                    if (k == 1) h = 0;
                    h = static_cast<std::uint16_t>(h | (sign(rng) << 15));
                    bytes[b + static_cast<std::size_t>(at)] = static_cast<std::byte>(h & 0xff);
                    bytes[b + static_cast<std::size_t>(at) + 1] = static_cast<std::byte>(h >> 8);
                }
        }
    });
    return rwkv::Weight::owning(t, std::move(bytes), rows, cols);
}

}  // namespace test_support
