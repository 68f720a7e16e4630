#pragma once
// rwkv::Model<T, Backend> — the umbrella header: everything an application needs to load an
// official checkpoint and run it.
//
//   auto model = rwkv::Model<rwkv::bfloat16>::load("RWKV-x060-World-1B6-v2.1.pth");
//   auto state = model.new_state();
//   std::span<const float> logits = model.forward(std::span<const rwkv::token>(ids), state);
//
// T is the weight storage type (float, rwkv::bfloat16, rwkv::half); activations and the state
// are always fp32. forward() is const: one model serves many states on many threads.

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "backend.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "error.hpp"
#include "fingerprint.hpp"  // [issue-12] state identity
#include "init.hpp"
#include "io/pth.hpp"
#include "layers/channel_mix.hpp"
#include "layers/norm.hpp"
#include "layers/time_mix5.hpp"
#include "layers/time_mix6.hpp"
#include "matrix.hpp"
#include "scalar.hpp"
#include "state.hpp"
#include "token.hpp"

namespace rwkv {

template <class T = float, class Backend = cpu>
class Model {
    static_assert(is_weight_scalar_v<T>, "T must be float, rwkv::bfloat16 or rwkv::half");

public:
    using State = rwkv::State;
    using scalar_type = T;

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

    static Model load(const std::filesystem::path& path, const Progress& progress = {}) {
        return from_tensors(io::load_pth(path), progress);
    }

    // A fresh model of shape `config` (unset fields take the official defaults), initialised
    // like RWKV-LM's training code (spec appendix B). Init::fast skips the orthogonal QR.
    static Model random(const Config& config, std::uint64_t seed, Init init = Init::official) {
        return from_tensors(detail::random_tensors<T>(config, seed, init));
    }

    // Builds a model from tensors with official names (any reader's output).
    static Model from_tensors(io::tensor_file file, const Progress& progress = {}) {
        auto w = std::make_shared<Weights>();
        w->config = detail::infer_config(file);
        w->fingerprint = weights_fingerprint(file);  // [issue-12] stamped into states, see check_state()
        const Config& c = w->config;
        detail::TensorReader rd(file);
        const std::int64_t V = c.vocab_size, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, H = c.n_head,
                           N = c.head_size, Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
        w->emb = rd.matrix<T>("emb.weight", V, C);
        w->ln0 = layer_norm(rd, "blocks.0.ln0", C);
        w->ln_out = layer_norm(rd, "ln_out", C);
        w->head = rd.matrix<T>("head.weight", V, C);
        bool has_time_state = false;
        for (int l = 0; l < c.n_layer; ++l) {
            const std::string p = "blocks." + std::to_string(l) + ".";
            Block b{layer_norm(rd, p + "ln1", C), layer_norm(rd, p + "ln2", C), TimeMix5<T, Backend>{}, {}};
            TimeMixCore<T, Backend> core;
            core.receptance = rd.matrix<T>(p + "att.receptance.weight", A, C);
            core.key = rd.matrix<T>(p + "att.key.weight", A, C);
            core.value = rd.matrix<T>(p + "att.value.weight", A, C);
            core.gate = rd.matrix<T>(p + "att.gate.weight", A, C);
            core.output = rd.matrix<T>(p + "att.output.weight", C, A);
            core.u = rd.floats(p + "att.time_faaaa", {H, N});
            core.ln_x.weight = rd.floats(p + "att.ln_x.weight", {A});
            core.ln_x.bias = rd.floats(p + "att.ln_x.bias", {A});
            core.ln_x.groups = c.n_head;
            if (c.version == Version::x052) {
                TimeMix5<T, Backend> att;
                att.mix_k = rd.floats(p + "att.time_mix_k", {1, 1, C});
                att.mix_v = rd.floats(p + "att.time_mix_v", {1, 1, C});
                att.mix_r = rd.floats(p + "att.time_mix_r", {1, 1, C});
                att.mix_g = rd.floats(p + "att.time_mix_g", {1, 1, C});
                const auto d = rd.floats(p + "att.time_decay", {H, N});
                for (float x : d) {
                    att.log_w.push_back(-std::exp(x));
                    att.w.push_back(std::exp(-std::exp(x)));
                }
                att.core = std::move(core);
                b.att = std::move(att);
                b.ffn.difference_form = false;
                b.ffn.mix_k = rd.floats(p + "ffn.time_mix_k", {1, 1, C});
                b.ffn.mix_r = rd.floats(p + "ffn.time_mix_r", {1, 1, C});
            } else {
                TimeMix6<T, Backend> att;
                att.maa_x = rd.floats(p + "att.time_maa_x", {1, 1, C});
                const char* slots[5] = {"w", "k", "v", "r", "g"};
                for (int s = 0; s < 5; ++s) att.maa[s] = rd.floats(p + "att.time_maa_" + slots[s], {1, 1, C});
                att.maa_w1 = transposed<T>(rd.floats(p + "att.time_maa_w1", {C, 5 * Dm}).data(), C, 5 * Dm);
                const auto w2 = rd.floats(p + "att.time_maa_w2", {5, Dm, C});
                for (int s = 0; s < 5; ++s)
                    att.maa_w2[s] = transposed<T>(w2.data() + static_cast<std::size_t>(s * Dm * C), Dm, C);
                att.decay = rd.floats(p + "att.time_decay", {1, 1, A});
                att.decay_w1 = transposed<T>(rd.floats(p + "att.time_decay_w1", {C, Dw}).data(), C, Dw);
                att.decay_w2 = transposed<T>(rd.floats(p + "att.time_decay_w2", {Dw, A}).data(), Dw, A);
                att.core = std::move(core);
                b.att = std::move(att);
                b.ffn.difference_form = true;
                b.ffn.mix_k = rd.floats(p + "ffn.time_maa_k", {1, 1, C});
                b.ffn.mix_r = rd.floats(p + "ffn.time_maa_r", {1, 1, C});
            }
            b.ffn.key = rd.matrix<T>(p + "ffn.key.weight", F, C);
            b.ffn.receptance = rd.matrix<T>(p + "ffn.receptance.weight", C, C);
            b.ffn.value = rd.matrix<T>(p + "ffn.value.weight", C, F);
            // State-tuned checkpoints carry a learned initial WKV state (spec 3.4).
            if (file.find(p + "att.time_state")) {
                if (!has_time_state && l > 0)
                    throw error(rd.file() + ": 'att.time_state' present for some layers only");
                has_time_state = true;
                auto s = rd.floats(p + "att.time_state", {H, N, N});
                if (w->time_state.empty()) w->time_state.resize(static_cast<std::size_t>(c.n_layer * H * N * N));
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
        // with it every in-memory buffer no weight uses in place (converted copies exist).
        file.tensors.clear();
        file.tensors.shrink_to_fit();
        w->file = std::move(file);
        return Model(std::move(w));
    }

    const Config& config() const { return w_->config; }

    // [issue-12] Identity of the weights (rwkv/fingerprint.hpp), recorded in the states this
    // model makes and in their serialised form.
    std::uint64_t fingerprint() const { return w_->fingerprint; }

    // Threads used by forward() (the caller's thread included); default: hardware threads.
    // A Model is a cheap handle: copies share the weights, and each copy may use its own
    // thread setting. If two threads call forward() on the same handle at once, one of them
    // runs single-threaded instead of waiting.
    void set_threads(int n) {
        if (n < 1) throw error("set_threads: need at least 1 thread, got " + std::to_string(n));
        pool_ = std::make_shared<cpu_kernels::ThreadPool>(n);
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
    // off by default; decoding (one token) is never affected. No effect for other T.
    void set_bf16_prefill(bool on) { bf16_prefill_ = on; }
    bool bf16_prefill() const { return bf16_prefill_; }
    const std::vector<Block>& blocks() const { return w_->blocks; }

    State new_state() const {
        State s(w_->config);
        s.set_model_fingerprint(w_->fingerprint);  // [issue-12]
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

    // Logits after one token; valid until the next call with this state.
    std::span<const float> forward(token t, State& s) const { return forward(std::span<const token>(&t, 1), s); }

    // Logits after the last token of `tokens`; same results as feeding them one by one.
    std::span<const float> forward(std::span<const token> tokens, State& s) const {
        run(tokens, s, {});
        return {s.workspace().logits.data(), static_cast<std::size_t>(w_->config.vocab_size)};
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
        Matrix<T> emb, head;
        LayerNorm ln0, ln_out;
        std::vector<Block> blocks;
        std::vector<float> time_state;  // [L][H][N key][N value] or empty
        std::uint64_t fingerprint = 0;  // [issue-12] weights_fingerprint(file)
    };

    explicit Model(std::shared_ptr<const Weights> w)
        : w_(std::move(w)), pool_(std::make_shared<cpu_kernels::ThreadPool>(cpu_kernels::ThreadPool::hardware_threads())) {}

    // [rows][cols] stored as given → its transpose [cols][rows], in U.
    template <class U>
    static Matrix<U> transposed(const float* m, std::int64_t rows, std::int64_t cols) {
        std::vector<U> t(static_cast<std::size_t>(rows * cols));
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c)
                t[static_cast<std::size_t>(c * rows + r)] = from_float<U>(m[r * cols + c]);
        return Matrix<U>::owning(std::move(t), static_cast<int>(cols), static_cast<int>(rows));
    }

    static LayerNorm layer_norm(detail::TensorReader& rd, const std::string& prefix, std::int64_t C) {
        LayerNorm ln;
        ln.weight = rd.floats(prefix + ".weight", {C});
        ln.bias = rd.floats(prefix + ".bias", {C});
        return ln;
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
        // [issue-12] Same shape, other weights: refuse unless the state's origin is unknown (0).
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
        // Validate every id before touching the state, so a bad id leaves the state unchanged.
        for (std::size_t i = 0; i < tokens.size(); ++i)
            if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
                throw error("forward: token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                            " is out of range for vocab_size " + std::to_string(c.vocab_size));
        const bool all = !all_logits.empty();
        auto& ws = s.workspace();
        ws.reserve(c, static_cast<int>(std::min<std::size_t>(tokens.size(), chunk_tokens)));
        ws.pool = pool_.get();
        ws.chunked_wkv = chunked_wkv_;
        ws.bf16_prefill = bf16_prefill_;
        for (std::size_t t0 = 0; t0 < tokens.size(); t0 += chunk_tokens) {
            const int n = static_cast<int>(std::min<std::size_t>(chunk_tokens, tokens.size() - t0));
            const bool last = t0 + static_cast<std::size_t>(n) == tokens.size();
            float* out = all ? all_logits.data() + t0 * static_cast<std::size_t>(c.vocab_size) : nullptr;
            run_chunk(tokens.subspan(t0, static_cast<std::size_t>(n)), s, all ? out : nullptr, last);
        }
    }

    void run_chunk(std::span<const token> tokens, State& s, float* all_out, bool last) const {
        const Config& c = w_->config;
        const auto C = static_cast<std::size_t>(c.n_embd);
        const int n = static_cast<int>(tokens.size());
        auto& ws = s.workspace();
        float* x = ws.x.data();
        float* z = ws.z.data();
        for (int t = 0; t < n; ++t) {
            cpu_kernels::widen(w_->emb.row(tokens[static_cast<std::size_t>(t)]), x + t * C, C);
            w_->ln0(x + t * C, x + t * C);
        }
        for (int l = 0; l < c.n_layer; ++l) {
            const Block& b = w_->blocks[static_cast<std::size_t>(l)];
            b.ln1.rows(x, z, n);
            std::visit([&](const auto& att) { att.forward(c, z, n, s.att_shift(l).data(), s.wkv(l).data(), ws, x); },
                       b.att);
            b.ln2.rows(x, z, n);
            b.ffn.forward(c, z, n, s.ffn_shift(l).data(), ws, x);
        }
        if (all_out) {
            w_->ln_out.rows(x, z, n);
            cpu_kernels::matmul(w_->head, z, n, all_out, ws);
            if (last)
                std::copy_n(all_out + static_cast<std::size_t>(n - 1) * c.vocab_size, c.vocab_size, ws.logits.data());
        } else if (last) {
            w_->ln_out(x + (n - 1) * C, z);
            cpu_kernels::matmul(w_->head, z, 1, ws.logits.data(), ws);
        }
    }

    std::shared_ptr<const Weights> w_;
    std::shared_ptr<cpu_kernels::ThreadPool> pool_;
    bool chunked_wkv_ = false;
    bool bf16_prefill_ = false;
};

}  // namespace rwkv
