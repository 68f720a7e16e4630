// rwkv-roofline: measures this machine's read bandwidth and fp32 GEMM rate, then decode and
// 512-token prefill speed at released shapes in the same run, and prints each end-to-end figure
// as a fraction of its limit (issues 5, 9):
//   decode floor   = bandwidth / bytes read (and written) per decoded token
//   prefill ceiling = (one core's Eigen sgemm rate × threads) / flops per token
//
//   build/benchmarks/rwkv-roofline [--threads N] [--shapes all|1b6|0b4] [--types bf16,fp16,fp32,q8_0,q4_k,...]
//                                  [--no-limits] [--no-opt-in] [--no-matvec] [--rounds N]
//
// A block format with the suffix "+i8" (q4_0+i8, ...) decodes with the opt-in int8 activations
// (Model::set_int8_activations; prefill is unchanged); its floor is the format's own.
// The bandwidth is the best of a search over thread counts, streams per thread, load kinds
// (plain, non-temporal, software prefetch at several distances) and page sizes
// (machine_limits.cpp says why each; the line `machine:` names the winner); the plain 8-stream
// figure is printed beside it. For bf16/fp16/fp32 the decode's mat-vecs are then also timed
// alone on fresh matrices of the shape (MatvecSkeleton): per matrix shape against the probe, and a
// whole token's, so that decode time splits into mat-vecs and the rest; when the mat-vec streams
// faster than the probe read, that rate is the floor's bandwidth (a floor has to be a rate the
// machine cannot beat). Bytes per token are bench::decode_bytes (shapes.hpp), printed by part.
// --no-limits skips the probes (tok/s only: tools/flag-matrix.sh compares builds by ratios);
// --no-opt-in skips the opt-in bf16-activation prefill; --no-matvec the mat-vecs alone.
//
// Block formats (q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q2_k q3_k iq4_nl) run Model<format>: the
// big matrices and the head quantized on load from bf16 tensors, LoRA matrices kept in bf16 (a
// block-format model keeps a 16-bit file's LoRAs as they are); their floor counts the bytes
// of *that format* (block bytes / block values), so "% of floor" says how close the kernel is to
// reading its own weights at the machine's bandwidth. "x bf16" is decode tok/s over bf16's in the
// same run (when bf16 is among the types).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "machine_limits.hpp"
#include "shapes.hpp"

namespace {

using clk = std::chrono::steady_clock;
double secs(clk::time_point a) { return std::chrono::duration<double>(clk::now() - a).count(); }

// Resident memory now (not the peak: Init::fast builds each tensor through a temporary fp32
// copy, which a checkpoint load does not). The RSS column splits it into the program before any
// model, the weights as Model::memory() counts them (every byte held: block-format policies keep
// the x060 LoRA matrices in fp32, and the fp32 vectors), and the rest (the runs' states and
// scratch, thread stacks).
double resident_mib() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(resident) * 4096.0 / 1048576.0;
}

// The decode's mat-vecs and nothing else (issue 9), for scalar weight types: fresh matrices of a
// model's shapes in T (64-byte aligned, pseudo-random values), multiplied as a decoded token
// multiplies them (per layer: x060's LoRAs, {r k v g} in one dispatch, o, {ffn key, ffn
// receptance} in one dispatch, ffn value; then the head) by the library's kernels on a pool of
// `threads`. Two figures come out of it: each matrix shape's streaming rate over all the layers'
// matrices of that shape (the kernel against the probe, size by size; far more bytes than the
// caches hold), and a whole token's mat-vecs, which decode's tok/s is compared with (the rest of
// decode is the per-token work between them: norms, token shift, WKV, activations).
template <class T>
class MatvecSkeleton {
public:
    MatvecSkeleton(const rwkv::Config& c, int threads) : pool_(threads) {
        const int L = c.n_layer, C = c.n_embd, A = c.dim_att, F = c.dim_ffn, V = c.vocab_size;
        std::vector<T> pattern(std::size_t{1} << 16);
        std::uint32_t seed = 12345;
        for (auto& v : pattern) {
            seed = seed * 1664525u + 1013904223u;
            v = rwkv::from_float<T>(static_cast<float>(seed >> 8) * 0x1p-24f - 0.5f);
        }
        // One allocation for all of them (far above malloc's mmap threshold, so freeing it gives the
        // memory back before the model is measured), each matrix 64-byte aligned in it.
        const std::size_t most = static_cast<std::size_t>(L) * 16 + 1;
        const auto in_bf16 = bench::decode_bytes<rwkv::bfloat16>(c);  // 2 bytes per value
        const auto values = static_cast<std::size_t>((in_bf16.matrices + in_bf16.head + in_bf16.lora) / 2);
        const std::size_t capacity = values * sizeof(T) + 64 * most;
        memory_.reset(static_cast<std::byte*>(std::aligned_alloc(64, (capacity + 63) / 64 * 64)));
        if (!memory_) throw std::bad_alloc();
        std::size_t used = 0;
        auto matrix = [&](int rows, int cols) {
            const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
            auto* data = reinterpret_cast<T*>(memory_.get() + used);
            used += (n * sizeof(T) + 63) / 64 * 64;
            if (used > capacity) throw std::bad_alloc();
            for (std::size_t i = 0; i < n; i += pattern.size())
                std::memcpy(static_cast<void*>(data + i), pattern.data(), std::min(pattern.size(), n - i) * sizeof(T));
            rwkv::Matrix<T> m;
            m.data = data;
            m.rows = rows;
            m.cols = cols;
            mats_.push_back(m);
            return mats_.size() - 1;
        };
        mats_.reserve(most);
        for (int l = 0; l < L; ++l) {
            Layer y;
            if (c.version == rwkv::Version::x060) {
                y.lora = true;
                y.lora_w1 = matrix(5 * c.dim_lora_mix, C);
                for (auto& w2 : y.lora_w2) w2 = matrix(C, c.dim_lora_mix);
                y.decay_w1 = matrix(c.dim_lora_decay, C);
                y.decay_w2 = matrix(A, c.dim_lora_decay);
            }
            for (auto& m : y.rkvg) m = matrix(A, C);
            y.o = matrix(C, A);
            y.ffn_k = matrix(F, C);
            y.ffn_r = matrix(C, C);
            y.ffn_v = matrix(C, F);
            layers_.push_back(y);
        }
        head_ = matrix(V, C);
        const std::size_t widest = static_cast<std::size_t>(std::max({C, A, F, V}));
        x_.assign(widest * 8, 0.01f);
        y_.assign(widest * 8, 0.0f);
    }

    // Tokens per second of a whole token's mat-vecs (best of `reps` runs of `n` tokens).
    double token_rate(int n, int reps) {
        double best = 0.0;
        token();
        for (int rep = 0; rep < reps; ++rep) {
            auto t0 = clk::now();
            for (int i = 0; i < n; ++i) token();
            best = std::max(best, n / secs(t0));
        }
        return best;
    }

    // Per distinct matrix shape holding at least `min_bytes` in all: rows, cols and the bytes per
    // second of one mat-vec on every matrix of that shape in turn (best of `reps` passes).
    struct ShapeRate {
        int rows, cols;
        double bytes_per_s;
    };
    std::vector<ShapeRate> shape_rates(std::size_t min_bytes, int reps) {
        std::map<std::pair<int, int>, std::vector<const rwkv::Matrix<T>*>> by_shape;
        for (const auto& m : mats_) by_shape[{m.rows, m.cols}].push_back(&m);
        std::vector<ShapeRate> out;
        for (const auto& [dims, list] : by_shape) {
            const double bytes = static_cast<double>(list.size() * list.front()->size() * sizeof(T));
            if (bytes < static_cast<double>(min_bytes)) continue;
            double best = 0.0;
            for (int rep = 0; rep <= reps; ++rep) {  // the first pass warms up and is not counted
                auto t0 = clk::now();
                for (const auto* m : list) rwkv::backend::cpu::matvec(*m, x_.data(), y_.data(), &pool_);
                if (rep > 0) best = std::max(best, bytes / secs(t0));
            }
            out.push_back({dims.first, dims.second, best});
        }
        return out;
    }

private:
    struct Layer {
        bool lora = false;  // x060
        std::size_t lora_w1 = 0, lora_w2[5] = {}, decay_w1 = 0, decay_w2 = 0, rkvg[4] = {}, o = 0, ffn_k = 0, ffn_r = 0,
                    ffn_v = 0;
    };
    using Job = rwkv::backend::cpu::MatvecJob<T>;
    Job job(std::size_t m, std::size_t slot) {
        const std::size_t w = x_.size() / 8;
        return Job{&mats_[m], x_.data() + slot * w, y_.data() + slot * w};
    }
    void token() {
        using rwkv::backend::cpu::matvec_many;
        for (const auto& y : layers_) {
            if (y.lora) {
                matvec_many({job(y.lora_w1, 0)}, &pool_);
                matvec_many({job(y.lora_w2[0], 0), job(y.lora_w2[1], 1), job(y.lora_w2[2], 2), job(y.lora_w2[3], 3),
                             job(y.lora_w2[4], 4)},
                            &pool_);
                matvec_many({job(y.decay_w1, 0)}, &pool_);
                matvec_many({job(y.decay_w2, 0)}, &pool_);
            }
            matvec_many({job(y.rkvg[0], 0), job(y.rkvg[1], 1), job(y.rkvg[2], 2), job(y.rkvg[3], 3)}, &pool_);
            matvec_many({job(y.o, 0)}, &pool_);
            matvec_many({job(y.ffn_k, 0), job(y.ffn_r, 1)}, &pool_);
            matvec_many({job(y.ffn_v, 0)}, &pool_);
        }
        matvec_many({job(head_, 0)}, &pool_);
    }

    struct Free {
        void operator()(std::byte* p) const { std::free(p); }
    };
    rwkv::backend::cpu::ThreadPool pool_;
    std::unique_ptr<std::byte, Free> memory_;
    std::vector<rwkv::Matrix<T>> mats_;
    std::vector<Layer> layers_;
    std::size_t head_ = 0;
    std::vector<float> x_, y_;
};

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

double rss_program = 0.0;  // resident before any model
bool opt_in = true;        // also time the opt-in bf16-activation prefill (bf16 weights)
bool matvec_alone = true;  // also time the decode's mat-vecs alone (scalar types, with the limits)

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int rounds = 3;  // decode rounds, each beside a fresh probe and mat-vec measurement

template <class T>
void run_shape(const bench::Shape& shape, const char* type, int threads, const machine_limits::Bandwidth* probe,
               double gemm, bool int8 = false) {
    const double bw = probe ? probe->bytes_per_s : 0.0;
    const auto bytes = bench::decode_bytes<T>(bench::config_of(shape));
    const double matvec_bytes = bytes.matrices + bytes.head + bytes.lora;  // what MatvecSkeleton reads
    // The decode's mat-vecs alone (scalar types), built before the model: per matrix shape once,
    // a whole token's beside each decode round below.
    // (Block formats have no such skeleton: the type below only keeps their instantiation legal.)
    using Skeleton = MatvecSkeleton<std::conditional_t<rwkv::is_weight_format_v<T>, rwkv::bfloat16, T>>;
    std::unique_ptr<Skeleton> sk;
    if constexpr (!rwkv::is_weight_format_v<T>) {
        if (bw > 0.0 && matvec_alone) {
            sk = std::make_unique<Skeleton>(bench::config_of(shape), threads);
            std::printf(
                "%-11s %-6s mat-vec alone, each shape over all its layers' matrices (GB/s, %% of the probe's "
                "%.1f):",
                shape.name, type, bw / 1e9);
            for (const auto& r : sk->shape_rates(std::size_t{64} << 20, 3))
                std::printf(" %dx%d %.1f (%.0f %%)", r.rows, r.cols, r.bytes_per_s / 1e9, 100.0 * r.bytes_per_s / bw);
            std::printf("\n");
            std::fflush(stdout);
        }
    }

    auto t0 = clk::now();
    auto model = random_model<T>(shape);
    model.set_threads(threads);
    model.set_int8_activations(int8);  // a "+i8" type: the opt-in int8-activation decode
    const double build_s = secs(t0);
    const auto& c = model.config();

    auto s = model.new_state();
    rwkv::token t = 1;
    for (int i = 0; i < 3; ++i) model.forward(t, s);  // warm up pages and caches
    // Rounds of 16 decoded tokens; with the limits, each beside the probe's winning variant and
    // (scalar types) a token's mat-vecs alone, measured again then: on a shared machine the
    // bandwidth this process gets changes by the minute, so each round's fraction uses its own
    // floor, and the figure is their median. The floor's bandwidth is the higher of the probe's
    // and the mat-vec's own rate: a floor has to be a rate this machine cannot beat (issue 9).
    double decode = 0.0;
    std::vector<double> fractions, decode_ms, matvec_ms, floors, probes, matvecs;
    int from_matvec = 0;
    for (int round = 0; round < rounds; ++round) {
        const int n = 16;
        auto d0 = clk::now();
        for (int i = 0; i < n; ++i) {
            auto lg = model.forward(t, s);
            t = static_cast<rwkv::token>((t * 31 + 7 + static_cast<int>(lg[0] > 0)) % c.vocab_size);
        }
        const double dec = n / secs(d0);
        decode = std::max(decode, dec);
        if (!probe) continue;
        const double p = machine_limits::read_bandwidth_again(*probe);
        const double mv = sk ? sk->token_rate(4, 1) : 0.0;
        const double fb = std::max(p, mv * matvec_bytes);
        from_matvec += mv * matvec_bytes > p;
        probes.push_back(p);
        decode_ms.push_back(1e3 / dec);
        if (sk) matvecs.push_back(mv), matvec_ms.push_back(1e3 / mv);
        floors.push_back(fb / bytes.total());
        fractions.push_back(dec * bytes.total() / fb);
    }
    sk.reset();
    machine_limits::release_buffers();
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
    const double floor = median(floors);
    const rwkv::MemoryUse& u = model.memory();
    const double weights_mib = static_cast<double>(u.in_place + u.copied + u.vectors) / 1048576.0;
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
    const auto [lo, hi] = std::minmax_element(fractions.begin(), fractions.end());
    std::printf(
        "%-11s %-6s %7.2f tok/s%s  floor %7.2f  = %5.1f %% (%.0f-%.0f)   | prefill512 %8.1f tok/s  ceiling %8.1f  = "
        "%5.1f %%   | RSS %.0f MiB = program %.0f + weights %.0f (Model::memory) + states, scratch %.0f MiB\n",
        shape.name, type, decode, ratio, floor, 100.0 * median(fractions), 100.0 * *lo, 100.0 * *hi, prefill, ceiling,
        100.0 * prefill / ceiling, rss_mib, rss_program, weights_mib, rss_mib - rss_program - weights_mib);
    (void)build_s;
    std::printf(
        "%-11s %-6s %d rounds: probe %.1f GB/s, a token's mat-vecs alone %.1f GB/s (medians; the floor took the "
        "mat-vec's rate in %d); %.1f MB per token (matrices %.1f + head %.1f + embedding row %.3f + LoRA %.1f + "
        "fp32 vectors %.2f + state read and written %.1f)",
        shape.name, type, rounds, median(probes) / 1e9, median(matvecs) * matvec_bytes / 1e9, from_matvec,
        bytes.total() / 1e6, bytes.matrices / 1e6, bytes.head / 1e6, bytes.emb_row / 1e6, bytes.lora / 1e6,
        bytes.vectors / 1e6, bytes.state / 1e6);
    if (!matvec_ms.empty())
        std::printf("; per token (medians): decode %.2f ms, its mat-vecs alone %.2f ms", median(decode_ms),
                    median(matvec_ms));
    std::printf("\n");
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
        else if (a == "--no-matvec") matvec_alone = false;
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else {
            const bool help = a == "--help" || a == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: rwkv-roofline [--threads N] [--shapes all|1b6|0b4] "
                         "[--types bf16,fp16,fp32,q8_0,q4_0,q4_1,q5_0,q5_1,q4_k,q5_k,q6_k,q2_k,q3_k,iq4_nl; a block "
                         "format+i8: int8 activations] "
                         "[--no-limits] [--no-opt-in] [--no-matvec] [--rounds N]\n");
            return help ? 0 : 2;
        }
    }
    rss_program = resident_mib();
    double bw = 0.0, gemm = 0.0;
    machine_limits::Bandwidth probe;
    if (limits) {
        const double plain = machine_limits::read_bandwidth(threads, std::size_t{1} << 30, 8);
        const auto best = machine_limits::best_read_bandwidth(threads, std::size_t{1} << 30);
        bw = std::max(best.bytes_per_s, plain);
        probe = best;
        if (plain > best.bytes_per_s) {  // the plain read is one of the variants: measure it again
            probe.bytes_per_s = plain;
            probe.variant = {threads, 8, machine_limits::Load::plain, 0, false, false};
        }
        gemm = machine_limits::sgemm_one_core();
        std::printf(
            "machine: read bandwidth %.1f GB/s, the best of the probe's variants (%s; plain %d threads x 8 streams: "
            "%.1f GB/s); Eigen sgemm -march=native %.1f GFLOP/s on one core\n",
            bw / 1e9, best.bytes_per_s >= plain ? best.how.c_str() : "the plain read", threads, plain / 1e9,
            gemm / 1e9);
        std::printf(
            "decode floor = max(bandwidth, the mat-vec's own rate) / bytes read and written per token; prefill "
            "ceiling = sgemm x %d threads / flops per token\n",
            threads);
    }
    for (const auto* s : {&bench::eagle_0b4, &bench::finch_0b4, &bench::finch_1b6}) {
        const std::string name = s->name;
        if (shapes != "all" && name.find(shapes == "1b6" ? "1.6B" : "0.4B") == std::string::npos) continue;
        // In the order given, so that formats can be interleaved with bf16 on a noisy machine.
        std::stringstream list(types);
        for (std::string t; std::getline(list, t, ',');) {
            // "<format>+i8": the block format with Model::set_int8_activations (decode only).
            const bool i8 = t.size() > 3 && t.ends_with("+i8");
            const std::string label = t;
            if (i8) t.resize(t.size() - 3);
            // The mode has kernels for these formats only: a "+i8" elsewhere would measure the
            // exact path under a misleading label.
            if (i8 && t != "q8_0" && t != "q4_0" && t != "q4_1" && t != "q5_0" && t != "q5_1" && t != "iq4_nl" &&
                t != "q2_k" && t != "q3_k" && t != "q4_k" && t != "q5_k" && t != "q6_k") {
                std::fprintf(stderr,
                             "rwkv-roofline: '%s': no int8-activation kernel for %s (the mode covers q8_0 q4_0 q4_1 "
                             "q5_0 q5_1 iq4_nl q2_k q3_k q4_k q5_k q6_k)\n",
                             label.c_str(), t.c_str());
                return 2;
            }
            if (t == "bf16") run_shape<rwkv::bfloat16>(*s, "bf16", threads, limits ? &probe : nullptr, gemm);
            else if (t == "fp16") run_shape<rwkv::half>(*s, "fp16", threads, limits ? &probe : nullptr, gemm);
            else if (t == "fp32") run_shape<float>(*s, "fp32", threads, limits ? &probe : nullptr, gemm);
#define RWKV_ROOFLINE_FORMAT(name) \
    else if (t == #name) run_shape<rwkv::name>(*s, label.c_str(), threads, limits ? &probe : nullptr, gemm, i8);
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
