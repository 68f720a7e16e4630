#pragma once
// The one list of weight formats. Adding a format = its header (block layout, reference
// decode/encode) + one include and one X(...) line here + its test in tests/test_weights.cpp.
// The order fixes rwkv::dtype's enumerator values (never serialised; free to extend).

#include "bf16.hpp"
#include "f16.hpp"
#include "f32.hpp"
#include "iq4_nl.hpp"
#include "q2_k.hpp"
#include "q3_k.hpp"
#include "q4_0.hpp"
#include "q4_1.hpp"
#include "q4_k.hpp"
#include "q5_0.hpp"
#include "q5_1.hpp"
#include "q5_k.hpp"
#include "q6_k.hpp"
#include "q8_0.hpp"

// X(identifier): `identifier` names both the rwkv::dtype enumerator and the rwkv::weights struct.
#define RWKV_WEIGHT_FORMATS(X) \
    X(f32)                     \
    X(f16)                     \
    X(bf16)                    \
    X(q8_0)                    \
    X(q4_0)                    \
    X(q4_1)                    \
    X(q5_0)                    \
    X(q5_1)                    \
    X(q2_k)                    \
    X(q3_k)                    \
    X(q4_k)                    \
    X(q5_k)                    \
    X(q6_k)                    \
    X(iq4_nl)
