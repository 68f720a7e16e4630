#pragma once
// Q4_K (ggml type 12): super-blocks of 256 values in 8 sub-blocks of 32, 144 bytes:
// `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]`. Sub-block s has a 6-bit scale and a 6-bit min
// packed in `scales` (see scale_min); element e (c = e/64, r = e%64, l = r%32) has q = low
// (r < 32) or high nibble of qs[32c + l], value d·sc·q − dmin·m. Both products are exact in
// float32, so only the subtraction rounds, exactly as in ggml's reference dequantizer.

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

namespace detail {

// The 6-bit (scale, min) pair of sub-block s (0..7) shared by Q4_K and Q5_K: s < 4 in the low 6
// bits of bytes s and s + 4; s ≥ 4 in the nibbles of byte s + 4 plus the top 2 bits of bytes
// s − 4 (scale) and s (min).
RWKV_HOST_DEVICE inline void k4_scale_min(const std::byte* scales, int s, unsigned& sc, unsigned& m) {
    auto b = [&](int i) { return static_cast<unsigned>(scales[i]); };
    if (s < 4) {
        sc = b(s) & 63u;
        m = b(s + 4) & 63u;
    } else {
        sc = (b(s + 4) & 15u) | ((b(s - 4) >> 6) << 4);
        m = (b(s + 4) >> 4) | ((b(s) >> 6) << 4);
    }
}

inline void k4_set_scale_min(std::byte* scales, int s, unsigned sc, unsigned m) {
    if (s < 4) {
        scales[s] |= static_cast<std::byte>(sc & 63u);
        scales[s + 4] |= static_cast<std::byte>(m & 63u);
    } else {
        scales[s + 4] |= static_cast<std::byte>((sc & 15u) | ((m & 15u) << 4));
        scales[s - 4] |= static_cast<std::byte>((sc >> 4) << 6);
        scales[s] |= static_cast<std::byte>((m >> 4) << 6);
    }
}

// Shared by the Q4_K and Q5_K encoders (simpler than ggml's search, documented as such): each
// 32-value sub-block fitted as scale·q − min over its range (min clipped at 0), scales and mins
// quantized to 6 bits against d = max scale / 63 and dmin = max min / 63, then the nearest
// q in [0, nmax] per value for the stored scales. Writes d, dmin, scales; returns q per value.
inline void k4_encode_scales(const float* in, std::byte* block, int nmax, int* q) {
    affine_fit fit[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; ++s) {
        fit[s] = fit_affine(in + 32 * s, 32, nmax);
        max_scale = std::fmax(max_scale, fit[s].scale);
        max_min = std::fmax(max_min, fit[s].min);
    }
    const float d = f16_round(max_scale / 63.0f), dmin = f16_round(max_min / 63.0f);
    store_f16(block, d);
    store_f16(block + 2, dmin);
    for (int s = 0; s < 8; ++s) {
        const int sc = d > 0.0f ? round_clamp(fit[s].scale / d, 0, 63) : 0;
        const int m = dmin > 0.0f ? round_clamp(fit[s].min / dmin, 0, 63) : 0;
        k4_set_scale_min(block + 4, s, static_cast<unsigned>(sc), static_cast<unsigned>(m));
        const float step = d * static_cast<float>(sc), offset = dmin * static_cast<float>(m);
        for (int i = 0; i < 32; ++i)
            q[32 * s + i] = step > 0.0f ? round_clamp((in[32 * s + i] + offset) / step, 0, nmax) : 0;
    }
}

}  // namespace detail

struct q4_k {
    static constexpr const char* ggml_name = "Q4_K";
    static constexpr int ggml_type = 12;
    static constexpr int block_elems = 256;
    static constexpr int block_bytes = 144;
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
                const unsigned q = (static_cast<unsigned>(block[16 + 32 * c + l]) >> shift) & 15u;
                out[32 * s + l] = dl * static_cast<float>(q) - ml;
            }
        }
    }

    static void encode(const float* in, std::byte* block) {
        for (int i = 0; i < 144; ++i) block[i] = std::byte{0};
        int q[256];
        detail::k4_encode_scales(in, block, 15, q);
        for (int e = 0; e < 256; ++e) {
            const int s = e / 32, c = s / 2, l = e % 32;
            block[16 + 32 * c + l] |= static_cast<std::byte>(q[e] << (4 * (s % 2)));
        }
    }
};

}  // namespace rwkv::weights
