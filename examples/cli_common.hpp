#pragma once
// Shared by rwkv-generate, rwkv-chat and rwkv-server on top of cli_args.hpp (argument parsing): the
// sampling flags, loading a model in its file's weight type, picking the tokenizer, finding the demo
// model next to the program, the model banner, prefill progress and resource reporting.

#include <rwkv/io/gguf_vocab.hpp>
#include <rwkv/model.hpp>
#include <rwkv/sampler.hpp>
#include <rwkv/session.hpp>
#include <rwkv/tokenizer.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli_args.hpp"

#ifndef RWKV_DEMO_MODEL_NAME
#define RWKV_DEMO_MODEL_NAME "demo-x060-L4-D128-fortunes.pth"
#endif

namespace cli {

// The sampling flags both programs take (--temperature/--temp, --top-p, --top-k, --presence-penalty,
// --frequency-penalty, --penalty-decay, --seed), parsed in one place so their ranges agree.
// Returns false, consuming nothing, for any other flag; sets have_seed when --seed was given.
inline bool parse_sampling_flag(Args& a, rwkv::SamplerSettings& s, bool& have_seed) {
    const std::string& f = a.flag();
    if (f == "--temperature" || f == "--temp") s.temperature = parse_double(f, a.value(), 0, 100);
    else if (f == "--top-p") s.top_p = parse_double(f, a.value(), 0, 1);
    else if (f == "--top-k") s.top_k = static_cast<int>(parse_int(f, a.value(), 0, 1 << 30));
    else if (f == "--presence-penalty") s.presence_penalty = parse_double(f, a.value(), -100, 100);
    else if (f == "--frequency-penalty") s.frequency_penalty = parse_double(f, a.value(), -100, 100);
    else if (f == "--penalty-decay") s.penalty_decay = parse_double(f, a.value(), 0, 1);
    else if (f == "--seed")
        s.seed = static_cast<std::uint64_t>(parse_int(f, a.value(), 0, INT64_MAX)), have_seed = true;
    else return false;
    return true;
}

// --activations MODE: the loaded model's opt-in numeric modes (Model::set_bf16_activations,
// Model::set_int8_activations). Both change logits (bf16 / int8 rounding of the inputs of the matrix
// products), so `exact` (fp32 activations) is the default.
enum class Activations { exact, bf16, int8 };

inline const char* activations_name(Activations a) {
    return a == Activations::bf16 ? "bf16" : a == Activations::int8 ? "int8" : "exact";
}

inline Activations parse_activations(const std::string& flag, const std::string& v) {
    for (Activations a : {Activations::exact, Activations::bf16, Activations::int8})
        if (v == activations_name(a)) return a;
    throw usage_error(flag + " expects exact, bf16 or int8, got '" + v + "'");
}

inline const char* activations_help() {
    return "      --activations MODE    exact (default: fp32, matches the reference), bf16 (bf16 weights:\n"
           "                            bf16 inputs to their matrix products, AVX512-BF16) or int8 (block-format\n"
           "                            weights such as Q8_0 or Q4_K: int8 inputs to decoding's products, VNNI);\n"
           "                            bf16 and int8 are faster and move logits slightly\n";
}

// Sets the mode on the model. The modes touch only some weight formats: when none of the model's
// large matrices is one of them (weight_type() lists their formats), a note on stderr says so,
// since the flag then changes nothing (at most the bf16 LoRAs of an x060 model for bf16).
inline void apply_activations(const char* prog, rwkv::AnyModel& m, Activations a) {
    if (a == Activations::exact) return;
    if (a == Activations::bf16) m.set_bf16_activations(true);
    else m.set_int8_activations(true);
    const std::string types = m.weight_type();
    bool affected = false;
    if (a == Activations::bf16) {
        affected = types.find("BF16") != std::string::npos || types.find("bfloat16") != std::string::npos;
    } else {
        for (const char* f : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
            affected = affected || types.find(f) != std::string::npos;
    }
    // int8 with no block-format matrix does nothing: leave it off, so the banner does not claim it.
    if (!affected && a == Activations::int8) m.set_int8_activations(false);
    if (!affected)
        std::fprintf(
            stderr,
            "%s: note: --activations %s applies to %s matrices; this model's weights are %s, so it changes %s\n", prog,
            activations_name(a), a == Activations::bf16 ? "bf16" : "block-format (Q8_0, Q4_K, ...)", types.c_str(),
            a == Activations::bf16 ? "at most its bf16 LoRAs" : "nothing");
}

// A whole input file (the prompt); a missing or unreadable one is an rwkv::error naming it (exit status 1,
// like a missing --model or --vocab).
inline std::string read_file(const std::string& path, const char* what) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw rwkv::error(std::string("cannot open ") + what + " '" + path + "': " + std::strerror(errno));
    std::string out;
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    const bool bad = std::ferror(f);
    const int err = errno;
    std::fclose(f);
    if (bad) throw rwkv::error(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(err));
    return out;
}

inline rwkv::AnyModel load_model(const std::string& path, bool show_progress) {
    if (!std::filesystem::exists(path)) throw rwkv::error(path + ": no such model file");
    const bool big = std::filesystem::is_regular_file(path) && std::filesystem::file_size(path) > 100u * 1024 * 1024;
    rwkv::AnyModel::Progress progress;
    if (show_progress && big)
        progress = [](int done, int total) {
            const int width = 40, filled = done * width / total;
            std::fprintf(stderr, "\rloading [%.*s%*s] %d/%d layers", filled, "########################################",
                         width - filled, "", done, total);
            if (done == total) std::fputc('\n', stderr);
        };
    auto model = rwkv::AnyModel::load(path, progress);
    for (const std::string& note : model.notes()) std::fprintf(stderr, "note: %s: %s\n", path.c_str(), note.c_str());
    return model;
}

// World vocabulary when given (or stored in a GGUF model file), bytes for 256-token models, and
// a clear error otherwise.
inline rwkv::AnyTokenizer pick_tokenizer(const std::string& vocab, int model_vocab, const std::string& model_path) {
    if (vocab.empty() && model_vocab != 256 && rwkv::io::detect_kind(model_path) == rwkv::io::file_kind::gguf) {
        const auto g = rwkv::io::read_gguf(model_path);
        if (rwkv::io::gguf_has_world_vocab(g)) return rwkv::AnyTokenizer(rwkv::io::gguf_tokenizer(g));
    }
    if (vocab.empty() && model_vocab != 256)
        throw usage_error("this model has " + std::to_string(model_vocab) +
                          " tokens: pass --vocab rwkv_vocab_v20230424.txt (the World tokenizer)");
    return rwkv::AnyTokenizer::for_model(model_vocab, vocab);
}

// The help text of the sampling flags, with the program's defaults.
inline std::string sampling_help(const rwkv::SamplerSettings& d) {
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "Sampling (ChatRWKV's sampler):\n"
                  "  --temperature, --temp T   randomness; 0 = greedy (default %g)\n"
                  "  --top-p P                 keep the most likely tokens up to this probability mass (default %g)\n"
                  "  --top-k K                 keep at most K tokens, 0 = off (default %d)\n"
                  "  --presence-penalty A      subtracted from every token already generated (default %g)\n"
                  "  --frequency-penalty A     times the token's decayed count (default %g)\n"
                  "  --penalty-decay D         counts decay by this factor per token (default %g)\n"
                  "  --seed S                  random seed (default: random, printed on stderr)\n",
                  d.temperature, d.top_p, d.top_k, d.presence_penalty, d.frequency_penalty, d.penalty_decay);
    return buf;
}

// The bundled demo model, found next to the program: <bin>/models/ in the build tree (the build copies
// it there), <prefix>/share/rwkv/models/ once installed. "" when neither exists.
inline std::string find_demo_model() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const auto dir = exe.parent_path();
    for (const auto& candidate : {dir / "models" / RWKV_DEMO_MODEL_NAME,
                                  dir.parent_path() / "share" / "rwkv" / "models" / RWKV_DEMO_MODEL_NAME})
        if (std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
    return {};
}

// --threads above the hardware's count only adds contention: capped, with a warning.
inline int cap_threads(const char* prog, int requested) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (requested > hw) {
        std::fprintf(stderr, "%s: warning: --threads %d exceeds the %d hardware threads; using %d\n", prog, requested,
                     hw, hw);
        return hw;
    }
    return requested;
}

// Resident memory now (VmRSS), in MiB; 0 if unknown.
inline double rss_mib() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0.0;
    long pages = 0, rss = 0;
    const int got = std::fscanf(f, "%ld %ld", &pages, &rss);
    std::fclose(f);
    return got == 2 ? static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0) : 0.0;
}

// One stderr line describing what was loaded.
inline void print_banner(const char* prog, const std::string& path, const rwkv::AnyModel& m,
                         const rwkv::AnyTokenizer& tok, double load_s) {
    const rwkv::Config& c = m.config();
    std::fprintf(stderr,
                 "%s: %s | %s | L%d C%d H%d N%d V%d | %s weights%s | %s tokenizer | %d threads | %.0f MiB resident | "
                 "loaded in %.2f s\n",
                 prog, std::filesystem::path(path).filename().c_str(), rwkv::version_name(c.version), c.n_layer,
                 c.n_embd, c.n_head, c.head_size, c.vocab_size, m.weight_type().c_str(),
                 m.int8_activations()   ? ", int8 activations"
                 : m.bf16_activations() ? ", bf16 activations"
                                        : "",
                 tok.kind(), m.threads(), rss_mib(), load_s);
}

// A progress line on stderr for prompts long enough to be fed in slices (Session::prompt).
inline rwkv::OnPrefill prefill_progress() {
    auto t0 = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    return [t0](std::size_t done, std::size_t total) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - *t0).count();
        std::fprintf(stderr, "\rprefill %zu/%zu tokens (%.0f%%, %.0f tok/s)", done, total,
                     100.0 * static_cast<double>(done) / static_cast<double>(total),
                     s > 0 ? static_cast<double>(done) / s : 0.0);
        if (done == total) std::fputc('\n', stderr);
        std::fflush(stderr);
    };
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double peak_rss_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace cli
