#pragma once
// JSON for the readers (safetensors headers, HF config.json and shard indexes) through
// nlohmann/json — a well-kept library beats a parser of our own. This header turns its
// exceptions into rwkv::error naming the file.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "../error.hpp"

namespace rwkv::io::detail {

// Parses `text` (the whole JSON document of `where`); throws rwkv::error naming `where`.
inline nlohmann::json parse_json(std::string_view text, const std::string& where) {
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
        throw rwkv::error(where + ": invalid JSON: " + e.what());
    }
}

// Runs `fn` (which reads a parsed document) and converts nlohmann's type/range errors into
// rwkv::error naming `where`.
template <class Fn>
decltype(auto) with_json_errors(const std::string& where, Fn&& fn) {
    try {
        return fn();
    } catch (const nlohmann::json::exception& e) {
        throw rwkv::error(where + ": unexpected JSON content: " + e.what());
    }
}

}  // namespace rwkv::io::detail
