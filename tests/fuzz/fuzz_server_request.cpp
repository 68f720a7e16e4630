// Fuzz target: rwkv-server's request parser (examples/server_api.hpp) and the chat rendering it feeds.
// Any body must either parse into a request or be refused with an ApiError (a 4xx in OpenAI's shape) whose
// JSON can be written; nothing else may escape and nothing may crash. The first byte picks the endpoint.

#include "../../examples/server_api.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto endpoint = data[0] & 1 ? rwkv_server::Endpoint::chat : rwkv_server::Endpoint::completions;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    rwkv_server::Limits limits;
    limits.vocab_size = 65536;
    limits.model_id = "m";
    try {
        const auto req = rwkv_server::parse_request(body, endpoint, limits);
        if (req.endpoint == rwkv_server::Endpoint::chat) (void)rwkv_server::chat_segments(req.messages);
        if (req.max_tokens == 0 || req.max_tokens > limits.max_tokens) __builtin_trap();
    } catch (const rwkv_server::ApiError& e) {
        if (e.status < 400 || e.status > 499) __builtin_trap();
        (void)rwkv_server::dump(e.to_json());
    }
    return 0;
}
