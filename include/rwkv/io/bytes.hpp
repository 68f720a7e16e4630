#pragma once
// Little-endian loads from unaligned file bytes, shared by the format readers. Callers check
// bounds first; these never do (they sit in the innermost parsing loops).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace rwkv::io::detail {

template <class T>
inline T load_le(const std::byte* p) noexcept {
    static_assert(std::is_unsigned_v<T>);
    // Assembled byte by byte: correct on any host endianness and free of alignment UB.
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(static_cast<T>(std::to_integer<unsigned>(p[i])) << (8 * i));
    return v;
}

}  // namespace rwkv::io::detail

#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace rwkv::io::detail {

// A bounds-checked reading position in a file's bytes, for the binary headers (GGUF, rwkv.cpp).
// Every read checks the remaining length first, so a header can never make us read past the
// mapping; failures name the file, what was being read and the offset.
class cursor {
public:
    cursor(std::span<const std::byte> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

    std::size_t pos() const noexcept { return pos_; }
    std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    bool at_end() const noexcept { return pos_ == bytes_.size(); }
    const std::string& where() const noexcept { return where_; }

    template <class T>
    T read(std::string_view what) {
        need(sizeof(T), what);
        const T v = load_le<T>(bytes_.data() + pos_);
        pos_ += sizeof(T);
        return v;
    }

    // `n` bytes as a span into the file (n from the file: checked, never trusted).
    std::span<const std::byte> bytes(std::uint64_t n, std::string_view what) {
        need(n, what);
        auto s = bytes_.subspan(pos_, static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        return s;
    }

    std::string_view chars(std::uint64_t n, std::string_view what) {
        auto s = bytes(n, what);
        return {reinterpret_cast<const char*>(s.data()), s.size()};
    }

    void seek(std::size_t p) {
        if (p > bytes_.size()) fail("offset " + std::to_string(p) + " is past the end of the file");
        pos_ = p;
    }

    [[noreturn]] void fail(const std::string& what) const { throw rwkv::error(where_ + ": " + what); }

    void need(std::uint64_t n, std::string_view what) const {
        if (n > remaining())
            fail("truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes at offset " +
                 std::to_string(pos_) + ", the file has " + std::to_string(remaining()) + " left");
    }

private:
    std::span<const std::byte> bytes_;
    std::string where_;
    std::size_t pos_ = 0;
};

// a·b for sizes read from files; false on overflow past `limit`.
inline bool mul_within(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
    if (a != 0 && b > limit / a) return false;
    out = a * b;
    return out <= limit;
}

}  // namespace rwkv::io::detail
