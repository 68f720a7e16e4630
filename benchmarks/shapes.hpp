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

// What one decoded token reads (and writes) from memory, by part, in bytes, for weight policy T
// (scalar T: every matrix in T; block formats: the big matrices and the head in T's blocks,
// the x060 LoRA matrices in fp32, as Model<format> keeps them). Audited against the decode path
// (model.hpp, layers/): per layer the r k v g o projections [A][C] / [C][A], the channel mix's key
// [F][C], receptance [C][C] and value [C][F], each read once; x060 adds the token-shift LoRA
// (W1 [5 Dm][C], five W2 [C][Dm]) and the decay LoRA ([Dw][C], [A][Dw]); then the head [V][C]
// once and one row of the embedding (not the whole [V][C] table). The fp32 vectors (LayerNorm /
// GroupNorm parameters, token-shift mixes, decay, bonus) are read once per token. The recurrent
// state (WKV [H][N][N] plus two token-shift rows per layer) is read and written back every token,
// and at these sizes it does not stay in the caches between tokens (the weights stream through
// them), so it is counted twice. Activations (a few rows of C/A/F floats) live in L1/L2 and the
// logits (V floats, written) are left out: < 0.1 %.
struct DecodeBytes {
    double matrices = 0, head = 0, emb_row = 0, lora = 0, vectors = 0, state = 0;
    double weights() const { return matrices + head + emb_row + lora + vectors; }
    double total() const { return weights() + state; }
};

template <class T>
DecodeBytes decode_bytes(const rwkv::Config& c) {
    double big = sizeof(T), lora_bytes = sizeof(T);
    if constexpr (rwkv::is_weight_format_v<T>) {
        big = static_cast<double>(T::block_bytes) / T::block_elems;
        lora_bytes = 2.0;  // block-format models keep the LoRAs in the file's bf16 (random models: bf16 too)
    }
    const double L = c.n_layer, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size, N = c.head_size;
    const bool x060 = c.version == rwkv::Version::x060;
    DecodeBytes b;
    b.matrices = L * (5 * A * C + 2 * C * F + C * C) * big;  // r k v g o, ffn key / value, ffn receptance
    b.head = V * C * big;
    b.emb_row = C * big;
    if (x060)
        b.lora = L *
                 (5.0 * c.dim_lora_mix * C + 5.0 * C * c.dim_lora_mix + c.dim_lora_decay * C + A * c.dim_lora_decay) *
                 lora_bytes;
    // ln1 ln2 (4C), att mixes (x052: 4C; x060: maa_x + 5 maa = 6C), ffn mixes (2C), decay + bonus
    // + ln_x (4A); ln0 and ln_out once (4C).
    b.vectors = (L * ((x060 ? 12 : 10) * C + 4 * A) + 4 * C) * 4.0;
    b.state = 2.0 * L * (A * N + 2 * C) * 4.0;
    return b;
}

// Bytes of weights one decoded token reads (decode_bytes without the state).
template <class T>
double weight_bytes_per_token(const rwkv::Config& c) {
    return decode_bytes<T>(c).weights();
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
