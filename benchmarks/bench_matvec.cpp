// Decode mat-vec throughput in bytes of weights read per second, against a bandwidth probe that
// reads a plain buffer the same way (1 or 2 threads; 1 or 8 interleaved streams per thread).
//
// Each benchmark cycles through enough copies of the matrix to cover ≥ 1 GiB, so the weights
// come from DRAM as in a real model (24 layers of different matrices), not from the L3 cache.
//
//   bench_matvec --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   RWKV_ISA=avx2 bench_matvec ...   (compare paths)

#include <rwkv/backend/cpu/matvec.hpp>
#include <rwkv/backend/cpu/threads.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

namespace {

using namespace rwkv;
using namespace rwkv::backend::cpu;

constexpr std::size_t cold_bytes = std::size_t{1} << 30;

// Cheap deterministic values in [-0.5, 0.5): filling a GiB with a real RNG takes seconds.
template <class T>
void fill(std::vector<T>& v, std::uint32_t seed) {
    std::uint32_t s = seed * 2654435761u + 1u;
    for (auto& e : v) {
        s = s * 1664525u + 1013904223u;
        e = from_float<T>(static_cast<float>(s >> 8) * 0x1p-24f - 0.5f);
    }
}

template <class T>
struct Copies {
    std::vector<std::vector<T>> storage;
    std::vector<Matrix<T>> m;
    Copies(int rows, int cols) {
        const std::size_t bytes = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(T);
        const std::size_t n = std::max<std::size_t>(1, (cold_bytes + bytes - 1) / bytes);
        storage.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            storage[i].resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
            fill(storage[i], static_cast<std::uint32_t>(i));
            Matrix<T> w;
            w.data = storage[i].data();
            w.rows = rows;
            w.cols = cols;
            m.push_back(w);
        }
    }
};

template <class T>
void BM_matvec(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    ThreadPool pool(static_cast<int>(state.range(2)));
    Copies<T> w(rows, cols);
    std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(rows));
    fill(x, 99);
    std::size_t i = 0;
    for (auto _ : state) {
        matvec(w.m[i], x.data(), y.data(), &pool);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        if (++i == w.m.size()) i = 0;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * rows * cols *
                            static_cast<std::int64_t>(sizeof(T)));
    state.SetLabel(std::string(scalar_name<T>()) + " " + isa_name(active_isa()));
}

// The r, k, v, g projections of one Finch layer in one dispatch.
template <class T>
void BM_matvec_many_rkvg(benchmark::State& state) {
    const int d = static_cast<int>(state.range(0));
    ThreadPool pool(static_cast<int>(state.range(1)));
    Copies<T> w(d, d);
    std::vector<float> x(4 * static_cast<std::size_t>(d)), y(4 * static_cast<std::size_t>(d));
    fill(x, 7);
    const std::size_t n = w.m.size();
    std::size_t i = 0;
    for (auto _ : state) {
        MatvecJob<T> jobs[4];
        for (std::size_t j = 0; j < 4; ++j)
            jobs[j] = {&w.m[(i + j) % n], x.data() + j * static_cast<std::size_t>(d),
                       y.data() + j * static_cast<std::size_t>(d)};
        matvec_many(std::span<const MatvecJob<T>>(jobs), &pool);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        i = (i + 4) % n;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 4 * d * d *
                            static_cast<std::int64_t>(sizeof(T)));
    state.SetLabel(std::string(scalar_name<T>()) + " " + isa_name(active_isa()));
}

// ---- bandwidth probe -----------------------------------------------------------------------
// Sum n floats laid out as S streams of n/S consecutive floats, reading one 64-byte line of each
// stream in turn (S = 1: a plain sequential read).

template <int S>
float read_generic(const float* p, std::size_t n) {
    const std::size_t per = n / S;
    float acc[S][16] = {};
    for (std::size_t i = 0; i + 16 <= per; i += 16)
        for (int s = 0; s < S; ++s)
            for (int l = 0; l < 16; ++l)
                acc[s][l] += p[static_cast<std::size_t>(s) * per + i + static_cast<std::size_t>(l)];
    float t = 0.0f;
    for (int s = 0; s < S; ++s)
        for (int l = 0; l < 16; ++l) t += acc[s][l];
    return t;
}

#if BENCH_X86
template <int S>
__attribute__((target("avx512f"))) float read_avx512(const float* p, std::size_t n) {
    const std::size_t per = n / S;
    constexpr int A = S < 8 ? 8 : S;  // 8 independent adds in flight either way
    __m512 acc[A];
    for (int a = 0; a < A; ++a) acc[a] = _mm512_setzero_ps();
    if constexpr (S == 1) {
        for (std::size_t i = 0; i + 128 <= per; i += 128)
            for (int a = 0; a < 8; ++a) acc[a] = _mm512_add_ps(acc[a], _mm512_loadu_ps(p + i + 16 * a));
    } else {
        for (std::size_t i = 0; i + 16 <= per; i += 16)
            for (int s = 0; s < S; ++s)
                acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(p + static_cast<std::size_t>(s) * per + i));
    }
    for (int a = 1; a < A; ++a) acc[0] = _mm512_add_ps(acc[0], acc[a]);
    alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns falsely inside it
    _mm512_store_ps(lanes, acc[0]);
    float t = 0.0f;
    for (float v : lanes) t += v;
    return t;
}
#endif

template <int S>
float read_streams(const float* p, std::size_t n) {
#if BENCH_X86
    if (isa_supported(Isa::avx512)) return read_avx512<S>(p, n);
#endif
    return read_generic<S>(p, n);
}

template <int S>
void BM_read_bandwidth(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    ThreadPool pool(threads);
    std::vector<float> buf(cold_bytes / sizeof(float));
    fill(buf, 3);
    const std::size_t per_thread = buf.size() / static_cast<std::size_t>(threads);
    float sink[64] = {};
    for (auto _ : state) {
        pool.run([&](int t, int) {
            sink[t * 16] += read_streams<S>(buf.data() + static_cast<std::size_t>(t) * per_thread, per_thread);
        });
        benchmark::DoNotOptimize(sink);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(per_thread * static_cast<std::size_t>(threads) * sizeof(float)));
}

// The fixed cost of one pool dispatch (wake the workers, run an empty job, wait for them): paid
// once per mat-vec (or per fused group) per layer per token.
void BM_pool_run(benchmark::State& state) {
    ThreadPool pool(static_cast<int>(state.range(0)));
    int sink[64] = {};
    for (auto _ : state) {
        pool.run([&](int t, int) { ++sink[t * 16]; });
        benchmark::DoNotOptimize(sink);
    }
}

void matvec_shapes(benchmark::internal::Benchmark* b) {
    for (auto [rows, cols] :
         {std::pair{2048, 2048}, std::pair{7168, 2048}, std::pair{2048, 7168}, std::pair{65536, 2048}})
        for (int threads : {1, 2}) b->Args({rows, cols, threads});
    b->ArgNames({"rows", "cols", "threads"})->UseRealTime();
}

}  // namespace

BENCHMARK(BM_pool_run)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_read_bandwidth<1>)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_read_bandwidth<8>)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
BENCHMARK(BM_matvec<float>)->Apply(matvec_shapes);
BENCHMARK(BM_matvec<bfloat16>)->Apply(matvec_shapes);
BENCHMARK(BM_matvec<half>)->Apply(matvec_shapes);
BENCHMARK(BM_matvec_many_rkvg<bfloat16>)->Args({2048, 1})->Args({2048, 2})->ArgNames({"d", "threads"})->UseRealTime();
BENCHMARK(BM_matvec_many_rkvg<float>)->Args({2048, 2})->ArgNames({"d", "threads"})->UseRealTime();
BENCHMARK(BM_matvec_many_rkvg<half>)->Args({2048, 2})->ArgNames({"d", "threads"})->UseRealTime();

BENCHMARK_MAIN();
