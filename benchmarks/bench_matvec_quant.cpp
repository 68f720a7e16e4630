// Decode mat-vec throughput of the block formats (matvec_quant.hpp) in bytes of weights read per
// second, at Finch-1.6B matrix shapes, 1 and 2 threads, next to bf16 (matvec.hpp) for scale.
// A format at the bandwidth limit reads its bytes as fast as bf16 does, so its tokens/s gain is
// bf16's bytes over its own (Q8_0: 2/1.0625 = 1.88x; Q4_0: 2/0.5625 = 3.6x).
//
// Each benchmark cycles through enough copies of the matrix to cover >= 1 GiB, so the weights come
// from DRAM as in a real model, not from the L3 cache. Blocks are random bytes with finite fp16
// scales (speed does not depend on the values; encoding a GiB would take minutes).
//
//   bench_matvec_quant --benchmark_filter='rows:7168' --benchmark_repetitions=3
//   RWKV_ISA=avx2 bench_matvec_quant ...   (compare paths)

#include <rwkv/backend/cpu/matvec.hpp>
#include <rwkv/backend/cpu/matvec_quant.hpp>
#include <rwkv/backend/cpu/threads.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace rwkv;
using namespace rwkv::backend::cpu;

constexpr std::size_t cold_bytes = std::size_t{1} << 30;

std::uint32_t lcg(std::uint32_t& s) {
    s = s * 1664525u + 1013904223u;
    return s;
}

struct QCopies {
    std::vector<Weight> w;
    QCopies(dtype t, int rows, int cols) {
        const std::size_t bytes = dtype_bytes(t, cols) * static_cast<std::size_t>(rows);
        const std::size_t n = std::max<std::size_t>(1, (cold_bytes + bytes - 1) / bytes);
        std::uint32_t s = 12345;
        for (std::size_t i = 0; i < n; ++i) {
            std::vector<std::byte> b(bytes);
            for (std::size_t k = 0; k + 4 <= bytes; k += 4) {
                const std::uint32_t v = lcg(s);
                std::memcpy(b.data() + k, &v, 4);
            }
            weights::visit_format(t, [&](auto f) {
                using F = decltype(f);
                if constexpr (F::block_elems > 1) {
                    for (std::size_t blk = 0; blk < bytes; blk += F::block_bytes)
                        for (int at : F::linear_f16_fields) {  // 2^-8 · (1 + something): finite, normal
                            b[blk + static_cast<std::size_t>(at)] = std::byte{0x12};
                            b[blk + static_cast<std::size_t>(at) + 1] = std::byte{0x1c};
                        }
                }
            });
            w.push_back(Weight::owning(t, std::move(b), rows, cols));
        }
    }
};

std::vector<float> activations(int cols) {
    std::vector<float> x(static_cast<std::size_t>(cols));
    std::uint32_t s = 99;
    for (auto& v : x) v = static_cast<float>(lcg(s) >> 8) * 0x1p-24f - 0.5f;
    return x;
}

template <dtype T>
void BM_qmatvec(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    ThreadPool pool(static_cast<int>(state.range(2)));
    QCopies w(T, rows, cols);
    const auto x = activations(cols);
    std::vector<float> y(static_cast<std::size_t>(rows));
    std::size_t i = 0;
    for (auto _ : state) {
        qmatvec(w.w[i], x.data(), y.data(), &pool);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        if (++i == w.w.size()) i = 0;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(w.w[0].bytes()));
    state.SetLabel(std::string(dtype_name(T)) + " " + isa_name(active_isa()));
}

// bf16 through matvec.hpp, the same way (the ratio to it is the decode speed-up).
void BM_bf16(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    ThreadPool pool(static_cast<int>(state.range(2)));
    const std::size_t bytes = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * 2;
    const std::size_t n = std::max<std::size_t>(1, (cold_bytes + bytes - 1) / bytes);
    std::vector<std::vector<bfloat16>> storage(n);
    std::vector<Matrix<bfloat16>> m(n);
    std::uint32_t s = 7;
    for (std::size_t k = 0; k < n; ++k) {
        storage[k].resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
        for (auto& v : storage[k]) v = from_float<bfloat16>(static_cast<float>(lcg(s) >> 8) * 0x1p-24f - 0.5f);
        m[k].data = storage[k].data();
        m[k].rows = rows;
        m[k].cols = cols;
    }
    const auto x = activations(cols);
    std::vector<float> y(static_cast<std::size_t>(rows));
    std::size_t i = 0;
    for (auto _ : state) {
        matvec(m[i], x.data(), y.data(), &pool);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        if (++i == n) i = 0;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
    state.SetLabel(std::string("BF16 ") + isa_name(active_isa()));
}

// Finch-1.6B: ffn key (7168 x 2048) and ffn value (2048 x 7168).
void shapes(benchmark::internal::Benchmark* b) {
    for (auto [rows, cols] : {std::pair{7168, 2048}, std::pair{2048, 7168}})
        for (int threads : {1, 2}) b->Args({rows, cols, threads});
    b->ArgNames({"rows", "cols", "threads"})->UseRealTime();
}

}  // namespace

BENCHMARK(BM_bf16)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q8_0>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q4_0>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q4_1>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q5_0>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q5_1>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q4_k>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q5_k>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q6_k>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::q3_k>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::iq4_nl>)->Apply(shapes);

BENCHMARK_MAIN();
