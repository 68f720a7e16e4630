#pragma once
// rwkv::Model<T, rwkv::cuda> — the model on an NVIDIA GPU, with the CPU Model's calls:
//
//   auto model = rwkv::Model<rwkv::bfloat16, rwkv::cuda>::load("RWKV-x060-World-1B6-v2.1.pth");
//   auto state = model.new_state();                       // rwkv::CudaState, in device memory
//   std::span<const float> logits = model.forward(std::span<const rwkv::token>(ids), state);
//
// Loading goes through the CPU loader (every file format, checks and messages are the CPU
// Model's), then every weight is uploaded once into one device allocation; the host copy is
// dropped. The forward pass is the CPU Model's run_round op for op (spec 4.12), on the ops of
// backend_ops<cuda>; its layers are written out here rather than reusing layers/*.hpp, because
// those hold their parameters in host vectors. A decode step (one token for each of B ≤ 8
// sequences) is captured into a CUDA graph on its second run and replayed from then on.
//
// T: float, rwkv::bfloat16, rwkv::half (activations and state fp32, as on the CPU).

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../../config.hpp"
#include "../../error.hpp"
#include "../../init.hpp"
#include "../../model.hpp"
#include "../../model_checks.hpp"
#include "../../scalar.hpp"
#include "../../token.hpp"
#include "../workspace.hpp"
#include "ops.cuh"
#include "runtime.cuh"
#include "state.cuh"

namespace rwkv {

template <class T>
class Model<T, cuda> {
    static_assert(is_weight_scalar_v<T>,
                  "Model<T, rwkv::cuda>: T must be float, rwkv::bfloat16 or rwkv::half (rwkv::stored and the block "
                  "formats run on the CPU backend only, so far)");
    using ops = backend_ops<cuda>;
    using dmat = backend::gpu::dmat;
    using Workspace = backend::gpu::Workspace;
    using epilogue = backend::gpu::epilogue;

public:
    using State = CudaState;
    using scalar_type = T;
    using backend_type = cuda;
    using Progress = std::function<void(int done, int total)>;

    // Tokens per round of the forward pass (rows of every GEMM): prefill runs this many at a time.
    static constexpr int chunk_tokens = 512;

    // Any checkpoint the CPU Model reads (same errors), converted to T on the host, uploaded to
    // the current device. progress(done, 2·n_layer): the host conversion, then the upload.
    static Model load(const std::filesystem::path& path, const Progress& progress = {}) {
        Progress first, second;
        if (progress) {
            first = [&progress](int d, int L) { progress(d, 2 * L); };
            second = [&progress](int d, int L) { progress(L + d, 2 * L); };
        }
        return from_cpu(Model<T, rwkv::cpu>::load(path, first), second);
    }

    // The CPU Model<T>::random weights (official initialisation), uploaded.
    static Model random(const Config& config, std::uint64_t seed, Init init = Init::official) {
        return from_cpu(Model<T, rwkv::cpu>::random(config, seed, init));
    }

    // Uploads a CPU model's weights (its time_state, if any, becomes the initial state).
    // progress(layers uploaded, n_layer).
    static Model from_cpu(const Model<T, rwkv::cpu>& m, const Progress& progress = {}) {
        auto w = std::make_shared<Weights>();
        w->config = m.config();
        w->fingerprint = m.fingerprint();
        RWKV_CUDA_CHECK(cudaGetDevice(&w->device));
        const auto init = m.new_state();
        for (float v : init.data())
            if (v != 0.0f) {
                w->initial.assign(init.data().begin(), init.data().end());
                break;
            }
        for (int pass = 0; pass < 2; ++pass) {
            uploader up(w->arena, pass == 1);
            layout_from_cpu(up, m, *w, pass == 1 ? progress : Progress{});
            if (pass == 0) up.allocate();
        }
        backend::gpu::legacy_sync();  // the uploads are complete before any stream reads them
        return Model(std::move(w));
    }

    // Random weights drawn on the device at any shape (uniform, fan-in scaled; not the official
    // initialisation): the benchmarks' models at released shapes, built in seconds with no host
    // copy. Values are sane (no overflow) but meaningless.
    static Model random_on_device(Config config, std::uint64_t seed) {
        config.finalize();
        auto w = std::make_shared<Weights>();
        w->config = config;
        w->fingerprint = seed | 1;
        RWKV_CUDA_CHECK(cudaGetDevice(&w->device));
        for (int pass = 0; pass < 2; ++pass) {
            uploader up(w->arena, pass == 1);
            layout_random(up, *w, seed);
            if (pass == 0) up.allocate();
        }
        backend::gpu::legacy_sync();  // the fill kernels ran on the legacy stream
        return Model(std::move(w));
    }

    const Config& config() const { return w_->config; }
    std::uint64_t fingerprint() const { return w_->fingerprint; }
    std::string weight_type() const { return scalar_name<T>(); }
    int device() const { return w_->device; }
    // Bytes of weights on the device (matrices with their row padding, and vectors).
    std::size_t device_bytes() const { return w_->arena.size(); }

    // Prefill WKV: chunked (spec 5.4, default) or token by token; both exact to fp32 rounding.
    void set_chunked_wkv(bool on) { chunked_wkv_ = on; }
    bool chunked_wkv() const { return chunked_wkv_; }
    // Opt-in tensor-core prefill / batched GEMMs for bf16 / fp16 weights: activations rounded to
    // the weight type (logits move by ~1e-2, as the CPU's set_bf16_prefill). Decode of up to 8
    // sequences never uses it.
    void set_bf16_prefill(bool on) { bf16_prefill_ = on; }
    bool bf16_prefill() const { return bf16_prefill_; }
    // CUDA graphs for decode steps (default on); off runs every step eagerly (for debugging).
    void set_graphs(bool on) { graphs_ = on; }
    bool graphs() const { return graphs_; }

    State new_state() const {
        select_device();
        State s(w_->config);
        s.set_model_fingerprint(w_->fingerprint);
        if (!w_->initial.empty()) apply_initial(s);
        return s;
    }

    // Resets `s` to this model's initial state (zeros, or the tuned time_state).
    void reset(State& s) const {
        check_state(s);
        s.reset();
        if (!w_->initial.empty()) apply_initial(s);
    }

    // Logits [vocab_size] after one token (host memory, valid until the next call with this
    // state). Errors as the CPU Model (rwkv::error, state untouched), plus CUDA failures.
    std::span<const float> forward(token t, State& s) const { return forward(std::span<const token>(&t, 1), s); }

    // Logits after the last token of `tokens`; same results as feeding them one by one.
    std::span<const float> forward(std::span<const token> tokens, State& s) const {
        check_state(s);
        if (tokens.empty()) throw error("forward: empty token sequence");
        detail::check_token_ids(tokens, w_->config.vocab_size, "forward");
        select_device();
        auto& ws = s.workspace();
        prepare_host_logits(ws, 1);
        State* const one[1] = {&s};
        for (std::size_t t0 = 0; t0 < tokens.size(); t0 += chunk_tokens) {
            const int n = static_cast<int>(std::min<std::size_t>(chunk_tokens, tokens.size() - t0));
            const bool last = t0 + static_cast<std::size_t>(n) == tokens.size();
            ws_parts(ws).clear();
            ws_parts(ws).push_back({0, tokens.data() + t0, n, last ? 0 : -1});
            run_round(one, ws, nullptr);
        }
        return {ws.logits_h.as<const float>(), static_cast<std::size_t>(w_->config.vocab_size)};
    }

    // Logits after every token into `out` (tokens.size() rows of vocab_size, host memory).
    void forward_all(std::span<const token> tokens, State& s, std::span<float> out) const {
        const auto V = static_cast<std::size_t>(w_->config.vocab_size);
        if (out.size() != tokens.size() * V)
            throw error("forward_all: output has " + std::to_string(out.size()) + " floats, need " +
                        std::to_string(tokens.size()) + " x " + std::to_string(V));
        check_state(s);
        if (tokens.empty()) throw error("forward: empty token sequence");
        detail::check_token_ids(tokens, w_->config.vocab_size, "forward");
        select_device();
        auto& ws = s.workspace();
        prepare_host_logits(ws, 1);
        State* const one[1] = {&s};
        for (std::size_t t0 = 0; t0 < tokens.size(); t0 += chunk_tokens) {
            const int n = static_cast<int>(std::min<std::size_t>(chunk_tokens, tokens.size() - t0));
            ws_parts(ws).clear();
            ws_parts(ws).push_back({0, tokens.data() + t0, n, 0});
            run_round(one, ws, out.data() + t0 * V);
        }
    }

    // One token for each of B sequences; B rows of logits (host memory in states[0]'s workspace,
    // valid until its next call). As the CPU Model's forward_batch.
    std::span<const float> forward_batch(std::span<const token> tokens, std::span<State* const> states) const {
        detail::check_batch_decode(tokens, states, w_->config.vocab_size, [this](const State& s) { check_state(s); });
        select_device();
        auto& ws = states[0]->workspace();
        prepare_host_logits(ws, static_cast<int>(tokens.size()));
        for (std::size_t b0 = 0; b0 < tokens.size(); b0 += chunk_tokens) {
            const std::size_t b1 = std::min(tokens.size(), b0 + chunk_tokens);
            ws_parts(ws).clear();
            for (std::size_t b = b0; b < b1; ++b)
                ws_parts(ws).push_back({static_cast<int>(b), &tokens[b], 1, static_cast<int>(b)});
            run_round(states, ws, nullptr);
        }
        return {ws.logits_h.as<const float>(), tokens.size() * static_cast<std::size_t>(w_->config.vocab_size)};
    }

    // Batched prefill: prompts[b] continues states[b]; B rows of the logits after each prompt.
    std::span<const float> forward_batch(std::span<const std::span<const token>> prompts,
                                         std::span<State* const> states) const {
        detail::check_batch_prefill(prompts, states, w_->config.vocab_size, [this](const State& s) { check_state(s); });
        select_device();
        auto& ws = states[0]->workspace();
        prepare_host_logits(ws, static_cast<int>(prompts.size()));
        std::size_t b = 0, done = 0;
        while (b < prompts.size()) {
            auto& parts = ws_parts(ws);
            parts.clear();
            int budget = chunk_tokens;
            while (b < prompts.size() && budget > 0) {
                const std::size_t left = prompts[b].size() - done;
                const int take = static_cast<int>(std::min<std::size_t>(left, static_cast<std::size_t>(budget)));
                const bool finishes = static_cast<std::size_t>(take) == left;
                parts.push_back(
                    {static_cast<int>(b), prompts[b].data() + done, take, finishes ? static_cast<int>(b) : -1});
                budget -= take;
                if (finishes) ++b, done = 0;
                else done += static_cast<std::size_t>(take);
            }
            run_round(states, ws, nullptr);
        }
        return {ws.logits_h.as<const float>(), prompts.size() * static_cast<std::size_t>(w_->config.vocab_size)};
    }

    // The device copy of the logits the last call on `s` produced ([rows][vocab_size] for the
    // outputs of its last round: one row for forward, B for a forward_batch of B ≤ chunk_tokens),
    // for sampling on the GPU. Valid until the next call with this state.
    const float* device_logits(State& s) const { return s.workspace().logits_d.template as<const float>(); }

private:
    struct Layer {
        const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
        float ln1_eps = 1e-5f, ln2_eps = 1e-5f;
        const float* att_mix[5] = {};  // x052: -, k v r g (μ); x060: w k v r g (maa)
        const float* maa_x = nullptr;
        const float *w052 = nullptr, *logw052 = nullptr;  // x052 static decay exp(λ), λ
        const float* decay = nullptr;                     // x060 d
        dmat maa_w1, maa_w2[5], decay_w1, decay_w2;
        dmat rw, kw, vw, gw, ow;
        const float *u = nullptr, *lnx_w = nullptr, *lnx_b = nullptr;
        float lnx_eps = 64e-5f;
        const float *ffn_mix_k = nullptr, *ffn_mix_r = nullptr;
        dmat ffn_key, ffn_recept, ffn_value;
    };

    struct Weights {
        Config config;
        std::uint64_t fingerprint = 0;
        int device = 0;
        backend::gpu::device_buffer arena;
        dmat emb, head;
        const float *ln0_w = nullptr, *ln0_b = nullptr, *lnout_w = nullptr, *lnout_b = nullptr;
        float ln0_eps = 1e-5f, lnout_eps = 1e-5f;
        std::vector<Layer> layers;
        std::vector<float> initial;  // the initial state (state-tuned models), or empty
    };

    // Lays the weights out in one device allocation: a first pass sizes it, a second copies.
    class uploader {
    public:
        uploader(backend::gpu::device_buffer& arena, bool copy) : arena_(arena), copy_(copy) {}
        void allocate() {
            arena_.resize(used_);
            RWKV_CUDA_CHECK(cudaMemset(arena_.data(), 0, used_));  // row padding reads as zeros
        }
        const float* vec(const std::vector<float>& v) {
            char* at = take(v.size() * sizeof(float));
            if (copy_ && !v.empty())
                RWKV_CUDA_CHECK(cudaMemcpy(at, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
            return reinterpret_cast<const float*>(at);
        }
        dmat mat(const Weight& W) {
            if (W.type != dtype_of<T>())
                throw error("cuda upload: weight of type " + std::string(dtype_name(W.type)) + " in a Model<" +
                            scalar_name<T>() + ">");
            dmat m = shape(W.rows, W.cols);
            const std::size_t es = sizeof(T);
            if (copy_ && W.rows > 0)
                RWKV_CUDA_CHECK(cudaMemcpy2D(const_cast<void*>(m.data), m.ld * es, W.data, W.row_bytes,
                                             static_cast<std::size_t>(W.cols) * es, static_cast<std::size_t>(W.rows),
                                             cudaMemcpyHostToDevice));
            return m;
        }
        // A matrix slot of the right shape; filled by the caller (random weights) when copying.
        dmat shape(int rows, int cols) {
            dmat m;
            m.type = backend::gpu::wtype_of<T>();
            m.rows = rows;
            m.cols = cols;
            m.ld = dmat::ld_for(m.type, cols);
            m.data = take(m.bytes());
            return m;
        }
        bool copying() const { return copy_; }

    private:
        char* take(std::size_t bytes) {
            char* at = copy_ ? arena_.as<char>() + used_ : nullptr;
            used_ += (bytes + 255) / 256 * 256;
            return at;
        }
        backend::gpu::device_buffer& arena_;
        bool copy_;
        std::size_t used_ = 0;
    };

    static void layout_from_cpu(uploader& up, const Model<T, rwkv::cpu>& m, Weights& w, const Progress& progress) {
        const Config& c = w.config;
        w.emb = up.mat(m.emb());
        w.head = up.mat(m.head());
        w.ln0_w = up.vec(m.ln0().weight);
        w.ln0_b = up.vec(m.ln0().bias);
        w.ln0_eps = m.ln0().eps;
        w.lnout_w = up.vec(m.ln_out().weight);
        w.lnout_b = up.vec(m.ln_out().bias);
        w.lnout_eps = m.ln_out().eps;
        w.layers.assign(static_cast<std::size_t>(c.n_layer), Layer{});
        for (int l = 0; l < c.n_layer; ++l) {
            const auto& b = m.blocks()[static_cast<std::size_t>(l)];
            Layer& L = w.layers[static_cast<std::size_t>(l)];
            L.ln1_w = up.vec(b.ln1.weight);
            L.ln1_b = up.vec(b.ln1.bias);
            L.ln1_eps = b.ln1.eps;
            L.ln2_w = up.vec(b.ln2.weight);
            L.ln2_b = up.vec(b.ln2.bias);
            L.ln2_eps = b.ln2.eps;
            auto core = [&](const TimeMixCore<T, rwkv::cpu>& k) {
                L.rw = up.mat(k.receptance);
                L.kw = up.mat(k.key);
                L.vw = up.mat(k.value);
                L.gw = up.mat(k.gate);
                L.ow = up.mat(k.output);
                L.u = up.vec(k.u);
                L.lnx_w = up.vec(k.ln_x.weight);
                L.lnx_b = up.vec(k.ln_x.bias);
                L.lnx_eps = k.ln_x.eps;
            };
            if (const auto* a5 = std::get_if<TimeMix5<T, rwkv::cpu>>(&b.att)) {
                L.att_mix[1] = up.vec(a5->mix_k);
                L.att_mix[2] = up.vec(a5->mix_v);
                L.att_mix[3] = up.vec(a5->mix_r);
                L.att_mix[4] = up.vec(a5->mix_g);
                L.w052 = up.vec(a5->w);
                L.logw052 = up.vec(a5->log_w);
                core(a5->core);
            } else {
                const auto& a6 = std::get<TimeMix6<T, rwkv::cpu>>(b.att);
                L.maa_x = up.vec(a6.maa_x);
                for (int s = 0; s < 5; ++s) L.att_mix[s] = up.vec(a6.maa[s]);
                L.maa_w1 = up.mat(a6.maa_w1);
                for (int s = 0; s < 5; ++s) L.maa_w2[s] = up.mat(a6.maa_w2[s]);
                L.decay = up.vec(a6.decay);
                L.decay_w1 = up.mat(a6.decay_w1);
                L.decay_w2 = up.mat(a6.decay_w2);
                core(a6.core);
            }
            L.ffn_mix_k = up.vec(b.ffn.mix_k);
            L.ffn_mix_r = up.vec(b.ffn.mix_r);
            L.ffn_key = up.mat(b.ffn.key);
            L.ffn_recept = up.mat(b.ffn.receptance);
            L.ffn_value = up.mat(b.ffn.value);
            if (progress) progress(l + 1, c.n_layer);
        }
    }

    static void layout_random(uploader& up, Weights& w, std::uint64_t seed) {
        const Config& c = w.config;
        const int C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size, Dm = c.dim_lora_mix,
                  Dw = c.dim_lora_decay;
        detail::Rng rng{seed};
        std::uint64_t stream_id = seed * 0x2545f4914f6cdd1dull;
        auto uniform = [&](std::size_t n, float lo, float hi) {
            std::vector<float> v(n);
            for (auto& x : v) x = rng.uniform(lo, hi);
            return up.vec(v);
        };
        auto constant = [&](std::size_t n, float value) { return up.vec(std::vector<float>(n, value)); };
        auto mat = [&](int rows, int cols, float scale) {
            dmat m = up.shape(rows, cols);
            if (up.copying()) {
                using namespace backend::gpu;
                const float s = scale / std::sqrt(static_cast<float>(cols));
                const std::size_t work = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
                void* dst = const_cast<void*>(m.data);
                const unsigned blocks = ops::grid_for(work);
                ++stream_id;
                if constexpr (std::is_same_v<T, float>)
                    fill_uniform_kernel<wtype::f32><<<blocks, 256>>>(dst, m.ld, rows, cols, -s, s, stream_id);
                else if constexpr (std::is_same_v<T, bfloat16>)
                    fill_uniform_kernel<wtype::bf16><<<blocks, 256>>>(dst, m.ld, rows, cols, -s, s, stream_id);
                else fill_uniform_kernel<wtype::f16><<<blocks, 256>>>(dst, m.ld, rows, cols, -s, s, stream_id);
                RWKV_CUDA_LAUNCHED("fill_uniform_kernel");
            }
            return m;
        };
        const auto Cs = static_cast<std::size_t>(C), As = static_cast<std::size_t>(A);
        w.emb = mat(V, C, 0.1f * std::sqrt(static_cast<float>(C)));
        w.head = mat(V, C, 1.0f);
        w.ln0_w = constant(Cs, 1.0f);
        w.ln0_b = constant(Cs, 0.0f);
        w.lnout_w = constant(Cs, 1.0f);
        w.lnout_b = constant(Cs, 0.0f);
        w.layers.assign(static_cast<std::size_t>(c.n_layer), Layer{});
        for (auto& L : w.layers) {
            L.ln1_w = L.ln2_w = constant(Cs, 1.0f);
            L.ln1_b = L.ln2_b = constant(Cs, 0.0f);
            for (auto& m : L.att_mix) m = uniform(Cs, 0.0f, 1.0f);
            if (c.version == Version::x052) {
                std::vector<float> wv(As), lw(As);
                for (std::size_t i = 0; i < As; ++i) {
                    lw[i] = -std::exp(rng.uniform(-5.0f, 1.0f));
                    wv[i] = std::exp(lw[i]);
                }
                L.w052 = up.vec(wv);
                L.logw052 = up.vec(lw);
            } else {
                L.maa_x = uniform(Cs, 0.0f, 1.0f);
                L.maa_w1 = mat(5 * Dm, C, 1.0f);
                for (auto& m : L.maa_w2) m = mat(C, Dm, 0.1f);
                L.decay = uniform(As, -5.0f, 1.0f);
                L.decay_w1 = mat(Dw, C, 1.0f);
                L.decay_w2 = mat(A, Dw, 0.1f);
            }
            L.rw = mat(A, C, 1.0f);
            L.kw = mat(A, C, 1.0f);
            L.vw = mat(A, C, 1.0f);
            L.gw = mat(A, C, 1.0f);
            L.ow = mat(C, A, 1.0f);
            L.u = uniform(As, -0.5f, 0.5f);
            L.lnx_w = constant(As, 1.0f);
            L.lnx_b = constant(As, 0.0f);
            L.ffn_mix_k = uniform(Cs, 0.0f, 1.0f);
            L.ffn_mix_r = uniform(Cs, 0.0f, 1.0f);
            L.ffn_key = mat(F, C, 1.0f);
            L.ffn_recept = mat(C, C, 1.0f);
            L.ffn_value = mat(C, F, 1.0f);
        }
    }

    explicit Model(std::shared_ptr<const Weights> w) : w_(std::move(w)) {}

    void select_device() const { RWKV_CUDA_CHECK(cudaSetDevice(w_->device)); }

    static std::vector<detail::batch_part>& ws_parts(Workspace& ws) { return ws.parts; }

    void apply_initial(State& s) const {
        rwkv::State host(w_->config);
        host.set_model_fingerprint(w_->fingerprint);
        std::copy(w_->initial.begin(), w_->initial.end(), host.data().begin());
        s.from_host(host);
    }

    void check_state(const State& s) const {
        if (!(s.config() == w_->config))
            throw error("state belongs to a model of another shape (state: " +
                        rwkv::State::describe(s.config(), s.model_fingerprint()) +
                        ", model: " + rwkv::State::describe(w_->config, w_->fingerprint) + ")");
        if (s.model_fingerprint() != 0 && s.model_fingerprint() != w_->fingerprint)
            throw error(
                "state belongs to another model (state: " + rwkv::State::describe(s.config(), s.model_fingerprint()) +
                "; this model: " + rwkv::State::describe(w_->config, w_->fingerprint) + ")");
        if (s.device() != w_->device)
            throw error("state lives on CUDA device " + std::to_string(s.device()) + ", the model on device " +
                        std::to_string(w_->device));
    }

    // Pinned host rows for the logits of B outputs (the span forward returns points here).
    void prepare_host_logits(Workspace& ws, int B) const {
        const std::size_t bytes = static_cast<std::size_t>(B) * static_cast<std::size_t>(w_->config.vocab_size) * 4;
        if (ws.logits_h.reserve(bytes)) ws.graphs.clear();  // graphs copy into the old buffer
    }

    // One round: the rows of ws.parts through every layer (spec 4.12). all_out (host, one
    // sequence): logits of every row; otherwise part p's last-token logits go to host row
    // p.out_row of ws.logits_h.
    void run_round(std::span<State* const> states, Workspace& ws, float* all_out) const {
        const Config& c = w_->config;
        const auto& parts = ws.parts;
        int n = 0, outs = 0, max_rows = 0;
        bool decode = all_out == nullptr;  // one token per sequence, outputs 0..P-1 in order
        for (std::size_t i = 0; i < parts.size(); ++i) {
            n += parts[i].rows;
            max_rows = std::max(max_rows, parts[i].rows);
            if (parts[i].out_row >= 0) ++outs;
            decode = decode && parts[i].rows == 1 && parts[i].out_row == static_cast<int>(i);
        }
        const int out_rows = all_out ? n : outs;
        (void)backend::gpu::device_info::current();  // cached before any capture
        ws.reserve(c, n, std::max(1, out_rows));
        ws.fast_gemm = bf16_prefill_;
        ws.chunked_wkv = chunked_wkv_;
        // The round's tables, on the host (pinned), copied to the device by the first enqueued op.
        int row = 0, k = 0;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const auto& p = parts[i];
            ws.seqs_h[i] = {row, p.rows, states[static_cast<std::size_t>(p.seq)]->device_data()};
            for (int t = 0; t < p.rows; ++t) {
                ws.tokens_h[row + t] = p.tokens[t];
                ws.rows_h[row + t] = {static_cast<int>(i)};
            }
            row += p.rows;
            if (p.out_row >= 0) ws.gather_h[k++] = row - 1;
        }
        const int P = static_cast<int>(parts.size());
        cudaStream_t s = ws.s.get();
        auto enqueue = [&] {
            RWKV_CUDA_CHECK(cudaMemcpyAsync(ws.tables_d.data(), ws.tables_h.as<void>(), ws.tables_d.size(),
                                            cudaMemcpyHostToDevice, s));
            forward_rows(ws, n, P, max_rows);
            head(ws, n, out_rows, all_out != nullptr, decode);
            if (!all_out) copy_logits_out(ws, out_rows);
        };
        if (decode && graphs_ && n <= backend::gpu::mv_max_cols) {
            const std::uint64_t key = (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(w_.get())) << 8) ^
                                      static_cast<std::uint64_t>(n);
            auto it = std::find_if(ws.graphs.begin(), ws.graphs.end(), [&](const auto& g) { return g.key == key; });
            if (it == ws.graphs.end()) {
                ws.graphs.emplace_back();
                ws.graphs.back().key = key;
                it = ws.graphs.end() - 1;
            }
            if (!it->exec && it->seen >= 1) capture(ws, *it, enqueue);
            if (it->exec) {
                it->exec.launch(s);
            } else {
                enqueue();
                ++it->seen;
            }
        } else {
            enqueue();
        }
        if (all_out) {
            const std::size_t bytes = static_cast<std::size_t>(n) * static_cast<std::size_t>(c.vocab_size) * 4;
            RWKV_CUDA_CHECK(cudaMemcpyAsync(all_out, ws.logits_d.data(), bytes, cudaMemcpyDeviceToHost, s));
            // forward_all also leaves the last row where forward() would.
            RWKV_CUDA_CHECK(cudaMemcpyAsync(
                ws.logits_h.as<void>(), ws.logits_d.as<char>() + (bytes - static_cast<std::size_t>(c.vocab_size) * 4),
                static_cast<std::size_t>(c.vocab_size) * 4, cudaMemcpyDeviceToHost, s));
        }
        ws.s.sync();
    }

    template <class F>
    static void capture(Workspace& ws, typename Workspace::captured& g, F&& enqueue) {
        cudaStream_t s = ws.s.get();
        RWKV_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        cudaGraph_t graph = nullptr;
        try {
            enqueue();
        } catch (...) {
            (void)cudaStreamEndCapture(s, &graph);
            if (graph) cudaGraphDestroy(graph);
            (void)cudaGetLastError();
            throw;
        }
        RWKV_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
        try {
            g.exec.instantiate(graph);
        } catch (...) {
            cudaGraphDestroy(graph);
            throw;
        }
        cudaGraphDestroy(graph);
    }

    // Embedding, ln0 and every layer for the n rows of the round (P sequences).
    void forward_rows(Workspace& ws, int n, int P, int max_rows) const {
        using backend::gpu::shift_mix_params;
        using backend::gpu::wkv_params;
        const Config& c = w_->config;
        const int C = c.n_embd, A = c.dim_att, F = c.dim_ffn, Dm = c.dim_lora_mix, Dw = c.dim_lora_decay;
        const auto Cs = static_cast<std::size_t>(C), As = static_cast<std::size_t>(A), Fs = static_cast<std::size_t>(F);
        const std::size_t hnn = static_cast<std::size_t>(c.n_head) * c.head_size * c.head_size;
        const std::size_t layer_floats = 2 * Cs + hnn;
        const bool x060 = c.version == Version::x060;
        ops::embed(ws, w_->emb, ws.tokens_d, n, ws.x);                             // x = emb[token]
        ops::layer_norm(ws, w_->ln0_w, w_->ln0_b, w_->ln0_eps, ws.x, ws.x, n, C);  // x = LN(x; ln0)
        for (int l = 0; l < c.n_layer; ++l) {
            const Layer& L = w_->layers[static_cast<std::size_t>(l)];
            const std::size_t base = static_cast<std::size_t>(l) * layer_floats;
            // ---- x += att(LN(x; ln1))
            shift_mix_params sm;
            sm.x = ws.x;
            sm.C = C;
            sm.ln_w = L.ln1_w;
            sm.ln_b = L.ln1_b;
            sm.eps = L.ln1_eps;
            sm.rows = ws.rows_d;
            sm.seqs = ws.seqs_d;
            sm.shift_offset = base;
            const float *w = nullptr, *log_w = nullptr;
            std::size_t w_stride = 0;
            if (!x060) {  // z_s = z·μ_s + prev·(1-μ_s), s = k v r g
                sm.count = 4;
                sm.lerp = true;
                for (int s = 0; s < 4; ++s) {
                    sm.coef[s] = L.att_mix[s + 1];
                    sm.out[s] = ws.mix[s + 1];
                }
                ops::ln_shift_mix(ws, sm, n);
                w = L.w052;
                log_w = L.logw052;
            } else {  // zx = z + δ·m_x; q = tanh(zx·W1); z_s = z + δ·(m_s + q_s·W2_s)
                sm.count = 1;
                sm.coef[0] = L.maa_x;
                sm.out[0] = ws.mix[0];
                sm.z_out = ws.z;
                sm.prev_out = ws.prev;
                ops::ln_shift_mix(ws, sm, n);
                const std::size_t ld5 = 5 * static_cast<std::size_t>(Dm);
                ops::project(ws, {&L.maa_w1, ws.mix[0], Cs, ws.lora_mix, ld5, epilogue::tanh, {}}, n);
                backend::gpu::epilogue_args e[5];
                for (int s = 0; s < 5; ++s) {
                    e[s].a = ws.z;
                    e[s].b = ws.prev;
                    e[s].c = L.att_mix[s];
                }
                ops::project_many(ws,
                                  {{&L.maa_w2[0], ws.lora_mix, ld5, ws.mix[0], Cs, epilogue::ddlerp, e[0]},
                                   {&L.maa_w2[1], ws.lora_mix + Dm, ld5, ws.mix[1], Cs, epilogue::ddlerp, e[1]},
                                   {&L.maa_w2[2], ws.lora_mix + 2 * Dm, ld5, ws.mix[2], Cs, epilogue::ddlerp, e[2]},
                                   {&L.maa_w2[3], ws.lora_mix + 3 * Dm, ld5, ws.mix[3], Cs, epilogue::ddlerp, e[3]},
                                   {&L.maa_w2[4], ws.lora_mix + 4 * Dm, ld5, ws.mix[4], Cs, epilogue::ddlerp, e[4]}},
                                  n);
                // ω = d + tanh(z_w·Wd1)·Wd2; λ = -exp(ω); w = exp(λ)
                ops::project(
                    ws, {&L.decay_w1, ws.mix[0], Cs, ws.lora_decay, static_cast<std::size_t>(Dw), epilogue::tanh, {}},
                    n);
                backend::gpu::epilogue_args ed;
                ed.c = L.decay;
                ed.y2 = ws.log_w;
                ops::project(
                    ws, {&L.decay_w2, ws.lora_decay, static_cast<std::size_t>(Dw), ws.w, As, epilogue::decay, ed}, n);
                w = ws.w;
                log_w = ws.log_w;
                w_stride = As;
            }
            // r k v, g = silu(z_g·Wg)
            ops::project_many(ws,
                              {{&L.rw, ws.mix[3], Cs, ws.r, As, epilogue::none, {}},
                               {&L.kw, ws.mix[1], Cs, ws.k, As, epilogue::none, {}},
                               {&L.vw, ws.mix[2], Cs, ws.v, As, epilogue::none, {}},
                               {&L.gw, ws.mix[4], Cs, ws.g, As, epilogue::silu, {}}},
                              n);
            wkv_params wp;
            wp.n_head = c.n_head;
            wp.N = c.head_size;
            wp.r = ws.r;
            wp.k = ws.k;
            wp.v = ws.v;
            wp.w = w;
            wp.log_w = log_w;
            wp.w_stride = w_stride;
            wp.u = L.u;
            wp.y = ws.y;
            wp.seqs = ws.seqs_d;
            wp.state_offset = base + Cs;
            wp.gn_w = L.lnx_w;
            wp.gn_b = L.lnx_b;
            wp.gate = ws.g;
            wp.gn_eps = L.lnx_eps;
            if (!ops::wkv(ws, wp, P, max_rows))  // y = ln_x(wkv)·g
                ops::group_norm_gate(ws, ws.y, ws.g, n, c.n_head, c.head_size, L.lnx_w, L.lnx_b, L.lnx_eps);
            ops::project(ws, {&L.ow, ws.y, As, ws.x, Cs, epilogue::add, {}}, n);  // x += y·Wo
            // ---- x += ffn(LN(x; ln2))
            shift_mix_params fm;
            fm.x = ws.x;
            fm.C = C;
            fm.ln_w = L.ln2_w;
            fm.ln_b = L.ln2_b;
            fm.eps = L.ln2_eps;
            fm.rows = ws.rows_d;
            fm.seqs = ws.seqs_d;
            fm.shift_offset = base + Cs + hnn;
            fm.count = 2;
            fm.lerp = !x060;
            fm.coef[0] = L.ffn_mix_k;
            fm.coef[1] = L.ffn_mix_r;
            fm.out[0] = ws.mix[0];
            fm.out[1] = ws.mix[1];
            ops::ln_shift_mix(ws, fm, n);
            ops::project_many(ws,
                              {{&L.ffn_key, ws.mix[0], Cs, ws.ffn_k, Fs, epilogue::relu_sq, {}},
                               {&L.ffn_recept, ws.mix[1], Cs, ws.ffn_r, Cs, epilogue::none, {}}},
                              n);
            backend::gpu::epilogue_args eg;
            eg.a = ws.ffn_r;
            ops::project(ws, {&L.ffn_value, ws.ffn_k, Fs, ws.x, Cs, epilogue::gate_add, eg}, n);  // x += σ(r)·(k·Wv)
        }
    }

    // logits = head · LN(x; ln_out) for every row (all) or the gathered last rows of the parts.
    void head(Workspace& ws, int n, int out_rows, bool all, bool decode) const {
        const Config& c = w_->config;
        const int C = c.n_embd;
        const float* src = ws.x;
        if (!all && !decode && out_rows > 0) {
            ops::gather_rows(ws, ws.x, C, ws.gather_d, out_rows, ws.last_x);
            src = ws.last_x;
        }
        const int rows = all ? n : out_rows;
        if (rows == 0) return;  // a round that finishes no sequence
        ops::layer_norm(ws, w_->lnout_w, w_->lnout_b, w_->lnout_eps, src, ws.head_z, rows, C);
        ops::project(ws,
                     {&w_->head,
                      ws.head_z,
                      static_cast<std::size_t>(C),
                      ws.logits_d.template as<float>(),
                      static_cast<std::size_t>(c.vocab_size),
                      epilogue::none,
                      {}},
                     rows);
    }

    // Logit rows of the round's outputs into the pinned host rows at their out_row.
    void copy_logits_out(Workspace& ws, int out_rows) const {
        const auto V = static_cast<std::size_t>(w_->config.vocab_size);
        const auto& parts = ws.parts;
        int first = -1, k = 0;
        bool consecutive = true;
        for (const auto& p : parts) {
            if (p.out_row < 0) continue;
            if (k == 0) first = p.out_row;
            consecutive = consecutive && p.out_row == first + k;
            ++k;
        }
        if (k == 0) return;
        cudaStream_t s = ws.s.get();
        if (consecutive) {
            RWKV_CUDA_CHECK(cudaMemcpyAsync(ws.logits_h.as<float>() + static_cast<std::size_t>(first) * V,
                                            ws.logits_d.data(), static_cast<std::size_t>(out_rows) * V * 4,
                                            cudaMemcpyDeviceToHost, s));
            return;
        }
        int j = 0;
        for (const auto& p : parts)
            if (p.out_row >= 0)
                RWKV_CUDA_CHECK(cudaMemcpyAsync(ws.logits_h.as<float>() + static_cast<std::size_t>(p.out_row) * V,
                                                ws.logits_d.as<float>() + static_cast<std::size_t>(j++) * V, V * 4,
                                                cudaMemcpyDeviceToHost, s));
    }

    std::shared_ptr<const Weights> w_;
    bool chunked_wkv_ = true;
    bool bf16_prefill_ = false;
    bool graphs_ = true;
};

}  // namespace rwkv
