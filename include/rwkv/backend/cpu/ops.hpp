#pragma once
// backend_ops<rwkv::cpu>: the op vocabulary (backend.hpp) on the CPU. Projections switch once
// on the weight's format: F32 / BF16 / F16 run the SIMD mat-vec (one token, or one token of each
// of B sequences: bandwidth-bound decode, bit-identical per row) or the blocked GEMM (prefill); block formats (Q8_0 ...
// Q6_K, IQ4_NL) dequantize in registers for the mat-vec and per band of rows into the fp32 GEMM (matvec_quant.hpp),
// exact against the format's reference decoder; anything else decodes rows to fp32 and dots them. Products of one
// dispatch share one barrier of the thread pool. The WKV of a span runs heads in parallel, token by token with the
// fused step or in the chunked form (Model::set_chunked_wkv).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <type_traits>

#include "../../backend.hpp"
#include "../../error.hpp"
#include "../../layers/norm.hpp"
#include "../../token.hpp"
#include "../../weight.hpp"
#include "../workspace.hpp"
#include "elementwise.hpp"
#include "gemm.hpp"
#include "matvec.hpp"
#include "matvec_bf16.hpp"
#include "matvec_q8act.hpp"
#include "matvec_quant.hpp"
#include "norm.hpp"
#include "threads.hpp"
#include "wkv.hpp"
#include "wkv_chunked.hpp"

namespace rwkv {

namespace backend::cpu {

// Runs f(thread, n_threads) on the pool, or on the caller alone when there is no pool or it is
// busy (another state's forward holds it): results never depend on which happened.
template <class F>
void parallel(ThreadPool* pool, F&& f) {
    if (pool == nullptr || pool->size() == 1 || !pool->try_run(f)) f(0, 1);
}

// A typed view of a scalar-format weight without touching its owner (no atomic traffic).
template <class T>
inline Matrix<T> view(const Weight& W) {
    Matrix<T> m;
    m.data = reinterpret_cast<const T*>(W.data);
    m.rows = W.rows;
    m.cols = W.cols;
    return m;
}

// True when W's rows are contiguous, aligned values of scalar type T.
template <class T>
inline bool viewable_as(const Weight& W) {
    return W.type == dtype_of<T>() && W.row_bytes == static_cast<std::size_t>(W.cols) * sizeof(T) &&
           reinterpret_cast<std::uintptr_t>(W.data) % alignof(T) == 0;
}

// Y[n][W.rows] = X[n][W.cols]·Wᵀ for formats without a SIMD kernel: each row is decoded once
// (the format's reference decoder, exact) into the thread's buffer and dotted with every X row
// in order, so results do not depend on the thread count.
inline void project_decoded(const Weight& W, const float* X, int n, float* Y, ThreadPool* pool,
                            std::vector<std::vector<float>>& per_thread) {
    const int threads = pool ? pool->size() : 1;
    if (per_thread.size() < static_cast<std::size_t>(threads)) per_thread.resize(static_cast<std::size_t>(threads));
    for (auto& b : per_thread)
        if (b.size() < static_cast<std::size_t>(W.cols)) b.resize(static_cast<std::size_t>(W.cols));
    const auto cols = static_cast<std::size_t>(W.cols);
    auto work = [&](int t, int nt) {
        float* row = per_thread[static_cast<std::size_t>(t)].data();
        const int r0 = W.rows * t / nt, r1 = W.rows * (t + 1) / nt;
        for (int r = r0; r < r1; ++r) {
            W.decode_row(r, row);
            for (int i = 0; i < n; ++i) {
                const float* x = X + static_cast<std::size_t>(i) * cols;
                float acc = 0.0f;
                for (std::size_t c = 0; c < cols; ++c) acc += row[c] * x[c];
                Y[static_cast<std::size_t>(i) * static_cast<std::size_t>(W.rows) + static_cast<std::size_t>(r)] = acc;
            }
        }
    };
    parallel(pool, work);
}

// Y[v][W.rows] = W·X[v] for n vectors, W in a block format (quant_kernel_format(W)), for batched
// decoding: each thread takes blocks of rows and runs the single-vector kernel (qmatvec_rows) for
// every vector over a block while its weights are in cache. So each Y[v] is bit for bit
// qmatvec(W, X[v]) and the weights come from memory once for all vectors (their decoding is
// repeated per vector: the price of exactness against single-token decoding).
inline void qmatvec_batch(const Weight& W, const float* X, int n, float* Y, ThreadPool* pool) {
    constexpr int block = 4 * matvec_row_unit;  // 64 rows: ~70 KB of Q8_0 at 1024 columns, in L2
    const Isa isa = active_isa();
    const auto cols = static_cast<std::size_t>(W.cols), rows = static_cast<std::size_t>(W.rows);
    const int blocks = (W.rows + block - 1) / block;
    parallel(pool, [&](int t, int nt) {
        for (int b = blocks * t / nt; b < blocks * (t + 1) / nt; ++b) {
            const int r0 = b * block, r1 = std::min(W.rows, r0 + block);
            for (int v = 0; v < n; ++v)
                qmatvec_rows(W, X + static_cast<std::size_t>(v) * cols, Y + static_cast<std::size_t>(v) * rows, r0, r1,
                             isa);
        }
    });
}

}  // namespace backend::cpu

template <>
struct backend_ops<cpu> {
    using Workspace = detail::Workspace;

    // x[t] = emb[tokens[t]] widened to fp32 (exact for every format).
    static void embed(Workspace&, const Weight& emb, std::span<const token> tokens, float* x) {
        const auto C = static_cast<std::size_t>(emb.cols);
        for (std::size_t t = 0; t < tokens.size(); ++t) emb.decode_row(tokens[t], x + t * C);
    }

    // out[t] = LN(x[t]) for n rows of ln.weight.size() channels; out may alias x.
    static void layer_norm(Workspace&, const LayerNorm& ln, const float* x, float* out, int n) {
        const std::size_t C = ln.weight.size();
        for (int t = 0; t < n; ++t)
            backend::cpu::layer_norm_row(x + t * C, out + t * C, C, ln.weight.data(), ln.bias.data(), ln.eps);
    }

    // Per sequence: prev[t] = z[t-1], its first row = its shift state; then shift = its last z.
    static void token_shift(Workspace&, const float* z, int C, std::span<const sequence_rows> seqs, float* prev) {
        const auto c = static_cast<std::size_t>(C);
        std::size_t row = 0;
        for (const auto& q : seqs) {
            const auto n = static_cast<std::size_t>(q.rows);
            const float* zq = z + row * c;
            float* pq = prev + row * c;
            std::copy(q.shift, q.shift + c, pq);
            std::copy(zq, zq + (n - 1) * c, pq + c);
            std::copy(zq + (n - 1) * c, zq + n * c, q.shift);
            row += n;
        }
    }

    // out = z·μ + prev·(1-μ) (x052's static mix, μ [C] weighs the current token).
    static void lerp(Workspace&, const float* z, const float* prev, const float* mu, int n, int C, float* out) {
        backend::cpu::elementwise::lerp(z, prev, mu, static_cast<std::size_t>(n), static_cast<std::size_t>(C), out);
    }

    // out = z + (prev - z)·m (x060's difference mix, m [C] weighs the difference).
    static void mix(Workspace&, const float* z, const float* prev, const float* m, int n, int C, float* out) {
        backend::cpu::elementwise::mix(z, prev, m, static_cast<std::size_t>(n), static_cast<std::size_t>(C), out);
    }

    // x060 data-dependent token shift (spec 4.4): δ = prev - z, zx = z + δ·m_x,
    // q = tanh(zx·W1) viewed as 5 slots of Dm, z_s = z + δ·(m_s + q_s·W2_s) for s = w k v r g.
    // W1 is time_maa_w1ᵀ [5 Dm][C], W2[s] is time_maa_w2[s]ᵀ [C][Dm]; out[s] are [n][C].
    static void ddlerp(Workspace& ws, const float* z, const float* prev, int n, int C, const float* maa_x,
                       const Weight& W1, const Weight* W2, const std::vector<float>* maa, float* const* out) {
        const auto c = static_cast<std::size_t>(C);
        const auto Dm = static_cast<std::size_t>(W2[0].cols);
        float* zx = out[0];  // z_w is written last, after the LoRA has consumed zx
        mix(ws, z, prev, maa_x, n, C, zx);
        project(ws, W1, zx, n, ws.lora_mix.data());
        tanh(ws, ws.lora_mix.data(), static_cast<std::size_t>(n) * 5 * Dm);
        if (n == 1) {
            project_many(ws,
                         {{&W2[0], ws.lora_mix.data(), out[0]},
                          {&W2[1], ws.lora_mix.data() + Dm, out[1]},
                          {&W2[2], ws.lora_mix.data() + 2 * Dm, out[2]},
                          {&W2[3], ws.lora_mix.data() + 3 * Dm, out[3]},
                          {&W2[4], ws.lora_mix.data() + 4 * Dm, out[4]}},
                         1);
        } else {
            for (int s = 0; s < 5; ++s) {  // slot s of q is a column slice: gather it into rows
                for (int t = 0; t < n; ++t)
                    std::copy_n(ws.lora_mix.data() + static_cast<std::size_t>(t) * 5 * Dm + s * Dm, Dm,
                                ws.lora_slot.data() + static_cast<std::size_t>(t) * Dm);
                project(ws, W2[s], ws.lora_slot.data(), n, out[s]);
            }
        }
        for (int s = 0; s < 5; ++s)
            backend::cpu::elementwise::mix_lora(z, prev, maa[s].data(), static_cast<std::size_t>(n), c, out[s]);
    }

    // x060 decay (spec 4.4): in: w = the decay LoRA's output [n][A]; out: λ = -exp(d + w) in
    // log_w and w = exp(λ), both fp32 (never rounded below: pitfall 3).
    static void decay(Workspace&, const float* d, int n, int A, float* w, float* log_w) {
        backend::cpu::elementwise::decay(d, static_cast<std::size_t>(n), static_cast<std::size_t>(A), w, log_w);
    }

    // Y[n][W.rows] = X[n][W.cols]·Wᵀ. One row, or rows that are each another sequence's single
    // token (ws.one_token_rows, batched decoding): the mat-vec, every row bit for bit what a
    // single-token forward computes; several tokens of a sequence (prefill): the GEMM.
    static void project(Workspace& ws, const Weight& W, const float* X, int n, float* Y) {
        using namespace backend::cpu;
        if (viewable_as<float>(W)) return typed<float>(ws, W, X, n, Y);
        if (viewable_as<bfloat16>(W)) return typed<bfloat16>(ws, W, X, n, Y);
        if (viewable_as<half>(W)) return typed<half>(ws, W, X, n, Y);
        if (quant_kernel_format(W)) {  // block formats: in-register dequantization (matvec_quant.hpp)
            // int8_decode (Model::set_int8_activations, opt-in): activations quantized to int8.
            if ((n == 1 || ws.one_token_rows) && ws.int8_decode && q8act_kernel_format(W))
                return q8act_matvec_batch(W, X, n, Y, ws.pool, ws.q8act);
            if (n == 1) return qmatvec(W, X, Y, ws.pool);
            if (ws.one_token_rows) return qmatvec_batch(W, X, n, Y, ws.pool);
            return qgemm(W, X, n, Y, ws.pool, ws.tiles);
        }
        project_decoded(W, X, n, Y, ws.pool, ws.tiles);
    }

    struct product {
        const Weight* W;
        const float* X;
        float* Y;
    };

    // Several independent products of n rows. Mat-vecs (as in project) of one weight format: one
    // pool dispatch (one barrier) for all of them.
    static void project_many(Workspace& ws, std::initializer_list<product> jobs, int n) {
        if ((n == 1 || ws.one_token_rows) && jobs.size() <= 8) {
            if (same_format<float>(jobs)) return matvec_group<float>(ws, jobs, n);
            if (same_format<bfloat16>(jobs)) return matvec_group<bfloat16>(ws, jobs, n);
            if (same_format<half>(jobs)) return matvec_group<half>(ws, jobs, n);
            if (n == 1 && all_block_formats(jobs)) return qmatvec_group(ws, jobs);
        }
        for (const auto& j : jobs) project(ws, *j.W, j.X, n, j.Y);
    }

    // The elementwise ops run explicit SIMD (elementwise.hpp), whatever the user's flags.
    static void tanh(Workspace&, float* x, std::size_t count) { backend::cpu::elementwise::tanh(x, count); }

    static void silu(Workspace&, float* x, std::size_t count) { backend::cpu::elementwise::silu(x, count); }

    static void relu_sq(Workspace&, float* x, std::size_t count) { backend::cpu::elementwise::relu_sq(x, count); }

    // The WKV inputs, rows of A = n_head·head_size for every sequence in turn: decay w = exp(λ)
    // and λ itself with row stride w_stride (0: one row for every token, x052's static decay).
    struct wkv_args {
        int n_head, head_size;
        const float *r, *k, *v, *w, *log_w;
        std::size_t w_stride;
        const float* u;                       // bonus [A]
        float* y;                             // [rows][A], written
        std::span<const sequence_rows> seqs;  // rows and WKV state S [n_head][N key][N value] of each
    };

    static void wkv(Workspace& ws, const wkv_args& a) {
        using namespace backend::cpu;
        const int threads = ws.pool ? ws.pool->size() : 1;
        if (ws.chunked_wkv && ws.wkv_scratch.size() < static_cast<std::size_t>(threads))
            ws.wkv_scratch.resize(static_cast<std::size_t>(threads));
        if (a.seqs.size() == 1) {
            const int n = a.seqs[0].rows;
            if (n == 1) {  // the fused SIMD step over all heads (a few µs; not worth a dispatch)
                wkv_step(a.n_head, a.head_size, a.r, a.k, a.v, a.w, a.u, a.seqs[0].S, a.y);
                return;
            }
            // Heads are independent: each thread takes a range of heads through all n tokens.
            parallel(ws.pool, [&](int t, int nt) {
                const int h0 = a.n_head * t / nt, h1 = a.n_head * (t + 1) / nt;
                if (h0 < h1) wkv_rows(ws, a, t, 0, n, a.seqs[0].S, h0, h1);
            });
            return;
        }
        // Several sequences (batched decoding / prefill): each thread takes whole sequences.
        parallel(ws.pool, [&](int t, int nt) {
            std::size_t row = 0;
            for (std::size_t q = 0; q < a.seqs.size(); ++q) {
                if (static_cast<int>(q % static_cast<std::size_t>(nt)) == t)
                    wkv_rows(ws, a, t, row, a.seqs[q].rows, a.seqs[q].S, 0, a.n_head);
                row += static_cast<std::size_t>(a.seqs[q].rows);
            }
        });
    }

    // y[t] = GroupNorm(y[t])·g[t] for n rows of A.
    static void group_norm_gate(Workspace&, const GroupNorm& gn, float* y, const float* g, int n) {
        const std::size_t A = gn.weight.size();
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            backend::cpu::group_norm_row(y + t * A, A, gn.groups, gn.weight.data(), gn.bias.data(), gn.eps, g + t * A);
    }

    // x += sigmoid(r)·v.
    static void sigmoid_gate_add(Workspace&, float* x, const float* r, const float* v, std::size_t count) {
        backend::cpu::elementwise::sigmoid_gate_add(x, r, v, count);
    }

    static void residual_add(Workspace&, float* x, const float* y, std::size_t count) {
        backend::cpu::elementwise::add(x, y, count);
    }

    // logits[t] = head · LN(x[t]; ln_out) for n rows (z: scratch [n][C]).
    static void head(Workspace& ws, const LayerNorm& ln_out, const Weight& head_w, const float* x, int n, float* z,
                     float* logits) {
        layer_norm(ws, ln_out, x, z, n);
        project(ws, head_w, z, n, logits);
    }

private:
    // Heads [h0, h1) of `n` rows starting at row `row0`, state S, on thread `t` (for its scratch).
    static void wkv_rows(Workspace& ws, const wkv_args& a, int t, std::size_t row0, int n, float* S, int h0, int h1) {
        using namespace backend::cpu;
        const auto N = static_cast<std::size_t>(a.head_size);
        const std::size_t A = static_cast<std::size_t>(a.n_head) * N, off = static_cast<std::size_t>(h0) * N;
        const float *r = a.r + row0 * A, *k = a.k + row0 * A, *v = a.v + row0 * A;
        const float *w = a.w + row0 * a.w_stride, *lw = a.log_w + row0 * a.w_stride;
        float* y = a.y + row0 * A;
        if (ws.chunked_wkv && n > 1) {
            auto& scratch = ws.wkv_scratch[static_cast<std::size_t>(t)];
            const std::size_t need = wkv_chunked_scratch_floats(a.head_size);
            if (scratch.size() < need) scratch.resize(need);
            wkv_chunked_heads(h0, h1, a.n_head, a.head_size, n, r, k, v, lw, a.w_stride, a.u, S, y, scratch.data());
            return;
        }
        for (int tok = 0; tok < n; ++tok) {
            const std::size_t o = static_cast<std::size_t>(tok) * A + off;
            wkv_step(h1 - h0, a.head_size, r + o, k + o, v + o, w + static_cast<std::size_t>(tok) * a.w_stride + off,
                     a.u + off, S + off * N, y + o);
        }
    }

    template <class T>
    static void typed(Workspace& ws, const Weight& W, const float* X, int n, float* Y) {
        using namespace backend::cpu;
        const Matrix<T> M = view<T>(W);
        if (n == 1 || ws.one_token_rows) {
            // bf16_decode (Model::set_bf16_activations, opt-in): activations rounded to bf16, vdpbf16ps.
            if constexpr (std::is_same_v<T, bfloat16>)
                if (ws.bf16_decode) return matvec_bf16_batch(M, X, n, Y, ws.pool, ws.bf16_packed);
            return matvec_batch(M, X, n, Y, ws.pool);
        }
        // bf16_prefill (Model::set_bf16_prefill, opt-in) rounds activations to bf16 for bf16 weights.
        gemm(M, X, n, Y, ws.pool, ws.tiles, ws.bf16_prefill ? GemmPrecision::bf16_activations : GemmPrecision::fp32);
    }

    template <class T>
    static bool same_format(std::initializer_list<product> jobs) {
        for (const auto& j : jobs)
            if (!backend::cpu::viewable_as<T>(*j.W)) return false;
        return true;
    }

    static bool all_block_formats(std::initializer_list<product> jobs) {
        for (const auto& j : jobs)
            if (!backend::cpu::quant_kernel_format(*j.W)) return false;
        return true;
    }

    // Block formats may differ between the products (K-quant mixes): one dispatch still.
    static void qmatvec_group(Workspace& ws, std::initializer_list<product> jobs) {
        backend::cpu::QMatvecJob j[8];
        std::size_t i = 0;
        for (const auto& p : jobs) j[i++] = {p.W, p.X, p.Y};
        if (ws.int8_decode)  // Model::set_int8_activations (opt-in)
            return backend::cpu::q8act_many(std::span<const backend::cpu::QMatvecJob>(j, i), ws.pool, ws.q8act);
        backend::cpu::qmatvec_many(std::span<const backend::cpu::QMatvecJob>(j, i), ws.pool);
    }

    template <class T>
    static void matvec_group(Workspace& ws, std::initializer_list<product> jobs, int n) {
        if constexpr (std::is_same_v<T, bfloat16>)
            if (ws.bf16_decode) return matvec_bf16_group(ws, jobs, n);
        Matrix<T> m[8];
        backend::cpu::MatvecJob<T> j[8];
        std::size_t i = 0;
        for (const auto& p : jobs) {
            m[i] = backend::cpu::view<T>(*p.W);
            j[i] = {&m[i], p.X, p.Y, n};
            ++i;
        }
        backend::cpu::matvec_many(std::span<const backend::cpu::MatvecJob<T>>(j, i), ws.pool);
    }

    static void matvec_bf16_group(Workspace& ws, std::initializer_list<product> jobs, int n) {
        Matrix<bfloat16> m[8];
        backend::cpu::MatvecBf16Job j[8];
        std::size_t i = 0;
        for (const auto& p : jobs) {
            m[i] = backend::cpu::view<bfloat16>(*p.W);
            j[i] = {&m[i], p.X, p.Y, n};
            ++i;
        }
        backend::cpu::matvec_bf16_many(std::span<const backend::cpu::MatvecBf16Job>(j, i), ws.pool, ws.bf16_packed);
    }
};

}  // namespace rwkv
