#pragma once
// Scratch buffers for one forward call. They live inside a State (not the Model) so that a
// const Model can serve many states on many threads at once, and so that decoding one token
// after another reuses the same memory: nothing is allocated in the token loop.

#include <algorithm>
#include <cstddef>
#include <vector>

#include "backend/cpu/threads.hpp"
#include "config.hpp"

namespace rwkv::detail {

struct Workspace {
    int rows = 0;  // how many tokens the buffers below hold

    std::vector<float> x;              // [rows][C] residual stream
    std::vector<float> z;              // [rows][C] LayerNorm output
    std::vector<float> dx;             // [rows][C] previous minus current (token shift)
    std::vector<float> mix[5];         // [rows][C] mixed inputs, slots w k v r g
    std::vector<float> lora;           // [rows][max(5 Dm, Dw)] LoRA hidden layer
    std::vector<float> r, k, v, g, w;  // [rows][A]
    std::vector<float> log_w;          // [rows][A] λ = -exp(ω), only for the chunked WKV
    std::vector<float> y;              // [rows][A] WKV output
    std::vector<float> out;            // [rows][max(C, F)] projection outputs
    std::vector<float> ffn;            // [rows][F]
    std::vector<float> logits;         // [V]
    std::vector<float> batch_logits;   // [B][V] forward_batch's result (in the first state's workspace)
    std::vector<std::vector<float>> tiles;  // per thread: 16-bit weights widened for a GEMM band
    std::vector<std::vector<float>> wkv_scratch;  // per thread: chunked WKV scratch

    // Set by the model for the duration of one forward call.
    cpu_kernels::ThreadPool* pool = nullptr;
    bool chunked_wkv = false;
    bool bf16_prefill = false;

    void reserve(const Config& c, int n_rows) {
        const auto C = static_cast<std::size_t>(c.n_embd), A = static_cast<std::size_t>(c.dim_att),
                   F = static_cast<std::size_t>(c.dim_ffn), V = static_cast<std::size_t>(c.vocab_size);
        const auto n = static_cast<std::size_t>(n_rows);
        const std::size_t lora_w = static_cast<std::size_t>(
            std::max(5 * c.dim_lora_mix, c.dim_lora_decay));
        auto grow = [](std::vector<float>& b, std::size_t size) {
            if (b.size() < size) b.resize(size);
        };
        if (n_rows > rows) {
            grow(x, n * C);
            grow(z, n * C);
            grow(dx, n * C);
            for (auto& m : mix) grow(m, n * C);
            if (c.version == Version::x060) grow(lora, n * lora_w);
            for (auto* b : {&r, &k, &v, &g, &w, &y, &log_w}) grow(*b, n * A);
            grow(out, n * std::max(C, F));
            grow(ffn, n * F);
            rows = n_rows;
        }
        grow(logits, V);
    }
};

}  // namespace rwkv::detail
