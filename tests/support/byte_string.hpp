#pragma once
// std::string as a byte buffer: little-endian integers appended or patched in place (for
// hand-built zip and pickle bytes), and conversion to and from the library's byte spans.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace test_support {

// Appends the low `n` bytes of v, least significant first.
inline void put_le(std::string& s, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Overwrites s[at, at + n) with the low `n` bytes of v, least significant first.
inline void set_le(std::string& s, std::size_t at, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

inline std::span<const std::byte> span_of(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string str_of(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace test_support
