#pragma once
// Q5_1 (ggml type 7): blocks of 32 values, `f16 d; f16 m; u8 qh[4]; u8 qs[16]` (5-bit q as in
// Q5_0); value = q·d + m (spec 8.4). q·d is exact; the addition rounds once, as in ggml.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q5_1 {
    static constexpr const char* ggml_name = "Q5_1";
    static constexpr int ggml_type = 7;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 24;
    static constexpr int linear_f16_fields[] = {0, 2};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        const float m = fp16_to_float(load_u16(block + 2));
        const std::uint32_t qh = load_u32(block + 4);
        for (int j = 0; j < 16; ++j) {
            const unsigned b = static_cast<unsigned>(block[8 + j]);
            const unsigned q0 = (b & 15u) | (((qh >> j) & 1u) << 4);
            const unsigned q1 = (b >> 4) | (((qh >> (j + 16)) & 1u) << 4);
            out[j] = static_cast<float>(q0) * d + m;
            out[j + 16] = static_cast<float>(q1) * d + m;
        }
    }

    // ggml's reference quantizer: m = min, d = (max − min) / 31, q = trunc((x − m) / d + 0.5).
    static void encode(const float* in, std::byte* block) {
        float lo = in[0], hi = in[0];
        for (int e = 1; e < 32; ++e) {
            lo = std::fmin(lo, in[e]);
            hi = std::fmax(hi, in[e]);
        }
        const float d = (hi - lo) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_f16(block, d);
        detail::store_f16(block + 2, lo);
        std::uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const int a = detail::trunc_clamp((in[j] - lo) * id + 0.5f, 0, 31);
            const int b = detail::trunc_clamp((in[j + 16] - lo) * id + 0.5f, 0, 31);
            block[8 + j] = static_cast<std::byte>((a & 15) | ((b & 15) << 4));
            qh |= static_cast<std::uint32_t>(a >> 4) << j;
            qh |= static_cast<std::uint32_t>(b >> 4) << (j + 16);
        }
        store_u16(block + 4, static_cast<std::uint16_t>(qh & 0xffffu));
        store_u16(block + 6, static_cast<std::uint16_t>(qh >> 16));
    }
};

}  // namespace rwkv::weights
