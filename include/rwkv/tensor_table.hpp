#pragma once
// The one list of official tensors (spec §3): name, shape and role of every tensor an official
// x052 / x060 checkpoint of a given Config holds, in RWKV-LM's state_dict order. The loader
// (model.hpp) reads what this lists, random initialisation (init.hpp) writes what it lists, and
// readers of other formats (io/) produce these names. Adding a tensor is one line here.

#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"

namespace rwkv {

enum class tensor_role : std::uint8_t {
    emb,
    ln0_weight,
    ln0_bias,
    ln_out_weight,
    ln_out_bias,
    head,  // whole model
    ln1_weight,
    ln1_bias,
    ln2_weight,
    ln2_bias,  // per block from here
    att_mix_k,
    att_mix_v,
    att_mix_r,
    att_mix_g,  // x052 token shift μ
    att_maa_x,
    att_maa_w,
    att_maa_k,
    att_maa_v,
    att_maa_r,
    att_maa_g,  // x060 token shift m
    att_maa_w1,
    att_maa_w2,
    att_decay_w1,
    att_decay_w2,  // x060 LoRAs
    att_decay,
    att_faaaa,  // decay d, bonus u
    att_receptance,
    att_key,
    att_value,
    att_gate,
    att_output,  // r k v g o
    att_ln_x_weight,
    att_ln_x_bias,  // GroupNorm
    ffn_mix_k,
    ffn_mix_r,  // x052
    ffn_maa_k,
    ffn_maa_r,  // x060
    ffn_key,
    ffn_receptance,
    ffn_value,
};

struct tensor_spec {
    tensor_role role;
    int layer;                        // -1 for whole-model tensors
    std::string name;                 // official name, e.g. "blocks.3.att.key.weight"
    std::vector<std::int64_t> shape;  // official shape (size-1 axes as RWKV-LM saves them)
    bool matrix;                      // a big 2-D weight kept in the model's weight type
};

namespace detail {

struct role_row {
    tensor_role role;
    const char* suffix;  // after "blocks.N." (per block) or the whole name
    signed char gen;     // -1 both, 0 x052 only, 1 x060 only
    bool per_block;
    bool matrix;
};

// RWKV-LM's state_dict order: emb, then per block ln1 ln2 (ln0 in block 0), att, ffn; ln_out, head.
inline constexpr role_row role_rows[] = {
    {tensor_role::emb, "emb.weight", -1, false, true},
    {tensor_role::ln0_weight, "blocks.0.ln0.weight", -1, false, false},
    {tensor_role::ln0_bias, "blocks.0.ln0.bias", -1, false, false},
    {tensor_role::ln1_weight, "ln1.weight", -1, true, false},
    {tensor_role::ln1_bias, "ln1.bias", -1, true, false},
    {tensor_role::ln2_weight, "ln2.weight", -1, true, false},
    {tensor_role::ln2_bias, "ln2.bias", -1, true, false},
    {tensor_role::att_mix_k, "att.time_mix_k", 0, true, false},
    {tensor_role::att_mix_v, "att.time_mix_v", 0, true, false},
    {tensor_role::att_mix_r, "att.time_mix_r", 0, true, false},
    {tensor_role::att_mix_g, "att.time_mix_g", 0, true, false},
    {tensor_role::att_maa_x, "att.time_maa_x", 1, true, false},
    {tensor_role::att_maa_w, "att.time_maa_w", 1, true, false},
    {tensor_role::att_maa_k, "att.time_maa_k", 1, true, false},
    {tensor_role::att_maa_v, "att.time_maa_v", 1, true, false},
    {tensor_role::att_maa_r, "att.time_maa_r", 1, true, false},
    {tensor_role::att_maa_g, "att.time_maa_g", 1, true, false},
    {tensor_role::att_maa_w1, "att.time_maa_w1", 1, true, false},
    {tensor_role::att_maa_w2, "att.time_maa_w2", 1, true, false},
    {tensor_role::att_decay_w1, "att.time_decay_w1", 1, true, false},
    {tensor_role::att_decay_w2, "att.time_decay_w2", 1, true, false},
    {tensor_role::att_decay, "att.time_decay", -1, true, false},
    {tensor_role::att_faaaa, "att.time_faaaa", -1, true, false},
    {tensor_role::att_receptance, "att.receptance.weight", -1, true, true},
    {tensor_role::att_key, "att.key.weight", -1, true, true},
    {tensor_role::att_value, "att.value.weight", -1, true, true},
    {tensor_role::att_gate, "att.gate.weight", -1, true, true},
    {tensor_role::att_output, "att.output.weight", -1, true, true},
    {tensor_role::att_ln_x_weight, "att.ln_x.weight", -1, true, false},
    {tensor_role::att_ln_x_bias, "att.ln_x.bias", -1, true, false},
    {tensor_role::ffn_mix_k, "ffn.time_mix_k", 0, true, false},
    {tensor_role::ffn_mix_r, "ffn.time_mix_r", 0, true, false},
    {tensor_role::ffn_maa_k, "ffn.time_maa_k", 1, true, false},
    {tensor_role::ffn_maa_r, "ffn.time_maa_r", 1, true, false},
    {tensor_role::ffn_key, "ffn.key.weight", -1, true, true},
    {tensor_role::ffn_receptance, "ffn.receptance.weight", -1, true, true},
    {tensor_role::ffn_value, "ffn.value.weight", -1, true, true},
    {tensor_role::ln_out_weight, "ln_out.weight", -1, false, false},
    {tensor_role::ln_out_bias, "ln_out.bias", -1, false, false},
    {tensor_role::head, "head.weight", -1, false, true},
};

// Official shapes (spec §3.1–3.3).
inline std::vector<std::int64_t> official_shape(tensor_role r, const Config& c) {
    const std::int64_t V = c.vocab_size, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, H = c.n_head, N = c.head_size,
                       Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
    switch (r) {
        case tensor_role::emb:
        case tensor_role::head: return {V, C};
        case tensor_role::att_receptance:
        case tensor_role::att_key:
        case tensor_role::att_value:
        case tensor_role::att_gate: return {A, C};
        case tensor_role::att_output: return {C, A};
        case tensor_role::att_maa_w1: return {C, 5 * Dm};
        case tensor_role::att_maa_w2: return {5, Dm, C};
        case tensor_role::att_decay_w1: return {C, Dw};
        case tensor_role::att_decay_w2: return {Dw, A};
        case tensor_role::att_decay:
            return c.version == Version::x052 ? std::vector<std::int64_t>{H, N} : std::vector<std::int64_t>{1, 1, A};
        case tensor_role::att_faaaa: return {H, N};
        case tensor_role::att_ln_x_weight:
        case tensor_role::att_ln_x_bias: return {A};
        case tensor_role::ffn_key: return {F, C};
        case tensor_role::ffn_receptance: return {C, C};
        case tensor_role::ffn_value: return {C, F};
        case tensor_role::ln0_weight:
        case tensor_role::ln0_bias:
        case tensor_role::ln_out_weight:
        case tensor_role::ln_out_bias:
        case tensor_role::ln1_weight:
        case tensor_role::ln1_bias:
        case tensor_role::ln2_weight:
        case tensor_role::ln2_bias: return {C};
        default: return {1, 1, C};  // the token-shift vectors time_mix_* / time_maa_*
    }
}

inline const role_row& row_of(tensor_role r) {
    for (const auto& row : role_rows)
        if (row.role == r) return row;
    return role_rows[0];  // unreachable: every role has a row
}

}  // namespace detail

// The official name of `role` in block `layer` (ignored for whole-model tensors).
inline std::string tensor_name(tensor_role role, int layer = -1) {
    const auto& row = detail::row_of(role);
    return row.per_block ? "blocks." + std::to_string(layer) + "." + row.suffix : std::string(row.suffix);
}

// One tensor of the table.
inline tensor_spec official_tensor(tensor_role role, int layer, const Config& c) {
    const auto& row = detail::row_of(role);
    return {role, row.per_block ? layer : -1, tensor_name(role, layer), detail::official_shape(role, c), row.matrix};
}

// Every tensor of an official checkpoint of shape `c` (finalized), in RWKV-LM's order.
// Optional tensors (state tuning's att.time_state) are not listed.
inline std::vector<tensor_spec> official_tensors(const Config& c) {
    std::vector<tensor_spec> out;
    const int gen = c.version == Version::x052 ? 0 : 1;
    auto emit = [&](const detail::role_row& row, int layer) {
        if (row.gen == -1 || row.gen == gen) out.push_back(official_tensor(row.role, layer, c));
    };
    for (const auto& row : detail::role_rows)
        if (!row.per_block && std::string_view(row.suffix).rfind("blocks.0.", 0) == 0) emit(row, -1);
    // emb first, then ln0 (blocks.0.*), then the blocks, then ln_out and head.
    std::vector<tensor_spec> head_part(out.begin(), out.end());
    out.clear();
    emit(detail::role_rows[0], -1);
    for (auto& t : head_part) out.push_back(std::move(t));
    for (int l = 0; l < c.n_layer; ++l)
        for (const auto& row : detail::role_rows)
            if (row.per_block) emit(row, l);
    for (const auto& row : detail::role_rows)
        if (!row.per_block && row.role != tensor_role::emb && std::string_view(row.suffix).rfind("blocks.0.", 0) != 0)
            emit(row, -1);
    return out;
}

}  // namespace rwkv
