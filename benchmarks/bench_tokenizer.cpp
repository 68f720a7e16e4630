// World tokenizer throughput: vocabulary load, encode and decode on >= 1 MiB of multilingual
// text. Inputs (the same ones tools/compare_tokenizer.py gives the Rust package):
//   text1_raw   — tok_text1.bin (invalid UTF-8 included) repeated to >= 1 MiB;
//   text1_valid — the same text with each ill-formed subpart replaced by U+FFFD, repeated
//                 to >= 1 MiB (the Rust/Python tokenizers only accept valid text).
// Bytes/s reported are input bytes for encode and output bytes for decode.

#include <rwkv/tokenizer.hpp>
#include <rwkv/utf8.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

const std::filesystem::path fixtures_dir = RWKV_FIXTURES_DIR;
const std::filesystem::path vocab = fixtures_dir / "rwkv_vocab_v20230424.txt";

std::string read(const std::filesystem::path& p) {
    std::string s;
    if (std::FILE* f = std::fopen(p.c_str(), "rb")) {
        char buf[65536];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
        std::fclose(f);
    }
    return s;
}

std::string repeat_to_mib(const std::string& unit) {
    std::string s;
    if (unit.empty()) return s;
    while (s.size() < (1u << 20)) s += unit;  // whole copies: valid text stays valid
    return s;
}

const std::string& text(bool valid) {
    static const std::string raw = read(fixtures_dir / "tokenizer/tok_text1.bin");
    static const std::string raw_mib = repeat_to_mib(raw);
    static const std::string valid_mib = [] {
        rwkv::Utf8Stream u;
        std::string v(u.push(raw));
        v += u.flush();
        return repeat_to_mib(v);
    }();
    return valid ? valid_mib : raw_mib;
}

const rwkv::WorldTokenizer& tokenizer() {
    static const rwkv::WorldTokenizer t(vocab);
    return t;
}

void BM_vocab_load(benchmark::State& state) {
    for (auto _ : state) {
        rwkv::WorldTokenizer t(vocab);
        benchmark::DoNotOptimize(t);
    }
    state.counters["trie_MiB"] = static_cast<double>(tokenizer().trie_memory_bytes()) / (1 << 20);
    state.counters["total_MiB"] = static_cast<double>(tokenizer().memory_bytes()) / (1 << 20);
}
BENCHMARK(BM_vocab_load)->Unit(benchmark::kMillisecond);

void BM_encode(benchmark::State& state) {
    const auto& t = tokenizer();
    const std::string& s = text(state.range(0) != 0);
    if (s.empty()) {
        state.SkipWithError("fixtures not found");
        return;
    }
    std::vector<rwkv::token> ids;
    ids.reserve(s.size());
    for (auto _ : state) {
        ids.clear();  // reuse capacity: measure the tokenizer, not the allocator
        t.encode(s, ids);
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
    state.counters["bytes"] = static_cast<double>(s.size());
    state.counters["tokens"] = static_cast<double>(ids.size());
}
BENCHMARK(BM_encode)->ArgName("valid_utf8")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_encode_alloc(benchmark::State& state) {  // the convenience overload, fresh vector
    const auto& t = tokenizer();
    const std::string& s = text(false);
    for (auto _ : state) benchmark::DoNotOptimize(t.encode(s));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_encode_alloc)->Unit(benchmark::kMicrosecond);

void BM_decode(benchmark::State& state) {
    const auto& t = tokenizer();
    const std::string& s = text(state.range(0) != 0);
    const auto ids = t.encode(s);
    std::string out;
    out.reserve(s.size() + 64);
    for (auto _ : state) {
        out.clear();
        t.decode(ids, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out != s) state.SkipWithError("decode(encode(x)) != x");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_decode)->ArgName("valid_utf8")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void BM_stream_decode(benchmark::State& state) {  // generation path: id -> printable UTF-8
    const auto& t = tokenizer();
    const std::string& s = text(false);
    const auto ids = t.encode(s);
    rwkv::Utf8Stream u;
    std::size_t n = 0;
    for (auto _ : state) {
        for (rwkv::token id : ids) n += u.push_token(t, id).size();
        n += u.flush().size();
    }
    benchmark::DoNotOptimize(n);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}
BENCHMARK(BM_stream_decode)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
