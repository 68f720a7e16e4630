#pragma once
// The CUDA kernels of the backend. A header-only library: the kernels that are not templates
// are `static` (internal linkage), so several .cu files of one program may include it. Each computes its values with
// the __host__ __device__ functions of math.hpp (tested on the CPU against the reference ops); what is here is the
// mapping onto threads, the reductions and the memory movement. Every kernel takes any shape:
// grid-stride loops or grids computed from the shape, no assumption that a width is a multiple
// of a block or vector size (vector loads only where the host checked alignment).

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "math.hpp"

namespace rwkv::backend::gpu {

// ---- per-round tables: which sequence each activation row belongs to

// One sequence of a round: its rows [row0, row0 + rows) and the base of its state on the device
// (the CPU State's layout: per layer att shift [C], WKV [H][N][N], ffn shift [C]).
struct seq_info {
    int row0 = 0;
    int rows = 0;
    float* base = nullptr;
};

// Per activation row: its sequence (index into the seq_info table).
struct row_info {
    int seq = 0;
};

// ---- reductions

__device__ inline double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ inline float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Sum of v over the block (every thread must call it; `red` holds 33 doubles of shared memory).
__device__ inline double block_sum(double v, double* red) {
    const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
    const int warps = static_cast<int>((blockDim.x + 31) / 32);
    v = warp_sum(v);
    __syncthreads();  // red may still be read from a previous call
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double s = lane < warps ? red[lane] : 0.0;
        s = warp_sum(s);
        if (lane == 0) red[32] = s;
    }
    __syncthreads();
    return red[32];
}

// Mean and 1/sqrt(var + eps) of one row of C values (two passes: large offsets do not cancel).
__device__ inline void row_stats(const float* x, int C, float eps, double* red, float& mean, float& inv) {
    float part = 0.0f;
    for (int c = static_cast<int>(threadIdx.x); c < C; c += static_cast<int>(blockDim.x)) part += x[c];
    const float m = static_cast<float>(block_sum(part, red) / C);
    float sq = 0.0f;
    for (int c = static_cast<int>(threadIdx.x); c < C; c += static_cast<int>(blockDim.x)) {
        const float d = x[c] - m;
        sq += d * d;
    }
    const double var = block_sum(sq, red) / C;
    mean = m;
    inv = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
}

// ---- embedding and LayerNorm

template <wtype W>
__global__ void embed_kernel(const void* emb, std::size_t ld, int C, const int* tokens, int n, float* x) {
    const std::size_t total = static_cast<std::size_t>(n) * static_cast<std::size_t>(C);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t t = i / static_cast<std::size_t>(C), c = i % static_cast<std::size_t>(C);
        const auto row = static_cast<std::size_t>(tokens[t]);
        constexpr std::size_t es = W == wtype::f32 ? 4 : 2;
        x[i] = widen1<W>(static_cast<const char*>(emb) + row * ld * es, c);
    }
}

// out[t] = LN(x[t]); one block per row; out may alias x.
static __global__ void __launch_bounds__(256)
    layer_norm_kernel(const float* x, float* out, int C, const float* w, const float* b, float eps) {
    __shared__ double red[33];
    const std::size_t o = static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(C);
    float mean, inv;
    row_stats(x + o, C, eps, red, mean, inv);
    for (int c = static_cast<int>(threadIdx.x); c < C; c += static_cast<int>(blockDim.x))
        out[o + c] = norm_apply(x[o + c], mean, inv, w[c], b[c]);
}

// LayerNorm, token shift and the mixes of one layer half, fused (one block per row t):
//   z = LN(x[t]); prev = the previous row's LN output in the same sequence, or the sequence's
//   shift state for its first row; then up to five mixed inputs out_s = mix(z, prev, coef_s).
// The block of a sequence's first row also moves the shift state to LN(x[its last row]) (after
// reading it), so no other block touches that state: the LN of a neighbouring row is recomputed
// rather than shared, which keeps the kernel free of inter-block ordering.
struct shift_mix_params {
    const float* x = nullptr;
    int C = 0;
    const float *ln_w = nullptr, *ln_b = nullptr;
    float eps = 1e-5f;
    const row_info* rows = nullptr;
    const seq_info* seqs = nullptr;
    std::size_t shift_offset = 0;  // floats from a state's base to this shift vector
    int count = 0;                 // mixed outputs
    bool lerp = false;             // x052 form (z·μ + prev·(1-μ)) or x060 (z + (prev-z)·m)
    const float* coef[5] = {};
    float* out[5] = {};
    float* z_out = nullptr;     // optional: z
    float* prev_out = nullptr;  // optional: prev
};

static __global__ void __launch_bounds__(256) ln_shift_mix_kernel(const shift_mix_params p) {
    __shared__ double red[33];
    const int t = static_cast<int>(blockIdx.x);
    const seq_info q = p.seqs[p.rows[t].seq];
    const bool first = t == q.row0;
    const int last = q.row0 + q.rows - 1;
    const auto C = static_cast<std::size_t>(p.C);
    const float* xt = p.x + static_cast<std::size_t>(t) * C;
    float m_t, i_t, m_p = 0.0f, i_p = 0.0f, m_l = 0.0f, i_l = 0.0f;
    row_stats(xt, p.C, p.eps, red, m_t, i_t);
    if (!first) row_stats(xt - C, p.C, p.eps, red, m_p, i_p);
    if (first && last != t) row_stats(p.x + static_cast<std::size_t>(last) * C, p.C, p.eps, red, m_l, i_l);
    float* shift = q.base + p.shift_offset;
    for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float z = norm_apply(xt[c], m_t, i_t, p.ln_w[c], p.ln_b[c]);
        const float prev = first ? shift[c] : norm_apply((xt - C)[c], m_p, i_p, p.ln_w[c], p.ln_b[c]);
        const std::size_t o = static_cast<std::size_t>(t) * C + c;
        if (p.z_out) p.z_out[o] = z;
        if (p.prev_out) p.prev_out[o] = prev;
        for (int s = 0; s < p.count; ++s)
            p.out[s][o] = p.lerp ? lerp_mix(z, prev, p.coef[s][c]) : diff_mix(z, prev, p.coef[s][c]);
        if (first)
            shift[c] =
                last == t ? z : norm_apply(p.x[static_cast<std::size_t>(last) * C + c], m_l, i_l, p.ln_w[c], p.ln_b[c]);
    }
}

// ---- products

// One product of a batch of up to five: Y[t][o] = epilogue(Σ_c W[o][c]·X[t][c]) for t < n.
struct mv_job {
    const void* W = nullptr;
    std::size_t ldw = 0;  // elements between rows (a multiple of 16 bytes)
    int rows = 0, cols = 0;
    const float* X = nullptr;
    std::size_t ldx = 0;
    float* Y = nullptr;
    std::size_t ldy = 0;
    epilogue epi = epilogue::none;
    epilogue_args ep;   // ep.ld == ldy
    int row_begin = 0;  // index of this job's first row among all rows of the batch
    bool xvec = false;  // X rows may be read as float4 (16-byte aligned base and stride)
};

inline constexpr int mv_max_jobs = 5;
inline constexpr int mv_max_cols = 8;  // activation rows a mat-vec launch takes (more: GEMM)

struct mv_batch {
    mv_job job[mv_max_jobs];
    int count = 0;
    int total_rows = 0;
    int n = 0;  // activation rows, 1 ≤ n ≤ NB
};

// Decode products, written to stream the weights from HBM once: one warp per output row (all
// jobs' rows in one grid), each lane loading 16 bytes of the row at a time (a warp reads 512
// contiguous bytes per step), widening in registers and multiplying with up to NB activation
// rows; a warp shuffle sums the lanes and lane 0 applies the epilogue.
template <wtype W, int NB>
__global__ void __launch_bounds__(256) matvec_kernel(const mv_batch p) {
    constexpr int E = elems_per_16<W>;
    constexpr std::size_t es = W == wtype::f32 ? 4 : 2;
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const int warp = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    const int warps = static_cast<int>((gridDim.x * blockDim.x) >> 5);
    for (int g = warp; g < p.total_rows; g += warps) {
        int j = 0;
        while (j + 1 < p.count && g >= p.job[j + 1].row_begin) ++j;
        const mv_job& q = p.job[j];
        const int r = g - q.row_begin;
        const char* wrow = static_cast<const char*>(q.W) + static_cast<std::size_t>(r) * q.ldw * es;
        float acc[NB];
        for (int b = 0; b < NB; ++b) acc[b] = 0.0f;
        const int chunks = q.cols / E;
#pragma unroll 4
        for (int c = lane; c < chunks; c += 32) {
            const uint4 u = __ldg(reinterpret_cast<const uint4*>(wrow) + c);
            const std::uint32_t words[4] = {u.x, u.y, u.z, u.w};
            float wf[E];
            widen16<W>(words, wf);
            for (int b = 0; b < NB; ++b) {
                if (b >= p.n) break;
                const float* xb = q.X + static_cast<std::size_t>(b) * q.ldx + static_cast<std::size_t>(c) * E;
                float s = 0.0f;
                if (q.xvec) {
                    for (int e = 0; e < E; e += 4) {
                        const float4 xv = __ldg(reinterpret_cast<const float4*>(xb + e));
                        s += wf[e] * xv.x + wf[e + 1] * xv.y + wf[e + 2] * xv.z + wf[e + 3] * xv.w;
                    }
                } else {
                    for (int e = 0; e < E; ++e) s += wf[e] * xb[e];
                }
                acc[b] += s;
            }
        }
        for (int e = chunks * E + lane; e < q.cols; e += 32) {  // the last partial 16 bytes
            const float wv = widen1<W>(wrow, static_cast<std::size_t>(e));
            for (int b = 0; b < NB; ++b) {
                if (b >= p.n) break;
                acc[b] += wv * q.X[static_cast<std::size_t>(b) * q.ldx + static_cast<std::size_t>(e)];
            }
        }
        for (int b = 0; b < NB; ++b) acc[b] = warp_sum(acc[b]);
        if (lane == 0)
            for (int b = 0; b < NB && b < p.n; ++b)
                apply_epilogue(q.epi, q.ep, static_cast<std::size_t>(b), static_cast<std::size_t>(r), acc[b],
                               q.Y + static_cast<std::size_t>(b) * q.ldy + static_cast<std::size_t>(r));
    }
}

// After a cuBLAS GEMM into `dots` [n][rows]: Y[t][o] = epilogue(dots[t][o]).
static __global__ void __launch_bounds__(256)
    epilogue_kernel(const float* dots, int n, int rows, float* Y, std::size_t ldy, epilogue e, const epilogue_args ep) {
    const std::size_t total = static_cast<std::size_t>(n) * static_cast<std::size_t>(rows);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t t = i / static_cast<std::size_t>(rows), o = i % static_cast<std::size_t>(rows);
        apply_epilogue(e, ep, t, o, dots[i], Y + t * ldy + o);
    }
}

// rows [r0, r0 + count) of a 16-bit weight widened to fp32 [count][cols] (exact prefill GEMMs).
template <wtype W>
__global__ void widen_kernel(const void* Wd, std::size_t ldw, int r0, int count, int cols, float* out) {
    const std::size_t total = static_cast<std::size_t>(count) * static_cast<std::size_t>(cols);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t r = i / static_cast<std::size_t>(cols), c = i % static_cast<std::size_t>(cols);
        out[i] = widen1<W>(static_cast<const char*>(Wd) + (static_cast<std::size_t>(r0) + r) * ldw * 2, c);
    }
}

// Activations rounded to bf16 / fp16 [n][cols] (ld cols) for the opt-in fast tensor-core GEMM.
template <wtype W>
__global__ void round_kernel(const float* X, std::size_t ldx, int n, int cols, std::uint16_t* out) {
    const std::size_t total = static_cast<std::size_t>(n) * static_cast<std::size_t>(cols);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t t = i / static_cast<std::size_t>(cols), c = i % static_cast<std::size_t>(cols);
        const float v = X[t * ldx + c];
        out[i] = W == wtype::bf16 ? round_bf16(v) : round_fp16(v);
    }
}

// ---- WKV

struct wkv_params {
    int n_head = 0, N = 0;
    const float *r = nullptr, *k = nullptr, *v = nullptr, *w = nullptr, *log_w = nullptr;
    std::size_t w_stride = 0;  // floats between tokens' decay rows (0: x052's one static row)
    const float* u = nullptr;
    float* y = nullptr;
    const seq_info* seqs = nullptr;
    std::size_t state_offset = 0;  // floats from a state's base to this layer's WKV matrices
    // GroupNorm ln_x and the gate fused into the token-loop kernel (null: y left raw).
    const float *gn_w = nullptr, *gn_b = nullptr, *gate = nullptr;
    float gn_eps = 64e-5f;
};

// Token by token (spec 4.5; the official rwkv6.cu design): block (h, seq), thread j owns value
// column j of head h with the column in registers (NMAX ≥ N) or in global memory (NMAX = 0),
// every token's r, k, w staged in shared memory. Output and update are one pass. With gn_w set,
// the block also applies GroupNorm to its head's N outputs and multiplies by the gate.
// Launch bounds per instantiation: round32(N) threads, up to 64 / 128 with the column in
// registers, up to 1024 in memory (which then must fit 64 registers a thread).
template <int NMAX>
__global__ void __launch_bounds__(NMAX == 0 ? 1024 : NMAX) wkv_seq_kernel(const wkv_params p) {
    extern __shared__ float sh[];
    __shared__ double red[33];
    const int N = p.N, h = static_cast<int>(blockIdx.x), j = static_cast<int>(threadIdx.x);
    const bool active = j < N;
    const seq_info q = p.seqs[blockIdx.y];
    const std::size_t A = static_cast<std::size_t>(p.n_head) * static_cast<std::size_t>(N);
    const std::size_t ho = static_cast<std::size_t>(h) * static_cast<std::size_t>(N);
    float* S = q.base + p.state_offset + ho * static_cast<std::size_t>(N);
    float *rs = sh, *ks = sh + N, *ws = sh + 2 * N, *us = sh + 3 * N;
    if (active) us[j] = p.u[ho + j];
    float s[NMAX > 0 ? NMAX : 1];
    if constexpr (NMAX > 0) {
#pragma unroll
        for (int i = 0; i < NMAX; ++i) s[i] = (active && i < N) ? S[static_cast<std::size_t>(i) * N + j] : 0.0f;
    }
    for (int t = 0; t < q.rows; ++t) {
        const std::size_t row = static_cast<std::size_t>(q.row0 + t);
        const std::size_t o = row * A + ho;
        __syncthreads();  // the previous token's readers are done with rs ks ws
        if (active) {
            rs[j] = p.r[o + j];
            ks[j] = p.k[o + j];
            ws[j] = p.w[row * p.w_stride + ho + j];
        }
        __syncthreads();
        float y = 0.0f;
        if (active) {
            const float bonus = wkv_bonus(N, rs, us, ks);
            if constexpr (NMAX > 0) y = wkv_column_step<NMAX>(N, rs, ks, ws, bonus, p.v[o + j], s);
            else y = wkv_column_step_mem(N, rs, ks, ws, bonus, p.v[o + j], S + j, static_cast<std::size_t>(N));
        }
        if (p.gn_w) {
            const float mean = static_cast<float>(block_sum(active ? y : 0.0f, red) / N);
            const float d = active ? y - mean : 0.0f;
            const float var = static_cast<float>(block_sum(d * d, red) / N);
            if (active) y = norm_apply(y, mean, inv_std(var, p.gn_eps), p.gn_w[ho + j], p.gn_b[ho + j]) * p.gate[o + j];
        }
        if (active) p.y[o + j] = y;
    }
    if constexpr (NMAX > 0) {
        if (active) {
#pragma unroll
            for (int i = 0; i < NMAX; ++i)  // unrolled with a constant bound: s stays in registers
                if (i < N) S[static_cast<std::size_t>(i) * N + j] = s[i];
        }
    }
}

// Floats of dynamic shared memory wkv_seq_kernel needs.
inline std::size_t wkv_seq_smem(int N) { return 4 * static_cast<std::size_t>(N) * sizeof(float); }

// Chunked prefill (spec 5.4, chunks of wkv_chunk_len tokens; see math.hpp): block (h, column
// group, seq) handles value columns [j0, j0 + JB) of head h for the whole sequence, its slice of
// the state in shared memory. The per-chunk factors and the intra-chunk matrix depend on all
// N keys but not on the value columns, so each column group recomputes them (O(Q²N), small)
// instead of synchronising with the others: a head's columns run on several SMs at once.
inline constexpr int wkv_chunk_cols = 16;  // JB

inline std::size_t wkv_chunk_smem(int N) {
    const std::size_t Q = wkv_chunk_len, n = static_cast<std::size_t>(N), JB = wkv_chunk_cols;
    // r k λ W Rt Kb [Q][N], V [Q][JB], S [N][JB], Am [Q][Q], eG [N], u [N]
    return (6 * Q * n + Q * JB + n * JB + Q * Q + 2 * n) * sizeof(float);
}

static __global__ void __launch_bounds__(256) wkv_chunk_kernel(const wkv_params p) {
    extern __shared__ float sh[];
    constexpr int Q = wkv_chunk_len, JB = wkv_chunk_cols;
    const int N = p.N, h = static_cast<int>(blockIdx.x), j0 = static_cast<int>(blockIdx.y) * JB;
    const int jb = N - j0 < JB ? N - j0 : JB;  // columns of this block
    const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
    const seq_info q = p.seqs[blockIdx.z];
    const std::size_t A = static_cast<std::size_t>(p.n_head) * static_cast<std::size_t>(N);
    const std::size_t ho = static_cast<std::size_t>(h) * static_cast<std::size_t>(N);
    float* S = q.base + p.state_offset + ho * static_cast<std::size_t>(N);
    float *rs = sh, *ks = rs + Q * N, *ls = ks + Q * N, *Ws = ls + Q * N, *Rt = Ws + Q * N, *Kb = Rt + Q * N;
    float *Vs = Kb + Q * N, *Ss = Vs + Q * JB, *Am = Ss + N * JB, *eG = Am + Q * Q, *us = eG + N;
    for (int i = tid; i < N; i += nt) us[i] = p.u[ho + i];
    for (int e = tid; e < N * jb; e += nt) {
        const int i = e / jb, jj = e % jb;
        Ss[i * JB + jj] = S[static_cast<std::size_t>(i) * N + j0 + jj];
    }
    for (int t0 = 0; t0 < q.rows; t0 += Q) {
        const int n = q.rows - t0 < Q ? q.rows - t0 : Q;
        __syncthreads();  // the previous chunk is done with every shared array
        for (int e = tid; e < n * N; e += nt) {
            const int a = e / N, i = e % N;
            const std::size_t row = static_cast<std::size_t>(q.row0 + t0 + a);
            rs[e] = p.r[row * A + ho + i];
            ks[e] = p.k[row * A + ho + i];
            ls[e] = p.log_w[row * p.w_stride + ho + i];
        }
        for (int e = tid; e < n * jb; e += nt) {
            const int a = e / jb, jj = e % jb;
            Vs[a * JB + jj] = p.v[static_cast<std::size_t>(q.row0 + t0 + a) * A + ho + j0 + jj];
        }
        __syncthreads();
        for (int i = tid; i < N; i += nt) wkv_chunk_channel(i, n, N, rs, ks, ls, Rt, Kb, Ws, eG);
        __syncthreads();
        for (int e = tid; e < Q * Q; e += nt) {
            const int a = e / Q, b = e % Q;
            Am[e] = (a < n && b < n) ? wkv_chunk_pair(a, b, N, rs, ks, us, Ws) : 0.0f;
        }
        __syncthreads();
        for (int e = tid; e < n * jb; e += nt) {
            const int a = e / jb, jj = e % jb;
            p.y[static_cast<std::size_t>(q.row0 + t0 + a) * A + ho + j0 + jj] =
                wkv_chunk_out(a, jj, N, Rt, Ss, JB, Am, Vs, JB);
        }
        __syncthreads();  // outputs read the state entering the chunk
        for (int e = tid; e < N * jb; e += nt) {
            const int i = e / jb, jj = e % jb;
            Ss[i * JB + jj] = wkv_chunk_state(i, jj, n, N, eG, Ss, JB, Kb, Vs, JB);
        }
    }
    __syncthreads();
    for (int e = tid; e < N * jb; e += nt) {
        const int i = e / jb, jj = e % jb;
        S[static_cast<std::size_t>(i) * N + j0 + jj] = Ss[i * JB + jj];
    }
}

// y[t] = GroupNorm(y[t])·g[t]: one warp per (row, group) of N channels.
static __global__ void __launch_bounds__(256) group_norm_gate_kernel(float* y, const float* g, int n, int groups, int N,
                                                                     const float* w, const float* b, float eps) {
    const int lane = static_cast<int>(threadIdx.x) & 31;
    const std::size_t warps = (static_cast<std::size_t>(gridDim.x) * blockDim.x) >> 5;
    const std::size_t total = static_cast<std::size_t>(n) * static_cast<std::size_t>(groups);
    for (std::size_t wi = (blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x) >> 5; wi < total;
         wi += warps) {
        const std::size_t t = wi / static_cast<std::size_t>(groups), h = wi % static_cast<std::size_t>(groups);
        const std::size_t o = t * static_cast<std::size_t>(groups) * N + h * N;
        float part = 0.0f;
        for (int i = lane; i < N; i += 32) part += y[o + i];
        const float mean = static_cast<float>(warp_sum(static_cast<double>(part)) / N);
        float sq = 0.0f;
        for (int i = lane; i < N; i += 32) {
            const float d = y[o + i] - mean;
            sq += d * d;
        }
        const float inv = inv_std(static_cast<float>(warp_sum(static_cast<double>(sq)) / N), eps);
        for (int i = lane; i < N; i += 32)
            y[o + i] = norm_apply(y[o + i], mean, inv, w[h * N + i], b[h * N + i]) * g[o + i];
    }
}

// Rows `src_rows[i]` of X [.][C] gathered into out [count][C] (the last row of each sequence,
// for the head).
static __global__ void __launch_bounds__(256)
    gather_rows_kernel(const float* X, int C, const int* src_rows, int count, float* out) {
    const std::size_t total = static_cast<std::size_t>(count) * static_cast<std::size_t>(C);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t r = i / static_cast<std::size_t>(C), c = i % static_cast<std::size_t>(C);
        out[i] = X[static_cast<std::size_t>(src_rows[r]) * C + c];
    }
}

// ---- random weights drawn on the device (benchmarks at released shapes without minutes of host
// work): uniform in [lo, hi) from a counter hash, written as the weight type.
__device__ inline float hash_uniform(std::uint64_t seed, std::uint64_t i) {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

template <wtype W>
__global__ void fill_uniform_kernel(void* dst, std::size_t ld, int rows, int cols, float lo, float hi,
                                    std::uint64_t seed) {
    const std::size_t total = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t r = i / static_cast<std::size_t>(cols), c = i % static_cast<std::size_t>(cols);
        const float v = lo + (hi - lo) * hash_uniform(seed, i);
        if constexpr (W == wtype::f32) static_cast<float*>(dst)[r * ld + c] = v;
        else if constexpr (W == wtype::bf16) static_cast<std::uint16_t*>(dst)[r * ld + c] = round_bf16(v);
        else static_cast<std::uint16_t*>(dst)[r * ld + c] = round_fp16(v);
    }
}

}  // namespace rwkv::backend::gpu
