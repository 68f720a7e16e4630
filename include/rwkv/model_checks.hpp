#pragma once
// Argument checks shared by the CPU Model (model.hpp) and the CUDA Model (backend/cuda/model.cuh):
// both must refuse the same bad calls with the same rwkv::error messages, and before any state
// changes, so a caller can move between backends without new error handling.

#include <cstddef>
#include <span>
#include <string>

#include "error.hpp"
#include "token.hpp"

namespace rwkv::detail {

// Index meaning "not part of a batch" for check_token_ids.
inline constexpr std::size_t no_sequence = static_cast<std::size_t>(-1);

// Throws rwkv::error naming the first id of `tokens` outside [0, vocab_size), its position, and
// (when seq != no_sequence) the batch sequence it belongs to. `what` names the call.
inline void check_token_ids(std::span<const token> tokens, int vocab_size, const char* what,
                            std::size_t seq = no_sequence) {
    for (std::size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            throw error(std::string(what) + ": token id " + std::to_string(tokens[i]) + " at position " +
                        std::to_string(i) +
                        (seq != no_sequence ? " of sequence " + std::to_string(seq) : std::string()) +
                        " is out of range for vocab_size " + std::to_string(vocab_size));
}

// The states of a batched call: none null, no two the same, each accepted by check_state(const S&)
// (which throws for a state of another model or device).
template <class S, class CheckState>
void check_batch_states(std::span<S* const> states, CheckState&& check_state) {
    for (std::size_t b = 0; b < states.size(); ++b) {
        if (!states[b]) throw error("forward_batch: state " + std::to_string(b) + " is null");
        check_state(*states[b]);
        for (std::size_t o = 0; o < b; ++o)
            if (states[o] == states[b])
                throw error("forward_batch: sequences " + std::to_string(o) + " and " + std::to_string(b) +
                            " share one state");
    }
}

// forward_batch(tokens, states): one token per state, at least one; then the states and ids.
template <class S, class CheckState>
void check_batch_decode(std::span<const token> tokens, std::span<S* const> states, int vocab_size,
                        CheckState&& check_state) {
    if (tokens.size() != states.size() || tokens.empty())
        throw error("forward_batch: " + std::to_string(tokens.size()) + " tokens for " + std::to_string(states.size()) +
                    " states (need the same number, at least 1)");
    check_batch_states(states, check_state);
    for (std::size_t b = 0; b < tokens.size(); ++b)
        check_token_ids(tokens.subspan(b, 1), vocab_size, "forward_batch", b);
}

// forward_batch(prompts, states): one non-empty prompt per state; then the states and ids.
template <class S, class CheckState>
void check_batch_prefill(std::span<const std::span<const token>> prompts, std::span<S* const> states, int vocab_size,
                         CheckState&& check_state) {
    if (prompts.size() != states.size() || prompts.empty())
        throw error("forward_batch: " + std::to_string(prompts.size()) + " prompts for " +
                    std::to_string(states.size()) + " states (need the same number, at least 1)");
    check_batch_states(states, check_state);
    for (std::size_t b = 0; b < prompts.size(); ++b) {
        if (prompts[b].empty()) throw error("forward_batch: prompt " + std::to_string(b) + " is empty");
        check_token_ids(prompts[b], vocab_size, "forward_batch", b);
    }
}

}  // namespace rwkv::detail
