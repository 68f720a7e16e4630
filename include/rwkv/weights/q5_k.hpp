#pragma once
// Q5_K (ggml type 13): super-blocks of 256 values in 8 sub-blocks of 32, 176 bytes:
// `f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]`. As Q4_K (same scale/min packing and
// nibbles), plus a 5th bit per value: bit s of qh[l] for element e = 32s + l. value = d·sc·q −
// dmin·m; both products are exact in float32, only the subtraction rounds, as in ggml.

#include "block.hpp"
#include "q4_k.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct q5_k {
    static constexpr const char* ggml_name = "Q5_K";
    static constexpr int ggml_type = 13;
    static constexpr int block_elems = 256;
    static constexpr int block_bytes = 176;
    static constexpr int linear_f16_fields[] = {0, 2};

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        const float dmin = fp16_to_float(load_u16(block + 2));
        for (int s = 0; s < 8; ++s) {
            unsigned sc = 0, m = 0;
            detail::k4_scale_min(block + 4, s, sc, m);
            const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
            const int c = s / 2, shift = 4 * (s % 2);
            for (int l = 0; l < 32; ++l) {
                const unsigned q = ((static_cast<unsigned>(block[48 + 32 * c + l]) >> shift) & 15u) |
                                   (((static_cast<unsigned>(block[16 + l]) >> s) & 1u) << 4);
                out[32 * s + l] = dl * static_cast<float>(q) - ml;
            }
        }
    }

    static void encode(const float* in, std::byte* block) {
        for (int i = 0; i < 176; ++i) block[i] = std::byte{0};
        int q[256];
        detail::k4_encode_scales(in, block, 31, q);
        for (int e = 0; e < 256; ++e) {
            const int s = e / 32, c = s / 2, l = e % 32;
            block[48 + 32 * c + l] |= static_cast<std::byte>((q[e] & 15) << (4 * (s % 2)));
            block[16 + l] |= static_cast<std::byte>((q[e] >> 4) << s);
        }
    }
};

}  // namespace rwkv::weights
