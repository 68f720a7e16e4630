#pragma once
// Small writers for hand-built GGUF, safetensors and rwkv.cpp `.bin` files (the readers' tests
// build valid files, then break them at every boundary), plus a "every prefix fails cleanly" check.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <rwkv/error.hpp>

#include "byte_string.hpp"
#include "temp_files.hpp"

namespace test_support {

inline std::string f32_bytes(const std::vector<float>& v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), v.data(), s.size());
    return s;
}

// --- GGUF ---------------------------------------------------------------------------------

struct gguf_builder {
    std::string kv;
    std::uint64_t n_kv = 0;
    struct tensor {
        std::string name;
        std::vector<std::uint64_t> ne;
        std::uint32_t type;
        std::string data;
    };
    std::vector<tensor> tensors;
    std::uint32_t version = 3;

    static void str(std::string& s, const std::string& v) {
        put_le(s, v.size(), 8);
        s += v;
    }
    gguf_builder& add_string(const std::string& key, const std::string& v) {
        str(kv, key);
        put_le(kv, 8, 4);
        str(kv, v);
        ++n_kv;
        return *this;
    }
    gguf_builder& add_u32(const std::string& key, std::uint32_t v) {
        str(kv, key);
        put_le(kv, 4, 4);
        put_le(kv, v, 4);
        ++n_kv;
        return *this;
    }
    gguf_builder& add_f32(const std::string& key, float v) {
        str(kv, key);
        put_le(kv, 6, 4);
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        put_le(kv, u, 4);
        ++n_kv;
        return *this;
    }
    gguf_builder& add_strings(const std::string& key, const std::vector<std::string>& v) {
        str(kv, key);
        put_le(kv, 9, 4);
        put_le(kv, 8, 4);
        put_le(kv, v.size(), 8);
        for (const auto& e : v) str(kv, e);
        ++n_kv;
        return *this;
    }
    gguf_builder& add_i32s(const std::string& key, const std::vector<std::int32_t>& v) {
        str(kv, key);
        put_le(kv, 9, 4);
        put_le(kv, 5, 4);
        put_le(kv, v.size(), 8);
        for (auto e : v) put_le(kv, static_cast<std::uint32_t>(e), 4);
        ++n_kv;
        return *this;
    }
    gguf_builder& add_raw(const std::string& key_and_value) {  // pre-encoded entry
        kv += key_and_value;
        ++n_kv;
        return *this;
    }
    // ne in ggml order (innermost first); data as stored.
    gguf_builder& add_tensor(const std::string& name, std::vector<std::uint64_t> ne, std::uint32_t type,
                             std::string data) {
        tensors.push_back({name, std::move(ne), type, std::move(data)});
        return *this;
    }
    gguf_builder& rwkv6() { return add_string("general.architecture", "rwkv6"); }

    std::string build() const {
        std::string s = "GGUF";
        put_le(s, version, 4);
        put_le(s, tensors.size(), 8);
        put_le(s, n_kv, 8);
        s += kv;
        std::uint64_t off = 0;
        std::vector<std::uint64_t> offs;
        for (const auto& t : tensors) {
            str(s, t.name);
            put_le(s, t.ne.size(), 4);
            for (auto d : t.ne) put_le(s, d, 8);
            put_le(s, t.type, 4);
            put_le(s, off, 8);
            offs.push_back(off);
            off += (t.data.size() + 31) / 32 * 32;
        }
        s.resize((s.size() + 31) / 32 * 32, '\0');
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            s += tensors[i].data;
            if (i + 1 < tensors.size()) s.resize((s.size() + 31) / 32 * 32, '\0');  // no tail: any cut loses data
        }
        return s;
    }
};

// --- safetensors --------------------------------------------------------------------------

struct st_tensor {
    std::string name, dtype;
    std::vector<std::int64_t> shape;
    std::string data;
};

inline std::string safetensors_bytes(const std::vector<st_tensor>& ts, const std::string& metadata = "") {
    std::string header = "{";
    std::string data;
    bool first = true;
    if (!metadata.empty()) {
        header += "\"__metadata__\":" + metadata;
        first = false;
    }
    // Appended piecewise: GCC 12 warns (-Wrestrict, falsely) on "literal" + std::string temporaries.
    for (const auto& t : ts) {
        header += first ? "" : ",";
        first = false;
        header += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
        for (std::size_t i = 0; i < t.shape.size(); ++i) {
            if (i) header += ",";
            header += std::to_string(t.shape[i]);
        }
        header += "],\"data_offsets\":[";
        header += std::to_string(data.size());
        header += ",";
        header += std::to_string(data.size() + t.data.size());
        header += "]}";
        data += t.data;
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::string s;
    put_le(s, header.size(), 8);
    return s + header + data;
}

// --- rwkv.cpp .bin -------------------------------------------------------------------------

struct rwkvcpp_builder {
    std::string s;
    explicit rwkvcpp_builder(int n_vocab, int n_embed, int n_layer, int data_type = 0, int version = 101) {
        put_le(s, 0x67676d66u, 4);
        put_le(s, static_cast<std::uint32_t>(version), 4);
        put_le(s, static_cast<std::uint32_t>(n_vocab), 4);
        put_le(s, static_cast<std::uint32_t>(n_embed), 4);
        put_le(s, static_cast<std::uint32_t>(n_layer), 4);
        put_le(s, static_cast<std::uint32_t>(data_type), 4);
    }
    // ne in ggml order (innermost first).
    std::vector<std::size_t> ends;  // file length before each tensor (each a complete file)
    rwkvcpp_builder& add(const std::string& name, std::vector<std::int32_t> ne, int type, const std::string& data) {
        ends.push_back(s.size());
        put_le(s, ne.size(), 4);
        put_le(s, name.size(), 4);
        put_le(s, static_cast<std::uint32_t>(type), 4);
        for (auto d : ne) put_le(s, static_cast<std::uint32_t>(d), 4);
        s += name + data;
        return *this;
    }
};

// Every strict prefix of a valid file must fail with rwkv::error (never crash, never succeed
// silently) whose message names the file and, when `words` is given, contains one of them (what
// kind of damage it is, e.g. "truncated"); `open` reads a path.
// `whole` lists prefix lengths that are complete files of their own (rwkv.cpp files end after
// any tensor).
inline void every_prefix_fails(const std::string& bytes, const std::string& ext,
                               const std::function<void(const std::filesystem::path&)>& open,
                               const std::vector<std::size_t>& whole = {}, const std::vector<std::string>& words = {}) {
    temp_dir dir("rwkv-prefix");
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        if (std::find(whole.begin(), whole.end(), n) != whole.end()) continue;
        const auto p = dir.write("cut" + ext, bytes.substr(0, n));
        INFO("prefix of " << n << " of " << bytes.size() << " bytes");
        std::string message;
        bool threw = false;
        try {
            open(p);
        } catch (const rwkv::error& e) {
            threw = true;
            message = e.what();
        }
        REQUIRE(threw);
        INFO("message: " << message);
        CHECK(message.find("cut" + ext) != std::string::npos);
        if (!words.empty())
            CHECK(std::any_of(words.begin(), words.end(),
                              [&](const std::string& w) { return message.find(w) != std::string::npos; }));
    }
}

}  // namespace test_support
