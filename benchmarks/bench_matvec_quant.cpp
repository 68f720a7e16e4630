// Decode mat-vec throughput of the block formats (matvec_quant.hpp) in bytes of weights read per
// second, at the Finch 0.4B and 1.6B ffn shapes, 1 and 2 threads, next to bf16 (matvec.hpp) and a
// plain read of the same bytes (BM_read: the machine's read bandwidth, 8 streams per thread, as
// rwkv-roofline measures it). A format at the bandwidth limit reads its bytes as fast as BM_read
// does, so its tokens/s gain over bf16 is bf16's bytes over its own (Q8_0: 2/1.0625 = 1.88x;
// Q4_0: 2/0.5625 = 3.6x).
//
// Each cold benchmark cycles through enough copies of the matrix to cover >= 256 MiB, so the weights
// come from DRAM as in a real model, not from the L3 cache. Blocks are random bytes with finite
// fp16 scales (speed does not depend on the values; encoding a GiB would take minutes).
// BM_hot_* run one 512 x 2048 matrix that stays in L2 on one thread: the kernel's compute rate
// (weights per second, "items_per_second"), i.e. how far above the bandwidth it could go.
//
//   bench_matvec_quant --benchmark_filter='rows:7168' --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true     (formats interleaved on a noisy machine)
//   bench_matvec_quant --benchmark_filter=hot            (compute rate per kernel)
//   RWKV_ISA=avx2 bench_matvec_quant ...   (compare paths)

#include <rwkv/backend/cpu/matvec.hpp>
#include <rwkv/backend/cpu/matvec_q8act.hpp>
#include <rwkv/backend/cpu/matvec_quant.hpp>
#include <rwkv/backend/cpu/threads.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace rwkv;
using namespace rwkv::backend::cpu;

constexpr std::size_t cold_bytes = std::size_t{1} << 28;  // 256 MiB: 8x the L3 of the dev machine

std::uint32_t lcg(std::uint32_t& s) {
    s = s * 1664525u + 1013904223u;
    return s;
}

struct QCopies {
    std::vector<Weight> w;
    QCopies(dtype t, int rows, int cols, std::size_t copies = 0) {
        const std::size_t bytes = dtype_bytes(t, cols) * static_cast<std::size_t>(rows);
        const std::size_t n = copies ? copies : std::max<std::size_t>(1, (cold_bytes + bytes - 1) / bytes);
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

// The machine's read bandwidth over the same bytes as a bf16 matrix of this shape (sizes as
// BM_bf16, >= 256 MiB cycled): each thread sums 8 interleaved streams of its share of the rows,
// split as the mat-vec splits them, with the widest vectors the CPU has.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f"))) float sum8_avx512(const float* p, std::size_t stride, std::size_t len) {
    __m512 acc[8];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (std::size_t s = 0; s < 8; ++s) acc[s] = _mm512_add_ps(acc[s], _mm512_loadu_ps(p + s * stride + i));
    for (int s = 1; s < 8; ++s) acc[0] = _mm512_add_ps(acc[0], acc[s]);
    float lanes[16];
    _mm512_storeu_ps(lanes, acc[0]);
    float t = 0.0f;
    for (float v : lanes) t += v;
    return t;
}
#endif
float sum8(const float* p, std::size_t stride, std::size_t len) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa_supported(Isa::avx512)) return sum8_avx512(p, stride, len);
#endif
    float acc[8][16] = {};
    for (std::size_t i = 0; i + 16 <= len; i += 16)
        for (std::size_t s = 0; s < 8; ++s)
            for (std::size_t l = 0; l < 16; ++l) acc[s][l] += p[s * stride + i + l];
    float t = 0.0f;
    for (auto& a : acc)
        for (float v : a) t += v;
    return t;
}

void BM_read(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    const int threads = static_cast<int>(state.range(2));
    ThreadPool pool(threads);
    const std::size_t floats = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) / 2;
    const std::size_t n = std::max<std::size_t>(1, (cold_bytes + floats * 4 - 1) / (floats * 4));
    std::vector<std::vector<float>> m(n, std::vector<float>(floats, 1.0f));
    std::vector<float> sink(static_cast<std::size_t>(threads));
    std::size_t i = 0;
    for (auto _ : state) {
        const float* p = m[i].data();
        pool.run([&](int t, int nt) {
            const std::size_t per = floats / static_cast<std::size_t>(nt), len = per / 8 / 16 * 16;
            sink[static_cast<std::size_t>(t)] = sum8(p + per * static_cast<std::size_t>(t), len, len);
        });
        benchmark::DoNotOptimize(sink.data());
        if (++i == n) i = 0;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(floats * 4));
    state.SetLabel("read");
}

// Hot: one 512 x 2048 matrix, one thread, no pool (the kernel's compute rate).
constexpr int hot_rows = 512, hot_cols = 2048;

template <dtype T>
void BM_hot(benchmark::State& state) {
    QCopies w(T, hot_rows, hot_cols, 1);
    const auto x = activations(hot_cols);
    std::vector<float> y(hot_rows);
    for (auto _ : state) {
        qmatvec(w.w[0], x.data(), y.data(), nullptr);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * hot_rows * hot_cols);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(w.w[0].bytes()));
    state.SetLabel(std::string(dtype_name(T)) + " " + isa_name(active_isa()));
}

// The opt-in int8-activation kernel (matvec_q8act.hpp), hot and cold as above; the activation
// quantization is inside the timed call, as in a decode.
template <dtype T>
void BM_hot_i8(benchmark::State& state) {
    QCopies w(T, hot_rows, hot_cols, 1);
    const auto x = activations(hot_cols);
    std::vector<float> y(hot_rows);
    std::vector<std::byte> scratch;
    for (auto _ : state) {
        q8act_matvec(w.w[0], x.data(), y.data(), nullptr, scratch);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * hot_rows * hot_cols);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(w.w[0].bytes()));
    state.SetLabel(std::string(dtype_name(T)) + " int8-act " + isa_name(active_isa()) +
                   (avx512_vnni_supported() ? " vnni" : ""));
}

template <dtype T>
void BM_q8act(benchmark::State& state) {
    const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
    ThreadPool pool(static_cast<int>(state.range(2)));
    QCopies w(T, rows, cols);
    const auto x = activations(cols);
    std::vector<float> y(static_cast<std::size_t>(rows));
    std::vector<std::byte> scratch;
    std::size_t i = 0;
    for (auto _ : state) {
        q8act_matvec(w.w[i], x.data(), y.data(), &pool, scratch);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        if (++i == w.w.size()) i = 0;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(w.w[0].bytes()));
    state.SetLabel(std::string(dtype_name(T)) + " int8-act " + isa_name(active_isa()));
}

void BM_hot_bf16(benchmark::State& state) {
    std::vector<bfloat16> storage(static_cast<std::size_t>(hot_rows) * hot_cols);
    std::uint32_t s = 7;
    for (auto& v : storage) v = from_float<bfloat16>(static_cast<float>(lcg(s) >> 8) * 0x1p-24f - 0.5f);
    Matrix<bfloat16> m;
    m.data = storage.data();
    m.rows = hot_rows;
    m.cols = hot_cols;
    const auto x = activations(hot_cols);
    std::vector<float> y(hot_rows);
    for (auto _ : state) {
        matvec(m, x.data(), y.data(), nullptr);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * hot_rows * hot_cols);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * hot_rows * hot_cols * 2);
    state.SetLabel(std::string("BF16 ") + isa_name(active_isa()));
}

// Finch-0.4B ffn key (3584 x 1024) and value (1024 x 3584); Finch-1.6B ffn key (7168 x 2048) and
// value (2048 x 7168).
void shapes(benchmark::internal::Benchmark* b) {
    for (auto [rows, cols] :
         {std::pair{3584, 1024}, std::pair{1024, 3584}, std::pair{7168, 2048}, std::pair{2048, 7168}})
        for (int threads : {1, 2}) b->Args({rows, cols, threads});
    b->ArgNames({"rows", "cols", "threads"})->UseRealTime();
}

}  // namespace

BENCHMARK(BM_read)->Apply(shapes);
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
BENCHMARK(BM_qmatvec<dtype::q2_k>)->Apply(shapes);
BENCHMARK(BM_qmatvec<dtype::iq4_nl>)->Apply(shapes);

BENCHMARK(BM_hot_bf16);
BENCHMARK(BM_hot<dtype::q8_0>);
BENCHMARK(BM_hot<dtype::q4_0>);
BENCHMARK(BM_hot<dtype::q4_1>);
BENCHMARK(BM_hot<dtype::q5_0>);
BENCHMARK(BM_hot<dtype::q5_1>);
BENCHMARK(BM_hot<dtype::iq4_nl>);
BENCHMARK(BM_hot_i8<dtype::q8_0>);
BENCHMARK(BM_hot_i8<dtype::q4_0>);
BENCHMARK(BM_hot_i8<dtype::q4_1>);
BENCHMARK(BM_hot_i8<dtype::q5_0>);
BENCHMARK(BM_hot_i8<dtype::q5_1>);
BENCHMARK(BM_hot_i8<dtype::iq4_nl>);
BENCHMARK(BM_q8act<dtype::q8_0>)->Apply(shapes);
BENCHMARK(BM_q8act<dtype::q4_0>)->Apply(shapes);
BENCHMARK(BM_q8act<dtype::q4_1>)->Apply(shapes);
BENCHMARK(BM_q8act<dtype::q5_0>)->Apply(shapes);
BENCHMARK(BM_q8act<dtype::q5_1>)->Apply(shapes);
BENCHMARK(BM_q8act<dtype::iq4_nl>)->Apply(shapes);
BENCHMARK(BM_hot<dtype::q2_k>);
BENCHMARK(BM_hot<dtype::q3_k>);
BENCHMARK(BM_hot<dtype::q4_k>);
BENCHMARK(BM_hot<dtype::q5_k>);
BENCHMARK(BM_hot<dtype::q6_k>);

BENCHMARK_MAIN();
