#pragma once
// Released model shapes the speed targets are stated for (issue 5), as Configs for
// Model<T>::random(..., Init::fast): same shapes and magnitudes, no minutes of QR.

#include <rwkv/model.hpp>

#include <string>

namespace bench {

struct Shape {
    const char* name;
    rwkv::Version version;
    int n_layer, n_embd, dim_ffn, vocab;
};

inline constexpr Shape eagle_0b4{"Eagle-0.4B", rwkv::Version::x052, 24, 1024, 3584, 65536};
inline constexpr Shape finch_0b4{"Finch-0.4B", rwkv::Version::x060, 24, 1024, 3584, 65536};
inline constexpr Shape finch_1b6{"Finch-1.6B", rwkv::Version::x060, 24, 2048, 7168, 65536};

inline rwkv::Config config_of(const Shape& s) {
    rwkv::Config c;
    c.version = s.version;
    c.n_layer = s.n_layer;
    c.n_embd = s.n_embd;
    c.head_size = 64;
    c.dim_ffn = s.dim_ffn;
    c.vocab_size = s.vocab;
    return c.finalize();
}

// Bytes of weights one decoded token reads: every matrix once, plus one embedding row.
template <class T>
double weight_bytes_per_token(const rwkv::Config& c) {
    const double C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size;
    double per_layer = 5 * A * C + 2 * C * F + C * C;  // r k v g o, ffn key/value, ffn receptance
    double lora = c.version == rwkv::Version::x060
                      ? C * 5 * c.dim_lora_mix + 5.0 * c.dim_lora_mix * C + C * c.dim_lora_decay + c.dim_lora_decay * A
                      : 0.0;
    return (c.n_layer * (per_layer + lora) + V * C + C) * sizeof(T);
}

// Multiply-adds ×2 per token for prefill (projections + head for the last token only).
inline double flops_per_prefill_token(const rwkv::Config& c) {
    const double C = c.n_embd, A = c.dim_att, F = c.dim_ffn, N = c.head_size;
    double per_layer = 2 * (5 * A * C + 2 * C * F + C * C) + 4 * A * N;  // + WKV
    if (c.version == rwkv::Version::x060)
        per_layer +=
            2 * (C * 5 * c.dim_lora_mix + 5.0 * c.dim_lora_mix * C + C * c.dim_lora_decay + c.dim_lora_decay * A);
    return c.n_layer * per_layer;
}

}  // namespace bench
