#pragma once
// backend_ops<rwkv::cuda>: the op vocabulary on an NVIDIA GPU. Activations are device rows of
// fp32 in the per-state Workspace; weights are device matrices (dmat) in the model's type.
// Every op only enqueues work on the workspace's stream (nothing synchronises), so the decode
// step can be captured into a CUDA graph. The ops are the CPU vocabulary with the fusions a GPU
// wants: LayerNorm + token shift + mixes in one kernel, activations and residual adds as
// epilogues of the products, GroupNorm × gate inside the token-loop WKV.
//
// Products: up to mv_max_cols activation rows run the streaming mat-vec kernel (weights read once
// from HBM; exact fp32 math on the exactly widened weights). More rows run cuBLAS: fp32 weights
// as an fp32 GEMM (never TF32); bf16 / fp16 weights either exactly (bands of rows widened to fp32,
// then an fp32 GEMM: the default, same results as the CPU up to summation order) or, opt-in
// (Model::set_bf16_prefill), as one tensor-core GEMM on activations rounded to the weight type
// with fp32 accumulation (what the speed targets are stated for; logits move by ~1e-2).

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "../../backend.hpp"
#include "../../config.hpp"
#include "../../error.hpp"
#include "../../scalar.hpp"
#include "../workspace.hpp"
#include "kernels.cuh"
#include "math.hpp"
#include "runtime.cuh"

namespace rwkv {
namespace backend::gpu {

template <class T>
constexpr wtype wtype_of() {
    if constexpr (std::is_same_v<T, float>) return wtype::f32;
    else if constexpr (std::is_same_v<T, bfloat16>) return wtype::bf16;
    else return wtype::f16;
}

inline std::size_t wtype_bytes(wtype t) { return t == wtype::f32 ? 4 : 2; }

// A weight matrix on the device: [rows][cols] row-major with `ld` elements between rows (a
// multiple of 16 bytes, padding zeroed), so every row starts 16-byte aligned.
struct dmat {
    wtype type = wtype::f32;
    const void* data = nullptr;
    int rows = 0, cols = 0;
    std::size_t ld = 0;

    static std::size_t ld_for(wtype t, int cols) {
        const std::size_t per16 = 16 / wtype_bytes(t);
        return (static_cast<std::size_t>(cols) + per16 - 1) / per16 * per16;
    }
    std::size_t bytes() const { return static_cast<std::size_t>(rows) * ld * wtype_bytes(type); }
};

// Per-state scratch of the CUDA backend: the stream the state's work runs on, its cuBLAS handle,
// the activation rows on the device, the per-round tables (host copies pinned, so the copies can
// be captured into a graph), and the captured decode graphs. Not part of the state's value.
struct Workspace {
    int rows = 0;      // activation rows the buffers hold
    int out_rows = 0;  // logit rows the logits buffers hold
    Config shape{};    // the model shape the buffers were sized for
    bool fast_gemm = false;
    bool chunked_wkv = true;

    stream s;
    std::unique_ptr<blas_handle> blas;

    device_buffer arena;  // the activation rows below
    float *x = nullptr, *z = nullptr, *prev = nullptr, *mix[5] = {}, *lora_mix = nullptr, *lora_decay = nullptr;
    float *r = nullptr, *k = nullptr, *v = nullptr, *g = nullptr, *w = nullptr, *log_w = nullptr, *y = nullptr;
    float *ffn_k = nullptr, *ffn_r = nullptr, *last_x = nullptr, *head_z = nullptr, *tmp = nullptr;
    device_buffer logits_d;  // [out_rows][V]
    device_buffer wide;      // a band of widened weight rows (exact 16-bit GEMMs)
    device_buffer act16;     // activations rounded to 16 bits (fast GEMMs)
    device_buffer tables_d;  // tokens [rows], row_info [rows], seq_info [rows], gather [rows]
    pinned_buffer tables_h;  // the same, on the host
    pinned_buffer logits_h;  // [B][V] the host logits a forward call returns
    int* tokens_d = nullptr;
    row_info* rows_d = nullptr;
    seq_info* seqs_d = nullptr;
    int* gather_d = nullptr;
    int* tokens_h = nullptr;
    row_info* rows_h = nullptr;
    seq_info* seqs_h = nullptr;
    int* gather_h = nullptr;

    // Captured decode steps, keyed by the round's shape (see Model<T, cuda>).
    struct captured {
        std::uint64_t key = 0;
        int seen = 0;  // eager runs so far; captured on the second
        graph_exec exec;
    };
    std::vector<captured> graphs;
    std::vector<detail::batch_part> parts;  // the round being run (Model<T, cuda>)

    cublasHandle_t cublas() {
        if (!blas) blas = std::make_unique<blas_handle>(s.get());
        return blas->get();
    }

    // Grows the buffers for n_rows activation rows and out logit rows of model shape c. Never
    // called while a graph is being captured (it may allocate); when it reallocates, captured
    // graphs (which hold the old pointers) are dropped.
    void reserve(const Config& c, int n_rows, int out) {
        const bool same_shape = shape == c;
        if (!same_shape || n_rows > rows) {
            const auto C = static_cast<std::size_t>(c.n_embd), A = static_cast<std::size_t>(c.dim_att),
                       F = static_cast<std::size_t>(c.dim_ffn);
            const auto Dm = static_cast<std::size_t>(c.dim_lora_mix), Dw = static_cast<std::size_t>(c.dim_lora_decay);
            const std::size_t n = static_cast<std::size_t>(std::max(n_rows, rows));
            const std::size_t widest = std::max({C, A, F, 5 * Dm, Dw});
            std::size_t total = 0;
            auto take = [&](std::size_t floats) {
                const std::size_t at = total;
                total += (floats + 63) / 64 * 64;  // 256-byte aligned rows
                return at;
            };
            std::size_t off[26];
            int i = 0;
            for (int b = 0; b < 3; ++b) off[i++] = take(n * C);  // x z prev
            for (int b = 0; b < 5; ++b) off[i++] = take(n * C);  // mix
            off[i++] = take(n * 5 * Dm);                         // lora_mix
            off[i++] = take(n * Dw);                             // lora_decay
            for (int b = 0; b < 7; ++b) off[i++] = take(n * A);  // r k v g w log_w y
            off[i++] = take(n * F);                              // ffn_k
            off[i++] = take(n * C);                              // ffn_r
            off[i++] = take(n * C);                              // last_x
            off[i++] = take(n * C);                              // head_z
            off[i++] = take(n * widest);                         // tmp
            arena.resize(total * sizeof(float));                 // never read before written
            float* base = arena.as<float>();
            i = 0;
            for (float** p : {&x, &z, &prev}) *p = base + off[i++];
            for (auto& m : mix) m = base + off[i++];
            lora_mix = base + off[i++];
            lora_decay = base + off[i++];
            for (float** p : {&r, &k, &v, &g, &w, &log_w, &y}) *p = base + off[i++];
            ffn_k = base + off[i++];
            ffn_r = base + off[i++];
            last_x = base + off[i++];
            head_z = base + off[i++];
            tmp = base + off[i++];
            // Tables: tokens, row_info, seq_info, gather rows, for n rows each.
            const std::size_t tb = n * (sizeof(int) + sizeof(row_info) + sizeof(seq_info) + sizeof(int)) + 64;
            tables_d.resize(tb);
            tables_h.reserve(tb);
            auto carve = [n](auto* base_ptr, auto*& tok, auto*& rws, auto*& sqs, auto*& gth) {
                char* p = reinterpret_cast<char*>(base_ptr);
                sqs = reinterpret_cast<seq_info*>(p);  // pointers first: 8-byte aligned
                p += n * sizeof(seq_info);
                tok = reinterpret_cast<int*>(p);
                p += n * sizeof(int);
                rws = reinterpret_cast<row_info*>(p);
                p += n * sizeof(row_info);
                gth = reinterpret_cast<int*>(p);
            };
            carve(tables_d.data(), tokens_d, rows_d, seqs_d, gather_d);
            carve(tables_h.as<char>(), tokens_h, rows_h, seqs_h, gather_h);
            rows = static_cast<int>(n);
            shape = c;
            graphs.clear();
        }
        if (out > out_rows || !same_shape) {
            const int o = std::max(out, same_shape ? out_rows : 0);
            const std::size_t bytes = static_cast<std::size_t>(o) * static_cast<std::size_t>(c.vocab_size) * 4;
            logits_d.resize(bytes);
            out_rows = o;
            graphs.clear();
        }
    }
};

}  // namespace backend::gpu

template <>
struct backend_ops<cuda> {
    using Workspace = backend::gpu::Workspace;
    using dmat = backend::gpu::dmat;
    using epilogue = backend::gpu::epilogue;
    using epilogue_args = backend::gpu::epilogue_args;
    using wtype = backend::gpu::wtype;

    static unsigned grid_for(std::size_t work, unsigned per_block = 256) {
        const auto& d = backend::gpu::device_info::current();
        const unsigned cap = static_cast<unsigned>(std::max(1, d.sm_count) * 32);
        return std::min(backend::gpu::blocks_for(work, per_block), cap);
    }

    // x[t] = decode(emb[tokens[t]]) for n tokens (device ids, checked by the model).
    static void embed(Workspace& ws, const dmat& emb, const int* tokens, int n, float* x) {
        using namespace backend::gpu;
        const std::size_t work = static_cast<std::size_t>(n) * static_cast<std::size_t>(emb.cols);
        switch (emb.type) {
            case wtype::f32:
                embed_kernel<wtype::f32>
                    <<<grid_for(work), 256, 0, ws.s.get()>>>(emb.data, emb.ld, emb.cols, tokens, n, x);
                break;
            case wtype::bf16:
                embed_kernel<wtype::bf16>
                    <<<grid_for(work), 256, 0, ws.s.get()>>>(emb.data, emb.ld, emb.cols, tokens, n, x);
                break;
            case wtype::f16:
                embed_kernel<wtype::f16>
                    <<<grid_for(work), 256, 0, ws.s.get()>>>(emb.data, emb.ld, emb.cols, tokens, n, x);
                break;
        }
        RWKV_CUDA_LAUNCHED("embed_kernel");
    }

    // out[t] = LN(x[t]) for n rows of C; out may alias x.
    static void layer_norm(Workspace& ws, const float* w, const float* b, float eps, const float* x, float* out, int n,
                           int C) {
        if (n <= 0) return;
        backend::gpu::layer_norm_kernel<<<static_cast<unsigned>(n), 256, 0, ws.s.get()>>>(x, out, C, w, b, eps);
        RWKV_CUDA_LAUNCHED("layer_norm_kernel");
    }

    // LayerNorm + token shift + mixes (kernels.cuh) for n rows.
    static void ln_shift_mix(Workspace& ws, const backend::gpu::shift_mix_params& p, int n) {
        if (p.count > 5) throw error("cuda ln_shift_mix: at most 5 mixed outputs");
        backend::gpu::ln_shift_mix_kernel<<<static_cast<unsigned>(n), 256, 0, ws.s.get()>>>(p);
        RWKV_CUDA_LAUNCHED("ln_shift_mix_kernel");
    }

    // Y[t][o] = epilogue(W·X[t]) for n rows; X rows ldx floats apart, Y rows ldy.
    struct product {
        const dmat* W = nullptr;
        const float* X = nullptr;
        std::size_t ldx = 0;
        float* Y = nullptr;
        std::size_t ldy = 0;
        epilogue epi = epilogue::none;
        epilogue_args ep{};
    };

    static void project(Workspace& ws, const product& p, int n) { project_many(ws, {p}, n); }

    // Several independent products of the same n rows: one mat-vec launch for all of them when
    // n ≤ mv_max_cols and they share a weight type, else one GEMM each.
    static void project_many(Workspace& ws, std::initializer_list<product> jobs, int n) {
        using namespace backend::gpu;
        if (n <= 0 || jobs.size() == 0) return;
        for (const auto& j : jobs) check_product(j, n);
        bool same = true;
        for (const auto& j : jobs) same = same && j.W->type == jobs.begin()->W->type;
        if (n <= mv_max_cols && same && jobs.size() <= static_cast<std::size_t>(mv_max_jobs)) {
            matvec(ws, jobs, n);
            return;
        }
        for (const auto& j : jobs) {
            if (n <= mv_max_cols) matvec(ws, {j}, n);
            else gemm(ws, j, n);
        }
    }

    // Picks the WKV kernel: chunked for long spans (when enabled), else token by token with the
    // state column in registers (N ≤ 128) or in memory. Returns true when ln_x and the gate were
    // applied too (the token-loop kernel fuses them; the chunked one leaves y raw).
    static bool wkv(Workspace& ws, const backend::gpu::wkv_params& p, int n_seqs, int max_rows) {
        using namespace backend::gpu;
        if (p.N < 1 || p.N > 1024)
            throw error("cuda backend: head_size " + std::to_string(p.N) + " is not supported (1..1024)");
        const auto& d = device_info::current();
        if (ws.chunked_wkv && max_rows >= 2 * wkv_chunk_len) {
            const std::size_t smem = wkv_chunk_smem(p.N);
            if (smem <= static_cast<std::size_t>(d.max_smem_optin)) {
                if (smem > 48 * 1024)
                    RWKV_CUDA_CHECK(cudaFuncSetAttribute(wkv_chunk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         static_cast<int>(smem)));
                wkv_params q = p;
                q.gn_w = q.gn_b = q.gate = nullptr;
                const dim3 grid(static_cast<unsigned>(p.n_head),
                                static_cast<unsigned>((p.N + wkv_chunk_cols - 1) / wkv_chunk_cols),
                                static_cast<unsigned>(n_seqs));
                wkv_chunk_kernel<<<grid, 256, smem, ws.s.get()>>>(q);
                RWKV_CUDA_LAUNCHED("wkv_chunk_kernel");
                return false;
            }
        }
        const dim3 grid(static_cast<unsigned>(p.n_head), static_cast<unsigned>(n_seqs));
        const unsigned threads = static_cast<unsigned>((p.N + 31) / 32 * 32);
        const std::size_t smem = wkv_seq_smem(p.N);
        if (p.N <= 64) wkv_seq_kernel<64><<<grid, threads, smem, ws.s.get()>>>(p);
        else if (p.N <= 128) wkv_seq_kernel<128><<<grid, threads, smem, ws.s.get()>>>(p);
        else wkv_seq_kernel<0><<<grid, threads, smem, ws.s.get()>>>(p);
        RWKV_CUDA_LAUNCHED("wkv_seq_kernel");
        return p.gn_w != nullptr;
    }

    // y = GroupNorm(y)·g for n rows of groups·N.
    static void group_norm_gate(Workspace& ws, float* y, const float* g, int n, int groups, int N, const float* w,
                                const float* b, float eps) {
        const std::size_t warps = static_cast<std::size_t>(n) * static_cast<std::size_t>(groups);
        backend::gpu::group_norm_gate_kernel<<<grid_for(warps * 32), 256, 0, ws.s.get()>>>(y, g, n, groups, N, w, b,
                                                                                           eps);
        RWKV_CUDA_LAUNCHED("group_norm_gate_kernel");
    }

    // out[i] = X[src_rows[i]] for `count` rows of C (src_rows on the device).
    static void gather_rows(Workspace& ws, const float* X, int C, const int* src_rows, int count, float* out) {
        backend::gpu::gather_rows_kernel<<<grid_for(static_cast<std::size_t>(count) * C), 256, 0, ws.s.get()>>>(
            X, C, src_rows, count, out);
        RWKV_CUDA_LAUNCHED("gather_rows_kernel");
    }

private:
    static void check_product(const product& j, int n) {
        if (!j.W || !j.W->data || !j.X || !j.Y)
            throw error("cuda project: null weight, input or output (internal error)");
        if (j.ldx < static_cast<std::size_t>(j.W->cols) || (n > 1 && j.ldy < static_cast<std::size_t>(j.W->rows)))
            throw error("cuda project: row strides " + std::to_string(j.ldx) + " / " + std::to_string(j.ldy) +
                        " too small for a " + std::to_string(j.W->rows) + "x" + std::to_string(j.W->cols) +
                        " weight (internal error)");
    }

    static void matvec(Workspace& ws, std::initializer_list<product> jobs, int n) {
        using namespace backend::gpu;
        mv_batch b;
        b.n = n;
        for (const auto& j : jobs) {
            mv_job& q = b.job[b.count++];
            q.W = j.W->data;
            q.ldw = j.W->ld;
            q.rows = j.W->rows;
            q.cols = j.W->cols;
            q.X = j.X;
            q.ldx = j.ldx;
            q.Y = j.Y;
            q.ldy = j.ldy;
            q.epi = j.epi;
            q.ep = j.ep;
            q.ep.ld = j.ldy;
            q.row_begin = b.total_rows;
            q.xvec = reinterpret_cast<std::uintptr_t>(j.X) % 16 == 0 && (n == 1 || j.ldx % 4 == 0);
            b.total_rows += j.W->rows;
        }
        const auto& d = device_info::current();
        const unsigned warps_per_block = 8;
        const unsigned blocks = std::min(blocks_for(static_cast<std::size_t>(b.total_rows), warps_per_block),
                                         static_cast<unsigned>(std::max(1, d.sm_count) * 16));
        const wtype t = jobs.begin()->W->type;
        cudaStream_t s = ws.s.get();
        if (n == 1) {
            if (t == wtype::f32) matvec_kernel<wtype::f32, 1><<<blocks, 256, 0, s>>>(b);
            else if (t == wtype::bf16) matvec_kernel<wtype::bf16, 1><<<blocks, 256, 0, s>>>(b);
            else matvec_kernel<wtype::f16, 1><<<blocks, 256, 0, s>>>(b);
        } else {
            if (t == wtype::f32) matvec_kernel<wtype::f32, mv_max_cols><<<blocks, 256, 0, s>>>(b);
            else if (t == wtype::bf16) matvec_kernel<wtype::bf16, mv_max_cols><<<blocks, 256, 0, s>>>(b);
            else matvec_kernel<wtype::f16, mv_max_cols><<<blocks, 256, 0, s>>>(b);
        }
        RWKV_CUDA_LAUNCHED("matvec_kernel");
    }

    // Y = epilogue(X·Wᵀ) through cuBLAS. Row-major Y [n][rows] is column-major rows×n, so
    // Y = op(W)ᵀ·X with W seen as column-major ld×rows: gemm(T, N, m = rows, n, k = cols).
    static void gemm(Workspace& ws, const product& j, int n) {
        using namespace backend::gpu;
        const dmat& W = *j.W;
        const bool direct = j.epi == epilogue::none || j.epi == epilogue::add;
        float* out = direct ? j.Y : ws.tmp;
        const int ldo = direct ? static_cast<int>(j.ldy) : W.rows;
        const float one = 1.0f, beta = j.epi == epilogue::add ? 1.0f : 0.0f;
        cublasHandle_t h = ws.cublas();
        cudaStream_t s = ws.s.get();
        if (W.type == wtype::f32) {
            RWKV_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, n, W.cols, &one, W.data, CUDA_R_32F,
                                           static_cast<int>(W.ld), j.X, CUDA_R_32F, static_cast<int>(j.ldx), &beta, out,
                                           CUDA_R_32F, ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        } else if (ws.fast_gemm) {
            // Activations rounded to the weight type; tensor cores, fp32 accumulation.
            const std::size_t cols = static_cast<std::size_t>(W.cols);
            ws.act16.reserve(static_cast<std::size_t>(n) * cols * 2);
            auto* x16 = ws.act16.as<std::uint16_t>();
            const std::size_t work = static_cast<std::size_t>(n) * cols;
            if (W.type == wtype::bf16)
                round_kernel<wtype::bf16><<<grid_for(work), 256, 0, s>>>(j.X, j.ldx, n, W.cols, x16);
            else round_kernel<wtype::f16><<<grid_for(work), 256, 0, s>>>(j.X, j.ldx, n, W.cols, x16);
            RWKV_CUDA_LAUNCHED("round_kernel");
            const cudaDataType_t dt = W.type == wtype::bf16 ? CUDA_R_16BF : CUDA_R_16F;
            RWKV_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, n, W.cols, &one, W.data, dt,
                                           static_cast<int>(W.ld), x16, dt, W.cols, &beta, out, CUDA_R_32F, ldo,
                                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        } else {
            // Exact: bands of rows widened to fp32 (at most 16 M floats), one fp32 GEMM each.
            const std::size_t cols = static_cast<std::size_t>(W.cols);
            const int band = static_cast<int>(std::max<std::size_t>(
                1, std::min<std::size_t>(static_cast<std::size_t>(W.rows), (std::size_t{16} << 20) / cols)));
            ws.wide.reserve(static_cast<std::size_t>(band) * cols * sizeof(float));
            float* wf = ws.wide.as<float>();
            for (int r0 = 0; r0 < W.rows; r0 += band) {
                const int cnt = std::min(band, W.rows - r0);
                const std::size_t work = static_cast<std::size_t>(cnt) * cols;
                if (W.type == wtype::bf16)
                    widen_kernel<wtype::bf16><<<grid_for(work), 256, 0, s>>>(W.data, W.ld, r0, cnt, W.cols, wf);
                else widen_kernel<wtype::f16><<<grid_for(work), 256, 0, s>>>(W.data, W.ld, r0, cnt, W.cols, wf);
                RWKV_CUDA_LAUNCHED("widen_kernel");
                RWKV_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, cnt, n, W.cols, &one, wf, CUDA_R_32F,
                                               W.cols, j.X, CUDA_R_32F, static_cast<int>(j.ldx), &beta, out + r0,
                                               CUDA_R_32F, ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            }
        }
        if (!direct) {
            epilogue_args ep = j.ep;
            ep.ld = j.ldy;
            epilogue_kernel<<<grid_for(static_cast<std::size_t>(n) * W.rows), 256, 0, s>>>(ws.tmp, n, W.rows, j.Y,
                                                                                           j.ldy, j.epi, ep);
            RWKV_CUDA_LAUNCHED("epilogue_kernel");
        }
    }
};

}  // namespace rwkv
