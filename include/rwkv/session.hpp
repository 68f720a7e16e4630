#pragma once
// rwkv::Session — "just generate": a model handle, a recurrent state, a tokenizer, a sampler and the
// last logits, with the loop every application otherwise writes by hand (UTF-8 streaming, stop
// strings, end of text, ids the vocabulary does not define), forking, exact save/restore, and the
// World chat format.
//
//   auto session = rwkv::Session(rwkv::AnyModel::load("model.pth"),
//                                rwkv::AnyTokenizer::world("rwkv_vocab_v20230424.txt"));
//   session.prompt("The best thing about");
//   session.generate(100, [](std::string_view text) { std::cout << text << std::flush; return true; });
//
// A Session is not thread-safe; fork() one per thread (forks share the model's weights).

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "any_model.hpp"
#include "config.hpp"
#include "error.hpp"
#include "sampler.hpp"
#include "state.hpp"
#include "state_file.hpp"
#include "token.hpp"
#include "tokenizer.hpp"
#include "utf8.hpp"

namespace rwkv {

// A tokenizer chosen at run time: the World vocabulary or bytes. Copies share one immutable
// tokenizer (the World tables are ~2 MB).
class AnyTokenizer {
public:
    // Takes ownership of a World tokenizer: token 0 is end of text.
    explicit AnyTokenizer(WorldTokenizer t) : impl_(std::make_shared<Holder<WorldTokenizer>>(std::move(t), true)) {}
    // Byte-level models: id = byte value, no end-of-text id.
    explicit AnyTokenizer(ByteTokenizer t) : impl_(std::make_shared<Holder<ByteTokenizer>>(t, false)) {}

    // Reads a World vocabulary file; throws rwkv::error naming the file.
    static AnyTokenizer world(const std::filesystem::path& vocab) { return AnyTokenizer(WorldTokenizer(vocab)); }
    static AnyTokenizer bytes() { return AnyTokenizer(ByteTokenizer{}); }

    // The tokenizer for a model with `model_vocab` rows: the World vocabulary at `vocab` when given,
    // bytes for a 256-row model without one. Throws rwkv::error when the vocabulary defines ids the
    // model has no row for, or when a larger model comes without a vocabulary.
    static AnyTokenizer for_model(int model_vocab, const std::filesystem::path& vocab = {}) {
        if (!vocab.empty()) {
            AnyTokenizer t = world(vocab);
            if (static_cast<std::size_t>(model_vocab) < static_cast<std::size_t>(t.max_token_id()) + 1)
                throw error("vocabulary '" + vocab.string() + "' has ids up to " + std::to_string(t.max_token_id()) +
                            " but the model has only " + std::to_string(model_vocab) + " rows");
            return t;
        }
        if (model_vocab == 256) return bytes();
        throw error("this model has " + std::to_string(model_vocab) +
                    " tokens: it needs the World vocabulary (rwkv_vocab_v20230424.txt)");
    }

    // Appends the ids of `text` (UTF-8 bytes) to `out`.
    void encode(std::string_view text, std::vector<token>& out) const { impl_->encode(text, out); }
    std::vector<token> encode(std::string_view text) const {
        std::vector<token> out;
        encode(text, out);
        return out;
    }
    // Raw bytes of the ids (not necessarily valid UTF-8); throws rwkv::error for an id it does not define.
    std::string decode(std::span<const token> ids) const {
        std::string out;
        for (const token t : ids) out += token_bytes(t);
        return out;
    }
    // One id's bytes ("" for end of text); throws rwkv::error for an id it does not define.
    std::string_view token_bytes(token id) const { return impl_->token_bytes(id); }
    // Whether `id` decodes (for World: 0 and 1…65529).
    bool contains(token id) const noexcept { return impl_->contains(id); }
    token max_token_id() const noexcept { return impl_->max_token_id(); }
    // The end-of-text id (0 for World), or nullopt for byte-level models where 0 is the byte 0x00.
    std::optional<token> end_of_text() const noexcept {
        return impl_->has_eot ? std::optional<token>(0) : std::nullopt;
    }
    // "world" or "bytes".
    const char* kind() const noexcept { return impl_->has_eot ? "world" : "bytes"; }

private:
    struct Interface {
        explicit Interface(bool eot) : has_eot(eot) {}
        virtual ~Interface() = default;
        virtual void encode(std::string_view, std::vector<token>&) const = 0;
        virtual std::string_view token_bytes(token) const = 0;
        virtual bool contains(token) const noexcept = 0;
        virtual token max_token_id() const noexcept = 0;
        bool has_eot;
    };
    template <class T>
    struct Holder final : Interface {
        Holder(T t, bool eot) : Interface(eot), tok(std::move(t)) {}
        void encode(std::string_view s, std::vector<token>& out) const override { tok.encode(s, out); }
        std::string_view token_bytes(token id) const override { return tok.token_bytes(id); }
        bool contains(token id) const noexcept override { return tok.contains(id); }
        token max_token_id() const noexcept override { return tok.max_token_id(); }
        T tok;
    };
    std::shared_ptr<const Interface> impl_;
};

// Why Session::generate returned.
enum class StopReason : std::uint8_t {
    max_tokens,   // the token budget was used up
    end_of_text,  // the model produced end of text (World token 0), which is not fed to the state
    stop_string,  // one of the stop strings appeared (it is fed to the state but not emitted)
    callback,     // on_text returned false
    cancelled,    // GenerateOptions::cancel became true
};

inline const char* stop_reason_name(StopReason r) noexcept {
    switch (r) {
        case StopReason::max_tokens: return "length";
        case StopReason::end_of_text: return "end_of_text";
        case StopReason::stop_string: return "stop";
        case StopReason::callback: return "callback";
        case StopReason::cancelled: return "cancelled";
    }
    return "unknown";
}

struct GenerateOptions {
    // Generation ends before any of these byte strings would be emitted, even when one is split over
    // several tokens; the text before it is emitted. Empty strings are an error.
    std::vector<std::string> stop{};
    // Polled once per token (e.g. set from a SIGINT handler); generation ends with `cancelled`.
    const std::atomic<bool>* cancel = nullptr;
    // Extra ids to ban for this call only (on top of the sampler's and the undecodable ones).
    std::vector<token> ban{};
};

struct GenerateResult {
    std::string text;        // everything passed to on_text, concatenated (whole UTF-8 characters)
    std::size_t tokens = 0;  // tokens sampled and fed to the state
    StopReason reason = StopReason::max_tokens;
};

// Called with each piece of text as it becomes printable (whole characters, never part of a stop
// string); return false to stop generating.
using OnText = std::function<bool(std::string_view)>;
// Called with (tokens fed, tokens total) while a long prompt is fed.
using OnPrefill = std::function<void(std::size_t done, std::size_t total)>;

class Session {
public:
    // A fresh session: the model's initial state, no logits yet (prompt() first). Throws rwkv::error
    // when the tokenizer defines ids the model has no row for, or for invalid sampler settings.
    Session(AnyModel model, AnyTokenizer tokenizer, SamplerSettings sampling = {})
        : model_(std::move(model)),
          tok_(std::move(tokenizer)),
          state_(model_.new_state()),
          sampler_(static_cast<std::size_t>(model_.config().vocab_size), {}),
          fingerprint_(std::make_shared<Fingerprint>()) {
        const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
        if (static_cast<std::size_t>(tok_.max_token_id()) + 1 > vocab)
            throw error("rwkv::Session: the tokenizer defines ids up to " + std::to_string(tok_.max_token_id()) +
                        " but the model has only " + std::to_string(vocab) + " rows");
        // Rows the tokenizer cannot decode (World: 65530…65535) are never sampled.
        for (std::size_t i = 0; i < vocab; ++i)
            if (!tok_.contains(static_cast<token>(i))) undecodable_.push_back(static_cast<token>(i));
        set_sampling(std::move(sampling));
    }

    const AnyModel& model() const noexcept { return model_; }
    AnyModel& model() noexcept { return model_; }
    const AnyTokenizer& tokenizer() const noexcept { return tok_; }
    const State& state() const noexcept { return state_; }
    State& state() noexcept { return state_; }
    const Sampler& sampler() const noexcept { return sampler_; }
    // Logits after the last token fed ([vocab_size]); empty before the first prompt.
    std::span<const float> logits() const noexcept { return logits_; }
    // Tokens fed to the state since it was created or reset (prompt and generated tokens).
    std::uint64_t position() const noexcept { return position_; }
    // The ids no sampling can produce because the tokenizer does not define them.
    std::span<const token> undecodable() const noexcept { return undecodable_; }

    // The sampling settings (the user's bans, without the undecodable ids that are always added).
    const SamplerSettings& sampling() const noexcept { return sampling_; }
    // Replaces the sampling settings; occurrence counts are kept and the generator is reseeded only
    // when the seed changes. Throws rwkv::error (nothing changed) for invalid settings.
    void set_sampling(SamplerSettings s) {
        SamplerSettings effective = s;
        effective.banned.insert(effective.banned.end(), undecodable_.begin(), undecodable_.end());
        sampler_.set_settings(std::move(effective));
        sampling_ = std::move(s);
    }

    // Back to the model's initial state: no logits, position 0, occurrence counts cleared and the
    // generator restarted from the seed.
    void reset() {
        model_.reset(state_);
        logits_.clear();
        position_ = 0;
        sampler_.reset();
    }

    // Feeds UTF-8 text (tokenized as one piece). Returns the number of tokens fed. Empty text is a
    // no-op. A prompt over 4096 tokens is fed in slices, after each of which `progress` reports
    // (done, total); shorter ones do not call it.
    std::size_t prompt(std::string_view text, const OnPrefill& progress = {}) {
        const std::vector<token> ids = tok_.encode(text);
        feed(ids, progress);
        return ids.size();
    }

    // Feeds token ids (checked against the model: rwkv::error, state untouched, for a bad id).
    void feed(std::span<const token> ids, const OnPrefill& progress = {}) {
        if (ids.empty()) return;
        constexpr std::size_t slice = 4096;  // a multiple of the model's prefill chunk: same numbers
        if (!progress || ids.size() <= slice) {
            set_logits(model_.forward(ids, state_));
            position_ += ids.size();
            return;
        }
        for (std::size_t at = 0; at < ids.size(); at += slice) {
            const auto part = ids.subspan(at, std::min(slice, ids.size() - at));
            set_logits(model_.forward(part, state_));
            position_ += part.size();
            progress(at + part.size(), ids.size());
        }
    }

    // Samples up to `max_tokens` tokens, feeding each to the state as it is drawn, and streams the
    // text to `on_text` in whole UTF-8 characters (ill-formed bytes become U+FFFD). End of text (World
    // token 0) ends the generation unless banned; stop strings are never emitted. Throws rwkv::error
    // when there is nothing to continue from (no prompt yet, or a bare state was loaded) or for an
    // empty stop string.
    GenerateResult generate(std::size_t max_tokens, const OnText& on_text = {}, const GenerateOptions& opt = {}) {
        if (logits_.empty()) throw error("rwkv::Session::generate: no logits to continue from; call prompt() first");
        for (const auto& s : opt.stop)
            if (s.empty()) throw error("rwkv::Session::generate: empty stop string");
        std::optional<SamplerSettings> restore;
        if (!opt.ban.empty()) {  // per-call bans: applied to the sampler for this call only
            restore = sampler_.settings();
            SamplerSettings s = sampler_.settings();
            s.banned.insert(s.banned.end(), opt.ban.begin(), opt.ban.end());
            sampler_.set_settings(std::move(s));
        }
        struct Restore {
            Sampler& sampler;
            std::optional<SamplerSettings>& saved;
            ~Restore() {
                if (saved) sampler.set_settings(std::move(*saved));
            }
        } restore_guard{sampler_, restore};

        GenerateResult res;
        Utf8Stream utf8;
        std::string pending;  // bytes held back because they may start a stop string
        bool keep_going = true;
        auto emit = [&](std::string_view bytes, bool final) {
            std::string_view text = utf8.push(bytes);
            std::string piece(text);
            if (final) piece += utf8.flush();
            if (piece.empty()) return;
            res.text += piece;
            if (on_text && keep_going && !on_text(piece)) keep_going = false;
        };
        const std::optional<token> eot = tok_.end_of_text();
        while (res.tokens < max_tokens) {
            if (opt.cancel && opt.cancel->load(std::memory_order_relaxed)) {
                res.reason = StopReason::cancelled;
                break;
            }
            const token t = sampler_.sample(logits_);
            if (eot && t == *eot) {
                res.reason = StopReason::end_of_text;
                break;
            }
            sampler_.accept(t);
            // Fed at once, so the state always includes every token the caller has seen.
            set_logits(model_.forward(t, state_));
            ++position_;
            ++res.tokens;
            pending += tok_.token_bytes(t);
            std::size_t cut = std::string::npos;
            for (const auto& s : opt.stop) cut = std::min(cut, pending.find(s));
            if (cut != std::string::npos) {
                emit(std::string_view(pending).substr(0, cut), true);
                pending.clear();
                res.reason = StopReason::stop_string;
                return res;
            }
            const std::size_t hold = held_suffix(pending, opt.stop);
            emit(std::string_view(pending).substr(0, pending.size() - hold), false);
            pending.erase(0, pending.size() - hold);
            if (!keep_going) {
                res.reason = StopReason::callback;
                break;
            }
        }
        keep_going = keep_going && res.reason != StopReason::callback;
        emit(pending, true);
        return res;
    }

    // One World-format chat turn (spec 7.4): cleans `message` (\r\n -> \n, newline runs collapsed,
    // trimmed), feeds "User: <message>\n\nAssistant:", and generates the reply until the blank line
    // that ends it (token 0 banned). A reply cut short (max_tokens, callback, cancel) gets the "\n\n"
    // fed anyway, so the next turn starts in the right format. Returns the reply without the leading
    // space; an empty message (after cleaning) is an error.
    GenerateResult chat(std::string_view message, std::size_t max_tokens, const OnText& on_text = {},
                        const std::atomic<bool>* cancel = nullptr) {
        const std::string msg = clean_chat_message(message);
        if (msg.empty()) throw error("rwkv::Session::chat: empty message");
        prompt("User: " + msg + "\n\nAssistant:");
        GenerateOptions opt;
        opt.stop = {"\n\n"};
        opt.cancel = cancel;
        if (auto eot = tok_.end_of_text()) opt.ban.push_back(*eot);
        // The model writes the space after "Assistant:"; it is not part of the reply.
        bool first = true;
        auto strip_space = [&](std::string_view text) {
            if (first && !text.empty()) {
                first = false;
                if (text.front() == ' ') text.remove_prefix(1);
            }
            return text.empty() || !on_text || on_text(text);
        };
        GenerateResult res = generate(max_tokens, strip_space, opt);
        if (!res.text.empty() && res.text.front() == ' ') res.text.erase(0, 1);
        while (!res.text.empty() && res.text.back() == '\n') res.text.pop_back();
        if (res.reason != StopReason::stop_string) prompt("\n\n");
        return res;
    }

    // The chat format's message rule (spec 7.4): a message never contains a blank line.
    static std::string clean_chat_message(std::string_view m) {
        std::string out;
        for (const char c : m) {
            if (c == '\r') continue;
            if (c == '\n' && !out.empty() && out.back() == '\n') continue;
            out += c;
        }
        const auto b = out.find_first_not_of(" \t\n"), e = out.find_last_not_of(" \t\n");
        return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
    }

    // An independent copy: same model weights and tokenizer (shared), own state, logits, sampler.
    Session fork() const { return *this; }

    // ---- save / load ------------------------------------------------------------------------------
    // File: "RWKVSESS", u32 format, the model's shape and fingerprint (logits of a probe token from the
    // initial state), position, sampler settings, generator state and counts, the last logits, the
    // state (State::serialize), then a u64 FNV-1a of everything before it. Little-endian.

    std::vector<std::byte> serialize() const {
        Writer w;
        w.bytes(session_magic, 8);
        w.u32(session_format);
        const Config& c = model_.config();
        for (const int v : {static_cast<int>(c.version), c.n_layer, c.n_embd, c.n_head, c.head_size, c.vocab_size})
            w.u32(static_cast<std::uint32_t>(v));
        w.floats(fingerprint());
        w.u64(position_);
        const SamplerSettings& s = sampling_;
        w.f64(s.temperature), w.f64(s.top_p), w.u32(static_cast<std::uint32_t>(s.top_k));
        w.f64(s.presence_penalty), w.f64(s.frequency_penalty), w.f64(s.penalty_decay), w.u64(s.seed);
        w.u32(static_cast<std::uint32_t>(s.top_p_rule)), w.u32(s.exempt_whitespace_digits ? 1 : 0);
        w.u64(s.banned.size());
        for (const token t : s.banned) w.u32(static_cast<std::uint32_t>(t));
        w.u64(s.penalty_exempt.size());
        for (const bool b : s.penalty_exempt) w.u8(b ? 1 : 0);
        const SamplerSnapshot snap = sampler_.snapshot();
        for (const std::uint64_t x : snap.rng) w.u64(x);
        w.u64(snap.counts.size());
        for (const auto& [t, n] : snap.counts) w.u32(static_cast<std::uint32_t>(t)), w.f64(n);
        w.floats(logits_);
        const std::vector<std::byte> st = state_.serialize();
        w.u64(st.size());
        w.bytes(st.data(), st.size());
        w.u64(fnv1a(w.out));
        return std::move(w.out);
    }

    // Restores a session written by serialize()/save() (or a bare state written by State::save, which
    // replaces only the state, clears the logits and keeps the sampler). Throws rwkv::error naming
    // `source` when the bytes are truncated or corrupt, or come from a model of another shape or
    // with other weights; the session is unchanged then.
    void deserialize(std::span<const std::byte> bytes, const std::string& source = "session") {
        if (bytes.size() >= 8 && std::memcmp(bytes.data(), "RWKVSTAT", 8) == 0) {
            State st = state_;
            st.deserialize(bytes, source);
            state_ = std::move(st);
            logits_.clear();
            return;
        }
        if (bytes.size() < 8 + 4 + 8 || std::memcmp(bytes.data(), session_magic, 8) != 0)
            throw error(source + ": not an rwkv session or state file (bad magic)");
        std::uint64_t sum;
        std::memcpy(&sum, bytes.data() + bytes.size() - 8, 8);
        if (sum != fnv1a(bytes.first(bytes.size() - 8))) throw error(source + ": checksum mismatch (corrupt file)");
        Reader r{bytes.first(bytes.size() - 8), 8, source};
        if (const auto v = r.u32(); v != session_format)
            throw error(source + ": unsupported session format version " + std::to_string(v));
        const Config& c = model_.config();
        std::array<std::uint32_t, 6> shape{}, want{};
        int i = 0;
        for (const int v : {static_cast<int>(c.version), c.n_layer, c.n_embd, c.n_head, c.head_size, c.vocab_size}) {
            want[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(v);
            shape[static_cast<std::size_t>(i++)] = r.u32();
        }
        if (shape != want)
            throw error(source + ": session is for a model of another shape (" + shape_text(shape) +
                        "), this model is " + shape_text(want));
        const std::vector<float> print = r.floats();
        if (!same_fingerprint(print, fingerprint()))
            throw error(source + ": session was saved from a model with other weights (same shape " + shape_text(want) +
                        ", different logits for the probe token)");
        const std::uint64_t position = r.u64();
        SamplerSettings s;
        s.temperature = r.f64(), s.top_p = r.f64(), s.top_k = static_cast<int>(r.u32());
        s.presence_penalty = r.f64(), s.frequency_penalty = r.f64(), s.penalty_decay = r.f64(), s.seed = r.u64();
        s.top_p_rule = static_cast<TopPRule>(r.u32());
        s.exempt_whitespace_digits = r.u32() != 0;
        s.banned.resize(r.count(4));
        for (token& t : s.banned) t = static_cast<token>(r.u32());
        s.penalty_exempt.resize(r.count(1));
        for (std::size_t k = 0; k < s.penalty_exempt.size(); ++k) s.penalty_exempt[k] = r.u8() != 0;
        SamplerSnapshot snap;
        for (std::uint64_t& x : snap.rng) x = r.u64();
        snap.counts.resize(r.count(12));
        for (auto& [t, n] : snap.counts) t = static_cast<token>(r.u32()), n = r.f64();
        std::vector<float> logits = r.floats();
        if (!logits.empty() && logits.size() != static_cast<std::size_t>(c.vocab_size))
            throw error(source + ": " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                        std::to_string(c.vocab_size));
        const std::size_t n_state = r.count(1);
        State st = model_.new_state();
        st.deserialize(r.take(n_state), source);
        if (r.pos != r.bytes.size()) throw error(source + ": trailing bytes after the state");

        // Everything read and checked: commit (a sampler copy first, so a bad setting changes nothing).
        Session next = *this;
        try {
            next.set_sampling(std::move(s));
            next.sampler_.restore(snap);
        } catch (const error& e) {
            throw error(source + ": " + e.what());
        }
        next.state_ = std::move(st);
        next.logits_ = std::move(logits);
        next.position_ = position;
        *this = std::move(next);
    }

    // Writes serialize() to `path`; throws rwkv::error naming the file if it cannot be written.
    void save(const std::filesystem::path& path) const {
        const auto bytes = serialize();
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out) throw error(path.string() + ": cannot write session file");
    }

    // Reads a file written by save() (or State::save; see deserialize()), or a state-tuning .pth
    // (only att.time_state tensors; state_file.hpp), which replaces the state like a bare state.
    void load(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw error(path.string() + ": cannot open session file");
        char magic[2] = {};
        in.read(magic, 2);
        if (in.gcount() == 2 && magic[0] == 'P' && magic[1] == 'K') {  // a zip: PyTorch .pth
            State st = state_;
            load_time_state(st, io::load_pth(path));
            state_ = std::move(st);
            logits_.clear();
            return;
        }
        in.seekg(0);
        std::vector<char> buf((std::istreambuf_iterator<char>(in)), {});
        deserialize(std::as_bytes(std::span(buf)), path.string());
    }

    // The model's fingerprint: logits of a probe token from the initial state, at 32 ids spread over
    // the vocabulary. Computed once per model (shared by forks); one token of work.
    std::span<const float> fingerprint() const {
        if (fingerprint_->values.empty()) {
            State s = model_.new_state();
            const auto l = model_.forward(token{1}, s);
            const std::size_t v = l.size();
            for (std::size_t k = 0; k < 32; ++k) fingerprint_->values.push_back(l[k * v / 32]);
        }
        return fingerprint_->values;
    }

private:
    static constexpr char session_magic[8] = {'R', 'W', 'K', 'V', 'S', 'E', 'S', 'S'};
    static constexpr std::uint32_t session_format = 1;

    struct Fingerprint {
        std::vector<float> values;
    };

    // Kernels may change the last bits between builds or thread counts; other weights move logits
    // by far more than this.
    static bool same_fingerprint(std::span<const float> a, std::span<const float> b) {
        if (a.size() != b.size()) return false;
        for (std::size_t k = 0; k < a.size(); ++k)
            if (!(std::fabs(a[k] - b[k]) <= 1e-3f * (1.0f + std::fabs(b[k])))) return false;
        return true;
    }

    static std::string shape_text(const std::array<std::uint32_t, 6>& h) {
        return std::string(h[0] == 0   ? "x052"
                           : h[0] == 1 ? "x060"
                                       : "unknown") +
               " L" + std::to_string(h[1]) + " C" + std::to_string(h[2]) + " H" + std::to_string(h[3]) + " N" +
               std::to_string(h[4]) + " V" + std::to_string(h[5]);
    }

    // Length of the longest suffix of `text` that is a proper prefix of a stop string: those bytes
    // may become a stop string with the next token, so they are held back.
    static std::size_t held_suffix(std::string_view text, const std::vector<std::string>& stops) {
        std::size_t best = 0;
        for (const auto& s : stops) {
            for (std::size_t n = std::min(text.size(), s.size() - 1); n > best; --n) {
                if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                    best = n;
                    break;
                }
            }
        }
        return best;
    }

    void set_logits(std::span<const float> l) { logits_.assign(l.begin(), l.end()); }

    static std::uint64_t fnv1a(std::span<const std::byte> b) {
        std::uint64_t h = 1469598103934665603ull;
        for (const std::byte x : b) h = (h ^ static_cast<std::uint64_t>(x)) * 1099511628211ull;
        return h;
    }

    struct Writer {
        std::vector<std::byte> out;
        void bytes(const void* p, std::size_t n) {
            const auto* b = static_cast<const std::byte*>(p);
            out.insert(out.end(), b, b + n);
        }
        void u8(std::uint8_t v) { bytes(&v, 1); }
        void u32(std::uint32_t v) { bytes(&v, 4); }
        void u64(std::uint64_t v) { bytes(&v, 8); }
        void f64(double v) { bytes(&v, 8); }
        void floats(std::span<const float> f) {
            u64(f.size());
            bytes(f.data(), f.size() * sizeof(float));
        }
    };
    struct Reader {
        std::span<const std::byte> bytes;
        std::size_t pos;
        const std::string& source;
        std::span<const std::byte> take(std::size_t n) {
            if (n > bytes.size() - pos) throw error(source + ": truncated session file");
            const auto s = bytes.subspan(pos, n);
            pos += n;
            return s;
        }
        template <class T>
        T get() {
            T v;
            std::memcpy(&v, take(sizeof v).data(), sizeof v);
            return v;
        }
        std::uint8_t u8() { return get<std::uint8_t>(); }
        std::uint32_t u32() { return get<std::uint32_t>(); }
        std::uint64_t u64() { return get<std::uint64_t>(); }
        double f64() { return get<double>(); }
        // An element count whose elements (each `size` bytes) must fit in what is left.
        std::size_t count(std::size_t size) {
            const std::uint64_t n = u64();
            if (n > (bytes.size() - pos) / size) throw error(source + ": truncated session file");
            return static_cast<std::size_t>(n);
        }
        std::vector<float> floats() {
            std::vector<float> f(count(sizeof(float)));
            if (!f.empty()) std::memcpy(f.data(), take(f.size() * sizeof(float)).data(), f.size() * sizeof(float));
            return f;
        }
    };

    AnyModel model_;
    AnyTokenizer tok_;
    State state_;
    Sampler sampler_;
    SamplerSettings sampling_;
    std::vector<token> undecodable_;
    std::vector<float> logits_;
    std::uint64_t position_ = 0;
    std::shared_ptr<Fingerprint> fingerprint_;
};

}  // namespace rwkv
