// Prefill GEMM throughput (GFLOP/s = 2·n·rows·cols per call) for a chunk of n = 64 activation rows
// at the Finch 1.6B projection shapes, fp32/bf16/fp16 weights, 1 and 2 threads:
//   Gemm/...         gemm() on the active path (RWKV_ISA=avx2|generic to compare paths);
//                    <bfloat16, bf16_activations>: the opt-in vdpbf16ps mode
//   EigenBands/...   the previous approach (bands of widened weights through Eigen's GEMM)
//   EigenSgemm/...   plain Eigen fp32 GEMM on one thread with this build's flags
// The weights (a few to 28 MiB) stay mostly in L3, as one projection does during prefill.
//
//   bench_gemm --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <rwkv/backend/cpu/gemm.hpp>
#include <rwkv/backend/cpu/threads.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

using namespace rwkv;
using namespace rwkv::backend::cpu;

constexpr int n_tokens = 64;

template <class T>
void fill(std::vector<T>& v, std::uint32_t seed) {
    std::uint32_t s = seed * 2654435761u + 1u;
    for (auto& e : v) {
        s = s * 1664525u + 1013904223u;
        e = from_float<T>(static_cast<float>(s >> 8) * 0x1p-24f - 0.5f);
    }
}

struct Problem {
    int rows, cols;
};

template <class T>
struct Data {
    std::vector<T> w;
    std::vector<float> x, y;
    Matrix<T> W;
    Data(int rows, int cols)
        : w(static_cast<std::size_t>(rows) * cols),
          x(static_cast<std::size_t>(n_tokens) * cols),
          y(static_cast<std::size_t>(n_tokens) * rows) {
        fill(w, 1);
        fill(x, 2);
        W.data = w.data();
        W.rows = rows;
        W.cols = cols;
    }
};

void report(benchmark::State& state, int rows, int cols) {
    const double flops = 2.0 * n_tokens * rows * cols;
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T, GemmPrecision P = GemmPrecision::fp32>
void BM_Gemm(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    const int threads = static_cast<int>(state.range(2));
    Data<T> d(rows, cols);
    ThreadPool pool(threads);
    std::vector<std::vector<float>> scratch;
    for (auto _ : state) {
        gemm(d.W, d.x.data(), n_tokens, d.y.data(), &pool, scratch, P);
        benchmark::DoNotOptimize(d.y.data());
        benchmark::ClobberMemory();
    }
    report(state, rows, cols);
    const bool bf16 = P == GemmPrecision::bf16_activations && gemm_bf16_supported<T>();
    state.SetLabel(bf16 ? "avx512_bf16" : isa_name(active_isa()));
}

// The band approach gemm() replaces (matmul.hpp before it): widen a band, Eigen GEMM on it.
template <class T>
void BM_EigenBands(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    const int threads = static_cast<int>(state.range(2));
    Data<T> d(rows, cols);
    ThreadPool pool(threads);
    std::vector<std::vector<float>> scratch(static_cast<std::size_t>(threads),
                                            std::vector<float>(gemm_scratch_floats(n_tokens, cols)));
    for (auto _ : state) {
        pool.run([&](int t, int nt) {
            const int band = gemm_detail::eigen_band;
            const int bands = (rows + band - 1) / band;
            const int b0 = bands * t / nt, b1 = bands * (t + 1) / nt;
            gemm_detail::gemm_rows_eigen(d.W, d.x.data(), n_tokens, d.y.data(), b0 * band, std::min(rows, b1 * band),
                                         scratch[static_cast<std::size_t>(t)].data());
        });
        benchmark::DoNotOptimize(d.y.data());
        benchmark::ClobberMemory();
    }
    report(state, rows, cols);
}

// One core's Eigen sgemm, Y = X·Wᵀ with fp32 W (the ceiling the issue measures prefill against,
// here with this build's flags; see the report for -march=native).
void BM_EigenSgemm(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    Data<float> d(rows, cols);
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMajor> x(d.x.data(), n_tokens, cols), w(d.w.data(), rows, cols);
    Eigen::Map<RowMajor> y(d.y.data(), n_tokens, rows);
    for (auto _ : state) {
        y.noalias() = x * w.transpose();
        benchmark::DoNotOptimize(d.y.data());
        benchmark::ClobberMemory();
    }
    report(state, rows, cols);
}

void shapes(benchmark::internal::Benchmark* b) {
    for (int threads : {1, 2})
        for (auto [rows, cols] : {std::pair{2048, 2048}, std::pair{7168, 2048}, std::pair{2048, 7168}})
            b->Args({rows, cols, threads});
    b->ArgNames({"rows", "cols", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_Gemm<float>)->Apply(shapes);
BENCHMARK(BM_Gemm<bfloat16>)->Apply(shapes);
BENCHMARK(BM_Gemm<half>)->Apply(shapes);
BENCHMARK(BM_Gemm<bfloat16, GemmPrecision::bf16_activations>)->Apply(shapes);
BENCHMARK(BM_EigenBands<float>)->Apply(shapes);
BENCHMARK(BM_EigenBands<bfloat16>)->Apply(shapes);
BENCHMARK(BM_EigenBands<half>)->Apply(shapes);
BENCHMARK(BM_EigenSgemm)
    ->Args({2048, 2048})
    ->Args({7168, 2048})
    ->Args({2048, 7168})
    ->ArgNames({"rows", "cols"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
