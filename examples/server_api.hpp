#pragma once
// The OpenAI-compatible API of rwkv-server without HTTP and without a model: a JSON request body becomes
// a CompletionRequest or an ApiError (HTTP status + OpenAI's error shape), chat messages become the World
// chat format, and responses / stream chunks are built here. Kept apart from the server so the request
// parser can be fuzzed (tests/fuzz/fuzz_server_request.cpp) and read on its own.

#include <rwkv/sampler.hpp>
#include <rwkv/session.hpp>
#include <rwkv/token.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rwkv_server {

using json = nlohmann::json;

// A request the server refuses: the HTTP status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
    ApiError(int http_status, const std::string& message, std::string parameter = {},
             std::string error_type = "invalid_request_error", std::string error_code = {})
        : std::runtime_error(message),
          status(http_status),
          param(std::move(parameter)),
          type(std::move(error_type)),
          code(std::move(error_code)) {}

    json to_json() const {
        return {{"error",
                 {{"message", what()},
                  {"type", type},
                  {"param", param.empty() ? json(nullptr) : json(param)},
                  {"code", code.empty() ? json(nullptr) : json(code)}}}};
    }

    int status;
    std::string param, type, code;
};

enum class Endpoint { completions, chat };

// What the parser checks against (the server's flags).
struct Limits {
    std::size_t max_tokens = 4096;  // per request (--max-tokens)
    int vocab_size = 65536;         // token-id prompts must be below it
    std::string model_id;           // the served model; "" accepts any name
};

struct Message {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

struct CompletionRequest {
    Endpoint endpoint = Endpoint::completions;
    std::string prompt;                                     // completions: text ...
    std::optional<std::vector<rwkv::token>> prompt_tokens;  // ... or token ids
    std::vector<Message> messages;                          // chat
    std::size_t max_tokens = 16;
    rwkv::SamplerSettings sampling{};  // temperature, top_p, top_k, penalties, seed
    bool have_seed = false;            // otherwise the server draws one
    std::vector<std::string> stop;     // never emitted
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage: a usage chunk before [DONE]
    bool cache_prompt = true;    // extension (as llama-server): use and fill the state cache
};

// OpenAI's defaults where it has them (temperature 1, top_p 1, penalties 0; max_tokens 16 for completions,
// up to the server's limit for chat, whose replies end at the blank line anyway); ChatRWKV's penalty decay.
inline rwkv::SamplerSettings default_sampling() {
    rwkv::SamplerSettings s;
    s.temperature = 1.0;
    s.top_p = 1.0;
    return s;
}

namespace detail {

inline std::string type_name(const json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_array()) return "an array";
    if (v.is_object()) return "an object";
    return "null";
}

[[noreturn]] inline void bad_type(const std::string& name, const json& v, const char* want) {
    throw ApiError(400, "'" + name + "' must be " + want + ", got " + type_name(v), name);
}

inline double number(const json& v, const std::string& name, double lo, double hi) {
    if (!v.is_number()) bad_type(name, v, "a number");
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi))
        throw ApiError(400,
                       "'" + name + "' must be between " + rwkv::detail::number_text(lo) + " and " +
                           rwkv::detail::number_text(hi) + ", got " + v.dump(),
                       name);
    return x;
}

inline long long integer(const json& v, const std::string& name, long long lo, long long hi) {
    if (!v.is_number_integer()) bad_type(name, v, "an integer");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
        throw ApiError(400, "'" + name + "' must be at most " + std::to_string(hi) + ", got " + v.dump(), name);
    const long long x = v.is_number_unsigned() ? static_cast<long long>(v.get<std::uint64_t>()) : v.get<long long>();
    if (x < lo || x > hi)
        throw ApiError(
            400,
            "'" + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + v.dump(),
            name);
    return x;
}

inline bool boolean(const json& v, const std::string& name) {
    if (!v.is_boolean()) bad_type(name, v, "a boolean");
    return v.get<bool>();
}

// Message content: a string, or OpenAI's array of {"type": "text", "text": ...} parts (joined).
inline std::string content_text(const json& v, const std::string& name) {
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) bad_type(name, v, "a string or an array of text parts");
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const json& part = v[i];
        const std::string pname = name + "[" + std::to_string(i) + "]";
        if (!part.is_object()) bad_type(pname, part, "an object");
        const auto type = part.find("type");
        if (type == part.end() || !type->is_string() || type->get<std::string>() != "text")
            throw ApiError(400, "'" + pname + ".type' must be \"text\" (only text content is supported)",
                           pname + ".type");
        const auto text = part.find("text");
        if (text == part.end() || !text->is_string())
            throw ApiError(400, "'" + pname + ".text' must be a string", pname + ".text");
        out += text->get<std::string>();
    }
    return out;
}

}  // namespace detail

// Parses and checks a request body for `endpoint`. Throws ApiError (400, or 404 for an unknown model) with
// a message naming the field; never anything else for any input bytes.
inline CompletionRequest parse_request(std::string_view body, Endpoint endpoint, const Limits& limits) {
    using namespace detail;
    json j;
    try {
        j = json::parse(body.begin(), body.end());
    } catch (const json::exception& e) {
        throw ApiError(400, std::string("request body is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw ApiError(400, "request body must be a JSON object, got " + type_name(j));

    CompletionRequest r;
    r.endpoint = endpoint;
    r.sampling = default_sampling();
    r.max_tokens = endpoint == Endpoint::chat ? limits.max_tokens : std::min<std::size_t>(16, limits.max_tokens);
    // null means "not given" for every field, as OpenAI's own clients send it.
    auto field = [&](const char* name) -> const json* {
        const auto it = j.find(name);
        return it == j.end() || it->is_null() ? nullptr : &*it;
    };

    if (const json* m = field("model")) {
        if (!m->is_string()) bad_type("model", *m, "a string");
        if (!limits.model_id.empty() && m->get<std::string>() != limits.model_id)
            throw ApiError(404,
                           "model '" + m->get<std::string>() + "' does not exist; this server serves '" +
                               limits.model_id + "' (GET /v1/models)",
                           "model", "invalid_request_error", "model_not_found");
    }

    if (endpoint == Endpoint::completions) {
        const json* p = field("prompt");
        if (!p) throw ApiError(400, "'prompt' is required", "prompt");
        if (p->is_string()) {
            r.prompt = p->get<std::string>();
        } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
            r.prompt = (*p)[0].get<std::string>();
        } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
            std::vector<rwkv::token> ids;
            for (std::size_t i = 0; i < p->size(); ++i)
                ids.push_back(static_cast<rwkv::token>(
                    integer((*p)[i], "prompt[" + std::to_string(i) + "]", 0, limits.vocab_size - 1)));
            r.prompt_tokens = std::move(ids);
        } else if (p->is_array() && p->size() > 1 && (*p)[0].is_string()) {
            throw ApiError(400, "'prompt' with several prompts is not supported; send one request per prompt",
                           "prompt");
        } else {
            bad_type("prompt", *p, "a string, an array of one string, or an array of token ids");
        }
        if (!r.prompt_tokens && r.prompt.empty()) throw ApiError(400, "'prompt' is empty", "prompt");
    } else {
        const json* ms = field("messages");
        if (!ms) throw ApiError(400, "'messages' is required", "messages");
        if (!ms->is_array()) bad_type("messages", *ms, "an array");
        if (ms->empty()) throw ApiError(400, "'messages' is empty", "messages");
        for (std::size_t i = 0; i < ms->size(); ++i) {
            const json& m = (*ms)[i];
            const std::string name = "messages[" + std::to_string(i) + "]";
            if (!m.is_object()) bad_type(name, m, "an object");
            const auto role = m.find("role");
            if (role == m.end() || !role->is_string())
                throw ApiError(400, "'" + name + ".role' must be a string", name + ".role");
            std::string rname = role->get<std::string>();
            if (rname == "developer") rname = "system";  // OpenAI's newer name for the system role
            if (rname != "system" && rname != "user" && rname != "assistant")
                throw ApiError(
                    400, "'" + name + ".role' must be \"system\", \"user\" or \"assistant\", got \"" + rname + "\"",
                    name + ".role");
            const auto content = m.find("content");
            if (content == m.end() || content->is_null())
                throw ApiError(400, "'" + name + ".content' is required", name + ".content");
            r.messages.push_back({rname, content_text(*content, name + ".content")});
        }
        if (r.messages.back().role == "assistant")
            throw ApiError(400, "the last message must be from the user or the system, not the assistant", "messages");
    }

    // max_completion_tokens is the chat API's newer name for max_tokens.
    for (const char* name : {"max_tokens", "max_completion_tokens"})
        if (const json* v = field(name)) {
            const long long want = integer(*v, name, 1, std::numeric_limits<long long>::max());
            if (static_cast<unsigned long long>(want) > limits.max_tokens)
                throw ApiError(400,
                               "'" + std::string(name) + "' is " + std::to_string(want) +
                                   "; this server generates at most " + std::to_string(limits.max_tokens) +
                                   " tokens per request (--max-tokens)",
                               name);
            r.max_tokens = static_cast<std::size_t>(want);
        }
    if (const json* v = field("temperature")) r.sampling.temperature = number(*v, "temperature", 0, 2);
    if (const json* v = field("top_p")) r.sampling.top_p = number(*v, "top_p", 0, 1);
    if (const json* v = field("top_k")) r.sampling.top_k = static_cast<int>(integer(*v, "top_k", 0, 1 << 30));
    if (const json* v = field("presence_penalty")) r.sampling.presence_penalty = number(*v, "presence_penalty", -2, 2);
    if (const json* v = field("frequency_penalty"))
        r.sampling.frequency_penalty = number(*v, "frequency_penalty", -2, 2);
    if (const json* v = field("penalty_decay")) r.sampling.penalty_decay = number(*v, "penalty_decay", 0, 1);
    if (const json* v = field("seed")) {
        if (!v->is_number_integer()) bad_type("seed", *v, "an integer");
        r.sampling.seed =
            v->is_number_unsigned() ? v->get<std::uint64_t>() : static_cast<std::uint64_t>(v->get<std::int64_t>());
        r.have_seed = true;
    }
    if (const json* v = field("stop")) {
        if (v->is_string()) {
            r.stop.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            if (v->size() > 16) throw ApiError(400, "'stop' has more than 16 strings", "stop");
            for (std::size_t i = 0; i < v->size(); ++i) {
                if (!(*v)[i].is_string()) bad_type("stop[" + std::to_string(i) + "]", (*v)[i], "a string");
                r.stop.push_back((*v)[i].get<std::string>());
            }
        } else {
            bad_type("stop", *v, "a string or an array of strings");
        }
        for (const auto& s : r.stop)
            if (s.empty()) throw ApiError(400, "'stop' contains an empty string", "stop");
    }
    if (const json* v = field("stream")) r.stream = boolean(*v, "stream");
    if (const json* v = field("stream_options")) {
        if (!v->is_object()) bad_type("stream_options", *v, "an object");
        if (const auto u = v->find("include_usage"); u != v->end() && !u->is_null())
            r.include_usage = boolean(*u, "stream_options.include_usage");
    }
    if (const json* v = field("cache_prompt")) r.cache_prompt = boolean(*v, "cache_prompt");

    // Features this server does not have: refused by name rather than silently ignored.
    if (const json* v = field("n"); v && integer(*v, "n", 1, 128) != 1)
        throw ApiError(400, "'n' must be 1 (one choice per request)", "n");
    if (const json* v = field("best_of"); v && integer(*v, "best_of", 1, 128) != 1)
        throw ApiError(400, "'best_of' must be 1", "best_of");
    if (const json* v = field("echo"); v && boolean(*v, "echo")) throw ApiError(400, "'echo' is not supported", "echo");
    if (const json* v = field("logprobs"); v && !(v->is_boolean() && !v->get<bool>()))
        throw ApiError(400, "'logprobs' is not supported", "logprobs");
    if (field("suffix")) throw ApiError(400, "'suffix' is not supported", "suffix");
    if (const json* v = field("logit_bias"); v && !(v->is_object() && v->empty()))
        throw ApiError(400, "'logit_bias' is not supported", "logit_bias");
    if (const json* v = field("tools"); v && !(v->is_array() && v->empty()))
        throw ApiError(400, "'tools' is not supported", "tools");
    return r;
}

// An assistant message as the model wrote it (Session::chat's reply, without the one space after
// "Assistant:"): "\r" dropped and newline runs collapsed as for every message, trailing newlines removed, but
// spaces kept, so a reply sent back unchanged renders as exactly the text the state read.
inline std::string clean_reply(std::string_view m) {
    std::string out;
    for (const char c : m) {
        if (c == '\r' || (c == '\n' && !out.empty() && out.back() == '\n')) continue;
        out += c;
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// The World chat format (spec 7.4) as the pieces rwkv::Session::chat feeds, each tokenized on its own:
// "System: <m>\n\n", "User: <m>\n\nAssistant:" and " <reply>\n\n" for each earlier reply (user and system
// messages cleaned by Session::clean_chat_message, replies by clean_reply). A finished reply leaves the state
// exactly after " <reply>\n\n", so the next turn's pieces start with the tokens of the previous turn's state:
// the server's state cache finds them.
inline std::vector<std::string> chat_segments(const std::vector<Message>& messages) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const Message& m = messages[i];
        const bool last = i + 1 == messages.size();
        if (m.role == "assistant") {
            out.push_back(" " + clean_reply(m.content) + "\n\n");
            continue;
        }
        const std::string text = rwkv::Session::clean_chat_message(m.content);
        if (m.role == "system") {
            out.push_back("System: " + text + "\n\n");
            if (last) out.push_back("Assistant:");
            continue;
        }
        // The assistant's cue goes in the same piece as the user turn it answers, as Session::chat feeds it.
        const bool answered = last || messages[i + 1].role == "assistant";
        out.push_back("User: " + text + "\n\n" + (answered ? "Assistant:" : ""));
    }
    return out;
}

// JSON text; bytes that are not UTF-8 (e.g. quoted from a malformed body in an error message) become U+FFFD
// instead of throwing.
inline std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- responses ------------------------------------------------------------------------------------------

struct Usage {
    std::size_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
    json to_json() const {
        // prompt_tokens_details.cached_tokens is OpenAI's field; prefill_tokens (the tokens actually run
        // through the model for this prompt) is this server's extension.
        return {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}},
                {"prefill_tokens", prompt_tokens - cached_tokens}};
    }
};

struct ResponseHead {
    std::string id, model;
    std::int64_t created = 0;
};

// A whole (non-streaming) response.
inline json completion_response(Endpoint e, const ResponseHead& h, const std::string& text, const char* finish,
                                const Usage& u) {
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
    if (e == Endpoint::chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
    else choice["text"] = text;
    return {{"id", h.id},
            {"object", e == Endpoint::chat ? "chat.completion" : "text_completion"},
            {"created", h.created},
            {"model", h.model},
            {"choices", json::array({choice})},
            {"usage", u.to_json()}};
}

// One streamed chunk: a piece of text (finish == nullptr), or the last chunk with its finish reason (and
// the usage, an extension OpenAI's clients accept on any chunk). Chat's first chunk carries the role.
inline json stream_chunk(Endpoint e, const ResponseHead& h, const std::string& text, const char* finish,
                         const Usage* usage = nullptr, bool role = false) {
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (e == Endpoint::chat) {
        json delta = json::object();
        if (role) delta["role"] = "assistant";
        if (!finish) delta["content"] = text;
        choice["delta"] = delta;
    } else {
        choice["text"] = text;
    }
    json c = {{"id", h.id},
              {"object", e == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
              {"created", h.created},
              {"model", h.model},
              {"choices", json::array({choice})}};
    if (usage) c["usage"] = usage->to_json();
    return c;
}

// stream_options.include_usage: the chunk with no choices and the usage, just before [DONE].
inline json usage_chunk(Endpoint e, const ResponseHead& h, const Usage& u) {
    return {{"id", h.id},
            {"object", e == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
            {"created", h.created},
            {"model", h.model},
            {"choices", json::array()},
            {"usage", u.to_json()}};
}

// "data: <json>\n\n", the server-sent-events framing OpenAI's streams use.
inline std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace rwkv_server
