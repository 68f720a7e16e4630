#pragma once
// The WKV recurrence for one token (spec 4.5), per head h with state S[i key][j value]:
//   y[j] = Σ_i r[i]·(S[i][j] + u[i]·k[i]·v[j])      (reads the old state)
//   S[i][j] ← w[i]·S[i][j] + k[i]·v[j]             (decay on the key axis, after the read)
// Output and update are fused into one pass over the state, which is what bounds decode time
// for the recurrence. The inner loop runs over j (contiguous), so it vectorises.

#include <cstddef>

namespace rwkv::cpu_kernels {

inline void wkv_step(int n_head, int head_size, const float* r, const float* k, const float* v,
                     const float* w, const float* u, float* S, float* y) {
    const std::size_t N = static_cast<std::size_t>(head_size);
    for (int h = 0; h < n_head; ++h) {
        const std::size_t base = static_cast<std::size_t>(h) * N;
        float* Sh = S + base * N;
        const float* vh = v + base;
        float* yh = y + base;
        for (std::size_t j = 0; j < N; ++j) yh[j] = 0.0f;
        for (std::size_t i = 0; i < N; ++i) {
            const float ri = r[base + i], ki = k[base + i], wi = w[base + i];
            const float rui = ri * u[base + i] * ki;
            float* Si = Sh + i * N;
            for (std::size_t j = 0; j < N; ++j) {
                const float s = Si[j];
                yh[j] += ri * s + rui * vh[j];
                Si[j] = s * wi + ki * vh[j];
            }
        }
    }
}

}  // namespace rwkv::cpu_kernels
