// WKV kernels: the one-token step (scalar reference vs each SIMD kernel this CPU runs) and the
// WKV part of a 512-token prefill (token-by-token steps vs the chunked kernel). Shapes: one layer
// of Finch 1.6B (H = 32, N = 64) and of the 0.4B models (H = 16, N = 64). items/s = tokens/s.
// Decays: ω uniform in [-6, 0] (w from 0.9975 to 0.37), inputs uniform in [-1, 1].

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <rwkv/backend/cpu/wkv.hpp>
#include <rwkv/backend/cpu/wkv_chunked.hpp>
#include <vector>

namespace ck = rwkv::backend::cpu;

namespace {

struct Layer {
    int H, N, T;
    std::size_t A;
    std::vector<float> r, k, v, w, lw, u, S, y;
    Layer(int H_, int N_, int T_) : H(H_), N(N_), T(T_), A(static_cast<std::size_t>(H_ * N_)) {
        std::mt19937 rng(42);
        std::uniform_real_distribution<float> d(-1, 1), om(-6, 0);
        const std::size_t n = static_cast<std::size_t>(T) * A;
        auto fill = [&](std::vector<float>& x, std::size_t m) {
            x.resize(m);
            for (auto& e : x) e = d(rng);
        };
        fill(r, n);
        fill(k, n);
        fill(v, n);
        fill(u, A);
        fill(S, A * static_cast<std::size_t>(N));
        lw.resize(n);
        w.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            lw[i] = -std::exp(om(rng));
            w[i] = std::exp(lw[i]);
        }
        y.assign(n, 0.0f);
    }
};

void step(benchmark::State& st, ck::wkv_isa isa) {
    if (!ck::wkv_isa_supported(isa)) {
        st.SkipWithError("kernel not supported on this CPU");
        return;
    }
    Layer L(static_cast<int>(st.range(0)), static_cast<int>(st.range(1)), 1);
    for (auto _ : st) {
        ck::wkv_step_isa(isa, L.H, L.N, L.r.data(), L.k.data(), L.v.data(), L.w.data(), L.u.data(), L.S.data(),
                         L.y.data());
        benchmark::DoNotOptimize(L.y.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations());
    st.counters["state_GB/s"] = benchmark::Counter(double(st.iterations()) * 2.0 * double(L.S.size() * sizeof(float)),
                                                   benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_step_reference(benchmark::State& st) { step(st, ck::wkv_isa::scalar); }
void BM_step_xsimd(benchmark::State& st) { step(st, ck::wkv_isa::xsimd); }
void BM_step_avx2(benchmark::State& st) { step(st, ck::wkv_isa::avx2); }
void BM_step_avx512(benchmark::State& st) { step(st, ck::wkv_isa::avx512); }
void BM_step_dispatch(benchmark::State& st) {
    Layer L(static_cast<int>(st.range(0)), static_cast<int>(st.range(1)), 1);
    for (auto _ : st) {
        ck::wkv_step(L.H, L.N, L.r.data(), L.k.data(), L.v.data(), L.w.data(), L.u.data(), L.S.data(), L.y.data());
        benchmark::DoNotOptimize(L.y.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations());
}

// Prefill: args H, N, T.
void BM_prefill_steps(benchmark::State& st) {
    Layer L(static_cast<int>(st.range(0)), static_cast<int>(st.range(1)), static_cast<int>(st.range(2)));
    for (auto _ : st) {
        for (std::size_t t = 0; t < static_cast<std::size_t>(L.T); ++t) {
            const std::size_t o = t * L.A;
            ck::wkv_step(L.H, L.N, L.r.data() + o, L.k.data() + o, L.v.data() + o, L.w.data() + o, L.u.data(),
                         L.S.data(), L.y.data() + o);
        }
        benchmark::DoNotOptimize(L.y.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * L.T);
}

// Prefill: args H, N, T, Q, static decay (x052: one λ row, stride 0).
void BM_prefill_chunked(benchmark::State& st) {
    Layer L(static_cast<int>(st.range(0)), static_cast<int>(st.range(1)), static_cast<int>(st.range(2)));
    const int Q = static_cast<int>(st.range(3));
    const std::size_t stride = st.range(4) ? 0 : L.A;
    std::vector<float> scratch(ck::wkv_chunked_scratch_floats(L.N, Q));
    for (auto _ : st) {
        ck::wkv_chunked(L.H, L.N, L.T, L.r.data(), L.k.data(), L.v.data(), L.lw.data(), stride, L.u.data(), L.S.data(),
                        L.y.data(), scratch.data(), Q);
        benchmark::DoNotOptimize(L.y.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(st.iterations() * L.T);
}

}  // namespace

#define RWKV_STEP_ARGS ArgNames({"H", "N"})->Args({32, 64})->Args({16, 64})
BENCHMARK(BM_step_reference)->RWKV_STEP_ARGS;
BENCHMARK(BM_step_xsimd)->RWKV_STEP_ARGS;
BENCHMARK(BM_step_avx2)->RWKV_STEP_ARGS;
BENCHMARK(BM_step_avx512)->RWKV_STEP_ARGS;
BENCHMARK(BM_step_dispatch)->RWKV_STEP_ARGS;
BENCHMARK(BM_prefill_steps)
    ->ArgNames({"H", "N", "T"})
    ->Args({32, 64, 512})
    ->Args({16, 64, 512})
    ->Args({2, 64, 512})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prefill_chunked)
    ->ArgNames({"H", "N", "T", "Q", "static"})
    ->ArgsProduct({{32, 16}, {64}, {512}, {16, 32, 64}, {0}})
    ->Args({32, 64, 512, 64, 1})
    ->Args({2, 64, 512, 64, 0})
    ->Args({2, 64, 512, 16, 0})
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
