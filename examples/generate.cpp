// rwkv-generate: load a checkpoint, feed a prompt, and stream the continuation to stdout.
// Diagnostics (load time, prefill and decode speed, peak memory) go to stderr.

#include <rwkv/model.hpp>
#include <rwkv/sampler.hpp>
#include <rwkv/state_file.hpp>
#include <rwkv/tokenizer.hpp>
#include <rwkv/utf8.hpp>

#include <unistd.h>

#include <cstdio>
#include <random>

#include "cli_common.hpp"

#ifndef RWKV_DEMO_MODEL
#define RWKV_DEMO_MODEL ""
#endif

namespace {

const char* usage =
    "usage: rwkv-generate [--model PATH] [--vocab PATH] (--prompt TEXT | --prompt-file PATH)\n"
    "                     [-n N] [--temperature T] [--top-p P] [--top-k K]\n"
    "                     [--presence-penalty A] [--frequency-penalty A] [--penalty-decay D]\n"
    "                     [--seed S] [--state-in FILE] [--state-out FILE] [--threads N]\n"
    "--state-in takes a state saved by --state-out or a state-tuning .pth (time_state tensors).\n"
    "Without --model the demo model (" RWKV_DEMO_MODEL ") is used.\n";

struct Options {
    std::string model = RWKV_DEMO_MODEL, vocab, prompt, state_in, state_out;
    bool have_prompt = false;
    long long max_tokens = 200;
    int threads = 0;
    rwkv::SamplerSettings sampling;
    bool have_seed = false;
};

Options parse(int argc, char** argv) {
    Options o;
    o.sampling.top_p = 0.85;
    cli::Args a(argc, argv);
    while (a.next()) {
        const std::string& f = a.flag();
        if (f == "--model") o.model = a.value();
        else if (f == "--vocab") o.vocab = a.value();
        else if (f == "--prompt") o.prompt = a.value(), o.have_prompt = true;
        else if (f == "--prompt-file") o.prompt = cli::read_file(a.value(), "prompt file"), o.have_prompt = true;
        else if (f == "-n" || f == "--max-tokens") o.max_tokens = cli::parse_int(f, a.value(), 0, 1'000'000'000);
        else if (cli::parse_sampling_flag(a, o.sampling, o.have_seed)) continue;
        else if (f == "--state-in") o.state_in = a.value();
        else if (f == "--state-out") o.state_out = a.value();
        else if (f == "--threads") o.threads = static_cast<int>(cli::parse_int(f, a.value(), 1, 1024));
        else if (f == "-h" || f == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else throw cli::usage_error("unknown argument '" + f + "' (see --help)");
    }
    if (!o.have_prompt) throw cli::usage_error("give --prompt TEXT or --prompt-file PATH (see --help)");
    if (o.model.empty()) throw cli::usage_error("no --model given and no demo model was built in");
    if (!o.have_seed) o.sampling.seed = std::random_device{}();
    return o;
}

template <class Tokenizer>
int run(const Options& o, const cli::Engine& engine, const Tokenizer& tok, double load_s) {
    const auto& c = engine.config();
    std::vector<rwkv::token> ids = tok.encode(o.prompt);
    if (ids.empty()) throw cli::usage_error("the prompt is empty");
    auto state = engine.new_state();
    if (!o.state_in.empty()) rwkv::load_state_file(state, o.state_in);  // a state file or a state-tuning .pth

    auto t0 = std::chrono::steady_clock::now();
    auto logits = engine.forward(ids, state);
    const double prefill_s = cli::seconds_since(t0);

    rwkv::SamplerSettings sampling = o.sampling;  // + never sample an id the tokenizer cannot print
    rwkv::ban_invalid_ids(sampling, tok.valid_ids(static_cast<std::size_t>(c.vocab_size)));
    rwkv::Sampler sampler(static_cast<std::size_t>(c.vocab_size), sampling);
    rwkv::Utf8Stream out;
    // Token 0 ends a text for World models; in a byte-level model it is just the byte 0x00.
    const bool stop_at_zero = c.vocab_size > 256;
    long long generated = 0;
    t0 = std::chrono::steady_clock::now();
    for (; generated < o.max_tokens; ++generated) {
        const rwkv::token t = sampler.sample(logits);
        if (stop_at_zero && t == 0) break;
        sampler.accept(t);
        const auto text = out.push(tok.token_bytes(t));
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        // Feed it at once, so the state always includes every printed token (--state-out).
        logits = engine.forward(std::span<const rwkv::token>(&t, 1), state);
    }
    const auto rest = out.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    if (isatty(fileno(stdout))) std::fputc('\n', stdout);  // piped output stays exactly the text
    std::fflush(stdout);
    const double decode_s = cli::seconds_since(t0);
    if (!o.state_out.empty()) state.save(o.state_out);

    std::fprintf(stderr,
                 "model: %s L%d C%d H%d V%d, %s weights, %d threads | load %.2f s | prefill %zu tokens %.1f tok/s | "
                 "decode %lld tokens %.1f tok/s | peak RSS %.1f MiB\n",
                 c.version == rwkv::Version::x052 ? "x052" : "x060", c.n_layer, c.n_embd, c.n_head, c.vocab_size,
                 engine.weight_type(), engine.threads(), load_s, ids.size(), static_cast<double>(ids.size()) / prefill_s, generated,
                 generated > 0 ? static_cast<double>(generated) / decode_s : 0.0, cli::peak_rss_mib());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        const auto t0 = std::chrono::steady_clock::now();
        auto engine = cli::load_engine(o.model, true);
        if (o.threads > 0) engine->set_threads(o.threads);
        const double load_s = cli::seconds_since(t0);
        auto tok = cli::pick_tokenizer(o.vocab, engine->config().vocab_size);
        return std::visit([&](const auto& t) { return run(o, *engine, t, load_s); }, tok);
    } catch (const cli::usage_error& e) {
        std::fprintf(stderr, "rwkv-generate: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rwkv-generate: error: %s\n", e.what());
        return 1;
    }
}
