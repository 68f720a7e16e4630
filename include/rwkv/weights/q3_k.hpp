#pragma once
// Q3_K (ggml type 11): super-blocks of 256 values in 16 sub-blocks of 16, 110 bytes:
// `u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d`. Sub-block s has a signed 6-bit scale S: its
// low 4 bits are the low nibble of scales[s] (s < 8) or the high nibble of scales[s − 8], its
// high 2 bits are bits 2·(s/4).. of scales[8 + s%4], and S = that − 32. Element e (h = e/128,
// j = (e%128)/32, l = e%32): q = ((qs[32h + l] >> 2j) & 3) − (bit 4h + j of hmask[l] ? 0 : 4),
// value d·S·q — exact in float32, as in ggml's reference dequantizer.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q3_k {
    static constexpr const char* ggml_name = "Q3_K";
    static constexpr int ggml_type = 11;
    static constexpr int block_elems = 256;
    static constexpr int block_bytes = 110;
    static constexpr int linear_f16_fields[] = {108};

    RWKV_HOST_DEVICE static int scale(const std::byte* block, int s) {
        const std::byte* sc = block + 96;
        const unsigned lo = s < 8 ? static_cast<unsigned>(sc[s]) & 15u : static_cast<unsigned>(sc[s - 8]) >> 4;
        const unsigned hi = (static_cast<unsigned>(sc[8 + s % 4]) >> (2 * (s / 4))) & 3u;
        return static_cast<int>(lo | (hi << 4)) - 32;
    }

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block + 108));
        for (int s = 0; s < 16; ++s) {
            const float dl = d * static_cast<float>(scale(block, s));
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * s + i, h = e / 128, j = (e % 128) / 32, l = e % 32;
                const int low = static_cast<int>((static_cast<unsigned>(block[32 + 32 * h + l]) >> (2 * j)) & 3u);
                const bool high = (static_cast<unsigned>(block[l]) >> (4 * h + j)) & 1u;
                out[e] = dl * static_cast<float>(low - (high ? 0 : 4));
            }
        }
    }

    // Simpler than ggml's search-based quantizer, documented as such: each sub-block's scale maps
    // its value of largest magnitude to q = −4; the 16 scales are quantized to 6 signed bits
    // against the largest one (which maps to −32); every value takes the nearest q in [−4, 3]
    // for the stored scales. Always a valid block.
    static void encode(const float* in, std::byte* block) {
        float scales[16], max_scale = 0.0f;
        for (int s = 0; s < 16; ++s) {
            scales[s] = detail::signed_absmax(in + 16 * s, 16) / -4.0f;
            if (std::fabs(scales[s]) > std::fabs(max_scale)) max_scale = scales[s];
        }
        const float iscale = max_scale != 0.0f ? -32.0f / max_scale : 0.0f;
        const float d = iscale != 0.0f ? detail::f16_round(1.0f / iscale) : 0.0f;
        for (int i = 0; i < 110; ++i) block[i] = std::byte{0};
        detail::store_f16(block + 108, d);
        for (int s = 0; s < 16; ++s) {
            const int S = detail::round_clamp(iscale * scales[s], -32, 31);
            const unsigned u = static_cast<unsigned>(S + 32);
            if (s < 8) block[96 + s] |= static_cast<std::byte>(u & 15u);
            else block[96 + s - 8] |= static_cast<std::byte>((u & 15u) << 4);
            block[96 + 8 + s % 4] |= static_cast<std::byte>((u >> 4) << (2 * (s / 4)));
            const float step = d * static_cast<float>(S);
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * s + i, h = e / 128, j = (e % 128) / 32, l = e % 32;
                const int q = step != 0.0f ? detail::round_clamp(in[e] / step, -4, 3) : 0;
                const unsigned L = static_cast<unsigned>(q + 4);  // 0..7: low 2 bits + "no −4" bit
                block[32 + 32 * h + l] |= static_cast<std::byte>((L & 3u) << (2 * j));
                block[l] |= static_cast<std::byte>((L >> 2) << (4 * h + j));
            }
        }
    }
};

}  // namespace rwkv::weights
