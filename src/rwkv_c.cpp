// The C API (include/rwkv.h) on rwkv::AnyModel and rwkv::Session: every entry point catches
// everything, records the message for rwkv_last_error() and returns a status.

#include <rwkv.h>

#include <rwkv/model.hpp>
#include <rwkv/session.hpp>

#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#ifndef RWKV_VERSION_STRING
#define RWKV_VERSION_STRING "unknown"
#endif

// Every handle holds values whose copies share the weights (AnyModel and AnyTokenizer are handles
// themselves), so states and sessions stay valid after rwkv_model_free.
struct rwkv_model {
    rwkv::AnyModel model;
    rwkv::AnyTokenizer tokenizer;
    std::string weight_type;
};
struct rwkv_state {
    rwkv::State state;
};
struct rwkv_session {
    rwkv::Session session;
};

namespace {

thread_local std::string last_error;

struct bad_argument {
    std::string what;
};

rwkv_status fail(rwkv_status s, std::string message) {
    last_error = std::move(message);
    return s;
}

// Runs `f`, translating every exception into a status and a message.
template <class F>
rwkv_status guard(const char* where, F&& f) noexcept {
    try {
        last_error.clear();
        return f();
    } catch (const bad_argument& e) {
        return fail(RWKV_ERROR_INVALID_ARGUMENT, std::string(where) + ": " + e.what);
    } catch (const rwkv::error& e) {
        return fail(RWKV_ERROR, e.what());
    } catch (const std::bad_alloc&) {
        return fail(RWKV_ERROR_OUT_OF_MEMORY, std::string(where) + ": out of memory");
    } catch (const std::exception& e) {
        return fail(RWKV_ERROR_INTERNAL, std::string(where) + ": " + e.what());
    } catch (...) {
        return fail(RWKV_ERROR_INTERNAL, std::string(where) + ": unknown exception");
    }
}

template <class T>
T* need(T* p, const char* name) {
    if (!p) throw bad_argument{std::string(name) + " is NULL"};
    return p;
}

std::string_view text_of(const char* text, size_t len, const char* name) {
    if (!text) {
        if (len == 0) return {};
        throw bad_argument{std::string(name) + " is NULL"};
    }
    return len == static_cast<size_t>(-1) ? std::string_view(text) : std::string_view(text, len);
}

rwkv::SamplerSettings settings_of(const rwkv_sampling* s) {
    rwkv::SamplerSettings out;
    if (!s) return out;
    out.temperature = s->temperature;
    out.top_p = s->top_p;
    out.top_k = s->top_k;
    out.presence_penalty = s->presence_penalty;
    out.frequency_penalty = s->frequency_penalty;
    out.penalty_decay = s->penalty_decay;
    out.seed = s->seed;
    return out;
}

rwkv::OnText callback_of(rwkv_text_callback cb, void* user) {
    if (!cb) return {};
    return [cb, user](std::string_view t) { return cb(t.data(), t.size(), user) != 0; };
}

rwkv_stop_reason reason_of(rwkv::StopReason r) {
    switch (r) {
        case rwkv::StopReason::end_of_text: return RWKV_STOP_END_OF_TEXT;
        case rwkv::StopReason::stop_string: return RWKV_STOP_STOP_STRING;
        case rwkv::StopReason::callback:
        case rwkv::StopReason::cancelled: return RWKV_STOP_CALLBACK;
        case rwkv::StopReason::max_tokens: break;
    }
    return RWKV_STOP_MAX_TOKENS;
}

}  // namespace

extern "C" {

const char* rwkv_last_error(void) { return last_error.c_str(); }

const char* rwkv_status_name(rwkv_status status) {
    switch (status) {
        case RWKV_OK: return "RWKV_OK";
        case RWKV_ERROR: return "RWKV_ERROR";
        case RWKV_ERROR_INVALID_ARGUMENT: return "RWKV_ERROR_INVALID_ARGUMENT";
        case RWKV_ERROR_BUFFER_TOO_SMALL: return "RWKV_ERROR_BUFFER_TOO_SMALL";
        case RWKV_ERROR_OUT_OF_MEMORY: return "RWKV_ERROR_OUT_OF_MEMORY";
        case RWKV_ERROR_INTERNAL: return "RWKV_ERROR_INTERNAL";
    }
    return "unknown status";
}

const char* rwkv_version(void) { return RWKV_VERSION_STRING; }

rwkv_status rwkv_model_load(const char* model_path, const char* vocab_path, rwkv_model** out) {
    return guard("rwkv_model_load", [&] {
        need(model_path, "model_path");
        need(out, "out");
        if (!std::filesystem::exists(model_path)) throw rwkv::error(std::string(model_path) + ": no such model file");
        auto model = rwkv::AnyModel::load(model_path);
        const std::filesystem::path vocab = vocab_path ? std::filesystem::path(vocab_path) : std::filesystem::path();
        auto tok = rwkv::AnyTokenizer::for_model(model.config().vocab_size, vocab);
        const std::string wt = model.weight_type();
        *out = new rwkv_model{std::move(model), std::move(tok), wt};
        return RWKV_OK;
    });
}

void rwkv_model_free(rwkv_model* model) { delete model; }

rwkv_status rwkv_model_get_info(const rwkv_model* model, rwkv_model_info* out) {
    return guard("rwkv_model_get_info", [&] {
        need(model, "model");
        need(out, "out");
        const rwkv::Config& c = model->model.config();
        *out = rwkv_model_info{c.version == rwkv::Version::x052 ? 5 : 6,
                               c.n_layer,
                               c.n_embd,
                               c.n_head,
                               c.head_size,
                               c.vocab_size,
                               model->model.threads(),
                               model->weight_type.c_str(),
                               model->tokenizer.kind()};
        return RWKV_OK;
    });
}

rwkv_status rwkv_model_set_threads(rwkv_model* model, int n_threads) {
    return guard("rwkv_model_set_threads", [&] {
        need(model, "model");
        if (n_threads < 1) throw bad_argument{"n_threads must be >= 1, got " + std::to_string(n_threads)};
        model->model.set_threads(n_threads);
        return RWKV_OK;
    });
}

rwkv_status rwkv_model_set_activations(rwkv_model* model, int m) {
    return guard("rwkv_model_set_activations", [&] {
        need(model, "model");
        // An int, checked before it becomes the enum: an out-of-range enum value is undefined in C++.
        if (m < RWKV_ACTIVATIONS_EXACT || m > RWKV_ACTIVATIONS_INT8)
            throw bad_argument{"mode must be RWKV_ACTIVATIONS_EXACT, _BF16 or _INT8, got " + std::to_string(m)};
        const auto mode = static_cast<rwkv_activations>(m);
        // One mode at a time: the other is turned off first (a refused mode leaves the model exact).
        if (mode != RWKV_ACTIVATIONS_BF16) model->model.set_bf16_activations(false);
        if (mode != RWKV_ACTIVATIONS_INT8) model->model.set_int8_activations(false);
        if (mode == RWKV_ACTIVATIONS_BF16) model->model.set_bf16_activations(true);
        if (mode == RWKV_ACTIVATIONS_INT8) model->model.set_int8_activations(true);
        return RWKV_OK;
    });
}

rwkv_status rwkv_model_get_activations(const rwkv_model* model, rwkv_activations* out) {
    return guard("rwkv_model_get_activations", [&] {
        need(model, "model");
        need(out, "out");
        *out = model->model.int8_activations()   ? RWKV_ACTIVATIONS_INT8
               : model->model.bf16_activations() ? RWKV_ACTIVATIONS_BF16
                                                 : RWKV_ACTIVATIONS_EXACT;
        return RWKV_OK;
    });
}

rwkv_status rwkv_tokenize(const rwkv_model* model, const char* text, size_t text_len, int32_t* ids, size_t capacity,
                          size_t* n_ids) {
    return guard("rwkv_tokenize", [&] {
        need(model, "model");
        need(n_ids, "n_ids");
        if (capacity > 0) need(ids, "ids");
        const std::vector<rwkv::token> t = model->tokenizer.encode(text_of(text, text_len, "text"));
        *n_ids = t.size();
        if (t.size() > capacity)
            return fail(RWKV_ERROR_BUFFER_TOO_SMALL, "rwkv_tokenize: " + std::to_string(t.size()) +
                                                         " ids do not fit in " + std::to_string(capacity));
        std::copy(t.begin(), t.end(), ids);
        return RWKV_OK;
    });
}

rwkv_status rwkv_detokenize(const rwkv_model* model, const int32_t* ids, size_t n_ids, char* text, size_t capacity,
                            size_t* len) {
    return guard("rwkv_detokenize", [&] {
        need(model, "model");
        need(len, "len");
        if (n_ids > 0) need(ids, "ids");
        if (capacity > 0) need(text, "text");
        const std::string bytes = model->tokenizer.decode(std::span<const rwkv::token>(ids, n_ids));
        *len = bytes.size();
        if (bytes.size() > capacity)
            return fail(RWKV_ERROR_BUFFER_TOO_SMALL, "rwkv_detokenize: " + std::to_string(bytes.size()) +
                                                         " bytes do not fit in " + std::to_string(capacity));
        std::memcpy(text, bytes.data(), bytes.size());
        return RWKV_OK;
    });
}

rwkv_status rwkv_state_new(const rwkv_model* model, rwkv_state** out) {
    return guard("rwkv_state_new", [&] {
        need(model, "model");
        need(out, "out");
        *out = new rwkv_state{model->model.new_state()};
        return RWKV_OK;
    });
}

void rwkv_state_free(rwkv_state* state) { delete state; }

rwkv_status rwkv_state_copy(const rwkv_state* state, rwkv_state** out) {
    return guard("rwkv_state_copy", [&] {
        need(state, "state");
        need(out, "out");
        *out = new rwkv_state{state->state};
        return RWKV_OK;
    });
}

rwkv_status rwkv_state_reset(rwkv_state* state) {
    return guard("rwkv_state_reset", [&] {
        need(state, "state")->state.reset();
        return RWKV_OK;
    });
}

rwkv_status rwkv_state_save(const rwkv_state* state, const char* path) {
    return guard("rwkv_state_save", [&] {
        need(state, "state")->state.save(need(path, "path"));
        return RWKV_OK;
    });
}

rwkv_status rwkv_state_load(rwkv_state* state, const char* path) {
    return guard("rwkv_state_load", [&] {
        need(state, "state")->state.load(need(path, "path"));
        return RWKV_OK;
    });
}

rwkv_status rwkv_forward(const rwkv_model* model, rwkv_state* state, const int32_t* ids, size_t n_ids, float* logits) {
    return guard("rwkv_forward", [&] {
        need(model, "model");
        need(state, "state");
        need(ids, "ids");
        if (n_ids == 0) throw bad_argument{"n_ids is 0"};
        const auto out = model->model.forward(std::span<const rwkv::token>(ids, n_ids), state->state);
        if (logits) std::copy(out.begin(), out.end(), logits);
        return RWKV_OK;
    });
}

rwkv_status rwkv_forward_batch(const rwkv_model* model, rwkv_state* const* states, const int32_t* ids, size_t batch,
                               float* logits) {
    return guard("rwkv_forward_batch", [&] {
        need(model, "model");
        need(states, "states");
        need(ids, "ids");
        if (batch == 0) throw bad_argument{"batch is 0"};
        std::vector<rwkv::State*> s(batch);
        for (size_t b = 0; b < batch; ++b) {
            if (!states[b]) throw bad_argument{"states[" + std::to_string(b) + "] is NULL"};
            s[b] = &states[b]->state;
        }
        const auto out = model->model.forward_batch(std::span<const rwkv::token>(ids, batch), s);
        if (logits) std::copy(out.begin(), out.end(), logits);
        return RWKV_OK;
    });
}

void rwkv_sampling_default(rwkv_sampling* out) {
    if (!out) return;
    const rwkv::SamplerSettings d;
    *out = rwkv_sampling{d.temperature,       d.top_p,         d.top_k, d.presence_penalty,
                         d.frequency_penalty, d.penalty_decay, d.seed};
}

rwkv_status rwkv_session_new(const rwkv_model* model, const rwkv_sampling* sampling, rwkv_session** out) {
    return guard("rwkv_session_new", [&] {
        need(model, "model");
        need(out, "out");
        *out = new rwkv_session{rwkv::Session(model->model, model->tokenizer, settings_of(sampling))};
        return RWKV_OK;
    });
}

void rwkv_session_free(rwkv_session* session) { delete session; }

rwkv_status rwkv_session_fork(const rwkv_session* session, rwkv_session** out) {
    return guard("rwkv_session_fork", [&] {
        need(session, "session");
        need(out, "out");
        *out = new rwkv_session{session->session.fork()};
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_reset(rwkv_session* session) {
    return guard("rwkv_session_reset", [&] {
        need(session, "session")->session.reset();
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_set_sampling(rwkv_session* session, const rwkv_sampling* sampling) {
    return guard("rwkv_session_set_sampling", [&] {
        need(session, "session")->session.set_sampling(settings_of(need(sampling, "sampling")));
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_position(const rwkv_session* session, uint64_t* out) {
    return guard("rwkv_session_position", [&] {
        *need(out, "out") = need(session, "session")->session.position();
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_prompt(rwkv_session* session, const char* text, size_t text_len) {
    return guard("rwkv_session_prompt", [&] {
        need(session, "session")->session.prompt(text_of(text, text_len, "text"));
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_generate_ex(rwkv_session* session, size_t max_tokens, const char* const* stop, size_t n_stop,
                                     rwkv_text_callback callback, void* user_data, size_t* n_tokens,
                                     rwkv_stop_reason* reason) {
    return guard("rwkv_session_generate", [&] {
        need(session, "session");
        rwkv::GenerateOptions opt;
        if (n_stop > 0) need(stop, "stop");
        for (size_t i = 0; i < n_stop; ++i) {
            if (!stop[i]) throw bad_argument{"stop[" + std::to_string(i) + "] is NULL"};
            opt.stop.emplace_back(stop[i]);
        }
        const auto r = session->session.generate(max_tokens, callback_of(callback, user_data), opt);
        if (n_tokens) *n_tokens = r.tokens;
        if (reason) *reason = reason_of(r.reason);
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_generate(rwkv_session* session, size_t max_tokens, const char* const* stop, size_t n_stop,
                                  rwkv_text_callback callback, void* user_data, size_t* n_tokens) {
    return rwkv_session_generate_ex(session, max_tokens, stop, n_stop, callback, user_data, n_tokens, nullptr);
}

rwkv_status rwkv_session_chat(rwkv_session* session, const char* message, size_t message_len, size_t max_tokens,
                              rwkv_text_callback callback, void* user_data) {
    return guard("rwkv_session_chat", [&] {
        need(session, "session")
            ->session.chat(text_of(message, message_len, "message"), max_tokens, callback_of(callback, user_data));
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_save(const rwkv_session* session, const char* path) {
    return guard("rwkv_session_save", [&] {
        need(session, "session")->session.save(need(path, "path"));
        return RWKV_OK;
    });
}

rwkv_status rwkv_session_load(rwkv_session* session, const char* path) {
    return guard("rwkv_session_load", [&] {
        need(session, "session")->session.load(need(path, "path"));
        return RWKV_OK;
    });
}

}  // extern "C"
