#pragma once
// rwkv::Model<T, Backend> — the umbrella header: everything an application needs to load an
// official checkpoint and run it.
//
//   auto model = rwkv::Model<rwkv::bfloat16>::load("RWKV-x060-World-1B6-v2.1.pth");
//   auto state = model.new_state();
//   std::span<const float> logits = model.forward(std::span<const rwkv::token>(ids), state);
//
// T is the weight policy: float, rwkv::bfloat16, rwkv::half convert the big matrices to that
// type at load (zero copy when the file already holds it); rwkv::stored keeps every tensor in
// the format the file holds. Activations and the state are always fp32. Backend is a tag
// (backend.hpp): rwkv::cpu (default) or rwkv::reference. forward() is const: one model serves
// many states on many threads.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>
#if defined(__GLIBC__)  // known once a C++ library header is in
#include <malloc.h>
#endif

#include "any_model.hpp"
#include "backend.hpp"
#include "backend/cpu/ops.hpp"
#include "backend/reference.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "error.hpp"
#include "fingerprint.hpp"
#include "init.hpp"
#include "io/open.hpp"
#include "io/pth.hpp"
#include "layers/channel_mix.hpp"
#include "layers/norm.hpp"
#include "layers/time_mix5.hpp"
#include "layers/time_mix6.hpp"
#include "model_checks.hpp"
#include "tensor_table.hpp"
#include "weight.hpp"
#include "scalar.hpp"
#include "state.hpp"
#include "token.hpp"

namespace rwkv {

// Weight policy: keep every tensor in the format the file holds (mixed per tensor, zero copy).
struct stored {};

// Weight policies: float / bfloat16 / half (convert the big matrices at load), rwkv::stored
// (keep the file's formats), or any weight format struct (rwkv::q8_0, rwkv::q4_k, ...:
// encode the big matrices with the format's reference encoder at load; zero copy when the
// file already holds that format).
template <class T>
inline constexpr bool is_weight_policy_v = is_weight_scalar_v<T> || std::is_same_v<T, stored> || is_weight_format_v<T>;

// The memory a loaded model's weights occupy, in bytes. in_place: matrices read where the file
// mapping holds them (resident once read: page cache shared with every process mapping the
// file); copied: matrices held in buffers of their own (converted to the policy's format,
// multiplied back from a GGUF's pre-divided layers, transposed LoRA blocks); vectors: the fp32
// parameters (norms, mixes, decays, bonus, tuned state). released: bytes of the mappings dropped
// from the resident set after loading because nothing reads them in place (their content was
// copied or is metadata; a page shared with an in-place matrix is kept).
struct MemoryUse {
    std::size_t in_place = 0;
    std::size_t copied = 0;
    std::size_t vectors = 0;
    std::size_t released = 0;
};

template <class T = float, class Backend = cpu>
class Model {
    static_assert(is_weight_policy_v<T>,
                  "T must be float, rwkv::bfloat16, rwkv::half, rwkv::stored or a weight format (rwkv::q8_0, ...)");
    // Instantiating the backend's ops here turns an unknown tag into one clear compile error.
    static_assert(sizeof(backend_ops<Backend>) > 0);
    using ops = backend_ops<Backend>;

public:
    using State = rwkv::State;
    using scalar_type = T;
    using backend_type = Backend;

    struct Block {
        LayerNorm ln1, ln2;
        std::variant<TimeMix5<T, Backend>, TimeMix6<T, Backend>> att;
        ChannelMix<T, Backend> ffn;
    };

    // Tokens are pushed through all layers this many at a time (layer-major inside a chunk),
    // which bounds the scratch memory and lets projections run as matrix-matrix products.
    static constexpr int chunk_tokens = 128;

    // Called after each block is ready with (blocks done, blocks total): conversions of big
    // files take a while, and a CLI wants to show it.
    using Progress = std::function<void(int done, int total)>;

    // Opens any supported checkpoint, recognised by content (io/open.hpp): PyTorch .pth,
    // safetensors (single, sharded, or a Hugging Face folder), GGUF, rwkv.cpp .bin. Throws
    // rwkv::error naming the file and the tensor for anything missing, unknown, misshapen or
    // unreadable.
    static Model load(const std::filesystem::path& path, const Progress& progress = {}) {
        return from_tensors(io::open(path), progress);
    }

    // A fresh model of shape `config` (unset fields take the official defaults), initialised
    // like RWKV-LM's training code (spec appendix B). Init::fast skips the orthogonal QR.
    static Model random(const Config& config, std::uint64_t seed, Init init = Init::official) {
        using Gen = std::conditional_t<is_weight_scalar_v<T>, T, float>;
        return from_tensors(detail::random_tensors<Gen>(config, seed, init));
    }

    // Builds a model from tensors with official names (any reader's output; tensor_table.hpp).
    static Model from_tensors(io::tensor_file file, const Progress& progress = {}) {
        auto w = std::make_shared<Weights>();
        w->config = detail::infer_config(file);
        w->fingerprint = weights_fingerprint(file);
        const Config& c = w->config;
        // Consuming: each tensor's file pages (or its own buffer) go as soon as it has been copied.
        detail::TensorReader rd(file, detail::consume_tag{});
        using R = tensor_role;
        std::vector<std::span<const std::byte>> in_place;  // file bytes the weights read where they are
        auto counted = [&](Weight m) {
            if (m.mapped) in_place.emplace_back(m.data, m.bytes()), w->memory.in_place += m.bytes();
            else w->memory.copied += m.bytes();
            return m;
        };
        auto vec = [&](R role, int l) {
            const tensor_spec t = official_tensor(role, l, c);
            auto v = rd.floats(t.name, t.shape);
            w->memory.vectors += v.size() * sizeof(float);
            return v;
        };
        auto mat = [&](R role, int l) {
            const tensor_spec t = official_tensor(role, l, c);
            Weight m = counted(rd.weight(t.name, t.shape[0], t.shape[1], target()));
            w->formats.insert(m.type);
            return m;
        };
        auto norm = [&](R weight, R bias, int l) { return LayerNorm{vec(weight, l), vec(bias, l)}; };
        auto lora = [&](R role, int l) {  // a LoRA tensor's values and the format the file holds it in
            const tensor_spec t = official_tensor(role, l, c);
            const dtype file_type = rd.get(t.name).type;
            return lora_values{rd.floats(t.name, t.shape), file_type};
        };
        w->emb = mat(R::emb, -1);
        w->ln0 = norm(R::ln0_weight, R::ln0_bias, -1);
        w->ln_out = norm(R::ln_out_weight, R::ln_out_bias, -1);
        w->head = mat(R::head, -1);
        bool has_time_state = false;
        for (int l = 0; l < c.n_layer; ++l) {
            Block b{
                norm(R::ln1_weight, R::ln1_bias, l), norm(R::ln2_weight, R::ln2_bias, l), TimeMix5<T, Backend>{}, {}};
            TimeMixCore<T, Backend> core;
            core.receptance = mat(R::att_receptance, l);
            core.key = mat(R::att_key, l);
            core.value = mat(R::att_value, l);
            core.gate = mat(R::att_gate, l);
            core.output = mat(R::att_output, l);
            core.u = vec(R::att_faaaa, l);
            core.ln_x = GroupNorm{vec(R::att_ln_x_weight, l), vec(R::att_ln_x_bias, l), c.n_head};
            if (c.version == Version::x052) {
                TimeMix5<T, Backend> att;
                att.mix_k = vec(R::att_mix_k, l);
                att.mix_v = vec(R::att_mix_v, l);
                att.mix_r = vec(R::att_mix_r, l);
                att.mix_g = vec(R::att_mix_g, l);
                for (float d : vec(R::att_decay, l)) {  // stored raw: w = exp(-exp(d))
                    att.log_w.push_back(-std::exp(d));
                    att.w.push_back(std::exp(-std::exp(d)));
                }
                w->memory.vectors += att.log_w.size() * sizeof(float);  // d itself is not kept
                att.core = std::move(core);
                b.att = std::move(att);
                b.ffn.difference_form = false;
                b.ffn.mix_k = vec(R::ffn_mix_k, l);
                b.ffn.mix_r = vec(R::ffn_mix_r, l);
            } else {
                const std::int64_t C = c.n_embd, A = c.dim_att, Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
                TimeMix6<T, Backend> att;
                att.maa_x = vec(R::att_maa_x, l);
                const R maa[5] = {R::att_maa_w, R::att_maa_k, R::att_maa_v, R::att_maa_r, R::att_maa_g};
                for (int s = 0; s < 5; ++s) att.maa[s] = vec(maa[s], l);
                att.maa_w1 = counted(transposed(lora(R::att_maa_w1, l), 0, C, 5 * Dm));
                const auto maa_w2 = lora(R::att_maa_w2, l);  // read once, five blocks
                for (int s = 0; s < 5; ++s) att.maa_w2[s] = counted(transposed(maa_w2, s * Dm * C, Dm, C));
                att.decay = vec(R::att_decay, l);
                att.decay_w1 = counted(transposed(lora(R::att_decay_w1, l), 0, C, Dw));
                att.decay_w2 = counted(transposed(lora(R::att_decay_w2, l), 0, Dw, A));
                att.core = std::move(core);
                b.att = std::move(att);
                b.ffn.difference_form = true;
                b.ffn.mix_k = vec(R::ffn_maa_k, l);
                b.ffn.mix_r = vec(R::ffn_maa_r, l);
            }
            b.ffn.key = mat(R::ffn_key, l);
            b.ffn.receptance = mat(R::ffn_receptance, l);
            b.ffn.value = mat(R::ffn_value, l);
            // State-tuned checkpoints carry a learned initial WKV state (spec 3.4).
            const std::string ts = "blocks." + std::to_string(l) + ".att.time_state";
            if (file.find(ts)) {
                if (!has_time_state && l > 0)
                    throw error(rd.file() + ": 'att.time_state' present for some layers only");
                has_time_state = true;
                const std::int64_t H = c.n_head, N = c.head_size;
                auto s = rd.floats(ts, {H, N, N});
                if (w->time_state.empty()) {
                    w->time_state.resize(static_cast<std::size_t>(c.n_layer * H * N * N));
                    w->memory.vectors += w->time_state.size() * sizeof(float);
                }
                // Stored [h][value j][key i]; the state is [h][key i][value j].
                float* dst = w->time_state.data() + static_cast<std::size_t>(l * H * N * N);
                for (std::int64_t h = 0; h < H; ++h)
                    for (std::int64_t j = 0; j < N; ++j)
                        for (std::int64_t i = 0; i < N; ++i)
                            dst[(h * N + i) * N + j] = s[static_cast<std::size_t>((h * N + j) * N + i)];
            } else if (has_time_state) {
                throw error(rd.file() + ": 'att.time_state' present for some layers only");
            }
            w->blocks.push_back(std::move(b));
            if (progress) progress(l + 1, c.n_layer);
        }
        rd.check_all_used();
        // Keep the file mappings (zero-copy weights point into them); drop the tensor list and
        // with it every in-memory buffer no weight uses in place (converted copies exist). The
        // pages of the mappings that no weight reads in place (vectors, rescaled, transposed or
        // converted tensors, headers) were read once to build the copies: they leave this
        // process's resident set, so a loaded model costs its in-place bytes plus its copies.
        file.tensors.clear();
        file.tensors.shrink_to_fit();
        for (const auto& m : file.mappings) w->memory.released += m->release_except(in_place);
#if defined(__GLIBC__)
        // The readers' and the loader's temporaries (decoded, transposed, rescaled tensors) leave
        // free pages inside the heap that glibc keeps by default: give them back, or a loaded
        // model would hold tens of MiB it no longer uses (measured by benchmarks/memory.cpp).
        ::malloc_trim(0);
#endif
        w->file = std::move(file);
        return Model(std::move(w));
    }

    const Config& config() const { return w_->config; }

    // What the reader did beyond reading (converted dtypes, stripped wrapper prefixes, ...), one
    // sentence each, for programs to show the user.
    const std::vector<std::string>& notes() const { return w_->file.notes; }

    // The weight type in memory: "float32", "bfloat16", "float16", or for rwkv::stored the
    // formats the file holds, e.g. "stored: BF16" or "stored: Q8_0 + F16".
    std::string weight_type() const {
        if constexpr (is_weight_scalar_v<T>) {
            return scalar_name<T>();
        } else if constexpr (is_weight_format_v<T>) {
            return T::ggml_name;
        } else {
            std::string out = "stored: ";
            bool first = true;
            for (dtype t : w_->formats) {
                out += (first ? "" : " + ") + std::string(dtype_name(t));
                first = false;
            }
            return out;
        }
    }

    // What the loaded weights occupy (bytes): see MemoryUse. A state adds its own scratch.
    const MemoryUse& memory() const { return w_->memory; }

    // Identity of the weights (rwkv/fingerprint.hpp), recorded in the states this
    // model makes and in their serialised form.
    std::uint64_t fingerprint() const { return w_->fingerprint; }

    // Threads used by forward() (the caller's thread included); default: hardware threads.
    // A Model is a cheap handle: copies share the weights, and each copy may use its own
    // thread setting. If two threads call forward() on the same handle at once, one of them
    // runs single-threaded instead of waiting.
    void set_threads(int n) {
        if (n < 1) throw error("set_threads: need at least 1 thread, got " + std::to_string(n));
        pool_ = std::make_shared<backend::cpu::ThreadPool>(n);
    }
    int threads() const { return pool_->size(); }

    // Prefill (spans of several tokens) runs the WKV either token by token with the fused SIMD
    // step (default: fastest on x86 CPUs measured so far) or with the chunked parallel form of
    // spec 5.4 (matrix products per chunk). Both match token-by-token results to fp32 rounding.
    void set_chunked_wkv(bool on) { chunked_wkv_ = on; }
    bool chunked_wkv() const { return chunked_wkv_; }

    // Opt-in faster prefill for bf16 weights: the matrix products of spans of several tokens
    // round their activations to bf16 and use AMX tiles (or AVX512-BF16 dot products) where the
    // CPU has them. Logits then differ from exact fp32 math by bf16 rounding (~1e-2), so it is
    // off by default; decoding (one token) is not affected (see set_bf16_activations for that).
    // It applies to every bf16 matrix: in a block-format model loaded from a bf16 file, the x060
    // LoRA matrices stay bf16 and are affected too; fp32 / fp16 / block-format matrices are not.
    void set_bf16_prefill(bool on) { bf16_prefill_ = on; }
    bool bf16_prefill() const { return bf16_prefill_; }

    // Opt-in bf16 activations for bf16 weights, prefill and decoding: set_bf16_prefill(on), and
    // the mat-vecs of decoding (forward, forward_batch) round their input vectors to bf16 (round
    // to nearest even) and sum bf16 x bf16 products in fp32 with AVX512_BF16's vdpbf16ps, twice
    // the multiply-adds per instruction of fp32 FMAs, where batched decoding is compute-bound.
    // CPUs without AVX512_BF16 (or RWKV_ISA below avx512) run a plain emulation of the same
    // arithmetic. Logits move by bf16 rounding (~1e-2 against exact fp32; up to 0.05 on the test
    // fixtures), so it is off by default. Like set_bf16_prefill it applies to every bf16 matrix,
    // including the bf16 LoRAs of a block-format model. In this mode forward_batch still gives each sequence bit for
    // bit what forward gives it (one kernel, one column order for any batch size and thread count). Off:
    // set_bf16_activations(false) turns both prefill and decoding back to exact fp32.
    void set_bf16_activations(bool on) {
        bf16_prefill_ = on;
        bf16_decode_ = on;
    }
    bool bf16_activations() const { return bf16_decode_; }

    // Opt-in int8 activations (CPU backend) for block-format weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL,
    // Q2_K, Q3_K, Q4_K, Q5_K, Q6_K),
    // decoding only (forward of one token, forward_batch): the input vector of each such mat-vec
    // is quantized per block of 32 values to int8 with an fp32 scale (amax / 127, round to
    // nearest even) and multiplied with the weights' integer codes in integers (AVX512_VNNI
    // vpdpbusd; vpmaddubsw on AVX2; plain C++ elsewhere, all bit for bit the same), as llama.cpp
    // does. This CHANGES NUMERICS: logits move by the int8 rounding of the activations (README,
    // "Quantized weights: speed and quality per format": max |Δ| up to ~0.6, relative RMS ≤ 3.4 %
    // on the test models; 1.2-1.4x faster decoding for the 4/5-bit formats on Zen 4, none for
    // Q8_0, which is bandwidth-bound already), so it is off by default. Not affected: the
    // layers of a prefill (spans of several tokens; the state after a prefill is exact),
    // 16/32-bit matrices (LoRA, fp32 vectors). The head of a prefill,
    // which produces the returned logits of its last token as a mat-vec, does use the mode when
    // the head is in one of these formats. A block of activations holding NaN or ±Inf makes the product's
    // outputs NaN. forward_batch still gives each sequence bit for bit what forward gives it, and
    // results do not depend on the thread count. set_int8_activations(false): exact again.
    void set_int8_activations(bool on) { int8_decode_ = on; }
    bool int8_activations() const { return int8_decode_; }

    // The layers, for inspection (weights, formats, whether each matrix is mapped in place).
    const std::vector<Block>& blocks() const { return w_->blocks; }
    const Weight& emb() const { return w_->emb; }
    const Weight& head() const { return w_->head; }
    const LayerNorm& ln0() const { return w_->ln0; }
    const LayerNorm& ln_out() const { return w_->ln_out; }

    State new_state() const {
        State s(w_->config);
        s.set_model_fingerprint(w_->fingerprint);
        if (!w_->time_state.empty()) apply_time_state(s);
        s.workspace().reserve(w_->config, 1);
        return s;
    }

    // Resets `s` to this model's initial state (zeros, or the tuned time_state).
    void reset(State& s) const {
        check_state(s);
        s.reset();
        if (!w_->time_state.empty()) apply_time_state(s);
    }

    // Logits [vocab_size] after one token; valid until the next call with this state. A token
    // id outside [0, vocab_size) or a state of another model throws rwkv::error (state untouched).
    std::span<const float> forward(token t, State& s) const { return forward(std::span<const token>(&t, 1), s); }

    // Logits after the last token of `tokens`; same results as feeding them one by one.
    std::span<const float> forward(std::span<const token> tokens, State& s) const {
        run(tokens, s, {});
        return {s.workspace().logits.data(), static_cast<std::size_t>(w_->config.vocab_size)};
    }

    // One token for each of B sequences (tokens[b] continues states[b]; all states distinct):
    // returns B rows of vocab_size logits, row b bit for bit forward(tokens[b], *states[b]) (and
    // the states likewise). Every weight is read from memory once per step for all B: the
    // projections run as multi-vector mat-vecs whose per-row arithmetic is the single mat-vec's
    // (backend/cpu/matvec.hpp); the WKV runs per sequence. The span lives in states[0] and is valid
    // until the next call with that state. Every id and state is checked before any state
    // changes (rwkv::error). No allocation after the first call at a given B.
    std::span<const float> forward_batch(std::span<const token> tokens, std::span<State* const> states) const {
        detail::check_batch_decode(tokens, states, w_->config.vocab_size, [this](const State& s) { check_state(s); });
        auto& ws = states[0]->workspace();
        const auto V = static_cast<std::size_t>(w_->config.vocab_size);
        if (ws.batch_logits.size() < tokens.size() * V) ws.batch_logits.resize(tokens.size() * V);
        // Rounds of up to chunk_tokens sequences, one token each.
        for (std::size_t b0 = 0; b0 < tokens.size(); b0 += chunk_tokens) {
            const std::size_t b1 = std::min(tokens.size(), b0 + chunk_tokens);
            ws.parts.clear();
            for (std::size_t b = b0; b < b1; ++b)
                ws.parts.push_back({static_cast<int>(b), &tokens[b], 1, static_cast<int>(b)});
            run_round(states, ws, nullptr, ws.batch_logits.data());
        }
        return {ws.batch_logits.data(), tokens.size() * V};
    }

    // Batched prefill: prompts[b] (any lengths ≥ 1) continues states[b]; returns B rows of the
    // logits after each prompt's last token, as forward(prompts[b], *states[b]) would. Rows of
    // all prompts share each round of weight reads. Lifetime and errors as forward_batch.
    std::span<const float> forward_batch(std::span<const std::span<const token>> prompts,
                                         std::span<State* const> states) const {
        detail::check_batch_prefill(prompts, states, w_->config.vocab_size, [this](const State& s) { check_state(s); });
        auto& ws = states[0]->workspace();
        const auto V = static_cast<std::size_t>(w_->config.vocab_size);
        if (ws.batch_logits.size() < prompts.size() * V) ws.batch_logits.resize(prompts.size() * V);
        // Rounds of up to chunk_tokens rows taken from the sequences in order; a sequence's
        // logits are computed in the round that consumes its last token.
        std::size_t b = 0, done = 0;  // next sequence, tokens of it already consumed
        while (b < prompts.size()) {
            ws.parts.clear();
            int budget = chunk_tokens;
            while (b < prompts.size() && budget > 0) {
                const std::size_t left = prompts[b].size() - done;
                const int take = static_cast<int>(std::min<std::size_t>(left, static_cast<std::size_t>(budget)));
                const bool finishes = static_cast<std::size_t>(take) == left;
                ws.parts.push_back(
                    {static_cast<int>(b), prompts[b].data() + done, take, finishes ? static_cast<int>(b) : -1});
                budget -= take;
                if (finishes) ++b, done = 0;
                else done += static_cast<std::size_t>(take);
            }
            run_round(states, ws, nullptr, ws.batch_logits.data());
        }
        return {ws.batch_logits.data(), prompts.size() * V};
    }

    // Logits after every token: `out` holds tokens.size() rows of vocab_size.
    void forward_all(std::span<const token> tokens, State& s, std::span<float> out) const {
        if (out.size() != tokens.size() * static_cast<std::size_t>(w_->config.vocab_size))
            throw error("forward_all: output has " + std::to_string(out.size()) + " floats, need " +
                        std::to_string(tokens.size()) + " x " + std::to_string(w_->config.vocab_size));
        run(tokens, s, out);
    }

private:
    struct Weights {
        Config config;
        io::tensor_file file;  // keeps the mapping alive for zero-copy matrices
        Weight emb, head;
        LayerNorm ln0, ln_out;
        std::vector<Block> blocks;
        std::vector<float> time_state;  // [L][H][N key][N value] or empty
        std::set<dtype> formats;        // of the big matrices, for weight_type()

        std::uint64_t fingerprint = 0;  // weights_fingerprint(file)
        MemoryUse memory;
    };

    explicit Model(std::shared_ptr<const Weights> w)
        : w_(std::move(w)),
          pool_(std::make_shared<backend::cpu::ThreadPool>(backend::cpu::ThreadPool::hardware_threads())) {}

    // The format big matrices are kept in; empty = as stored.
    static std::optional<dtype> target() {
        if constexpr (std::is_same_v<T, stored>) return std::nullopt;
        else if constexpr (is_weight_format_v<T>) return format_dtype<T>();
        else return dtype_of<T>();
    }

    struct lora_values {
        std::vector<float> values;  // as stored: [in][out] (w2: [5][Dm][C])
        dtype file_type;
    };

    // The LoRA block [rows][cols] starting `offset` values into tensor t (stored [in][out], used
    // as z·M), transposed to [cols][rows] so it runs through the same products as every other
    // matrix. Kept in the policy's format; for rwkv::stored in the file's format when that is a
    // scalar one (transposing is then exact), for block formats in the file's bf16 / f16 when it
    // is one of those, fp32 otherwise.
    static Weight transposed(const lora_values& t, std::int64_t offset, std::int64_t rows, std::int64_t cols) {
        const auto& all = t.values;
        std::vector<float> m(static_cast<std::size_t>(rows * cols));
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c)
                m[static_cast<std::size_t>(c * rows + r)] = all[static_cast<std::size_t>(offset + r * cols + c)];
        // LoRA widths (Dm, Dw = 32, 64) rarely hold whole blocks, and these matrices are small:
        // block formats do not quantize them. They keep the file's 16-bit type when it has one
        // (exact, and half of fp32's bytes: at Finch-0.4B fp32 LoRAs were 17 % of what a Q4_0
        // token reads), fp32 otherwise.
        dtype fmt = dtype::f32;
        if constexpr (std::is_same_v<T, stored>) {
            if (dtype_block_elems(t.file_type) == 1) fmt = t.file_type;
        } else if constexpr (is_weight_format_v<T>) {
            if (t.file_type == dtype::bf16 || t.file_type == dtype::f16) fmt = t.file_type;
        } else if constexpr (is_weight_scalar_v<T>) {
            fmt = dtype_of<T>();
        }
        return Weight::encode(fmt, m.data(), static_cast<int>(cols), static_cast<int>(rows));
    }

    void apply_time_state(State& s) const {
        const Config& c = w_->config;
        const std::size_t per = static_cast<std::size_t>(c.n_head) * c.head_size * c.head_size;
        for (int l = 0; l < c.n_layer; ++l) {
            auto dst = s.wkv(l);
            std::copy_n(w_->time_state.data() + l * per, per, dst.data());
        }
    }

    void check_state(const State& s) const {
        if (!(s.config() == w_->config))
            throw error("state belongs to a model of another shape (state: " + describe(s.config()) +
                        ", model: " + describe(w_->config) + ")");
        // Same shape, other weights: refuse unless the state's origin is unknown (0).
        if (s.model_fingerprint() != 0 && s.model_fingerprint() != w_->fingerprint)
            throw error("state belongs to another model (state: " + State::describe(s.config(), s.model_fingerprint()) +
                        "; this model: " + State::describe(w_->config, w_->fingerprint) + ")");
    }

    static std::string describe(const Config& c) {
        return std::string(c.version == Version::x052 ? "x052" : "x060") + " L" + std::to_string(c.n_layer) + " C" +
               std::to_string(c.n_embd) + " H" + std::to_string(c.n_head) + " V" + std::to_string(c.vocab_size);
    }

    void run(std::span<const token> tokens, State& s, std::span<float> all_logits) const {
        const Config& c = w_->config;
        check_state(s);
        if (tokens.empty()) throw error("forward: empty token sequence");
        detail::check_token_ids(tokens, w_->config.vocab_size,
                                "forward");  // before touching the state: a bad id leaves it unchanged
        const bool all = !all_logits.empty();
        auto& ws = s.workspace();
        ws.reserve(c, std::min(static_cast<int>(tokens.size()), chunk_tokens));  // a copied state has no scratch yet
        State* const one[1] = {&s};
        for (std::size_t t0 = 0; t0 < tokens.size(); t0 += chunk_tokens) {
            const int n = static_cast<int>(std::min<std::size_t>(chunk_tokens, tokens.size() - t0));
            const bool last = t0 + static_cast<std::size_t>(n) == tokens.size();
            ws.parts.clear();
            ws.parts.push_back({0, tokens.data() + t0, n, last ? 0 : -1});
            run_round(one, ws, all ? all_logits.data() + t0 * static_cast<std::size_t>(c.vocab_size) : nullptr,
                      ws.logits.data());
        }
    }

    // The forward pass of one round: the rows of ws.parts (each a run of one sequence's tokens),
    // layer by layer (spec 4.12). all_out (one sequence only): logits of every row; last_out:
    // row p.out_row gets the logits of part p's last token when p.out_row >= 0.
    void run_round(std::span<State* const> states, detail::Workspace& ws, float* all_out, float* last_out) const {
        const Config& c = w_->config;
        const auto C = static_cast<std::size_t>(c.n_embd), V = static_cast<std::size_t>(c.vocab_size);
        int n = 0;
        for (const auto& p : ws.parts) n += p.rows;
        ws.reserve(c, n);
        ws.pool = pool_.get();
        ws.chunked_wkv = chunked_wkv_;
        ws.bf16_prefill = bf16_prefill_;
        ws.bf16_decode = bf16_decode_;
        ws.int8_decode = int8_decode_;
        ws.one_token_rows = std::all_of(ws.parts.begin(), ws.parts.end(), [](const auto& p) { return p.rows == 1; });
        std::span<const token> tokens(ws.parts[0].tokens, static_cast<std::size_t>(ws.parts[0].rows));
        if (ws.parts.size() > 1) {  // gather the round's tokens
            ws.batch_tokens.clear();
            for (const auto& p : ws.parts) ws.batch_tokens.insert(ws.batch_tokens.end(), p.tokens, p.tokens + p.rows);
            tokens = ws.batch_tokens;
        }
        const std::size_t P = ws.parts.size();
        ws.att_seqs.resize(P);
        ws.ffn_seqs.resize(P);
        float *x = ws.x.data(), *z = ws.z.data();
        ops::embed(ws, w_->emb, tokens, x);     // x = emb[token]
        ops::layer_norm(ws, w_->ln0, x, x, n);  // x = LN(x; ln0)
        for (int l = 0; l < c.n_layer; ++l) {
            for (std::size_t i = 0; i < P; ++i) {
                State& s = *states[static_cast<std::size_t>(ws.parts[i].seq)];
                ws.att_seqs[i] = {ws.parts[i].rows, s.att_shift(l).data(), s.wkv(l).data()};
                ws.ffn_seqs[i] = {ws.parts[i].rows, s.ffn_shift(l).data(), nullptr};
            }
            const Block& b = w_->blocks[static_cast<std::size_t>(l)];
            ops::layer_norm(ws, b.ln1, x, z, n);  // x += att(LN(x; ln1))
            std::visit(
                [&](const auto& att) { att.forward(ws, c, z, n, std::span<const sequence_rows>(ws.att_seqs), x); },
                b.att);
            ops::layer_norm(ws, b.ln2, x, z, n);  // x += ffn(LN(x; ln2))
            b.ffn.forward(ws, c, z, n, std::span<const sequence_rows>(ws.ffn_seqs), x);
        }
        if (all_out) {  // logits = head · LN(x; ln_out), every row
            ops::head(ws, w_->ln_out, w_->head, x, n, z, all_out);
            if (ws.parts[0].out_row >= 0) std::copy_n(all_out + static_cast<std::size_t>(n - 1) * V, V, last_out);
            return;
        }
        // Only the last row of each finishing sequence: gather them (consecutive output rows
        // are written in place).
        std::size_t k = 0, row = 0;
        int first_out = -1;
        bool consecutive = true;
        if (ws.last_x.size() < P * C) ws.last_x.resize(P * C);
        for (const auto& p : ws.parts) {
            row += static_cast<std::size_t>(p.rows);
            if (p.out_row < 0) continue;
            if (k == 0) first_out = p.out_row;
            consecutive = consecutive && p.out_row == first_out + static_cast<int>(k);
            std::copy_n(x + (row - 1) * C, C, ws.last_x.data() + k * C);
            ++k;
        }
        if (k == 0) return;
        if (consecutive) {
            ops::head(ws, w_->ln_out, w_->head, ws.last_x.data(), static_cast<int>(k), z,
                      last_out + static_cast<std::size_t>(first_out) * V);
            return;
        }
        if (ws.head_rows.size() < k * V) ws.head_rows.resize(k * V);
        ops::head(ws, w_->ln_out, w_->head, ws.last_x.data(), static_cast<int>(k), z, ws.head_rows.data());
        std::size_t j = 0;
        for (const auto& p : ws.parts)
            if (p.out_row >= 0)
                std::copy_n(ws.head_rows.data() + j++ * V, V, last_out + static_cast<std::size_t>(p.out_row) * V);
    }

    std::shared_ptr<const Weights> w_;
    std::shared_ptr<backend::cpu::ThreadPool> pool_;
    bool chunked_wkv_ = false;
    bool bf16_prefill_ = false;
    bool bf16_decode_ = false;
    bool int8_decode_ = false;
};

// Keeps every tensor as the file holds it (Model<stored>): zero copy, mixed formats allowed.
//
// This one definition instantiates Model<stored>, i.e. every weight format's kernels: the largest
// compile of a program that loads models (minutes under the sanitizers). A project with several
// such programs may compile it once: one source file defines RWKV_DEFINE_ANY_MODEL before
// including this header (it then holds the out-of-line definition), and every other translation
// unit of the program defines RWKV_PREBUILT_ANY_MODEL (they see only the declaration). This
// repository's CLIs and C API do so through the rwkv_any_model library (src/any_model.cpp); by
// default the definition is inline here and the library stays header-only.
#if defined(RWKV_DEFINE_ANY_MODEL)
AnyModel AnyModel::load(const std::filesystem::path& path, const Progress& progress) {
    return AnyModel(Model<stored>::from_tensors(io::open(path), progress));
}
#elif !defined(RWKV_PREBUILT_ANY_MODEL)
inline AnyModel AnyModel::load(const std::filesystem::path& path, const Progress& progress) {
    return AnyModel(Model<stored>::from_tensors(io::open(path), progress));
}
#endif

}  // namespace rwkv
