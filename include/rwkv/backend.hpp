#pragma once
// Backend tags and the op vocabulary. A backend is a tag type (like an xsimd architecture):
// Model and the layers are templates on it, and `backend_ops<Backend>` supplies the ops the
// layers are written in. Each backend specialises backend_ops in its own header:
//
//   rwkv::cpu        backend/cpu/ops.hpp    SIMD kernels, thread pool (the default)
//   rwkv::reference  backend/reference.hpp  plain scalar loops: the yardstick for every backend
//   rwkv::cuda       backend/cuda/ops.cuh   NVIDIA GPUs (include <rwkv/cuda.hpp>, compile with nvcc)
//
// An unknown tag fails to compile with a static_assert naming the problem.
//
// The op vocabulary (every op on row-major fp32 activations of n tokens; `ws` is the backend's
// per-state scratch, which also carries the backend's thread pool):
//   embed             x[t] = decode(emb[token t])
//   layer_norm        out[t] = LN(x[t]) (eps from the LayerNorm, biased variance)
//   token_shift       prev[t] = z[t-1] within each sequence (its first row: the sequence's shift
//                     state); each shift state becomes its sequence's last z
//   lerp              out = z·μ + prev·(1-μ)          (x052 static mix, spec 4.3)
//   mix               out = z + (prev - z)·m           (x060 difference mix, spec 4.4/4.7)
//   ddlerp            x060 five-slot LoRA token shift: z_s = z + δ·(m_s + tanh(zx·W1)_s·W2_s)
//   decay             λ = -exp(d + ω_lora), w = exp(λ)   (x060 data-dependent decay, spec 4.4)
//   project           Y[t] = W·X[t]; project_many: several independent products at once
//   tanh, silu, relu_sq   elementwise
//   wkv               the WKV recurrence over each sequence's rows for every head (spec 4.5;
//                     token loop or chunked is the backend's choice)
//   group_norm_gate   y = GroupNorm(y)·g                  (ln_x and the gate, spec 4.6)
//   sigmoid_gate_add  x += sigmoid(r)·v                   (channel-mix output, spec 4.7)
//   residual_add      x += y
//   head              logits = head · LN(x; ln_out)

#include <type_traits>

namespace rwkv {

// Consecutive rows of one sequence inside a batch of activation rows: ops that carry state
// across tokens (token_shift, wkv) restart at each sequence and update its own state.
struct sequence_rows {
    int rows = 0;            // how many consecutive rows belong to this sequence
    float* shift = nullptr;  // its token-shift state [C] (token_shift)
    float* S = nullptr;      // its WKV state [H][N][N] (wkv)
};

struct cpu {};        // the CPU backend: runtime-dispatched SIMD kernels and a thread pool
struct reference {};  // plain scalar loops over every op (tests compare backends against it)
struct cuda {};       // NVIDIA GPUs: declared here, usable only with <rwkv/cuda.hpp> under nvcc

template <class Backend>
inline constexpr bool always_false_v = false;

// Specialised by each backend's header. The primary template is the error for unknown tags.
template <class Backend>
struct backend_ops {
    static_assert(always_false_v<Backend>,
                  "rwkv: unknown Backend tag; use rwkv::cpu (default), rwkv::reference, or rwkv::cuda "
                  "(include <rwkv/cuda.hpp>)");
};

}  // namespace rwkv
