#pragma once
// The parameters of LayerNorm (ln0, ln1, ln2, ln_out; eps 1e-5) and of the per-head GroupNorm
// ln_x (eps 64e-5 on the undivided WKV output, spec 4.6). Backends compute them (op layer_norm
// and group_norm_gate), with biased variance like PyTorch.

#include <vector>

namespace rwkv {

struct LayerNorm {
    std::vector<float> weight, bias;  // [C]
    float eps = 1e-5f;
};

struct GroupNorm {
    std::vector<float> weight, bias;  // [A]
    int groups = 1;                   // H: groups of head_size consecutive channels
    float eps = 64e-5f;
};

}  // namespace rwkv
