#pragma once
// Q5_0 (ggml type 6): blocks of 32 values, `f16 d; u8 qh[4]; u8 qs[16]`. The low 4 bits of
// element e are the nibbles of qs as in Q4_0; its 5th bit is bit e of qh read as a little-endian
// u32; value = (q − 16)·d (spec 8.4). Exact in float32.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q5_0 {
    static constexpr const char* ggml_name = "Q5_0";
    static constexpr int ggml_type = 6;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 22;
    static constexpr int linear_f16_fields[] = {0};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        const std::uint32_t qh = load_u32(block + 2);
        for (int j = 0; j < 16; ++j) {
            const unsigned b = static_cast<unsigned>(block[6 + j]);
            const int q0 = static_cast<int>((b & 15u) | (((qh >> j) & 1u) << 4));
            const int q1 = static_cast<int>((b >> 4) | (((qh >> (j + 16)) & 1u) << 4));
            out[j] = static_cast<float>(q0 - 16) * d;
            out[j + 16] = static_cast<float>(q1 - 16) * d;
        }
    }

    // ggml's reference quantizer: d = max / −16 (max = value of largest magnitude),
    // q = trunc(x / d + 16.5) clamped to 31.
    static void encode(const float* in, std::byte* block) {
        const float max = detail::signed_absmax(in, 32);
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        detail::store_f16(block, d);
        std::uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            const int a = detail::trunc_clamp(in[j] * id + 16.5f, 0, 31, 16);
            const int b = detail::trunc_clamp(in[j + 16] * id + 16.5f, 0, 31, 16);
            block[6 + j] = static_cast<std::byte>((a & 15) | ((b & 15) << 4));
            qh |= static_cast<std::uint32_t>(a >> 4) << j;
            qh |= static_cast<std::uint32_t>(b >> 4) << (j + 16);
        }
        store_u16(block + 2, static_cast<std::uint16_t>(qh & 0xffffu));
        store_u16(block + 4, static_cast<std::uint16_t>(qh >> 16));
    }
};

}  // namespace rwkv::weights
