// rwkv-generate: load a checkpoint, feed a prompt, and stream the continuation to stdout (on
// rwkv::Session). Diagnostics (banner, seed, prefill progress, speed, peak memory) go to stderr.
// With no arguments at all it runs the bundled demo model on a default prompt.

#include <rwkv/model.hpp>
#include <rwkv/session.hpp>

#include <unistd.h>

#include <cstdio>
#include <random>

#include "cli_common.hpp"

namespace {

constexpr const char* prog = "rwkv-generate";
constexpr const char* default_prompt = "The best thing about";

rwkv::SamplerSettings default_sampling() {
    rwkv::SamplerSettings s;
    s.temperature = 1.0;
    s.top_p = 0.85;
    return s;
}

void print_help() {
    std::printf(
        "usage: rwkv-generate [-m PATH] [--vocab PATH] [-p TEXT | -f PATH] [-n N] [sampling flags]\n"
        "                     [--state-in FILE] [--state-out FILE] [-t N] [--activations MODE]\n"
        "Streams the model's continuation of the prompt to stdout; diagnostics go to stderr.\n"
        "With no arguments at all: the demo model continues \"%s\".\n\n"
        "  -m, --model PATH          model file or Hugging Face folder (.pth, .gguf, .safetensors,\n"
        "                            rwkv.cpp .bin); default: the bundled demo model (%s)\n"
        "      --vocab PATH          World vocabulary rwkv_vocab_v20230424.txt (needed by World models)\n"
        "  -p, --prompt TEXT         the text to continue\n"
        "  -f, --prompt-file PATH    read the prompt from a file\n"
        "  -n, --max-tokens N        tokens to generate (default 200); stops early at end of text\n"
        "      --state-in FILE       continue a session saved by --state-out (or a bare state file)\n"
        "      --state-out FILE      save the session (state, logits, sampler) after generating; checked first\n"
        "  -t, --threads N           threads (default: all %u hardware threads; more are capped)\n"
        "%s"
        "  -h, --help                this text\n"
        "      --version             the library version\n\n%s",
        default_prompt, RWKV_DEMO_MODEL_NAME, std::max(1u, std::thread::hardware_concurrency()),
        cli::activations_help(), cli::sampling_help(default_sampling()).c_str());
}

struct Options {
    std::string model, vocab, prompt, state_in, state_out;
    bool have_prompt = false;
    long long max_tokens = 200;
    int threads = 0;
    cli::Activations activations = cli::Activations::exact;
    rwkv::SamplerSettings sampling = default_sampling();
    bool have_seed = false;
};

Options parse(int argc, char** argv) {
    Options o;
    cli::Args a(argc, argv);
    while (a.next()) {
        const std::string& f = a.flag();
        if (f == "--model" || f == "-m") o.model = a.value();
        else if (f == "--vocab") o.vocab = a.value();
        else if (f == "--prompt" || f == "-p") o.prompt = a.value(), o.have_prompt = true;
        else if (f == "--prompt-file" || f == "-f")
            o.prompt = cli::read_file(a.value(), "prompt file"), o.have_prompt = true;
        else if (f == "-n" || f == "--max-tokens") o.max_tokens = cli::parse_int(f, a.value(), 0, 1'000'000'000);
        else if (cli::parse_sampling_flag(a, o.sampling, o.have_seed)) continue;
        else if (f == "--state-in") o.state_in = a.value();
        else if (f == "--state-out") o.state_out = a.value();
        else if (f == "--threads" || f == "-t") o.threads = static_cast<int>(cli::parse_int(f, a.value(), 1, 1 << 20));
        else if (f == "--activations") o.activations = cli::parse_activations(f, a.value());
        else if (f == "-h" || f == "--help") {
            print_help();
            std::exit(0);
        } else if (f == "--version") {
            std::printf("rwkv-generate (rwkv %s)\n", RWKV_VERSION_STRING);
            std::exit(0);
        } else throw cli::usage_error("unknown argument '" + f + "' (see --help)");
    }
    // No arguments at all: the demo. With some arguments, a missing prompt is a mistake worth naming.
    if (argc == 1) o.prompt = default_prompt, o.have_prompt = true;
    if (!o.have_prompt) throw cli::usage_error("give --prompt TEXT or --prompt-file PATH (see --help)");
    if (o.model.empty()) o.model = cli::find_demo_model();
    if (o.model.empty())
        throw cli::usage_error(std::string("no --model given and the demo model ") + RWKV_DEMO_MODEL_NAME +
                               " is not next to the program");
    if (!o.state_out.empty()) cli::check_writable(o.state_out, "--state-out");
    if (!o.have_seed) o.sampling.seed = std::random_device{}();
    if (o.threads > 0) o.threads = cli::cap_threads(prog, o.threads);
    return o;
}

int run(const Options& o) {
    const auto t_load = std::chrono::steady_clock::now();
    auto engine = cli::load_model(o.model, true);
    if (o.threads > 0) engine.set_threads(o.threads);
    cli::apply_activations(prog, engine, o.activations);
    const double load_s = cli::seconds_since(t_load);
    rwkv::Session session(engine, cli::pick_tokenizer(o.vocab, engine.config().vocab_size, o.model), o.sampling);
    if (!o.state_in.empty()) {
        session.load(o.state_in);
        // A saved session keeps its sampler (settings, generator, counts) unless flags say otherwise.
        rwkv::SamplerSettings s = o.sampling;
        if (!o.have_seed) s.seed = session.sampling().seed;
        session.set_sampling(s);
    }
    const std::vector<rwkv::token> ids = session.tokenizer().encode(o.prompt);
    if (ids.empty()) throw cli::usage_error("the prompt is empty");

    cli::print_banner(prog, o.model, engine, session.tokenizer(), load_s);
    std::fprintf(stderr, "%s: seed %llu\n", prog, static_cast<unsigned long long>(session.sampling().seed));

    auto t0 = std::chrono::steady_clock::now();
    session.feed(ids, cli::prefill_progress());
    const double prefill_s = cli::seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    const auto result = session.generate(static_cast<std::size_t>(o.max_tokens), [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    if (isatty(fileno(stdout))) std::fputc('\n', stdout);  // piped output stays exactly the text
    std::fflush(stdout);
    const double decode_s = cli::seconds_since(t0);
    if (!o.state_out.empty()) session.save(o.state_out);

    std::fprintf(stderr, "%s: prefill %zu tokens %.1f tok/s | decode %zu tokens %.1f tok/s (%s) | peak RSS %.1f MiB\n",
                 prog, ids.size(), static_cast<double>(ids.size()) / prefill_s, result.tokens,
                 result.tokens > 0 ? static_cast<double>(result.tokens) / decode_s : 0.0,
                 rwkv::stop_reason_name(result.reason), cli::peak_rss_mib());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_main(prog, [&] { return run(parse(argc, argv)); });
}
