#pragma once
// Host-side helpers shared by the reference quantizers (encode) of the block formats: rounding
// that never hits undefined behaviour (NaN / huge inputs), fp16 stores of scales, and the
// per-sub-block scale searches the K-quant encoders use. Decoding never needs these.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../scalar.hpp"
#include "block.hpp"

namespace rwkv::weights::detail {

// Round to nearest (ties away from zero, as roundf) and clamp to [lo, hi]; NaN gives `nan_value`.
// A plain float → int cast of an out-of-range value is undefined behaviour, so clamp first.
inline int round_clamp(float v, int lo, int hi, int nan_value = 0) {
    if (std::isnan(v)) return nan_value;
    if (v <= static_cast<float>(lo)) return lo;
    if (v >= static_cast<float>(hi)) return hi;
    return static_cast<int>(std::lround(v));
}

// Truncating conversion (C's (int)x) with the same guards; ggml's 32-element quantizers
// add 0.5 and truncate instead of rounding.
inline int trunc_clamp(float v, int lo, int hi, int nan_value = 0) {
    if (std::isnan(v)) return nan_value;
    if (v <= static_cast<float>(lo)) return lo;
    if (v >= static_cast<float>(hi)) return hi;
    return static_cast<int>(v);
}

inline void store_f16(std::byte* p, float v) { store_u16(p, half::from_float(v).bits); }

// The fp16 value actually stored for v (what decode will see).
inline float f16_round(float v) { return fp16_to_float(half::from_float(v).bits); }

// Value with the largest magnitude (sign kept) of n values; 0 when all are 0 or NaN.
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    return max;
}

// Affine sub-block fit used by the "scale + min" K-quants (Q2_K, Q4_K, Q5_K): value ≈ scale·q − min
// with q in [0, nmax], min ≥ 0 (the block minimum clipped at 0, as ggml's formats require).
struct affine_fit {
    float scale;  // ≥ 0
    float min;    // ≥ 0, subtracted
};

inline affine_fit fit_affine(const float* x, int n, int nmax) {
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < n; ++i) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    return {(hi - lo) / static_cast<float>(nmax), -lo};
}

}  // namespace rwkv::weights::detail
