// rwkv-server: an OpenAI-compatible HTTP server (POST /v1/completions, /v1/chat/completions, streaming or
// not; GET /v1/models, /health) on one model.
//
// One scheduler thread owns the model. Each step it prefills a slice of the waiting prompts, then samples one
// token for every request that is generating and feeds them all through AnyModel::forward_batch together
// (continuous batching: requests join and leave between steps). Each request has its own State, Sampler,
// UTF-8 stream and stop strings, with the generation loop of rwkv::Session::generate, so a request gives the
// text rwkv-generate prints for the same prompt and settings.
//
// An RWKV state has a fixed size whatever the context, so the server keeps the states of recent prompts and
// conversations in an LRU keyed by the tokens they consumed: the next turn of a chat (the same messages and
// one more) prefills only the new message.
//
// HTTP is Debian's cpp-httplib and JSON nlohmann/json: well-kept libraries, not a hand-written layer. The
// request parser is examples/server_api.hpp (fuzzed by tests/fuzz/fuzz_server_request.cpp).

#include <rwkv/model.hpp>
#include <rwkv/session.hpp>
#include <rwkv/utf8.hpp>

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cli_common.hpp"
#include "server_api.hpp"

namespace {

using rwkv_server::ApiError;
using rwkv_server::Endpoint;
using rwkv_server::json;
using clock_type = std::chrono::steady_clock;

constexpr const char* prog = "rwkv-server";

struct Options {
    std::string model, vocab, host = "127.0.0.1";
    int port = 8080;
    int threads = 0;
    cli::Activations activations = cli::Activations::exact;
    std::size_t max_sessions = 16;  // requests decoded together
    std::size_t max_queue = 64;     // requests waiting for a slot; more get 429
    std::size_t max_tokens = 4096;  // per request
    std::size_t max_prompt_tokens = 32768;
    std::size_t max_body_mb = 16;
    double timeout_s = 600;           // per request, from arrival to the last token
    std::size_t cache_mb = 1024;      // state cache budget; 0 = off
    std::size_t prefill_chunk = 256;  // prompt tokens per scheduler step (a multiple of 64)
    double shutdown_timeout_s = 10;   // on SIGTERM: how long in-flight requests may finish
};

void print_help() {
    const Options d;
    std::printf(
        "usage: rwkv-server [-m PATH] [--vocab PATH] [--host ADDR] [--port N] [-t N] [--activations MODE] [limits]\n"
        "An OpenAI-compatible HTTP server: POST /v1/completions, POST /v1/chat/completions (SSE streaming or\n"
        "not), GET /v1/models, GET /health. Concurrent requests are decoded together; the states of recent\n"
        "prompts are cached, so the next turn of a chat prefills only the new message.\n\n"
        "  -m, --model PATH          checkpoint; default: the bundled demo model (%s)\n"
        "      --vocab PATH          World vocabulary rwkv_vocab_v20230424.txt (needed by World models)\n"
        "      --host ADDR           address to listen on (default %s)\n"
        "      --port N              port (default %d; 0 = any free port, printed on stderr)\n"
        "  -t, --threads N           model threads (default: all %u hardware threads)\n"
        "%s"
        "      --max-sessions N      requests generating at once (default %zu)\n"
        "      --max-queue N         requests waiting for a slot before 429 (default %zu)\n"
        "      --max-tokens N        most tokens a request may generate (default %zu)\n"
        "      --max-prompt-tokens N longest prompt (default %zu)\n"
        "      --max-body-mb N       largest request body, 413 above (default %zu)\n"
        "      --timeout S           a request still running after S seconds ends with 408 (default %g)\n"
        "      --cache-mb N          memory for cached states, 0 = no cache (default %zu)\n"
        "      --prefill-chunk N     prompt tokens prefilled per step between decode steps, a multiple of 64\n"
        "                            (default %zu)\n"
        "      --shutdown-timeout S  on SIGTERM/SIGINT, running requests get S seconds to finish (default %g)\n"
        "  -h, --help                this text\n"
        "      --version             the library version\n",
        RWKV_DEMO_MODEL_NAME, d.host.c_str(), d.port, std::max(1u, std::thread::hardware_concurrency()),
        cli::activations_help(), d.max_sessions, d.max_queue, d.max_tokens, d.max_prompt_tokens, d.max_body_mb,
        d.timeout_s, d.cache_mb, d.prefill_chunk, d.shutdown_timeout_s);
}

Options parse(int argc, char** argv) {
    Options o;
    cli::Args a(argc, argv);
    auto size = [&](long long lo, long long hi) {
        return static_cast<std::size_t>(cli::parse_int(a.flag(), a.value(), lo, hi));
    };
    while (a.next()) {
        const std::string& f = a.flag();
        if (f == "--model" || f == "-m") o.model = a.value();
        else if (f == "--vocab") o.vocab = a.value();
        else if (f == "--host") o.host = a.value();
        else if (f == "--port") o.port = static_cast<int>(size(0, 65535));
        else if (f == "--threads" || f == "-t") o.threads = static_cast<int>(size(1, 1 << 20));
        else if (f == "--activations") o.activations = cli::parse_activations(f, a.value());
        else if (f == "--max-sessions") o.max_sessions = size(1, 4096);
        else if (f == "--max-queue") o.max_queue = size(0, 1 << 20);
        else if (f == "--max-tokens") o.max_tokens = size(1, 1'000'000'000);
        else if (f == "--max-prompt-tokens") o.max_prompt_tokens = size(1, 1'000'000'000);
        else if (f == "--max-body-mb") o.max_body_mb = size(1, 1 << 20);
        else if (f == "--timeout") o.timeout_s = cli::parse_double(f, a.value(), 0.001, 1e9);
        else if (f == "--cache-mb") o.cache_mb = size(0, 1 << 30);
        else if (f == "--prefill-chunk") {
            o.prefill_chunk = size(64, 1 << 20);
            // Slices on the model's 64-token prefill chunks give the numbers of one whole prefill.
            if (o.prefill_chunk % 64 != 0)
                throw cli::usage_error("--prefill-chunk must be a multiple of 64, got " +
                                       std::to_string(o.prefill_chunk));
        } else if (f == "--shutdown-timeout") o.shutdown_timeout_s = cli::parse_double(f, a.value(), 0, 1e9);
        else if (f == "-h" || f == "--help") {
            print_help();
            std::exit(0);
        } else if (f == "--version") {
            std::printf("rwkv-server (rwkv %s)\n", RWKV_VERSION_STRING);
            std::exit(0);
        } else throw cli::usage_error("unknown argument '" + f + "' (see --help)");
    }
    if (o.model.empty()) o.model = cli::find_demo_model();
    if (o.model.empty())
        throw cli::usage_error(std::string("no --model given and the demo model ") + RWKV_DEMO_MODEL_NAME +
                               " is not next to the program");
    if (o.threads > 0) o.threads = cli::cap_threads(prog, o.threads);
    return o;
}

// ---- the state cache ----------------------------------------------------------------------------------------

// States (with the logits after their last token) keyed by the exact tokens they consumed, least recently
// used dropped first when over the byte budget. A lookup hashes every prefix of the prompt once and checks a
// hash hit token by token, so it finds the longest cached prefix in O(prompt). Used by the scheduler only.
class StateCache {
public:
    struct Entry {
        std::vector<rwkv::token> tokens;
        rwkv::State state;
        std::vector<float> logits;
        std::uint64_t hash = 0;
        std::size_t bytes = 0;
    };

    explicit StateCache(std::size_t budget_bytes) : budget_(budget_bytes) {}

    // The entry with the longest token sequence that `prompt` starts with (marked most recently used), or null.
    const Entry* lookup(std::span<const rwkv::token> prompt) {
        if (lru_.empty()) return nullptr;
        std::vector<std::uint64_t> prefix(prompt.size() + 1);
        prefix[0] = seed;
        for (std::size_t i = 0; i < prompt.size(); ++i) prefix[i + 1] = step(prefix[i], prompt[i]);
        for (std::size_t n = prompt.size(); n > 0; --n) {
            const auto [lo, hi] = index_.equal_range(prefix[n]);
            for (auto it = lo; it != hi; ++it) {
                const auto& tokens = it->second->tokens;
                if (tokens.size() == n && std::equal(tokens.begin(), tokens.end(), prompt.begin())) {
                    lru_.splice(lru_.begin(), lru_, it->second);
                    return &lru_.front();
                }
            }
        }
        return nullptr;
    }

    // Stores (a copy of) `state` and `logits` under `tokens`, replacing an entry with the same tokens.
    void insert(std::vector<rwkv::token> tokens, const rwkv::State& state, std::span<const float> logits) {
        if (tokens.empty()) return;
        const std::size_t bytes = state.bytes() + logits.size() * sizeof(float) + tokens.size() * sizeof(rwkv::token);
        if (bytes > budget_) return;
        std::uint64_t h = seed;
        for (const rwkv::token t : tokens) h = step(h, t);
        erase_same(h, tokens);
        lru_.push_front(Entry{std::move(tokens), state, std::vector<float>(logits.begin(), logits.end()), h, bytes});
        index_.emplace(h, lru_.begin());
        bytes_ += bytes;
        while (bytes_ > budget_) {
            auto last = std::prev(lru_.end());
            erase_same(last->hash, last->tokens);
        }
    }

    std::size_t entries() const { return lru_.size(); }
    std::size_t bytes() const { return bytes_; }

private:
    static constexpr std::uint64_t seed = 1469598103934665603ull;  // FNV-1a over the ids' 4 bytes
    static std::uint64_t step(std::uint64_t h, rwkv::token t) {
        auto u = static_cast<std::uint32_t>(t);
        for (int k = 0; k < 4; ++k, u >>= 8) h = (h ^ (u & 0xffu)) * 1099511628211ull;
        return h;
    }
    void erase_same(std::uint64_t h, const std::vector<rwkv::token>& tokens) {
        const auto [lo, hi] = index_.equal_range(h);
        for (auto it = lo; it != hi; ++it)
            if (it->second->tokens == tokens) {
                bytes_ -= it->second->bytes;
                lru_.erase(it->second);
                index_.erase(it);
                return;
            }
    }

    std::size_t budget_;
    std::size_t bytes_ = 0;
    std::list<Entry> lru_;
    std::unordered_multimap<std::uint64_t, std::list<Entry>::iterator> index_;
};

// ---- requests -------------------------------------------------------------------------------------------------

// One request, shared by its HTTP handler (which waits on the output) and the scheduler (which runs it).
struct Job {
    Job(rwkv_server::CompletionRequest r, std::vector<rwkv::token> p, rwkv::Sampler s)
        : req(std::move(r)), prompt(std::move(p)), sampler(std::move(s)) {}

    // Set by the handler before submission, read-only afterwards.
    rwkv_server::CompletionRequest req;
    rwkv_server::ResponseHead head;
    std::vector<rwkv::token> prompt;
    std::vector<std::string> stop;  // the request's, and "\n\n" for chat
    clock_type::time_point arrived, deadline;
    std::atomic<bool> cancel{false};  // the client went away

    // The scheduler's (no lock: only the scheduler thread touches these once submitted).
    rwkv::Sampler sampler;
    rwkv::State state;
    std::vector<float> logits;
    std::size_t fed = 0;                 // prompt tokens in the state
    std::size_t cached = 0;              // of which came from the cache
    std::vector<rwkv::token> generated;  // tokens sampled and fed
    std::string consumed;                // their bytes
    std::string pending;                 // bytes held back: they may start a stop string
    rwkv::Utf8Stream utf8;
    bool started_text = false;  // chat: the first character (a space) was looked at
    std::string held_newlines;  // chat: newlines that end the reply are not part of it
    bool admitted = false;

    // The output, guarded by `m`: pieces of text for the stream, the whole text, the end.
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::string> pieces;
    std::string text;
    bool done = false;
    const char* finish = nullptr;  // "stop" or "length"
    std::optional<ApiError> error;
    rwkv_server::Usage usage;
};

// The scheduler: owns the model, the states and the cache; HTTP threads submit jobs and wait on them.
class Engine {
public:
    Engine(rwkv::AnyModel model, rwkv::AnyTokenizer tok, const Options& o)
        : model_(std::move(model)), tok_(std::move(tok)), opt_(o), cache_(o.cache_mb << 20) {
        const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
        for (std::size_t i = 0; i < vocab; ++i)
            if (!tok_.contains(static_cast<rwkv::token>(i))) undecodable_.push_back(static_cast<rwkv::token>(i));
    }

    const rwkv::AnyTokenizer& tokenizer() const { return tok_; }
    const rwkv::AnyModel& model() const { return model_; }
    std::span<const rwkv::token> undecodable() const { return undecodable_; }

    // Queues `job`; throws ApiError 429 when the queue is full, 503 while shutting down.
    void submit(const std::shared_ptr<Job>& job) {
        {
            std::lock_guard lk(m_);
            if (draining_) throw ApiError(503, "the server is shutting down", {}, "server_error", "shutting_down");
            if (waiting_.size() + active_count_ >= opt_.max_sessions + opt_.max_queue)
                throw ApiError(429,
                               "server busy: " + std::to_string(active_count_.load()) + " requests running and " +
                                   std::to_string(waiting_.size()) + " waiting (--max-sessions " +
                                   std::to_string(opt_.max_sessions) + ", --max-queue " +
                                   std::to_string(opt_.max_queue) + "); retry later",
                               {}, "rate_limit_error", "rate_limit_exceeded");
            waiting_.push_back(job);
            ++requests_;
        }
        cv_.notify_one();
    }

    void run() {
        std::vector<std::shared_ptr<Job>> active;
        for (;;) {
            {
                std::unique_lock lk(m_);
                // With nothing running, sleep until a job comes; otherwise wake at least every 50 ms so
                // cancelled and timed-out jobs are noticed even while a long prefill is queued.
                cv_.wait_for(lk, std::chrono::milliseconds(50),
                             [&] { return stop_ || !waiting_.empty() || !active.empty(); });
                if (stop_ && waiting_.empty() && active.empty()) return;
                // Waiting jobs can end too: shutdown, a client that left, a deadline passed in the queue.
                const auto now = clock_type::now();
                std::erase_if(waiting_, [&](const std::shared_ptr<Job>& j) {
                    if (!cancel_all_ && !j->cancel && now <= j->deadline) return false;
                    check_end(*j, now);
                    return true;
                });
                while (active.size() < opt_.max_sessions && !waiting_.empty()) {
                    active.push_back(std::move(waiting_.front()));
                    waiting_.pop_front();
                }
                active_count_ = active.size();
            }
            try {
                step(active);
            } catch (const std::exception& e) {  // a bug, not a bad request: fail what ran, keep serving
                std::fprintf(stderr, "%s: error in a decode step: %s\n", prog, e.what());
                for (auto& j : active)
                    fail(*j, ApiError(500, std::string("internal error: ") + e.what(), {}, "server_error"));
            }
            std::erase_if(active, [](const std::shared_ptr<Job>& j) { return j->done; });
            active_count_ = active.size();
        }
    }

    // Stop taking requests (503); the running ones go on.
    void drain() {
        std::lock_guard lk(m_);
        draining_ = true;
    }
    // End every running and waiting job now (503 / an error event).
    void cancel_all() {
        {
            std::lock_guard lk(m_);
            cancel_all_ = true;
        }
        cv_.notify_one();
    }
    // Makes run() return once nothing is left.
    void stop() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_one();
    }
    bool idle() const {
        std::lock_guard lk(m_);
        return waiting_.empty() && active_count_ == 0;
    }
    bool draining() const {
        std::lock_guard lk(m_);
        return draining_;
    }

    json health() const {
        std::lock_guard lk(m_);
        return {{"status", draining_ ? "shutting_down" : "ok"},
                {"active", active_count_.load()},
                {"queued", waiting_.size()},
                {"max_sessions", opt_.max_sessions},
                {"cache", {{"entries", cache_entries_.load()}, {"bytes", cache_bytes_.load()}}},
                {"stats",
                 {{"requests", requests_},
                  {"cancelled", cancelled_.load()},
                  {"decode_steps", steps_.load()},
                  {"max_batch", max_batch_.load()},
                  {"decoded_tokens", decoded_.load()},
                  {"prefilled_tokens", prefilled_.load()},
                  {"cached_tokens", cached_tokens_.load()}}}};
    }

private:
    void step(std::vector<std::shared_ptr<Job>>& active) {
        const auto now = clock_type::now();
        for (auto& jp : active)
            if (!check_end(*jp, now) && !jp->admitted) admit(*jp);

        // Prompts first, a bounded slice per step, so a long prompt delays the others' next token by one slice.
        std::size_t budget = opt_.prefill_chunk;
        for (auto& jp : active) {
            Job& j = *jp;
            if (j.done || j.fed == j.prompt.size() || budget == 0) continue;
            const std::size_t n = std::min(budget, j.prompt.size() - j.fed);
            const auto logits = model_.forward(std::span(j.prompt).subspan(j.fed, n), j.state);
            j.fed += n;
            budget -= n;
            prefilled_ += n;
            if (j.fed == j.prompt.size()) {
                j.logits.assign(logits.begin(), logits.end());
                if (j.req.cache_prompt) remember(j.prompt, j.state, j.logits);
            }
        }

        // One token for every generating request, all fed through one forward_batch.
        batch_jobs_.clear();
        batch_tokens_.clear();
        batch_states_.clear();
        for (auto& jp : active) {
            Job& j = *jp;
            if (j.done || j.fed != j.prompt.size()) continue;
            const rwkv::token t = j.sampler.sample(j.logits);
            if (const auto eot = tok_.end_of_text(); eot && t == *eot) {  // not fed, as in Session::generate
                end(j, "stop");
                continue;
            }
            j.sampler.accept(t);
            batch_jobs_.push_back(&j);
            batch_tokens_.push_back(t);
            batch_states_.push_back(&j.state);
        }
        if (batch_jobs_.empty()) return;
        const auto logits = model_.forward_batch(batch_tokens_, batch_states_);
        const std::size_t V = static_cast<std::size_t>(model_.config().vocab_size);
        ++steps_;
        decoded_ += batch_jobs_.size();
        if (batch_jobs_.size() > max_batch_) max_batch_ = batch_jobs_.size();
        for (std::size_t b = 0; b < batch_jobs_.size(); ++b) {
            Job& j = *batch_jobs_[b];
            const auto row = logits.subspan(b * V, V);
            j.logits.assign(row.begin(), row.end());
            on_token(j, batch_tokens_[b]);
        }
    }

    // Ends `j` if the server is cancelling everything, its client left or its time is up.
    bool check_end(Job& j, clock_type::time_point now) {
        if (cancel_all_) fail(j, ApiError(503, "the server is shutting down", {}, "server_error", "shutting_down"));
        else if (j.cancel) {
            ++cancelled_;
            fail(j, ApiError(499, "client disconnected"));
        } else if (now > j.deadline)
            fail(j, ApiError(408,
                             "request timed out after " + rwkv::detail::number_text(opt_.timeout_s) + " s (--timeout)",
                             {}, "timeout_error", "timeout"));
        else return false;
        return true;
    }

    // A job's first step: its state from the longest cached prefix of its prompt, or the initial state.
    void admit(Job& j) {
        j.admitted = true;
        const StateCache::Entry* hit = j.req.cache_prompt ? cache_.lookup(j.prompt) : nullptr;
        if (hit) {
            j.state = hit->state;
            j.fed = j.cached = hit->tokens.size();
            if (j.fed == j.prompt.size()) j.logits = hit->logits;
            cached_tokens_ += j.cached;
        } else {
            j.state = model_.new_state();
        }
    }

    // The token was sampled and fed: its bytes go through the stop strings and the UTF-8 stream (the loop
    // of rwkv::Session::generate, one token at a time).
    void on_token(Job& j, rwkv::token t) {
        j.generated.push_back(t);
        const std::string_view bytes = tok_.token_bytes(t);
        j.consumed += bytes;
        j.pending += bytes;
        std::size_t cut = std::string::npos;
        for (const auto& s : j.stop) cut = std::min(cut, j.pending.find(s));
        if (cut != std::string::npos) {
            emit(j, std::string_view(j.pending).substr(0, cut), true);
            j.pending.clear();
            end(j, "stop", false);
            return;
        }
        const std::size_t hold = held_suffix(j.pending, j.stop);
        emit(j, std::string_view(j.pending).substr(0, j.pending.size() - hold), false);
        j.pending.erase(0, j.pending.size() - hold);
        if (j.generated.size() == j.req.max_tokens) end(j, "length");
    }

    void emit(Job& j, std::string_view bytes, bool final) {
        std::string piece(j.utf8.push(bytes));
        if (final) piece += j.utf8.flush();
        if (j.req.endpoint == Endpoint::chat) {
            // The model writes a space after "Assistant:" and ends with newlines: neither is part of the
            // reply (Session::chat). Newlines are held until more text follows them.
            if (!j.started_text && !piece.empty()) {
                j.started_text = true;
                if (piece.front() == ' ') piece.erase(0, 1);
            }
            const std::size_t keep = piece.find_last_not_of('\n');
            const std::string tail = keep == std::string::npos ? piece : piece.substr(keep + 1);
            piece = keep == std::string::npos ? std::string() : j.held_newlines + piece.substr(0, keep + 1);
            j.held_newlines = keep == std::string::npos ? j.held_newlines + tail : tail;
        }
        if (piece.empty()) return;
        std::lock_guard lk(j.m);
        j.text += piece;
        j.pieces.push_back(std::move(piece));
        j.cv.notify_all();
    }

    // Normal end: flush, remember the state for the next turn, log, wake the handler.
    void end(Job& j, const char* reason, bool flush = true) {
        if (flush) {
            emit(j, j.pending, true);
            j.pending.clear();
        }
        if (j.req.cache_prompt) remember_end(j, std::string_view(reason) == "length");
        {
            std::lock_guard lk(j.m);
            j.finish = reason;
            j.usage = usage(j);
            j.done = true;
        }
        j.cv.notify_all();
        log(j, reason);
    }

    void fail(Job& j, const ApiError& e) {
        if (j.done) return;
        {
            std::lock_guard lk(j.m);
            j.error = e;
            j.usage = usage(j);
            j.done = true;
        }
        j.cv.notify_all();
        log(j, e.status == 499 ? "cancelled" : e.what());
    }

    rwkv_server::Usage usage(const Job& j) const { return {j.prompt.size(), j.cached, j.generated.size()}; }

    // After a reply: the state has read the prompt and every generated token. A completion is stored under
    // exactly those tokens. A chat turn is stored under the tokens the next request will send for it (the
    // reply as chat_segments writes an assistant message), when the state read exactly that text; a reply
    // cut short gets its "\n\n" fed first, as Session::chat does.
    void remember_end(Job& j, bool cut_short) {
        if (j.generated.empty()) return;
        std::vector<rwkv::token> key = j.prompt;
        if (j.req.endpoint == Endpoint::completions) {
            key.insert(key.end(), j.generated.begin(), j.generated.end());
        } else {
            if (cut_short) {
                const auto nl = tok_.encode("\n\n");
                const auto logits = model_.forward(std::span<const rwkv::token>(nl), j.state);
                j.logits.assign(logits.begin(), logits.end());
                j.consumed += "\n\n";
            }
            const std::string canonical = " " + rwkv_server::clean_reply(j.text) + "\n\n";
            if (j.consumed != canonical) return;
            tok_.encode(canonical, key);
        }
        remember(key, j.state, j.logits);
    }

    void remember(const std::vector<rwkv::token>& tokens, const rwkv::State& s, std::span<const float> logits) {
        if (opt_.cache_mb == 0) return;
        cache_.insert(tokens, s, logits);
        cache_entries_ = cache_.entries();
        cache_bytes_ = cache_.bytes();
    }

    void log(const Job& j, const char* outcome) const {
        const double s = std::chrono::duration<double>(clock_type::now() - j.arrived).count();
        std::fprintf(stderr,
                     "%s: %s %s | prompt %zu tokens (cached %zu, prefilled %zu) | generated %zu tokens | %s | "
                     "%.3f s\n",
                     prog, j.head.id.c_str(), j.req.endpoint == Endpoint::chat ? "chat" : "completion", j.prompt.size(),
                     j.cached, j.fed - j.cached, j.generated.size(), outcome, s);
    }

    static std::size_t held_suffix(std::string_view text, const std::vector<std::string>& stops) {
        std::size_t best = 0;
        for (const auto& s : stops)
            for (std::size_t n = std::min(text.size(), s.size() - 1); n > best; --n)
                if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                    best = n;
                    break;
                }
        return best;
    }

    rwkv::AnyModel model_;
    rwkv::AnyTokenizer tok_;
    Options opt_;
    StateCache cache_;
    std::vector<rwkv::token> undecodable_;
    std::vector<Job*> batch_jobs_;
    std::vector<rwkv::token> batch_tokens_;
    std::vector<rwkv::State*> batch_states_;

    mutable std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> waiting_;
    bool draining_ = false, stop_ = false;
    std::atomic<bool> cancel_all_{false};
    std::size_t requests_ = 0;
    std::atomic<std::size_t> active_count_{0}, cancelled_{0}, steps_{0}, max_batch_{0}, decoded_{0}, prefilled_{0},
        cached_tokens_{0}, cache_entries_{0}, cache_bytes_{0};
};

// ---- HTTP ---------------------------------------------------------------------------------------------------

class Api {
public:
    Api(Engine& engine, const Options& o, std::string model_id)
        : engine_(engine), opt_(o), model_id_(std::move(model_id)), created_(std::time(nullptr)) {
        limits_.max_tokens = o.max_tokens;
        limits_.vocab_size = engine.model().config().vocab_size;
        limits_.model_id = model_id_;
    }

    void install(httplib::Server& svr) {
        svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            json h = engine_.health();
            h["model"] = model_id_;
            reply(res, engine_.draining() ? 503 : 200, h);
        });
        svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
            reply(res, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
        });
        svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
            if (req.matches[1] == model_id_) return reply(res, 200, model_json());
            reply(res, 404,
                  ApiError(404, "model '" + std::string(req.matches[1]) + "' does not exist", "model",
                           "invalid_request_error", "model_not_found")
                      .to_json());
        });
        svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
            handle(req, res, Endpoint::completions);
        });
        svr.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) { handle(req, res, Endpoint::chat); });
        // Anything else, and errors httplib produces itself (413, 400), in OpenAI's error shape.
        svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return;
            const std::string msg = res.status == 404   ? "no route for " + req.method + " " + req.path
                                    : res.status == 413 ? "request body too large (--max-body-mb)"
                                                        : "HTTP error " + std::to_string(res.status);
            res.set_content(rwkv_server::dump(ApiError(res.status, msg).to_json()), "application/json");
        });
        svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {}
            reply(res, 500, ApiError(500, "internal error: " + what, {}, "server_error").to_json());
        });
    }

private:
    static void reply(httplib::Response& res, int status, const json& body) {
        res.status = status;
        res.set_content(rwkv_server::dump(body), "application/json");
    }

    json model_json() const {
        return {{"id", model_id_}, {"object", "model"}, {"created", created_}, {"owned_by", "rwkv"}};
    }

    void handle(const httplib::Request& http, httplib::Response& res, Endpoint endpoint) {
        std::shared_ptr<Job> job;
        try {
            job = make_job(http.body, endpoint);
            engine_.submit(job);
        } catch (const ApiError& e) {
            return reply(res, e.status, e.to_json());
        }
        if (job->req.stream) return stream(res, job);
        std::unique_lock lk(job->m);
        job->cv.wait(lk, [&] { return job->done; });
        if (job->error) return reply(res, job->error->status, job->error->to_json());
        reply(res, 200, rwkv_server::completion_response(endpoint, job->head, job->text, job->finish, job->usage));
    }

    std::shared_ptr<Job> make_job(const std::string& body, Endpoint endpoint) {
        auto req = rwkv_server::parse_request(body, endpoint, limits_);
        const rwkv::AnyTokenizer& tok = engine_.tokenizer();
        std::vector<rwkv::token> prompt;
        if (req.prompt_tokens) prompt = *req.prompt_tokens;
        else if (endpoint == Endpoint::completions) tok.encode(req.prompt, prompt);
        else
            for (const auto& piece : rwkv_server::chat_segments(req.messages)) tok.encode(piece, prompt);
        if (prompt.empty()) throw ApiError(400, "the prompt encodes to no tokens", "prompt");
        if (prompt.size() > opt_.max_prompt_tokens)
            throw ApiError(400,
                           "the prompt has " + std::to_string(prompt.size()) + " tokens; this server takes at most " +
                               std::to_string(opt_.max_prompt_tokens) + " (--max-prompt-tokens)",
                           endpoint == Endpoint::chat ? "messages" : "prompt", "invalid_request_error",
                           "context_length_exceeded");
        if (!req.have_seed) req.sampling.seed = seeds_();
        rwkv::SamplerSettings s = req.sampling;
        // Ids the vocabulary does not define are never sampled; chat bans end of text (the reply ends at the
        // blank line), as Session::chat.
        s.banned.insert(s.banned.end(), engine_.undecodable().begin(), engine_.undecodable().end());
        if (endpoint == Endpoint::chat)
            if (const auto eot = tok.end_of_text()) s.banned.push_back(*eot);
        std::optional<rwkv::Sampler> sampler;
        try {
            sampler.emplace(static_cast<std::size_t>(engine_.model().config().vocab_size), std::move(s));
        } catch (const rwkv::error& e) {
            throw ApiError(400, e.what());
        }
        auto job = std::make_shared<Job>(std::move(req), std::move(prompt), std::move(*sampler));
        job->stop = job->req.stop;
        if (endpoint == Endpoint::chat) job->stop.push_back("\n\n");
        job->head = {(endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++), model_id_,
                     static_cast<std::int64_t>(std::time(nullptr))};
        job->arrived = clock_type::now();
        job->deadline = job->arrived +
                        std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opt_.timeout_s));
        return job;
    }

    // Server-sent events: text chunks as they come, a last chunk with the finish reason and usage, then
    // [DONE]. A write that fails means the client left: the job is cancelled. While nothing comes (a long
    // prefill) an SSE comment goes out every second, so a vanished client is noticed then too.
    static void stream(httplib::Response& res, const std::shared_ptr<Job>& job) {
        res.set_header("Cache-Control", "no-cache");
        auto role_sent = std::make_shared<bool>(false);
        res.set_chunked_content_provider(
            "text/event-stream",
            [job, role_sent](std::size_t, httplib::DataSink& sink) {
                std::deque<std::string> pieces;
                bool done;
                {
                    std::unique_lock lk(job->m);
                    job->cv.wait_for(lk, std::chrono::seconds(1), [&] { return !job->pieces.empty() || job->done; });
                    pieces.swap(job->pieces);
                    done = job->done;
                }
                const Endpoint e = job->req.endpoint;
                std::string out;
                if (e == Endpoint::chat && !*role_sent && (done || !pieces.empty())) {
                    *role_sent = true;
                    out += rwkv_server::sse(rwkv_server::stream_chunk(e, job->head, "", nullptr, nullptr, true));
                }
                for (const auto& p : pieces)
                    out += rwkv_server::sse(rwkv_server::stream_chunk(e, job->head, p, nullptr));
                if (done) {
                    if (job->error) {
                        out += rwkv_server::sse(job->error->to_json());
                    } else {
                        out += rwkv_server::sse(rwkv_server::stream_chunk(e, job->head, "", job->finish, &job->usage));
                        if (job->req.include_usage)
                            out += rwkv_server::sse(rwkv_server::usage_chunk(e, job->head, job->usage));
                    }
                    out += "data: [DONE]\n\n";
                }
                if (out.empty()) out = ": waiting\n\n";
                if (!sink.write(out.data(), out.size())) {
                    job->cancel = true;
                    return false;
                }
                if (done) sink.done();
                return true;
            },
            [job](bool success) {
                if (!success) job->cancel = true;
            });
    }

    Engine& engine_;
    const Options& opt_;
    std::string model_id_;
    std::int64_t created_;
    rwkv_server::Limits limits_;
    std::atomic<std::uint64_t> next_id_{1};
    // Unseeded requests draw a seed; std::random_device is thread-safe in libstdc++ (it reads the OS).
    std::random_device seeds_;
};

int run(const Options& o) {
    // SIGINT/SIGTERM are taken by one thread with sigwait (blocked everywhere else, so every thread
    // started from here inherits the mask); SIGPIPE is ignored (a vanished client is a failed write).
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    const auto t_load = clock_type::now();
    auto model = cli::load_model(o.model, true);
    if (o.threads > 0) model.set_threads(o.threads);
    cli::apply_activations(prog, model, o.activations);
    auto tok = cli::pick_tokenizer(o.vocab, model.config().vocab_size, o.model);
    cli::print_banner(prog, o.model, model, tok, cli::seconds_since(t_load));
    const std::string model_id = std::filesystem::path(o.model).stem().string();

    Engine engine(std::move(model), std::move(tok), o);
    httplib::Server svr;
    Api api(engine, o, model_id);
    api.install(svr);
    // Every waiting request holds an HTTP thread, so there are enough for all of them plus a few for
    // /health and refusals.
    const std::size_t http_threads = o.max_sessions + o.max_queue + 8;
    svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
    svr.set_payload_max_length(o.max_body_mb << 20);
    // httplib's default adds SO_REUSEPORT, which lets a second server bind a port already in use (and take
    // half its connections); SO_REUSEADDR alone allows a restart while old connections linger.
    svr.set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    svr.set_write_timeout(30, 0);

    int port = o.port;
    if (port == 0) port = svr.bind_to_any_port(o.host);
    else if (!svr.bind_to_port(o.host, port)) port = -1;
    if (port <= 0) {
        std::fprintf(stderr, "%s: error: cannot listen on %s:%d\n", prog, o.host.c_str(), o.port);
        return 1;
    }
    std::fprintf(stderr, "%s: model '%s' | listening on http://%s:%d\n", prog, model_id.c_str(), o.host.c_str(), port);

    std::thread scheduler([&] { engine.run(); });
    std::atomic<bool> exiting{false};
    std::thread signals([&] {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (exiting) return;
        std::fprintf(stderr, "%s: %s: finishing running requests (up to %g s), refusing new ones\n", prog,
                     sig == SIGINT ? "SIGINT" : "SIGTERM", o.shutdown_timeout_s);
        engine.drain();
        const auto limit = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                   std::chrono::duration<double>(o.shutdown_timeout_s));
        while (!engine.idle() && clock_type::now() < limit) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!engine.idle()) {
            std::fprintf(stderr, "%s: cancelling the requests still running\n", prog);
            engine.cancel_all();
        }
        while (!engine.idle()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        // listen_after_bind may not have started yet when the signal came early.
        while (!svr.is_running() && !exiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        svr.stop();  // handlers finish writing their responses; the pool is joined
    });

    const bool listened = svr.listen_after_bind();
    exiting = !engine.draining();  // listen ended without a signal: wake the signal thread to end it
    if (exiting) pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    engine.stop();
    scheduler.join();
    std::fprintf(stderr, "%s: stopped\n", prog);
    return listened || !exiting ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run_main(prog, [&] { return run(parse(argc, argv)); });
}
