#pragma once
// Q6_K (ggml type 14): super-blocks of 256 values in 16 sub-blocks of 16, 210 bytes:
// `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d`. Element e (h = e/128, g = (e%128)/32, l = e%32):
// low 4 bits = low (g < 2) or high nibble of ql[64h + l + 32·(g & 1)], high 2 bits = bits 2g.. of
// qh[32h + l], q = that − 32; value d·scales[e/16]·q — exact in float32, as in ggml.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q6_k {
    static constexpr const char* ggml_name = "Q6_K";
    static constexpr int ggml_type = 14;
    static constexpr int block_elems = 256;
    static constexpr int block_bytes = 210;
    static constexpr int linear_f16_fields[] = {208};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block + 208));
        for (int s = 0; s < 16; ++s) {
            const float dl =
                d * static_cast<float>(static_cast<signed char>(static_cast<unsigned char>(block[192 + s])));
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * s + i, h = e / 128, g = (e % 128) / 32, l = e % 32;
                const unsigned b = static_cast<unsigned>(block[64 * h + l + 32 * (g & 1)]);
                const unsigned lo = g < 2 ? b & 15u : b >> 4;
                const unsigned hi = (static_cast<unsigned>(block[128 + 32 * h + l]) >> (2 * g)) & 3u;
                out[e] = dl * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
            }
        }
    }

    // Simpler than ggml's search-based quantizer, documented as such: each sub-block's scale maps
    // its value of largest magnitude to q = −32; the 16 scales are quantized to signed 8 bits
    // against the largest (which maps to −128); every value takes the nearest q in [−32, 31].
    static void encode(const float* in, std::byte* block) {
        float scales[16], max_scale = 0.0f;
        for (int s = 0; s < 16; ++s) {
            scales[s] = detail::signed_absmax(in + 16 * s, 16) / -32.0f;
            if (std::fabs(scales[s]) > std::fabs(max_scale)) max_scale = scales[s];
        }
        const float iscale = max_scale != 0.0f ? -128.0f / max_scale : 0.0f;
        const float d = iscale != 0.0f ? detail::f16_round(1.0f / iscale) : 0.0f;
        for (int i = 0; i < 210; ++i) block[i] = std::byte{0};
        detail::store_f16(block + 208, d);
        for (int s = 0; s < 16; ++s) {
            const int S = detail::round_clamp(iscale * scales[s], -128, 127);
            block[192 + s] = static_cast<std::byte>(static_cast<unsigned char>(static_cast<signed char>(S)));
            const float step = d * static_cast<float>(S);
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * s + i, h = e / 128, g = (e % 128) / 32, l = e % 32;
                const int q = step != 0.0f ? detail::round_clamp(in[e] / step, -32, 31) : 0;
                const unsigned Q = static_cast<unsigned>(q + 32);
                block[64 * h + l + 32 * (g & 1)] |= static_cast<std::byte>((Q & 15u) << (g < 2 ? 0 : 4));
                block[128 + 32 * h + l] |= static_cast<std::byte>((Q >> 4) << (2 * g));
            }
        }
    }
};

}  // namespace rwkv::weights
