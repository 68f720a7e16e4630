#pragma once
// Weight scalar types: rwkv::bfloat16 and rwkv::half (IEEE binary16). They only store bits and
// convert to/from float; all arithmetic happens in fp32 (activations and state are fp32).

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rwkv {

struct bfloat16 {
    std::uint16_t bits = 0;

    static constexpr bfloat16 from_bits(std::uint16_t b) {
        bfloat16 v;
        v.bits = b;
        return v;
    }
    // Round to nearest even, like torch's .to(torch.bfloat16); NaN stays NaN (quiet).
    static bfloat16 from_float(float f) {
        std::uint32_t u = std::bit_cast<std::uint32_t>(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return from_bits(static_cast<std::uint16_t>((u >> 16) | 0x40));
        u += 0x7fffu + ((u >> 16) & 1u);
        return from_bits(static_cast<std::uint16_t>(u >> 16));
    }
    float to_float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
};

struct half {
    std::uint16_t bits = 0;

    static constexpr half from_bits(std::uint16_t b) {
        half v;
        v.bits = b;
        return v;
    }

    float to_float() const {
        const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
        std::uint32_t exp = (bits >> 10) & 0x1fu;
        std::uint32_t man = bits & 0x3ffu;
        std::uint32_t out;
        if (exp == 0x1f) {
            out = sign | 0x7f800000u | (man << 13);  // inf / nan
        } else if (exp != 0) {
            out = sign | ((exp + 112u) << 23) | (man << 13);
        } else if (man == 0) {
            out = sign;
        } else {  // subnormal: normalise the mantissa
            int e = -1;
            do {
                ++e;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            out = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((man & 0x3ffu) << 13);
        }
        return std::bit_cast<float>(out);
    }

    // Round to nearest even with correct overflow to inf and gradual underflow.
    static half from_float(float f) {
        const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
        const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
        const std::uint32_t a = u & 0x7fffffffu;
        if (a > 0x7f800000u) return from_bits(sign | 0x7e00u);   // nan
        if (a >= 0x477ff000u) return from_bits(sign | 0x7c00u);  // rounds to >= 65520: inf
        if (a >= 0x38800000u) {                                  // normal half
            std::uint32_t r = a - 0x38000000u;                   // rebias exponent 127 -> 15
            r += 0xfffu + ((r >> 13) & 1u);
            return from_bits(static_cast<std::uint16_t>(sign | (r >> 13)));
        }
        if (a < 0x33000000u) return from_bits(sign);  // below half the smallest subnormal
        // Subnormal half: shift the full mantissa (with implicit 1) and round to nearest even.
        const std::uint32_t exp = a >> 23;
        const std::uint32_t man = (a & 0x7fffffu) | 0x800000u;
        const std::uint32_t shift = 126u - exp;  // 14..24
        std::uint32_t q = man >> shift;
        const std::uint32_t rem = man & ((1u << shift) - 1u);
        const std::uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
        return from_bits(static_cast<std::uint16_t>(sign | q));
    }
};

inline float to_float(float v) { return v; }
inline float to_float(bfloat16 v) { return v.to_float(); }
inline float to_float(half v) { return v.to_float(); }

template <class T>
T from_float(float f) {
    if constexpr (std::is_same_v<T, float>) {
        return f;
    } else {
        return T::from_float(f);
    }
}

template <class T>
inline constexpr bool is_weight_scalar_v =
    std::is_same_v<T, float> || std::is_same_v<T, bfloat16> || std::is_same_v<T, half>;

template <class T>
constexpr const char* scalar_name() {
    if constexpr (std::is_same_v<T, float>) return "float32";
    else if constexpr (std::is_same_v<T, bfloat16>) return "bfloat16";
    else return "float16";
}

}  // namespace rwkv
