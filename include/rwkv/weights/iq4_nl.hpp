#pragma once
// IQ4_NL (ggml type 20): blocks of 32 values, `f16 d; u8 qs[16]` (nibbles as Q4_0); value =
// d·K[q] with ggml's fixed non-linear table K. llama.cpp's K-quant mixes fall back to it for rows
// that are not a multiple of 256. d·K[q] is exact in float32 (11-bit d, 8-bit K).

#include "block.hpp"
#include "quantize.hpp"

namespace rwkv::weights {

struct iq4_nl {
    static constexpr const char* ggml_name = "IQ4_NL";
    static constexpr int ggml_type = 20;
    static constexpr int block_elems = 32;
    static constexpr int block_bytes = 18;
    static constexpr int linear_f16_fields[] = {0};

    RWKV_HOST_DEVICE static constexpr int level(unsigned q) {
        constexpr signed char k[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
        return k[q & 15u];
    }

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) {
        const float d = fp16_to_float(load_u16(block));
        for (int j = 0; j < 16; ++j) {
            const unsigned b = static_cast<unsigned>(block[2 + j]);
            out[j] = d * static_cast<float>(level(b & 15u));
            out[j + 16] = d * static_cast<float>(level(b >> 4));
        }
    }

    // A simpler quantizer than ggml's (which searches several scales): start from d = max / −127
    // (the largest magnitude on the table's end point), pick the nearest level for each value,
    // refit d by least squares for those levels, and keep whichever d gives the smaller squared
    // error. Always a valid block; error within one level step of the best.
    static void encode(const float* in, std::byte* block) {
        const float max = detail::signed_absmax(in, 32);
        int q[32];
        auto assign = [&](float d, int* out) {
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            double err = 0.0;
            for (int e = 0; e < 32; ++e) {
                const float t = in[e] * id;
                int best = 8;
                float bd = INFINITY;
                for (unsigned k = 0; k < 16; ++k) {
                    const float dist = std::fabs(t - static_cast<float>(level(k)));
                    if (dist < bd) {
                        bd = dist;
                        best = static_cast<int>(k);
                    }
                }
                out[e] = best;
                const double r =
                    static_cast<double>(in[e]) - static_cast<double>(d) * level(static_cast<unsigned>(best));
                err += r * r;
            }
            return err;
        };
        float d = detail::f16_round(max / -127.0f);
        double err = assign(d, q);
        double sxk = 0.0, skk = 0.0;
        for (int e = 0; e < 32; ++e) {
            const double k = level(static_cast<unsigned>(q[e]));
            sxk += static_cast<double>(in[e]) * k;
            skk += k * k;
        }
        if (skk > 0.0) {
            const float d2 = detail::f16_round(static_cast<float>(sxk / skk));
            int q2[32];
            const double err2 = assign(d2, q2);
            if (err2 < err) {
                d = d2;
                for (int e = 0; e < 32; ++e) q[e] = q2[e];
            }
        }
        detail::store_f16(block, d);
        for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<std::byte>(q[j] | (q[j + 16] << 4));
    }
};

}  // namespace rwkv::weights
