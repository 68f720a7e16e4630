#pragma once
// F32: IEEE binary32, one value per 4-byte "block" (ggml type 0, PyTorch float32).

#include "block.hpp"

namespace rwkv::weights {

struct f32 {
    static constexpr const char* ggml_name = "F32";  // ggml's type name
    static constexpr int ggml_type = 0;
    static constexpr int block_elems = 1;
    static constexpr int block_bytes = 4;

    RWKV_HOST_DEVICE static void decode(const std::byte* block, float* out) { *out = bits_to_float(load_u32(block)); }
    static void encode(const float* in, std::byte* block) { std::memcpy(block, in, 4); }
};

}  // namespace rwkv::weights
