// rwkv::Sampler with arbitrary logits (NaN, inf, huge, denormal) and settings: sample() returns
// an id in range that is not banned, or throws rwkv::error; settings outside their ranges throw.
#include <rwkv/sampler.hpp>

#include <cstring>

#include "fuzz_support.hpp"

namespace {

struct reader {
    const std::uint8_t* p;
    std::size_t n;
    template <class T>
    T take() {
        T v{};
        const std::size_t k = std::min(sizeof(T), n);
        std::memcpy(&v, p, k);
        p += k;
        n -= k;
        return v;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    reader r{data, size};
    const std::size_t vocab = 1 + r.take<std::uint16_t>() % 600;
    rwkv::SamplerSettings s;
    const std::uint8_t mode = r.take<std::uint8_t>();
    // Either raw doubles (to hit the validation) or values drawn into the valid ranges.
    if (mode & 1) {
        s.temperature = r.take<double>();
        s.top_p = r.take<double>();
        s.presence_penalty = r.take<double>();
        s.frequency_penalty = r.take<double>();
        s.penalty_decay = r.take<double>();
    } else {
        s.temperature = r.take<std::uint8_t>() / 32.0;
        s.top_p = r.take<std::uint8_t>() / 255.0;
        s.presence_penalty = (r.take<std::int8_t>()) / 16.0;
        s.frequency_penalty = (r.take<std::int8_t>()) / 16.0;
        s.penalty_decay = r.take<std::uint8_t>() / 255.0;
    }
    s.top_k = static_cast<int>(r.take<std::int16_t>());
    s.seed = r.take<std::uint64_t>();
    const unsigned n_banned = r.take<std::uint8_t>() % 8;
    for (unsigned i = 0; i < n_banned; ++i) s.banned.push_back(static_cast<rwkv::token>(r.take<std::int16_t>()));
    if (mode & 2) {
        s.exempt_whitespace_digits = true;
        s.penalty_exempt.resize(vocab);
        for (std::size_t i = 0; i < vocab; ++i) s.penalty_exempt[i] = (i % 7) == 0;
    }
    std::vector<float> logits(vocab);
    for (std::size_t i = 0; i < vocab; ++i) logits[i] = r.n ? r.take<float>() : static_cast<float>(i % 5);
    try {
        rwkv::Sampler sampler(vocab, s);
        const auto& banned = sampler.settings().banned;
        for (int step = 0; step < 4; ++step) {
            rwkv::token t;
            try {
                t = sampler.sample(logits);
            } catch (const rwkv::error&) {
                break;  // e.g. every logit -inf or NaN after bans
            }
            if (t < 0 || static_cast<std::size_t>(t) >= vocab) fuzz::finding("sampler: id out of range");
            if (std::binary_search(banned.begin(), banned.end(), t)) fuzz::finding("sampler: banned id sampled");
            sampler.accept(t);
            std::vector<float> probs(vocab);
            sampler.distribution(logits, probs);
            logits[static_cast<std::size_t>(t)] += 1.0f;
        }
    } catch (const rwkv::error&) {}
    return 0;
}
