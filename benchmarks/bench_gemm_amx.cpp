// AMX-BF16 prefill GEMM against the fp32 gemm_rows, one thread, n = 128 activation rows, bfloat16
// weights at the Finch projection shapes (GFLOP/s = 2·n·rows·cols per call):
//   AmxBf16/rows/cols       gemm_rows_amx (X rounded to bf16, AMX tiles)
//   Fp32/rows/cols          gemm_rows on the active path, GemmPrecision::fp32
//   Bf16Dot/rows/cols       gemm_rows with GemmPrecision::bf16_activations (vdpbf16ps), for context
//
//   bench_gemm_amx --benchmark_min_time=0.3

#include <rwkv/backend/cpu/gemm.hpp>
#include <rwkv/backend/cpu/gemm_amx.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

using namespace rwkv;
using namespace rwkv::backend::cpu;

constexpr int n_tokens = 128;

struct Data {
    std::vector<bfloat16> w;
    std::vector<float> x, y;
    Matrix<bfloat16> W;
    Data(int rows, int cols)
        : w(static_cast<std::size_t>(rows) * cols),
          x(static_cast<std::size_t>(n_tokens) * cols),
          y(static_cast<std::size_t>(n_tokens) * rows) {
        std::uint32_t s = 12345u;
        auto next = [&s] {
            s = s * 1664525u + 1013904223u;
            return static_cast<float>(s >> 8) * 0x1p-24f - 0.5f;
        };
        for (auto& e : w) e = bfloat16::from_float(next());
        for (auto& e : x) e = next();
        W.data = w.data();
        W.rows = rows;
        W.cols = cols;
    }
};

void report(benchmark::State& state, int rows, int cols) {
    const double flops = 2.0 * n_tokens * rows * cols;
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_AmxBf16(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    if (!amx_bf16_available()) {
        state.SkipWithError("AMX-BF16 not available");
        return;
    }
    Data d(rows, cols);
    std::vector<float> scratch(gemm_amx_scratch_floats(n_tokens, cols));
    for (auto _ : state) {
        gemm_rows_amx(d.W, d.x.data(), n_tokens, d.y.data(), 0, rows, scratch.data());
        benchmark::DoNotOptimize(d.y.data());
        benchmark::ClobberMemory();
    }
    report(state, rows, cols);
}

template <GemmPrecision P>
void BM_GemmRows(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    if (P == GemmPrecision::bf16_activations && !gemm_bf16_supported<bfloat16>()) {
        state.SkipWithError("AVX512_BF16 not available");
        return;
    }
    Data d(rows, cols);
    std::vector<float> scratch(gemm_scratch_floats(n_tokens, cols));
    for (auto _ : state) {
        gemm_rows(d.W, d.x.data(), n_tokens, d.y.data(), 0, rows, scratch.data(), P);
        benchmark::DoNotOptimize(d.y.data());
        benchmark::ClobberMemory();
    }
    report(state, rows, cols);
}

void shapes(benchmark::internal::Benchmark* b) {
    b->ArgNames({"rows", "cols"});
    b->Args({2048, 2048});
    b->Args({7168, 2048});
    b->Args({2048, 7168});
    b->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_AmxBf16)->Name("AmxBf16")->Apply(shapes);
BENCHMARK(BM_GemmRows<GemmPrecision::fp32>)->Name("Fp32")->Apply(shapes);
BENCHMARK(BM_GemmRows<GemmPrecision::bf16_activations>)->Name("Bf16Dot")->Apply(shapes);

BENCHMARK_MAIN();
