#pragma once
// Scratch memory of the host backends (cpu, reference) for one forward call on one state:
// named activation rows, each sized from the dimension it holds (so no buffer is ever borrowed
// for another dimension), plus the CPU backend's per-thread tiles. It hangs off a State (so a
// const Model serves many states on many threads at once, and decoding reuses the same memory:
// nothing is allocated in the token loop) but is not part of the state's value: copying a
// State copies only the recurrent state, and the copy grows its own scratch on first use.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../backend.hpp"
#include "../config.hpp"
#include "../token.hpp"
#include "cpu/threads.hpp"

namespace rwkv::detail {

// One sequence's share of a round of rows (Model's batched forward): `rows` tokens of
// sequence `seq` starting at `tokens`; out_row >= 0 when its last token's logits are wanted.
struct batch_part {
    int seq = 0;
    const token* tokens = nullptr;
    int rows = 0;
    int out_row = -1;
};

struct Workspace {
    int rows = 0;  // how many tokens the row buffers below hold

    std::vector<float> x;                           // [rows][C] residual stream
    std::vector<float> z;                           // [rows][C] LayerNorm output
    std::vector<float> prev;                        // [rows][C] token shift: the previous token's z
    std::vector<float> mix[5];                      // [rows][C] mixed inputs: x060 slots w k v r g; x052 -, k v r g
    std::vector<float> lora_mix;                    // [rows][5 Dm] x060 token-shift LoRA hidden layer
    std::vector<float> lora_slot;                   // [rows][Dm] one slot of it, gathered into rows
    std::vector<float> lora_decay;                  // [rows][Dw] x060 decay LoRA hidden layer
    std::vector<float> r, k, v, g;                  // [rows][A]
    std::vector<float> w, log_w;                    // [rows][A] decay exp(λ) and λ = -exp(ω)
    std::vector<float> y;                           // [rows][A] WKV output
    std::vector<float> out;                         // [rows][C] output projections
    std::vector<float> ffn_k;                       // [rows][F] channel-mix key
    std::vector<float> ffn_r;                       // [rows][C] channel-mix receptance
    std::vector<float> logits;                      // [V]
    std::vector<float> batch_logits;                // [B][V] forward_batch's result
    std::vector<float> last_x;                      // [B][C] the last row of each sequence, gathered for the head
    std::vector<float> head_rows;                   // [B][V] their logits before scattering
    std::vector<token> batch_tokens;                // the round's tokens, sequence after sequence
    std::vector<batch_part> parts;                  // the round's sequences
    std::vector<sequence_rows> att_seqs, ffn_seqs;  // per layer: each sequence's rows and states
    std::vector<std::vector<float>> tiles;          // per thread: 16-bit weights widened for a GEMM band
    std::vector<std::vector<float>> wkv_scratch;    // per thread: chunked WKV scratch
    std::vector<float> decoded;                     // per call: rows of non-scalar weight formats decoded to fp32
    std::vector<std::uint32_t> bf16_packed;         // bf16 decode: the call's vectors as bf16 pairs
    std::vector<std::byte> q8act;                   // int8 decode: the call's vectors quantized (matvec_q8act.hpp)

    // Set by the model for the duration of one forward call.
    backend::cpu::ThreadPool* pool = nullptr;
    bool chunked_wkv = false;
    bool bf16_prefill = false;
    bool bf16_decode = false;  // one-token rows with bf16 weights: activations rounded to bf16 (vdpbf16ps)
    bool int8_decode = false;  // one-token rows with block-format weights: activations quantized to int8
    // Every row is another sequence's single token (batched decoding, or one token): projections
    // run as multi-vector mat-vecs, each row bit for bit what a single-token forward computes.
    bool one_token_rows = false;

    // Grows (never shrinks) the buffers to hold n_rows tokens of a model of shape c.
    void reserve(const Config& c, int n_rows) {
        const auto C = static_cast<std::size_t>(c.n_embd), A = static_cast<std::size_t>(c.dim_att),
                   F = static_cast<std::size_t>(c.dim_ffn), V = static_cast<std::size_t>(c.vocab_size),
                   Dm = static_cast<std::size_t>(c.dim_lora_mix), Dw = static_cast<std::size_t>(c.dim_lora_decay);
        const auto n = static_cast<std::size_t>(n_rows);
        auto grow = [](std::vector<float>& b, std::size_t size) {
            if (b.size() < size) b.resize(size);
        };
        if (n_rows > rows) {
            for (auto* b : {&x, &z, &prev, &out, &ffn_r}) grow(*b, n * C);
            for (auto& m : mix) grow(m, n * C);
            if (c.version == Version::x060) {
                grow(lora_mix, n * 5 * Dm);
                grow(lora_slot, n * Dm);
                grow(lora_decay, n * Dw);
            }
            for (auto* b : {&r, &k, &v, &g, &w, &log_w, &y}) grow(*b, n * A);
            grow(ffn_k, n * F);
            rows = n_rows;
        }
        grow(logits, V);
    }
};

}  // namespace rwkv::detail
