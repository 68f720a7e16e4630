#pragma once
// Q2_K (ggml type 10): super-blocks of 256 values in 16 sub-blocks of 16, 84 bytes:
// `u8 scales[16]; u8 qs[64]; f16 d; f16 dmin`. Sub-block s has a 4-bit scale (low nibble of
// scales[s]) and a 4-bit min (high nibble); element e (h = e/128, j = (e%128)/32, l = e%32) has
// q = (qs[32h + l] >> 2j) & 3 and value d·sc·q − dmin·m. Both products are exact in float32, so
// only the subtraction rounds, exactly as in ggml's reference dequantizer.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q2_k {
    static constexpr const char* ggml_name = "Q2_K";
    static constexpr int ggml_type = 10;
    static constexpr int block_elems = 256;
    static constexpr int block_bytes = 84;
    static constexpr int linear_f16_fields[] = {80, 82};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block + 80));
        const float dmin = fp16_to_float(load_u16(block + 82));
        for (int e = 0; e < 256; ++e) {
            const int h = e / 128, j = (e % 128) / 32, l = e % 32;
            const unsigned sc = static_cast<unsigned>(block[e / 16]);
            const unsigned q = (static_cast<unsigned>(block[16 + 32 * h + l]) >> (2 * j)) & 3u;
            out[e] = d * static_cast<float>(sc & 15u) * static_cast<float>(q) - dmin * static_cast<float>(sc >> 4);
        }
    }

    // Simpler than ggml's search-based quantizer, documented as such: each sub-block is fitted
    // as scale·q − min over its own range (min clipped at 0), the 16 scales and mins are
    // quantized to 4 bits against d = max scale / 15 and dmin = max min / 15, and every value
    // takes the nearest q for the stored (rounded) scales. Always a valid block.
    static void encode(const float* in, std::byte* block) {
        detail::affine_fit fit[16];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 16; ++s) {
            fit[s] = detail::fit_affine(in + 16 * s, 16, 3);
            max_scale = std::fmax(max_scale, fit[s].scale);
            max_min = std::fmax(max_min, fit[s].min);
        }
        const float d = detail::f16_round(max_scale / 15.0f), dmin = detail::f16_round(max_min / 15.0f);
        for (int i = 0; i < 84; ++i) block[i] = std::byte{0};
        detail::store_f16(block + 80, d);
        detail::store_f16(block + 82, dmin);
        for (int s = 0; s < 16; ++s) {
            const int sc = d > 0.0f ? detail::round_clamp(fit[s].scale / d, 0, 15) : 0;
            const int m = dmin > 0.0f ? detail::round_clamp(fit[s].min / dmin, 0, 15) : 0;
            block[s] = static_cast<std::byte>(sc | (m << 4));
            const float step = d * static_cast<float>(sc), offset = dmin * static_cast<float>(m);
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * s + i;
                const int q = step > 0.0f ? detail::round_clamp((in[e] + offset) / step, 0, 3) : 0;
                const int h = e / 128, j = (e % 128) / 32, l = e % 32;
                block[16 + 32 * h + l] |= static_cast<std::byte>(q << (2 * j));
            }
        }
    }
};

}  // namespace rwkv::weights
