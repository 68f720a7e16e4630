// The machine's limits for benchmarks/roofline.cpp, compiled with -march=native (and only this
// file): the best read bandwidth this machine reaches, and one core's fp32 GEMM rate with Eigen
// at the best instruction set the CPU has. The library's own code is compiled with default flags
// elsewhere, so these are ceilings it has to earn.
//
// The bandwidth is the best of a search, so that "fraction of the floor" is honest: reads of
// several interleaved streams per thread with 1..threads threads, 1-16 streams, plain loads,
// non-temporal (streaming) loads, or plain loads with software prefetches (into L1, or
// non-temporal) at several distances ahead, over 4 KiB pages and over transparent huge pages.
// Which variant won is reported with the figure.
//
// Why each of these (issue 9: the first probe read 33 GB/s here while Finch-0.4B decoded at
// 116-122 % of the floor it gave, i.e. the library's own mat-vec streamed more than the probe):
//  - the buffer is 2 MiB aligned and every load is an aligned 64-byte load: the first probe read a
//    std::vector whose data sat 16 bytes past a page boundary, so every 64-byte load split two
//    cache lines;
//  - the threads are started before the clock and pinned one per CPU, and the clock stops when
//    the last one is done: the first probe timed thread creation and let the scheduler move or
//    stack its threads;
//  - the streams of a thread start a few cache lines apart modulo 4 KiB ("skewed"), as well as
//    exactly a power of two apart: equal low address bits put every stream in the same L1/L2
//    sets, and which layout is faster depends on the machine;
//  - non-temporal loads (vmovntdqa) and huge pages are variants of the search, not assumptions.

#include "machine_limits.hpp"

#include <rwkv/backend/cpu/eigen.hpp>  // Eigen, with GCC 12's false AVX-512 warnings silenced

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#endif

namespace machine_limits {

namespace {
using clk = std::chrono::steady_clock;
double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// A 2 MiB-aligned buffer of non-zero floats (every page written, so none is the shared zero
// page), optionally with transparent huge pages requested (Linux: madvise; elsewhere ignored).
class Buffer {
public:
    Buffer(std::size_t bytes, bool huge) : bytes_(bytes) {
        constexpr std::size_t align = std::size_t{2} << 20;
        bytes_ = (bytes + align - 1) / align * align;
        p_ = static_cast<float*>(std::aligned_alloc(align, bytes_));
        if (p_ == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        huge_ = huge && ::madvise(p_, bytes_, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
#else
        (void)huge;
#endif
        std::fill(p_, p_ + bytes_ / sizeof(float), 1.0f);
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { std::free(p_); }
    const float* data() const { return p_; }
    std::size_t bytes() const { return bytes_; }
    bool huge() const { return huge_; }

private:
    float* p_ = nullptr;
    std::size_t bytes_ = 0;
    bool huge_ = false;
};

// Sums `len` floats (a multiple of 16) from each of S streams `stride` floats apart, 64 bytes
// (one line, aligned) per stream per step, streams interleaved; prefetches `ahead` floats ahead.
template <int S, Load kind>
float sum_streams(const float* p, std::size_t stride, std::size_t len, std::size_t ahead) {
#if defined(__AVX512F__)
    __m512 acc[S];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t i = 0; i < len; i += 16)
        for (int s = 0; s < S; ++s) {
            const float* q = p + static_cast<std::size_t>(s) * stride + i;
            if constexpr (kind == Load::prefetch_t0)
                _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_T0);
            if constexpr (kind == Load::prefetch_nta)
                _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_NTA);
            __m512 v;
            if constexpr (kind == Load::nt) v = _mm512_castsi512_ps(_mm512_stream_load_si512(const_cast<float*>(q)));
            else v = _mm512_load_ps(q);
            acc[s] = _mm512_add_ps(acc[s], v);
        }
    float lanes[16], total = 0.0f;  // not _mm512_reduce_add_ps: GCC 12 warns inside it at -O2
    for (int s = 0; s < S; ++s) {
        _mm512_storeu_ps(lanes, acc[s]);
        for (float l : lanes) total += l;
    }
    return total;
#else
    (void)ahead;
    float acc[S][16] = {};
    for (std::size_t i = 0; i < len; i += 16)
        for (int s = 0; s < S; ++s) {
            const float* q = p + static_cast<std::size_t>(s) * stride + i;
#if defined(__SSE__)
            if constexpr (kind == Load::prefetch_t0)
                _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_T0);
            if constexpr (kind == Load::prefetch_nta)
                _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_NTA);
#endif
            for (int l = 0; l < 16; ++l) acc[s][l] += q[l];
        }
    float total = 0.0f;
    for (auto& a : acc)
        for (float v : a) total += v;
    return total;
#endif
}

template <Load kind>
float sum_streams(int streams, const float* p, std::size_t stride, std::size_t len, std::size_t ahead) {
    switch (streams) {
        case 1: return sum_streams<1, kind>(p, stride, len, ahead);
        case 2: return sum_streams<2, kind>(p, stride, len, ahead);
        case 4: return sum_streams<4, kind>(p, stride, len, ahead);
        case 8: return sum_streams<8, kind>(p, stride, len, ahead);
        default: return sum_streams<16, kind>(p, stride, len, ahead);
    }
}

float sum_streams(Load kind, int streams, const float* p, std::size_t stride, std::size_t len, std::size_t ahead) {
    switch (kind) {
        case Load::plain: return sum_streams<Load::plain>(streams, p, stride, len, ahead);
        case Load::nt: return sum_streams<Load::nt>(streams, p, stride, len, ahead);
        case Load::prefetch_t0: return sum_streams<Load::prefetch_t0>(streams, p, stride, len, ahead);
        default: return sum_streams<Load::prefetch_nta>(streams, p, stride, len, ahead);
    }
}

// Pins the calling thread to the t-th CPU it may run on (Linux); false when it cannot.
bool pin_to(int t) {
#if defined(__linux__)
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
    int seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (seen++ == t) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
        }
    }
#else
    (void)t;
#endif
    return false;
}

// Best of `reps` passes over buf, each thread reading its contiguous share as `streams` streams.
// The threads are created and pinned before the clock starts (a spin on `go`), and the pass
// ends when the last thread is done.
double measure(const Buffer& buf, const Variant& v, int reps) {
    const std::size_t floats = buf.bytes() / sizeof(float);
    const auto nt = static_cast<std::size_t>(v.threads), ns = static_cast<std::size_t>(v.streams);
    const std::size_t per = floats / nt;
    // Skew: stream s starts s·(17 lines) later than s·len would put it (17: odd, so the streams'
    // low address bits all differ), at the price of a slightly shorter stream.
    const std::size_t skew = v.skew ? 17 * 16 : 0;
    const std::size_t len = (per - ns * skew) / ns / 16 * 16;
    const std::size_t stride = len + skew, ahead = v.ahead_bytes / sizeof(float);
    double best = 0.0;
    std::vector<float> sink(nt, 0.0f);
#if defined(__linux__)
    cpu_set_t saved;
    const bool restore = sched_getaffinity(0, sizeof saved, &saved) == 0;
#endif
    pin_to(0);
    for (int rep = 0; rep < reps; ++rep) {
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<clk::time_point> done(nt);
        std::vector<std::thread> team;
        for (std::size_t t = 1; t < nt; ++t)
            team.emplace_back([&, t] {
                pin_to(static_cast<int>(t));
                ready.fetch_add(1);
                while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
                sink[t] = sum_streams(v.kind, v.streams, buf.data() + t * per, stride, len, ahead);
                done[t] = clk::now();
            });
        while (ready.load() < static_cast<int>(nt) - 1) std::this_thread::yield();
        const auto t0 = clk::now();
        go.store(true, std::memory_order_release);
        sink[0] += sum_streams(v.kind, v.streams, buf.data(), stride, len, ahead);
        done[0] = clk::now();
        for (auto& th : team) th.join();
        const auto t1 = *std::max_element(done.begin(), done.end());
        best = std::max(best, static_cast<double>(len * ns * nt * sizeof(float)) / secs(t0, t1));
    }
#if defined(__linux__)
    if (restore) sched_setaffinity(0, sizeof saved, &saved);
#endif
    if (sink[0] < 0) best = -best;  // keep the sums observable
    return best;
}

std::string describe(const Variant& v) {
    std::string how = std::to_string(v.threads) + (v.threads == 1 ? " thread x " : " threads x ") +
                      std::to_string(v.streams) + (v.streams == 1 ? " stream" : " streams") +
                      (v.skew ? " (skewed)" : "") + ", ";
    switch (v.kind) {
        case Load::plain: how += "plain loads"; break;
        case Load::nt: how += "non-temporal loads"; break;
        case Load::prefetch_t0: how += "prefetcht0 +" + std::to_string(v.ahead_bytes) + " B"; break;
        case Load::prefetch_nta: how += "prefetchnta +" + std::to_string(v.ahead_bytes) + " B"; break;
    }
    return how + (v.huge ? ", huge pages" : ", 4 KiB pages");
}
}  // namespace

// The plain probe: `streams` streams per thread a power of two apart, plain loads, 4 KiB pages.
double read_bandwidth(int threads, std::size_t bytes, int streams) {
    const Buffer buf(bytes, false);
    return measure(buf, {std::max(1, threads), streams, Load::plain, 0, false, false}, 5);
}

// The winning variant of best_read_bandwidth measured again (best of two passes), on a buffer
// kept from one call to the next: on a shared machine the bandwidth left to this process varies
// by the minute, so roofline.cpp measures it again beside each decode round.
namespace {
std::unique_ptr<Buffer> again_buffer;
}  // namespace

double read_bandwidth_again(const Bandwidth& b) {
    auto& buf = again_buffer;
    if (!buf || buf->bytes() < b.bytes || buf->huge() != b.variant.huge) {
        buf.reset();
        buf = std::make_unique<Buffer>(b.bytes, b.variant.huge);
    }
    return measure(*buf, b.variant, 2);
}

void release_buffers() { again_buffer.reset(); }

// The best read bandwidth over the variants listed at the top of this file, `threads` at most.
Bandwidth best_read_bandwidth(int threads, std::size_t bytes) {
    Bandwidth best;
    std::vector<int> counts{std::max(1, threads)};
    if (threads > 1) counts.push_back(1);
    for (const bool want_huge : {false, true}) {
        const Buffer buf(bytes, want_huge);
        if (want_huge && !buf.huge()) break;  // no transparent huge pages here: nothing new to try
        auto consider = [&](const Variant& v) {
            const double bw = measure(buf, v, 3);
            if (bw > best.bytes_per_s) best = {bw, v.threads, v.streams, describe(v), v, bytes};
            return bw;
        };
        for (int nt : counts) {
            // Stream counts and layouts with plain loads; then, on the best of them, non-temporal
            // loads and software prefetch at several distances.
            double top = 0.0;
            Variant base{nt, 8, Load::plain, 0, false, buf.huge()};
            for (int streams : {1, 2, 4, 8, 16})
                for (const bool skew : {false, true}) {
                    const Variant v{nt, streams, Load::plain, 0, skew, buf.huge()};
                    if (const double bw = consider(v); bw > top) top = bw, base = v;
                }
            Variant v = base;
            v.kind = Load::nt;
            consider(v);
            for (std::size_t ahead : {512u, 1024u, 2048u, 4096u}) {
                v.ahead_bytes = ahead;
                v.kind = Load::prefetch_t0;
                consider(v);
                v.kind = Load::prefetch_nta;
                consider(v);
            }
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
        best = std::max(best, 2.0 * m * k * n / secs(t0, clk::now()));
    }
    if (c(0, 0) == 12345.0f) best = -best;
    return best;
}

}  // namespace machine_limits
