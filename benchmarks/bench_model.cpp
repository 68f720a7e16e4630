// End-to-end and per-layer speed at released shapes (issue 5): decode tokens/s (one token per
// forward, the state carried along) and prefill of 512 tokens, for fp32 / bf16 / fp16 weights,
// 1 and 2 threads. Models are random (Init::fast) and built once per shape and type.
//
//   build/benchmarks/bench_model --benchmark_filter='Finch-1.6B' --benchmark_repetitions=3
//
// benchmarks/roofline prints the same figures as fractions of this machine's limits.

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>

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

// Batched decoding (Model::forward_batch): B sequences, one token each per step, weights read
// once per step. tok/s counts all B sequences (aggregate); range(0) = B, 2 threads.
template <class T>
void decode_batch(benchmark::State& st, const bench::Shape& shape) {
    auto model = model_of<T>(shape);
    model.set_threads(2);
    const auto B = static_cast<std::size_t>(st.range(0));
    std::vector<rwkv::State> states;
    for (std::size_t b = 0; b < B; ++b) states.push_back(model.new_state());
    std::vector<rwkv::State*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<rwkv::token> toks(B);
    for (std::size_t b = 0; b < B; ++b) toks[b] = static_cast<rwkv::token>(b * 131 + 1);
    for (auto _ : st) {
        auto logits = model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::State* const>(ptrs));
        benchmark::DoNotOptimize(logits.data());
        for (auto& t : toks) t = (t * 31 + 7) % model.config().vocab_size;
    }
    st.counters["tok/s"] = benchmark::Counter(static_cast<double>(st.iterations() * B), benchmark::Counter::kIsRate);
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
