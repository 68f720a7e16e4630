#pragma once
// Operands and the fp64 reference product for the CPU kernel tests (mat-vec and GEMM): random
// values in [-1, 1] placed one element past their allocation's start, so nothing is aligned
// and the kernels' unaligned paths are what gets tested.

#include <rwkv/matrix.hpp>
#include <rwkv/scalar.hpp>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace test_support {

template <class T>
struct TestMatrix {
    std::vector<T> storage;
    rwkv::Matrix<T> m;
    TestMatrix(int rows, int cols, std::mt19937& rng) : storage(static_cast<std::size_t>(rows) * cols + 1) {
        std::uniform_real_distribution<float> d(-1.0f, 1.0f);
        for (auto& v : storage) v = rwkv::from_float<T>(d(rng));
        m.data = storage.data() + 1;
        m.rows = rows;
        m.cols = cols;
    }
};

// n rows of `cols` activations, row after row.
struct Activations {
    std::vector<float> storage;
    float* p;
    Activations(int n, int cols, std::mt19937& rng) : storage(static_cast<std::size_t>(n) * cols + 1) {
        std::uniform_real_distribution<float> d(-1.0f, 1.0f);
        for (auto& v : storage) v = d(rng);
        p = storage.data() + 1;
    }
};

// The mat-vec input: one row of activations (draws the same random values).
struct TestVector : Activations {
    TestVector(int n, std::mt19937& rng) : Activations(1, n, rng) {}
};

// ref[t][o] = Σ_c W[o][c]·X[t][c] in fp64, and mag[t][o] = Σ_c |W[o][c]·X[t][c]|, which bounds
// the rounding error of an fp32 sum (so tolerances scale with it, not with |ref|).
template <class T>
void reference(const rwkv::Matrix<T>& W, const float* X, int n, std::vector<double>& ref, std::vector<double>& mag) {
    ref.assign(static_cast<std::size_t>(n) * W.rows, 0.0);
    mag.assign(ref.size(), 0.0);
    std::vector<double> w(static_cast<std::size_t>(W.cols));
    for (int o = 0; o < W.rows; ++o) {
        for (int c = 0; c < W.cols; ++c) w[static_cast<std::size_t>(c)] = rwkv::to_float(W.row(o)[c]);
        for (int t = 0; t < n; ++t) {
            double s = 0.0, a = 0.0;
            const float* x = X + static_cast<std::size_t>(t) * W.cols;
            for (int c = 0; c < W.cols; ++c) {
                const double p = w[static_cast<std::size_t>(c)] * static_cast<double>(x[c]);
                s += p;
                a += std::fabs(p);
            }
            ref[static_cast<std::size_t>(t) * W.rows + o] = s;
            mag[static_cast<std::size_t>(t) * W.rows + o] = a;
        }
    }
}

}  // namespace test_support
