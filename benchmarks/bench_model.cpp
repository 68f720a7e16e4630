// End-to-end and per-layer speed at released shapes (issue 5): decode tokens/s (one token per
// forward, the state carried along) and prefill of 512 tokens, for fp32 / bf16 / fp16 weights,
// 1 and 2 threads. Models are random (Init::fast) and built once per shape and type.
//
//   build/benchmarks/bench_model --benchmark_filter='Finch-1.6B' --benchmark_repetitions=3
//
// benchmarks/roofline prints the same figures as fractions of this machine's limits.

#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <iterator>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "shapes.hpp"

namespace {

template <class T>
const rwkv::Model<T>& model_of(const bench::Shape& s) {
    static std::map<std::string, std::unique_ptr<rwkv::Model<T>>> cache;
    auto& m = cache[s.name];
    if (!m) m = std::make_unique<rwkv::Model<T>>(rwkv::Model<T>::random(bench::config_of(s), 1, rwkv::Init::fast));
    return *m;
}

template <class T>
void decode(benchmark::State& st, const bench::Shape& shape) {
    auto model = model_of<T>(shape);  // shares the weights; owns its thread setting
    model.set_threads(static_cast<int>(st.range(0)));
    auto s = model.new_state();
    rwkv::token t = 1;
    for (auto _ : st) {
        auto logits = model.forward(t, s);
        benchmark::DoNotOptimize(logits.data());
        t = (t * 31 + 7) % model.config().vocab_size;
    }
    st.counters["tok/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
    st.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(st.iterations()) *
                                                   bench::weight_bytes_per_token<T>(model.config())));
}

template <class T>
void prefill(benchmark::State& st, const bench::Shape& shape) {
    auto model = model_of<T>(shape);
    model.set_threads(static_cast<int>(st.range(0)));
    std::vector<rwkv::token> prompt(512);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<rwkv::token>((i * 977 + 3) % 65536);
    for (auto _ : st) {
        auto s = model.new_state();
        auto logits = model.forward(std::span<const rwkv::token>(prompt), s);
        benchmark::DoNotOptimize(logits.data());
    }
    st.counters["tok/s"] =
        benchmark::Counter(static_cast<double>(st.iterations() * prompt.size()), benchmark::Counter::kIsRate);
}

// CPU seconds of the calling thread or (process = true) of the whole process.
double cpu_seconds(bool process) {
    timespec ts{};
    clock_gettime(process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The fp32 FMA ceiling of `threads` threads in flop/s: each thread runs 12 independent chains of
// 512-bit FMAs (AVX-512) or 256-bit ones (AVX2 + FMA) on registers for ~0.1 s; the best of 3.
// The ceiling for batched decoding, which is compute-bound from a few sequences on. Each thread's
// rate is taken per second of its own CPU time, so other programs on a shared machine lower it
// little (they take time slices, not FMA throughput).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RWKV_FMA12(fma, a, m, b)                                                                    \
    a##0 = fma(a##0, m, b), a##1 = fma(a##1, m, b), a##2 = fma(a##2, m, b), a##3 = fma(a##3, m, b), \
    a##4 = fma(a##4, m, b), a##5 = fma(a##5, m, b), a##6 = fma(a##6, m, b), a##7 = fma(a##7, m, b), \
    a##8 = fma(a##8, m, b), a##9 = fma(a##9, m, b), a##10 = fma(a##10, m, b), a##11 = fma(a##11, m, b)
__attribute__((target("avx512f"))) double fma_chains_512(long steps) {
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,
           a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < steps; ++i) {
        RWKV_FMA12(_mm512_fmadd_ps, a, m, b);
        // Opaque to the compiler, so it can neither merge the identical chains nor drop any.
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512 s = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
        _mm512_add_ps(
            _mm512_add_ps(a4, a5),
            _mm512_add_ps(_mm512_add_ps(a6, a7), _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)))));
    float out[16];
    _mm512_storeu_ps(out, s);
    benchmark::DoNotOptimize(out[0]);
    return static_cast<double>(steps) * 12 * 16 * 2;
}
__attribute__((target("avx2,fma"))) double fma_chains_256(long steps) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,
           a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < steps; ++i) {
        RWKV_FMA12(_mm256_fmadd_ps, a, m, b);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
        __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
    }
    const __m256 s = _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
        _mm256_add_ps(
            _mm256_add_ps(a4, a5),
            _mm256_add_ps(_mm256_add_ps(a6, a7), _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)))));
    float out[8];
    _mm256_storeu_ps(out, s);
    benchmark::DoNotOptimize(out[0]);
    return static_cast<double>(steps) * 12 * 8 * 2;
}
// The same with vdpbf16ps (AVX512_BF16): 16 lanes x 2 bf16 products per instruction.
__attribute__((target("avx512f,avx512bf16"))) double dot_chains_512(long steps) {
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,
           a10 = a0, a11 = a0;
    const __m512bh m = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (long i = 0; i < steps; ++i) {
        RWKV_FMA12(_mm512_dpbf16_ps, a, m, b);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const __m512 s = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
        _mm512_add_ps(
            _mm512_add_ps(a4, a5),
            _mm512_add_ps(_mm512_add_ps(a6, a7), _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)))));
    float out[16];
    _mm512_storeu_ps(out, s);
    benchmark::DoNotOptimize(out[0]);
    return static_cast<double>(steps) * 12 * 32 * 2;
}
#undef RWKV_FMA12
#endif

// bf16_dot: the vdpbf16ps ceiling instead (0 without AVX512_BF16), the limit of the opt-in
// bf16-activation decode (Model::set_bf16_activations).
double fma_ceiling(int threads, bool bf16_dot = false) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const bool wide = __builtin_cpu_supports("avx512f");
    if (bf16_dot && !rwkv::backend::cpu::avx512_bf16_supported()) return 0.0;
    if (!wide && !__builtin_cpu_supports("fma")) return 0.0;
    double best = 0.0;
    for (int round = 0; round < 3; ++round) {
        const long steps = 4'000'000;
        std::vector<double> rate(static_cast<std::size_t>(threads));
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const double c0 = cpu_seconds(false);
                const double flops = bf16_dot ? dot_chains_512(steps)
                                     : wide   ? fma_chains_512(steps)
                                              : fma_chains_256(steps);
                rate[static_cast<std::size_t>(t)] = flops / (cpu_seconds(false) - c0);
            });
        for (auto& th : pool) th.join();
        double total = 0.0;
        for (double r : rate) total += r;
        best = std::max(best, total);
    }
    return best;
#else
    (void)threads;
    (void)bf16_dot;
    return 0.0;
#endif
}

// Multiply-adds ×2 of one decoded token: every projection and the head (bench::flops_per_prefill_token
// counts the head only for a prompt's last token, i.e. not per token).
double flops_per_decode_token(const rwkv::Config& c) {
    return bench::flops_per_prefill_token(c) + 2.0 * c.vocab_size * c.n_embd;
}

// Batched decoding (Model::forward_batch): B sequences, one token each per step, weights read
// once per step. tok/s counts all B sequences (aggregate); range(0) = B, 2 threads; Time is per
// step. Also reported: the arithmetic rate, and as a fraction of the fp32 FMA ceiling of 2 threads
// measured just before (ceiling%: batched decoding turns compute-bound from a few sequences on).
// bf16act: the opt-in bf16-activation mode (Model::set_bf16_activations), against the vdpbf16ps
// ceiling.
template <class T, bool bf16act = false>
void decode_batch(benchmark::State& st, const bench::Shape& shape) {
    auto model = model_of<T>(shape);
    model.set_threads(2);
    model.set_bf16_activations(bf16act);
    const auto B = static_cast<std::size_t>(st.range(0));
    std::vector<rwkv::State> states;
    for (std::size_t b = 0; b < B; ++b) states.push_back(model.new_state());
    std::vector<rwkv::State*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<rwkv::token> toks(B);
    for (std::size_t b = 0; b < B; ++b) toks[b] = static_cast<rwkv::token>(b * 131 + 1);
    const double ceiling = fma_ceiling(2, bf16act);
    const double cpu0 = cpu_seconds(true);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : st) {
        auto logits = model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::State* const>(ptrs));
        benchmark::DoNotOptimize(logits.data());
        for (auto& t : toks) t = (t * 31 + 7) % model.config().vocab_size;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds(true) - cpu0;
    const double tokens = static_cast<double>(st.iterations()) * static_cast<double>(B);
    const double flops = tokens * flops_per_decode_token(model.config()) / seconds;
    st.counters["tok/s"] = tokens / seconds;
    // Per CPU second of the 2 threads (×2): the rate of 2 cores kept busy, less sensitive to
    // other programs on a shared machine (waits in the pool spin, so they count as busy).
    st.counters["tok/cpu_s2"] = 2.0 * tokens / cpu;
    st.counters["GFLOP/s"] = flops / 1e9;
    st.counters["ceil_GFLOP/s"] = ceiling / 1e9;
    if (ceiling > 0.0) {
        st.counters["ceiling%"] = 100.0 * flops / ceiling;
        st.counters["ceiling%_cpu"] = 100.0 * 2.0 * tokens * flops_per_decode_token(model.config()) / cpu / ceiling;
    }
}

// Batched-decode scaling measured in one run: aggregate tok/s at B = 1, 2, 4, 8, 16, 32 (2
// threads), the Bs interleaved round after round (best of 4 rounds of >= 0.4 s each) so that a
// shared machine's load hits them alike; B16/B1 is the aggregate speedup of 16 sequences over one.
// range(0) = 1: the opt-in bf16-activation mode. Also the mode's ceiling (fp32 FMA, or
// vdpbf16ps) and B16's fraction of it.
template <class T>
void decode_scaling(benchmark::State& st, const bench::Shape& shape) {
    auto model = model_of<T>(shape);
    model.set_threads(2);
    const bool bf16act = st.range(0) != 0;
    model.set_bf16_activations(bf16act);
    const int Bs[] = {1, 2, 4, 8, 16, 32};
    constexpr std::size_t nB = std::size(Bs);
    std::vector<std::vector<rwkv::State>> states(nB);
    std::vector<std::vector<rwkv::State*>> ptrs(nB);
    std::vector<std::vector<rwkv::token>> toks(nB);
    for (std::size_t i = 0; i < nB; ++i) {
        for (int b = 0; b < Bs[i]; ++b) states[i].push_back(model.new_state());
        for (auto& s : states[i]) ptrs[i].push_back(&s);
        for (int b = 0; b < Bs[i]; ++b) toks[i].push_back(static_cast<rwkv::token>(b * 131 + 1));
    }
    const int V = model.config().vocab_size;
    auto step = [&](std::size_t i) {
        auto logits =
            model.forward_batch(std::span<const rwkv::token>(toks[i]), std::span<rwkv::State* const>(ptrs[i]));
        benchmark::DoNotOptimize(logits.data());
        for (auto& t : toks[i]) t = (t * 31 + 7) % V;
    };
    const double ceiling = fma_ceiling(2, bf16act);
    // Wall-clock rate, and the rate per CPU second of the process x 2 (2 cores kept busy: on a
    // shared machine other programs take time slices, which this does not count).
    std::vector<double> best(nB, 0.0), best_cpu(nB, 0.0);
    for (auto _ : st) {
        for (std::size_t i = 0; i < nB; ++i) step(i);  // warm-up
        for (int round = 0; round < 4; ++round)
            for (std::size_t i = 0; i < nB; ++i) {
                int steps = 0;
                const double c0 = cpu_seconds(true);
                const auto t0 = std::chrono::steady_clock::now();
                double sec = 0.0;
                do {
                    step(i);
                    ++steps;
                    sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                } while (sec < 0.4);
                const double tokens = static_cast<double>(steps) * Bs[i];
                best[i] = std::max(best[i], tokens / sec);
                best_cpu[i] = std::max(best_cpu[i], 2.0 * tokens / (cpu_seconds(true) - c0));
            }
    }
    for (std::size_t i = 0; i < nB; ++i) {
        st.counters["B" + std::to_string(Bs[i]) + "_tok/s"] = best[i];
        st.counters["B" + std::to_string(Bs[i]) + "_tok/cpu_s2"] = best_cpu[i];
    }
    st.counters["B16/B1"] = best[4] / best[0];
    st.counters["B16/B1_cpu"] = best_cpu[4] / best_cpu[0];
    st.counters["ceil_GFLOP/s"] = ceiling / 1e9;
    const double f = flops_per_decode_token(model.config());
    if (ceiling > 0.0) {
        st.counters["B16_ceiling%_cpu"] = 100.0 * best_cpu[4] * f / ceiling;
        st.counters["B32_ceiling%_cpu"] = 100.0 * best_cpu[5] * f / ceiling;
    }
}

// One layer's TimeMix + ChannelMix for one token (no head, no embedding): per-layer overhead.
template <class T>
void one_layer(benchmark::State& st, const bench::Shape& shape) {
    bench::Shape one = shape;
    one.n_layer = 1;
    one.vocab = 16;
    auto model = rwkv::Model<T>::random(bench::config_of(one), 1, rwkv::Init::fast);
    model.set_threads(static_cast<int>(st.range(0)));
    auto s = model.new_state();
    for (auto _ : st) benchmark::DoNotOptimize(model.forward(rwkv::token{3}, s).data());
    st.counters["layers/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

template <class T>
void register_all(const bench::Shape& s, const char* type) {
    const std::string base = std::string(s.name) + "/" + type;
    benchmark::RegisterBenchmark((base + "/decode").c_str(), decode<T>, s)->Arg(1)->Arg(2)->UseRealTime()->MinTime(2.0);
    benchmark::RegisterBenchmark((base + "/prefill512").c_str(), prefill<T>, s)
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
    benchmark::RegisterBenchmark((base + "/layer").c_str(), one_layer<T>, s)->Arg(1)->Arg(2)->UseRealTime();
    benchmark::RegisterBenchmark((base + "/decode_batch").c_str(), decode_batch<T>, s)
        ->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->Arg(16)
        ->Arg(32)
        ->UseRealTime()
        ->MinTime(1.0);
    benchmark::RegisterBenchmark((base + "/decode_scaling").c_str(), decode_scaling<T>, s)
        ->Arg(0)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kSecond);
    if constexpr (std::is_same_v<T, rwkv::bfloat16>) {
        // The opt-in bf16-activation mode (vdpbf16ps), bf16 weights only.
        benchmark::RegisterBenchmark((base + "/decode_batch_bf16act").c_str(), decode_batch<T, true>, s)
            ->Arg(1)
            ->Arg(2)
            ->Arg(4)
            ->Arg(8)
            ->Arg(16)
            ->Arg(32)
            ->UseRealTime()
            ->MinTime(1.0);
        benchmark::RegisterBenchmark((base + "/decode_scaling").c_str(), decode_scaling<T>, s)
            ->Arg(1)
            ->Iterations(1)
            ->UseRealTime()
            ->Unit(benchmark::kSecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
    for (const auto* s : {&bench::eagle_0b4, &bench::finch_0b4, &bench::finch_1b6}) {
        register_all<rwkv::bfloat16>(*s, "bf16");
        register_all<rwkv::half>(*s, "fp16");
        register_all<float>(*s, "fp32");
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
