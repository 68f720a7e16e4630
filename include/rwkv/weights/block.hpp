#pragma once
// Helpers every weight-format header uses: the host/device marker and exact little-endian
// reads of the scalar fields (fp16 / bf16 scales, bytes) that block layouts are made of.
// Plain functions with no library state, so CUDA kernels can call the same decoders.

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define RWKV_HOST_DEVICE __host__ __device__
#else
#define RWKV_HOST_DEVICE
#endif

namespace rwkv::weights {

RWKV_HOST_DEVICE inline std::uint16_t load_u16(const std::byte* p) {
    return static_cast<std::uint16_t>(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8));
}

RWKV_HOST_DEVICE inline std::uint32_t load_u32(const std::byte* p) {
    return static_cast<std::uint32_t>(load_u16(p)) | (static_cast<std::uint32_t>(load_u16(p + 2)) << 16);
}

RWKV_HOST_DEVICE inline float bits_to_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

RWKV_HOST_DEVICE inline std::uint32_t float_to_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// IEEE binary16 → float, exact (subnormals, inf, NaN).
RWKV_HOST_DEVICE inline float fp16_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));
    if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return bits_to_float(sign);
    // Subnormal: man · 2^-24, exact in float.
    const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

// bfloat16 → float, exact.
RWKV_HOST_DEVICE inline float bf16_to_float(std::uint16_t b) {
    return bits_to_float(static_cast<std::uint32_t>(b) << 16);
}

RWKV_HOST_DEVICE inline void store_u16(std::byte* p, std::uint16_t v) {
    p[0] = static_cast<std::byte>(v & 0xffu);
    p[1] = static_cast<std::byte>(v >> 8);
}

}  // namespace rwkv::weights
