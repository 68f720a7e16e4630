#pragma once
// Quantize on disk: any checkpoint this library reads (official names, io::open) → a GGUF v3 file
// with llama.cpp's `rwkv6` names, metadata and layouts for x060 (spec 8.3), which llama.cpp also
// reads, and with this library's own `rwkv5` names for x052 (docs/gguf-rwkv5.md).
//
// Types (llama.cpp's names): f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k. As in
// llama.cpp: only the big matrices (embedding, head, r k v g o, ffn key/value/receptance) are
// converted; vectors and the x060 LoRA matrices stay F32 (llama-quantize keeps time_mix_w1/w2 and
// time_mix_decay_w1/w2 in F32 too). Mixes (unless `pure`): the head is Q6_K for the quantized
// types other than Q8_0 (llama.cpp's rule for output.weight), and for q4_k_m / q5_k_m the value matrices
// (time_mix_value, channel_mix_value: the RWKV counterparts of attn_v / ffn_down) take Q6_K in
// llama.cpp's "use more bits" layers (the first and last eighth, and every third between).
// Rows that are not whole blocks of the chosen type fall back like llama.cpp's quantizer: Q4_K → Q5_0,
// Q5_K → Q5_1, Q6_K → Q8_0, and a 32-value type → F16.
//
// Encoding is the formats' reference encoders (weights/<format>.hpp) on the exactly decoded
// values — the same as Model<format> quantizing on load, so a pure file reloads bit-identical to
// it. A tensor already in the wanted format is copied as stored. time_mix_output and
// channel_mix_value are divided by 2^(layer div 6) as llama.cpp's converter does
// (rwkv6.rescale_every_n_layers = 6; spec 4.11): exact for float types and, for block formats,
// exact unless a block scale leaves the fp16 normal range.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "config.hpp"
#include "error.hpp"
#include "io/gguf_write.hpp"
#include "io/tensor.hpp"
#include "tensor_table.hpp"
#include "tokenizer.hpp"
#include "weights/format.hpp"

namespace rwkv {

struct QuantizeOptions {
    std::string type = "q8_0";              // one of quantize_types()
    bool pure = false;                      // every big matrix in `type` (no mix, no head rule)
    const WorldTokenizer* vocab = nullptr;  // written to tokenizer.ggml.* when given
    std::vector<std::string> vocab_tokens;  // or raw GGUF token strings (copied from a GGUF input)
    std::vector<std::int32_t> vocab_types;  // their token types (same length)
    std::string name;                       // general.name (empty: none)
};

inline const std::vector<std::string>& quantize_types() {
    static const std::vector<std::string> t = {"f32",  "f16",  "bf16",   "q8_0",   "q4_0", "q4_1",
                                               "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k"};
    return t;
}

namespace detail {

struct quant_plan {
    dtype base;           // the type of most big matrices
    std::uint32_t ftype;  // llama_ftype for general.file_type
    bool k_mix;           // q4_k_m / q5_k_m value-matrix rule
};

inline quant_plan plan_of(const std::string& t) {
    if (t == "f32") return {dtype::f32, 0, false};
    if (t == "f16") return {dtype::f16, 1, false};
    if (t == "bf16") return {dtype::bf16, 32, false};
    if (t == "q8_0") return {dtype::q8_0, 7, false};
    if (t == "q4_0") return {dtype::q4_0, 2, false};
    if (t == "q4_1") return {dtype::q4_1, 3, false};
    if (t == "q5_0") return {dtype::q5_0, 8, false};
    if (t == "q5_1") return {dtype::q5_1, 9, false};
    if (t == "q4_k_m") return {dtype::q4_k, 15, true};
    if (t == "q5_k_m") return {dtype::q5_k, 17, true};
    if (t == "q6_k") return {dtype::q6_k, 18, false};
    std::string all;
    for (const auto& n : quantize_types()) all += (all.empty() ? "" : " ") + n;
    throw error("unknown quantization type '" + t + "'; supported: " + all);
}

// llama.cpp's fallback for rows that are not whole blocks of t.
inline dtype row_fallback(dtype t, std::int64_t cols) {
    if (cols % dtype_block_elems(t) == 0) return t;
    if (t == dtype::q4_k) t = dtype::q5_0;
    else if (t == dtype::q5_k) t = dtype::q5_1;
    else if (t == dtype::q6_k || t == dtype::q2_k || t == dtype::q3_k) t = dtype::q8_0;
    if (cols % dtype_block_elems(t) == 0) return t;
    return dtype::f16;
}

// llama.cpp's use_more_bits(i, n): the first and last eighth of the layers, and every third.
inline bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// Python's repr(bytes)[2:-1] (spec 6.4): how llama.cpp's converter stores World tokens.
inline std::string bytes_repr(std::string_view b) {
    const bool has_single = b.find('\'') != std::string_view::npos, has_double = b.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out;
    char buf[8];
    for (unsigned char ch : b) {
        if (ch == '\\') out += "\\\\";
        else if (ch == static_cast<unsigned char>(quote)) out += std::string("\\") + quote;
        else if (ch == '\t') out += "\\t";
        else if (ch == '\n') out += "\\n";
        else if (ch == '\r') out += "\\r";
        else if (ch < 0x20 || ch >= 0x7f) {
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            out += buf;
        } else out.push_back(static_cast<char>(ch));
    }
    return out;
}

// llama.cpp's general.size_label for a parameter count ("801K", "1.6B").
inline std::string size_label(double n) {
    const char* suffix = "";
    double v = n;
    if (n >= 1e12) v = n / 1e12, suffix = "T";
    else if (n >= 1e9) v = n / 1e9, suffix = "B";
    else if (n >= 1e6) v = n / 1e6, suffix = "M";
    else if (n >= 1e3) v = n / 1e3, suffix = "K";
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 && *suffix && *suffix != 'K' ? "%.1f%s" : "%.0f%s", v, suffix);
    return buf;
}

}  // namespace detail

// Writes `in` (official names, any reader) as a GGUF file at `out`. Throws rwkv::error for an
// unknown type, an input the loader would refuse, or a failed write.
inline void write_gguf(const io::tensor_file& in, const std::filesystem::path& out, const QuantizeOptions& opt) {
    const detail::quant_plan plan = detail::plan_of(opt.type);
    const Config c = detail::infer_config(in);
    const bool x060 = c.version == Version::x060;
    const std::string arch = x060 ? "rwkv6" : "rwkv5";
    const int rescale = 6;
    detail::TensorReader rd(in);
    using R = tensor_role;
    const std::int64_t C = c.n_embd, A = c.dim_att, H = c.n_head, N = c.head_size, Dm = c.dim_lora_mix,
                       Dw = c.dim_lora_decay;
    double params = 0;

    io::gguf_writer w;
    w.add_string("general.architecture", arch);
    w.add_string("general.type", "model");
    if (!opt.name.empty()) w.add_string("general.name", opt.name);
    const auto spec = [&](R role, int l) { return official_tensor(role, l, c); };
    for (const auto& t : official_tensors(c)) params += static_cast<double>(in.at(t.name).numel());
    w.add_string("general.size_label", detail::size_label(params));
    w.add_u32(arch + ".context_length", 1048576);
    w.add_u32(arch + ".embedding_length", static_cast<std::uint32_t>(C));
    w.add_u32(arch + ".block_count", static_cast<std::uint32_t>(c.n_layer));
    w.add_f32(arch + ".attention.layer_norm_epsilon", 1e-5f);
    w.add_u32(arch + ".rescale_every_n_layers", rescale);
    w.add_u32(arch + ".wkv.head_size", static_cast<std::uint32_t>(N));
    if (x060) {
        w.add_u32(arch + ".time_mix_extra_dim", static_cast<std::uint32_t>(Dm));
        w.add_u32(arch + ".time_decay_extra_dim", static_cast<std::uint32_t>(Dw));
    }
    w.add_u32(arch + ".feed_forward_length", static_cast<std::uint32_t>(c.dim_ffn));
    // Key order as llama.cpp writes it: the converter (float types) puts the file type here,
    // llama-quantize (block types) at the end.
    const bool quantized = dtype_block_elems(plan.base) > 1;
    if (!quantized) w.add_u32("general.file_type", plan.ftype);
    w.add_u32(arch + ".attention.head_count", 0);
    const auto V = static_cast<std::size_t>(c.vocab_size);
    if (opt.vocab || !opt.vocab_tokens.empty()) {
        std::vector<std::string> tokens;
        std::vector<std::int32_t> types;
        if (opt.vocab) {
            tokens.reserve(V);
            for (std::size_t id = 0; id < V; ++id) {
                const auto t = static_cast<token>(id);
                if (id == 0) tokens.emplace_back("<s>"), types.push_back(3);
                else if (opt.vocab->contains(t))
                    tokens.push_back(detail::bytes_repr(opt.vocab->token_bytes(t))), types.push_back(1);
                else tokens.push_back("[PAD" + std::to_string(id) + "]"), types.push_back(5);
            }
        } else {
            tokens = opt.vocab_tokens;
            types = opt.vocab_types;
        }
        w.add_string("tokenizer.ggml.model", "rwkv");
        w.add_strings("tokenizer.ggml.tokens", tokens);
        w.add_i32s("tokenizer.ggml.token_type", types);
        w.add_u32("tokenizer.ggml.bos_token_id", 0);
        w.add_u32("tokenizer.ggml.eos_token_id", 0);
        w.add_u32("tokenizer.ggml.eot_token_id", 261);
        w.add_string("tokenizer.chat_template", "rwkv-world");
    }
    w.add_u32("general.quantization_version", 2);
    if (quantized) w.add_u32("general.file_type", plan.ftype);

    // Values → bytes of type t ([rows][cols] row-major), `scale` applied first (a power of two).
    auto encode = [](const std::vector<float>& v, std::int64_t cols, dtype t, float scale) {
        const std::int64_t rows = static_cast<std::int64_t>(v.size()) / cols;
        const std::size_t rb = dtype_bytes(t, cols, "row");
        std::vector<std::byte> b(rb * static_cast<std::size_t>(rows));
        std::vector<float> row(static_cast<std::size_t>(cols));
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* src = v.data() + r * cols;
            for (std::int64_t i = 0; i < cols; ++i) row[static_cast<std::size_t>(i)] = src[i] * scale;
            weights::encode_row(t, row.data(), b.data() + static_cast<std::size_t>(r) * rb, cols);
        }
        return b;
    };
    auto f32_tensor = [&](const std::string& name, std::vector<std::uint64_t> ne, const std::vector<float>& v) {
        w.add_tensor(name, std::move(ne), dtype::f32, encode(v, static_cast<std::int64_t>(v.size()), dtype::f32, 1.0f));
    };
    auto vector = [&](const std::string& name, R role, int l) {
        const auto s = spec(role, l);
        const auto v = rd.floats(s.name, s.shape);
        f32_tensor(name, {static_cast<std::uint64_t>(v.size())}, v);
    };
    // A big matrix [rows][cols] as GGUF ne {cols, rows} in type t (divided by 2^k).
    auto matrix = [&](const std::string& name, R role, int l, dtype t, int k) {
        const auto s = spec(role, l);
        const std::int64_t rows = s.shape[0], cols = s.shape[1];
        t = detail::row_fallback(t, cols);
        const io::tensor_view& tv = rd.get(s.name, s.shape);
        std::vector<std::byte> bytes;
        if (tv.type == t && k == 0) {
            bytes.assign(tv.data.begin(), tv.data.end());
        } else {
            bytes = encode(rd.floats(s.name, s.shape), cols, t, std::ldexp(1.0f, -k));
        }
        w.add_tensor(name, {static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)}, t, std::move(bytes));
    };
    // llama.cpp: output.weight becomes Q6_K unless the file type is Q8_0 (already finer).
    const dtype head_type = quantized && !opt.pure && plan.base != dtype::q8_0 ? dtype::q6_k : plan.base;
    // In llama.cpp's order (the order llama-quantize writes).
    matrix("output.weight", R::head, -1, head_type, 0);
    vector("output_norm.bias", R::ln_out_bias, -1);
    vector("output_norm.weight", R::ln_out_weight, -1);
    matrix("token_embd.weight", R::emb, -1, plan.base, 0);
    vector("token_embd_norm.bias", R::ln0_bias, -1);
    vector("token_embd_norm.weight", R::ln0_weight, -1);
    for (int l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        const int k = l / rescale;
        const dtype value_type =
            plan.k_mix && !opt.pure && detail::use_more_bits(l, c.n_layer) ? dtype::q6_k : plan.base;
        vector(p + "attn_norm.bias", R::ln1_bias, l);
        vector(p + "attn_norm.weight", R::ln1_weight, l);
        vector(p + "attn_norm_2.bias", R::ln2_bias, l);
        vector(p + "attn_norm_2.weight", R::ln2_weight, l);
        matrix(p + "channel_mix_key.weight", R::ffn_key, l, plan.base, 0);
        vector(p + "channel_mix_lerp_k.weight", x060 ? R::ffn_maa_k : R::ffn_mix_k, l);
        vector(p + "channel_mix_lerp_r.weight", x060 ? R::ffn_maa_r : R::ffn_mix_r, l);
        matrix(p + "channel_mix_receptance.weight", R::ffn_receptance, l, plan.base, 0);
        matrix(p + "channel_mix_value.weight", R::ffn_value, l, value_type, k);
        vector(p + "time_mix_decay.weight", R::att_decay, l);
        if (x060) {
            // LoRA matrices in llama.cpp's layouts: w1 (C, 5Dm) and decay w1 (C, Dw), decay w2
            // (Dw, A) transposed; w2 (5, Dm, C) → (5, C, Dm).
            auto transposed = [&](R role, std::int64_t rows, std::int64_t cols) {
                const auto s = spec(role, l);
                const auto v = rd.floats(s.name, s.shape);
                std::vector<float> t(v.size());
                const std::int64_t slots = static_cast<std::int64_t>(v.size()) / (rows * cols);
                for (std::int64_t z = 0; z < slots; ++z)
                    for (std::int64_t r = 0; r < rows; ++r)
                        for (std::int64_t q = 0; q < cols; ++q)
                            t[static_cast<std::size_t>(z * rows * cols + q * rows + r)] =
                                v[static_cast<std::size_t>(z * rows * cols + r * cols + q)];
                return t;
            };
            f32_tensor(p + "time_mix_decay_w1.weight", {static_cast<std::uint64_t>(C), static_cast<std::uint64_t>(Dw)},
                       transposed(R::att_decay_w1, C, Dw));
            f32_tensor(p + "time_mix_decay_w2.weight", {static_cast<std::uint64_t>(Dw), static_cast<std::uint64_t>(A)},
                       transposed(R::att_decay_w2, Dw, A));
        }
        {
            const auto s = spec(R::att_faaaa, l);
            f32_tensor(p + "time_mix_first.weight", {static_cast<std::uint64_t>(N), static_cast<std::uint64_t>(H)},
                       rd.floats(s.name, s.shape));
        }
        matrix(p + "time_mix_gate.weight", R::att_gate, l, plan.base, 0);
        matrix(p + "time_mix_key.weight", R::att_key, l, plan.base, 0);
        if (x060) {
            std::vector<float> fused;
            for (R r : {R::att_maa_w, R::att_maa_k, R::att_maa_v, R::att_maa_r, R::att_maa_g}) {
                const auto s = spec(r, l);
                const auto v = rd.floats(s.name, s.shape);
                fused.insert(fused.end(), v.begin(), v.end());
            }
            f32_tensor(p + "time_mix_lerp_fused.weight", {static_cast<std::uint64_t>(C), 1, 1, 5}, fused);
            vector(p + "time_mix_lerp_x.weight", R::att_maa_x, l);
        } else {
            vector(p + "time_mix_lerp_k.weight", R::att_mix_k, l);
            vector(p + "time_mix_lerp_v.weight", R::att_mix_v, l);
            vector(p + "time_mix_lerp_r.weight", R::att_mix_r, l);
            vector(p + "time_mix_lerp_g.weight", R::att_mix_g, l);
        }
        vector(p + "time_mix_ln.bias", R::att_ln_x_bias, l);
        vector(p + "time_mix_ln.weight", R::att_ln_x_weight, l);
        matrix(p + "time_mix_output.weight", R::att_output, l, plan.base, k);
        matrix(p + "time_mix_receptance.weight", R::att_receptance, l, plan.base, 0);
        matrix(p + "time_mix_value.weight", R::att_value, l, value_type, 0);
        if (x060) {
            const auto s1 = spec(R::att_maa_w1, l);
            const auto w1 = rd.floats(s1.name, s1.shape);  // [C][5Dm] → ne {C, 5Dm}: [5Dm][C]
            std::vector<float> t1(w1.size());
            for (std::int64_t r = 0; r < C; ++r)
                for (std::int64_t q = 0; q < 5 * Dm; ++q)
                    t1[static_cast<std::size_t>(q * C + r)] = w1[static_cast<std::size_t>(r * 5 * Dm + q)];
            f32_tensor(p + "time_mix_w1.weight", {static_cast<std::uint64_t>(C), static_cast<std::uint64_t>(5 * Dm)},
                       t1);
            const auto s2 = spec(R::att_maa_w2, l);
            const auto w2 = rd.floats(s2.name, s2.shape);  // [5][Dm][C] → ne {Dm, C, 5}: [5][C][Dm]
            std::vector<float> t2(w2.size());
            for (std::int64_t z = 0; z < 5; ++z)
                for (std::int64_t d = 0; d < Dm; ++d)
                    for (std::int64_t q = 0; q < C; ++q)
                        t2[static_cast<std::size_t>((z * C + q) * Dm + d)] =
                            w2[static_cast<std::size_t>((z * Dm + d) * C + q)];
            f32_tensor(p + "time_mix_w2.weight", {static_cast<std::uint64_t>(Dm), static_cast<std::uint64_t>(C), 5},
                       t2);
        }
    }
    w.write(out);
}

}  // namespace rwkv
