#pragma once
// Q4_0 (ggml type 2): blocks of 32 values, `f16 d; u8 qs[16]`; element e < 16 is the low nibble of
// qs[e], element e ≥ 16 the high nibble of qs[e − 16]; value = (q − 8)·d (spec 8.4). Exact in float32.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q4_0 {
    static constexpr const char* ggml_name = "Q4_0";
    static constexpr int ggml_type = 2;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 18;
    static constexpr int linear_f16_fields[] = {0};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        for (int j = 0; j < 16; ++j) {
            const unsigned b = static_cast<unsigned>(block[2 + j]);
            out[j] = static_cast<float>(static_cast<int>(b & 15u) - 8) * d;
            out[j + 16] = static_cast<float>(static_cast<int>(b >> 4) - 8) * d;
        }
    }

    // ggml's reference quantizer: the value of largest magnitude maps to q = 0 (−8·d), so
    // d = max / −8 and q = trunc(x / d + 8.5) clamped to 15.
    static void encode(const float* in, std::byte* block) {
        const float max = detail::signed_absmax(in, 32);
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_f16(block, d);
        for (int j = 0; j < 16; ++j) {
            const int lo = detail::trunc_clamp(in[j] * id + 8.5f, 0, 15, 8);
            const int hi = detail::trunc_clamp(in[j + 16] * id + 8.5f, 0, 15, 8);
            block[2 + j] = static_cast<std::byte>(lo | (hi << 4));
        }
    }
};

}  // namespace rwkv::weights
