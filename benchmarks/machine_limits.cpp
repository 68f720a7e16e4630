// The machine's limits for benchmarks/roofline.cpp, compiled with -march=native (and only this
// file): the read bandwidth with several interleaved streams per thread, and one core's fp32
// GEMM rate with Eigen at the best instruction set the CPU has. The library's own code is
// compiled with default flags elsewhere, so these are ceilings it has to earn.

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace machine_limits {

namespace {
using clk = std::chrono::steady_clock;
double secs(clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); }

// Sums `len` floats from each of `streams` interleaved streams starting `stride` floats apart.
float sum_streams(const float* p, std::size_t stride, std::size_t len, int streams) {
#if defined(__AVX512F__)
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (int s = 0; s < streams; ++s)
            acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(p + static_cast<std::size_t>(s) * stride + i));
    float total = 0.0f;
    for (int s = 0; s < streams; ++s) total += _mm512_reduce_add_ps(acc[s]);
    return total;
#else
    float acc[8][16] = {};
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (int s = 0; s < streams; ++s)
            for (int l = 0; l < 16; ++l)
                acc[s][l] += p[static_cast<std::size_t>(s) * stride + i + static_cast<std::size_t>(l)];
    float total = 0.0f;
    for (auto& a : acc)
        for (float v : a) total += v;
    return total;
#endif
}
}  // namespace

double read_bandwidth(int threads, std::size_t bytes, int streams) {
    std::vector<float> buf(bytes / sizeof(float), 1.0f);
    const std::size_t per = buf.size() / static_cast<std::size_t>(threads);
    const std::size_t len = per / static_cast<std::size_t>(streams) / 16 * 16;
    double best = 0.0;
    std::vector<float> sink(static_cast<std::size_t>(threads));
    for (int rep = 0; rep < 5; ++rep) {
        auto t0 = clk::now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                sink[static_cast<std::size_t>(t)] =
                    sum_streams(buf.data() + static_cast<std::size_t>(t) * per, len, len, streams);
            });
        for (auto& th : pool) th.join();
        best = std::max(best,
                        static_cast<double>(len) * static_cast<double>(streams) * threads * sizeof(float) / secs(t0));
    }
    if (sink[0] < 0) best = -best;  // keep the sums observable
    return best;
}

double sgemm_one_core() {
    const int m = 512, k = 2048, n = 2048;
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n), c(m, n);
    double best = 0.0;
    for (int rep = 0; rep < 5; ++rep) {
        auto t0 = clk::now();
        c.noalias() = a * b;
        best = std::max(best, 2.0 * m * k * n / secs(t0));
    }
    if (c(0, 0) == 12345.0f) best = -best;
    return best;
}

}  // namespace machine_limits
