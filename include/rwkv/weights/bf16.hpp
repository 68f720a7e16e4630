#pragma once
// BF16: bfloat16 (ggml type 30, PyTorch bfloat16 — what BlinkDL's releases are saved in).
// Decoding is exact; encoding rounds to nearest even like torch's .to(torch.bfloat16).

#include "../scalar.hpp"
#include "block.hpp"

namespace rwkv::weights {

struct bf16 {
    static constexpr const char* ggml_name = "BF16";
    static constexpr int ggml_type = 30;
    static constexpr int block_elems = 1;
    static constexpr int block_bytes = 2;

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) { *out = bf16_to_float(load_u16(block)); }
    static void encode(const float* in, std::byte* block) { store_u16(block, bfloat16::from_float(*in).bits); }
};

}  // namespace rwkv::weights
