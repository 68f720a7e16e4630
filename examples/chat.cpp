// rwkv-chat: an interactive chat in the World models' format (spec 7.4),
//   User: <message>\n\nAssistant: <reply>\n\n
// with the state kept across turns. Commands: /reset, /save FILE, /load FILE, /quit.

#include <rwkv/model.hpp>
#include <rwkv/sampler.hpp>
#include <rwkv/state_file.hpp>
#include <rwkv/tokenizer.hpp>
#include <rwkv/utf8.hpp>

#include <unistd.h>

#include <iostream>
#include <random>
#include <string>

#include "cli_common.hpp"

#ifndef RWKV_DEMO_MODEL
#define RWKV_DEMO_MODEL ""
#endif

namespace {

const char* usage =
    "usage: rwkv-chat [--model PATH] [--vocab PATH] [-n MAX_REPLY_TOKENS] [--temperature T] [--top-p P]\n"
    "                 [--top-k K] [--presence-penalty A] [--frequency-penalty A] [--penalty-decay D]\n"
    "                 [--seed S] [--state-in FILE]\n"
    "Type a message and press enter. Commands: /reset  /save FILE  /load FILE  /quit\n";

struct Options {
    std::string model = RWKV_DEMO_MODEL, vocab, state_in;
    long long max_tokens = 500;
    rwkv::SamplerSettings sampling;
    bool have_seed = false;
};

Options parse(int argc, char** argv) {
    Options o;
    // The official chat demo's settings (API_DEMO_CHAT.py).
    o.sampling.temperature = 1.0;
    o.sampling.top_p = 0.3;
    o.sampling.presence_penalty = 0.5;
    o.sampling.frequency_penalty = 0.5;
    o.sampling.penalty_decay = 0.996;
    o.sampling.banned = {0};  // never end a turn with end-of-text
    cli::Args a(argc, argv);
    while (a.next()) {
        const std::string& f = a.flag();
        if (f == "--model") o.model = a.value();
        else if (f == "--vocab") o.vocab = a.value();
        else if (f == "-n" || f == "--max-tokens") o.max_tokens = cli::parse_int(f, a.value(), 1, 1'000'000);
        else if (cli::parse_sampling_flag(a, o.sampling, o.have_seed)) continue;
        else if (f == "--state-in") o.state_in = a.value();
        else if (f == "-h" || f == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else throw cli::usage_error("unknown argument '" + f + "' (see --help)");
    }
    if (o.model.empty()) throw cli::usage_error("no --model given and no demo model was built in");
    if (!o.have_seed) o.sampling.seed = std::random_device{}();
    return o;
}

// A message never contains a blank line (that ends a turn): \r\n -> \n, runs of \n -> one,
// surrounding whitespace trimmed (the API demo's rule).
std::string clean(std::string m) {
    std::string out;
    for (std::size_t i = 0; i < m.size(); ++i) {
        char c = m[i];
        if (c == '\r') continue;
        if (c == '\n' && !out.empty() && out.back() == '\n') continue;
        out += c;
    }
    const auto b = out.find_first_not_of(" \t\n"), e = out.find_last_not_of(" \t\n");
    return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
}

template <class Tokenizer>
int chat(const Options& o, const cli::Engine& engine, const Tokenizer& tok) {
    const bool interactive = isatty(STDIN_FILENO);
    auto state = engine.new_state();
    if (!o.state_in.empty()) rwkv::load_state_file(state, o.state_in);  // a state file or a state-tuning .pth
    rwkv::SamplerSettings sampling = o.sampling;  // + never sample an id the tokenizer cannot print
    rwkv::ban_invalid_ids(sampling, tok.valid_ids(static_cast<std::size_t>(engine.config().vocab_size)));
    rwkv::Sampler sampler(static_cast<std::size_t>(engine.config().vocab_size), sampling);
    std::vector<rwkv::token> ids;
    std::string line;
    if (interactive) std::fputs(usage + std::string_view(usage).find("Type"), stdout);
    for (;;) {
        if (interactive) std::fputs("User: ", stdout), std::fflush(stdout);
        if (!std::getline(std::cin, line)) break;
        if (line.rfind("/quit", 0) == 0) break;
        if (line.rfind("/reset", 0) == 0) {
            state = engine.new_state();
            sampler.reset();
            std::puts("[state reset]");
            continue;
        }
        if (line.rfind("/save", 0) == 0 || line.rfind("/load", 0) == 0) {
            const std::string file = clean(line.substr(5));
            if (file.empty()) {
                std::puts("[error: give a file name, e.g. /save chat.state]");
                continue;
            }
            try {
                if (line[1] == 's') state.save(file), std::printf("[state saved to %s]\n", file.c_str());
                else state.load(file), std::printf("[state loaded from %s]\n", file.c_str());
            } catch (const rwkv::error& e) {
                std::printf("[error: %s]\n", e.what());
            }
            continue;
        }
        if (!line.empty() && line[0] == '/') {
            std::printf("[unknown command %s; commands: /reset /save FILE /load FILE /quit]\n", line.c_str());
            continue;
        }
        const std::string msg = clean(line);
        if (msg.empty()) continue;

        ids.clear();
        tok.encode("User: " + msg + "\n\nAssistant:", ids);
        auto logits = engine.forward(ids, state);
        std::fputs("Assistant:", stdout);
        rwkv::Utf8Stream out;
        std::string reply;          // bytes generated this turn, to find the blank line
        std::size_t printed = 0;    // how much of `reply` went to stdout
        bool ended = false;
        for (long long i = 0; i < o.max_tokens && !ended; ++i) {
            const rwkv::token t = sampler.sample(logits);
            sampler.accept(t);
            reply += tok.token_bytes(t);
            logits = engine.forward(std::span<const rwkv::token>(&t, 1), state);
            const auto blank = reply.find("\n\n");
            ended = blank != std::string::npos;
            // Print up to the blank line; hold trailing newlines until we know more.
            std::size_t upto = ended ? blank : reply.size();
            if (!ended)
                while (upto > printed && reply[upto - 1] == '\n') --upto;
            if (upto > printed) {
                const auto text = out.push(std::string_view(reply).substr(printed, upto - printed));
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                printed = upto;
            }
        }
        if (!ended) {  // reply cut by --max-tokens: close the turn so the format stays intact
            ids.clear();
            tok.encode("\n\n", ids);
            logits = engine.forward(ids, state);
        }
        const auto rest = out.flush();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
        std::fputs("\n\n", stdout);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        auto engine = cli::load_engine(o.model, true);
        auto tok = cli::pick_tokenizer(o.vocab, engine->config().vocab_size);
        return std::visit([&](const auto& t) { return chat(o, *engine, t); }, tok);
    } catch (const cli::usage_error& e) {
        std::fprintf(stderr, "rwkv-chat: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rwkv-chat: error: %s\n", e.what());
        return 1;
    }
}
