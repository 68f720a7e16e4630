// rwkv-int8-ab: decode speed of the opt-in int8 activations (Model::set_int8_activations) against
// the exact kernels of the same block format, robust to a shared machine's load: one model per
// format at a released shape (random weights quantized on load from bf16), the mode toggled
// between rounds of 8 decoded tokens, and tokens per CPU-second of the process (× threads, so an
// idle machine's wall rate) compared, median over the rounds.
//
//   build/benchmarks/rwkv-int8-ab [--threads N] [--rounds N] [--shape finch0b4|eagle0b4|finch1b6]
//                                 [--types q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,q2_k,q3_k,q4_k,q5_k,q6_k]

#include <rwkv/model.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "shapes.hpp"

namespace {

double cpu_s() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class T>
void run(const bench::Shape& shape, const char* name, int threads, int rounds) {
    auto model = rwkv::Model<T>::from_tensors(
        rwkv::detail::random_tensors<rwkv::bfloat16>(bench::config_of(shape), 1, rwkv::Init::fast));
    model.set_threads(threads);
    const int vocab = model.config().vocab_size;
    auto s = model.new_state();
    rwkv::token t = 1;
    for (int i = 0; i < 3; ++i) model.forward(t, s);  // warm up pages and caches
    std::vector<double> rate[2];
    for (int r = 0; r < rounds; ++r)
        for (int mode = 0; mode < 2; ++mode) {
            model.set_int8_activations(mode == 1);
            const double c0 = cpu_s();
            for (int i = 0; i < 8; ++i) {
                const auto lg = model.forward(t, s);
                t = static_cast<rwkv::token>((t * 31 + 7 + static_cast<int>(lg[0] > 0)) % vocab);
            }
            rate[mode].push_back(8.0 * threads / (cpu_s() - c0));
        }
    const double exact = median(rate[0]), int8 = median(rate[1]);
    std::printf("%-11s %-7s %d thread(s): exact %7.1f  int8 %7.1f tok per CPU-s x %d  = %.2fx\n", shape.name, name,
                threads, exact, int8, threads, int8 / exact);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1, rounds = 7;
    std::string shape = "finch0b4", types = "q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,q2_k,q3_k,q4_k,q5_k,q6_k";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--shape" && i + 1 < argc) shape = argv[++i];
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else {
            const bool help = a == "--help" || a == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: rwkv-int8-ab [--threads N] [--rounds N] [--shape finch0b4|eagle0b4|finch1b6] "
                         "[--types q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl,q2_k,q3_k,q4_k,q5_k,q6_k]\n");
            return help ? 0 : 2;
        }
    }
    const bench::Shape* s = shape == "eagle0b4"   ? &bench::eagle_0b4
                            : shape == "finch1b6" ? &bench::finch_1b6
                            : shape == "finch0b4" ? &bench::finch_0b4
                                                  : nullptr;
    if (s == nullptr) {
        std::fprintf(stderr, "rwkv-int8-ab: unknown shape '%s' (finch0b4, eagle0b4, finch1b6)\n", shape.c_str());
        return 2;
    }
    std::stringstream list(types);
    for (std::string t; std::getline(list, t, ',');) {
        if (t == "q8_0") run<rwkv::q8_0>(*s, "q8_0", threads, rounds);
        else if (t == "q4_0") run<rwkv::q4_0>(*s, "q4_0", threads, rounds);
        else if (t == "q4_1") run<rwkv::q4_1>(*s, "q4_1", threads, rounds);
        else if (t == "q5_0") run<rwkv::q5_0>(*s, "q5_0", threads, rounds);
        else if (t == "q5_1") run<rwkv::q5_1>(*s, "q5_1", threads, rounds);
        else if (t == "iq4_nl") run<rwkv::iq4_nl>(*s, "iq4_nl", threads, rounds);
        else if (t == "q2_k") run<rwkv::q2_k>(*s, "q2_k", threads, rounds);
        else if (t == "q3_k") run<rwkv::q3_k>(*s, "q3_k", threads, rounds);
        else if (t == "q4_k") run<rwkv::q4_k>(*s, "q4_k", threads, rounds);
        else if (t == "q5_k") run<rwkv::q5_k>(*s, "q5_k", threads, rounds);
        else if (t == "q6_k") run<rwkv::q6_k>(*s, "q6_k", threads, rounds);
        else {
            std::fprintf(stderr, "rwkv-int8-ab: unknown type '%s'\n", t.c_str());
            return 2;
        }
    }
    return 0;
}
