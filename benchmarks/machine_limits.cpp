// The machine's limits for benchmarks/roofline.cpp, compiled with -march=native (and only this
// file): the best read bandwidth this machine reaches, and one core's fp32 GEMM rate with Eigen
// at the best instruction set the CPU has. The library's own code is compiled with default flags
// elsewhere, so these are ceilings it has to earn.
//
// The bandwidth is the best of a search, so that "fraction of the floor" is honest: a plain read
// of several interleaved streams per thread with 1..threads threads, 1-16 streams, no software
// prefetch or prefetches (into L1, or non-temporal) at several distances ahead. Which variant won
// is reported with the figure.

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#endif

namespace machine_limits {

struct Bandwidth {
    double bytes_per_s = 0.0;
    int threads = 0, streams = 0;
    std::string how;  // e.g. "8 streams/thread, prefetcht0 +1024 B"
};

namespace {
using clk = std::chrono::steady_clock;
double secs(clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); }

enum class Prefetch { none, t0, nta };

inline void prefetch(const float* p, Prefetch kind) {
#if defined(__SSE__)
    if (kind == Prefetch::t0) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    else if (kind == Prefetch::nta) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_NTA);
#else
    (void)p, (void)kind;
#endif
}

// Sums `len` floats from each of S interleaved streams starting `stride` floats apart, prefetching
// `ahead` floats ahead in each stream (one line per 16 floats).
template <int S>
float sum_streams(const float* p, std::size_t stride, std::size_t len, Prefetch kind, std::size_t ahead) {
#if defined(__AVX512F__)
    __m512 acc[S];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (int s = 0; s < S; ++s) {
            const float* q = p + static_cast<std::size_t>(s) * stride + i;
            if (kind != Prefetch::none && i + ahead < len) prefetch(q + ahead, kind);
            acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(q));
        }
    float lanes[16], total = 0.0f;  // not _mm512_reduce_add_ps: GCC 12 warns inside it at -O2
    for (int s = 0; s < S; ++s) {
        _mm512_storeu_ps(lanes, acc[s]);
        for (float l : lanes) total += l;
    }
    return total;
#else
    float acc[S][16] = {};
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (int s = 0; s < S; ++s) {
            const float* q = p + static_cast<std::size_t>(s) * stride + i;
            if (kind != Prefetch::none && i + ahead < len) prefetch(q + ahead, kind);
            for (int l = 0; l < 16; ++l) acc[s][l] += q[l];
        }
    float total = 0.0f;
    for (auto& a : acc)
        for (float v : a) total += v;
    return total;
#endif
}

float sum_streams(int streams, const float* p, std::size_t stride, std::size_t len, Prefetch kind, std::size_t ahead) {
    switch (streams) {
        case 1: return sum_streams<1>(p, stride, len, kind, ahead);
        case 2: return sum_streams<2>(p, stride, len, kind, ahead);
        case 4: return sum_streams<4>(p, stride, len, kind, ahead);
        case 8: return sum_streams<8>(p, stride, len, kind, ahead);
        default: return sum_streams<16>(p, stride, len, kind, ahead);
    }
}

// Best of `reps` passes over buf with `threads` threads, each reading its share as `streams`
// streams.
double measure(const std::vector<float>& buf, int threads, int streams, Prefetch kind, std::size_t ahead, int reps) {
    const std::size_t per = buf.size() / static_cast<std::size_t>(threads);
    const std::size_t len = per / static_cast<std::size_t>(streams) / 16 * 16;
    double best = 0.0;
    std::vector<float> sink(static_cast<std::size_t>(threads));
    for (int rep = 0; rep < reps; ++rep) {
        auto t0 = clk::now();
        std::vector<std::thread> pool;
        for (int t = 1; t < threads; ++t)
            pool.emplace_back([&, t] {
                sink[static_cast<std::size_t>(t)] =
                    sum_streams(streams, buf.data() + static_cast<std::size_t>(t) * per, len, len, kind, ahead);
            });
        sink[0] = sum_streams(streams, buf.data(), len, len, kind, ahead);
        for (auto& th : pool) th.join();
        best = std::max(best,
                        static_cast<double>(len) * static_cast<double>(streams) * threads * sizeof(float) / secs(t0));
    }
    if (sink[0] < 0) best = -best;  // keep the sums observable
    return best;
}
}  // namespace

// The plain probe: `streams` interleaved streams per thread, no software prefetch.
double read_bandwidth(int threads, std::size_t bytes, int streams) {
    const std::vector<float> buf(bytes / sizeof(float), 1.0f);
    return measure(buf, threads, streams, Prefetch::none, 0, 5);
}

// The best read bandwidth over the variants listed at the top of this file, `threads` at most.
Bandwidth best_read_bandwidth(int threads, std::size_t bytes) {
    const std::vector<float> buf(bytes / sizeof(float), 1.0f);
    Bandwidth best;
    auto consider = [&](int nt, int streams, Prefetch kind, std::size_t ahead_bytes) {
        const double bw = measure(buf, nt, streams, kind, ahead_bytes / sizeof(float), 3);
        if (bw <= best.bytes_per_s) return;
        char how[96];
        std::snprintf(how, sizeof how, "%d thread%s x %d stream%s, %s", nt, nt == 1 ? "" : "s", streams,
                      streams == 1 ? "" : "s",
                      kind == Prefetch::none ? "no prefetch"
                                             : (std::string(kind == Prefetch::t0 ? "prefetcht0 +" : "prefetchnta +") +
                                                std::to_string(ahead_bytes) + " B")
                                                   .c_str());
        best = {bw, nt, streams, how};
    };
    std::vector<int> counts{std::max(1, threads)};
    if (threads > 1) counts.push_back(1);
    for (int nt : counts) {
        for (int streams : {1, 2, 4, 8, 16}) consider(nt, streams, Prefetch::none, 0);
        // Software prefetch on the best stream count of this thread count.
        const int s = best.threads == nt ? best.streams : 8;
        for (std::size_t ahead : {512u, 1024u, 2048u, 4096u}) {
            consider(nt, s, Prefetch::t0, ahead);
            consider(nt, s, Prefetch::nta, ahead);
        }
    }
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
