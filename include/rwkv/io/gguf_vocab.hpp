#pragma once
// The World vocabulary stored in a GGUF file's `tokenizer.ggml.*` keys (spec 6.4), as a
// rwkv::WorldTokenizer — so a GGUF model needs no separate vocabulary file.

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "../error.hpp"
#include "gguf.hpp"
#include "../tokenizer.hpp"

namespace rwkv::io {

namespace detail {

// llama.cpp's un-escaping of the stored `repr(bytes)[2:-1]` strings: \t \n \r \xHH, and a
// backslash before any other character stands for that character.
inline std::string gguf_unescape(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out.push_back(s[i]);
            continue;
        }
        const char c = s[++i];
        if (c == 't') out.push_back('\t');
        else if (c == 'n') out.push_back('\n');
        else if (c == 'r') out.push_back('\r');
        else if (c == 'x' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
            i += 2;
        } else out.push_back(c);
    }
    return out;
}

}  // namespace detail

// True when the file embeds a vocabulary this library can use (`tokenizer.ggml.model` "rwkv").
inline bool gguf_has_world_vocab(const gguf_file& g) {
    return g.string_or("tokenizer.ggml.model", "") == "rwkv" && g.find("tokenizer.ggml.tokens");
}

// The World tokenizer of a GGUF file. Ids 0 (end of text, stored as "<s>") and tokens typed
// CONTROL (3) or UNUSED (5, the "[PAD…]" rows) are left out, as the official tokenizer has them
// not (spec 6.4); so are empty strings. Throws rwkv::error naming the file when there is no
// vocabulary, when it is not the RWKV World kind, or when the token list is inconsistent.
inline WorldTokenizer gguf_tokenizer(const gguf_file& g) {
    const std::string where = g.path.string();
    const std::string model = g.string_or("tokenizer.ggml.model", "");
    if (model.empty()) throw rwkv::error(where + ": no vocabulary in this GGUF (no tokenizer.ggml.model)");
    if (model != "rwkv")
        throw rwkv::error(where + ": tokenizer.ggml.model is '" + model +
                          "'; only the RWKV World vocabulary ('rwkv') is supported");
    const gguf_value* tokens = g.find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != gguf_type::array || tokens->elem != gguf_type::string)
        throw rwkv::error(where + ": tokenizer.ggml.tokens is missing or not an array of strings");
    const gguf_value* types = g.find("tokenizer.ggml.token_type");
    if (types && types->ints.size() != tokens->strings.size())
        throw rwkv::error(where + ": tokenizer.ggml.token_type has " + std::to_string(types->ints.size()) +
                          " entries for " + std::to_string(tokens->strings.size()) + " tokens");
    // The tokenizer reads the vocabulary file format (spec 6.1); every token becomes a bytes
    // literal of \xHH escapes, which round-trips any byte string exactly.
    std::string text;
    char buf[8];
    for (std::size_t id = 1; id < tokens->strings.size(); ++id) {
        if (types && (types->ints[id] == 3 || types->ints[id] == 5)) continue;
        const std::string bytes = detail::gguf_unescape(tokens->strings[id]);
        if (bytes.empty()) continue;
        text += std::to_string(id) + " b'";
        for (unsigned char ch : bytes) {
            std::snprintf(buf, sizeof buf, "\\x%02x", ch);
            text += buf;
        }
        text += "' " + std::to_string(bytes.size()) + "\n";
    }
    if (text.empty()) throw rwkv::error(where + ": tokenizer.ggml.tokens holds no usable tokens");
    return WorldTokenizer::from_text(text, where + " (tokenizer.ggml.tokens)");
}

inline WorldTokenizer gguf_tokenizer(const std::filesystem::path& path) { return gguf_tokenizer(read_gguf(path)); }

}  // namespace rwkv::io
