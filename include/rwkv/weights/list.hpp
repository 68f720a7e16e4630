#pragma once
// The one list of weight formats. Adding a format = its header (block layout, reference
// decode/encode) + one include and one X(...) line here + its test in tests/test_weights.cpp.
// The order fixes rwkv::dtype's enumerator values (never serialised; free to extend).

#include "bf16.hpp"
#include "f16.hpp"
#include "f32.hpp"

// X(identifier): `identifier` names both the rwkv::dtype enumerator and the rwkv::weights struct.
#define RWKV_WEIGHT_FORMATS(X) \
    X(f32)                     \
    X(f16)                     \
    X(bf16)
