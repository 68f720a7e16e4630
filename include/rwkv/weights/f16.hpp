#pragma once
// F16: IEEE binary16 (ggml type 1, PyTorch float16). Decoding is exact; encoding rounds to
// nearest even with overflow to inf and gradual underflow.

#include "../scalar.hpp"
#include "block.hpp"

namespace rwkv::weights {

struct f16 {
    static constexpr const char* ggml_name = "F16";
    static constexpr int ggml_type = 1;
    static constexpr int block_elems = 1;
    static constexpr int block_bytes = 2;

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) { *out = fp16_to_float(load_u16(block)); }
    static void encode(const float* in, std::byte* block) { store_u16(block, half::from_float(*in).bits); }
};

}  // namespace rwkv::weights
