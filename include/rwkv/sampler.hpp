#pragma once
// rwkv::Sampler — ChatRWKV's sampler (spec 7.1) with its decaying presence/frequency
// penalties and banned tokens (spec 7.2), deterministic for a seed on every platform and
// allocation-free per call once constructed.
//
// A generation loop:
//
//     rwkv::Sampler sampler(model_vocab_size, {.temperature = 1.0, .top_p = 0.3, .seed = 42});
//     for (;;) {
//         rwkv::token t = sampler.sample(logits);   // penalties + bans on a copy, then draw
//         if (t == 0) break;                        // stop tokens are never accept()ed
//         sampler.accept(t);                        // decay the counts, count t
//         logits = model.forward(t, state);
//     }

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "error.hpp"
#include "token.hpp"

namespace rwkv {

// Where top-p cuts (spec section 12): the pip package (the reference) keeps the shortest
// prefix of the descending probabilities whose cumulative sum is >= top_p; the v5/v6 demo
// scripts use > top_p. Both keep every token tied with the cutoff probability.
enum class TopPRule : std::uint8_t {
    at_least,  // cumsum >= top_p (pip utils.py, default)
    greater,   // cumsum >  top_p (RWKV_v5/v6 demos)
};

// Everything a Sampler carries besides its settings: the generator's position and the decayed
// occurrence counts (in the order tokens were first seen). Saving this with the settings lets a
// restored sampler draw exactly the tokens the original would have (rwkv::Session::save).
struct SamplerSnapshot {
    std::array<std::uint64_t, 4> rng{};
    std::vector<std::pair<token, double>> counts{};
};

struct SamplerSettings {
    double temperature = 1.0;        // 0 = greedy (argmax, ties -> lowest id)
    double top_p = 0.85;             // in [0, 1]; 1 = no truncation, 0 = only the most likely (+ ties)
    int top_k = 0;                   // 0 = off
    double presence_penalty = 0.0;   // subtracted once from every token seen so far
    double frequency_penalty = 0.0;  // times the token's decayed occurrence count
    double penalty_decay = 0.996;    // counts are multiplied by this at every accept()
    std::vector<token> banned{};     // logits forced to -inf (e.g. {0} in chat)
    std::uint64_t seed = 0;
    TopPRule top_p_rule = TopPRule::at_least;

    // Counting rule for the penalties (spec 7.2). false (default, the API demos): every
    // accepted token adds 1. true (pipeline.generate): tokens whose decoded text is a
    // substring of " \t0123456789" add 0 — they still get the presence penalty, because
    // Python inserts them into the occurrence dict with weight 0. The decoded text is the
    // tokenizer's business, so the caller supplies `penalty_exempt`, one flag per token id
    // (build it with rwkv::penalty_exempt_table). Ignored while the flag is false.
    bool exempt_whitespace_digits = false;
    std::vector<bool> penalty_exempt{};  // {} so designated initialisers stay warning-free
};

// pipeline.generate's test `decoded in " \t0123456789"`: Python substring semantics, so
// "12" and the empty string (token 0) are exempt too, but "21" and "a1" are not.
inline bool is_penalty_exempt(std::string_view decoded) noexcept {
    return std::string_view(" \t0123456789").find(decoded) != std::string_view::npos;
}

// One exempt flag per token id, from any decoder returning something string_view can view
// (std::string, std::string_view, std::vector<char>...). Called once per id, up front, so
// that the generation loop never decodes.
template <class Decode>
std::vector<bool> penalty_exempt_table(std::size_t vocab_size, Decode&& decode) {
    std::vector<bool> table(vocab_size);
    for (std::size_t i = 0; i < vocab_size; ++i) {
        auto&& bytes = decode(static_cast<token>(i));
        table[i] = is_penalty_exempt(std::string_view(std::data(bytes), std::size(bytes)));
    }
    return table;
}

namespace detail {

// xoshiro256** seeded through splitmix64 (Vigna's published recipe). Our own generator,
// because the standard distributions are implementation-defined and the same seed must
// give the same tokens with every standard library.
class SamplerRng {
public:
    explicit SamplerRng(std::uint64_t seed) noexcept { reseed(seed); }

    void reseed(std::uint64_t seed) noexcept {
        for (auto& word : s_) {
            seed += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            word = z ^ (z >> 31);
        }
    }

    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // The generator's four words, to save and restore a session exactly (Sampler::snapshot).
    std::array<std::uint64_t, 4> words() const noexcept { return {s_[0], s_[1], s_[2], s_[3]}; }
    void set_words(const std::array<std::uint64_t, 4>& w) noexcept {
        for (std::size_t i = 0; i < 4; ++i) s_[i] = w[i];
    }

    // Uniform in [0, 1): the top 53 bits scaled exactly, so no rounding can produce 1.0.
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
};

// Shortest round-trip text of a number, for error messages.
inline std::string number_text(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, x);
    return res.ec == std::errc() ? std::string(buf, res.ptr) : std::to_string(x);
}

}  // namespace detail

// Adds to s.banned every id whose entry in `valid` is false: the ids a model has rows for but its
// tokenizer cannot decode (WorldTokenizer::valid_ids / ByteTokenizer::valid_ids), so that
// sample() never returns one and generation never stops on an unprintable id (a World model has
// 65536 rows for 65530 ids). `valid` has one entry per model id (the Sampler's vocab_size);
// Sampler's constructor then refuses the settings if nothing is left to sample.
inline void ban_invalid_ids(SamplerSettings& s, const std::vector<bool>& valid) {
    for (std::size_t i = 0; i < valid.size(); ++i)
        if (!valid[i]) s.banned.push_back(static_cast<token>(i));
}

class Sampler {
public:
    using Settings = SamplerSettings;

    // Allocates every buffer here (a few bytes per vocabulary entry); sample(), accept(),
    // apply_penalties() and distribution() never allocate afterwards.
    explicit Sampler(std::size_t vocab_size, SamplerSettings settings = {}) : vocab_(vocab_size), rng_(settings.seed) {
        if (vocab_size == 0 || vocab_size > static_cast<std::size_t>(std::numeric_limits<token>::max()))
            throw error("rwkv::Sampler: vocabulary size " + std::to_string(vocab_size) +
                        " is out of range (1 .. 2^31-1)");
        prepare(settings);
        settings_ = std::move(settings);
        logit_.resize(vocab_);
        prob_.resize(vocab_);
        weight_.resize(vocab_);
        order_.resize(vocab_);
        count_.assign(vocab_, 0.0);
        present_.assign(vocab_, 0);
        seen_.reserve(vocab_);  // every distinct token at most once, so push_back never grows
    }

    std::size_t vocab_size() const noexcept { return vocab_; }
    const SamplerSettings& settings() const noexcept { return settings_; }

    // Replaces the settings between steps (e.g. a chat command); the occurrence counts are
    // kept, the generator is reseeded only when the seed changes.
    void set_settings(SamplerSettings settings) {
        prepare(settings);
        const bool reseed_now = settings.seed != settings_.seed;
        settings_ = std::move(settings);
        if (reseed_now) rng_.reseed(settings_.seed);
    }

    // Forgets the occurrence counts and restarts the generator from settings().seed, so
    // the same logits give the same tokens again.
    void reset() noexcept {
        for (const token t : seen_) {
            count_[static_cast<std::size_t>(t)] = 0.0;
            present_[static_cast<std::size_t>(t)] = 0;
        }
        seen_.clear();
        rng_.reseed(settings_.seed);
    }

    // Restarts the generator only (counts are kept); reset() then returns to this seed.
    void reseed(std::uint64_t seed) noexcept {
        settings_.seed = seed;
        rng_.reseed(seed);
    }

    // The generator state and occurrence counts (see SamplerSnapshot); allocates.
    SamplerSnapshot snapshot() const {
        SamplerSnapshot snap{rng_.words(), {}};
        snap.counts.reserve(seen_.size());
        for (const token t : seen_) snap.counts.emplace_back(t, count_[static_cast<std::size_t>(t)]);
        return snap;
    }

    // Replaces the generator state and occurrence counts by a snapshot (settings are kept).
    // Throws rwkv::error, leaving the sampler unchanged, for an id outside the vocabulary, a
    // repeated id, or a count that is negative or not finite.
    void restore(const SamplerSnapshot& snap) {
        std::vector<std::uint8_t> dup(vocab_, 0);
        for (const auto& [t, c] : snap.counts) {
            check_token(t, "restore");
            if (dup[static_cast<std::size_t>(t)]++)
                throw error("rwkv::Sampler::restore: token " + std::to_string(t) + " appears twice");
            if (!std::isfinite(c) || c < 0.0)
                throw error("rwkv::Sampler::restore: count of token " + std::to_string(t) + " is " +
                            detail::number_text(c));
        }
        for (const token t : seen_) {
            count_[static_cast<std::size_t>(t)] = 0.0;
            present_[static_cast<std::size_t>(t)] = 0;
        }
        seen_.clear();
        for (const auto& [t, c] : snap.counts) {
            count_[static_cast<std::size_t>(t)] = c;
            present_[static_cast<std::size_t>(t)] = 1;
            seen_.push_back(t);
        }
        rng_.set_words(snap.rng);
    }

    // Draws the next token. `logits` is left untouched: penalties and bans go to a copy.
    token sample(std::span<const float> logits) {
        apply_penalties(logits, logit_);
        if (settings_.temperature == 0.0) return argmax();
        const double total = build_weights();
        // Walk in id order, like numpy's choice over the cdf, so the draw never depends on
        // how the sort broke ties.
        const double u = rng_.uniform() * total;
        double acc = 0.0;
        std::size_t last = 0;
        for (std::size_t i = 0; i < vocab_; ++i) {
            if (weight_[i] == 0.0) continue;
            acc += weight_[i];
            last = i;
            if (u < acc) return static_cast<token>(i);
        }
        return static_cast<token>(last);  // u landed in the rounding gap at the very end
    }

    // Records a generated token: decay every existing count, then add 1 (or 0 for an
    // exempt token under exempt_whitespace_digits) — the order of spec 7.2.
    void accept(token t) {
        check_token(t, "accept");
        const auto i = static_cast<std::size_t>(t);
        for (const token s : seen_) count_[static_cast<std::size_t>(s)] *= settings_.penalty_decay;
        const bool exempt = settings_.exempt_whitespace_digits && settings_.penalty_exempt[i];
        if (!present_[i]) {
            present_[i] = 1;
            seen_.push_back(t);
        }
        count_[i] += exempt ? 0.0 : 1.0;
    }

    // sample() then accept(), for loops without stop tokens.
    token next(std::span<const float> logits) {
        const token t = sample(logits);
        accept(t);
        return t;
    }

    // The logits sample() works on: banned ids -> -inf, then for every token seen so far
    // ℓ -= presence + count·frequency. `out` may be `logits` itself.
    void apply_penalties(std::span<const float> logits, std::span<float> out) const {
        if (logits.size() != vocab_)
            throw error("rwkv::Sampler: got " + std::to_string(logits.size()) +
                        " logits, expected the vocabulary size " + std::to_string(vocab_));
        if (out.size() != vocab_)
            throw error("rwkv::Sampler: output span has " + std::to_string(out.size()) +
                        " entries, expected the vocabulary size " + std::to_string(vocab_));
        for (std::size_t i = 0; i < vocab_; ++i) {
            const float x = logits[i];
            // -inf is a legitimate mask; NaN or +inf would poison the softmax of every token.
            if (std::isnan(x) || x == std::numeric_limits<float>::infinity())
                throw error("rwkv::Sampler: logit of token " + std::to_string(i) + " is " + detail::number_text(x));
            out[i] = x;
        }
        for (const token b : settings_.banned)
            out[static_cast<std::size_t>(b)] = -std::numeric_limits<float>::infinity();
        for (const token s : seen_) {
            const auto i = static_cast<std::size_t>(s);
            // Computed in double like Python, subtracted in float like the torch tensor.
            // Clamped so that an absurd setting saturates instead of producing +inf, whose
            // softmax would be NaN; -inf is harmless (it only masks the token).
            constexpr double lim = std::numeric_limits<float>::max();
            const double penalty = settings_.presence_penalty + count_[i] * settings_.frequency_penalty;
            out[i] = std::min(out[i] - static_cast<float>(std::clamp(penalty, -lim, lim)),
                              std::numeric_limits<float>::max());
        }
    }

    // The exact distribution sample() would draw from for these logits (penalties, bans,
    // top-p, top-k, temperature, renormalised); one-hot at the argmax when temperature is 0.
    void distribution(std::span<const float> logits, std::span<float> probs) {
        if (probs.size() != vocab_)
            throw error("rwkv::Sampler: output span has " + std::to_string(probs.size()) +
                        " entries, expected the vocabulary size " + std::to_string(vocab_));
        apply_penalties(logits, logit_);
        if (settings_.temperature == 0.0) {
            std::fill(probs.begin(), probs.end(), 0.0f);
            probs[static_cast<std::size_t>(argmax())] = 1.0f;
            return;
        }
        const double total = build_weights();
        for (std::size_t i = 0; i < vocab_; ++i) probs[i] = static_cast<float>(weight_[i] / total);
    }

    // The decayed occurrence count of a token (0 if never accepted).
    double occurrence(token t) const {
        check_token(t, "occurrence");
        return count_[static_cast<std::size_t>(t)];
    }

    // Whether a token has been accepted since the last reset (so it gets the presence
    // penalty even when its count is 0 because it is exempt).
    bool seen(token t) const {
        check_token(t, "seen");
        return present_[static_cast<std::size_t>(t)] != 0;
    }

private:
    // Validates `s` and sorts/deduplicates its banned list, before anything is committed,
    // so a rejected set_settings() leaves the sampler as it was.
    void prepare(SamplerSettings& s) const {
        const auto bad = [](const char* what, double value, const char* rule) {
            return error(std::string("rwkv::Sampler: ") + what + " " + detail::number_text(value) + " is invalid (" +
                         rule + ")");
        };
        if (!(s.temperature >= 0.0) || !std::isfinite(s.temperature))
            throw bad("temperature", s.temperature, "must be finite and >= 0; 0 = greedy");
        if (!(s.top_p >= 0.0 && s.top_p <= 1.0)) throw bad("top_p", s.top_p, "must be in [0, 1]; 1 = no truncation");
        if (s.top_k < 0) throw bad("top_k", s.top_k, "must be >= 0; 0 = off");
        if (!std::isfinite(s.presence_penalty)) throw bad("presence_penalty", s.presence_penalty, "must be finite");
        if (!std::isfinite(s.frequency_penalty)) throw bad("frequency_penalty", s.frequency_penalty, "must be finite");
        if (!(s.penalty_decay >= 0.0 && s.penalty_decay <= 1.0))
            throw bad("penalty_decay", s.penalty_decay, "must be in [0, 1]");
        for (const token b : s.banned) {
            if (b < 0 || static_cast<std::size_t>(b) >= vocab_)
                throw error("rwkv::Sampler: banned token " + std::to_string(b) + " is outside the vocabulary [0, " +
                            std::to_string(vocab_) + ")");
        }
        std::sort(s.banned.begin(), s.banned.end());
        s.banned.erase(std::unique(s.banned.begin(), s.banned.end()), s.banned.end());
        if (s.banned.size() == vocab_)
            throw error("rwkv::Sampler: all " + std::to_string(vocab_) + " tokens are banned");
        if (s.exempt_whitespace_digits && s.penalty_exempt.size() != vocab_)
            throw error("rwkv::Sampler: exempt_whitespace_digits needs penalty_exempt with one flag per token (" +
                        std::to_string(vocab_) + "), got " + std::to_string(s.penalty_exempt.size()) +
                        "; build it with rwkv::penalty_exempt_table");
    }

    void check_token(token t, const char* where) const {
        if (t < 0 || static_cast<std::size_t>(t) >= vocab_)
            throw error(std::string("rwkv::Sampler::") + where + ": token " + std::to_string(t) +
                        " is outside the vocabulary [0, " + std::to_string(vocab_) + ")");
    }

    [[noreturn]] static void throw_nothing_left() {
        throw error("rwkv::Sampler: every logit is -inf after bans and penalties; no token can be sampled");
    }

    // First maximum, so ties go to the lowest id.
    token argmax() const {
        std::size_t best = 0;
        for (std::size_t i = 1; i < vocab_; ++i)
            if (logit_[i] > logit_[best]) best = i;
        if (logit_[best] == -std::numeric_limits<float>::infinity()) throw_nothing_left();
        return static_cast<token>(best);
    }

    // Descending probability, ties by ascending id: a total order, so top-k and the top-p
    // scan are reproducible whatever the sort algorithm does.
    bool better(token a, token b) const noexcept {
        const float pa = prob_[static_cast<std::size_t>(a)];
        const float pb = prob_[static_cast<std::size_t>(b)];
        return pa > pb || (pa == pb && a < b);
    }

    bool top_p_reached(double cumulative) const noexcept {
        return settings_.top_p_rule == TopPRule::at_least ? cumulative >= settings_.top_p
                                                          : cumulative > settings_.top_p;
    }

    // Probability at which top-p cuts among the candidates order_[0, n): the probability
    // of the first token, in `better` order, at which the running sum reaches top_p.
    // Found by a quickselect on mass rather than a full sort (expected O(n)): partition
    // around a pivot, and keep only the side where the sum crosses top_p.
    // Returns 0 (keep all n) when the sum never reaches top_p, which only rounding can
    // cause; the reference would fall back to greedy there (spec 7.1 quirk).
    float top_p_cutoff(std::size_t n) {
        const auto reached = [this](double c) { return top_p_reached(c); };
        const auto p = [this](token t) { return prob_[static_cast<std::size_t>(t)]; };
        token* const b = order_.data();

        if (reached(0.0)) {  // top_p = 0: the single best candidate decides
            return p(*std::min_element(b, b + n, [this](token x, token y) { return better(x, y); }));
        }
        double cum = 0.0;  // mass of every candidate ranked above [lo, hi); never reached
        std::size_t lo = 0;
        std::size_t hi = n;
        // Median-of-three keeps the expected cost linear; the round limit bounds the
        // adversarial worst case by handing the rest to a sort (as introselect does).
        int rounds_left = 64;
        while (hi - lo > 32 && rounds_left-- > 0) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (better(b[mid], b[lo])) std::swap(b[mid], b[lo]);
            if (better(b[hi - 1], b[mid])) std::swap(b[hi - 1], b[mid]);
            if (better(b[mid], b[lo])) std::swap(b[mid], b[lo]);
            std::swap(b[mid], b[hi - 1]);  // median to the end, as the pivot
            const token pivot = b[hi - 1];
            std::size_t split = lo;
            double above = 0.0;
            for (std::size_t i = lo; i + 1 < hi; ++i) {
                if (better(b[i], pivot)) {
                    above += p(b[i]);
                    std::swap(b[i], b[split++]);
                }
            }
            std::swap(b[split], b[hi - 1]);
            if (reached(cum + above)) {
                hi = split;  // nonempty: cum alone never reaches
            } else {
                cum += above;
                if (reached(cum + p(pivot))) return p(pivot);
                cum += p(pivot);
                lo = split + 1;
            }
        }
        std::sort(b + lo, b + hi, [this](token x, token y) { return better(x, y); });
        for (std::size_t i = lo; i < hi; ++i) {
            cum += p(b[i]);
            if (reached(cum)) return p(b[i]);
        }
        return 0.0f;
    }

    // From logit_: softmax into prob_, truncation (top-p, top-k), temperature as p^(1/T)
    // on what is left, into weight_ (zero for dropped ids). Returns the weights' sum.
    double build_weights() {
        // Softmax in fp32 like the reference, with the sum in double.
        float max_logit = -std::numeric_limits<float>::infinity();
        for (std::size_t i = 0; i < vocab_; ++i) max_logit = std::max(max_logit, logit_[i]);
        if (max_logit == -std::numeric_limits<float>::infinity()) throw_nothing_left();
        double sum = 0.0;
        for (std::size_t i = 0; i < vocab_; ++i) {
            prob_[i] = std::exp(logit_[i] - max_logit);
            sum += prob_[i];
        }
        const double inv_sum = 1.0 / sum;  // one division, not V (torch does the same)
        float p_max = 0.0f;
        for (std::size_t i = 0; i < vocab_; ++i) {
            prob_[i] = static_cast<float>(prob_[i] * inv_sum);
            p_max = std::max(p_max, prob_[i]);
        }

        const auto k = static_cast<std::size_t>(settings_.top_k);
        const bool truncate_p = settings_.top_p < 1.0;  // top_p = 1 must never turn greedy
        const bool truncate_k = k > 0 && k < vocab_;

        float cutoff = 0.0f;  // keep p >= cutoff ...
        token kth = -1;       // ... and, with top-k, ranks up to this token's
        if (truncate_p || truncate_k) {
            // Candidates: nonzero probability (banned and underflowed ids drop out).
            std::size_t n = 0;
            if (truncate_p && !truncate_k) {
                // Tokens below eps hold at most V·eps = (1 - top_p)/2 of the mass, so the
                // running sum normally crosses top_p before reaching them: leave them out
                // of the search (a model's distribution usually has a long tail of them).
                // The sum of what is left is checked, so rounding can never cut wrongly.
                const double eps = (1.0 - settings_.top_p) / (2.0 * static_cast<double>(vocab_));
                double mass = 0.0;
                for (std::size_t i = 0; i < vocab_; ++i) {
                    if (prob_[i] > 0.0f && prob_[i] >= eps) {
                        order_[n++] = static_cast<token>(i);
                        mass += prob_[i];
                    }
                }
                if (!top_p_reached(mass)) n = 0;
            }
            if (n == 0) {
                for (std::size_t i = 0; i < vocab_; ++i)
                    if (prob_[i] > 0.0f) order_[n++] = static_cast<token>(i);
            }
            // top-k first narrows the candidates to exactly the k best (ties -> lower
            // ids). The reference applies top-p first, but the kept set {p >= cutoff} ∩
            // top-k is the same: the running sum over the k best reaches top_p at the same
            // token, or not at all, and then all k survive either way.
            if (truncate_k && k < n) {
                std::nth_element(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k - 1),
                                 order_.begin() + static_cast<std::ptrdiff_t>(n),
                                 [this](token a, token b) { return better(a, b); });
                kth = order_[k - 1];
                n = k;
            }
            if (truncate_p) cutoff = top_p_cutoff(n);
        }

        const double inv_t = 1.0 / settings_.temperature;
        const bool unit_t = settings_.temperature == 1.0;
        double total = 0.0;
        for (std::size_t i = 0; i < vocab_; ++i) {
            const float p = prob_[i];
            double w = 0.0;
            if (p > 0.0f && p >= cutoff && (kth < 0 || !better(kth, static_cast<token>(i)))) {
                // Scaling by p_max before the power keeps the best token at weight 1, so a
                // small temperature cannot underflow every weight to 0; renormalising
                // undoes the scale.
                w = unit_t ? static_cast<double>(p) : std::pow(static_cast<double>(p) / p_max, inv_t);
            }
            weight_[i] = w;
            total += w;
        }
        return total;
    }

    std::size_t vocab_;
    SamplerSettings settings_;
    detail::SamplerRng rng_;
    std::vector<float> logit_;           // penalised copy of the caller's logits
    std::vector<float> prob_;            // softmax
    std::vector<double> weight_;         // final unnormalised distribution
    std::vector<token> order_;           // candidate ids, partially sorted by `better`
    std::vector<double> count_;          // decayed occurrence counts (double, like Python floats)
    std::vector<std::uint8_t> present_;  // accepted since reset (the dict's keys)
    std::vector<token> seen_;            // the same keys in insertion order, to decay only those
};

}  // namespace rwkv
