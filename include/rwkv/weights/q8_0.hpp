#pragma once
// Q8_0 (ggml type 8): blocks of 32 values, `f16 d; i8 qs[32]`, value = qs[e]·d (spec 8.4).
// The product is exact in float32 (11-bit d times 8-bit q), so decode is bit-exact with ggml.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q8_0 {
    static constexpr const char* ggml_name = "Q8_0";
    static constexpr int ggml_type = 8;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 34;
    // Byte offsets of the fp16 fields every value is linear in (scaling them scales the block).
    static constexpr int linear_f16_fields[] = {0};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        for (int e = 0; e < 32; ++e)
            out[e] = static_cast<float>(static_cast<std::int8_t>(static_cast<unsigned char>(block[2 + e]))) * d;
    }

    // ggml's reference quantizer: d = absmax / 127, q = round(x / d).
    static void encode(const float* in, std::byte* block) {
        float amax = 0.0f;
        for (int e = 0; e < 32; ++e) amax = std::fmax(amax, std::fabs(in[e]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_f16(block, d);
        for (int e = 0; e < 32; ++e)
            block[2 + e] = static_cast<std::byte>(static_cast<std::int8_t>(detail::round_clamp(in[e] * id, -127, 127)));
    }
};

}  // namespace rwkv::weights
