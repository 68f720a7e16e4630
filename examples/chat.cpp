// rwkv-chat: an interactive chat in the World models' format (spec 7.4),
//   User: <message>\n\nAssistant: <reply>\n\n
// with the state kept across turns (rwkv::Session::chat). Commands: /reset, /save FILE, /load FILE,
// /quit. Ctrl-C stops the current reply and returns to the prompt; a second Ctrl-C (or one at the
// prompt) exits, saving the session first when --state-out is given. Line editing and history come
// from libedit when the build found it (RWKV_HAVE_LIBEDIT) and stdin is a terminal.

#include <rwkv/model.hpp>
#include <rwkv/session.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#ifdef RWKV_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "cli_common.hpp"

namespace {

constexpr const char* prog = "rwkv-chat";

// SIGINT: the first one cancels the reply in progress; one more before the next reply starts exits.
std::atomic<bool> cancel_reply{false};
volatile sig_atomic_t interrupts = 0;

extern "C" void on_sigint(int) {
    interrupts = interrupts + 1;
    cancel_reply.store(true);
}

void install_sigint() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read waiting at the prompt returns, so Ctrl-C there exits
    sigaction(SIGINT, &sa, nullptr);
}

rwkv::SamplerSettings default_sampling() {
    // The official chat demo's settings (API_DEMO_CHAT.py).
    rwkv::SamplerSettings s;
    s.temperature = 1.0;
    s.top_p = 0.3;
    s.presence_penalty = 0.5;
    s.frequency_penalty = 0.5;
    s.penalty_decay = 0.996;
    return s;
}

const char* commands = "Commands: /reset  /save FILE  /load FILE  /quit   (Ctrl-C stops a reply; twice exits)\n";

void print_help() {
    std::printf(
        "usage: rwkv-chat [-m PATH] [--vocab PATH] [-n MAX_REPLY_TOKENS] [sampling flags] [--state-in FILE]\n"
        "                 [--state-out FILE] [-t N] [--activations MODE]\n"
        "Chat in the World format (User: / Assistant:), the conversation's state kept across turns.\n"
        "Type a message and press enter. %s\n"
        "  -m, --model PATH          model file or Hugging Face folder (.pth, .gguf, .safetensors,\n"
        "                            rwkv.cpp .bin); default: the bundled demo model (%s)\n"
        "      --vocab PATH          World vocabulary rwkv_vocab_v20230424.txt (needed by World models)\n"
        "  -n, --max-tokens N        longest reply in tokens (default 500)\n"
        "      --state-in FILE       continue a saved conversation (from /save or --state-out)\n"
        "      --state-out FILE      save the conversation on exit (end of input, /quit, Ctrl-C); checked first\n"
        "  -t, --threads N           threads (default: all %u hardware threads; more are capped)\n"
        "%s"
        "  -h, --help                this text\n"
        "      --version             the library version\n\n%s",
        commands, RWKV_DEMO_MODEL_NAME, std::max(1u, std::thread::hardware_concurrency()), cli::activations_help(),
        cli::sampling_help(default_sampling()).c_str());
}

struct Options {
    std::string model, vocab, state_in, state_out;
    long long max_tokens = 500;
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
        else if (f == "-n" || f == "--max-tokens") o.max_tokens = cli::parse_int(f, a.value(), 1, 1'000'000'000);
        else if (cli::parse_sampling_flag(a, o.sampling, o.have_seed)) continue;
        else if (f == "--state-in") o.state_in = a.value();
        else if (f == "--state-out") o.state_out = a.value();
        else if (f == "--threads" || f == "-t") o.threads = static_cast<int>(cli::parse_int(f, a.value(), 1, 1 << 20));
        else if (f == "--activations") o.activations = cli::parse_activations(f, a.value());
        else if (f == "-h" || f == "--help") {
            print_help();
            std::exit(0);
        } else if (f == "--version") {
            std::printf("rwkv-chat (rwkv %s)\n", RWKV_VERSION_STRING);
            std::exit(0);
        } else throw cli::usage_error("unknown argument '" + f + "' (see --help)");
    }
    if (o.model.empty()) o.model = cli::find_demo_model();
    if (o.model.empty())
        throw cli::usage_error(std::string("no --model given and the demo model ") + RWKV_DEMO_MODEL_NAME +
                               " is not next to the program");
    if (!o.state_out.empty()) cli::check_writable(o.state_out, "--state-out");
    if (!o.have_seed) o.sampling.seed = std::random_device{}();
    if (o.threads > 0) o.threads = cli::cap_threads(prog, o.threads);
    return o;
}

// One line of input; false at end of input or when Ctrl-C arrived while waiting.
bool read_line(bool interactive, std::string& line) {
#ifdef RWKV_HAVE_LIBEDIT
    if (interactive) {
        char* in = readline("User: ");
        if (!in) return false;
        line = in;
        std::free(in);
        if (!line.empty()) add_history(line.c_str());
        return interrupts == 0;
    }
#endif
    if (interactive) std::fputs("User: ", stdout), std::fflush(stdout);
    std::cin.clear();
    if (!std::getline(std::cin, line)) return false;
    return interrupts == 0;
}

int chat(const Options& o) {
    const auto t_load = std::chrono::steady_clock::now();
    auto engine = cli::load_model(o.model, true);
    if (o.threads > 0) engine.set_threads(o.threads);
    cli::apply_activations(prog, engine, o.activations);
    const double load_s = cli::seconds_since(t_load);
    rwkv::Session session(engine, cli::pick_tokenizer(o.vocab, engine.config().vocab_size, o.model), o.sampling);
    if (!o.state_in.empty()) {
        session.load(o.state_in);
        rwkv::SamplerSettings s = o.sampling;
        if (!o.have_seed) s.seed = session.sampling().seed;
        session.set_sampling(s);
    }
    cli::print_banner(prog, o.model, engine, session.tokenizer(), load_s);
    std::fprintf(stderr, "%s: seed %llu\n", prog, static_cast<unsigned long long>(session.sampling().seed));

    const bool interactive = isatty(STDIN_FILENO);
    install_sigint();
    if (interactive) std::fputs(commands, stdout);
    std::string line;
    for (;;) {
        interrupts = 0;
        cancel_reply.store(false);
        if (!read_line(interactive, line)) break;
        if (line.rfind("/quit", 0) == 0) break;
        if (line.rfind("/reset", 0) == 0) {
            session.reset();
            std::puts("[state reset]");
            continue;
        }
        if (line.rfind("/save", 0) == 0 || line.rfind("/load", 0) == 0) {
            const std::string file = rwkv::Session::clean_chat_message(line.substr(5));
            if (file.empty()) {
                std::puts("[error: give a file name, e.g. /save chat.state]");
                continue;
            }
            try {
                if (line[1] == 's') session.save(file), std::printf("[state saved to %s]\n", file.c_str());
                else session.load(file), std::printf("[state loaded from %s]\n", file.c_str());
            } catch (const rwkv::error& e) {
                std::printf("[error: %s]\n", e.what());
            }
            continue;
        }
        if (!line.empty() && line[0] == '/') {
            std::printf("[unknown command %s; commands: /reset /save FILE /load FILE /quit]\n", line.c_str());
            continue;
        }
        if (rwkv::Session::clean_chat_message(line).empty()) continue;

        std::fputs("Assistant: ", stdout);
        std::fflush(stdout);
        const auto r = session.chat(
            line, static_cast<std::size_t>(o.max_tokens),
            [](std::string_view text) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                return true;
            },
            &cancel_reply);
        if (r.reason == rwkv::StopReason::cancelled) std::fputs(" [interrupted]", stdout);
        std::fputs("\n\n", stdout);
        std::fflush(stdout);
        // Ctrl-C twice during one reply: exit (after saving) rather than wait for the next message.
        if (interrupts >= 2) break;
    }
    if (!o.state_out.empty()) {
        session.save(o.state_out);
        std::fprintf(stderr, "%s: session saved to %s\n", prog, o.state_out.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_main(prog, [&] { return chat(parse(argc, argv)); });
}
