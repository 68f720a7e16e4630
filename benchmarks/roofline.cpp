// rwkv-roofline: measures this machine's read bandwidth and fp32 GEMM rate, then decode and
// 512-token prefill speed at released shapes in the same run, and prints each end-to-end figure
// as a fraction of its limit (issue 5):
//   decode floor   = bandwidth / bytes of weights read per token
//   prefill ceiling = (one core's Eigen sgemm rate × threads) / flops per token
//
//   build/benchmarks/rwkv-roofline [--threads N] [--shapes all|1b6|0b4] [--types bf16,fp16,fp32,q8_0,q4_k,...]
//                                  [--no-limits] [--no-opt-in]
//
// The bandwidth is the best of a search over thread counts, streams per thread and software
// prefetch (machine_limits.cpp says which won); the plain 8-stream figure is printed beside it.
// --no-limits skips the probes (tok/s only: tools/flag-matrix.sh compares builds by ratios);
// --no-opt-in skips the opt-in bf16-activation prefill.
//
// Block formats (q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q2_k q3_k iq4_nl) run Model<format>: the
// big matrices and the head quantized on load from bf16 tensors, LoRA matrices kept in bf16 (a
// block-format model keeps a 16-bit file's LoRAs as they are); their floor counts the bytes
// of *that format* (block bytes / block values), so "% of floor" says how close the kernel is to
// reading its own weights at the machine's bandwidth. "x bf16" is decode tok/s over bf16's in the
// same run (when bf16 is among the types).

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "shapes.hpp"

namespace machine_limits {
struct Bandwidth {
    double bytes_per_s = 0.0;
    int threads = 0, streams = 0;
    std::string how;
};
double read_bandwidth(int threads, std::size_t bytes, int streams);
Bandwidth best_read_bandwidth(int threads, std::size_t bytes);
double sgemm_one_core();
}  // namespace machine_limits

namespace {

using clk = std::chrono::steady_clock;
double secs(clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); }

// Resident memory now (not the peak: Init::fast builds each tensor through a temporary fp32
// copy, which a checkpoint load does not).
double resident_mib() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(resident) * 4096.0 / 1048576.0;
}

// All parameters in T (what the checkpoint holds), ignoring the small fp32 vectors.
template <class T>
double model_weight_bytes(const rwkv::Config& c) {
    const double C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size;
    double per_layer = 5 * A * C + 2 * C * F + C * C;
    if (c.version == rwkv::Version::x060)
        per_layer += C * 5 * c.dim_lora_mix + 5.0 * c.dim_lora_mix * C + C * c.dim_lora_decay + c.dim_lora_decay * A;
    if constexpr (rwkv::is_weight_format_v<T>)
        return (c.n_layer * per_layer + 2 * V * C) * T::block_bytes / T::block_elems;
    else return (c.n_layer * per_layer + 2 * V * C) * sizeof(T);
}

// Bytes per value of the big matrices and of the LoRA matrices under weight policy T.
template <class T>
std::pair<double, double> bytes_per_value() {
    if constexpr (rwkv::is_weight_format_v<T>) {  // LoRAs: bf16, as random_model's tensors
        return {static_cast<double>(T::block_bytes) / T::block_elems, 2.0};
    } else {
        return {static_cast<double>(sizeof(T)), static_cast<double>(sizeof(T))};
    }
}

// Bytes of weights one decoded token reads: every matrix once, plus one embedding row.
template <class T>
double bytes_per_token(const rwkv::Config& c) {
    const auto [big, lora] = bytes_per_value<T>();
    const double C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size;
    const double per_layer = 5 * A * C + 2 * C * F + C * C;
    const double lora_values = c.version == rwkv::Version::x060 ? C * 5 * c.dim_lora_mix + 5.0 * c.dim_lora_mix * C +
                                                                      C * c.dim_lora_decay + c.dim_lora_decay * A
                                                                : 0.0;
    return (c.n_layer * per_layer + V * C + C) * big + c.n_layer * lora_values * lora;
}

std::map<std::string, double> bf16_decode;  // per shape, for the "x bf16" column

template <class T>
rwkv::Model<T> random_model(const bench::Shape& shape) {
    if constexpr (rwkv::is_weight_format_v<T>) {
        // Quantize on load from a bf16 tensor set (half the transient memory of fp32).
        return rwkv::Model<T>::from_tensors(
            rwkv::detail::random_tensors<rwkv::bfloat16>(bench::config_of(shape), 1, rwkv::Init::fast));
    } else {
        return rwkv::Model<T>::random(bench::config_of(shape), 1, rwkv::Init::fast);
    }
}

bool opt_in = true;  // also time the opt-in bf16-activation prefill (bf16 weights)

template <class T>
void run_shape(const bench::Shape& shape, const char* type, int threads, double bw, double gemm) {
    auto t0 = clk::now();
    auto model = random_model<T>(shape);
    model.set_threads(threads);
    const double build_s = secs(t0);
    const auto& c = model.config();

    auto s = model.new_state();
    rwkv::token t = 1;
    for (int i = 0; i < 3; ++i) model.forward(t, s);  // warm up pages and caches
    double decode = 0.0;
    for (int rep = 0; rep < 3; ++rep) {
        const int n = 16;
        auto d0 = clk::now();
        for (int i = 0; i < n; ++i) {
            auto lg = model.forward(t, s);
            t = static_cast<rwkv::token>((t * 31 + 7 + static_cast<int>(lg[0] > 0)) % c.vocab_size);
        }
        decode = std::max(decode, n / secs(d0));
    }
    std::vector<rwkv::token> prompt(512);
    for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<rwkv::token>((i * 977 + 3) % c.vocab_size);
    double prefill = 0.0;
    for (int rep = 0; rep < 2; ++rep) {
        auto p = model.new_state();
        auto p0 = clk::now();
        model.forward(std::span<const rwkv::token>(prompt), p);
        prefill = std::max(prefill, 512.0 / secs(p0));
    }
    // bf16 weights: also the opt-in prefill that rounds activations to bf16 (AMX where present).
    double prefill_bf16 = 0.0;
    if constexpr (std::is_same_v<T, rwkv::bfloat16>) {
        model.set_bf16_prefill(true);
        for (int rep = 0; opt_in && rep < 2; ++rep) {
            auto p = model.new_state();
            auto p0 = clk::now();
            model.forward(std::span<const rwkv::token>(prompt), p);
            prefill_bf16 = std::max(prefill_bf16, 512.0 / secs(p0));
        }
        model.set_bf16_prefill(false);
    }
    const double floor = bw / bytes_per_token<T>(c);
    const double weights_mib = model_weight_bytes<T>(c) / 1048576.0;
    if (std::string(type) == "bf16") bf16_decode[shape.name] = decode;
    const double rss_mib = resident_mib();
    const double ceiling = gemm * threads / bench::flops_per_prefill_token(c);
    const auto bf = bf16_decode.find(shape.name);
    char ratio[32] = "";
    if (bf != bf16_decode.end()) std::snprintf(ratio, sizeof ratio, " = %.2fx bf16", decode / bf->second);
    if (bw <= 0.0) {  // --no-limits
        std::printf("%-11s %-6s %7.2f tok/s%s   | prefill512 %8.1f tok/s", shape.name, type, decode, ratio, prefill);
        if (prefill_bf16 > 0.0) std::printf("   | opt-in bf16-activation prefill %8.1f tok/s", prefill_bf16);
        std::printf("\n");
        std::fflush(stdout);
        return;
    }
    std::printf(
        "%-11s %-6s %7.2f tok/s%s  floor %7.2f  = %5.1f %%   | prefill512 %8.1f tok/s  ceiling %8.1f  = %5.1f %%"
        "   | RSS %.0f MiB = weights %.0f MiB + %.1f %%\n",
        shape.name, type, decode, ratio, floor, 100.0 * decode / floor, prefill, ceiling, 100.0 * prefill / ceiling,
        rss_mib, weights_mib, 100.0 * (rss_mib - weights_mib) / weights_mib);
    (void)build_s;
    if (prefill_bf16 > 0.0)
        std::printf(
            "%-11s %-5s   opt-in bf16-activation prefill (set_bf16_prefill): %8.1f tok/s = %5.1f %% of the fp32 "
            "ceiling\n",
            shape.name, type, prefill_bf16, 100.0 * prefill_bf16 / ceiling);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2;
    std::string shapes = "all", types = "bf16";
    bool limits = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
        else if (a == "--no-limits") limits = false;
        else if (a == "--no-opt-in") opt_in = false;
        else if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else {
            std::fprintf(stderr,
                         "usage: rwkv-roofline [--threads N] [--shapes all|1b6|0b4] "
                         "[--types bf16,fp16,fp32,q8_0,q4_0,q4_1,q5_0,q5_1,q4_k,q5_k,q6_k,q2_k,q3_k,iq4_nl] "
                         "[--no-limits] [--no-opt-in]\n");
            return 2;
        }
    }
    double bw = 0.0, gemm = 0.0;
    if (limits) {
        const double plain = machine_limits::read_bandwidth(threads, std::size_t{1} << 30, 8);
        const auto best = machine_limits::best_read_bandwidth(threads, std::size_t{1} << 30);
        bw = std::max(best.bytes_per_s, plain);
        gemm = machine_limits::sgemm_one_core();
        std::printf(
            "machine: read bandwidth %.1f GB/s, the best of the probe's variants (%s; plain %d threads x 8 streams: "
            "%.1f GB/s); Eigen sgemm -march=native %.1f GFLOP/s on one core\n",
            bw / 1e9, best.bytes_per_s >= plain ? best.how.c_str() : "the plain read", threads, plain / 1e9,
            gemm / 1e9);
        std::printf(
            "decode floor = bandwidth / weight bytes per token; prefill ceiling = sgemm x %d threads / flops per "
            "token\n",
            threads);
    }
    for (const auto* s : {&bench::eagle_0b4, &bench::finch_0b4, &bench::finch_1b6}) {
        const std::string name = s->name;
        if (shapes != "all" && name.find(shapes == "1b6" ? "1.6B" : "0.4B") == std::string::npos) continue;
        // In the order given, so that formats can be interleaved with bf16 on a noisy machine.
        std::stringstream list(types);
        for (std::string t; std::getline(list, t, ',');) {
            if (t == "bf16") run_shape<rwkv::bfloat16>(*s, "bf16", threads, bw, gemm);
            else if (t == "fp16") run_shape<rwkv::half>(*s, "fp16", threads, bw, gemm);
            else if (t == "fp32") run_shape<float>(*s, "fp32", threads, bw, gemm);
#define RWKV_ROOFLINE_FORMAT(name) else if (t == #name) run_shape<rwkv::name>(*s, #name, threads, bw, gemm);
            RWKV_ROOFLINE_FORMAT(q8_0)
            RWKV_ROOFLINE_FORMAT(q4_0)
            RWKV_ROOFLINE_FORMAT(q4_1)
            RWKV_ROOFLINE_FORMAT(q5_0)
            RWKV_ROOFLINE_FORMAT(q5_1)
            RWKV_ROOFLINE_FORMAT(q2_k)
            RWKV_ROOFLINE_FORMAT(q3_k)
            RWKV_ROOFLINE_FORMAT(q4_k)
            RWKV_ROOFLINE_FORMAT(q5_k)
            RWKV_ROOFLINE_FORMAT(q6_k)
            RWKV_ROOFLINE_FORMAT(iq4_nl)
#undef RWKV_ROOFLINE_FORMAT
            else {
                std::fprintf(stderr, "rwkv-roofline: unknown type '%s'\n", t.c_str());
                return 2;
            }
        }
    }
    return 0;
}
