#pragma once
// A GGUF v3 writer (spec 8.3): metadata key/values in insertion order, tensor infos, the data
// blob aligned to 32 bytes (GGUF's default; no general.alignment key is written). It only writes:
// it never reads what it wrote, and every size it writes is computed from what it was given,
// so a bad caller gets an rwkv::error, never a malformed file.
//
//   rwkv::io::gguf_writer w;
//   w.add_string("general.architecture", "rwkv6");
//   w.add_u32("rwkv6.block_count", 24);
//   w.add_tensor("output.weight", {C, V}, dtype::q6_k, bytes);   // ne order: innermost first
//   w.write("model.gguf");

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../weights/format.hpp"

namespace rwkv::io {

class gguf_writer {
public:
    // Scalars (GGUF value types 4 u32, 5 i32, 6 f32, 8 string, 10 u64).
    void add_u32(std::string_view key, std::uint32_t v) { scalar(key, 4, &v, 4); }
    void add_i32(std::string_view key, std::int32_t v) { scalar(key, 5, &v, 4); }
    void add_f32(std::string_view key, float v) { scalar(key, 6, &v, 4); }
    void add_u64(std::string_view key, std::uint64_t v) { scalar(key, 10, &v, 8); }
    void add_string(std::string_view key, std::string_view v) {
        begin_kv(key, 8);
        put_string(kv_, v);
        ++n_kv_;
    }
    // Arrays of strings (element type 8) and of i32 (element type 5).
    void add_strings(std::string_view key, const std::vector<std::string>& v) {
        begin_kv(key, 9);
        put<std::uint32_t>(kv_, 8);
        put<std::uint64_t>(kv_, v.size());
        for (const auto& s : v) put_string(kv_, s);
        ++n_kv_;
    }
    void add_i32s(std::string_view key, const std::vector<std::int32_t>& v) {
        begin_kv(key, 9);
        put<std::uint32_t>(kv_, 5);
        put<std::uint64_t>(kv_, v.size());
        for (std::int32_t x : v) put<std::int32_t>(kv_, x);
        ++n_kv_;
    }

    // A tensor of weight format t with GGUF dimensions ne (ne[0] innermost); bytes must hold
    // exactly dtype_bytes(t, ne[0]) × (product of the other dimensions). Throws rwkv::error
    // otherwise, for a non-weight type, or for a name used twice.
    void add_tensor(std::string name, std::vector<std::uint64_t> ne, dtype t, std::vector<std::byte> bytes) {
        if (!weights::is_weight_format(t)) throw error("GGUF writer: tensor '" + name + "' has a non-weight type");
        if (ne.empty() || ne.size() > 4) throw error("GGUF writer: tensor '" + name + "' needs 1 to 4 dimensions");
        std::uint64_t rows = 1;
        for (std::size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
        const std::size_t want =
            dtype_bytes(t, static_cast<std::int64_t>(ne[0]), "GGUF tensor '" + name + "' row") * rows;
        if (bytes.size() != want)
            throw error("GGUF writer: tensor '" + name + "' has " + std::to_string(bytes.size()) +
                        " bytes, its type and " + "shape need " + std::to_string(want));
        for (const auto& e : tensors_)
            if (e.name == name) throw error("GGUF writer: tensor '" + name + "' added twice");
        tensors_.push_back({std::move(name), std::move(ne), t, std::move(bytes)});
    }

    // Writes the file (replacing it). Throws rwkv::error naming the path when it cannot.
    void write(const std::filesystem::path& path) const {
        std::vector<std::byte> head;
        put<std::uint32_t>(head, 0x46554747u);  // "GGUF"
        put<std::uint32_t>(head, 3);
        put<std::uint64_t>(head, tensors_.size());
        put<std::uint64_t>(head, n_kv_);
        head.insert(head.end(), kv_.begin(), kv_.end());
        std::uint64_t offset = 0;
        for (const auto& t : tensors_) {
            put_string(head, t.name);
            put<std::uint32_t>(head, static_cast<std::uint32_t>(t.ne.size()));
            for (std::uint64_t d : t.ne) put<std::uint64_t>(head, d);
            put<std::uint32_t>(head, static_cast<std::uint32_t>(ggml_type(t.type)));
            put<std::uint64_t>(head, offset);
            offset = aligned(offset + t.bytes.size());
        }
        head.resize(static_cast<std::size_t>(aligned(head.size())), std::byte{0});
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.string().c_str(), "wb"), &std::fclose);
        if (!f) throw error(path.string() + ": cannot open for writing");
        auto out = [&](const void* p, std::size_t n) {
            if (n && std::fwrite(p, 1, n, f.get()) != n) throw error(path.string() + ": write failed");
        };
        out(head.data(), head.size());
        static const std::byte zeros[alignment] = {};
        for (const auto& t : tensors_) {
            out(t.bytes.data(), t.bytes.size());
            out(zeros, static_cast<std::size_t>(aligned(t.bytes.size()) - t.bytes.size()));
        }
        if (std::fflush(f.get()) != 0) throw error(path.string() + ": write failed");
    }

    std::size_t tensor_count() const { return tensors_.size(); }

    static constexpr std::uint64_t alignment = 32;

private:
    struct entry {
        std::string name;
        std::vector<std::uint64_t> ne;
        dtype type;
        std::vector<std::byte> bytes;
    };

    static std::uint64_t aligned(std::uint64_t v) { return (v + alignment - 1) / alignment * alignment; }

    static int ggml_type(dtype t) {
        return weights::visit_format(t, [](auto f) { return decltype(f)::ggml_type; });
    }

    template <class T>
    static void put(std::vector<std::byte>& b, T v) {  // little-endian hosts only (as the readers)
        const auto at = b.size();
        b.resize(at + sizeof(T));
        std::memcpy(b.data() + at, &v, sizeof(T));
    }
    static void put_string(std::vector<std::byte>& b, std::string_view s) {
        put<std::uint64_t>(b, s.size());
        const auto at = b.size();
        b.resize(at + s.size());
        if (!s.empty()) std::memcpy(b.data() + at, s.data(), s.size());
    }
    void begin_kv(std::string_view key, std::uint32_t type) {
        put_string(kv_, key);
        put<std::uint32_t>(kv_, type);
    }
    void scalar(std::string_view key, std::uint32_t type, const void* v, std::size_t n) {
        begin_kv(key, type);
        const auto at = kv_.size();
        kv_.resize(at + n);
        std::memcpy(kv_.data() + at, v, n);
        ++n_kv_;
    }

    std::vector<std::byte> kv_;
    std::uint64_t n_kv_ = 0;
    std::vector<entry> tensors_;
};

}  // namespace rwkv::io
