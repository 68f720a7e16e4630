#pragma once
// Q4_1 (ggml type 3): blocks of 32 values, `f16 d; f16 m; u8 qs[16]` (nibbles as Q4_0);
// value = q·d + m (spec 8.4). q·d is exact; the one rounding is the addition, as in ggml.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q4_1 {
    static constexpr const char* ggml_name = "Q4_1";
    static constexpr int ggml_type = 3;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 20;
    static constexpr int linear_f16_fields[] = {0, 2};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        const float m = fp16_to_float(load_u16(block + 2));
        for (int j = 0; j < 16; ++j) {
            const unsigned b = static_cast<unsigned>(block[4 + j]);
            out[j] = static_cast<float>(b & 15u) * d + m;
            out[j + 16] = static_cast<float>(b >> 4) * d + m;
        }
    }

    // ggml's reference quantizer: m = min, d = (max − min) / 15, q = trunc((x − m) / d + 0.5).
    static void encode(const float* in, std::byte* block) {
        float lo = in[0], hi = in[0];
        for (int e = 1; e < 32; ++e) {
            lo = std::fmin(lo, in[e]);
            hi = std::fmax(hi, in[e]);
        }
        const float d = (hi - lo) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_f16(block, d);
        detail::store_f16(block + 2, lo);
        for (int j = 0; j < 16; ++j) {
            const int a = detail::trunc_clamp((in[j] - lo) * id + 0.5f, 0, 15);
            const int b = detail::trunc_clamp((in[j + 16] - lo) * id + 0.5f, 0, 15);
            block[4 + j] = static_cast<std::byte>(a | (b << 4));
        }
    }
};

}  // namespace rwkv::weights
